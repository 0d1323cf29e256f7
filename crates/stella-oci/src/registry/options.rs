//! How the registry client reaches registries: TLS and plain HTTP,
//! credentials, the strict token-realm mode, deadlines, the referrers-mode
//! lifetime and upload tuning. Plain data; `Debug` never shows a password.
//!
//! What this module does not do: act on any of it (see [`super::client`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::credentials;

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
    /// ([`super::blobs::DEFAULT_CHUNK_SIZE`]). Files no larger than one chunk go up
    /// in one `PUT`.
    pub upload_chunk_size: u64,
    /// Skip the settle re-check after writing a referrers fallback index.
    /// Only safe when no other process writes referrers of the same subject
    /// at the same time (e.g. one CI job attaching its own evidence): a
    /// concurrent writer can then silently drop our entry. Saves one request
    /// and the settle delay (about 0.1-0.15 s on a local registry) per push.
    pub unsafe_single_writer: bool,
    /// How error messages name what the user can do about them. The
    /// defaults are plain words; a front end passes its own (the CLI names
    /// its flags), so the library never names a flag itself.
    pub words: RegistryWords,
}

/// The remedies error messages suggest, in the caller's vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryWords {
    /// Completes "refused anonymous access to <repo>; …".
    pub log_in: String,
    /// Completes "the registry may speak plain HTTP: …".
    pub use_plain_http: String,
    /// Completes "the registry's certificate is not trusted: …".
    pub trust_ca: String,
    /// Completes "its token realm is on another host (…); refused by …".
    pub strict_realm: String,
}

impl Default for RegistryWords {
    fn default() -> Self {
        RegistryWords {
            log_in: "give credentials for this registry".into(),
            use_plain_http: "connect without TLS".into(),
            trust_ca: "add the registry's CA to the trusted certificates".into(),
            strict_realm: "the strict token-realm setting".into(),
        }
    }
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
            words: RegistryWords::default(),
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
            .field("words", &self.words)
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
