//! Errors of the bundle library, split by what the caller should do:
//! [`BundleError::Unusable`] (the input cannot be read safely or is not a
//! well-formed bundle: exit 2), [`BundleError::VerificationFailed`] (a
//! well-formed bundle whose content does not match its claims: exit 1),
//! [`BundleError::SubjectMissing`] (an import that cannot work without the
//! image being copied first: exit 2) and store / I/O failures (exit 2). Every error carries a stable `code` so
//! tests and scripts can tell causes apart without parsing messages.

use stella_oci::OciError;

/// Stable machine-readable reason codes.
pub mod codes {
    pub const NOT_A_BUNDLE: &str = "not-a-bundle";
    pub const CORRUPT: &str = "corrupt";
    pub const TRUNCATED: &str = "truncated";
    pub const PATH_TRAVERSAL: &str = "path-traversal";
    pub const ABSOLUTE_PATH: &str = "absolute-path";
    pub const BAD_PATH: &str = "bad-path";
    pub const LINK: &str = "link";
    pub const SPECIAL_FILE: &str = "special-file";
    pub const UNSUPPORTED_ENTRY: &str = "unsupported-entry";
    pub const UNEXPECTED_ENTRY: &str = "unexpected-entry";
    pub const DUPLICATE_ENTRY: &str = "duplicate-entry";
    pub const EXPANSION_RATIO: &str = "expansion-ratio";
    pub const TOO_LARGE: &str = "too-large";
    /// Bytes after the tar end marker, a second gzip member / zstd frame, or trailing garbage.
    pub const TRAILING_DATA: &str = "trailing-data";
    pub const BAD_MANIFEST: &str = "bad-bundle-manifest";
    pub const UNSUPPORTED_VERSION: &str = "unsupported-version";
    pub const MISSING_BLOB: &str = "missing-blob";
    pub const EXTRA_BLOB: &str = "extra-blob";
    pub const CHECKSUM_LIST: &str = "checksum-list";
    pub const DIGEST_MISMATCH: &str = "digest-mismatch";
    pub const SIZE_MISMATCH: &str = "size-mismatch";
    pub const LAYOUT: &str = "layout-inconsistent";
    pub const SIGNATURE: &str = "signature";
    /// An inclusion proof not tied to the pinned `--rekor-checkpoint`.
    pub const UNANCHORED: &str = "unanchored-proof";
    pub const STORE: &str = "store";
    pub const IO: &str = "io";
    pub const INVALID_INPUT: &str = "invalid-input";
    /// An import target that lacks the subject image of a bundle that does not carry it.
    pub const SUBJECT_MISSING: &str = "subject-missing";
}

/// What went wrong with a bundle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The input cannot be used: not a bundle, hostile or malformed.
    #[error("unusable bundle: {reason}")]
    Unusable { code: &'static str, reason: String },
    /// The bundle is well-formed but does not verify.
    #[error("bundle verification failed: {reason}")]
    VerificationFailed { code: &'static str, reason: String },
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
    /// Import refused before anything was uploaded: the bundle was made
    /// without its subject image and the target does not have that image,
    /// so the evidence would refer to nothing (a registry refuses the
    /// subject manifest once its blobs are found missing; a layout would be
    /// left with a manifest whose blobs are absent). The caller says how
    /// to get the image there in its own words.
    #[error(
        "the target has no image {subject} and the bundle does not carry it (made without the image); nothing was uploaded"
    )]
    SubjectMissing {
        /// The subject manifest (or index) digest the target lacks.
        subject: stella_types::Digest,
        /// The tag the import would have given it.
        tag: String,
    },
}

impl BundleError {
    pub fn unusable(code: &'static str, reason: impl Into<String>) -> Self {
        BundleError::Unusable {
            code,
            reason: reason.into(),
        }
    }

    pub fn failed(code: &'static str, reason: impl Into<String>) -> Self {
        BundleError::VerificationFailed {
            code,
            reason: reason.into(),
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        BundleError::Io {
            context: context.into(),
            source,
        }
    }

    pub fn store(context: impl Into<String>, source: OciError) -> Self {
        BundleError::Store {
            context: context.into(),
            source,
        }
    }

    /// The stable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            BundleError::Unusable { code, .. } | BundleError::VerificationFailed { code, .. } => {
                code
            }
            BundleError::Store { .. } => codes::STORE,
            BundleError::Io { .. } => codes::IO,
            BundleError::InvalidInput(_) => codes::INVALID_INPUT,
            BundleError::SubjectMissing { .. } => codes::SUBJECT_MISSING,
        }
    }

    /// True when the bundle was readable but did not verify (exit 1).
    pub fn is_verification_failure(&self) -> bool {
        matches!(self, BundleError::VerificationFailed { .. })
    }
}
