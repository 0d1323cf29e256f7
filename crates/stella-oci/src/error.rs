//! Errors from content stores, split by cause so callers (and exit codes)
//! can tell a missing image from a bad registry answer or a refused login.

use stella_types::{Digest, DigestError, ManifestError, ReferenceError};

/// What went wrong talking to a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OciError {
    /// The reference, tag, manifest or blob does not exist.
    #[error("{what} not found")]
    NotFound { what: String },
    /// The user's input cannot be used (bad reference, missing file...).
    #[error("{0}")]
    InvalidInput(String),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// Content did not match its digest or size.
    #[error("{context}: {source}")]
    Integrity {
        context: String,
        source: DigestError,
    },
    /// A manifest or index is malformed or too large.
    #[error("{context}: {source}")]
    Manifest {
        context: String,
        source: ManifestError,
    },
    /// The store answered with something that breaks the spec or our caps.
    #[error("{0}")]
    Protocol(String),
    /// Credentials were refused or missing.
    #[error("{0}")]
    Unauthorized(String),
    /// The registry kept answering 429 past our retry budget.
    #[error("{0}")]
    RateLimited(String),
    /// Network or transport failure.
    #[error("{0}")]
    Transport(String),
    /// Local filesystem failure.
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// A concurrent writer kept removing our entry from a fallback index.
    #[error("{0}")]
    Conflict(String),
}

impl OciError {
    pub fn not_found(what: impl Into<String>) -> Self {
        OciError::NotFound { what: what.into() }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        OciError::Io {
            context: context.into(),
            source,
        }
    }

    pub fn integrity(context: impl Into<String>, source: DigestError) -> Self {
        OciError::Integrity {
            context: context.into(),
            source,
        }
    }

    pub fn manifest(digest: &Digest, source: ManifestError) -> Self {
        OciError::Manifest {
            context: format!("manifest {digest}"),
            source,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, OciError::NotFound { .. })
    }
}
