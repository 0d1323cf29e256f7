//! Service configuration: defaults < `stella.yaml` < `stella.local.yaml` <
//! environment (`STELLA_*`) < command-line flags (seed 003 §3 order, flags
//! on top). Unknown keys in a file are errors that name their path.
//!
//! This module only resolves settings; it opens nothing but config files.

use std::net::SocketAddr;
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
}

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
    auth: FileAuth,
    #[serde(default)]
    rate_limit: FileRateLimit,
    #[serde(default)]
    artifacts: FileArtifacts,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileAuth {
    issuer: Option<String>,
    audience: Option<String>,
    token_ttl_seconds: Option<u64>,
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
        set(
            &mut self.rate_limit_per_second,
            f.rate_limit.requests_per_second,
        );
        set(&mut self.artifact_max_bytes, f.artifacts.max_bytes);
        set(&mut self.quota_max_count, f.artifacts.quota_count);
        set(&mut self.quota_max_bytes, f.artifacts.quota_bytes);
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
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(ConfigError::Value(format!(
                    "`{name}` must be greater than 0"
                )));
            }
        }
        Ok(())
    }
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
}
