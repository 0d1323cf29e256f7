//! X.509 certificates (RFC 5280) for organisation PKI and sigstore: a parsed
//! [`Certificate`] wrapper and [`verify_chain`], an offline path builder and
//! validator (signatures, names, validity at a caller-chosen time, CA basic
//! constraints and path length, key usage, extended key usage, unknown
//! critical extensions).
//!
//! Trust comes only from the `roots` the caller passes: certificates carried
//! in the evidence are used as intermediates and never as anchors, even when
//! self-signed. Not implemented: revocation (CRL/OCSP), name constraints
//! (a critical nameConstraints extension is rejected), policy processing, and
//! RSA-PSS certificate signatures with non-default parameters beyond the hash.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use der::{Decode, Encode, Reader};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAltName};

use crate::{CryptoError, HashAlgorithm, PublicKey, SignatureAlgorithm, oids, pem};

pub use const_oid::ObjectIdentifier;
pub use x509_cert;

/// Longest chain accepted (leaf + intermediates), bounding the path search.
pub const MAX_CHAIN_DEPTH: usize = 8;
/// Most certificates accepted in one PEM chain file.
pub const MAX_CHAIN_CERTS: usize = 64;

/// A parsed certificate together with its original DER. Cheap to clone
/// (shared); the subject key is parsed once, and a signature that verified
/// under an issuer key is remembered, so long-lived trusted certificates are
/// checked once rather than on every chain validation.
#[derive(Clone)]
pub struct Certificate {
    inner: Arc<Parsed>,
}

struct Parsed {
    der: Vec<u8>,
    tbs_der: Vec<u8>,
    issuer_der: Vec<u8>,
    subject_der: Vec<u8>,
    cert: x509_cert::Certificate,
    key: OnceLock<Result<PublicKey, CryptoError>>,
    /// SPKI DER of issuer keys under which this certificate's signature verified.
    verified_by: Mutex<Vec<Vec<u8>>>,
}

/// Most issuer keys remembered per certificate.
const MAX_REMEMBERED_ISSUERS: usize = 4;

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject())
            .field("issuer", &self.issuer())
            .field("serial", &self.serial_hex())
            .finish()
    }
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.inner.der == other.inner.der
    }
}
impl Eq for Certificate {}

fn malformed(e: impl std::fmt::Display) -> CryptoError {
    CryptoError::MalformedCertificate(e.to_string())
}

