//! Launches real Debian `docker-registry` (distribution 2.8.2) processes for tests.
//!
//! Each [`DistributionRegistry`] owns a temp dir holding its `config.yml`, its filesystem
//! storage, its logs (`registry.stdout.log` is the access log, one line per request;
//! `registry.stderr.log` the application log) and any generated TLS/auth material. The
//! process listens on a free `127.0.0.1` port, has `storage.delete.enabled: true`, and is
//! killed (and reaped) on drop.
//!
//! Start-up waits until `GET /v2/` answers 200 or 401 (within `startup_timeout`); if the
//! process dies first, the error carries its stderr. A port collision (another process took the
//! port between probing and binding) is retried with a new port.
//!
//! What this does not do: it does not provide the OCI Referrers API (distribution 2.8 lacks it;
//! use [`crate::spec_registry`] for that), and it does not configure storage caches (none), so
//! garbage collection never sees stale cached descriptors.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::TestkitError;
use crate::tls::{TlsFiles, generate_server_tls, write};
use crate::token::TokenServer;

/// Path of the Debian distribution binary.
pub const DOCKER_REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// The `service` name configured for token auth (the token `aud`).
pub const TOKEN_SERVICE: &str = "stella-testkit-registry";
/// The `issuer` configured for token auth (the token `iss`).
pub const TOKEN_ISSUER: &str = "stella-testkit-token-server";

/// How clients authenticate to the registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum DistributionAuth {
    /// No authentication.
    #[default]
    None,
    /// HTTP basic auth against an htpasswd (bcrypt) file with one user.
    Htpasswd {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
    /// Bearer token auth through the in-process [`TokenServer`]; `user`/`password` are the
    /// credentials the token server accepts (basic auth on `GET /token`).
    Token {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
}

/// Options for [`DistributionRegistry::start`].
#[derive(Debug, Clone)]
pub struct DistributionConfig {
    /// Authentication mode.
    pub auth: DistributionAuth,
    /// Serve HTTPS with a generated CA (see [`DistributionRegistry::ca_pem_path`]).
    pub tls: bool,
    /// How long to wait for `GET /v2/` to answer.
    pub startup_timeout: Duration,
    /// distribution log level (`error`, `warn`, `info`, `debug`).
    pub log_level: String,
}

impl Default for DistributionConfig {
    fn default() -> Self {
        DistributionConfig {
            auth: DistributionAuth::None,
            tls: false,
            startup_timeout: Duration::from_secs(20),
            log_level: "warn".to_string(),
        }
    }
}

/// A running `docker-registry serve` process (killed on drop).
pub struct DistributionRegistry {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    config: DistributionConfig,
    config_path: PathBuf,
    storage_dir: PathBuf,
    tls: Option<TlsFiles>,
    token: Option<TokenServer>,
}

impl std::fmt::Debug for DistributionRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistributionRegistry")
            .field("host_port", &self.host_port())
            .field("dir", &self.dir.path())
            .field("running", &self.child.is_some())
            .finish()
    }
}

