//! RFC 3161 timestamps: parses a TimeStampResp or a bare TimeStampToken
//! (CMS SignedData over TSTInfo, RFC 5652) and verifies it against the
//! trusted root's timestamp authorities: signature (signed attributes and
//! messageDigest), message imprint over the artifact signature, signer
//! certificate chained to a trusted TSA at genTime, genTime inside the TSA's
//! validity window. Does not check nonces or policies (offline use).

use crate::der::{self, Tlv};
use crate::error::SigstoreError;
use crate::keys::{self, HashAlg};
use crate::trust_root::TrustedRoot;
use crate::x509::{self, Certificate};

const OID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
const OID_TST_INFO: &str = "1.2.840.113549.1.9.16.1.4";
const OID_CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
const OID_MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";

fn bad(m: &str) -> SigstoreError {
    SigstoreError::unusable(format!("RFC 3161 timestamp: {m}"))
}

struct SignerInfo<'a> {
    issuer: Option<&'a [u8]>,
    serial: Option<&'a [u8]>,
    ski: Option<&'a [u8]>,
    digest_alg: HashAlg,
    signed_attrs: Option<Tlv<'a>>,
    sig_alg: String,
    signature: &'a [u8],
}

/// A parsed token.
pub struct Token<'a> {
    tst_info: &'a [u8],
    certs: Vec<Certificate>,
    signer: SignerInfo<'a>,
    pub gen_time: i64,
    imprint_alg: HashAlg,
    imprint: &'a [u8],
}

fn content_info(bytes: &[u8]) -> Result<Tlv<'_>, SigstoreError> {
    let outer = der::parse_one(bytes, der::SEQUENCE)?;
    let mut r = outer.reader();
    if r.peek_tag() == Some(der::SEQUENCE) {
        // TimeStampResp ::= SEQUENCE { status PKIStatusInfo, timeStampToken ContentInfo OPTIONAL }
        let status = r.read_tag(der::SEQUENCE)?;
        let mut sr = status.reader();
        let st = sr.read_tag(der::INTEGER)?;
        if !(st.value == [0] || st.value == [1]) {
            return Err(bad("response status is not granted"));
        }
        let token = r.read_tag(der::SEQUENCE)?;
        r.finish()?;
        Ok(token)
    } else {
        Ok(outer)
    }
}

pub fn parse(bytes: &[u8]) -> Result<Token<'_>, SigstoreError> {
    let ci = content_info(bytes)?;
    let mut r = ci.reader();
    if der::read_oid(&mut r)? != OID_SIGNED_DATA {
        return Err(bad("not CMS SignedData"));
    }
    let sd_wrap = r.read_tag(0xa0)?;
    let sd = der::parse_one(sd_wrap.value, der::SEQUENCE)?;
    let mut sr = sd.reader();
    sr.read_tag(der::INTEGER)?;
    sr.read_tag(der::SET)?;
    let encap = sr.read_tag(der::SEQUENCE)?;
    let mut er = encap.reader();
    if der::read_oid(&mut er)? != OID_TST_INFO {
        return Err(bad("content is not TSTInfo"));
    }
    let ec = er.read_tag(0xa0)?;
    let tst_info = der::parse_one(ec.value, der::OCTET_STRING)?.value;
    let mut certs = Vec::new();
    if let Some(cs) = sr.read_optional(0xa0)? {
        let mut cr = cs.reader();
        while !cr.is_empty() {
            let c = cr.read()?;
            if c.tag == der::SEQUENCE && certs.len() < 16 {
                certs.push(Certificate::from_der(c.raw)?);
            }
        }
    }
    sr.read_optional(0xa1)?;
    let infos = sr.read_tag(der::SET)?;
    let mut ir = infos.reader();
    let si = ir.read_tag(der::SEQUENCE)?;
    if !ir.is_empty() {
        return Err(bad("more than one SignerInfo"));
    }
    let mut s = si.reader();
    s.read_tag(der::INTEGER)?;
    let sid = s.read()?;
    let (issuer, serial, ski) = match sid.tag {
        der::SEQUENCE => {
            let mut x = sid.reader();
            let iss = x.read_tag(der::SEQUENCE)?.raw;
            let ser = x.read_tag(der::INTEGER)?.value;
            (Some(iss), Some(ser), None)
        }
        0x80 => (None, None, Some(sid.value)),
        _ => return Err(bad("unknown signer identifier")),
    };
    let (dalg, _) = keys::read_alg_id(&mut s)?;
    let digest_alg = HashAlg::from_oid(&dalg).ok_or_else(|| bad("unsupported digest algorithm"))?;
    let signed_attrs = s.read_optional(0xa0)?;
    let (sig_alg, _) = keys::read_alg_id(&mut s)?;
    let signature = s.read_tag(der::OCTET_STRING)?.value;

    // TSTInfo
    let tst = der::parse_one(tst_info, der::SEQUENCE)?;
    let mut tr = tst.reader();
    tr.read_tag(der::INTEGER)?;
    tr.read_tag(der::OID)?;
    let mi = tr.read_tag(der::SEQUENCE)?;
    let mut mr = mi.reader();
    let (ialg, _) = keys::read_alg_id(&mut mr)?;
    let imprint_alg =
        HashAlg::from_oid(&ialg).ok_or_else(|| bad("unsupported message imprint algorithm"))?;
    let imprint = mr.read_tag(der::OCTET_STRING)?.value;
    tr.read_tag(der::INTEGER)?;
    let gt = tr.read_tag(der::GENERALIZED_TIME)?;
    let gen_time = der::parse_time(&gt)?;
    Ok(Token {
        tst_info,
        certs,
        signer: SignerInfo {
            issuer,
            serial,
            ski,
            digest_alg,
            signed_attrs,
            sig_alg,
            signature,
        },
        gen_time,
        imprint_alg,
        imprint,
    })
}

