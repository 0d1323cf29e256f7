//! Transparency-log primitives: RFC 6962 / RFC 9162 Merkle inclusion and
//! consistency proofs, C2SP signed notes and tlog checkpoints, and anchoring
//! of inclusion proofs to a pinned checkpoint.
//!
//! Everything here is pure: no I/O, no clock, no network. Signature checks on
//! notes go through the [`note::NoteVerifier`] trait so that the crypto
//! provider is chosen by the caller (stella-sigstore plugs in stella-crypto).

// `if let` chains would need Rust 1.88; the workspace MSRV is 1.85.
#![allow(clippy::collapsible_if)]

pub mod anchor;
pub mod checkpoint;
pub mod merkle;
pub mod note;

pub use anchor::{AnchorInput, AnchorStatus, anchor_inclusion_proofs};
pub use checkpoint::Checkpoint;
pub use merkle::{
    MerkleError, leaf_hash, node_hash, root_from_inclusion_proof, verify_consistency,
    verify_inclusion,
};
pub use note::{Note, NoteError, NoteSignature, NoteVerifier, Vkey};
