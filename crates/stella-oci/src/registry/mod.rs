//! An OCI distribution registry repository: auth, blobs, manifests, the
//! referrers API with the referrers tag schema fallback, and repair of a
//! fallback index other tools left behind.
//!
//! Layout (one file per endpoint):
//! - [`client`]: the HTTP core shared by every repository of a run: one
//!   connection pool, request counting, deadlines, redirects (followed by
//!   hand, without credentials to other hosts), 429/Retry-After back-off,
//!   transport retries for idempotent requests, error mapping.
//! - [`options`]: how to reach registries ([`RegistryOptions`], deadlines).
//! - `http`: helpers both the core and auth use (capped body reads,
//!   origins, secret-free error text).
//! - [`auth`]: anonymous, basic and bearer-token (challenge) auth with a
//!   token cache per repository and access level, and the rule for which
//!   token realm may receive credentials.
//! - [`credentials`]: credentials per registry host through
//!   [`credentials::CredentialProvider`]: docker `config.json` (`auths`,
//!   `credHelpers`, `credsStore`) and credential helpers, or fixed ones.
//! - [`blobs`], [`manifests`]: the blob and manifest endpoints.
//! - [`referrers`]: the referrers API, the tag schema, the per-registry mode
//!   probe and the fallback index update protocol for concurrent writers.
//! - [`repair`]: checking and rewriting a subject's fallback index.
//!
//! What this module does not do: build artifacts, walk graphs or copy (see
//! `artifact`, `referrers`, `copy` at the crate root), print, or decide that
//! `localhost` means plain HTTP (the caller sets [`RegistryOptions::plain_http`]).
//!
//! Specs: OCI distribution spec v1.1 (pull, push, content discovery,
//! referrers tag schema), Docker registry token authentication.

pub mod auth;
pub mod blobs;
pub mod client;
pub mod credentials;
pub(crate) mod http;
pub mod manifests;
pub mod options;
pub mod referrers;
pub mod repair;
pub mod tags;

use std::sync::Arc;

use stella_types::reference::RegistryReference;
use stella_types::{Descriptor, Digest};
use tokio::io::AsyncWrite;

use crate::OciError;
use crate::store::*;

pub use options::{DEFAULT_REFERRERS_MODE_TTL, RegistryOptions, RegistryTimeouts, RegistryWords};
pub use repair::{RepairFinding, RepairReport};

/// A client shared by all repositories of a run (connection pool, tokens,
/// per-registry referrers mode, request counter). Cheap to clone.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    pub(crate) shared: Arc<client::Shared>,
}

impl RegistryClient {
    /// Builds the HTTP client (reading `ca_file` if given).
    pub fn new(options: RegistryOptions) -> Result<Self, OciError> {
        Ok(RegistryClient {
            shared: Arc::new(client::Shared::new(options)?),
        })
    }

    /// A handle on one repository.
    pub fn repository(&self, reference: &RegistryReference) -> Repository {
        Repository {
            client: self.clone(),
            registry: reference.registry.clone(),
            name: reference.repository.clone(),
        }
    }

    /// HTTP requests sent by this client (and its clones) so far, token
    /// requests included.
    pub fn request_count(&self) -> u64 {
        self.shared.request_count()
    }

    pub fn options(&self) -> &RegistryOptions {
        &self.shared.options
    }
}

/// One repository in a registry; implements every store trait.
#[derive(Debug, Clone)]
pub struct Repository {
    pub(crate) client: RegistryClient,
    pub(crate) registry: String,
    pub(crate) name: String,
}

impl Repository {
    /// The registry host (`host[:port]`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// HTTP requests sent by this repository's client so far (shared with
    /// every repository of the same [`RegistryClient`]).
    pub fn request_count(&self) -> u64 {
        self.client.request_count()
    }

    /// `host/repo` for messages.
    pub(crate) fn display(&self) -> String {
        format!("{}/{}", self.registry, self.name)
    }
}

impl ContentRead for Repository {
    async fn resolve_tag(&self, tag: &str) -> Result<Descriptor, OciError> {
        self.resolve_tag_impl(tag).await
    }
    async fn fetch_manifest(&self, digest: &Digest) -> Result<FetchedManifest, OciError> {
        self.fetch_manifest_impl(digest).await
    }
    async fn manifest_exists(&self, digest: &Digest) -> Result<bool, OciError> {
        self.manifest_exists_impl(&digest.to_string())
            .await
            .map(|d| d.is_some())
    }
    async fn blob_exists(&self, digest: &Digest) -> Result<bool, OciError> {
        self.blob_exists_impl(digest).await
    }
    async fn fetch_blob_to(
        &self,
        descriptor: &Descriptor,
        sink: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<u64, OciError> {
        self.fetch_blob_to_impl(descriptor, sink).await
    }
}

impl ContentWrite for Repository {
    async fn push_blob(
        &self,
        descriptor: &Descriptor,
        source: BlobSource<'_>,
        progress: &dyn Progress,
    ) -> Result<PushOutcome, OciError> {
        self.push_blob_impl(descriptor, source, progress).await
    }
    async fn push_blob_likely_new(
        &self,
        descriptor: &Descriptor,
        source: BlobSource<'_>,
        progress: &dyn Progress,
    ) -> Result<PushOutcome, OciError> {
        self.push_new_blob_impl(descriptor, source, progress).await
    }
    async fn push_manifest(
        &self,
        media_type: &str,
        bytes: &[u8],
        tag: Option<&str>,
    ) -> Result<Descriptor, OciError> {
        self.push_manifest_impl(media_type, bytes, tag).await
    }
    async fn delete_manifest(&self, digest: &Digest) -> Result<(), OciError> {
        self.delete_manifest_impl(digest).await
    }
    async fn push_manifest_config_likely_present(
        &self,
        media_type: &str,
        bytes: &[u8],
        config: &Descriptor,
        config_bytes: &[u8],
    ) -> Result<Descriptor, OciError> {
        self.push_manifest_config_first_try_impl(media_type, bytes, config, config_bytes)
            .await
    }
}

impl ReferrersRead for Repository {
    async fn referrers_mode(&self) -> Result<ReferrersMode, OciError> {
        self.referrers_mode_impl().await
    }
    async fn list_referrers(
        &self,
        subject: &Digest,
        artifact_types: &[String],
    ) -> Result<ReferrerListing, OciError> {
        self.list_referrers_impl(subject, artifact_types, true)
            .await
    }

    async fn list_referrers_skip_legacy(
        &self,
        subject: &Digest,
        artifact_types: &[String],
    ) -> Result<ReferrerListing, OciError> {
        self.list_referrers_impl(subject, artifact_types, false)
            .await
    }
}

impl ReferrersWrite for Repository {
    async fn add_referrer(
        &self,
        subject: &Descriptor,
        referrer: &Descriptor,
    ) -> Result<(), OciError> {
        self.add_referrer_impl(subject, referrer).await
    }
    async fn remove_referrer(&self, subject: &Digest, referrer: &Digest) -> Result<(), OciError> {
        self.remove_referrer_impl(subject, referrer).await
    }
}
