//! Two `stella serve` processes on one Postgres database (a throwaway
//! cluster, `serve_harness`), both with their OpenVEX provider scheduler
//! running, against a real distribution registry holding one image with an
//! OpenVEX attestation signed by the uploaded key (`stella attest`). The
//! provider is configured once, with a schedule; after both schedulers have
//! ticked: exactly one run took the lease and ingested (one `provider run
//! ... succeeded` log line across both servers, the other server either
//! skipped it as not due or logged `busy`), the two statements are stored
//! once, and both servers answer the same `/vex/statements` and byte-equal
//! `/vex/consensus`. The lease race itself is tested at store level in
//! crates/stella-store/tests/postgres_vex.rs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve_harness;

use std::process::Command;
use std::time::{Duration, Instant};

use serve_harness::{BIN, Backend, spawn_server, start_on};
use stella_testkit::DistributionRegistry;
use stella_testkit::cli::Stella;
use stella_testkit::fixtures::push_seed_image as push_image;

const PROVIDER: &str = "excititor:oci-openvex";

/// `stella <args>` with extra environment, isolated from the user's
/// config and docker credentials; asserts exit 0 and returns stdout.
fn ok(args: &[&str], env: &[(&str, &str)]) -> String {
    Stella::new(BIN)
        .env("XDG_CONFIG_HOME", "/nonexistent-stella-test-config")
        .env("DOCKER_CONFIG", "/nonexistent-stella-test-docker-config")
        .run_env(args, env)
        .assert_code(0)
        .stdout
        .clone()
}

/// The body of a GET with a bearer token (curl).
fn get(url: &str, token: &str) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-sf", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(url)
        .output()
        .unwrap();
    assert!(out.status.success(), "curl {url}");
    out.stdout
}

fn get_json(url: &str, token: &str) -> serde_json::Value {
    serde_json::from_slice(&get(url, token)).unwrap()
}

/// Copies the files of `from` (database aside, it is in Postgres) into `to`.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

