//! Service configuration: defaults < `stella.yaml` < `stella.local.yaml` <
//! environment (`STELLA_*`) < command-line flags (seed 003 §3 order, flags
//! on top). Unknown keys in a file are errors that name their path.
//!
//! This module only resolves settings; it opens nothing but config files.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Resolved settings the server runs with. `Debug` redacts database
/// credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Database URL; `sqlite://<data_dir>/stella.db` when not set. On
    /// Postgres the service's own role, a member of `stella_app` that owns
    /// no table.
    pub database: String,
    /// Database URL of the tables' owner, used only to apply migrations
    /// (at start and by `stella serve migrate`); unset: migrations run on
    /// `database`.
    pub migration_database: Option<String>,
    pub data_dir: PathBuf,
    pub issuer: String,
    pub audience: String,
    pub token_ttl_seconds: u64,
    pub rate_limit_per_second: u32,
    pub artifact_max_bytes: u64,
    pub quota_max_count: u64,
    pub quota_max_bytes: u64,
    pub request_timeout_seconds: u64,
    /// A connection that has not sent a complete request head by then is
    /// closed (slow clients).
    pub header_read_timeout_seconds: u64,
    /// External OIDC issuers whose access tokens are accepted too.
    pub external_issuers: Vec<ExternalIssuer>,
    /// Reverse proxies (peer addresses) whose `X-Forwarded-Proto: https`
    /// makes the web console's cookies `Secure` (`console.trustedProxies`,
    /// `STELLA_CONSOLE_TRUSTED_PROXIES`, comma-separated).
    pub console_trusted_proxies: Vec<IpAddr>,
    /// Registry hosts (`host[:port]`) an image check may contact; empty:
    /// any (`imageCheck.allowedRegistries`,
    /// `STELLA_IMAGE_CHECK_ALLOWED_REGISTRIES`, comma-separated).
    pub image_check_registries: Vec<String>,
    /// How long cached client rows are trusted before the database's client
    /// generation is read again: a revoke takes effect within this (plus
    /// one round trip). Zero reads the client row on every request.
    pub revocation_recheck_millis: u64,
    /// Most database connections in the pool (unset: 4 on SQLite, 10 on
    /// Postgres).
    pub pool_max_connections: Option<u32>,
    /// How long a request waits for a pool connection before 503 (unset:
    /// 5 s on SQLite, 3 s on Postgres).
    pub pool_acquire_timeout_seconds: Option<u64>,
    /// Most parsed scanner reports the report cache holds, over all
    /// tenants (0: no cache).
    pub report_cache_max_entries: usize,
    /// Most estimated bytes the report cache holds.
    pub report_cache_max_bytes: u64,
}

/// An external OIDC issuer (a company IdP) whose access tokens the server
/// accepts besides its own: `auth.oidc` in a config file, or
/// `STELLA_AUTH_OIDC` (the same list as YAML or JSON). Exactly one of
/// `jwksFile` (offline) and `jwksUrl` names the issuer's keys.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExternalIssuer {
    /// The `iss` the tokens carry, compared exactly.
    pub issuer: String,
    /// An `aud` the tokens must carry.
    pub audience: String,
    /// A JWK Set file, read at start and again when a token names an
    /// unknown `kid`.
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// A JWK Set URL (`https://`; `http://` only to a loopback address).
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// The top-level claim that names the tenant (a string).
    #[serde(default = "default_tenant_claim")]
    pub tenant_claim: String,
    /// The top-level claim that holds the scopes: a space-separated string
    /// or an array of strings.
    #[serde(default = "default_scope_claim")]
    pub scope_claim: String,
    /// Signature algorithms accepted from this issuer (asymmetric only).
    #[serde(default = "default_external_algorithms")]
    pub algorithms: Vec<String>,
    /// How long fetched keys are used before they are fetched again.
    #[serde(default = "default_jwks_cache_seconds")]
    pub jwks_cache_seconds: u64,
    /// Deadline of one JWKS fetch (connect, answer and body).
    #[serde(default = "default_jwks_timeout_seconds")]
    pub jwks_timeout_seconds: u64,
}

