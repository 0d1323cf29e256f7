//! Keyless (sigstore) attestations: a sigstore bundle whose DSSE envelope is
//! signed with a Fulcio certificate and logged in Rekor, verified offline by
//! `stella_sigstore` (the same engine as `stella verify blob`) against a
//! `trusted_root.json` and an identity policy. The statement subject must
//! carry the image digest (the engine checks it as the "artifact").
//!
//! Optionally every inclusion proof of the bundle is anchored to a
//! checkpoint the user pinned out of band (`--rekor-checkpoint`): it must be
//! the same tree head, or a consistency proof supplied by the caller must
//! link the two; each proof's outcome is reported in [`ProofAnchor`].
//!
//! Not here: key/PKI-signed attestations (see [`crate::verify`]), fetching
//! anything (no network, no TUF), deciding whether unanchored proofs are
//! acceptable (the caller's policy).

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use stella_sigstore::{
    Artifact, Bundle, HashAlg, IdentityPolicy, PinnedCheckpoint, Policy, SigstoreError,
    VerificationResult, Verifier, anchor_bundle,
};
use stella_tlog::AnchorStatus;
use stella_types::{Digest, DigestAlgorithm};

/// Trusted material and policy for keyless attestations.
#[derive(Clone)]
pub struct KeylessTrust {
    /// Verifier fixed with the trusted root (Fulcio CAs, Rekor keys, CT logs, TSAs).
    pub verifier: Arc<Verifier>,
    /// Certificate identity (SAN) and OIDC issuer that must have signed.
    pub identity: IdentityPolicy,
    /// Checkpoint the user pinned; `None` = no anchoring is asked for.
    pub checkpoint: Option<Arc<PinnedCheckpoint>>,
    /// Consistency proofs between a bundle tree size and the pinned tree
    /// (`(tree size, hashes)`), when the caller has some.
    pub consistency_proofs: Vec<(u64, Vec<Vec<u8>>)>,
}

impl fmt::Debug for KeylessTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeylessTrust")
            .field("identity", &self.identity)
            .field(
                "checkpoint",
                &self
                    .checkpoint
                    .as_ref()
                    .map(|c| (&c.checkpoint.origin, c.checkpoint.size)),
            )
            .field("consistency_proofs", &self.consistency_proofs.len())
            .finish_non_exhaustive()
    }
}

/// How one transparency-log inclusion proof relates to the pinned checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnchorState {
    /// Same tree size and root hash as the pinned checkpoint.
    SameTreeHead,
    /// Another tree size, proven consistent with the pinned checkpoint.
    Consistent,
    /// Could not be tied to the pinned checkpoint (see the detail).
    Unanchored,
}

/// The anchoring outcome of one transparency-log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProofAnchor {
    /// The entry's log index, when the entry was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_index: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree_size: Option<u64>,
    pub state: AnchorState,
    pub detail: String,
}

impl ProofAnchor {
    pub fn is_anchored(&self) -> bool {
        self.state != AnchorState::Unanchored
    }
}

/// A verified keyless attestation.
#[derive(Debug, Clone)]
pub struct KeylessVerified {
    pub result: VerificationResult,
    /// One per log entry when a checkpoint was pinned, else empty.
    pub anchors: Vec<ProofAnchor>,
}

/// True when the bytes are a sigstore bundle signed with a certificate (the
/// keyless case), as opposed to a `publicKey` bundle or a plain envelope.
/// Decided by the document's shape (a bundle `mediaType` and a
/// `certificate` or `x509CertificateChain` in `verificationMaterial`), not
/// by a full parse: a certificate bundle that the sigstore parser refuses is
/// still one, and its verification then reports the parser's reason.
pub fn is_certificate_bundle(bytes: &[u8]) -> bool {
    use stella_types::media_types::AttestationFormat;
    if !matches!(
        AttestationFormat::of_content(bytes),
        AttestationFormat::SigstoreBundle { .. }
    ) {
        return false;
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return false;
    };
    let material = &v["verificationMaterial"];
    material.get("certificate").is_some() || material.get("x509CertificateChain").is_some()
}

