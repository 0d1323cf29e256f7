//! Registry credentials, per registry host, through [`CredentialProvider`]:
//!
//! - [`DockerConfigCredentials`]: the docker client configuration,
//!   `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`), in
//!   docker's order: `credHelpers.<host>`, then `credsStore`, then the inline
//!   `auths.<host>` (`auth` = base64 `user:password`, or `username` /
//!   `password`). A helper is run as `docker-credential-<name> get` with the
//!   server name on stdin and `{"Username","Secret"}` JSON on stdout; it is
//!   killed when it takes longer than its timeout.
//! - [`StaticCredentials`]: fixed credentials for named hosts (the CLI's
//!   `--username`/`--password-stdin` for the registry the command names).
//! - [`ChainCredentials`]: the first provider that knows the host wins.
//!
//! A server can plug its own provider (a vault, per-tenant secrets).
//! Nothing here prints a secret: `Debug` is redacted, and a failing helper's
//! stdout (which may hold the secret) is never echoed into an error.
//!
//! What this module does not do: write credentials (`docker login`),
//! exchange `identitytoken` refresh tokens, or decide which host may receive
//! credentials (that is [`super::auth`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::OciError;

/// Largest `config.json` or helper answer read.
const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;
/// How long a credential helper may take before it is killed.
pub const DEFAULT_HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// A user name and password (or token). `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// What a provider's lookup returns.
pub type CredentialFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Credentials>, OciError>> + Send + 'a>>;

/// Where credentials for a registry host come from.
///
/// `registry` is the host as written in references (`host[:port]`,
/// `docker.io` for Docker Hub). `Ok(None)` means "none for this host"
/// (anonymous); an error means the source itself failed (a configured
/// helper that is missing, crashes or hangs), which is not silently
/// turned into anonymity. The client asks at most once per host per run,
/// and only when the registry asks for authentication.
pub trait CredentialProvider: Send + Sync + std::fmt::Debug {
    fn credentials<'a>(&'a self, registry: &'a str) -> CredentialFuture<'a>;
}

/// Fixed credentials for named registry hosts (and optionally for any host).
#[derive(Clone, Default)]
pub struct StaticCredentials {
    by_host: BTreeMap<String, Credentials>,
    any_host: Option<Credentials>,
}

impl StaticCredentials {
    pub fn new() -> Self {
        Self::default()
    }

    /// Credentials for one registry host (`host[:port]`).
    pub fn with_host(mut self, registry: &str, credentials: Credentials) -> Self {
        self.by_host.insert(host_of(registry), credentials);
        self
    }

    /// The same credentials for every registry this client talks to (what
    /// [`super::RegistryOptions::credentials`] means). Prefer
    /// [`Self::with_host`].
    pub fn for_every_host(credentials: Credentials) -> Self {
        StaticCredentials {
            by_host: BTreeMap::new(),
            any_host: Some(credentials),
        }
    }
}

impl std::fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("hosts", &self.by_host.keys().collect::<Vec<_>>())
            .field("any_host", &self.any_host.is_some())
            .finish()
    }
}

impl CredentialProvider for StaticCredentials {
    fn credentials<'a>(&'a self, registry: &'a str) -> CredentialFuture<'a> {
        let found = self
            .by_host
            .get(&host_of(registry))
            .or(self.any_host.as_ref())
            .cloned();
        Box::pin(async move { Ok(found) })
    }
}

/// Asks each provider in turn; the first that has credentials for the host
/// wins, the first error stops the search.
#[derive(Debug, Clone, Default)]
pub struct ChainCredentials {
    providers: Vec<Arc<dyn CredentialProvider>>,
}

impl ChainCredentials {
    pub fn new(providers: Vec<Arc<dyn CredentialProvider>>) -> Self {
        ChainCredentials { providers }
    }
}

impl CredentialProvider for ChainCredentials {
    fn credentials<'a>(&'a self, registry: &'a str) -> CredentialFuture<'a> {
        Box::pin(async move {
            for p in &self.providers {
                if let Some(c) = p.credentials(registry).await? {
                    return Ok(Some(c));
                }
            }
            Ok(None)
        })
    }
}

/// Credentials from the docker client configuration and its helpers.
#[derive(Debug, Clone)]
pub struct DockerConfigCredentials {
    dir: Option<PathBuf>,
    helper_dir: Option<PathBuf>,
    helper_timeout: Duration,
}

