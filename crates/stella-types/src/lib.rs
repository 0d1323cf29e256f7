//! Plain types shared by every Stella crate.
//!
//! This crate is the leaf of the dependency graph: it holds content
//! digests, OCI descriptors, manifests and indexes, media types, image
//! references (registry and local OCI layout), canonical JSON and the size
//! limits applied to outside data. It does no I/O beyond `std::io::Read`
//! adapters and knows nothing about HTTP, signing or bundles.
//!
//! Specs: [OCI image spec v1.1](https://github.com/opencontainers/image-spec),
//! [OCI distribution spec v1.1](https://github.com/opencontainers/distribution-spec),
//! [RFC 8785 (JCS)](https://www.rfc-editor.org/rfc/rfc8785).

#![forbid(unsafe_code)]

pub mod canonical_json;
pub mod descriptor;
pub mod digest;
pub mod dsse;
pub mod limits;
pub mod manifest;
pub mod media_types;
pub mod predicate_types;
pub mod reference;
pub mod timestamp;

pub use descriptor::Descriptor;
pub use digest::{Digest, DigestAlgorithm, DigestError, VerifyingReader};
pub use manifest::{ImageIndex, ImageManifest, Manifest, ManifestError};
pub use reference::{Reference, ReferenceError};
