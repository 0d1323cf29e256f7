//! The hooks `stella_bundle::verify` calls while it streams a StellaBundle:
//! [`BundleAttestations`] verifies each signed attestation (the same
//! `stella_attest::verify` engine as `verify attestation`, keyless bundles
//! and pinned-checkpoint anchoring included) and [`ManifestKeys`] checks the
//! bundle manifest's signature.
//!
//! Not here: reading the bundle (stella-bundle) or loading keys.

use stella_attest::verify::{TrustPolicy, TrustWords, verify_attestation};
use stella_bundle::ManifestSignatureVerifier;
use stella_bundle::verify::{AttestationOutcome, AttestationVerifier, TlogAnchor};
use stella_crypto::PublicKey;
use stella_types::Digest;
use time::OffsetDateTime;

/// Verifies a bundle's attestations against one trust policy.
pub struct BundleAttestations {
    policy: TrustPolicy,
}

impl BundleAttestations {
    /// Certificate chains are checked at `now` unless `policy` fixes a time.
    pub fn new(mut policy: TrustPolicy, now: OffsetDateTime) -> Self {
        policy.verification_time = Some(crate::trust::at(&policy, now));
        BundleAttestations { policy }
    }
}

impl AttestationVerifier for BundleAttestations {
    fn verify(&self, bytes: &[u8], media_type: &str, subject: &Digest) -> AttestationOutcome {
        let v = verify_attestation(bytes, media_type, subject, &self.policy);
        AttestationOutcome {
            verified: v.verified,
            predicate_type: v.predicate_type.or(if v.verified {
                None
            } else {
                v.claimed_predicate_type
            }),
            signer: v.signer,
            reason: v.reason,
            tlog_anchors: v
                .anchors
                .into_iter()
                .map(|a| TlogAnchor {
                    log_index: a.log_index,
                    tree_size: a.tree_size,
                    anchored: a.is_anchored(),
                    detail: a.detail,
                })
                .collect(),
        }
    }
}

/// Checks the bundle manifest signature with trusted public keys.
pub struct ManifestKeys {
    keys: Vec<PublicKey>,
    words: TrustWords,
}

impl ManifestKeys {
    /// `words` names the keys in the failure reason.
    pub fn new(keys: Vec<PublicKey>, words: TrustWords) -> Self {
        ManifestKeys { keys, words }
    }
}

impl ManifestSignatureVerifier for ManifestKeys {
    fn has_keys(&self) -> bool {
        !self.keys.is_empty()
    }

    fn verify(&self, _keyid: &str, message: &[u8], signature: &[u8]) -> Result<String, String> {
        for k in &self.keys {
            if k.verify(k.default_algorithm(), message, signature).is_ok() {
                return Ok(format!("key {}", k.keyid()));
            }
        }
        Err(format!(
            "the signature does not verify with any {}",
            self.words.key
        ))
    }
}