fn hash_alg(d: &Digest) -> HashAlg {
    match d.algorithm() {
        DigestAlgorithm::Sha256 => HashAlg::Sha256,
        DigestAlgorithm::Sha512 => HashAlg::Sha512,
    }
}

fn hex_bytes(hex: &str) -> Option<Vec<u8>> {
    if hex.len() % 2 == 1 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

/// Verifies a keyless sigstore bundle whose in-toto statement must have a
/// subject with `subject`'s digest, then anchors its inclusion proofs to
/// the pinned checkpoint if one is set.
pub fn verify_keyless(
    bytes: &[u8],
    subject: &Digest,
    trust: &KeylessTrust,
) -> Result<KeylessVerified, SigstoreError> {
    let bundle = Bundle::parse(bytes).map_err(|e| e.context("sigstore bundle"))?;
    let digest = hex_bytes(subject.hex())
        .ok_or_else(|| SigstoreError::unusable(format!("subject digest {subject} is not hex")))?;
    let artifact = Artifact::Digest {
        algorithm: hash_alg(subject),
        digest: &digest,
    };
    let result =
        trust
            .verifier
            .verify(&bundle, artifact, &Policy::Identity(trust.identity.clone()))?;
    let anchors = match &trust.checkpoint {
        None => Vec::new(),
        Some(pinned) => anchor_bundle(pinned, &bundle, &trust.consistency_proofs)
            .into_iter()
            .zip(&bundle.tlog_entries)
            .map(|(status, e)| {
                let tree_size = e.inclusion_proof.as_ref().map(|p| p.tree_size);
                let (state, detail) = match status {
                    AnchorStatus::SameTreeHead => (
                        AnchorState::SameTreeHead,
                        format!(
                            "inclusion proof leads to the pinned checkpoint ({} size {})",
                            pinned.checkpoint.origin, pinned.checkpoint.size
                        ),
                    ),
                    AnchorStatus::Consistent => (
                        AnchorState::Consistent,
                        format!(
                            "tree proven consistent with the pinned checkpoint ({} size {})",
                            pinned.checkpoint.origin, pinned.checkpoint.size
                        ),
                    ),
                    AnchorStatus::Unanchored(why) => (AnchorState::Unanchored, why),
                };
                ProofAnchor {
                    log_index: Some(e.log_index),
                    tree_size,
                    state,
                    detail,
                }
            })
            .collect(),
    };
    Ok(KeylessVerified { result, anchors })
}

/// The anchors reported for `count` log entries that were not verified by
/// the transparency-log engine (key/PKI-signed bundles): all unanchored.
pub fn unverified_entries(count: usize) -> Vec<ProofAnchor> {
    (0..count)
        .map(|i| ProofAnchor {
            log_index: None,
            tree_size: None,
            state: AnchorState::Unanchored,
            detail: format!(
                "transparency-log entry #{i} of a key/PKI-signed bundle is not verified (only keyless bundles are checked against the log)"
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::is_certificate_bundle;

    /// By shape: a certificate bundle the sigstore parser would refuse
    /// (here: no DSSE envelope content, a bad log index) is still one, so
    /// its verification reports the parser's reason.
    #[test]
    fn certificate_bundles_are_recognised_by_shape() {
        let cert = br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial":{"certificate":{"rawBytes":"AA=="},
            "tlogEntries":[{"logIndex":"not-a-number"}]},"dsseEnvelope":{}}"#;
        assert!(is_certificate_bundle(cert));
        let chain = br#"{"mediaType":"application/vnd.dev.sigstore.bundle+json;version=0.2",
            "verificationMaterial":{"x509CertificateChain":{"certificates":[]}}}"#;
        assert!(is_certificate_bundle(chain));
        let key = br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial":{"publicKey":{"hint":"x"}},"dsseEnvelope":{}}"#;
        assert!(!is_certificate_bundle(key));
        let envelope =
            br#"{"payloadType":"application/vnd.in-toto+json","payload":"","signatures":[]}"#;
        assert!(!is_certificate_bundle(envelope));
        assert!(!is_certificate_bundle(b"not json"));
    }
}