fn default_tenant_claim() -> String {
    "tenant".into()
}

fn default_scope_claim() -> String {
    "scope".into()
}

fn default_external_algorithms() -> Vec<String> {
    vec!["RS256".into(), "ES256".into()]
}

fn default_jwks_cache_seconds() -> u64 {
    300
}

fn default_jwks_timeout_seconds() -> u64 {
    10
}

/// Algorithms an external issuer may be configured with: asymmetric
/// signatures only (no `none`, no HMAC).
pub const EXTERNAL_ALGORITHMS: &[&str] = &[
    "ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA",
];

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("listen", &self.listen)
            .field("database", &redact_url(&self.database))
            .field(
                "migration_database",
                &self.migration_database.as_deref().map(redact_url),
            )
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

/// A database URL for logs and `Debug`: any user and password are replaced.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://<credentials>{}", &url[..scheme_end], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// Values given on the command line; they win over everything else.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub database: Option<String>,
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {file}: `{path}`: {message}")]
    Invalid {
        file: PathBuf,
        path: String,
        message: String,
    },
    #[error("environment variable {name}: {message}")]
    Env { name: String, message: String },
    #[error("{0}")]
    Value(String),
}

/// The file format. Every field optional; unknown fields rejected.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileConfig {
    listen: Option<SocketAddr>,
    database: Option<String>,
    migration_database: Option<String>,
    data_dir: Option<PathBuf>,
    request_timeout_seconds: Option<u64>,
    header_read_timeout_seconds: Option<u64>,
    #[serde(default)]
    pool: FilePool,
    #[serde(default)]
    auth: FileAuth,
    #[serde(default)]
    rate_limit: FileRateLimit,
    #[serde(default)]
    artifacts: FileArtifacts,
    #[serde(default)]
    console: FileConsole,
    #[serde(default)]
    image_check: FileImageCheck,
    #[serde(default)]
    reports: FileReports,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileReports {
    cache_max_entries: Option<usize>,
    cache_max_bytes: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileConsole {
    trusted_proxies: Option<Vec<IpAddr>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileImageCheck {
    allowed_registries: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileAuth {
    issuer: Option<String>,
    audience: Option<String>,
    token_ttl_seconds: Option<u64>,
    revocation_recheck_millis: Option<u64>,
    oidc: Option<Vec<ExternalIssuer>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FilePool {
    max_connections: Option<u32>,
    acquire_timeout_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileRateLimit {
    requests_per_second: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileArtifacts {
    max_bytes: Option<u64>,
    quota_count: Option<u64>,
    quota_bytes: Option<u64>,
}

impl ServerConfig {
    pub fn defaults() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database: String::new(),
            migration_database: None,
            data_dir: PathBuf::from("./stella-data"),
            issuer: "urn:stella:server".into(),
            audience: "stella-api".into(),
            token_ttl_seconds: 900,
            rate_limit_per_second: 40,
            artifact_max_bytes: 1024 * 1024,
            quota_max_count: 10_000,
            quota_max_bytes: 1024 * 1024 * 1024,
            request_timeout_seconds: 30,
            header_read_timeout_seconds: 10,
            external_issuers: Vec::new(),
            console_trusted_proxies: Vec::new(),
            image_check_registries: Vec::new(),
            revocation_recheck_millis: 250,
            pool_max_connections: None,
            pool_acquire_timeout_seconds: None,
            report_cache_max_entries: 256,
            report_cache_max_bytes: 64 * 1024 * 1024,
        }
    }

    /// The bounds of the report cache.
    pub fn report_cache_bounds(&self) -> stella_report::cache::CacheBounds {
        stella_report::cache::CacheBounds {
            max_entries: self.report_cache_max_entries,
            max_bytes: self.report_cache_max_bytes,
        }
    }

    /// The pool settings the store is opened with.
    pub fn pool(&self) -> stella_store::PoolSettings {
        stella_store::PoolSettings {
            max_connections: self.pool_max_connections,
            acquire_timeout: self
                .pool_acquire_timeout_seconds
                .map(std::time::Duration::from_secs),
        }
    }

    fn apply_file(&mut self, f: FileConfig) {
        set(&mut self.listen, f.listen);
        set(&mut self.database, f.database);
        if f.migration_database.is_some() {
            self.migration_database = f.migration_database;
        }
        set(&mut self.data_dir, f.data_dir);
        set(&mut self.request_timeout_seconds, f.request_timeout_seconds);
        set(
            &mut self.header_read_timeout_seconds,
            f.header_read_timeout_seconds,
        );
        set(&mut self.issuer, f.auth.issuer);
        set(&mut self.audience, f.auth.audience);
        set(&mut self.token_ttl_seconds, f.auth.token_ttl_seconds);
        set(&mut self.external_issuers, f.auth.oidc);
        set(
            &mut self.revocation_recheck_millis,
            f.auth.revocation_recheck_millis,
        );
        if f.pool.max_connections.is_some() {
            self.pool_max_connections = f.pool.max_connections;
        }
        if f.pool.acquire_timeout_seconds.is_some() {
            self.pool_acquire_timeout_seconds = f.pool.acquire_timeout_seconds;
        }
        set(
            &mut self.rate_limit_per_second,
            f.rate_limit.requests_per_second,
        );
        set(&mut self.artifact_max_bytes, f.artifacts.max_bytes);
        set(&mut self.quota_max_count, f.artifacts.quota_count);
        set(&mut self.quota_max_bytes, f.artifacts.quota_bytes);
        set(&mut self.console_trusted_proxies, f.console.trusted_proxies);
        set(
            &mut self.image_check_registries,
            f.image_check.allowed_registries,
        );
        set(
            &mut self.report_cache_max_entries,
            f.reports.cache_max_entries,
        );
        set(&mut self.report_cache_max_bytes, f.reports.cache_max_bytes);
    }

    fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        env_parse(env, "STELLA_LISTEN", &mut self.listen)?;
        env_parse(env, "STELLA_DATABASE", &mut self.database)?;
        if let Some(url) = env("STELLA_MIGRATION_DATABASE") {
            self.migration_database = Some(url);
        }
        env_parse(env, "STELLA_DATA_DIR", &mut self.data_dir)?;
        env_parse(
            env,
            "STELLA_REQUEST_TIMEOUT_SECONDS",
            &mut self.request_timeout_seconds,
        )?;
        env_parse(
            env,
            "STELLA_HEADER_READ_TIMEOUT_SECONDS",
            &mut self.header_read_timeout_seconds,
        )?;
        env_parse(env, "STELLA_AUTH_ISSUER", &mut self.issuer)?;
        env_parse(env, "STELLA_AUTH_AUDIENCE", &mut self.audience)?;
        env_parse(
            env,
            "STELLA_AUTH_TOKEN_TTL_SECONDS",
            &mut self.token_ttl_seconds,
        )?;
        env_parse(
            env,
            "STELLA_RATE_LIMIT_REQUESTS_PER_SECOND",
            &mut self.rate_limit_per_second,
        )?;
        env_parse(
            env,
            "STELLA_ARTIFACTS_MAX_BYTES",
            &mut self.artifact_max_bytes,
        )?;
        env_parse(
            env,
            "STELLA_ARTIFACTS_QUOTA_COUNT",
            &mut self.quota_max_count,
        )?;
        env_parse(
            env,
            "STELLA_ARTIFACTS_QUOTA_BYTES",
            &mut self.quota_max_bytes,
        )?;
        env_parse(
            env,
            "STELLA_AUTH_REVOCATION_RECHECK_MILLIS",
            &mut self.revocation_recheck_millis,
        )?;
        env_parse_opt(
            env,
            "STELLA_POOL_MAX_CONNECTIONS",
            &mut self.pool_max_connections,
        )?;
        env_parse_opt(
            env,
            "STELLA_POOL_ACQUIRE_TIMEOUT_SECONDS",
            &mut self.pool_acquire_timeout_seconds,
        )?;
        env_parse(
            env,
            "STELLA_REPORTS_CACHE_MAX_ENTRIES",
            &mut self.report_cache_max_entries,
        )?;
        env_parse(
            env,
            "STELLA_REPORTS_CACHE_MAX_BYTES",
            &mut self.report_cache_max_bytes,
        )?;
        if let Some(raw) = env("STELLA_AUTH_OIDC") {
            self.external_issuers = parse_issuers_env(&raw)?;
        }
        if let Some(raw) = env("STELLA_CONSOLE_TRUSTED_PROXIES") {
            self.console_trusted_proxies = comma_list(&raw)
                .map(|a| {
                    a.parse().map_err(|_| ConfigError::Env {
                        name: "STELLA_CONSOLE_TRUSTED_PROXIES".into(),
                        message: format!("`{a}` is not an IP address"),
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(raw) = env("STELLA_IMAGE_CHECK_ALLOWED_REGISTRIES") {
            self.image_check_registries = comma_list(&raw).map(str::to_string).collect();
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("auth.tokenTtlSeconds", self.token_ttl_seconds),
            (
                "rateLimit.requestsPerSecond",
                u64::from(self.rate_limit_per_second),
            ),
            ("artifacts.maxBytes", self.artifact_max_bytes),
            ("requestTimeoutSeconds", self.request_timeout_seconds),
            ("headerReadTimeoutSeconds", self.header_read_timeout_seconds),
            (
                "pool.maxConnections",
                self.pool_max_connections.map_or(1, u64::from),
            ),
            (
                "pool.acquireTimeoutSeconds",
                self.pool_acquire_timeout_seconds.unwrap_or(1),
            ),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(ConfigError::Value(format!(
                    "`{name}` must be greater than 0"
                )));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, issuer) in self.external_issuers.iter().enumerate() {
            issuer.validate(&format!("auth.oidc[{i}]"), &self.issuer)?;
            if !seen.insert(issuer.issuer.as_str()) {
                return Err(ConfigError::Value(format!(
                    "`auth.oidc[{i}].issuer`: `{}` is configured twice",
                    issuer.issuer
                )));
            }
        }
        Ok(())
    }
}

impl ExternalIssuer {
    fn validate(&self, at: &str, own_issuer: &str) -> Result<(), ConfigError> {
        let bad = |field: &str, message: String| {
            Err(ConfigError::Value(format!("`{at}.{field}`: {message}")))
        };
        if self.issuer.is_empty() {
            return bad("issuer", "must not be empty".into());
        }
        if self.issuer == own_issuer {
            return bad("issuer", "is the server's own issuer".into());
        }
        if self.audience.is_empty() {
            return bad("audience", "must not be empty".into());
        }
        match (&self.jwks_file, &self.jwks_url) {
            (Some(_), None) => {}
            (None, Some(url)) => {
                if let Err(message) = check_jwks_url(url) {
                    return bad("jwksUrl", message);
                }
            }
            _ => return bad("jwksFile", "set exactly one of jwksFile and jwksUrl".into()),
        }
        if self.tenant_claim.is_empty() {
            return bad("tenantClaim", "must not be empty".into());
        }
        if self.scope_claim.is_empty() {
            return bad("scopeClaim", "must not be empty".into());
        }
        if self.algorithms.is_empty() {
            return bad("algorithms", "must name at least one algorithm".into());
        }
        for (j, alg) in self.algorithms.iter().enumerate() {
            if !EXTERNAL_ALGORITHMS.contains(&alg.as_str()) {
                return bad(
                    &format!("algorithms[{j}]"),
                    format!(
                        "`{alg}` is not accepted (one of {})",
                        EXTERNAL_ALGORITHMS.join(", ")
                    ),
                );
            }
        }
        if self.jwks_cache_seconds == 0 {
            return bad("jwksCacheSeconds", "must be greater than 0".into());
        }
        if self.jwks_timeout_seconds == 0 {
            return bad("jwksTimeoutSeconds", "must be greater than 0".into());
        }
        Ok(())
    }
}

/// `https://…`, or `http://` to a loopback host (tests, a local sidecar).
fn check_jwks_url(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|e| format!("not a URL ({e})"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err("plain http is only allowed to a loopback address".into()),
        other => Err(format!("unsupported scheme `{other}`")),
    }
}

/// The non-empty, trimmed items of a comma-separated list.
fn comma_list(raw: &str) -> impl Iterator<Item = &str> {
    raw.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// `STELLA_AUTH_OIDC`: the issuer list as YAML (JSON is YAML too).
fn parse_issuers_env(raw: &str) -> Result<Vec<ExternalIssuer>, ConfigError> {
    if raw.trim().is_empty() {
        return Ok(Vec::new());
    }
    let de = serde_yaml_ng::Deserializer::from_str(raw);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        ConfigError::Env {
            name: "STELLA_AUTH_OIDC".into(),
            message: format!("`{path}`: {}", e.into_inner()),
        }
    })
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

fn env_parse<T: std::str::FromStr>(
    env: &dyn Fn(&str) -> Option<String>,
    name: &str,
    slot: &mut T,
) -> Result<(), ConfigError>
where
    T::Err: std::fmt::Display,
{
    if let Some(raw) = env(name) {
        *slot = raw.parse().map_err(|e: T::Err| ConfigError::Env {
            name: name.into(),
            message: e.to_string(),
        })?;
    }
    Ok(())
}

fn env_parse_opt<T: std::str::FromStr>(
    env: &dyn Fn(&str) -> Option<String>,
    name: &str,
    slot: &mut Option<T>,
) -> Result<(), ConfigError>
where
    T::Err: std::fmt::Display,
{
    if let Some(raw) = env(name) {
        let value = raw.parse().map_err(|e: T::Err| ConfigError::Env {
            name: name.into(),
            message: e.to_string(),
        })?;
        *slot = Some(value);
    }
    Ok(())
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_file(path, &text)
}

fn parse_file(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
    if text.trim().is_empty() {
        return Ok(FileConfig::default());
    }
    let de = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path_str = e.path().to_string();
        ConfigError::Invalid {
            file: path.to_path_buf(),
            path: if path_str == "." {
                "$".into()
            } else {
                path_str
            },
            message: e.into_inner().to_string(),
        }
    })
}

/// Resolves the configuration. `--config` names the main file (it must
/// exist); without it `./stella.yaml` is read if present. A
/// `stella.local.yaml` beside the main file is read on top if present.
pub fn load(
    overrides: &Overrides,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ServerConfig, ConfigError> {
    let mut config = ServerConfig::defaults();
    let main = overrides
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("stella.yaml"));
    if overrides.config.is_some() || main.exists() {
        config.apply_file(read_file(&main)?);
    }
    let local = main.with_file_name("stella.local.yaml");
    if local.exists() {
        config.apply_file(read_file(&local)?);
    }
    config.apply_env(env)?;
    set(&mut config.listen, overrides.listen);
    set(&mut config.database, overrides.database.clone());
    set(&mut config.data_dir, overrides.data_dir.clone());
    if config.database.is_empty() {
        config.database = default_database_url(&config.data_dir);
    }
    config.validate()?;
    Ok(config)
}

/// `sqlite://<data_dir>/stella.db`
pub fn default_database_url(data_dir: &Path) -> String {
    format!("sqlite://{}", data_dir.join("stella.db").display())
}

/// The process environment, for [`load`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn unknown_key_names_its_path() {
        let err = parse_file(
            Path::new("s.yaml"),
            "artifacts:\n  maxBytes: 5\n  quotaCuont: 3\n",
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("artifacts.quotaCuont"), "{msg}");
    }

    #[test]
    fn precedence_env_over_local_over_main_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("stella.yaml");
        std::fs::write(
            &main,
            "rateLimit:\n  requestsPerSecond: 7\nartifacts:\n  maxBytes: 10\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("stella.local.yaml"),
            "artifacts:\n  maxBytes: 20\n",
        )
        .unwrap();
        let env = |name: &str| (name == "STELLA_ARTIFACTS_QUOTA_COUNT").then(|| "3".to_string());
        let overrides = Overrides {
            config: Some(main.clone()),
            ..Default::default()
        };
        let c = load(&overrides, &env).unwrap();
        assert_eq!(c.rate_limit_per_second, 7);
        assert_eq!(c.artifact_max_bytes, 20);
        assert_eq!(c.quota_max_count, 3);
        assert_eq!(c.token_ttl_seconds, 900);
        assert_eq!(c.pool_max_connections, None);
        assert_eq!(c.revocation_recheck_millis, 250);
        let env2 = |name: &str| (name == "STELLA_ARTIFACTS_MAX_BYTES").then(|| "30".to_string());
        assert_eq!(load(&overrides, &env2).unwrap().artifact_max_bytes, 30);
        let bad = |name: &str| (name == "STELLA_LISTEN").then(|| "nope".to_string());
        assert!(
            load(&overrides, &bad)
                .unwrap_err()
                .to_string()
                .contains("STELLA_LISTEN")
        );
    }

    #[test]
    fn console_proxies_and_image_check_registries_from_file_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("stella.yaml");
        std::fs::write(
            &main,
            "console:\n  trustedProxies: [10.0.0.5]\nimageCheck:\n  allowedRegistries: [registry.internal:5000]\n",
        )
        .unwrap();
        let overrides = Overrides {
            config: Some(main.clone()),
            ..Default::default()
        };
        let c = load(&overrides, &|_: &str| None).unwrap();
        assert_eq!(
            c.console_trusted_proxies,
            ["10.0.0.5".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(c.image_check_registries, ["registry.internal:5000"]);
        let env = |name: &str| match name {
            "STELLA_CONSOLE_TRUSTED_PROXIES" => Some(" 127.0.0.1, ::1 ".to_string()),
            "STELLA_IMAGE_CHECK_ALLOWED_REGISTRIES" => Some("a:1,b".to_string()),
            _ => None,
        };
        let c = load(&overrides, &env).unwrap();
        assert_eq!(c.console_trusted_proxies.len(), 2);
        assert_eq!(c.image_check_registries, ["a:1", "b"]);
        let bad = |name: &str| {
            (name == "STELLA_CONSOLE_TRUSTED_PROXIES").then(|| "proxy.example".to_string())
        };
        let err = load(&overrides, &bad).unwrap_err().to_string();
        assert!(err.contains("STELLA_CONSOLE_TRUSTED_PROXIES"), "{err}");
    }

    #[test]
    fn external_issuers_from_file_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("stella.yaml");
        std::fs::write(
            &main,
            "auth:\n  oidc:\n    - issuer: https://idp.example\n      audience: stella\n      jwksFile: /etc/idp.jwks\n      tenantClaim: org\n",
        )
        .unwrap();
        let overrides = Overrides {
            config: Some(main),
            ..Default::default()
        };
        let c = load(&overrides, &|_| None).unwrap();
        let only = c.external_issuers.first().unwrap();
        assert_eq!(only.tenant_claim, "org");
        assert_eq!(only.scope_claim, "scope");
        assert_eq!(only.algorithms, ["RS256", "ES256"]);
        let env = |name: &str| {
            (name == "STELLA_AUTH_OIDC").then(|| {
                r#"[{"issuer": "https://b", "audience": "x", "jwksUrl": "https://b/keys", "algorithms": ["ES256"]}]"#
                    .to_string()
            })
        };
        let c = load(&overrides, &env).unwrap();
        assert_eq!(c.external_issuers.len(), 1);
        assert_eq!(c.external_issuers[0].issuer, "https://b");
    }

    #[test]
    fn report_cache_bounds_from_file_and_env() {
        let defaults = ServerConfig::defaults().report_cache_bounds();
        assert_eq!(
            (defaults.max_entries, defaults.max_bytes),
            (256, 64 * 1024 * 1024)
        );
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("stella.yaml");
        std::fs::write(
            &main,
            "reports:\n  cacheMaxEntries: 3\n  cacheMaxBytes: 4096\n",
        )
        .unwrap();
        let overrides = Overrides {
            config: Some(main),
            ..Default::default()
        };
        let b = load(&overrides, &|_| None).unwrap().report_cache_bounds();
        assert_eq!((b.max_entries, b.max_bytes), (3, 4096));
        let env =
            |name: &str| (name == "STELLA_REPORTS_CACHE_MAX_ENTRIES").then(|| "0".to_string());
        let b = load(&overrides, &env).unwrap().report_cache_bounds();
        assert_eq!(
            (b.max_entries, b.max_bytes),
            (0, 4096),
            "0 turns the cache off"
        );
    }

    #[test]
    fn pool_and_revocation_settings_from_file_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("stella.yaml");
        std::fs::write(
            &main,
            "pool:\n  maxConnections: 32\n  acquireTimeoutSeconds: 7\nauth:\n  revocationRecheckMillis: 0\n",
        )
        .unwrap();
        let overrides = Overrides {
            config: Some(main.clone()),
            ..Default::default()
        };
        let c = load(&overrides, &|_| None).unwrap();
        assert_eq!(c.pool().max_connections, Some(32));
        assert_eq!(
            c.pool().acquire_timeout,
            Some(std::time::Duration::from_secs(7))
        );
        assert_eq!(c.revocation_recheck_millis, 0);
        let env = |name: &str| match name {
            "STELLA_POOL_MAX_CONNECTIONS" => Some("3".to_string()),
            "STELLA_POOL_ACQUIRE_TIMEOUT_SECONDS" => Some("1".to_string()),
            "STELLA_AUTH_REVOCATION_RECHECK_MILLIS" => Some("900".to_string()),
            _ => None,
        };
        let c = load(&overrides, &env).unwrap();
        assert_eq!(
            (c.pool_max_connections, c.pool_acquire_timeout_seconds),
            (Some(3), Some(1))
        );
        assert_eq!(c.revocation_recheck_millis, 900);
        let zero = |name: &str| (name == "STELLA_POOL_MAX_CONNECTIONS").then(|| "0".to_string());
        let err = load(&overrides, &zero).unwrap_err().to_string();
        assert!(err.contains("pool.maxConnections"), "{err}");
        std::fs::write(&main, "pool:\n  maxConections: 3\n").unwrap();
        let err = load(&overrides, &|_| None).unwrap_err().to_string();
        assert!(err.contains("pool.maxConections"), "{err}");
    }

    #[test]
    fn external_issuer_mistakes_are_errors_with_their_path() {
        let cases = [
            (
                r#"[{"issuer": "i", "audience": "a", "jwksFile": "f", "tenantClam": "t"}]"#,
                "tenantClam",
            ),
            (
                r#"[{"issuer": "i", "audience": "a"}]"#,
                "exactly one of jwksFile and jwksUrl",
            ),
            (
                r#"[{"issuer": "i", "audience": "a", "jwksFile": "f", "jwksUrl": "https://x"}]"#,
                "exactly one",
            ),
            (
                r#"[{"issuer": "i", "audience": "a", "jwksUrl": "http://idp.example/keys"}]"#,
                "auth.oidc[0].jwksUrl",
            ),
            (
                r#"[{"issuer": "i", "audience": "a", "jwksFile": "f", "algorithms": ["HS256"]}]"#,
                "auth.oidc[0].algorithms[0]",
            ),
            (
                r#"[{"issuer": "i", "audience": "a", "jwksFile": "f", "algorithms": ["none"]}]"#,
                "not accepted",
            ),
            (
                r#"[{"issuer": "urn:stella:server", "audience": "a", "jwksFile": "f"}]"#,
                "own issuer",
            ),
            (
                r#"[{"issuer": "i", "audience": "a", "jwksFile": "f"}, {"issuer": "i", "audience": "b", "jwksFile": "g"}]"#,
                "twice",
            ),
        ];
        for (raw, expected) in cases {
            let env = |name: &str| (name == "STELLA_AUTH_OIDC").then(|| raw.to_string());
            let err = load(&Overrides::default(), &env).unwrap_err().to_string();
            assert!(err.contains(expected), "{raw}: {err}");
        }
        let env = |name: &str| {
            (name == "STELLA_AUTH_OIDC").then(|| {
                r#"[{"issuer": "i", "audience": "a", "jwksUrl": "http://127.0.0.1:9/k"}]"#
                    .to_string()
            })
        };
        assert!(load(&Overrides::default(), &env).is_ok());
    }
}
