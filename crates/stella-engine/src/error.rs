//! Typed errors of the engine. Each variant's text is a short context (what
//! was being done, with the digest) and the cause is its `source`, so a
//! caller printing the chain gets `referrer sha256:…: <cause>`. None names
//! a command-line flag.

use stella_oci::OciError;
use stella_types::{Digest, ManifestError};

/// Why the engine could not produce a report (as opposed to evidence that
/// failed verification, which is in the report).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The store failed while listing referrers or resolving.
    #[error(transparent)]
    Store(#[from] OciError),
    /// Fetching a referrer manifest failed.
    #[error("referrer {digest}")]
    Referrer {
        digest: Digest,
        #[source]
        source: OciError,
    },
    /// A referrer manifest is not a valid manifest.
    #[error("referrer {digest}")]
    ReferrerManifest {
        digest: Digest,
        #[source]
        source: ManifestError,
    },
    /// Fetching an attestation layer failed.
    #[error("attestation {digest}")]
    AttestationLayer {
        digest: Digest,
        #[source]
        source: OciError,
    },
    /// Listing the referrers of an image failed.
    #[error("cannot list the referrers of {subject}")]
    ListReferrers {
        subject: Digest,
        #[source]
        source: OciError,
    },
    /// Fetching a listed referrer's manifest failed.
    #[error("cannot fetch referrer {digest}")]
    FetchReferrer {
        digest: Digest,
        #[source]
        source: OciError,
    },
    /// The referrers graph is larger than the engine examines.
    #[error("the referrers graph of {subject} has {count} artifacts, over the limit of {limit}")]
    TooManyReferrers {
        subject: Digest,
        count: usize,
        limit: usize,
    },
}

impl EngineError {
    /// The store error underneath, if any (to tell a missing image or a
    /// refused login from a network failure).
    pub fn store_error(&self) -> Option<&OciError> {
        match self {
            EngineError::Store(e)
            | EngineError::Referrer { source: e, .. }
            | EngineError::AttestationLayer { source: e, .. }
            | EngineError::ListReferrers { source: e, .. }
            | EngineError::FetchReferrer { source: e, .. } => Some(e),
            EngineError::ReferrerManifest { .. } | EngineError::TooManyReferrers { .. } => None,
        }
    }
}
