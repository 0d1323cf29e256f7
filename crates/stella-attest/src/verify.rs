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
//!
//! Keyless: when [`TrustPolicy::keyless`] is set, a sigstore bundle signed
//! with a certificate goes to [`crate::keyless::verify_keyless`] instead
//! (Fulcio chain, SCT, Rekor entries, identity policy and subject, checked
//! by `stella_sigstore`), falling back to the CA path only when
//! `ca_roots` are also given. Pinned-checkpoint anchoring is reported in
//! [`AttestationVerdict::anchors`].
//!
//! The container format comes from the one classifier,
//! [`stella_types::media_types::AttestationFormat`]: by media type, or by
//! content when the media type is not a signed container. Reasons name the
//! trust material in the caller's words ([`TrustWords`]), never a
//! command-line flag of their own.

use std::time::SystemTime;

use stella_crypto::PublicKey;
use stella_crypto::x509::{self, Certificate, ChainOptions};
use stella_types::Digest;
use stella_types::limits::MAX_JSON_DOCUMENT_BYTES;
use stella_types::media_types::AttestationFormat;

use crate::AttestError;
use crate::bundle::{Bundle, SignerMaterial};
use crate::dsse::Envelope;
use crate::keyless::{
    KeylessTrust, ProofAnchor, is_certificate_bundle, unverified_entries, verify_keyless,
};
use crate::sign::IN_TOTO_PAYLOAD_TYPE;
use crate::statement::Statement;

/// DSSE envelope media type.
pub const DSSE_ENVELOPE: &str = stella_types::media_types::DSSE_ENVELOPE;

/// What the caller calls each kind of trust material, for reasons shown to
/// people: a command line names its flags (`--key`), a server its
/// configuration fields. The defaults are plain words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustWords {
    /// Trusted public keys ("no {key} was given").
    pub key: String,
    /// Trusted CA roots ("no {ca_root} was given").
    pub ca_root: String,
    /// "nor does it verify with {via_ca_root}".
    pub via_ca_root: String,
}

impl Default for TrustWords {
    fn default() -> Self {
        TrustWords {
            key: "trusted key".into(),
            ca_root: "trusted CA root".into(),
            via_ca_root: "a trusted CA root".into(),
        }
    }
}

