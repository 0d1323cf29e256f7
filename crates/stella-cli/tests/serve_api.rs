//! `stella serve` as a real process on 127.0.0.1 (port 0, the bound address
//! read from its first line of output), exercised by an independent client:
//! Python `requests` + `cryptography` in
//! `crates/stella-server/tests/api/check_api.py`, one case per test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_stella");

struct Server {
    child: Child,
    url: String,
    data: tempfile::TempDir,
    admin_secret: String,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../stella-server/tests/api/check_api.py")
}

fn start(env: &[(&str, &str)]) -> Server {
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
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .current_dir(data.path())
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        // A file, not a pipe: nobody reads the log while the server runs.
        .stderr(std::fs::File::create(data.path().join("serve.log")).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("stella serve: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    Server {
        child,
        url,
        data,
        admin_secret,
    }
}

impl Server {
    fn run_case(&self, case: &str) -> std::process::Output {
        Command::new("python3")
            .arg(script())
            .arg(case)
            .env("STELLA_URL", &self.url)
            .env("STELLA_BIN", BIN)
            .env("STELLA_DATA_DIR", self.data.path())
            .env("STELLA_ADMIN_SECRET", &self.admin_secret)
            .env("STELLA_PID", self.child.id().to_string())
            .output()
            .unwrap()
    }

    /// SIGTERM, then the exit status and the server's log.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        let log = std::fs::read_to_string(self.data.path().join("serve.log")).unwrap();
        (status, log)
    }
}

fn check(case: &str, env: &[(&str, &str)]) {
    let server = start(env);
    let out = server.run_case(case);
    let secret = server.admin_secret.clone();
    let (status, log) = server.stop();
    assert!(
        out.status.success(),
        "case {case} failed:\n{}\n{}\nserver log:\n{log}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(status.success(), "server exit {status:?}\n{log}");
    assert!(
        !log.contains(&secret),
        "the client secret appears in the server log"
    );
    assert!(!log.contains("eyJ"), "a token appears in the server log");
    assert!(
        log.contains("route=/excititor/providers/{providerId}/artifacts")
            || case == "ops_and_openapi"
    );
}

const FAST: &[(&str, &str)] = &[("STELLA_RATE_LIMIT_REQUESTS_PER_SECOND", "100000")];

#[test]
fn serve_token_flow() {
    check("token_flow", FAST);
}

#[test]
fn serve_bad_tokens_are_401() {
    check("bad_tokens", FAST);
}

#[test]
fn serve_missing_scope_is_403() {
    check("scopes", FAST);
}

#[test]
fn serve_cross_tenant_requests_never_leak() {
    check("isolation", FAST);
}

#[test]
fn serve_artifact_upload_list_get_delete() {
    check("artifacts", FAST);
}

#[test]
fn serve_size_cap_and_quota_are_413() {
    check(
        "limits",
        &[
            ("STELLA_RATE_LIMIT_REQUESTS_PER_SECOND", "100000"),
            ("STELLA_ARTIFACTS_MAX_BYTES", "4096"),
            ("STELLA_ARTIFACTS_QUOTA_COUNT", "4"),
            ("STELLA_ARTIFACTS_QUOTA_BYTES", "9000"),
        ],
    );
}

#[test]
fn serve_bad_input_is_problem_json() {
    check("bad_input", FAST);
}

#[test]
fn serve_rate_limit_headers_and_429() {
    check(
        "rate_limit",
        &[("STELLA_RATE_LIMIT_REQUESTS_PER_SECOND", "5")],
    );
}

#[test]
fn serve_ops_routes_and_openapi_document() {
    check("ops_and_openapi", FAST);
}

#[test]
fn serve_drops_clients_that_never_finish_their_request_head() {
    let env = [
        ("STELLA_RATE_LIMIT_REQUESTS_PER_SECOND", "100000"),
        ("STELLA_HEADER_READ_TIMEOUT_SECONDS", "1"),
    ];
    let server = start(&env);
    let out = server.run_case("slow_client");
    let (status, log) = server.stop();
    assert!(
        out.status.success(),
        "{}\n{}\n{log}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(status.success(), "{log}");
}

#[test]
fn serve_schemathesis_finds_no_server_error_or_document_break() {
    check("schemathesis", FAST);
}

#[test]
fn serve_admin_clients_and_key_rotation() {
    check("admin_cli", FAST);
}

#[test]
fn serve_sigterm_drains_in_flight_request_and_exits_0() {
    let mut server = start(FAST);
    let out = server.run_case("sigterm_drain");
    let status = server.child.wait().unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(status.code(), Some(0));
}

#[test]
fn serve_unknown_config_key_is_an_error_naming_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("stella.yaml");
    std::fs::write(&config, "artifacts:\n  maxBytez: 5\n").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "migrate", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("artifacts.maxBytez"), "{stderr}");
}