impl DistributionRegistry {
    /// Starts a registry with `config`.
    pub fn start(config: DistributionConfig) -> Result<Self, TestkitError> {
        if !Path::new(DOCKER_REGISTRY_BIN).exists() {
            return Err(TestkitError::MissingBinary(DOCKER_REGISTRY_BIN.into()));
        }
        let dir = tempfile::Builder::new()
            .prefix("stella-registry-")
            .tempdir()
            .map_err(|e| TestkitError::io("creating registry temp dir", e))?;
        let storage_dir = dir.path().join("storage");
        std::fs::create_dir_all(&storage_dir)
            .map_err(|e| TestkitError::io("creating storage dir", e))?;
        // garbage-collect fails on a storage root without a repositories dir.
        std::fs::create_dir_all(storage_dir.join("docker/registry/v2/repositories"))
            .map_err(|e| TestkitError::io("creating storage dir", e))?;
        let tls = if config.tls {
            let tls_dir = dir.path().join("tls");
            std::fs::create_dir_all(&tls_dir)
                .map_err(|e| TestkitError::io("creating tls dir", e))?;
            Some(generate_server_tls(&tls_dir)?)
        } else {
            None
        };
        let auth_yaml = match &config.auth {
            DistributionAuth::None => (String::new(), None),
            DistributionAuth::Htpasswd { user, password } => {
                let path = dir.path().join("htpasswd");
                write_htpasswd(&path, user, password)?;
                (
                    format!(
                        "auth:\n  htpasswd:\n    realm: stella-testkit\n    path: \"{}\"\n",
                        path.display()
                    ),
                    None,
                )
            }
            DistributionAuth::Token { user, password } => {
                let server = TokenServer::start(user, password, TOKEN_SERVICE, TOKEN_ISSUER)?;
                let bundle = dir.path().join("token-root.pem");
                write(&bundle, server.cert_pem())?;
                (
                    format!(
                        "auth:\n  token:\n    realm: \"{}\"\n    service: \"{}\"\n    issuer: \"{}\"\n    rootcertbundle: \"{}\"\n",
                        server.realm(),
                        TOKEN_SERVICE,
                        TOKEN_ISSUER,
                        bundle.display()
                    ),
                    Some(server),
                )
            }
        };
        let (auth_yaml, token) = auth_yaml;
        let config_path = dir.path().join("config.yml");
        let mut reg = DistributionRegistry {
            dir,
            port: 0,
            child: None,
            config,
            config_path,
            storage_dir,
            tls,
            token,
        };
        let mut last_err = None;
        for _attempt in 0..5 {
            let port = crate::net::free_port()?;
            reg.port = port;
            reg.write_config(&auth_yaml)?;
            match reg.spawn_and_wait() {
                Ok(()) => return Ok(reg),
                Err(e) if is_port_collision(&e) => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| TestkitError::Other("could not start registry".into())))
    }

    /// A plain-HTTP registry without auth.
    pub fn start_plain() -> Result<Self, TestkitError> {
        Self::start(DistributionConfig::default())
    }

    /// A plain-HTTP registry with htpasswd (bcrypt) basic auth for one user.
    pub fn start_htpasswd(user: &str, password: &str) -> Result<Self, TestkitError> {
        Self::start(DistributionConfig {
            auth: DistributionAuth::Htpasswd {
                user: user.to_string(),
                password: password.to_string(),
            },
            ..DistributionConfig::default()
        })
    }

    /// A plain-HTTP registry with bearer-token auth served by an in-process token server that
    /// accepts [`DEFAULT_USER`]/[`DEFAULT_PASSWORD`] (see [`Self::credentials`]).
    pub fn start_token_auth() -> Result<Self, TestkitError> {
        Self::start_token_auth_with(DEFAULT_USER, DEFAULT_PASSWORD)
    }

    /// Like [`Self::start_token_auth`] with chosen credentials.
    pub fn start_token_auth_with(user: &str, password: &str) -> Result<Self, TestkitError> {
        Self::start(DistributionConfig {
            auth: DistributionAuth::Token {
                user: user.to_string(),
                password: password.to_string(),
            },
            ..DistributionConfig::default()
        })
    }

    /// An HTTPS registry (no auth) with a generated CA; see [`Self::ca_pem_path`].
    pub fn start_tls() -> Result<Self, TestkitError> {
        Self::start(DistributionConfig {
            tls: true,
            ..DistributionConfig::default()
        })
    }

