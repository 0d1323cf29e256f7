//! Offline verification of sigstore bundles (v0.1, v0.2, v0.3) against a
//! `trusted_root.json`: Fulcio certificate chains at the verified time,
//! embedded SCTs, Rekor v1/v2 entries (binding, signed entry timestamp,
//! inclusion proof and signed checkpoint), RFC 3161 timestamps, message and
//! DSSE signatures, in-toto subjects and identity policy.
//!
//! Crypto and formats are not its own: keys, signatures and X.509 path
//! validation go through `stella-crypto` (the same chain validator as
//! organisation PKI), certificates, SCTs and CMS through RustCrypto
//! `x509-cert` / `cms`, hashing through `stella_types::digest`, base64
//! through the `base64` crate.
//!
//! What it does not do: fetch anything (no HTTP client, no TUF), check
//! revocation, or sign. Errors are split into [`SigstoreError::Unusable`]
//! (bad input, exit 2) and [`SigstoreError::Failed`] (does not verify, exit 1).

// `if let` chains would need Rust 1.88; the workspace MSRV is 1.85.
#![allow(clippy::collapsible_if)]

pub mod bundle;
pub mod error;
pub mod fulcio;
pub mod hash;
mod json;
pub mod sct;
pub mod trust_root;
pub mod tsa;
pub mod verify;

pub use bundle::{Bundle, BundleVersion, Content, SignerMaterial, TlogEntry};
pub use checkpoint_anchor::{PinnedCheckpoint, anchor_bundle};
pub use error::{SignerKind, SigstoreError};
pub use hash::HashAlg;
pub use stella_crypto::PublicKey;
pub use stella_crypto::x509::Certificate;
pub use trust_root::TrustedRoot;
pub use verify::{
    Artifact, IdentityPolicy, Matcher, Policy, VerificationResult, Verifier, VerifierConfig, pae,
};

pub mod checkpoint_anchor;
