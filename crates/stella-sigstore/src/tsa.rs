//! RFC 3161 timestamps: reads a TimeStampResp or a bare TimeStampToken (CMS
//! SignedData over TSTInfo, RFC 5652, through the `cms` crate) and verifies
//! it against the trusted root's timestamp authorities: signature (signed
//! attributes and messageDigest) through stella-crypto, message imprint over
//! the artifact signature, signer certificate validated by stella-crypto's
//! chain validator at genTime (timeStamping EKU), genTime inside the TSA's
//! validity window. Does not check nonces or policies (offline use).

use std::time::{Duration, SystemTime};

use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use const_oid::ObjectIdentifier;
use der::asn1::{Any, BitString, Int, ObjectIdentifier as Oid, OctetString};
use der::{Decode, Encode, Reader, Sequence, Tagged};
use stella_crypto::x509::{self, Certificate, ChainOptions};

use crate::error::SigstoreError;
use crate::fulcio::OID_EKU_TIME_STAMPING;
use crate::hash::HashAlg;
use crate::trust_root::TrustedRoot;

const OID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const OID_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const OID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const OID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
/// Most certificates read from one token.
const MAX_TOKEN_CERTS: usize = 16;

fn bad(m: impl std::fmt::Display) -> SigstoreError {
    SigstoreError::unusable(format!("RFC 3161 timestamp: {m}"))
}

/// `PKIStatusInfo` (RFC 3161 §2.4.2); only the status is read.
#[derive(Sequence)]
struct PkiStatusInfo {
    status: u32,
    status_string: Option<Any>,
    fail_info: Option<BitString>,
}

/// `TimeStampResp` (RFC 3161 §2.4.2).
#[derive(Sequence)]
struct TimeStampResp {
    status: PkiStatusInfo,
    time_stamp_token: Option<ContentInfo>,
}

/// The fields of `TSTInfo` (RFC 3161 §2.4.2) the verifier needs.
struct TstInfo {
    imprint_alg: HashAlg,
    imprint: Vec<u8>,
    gen_time: i64,
}

/// A parsed token.
pub struct Token {
    tst_info: Vec<u8>,
    certs: Vec<Certificate>,
    signer: SignerInfo,
    pub gen_time: i64,
    imprint_alg: HashAlg,
    imprint: Vec<u8>,
}

fn content_info(bytes: &[u8]) -> Result<ContentInfo, SigstoreError> {
    if let Ok(ci) = ContentInfo::from_der(bytes) {
        return Ok(ci);
    }
    let resp = TimeStampResp::from_der(bytes).map_err(bad)?;
    // granted (0) or grantedWithMods (1)
    if resp.status.status > 1 {
        return Err(bad("response status is not granted"));
    }
    resp.time_stamp_token
        .ok_or_else(|| bad("response carries no token"))
}

/// Unix seconds of a GeneralizedTime `YYYYMMDDHHMMSS[.fff]Z`; fractions are
/// dropped (the `der` type refuses them, TSAs send them).
fn generalized_time(raw: &[u8]) -> Result<i64, SigstoreError> {
    let s = std::str::from_utf8(raw).map_err(|_| bad("genTime is not ASCII"))?;
    let s = s
        .strip_suffix('Z')
        .ok_or_else(|| bad("genTime must be UTC"))?;
    let whole = s.split('.').next().unwrap_or("");
    let digits = whole.as_bytes();
    if digits.len() != 14 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(bad("genTime is not YYYYMMDDHHMMSSZ"));
    }
    let num = |a: usize, n: usize| whole.get(a..a + n).and_then(|v| v.parse::<i64>().ok());
    let field = |a, n| num(a, n).ok_or_else(|| bad("genTime digits"));
    let month = time::Month::try_from(u8::try_from(field(4, 2)?).unwrap_or(0)).map_err(bad)?;
    let date = time::Date::from_calendar_date(
        i32::try_from(field(0, 4)?).map_err(bad)?,
        month,
        u8::try_from(field(6, 2)?).map_err(bad)?,
    )
    .map_err(bad)?;
    let hms = time::Time::from_hms(
        u8::try_from(field(8, 2)?).map_err(bad)?,
        u8::try_from(field(10, 2)?).map_err(bad)?,
        u8::try_from(field(12, 2)?).map_err(bad)?,
    )
    .map_err(bad)?;
    Ok(time::PrimitiveDateTime::new(date, hms)
        .assume_utc()
        .unix_timestamp())
}

