//! Errors from content stores, split by cause so callers (and exit codes)
//! can tell a missing image from a bad registry answer or a refused login.

use stella_types::{Digest, DigestError, ManifestError, ReferenceError};

/// The underlying cause kept by transport errors.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

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
    /// Network or transport failure. The message never holds a URL's query
    /// or userinfo; `source` is the underlying error (also URL-free).
    #[error("{message}")]
    Transport {
        message: String,
        /// Whether trying again later can help (a refused connection, a
        /// reset), as opposed to a certificate the client will never trust.
        transient: bool,
        #[source]
        source: Option<BoxError>,
    },
    /// A deadline passed: connecting, waiting between two chunks of an
    /// answer, the whole request, or a credential helper.
    #[error("{message}")]
    Timeout {
        message: String,
        #[source]
        source: Option<BoxError>,
    },
    /// The registry answered 5xx (after the retries idempotent requests get).
    #[error("{0}")]
    Unavailable(String),
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

    /// A transport failure without an underlying error value.
    pub fn transport(message: impl Into<String>, transient: bool) -> Self {
        OciError::Transport {
            message: message.into(),
            transient,
            source: None,
        }
    }

    /// A deadline that passed, without an underlying error value.
    pub fn timeout(message: impl Into<String>) -> Self {
        OciError::Timeout {
            message: message.into(),
            source: None,
        }
    }

    /// Whether the same request may succeed if tried again later (after a
    /// back-off): timeouts, refused or reset connections, 5xx answers and
    /// rate limiting. Bad input, refused credentials, content that does not
    /// match its digest and protocol violations are not transient.
    pub fn is_transient(&self) -> bool {
        match self {
            OciError::Transport { transient, .. } => *transient,
            OciError::Timeout { .. } | OciError::Unavailable(_) | OciError::RateLimited(_) => true,
            _ => false,
        }
    }

    pub fn is_timeout(&self) -> bool {
        matches!(self, OciError::Timeout { .. })
    }
}
