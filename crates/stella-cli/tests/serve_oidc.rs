//! `stella serve` accepting access tokens of external OIDC issuers, checked
//! black-box by `crates/stella-server/tests/api/check_oidc.py` with keys it
//! generates: one issuer with a JWKS file (offline), one with a JWKS URL
//! (a Python `http.server` on 127.0.0.1), one whose key server never
//! answers (`stella-testkit`'s hostile server).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve_harness;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serve_harness::{BIN, api_script, assert_ok, start};
use stella_testkit::hostile::{HostileServer, Misbehaviour};

/// `python3 -m http.server` on a free 127.0.0.1 port serving `dir`; its
/// access log goes to `log`. Returns the child and its port.
fn static_server(dir: &std::path::Path, log: &std::path::Path) -> (std::process::Child, u16) {
    let mut child = Command::new("python3")
        .args([
            "-u",
            "-m",
            "http.server",
            "0",
            "--bind",
            "127.0.0.1",
            "--directory",
        ])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // "Serving HTTP on 127.0.0.1 port 40123 (http://127.0.0.1:40123/) ..."
    let port = line
        .split(" port ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected http.server line {line:?}"));
    (child, port)
}

#[test]
fn serve_accepts_external_oidc_tokens_and_refuses_bad_ones() {
    let keys = tempfile::tempdir().unwrap();
    let prepared = Command::new("python3")
        .arg(api_script("check_oidc.py"))
        .arg("prepare")
        .arg(keys.path())
        .output()
        .unwrap();
    assert_ok(&prepared, "");
    let access_log = keys.path().join("http.log");
    let (mut jwks_server, port) = static_server(keys.path(), &access_log);
    let black_hole = HostileServer::start(Misbehaviour::NeverAnswer).unwrap();
    let issuers = serde_json::json!([
        {"issuer": "https://idp.example", "audience": "stella-api",
         "jwksFile": keys.path().join("jwks.json"), "tenantClaim": "org", "scopeClaim": "scp"},
        {"issuer": "http://idp-url.test", "audience": "stella-api",
         "jwksUrl": format!("http://127.0.0.1:{port}/jwks.json")},
        {"issuer": "https://idp-down.example", "audience": "stella-api",
         "jwksUrl": format!("{}/jwks.json", black_hole.base_url()), "jwksTimeoutSeconds": 1},
    ])
    .to_string();
    let server = start(&[
        ("STELLA_RATE_LIMIT_REQUESTS_PER_SECOND", "100000"),
        ("STELLA_AUTH_OIDC", &issuers),
    ]);
    let out = server.run_case(
        "check_oidc.py",
        "oidc",
        &[("OIDC_DIR", keys.path().to_str().unwrap())],
    );
    let (status, log) = server.stop();
    let _ = jwks_server.kill();
    let _ = jwks_server.wait();
    assert_ok(&out, &log);
    assert!(status.success(), "{log}");
    assert!(!log.contains("eyJ"), "a token appears in the server log");
    // Five good tokens and five with an unknown kid within seconds: the
    // keys were fetched once, plus at most one refetch for the unknown kid.
    let fetches = std::fs::read_to_string(&access_log)
        .unwrap()
        .matches("GET /jwks.json")
        .count();
    assert!((1..=2).contains(&fetches), "{fetches} JWKS fetches");
    assert_eq!(
        black_hole.requests().len(),
        1,
        "one fetch, then no retry storm"
    );
}

#[test]
fn serve_refuses_to_start_with_an_unreadable_issuer_jwks_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json");
    let issuers = serde_json::json!([{"issuer": "https://idp.example", "audience": "a", "jwksFile": missing}]);
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("STELLA_AUTH_OIDC", issuers.to_string())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("https://idp.example") && stderr.contains("nope.json"),
        "{stderr}"
    );
}