fn parse_tst_info(der_bytes: &[u8]) -> Result<TstInfo, SigstoreError> {
    let mut reader = der::SliceReader::new(der_bytes).map_err(bad)?;
    let (alg, imprint, gen_time_raw) = reader
        .sequence(|r| {
            let _version: Int = r.decode()?;
            let _policy: Oid = r.decode()?;
            let (alg, imprint) = r.sequence(|m| {
                let alg: x509_cert::spki::AlgorithmIdentifierOwned = m.decode()?;
                let digest: OctetString = m.decode()?;
                Ok::<_, der::Error>((alg, digest.as_bytes().to_vec()))
            })?;
            let _serial: Int = r.decode()?;
            let gen_time: Any = r.decode()?;
            // accuracy, ordering, nonce, tsa, extensions: not used offline.
            let rest = r.remaining_len();
            r.read_slice(rest)?;
            Ok::<_, der::Error>((alg, imprint, gen_time))
        })
        .map_err(bad)?;
    if gen_time_raw.tag() != der::Tag::GeneralizedTime {
        return Err(bad("genTime is not a GeneralizedTime"));
    }
    let imprint_alg =
        HashAlg::from_oid(&alg.oid).ok_or_else(|| bad("unsupported message imprint algorithm"))?;
    Ok(TstInfo {
        imprint_alg,
        imprint,
        gen_time: generalized_time(gen_time_raw.value())?,
    })
}

/// Parses a TimeStampResp or TimeStampToken.
pub fn parse(bytes: &[u8]) -> Result<Token, SigstoreError> {
    let ci = content_info(bytes)?;
    if ci.content_type != OID_SIGNED_DATA {
        return Err(bad("not CMS SignedData"));
    }
    let sd: SignedData = ci.content.decode_as().map_err(bad)?;
    if sd.encap_content_info.econtent_type != OID_TST_INFO {
        return Err(bad("content is not TSTInfo"));
    }
    let econtent = sd
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or_else(|| bad("token has no TSTInfo"))?;
    let tst_info = OctetString::from_der(&econtent.to_der().map_err(bad)?)
        .map_err(bad)?
        .as_bytes()
        .to_vec();
    let mut certs = Vec::new();
    if let Some(set) = &sd.certificates {
        for choice in set.0.iter().take(MAX_TOKEN_CERTS) {
            if let CertificateChoices::Certificate(c) = choice {
                certs.push(Certificate::from_der(&c.to_der().map_err(bad)?)?);
            }
        }
    }
    let mut infos = sd.signer_infos.0.into_vec().into_iter();
    let (Some(signer), None) = (infos.next(), infos.next()) else {
        return Err(bad("a token must have exactly one SignerInfo"));
    };
    let tst = parse_tst_info(&tst_info)?;
    Ok(Token {
        tst_info,
        certs,
        signer,
        gen_time: tst.gen_time,
        imprint_alg: tst.imprint_alg,
        imprint: tst.imprint,
    })
}

fn strip_leading_zeros(v: &[u8]) -> &[u8] {
    let skip = v
        .iter()
        .take_while(|b| **b == 0)
        .count()
        .min(v.len().saturating_sub(1));
    v.get(skip..).unwrap_or(v)
}