/// What the verifier trusts.
#[derive(Debug, Clone, Default)]
pub struct TrustPolicy {
    /// Trusted public keys.
    pub keys: Vec<PublicKey>,
    /// Trusted organisation CA certificates (the only anchors).
    pub ca_roots: Vec<Certificate>,
    /// Time at which certificate chains must be valid; `None` = now.
    pub verification_time: Option<SystemTime>,
    /// Keyless (Fulcio + Rekor) trust: certificate-signed sigstore bundles go
    /// to `stella_sigstore` with this trusted root and identity policy.
    pub keyless: Option<KeylessTrust>,
    /// How reasons name the trust material.
    pub words: TrustWords,
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
    /// When a checkpoint was pinned (`policy.keyless.checkpoint`): how each
    /// transparency-log entry of a verified attestation anchors to it.
    pub anchors: Vec<ProofAnchor>,
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
        anchors: Vec::new(),
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
    if policy.keys.is_empty() && policy.ca_roots.is_empty() && policy.keyless.is_none() {
        return fail(
            FailureKind::Unusable,
            "no trusted key, CA or keyless trusted root given".into(),
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
    // Keyless: a certificate-signed sigstore bundle, when a trusted root is
    // given. Decided by the document's shape, so a bundle the sigstore
    // parser refuses gets that parser's reason, not "not keyless".
    let keyless_failure = match &policy.keyless {
        Some(k) if is_certificate_bundle(bytes) => {
            let v = keyless_verdict(bytes, subject, k);
            // A --trust-root may still vouch for an organisation certificate.
            if v.verified || policy.ca_roots.is_empty() {
                return v;
            }
            Some(v)
        }
        _ => None,
    };
    let verdict = verify_key_or_pki(bytes, media_type, subject, policy);
    match keyless_failure {
        Some(mut k) if !verdict.verified => {
            k.reason = format!(
                "{}; nor does it verify with {}: {}",
                k.reason, policy.words.via_ca_root, verdict.reason
            );
            k
        }
        _ => verdict,
    }
}

fn keyless_verdict(bytes: &[u8], subject: &Digest, trust: &KeylessTrust) -> AttestationVerdict {
    let claimed = crate::bundle::Bundle::parse(bytes)
        .ok()
        .and_then(|b| claimed_predicate_type(&b.envelope.payload));
    match verify_keyless(bytes, subject, trust) {
        Ok(v) => {
            let r = &v.result;
            let signer = match (&r.identity, &r.issuer) {
                (Some(id), Some(iss)) => format!("{id} (issuer {iss})"),
                (Some(id), None) => id.clone(),
                _ => format!("key sha256:{}", r.key_sha256),
            };
            AttestationVerdict {
                verified: true,
                predicate_type: r.predicate_type.clone(),
                claimed_predicate_type: claimed,
                signer: Some(signer),
                reason: format!(
                    "keyless: Fulcio certificate, {} transparency-log entr{} and identity verified offline against the trusted root",
                    r.tlog_entries.len(),
                    if r.tlog_entries.len() == 1 {
                        "y"
                    } else {
                        "ies"
                    }
                ),
                failure: None,
                anchors: v.anchors,
            }
        }
        Err(e) => {
            let kind = if e.is_unusable() {
                FailureKind::Unusable
            } else {
                FailureKind::Failed
            };
            fail(kind, format!("keyless: {e}"), claimed, None)
        }
    }
}

/// Key- or CA-signed attestation (the pre-keyless path).
fn verify_key_or_pki(
    bytes: &[u8],
    media_type: &str,
    subject: &Digest,
    policy: &TrustPolicy,
) -> AttestationVerdict {
    let words = &policy.words;
    // Parse the container: by media type, else by content.
    let parsed = match container_format(bytes, media_type) {
        AttestationFormat::SigstoreBundle { .. } => {
            Bundle::parse(bytes).map(|b| (b.envelope, b.signer, b.tlog_entries))
        }
        AttestationFormat::DsseEnvelope => {
            Envelope::parse(bytes).map(|e| (e, SignerMaterial::PublicKey { hint: None }, 0))
        }
        AttestationFormat::InTotoStatement => {
            return fail(
                FailureKind::Failed,
                "an unsigned in-toto statement (no DSSE envelope or sigstore bundle)".into(),
                claimed_predicate_type(bytes),
                None,
            );
        }
        AttestationFormat::NotAttestation => {
            return fail(
                FailureKind::Unusable,
                format!("media type {media_type:?} is not a DSSE envelope or sigstore bundle"),
                None,
                None,
            );
        }
    };
    let (envelope, signer_material, tlog) = match parsed {
        Ok(p) => p,
        Err(e) => return fail(classify(&e), e.to_string(), None, None),
    };
    if policy.keys.is_empty() && policy.ca_roots.is_empty() {
        return fail(
            FailureKind::Failed,
            format!(
                "not a keyless (certificate) sigstore bundle, and no {} or {} was given",
                words.key, words.ca_root
            ),
            None,
            None,
        );
    }
    let claimed = claimed_predicate_type(&envelope.payload);
    match verify_parsed(&envelope, &signer_material, subject, policy) {
        Ok((statement, signer, note)) => AttestationVerdict {
            verified: true,
            predicate_type: Some(statement.predicate_type.clone()),
            claimed_predicate_type: claimed,
            signer: Some(signer),
            reason: note,
            failure: None,
            // Log entries of key/PKI bundles are not verified: never anchored.
            anchors: match policy.keyless.as_ref().and_then(|k| k.checkpoint.as_ref()) {
                Some(_) => unverified_entries(tlog),
                None => Vec::new(),
            },
        },
        Err((e, signer)) => fail(classify(&e), e.to_string(), claimed, signer),
    }
}

/// The container format of an attestation document: its media type's,
/// unless that is not a signed container (a generic layer type, an in-toto
/// type holding an envelope), then its content's.
pub fn container_format(bytes: &[u8], media_type: &str) -> AttestationFormat {
    match AttestationFormat::of_media_type(media_type) {
        f if f.is_signed() => f,
        declared => match AttestationFormat::of_content(bytes) {
            AttestationFormat::NotAttestation => declared,
            sniffed => sniffed,
        },
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
                    AttestError::Untrusted(format!(
                        "signed with a key, but no {} was given (only CA roots)",
                        policy.words.key
                    )),
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
                    AttestError::Untrusted(format!(
                        "signed with a certificate, but no {} was given",
                        policy.words.ca_root
                    )),
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
