//! The signed report: a DSSE envelope whose payloadType is
//! [`REPORT_PAYLOAD_TYPE`] and whose payload is the report's canonical JSON
//! bytes, and the `{report, dsse}` object the CLI and the API print.
//!
//! Verification ([`verify_signed`]) fails closed: exactly one signature,
//! verified by one of the given keys (the envelope's `keyid` is a hint
//! only), the payload type must match, the payload must be canonical JSON
//! (re-canonicalising it gives the same bytes), and when the object also
//! carries `report`, its canonical bytes must equal the payload.

use serde_json::Value;
use stella_attest::dsse::Envelope;
use stella_crypto::{PrivateKey, PublicKey};
use stella_types::canonical_json;

use crate::report::ImageReport;

/// `payloadType` of the report envelope (the API reference's).
pub const REPORT_PAYLOAD_TYPE: &str = "application/vnd.stellaops.report+json";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    #[error("cannot sign the report: {0}")]
    Sign(String),
    #[error("not a signed report: {0}")]
    Malformed(String),
    #[error("report envelope payloadType is {0:?}, not {REPORT_PAYLOAD_TYPE:?}")]
    PayloadType(String),
    #[error("report signature does not verify with the given key(s): {0}")]
    Signature(String),
    #[error("report payload is not canonical JSON (it was changed after signing)")]
    NotCanonical,
    #[error("the report shown next to the envelope differs from the signed payload")]
    ReportMismatch,
}

/// Signs the report's canonical bytes.
pub fn sign_report(report: &ImageReport, key: &PrivateKey) -> Result<Envelope, SignError> {
    let keyid = stella_attest::sign::key_hint(key.public_key());
    Envelope::sign(
        REPORT_PAYLOAD_TYPE,
        report.to_canonical_json(),
        key,
        Some(keyid),
    )
    .map_err(|e| SignError::Sign(e.to_string()))
}

/// The `{report, dsse}` object, canonical JSON (`dsse` absent when
/// unsigned). Both members are canonical already and `dsse` sorts before
/// `report`, so the object is their concatenation.
pub fn signed_output(
    report: &ImageReport,
    envelope: Option<&Envelope>,
) -> Result<Vec<u8>, SignError> {
    let body = report.canonical_bytes();
    let mut out = Vec::with_capacity(body.len() * 2 + 64);
    out.push(b'{');
    if let Some(env) = envelope {
        out.extend_from_slice(b"\"dsse\":");
        out.extend_from_slice(&env.to_json().map_err(|e| SignError::Sign(e.to_string()))?);
        out.push(b',');
    }
    out.extend_from_slice(b"\"report\":");
    out.extend_from_slice(body);
    out.push(b'}');
    Ok(out)
}

/// Verifies a `{report, dsse}` object (or a bare envelope) and returns the
/// signed report as JSON.
pub fn verify_signed(json: &[u8], keys: &[PublicKey]) -> Result<Value, SignError> {
    let doc: Value =
        serde_json::from_slice(json).map_err(|e| SignError::Malformed(format!("not JSON: {e}")))?;
    let (env_value, shown) = match doc.get("dsse") {
        Some(d) => (d.clone(), doc.get("report")),
        None if doc.get("payloadType").is_some() => (doc.clone(), None),
        None => {
            return Err(SignError::Malformed(
                "no dsse envelope (the report was not signed: use --sign-key)".into(),
            ));
        }
    };
    let env_bytes =
        serde_json::to_vec(&env_value).map_err(|e| SignError::Malformed(e.to_string()))?;
    let envelope = Envelope::parse(&env_bytes).map_err(|e| SignError::Malformed(e.to_string()))?;
    if envelope.payload_type != REPORT_PAYLOAD_TYPE {
        return Err(SignError::PayloadType(envelope.payload_type.clone()));
    }
    envelope
        .verify_single(keys)
        .map_err(|e| SignError::Signature(e.to_string()))?;
    let payload = envelope.payload_bytes();
    let parsed: Value = serde_json::from_slice(payload)
        .map_err(|e| SignError::Malformed(format!("payload is not JSON: {e}")))?;
    let canonical = canonical_json::canonicalize(&parsed).map_err(|_| SignError::NotCanonical)?;
    if canonical != payload {
        return Err(SignError::NotCanonical);
    }
    if let Some(shown) = shown {
        let shown = canonical_json::canonicalize(shown).map_err(|_| SignError::ReportMismatch)?;
        if shown != payload {
            return Err(SignError::ReportMismatch);
        }
    }
    Ok(parsed)
}
