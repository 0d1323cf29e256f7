//! Errors of the export library, split by what the caller should do:
//! [`ExportError::Unusable`] (input that cannot be read safely, is not an
//! export, or is the wrong one: exit 2), [`ExportError::Failed`] (a readable
//! export whose content does not match its claims: exit 1), store and I/O
//! failures (exit 2). Each carries a stable code.

use stella_bundle::BundleError;
use stella_oci::OciError;

/// Stable machine-readable reason codes.
pub mod codes {
    pub const NOT_AN_EXPORT: &str = "not-an-export";
    pub const BAD_MANIFEST: &str = "bad-manifest";
    pub const UNSUPPORTED_VERSION: &str = "unsupported-version";
    pub const WRONG_BASE: &str = "wrong-base";
    pub const MISSING_PART: &str = "missing-part";
    pub const PART_MISMATCH: &str = "part-mismatch";
    pub const ENCRYPTED: &str = "encrypted";
    pub const DECRYPT: &str = "decrypt";
    pub const DIGEST_MISMATCH: &str = "digest-mismatch";
    pub const SIZE_MISMATCH: &str = "size-mismatch";
    pub const MISSING_FILE: &str = "missing-file";
    pub const EXTRA_FILE: &str = "extra-file";
    pub const CHECKSUMS: &str = "checksum-list";
    pub const PROVENANCE: &str = "provenance";
    pub const LAYOUT: &str = "layout-inconsistent";
    pub const SIGNATURE: &str = "signature";
    pub const UNSIGNED: &str = "unsigned";
    pub const STORE: &str = "store";
    pub const IO: &str = "io";
    pub const INVALID_INPUT: &str = "invalid-input";
}

/// What went wrong with an export.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The input cannot be used: hostile, malformed, encrypted without a
    /// usable identity, a missing part, or the wrong base.
    #[error("{reason}")]
    Unusable { code: &'static str, reason: String },
    /// The export is readable but does not verify.
    #[error("export verification failed: {reason}")]
    Failed { code: &'static str, reason: String },
    /// The tar container was refused by the StellaBundle archive reader.
    #[error("unusable export archive: {0}")]
    Archive(#[source] BundleError),
    /// A content store failed (export source, import target).
    #[error("{context}: {source}")]
    Store { context: String, source: OciError },
    /// Local file system failure.
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// The caller asked for something that cannot be done.
    #[error("{0}")]
    InvalidInput(String),
}

impl ExportError {
    pub fn unusable(code: &'static str, reason: impl Into<String>) -> Self {
        ExportError::Unusable {
            code,
            reason: reason.into(),
        }
    }

    pub fn failed(code: &'static str, reason: impl Into<String>) -> Self {
        ExportError::Failed {
            code,
            reason: reason.into(),
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        ExportError::Io {
            context: context.into(),
            source,
        }
    }

    pub fn store(context: impl Into<String>, source: OciError) -> Self {
        ExportError::Store {
            context: context.into(),
            source,
        }
    }

    /// The stable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            ExportError::Unusable { code, .. } | ExportError::Failed { code, .. } => code,
            ExportError::Archive(b) => b.code(),
            ExportError::Store { .. } => codes::STORE,
            ExportError::Io { .. } => codes::IO,
            ExportError::InvalidInput(_) => codes::INVALID_INPUT,
        }
    }

    /// True when the export was readable but did not verify (exit 1).
    pub fn is_verification_failure(&self) -> bool {
        match self {
            ExportError::Failed { .. } => true,
            ExportError::Archive(b) => b.is_verification_failure(),
            _ => false,
        }
    }
}

impl From<BundleError> for ExportError {
    fn from(e: BundleError) -> Self {
        ExportError::Archive(e)
    }
}