/// The results of the `provider run … result=…` log lines of a server log
/// (not the `provider run stages` timing line).
fn provider_runs(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("provider run") && l.contains(PROVIDER) && l.contains("result="))
        .map(|l| {
            l.split("result=")
                .nth(1)
                .unwrap_or("")
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_servers_on_one_postgres_run_a_scheduled_provider_once() {
    let reg = DistributionRegistry::start_plain().unwrap();
    let host = reg.host_port();
    let repo = stella_testkit::distribution::plain_repository(&host, "vex/two").unwrap();
    let subject = push_image(&repo, "two-servers", "v1").await;
    let image = format!("{host}/vex/two:v1");
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    ok(
        &[
            "key",
            "generate",
            "--algorithm",
            "ecdsa-p256",
            "--output-key",
            &p("k.key"),
            "--output-pub",
            &p("k.pub"),
        ],
        &[],
    );
    std::fs::write(
        p("vex.json"),
        r#"{"@context":"https://openvex.dev/ns/v0.2.0","@id":"https://v/two","author":"A",
        "timestamp":"2024-05-01T00:00:00Z","version":1,
        "statements":[{"vulnerability":{"name":"CVE-2024-20"},"status":"fixed"},
                      {"vulnerability":{"name":"CVE-2024-21"},"status":"not_affected",
                       "justification":"vulnerable_code_not_present"}]}"#,
    )
    .unwrap();
    ok(
        &[
            "--plain-http",
            "attest",
            "--image",
            &image,
            "--predicate",
            &p("vex.json"),
            "--type",
            "openvex",
            "--key",
            &p("k.key"),
        ],
        &[],
    );

    let server_env = [
        ("DOCKER_CONFIG", "/nonexistent-stella-test-docker-config"),
        ("STELLA_RATE_LIMIT_REQUESTS_PER_SECOND", "100000"),
    ];
    let a = start_on(Backend::Postgres, &server_env);
    // The second process: a copy of the data directory (signing keys),
    // the same database.
    let b_data = tempfile::tempdir().unwrap();
    copy_dir(a.data.path(), b_data.path());
    let (mut b_child, b_url) = spawn_server(b_data.path(), &server_env, &a.db_env, "serve-b.log");
    let db_env: Vec<(&str, &str)> = a
        .db_env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let data = a.data.path().to_str().unwrap().to_string();
    let add: serde_json::Value = serde_json::from_str(&ok(
        &[
            "admin",
            "clients",
            "add",
            "vexer",
            "--tenant",
            "t1",
            "--scopes",
            "vex.read,vex.admin",
            "--data-dir",
            &data,
            "--output",
            "json",
        ],
        &db_env,
    ))
    .unwrap();
    let secret = add["clientSecret"].as_str().unwrap();
    let token_a = serve_harness::client_token(&a.url, "vexer", secret);
    let token_b = serve_harness::client_token(&b_url, "vexer", secret);
    let cli_env = [
        ("STELLA_SERVER", a.url.as_str()),
        ("STELLA_TOKEN", token_a.as_str()),
    ];
    ok(
        &[
            "vex",
            "providers",
            "configure",
            PROVIDER,
            "--image",
            &image,
            "--set",
            "cosignMode=keypair",
            "--set",
            "allowHttpRegistries=true",
            "--set",
            "pollInterval=1h",
            "--upload-artifact",
            &format!("cosignKeys=@{}", p("k.pub")),
        ],
        &cli_env,
    );

    // A scheduled run finishes (seen from server B: the status is shared).
    let status_url = format!("{b_url}/excititor/providers/{PROVIDER}/status");
    let deadline = Instant::now() + Duration::from_secs(90);
    let whole = loop {
        let s = get_json(&status_url, &token_b);
        let done = s["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["image"] == "" && r["finishedAt"].is_string())
            .cloned();
        if let Some(w) = done {
            break w;
        }
        assert!(Instant::now() < deadline, "no scheduled run: {s:#}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(whole["result"], "succeeded", "{whole:#}");
    assert_eq!(whole["counts"]["inserted"], 1, "{whole:#}");
    assert_eq!(whole["counts"]["statements"], 2, "{whole:#}");
    // Both schedulers tick (every 10 s) at least once more after the run.
    std::thread::sleep(Duration::from_secs(12));
    let after = get_json(&status_url, &token_a);
    let whole_after = after["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["image"] == "")
        .unwrap()
        .clone();
    assert_eq!(
        whole_after["startedAt"], whole["startedAt"],
        "a second run happened: {after:#}"
    );

    let log_b = std::fs::read_to_string(b_data.path().join("serve-b.log")).unwrap();
    let log_a = a.log();
    let mut runs = provider_runs(&log_a);
    runs.extend(provider_runs(&log_b));
    let succeeded = runs.iter().filter(|r| r.contains("succeeded")).count();
    assert_eq!(
        succeeded, 1,
        "{runs:?}\nserver A:\n{log_a}\nserver B:\n{log_b}"
    );
    assert!(
        runs.iter()
            .all(|r| r.contains("succeeded") || r.contains("busy")),
        "{runs:?}"
    );

    // Stored once; both servers answer alike.
    let product = format!("sha256:{}", subject.digest.hex());
    let statements_a = get_json(
        &format!("{}/vex/statements?product={product}", a.url),
        &token_a,
    );
    let statements_b = get_json(
        &format!("{b_url}/vex/statements?product={product}"),
        &token_b,
    );
    let items = statements_a["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{statements_a:#}");
    assert_eq!(statements_a["items"], statements_b["items"]);
    let consensus = |url: &str, tok: &str| {
        get(
            &format!("{url}/vex/consensus?product={product}&vulnerability=CVE-2024-21"),
            tok,
        )
    };
    let consensus_a = consensus(&a.url, &token_a);
    let consensus_b = consensus(&b_url, &token_b);
    assert_eq!(consensus_a, consensus_b);
    let c: serde_json::Value = serde_json::from_slice(&consensus_a).unwrap();
    assert_eq!(c["items"].as_array().unwrap().len(), 1, "{c:#}");
    let _ = Command::new("kill")
        .args(["-TERM", &b_child.id().to_string()])
        .status();
    assert!(b_child.wait().unwrap().success());
    let (status, _) = a.stop();
    assert!(status.success());
}
