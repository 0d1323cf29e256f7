//! in-toto Statements, DSSE envelopes and sigstore bundles for key- and
//! PKI-signed attestations: build, sign, parse, verify. No network, no files:
//! callers hand in bytes and keys.
//!
//! - [`dsse`]: envelope + PAE (DSSE v1).
//! - [`statement`]: in-toto Statement v1 (v0.1 read).
//! - [`bundle`]: sigstore bundle JSON (v0.3 written; v0.1–v0.3 read).
//! - [`sign`]: statement → envelope → bundle.
//! - [`verify`]: one attestation against a trust policy and an image digest.
//! - [`keyless`]: Fulcio/Rekor bundles through `stella_sigstore`, checkpoint anchoring.
//! - [`predicate_types`]: `--type` aliases.

#![forbid(unsafe_code)]

pub mod bundle;
pub mod dsse;
mod error;
pub mod keyless;
pub mod predicate_types;
pub mod sign;
pub mod statement;
pub mod verify;

pub use error::AttestError;
