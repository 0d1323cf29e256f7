//! Embedded Signed Certificate Timestamps (RFC 6962 §3.2/§3.3): reads the
//! SCT list extension of a Fulcio leaf with `x509-cert`'s SCT support and
//! verifies each SCT over the precertificate entry with trusted-root CT log
//! keys (through stella-crypto). No TLS or OCSP SCTs.

use der::Decode;
use stella_crypto::x509::Certificate;
use stella_types::digest::sha256_bytes;
use x509_cert::ext::pkix::sct::{
    HashAlgorithm as SctHash, SignedCertificateTimestamp, SignedCertificateTimestampList,
};

use crate::error::SigstoreError;
use crate::fulcio::OID_SCT_LIST;
use crate::hash::HashAlg;
use crate::trust_root::TrustedRoot;

fn parse_list(ext_value: &[u8]) -> Result<Vec<SignedCertificateTimestamp>, SigstoreError> {
    let bad = |e: &dyn std::fmt::Debug| SigstoreError::unusable(format!("SCT list: {e:?}"));
    let list = SignedCertificateTimestampList::from_der(ext_value).map_err(|e| bad(&e))?;
    let serialized = list.parse_timestamps().map_err(|e| bad(&e))?;
    // An SCT of an unknown version or algorithm is skipped, not fatal.
    Ok(serialized
        .iter()
        .filter_map(|s| s.parse_timestamp().ok())
        .collect())
}

/// The `digitally-signed` input of a precertificate SCT (RFC 6962 §3.2).
fn signed_input(
    sct: &SignedCertificateTimestamp,
    issuer_key_hash: &[u8; 32],
    tbs: &[u8],
) -> Option<Vec<u8>> {
    let tbs_len = u32::try_from(tbs.len()).ok().filter(|l| *l < (1 << 24))?;
    let extensions = sct.extensions.as_slice();
    let ext_len = u16::try_from(extensions.len()).ok()?;
    let mut msg = Vec::with_capacity(tbs.len() + 64);
    msg.push(0); // version v1
    msg.push(0); // certificate_timestamp
    msg.extend_from_slice(&sct.timestamp.to_be_bytes());
    msg.extend_from_slice(&[0, 1]); // precert_entry
    msg.extend_from_slice(issuer_key_hash);
    msg.extend_from_slice(tbs_len.to_be_bytes().get(1..)?);
    msg.extend_from_slice(tbs);
    msg.extend_from_slice(&ext_len.to_be_bytes());
    msg.extend_from_slice(extensions);
    Some(msg)
}

/// Verifies that `leaf` carries at least one valid SCT from a trusted CT log.
/// `issuer` is the certificate that issued the leaf.
pub fn verify_embedded(
    leaf: &Certificate,
    issuer: &Certificate,
    root: &TrustedRoot,
) -> Result<(), SigstoreError> {
    let (_, ext_value) = leaf
        .extension(&OID_SCT_LIST)
        .ok_or_else(|| SigstoreError::failed("certificate has no embedded SCT"))?;
    let scts = parse_list(ext_value)?;
    let tbs = leaf.tbs_der_without_extension(&OID_SCT_LIST)?;
    let issuer_key_hash = sha256_bytes(issuer.public_key()?.spki_der());
    for sct in &scts {
        let Some(log) = root.ctlog_by_id(&sct.log_id.key_id) else {
            continue;
        };
        let t = i64::try_from(sct.timestamp / 1000).unwrap_or(i64::MAX);
        if !log.valid_for.contains(t) {
            continue;
        }
        let hash = match sct.signature.algorithm.hash {
            SctHash::Sha256 => HashAlg::Sha256,
            SctHash::Sha384 => HashAlg::Sha384,
            SctHash::Sha512 => HashAlg::Sha512,
            _ => continue,
        };
        let Some(alg) = log.signature_algorithm(hash.to_crypto()) else {
            continue;
        };
        let Some(msg) = signed_input(sct, &issuer_key_hash, &tbs) else {
            continue;
        };
        if log
            .key
            .verify(alg, &msg, sct.signature.signature.as_slice())
            .is_ok()
        {
            return Ok(());
        }
    }
    Err(SigstoreError::failed(
        "no embedded SCT verifies with a trusted CT log key",
    ))
}
