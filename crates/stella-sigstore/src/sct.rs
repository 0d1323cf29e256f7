//! Embedded Signed Certificate Timestamps (RFC 6962 §3.2/§3.3): parses the
//! SCT list extension of a Fulcio leaf and verifies each SCT over the
//! precertificate entry with trusted-root CT log keys. No TLS or OCSP SCTs.

use crate::der;
use crate::error::SigstoreError;
use crate::keys::{HashAlg, sha256};
use crate::trust_root::TrustedRoot;
use crate::x509::{Certificate, OID_SCT_LIST};

struct Sct<'a> {
    log_id: &'a [u8],
    timestamp_ms: u64,
    extensions: &'a [u8],
    hash: u8,
    signature: &'a [u8],
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SigstoreError> {
        if self.0.len() < n {
            return Err(SigstoreError::unusable("SCT list: truncated"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, SigstoreError> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }
    fn u16(&mut self) -> Result<usize, SigstoreError> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }
    fn vec16(&mut self) -> Result<&'a [u8], SigstoreError> {
        let n = self.u16()?;
        self.take(n)
    }
}

fn parse_list(ext: &[u8]) -> Result<Vec<Sct<'_>>, SigstoreError> {
    let inner = der::parse_one(ext, der::OCTET_STRING)?.value;
    let mut c = Cursor(inner);
    let list = c.vec16()?;
    if !c.0.is_empty() {
        return Err(SigstoreError::unusable("SCT list: trailing bytes"));
    }
    let mut lc = Cursor(list);
    let mut out = Vec::new();
    while !lc.0.is_empty() {
        let one = lc.vec16()?;
        let mut s = Cursor(one);
        let version = s.u8()?;
        if version != 0 {
            continue;
        }
        let log_id = s.take(32)?;
        let ts = s.take(8)?;
        let timestamp_ms =
            u64::from_be_bytes([ts[0], ts[1], ts[2], ts[3], ts[4], ts[5], ts[6], ts[7]]);
        let extensions = s.vec16()?;
        let hash = s.u8()?;
        let _sig_alg = s.u8()?;
        let signature = s.vec16()?;
        out.push(Sct {
            log_id,
            timestamp_ms,
            extensions,
            hash,
            signature,
        });
    }
    Ok(out)
}

/// Verifies that `leaf` carries at least one valid SCT from a trusted CT log.
/// `issuer` is the certificate that issued the leaf.
pub fn verify_embedded(
    leaf: &Certificate,
    issuer: &Certificate,
    root: &TrustedRoot,
) -> Result<(), SigstoreError> {
    let ext = leaf
        .extension(OID_SCT_LIST)
        .ok_or_else(|| SigstoreError::failed("certificate has no embedded SCT"))?;
    let scts = parse_list(&ext.value)?;
    let tbs = leaf.precert_tbs();
    let issuer_key_hash = sha256(&issuer.public_key.spki);
    let tbs_len =
        u32::try_from(tbs.len()).map_err(|_| SigstoreError::unusable("certificate too large"))?;
    let ext_len =
        u16::try_from(scts.first().map(|s| s.extensions.len()).unwrap_or(0)).unwrap_or(u16::MAX);
    let _ = ext_len;
    for s in &scts {
        let Some(log) = root.ctlog_by_id(s.log_id) else {
            continue;
        };
        let t = i64::try_from(s.timestamp_ms / 1000).unwrap_or(i64::MAX);
        if !log.valid_for.contains(t) {
            continue;
        }
        let hash = match s.hash {
            4 => HashAlg::Sha256,
            5 => HashAlg::Sha384,
            6 => HashAlg::Sha512,
            _ => continue,
        };
        let mut msg = Vec::with_capacity(tbs.len() + 64);
        msg.push(0); // version v1
        msg.push(0); // certificate_timestamp
        msg.extend_from_slice(&s.timestamp_ms.to_be_bytes());
        msg.extend_from_slice(&[0, 1]); // precert_entry
        msg.extend_from_slice(&issuer_key_hash);
        msg.extend_from_slice(&tbs_len.to_be_bytes()[1..]);
        msg.extend_from_slice(&tbs);
        let el = u16::try_from(s.extensions.len()).unwrap_or(u16::MAX);
        msg.extend_from_slice(&el.to_be_bytes());
        msg.extend_from_slice(s.extensions);
        if log.key.verify(hash, &msg, s.signature) {
            return Ok(());
        }
    }
    Err(SigstoreError::failed(
        "no embedded SCT verifies with a trusted CT log key",
    ))
}
