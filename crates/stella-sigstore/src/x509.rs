//! X.509 certificates as sigstore needs them: parsing (hand-rolled DER),
//! path validation at a given time against trusted-root chains, EKU, SANs
//! (URI, email, Fulcio otherName), Fulcio OIDC-issuer extensions and the
//! precertificate TBS used for SCTs. No revocation, no name constraints,
//! no policy OIDs (sigstore clients do not use them).

use crate::der;
use crate::error::SigstoreError;
use crate::keys::{self, PublicKey};

pub const OID_BASIC_CONSTRAINTS: &str = "2.5.29.19";
pub const OID_KEY_USAGE: &str = "2.5.29.15";
pub const OID_EXT_KEY_USAGE: &str = "2.5.29.37";
pub const OID_SAN: &str = "2.5.29.17";
pub const OID_SCT_LIST: &str = "1.3.6.1.4.1.11129.2.4.2";
pub const OID_EKU_CODE_SIGNING: &str = "1.3.6.1.5.5.7.3.3";
pub const OID_EKU_TIME_STAMPING: &str = "1.3.6.1.5.5.7.3.8";
pub const OID_FULCIO_ISSUER_V1: &str = "1.3.6.1.4.1.57264.1.1";
pub const OID_FULCIO_ISSUER_V2: &str = "1.3.6.1.4.1.57264.1.8";
pub const OID_FULCIO_OTHERNAME_SAN: &str = "1.3.6.1.4.1.57264.1.7";

/// Critical extensions a leaf may carry (all others make it unusable, as in RFC 5280 §4.2).
const KNOWN_CRITICAL: &[&str] = &[
    OID_BASIC_CONSTRAINTS,
    OID_KEY_USAGE,
    OID_EXT_KEY_USAGE,
    OID_SAN,
    "2.5.29.14",
    "2.5.29.35",
];

/// Longest chain accepted (leaf + intermediates + root).
pub const MAX_CHAIN_DEPTH: usize = 8;

#[derive(Debug, Clone)]
pub struct Extension {
    pub oid: String,
    pub critical: bool,
    pub value: Vec<u8>,
    raw: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct Certificate {
    pub der: Vec<u8>,
    pub tbs: Vec<u8>,
    pub sig_alg: String,
    pub signature: Vec<u8>,
    pub serial: Vec<u8>,
    pub issuer: Vec<u8>,
    pub subject: Vec<u8>,
    pub not_before: i64,
    pub not_after: i64,
    pub public_key: PublicKey,
    pub extensions: Vec<Extension>,
    /// Raw TBS elements before the extensions (for precert reconstruction).
    tbs_prefix: Vec<u8>,
}

fn bad(m: impl Into<String>) -> SigstoreError {
    SigstoreError::unusable(format!("certificate: {}", m.into()))
}

impl Certificate {
    pub fn from_der(bytes: &[u8]) -> Result<Certificate, SigstoreError> {
        let cert = der::parse_one(bytes, der::SEQUENCE).map_err(|e| e.context("certificate"))?;
        let mut cr = cert.reader();
        let tbs = cr.read_tag(der::SEQUENCE)?;
        let (sig_alg, _) = keys::read_alg_id(&mut cr)?;
        let sig = cr.read_tag(der::BIT_STRING)?;
        cr.finish()?;
        let (&unused, signature) = sig
            .value
            .split_first()
            .ok_or_else(|| bad("empty signature"))?;
        if unused != 0 {
            return Err(bad("unaligned signature"));
        }
        let mut tr = tbs.reader();
        let mut prefix = Vec::new();
        if let Some(v) = tr.read_optional(0xa0)? {
            prefix.extend_from_slice(v.raw);
        }
        let serial = tr.read_tag(der::INTEGER)?;
        prefix.extend_from_slice(serial.raw);
        let alg = tr.read_tag(der::SEQUENCE)?;
        prefix.extend_from_slice(alg.raw);
        let issuer = tr.read_tag(der::SEQUENCE)?;
        prefix.extend_from_slice(issuer.raw);
        let validity = tr.read_tag(der::SEQUENCE)?;
        prefix.extend_from_slice(validity.raw);
        let mut vr = validity.reader();
        let nb = vr.read()?;
        let na = vr.read()?;
        vr.finish()?;
        let subject = tr.read_tag(der::SEQUENCE)?;
        prefix.extend_from_slice(subject.raw);
        let spki = tr.read_tag(der::SEQUENCE)?;
        prefix.extend_from_slice(spki.raw);
        let public_key = PublicKey::from_spki_der(spki.raw)?;
        let mut extensions = Vec::new();
        while !tr.is_empty() {
            let t = tr.read()?;
            match t.tag {
                0x81 | 0x82 => prefix.extend_from_slice(t.raw),
                0xa3 => {
                    let seq = der::parse_one(t.value, der::SEQUENCE)?;
                    let mut er = seq.reader();
                    while !er.is_empty() {
                        let e = er.read_tag(der::SEQUENCE)?;
                        let mut xr = e.reader();
                        let oid = der::read_oid(&mut xr)?;
                        let critical = match xr.read_optional(der::BOOLEAN)? {
                            Some(b) => b.value.first().is_some_and(|v| *v != 0),
                            None => false,
                        };
                        let value = xr.read_tag(der::OCTET_STRING)?.value.to_vec();
                        xr.finish()?;
                        if extensions.iter().any(|x: &Extension| x.oid == oid) {
                            return Err(bad(format!("duplicate extension {oid}")));
                        }
                        extensions.push(Extension {
                            oid,
                            critical,
                            value,
                            raw: e.raw.to_vec(),
                        });
                    }
                }
                _ => return Err(bad("unexpected TBS element")),
            }
        }
        Ok(Certificate {
            der: bytes.to_vec(),
            tbs: tbs.raw.to_vec(),
            sig_alg,
            signature: signature.to_vec(),
            serial: serial.value.to_vec(),
            issuer: issuer.raw.to_vec(),
            subject: subject.raw.to_vec(),
            not_before: der::parse_time(&nb)?,
            not_after: der::parse_time(&na)?,
            public_key,
            extensions,
            tbs_prefix: prefix,
        })
    }

