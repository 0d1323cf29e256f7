//! Checking one attestation document against every named signer, so the
//! report can say exactly which policy signers vouch for it, and telling a
//! plain signature failure from evidence a trusted signer made about
//! another digest (without reading error texts).

use std::collections::BTreeSet;

use stella_attest::bundle::Bundle;
use stella_attest::dsse::Envelope;
use stella_attest::statement::Statement;
use stella_attest::verify::{container_format, verify_attestation};
use stella_types::Digest;
use stella_types::media_types::AttestationFormat;
use stella_verify::SignatureCheck;

use crate::trust::NamedSigner;

/// The statement an attestation container carries, parsed WITHOUT trusting
/// it: only used to learn which digests it claims to be about, which is then
/// confirmed by verifying the signature against exactly those digests.
pub(crate) fn claimed_statement(bytes: &[u8], media_type: &str) -> Option<Statement> {
    let envelope = match container_format(bytes, media_type) {
        AttestationFormat::SigstoreBundle { .. } => Bundle::parse(bytes).ok()?.envelope,
        AttestationFormat::DsseEnvelope => Envelope::parse(bytes).ok()?,
        AttestationFormat::InTotoStatement | AttestationFormat::NotAttestation => return None,
    };
    Statement::parse(envelope.payload_bytes()).ok()
}

/// The result of checking one attestation against every policy signer.
pub(crate) struct AttestationCheck {
    pub signature: SignatureCheck,
    /// The verified predicate type; for a failed signature, the claimed one
    /// (display only: failed evidence never satisfies a requirement).
    pub predicate_type: Option<String>,
    /// Set when a trusted signer DID sign the statement, but about other digests.
    pub other_subject: Option<String>,
}

/// Verifies an attestation against each signer separately.
///
/// Evidence "about another digest" is established without reading error
/// texts: when no signer verifies it for `about`, the statement's claimed
/// subjects are read and, if they do not include `about`, the signature is
/// verified again against those claimed digests. If a trusted signer did
/// sign that other statement, the evidence is rejected as being about
/// another digest; otherwise it is a plain signature failure.
pub(crate) fn check_attestation(
    bytes: &[u8],
    media_type: &str,
    about: &Digest,
    signers: &[NamedSigner],
) -> AttestationCheck {
    let claimed = claimed_statement(bytes, media_type);
    let claimed_type = claimed.as_ref().map(|s| s.predicate_type.clone());
    if signers.is_empty() {
        return AttestationCheck {
            signature: SignatureCheck::Failed {
                reason: "no trusted signer to check it against".into(),
            },
            predicate_type: claimed_type,
            other_subject: None,
        };
    }
    let mut verified_by = Vec::new();
    let mut verified_type = None;
    let mut logged = false;
    let mut reasons = BTreeSet::new();
    for s in signers {
        let v = verify_attestation(bytes, media_type, about, &s.trust);
        if v.verified {
            verified_by.push(s.name.clone());
            verified_type = v.predicate_type.clone();
            // The keyless engine accepts a bundle only with as many
            // verified transparency-log entries as its threshold says: at
            // least one unless the signer allows timestamp-only bundles
            // (then the evidence is not counted as logged, fail closed).
            logged |= s
                .trust
                .keyless
                .as_ref()
                .is_some_and(|k| k.verifier.config().tlog_threshold >= 1);
        } else {
            reasons.insert(v.reason);
        }
    }
    if !verified_by.is_empty() {
        verified_by.sort();
        return AttestationCheck {
            signature: SignatureCheck::Verified {
                signers: verified_by,
                transparency_log: logged,
            },
            predicate_type: verified_type,
            other_subject: None,
        };
    }
    let reason = reasons.into_iter().collect::<Vec<_>>().join("; ");
    AttestationCheck {
        signature: SignatureCheck::Failed { reason },
        predicate_type: claimed_type,
        other_subject: signed_about_other(bytes, media_type, about, claimed.as_ref(), signers),
    }
}

/// The claimed subjects, when a trusted signer signed the statement about
/// them and they do not include `about`.
fn signed_about_other(
    bytes: &[u8],
    media_type: &str,
    about: &Digest,
    claimed: Option<&Statement>,
    signers: &[NamedSigner],
) -> Option<String> {
    let st = claimed.filter(|st| !st.has_subject_digest(about))?;
    let others: Vec<Digest> = st
        .subject_digests()
        .iter()
        .filter_map(|d| Digest::parse(d).ok())
        .collect();
    let signed_elsewhere = others.iter().any(|d| {
        signers
            .iter()
            .any(|s| verify_attestation(bytes, media_type, d, &s.trust).verified)
    });
    signed_elsewhere.then(|| st.subject_digests().join(", "))
}
