//! StellaBundle: the offline evidence bundle. A deterministic writer
//! (`export`, `writer`), a safe one-pass streaming reader (`reader`,
//! `tarball`), a verifier (`verify`) and an importer (`import`).
//!
//! A bundle is a tar (gzip, zstd or plain) holding an OCI image layout with
//! the subject manifest, its referrers found recursively, a bundle manifest,
//! a `sha256sum -c` checksum list and an optional DSSE signature over the
//! bundle manifest. The format is specified in `docs/bundle-format.md`.
//!
//! What it does not do: print, exit, load keys or talk HTTP. Signature
//! checks are plugged in through [`format::ManifestSignatureVerifier`],
//! [`format::ManifestSigner`] and [`verify::AttestationVerifier`]; content
//! comes from and goes to `stella_oci` store traits.

#![forbid(unsafe_code)]

pub mod archive;
pub mod error;
pub mod export;
pub mod format;
pub mod import;
pub mod limits;
pub mod reader;
pub mod tarball;
pub mod verify;
pub mod writer;

pub use error::{BundleError, codes};
pub use export::{ExportOptions, TransferReport, plan_export, push_plan};
pub use format::{BundleManifest, ManifestSignatureVerifier, ManifestSigner, Role, Selection};
pub use import::{MissingSubject, import_bundle, import_bundle_with};
pub use reader::BundleReader;
pub use tarball::{Compression, ReadLimits, declared_tar_bytes};
pub use verify::{
    AttestationOutcome, AttestationVerifier, VerifyOptions, VerifyReport, verify_bundle,
};
pub use writer::{BundlePlan, WriteSummary, write_bundle, write_bundle_to_path};

#[cfg(test)]
mod tests;
