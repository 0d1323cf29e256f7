//! The Export Center: reproducible, signed exports of a selection of
//! images and their evidence, full or delta, for air gaps.
//!
//! - [`collect`]: resolve a selection against source stores (tags,
//!   digests, platforms, referrers recursively, tag-schema indexes).
//! - [`write`]: stage, then write a directory or a tar (zstd), optionally
//!   age-encrypted ([`crypt`]) and split into parts ([`parts`]);
//!   [`rawjson`] writes the `json:raw` profile.
//! - [`format`]: `manifest.json`, `checksums.txt`, `manifest.dsse.json`,
//!   `provenance.json` (spec: `docs/export-format.md`).
//! - [`read`], [`verify`], [`import`]: open any form of an export through
//!   the StellaBundle hostile-archive reader, verify it in one pass, import
//!   it into registries or layouts with digests, tags and referrers.
//!
//! What it does not do: print, exit, read the environment or the clock,
//! load keys (signers and verifiers are the StellaBundle traits), or build
//! registry clients (the caller opens stores).

#![forbid(unsafe_code)]

pub mod collect;
pub mod crypt;
pub mod error;
pub mod format;
pub mod import;
pub mod parts;
pub mod rawjson;
pub mod read;
pub mod verify;
pub mod write;

pub use error::{ExportError, codes};
pub use format::{ExportManifest, Profile, Selection};
pub use verify::{VerifyOptions, VerifyReport, verify_export};
pub use write::{ExportRequest, ExportSummary, OutputKind, OutputSpec, run_export};

#[cfg(test)]
mod tests;
