//! The OCI OpenVEX provider runner inside `stella serve` (a real process)
//! against a real distribution registry: configured through `stella vex
//! providers configure`, it runs on its own from the scheduler, ingests
//! only the attestation signed by the uploaded key (the issuer is that
//! key, not the author), a second run on demand ingests nothing and only
//! HEADs three tags (two for a digest subscription), a new referrer is still
//! found, status and
//! statements are served (checked with curl), and the materializer leaves
//! no scratch directory behind. In TUF mode the run fetches the trusted root
//! from a python-tuf repository on 127.0.0.1 starting from the uploaded
//! `root.json`; expired or wrongly signed metadata fails the run with the
//! reason, and the next good publish recovers; a rollback across runs is
//! refused (the last trusted TUF metadata is kept per provider). Several
//! tag subscriptions of one repository share one tag listing per run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use stella_testkit::DistributionRegistry;
use stella_testkit::cli::Stella;
use stella_testkit::fixtures::push_seed_image as push_image;

const BIN: &str = env!("CARGO_BIN_EXE_stella");

#[path = "../../stella-trust/tests/support/tuf_fixture.rs"]
mod tuf_fixture;

struct Server {
    child: Child,
    url: String,
    data: tempfile::TempDir,
    tmp: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Server {
    let data = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let init = Command::new(BIN)
        .args(["serve", "init", "--output", "json", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(init.status.success());
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .env("TMPDIR", tmp.path())
        .env("DOCKER_CONFIG", "/nonexistent-stella-test-docker-config")
        .env("STELLA_RATE_LIMIT_REQUESTS_PER_SECOND", "100000")
        .stdout(Stdio::piped())
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
        tmp,
    }
}

/// The CLI, isolated from the user's config and docker credentials.
fn cli() -> Stella {
    Stella::new(BIN)
        .env("XDG_CONFIG_HOME", "/nonexistent-stella-test-config")
        .env("DOCKER_CONFIG", "/nonexistent-stella-test-docker-config")
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let env: Vec<(&str, &std::ffi::OsStr)> = env
        .iter()
        .map(|(k, v)| (*k, std::ffi::OsStr::new(*v)))
        .collect();
    cli().output_with(args, &env, None)
}

fn ok(args: &[&str], env: &[(&str, &str)]) -> String {
    cli().run_env(args, env).assert_code(0).stdout.clone()
}

/// `stella vex providers run <provider> --output json`, asked again every
/// 200 ms for up to 60 s while the scheduler's own run holds the lease
/// (`"result": "busy"`).
fn run_when_idle(provider: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = run(
            &["vex", "providers", "run", provider, "--output", "json"],
            env,
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if v["result"] != "busy" {
            return v;
        }
        assert!(Instant::now() < deadline, "the scheduled run never ended");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn curl_json(url: &str, token: &str) -> serde_json::Value {
    let out = Command::new("curl")
        .args(["-sf", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(url)
        .output()
        .unwrap();
    assert!(out.status.success(), "curl {url}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The provider's status once its first scheduled run has finished
/// (within `within`).
fn wait_for_scheduled_run(
    server: &Server,
    provider: &str,
    token: &str,
    within: Duration,
) -> serde_json::Value {
    let status_url = format!("{}/excititor/providers/{provider}/status", server.url);
    let deadline = Instant::now() + within;
    loop {
        let s = curl_json(&status_url, token);
        let done = s["runs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["image"] == "" && r["finishedAt"].is_string());
        if done {
            return s;
        }
        assert!(Instant::now() < deadline, "no scheduled run: {s:#}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_runner_ingests_the_trusted_attestation_on_schedule_and_on_demand() {
    let reg = DistributionRegistry::start_plain().unwrap();
    let host = reg.host_port();
    let repo = stella_testkit::distribution::plain_repository(&host, "vex/app").unwrap();
    let subject = push_image(&repo, "runner", "v1").await;
    let image = format!("{host}/vex/app:v1");
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    for name in ["k", "untrusted"] {
        ok(
            &[
                "key",
                "generate",
                "--algorithm",
                "ecdsa-p256",
                "--output-key",
                &p(&format!("{name}.key")),
                "--output-pub",
                &p(&format!("{name}.pub")),
            ],
            &[],
        );
    }
    for (name, key, vuln) in [("a", "k", "CVE-2024-10"), ("b", "untrusted", "CVE-2024-11")] {
        std::fs::write(p(&format!("{name}.json")), format!(
            r#"{{"@context":"https://openvex.dev/ns/v0.2.0","@id":"https://v/{name}","author":"Someone Else",
            "timestamp":"2024-05-01T00:00:00Z","version":1,
            "statements":[{{"vulnerability":{{"name":"{vuln}"}},"status":"fixed"}}]}}"#)).unwrap();
        ok(
            &[
                "--plain-http",
                "attest",
                "--image",
                &image,
                "--predicate",
                &p(&format!("{name}.json")),
                "--type",
                "openvex",
                "--key",
                &p(&format!("{key}.key")),
            ],
            &[],
        );
    }

    let server = start();
    let data = server.data.path().to_str().unwrap().to_string();
    let add = ok(
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
        &[],
    );
    let secret = serde_json::from_str::<serde_json::Value>(&add).unwrap()["clientSecret"]
        .as_str()
        .unwrap()
        .to_string();
    let tok = Command::new("curl")
        .args([
            "-sf",
            "-d",
            "grant_type=client_credentials",
            "-d",
            "client_id=vexer",
            "-d",
        ])
        .arg(format!("client_secret={secret}"))
        .arg(format!("{}/connect/token", server.url))
        .output()
        .unwrap();
    let token = serde_json::from_slice::<serde_json::Value>(&tok.stdout).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let env = [
        ("STELLA_SERVER", server.url.as_str()),
        ("STELLA_TOKEN", token.as_str()),
    ];
    let provider = "excititor:oci-openvex";
    ok(
        &[
            "vex",
            "providers",
            "configure",
            provider,
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
        &env,
    );

    // The scheduler runs it without being asked.
    let status = wait_for_scheduled_run(&server, provider, &token, Duration::from_secs(60));
    let whole = status["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["image"] == "")
        .unwrap()
        .clone();
    assert_eq!(whole["result"], "succeeded", "{status:#}");
    assert_eq!(whole["counts"]["inserted"], 1, "{status:#}");
    assert_eq!(whole["counts"]["rejected"], 1, "{status:#}");
    let per_image = status["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["image"] == image.as_str())
        .unwrap();
    assert!(
        per_image["reason"].as_str().unwrap().contains("rejected"),
        "{status:#}"
    );

    let statements = curl_json(
        &format!(
            "{}/vex/statements?product=sha256:{}",
            server.url,
            subject.digest.hex()
        ),
        &token,
    );
    let items = statements["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{statements:#}");
    assert_eq!(
        items[0]["statement"]["vulnerability"]["name"],
        "CVE-2024-10"
    );
    assert!(
        items[0]["issuer"]
            .as_str()
            .unwrap()
            .starts_with("key sha256:")
    );
    assert_eq!(items[0]["author"], "Someone Else");

    // On demand: nothing new, and the unchanged image is not walked again:
    // HEAD of the tag, of the fallback index tag and of the `.att` tag.
    let run_now = || -> (serde_json::Value, Vec<String>) {
        let before = reg.access_log_lines().len();
        let out: serde_json::Value = serde_json::from_str(&ok(
            &["vex", "providers", "run", provider, "--output", "json"],
            &env,
        ))
        .unwrap();
        let lines = reg.access_log_lines();
        let requests: Vec<String> = lines[before..]
            .iter()
            .filter(|l| l.contains("\"GET /v2/") || l.contains("\"HEAD /v2/"))
            .cloned()
            .collect();
        (out, requests)
    };
    let (again, requests) = run_now();
    assert_eq!(again["result"], "succeeded");
    assert_eq!(again["counts"]["inserted"], 0, "{again:#}");
    assert_eq!(again["counts"]["found"], 0, "{again:#}");
    assert!(
        again["images"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("unchanged"),
        "{again:#}"
    );
    assert!(requests.len() <= 3, "{requests:#?}");
    assert!(
        requests
            .iter()
            .all(|l| l.contains("\"HEAD /v2/vex/app/manifests/")),
        "{requests:#?}"
    );

    // Subscribed by digest: the configuration changed, so one full run,
    // then at most 2 requests (fallback index tag and `.att` tag).
    let pinned = format!("{host}/vex/app@{}", subject.digest);
    ok(
        &[
            "vex",
            "providers",
            "configure",
            provider,
            "--image",
            &pinned,
        ],
        &env,
    );
    let (full, _) = run_now();
    assert_eq!(full["counts"]["found"], 2, "{full:#}");
    assert_eq!(full["counts"]["inserted"], 0, "{full:#}");
    let (quiet, requests) = run_now();
    assert_eq!(quiet["counts"]["found"], 0, "{quiet:#}");
    assert!(requests.len() <= 2, "{requests:#?}");

    // A new trusted attestation (a new referrer) is still picked up.
    std::fs::write(
        p("c.json"),
        r#"{"@context":"https://openvex.dev/ns/v0.2.0","@id":"https://v/c","author":"Someone Else",
        "timestamp":"2024-06-01T00:00:00Z","version":1,
        "statements":[{"vulnerability":{"name":"CVE-2024-12"},"status":"fixed"}]}"#,
    )
    .unwrap();
    ok(
        &[
            "--plain-http",
            "attest",
            "--image",
            &image,
            "--predicate",
            &p("c.json"),
            "--type",
            "openvex",
            "--key",
            &p("k.key"),
        ],
        &[],
    );
    let (fresh, _) = run_now();
    assert_eq!(fresh["counts"]["inserted"], 1, "{fresh:#}");
    let (quiet, requests) = run_now();
    assert_eq!(quiet["counts"]["inserted"], 0, "{quiet:#}");
    assert!(requests.len() <= 2, "{requests:#?}");
    let consensus: serde_json::Value = serde_json::from_str(&ok(
        &[
            "vex",
            "query",
            "--product",
            &format!("sha256:{}", subject.digest.hex()),
            "--consensus",
            "--output",
            "json",
        ],
        &env,
    ))
    .unwrap();
    assert_eq!(consensus["items"][0]["status"], "fixed", "{consensus:#}");
    let text = ok(&["vex", "providers", "status", provider], &env);
    assert!(text.contains("(run)\tsucceeded"), "{text}");
    // Every materializer session was closed.
    let scratch = server.tmp.path().join("stella-excititor-artifacts");
    let left: Vec<_> = std::fs::read_dir(&scratch)
        .expect("the runner opened materializer sessions under TMPDIR")
        .collect();
    assert!(left.is_empty(), "scratch dirs left: {left:?}");
}

/// A `vex.read,vex.admin` token for tenant t1 of `server`.
fn admin_token(server: &Server) -> String {
    let data = server.data.path().to_str().unwrap().to_string();
    let add = ok(
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
        &[],
    );
    let secret = serde_json::from_str::<serde_json::Value>(&add).unwrap()["clientSecret"]
        .as_str()
        .unwrap()
        .to_string();
    let tok = Command::new("curl")
        .args([
            "-sf",
            "-d",
            "grant_type=client_credentials",
            "-d",
            "client_id=vexer",
            "-d",
        ])
        .arg(format!("client_secret={secret}"))
        .arg(format!("{}/connect/token", server.url))
        .output()
        .unwrap();
    serde_json::from_slice::<serde_json::Value>(&tok.stdout).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn tuf_mode_refreshes_through_the_mirror_and_refuses_expired_forged_and_rolled_back_metadata()
{
    let reg = DistributionRegistry::start_plain().unwrap();
    let host = reg.host_port();
    let repo = stella_testkit::distribution::plain_repository(&host, "vex/tuf").unwrap();
    push_image(&repo, "tuf", "v1").await;
    let image = format!("{host}/vex/tuf:v1");
    let fx = tuf_fixture::TufFixture::new(&tuf_fixture::production_root());
    let server = start();
    let token = admin_token(&server);
    let env = [
        ("STELLA_SERVER", server.url.as_str()),
        ("STELLA_TOKEN", token.as_str()),
    ];
    let provider = "excititor:oci-openvex";
    ok(
        &[
            "vex",
            "providers",
            "configure",
            provider,
            "--image",
            &image,
            "--set",
            "cosignMode=tuf-offline",
            "--set",
            "allowHttpRegistries=true",
            "--set",
            "pollInterval=1h",
            "--set",
            &format!("tufMirror={}", fx.url),
            "--set",
            "cosignIssuer=https://issuer.example",
            "--set",
            "cosignSubject=someone@example.com",
            "--upload-artifact",
            &format!("tufRoot=@{}", fx.root_json().display()),
        ],
        &env,
    );
    let run_now = || -> serde_json::Value {
        let out = run(
            &["vex", "providers", "run", provider, "--output", "json"],
            &env,
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    // Good metadata: the trusted root is fetched and the image searched.
    let good = run_now();
    assert_eq!(good["result"], "succeeded", "{good:#}");
    assert_eq!(good["images"].as_array().unwrap().len(), 1, "{good:#}");

    // Expired timestamp metadata: the run fails and says why.
    fx.publish(&["--expire", "timestamp"]);
    let bad = run_now();
    assert_eq!(bad["result"], "failed", "{bad:#}");
    let reason = bad["reason"].as_str().unwrap();
    assert!(
        reason.contains("TUF refresh from tufMirror failed"),
        "{bad:#}"
    );
    assert!(reason.contains("expired"), "{bad:#}");
    assert!(bad["images"].as_array().unwrap().is_empty(), "{bad:#}");

    // Good metadata again: the next run recovers.
    fx.publish(&[]);
    assert_eq!(run_now()["result"], "succeeded");

    // Timestamp metadata signed by the wrong key: refused, with the role.
    fx.publish(&["--wrong-key", "timestamp"]);
    let forged = run_now();
    assert_eq!(forged["result"], "failed", "{forged:#}");
    let reason = forged["reason"].as_str().unwrap();
    assert!(
        reason.contains("TUF refresh from tufMirror failed"),
        "{forged:#}"
    );
    assert!(reason.contains("timestamp"), "{forged:#}");

    // A rollback across runs: a good publish is accepted (and kept), then
    // the mirror serves a validly signed, unexpired timestamp with a lower
    // version. Each run has a fresh session directory, so only the TUF
    // state the provider kept in the database can notice it.
    fx.publish(&[]);
    assert_eq!(run_now()["result"], "succeeded");
    fx.publish(&["--timestamp-version", "1"]);
    let rolled_back = run_now();
    assert_eq!(rolled_back["result"], "failed", "{rolled_back:#}");
    let reason = rolled_back["reason"].as_str().unwrap();
    assert!(
        reason.contains("TUF refresh from tufMirror failed")
            && reason.contains("version 1 of timestamp"),
        "{rolled_back:#}"
    );
    // Still refused on the next run (the kept state did not move back),
    // and accepted again once the mirror is past the kept version.
    assert_eq!(run_now()["result"], "failed");
    fx.publish(&["--timestamp-version", "100"]);
    assert_eq!(run_now()["result"], "succeeded");
}

/// Idle polls of several tag subscriptions in one repository: one tag
/// listing is shared, so each image costs its tag HEAD and the HEAD of its
/// fallback index (the companion tag it has) and no `.att` HEAD; a `.att`
/// tag pushed later shows up in the listing and the image is searched.
#[tokio::test(flavor = "multi_thread")]
async fn tag_subscriptions_of_one_repository_share_one_tag_listing() {
    let reg = DistributionRegistry::start_plain().unwrap();
    let host = reg.host_port();
    let repo = stella_testkit::distribution::plain_repository(&host, "vex/many").unwrap();
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
        p("v.json"),
        r#"{"@context":"https://openvex.dev/ns/v0.2.0","@id":"https://v/many","author":"A",
        "timestamp":"2024-05-01T00:00:00Z","version":1,
        "statements":[{"vulnerability":{"name":"CVE-2024-20"},"status":"fixed"}]}"#,
    )
    .unwrap();
    let mut images = Vec::new();
    let mut digests = Vec::new();
    for i in 0..3 {
        let d = push_image(&repo, &format!("many{i}"), &format!("v{i}")).await;
        let image = format!("{host}/vex/many:v{i}");
        ok(
            &[
                "--plain-http",
                "attest",
                "--image",
                &image,
                "--predicate",
                &p("v.json"),
                "--type",
                "openvex",
                "--key",
                &p("k.key"),
            ],
            &[],
        );
        images.push(image);
        digests.push(d.digest);
    }
    let server = start();
    let token = admin_token(&server);
    let env = [
        ("STELLA_SERVER", server.url.as_str()),
        ("STELLA_TOKEN", token.as_str()),
    ];
    let provider = "excititor:oci-openvex";
    let mut args: Vec<&str> = vec!["vex", "providers", "configure", provider];
    for image in &images {
        args.extend(["--image", image.as_str()]);
    }
    let key_arg = format!("cosignKeys=@{}", p("k.pub"));
    args.extend([
        "--set",
        "cosignMode=keypair",
        "--set",
        "allowHttpRegistries=true",
        "--set",
        "pollInterval=1h",
        "--upload-artifact",
        &key_arg,
    ]);
    ok(&args, &env);
    let run_now = || -> (serde_json::Value, Vec<String>) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let before = reg.access_log_lines().len();
            let out = run(
                &["vex", "providers", "run", provider, "--output", "json"],
                &env,
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            if v["result"] == "busy" {
                assert!(Instant::now() < deadline, "the scheduled run never ended");
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            let requests: Vec<String> = reg.access_log_lines()[before..]
                .iter()
                .filter(|l| l.contains("\"GET /v2/") || l.contains("\"HEAD /v2/"))
                .cloned()
                .collect();
            return (v, requests);
        }
    };
    // The first run (scheduled or on demand) searches and ingests; the
    // next one is the first with fingerprints to compare.
    let (first, _) = run_now();
    assert_eq!(first["result"], "succeeded", "{first:#}");
    let (second, _) = run_now();
    assert_eq!(second["counts"]["found"], 0, "{second:#}");
    let (idle, requests) = run_now();
    assert_eq!(idle["counts"]["found"], 0, "{idle:#}");
    let count = |what: &str| requests.iter().filter(|l| l.contains(what)).count();
    assert_eq!(count("/tags/list"), 1, "{requests:#?}");
    assert_eq!(count(".att "), 0, "{requests:#?}");
    assert_eq!(count("\"HEAD /v2/vex/many/manifests/v"), 3, "{requests:#?}");
    assert_eq!(
        count("\"HEAD /v2/vex/many/manifests/sha256-"),
        3,
        "{requests:#?}"
    );
    // 2 per image plus the one shared listing: 7 for 3 images.
    assert_eq!(requests.len(), 7, "{requests:#?}");

    // A cosign legacy `.att` tag appears for the second image: the listing
    // shows it, so that image is searched again; the others stay idle.
    let att = format!("sha256-{}.att", digests[1].hex());
    push_image(&repo, "att-layout", &att).await;
    let (changed, requests) = run_now();
    let per_image = changed["images"].as_array().unwrap();
    let reasons: Vec<&str> = per_image
        .iter()
        .map(|i| i["reason"].as_str().unwrap())
        .collect();
    assert!(reasons[0].contains("unchanged"), "{changed:#}");
    assert!(!reasons[1].contains("unchanged"), "{changed:#}");
    assert!(reasons[2].contains("unchanged"), "{changed:#}");
    assert!(
        requests
            .iter()
            .any(|l| l.contains(&format!("\"HEAD /v2/vex/many/manifests/{att}"))),
        "{requests:#?}"
    );
}

/// A `vex.read` only token for tenant t1 of `server`.
fn reader_token(server: &Server) -> String {
    let data = server.data.path().to_str().unwrap().to_string();
    let add = ok(
        &[
            "admin",
            "clients",
            "add",
            "reader",
            "--tenant",
            "t1",
            "--scopes",
            "vex.read",
            "--data-dir",
            &data,
            "--output",
            "json",
        ],
        &[],
    );
    let secret = serde_json::from_str::<serde_json::Value>(&add).unwrap()["clientSecret"]
        .as_str()
        .unwrap()
        .to_string();
    let tok = Command::new("curl")
        .args([
            "-sf",
            "-d",
            "grant_type=client_credentials",
            "-d",
            "client_id=reader",
            "-d",
        ])
        .arg(format!("client_secret={secret}"))
        .arg(format!("{}/connect/token", server.url))
        .output()
        .unwrap();
    serde_json::from_slice::<serde_json::Value>(&tok.stdout).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `curl -X PUT` with a JSON body: (HTTP status, body).
fn curl_put(url: &str, token: &str, body: &str) -> (u16, serde_json::Value) {
    let out = Command::new("curl")
        .args(["-s", "-X", "PUT", "-w", "\n%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            body,
            url,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (
        code.parse().unwrap(),
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

/// The per-tenant issuer trust (`GET|PUT /vex/trust`) decides
/// `/vex/consensus`, and the caps are provider fields whose hits the run
/// status reports: `maxDocumentsPerRun` defers the images after it (the
/// next run catches up), `maxReferrersPerImage` leaves an image with more
/// referrers unexamined.
#[tokio::test(flavor = "multi_thread")]
async fn server_trust_weights_decide_consensus_and_caps_are_reported() {
    let reg = DistributionRegistry::start_plain().unwrap();
    let host = reg.host_port();
    let repo = stella_testkit::distribution::plain_repository(&host, "vex/trust").unwrap();
    let a = push_image(&repo, "trust-a", "a").await;
    push_image(&repo, "trust-b", "b").await;
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    for k in ["k1", "k2"] {
        ok(
            &[
                "key",
                "generate",
                "--algorithm",
                "ecdsa-p256",
                "--output-key",
                &p(&format!("{k}.key")),
                "--output-pub",
                &p(&format!("{k}.pub")),
            ],
            &[],
        );
    }
    for (name, image, key, vuln, status) in [
        ("a1", "a", "k1", "CVE-2024-30", "fixed"),
        ("a2", "a", "k2", "CVE-2024-30", "under_investigation"),
        ("b1", "b", "k1", "CVE-2024-31", "fixed"),
    ] {
        std::fs::write(
            p(&format!("{name}.json")),
            format!(
                r#"{{"@context":"https://openvex.dev/ns/v0.2.0","@id":"https://v/{name}","author":"A",
                "timestamp":"2024-05-01T00:00:00Z","version":1,
                "statements":[{{"vulnerability":{{"name":"{vuln}"}},"status":"{status}"}}]}}"#
            ),
        )
        .unwrap();
        ok(
            &[
                "--plain-http",
                "attest",
                "--image",
                &format!("{host}/vex/trust:{image}"),
                "--predicate",
                &p(&format!("{name}.json")),
                "--type",
                "openvex",
                "--key",
                &p(&format!("{key}.key")),
            ],
            &[],
        );
    }
    let server = start();
    let token = admin_token(&server);
    let env = [
        ("STELLA_SERVER", server.url.as_str()),
        ("STELLA_TOKEN", token.as_str()),
    ];
    let provider = "excititor:oci-openvex";
    let (img_a, img_b) = (format!("{host}/vex/trust:a"), format!("{host}/vex/trust:b"));
    let (k1, k2) = (
        format!("cosignKeys=@{}", p("k1.pub")),
        format!("cosignKeys=@{}", p("k2.pub")),
    );
    ok(
        &[
            "vex",
            "providers",
            "configure",
            provider,
            "--image",
            &img_a,
            "--image",
            &img_b,
            "--set",
            "cosignMode=keypair",
            "--set",
            "allowHttpRegistries=true",
            "--set",
            "pollInterval=1h",
            "--set",
            "maxDocumentsPerRun=2",
            "--upload-artifact",
            &k1,
            "--upload-artifact",
            &k2,
        ],
        &env,
    );
    let run_now = || run_when_idle(provider, &env);
    // Wait for the scheduled first run, then look at its status: image a
    // took the whole budget of 2 documents, image b was deferred.
    let status = wait_for_scheduled_run(&server, provider, &token, Duration::from_secs(60));
    let runs = status["runs"].as_array().unwrap();
    let whole = runs.iter().find(|r| r["image"] == "").unwrap();
    assert_eq!(whole["result"], "partial", "{status:#}");
    assert!(
        whole["reason"]
            .as_str()
            .unwrap()
            .contains("cap hit: maxDocumentsPerRun"),
        "{status:#}"
    );
    let b_run = runs.iter().find(|r| r["image"] == img_b.as_str()).unwrap();
    assert_eq!(b_run["result"], "deferred", "{status:#}");
    assert_eq!(whole["counts"]["inserted"], 2, "{status:#}");
    // The next run catches up with image b (a is unchanged).
    let next = run_now();
    assert_eq!(next["result"], "succeeded", "{next:#}");
    assert_eq!(next["counts"]["inserted"], 1, "{next:#}");

    // Consensus with no trust configuration: the two keys disagree at the
    // same weight.
    let consensus_url = format!(
        "{}/vex/consensus?product=sha256:{}&vulnerability=CVE-2024-30",
        server.url,
        a.digest.hex()
    );
    let equal = curl_json(&consensus_url, &token);
    assert_eq!(equal["items"][0]["conflict"], true, "{equal:#}");
    assert_eq!(
        equal["items"][0]["status"], "under_investigation",
        "{equal:#}"
    );
    let trust_url = format!("{}/vex/trust", server.url);
    let default = curl_json(&trust_url, &token);
    assert_eq!(default["configured"], false, "{default:#}");
    assert_eq!(default["trust"]["defaultWeight"], 1, "{default:#}");

    // Trust k1's signer above everyone: its `fixed` decides, no conflict.
    let statements = curl_json(
        &format!("{}/vex/statements?vulnerability=CVE-2024-30", server.url),
        &token,
    );
    let k1_issuer = statements["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["statement"]["status"] == "fixed")
        .unwrap()["issuer"]
        .as_str()
        .unwrap()
        .to_string();
    let body =
        serde_json::json!({"issuers": [{"issuer": k1_issuer, "weight": 10}], "defaultWeight": 1});
    let (code, saved) = curl_put(&trust_url, &token, &body.to_string());
    assert_eq!(code, 200, "{saved:#}");
    assert_eq!(saved["configured"], true);
    assert_eq!(curl_json(&trust_url, &token)["trust"], body);
    let weighed = curl_json(&consensus_url, &token);
    assert_eq!(weighed["items"][0]["status"], "fixed", "{weighed:#}");
    assert_eq!(weighed["items"][0]["conflict"], false, "{weighed:#}");
    let again = curl_json(&consensus_url, &token);
    assert_eq!(
        serde_json::to_vec(&again).unwrap(),
        serde_json::to_vec(&weighed).unwrap()
    );
    // Bad trust: an issuer listed twice; a read-only token may not write.
    let twice = serde_json::json!({"issuers": [{"issuer": "x"}, {"issuer": "x"}]});
    let (code, problem) = curl_put(&trust_url, &token, &twice.to_string());
    assert_eq!(code, 400, "{problem:#}");
    assert_eq!(problem["code"], "INVALID_TRUST", "{problem:#}");
    let (code, _) = curl_put(&trust_url, &reader_token(&server), &body.to_string());
    assert_eq!(code, 403);
    assert_eq!(curl_json(&trust_url, &token)["trust"], body);

    // maxReferrersPerImage=1: image a has 2 referrers, so it is not
    // examined and the cap is reported; image b (1 referrer) is.
    ok(
        &[
            "vex",
            "providers",
            "configure",
            provider,
            "--set",
            "maxReferrersPerImage=1",
        ],
        &env,
    );
    let capped = run_now();
    let images = capped["images"].as_array().unwrap();
    assert!(
        images[0]["reason"]
            .as_str()
            .unwrap()
            .contains("over the cap of 1 referrers per image"),
        "{capped:#}"
    );
    assert_eq!(images[0]["counts"]["capsHit"], 1, "{capped:#}");
    assert_eq!(images[0]["counts"]["found"], 0, "{capped:#}");
    assert_eq!(images[1]["counts"]["found"], 1, "{capped:#}");
    assert!(
        capped["reason"].as_str().unwrap().contains("cap hit"),
        "{capped:#}"
    );
    // Reported again next run (a capped image keeps no fingerprint).
    let still = run_now();
    assert_eq!(still["images"][0]["counts"]["capsHit"], 1, "{still:#}");
}

/// The Referrers-API path of the change check, on the testkit's spec
/// registry (which has the API): an idle image costs its tag HEAD and one
/// referrers GET (no fallback-index HEAD), the `.att` check comes from the
/// one tag listing shared by the repository (plus the registry client's
/// mode probe, once per run), and a new attestation changes the API
/// listing, so it is ingested.
#[tokio::test(flavor = "multi_thread")]
async fn referrers_api_registry_fingerprint_uses_the_listing() {
    let reg = stella_testkit::spec_registry::SpecRegistry::start(Default::default());
    let host = reg.host_port();
    let repo = stella_testkit::distribution::plain_repository(&host, "vex/api").unwrap();
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
    let attest = |image: &str, id: &str| {
        std::fs::write(
            p(&format!("{id}.json")),
            format!(
                r#"{{"@context":"https://openvex.dev/ns/v0.2.0","@id":"https://v/{id}","author":"A",
                "timestamp":"2024-05-01T00:00:00Z","version":1,
                "statements":[{{"vulnerability":{{"name":"CVE-2024-4{id}"}},"status":"fixed"}}]}}"#
            ),
        )
        .unwrap();
        ok(
            &[
                "--plain-http",
                "attest",
                "--image",
                image,
                "--predicate",
                &p(&format!("{id}.json")),
                "--type",
                "openvex",
                "--key",
                &p("k.key"),
            ],
            &[],
        );
    };
    let mut images = Vec::new();
    for i in 0..2 {
        push_image(&repo, &format!("api{i}"), &format!("v{i}")).await;
        let image = format!("{host}/vex/api:v{i}");
        attest(&image, &i.to_string());
        images.push(image);
    }
    let server = start();
    let token = admin_token(&server);
    let env = [
        ("STELLA_SERVER", server.url.as_str()),
        ("STELLA_TOKEN", token.as_str()),
    ];
    let provider = "excititor:oci-openvex";
    let key_arg = format!("cosignKeys=@{}", p("k.pub"));
    ok(
        &[
            "vex",
            "providers",
            "configure",
            provider,
            "--image",
            &images[0],
            "--image",
            &images[1],
            "--set",
            "cosignMode=keypair",
            "--set",
            "allowHttpRegistries=true",
            "--set",
            "pollInterval=1h",
            "--upload-artifact",
            &key_arg,
        ],
        &env,
    );
    let run_now = || -> (serde_json::Value, Vec<String>) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let before = reg.requests().len();
            let out = run(
                &["vex", "providers", "run", provider, "--output", "json"],
                &env,
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            if v["result"] == "busy" {
                assert!(Instant::now() < deadline, "the scheduled run never ended");
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            let requests = reg.requests()[before..]
                .iter()
                .map(|r| format!("{} {}", r.method, r.path))
                .collect();
            return (v, requests);
        }
    };
    let (first, _) = run_now();
    assert_eq!(first["result"], "succeeded", "{first:#}");
    let (second, _) = run_now();
    assert_eq!(second["counts"]["found"], 0, "{second:#}");
    let (idle, requests) = run_now();
    assert_eq!(idle["counts"]["found"], 0, "{idle:#}");
    let count = |what: &str| requests.iter().filter(|l| l.contains(what)).count();
    // The registry client's once-per-run mode probe asks for the referrers
    // of the empty JSON digest; it is shared by every image of the registry.
    let probe = format!("referrers/{}", stella_types::media_types::EMPTY_JSON_DIGEST);
    assert!(count(&probe) <= 1, "{requests:#?}");
    assert_eq!(
        count("GET /v2/vex/api/referrers/sha256:") - count(&probe),
        2,
        "{requests:#?}"
    );
    assert_eq!(count("HEAD /v2/vex/api/manifests/v"), 2, "{requests:#?}");
    assert_eq!(count("/tags/list"), 1, "{requests:#?}");
    assert_eq!(count("manifests/sha256-"), 0, "{requests:#?}");
    // 2 per image, the shared listing and the shared probe.
    assert!(requests.len() <= 6, "{requests:#?}");

    // A new attestation on v0: the API listing changes, so it is ingested.
    attest(&images[0], "9");
    let (fresh, _) = run_now();
    assert_eq!(fresh["counts"]["inserted"], 1, "{fresh:#}");
    assert!(
        fresh["images"][1]["reason"]
            .as_str()
            .unwrap()
            .contains("unchanged"),
        "{fresh:#}"
    );
}

/// Subscribes `provider` to `images` in keypair mode (plain-HTTP
/// registries allowed), polling every `poll`, with the key `key_arg`
/// (`cosignKeys=@<path>`) uploaded.
fn subscribe_keypair(
    provider: &str,
    images: &[&str],
    key_arg: &str,
    poll: &str,
    env: &[(&str, &str)],
) {
    let poll = format!("pollInterval={poll}");
    let mut args = vec!["vex", "providers", "configure", provider];
    for image in images {
        args.extend(["--image", image]);
    }
    args.extend([
        "--set",
        "cosignMode=keypair",
        "--set",
        "allowHttpRegistries=true",
        "--set",
        &poll,
        "--upload-artifact",
        key_arg,
    ]);
    ok(&args, env);
}

/// Copies an OCI layout into the spec registry's repository `repo` without
/// HTTP (so the registry's request counters start at the runner's first
/// request): every blob, and every manifest `index.json` lists (tagged by
/// its `org.opencontainers.image.ref.name`).
fn seed_from_layout(
    reg: &stella_testkit::spec_registry::SpecRegistry,
    lay: &std::path::Path,
    repo: &str,
) {
    for entry in std::fs::read_dir(lay.join("blobs/sha256")).unwrap() {
        reg.seed_blob(repo, &std::fs::read(entry.unwrap().path()).unwrap());
    }
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lay.join("index.json")).unwrap()).unwrap();
    for m in index["manifests"].as_array().unwrap() {
        let hex = m["digest"].as_str().unwrap().trim_start_matches("sha256:");
        let bytes = std::fs::read(lay.join("blobs/sha256").join(hex)).unwrap();
        let tag = m["annotations"]["org.opencontainers.image.ref.name"].as_str();
        reg.seed_manifest(repo, tag, m["mediaType"].as_str().unwrap(), &bytes);
    }
}

/// An OCI layout `dir/lay` with images `v0` and `v1`, each with one
/// OpenVEX attestation (CVE-2024-50 / -51) signed by `dir/k.key`
/// (`dir/k.pub` is the public key); returns the layout and the image digests.
fn attested_layout(dir: &std::path::Path) -> (std::path::PathBuf, Vec<stella_types::Digest>) {
    attested_layout_at(dir, ["2024-05-01T00:00:00Z", "2024-05-01T00:00:00Z"])
}

/// [`attested_layout`] with each document's timestamp given.
fn attested_layout_at(
    dir: &std::path::Path,
    timestamps: [&str; 2],
) -> (std::path::PathBuf, Vec<stella_types::Digest>) {
    let p = |n: &str| dir.join(n).to_str().unwrap().to_string();
    let lay = dir.join("lay");
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
    let mut digests = Vec::new();
    for (i, timestamp) in timestamps.into_iter().enumerate() {
        let d = stella_testkit::fixtures::layout_image(
            &lay,
            &format!("v{i}"),
            stella_testkit::fixtures::PLAIN_CONFIG,
            format!("layout image {i}").as_bytes(),
        );
        std::fs::write(
            p(&format!("{i}.json")),
            format!(
                r#"{{"@context":"https://openvex.dev/ns/v0.2.0","@id":"https://v/layout{i}","author":"A",
                "timestamp":"{timestamp}","version":1,
                "statements":[{{"vulnerability":{{"name":"CVE-2024-5{i}"}},"status":"fixed"}}]}}"#
            ),
        )
        .unwrap();
        ok(
            &[
                "attest",
                "--image",
                &format!("oci:{}:v{i}", lay.display()),
                "--predicate",
                &p(&format!("{i}.json")),
                "--type",
                "openvex",
                "--key",
                &p("k.key"),
            ],
            &[],
        );
        digests.push(d.digest);
    }
    (lay, digests)
}

/// A registry answering 429: the registry client waits and retries
/// (`Retry-After`) up to its limit, so the run's tag listing (given up:
/// the images then look their companion tags up themselves), then the
/// first image's change check and resolve each get six 429s: the first
/// image fails with the reason while the second is ingested; nothing of
/// the first is stored, and the next run (the registry no longer limits)
/// ingests it.
#[test]
fn a_rate_limiting_registry_fails_one_image_and_the_next_run_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let (lay, digests) = attested_layout(dir.path());
    // Three 6-attempt rounds of 429: the tag listing, then the first
    // image's first two requests (it goes alone, being the first image of
    // its registry).
    let reg = stella_testkit::spec_registry::SpecRegistry::start(
        stella_testkit::spec_registry::SpecConfig {
            rate_limit_first_n: 18,
            ..Default::default()
        },
    );
    seed_from_layout(&reg, &lay, "vex/rate");
    let host = reg.host_port();
    let server = start();
    let token = admin_token(&server);
    let env = [
        ("STELLA_SERVER", server.url.as_str()),
        ("STELLA_TOKEN", token.as_str()),
    ];
    let provider = "excititor:oci-openvex";
    let key_arg = format!("cosignKeys=@{}", p("k.pub"));
    let (img0, img1) = (format!("{host}/vex/rate:v0"), format!("{host}/vex/rate:v1"));
    subscribe_keypair(provider, &[&img0, &img1], &key_arg, "1h", &env);
    // The scheduler's first run meets the 429s.
    let status = wait_for_scheduled_run(&server, provider, &token, Duration::from_secs(120));
    let runs = status["runs"].as_array().unwrap();
    let whole = runs.iter().find(|r| r["image"] == "").unwrap();
    assert_eq!(whole["result"], "partial", "{status:#}");
    let first = runs.iter().find(|r| r["image"] == img0.as_str()).unwrap();
    assert_eq!(first["result"], "failed", "{status:#}");
    assert!(
        first["reason"].as_str().unwrap().contains("429"),
        "{status:#}"
    );
    let second = runs.iter().find(|r| r["image"] == img1.as_str()).unwrap();
    assert_eq!(second["counts"]["inserted"], 1, "{status:#}");
    let about = |d: &stella_types::Digest| {
        curl_json(
            &format!("{}/vex/statements?product=sha256:{}", server.url, d.hex()),
            &token,
        )["items"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(about(&digests[0]), 0);
    assert_eq!(about(&digests[1]), 1);
    // The next run recovers the first image; the second is unchanged.
    let out = run(
        &["vex", "providers", "run", provider, "--output", "json"],
        &env,
    );
    let next: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(next["result"], "succeeded", "{next:#}");
    assert_eq!(next["images"][0]["counts"]["inserted"], 1, "{next:#}");
    assert!(
        next["images"][1]["reason"]
            .as_str()
            .unwrap()
            .contains("unchanged"),
        "{next:#}"
    );
    assert_eq!(about(&digests[0]), 1);
    assert!(reg.requests().iter().any(|r| r.method == "HEAD"));
}

/// A registry dying mid-run (the spec registry drops every connection
/// after its 6th request, inside the first image's discovery): both images
/// fail with the transport reason, the run is `failed`, the run status is
/// recorded, and no statement (nor part of a document) is stored. Then the
/// registry comes back (same address, same content) and the next run
/// recovers: both images are discovered again and every statement is
/// stored, exactly once.
#[test]
fn a_registry_dying_mid_run_fails_the_run_and_stores_nothing_then_the_next_run_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let (lay, digests) = attested_layout(dir.path());
    let reg = stella_testkit::spec_registry::SpecRegistry::start(
        stella_testkit::spec_registry::SpecConfig {
            fail_after_requests: Some(6),
            ..Default::default()
        },
    );
    seed_from_layout(&reg, &lay, "vex/dying");
    let host = reg.host_port();
    let server = start();
    let token = admin_token(&server);
    let env = [
        ("STELLA_SERVER", server.url.as_str()),
        ("STELLA_TOKEN", token.as_str()),
    ];
    let provider = "excititor:oci-openvex";
    let key_arg = format!("cosignKeys=@{}", p("k.pub"));
    let (img0, img1) = (
        format!("{host}/vex/dying:v0"),
        format!("{host}/vex/dying:v1"),
    );
    subscribe_keypair(provider, &[&img0, &img1], &key_arg, "1h", &env);
    let status = wait_for_scheduled_run(&server, provider, &token, Duration::from_secs(180));
    let runs = status["runs"].as_array().unwrap();
    let whole = runs.iter().find(|r| r["image"] == "").unwrap();
    assert_eq!(whole["result"], "failed", "{status:#}");
    assert!(
        whole["reason"]
            .as_str()
            .unwrap()
            .contains("2 of 2 image(s) failed"),
        "{status:#}"
    );
    for image in [&img0, &img1] {
        let r = runs.iter().find(|r| r["image"] == image.as_str()).unwrap();
        assert_eq!(r["result"], "failed", "{status:#}");
        assert!(!r["reason"].as_str().unwrap().is_empty(), "{status:#}");
        assert_eq!(r["counts"]["inserted"], 0, "{status:#}");
    }
    assert!(
        reg.request_count() > 6,
        "the registry was asked after it died"
    );
    for d in &digests {
        let items = curl_json(
            &format!("{}/vex/statements?product=sha256:{}", server.url, d.hex()),
            &token,
        );
        assert_eq!(items["items"].as_array().unwrap().len(), 0, "{items:#}");
    }
    // The registry comes back; the next (on demand) run recovers both
    // images: nothing of the failed run stands in the way.
    reg.revive();
    let out = run(
        &["vex", "providers", "run", provider, "--output", "json"],
        &env,
    );
    let next: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(next["result"], "succeeded", "{next:#}");
    assert_eq!(next["counts"]["inserted"], 2, "{next:#}");
    assert_eq!(next["counts"]["rejected"], 0, "{next:#}");
    for d in &digests {
        let items = curl_json(
            &format!("{}/vex/statements?product=sha256:{}", server.url, d.hex()),
            &token,
        );
        assert_eq!(items["items"].as_array().unwrap().len(), 1, "{items:#}");
    }
    // And a run after that finds both unchanged and stores nothing more.
    let out = run(
        &["vex", "providers", "run", provider, "--output", "json"],
        &env,
    );
    let idle: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(idle["result"], "succeeded", "{idle:#}");
    assert_eq!(idle["counts"]["inserted"], 0, "{idle:#}");
}

/// A document refused for a timestamp in the future is searched again by
/// the next run even though its image did not change (the run keeps no
/// fingerprint for that image), so it is accepted once its time has come;
/// the image next to it, accepted, is skipped as unchanged.
#[test]
fn a_document_from_the_future_is_rechecked_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let (lay, digests) =
        attested_layout_at(dir.path(), ["2999-01-01T00:00:00Z", "2024-05-01T00:00:00Z"]);
    let reg = stella_testkit::spec_registry::SpecRegistry::start(Default::default());
    seed_from_layout(&reg, &lay, "vex/future");
    let host = reg.host_port();
    let server = start();
    let token = admin_token(&server);
    let env = [
        ("STELLA_SERVER", server.url.as_str()),
        ("STELLA_TOKEN", token.as_str()),
    ];
    let provider = "excititor:oci-openvex";
    let key_arg = format!("cosignKeys=@{}", p("k.pub"));
    let (img0, img1) = (
        format!("{host}/vex/future:v0"),
        format!("{host}/vex/future:v1"),
    );
    subscribe_keypair(provider, &[&img0, &img1], &key_arg, "24h", &env);
    let run_now = || run_when_idle(provider, &env);
    let image = |v: &serde_json::Value, name: &str| {
        v["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["image"] == name)
            .cloned()
            .unwrap()
    };
    for round in 0..2 {
        let v = run_now();
        assert_eq!(v["result"], "succeeded", "round {round}: {v:#}");
        let future = image(&v, &img0);
        let reason = future["reason"].as_str().unwrap();
        assert!(reason.contains("not yet valid"), "round {round}: {v:#}");
        assert!(!reason.contains("unchanged"), "round {round}: {v:#}");
        assert_eq!(future["counts"]["found"], 1, "round {round}: {v:#}");
        assert_eq!(future["counts"]["rejected"], 1, "round {round}: {v:#}");
        if round == 1 {
            let other = image(&v, &img1);
            assert!(
                other["reason"].as_str().unwrap().contains("unchanged"),
                "{v:#}"
            );
        }
    }
    let about = |d: &stella_types::Digest| {
        curl_json(
            &format!("{}/vex/statements?product=sha256:{}", server.url, d.hex()),
            &token,
        )["items"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(about(&digests[0]), 0);
    assert_eq!(about(&digests[1]), 1);
}