impl Certificate {
    /// Parses one DER certificate (trailing bytes rejected).
    pub fn from_der(der_bytes: &[u8]) -> Result<Self, CryptoError> {
        let cert = x509_cert::Certificate::from_der(der_bytes).map_err(malformed)?;
        let mut reader = der::SliceReader::new(der_bytes).map_err(malformed)?;
        let tbs = reader
            .sequence(|r| {
                let tbs = r.tlv_bytes()?;
                // signatureAlgorithm and signature follow; skip them.
                let _ = r.tlv_bytes()?;
                let _ = r.tlv_bytes()?;
                Ok::<_, der::Error>(tbs)
            })
            .map_err(malformed)?;
        let tbs_cert = cert.tbs_certificate();
        Ok(Certificate {
            inner: Arc::new(Parsed {
                der: der_bytes.to_vec(),
                tbs_der: tbs.to_vec(),
                issuer_der: tbs_cert.issuer().to_der().map_err(malformed)?,
                subject_der: tbs_cert.subject().to_der().map_err(malformed)?,
                cert,
                key: OnceLock::new(),
                verified_by: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Parses exactly one `CERTIFICATE` PEM block.
    pub fn from_pem(text: &str) -> Result<Self, CryptoError> {
        let mut certs = Self::pem_chain(text)?;
        if certs.len() != 1 {
            return Err(CryptoError::MalformedCertificate(format!(
                "expected one CERTIFICATE PEM block, found {}",
                certs.len()
            )));
        }
        certs
            .pop()
            .ok_or_else(|| CryptoError::MalformedCertificate("no certificate".into()))
    }

    /// Parses every `CERTIFICATE` PEM block in `text` (other blocks ignored).
    pub fn pem_chain(text: &str) -> Result<Vec<Self>, CryptoError> {
        let blocks = pem::parse_all(text).map_err(|e| malformed(e.to_string()))?;
        let certs: Vec<_> = blocks
            .iter()
            .filter(|b| b.label == "CERTIFICATE")
            .map(|b| Self::from_der(&b.der))
            .collect::<Result<_, _>>()?;
        if certs.len() > MAX_CHAIN_CERTS {
            return Err(malformed(format!(
                "more than {MAX_CHAIN_CERTS} certificates"
            )));
        }
        Ok(certs)
    }

    /// The certificate DER as given.
    pub fn der(&self) -> &[u8] {
        &self.inner.der
    }

    /// The certificate as a PEM block.
    pub fn to_pem(&self) -> String {
        pem::encode("CERTIFICATE", &self.inner.der)
    }

    /// The exact tbsCertificate bytes that the issuer signed.
    pub fn tbs_der(&self) -> &[u8] {
        &self.inner.tbs_der
    }

    /// The parsed x509-cert structure.
    pub fn inner(&self) -> &x509_cert::Certificate {
        &self.inner.cert
    }

    /// The subject public key (parsed once per certificate).
    pub fn public_key(&self) -> Result<PublicKey, CryptoError> {
        self.inner
            .key
            .get_or_init(|| {
                let spki = self
                    .inner
                    .cert
                    .tbs_certificate()
                    .subject_public_key_info()
                    .to_der()
                    .map_err(malformed)?;
                PublicKey::from_spki_der(&spki)
            })
            .clone()
    }

    /// The subject name as DER (exact bytes, for name chaining).
    pub fn subject_der(&self) -> &[u8] {
        &self.inner.subject_der
    }

    /// The issuer name as DER.
    pub fn issuer_der(&self) -> &[u8] {
        &self.inner.issuer_der
    }

    /// The subject name (RFC 4514 string).
    pub fn subject(&self) -> String {
        self.inner.cert.tbs_certificate().subject().to_string()
    }

    /// The issuer name (RFC 4514 string).
    pub fn issuer(&self) -> String {
        self.inner.cert.tbs_certificate().issuer().to_string()
    }

    /// Lowercase hex serial number.
    pub fn serial_hex(&self) -> String {
        crate::keys::hex_lower(self.inner.cert.tbs_certificate().serial_number().as_bytes())
    }

    /// Start of the validity period.
    pub fn not_before(&self) -> SystemTime {
        self.inner
            .cert
            .tbs_certificate()
            .validity()
            .not_before
            .to_system_time()
    }

    /// End of the validity period.
    pub fn not_after(&self) -> SystemTime {
        self.inner
            .cert
            .tbs_certificate()
            .validity()
            .not_after
            .to_system_time()
    }

    /// True when `t` lies in [notBefore, notAfter].
    pub fn valid_at(&self, t: SystemTime) -> bool {
        self.not_before() <= t && t <= self.not_after()
    }

    /// Raw value and criticality of the extension `oid`, if present once.
    pub fn extension(&self, oid: &ObjectIdentifier) -> Option<(bool, &[u8])> {
        self.inner
            .cert
            .tbs_certificate()
            .extensions()?
            .iter()
            .find(|e| &e.extn_id == oid)
            .map(|e| (e.critical, e.extn_value.as_bytes()))
    }

    fn typed_extension<'a, T: Decode<'a> + const_oid::AssociatedOid>(
        &'a self,
    ) -> Result<Option<T>, CryptoError>
    where
        <T as Decode<'a>>::Error: std::fmt::Display,
    {
        self.inner
            .cert
            .tbs_certificate()
            .get_extension::<T>()
            .map(|o| o.map(|(_, v)| v))
            .map_err(|e| malformed(format!("extension {}: {e}", T::OID)))
    }

    /// basicConstraints: (cA, pathLenConstraint); `None` when absent.
    pub fn basic_constraints(&self) -> Result<Option<(bool, Option<u8>)>, CryptoError> {
        Ok(self
            .typed_extension::<BasicConstraints>()?
            .map(|b| (b.ca, b.path_len_constraint)))
    }

    /// keyUsage; `None` when absent.
    pub fn key_usage(&self) -> Result<Option<KeyUsage>, CryptoError> {
        self.typed_extension::<KeyUsage>()
    }

    /// extKeyUsage OIDs; `None` when absent.
    pub fn extended_key_usage(&self) -> Result<Option<Vec<ObjectIdentifier>>, CryptoError> {
        Ok(self.typed_extension::<ExtendedKeyUsage>()?.map(|e| e.0))
    }

    /// Subject alternative names: (URIs, e-mail addresses, DNS names).
    pub fn subject_alt_names(&self) -> Result<SanValues, CryptoError> {
        let mut out = SanValues::default();
        if let Some(san) = self.typed_extension::<SubjectAltName>()? {
            for name in san.0 {
                match name {
                    GeneralName::UniformResourceIdentifier(u) => out.uris.push(u.to_string()),
                    GeneralName::Rfc822Name(m) => out.emails.push(m.to_string()),
                    GeneralName::DnsName(d) => out.dns.push(d.to_string()),
                    _ => {}
                }
            }
        }
        Ok(out)
    }

    /// The signature algorithm of this certificate's own signature. ECDSA
    /// names only the hash; the curve is the issuer key's.
    pub fn signature_algorithm(&self) -> Result<SignatureAlgorithm, CryptoError> {
        signature_algorithm(self.inner.cert.signature_algorithm(), None)
    }

    /// Checks that `issuer` issued this certificate: issuer name matches the
    /// issuer's subject and the signature verifies under the issuer's key.
    pub fn verify_issued_by(&self, issuer: &Certificate) -> Result<(), CryptoError> {
        if self.inner.issuer_der != issuer.inner.subject_der {
            return Err(CryptoError::CertificateRejected(format!(
                "issuer name of {} does not match {}",
                self.subject(),
                issuer.subject()
            )));
        }
        self.verify_signature_with(&issuer.public_key()?)
    }

    /// Verifies this certificate's signature under `key`. A success is
    /// remembered per key (the result depends only on the two byte strings).
    pub fn verify_signature_with(&self, key: &PublicKey) -> Result<(), CryptoError> {
        if let Ok(seen) = self.inner.verified_by.lock()
            && seen.iter().any(|k| k.as_slice() == key.spki_der())
        {
            return Ok(());
        }
        let sig =
            self.inner.cert.signature().as_bytes().ok_or_else(|| {
                CryptoError::MalformedCertificate("signature has unused bits".into())
            })?;
        let alg = self.signature_algorithm()?;
        key.verify(alg, &self.inner.tbs_der, sig)
            .map_err(|e| match e {
                CryptoError::BadSignature | CryptoError::MalformedSignature(_) => {
                    CryptoError::CertificateRejected(format!(
                        "signature of certificate {} does not verify",
                        self.subject()
                    ))
                }
                other => other,
            })?;
        if let Ok(mut seen) = self.inner.verified_by.lock()
            && seen.len() < MAX_REMEMBERED_ISSUERS
        {
            seen.push(key.spki_der().to_vec());
        }
        Ok(())
    }

    /// UTF-8 values of the otherName SANs of type `type_id` (e.g. Fulcio's
    /// `1.3.6.1.4.1.57264.1.7`), whose value is a DER UTF8String.
    pub fn other_name_sans(&self, type_id: &ObjectIdentifier) -> Result<Vec<String>, CryptoError> {
        let mut out = Vec::new();
        if let Some(san) = self.typed_extension::<SubjectAltName>()? {
            for name in san.0 {
                if let GeneralName::OtherName(o) = name
                    && &o.type_id == type_id
                {
                    let s = o
                        .value
                        .decode_as::<der::asn1::Utf8StringRef<'_>>()
                        .map_err(|e| {
                            malformed(format!("otherName {type_id} is not a UTF8String: {e}"))
                        })?;
                    out.push(s.as_str().to_string());
                }
            }
        }
        Ok(out)
    }

    /// The tbsCertificate without the extension `oid`, DER encoded (RFC 6962
    /// §3.2 precertificate TBS when `oid` is the embedded SCT list). Every
    /// other element keeps its original bytes.
    pub fn tbs_der_without_extension(
        &self,
        oid: &ObjectIdentifier,
    ) -> Result<Vec<u8>, CryptoError> {
        use der::asn1::{Any, AnyRef};
        use der::{Tag, TagNumber};
        let kept: Vec<x509_cert::ext::Extension> = self
            .inner
            .cert
            .tbs_certificate()
            .extensions()
            .map(|exts| exts.iter().filter(|e| &e.extn_id != oid).cloned().collect())
            .unwrap_or_default();
        let tbs = AnyRef::from_der(&self.inner.tbs_der).map_err(malformed)?;
        let mut reader = der::SliceReader::new(tbs.value()).map_err(malformed)?;
        let mut content = Vec::with_capacity(self.inner.tbs_der.len());
        while !reader.is_finished() {
            let element = reader.tlv_bytes().map_err(malformed)?;
            if element.first() != Some(&0xa3) {
                content.extend_from_slice(element);
            } else if !kept.is_empty() {
                let explicit = Tag::ContextSpecific {
                    constructed: true,
                    number: TagNumber(3),
                };
                let list = kept.to_der().map_err(malformed)?;
                let wrapped = Any::new(explicit, list).map_err(malformed)?;
                content.extend(wrapped.to_der().map_err(malformed)?);
            }
        }
        Any::new(Tag::Sequence, content)
            .and_then(|a| a.to_der())
            .map_err(malformed)
    }

    fn unknown_critical_extension(&self) -> Option<ObjectIdentifier> {
        let known = [
            oids::BASIC_CONSTRAINTS,
            oids::KEY_USAGE,
            oids::EXT_KEY_USAGE,
            oids::SUBJECT_ALT_NAME,
            oids::CERTIFICATE_POLICIES,
            oids::SUBJECT_KEY_ID,
            oids::AUTHORITY_KEY_ID,
        ];
        self.inner
            .cert
            .tbs_certificate()
            .extensions()?
            .iter()
            .find(|e| e.critical && !known.contains(&e.extn_id))
            .map(|e| e.extn_id)
    }
}

/// Maps an X.509 / CMS signature AlgorithmIdentifier to a
/// [`SignatureAlgorithm`]. ECDSA OIDs name only the hash (the curve is the
/// verifying key's). CMS may name only the key type (`rsaEncryption`,
/// `id-ecPublicKey`); then `digest_hint` (the SignerInfo digestAlgorithm)
/// gives the hash. RSA-PSS takes its hash from the parameters.
pub fn signature_algorithm(
    alg: &spki::AlgorithmIdentifierOwned,
    digest_hint: Option<HashAlgorithm>,
) -> Result<SignatureAlgorithm, CryptoError> {
    use SignatureAlgorithm as A;
    let oid = alg.oid;
    let unsupported = || CryptoError::UnsupportedAlgorithm(format!("signature algorithm {oid}"));
    Ok(if oid == oids::ECDSA_WITH_SHA256 {
        A::EcdsaSha256
    } else if oid == oids::ECDSA_WITH_SHA384 {
        A::EcdsaSha384
    } else if oid == oids::ECDSA_WITH_SHA512 {
        A::EcdsaSha512
    } else if oid == oids::ED25519 {
        A::Ed25519
    } else if oid == oids::SHA256_WITH_RSA {
        A::RsaPkcs1Sha256
    } else if oid == oids::SHA384_WITH_RSA {
        A::RsaPkcs1Sha384
    } else if oid == oids::SHA512_WITH_RSA {
        A::RsaPkcs1Sha512
    } else if oid == oids::RSA_ENCRYPTION {
        match digest_hint {
            Some(HashAlgorithm::Sha256) => A::RsaPkcs1Sha256,
            Some(HashAlgorithm::Sha384) => A::RsaPkcs1Sha384,
            Some(HashAlgorithm::Sha512) => A::RsaPkcs1Sha512,
            _ => return Err(unsupported()),
        }
    } else if oid == oids::EC_PUBLIC_KEY {
        match digest_hint {
            Some(HashAlgorithm::Sha256) => A::EcdsaSha256,
            Some(HashAlgorithm::Sha384) => A::EcdsaSha384,
            Some(HashAlgorithm::Sha512) => A::EcdsaSha512,
            _ => return Err(unsupported()),
        }
    } else if oid == oids::RSASSA_PSS {
        let params = alg
            .parameters
            .as_ref()
            .and_then(|p| p.to_der().ok())
            .unwrap_or_default();
        let has = |o: &ObjectIdentifier| {
            let enc = o.as_bytes();
            params.windows(enc.len()).any(|w| w == enc)
        };
        if has(&oids::SHA512) {
            A::RsaPssSha512
        } else if has(&oids::SHA384) {
            A::RsaPssSha384
        } else if has(&oids::SHA256) {
            A::RsaPssSha256
        } else {
            return Err(CryptoError::UnsupportedAlgorithm(
                "RSA-PSS signature with SHA-1".into(),
            ));
        }
    } else {
        return Err(unsupported());
    })
}

/// Subject alternative names of a certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SanValues {
    /// URI names.
    pub uris: Vec<String>,
    /// rfc822 (e-mail) names.
    pub emails: Vec<String>,
    /// DNS names.
    pub dns: Vec<String>,
}

/// What the leaf's extended key usage must contain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EkuPolicy {
    /// Do not look at EKU.
    Ignore,
    /// When the leaf has an EKU extension it must contain this OID (or
    /// anyExtendedKeyUsage); a leaf without EKU is accepted.
    IfPresent(ObjectIdentifier),
    /// The leaf must have an EKU extension containing this OID.
    Required(ObjectIdentifier),
}

/// Options of [`verify_chain`].
#[derive(Debug, Clone)]
pub struct ChainOptions {
    /// Time at which every certificate in the path must be valid.
    pub at_time: SystemTime,
    /// Leaf EKU requirement.
    pub eku: EkuPolicy,
    /// Require the leaf keyUsage (when present) to include digitalSignature.
    /// A leaf without a keyUsage extension is unrestricted (RFC 5280 §4.2.1.3).
    pub require_digital_signature: bool,
    /// Refuse a leaf whose basicConstraints says it is a CA.
    pub forbid_ca_leaf: bool,
}

impl ChainOptions {
    /// Code-signing profile at `at_time`: digitalSignature, codeSigning EKU
    /// when present, not a CA.
    pub fn code_signing(at_time: SystemTime) -> Self {
        ChainOptions {
            at_time,
            eku: EkuPolicy::IfPresent(oids::KP_CODE_SIGNING),
            require_digital_signature: true,
            forbid_ca_leaf: true,
        }
    }

    /// The same profile with the leaf EKU `oid` required (sigstore: Fulcio
    /// leaves must say codeSigning, timestamp authorities timeStamping).
    pub fn requiring_eku(mut self, oid: ObjectIdentifier) -> Self {
        self.eku = EkuPolicy::Required(oid);
        self
    }
}

fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm), proleptic Gregorian.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

fn check_validity(cert: &Certificate, role: &str, at: SystemTime) -> Result<(), CryptoError> {
    if at < cert.not_before() {
        return Err(CryptoError::CertificateRejected(format!(
            "{role} certificate {} is not yet valid at {} (notBefore {})",
            cert.subject(),
            rfc3339(at),
            rfc3339(cert.not_before())
        )));
    }
    if at > cert.not_after() {
        return Err(CryptoError::CertificateRejected(format!(
            "{role} certificate {} expired at {} (checked at {})",
            cert.subject(),
            rfc3339(cert.not_after()),
            rfc3339(at)
        )));
    }
    if let Some(oid) = cert.unknown_critical_extension() {
        return Err(CryptoError::CertificateRejected(format!(
            "{role} certificate {} has an unsupported critical extension {oid}",
            cert.subject()
        )));
    }
    Ok(())
}

fn check_leaf(leaf: &Certificate, opts: &ChainOptions) -> Result<(), CryptoError> {
    check_validity(leaf, "signing", opts.at_time)?;
    if opts.forbid_ca_leaf && leaf.basic_constraints()?.is_some_and(|(ca, _)| ca) {
        return Err(CryptoError::CertificateRejected(format!(
            "signing certificate {} is a CA certificate",
            leaf.subject()
        )));
    }
    if opts.require_digital_signature && leaf.key_usage()?.is_some_and(|ku| !ku.digital_signature())
    {
        return Err(CryptoError::CertificateRejected(format!(
            "signing certificate {} lacks the digitalSignature key usage",
            leaf.subject()
        )));
    }
    let eku = leaf.extended_key_usage()?;
    let wanted = match &opts.eku {
        EkuPolicy::Ignore => return Ok(()),
        EkuPolicy::IfPresent(o) => {
            if eku.is_none() {
                return Ok(());
            }
            o
        }
        EkuPolicy::Required(o) => o,
    };
    let list = eku.unwrap_or_default();
    if list
        .iter()
        .any(|o| o == wanted || *o == oids::ANY_EXTENDED_KEY_USAGE)
    {
        Ok(())
    } else {
        Err(CryptoError::CertificateRejected(format!(
            "signing certificate {} lacks the extended key usage {wanted}{}",
            leaf.subject(),
            if *wanted == oids::KP_CODE_SIGNING {
                " (codeSigning)"
            } else {
                ""
            }
        )))
    }
}

fn check_issuer_ca(ca: &Certificate, below: usize) -> Result<(), CryptoError> {
    match ca.basic_constraints()? {
        Some((true, Some(max))) if below > usize::from(max) => {
            return Err(CryptoError::CertificateRejected(format!(
                "CA certificate {} path length constraint {max} exceeded",
                ca.subject()
            )));
        }
        Some((true, _)) => {}
        _ => {
            return Err(CryptoError::CertificateRejected(format!(
                "certificate {} issues certificates but is not a CA (basicConstraints)",
                ca.subject()
            )));
        }
    }
    if ca.key_usage()?.is_some_and(|ku| !ku.key_cert_sign()) {
        return Err(CryptoError::CertificateRejected(format!(
            "CA certificate {} lacks the keyCertSign key usage",
            ca.subject()
        )));
    }
    Ok(())
}

/// Builds and validates a path from `leaf` through `intermediates` to one of
/// `roots` (the only trust anchors). Returns the path, leaf first, anchor last.
///
/// Every certificate in the path, anchor included, must be valid at
/// `opts.at_time`. Intermediates and anchors must be CAs (basicConstraints)
/// with keyCertSign when keyUsage is present; path-length constraints are
/// enforced. A leaf that is itself one of `roots` is accepted as a path of
/// one (after the leaf checks). The first error met on the most promising
/// path is reported. This one validator serves organisation PKI and
/// sigstore (Fulcio, timestamp authorities) alike.
pub fn verify_chain(
    leaf: &Certificate,
    intermediates: &[Certificate],
    roots: &[Certificate],
    opts: &ChainOptions,
) -> Result<Vec<Certificate>, CryptoError> {
    if roots.is_empty() {
        return Err(CryptoError::CertificateRejected(
            "no trusted root certificates given".into(),
        ));
    }
    check_leaf(leaf, opts)?;
    if roots.contains(leaf) {
        // The caller trusts this very certificate (e.g. a timestamp
        // authority's own certificate in a sigstore trusted root).
        return Ok(vec![leaf.clone()]);
    }
    let mut path = vec![leaf.clone()];
    let mut last_err = None;
    if extend(&mut path, intermediates, roots, opts, &mut last_err) {
        Ok(path)
    } else {
        Err(last_err.unwrap_or_else(|| {
            CryptoError::CertificateRejected(format!(
                "certificate {} (issuer {}) does not chain to a trusted root",
                leaf.subject(),
                leaf.issuer()
            ))
        }))
    }
}

fn extend(
    path: &mut Vec<Certificate>,
    intermediates: &[Certificate],
    roots: &[Certificate],
    opts: &ChainOptions,
    last_err: &mut Option<CryptoError>,
) -> bool {
    let Some(current) = path.last().cloned() else {
        return false;
    };
    // Number of non-leaf, non-self-issued certificates below the next issuer.
    let below = path.len().saturating_sub(1);
    for root in roots {
        if current.verify_issued_by(root).is_ok() {
            let res = check_validity(root, "trusted root", opts.at_time)
                .and_then(|()| check_issuer_ca(root, below));
            match res {
                Ok(()) => {
                    path.push(root.clone());
                    return true;
                }
                Err(e) => *last_err = Some(e),
            }
        }
    }
    if path.len() >= MAX_CHAIN_DEPTH {
        return false;
    }
    for ca in intermediates {
        if path.iter().any(|c| c == ca) {
            continue;
        }
        if current.verify_issued_by(ca).is_err() {
            continue;
        }
        if let Err(e) = check_validity(ca, "intermediate", opts.at_time)
            .and_then(|()| check_issuer_ca(ca, below))
        {
            *last_err = Some(e);
            continue;
        }
        path.push(ca.clone());
        if extend(path, intermediates, roots, opts, last_err) {
            return true;
        }
        path.pop();
    }
    false
}