fn matches_sid(c: &Certificate, sid: &SignerIdentifier) -> bool {
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(isn) => {
            let tbs = c.inner().tbs_certificate();
            isn.issuer.to_der().is_ok_and(|n| n == c.issuer_der())
                && strip_leading_zeros(isn.serial_number.as_bytes())
                    == strip_leading_zeros(tbs.serial_number().as_bytes())
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => c
            .extension(&stella_crypto::oids::SUBJECT_KEY_ID)
            .and_then(|(_, v)| OctetString::from_der(v).ok())
            .is_some_and(|o| o.as_bytes() == ski.0.as_bytes()),
    }
}

impl Token {
    /// The bytes the signature covers: the DER signed attributes (after
    /// checking their content type and message digest), else the TSTInfo.
    fn signed_bytes(&self, digest_alg: HashAlg) -> Result<Option<Vec<u8>>, SigstoreError> {
        let Some(attrs) = &self.signer.signed_attrs else {
            return Ok(Some(self.tst_info.clone()));
        };
        let mut digest_ok = false;
        let mut content_type_ok = false;
        for attr in attrs.iter() {
            let Some(value) = attr.values.iter().next() else {
                continue;
            };
            if attr.oid == OID_MESSAGE_DIGEST {
                digest_ok = value
                    .decode_as::<OctetString>()
                    .is_ok_and(|d| d.as_bytes() == digest_alg.digest(&self.tst_info).as_slice());
            } else if attr.oid == OID_CONTENT_TYPE {
                content_type_ok = value.decode_as::<Oid>().is_ok_and(|o| o == OID_TST_INFO);
            }
        }
        if !digest_ok || !content_type_ok {
            return Ok(None);
        }
        attrs.to_der().map(Some).map_err(bad)
    }

    /// Checks the CMS signature with `cert`'s key.
    fn signature_ok(&self, cert: &Certificate) -> Result<bool, SigstoreError> {
        let digest_alg = HashAlg::from_oid(&self.signer.digest_alg.oid)
            .ok_or_else(|| bad("unsupported digest algorithm"))?;
        let Some(signed) = self.signed_bytes(digest_alg)? else {
            return Ok(false);
        };
        let Ok(alg) = x509::signature_algorithm(
            &self.signer.signature_algorithm,
            Some(digest_alg.to_crypto()),
        ) else {
            return Ok(false);
        };
        Ok(cert
            .public_key()?
            .verify(alg, &signed, self.signer.signature.as_bytes())
            .is_ok())
    }
}

fn system_time(unix: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(unix).unwrap_or(0))
}

/// Verifies one timestamp over `signature` and returns its genTime.
pub fn verify(bytes: &[u8], signature: &[u8], root: &TrustedRoot) -> Result<i64, SigstoreError> {
    let token = parse(bytes)?;
    if token.imprint != token.imprint_alg.digest(signature) {
        return Err(SigstoreError::failed(
            "RFC 3161 timestamp: message imprint does not match the signature",
        ));
    }
    let t = token.gen_time;
    let opts = ChainOptions::code_signing(system_time(t)).requiring_eku(OID_EKU_TIME_STAMPING);
    let mut last =
        SigstoreError::failed("RFC 3161 timestamp: not issued by a trusted timestamp authority");
    for tsa in &root.timestamp_authorities {
        // Candidate signer certificates: the trusted chain's own certificates
        // and those embedded in the token (only ever as leaves, never anchors).
        let candidates = tsa
            .chain
            .iter()
            .chain(token.certs.iter())
            .filter(|c| matches_sid(c, &token.signer.sid));
        for cand in candidates {
            if !token.signature_ok(cand)? {
                last = SigstoreError::failed("RFC 3161 timestamp: signature does not verify");
                continue;
            }
            if let Err(e) = x509::verify_chain(cand, tsa.intermediates(), tsa.anchor(), &opts) {
                last = SigstoreError::from(e).context("RFC 3161 timestamp authority certificate");
                continue;
            }
            if !tsa.valid_for.contains(t) {
                last = SigstoreError::failed(format!(
                    "RFC 3161 timestamp: genTime {t} is outside the timestamp authority's validity window"
                ));
                continue;
            }
            return Ok(t);
        }
    }
    Err(last)
}