#[test]
fn serve_refuses_a_database_from_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let migrate = |d: &Path| {
        Command::new(BIN)
            .args(["serve", "migrate", "--data-dir"])
            .arg(d)
            .output()
            .unwrap()
    };
    assert!(migrate(dir.path()).status.success());
    let db = dir.path().join("stella.db");
    let bump = Command::new("sqlite3")
        .arg(&db)
        .arg("INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (99, 'future', 1, x'00', 0);")
        .status()
        .unwrap();
    assert!(bump.success());
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("newer than this stella supports"),
        "{stderr}"
    );
}

#[test]
fn auth_login_status_whoami_logout_against_a_live_server() {
    let server = start(FAST);
    let config_home = tempfile::tempdir().unwrap();
    let stella = |args: &[&str], stdin: &str| {
        use std::io::Write;
        let mut child = Command::new(BIN)
            .args(args)
            .env("XDG_CONFIG_HOME", config_home.path())
            .env("STELLA_SERVER", &server.url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let login = [
        "auth",
        "login",
        "--client-id",
        "admin",
        "--client-secret-stdin",
    ];
    let wrong = stella(&login, "not-the-secret\n");
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert_eq!(wrong.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("stella: error: Invalid client: ")
            && stderr.contains("(INVALID_CLIENT)"),
        "{stderr}"
    );
    let ok = stella(&login, &format!("{}\n", server.admin_secret));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let cache = config_home.path().join("stella/token.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let who = stella(&["auth", "whoami", "--output", "json"], "");
    let doc: serde_json::Value = serde_json::from_slice(&who.stdout).unwrap();
    assert_eq!(doc["subject"], "admin");
    assert_eq!(doc["tenant"], "default");
    assert!(doc["remainingSeconds"].as_i64().unwrap() > 0);
    let status = stella(&["auth", "status", "--output", "json"], "");
    let doc: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(doc["server"], server.url.as_str());
    assert_eq!(doc["expired"], false);
    // The cached token works against the API (checked with curl, not our client).
    let cached: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cache).unwrap()).unwrap();
    let token = cached["accessToken"].as_str().unwrap();
    let curl = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(format!("{}/excititor/providers/p/artifacts", server.url))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&curl.stdout), "200");
    // `stella vex providers artifacts` lists with the cached token what curl staged.
    let upload = Command::new("curl")
        .args(["-sf", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .args(["-F", "file=@-;type=application/json"])
        .arg(format!(
            "{}/excititor/providers/excititor:oci-openvex/artifacts",
            server.url
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut child = upload;
        child.stdin.take().unwrap().write_all(b"{}").unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let staged: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let listed = stella(
            &[
                "vex",
                "providers",
                "artifacts",
                "excititor:oci-openvex",
                "--output",
                "json",
            ],
            "",
        );
        assert!(
            listed.status.success(),
            "{}",
            String::from_utf8_lossy(&listed.stderr)
        );
        let items: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
        assert_eq!(items.as_array().unwrap().len(), 1);
        assert_eq!(items[0]["artifactId"], staged["artifactId"]);
        assert_eq!(items[0]["mimeType"], "application/json");
        let bad = stella(&["vex", "providers", "artifacts", "a..b"], "");
        let stderr = String::from_utf8_lossy(&bad.stderr);
        assert_eq!(bad.status.code(), Some(2));
        assert!(stderr.contains("(VALIDATION_FAILED)"), "{stderr}");
    }
    assert!(stella(&["auth", "logout"], "").status.success());
    assert!(!cache.exists());
    let after = stella(&["auth", "status"], "");
    assert_eq!(after.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&after.stderr).contains("not logged in"));
    let (exit, _) = server.stop();
    assert!(exit.success());
}