    /// `127.0.0.1:PORT`.
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.host_port())
    }

    /// Whether the registry serves HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The CA certificate (PEM file) to trust for a TLS registry.
    pub fn ca_pem_path(&self) -> Option<&Path> {
        self.tls.as_ref().map(|t| t.ca_pem.as_path())
    }

    /// The credentials a client must use (htpasswd or token mode), if any.
    pub fn credentials(&self) -> Option<(String, String)> {
        match &self.config.auth {
            DistributionAuth::None => None,
            DistributionAuth::Htpasswd { user, password }
            | DistributionAuth::Token { user, password } => Some((user.clone(), password.clone())),
        }
    }

    /// The token server, in token-auth mode.
    pub fn token_server(&self) -> Option<&TokenServer> {
        self.token.as_ref()
    }

    /// The filesystem storage root.
    pub fn storage_dir(&self) -> &Path {
        &self.storage_dir
    }

    /// The registry's temp dir (config, logs, TLS material).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The generated `config.yml`.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The access log (the process's stdout): one combined-log-format line per request.
    pub fn access_log_path(&self) -> PathBuf {
        self.dir.path().join("registry.stdout.log")
    }

    /// The application log (the process's stderr).
    pub fn stderr_log_path(&self) -> PathBuf {
        self.dir.path().join("registry.stderr.log")
    }

    /// The lines of the access log so far (each a request `"METHOD /path HTTP/1.1"` line).
    pub fn access_log_lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.access_log_path())
            .map(|s| s.lines().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// Whether the process is running (started and not stopped).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the process and waits for it. Storage and config are kept.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again on the same port with the same storage and config.
    pub fn restart(&mut self) -> Result<(), TestkitError> {
        self.stop();
        // The old socket may linger briefly; retry collisions on the same port.
        let mut last = None;
        for _ in 0..10 {
            match self.spawn_and_wait() {
                Ok(()) => return Ok(()),
                Err(e) if is_port_collision(&e) => {
                    last = Some(e);
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| TestkitError::Other("restart failed".into())))
    }

    /// Runs `docker-registry garbage-collect [--delete-untagged] <config>` with the registry
    /// stopped, then restarts it. Returns the command's combined output.
    pub fn garbage_collect(&mut self, delete_untagged: bool) -> Result<String, TestkitError> {
        self.stop();
        let mut cmd = Command::new(DOCKER_REGISTRY_BIN);
        cmd.arg("garbage-collect");
        if delete_untagged {
            cmd.arg("--delete-untagged");
        }
        cmd.arg(&self.config_path);
        let out = cmd
            .output()
            .map_err(|e| TestkitError::io("running docker-registry garbage-collect", e));
        let restarted = self.restart();
        let out = out?;
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        if !out.status.success() {
            return Err(TestkitError::Command {
                command: format!(
                    "docker-registry garbage-collect {}",
                    self.config_path.display()
                ),
                status: out.status.to_string(),
                output: text,
            });
        }
        restarted?;
        Ok(text)
    }

    /// Writes (once) and returns a `DOCKER_CONFIG` directory whose `config.json` has an
    /// `auths` entry for this registry (empty `auths` when there are no credentials).
    pub fn docker_config_dir(&self) -> Result<PathBuf, TestkitError> {
        let dir = self.dir.path().join("docker-config");
        std::fs::create_dir_all(&dir)
            .map_err(|e| TestkitError::io("creating docker config dir", e))?;
        let mut auths = serde_json::Map::new();
        if let Some((user, password)) = self.credentials() {
            let auth =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            auths.insert(self.host_port(), serde_json::json!({ "auth": auth }));
        }
        let doc = serde_json::json!({ "auths": auths });
        write(&dir.join("config.json"), &doc.to_string())?;
        Ok(dir)
    }

    fn write_config(&self, auth_yaml: &str) -> Result<(), TestkitError> {
        let tls_yaml = match &self.tls {
            Some(t) => format!(
                "  tls:\n    certificate: \"{}\"\n    key: \"{}\"\n",
                t.cert_pem.display(),
                t.key_pem.display()
            ),
            None => String::new(),
        };
        let yaml = format!(
            "version: 0.1\nlog:\n  level: {level}\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: \"{storage}\"\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: stella-testkit-not-a-secret\n{tls_yaml}{auth_yaml}",
            level = self.config.log_level,
            storage = self.storage_dir.display(),
            port = self.port,
        );
        write(&self.config_path, &yaml)
    }

    fn open_log(&self, path: &Path) -> Result<File, TestkitError> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| TestkitError::io(format!("opening {}", path.display()), e))
    }

    fn stderr_tail(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = File::open(self.stderr_log_path()) {
            let _ = f.read_to_string(&mut s);
        }
        let len = s.len();
        if len > 8192 {
            let mut cut = len - 8192;
            while !s.is_char_boundary(cut) {
                cut += 1;
            }
            s = s.split_off(cut);
        }
        s
    }

    fn spawn_and_wait(&mut self) -> Result<(), TestkitError> {
        // Truncate stderr for this attempt so the error shows only this run.
        let _ = std::fs::write(self.stderr_log_path(), b"");
        let stdout = self.open_log(&self.access_log_path())?;
        let stderr = self.open_log(&self.stderr_log_path())?;
        let child = Command::new(DOCKER_REGISTRY_BIN)
            .arg("serve")
            .arg(&self.config_path)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| TestkitError::io("spawning docker-registry", e))?;
        self.child = Some(child);
        let ca = match &self.tls {
            Some(t) => {
                Some(std::fs::read(&t.ca_pem).map_err(|e| TestkitError::io("reading CA pem", e))?)
            }
            None => None,
        };
        let url = format!("{}/v2/", self.base_url());
        let deadline = Instant::now() + self.config.startup_timeout;
        let mut last_error;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(TestkitError::ProcessDied {
                    status: status.to_string(),
                    stderr: self.stderr_tail(),
                });
            }
            match probe(&url, ca.as_deref()) {
                Ok(status) if status == 200 || status == 401 => {
                    // Make sure the answer came from our process, not a port thief.
                    if let Some(child) = self.child.as_mut()
                        && let Ok(Some(status)) = child.try_wait()
                    {
                        self.child = None;
                        return Err(TestkitError::ProcessDied {
                            status: status.to_string(),
                            stderr: self.stderr_tail(),
                        });
                    }
                    return Ok(());
                }
                Ok(status) => last_error = format!("GET /v2/ answered {status}"),
                Err(e) => last_error = e,
            }
            if Instant::now() >= deadline {
                let stderr = self.stderr_tail();
                self.stop();
                return Err(TestkitError::Timeout {
                    seconds: self.config.startup_timeout.as_secs(),
                    last_error,
                    stderr,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for DistributionRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Default user for [`DistributionRegistry::start_token_auth`].
pub const DEFAULT_USER: &str = "stella";
/// Default password for [`DistributionRegistry::start_token_auth`].
pub const DEFAULT_PASSWORD: &str = "stella-password";

fn is_port_collision(e: &TestkitError) -> bool {
    match e {
        TestkitError::ProcessDied { stderr, .. } => stderr.contains("address already in use"),
        _ => false,
    }
}

/// Writes a bcrypt htpasswd file with `htpasswd -Bbn` (apache2-utils).
fn write_htpasswd(path: &Path, user: &str, password: &str) -> Result<(), TestkitError> {
    let out = Command::new("htpasswd")
        .args(["-Bbn", user, password])
        .output()
        .map_err(|e| TestkitError::io("running htpasswd (apache2-utils)", e))?;
    if !out.status.success() {
        return Err(TestkitError::Command {
            command: "htpasswd -Bbn".into(),
            status: out.status.to_string(),
            output: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let line = line.trim();
    write(path, &format!("{line}\n"))
}

/// One `GET` with a 1 s timeout, on a fresh thread with its own runtime (so it works whether
/// or not the caller is inside a tokio runtime). Returns the status code.
fn probe(url: &str, ca_pem: Option<&[u8]>) -> Result<u16, String> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let mut b = reqwest::Client::builder().timeout(Duration::from_secs(1));
                if let Some(pem) = ca_pem {
                    let cert = reqwest::Certificate::from_pem(pem).map_err(|e| e.to_string())?;
                    b = b.add_root_certificate(cert);
                }
                let client = b.build().map_err(|e| e.to_string())?;
                let resp = client.get(url).send().await.map_err(|e| e.to_string())?;
                Ok(resp.status().as_u16())
            })
        })
        .join()
        .unwrap_or_else(|_| Err("probe thread panicked".to_string()))
    })
}

/// Repository `name` at `host_port` through an anonymous plain-HTTP client
/// (a registry started with [`DistributionRegistry::start_plain`], or the
/// spec registry).
pub fn plain_repository(
    host_port: &str,
    name: &str,
) -> Result<stella_oci::registry::Repository, stella_oci::OciError> {
    let client =
        stella_oci::registry::RegistryClient::new(stella_oci::registry::RegistryOptions {
            plain_http: true,
            ..Default::default()
        })?;
    Ok(
        client.repository(&stella_types::reference::RegistryReference {
            registry: host_port.to_string(),
            repository: name.to_string(),
            tag: None,
            digest: None,
        }),
    )
}