impl DockerConfigCredentials {
    /// Reads `<dir>/config.json`; `None` means `$DOCKER_CONFIG`, else `~/.docker`.
    pub fn new(dir: Option<PathBuf>) -> Self {
        DockerConfigCredentials {
            dir,
            helper_dir: None,
            helper_timeout: DEFAULT_HELPER_TIMEOUT,
        }
    }

    /// Runs helpers from this directory instead of looking them up on `PATH`.
    pub fn with_helper_dir(mut self, dir: PathBuf) -> Self {
        self.helper_dir = Some(dir);
        self
    }

    /// How long a helper may run before it is killed (default
    /// [`DEFAULT_HELPER_TIMEOUT`]).
    pub fn with_helper_timeout(mut self, timeout: Duration) -> Self {
        self.helper_timeout = timeout;
        self
    }
}

impl CredentialProvider for DockerConfigCredentials {
    fn credentials<'a>(&'a self, registry: &'a str) -> CredentialFuture<'a> {
        Box::pin(lookup_with(self, registry))
    }
}

/// The docker config directory: `dir` if given, else `$DOCKER_CONFIG`, else `~/.docker`.
pub fn config_dir(dir: Option<&Path>) -> Option<PathBuf> {
    if let Some(d) = dir {
        return Some(d.to_path_buf());
    }
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".docker"))
}

/// Looks up credentials for `registry` (`host[:port]`) in the docker
/// config under `dir` (see [`config_dir`]). `Ok(None)` when nothing is
/// configured for it.
pub async fn lookup(dir: Option<&Path>, registry: &str) -> Result<Option<Credentials>, OciError> {
    lookup_with(
        &DockerConfigCredentials::new(dir.map(Path::to_path_buf)),
        registry,
    )
    .await
}

async fn lookup_with(
    source: &DockerConfigCredentials,
    registry: &str,
) -> Result<Option<Credentials>, OciError> {
    let Some(dir) = config_dir(source.dir.as_deref()) else {
        return Ok(None);
    };
    let path = dir.join("config.json");
    let bytes = match read_capped(&path).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(OciError::io(format!("reading {}", path.display()), e)),
    };
    let config: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        OciError::InvalidInput(format!("{} is not valid JSON: {e}", path.display()))
    })?;

    let server = server_name(registry);
    if let Some(helpers) = config.get("credHelpers").and_then(|h| h.as_object())
        && let Some(helper) = helpers
            .iter()
            .find(|(k, _)| host_of(k) == host_of(registry))
            .and_then(|(_, v)| v.as_str())
    {
        return run_helper(source, helper, &server).await;
    }
    let inline = config
        .get("auths")
        .and_then(|a| a.as_object())
        .and_then(|a| {
            a.iter()
                .find(|(k, _)| host_of(k) == host_of(registry))
                .map(|(_, v)| v.clone())
        });
    if let Some(store) = config
        .get("credsStore")
        .and_then(|s| s.as_str())
        .filter(|s| !s.is_empty())
        && let Some(c) = run_helper(source, store, &server).await?
    {
        return Ok(Some(c));
    }
    match inline {
        Some(entry) => parse_auth_entry(&entry, &path),
        None => Ok(None),
    }
}

fn parse_auth_entry(
    entry: &serde_json::Value,
    path: &Path,
) -> Result<Option<Credentials>, OciError> {
    if let Some(auth) = entry
        .get("auth")
        .and_then(|a| a.as_str())
        .filter(|a| !a.is_empty())
    {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|e| {
                OciError::InvalidInput(format!(
                    "{}: an auths entry is not base64: {e}",
                    path.display()
                ))
            })?;
        let raw = String::from_utf8(raw).map_err(|_| {
            OciError::InvalidInput(format!("{}: an auths entry is not UTF-8", path.display()))
        })?;
        let (u, p) = raw.split_once(':').ok_or_else(|| {
            OciError::InvalidInput(format!(
                "{}: an auths entry is not user:password",
                path.display()
            ))
        })?;
        return Ok(Some(Credentials {
            username: u.to_string(),
            password: p.to_string(),
        }));
    }
    let user = entry.get("username").and_then(|u| u.as_str());
    let pass = entry.get("password").and_then(|u| u.as_str());
    Ok(match (user, pass) {
        (Some(u), Some(p)) => Some(Credentials {
            username: u.to_string(),
            password: p.to_string(),
        }),
        _ => None,
    })
}

/// The name docker uses for a registry in helpers (Docker Hub's legacy URL).
fn server_name(registry: &str) -> String {
    if registry == "docker.io" {
        "https://index.docker.io/v1/".to_string()
    } else {
        registry.to_string()
    }
}

