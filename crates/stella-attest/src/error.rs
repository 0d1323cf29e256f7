//! Typed errors of stella-attest, split by cause: malformed envelope or
//! bundle (hostile or broken evidence), invalid statement, signature or trust
//! failures, caller misuse.

use stella_crypto::CryptoError;

use crate::statement::StatementError;

/// Every error stella-attest returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttestError {
    /// The DSSE envelope or sigstore bundle is not well formed.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// `DSSE envelope`, `sigstore bundle`, ...
        what: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// Larger than a size cap.
    #[error("{what} is {size} bytes, over the {cap}-byte limit")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        size: u64,
        /// The cap.
        cap: u64,
    },
    /// The envelope's payloadType is not the one required.
    #[error("payloadType is {found:?}, expected {expected:?}")]
    PayloadType {
        /// Found.
        found: String,
        /// Expected.
        expected: String,
    },
    /// Wrong number of signatures.
    #[error("envelope has {0} signatures; exactly one is required")]
    SignatureCount(usize),
    /// No trusted key or certificate verified the signature.
    #[error("{0}")]
    Untrusted(String),
    /// The statement is invalid.
    #[error("invalid in-toto statement: {0}")]
    Statement(#[from] StatementError),
    /// The statement is about other artifacts.
    #[error("statement subject does not match {expected} (statement is about {found})")]
    SubjectMismatch {
        /// The image digest required.
        expected: String,
        /// The digests the statement names.
        found: String,
    },
    /// A crypto-layer error (malformed key, bad certificate...).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Canonical JSON encoding failed (caller data not representable).
    #[error("cannot encode JSON: {0}")]
    Encode(String),
}
