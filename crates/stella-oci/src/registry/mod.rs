//! An OCI distribution registry repository: auth, blobs, manifests, referrers
//! API with the referrers tag schema fallback.
//!
//! STUB: replaced by the registry client work (issue 2).

use std::path::PathBuf;

use stella_types::reference::RegistryReference;
use stella_types::{Descriptor, Digest};
use tokio::io::AsyncWrite;

use crate::OciError;
use crate::store::*;

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Use http:// instead of https://.
    pub plain_http: bool,
    /// Extra CA certificates (PEM) to trust.
    pub ca_file: Option<PathBuf>,
    /// Explicit credentials (user, password/token); otherwise docker config.
    pub credentials: Option<(String, String)>,
}

/// A client shared by all repositories of a run (connection pool, tokens,
/// per-registry referrers mode).
#[derive(Debug, Clone)]
pub struct RegistryClient {
    options: RegistryOptions,
}

impl RegistryClient {
    pub fn new(options: RegistryOptions) -> Result<Self, OciError> {
        Ok(RegistryClient { options })
    }

    /// A handle on one repository.
    pub fn repository(&self, reference: &RegistryReference) -> Repository {
        Repository { client: self.clone(), registry: reference.registry.clone(), name: reference.repository.clone() }
    }
}

/// One repository in a registry; implements every store trait.
#[derive(Debug, Clone)]
pub struct Repository {
    client: RegistryClient,
    registry: String,
    name: String,
}

fn todo_err() -> OciError {
    OciError::Protocol("registry support is not available yet".into())
}

impl ContentRead for Repository {
    async fn resolve_tag(&self, _tag: &str) -> Result<Descriptor, OciError> { let _ = (&self.client.options, &self.registry, &self.name); Err(todo_err()) }
    async fn fetch_manifest(&self, _d: &Digest) -> Result<FetchedManifest, OciError> { Err(todo_err()) }
    async fn manifest_exists(&self, _d: &Digest) -> Result<bool, OciError> { Err(todo_err()) }
    async fn blob_exists(&self, _d: &Digest) -> Result<bool, OciError> { Err(todo_err()) }
    async fn fetch_blob_to(&self, _d: &Descriptor, _s: &mut (dyn AsyncWrite + Unpin + Send)) -> Result<u64, OciError> { Err(todo_err()) }
}

impl ContentWrite for Repository {
    async fn push_blob(&self, _d: &Descriptor, _s: BlobSource<'_>, _p: &dyn Progress) -> Result<PushOutcome, OciError> { Err(todo_err()) }
    async fn push_manifest(&self, _m: &str, _b: &[u8], _t: Option<&str>) -> Result<Descriptor, OciError> { Err(todo_err()) }
    async fn delete_manifest(&self, _d: &Digest) -> Result<(), OciError> { Err(todo_err()) }
}

impl ReferrersRead for Repository {
    async fn referrers_mode(&self) -> Result<ReferrersMode, OciError> { Err(todo_err()) }
    async fn list_referrers(&self, _s: &Digest, _a: &[String]) -> Result<ReferrerListing, OciError> { Err(todo_err()) }
}

impl ReferrersWrite for Repository {
    async fn add_referrer(&self, _s: &Descriptor, _r: &Descriptor) -> Result<(), OciError> { Err(todo_err()) }
    async fn remove_referrer(&self, _s: &Digest, _r: &Digest) -> Result<(), OciError> { Err(todo_err()) }
}