fn strip_int(v: &[u8]) -> &[u8] {
    let mut v = v;
    while v.len() > 1 && v.first() == Some(&0) {
        v = v.get(1..).unwrap_or(v);
    }
    v
}

fn matches_sid(c: &Certificate, s: &SignerInfo<'_>) -> bool {
    if let (Some(i), Some(ser)) = (s.issuer, s.serial) {
        return c.issuer == i && strip_int(&c.serial) == strip_int(ser);
    }
    if let Some(ski) = s.ski {
        if let Some(e) = c.extension("2.5.29.14") {
            if let Ok(o) = der::parse_one(&e.value, der::OCTET_STRING) {
                return o.value == ski;
            }
        }
    }
    false
}

impl Token<'_> {
    /// Checks the CMS signature with `cert`'s key.
    fn signature_ok(&self, cert: &Certificate) -> Result<bool, SigstoreError> {
        let s = &self.signer;
        let signed: Vec<u8> = match &s.signed_attrs {
            None => self.tst_info.to_vec(),
            Some(attrs) => {
                let mut md_ok = false;
                let mut ct_ok = false;
                let mut ar = attrs.reader();
                while !ar.is_empty() {
                    let a = ar.read_tag(der::SEQUENCE)?;
                    let mut x = a.reader();
                    let oid = der::read_oid(&mut x)?;
                    let vals = x.read_tag(der::SET)?;
                    let mut vr = vals.reader();
                    if oid == OID_MESSAGE_DIGEST {
                        let v = vr.read_tag(der::OCTET_STRING)?;
                        md_ok = v.value == s.digest_alg.digest(self.tst_info).as_slice();
                    } else if oid == OID_CONTENT_TYPE {
                        ct_ok = der::read_oid(&mut vr)? == OID_TST_INFO;
                    }
                }
                if !md_ok || !ct_ok {
                    return Ok(false);
                }
                let mut v = attrs.raw.to_vec();
                if let Some(first) = v.first_mut() {
                    *first = der::SET;
                }
                v
            }
        };
        Ok(keys::verify_by_oid(
            &cert.public_key,
            &s.sig_alg,
            Some(s.digest_alg),
            &signed,
            s.signature,
        ))
    }
}

/// Verifies one timestamp over `signature` and returns its genTime.
pub fn verify(bytes: &[u8], signature: &[u8], root: &TrustedRoot) -> Result<i64, SigstoreError> {
    let token = parse(bytes)?;
    if token.imprint != token.imprint_alg.digest(signature).as_slice() {
        return Err(SigstoreError::failed(
            "RFC 3161 timestamp: message imprint does not match the signature",
        ));
    }
    let t = token.gen_time;
    let mut last =
        SigstoreError::failed("RFC 3161 timestamp: not issued by a trusted timestamp authority");
    for tsa in &root.timestamp_authorities {
        // Candidate signer certificates: the trusted chain's own certificates
        // and those embedded in the token (only ever as leaves, never anchors).
        let candidates = tsa
            .chain
            .certs
            .iter()
            .chain(token.certs.iter())
            .filter(|c| matches_sid(c, &token.signer));
        for cand in candidates {
            if !token.signature_ok(cand)? {
                last = SigstoreError::failed("RFC 3161 timestamp: signature does not verify");
                continue;
            }
            if let Err(e) = x509::verify_path(cand, &tsa.chain, t, x509::OID_EKU_TIME_STAMPING) {
                last = e.context("RFC 3161 timestamp authority certificate");
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
