//! Trust material, built from bytes the caller loaded: named policy signers
//! (each a [`TrustPolicy`] of keys, CA roots and keyless trust), the
//! sigstore verifier for a `trusted_root.json`, identity matchers and a
//! pinned Rekor checkpoint.
//!
//! Not here: reading files (the caller does, with its own caps and error
//! words), or deciding which flags make which signer.

use std::sync::Arc;
use std::time::SystemTime;

use stella_attest::keyless::KeylessTrust;
use stella_attest::verify::TrustPolicy;
use stella_sigstore::{
    IdentityPolicy, Matcher, PinnedCheckpoint, SigstoreError, TrustedRoot, Verifier, VerifierConfig,
};
use time::OffsetDateTime;

/// Why trust material could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The `trusted_root.json` could not be used.
    #[error("the trusted root is unusable")]
    TrustedRoot(#[source] SigstoreError),
    /// The checkpoint note could not be read as a checkpoint.
    #[error("the Rekor checkpoint is unusable")]
    CheckpointUnusable(#[source] SigstoreError),
    /// The checkpoint is well formed but not signed by a transparency log
    /// of the trusted root: a verification failure, not a usage error.
    #[error("pinned Rekor checkpoint rejected: {0}")]
    CheckpointRejected(String),
    /// An identity or issuer regular expression does not compile.
    #[error(transparent)]
    Pattern(SigstoreError),
}

/// One policy signer: its name (as the policy and the report say it) and
/// what it trusts.
#[derive(Debug, Clone)]
pub struct NamedSigner {
    pub name: String,
    pub trust: TrustPolicy,
}

/// Every signer evidence is checked against, each separately so the
/// report can say which of them vouch for it.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    pub signers: Vec<NamedSigner>,
}

impl Trust {
    /// The signers with certificate chains checked at `now` unless the
    /// caller fixed another verification time.
    pub(crate) fn at(&self, now: OffsetDateTime) -> Vec<NamedSigner> {
        self.signers
            .iter()
            .map(|s| {
                let mut s = s.clone();
                s.trust.verification_time = Some(at(&s.trust, now));
                s
            })
            .collect()
    }
}

/// The verification time of a policy: its own, else `now`.
pub(crate) fn at(policy: &TrustPolicy, now: OffsetDateTime) -> SystemTime {
    policy
        .verification_time
        .unwrap_or_else(|| SystemTime::from(now))
}

/// A matcher from an exact value or a regular expression. `Ok(None)` when
/// neither or both are given (the caller says which inputs it needs).
pub fn matcher(exact: Option<&str>, regexp: Option<&str>) -> Result<Option<Matcher>, TrustError> {
    match (exact, regexp) {
        (Some(e), None) => Ok(Some(Matcher::Exact(e.to_string()))),
        (None, Some(r)) => Matcher::regex(r).map(Some).map_err(TrustError::Pattern),
        _ => Ok(None),
    }
}

/// How many transparency-log entries and RFC 3161 timestamps a keyless
/// bundle must carry. `None` keeps the verifier's default (at least one
/// log entry, no timestamp required). With no log entry required, at least
/// one timestamp always is (the verifier fails closed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Thresholds {
    pub tlog: Option<usize>,
    pub timestamps: Option<usize>,
}

impl Thresholds {
    /// The verifier configuration these thresholds make.
    pub fn config(&self) -> VerifierConfig {
        let d = VerifierConfig::default();
        VerifierConfig {
            tlog_threshold: self.tlog.unwrap_or(d.tlog_threshold),
            timestamp_threshold: self.timestamps.unwrap_or(d.timestamp_threshold),
            ..d
        }
    }
}

/// The sigstore verifier for a `trusted_root.json` (Fulcio CAs, Rekor
/// keys, CT logs, TSAs), requiring the evidence `thresholds` say.
pub fn keyless_verifier(
    trusted_root_json: &[u8],
    thresholds: Thresholds,
) -> Result<Verifier, TrustError> {
    let root = TrustedRoot::from_json(trusted_root_json).map_err(TrustError::TrustedRoot)?;
    Ok(Verifier::new(root, thresholds.config()))
}

/// Pins a Rekor checkpoint note: it must be signed by a transparency log
/// of the verifier's trusted root.
pub fn pin_checkpoint(note: &str, verifier: &Verifier) -> Result<PinnedCheckpoint, TrustError> {
    match PinnedCheckpoint::from_note(note, verifier.trusted_root()) {
        Ok(c) => Ok(c),
        Err(e @ SigstoreError::Unusable(_)) => Err(TrustError::CheckpointUnusable(e)),
        Err(e) => Err(TrustError::CheckpointRejected(e.to_string())),
    }
}

/// Keyless trust: a verifier, the identity that must have signed, and an
/// optional pinned checkpoint.
pub fn keyless_trust(
    verifier: Verifier,
    identity: IdentityPolicy,
    checkpoint: Option<PinnedCheckpoint>,
) -> KeylessTrust {
    KeylessTrust {
        verifier: Arc::new(verifier),
        identity,
        checkpoint: checkpoint.map(Arc::new),
        consistency_proofs: Vec::new(),
    }
}
