//! Judging an image's evidence against a policy.
//!
//! - [`policy`]: the versioned YAML policy format, parsed and validated with
//!   diagnostics that carry a JSON path (`$.requirements[0].type`).
//! - [`evaluate`]: a pure function from (policy, evidence already checked
//!   cryptographically, evaluation time) to a [`report::Report`].
//! - [`report`]: the deterministic report (sorted, canonical JSON) that a
//!   release gate prints, stores, or signs as a verdict attestation.
//!
//! What this crate does not do: fetch evidence, verify signatures or talk
//! to a registry. Callers discover evidence (stella-oci), verify it
//! (stella-attest, stella-sigstore) and hand the results in.

#![forbid(unsafe_code)]

pub mod duration;
pub mod evaluate;
pub mod policy;
pub mod report;

pub use evaluate::{Evidence, SignatureCheck, evaluate};
pub use policy::{Policy, PolicyDiagnostics, PolicyIssue, Severity};
pub use report::{Report, Verdict};
