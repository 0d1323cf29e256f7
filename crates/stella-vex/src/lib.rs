//! OpenVEX for Stella: the document model and its validation, product
//! matching, per-issuer effective statements, consensus across issuers and
//! deterministic merge.
//!
//! Public API (stable for other crates, e.g. reports):
//! - [`parse`] / [`parse_with`] / [`model::from_value`]: bytes → validated
//!   [`Document`] (spec rules: `not_affected` needs a justification or an
//!   impact statement, `affected` an action statement, unknown statuses and
//!   statements without products are refused; legacy v0.0.1 converted).
//! - [`purl::normalize`]: the matching key of a product identifier
//!   (`pkg:oci` by digest, with or without `repository_url`/`tag`).
//! - [`IssuedStatement`] (a statement with its verified issuer),
//!   [`consensus::consensus`] (one pair) and [`consensus::consensus_all`]
//!   (every pair) under a [`TrustConfig`], giving [`Consensus`]: status,
//!   rationale, contributions (issuer, statement digest, …) and `conflict`.
//! - [`merge::merge`]: one document, one statement per pair, canonical.
//!
//! What this crate does not do: I/O of any kind, reading the clock, or
//! verifying signatures (the issuer of a statement is the caller's word:
//! for registry evidence the engine passes the verified signer).

#![forbid(unsafe_code)]

pub mod consensus;
mod error;
pub mod merge;
pub mod model;
pub mod purl;

pub use consensus::{
    Consensus, Contribution, IssuedStatement, IssuerTrust, TrustConfig, consensus_all,
};
pub use error::VexError;
pub use merge::{MergeOptions, merge};
pub use model::{
    Component, Document, ParseOptions, Product, Statement, Status, Timestamp, Vulnerability, parse,
    parse_with,
};
