//! The one harness of the `stella serve` integration tests
//! (`serve_api.rs`, `serve_client_cli.rs`, `serve_oidc.rs`): a real server
//! process on 127.0.0.1 (port 0, the bound address read from its first line
//! of output) after `serve init` in a temp data dir, on SQLite or on a
//! throwaway Postgres cluster (`stella_testkit::postgres::Cluster`, with
//! migrations run as the tables' owner and the server connected as a
//! `stella_app` member), stopped with SIGTERM; and the Python checks under
//! `crates/stella-server/tests/api/` run against it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use stella_testkit::postgres::Cluster;

pub const BIN: &str = env!("CARGO_BIN_EXE_stella");

pub struct Server {
    pub child: Child,
    pub url: String,
    pub data: tempfile::TempDir,
    pub admin_secret: String,
    /// `STELLA_DATABASE` / `STELLA_MIGRATION_DATABASE` for the server and
    /// its admin commands, and `STELLA_TEST_PG_URL` for the Python checks
    /// (empty on SQLite).
    pub db_env: Vec<(String, String)>,
    /// Declared after `child`: stopped only after the server.
    pub pg: Option<Cluster>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// `crates/stella-server/tests/api/<name>`.
pub fn api_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../stella-server/tests/api")
        .join(name)
}

/// A cluster with database `stella` (owner `stella_owner`, service role
/// `stella_svc`) and the environment that points Stella at it.
pub fn postgres_env() -> (Cluster, Vec<(String, String)>) {
    let cluster = Cluster::start().unwrap();
    let db = cluster.stella_database("stella").unwrap();
    let env = vec![
        ("STELLA_DATABASE".to_string(), db.service_url.clone()),
        (
            "STELLA_MIGRATION_DATABASE".to_string(),
            db.owner_url.clone(),
        ),
        ("STELLA_TEST_PG_URL".to_string(), db.owner_url),
    ];
    (cluster, env)
}

/// A server on SQLite with `env` on top of the process environment.
pub fn start(env: &[(&str, &str)]) -> Server {
    start_on(Backend::Sqlite, env)
}

pub fn start_on(backend: Backend, env: &[(&str, &str)]) -> Server {
    let data = tempfile::tempdir().unwrap();
    let (pg, db_env) = match backend {
        Backend::Sqlite => (None, Vec::new()),
        Backend::Postgres => {
            let (cluster, env) = postgres_env();
            (Some(cluster), env)
        }
    };
    let init = Command::new(BIN)
        .args(["serve", "init", "--output", "json", "--data-dir"])
        .arg(data.path())
        .current_dir(data.path())
        .envs(db_env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "init: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&init.stdout).unwrap();
    let admin_secret = doc["clientSecret"].as_str().unwrap().to_string();
    let (child, url) = spawn_server(data.path(), env, &db_env, "serve.log");
    Server {
        child,
        url,
        data,
        admin_secret,
        db_env,
        pg,
    }
}

/// Starts `stella serve` on `data` (after init), logging to `data/<log>`;
/// returns the process and its URL.
pub fn spawn_server(
    data: &Path,
    env: &[(&str, &str)],
    db_env: &[(String, String)],
    log: &str,
) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .current_dir(data)
        .envs(env.iter().copied())
        .envs(db_env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        // A file, not a pipe: nobody reads the log while the server runs.
        .stderr(std::fs::File::create(data.join(log)).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let Some(url) = line.trim().strip_prefix("stella serve: listening on ") else {
        let _ = child.kill();
        let log = std::fs::read_to_string(data.join(log)).unwrap_or_default();
        panic!("unexpected first line {line:?}; log:\n{log}");
    };
    (child, url.to_string())
}

impl Server {
    /// Runs `python3 <script> <case>` with the server's coordinates in
    /// the environment (as check_api.py expects), its database's, and `env`.
    pub fn run_case(&self, script: &str, case: &str, env: &[(&str, &str)]) -> std::process::Output {
        Command::new("python3")
            .arg(api_script(script))
            .arg(case)
            .env("STELLA_URL", &self.url)
            .env("STELLA_BIN", BIN)
            .env("STELLA_DATA_DIR", self.data.path())
            .env("STELLA_ADMIN_SECRET", &self.admin_secret)
            .env("STELLA_PID", self.child.id().to_string())
            .envs(self.db_env.iter().map(|(k, v)| (k, v)))
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }

    /// An access token of the `admin` client, fetched with curl.
    pub fn admin_token(&self) -> String {
        client_token(&self.url, "admin", &self.admin_secret)
    }

    /// SIGTERM, then `serve` again on the same data directory and database
    /// with `env` (a new port; the log starts over).
    pub fn restart(mut self, env: &[(&str, &str)]) -> Server {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "serve exited with {status}");
        let (child, url) = spawn_server(self.data.path(), env, &self.db_env, "serve.log");
        self.child = child;
        self.url = url;
        self
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data.path().join("serve.log")).unwrap()
    }

    /// SIGTERM, then the exit status and the server's log.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        let log = self.log();
        (status, log)
    }
}

/// Fails with both outputs unless `out` succeeded.
pub fn assert_ok(out: &std::process::Output, log: &str) {
    assert!(
        out.status.success(),
        "{}\n{}\nserver log:\n{log}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An access token for `client` from the server at `url` (OAuth2 client
/// credentials, fetched with curl).
pub fn client_token(url: &str, client: &str, secret: &str) -> String {
    let out = Command::new("curl")
        .args(["-sf", "-d", "grant_type=client_credentials", "-d"])
        .arg(format!("client_id={client}"))
        .arg("--data-urlencode")
        .arg(format!("client_secret={secret}"))
        .arg(format!("{url}/connect/token"))
        .output()
        .unwrap();
    assert!(out.status.success(), "token for {client} from {url}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["access_token"].as_str().unwrap().to_string()
}
