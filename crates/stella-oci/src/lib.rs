//! Content storage for OCI artifacts and the referrers graph around an image.
//!
//! Layers, bottom up (the content model knows nothing of HTTP):
//! - [`store`]: the capability traits every store implements
//!   ([`store::ContentRead`], [`store::ContentWrite`], [`store::ReferrersRead`],
//!   [`store::ReferrersWrite`]), with `Send` futures; [`dyn_store`]: the same
//!   as a trait object (`Arc<dyn DynStore>`) for servers.
//! - [`layout`]: a local OCI image layout directory (the embedded default).
//! - [`registry`]: an OCI distribution registry (auth, blobs, manifests,
//!   referrers API with the referrers tag schema fallback).
//! - [`referrers`], [`artifact`], [`copy`]: operations written once over the
//!   traits: build and push a referrer artifact, walk the referrers graph,
//!   pull an artifact's files, delete, repair a fallback index, copy a graph
//!   between stores.
//!
//! Specs: OCI image spec v1.1 (image layout, manifest `subject`), OCI
//! distribution spec v1.1 (referrers API, referrers tag schema).

#![forbid(unsafe_code)]

pub mod any;
pub mod artifact;
mod blocking;
pub mod copy;
pub mod dyn_store;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod layout;
pub mod referrers;
pub mod registry;
pub mod store;

pub use any::{AnyStore, open_store};
pub use dyn_store::{DynStore, SharedStore};

pub use error::OciError;