/// `https://host:port/v1/` → `host:port`; Docker Hub's aliases → `docker.io`.
fn host_of(key: &str) -> String {
    let k = key.trim();
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    let host = k.split('/').next().unwrap_or(k).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_string()
        }
        _ => host,
    }
}

async fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    let f = tokio::fs::File::open(path).await?;
    let mut out = Vec::new();
    f.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut out).await?;
    if out.len() as u64 > MAX_CONFIG_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "file is too large",
        ));
    }
    Ok(out)
}

/// Runs `docker-credential-<name> get`. `Ok(None)` when the helper has no
/// credentials for the server. The helper is killed when it takes longer
/// than the timeout. Its stdout is never echoed (it may hold the secret);
/// only a line of its stderr goes into an error.
async fn run_helper(
    source: &DockerConfigCredentials,
    name: &str,
    server: &str,
) -> Result<Option<Credentials>, OciError> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(OciError::InvalidInput(format!(
            "credential helper name {name:?} is not usable"
        )));
    }
    let program = format!("docker-credential-{name}");
    let path = match &source.helper_dir {
        Some(d) => d.join(&program),
        None => PathBuf::from(&program),
    };
    let mut child = tokio::process::Command::new(&path)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            OciError::Unauthorized(format!("cannot run credential helper {program}: {e}"))
        })?;
    let stdin = child.stdin.take();
    let talk = async move {
        if let Some(mut stdin) = stdin {
            let _ = stdin.write_all(server.as_bytes()).await;
            drop(stdin);
        }
        child.wait_with_output().await
    };
    // On timeout the future (and the child in it) is dropped: kill_on_drop
    // kills the helper.
    let out = tokio::time::timeout(source.helper_timeout, talk)
        .await
        .map_err(|_| {
            OciError::timeout(format!(
                "credential helper {program} did not answer within {}s and was stopped",
                source.helper_timeout.as_secs_f64()
            ))
        })?
        .map_err(|e| OciError::Unauthorized(format!("credential helper {program} failed: {e}")))?;
    if out.stdout.len() as u64 > MAX_CONFIG_BYTES {
        return Err(OciError::Unauthorized(format!(
            "credential helper {program} answered too much"
        )));
    }
    if !out.status.success() {
        let stdout = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stdout.contains("credentials not found")
            || stderr
                .to_ascii_lowercase()
                .contains("credentials not found")
        {
            return Ok(None);
        }
        let line: String = stderr
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        let detail = if line.is_empty() {
            String::new()
        } else {
            format!(": {line}")
        };
        return Err(OciError::Unauthorized(format!(
            "credential helper {program} failed ({}){detail}",
            out.status
        )));
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "Username")]
        username: Option<String>,
        #[serde(rename = "Secret")]
        secret: Option<String>,
    }
    // serde_json's message can quote a value (the secret): only its
    // category and position are shown.
    let a: Answer = serde_json::from_slice(&out.stdout).map_err(|e| {
        OciError::Unauthorized(format!(
            "credential helper {program} answered unusable JSON ({:?} error at line {} column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })?;
    match (a.username, a.secret) {
        (Some(u), Some(s)) if !s.is_empty() => Ok(Some(Credentials {
            username: u,
            password: s,
        })),
        _ => Ok(None),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn host_normalisation() {
        assert_eq!(host_of("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(host_of("http://127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(host_of("Registry.Example:443/"), "registry.example:443");
    }

    #[tokio::test]
    async fn reads_inline_auths_and_helpers() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cr:et");
        let config = serde_json::json!({
            "auths": {
                "https://reg.example:5000/v1/": {"auth": auth},
                "other.example": {"username": "bob", "password": "pw"}
            }
        });
        std::fs::write(dir.path().join("config.json"), config.to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        let c = lookup(Some(dir.path()), "reg.example:5000")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c,
            Some(Credentials {
                username: "alice".into(),
                password: "s3cr:et".into()
            })
        );
        let c = lookup(Some(dir.path()), "other.example")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.map(|c| c.username), Some("bob".to_string()));
        assert_eq!(
            lookup(Some(dir.path()), "nowhere.example")
                .await
                .ok()
                .flatten(),
            None
        );

        // A helper that is configured but missing is a clear error.
        let config =
            serde_json::json!({"credHelpers": {"reg.example:5000": "stella-test-missing-helper"}});
        std::fs::write(dir.path().join("config.json"), config.to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        let err = lookup(Some(dir.path()), "reg.example:5000")
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("docker-credential-stella-test-missing-helper"),
            "{err}"
        );
    }
}
