//! Verifying one attestation artifact (sigstore bundle or plain DSSE
//! envelope) against a [`TrustPolicy`] and the image digest it must be about.
//!
//! Steps, in order (DSSE protocol.md "Verification", in-toto
//! docs/validation.md): size cap → parse container → payloadType must be
//! `application/vnd.in-toto+json` → exactly one signature → establish the
//! signer (a trusted key; or a certificate chained to a `--trust-root` CA at
//! verification time) → verify the signature over PAE → parse the statement
//! from **the verified payload bytes** → validate it → require a subject whose
//! digest equals the image digest.
//!
//! Certificates carried inside the evidence are only ever intermediates,
//! never trust anchors. Certificate validity is checked at the policy's
//! verification time (default: now) because key/PKI signatures carry no
//! trusted timestamp; the verdict says so. Never panics.

use std::time::SystemTime;

use stella_crypto::PublicKey;
use stella_crypto::x509::{self, Certificate, ChainOptions};
use stella_types::Digest;
use stella_types::limits::MAX_JSON_DOCUMENT_BYTES;

use crate::AttestError;
use crate::bundle::{Bundle, SignerMaterial, is_bundle_media_type};
use crate::dsse::Envelope;
use crate::sign::IN_TOTO_PAYLOAD_TYPE;
use crate::statement::Statement;

/// DSSE envelope media type.
pub const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";

/// What the verifier trusts.
#[derive(Debug, Clone, Default)]
pub struct TrustPolicy {
    /// Trusted public keys.
    pub keys: Vec<PublicKey>,
    /// Trusted organisation CA certificates (the only anchors).
    pub ca_roots: Vec<Certificate>,
    /// Time at which certificate chains must be valid; `None` = now.
    pub verification_time: Option<SystemTime>,
}

/// Why an attestation did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The bytes are not a usable attestation (malformed container, unknown
    /// media type) or the policy trusts nothing.
    Unusable,
    /// A well-formed attestation that failed verification.
    Failed,
}

/// The verdict on one attestation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AttestationVerdict {
    /// True when every check passed.
    pub verified: bool,
    /// The verified statement's predicateType (only when verified).
    pub predicate_type: Option<String>,
    /// The predicateType the payload claims, read without trusting it (for
    /// display and filtering of failures).
    pub claimed_predicate_type: Option<String>,
    /// Who signed (`key <sha256 of SPKI>` or the certificate subject), when established.
    pub signer: Option<String>,
    /// One-line reason.
    pub reason: String,
    /// Failure class; `None` when verified.
    pub failure: Option<FailureKind>,
}

fn fail(
    kind: FailureKind,
    reason: String,
    claimed: Option<String>,
    signer: Option<String>,
) -> AttestationVerdict {
    AttestationVerdict {
        verified: false,
        predicate_type: None,
        claimed_predicate_type: claimed,
        signer,
        reason,
        failure: Some(kind),
    }
}

fn classify(e: &AttestError) -> FailureKind {
    match e {
        AttestError::Malformed { .. } | AttestError::TooLarge { .. } | AttestError::Encode(_) => {
            FailureKind::Unusable
        }
        _ => FailureKind::Failed,
    }
}

/// Reads the predicateType a payload claims, without trusting it.
pub fn claimed_predicate_type(payload: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    v.get("predicateType")?.as_str().map(str::to_string)
}

fn rfc3339(t: SystemTime) -> String {
    let odt = time::OffsetDateTime::from(t);
    stella_types::timestamp::rfc3339(odt)
}

