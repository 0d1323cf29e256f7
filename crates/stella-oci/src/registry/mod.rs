//! An OCI distribution registry repository: auth, blobs, manifests, the
//! referrers API with the referrers tag schema fallback, and repair of a
//! fallback index other tools left behind.
//!
//! Layout (one file per endpoint):
//! - [`client`]: the HTTP core shared by every repository of a run: one
//!   connection pool, request counting, deadlines, redirects (followed by
//!   hand, without credentials to other hosts), 429/Retry-After back-off,
//!   transport retries for idempotent requests, error mapping.
//! - [`http`]: helpers both the core and auth use (capped body reads,
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
pub mod referrers;
pub mod repair;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use stella_types::reference::RegistryReference;
use stella_types::{Descriptor, Digest};
use tokio::io::AsyncWrite;

use crate::OciError;
use crate::store::*;

pub use repair::{RepairFinding, RepairReport};

/// How to reach registries.
#[derive(Clone)]
pub struct RegistryOptions {
    /// Use http:// instead of https://. Never implied by the host name
    /// (`localhost` and `127.0.0.1` still use TLS unless this is set).
    pub plain_http: bool,
    /// Extra CA certificates (PEM) to trust, added to the platform roots.
    pub ca_file: Option<PathBuf>,
    /// Explicit credentials (user, password/token) for every registry this
    /// client talks to; they win over `credential_provider`. Prefer a
    /// provider with per-host credentials
    /// ([`credentials::StaticCredentials::with_host`]).
    pub credentials: Option<(String, String)>,
    /// Where credentials per registry host come from; `None` means the
    /// docker config ([`credentials::DockerConfigCredentials`] on
    /// `docker_config_dir`).
    pub credential_provider: Option<Arc<dyn credentials::CredentialProvider>>,
    /// Directory holding the docker `config.json` to read credentials from;
    /// `None` means `$DOCKER_CONFIG`, else `~/.docker`. Only used when no
    /// `credential_provider` is set.
    pub docker_config_dir: Option<PathBuf>,
    /// Strict mode: never send credentials to a token realm on another host
    /// than the registry (by default a realm on another host named by the
    /// registry's own challenge is trusted, as docker does).
    pub no_cross_host_realm: bool,
    /// Deadlines of every network call.
    pub timeouts: RegistryTimeouts,
    /// How long a probed referrers mode (API or tag schema) is trusted
    /// before the registry is probed again.
    pub referrers_mode_ttl: Duration,
    /// Bytes per `PATCH` when uploading files; 0 means the default
    /// ([`blobs::DEFAULT_CHUNK_SIZE`]). Files no larger than one chunk go up
    /// in one `PUT`.
    pub upload_chunk_size: u64,
    /// Skip the settle re-check after writing a referrers fallback index.
    /// Only safe when no other process writes referrers of the same subject
    /// at the same time (e.g. one CI job attaching its own evidence): a
    /// concurrent writer can then silently drop our entry. Saves one request
    /// and the settle delay (about 0.3-0.5 s) per push.
    pub unsafe_single_writer: bool,
}

/// Default lifetime of a probed referrers mode.
pub const DEFAULT_REFERRERS_MODE_TTL: Duration = Duration::from_secs(600);

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            plain_http: false,
            ca_file: None,
            credentials: None,
            credential_provider: None,
            docker_config_dir: None,
            no_cross_host_realm: false,
            timeouts: RegistryTimeouts::default(),
            referrers_mode_ttl: DEFAULT_REFERRERS_MODE_TTL,
            upload_chunk_size: 0,
            unsafe_single_writer: false,
        }
    }
}

/// Never shows a password: credentials appear as the user name only.
impl std::fmt::Debug for RegistryOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryOptions")
            .field("plain_http", &self.plain_http)
            .field("ca_file", &self.ca_file)
            .field(
                "credentials",
                &self
                    .credentials
                    .as_ref()
                    .map(|(user, _)| format!("{user}:<redacted>")),
            )
            .field("credential_provider", &self.credential_provider)
            .field("docker_config_dir", &self.docker_config_dir)
            .field("no_cross_host_realm", &self.no_cross_host_realm)
            .field("timeouts", &self.timeouts)
            .field("referrers_mode_ttl", &self.referrers_mode_ttl)
            .field("upload_chunk_size", &self.upload_chunk_size)
            .field("unsafe_single_writer", &self.unsafe_single_writer)
            .finish()
    }
}

/// Deadlines of the registry client. Every request (token requests
/// included) gets all three; credential helpers have their own timeout
/// ([`credentials::DockerConfigCredentials::with_helper_timeout`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryTimeouts {
    /// Establishing a connection (TCP and TLS).
    pub connect: Duration,
    /// Longest wait for the next bytes of an answer (the status line after
    /// sending a request, or the next chunk of a body).
    pub idle: Duration,
    /// Deadline of one request from sending to the last byte of its answer
    /// when it moves no sizeable body; transfers of `n` bytes get
    /// `request + n / min_bytes_per_second` (a minimum average rate).
    pub request: Duration,
    /// The slowest average transfer rate accepted, in bytes per second.
    pub min_bytes_per_second: u64,
}

impl Default for RegistryTimeouts {
    fn default() -> Self {
        RegistryTimeouts {
            connect: Duration::from_secs(15),
            idle: Duration::from_secs(60),
            request: Duration::from_secs(120),
            min_bytes_per_second: 64 * 1024,
        }
    }
}

impl RegistryTimeouts {
    /// The deadline of a request moving `bytes` bytes.
    pub fn deadline_for(&self, bytes: u64) -> Duration {
        let rate = self.min_bytes_per_second.max(1);
        self.request
            .saturating_add(Duration::from_secs(bytes / rate))
    }
}

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
