//! The Stella evidence engine: the discovery, examination and verification
//! that `stella verify image`, `stella verify attestation` and `stella
//! bundle verify` share, as a library a server can call.
//!
//! - [`image`]: [`verify_image`] walks an image's referrers graph (and the
//!   buildx attestation manifests of its index), verifies
//!   every attestation against each named signer and judges the lot against
//!   a policy, returning a [`stella_verify::Report`].
//! - [`attestations`]: [`verify_attestations`] finds and verifies every
//!   attestation attached to an image ([`AttestationsReport`]).
//! - [`layers`]: which layers of a referrer hold an attestation (by media
//!   type, or by content when a generic client pushed it under a default
//!   layer type).
//! - [`trust`]: trust material (named signers, keyless trust from a
//!   `trusted_root.json`, pinned checkpoints), built from bytes.
//! - [`bundle`]: the hooks `stella_bundle::verify` calls for attestations
//!   and the bundle manifest signature.
//! - [`publish`]: [`publish::sign_and_attach`] signs a predicate about an
//!   image and pushes it as a sigstore-bundle referrer (`stella attest`,
//!   `verify image --attach-verdict`, the service's report `attach`).
//! - [`vex`]: [`vex::discover_vex`] finds an image's OpenVEX documents in
//!   every layout, verifies them through [`verify_attestations`] and
//!   validates them (`stella_vex`); the issuer is the verified signer.
//!
//! What this crate does not do: read files, environment variables or the
//! wall clock (the caller passes key material, policies and `now`), print,
//! or name command-line flags (errors are typed; reasons use the caller's
//! [`stella_attest::verify::TrustWords`]). Classifying media types is
//! `stella_types::media_types::AttestationFormat`.

#![forbid(unsafe_code)]

pub mod attestations;
pub mod bundle;
mod check;
mod error;
pub mod image;
pub mod layers;
pub mod publish;
pub mod trust;
pub mod vex;

pub use attestations::{
    AttestationItem, AttestationsReport, AttestationsRequest, verify_attestations,
};
pub use error::EngineError;
pub use image::{VerifyImageRequest, discover, discover_in_index, verify_image};
pub use trust::{NamedSigner, Trust, TrustError};
