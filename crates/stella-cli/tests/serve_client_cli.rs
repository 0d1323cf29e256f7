//! The client side of `stella serve` and the server's protocol edges,
//! against a live server: global `--server`/`--token` (and their
//! environment variables), a problem answer printed as exactly one line
//! `stella: error: <title>: <detail> (<code>)` with exit 2, one retry after
//! a 429 (`--wait-quota`), 431 problems for huge headers, 408 for a body
//! that stalls, `/version`, and the per-request log line.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve_harness;

use std::io::{Read, Write};
use std::process::{Command, Output};

use serve_harness::{BIN, start};

fn stella(args: &[&str], env: &[(&str, &str)]) -> Output {
    let config_home = tempfile::tempdir().unwrap();
    Command::new(BIN)
        .args(args)
        .env_remove("STELLA_SERVER")
        .env_remove("STELLA_TOKEN")
        .env("XDG_CONFIG_HOME", config_home.path())
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const FAST: &[(&str, &str)] = &[("STELLA_RATE_LIMIT_REQUESTS_PER_SECOND", "100000")];

#[test]
fn client_commands_take_global_server_and_token_and_print_problems_on_one_line() {
    let server = start(FAST);
    let token = server.admin_token();
    let url = server.url.clone();
    let list = ["vex", "providers", "artifacts", "p", "--output", "json"];
    // Flags before the command, after it, and from the environment.
    let mut before = vec!["--server", &url, "--token", &token];
    before.extend(list);
    let mut after = list.to_vec();
    after.extend(["--server", &url, "--token", &token]);
    for (args, env) in [
        (before.clone(), vec![]),
        (after, vec![]),
        (
            list.to_vec(),
            vec![
                ("STELLA_SERVER", url.as_str()),
                ("STELLA_TOKEN", token.as_str()),
            ],
        ),
    ] {
        let out = stella(&args, &env);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout).trim(), "[]");
    }
    // A problem answer: exactly one line, exit 2.
    let out = stella(
        &[
            "--server",
            &url,
            "--token",
            "bogus",
            "vex",
            "providers",
            "artifacts",
            "p",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "stella: error: Unauthorized: the access token is not valid (malformed or unsupported header) (UNAUTHORIZED)\n"
    );
    let out = stella(
        &[
            "--server",
            &url,
            "--token",
            &token,
            "vex",
            "providers",
            "artifacts",
            "a..b",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("stella: error: Validation failed: ")
            && stderr.ends_with(" (VALIDATION_FAILED)\n"),
        "{stderr}"
    );
    // `auth login` takes the global --server too; whoami reads --token.
    let config_home = tempfile::tempdir().unwrap();
    let mut login = Command::new(BIN)
        .args([
            "auth",
            "login",
            "--client-id",
            "admin",
            "--client-secret-stdin",
            "--server",
            &url,
        ])
        .env_remove("STELLA_SERVER")
        .env("XDG_CONFIG_HOME", config_home.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    login
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{}\n", server.admin_secret).as_bytes())
        .unwrap();
    let out = login.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let who = stella(
        &["auth", "whoami", "--output", "json", "--token", &token],
        &[],
    );
    let doc: serde_json::Value = serde_json::from_slice(&who.stdout).unwrap();
    assert_eq!(doc["subject"], "admin");
    // Nothing listens on port 9 of 127.0.0.1: a network error, exit 2, one line.
    let out = stella(
        &[
            "--server",
            "http://127.0.0.1:9",
            "--token",
            "t",
            "vex",
            "providers",
            "artifacts",
            "p",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr).lines().count(),
        1,
        "{}",
        text(&out.stderr)
    );
    let (status, log) = server.stop();
    assert!(status.success());
    assert!(!log.contains(&token), "a token appears in the server log");
}

/// Uses up the token's one-request window (curl until a 429), then runs
/// stella at once; returns its output, or None when stella's first request
/// fell into a fresh window (the caller tries again).
fn stella_right_after_429(url: &str, token: &str, extra: &[&str]) -> Output {
    let list_url = format!("{url}/excititor/providers/p/artifacts");
    for _ in 0..20 {
        let code = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
            .arg(format!("Authorization: Bearer {token}"))
            .arg(&list_url)
            .output()
            .unwrap();
        if text(&code.stdout) == "429" {
            break;
        }
    }
    let mut args = vec!["--server", url, "--token", token];
    args.extend(extra);
    args.extend(["vex", "providers", "artifacts", "p", "--output", "json"]);
    stella(&args, &[])
}

#[test]
fn client_waits_retry_after_and_retries_once_on_429() {
    let server = start(&[("STELLA_RATE_LIMIT_REQUESTS_PER_SECOND", "1")]);
    let token = server.admin_token();
    let mut retried = false;
    for _ in 0..10 {
        let out = stella_right_after_429(&server.url, &token, &[]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout).trim(), "[]");
        if text(&out.stderr).contains("rate limit is reached; retrying in") {
            retried = true;
            break;
        }
    }
    assert!(retried, "stella never met the 429 it was set up to meet");
    let mut refused = false;
    for _ in 0..10 {
        let out = stella_right_after_429(&server.url, &token, &["--wait-quota", "false"]);
        if out.status.success() {
            continue;
        }
        assert_eq!(out.status.code(), Some(2));
        let stderr = text(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("stella: error: Too many requests: ")
                && stderr.ends_with(" (RATE_LIMITED)\n"),
            "{stderr}"
        );
        refused = true;
        break;
    }
    assert!(refused, "with --wait-quota false a 429 is an error");
    let (status, log) = server.stop();
    assert!(status.success());
    assert!(log.contains("status=429"), "{log}");
}

/// A raw HTTP/1.1 exchange: sends `request`, returns all the server sent
/// until it closed the connection.
fn raw_exchange(url: &str, request: &[u8]) -> Vec<u8> {
    let addr = url.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    reply
}

#[test]
fn serve_protocol_edges_huge_headers_stalled_body_version_and_log_line() {
    let server = start(&[
        ("STELLA_RATE_LIMIT_REQUESTS_PER_SECOND", "100000"),
        ("STELLA_REQUEST_TIMEOUT_SECONDS", "1"),
    ]);
    let token = server.admin_token();
    // 64 KiB of headers: over our 32 KiB limit, under hyper's buffer: a
    // 431 problem, and the server goes on serving.
    let big = "a".repeat(64 * 1024);
    let request =
        format!("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: {big}\r\n\r\n");
    let reply = text(&raw_exchange(&server.url, request.as_bytes()));
    assert!(
        reply.starts_with("HTTP/1.1 431 "),
        "{}",
        &reply[..reply.len().min(300)]
    );
    assert!(
        reply
            .to_ascii_lowercase()
            .contains("content-type: application/problem+json")
    );
    assert!(reply.contains("\"code\":\"HEADERS_TOO_LARGE\""), "{reply}");
    // 101 small header fields: over the count limit.
    let mut many = String::from("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for i in 0..101 {
        many.push_str(&format!("X-H{i}: 1\r\n"));
    }
    many.push_str("\r\n");
    let reply = text(&raw_exchange(&server.url, many.as_bytes()));
    assert!(reply.contains("\"code\":\"HEADERS_TOO_LARGE\""), "{reply}");
    // Over hyper's own buffer: still a 431 (without a body).
    let huge = "a".repeat(512 * 1024);
    let request = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {huge}\r\n\r\n");
    let reply = text(&raw_exchange(&server.url, request.as_bytes()));
    assert!(
        reply.starts_with("HTTP/1.1 431 "),
        "{}",
        &reply[..reply.len().min(300)]
    );
    // An upload whose body stalls after its head: 408 problem once the
    // request timeout (1 s here) passes.
    let stalled = format!(
        "POST /excititor/providers/p/artifacts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000\r\n\r\n--b\r\n"
    );
    let reply = text(&raw_exchange(&server.url, stalled.as_bytes()));
    assert!(reply.starts_with("HTTP/1.1 408 "), "{reply}");
    assert!(reply.contains("\"code\":\"REQUEST_TIMEOUT\""), "{reply}");
    // /version: the package version, the commit and an RFC 3339 build date.
    let out = Command::new("curl")
        .args([
            "-sf",
            "-H",
            "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ])
        .arg(format!("{}/version", server.url))
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["version"], env!("CARGO_PKG_VERSION"));
    let sha = doc["gitSha"].as_str().unwrap();
    let head = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| text(&o.stdout).trim().to_string());
    match (head, std::env::var("STELLA_GIT_SHA")) {
        (_, Ok(given)) => assert_eq!(sha, given),
        (Some(head), _) => assert_eq!(sha, head),
        (None, _) => assert_eq!(sha, "unknown"),
    }
    let date = doc["buildDate"].as_str().unwrap();
    assert!(
        date == "unknown"
            || time::OffsetDateTime::parse(date, &time::format_description::well_known::Rfc3339)
                .is_ok(),
        "{date}"
    );
    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
    // One access line per request, with the caller's trace id, the route
    // template, the status and the latency; never the token.
    let line = log
        .lines()
        .find(|l| l.contains("trace_id=4bf92f3577b34da6a3ce929d0e0e4736"))
        .unwrap_or_else(|| panic!("no access line with the trace id:\n{log}"));
    for field in ["route=/version", "status=200", "latency_ms=", "method=GET"] {
        assert!(line.contains(field), "{field} missing in {line}");
    }
    assert!(
        log.contains("status=431") && log.contains("status=408"),
        "{log}"
    );
    assert!(!log.contains(&token), "a token appears in the server log");
}