    pub fn extension(&self, oid: &str) -> Option<&Extension> {
        self.extensions.iter().find(|e| e.oid == oid)
    }

    pub fn valid_at(&self, t: i64) -> bool {
        self.not_before <= t && t <= self.not_after
    }

    /// basicConstraints cA flag.
    pub fn is_ca(&self) -> bool {
        let Some(e) = self.extension(OID_BASIC_CONSTRAINTS) else {
            return false;
        };
        let Ok(seq) = der::parse_one(&e.value, der::SEQUENCE) else {
            return false;
        };
        let mut r = seq.reader();
        matches!(r.read_optional(der::BOOLEAN), Ok(Some(b)) if b.value.first().is_some_and(|v| *v != 0))
    }

    /// Extended key usage OIDs (empty if the extension is absent).
    pub fn ext_key_usages(&self) -> Result<Vec<String>, SigstoreError> {
        let Some(e) = self.extension(OID_EXT_KEY_USAGE) else {
            return Ok(vec![]);
        };
        let seq = der::parse_one(&e.value, der::SEQUENCE)?;
        let mut r = seq.reader();
        let mut out = vec![];
        while !r.is_empty() {
            out.push(der::read_oid(&mut r)?);
        }
        Ok(out)
    }

    pub fn is_self_issued(&self) -> bool {
        self.issuer == self.subject
    }

    /// Whether `issuer`'s key signed this certificate.
    pub fn signed_by(&self, issuer: &Certificate) -> bool {
        self.issuer == issuer.subject
            && keys::verify_by_oid(
                &issuer.public_key,
                &self.sig_alg,
                None,
                &self.tbs,
                &self.signature,
            )
    }

