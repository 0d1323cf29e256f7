//! A `stella serve` process on 127.0.0.1 (port 0, the bound address read
//! from its first line of output) for the integration tests that need a
//! live server with their own environment: `serve init` in a temp data
//! dir, then `serve`, stopped with SIGTERM.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_stella");

pub struct Server {
    pub child: Child,
    pub url: String,
    pub data: tempfile::TempDir,
    pub admin_secret: String,
}

/// `crates/stella-server/tests/api/<name>`.
pub fn api_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../stella-server/tests/api")
        .join(name)
}

pub fn start(env: &[(&str, &str)]) -> Server {
    let data = tempfile::tempdir().unwrap();
    let init = Command::new(BIN)
        .args(["serve", "init", "--output", "json", "--data-dir"])
        .arg(data.path())
        .current_dir(data.path())
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "init: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&init.stdout).unwrap();
    let admin_secret = doc["clientSecret"].as_str().unwrap().to_string();
    spawn(data, admin_secret, env)
}

/// `stella serve` on an initialised data directory.
fn spawn(data: tempfile::TempDir, admin_secret: String, env: &[(&str, &str)]) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .current_dir(data.path())
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(data.path().join("serve.log")).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let Some(url) = line.trim().strip_prefix("stella serve: listening on ") else {
        let _ = child.kill();
        let log = std::fs::read_to_string(data.path().join("serve.log")).unwrap_or_default();
        panic!("unexpected first line {line:?}; log:\n{log}");
    };
    let url = url.to_string();
    Server {
        child,
        url,
        data,
        admin_secret,
    }
}

impl Server {
    /// Runs `python3 <script> <case>` with the server's coordinates in
    /// the environment (as check_api.py expects) plus `env`.
    pub fn run_case(&self, script: &str, case: &str, env: &[(&str, &str)]) -> std::process::Output {
        Command::new("python3")
            .arg(api_script(script))
            .arg(case)
            .env("STELLA_URL", &self.url)
            .env("STELLA_BIN", BIN)
            .env("STELLA_DATA_DIR", self.data.path())
            .env("STELLA_ADMIN_SECRET", &self.admin_secret)
            .env("STELLA_PID", self.child.id().to_string())
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }

    /// An access token of the `admin` client, fetched with curl.
    pub fn admin_token(&self) -> String {
        let out = Command::new("curl")
            .args([
                "-sf",
                "-d",
                "grant_type=client_credentials",
                "-d",
                "client_id=admin",
            ])
            .arg("--data-urlencode")
            .arg(format!("client_secret={}", self.admin_secret))
            .arg(format!("{}/connect/token", self.url))
            .output()
            .unwrap();
        assert!(out.status.success());
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        doc["access_token"].as_str().unwrap().to_string()
    }

    /// SIGTERM, then `serve` again on the same data directory with `env`
    /// (a new port; the log starts over).
    pub fn restart(self, env: &[(&str, &str)]) -> Server {
        let Server {
            mut child,
            data,
            admin_secret,
            ..
        } = self;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let status = child.wait().unwrap();
        assert!(status.success(), "serve exited with {status}");
        spawn(data, admin_secret, env)
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
