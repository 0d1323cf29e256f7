//! `stella serve` as a real process on 127.0.0.1 (port 0, the bound address
//! read from its first line of output), exercised by an independent client:
//! Python `requests` + `cryptography` in
//! `crates/stella-server/tests/api/check_api.py`, one case per test. Every
//! case runs on SQLite and (tests named `pg_…`) on a throwaway Postgres
//! cluster (`stella_testkit::postgres::Cluster`), with migrations run as the
//! tables' owner and the server connected as a `stella_app` member.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve_harness;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use serve_harness::{BIN, Backend, api_script, postgres_env, spawn_server, start, start_on};

fn check(case: &str, env: &[(&str, &str)]) {
    check_on(Backend::Sqlite, case, env);
}

fn check_on(backend: Backend, case: &str, env: &[(&str, &str)]) {
    let server = start_on(backend, env);
    let out = server.run_case("check_api.py", case, &[]);
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
    let out = server.run_case("check_api.py", "slow_client", &[]);
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
    let out = server.run_case("check_api.py", "sigterm_drain", &[]);
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

// ---- the same suite on Postgres ----

const PG: Backend = Backend::Postgres;

#[test]
fn pg_serve_token_flow() {
    check_on(PG, "token_flow", FAST);
}

#[test]
fn pg_serve_bad_tokens_are_401() {
    check_on(PG, "bad_tokens", FAST);
}

#[test]
fn pg_serve_missing_scope_is_403() {
    check_on(PG, "scopes", FAST);
}

#[test]
fn pg_serve_cross_tenant_requests_never_leak() {
    check_on(PG, "isolation", FAST);
}

#[test]
fn pg_serve_artifact_upload_list_get_delete() {
    check_on(PG, "artifacts", FAST);
}

#[test]
fn pg_serve_size_cap_and_quota_are_413() {
    check_on(
        PG,
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
fn pg_serve_bad_input_is_problem_json() {
    check_on(PG, "bad_input", FAST);
}

#[test]
fn pg_serve_rate_limit_headers_and_429() {
    check_on(
        PG,
        "rate_limit",
        &[("STELLA_RATE_LIMIT_REQUESTS_PER_SECOND", "5")],
    );
}

#[test]
fn pg_serve_ops_routes_and_openapi_document() {
    check_on(PG, "ops_and_openapi", FAST);
}

#[test]
fn pg_serve_schemathesis_finds_no_server_error_or_document_break() {
    check_on(PG, "schemathesis", FAST);
}

#[test]
fn pg_serve_admin_clients_and_key_rotation() {
    check_on(PG, "admin_cli", FAST);
}

#[test]
fn pg_serve_drops_clients_that_never_finish_their_request_head() {
    let env = [
        ("STELLA_RATE_LIMIT_REQUESTS_PER_SECOND", "100000"),
        ("STELLA_HEADER_READ_TIMEOUT_SECONDS", "1"),
    ];
    let server = start_on(PG, &env);
    let out = server.run_case("check_api.py", "slow_client", &[]);
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
fn pg_serve_sigterm_drains_in_flight_request_and_exits_0() {
    let mut server = start_on(PG, FAST);
    let out = server.run_case("check_api.py", "sigterm_drain", &[]);
    let status = server.child.wait().unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(status.code(), Some(0));
}

/// Two `stella serve` processes on one Postgres database (same data
/// directory, so the same signing keys): uploads through either are read,
/// listed and deleted through the other.
#[test]
fn pg_two_servers_on_one_database_serve_the_same_data() {
    let server = start_on(PG, FAST);
    let (mut second, url2) = spawn_server(server.data.path(), FAST, &server.db_env, "serve2.log");
    let out = Command::new("python3")
        .arg(api_script("check_api.py"))
        .arg("shared_database")
        .env("STELLA_URL", &server.url)
        .env("STELLA_URL_2", &url2)
        .env("STELLA_BIN", BIN)
        .env("STELLA_DATA_DIR", server.data.path())
        .env("STELLA_ADMIN_SECRET", &server.admin_secret)
        .env("STELLA_PID", server.child.id().to_string())
        .envs(server.db_env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let _ = Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status();
    let second_status = second.wait().unwrap();
    let log2 = std::fs::read_to_string(server.data.path().join("serve2.log")).unwrap();
    let (status, log) = server.stop();
    assert!(
        out.status.success(),
        "{}\n{}\nserver 1:\n{log}\nserver 2:\n{log2}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(status.success() && second_status.success(), "{log}\n{log2}");
    for l in [&log, &log2] {
        assert!(l.contains("route=/excititor/providers/{providerId}/artifacts/{artifactId}"));
    }
}

/// `curl` (an independent client): status, content type and body.
fn curl(args: &[&str]) -> (u16, String, String) {
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}\n%{content_type}"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut parts = text.rsplitn(3, '\n');
    let content_type = parts.next().unwrap_or_default().to_string();
    let status = parts.next().unwrap_or_default().parse().unwrap_or(0);
    let body = parts.next().unwrap_or_default().to_string();
    (status, content_type, body)
}

fn assert_503_problem((status, content_type, body): (u16, String, String), what: &str) {
    assert_eq!(status, 503, "{what}: {body}");
    assert!(
        content_type.starts_with("application/problem+json"),
        "{what}: {content_type}"
    );
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["code"], "SERVICE_UNAVAILABLE", "{what}: {body}");
    assert_eq!(doc["status"], 503, "{what}: {body}");
}

/// The database stops under a running server: every call that needs it is
/// a 503 problem, `/readyz` fails, `/healthz` still answers, and the upload
/// that failed left no row once the database is back.
#[test]
fn pg_database_down_is_503_problem_and_nothing_half_written() {
    let server = start_on(PG, FAST);
    let base = server.url.clone();
    let secret = format!("client_secret={}", server.admin_secret);
    let token_args = [
        "-d",
        "grant_type=client_credentials",
        "-d",
        "client_id=admin",
        "--data-urlencode",
        &secret,
    ];
    let token_url = format!("{base}/connect/token");
    let (status, _, body) = curl(&[&token_args[..], &[&token_url]].concat());
    assert_eq!(status, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    let bearer = format!(
        "Authorization: Bearer {}",
        doc["access_token"].as_str().unwrap()
    );
    let payload = server.data.path().join("payload.bin");
    std::fs::write(&payload, vec![42u8; 2000]).unwrap();
    let file_arg = format!("file=@{}", payload.display());
    let artifacts = format!("{base}/excititor/providers/p/artifacts");
    let upload = || curl(&["-H", &bearer, "-F", &file_arg, &artifacts]);
    let (status, _, kept) = upload();
    assert_eq!(status, 201, "{kept}");

    let cluster = server.pg.as_ref().unwrap();
    cluster.stop().unwrap();
    assert_503_problem(curl(&[&format!("{base}/readyz")]), "readyz");
    assert_503_problem(upload(), "upload");
    assert_503_problem(curl(&["-H", &bearer, &artifacts]), "list");
    assert_503_problem(
        curl(&[&token_args[..], &[&token_url]].concat()),
        "token request",
    );
    let (status, _, body) = curl(&[&format!("{base}/healthz")]);
    assert_eq!((status, body.as_str()), (200, "ok"));

    cluster.restart().unwrap();
    let (status, _, body) = curl(&[&format!("{base}/readyz")]);
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = curl(&["-H", &bearer, &artifacts]);
    assert_eq!(status, 200, "{body}");
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
    let kept: serde_json::Value = serde_json::from_str(&kept).unwrap();
    assert_eq!(
        listed["items"],
        serde_json::json!([kept]),
        "only the upload made before"
    );
    let (exit, log) = server.stop();
    assert!(exit.success(), "{log}");
    assert!(log.contains("database unavailable"), "{log}");
    assert!(
        !log.contains("stella-test-pw"),
        "a database password is in the log"
    );
}

#[test]
fn pg_migrate_as_owner_admin_with_database_flag_and_roles_refused() {
    let (cluster, env) = postgres_env();
    let url = |name: &str| env.iter().find(|(k, _)| k == name).unwrap().1.clone();
    let (service, owner) = (url("STELLA_DATABASE"), url("STELLA_MIGRATION_DATABASE"));
    let dir = tempfile::tempdir().unwrap();
    let stella = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    // The service role may not run DDL: a clear error naming the way out.
    let out = stella(&["serve", "migrate", "--database", &service]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("migrationDatabase"), "{stderr}");
    let out = stella(&["serve", "migrate", "--database", &owner]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let add = stella(&[
        "admin",
        "clients",
        "add",
        "ci",
        "--tenant",
        "acme",
        "--scopes",
        "vex.read",
        "--output",
        "json",
        "--database",
        &service,
    ]);
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    let list = stella(&[
        "admin",
        "clients",
        "list",
        "--output",
        "json",
        "--database",
        &service,
    ]);
    let listed: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(listed[0]["clientId"], "ci");
    assert_eq!(listed[0]["tenant"], "acme");
    assert_eq!(
        cluster
            .psql(
                "stella",
                "SELECT tenant_id FROM clients WHERE client_id = 'ci'"
            )
            .unwrap(),
        "acme"
    );
    // Serving as the owner (or a superuser) is refused: RLS would not bind it.
    for (who, url) in [
        ("owns", owner.clone()),
        ("superuser", cluster.url("stella_super", "stella")),
    ] {
        let out = stella(&["serve", "--listen", "127.0.0.1:0", "--database", &url]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(who) && stderr.contains("row-level security"),
            "{stderr}"
        );
        assert!(!stderr.contains("stella-test-pw"), "{stderr}");
    }
}

#[test]
fn pg_serve_refuses_a_database_from_a_newer_schema() {
    let (cluster, env) = postgres_env();
    let dir = tempfile::tempdir().unwrap();
    let migrate = Command::new(BIN)
        .args(["serve", "migrate", "--data-dir"])
        .arg(dir.path())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    cluster
        .psql(
            "stella",
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (99, 'future', true, '\\x00', 0)",
        )
        .unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("newer than this stella supports"),
        "{stderr}"
    );
}

/// A full disk during uploads, for real: the server (SQLite default) runs in
/// its own user and mount namespace (`unshare -rm`, no host mount is made)
/// with its data directory on a 6 MiB tmpfs, half of it taken by a reserve
/// file, and 512 KiB uploads fill the other 3 MiB (then smaller ones, down
/// to 512 bytes).
/// Every failed upload is a 507 problem; the list holds exactly the uploads
/// that got 201 (no partial row); the server keeps serving reads.
/// Then writes other than uploads meet the full disk for certain: the test
/// fills the last free bytes (through `/proc/<pid>/root`, the server's view
/// of its mount namespace) and imports 60 KiB policies (multi-statement
/// SQLite writes) until one is a 507 problem. Once the filler and the
/// reserve are deleted, the store keeps working: activating an unknown
/// revision is a clean 404, then an import, its activation and an upload
/// succeed, and `sqlite3` finds exactly the revisions answered 201 and their
/// audit rows, nothing of the refused import. (Before every SQLite write
/// went through the store's write helper, the import after the 404 was
/// answered 201 and then not found.)
#[test]
fn serve_disk_full_during_uploads_is_507_and_leaves_no_partial_row() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    // `reserve`: 3 MiB the test frees once the disk has been full, as much
    // as the uploads had, so that SQLite can then finish the checkpoint that
    // closing its last connection starts (the database file takes in the
    // WAL) and still write.
    let script = r#"mount -t tmpfs -o size=6m tmpfs "$1" && head -c 3145728 /dev/zero > "$1/reserve" && "$0" serve init --output json --data-dir "$1" && exec "$0" serve --listen 127.0.0.1:0 --data-dir "$1""#;
    let mut child = Command::new("unshare")
        .args(["-rm", "sh", "-c", script, BIN])
        .arg(data.path())
        .current_dir(logs.path())
        .envs(FAST.iter().copied())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(logs.path().join("serve.log")).unwrap())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (mut init, mut listening) = (String::new(), String::new());
    out.read_line(&mut init).unwrap();
    out.read_line(&mut listening).unwrap();
    let log = || std::fs::read_to_string(logs.path().join("serve.log")).unwrap();
    let base = listening
        .trim()
        .strip_prefix("stella serve: listening on ")
        .unwrap_or_else(|| panic!("{init}{listening}\n{}", log()))
        .to_string();
    let doc: serde_json::Value = serde_json::from_str(&init).unwrap();
    let secret = format!("client_secret={}", doc["clientSecret"].as_str().unwrap());
    let (status, _, body) = curl(&[
        "-d",
        "grant_type=client_credentials",
        "-d",
        "client_id=admin",
        "--data-urlencode",
        &secret,
        &format!("{base}/connect/token"),
    ]);
    assert_eq!(status, 200, "{body}");
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    let bearer = format!(
        "Authorization: Bearer {}",
        token["access_token"].as_str().unwrap()
    );
    let payload = logs.path().join("payload.bin");
    let artifacts = format!("{base}/excititor/providers/p/artifacts");
    let (mut staged, mut failures) = (Vec::new(), Vec::new());
    // Big uploads until the disk is full, then halving sizes, so that one
    // of them may fit the temp file but not the database write.
    let sizes = std::iter::repeat_n(512 * 1024, 8).chain((0..10).map(|k| (256 * 1024) >> k));
    for (i, size) in sizes.enumerate() {
        std::fs::write(&payload, vec![i as u8; size]).unwrap();
        let file_arg = format!("file=@{}", payload.display());
        let (status, content_type, body) = curl(&["-H", &bearer, "-F", &file_arg, &artifacts]);
        if status == 201 {
            let meta: serde_json::Value = serde_json::from_str(&body).unwrap();
            staged.push(meta["artifactId"].as_str().unwrap().to_string());
        } else {
            failures.push((status, content_type, body));
        }
    }
    assert!(
        !staged.is_empty() && !failures.is_empty(),
        "{staged:?} {failures:?}"
    );
    for (status, content_type, body) in &failures {
        assert_eq!(*status, 507, "{body}\n{}", log());
        assert!(content_type.starts_with("application/problem+json"));
        let problem: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(problem["code"], "INSUFFICIENT_STORAGE", "{body}");
    }
    let (status, _, body) = curl(&["-H", &bearer, &format!("{artifacts}?limit=500")]);
    assert_eq!(status, 200, "{body}");
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["artifactId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, staged, "exactly the uploads that were answered 201");

    // Policy imports on a disk without a free byte. The first ones may
    // still fit: after a checkpoint SQLite rewrites its WAL file from the
    // start, in blocks the file already has. Once past its end, the WAL
    // append needs a new block: 507.
    let relative = data.path().strip_prefix("/").unwrap();
    let inside = Path::new(&format!("/proc/{}/root", child.id())).join(relative);
    let filler = inside.join("filler");
    fill_up(&filler);
    let rules: String = (0..1000)
        .map(|i| {
            format!("  - name: Block critical {i}\n    severity: [Critical]\n    action: block\n")
        })
        .collect();
    let policy = format!("version: 1\nrules:\n{rules}");
    let import = || {
        curl(&[
            "-H",
            &bearer,
            "-H",
            "Content-Type: application/yaml",
            "--data-binary",
            &policy,
            &format!("{base}/policy/import"),
        ])
    };
    let mut imported = 0;
    let refused = loop {
        let (status, content_type, body) = import();
        if status != 201 {
            break (status, content_type, body);
        }
        imported += 1;
        assert!(imported < 200, "200 imports of 60 KiB fit a full disk");
    };
    let (status, content_type, body) = refused;
    assert_eq!(
        status,
        507,
        "policy import on a full disk: {body}\n{}",
        log()
    );
    assert!(content_type.starts_with("application/problem+json"));
    let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["code"], "INSUFFICIENT_STORAGE", "{body}");

    // Space is back: the store keeps working. First a clean refusal (a
    // write transaction rolled back: no such revision to activate), which
    // on a connection SQLite had rolled back behind sqlx's back would leave
    // a transaction open and every later write on it uncommitted.
    std::fs::remove_file(&filler).unwrap();
    std::fs::remove_file(inside.join("reserve")).unwrap();
    let activate = |revision_id: &str| {
        let body = format!(r#"{{"revisionId":"{revision_id}"}}"#);
        curl(&[
            "-H",
            &bearer,
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &body,
            &format!("{base}/policy/activate"),
        ])
    };
    let (status, _, body) = activate("no-such-revision");
    assert_eq!(status, 404, "{body}");
    let (status, _, body) = import();
    assert_eq!(
        status,
        201,
        "policy import after the disk full: {body}\n{}",
        log()
    );
    let revision: serde_json::Value = serde_json::from_str(&body).unwrap();
    let (status, _, body) = activate(revision["revisionId"].as_str().unwrap());
    assert_eq!(status, 200, "{body}");
    std::fs::write(&payload, b"after the disk full").unwrap();
    let file_arg = format!("file=@{}", payload.display());
    let (status, _, body) = curl(&["-H", &bearer, "-F", &file_arg, &artifacts]);
    assert_eq!(status, 201, "upload after the disk full: {body}\n{}", log());
    // Exactly the imports answered 201, their audit rows and one activation;
    // the uploads answered 201.
    // In the server's namespaces: SQLite resolves `/proc/<pid>/root` to `/`.
    let counted = Command::new("nsenter")
        .args([
            "-t",
            &child.id().to_string(),
            "-U",
            "-m",
            "--preserve-credentials",
        ])
        .arg("sqlite3")
        .arg(data.path().join("stella.db"))
        .arg(
            "SELECT (SELECT COUNT(*) FROM policy_revisions) || ' ' || \
             (SELECT COUNT(*) FROM policy_revisions WHERE active = 1) || ' ' || \
             (SELECT COUNT(*) FROM audit_log WHERE action LIKE 'policy.%') || ' ' || \
             (SELECT COUNT(*) FROM vex_provider_artifact_refs)",
        )
        .output()
        .unwrap();
    let expected = format!("{} 1 {} {}", imported + 1, imported + 2, staged.len() + 1);
    assert_eq!(
        String::from_utf8_lossy(&counted.stdout).trim(),
        expected,
        "revisions, active, policy audit rows, artifacts: {}",
        String::from_utf8_lossy(&counted.stderr)
    );
    println!("disk full: {imported} policy imports fitted before the 507");

    let server_log = log();
    let where_full: Vec<&str> = server_log
        .lines()
        .filter(|l| l.contains("temp file") || l.contains("storage full"))
        .collect();
    println!(
        "disk full: {} staged, {} refused; {where_full:?}",
        staged.len(),
        failures.len()
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "{}", log());
}

/// Writes zeros to `path` until its file system has no free byte left.
fn fill_up(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let block = [0u8; 4096];
    loop {
        match file.write(&block) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
}

/// Random bytes (xorshift), so that Postgres cannot compress the payload.
fn incompressible(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

/// A full disk on Postgres, for real: the cluster is restarted in its own
/// mount namespace (`unshare -m`, no host mount is made) where a 2 MiB
/// tmpfs holds a tablespace, and the artifact and payload-chunk tables
/// move there. Uploads of incompressible payloads fill it: every refused
/// upload is a 507 problem (Postgres `53100 disk_full`), the API lists
/// exactly the uploads answered 201, and the table holds no other row.
#[test]
fn pg_disk_full_during_uploads_is_507_and_leaves_no_partial_row() {
    let server = start_on(PG, FAST);
    let cluster = server.pg.as_ref().unwrap();
    let dir = cluster.dir().to_path_buf();
    let small = dir.join("small");
    std::fs::create_dir(&small).unwrap();
    let owner = Command::new("stat")
        .args(["-c", "%U"])
        .arg(&dir)
        .output()
        .unwrap();
    let owner = String::from_utf8_lossy(&owner.stdout).trim().to_string();
    let bin = stella_testkit::postgres::find_bin_dir().unwrap();
    cluster.stop().unwrap();
    let script = r#"mount -t tmpfs -o size=2m tmpfs "$1/small" && chown "$2" "$1/small" && exec runuser -u "$2" -- "$3/pg_ctl" -D "$1/data" -l "$1/postgres.log" -w -t 30 -o "-p $4 -k $1 -c listen_addresses=127.0.0.1" start"#;
    let restarted = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(&dir)
        .arg(&owner)
        .arg(&bin)
        .arg(cluster.port().to_string())
        .output()
        .unwrap();
    assert!(
        restarted.status.success(),
        "{}",
        String::from_utf8_lossy(&restarted.stderr)
    );
    let small_sql = small.display().to_string();
    cluster
        .psql(
            "postgres",
            &format!("CREATE TABLESPACE small LOCATION '{small_sql}'"),
        )
        .unwrap();
    cluster
        .psql(
            "stella",
            "ALTER TABLE vex_provider_artifact_refs SET TABLESPACE small;
             ALTER TABLE vex_provider_artifact_chunks SET TABLESPACE small",
        )
        .unwrap();
    // The pool pings a connection before use only after it has been idle
    // for PING_WHEN_IDLE_FOR (docs/service.md, "Database down"); the
    // restart above was quicker than that, so wait it out rather than
    // have the first request meet a connection of the stopped server.
    std::thread::sleep(stella_store::postgres::PING_WHEN_IDLE_FOR);

    let base = server.url.clone();
    let secret = format!("client_secret={}", server.admin_secret);
    let (status, _, body) = curl(&[
        "-d",
        "grant_type=client_credentials",
        "-d",
        "client_id=admin",
        "--data-urlencode",
        &secret,
        &format!("{base}/connect/token"),
    ]);
    assert_eq!(status, 200, "{body}");
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    let bearer = format!(
        "Authorization: Bearer {}",
        token["access_token"].as_str().unwrap()
    );
    let payload = server.data.path().join("payload.bin");
    let artifacts = format!("{base}/excititor/providers/p/artifacts");
    let (mut staged, mut failures) = (Vec::new(), Vec::new());
    let sizes = std::iter::repeat_n(512 * 1024, 6).chain((0..8).map(|k| (256 * 1024) >> k));
    for (i, size) in sizes.enumerate() {
        std::fs::write(&payload, incompressible(size, i as u64 + 1)).unwrap();
        let file_arg = format!("file=@{}", payload.display());
        let (status, content_type, body) = curl(&["-H", &bearer, "-F", &file_arg, &artifacts]);
        if status == 201 {
            let meta: serde_json::Value = serde_json::from_str(&body).unwrap();
            staged.push(meta["artifactId"].as_str().unwrap().to_string());
        } else {
            failures.push((status, content_type, body));
        }
    }
    assert!(
        !staged.is_empty() && !failures.is_empty(),
        "{staged:?} {failures:?}\n{}",
        server.log()
    );
    for (status, content_type, body) in &failures {
        assert_eq!(*status, 507, "{body}\n{}", server.log());
        assert!(content_type.starts_with("application/problem+json"));
        let problem: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(problem["code"], "INSUFFICIENT_STORAGE", "{body}");
    }
    let (status, _, body) = curl(&["-H", &bearer, &format!("{artifacts}?limit=500")]);
    assert_eq!(status, 200, "{body}");
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["artifactId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, staged, "exactly the uploads that were answered 201");
    // The superuser is not bound by row-level security: every row there is.
    let total = cluster
        .psql("stella", "SELECT COUNT(*) FROM vex_provider_artifact_refs")
        .unwrap();
    assert_eq!(total, staged.len().to_string());
    // Every staged artifact has all of its payload chunks, and no chunk
    // outlived a refused upload.
    let incomplete = cluster
        .psql(
            "stella",
            "SELECT (SELECT COUNT(*) FROM vex_provider_artifact_refs r
                     WHERE r.size_bytes <> COALESCE((SELECT SUM(length(c.bytes))
                           FROM vex_provider_artifact_chunks c
                           WHERE c.artifact_id = r.artifact_id), 0))
                  + (SELECT COUNT(*) FROM vex_provider_artifact_chunks c
                     WHERE NOT EXISTS (SELECT 1 FROM vex_provider_artifact_refs r
                                       WHERE r.artifact_id = c.artifact_id))",
        )
        .unwrap();
    assert_eq!(incomplete, "0");
    assert!(
        cluster.log().contains("No space left on device"),
        "{}",
        cluster.log()
    );
    println!(
        "postgres disk full: {} staged, {} refused",
        staged.len(),
        failures.len()
    );
    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
}