    /// Subject alternative names: URIs, emails and Fulcio otherName values.
    pub fn sans(&self) -> Result<Vec<String>, SigstoreError> {
        let Some(e) = self.extension(OID_SAN) else {
            return Ok(vec![]);
        };
        let seq = der::parse_one(&e.value, der::SEQUENCE)?;
        let mut r = seq.reader();
        let mut out = vec![];
        while !r.is_empty() {
            let g = r.read()?;
            match g.tag {
                0x81 | 0x86 => {
                    out.push(
                        String::from_utf8(g.value.to_vec()).map_err(|_| bad("SAN is not UTF-8"))?,
                    );
                }
                0xa0 => {
                    // otherName ::= SEQUENCE { type-id OID, value [0] EXPLICIT ANY }
                    let mut or = g.reader();
                    let oid = der::read_oid(&mut or)?;
                    let v = or.read_tag(0xa0)?;
                    if oid == OID_FULCIO_OTHERNAME_SAN {
                        let s = der::parse_one(v.value, 0x0c)?;
                        out.push(
                            String::from_utf8(s.value.to_vec())
                                .map_err(|_| bad("SAN is not UTF-8"))?,
                        );
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// The OIDC issuer from Fulcio's extensions (v2 DER UTF8String, else v1 raw).
    pub fn oidc_issuer(&self) -> Result<Option<String>, SigstoreError> {
        if let Some(e) = self.extension(OID_FULCIO_ISSUER_V2) {
            let s = der::parse_one(&e.value, 0x0c)?;
            return Ok(Some(
                String::from_utf8(s.value.to_vec()).map_err(|_| bad("issuer is not UTF-8"))?,
            ));
        }
        if let Some(e) = self.extension(OID_FULCIO_ISSUER_V1) {
            return Ok(Some(
                String::from_utf8(e.value.clone()).map_err(|_| bad("issuer is not UTF-8"))?,
            ));
        }
        Ok(None)
    }

    /// The TBSCertificate with the SCT-list extension removed (RFC 6962 §3.2).
    pub fn precert_tbs(&self) -> Vec<u8> {
        let mut exts = Vec::new();
        for e in &self.extensions {
            if e.oid != OID_SCT_LIST {
                exts.extend_from_slice(&e.raw);
            }
        }
        let mut content = self.tbs_prefix.clone();
        if !exts.is_empty() {
            content.extend(der::encode(0xa3, &der::encode(der::SEQUENCE, &exts)));
        }
        der::encode(der::SEQUENCE, &content)
    }
}

/// A trusted chain: `certs[0]` is closest to the leaf, the last is the anchor.
#[derive(Debug, Clone)]
pub struct TrustedChain {
    pub certs: Vec<Certificate>,
    /// `link_ok[i]`: `certs[i]` is signed by `certs[i + 1]` (checked once at load;
    /// validity at the verification time is still checked on every call).
    link_ok: Vec<bool>,
}

impl TrustedChain {
    pub fn new(certs: Vec<Certificate>) -> TrustedChain {
        let link_ok = certs.windows(2).map(|w| w[0].signed_by(&w[1])).collect();
        TrustedChain { certs, link_ok }
    }
}

/// Validates `leaf` (plus optional untrusted extra certs that are never
/// anchors) up to the last certificate of `chain`, everything valid at `t`.
/// The leaf must carry `required_eku`. Returns the path (leaf first).
pub fn verify_path(
    leaf: &Certificate,
    chain: &TrustedChain,
    t: i64,
    required_eku: &str,
) -> Result<Vec<Certificate>, SigstoreError> {
    if !leaf.valid_at(t) {
        return Err(SigstoreError::failed(format!(
            "leaf certificate is not valid at {t} (valid {}..{})",
            leaf.not_before, leaf.not_after
        )));
    }
    if let Some(e) = leaf
        .extensions
        .iter()
        .find(|e| e.critical && !KNOWN_CRITICAL.contains(&e.oid.as_str()))
    {
        return Err(SigstoreError::failed(format!(
            "leaf certificate has an unhandled critical extension {}",
            e.oid
        )));
    }
    if leaf.is_ca() {
        return Err(SigstoreError::failed(
            "leaf certificate is a CA certificate",
        ));
    }
    let ekus = leaf.ext_key_usages()?;
    if !ekus.iter().any(|e| e == required_eku) {
        return Err(SigstoreError::failed(format!(
            "leaf certificate lacks extended key usage {required_eku}"
        )));
    }
    let Some(anchor) = chain.certs.last() else {
        return Err(SigstoreError::unusable(
            "trusted root has an empty certificate chain",
        ));
    };
    // Walk upward: at each step the issuer must be the next certificate of the
    // trusted chain (or any later one), signature and validity checked.
    let mut path = vec![leaf.clone()];
    let mut current = leaf;
    let mut current_idx: Option<usize>;
    // If the leaf itself is in the trusted chain (TSA leaf), start after it.
    let start = chain
        .certs
        .iter()
        .position(|c| c.der == leaf.der)
        .map(|i| i + 1)
        .unwrap_or(0);
    current_idx = start.checked_sub(1);
    if start == chain.certs.len() {
        // The leaf is the anchor itself.
        return Ok(path);
    }
    for (i, cand) in chain.certs.iter().enumerate().skip(start) {
        if path.len() > MAX_CHAIN_DEPTH {
            return Err(SigstoreError::failed("certificate chain too long"));
        }
        let cached = current_idx
            .filter(|c| c + 1 == i)
            .and_then(|c| chain.link_ok.get(c).copied());
        let signed = match cached {
            Some(ok) => ok,
            None => current.signed_by(cand),
        };
        if !signed {
            if i + 1 == chain.certs.len() {
                return Err(SigstoreError::failed(
                    "certificate does not chain to the trusted root",
                ));
            }
            continue;
        }
        if !cand.valid_at(t) {
            return Err(SigstoreError::failed(format!(
                "CA certificate is not valid at {t}"
            )));
        }
        if !cand.is_ca() {
            return Err(SigstoreError::failed("issuer certificate is not a CA"));
        }
        path.push(cand.clone());
        current = cand;
        current_idx = Some(i);
        if cand.der == anchor.der {
            return Ok(path);
        }
    }
    Err(SigstoreError::failed(
        "certificate does not chain to the trusted root",
    ))
}