/// Verifies one attestation artifact whose statement must bind to `subject`.
pub fn verify_attestation(
    bytes: &[u8],
    media_type: &str,
    subject: &Digest,
    policy: &TrustPolicy,
) -> AttestationVerdict {
    if policy.keys.is_empty() && policy.ca_roots.is_empty() {
        return fail(
            FailureKind::Unusable,
            "no trusted key or CA given".into(),
            None,
            None,
        );
    }
    if bytes.len() as u64 > MAX_JSON_DOCUMENT_BYTES {
        return fail(
            FailureKind::Unusable,
            format!(
                "attestation is {} bytes, over the {MAX_JSON_DOCUMENT_BYTES}-byte limit",
                bytes.len()
            ),
            None,
            None,
        );
    }
    // Parse the container: by media type, else sniff.
    let parsed = if is_bundle_media_type(media_type) {
        Bundle::parse(bytes).map(|b| (b.envelope, b.signer, b.tlog_entries))
    } else if media_type == DSSE_ENVELOPE {
        Envelope::parse(bytes).map(|e| (e, SignerMaterial::PublicKey { hint: None }, 0))
    } else {
        match serde_json::from_slice::<serde_json::Value>(bytes) {
            Ok(v) if v.get("dsseEnvelope").is_some() => {
                Bundle::parse(bytes).map(|b| (b.envelope, b.signer, b.tlog_entries))
            }
            Ok(v) if v.get("payloadType").is_some() => {
                Envelope::parse(bytes).map(|e| (e, SignerMaterial::PublicKey { hint: None }, 0))
            }
            _ => {
                return fail(
                    FailureKind::Unusable,
                    format!("media type {media_type:?} is not a DSSE envelope or sigstore bundle"),
                    None,
                    None,
                );
            }
        }
    };
    let (envelope, signer_material, _tlog) = match parsed {
        Ok(p) => p,
        Err(e) => return fail(classify(&e), e.to_string(), None, None),
    };
    let claimed = claimed_predicate_type(&envelope.payload);
    match verify_parsed(&envelope, &signer_material, subject, policy) {
        Ok((statement, signer, note)) => AttestationVerdict {
            verified: true,
            predicate_type: Some(statement.predicate_type.clone()),
            claimed_predicate_type: claimed,
            signer: Some(signer),
            reason: note,
            failure: None,
        },
        Err((e, signer)) => fail(classify(&e), e.to_string(), claimed, signer),
    }
}

type VerifyResult = Result<(Statement, String, String), (AttestError, Option<String>)>;

fn verify_parsed(
    envelope: &Envelope,
    material: &SignerMaterial,
    subject: &Digest,
    policy: &TrustPolicy,
) -> VerifyResult {
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err((
            AttestError::PayloadType {
                found: envelope.payload_type.clone(),
                expected: IN_TOTO_PAYLOAD_TYPE.into(),
            },
            None,
        ));
    }
    if envelope.signatures.len() != 1 {
        return Err((AttestError::SignatureCount(envelope.signatures.len()), None));
    }
    let (signer, note) = match material {
        SignerMaterial::PublicKey { .. } => {
            if policy.keys.is_empty() {
                return Err((
                    AttestError::Untrusted(
                        "signed with a key, but no --key was given (only CA roots)".into(),
                    ),
                    None,
                ));
            }
            let idx = envelope
                .verify_single(&policy.keys)
                .map_err(|e| (e, None))?;
            let keyid = policy.keys.get(idx).map(|k| k.keyid()).unwrap_or_default();
            (
                format!("key sha256:{keyid}"),
                "signature verified with a trusted key".to_string(),
            )
        }
        SignerMaterial::Certificates(ders) => {
            if policy.ca_roots.is_empty() {
                return Err((
                    AttestError::Untrusted(
                        "signed with a certificate, but no --trust-root was given".into(),
                    ),
                    None,
                ));
            }
            let certs: Vec<Certificate> = ders
                .iter()
                .map(|d| Certificate::from_der(d))
                .collect::<Result<_, _>>()
                .map_err(|e| (AttestError::from(e), None))?;
            let Some((leaf, intermediates)) = certs.split_first() else {
                return Err((AttestError::Untrusted("no certificate".into()), None));
            };
            let signer = format!("certificate {}", leaf.subject());
            let at = policy.verification_time.unwrap_or_else(SystemTime::now);
            let opts = ChainOptions::code_signing(at);
            let path = x509::verify_chain(leaf, intermediates, &policy.ca_roots, &opts)
                .map_err(|e| (AttestError::from(e), Some(signer.clone())))?;
            let key = leaf
                .public_key()
                .map_err(|e| (AttestError::from(e), Some(signer.clone())))?;
            envelope
                .verify_single(std::slice::from_ref(&key))
                .map_err(|e| (e, Some(signer.clone())))?;
            let root = path.last().map(|c| c.subject()).unwrap_or_default();
            (
                signer,
                format!(
                    "signature verified; certificate chain to trusted root {root} valid at verification time {} (no signed timestamp)",
                    rfc3339(at)
                ),
            )
        }
    };
    // Parse the same bytes that were verified.
    let statement = Statement::parse(&envelope.payload)
        .map_err(|e| (AttestError::from(e), Some(signer.clone())))?;
    if !statement.has_subject_digest(subject) {
        return Err((
            AttestError::SubjectMismatch {
                expected: subject.to_string(),
                found: statement.subject_digests().join(", "),
            },
            Some(signer),
        ));
    }
    Ok((statement, signer, note))
}
