//! Export Center jobs of `stella serve` (issue 14 §4) end to end with real
//! parts: a real `docker-registry` (distribution 2.8) holding images with
//! referrers, `stella serve` as a process (the shared serve harness), curl
//! as the independent HTTP client (server-sent events, ranges, `-C -`
//! resume), and `stella export verify`, `tar` and `sha256sum -c` reading
//! what was downloaded. Tenant isolation, scopes, a failing export, a
//! running export deleted (a registry that stalls mid-blob, from the
//! testkit), and registry credentials that come only from the tenant's
//! `registryAuth` artifact (never the server's own docker config).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve_harness;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stella_oci::artifact::{ArtifactSpec, LayerSource, push_referrer};
use stella_oci::registry::{RegistryClient, RegistryOptions, Repository};
use stella_oci::store::NoProgress;
use stella_testkit::blob_faults::{BlobFault, FaultyBlobContent, FaultyBlobRegistry};
use stella_testkit::distribution::DistributionRegistry;
use stella_testkit::fixtures::push_image;
use stella_types::reference::RegistryReference;
use stella_types::{Descriptor, Digest, ImageManifest, media_types};

use serve_harness::{BIN, Server};

const SBOM: &str = "application/vnd.cyclonedx+json";

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("DOCKER_CONFIG", "/nonexistent-stella-test-docker-config"),
        ("STELLA_RATE_LIMIT_REQUESTS_PER_SECOND", "100000"),
    ]
}

fn stella(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("DOCKER_CONFIG", "/nonexistent-stella-test-docker-config")
        .env("XDG_CONFIG_HOME", "/nonexistent-stella-test-config")
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap()
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// A client of `tenant` with `scopes`; returns its access token.
fn client_token(server: &Server, name: &str, tenant: &str, scopes: &str) -> String {
    let data = server.data.path().to_str().unwrap();
    let add = ok(
        &stella(&[
            "admin",
            "clients",
            "add",
            name,
            "--tenant",
            tenant,
            "--scopes",
            scopes,
            "--data-dir",
            data,
            "--output",
            "json",
        ]),
        "clients add",
    );
    let secret = serde_json::from_str::<Value>(&add).unwrap()["clientSecret"]
        .as_str()
        .unwrap()
        .to_string();
    let out = Command::new("curl")
        .args(["-sf", "-d", "grant_type=client_credentials", "-d"])
        .arg(format!("client_id={name}"))
        .arg("--data-urlencode")
        .arg(format!("client_secret={secret}"))
        .arg(format!("{}/connect/token", server.url))
        .output()
        .unwrap();
    assert!(out.status.success(), "token for {name}");
    serde_json::from_slice::<Value>(&out.stdout).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// One curl exchange: status, headers (lower-cased names) and body.
struct Reply {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }
}

fn curl(method: &str, url: &str, token: &str, extra: &[&str]) -> Reply {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body");
    let head = dir.path().join("head");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "120", "-X", method, "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg("-o")
        .arg(&body)
        .arg("-D")
        .arg(&head)
        .args(["-w", "%{http_code}"])
        .args(extra)
        .arg(url)
        .output()
        .unwrap();
    let status: u16 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    let mut headers = BTreeMap::new();
    for line in std::fs::read_to_string(&head).unwrap_or_default().lines() {
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    Reply {
        status,
        headers,
        body: std::fs::read(&body).unwrap_or_default(),
    }
}

fn post_export(server: &Server, token: &str, body: &Value) -> Reply {
    curl(
        "POST",
        &format!("{}/exports", server.url),
        token,
        &[
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &body.to_string(),
        ],
    )
}

/// The events of a job's stream, read by curl until the server ends it.
fn events(server: &Server, token: &str, id: &str) -> Vec<(String, Value)> {
    let out = Command::new("curl")
        .args(["-sSN", "--max-time", "300", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(format!("{}/exports/{id}/events", server.url))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "events stream: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    text.split("\n\n")
        .filter_map(|block| {
            let mut name = "message".to_string();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            (!data.is_empty()).then(|| (name, serde_json::from_str(&data).unwrap()))
        })
        .collect()
}

fn status_of(server: &Server, token: &str, id: &str) -> Value {
    let r = curl("GET", &format!("{}/exports/{id}", server.url), token, &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

fn assert_problem(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        r.header("content-type")
            .starts_with("application/problem+json"),
        "{:?}",
        r.headers
    );
    assert_eq!(
        r.json()["code"],
        code,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

fn client(creds: Option<(String, String)>) -> RegistryClient {
    RegistryClient::new(RegistryOptions {
        plain_http: true,
        credentials: creds,
        docker_config_dir: Some("/nonexistent-stella-test-docker-config".into()),
        ..RegistryOptions::default()
    })
    .unwrap()
}

fn repo(c: &RegistryClient, host: &str, name: &str) -> Repository {
    c.repository(&RegistryReference {
        registry: host.to_string(),
        repository: name.to_string(),
        tag: None,
        digest: None,
    })
}

async fn add_sbom(store: &Repository, subject: &Descriptor, body: &str) {
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "org.opencontainers.image.created".to_string(),
        "2024-05-01T00:00:00Z".to_string(),
    );
    let spec = ArtifactSpec {
        artifact_type: SBOM.to_string(),
        layers: vec![LayerSource::Bytes {
            bytes: body.as_bytes().to_vec(),
            media_type: SBOM.to_string(),
            title: None,
        }],
        annotations,
    };
    push_referrer(store, subject, &spec, &NoProgress)
        .await
        .unwrap();
}

/// `rel/app<r>:v<t>` for r in 0..2, t in 0..2, each with an SBOM referrer.
async fn seed(c: &RegistryClient, host: &str) {
    for r in 0..2 {
        let store = repo(c, host, &format!("rel/app{r}"));
        for t in 0..2 {
            let seed = format!("{r}-{t}");
            let cfg = format!(r#"{{"architecture":"amd64","os":"linux","seed":"{seed}"}}"#);
            let layer = seed.repeat(40_000).into_bytes();
            let img = push_image(&store, cfg.as_bytes(), &layer, Some(&format!("v{t}"))).await;
            add_sbom(
                &store,
                &img,
                &format!(r#"{{"bomFormat":"CycloneDX","n":"{seed}"}}"#),
            )
            .await;
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Digest::sha256_of(bytes).hex().to_string()
}

/// Creates an export, follows its events to the end and returns
/// (id, events, final status).
fn run_to_end(server: &Server, token: &str, body: &Value) -> (String, Vec<(String, Value)>, Value) {
    let r = post_export(server, token, body);
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(r.header("location"), format!("/exports/{id}"));
    let evs = events(server, token, &id);
    let status = status_of(server, token, &id);
    (id, evs, status)
}

#[tokio::test(flavor = "multi_thread")]
async fn service_export_streams_downloads_in_ranges_verifies_and_stays_in_its_tenant() {
    let reg = DistributionRegistry::start_plain().unwrap();
    let host = reg.host_port();
    let c = client(None);
    seed(&c, &host).await;
    let server = serve_harness::start(&env());
    let admin = client_token(&server, "exp", "t1", "export.read,export.admin");
    let reader = client_token(&server, "reader", "t1", "export.read");
    let other = client_token(&server, "other", "t2", "export.read,export.admin");
    let images = vec![format!("{host}/rel/app0:v0"), format!("{host}/rel/app0:v1")];
    let body = json!({
        "profile": "mirror:full",
        "selection": {"images": images, "repositories": [format!("{host}/rel/app1")]},
        "options": {"sign": true, "plainHttp": true},
    });

    // POST → events to the end → status.
    let started = Instant::now();
    let (id, evs, st) = run_to_end(&server, &admin, &body);
    let service_secs = started.elapsed().as_secs_f64();
    let (last_name, last) = evs.last().unwrap();
    assert_eq!(last_name, "completed", "{evs:?}");
    assert_eq!(last["status"], "succeeded");
    assert!(
        evs[..evs.len() - 1].iter().all(|(n, _)| n == "progress"),
        "{evs:?}"
    );
    assert_eq!(st["status"], "succeeded", "{st}\n{}", server.log());
    assert!(st["progress"]["entriesTotal"].as_i64().unwrap() > 0, "{st}");
    // The server verified the file with the tenant's key.
    assert_eq!(st["verification"]["verified"], true, "{st}");
    assert_eq!(st["verification"]["signature"], "verified", "{st}");
    assert_eq!(st["verification"]["manifestDigest"], st["manifestDigest"]);
    let size = st["file"]["size"].as_u64().unwrap();
    let sha = st["file"]["sha256"].as_str().unwrap().to_string();
    // A client connecting after the end gets the final event at once.
    let again = events(&server, &admin, &id);
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(again[0].0, "completed");

    // Download whole, then in two halves, then resumed with curl -C -.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}/exports/{id}/download", server.url);
    let full = curl("GET", &url, &reader, &[]);
    assert_eq!(full.status, 200);
    assert_eq!(full.body.len() as u64, size);
    assert_eq!(sha256_hex(&full.body), sha);
    assert_eq!(full.header("etag"), format!("\"{sha}\""));
    assert_eq!(full.header("accept-ranges"), "bytes");
    let half = size / 2;
    let a = curl("GET", &url, &reader, &["-r", &format!("0-{}", half - 1)]);
    let b = curl("GET", &url, &reader, &["-r", &format!("{half}-")]);
    assert_eq!((a.status, b.status), (206, 206));
    assert_eq!(
        b.header("content-range"),
        format!("bytes {half}-{}/{size}", size - 1)
    );
    assert_eq!([a.body.clone(), b.body.clone()].concat(), full.body);
    let resumed = dir.path().join("resumed.tar");
    std::fs::write(&resumed, &a.body).unwrap();
    let out = Command::new("curl")
        .args(["-sSf", "-C", "-", "-H"])
        .arg(format!("Authorization: Bearer {reader}"))
        .arg("-o")
        .arg(&resumed)
        .arg(&url)
        .output()
        .unwrap();
    ok(&out, "curl -C -");
    assert_eq!(std::fs::read(&resumed).unwrap(), full.body);
    let bad = curl("GET", &url, &reader, &["-r", &format!("{size}-")]);
    assert_problem(&bad, 416, "RANGE_NOT_SATISFIABLE");
    assert_eq!(bad.header("content-range"), format!("bytes */{size}"));

    // The download verifies against the tenant's published key, and the
    // extracted checksums pass sha256sum.
    let tar = dir.path().join("export.tar");
    std::fs::write(&tar, &full.body).unwrap();
    let key = curl(
        "GET",
        &format!("{}/exports/signing-key", server.url),
        &reader,
        &[],
    );
    assert_eq!(key.status, 200);
    let pem = dir.path().join("export.pub");
    std::fs::write(&pem, key.json()["publicKeyPem"].as_str().unwrap()).unwrap();
    let v = stella(&[
        "export",
        "verify",
        tar.to_str().unwrap(),
        "--key",
        pem.to_str().unwrap(),
        "--output",
        "json",
    ]);
    let report: Value = serde_json::from_str(&ok(&v, "export verify")).unwrap();
    assert_eq!(report["verified"], true, "{report}");
    assert_eq!(report["signature"], "verified", "{report}");
    assert_eq!(report["manifestDigest"], st["manifestDigest"]);
    let x = dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    ok(
        &Command::new("tar")
            .arg("-xf")
            .arg(&tar)
            .arg("-C")
            .arg(&x)
            .output()
            .unwrap(),
        "tar",
    );
    let sums = Command::new("sha256sum")
        .args(["--strict", "-c", "checksums.txt"])
        .current_dir(&x)
        .output()
        .unwrap();
    ok(&sums, "sha256sum -c");

    // The CLI export of the same selection has the same manifest digest.
    let cli_out = dir.path().join("cli.tar");
    let started = Instant::now();
    let run = stella(&[
        "--plain-http",
        "--no-progress",
        "export",
        "run",
        "--profile",
        "mirror:full",
        "--image",
        &images[0],
        "--image",
        &images[1],
        "--repository",
        &format!("{host}/rel/app1"),
        "--output",
        cli_out.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let cli_secs = started.elapsed().as_secs_f64();
    let cli: Value = serde_json::from_str(&ok(&run, "export run")).unwrap();
    assert_eq!(cli["manifestDigest"], st["manifestDigest"]);
    eprintln!(
        "FIGURES service export (POST to final event) {service_secs:.2} s, CLI export {cli_secs:.2} s, ratio {:.2}",
        service_secs / cli_secs
    );

    // A delta since the first export: only what is new.
    let store = repo(&c, &host, "rel/app0");
    let img = push_image(
        &store,
        br#"{"seed":"new"}"#,
        &b"fresh".repeat(9000),
        Some("v2"),
    )
    .await;
    add_sbom(&store, &img, r#"{"bomFormat":"CycloneDX","n":"new"}"#).await;
    let delta_body = json!({
        "profile": "mirror:delta",
        "selection": {"images": [format!("{host}/rel/app0:v0"), format!("{host}/rel/app0:v1"),
                                  format!("{host}/rel/app0:v2")],
                      "repositories": [format!("{host}/rel/app1")]},
        "options": {"since": id, "plainHttp": true},
    });
    let (delta_id, _, dst) = run_to_end(&server, &admin, &delta_body);
    assert_eq!(dst["status"], "succeeded", "{dst}");
    assert!(dst["file"]["size"].as_u64().unwrap() < size, "{dst}");
    let delta = curl(
        "GET",
        &format!("{}/exports/{delta_id}/download", server.url),
        &admin,
        &[],
    );
    let delta_tar = dir.path().join("delta.tar");
    std::fs::write(&delta_tar, &delta.body).unwrap();
    let v = stella(&[
        "export",
        "verify",
        delta_tar.to_str().unwrap(),
        "--output",
        "json",
    ]);
    let report: Value = serde_json::from_str(&ok(&v, "verify delta")).unwrap();
    assert_eq!(report["base"], st["manifestDigest"], "{report}");
    // A base from another tenant is refused like a missing one.
    let foreign = post_export(&server, &other, &delta_body);
    assert_problem(&foreign, 400, "VALIDATION_FAILED");

    // Tenant isolation: 404 on every route, absent from the list.
    for (method, suffix) in [
        ("GET", ""),
        ("GET", "/download"),
        ("GET", "/events"),
        ("DELETE", ""),
    ] {
        let r = curl(
            method,
            &format!("{}/exports/{id}{suffix}", server.url),
            &other,
            &[],
        );
        assert_problem(&r, 404, "NOT_FOUND");
    }
    let listed = curl("GET", &format!("{}/exports", server.url), &other, &[]);
    assert_eq!(listed.json()["items"], json!([]));
    let mine = curl(
        "GET",
        &format!("{}/exports?limit=1", server.url),
        &reader,
        &[],
    );
    assert_eq!(mine.json()["items"][0]["id"], id.as_str());
    assert!(mine.json()["nextCursor"].is_string());

    // Scopes: export.read cannot create or delete.
    assert_problem(
        &post_export(&server, &reader, &body),
        403,
        "INSUFFICIENT_SCOPE",
    );
    let r = curl(
        "DELETE",
        &format!("{}/exports/{id}", server.url),
        &reader,
        &[],
    );
    assert_problem(&r, 403, "INSUFFICIENT_SCOPE");

    // A failing export ends `failed` with its reason, in status and events.
    let missing = json!({
        "profile": "mirror:full",
        "selection": {"images": [format!("{host}/rel/app0:no-such-tag")]},
        "options": {"plainHttp": true},
    });
    let (fid, fevs, fst) = run_to_end(&server, &admin, &missing);
    assert_eq!(fst["status"], "failed");
    let reason = fst["reason"].as_str().unwrap();
    assert!(reason.contains("no-such-tag"), "{reason}");
    let (name, fin) = fevs.last().unwrap();
    assert_eq!(name, "failed");
    assert_eq!(fin["reason"], reason);
    let r = curl(
        "GET",
        &format!("{}/exports/{fid}/download", server.url),
        &admin,
        &[],
    );
    assert_problem(&r, 409, "CONFLICT");

    // Metrics: duration, bytes, failures by reason.
    let m = String::from_utf8(
        Command::new("curl")
            .args(["-sf"])
            .arg(format!("{}/metrics", server.url))
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(
        m.contains("stella_export_duration_seconds_count{profile=\"mirror:full\"} 1"),
        "{m}"
    );
    assert!(m.contains("stella_export_written_bytes_total"), "{m}");
    assert!(
        m.contains("stella_export_failures_total{reason=\"store\"} 1"),
        "{m}"
    );

    // DELETE removes the file; the job stays listed as deleted.
    let r = curl(
        "DELETE",
        &format!("{}/exports/{id}", server.url),
        &admin,
        &[],
    );
    assert_eq!(r.status, 204);
    assert_eq!(status_of(&server, &admin, &id)["status"], "deleted");
    assert!(!server.data.path().join("exports/t1").join(&id).exists());
    assert_problem(&curl("GET", &url, &admin, &[]), 409, "CONFLICT");
    let (status, _) = server.stop();
    assert!(status.success());
}

/// An image whose one layer stalls after 1 MiB, served by the testkit's
/// faulty registry.
fn stalling_content() -> FaultyBlobContent {
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let layer = vec![b'z'; 4 * 1024 * 1024];
    let layer_d = Descriptor::for_bytes(media_types::OCI_LAYER_TAR, &layer);
    let image = ImageManifest {
        schema_version: 2,
        media_type: Some(media_types::OCI_MANIFEST.into()),
        artifact_type: None,
        config: Descriptor::for_bytes(media_types::OCI_CONFIG, &config),
        layers: vec![layer_d.clone()],
        subject: None,
        annotations: BTreeMap::new(),
    };
    FaultyBlobContent {
        repo: "slow/app".into(),
        manifests: vec![(
            media_types::OCI_MANIFEST.into(),
            image.to_json_bytes(),
            Some("v1".into()),
        )],
        blobs: vec![config, layer],
        faulty_blob: layer_d.digest.to_string(),
    }
}

fn wait_for_status(server: &Server, token: &str, id: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let st = status_of(server, token, id);
        if st["status"] == want || Instant::now() > deadline {
            return st;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn deleting_a_running_export_cancels_it_and_removes_its_files() {
    let reg =
        FaultyBlobRegistry::start(stalling_content(), BlobFault::StallAfter(1024 * 1024)).unwrap();
    let server = serve_harness::start(&env());
    let admin = client_token(&server, "exp", "t1", "export.read,export.admin");
    let body = json!({
        "profile": "mirror:full",
        "selection": {"images": [format!("{}/slow/app:v1", reg.host_port())]},
        "options": {"plainHttp": true},
    });
    let r = post_export(&server, &admin, &body);
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let id = r.json()["id"].as_str().unwrap().to_string();
    let st = wait_for_status(&server, &admin, &id, "running");
    assert_eq!(st["status"], "running", "{st}");
    // Wait until the transfer of the stalling layer has started (its
    // size is counted when it starts), well before any read timeout.
    let deadline = Instant::now() + Duration::from_secs(20);
    while status_of(&server, &admin, &id)["progress"]["bytesTotal"]
        .as_u64()
        .unwrap()
        < 4 * 1024 * 1024
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let st = status_of(&server, &admin, &id);
    assert_eq!(st["status"], "running", "{st}");
    assert!(
        st["progress"]["bytesTotal"].as_u64().unwrap() >= 4 * 1024 * 1024,
        "{st}"
    );
    let job_dir = server.data.path().join("exports/t1").join(&id);
    assert!(job_dir.exists());
    let r = curl(
        "DELETE",
        &format!("{}/exports/{id}", server.url),
        &admin,
        &[],
    );
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
    let st = status_of(&server, &admin, &id);
    assert_eq!(st["status"], "deleted");
    assert!(
        st["reason"].as_str().unwrap().starts_with("cancelled"),
        "{st}"
    );
    assert!(!job_dir.exists(), "the job directory is removed");
    let evs = events(&server, &admin, &id);
    assert_eq!(evs.last().unwrap().0, "deleted");
    let (status, _) = server.stop();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn registry_credentials_come_only_from_the_tenants_registry_auth_artifact() {
    let reg = DistributionRegistry::start_htpasswd("exporter", "s3cret-pass").unwrap();
    let host = reg.host_port();
    let c = client(Some(("exporter".into(), "s3cret-pass".into())));
    let store = repo(&c, &host, "private/app");
    push_image(
        &store,
        br#"{"seed":"private"}"#,
        b"private layer",
        Some("v1"),
    )
    .await;
    // The server's own docker config holds valid credentials: they must not be used.
    let own = tempfile::tempdir().unwrap();
    let auth = serve_harness_auth(&host, "exporter", "s3cret-pass");
    std::fs::write(own.path().join("config.json"), &auth).unwrap();
    let own_dir = own.path().to_str().unwrap().to_string();
    let server = serve_harness::start(&[
        ("DOCKER_CONFIG", own_dir.as_str()),
        ("STELLA_RATE_LIMIT_REQUESTS_PER_SECOND", "100000"),
    ]);
    let admin = client_token(
        &server,
        "exp",
        "t1",
        "export.read,export.admin,vex.admin,vex.read",
    );
    let other = client_token(&server, "other", "t2", "export.read,export.admin,vex.admin");
    let mut body = json!({
        "profile": "mirror:full",
        "selection": {"images": [format!("{host}/private/app:v1")]},
        "options": {"plainHttp": true},
    });
    let (_, _, st) = run_to_end(&server, &admin, &body);
    assert_eq!(st["status"], "failed", "{st}");
    assert!(
        st["reason"].as_str().unwrap().contains("authentication"),
        "{st}"
    );

    // Stage the docker config as the tenant's artifact and name it.
    let file = own.path().join("config.json");
    let up = curl(
        "POST",
        &format!("{}/excititor/providers/exports/artifacts", server.url),
        &admin,
        &[
            "-F",
            &format!("file=@{};type=application/json", file.display()),
        ],
    );
    assert_eq!(up.status, 201, "{}", String::from_utf8_lossy(&up.body));
    let artifact = up.json()["artifactId"].as_str().unwrap().to_string();
    body["options"]["registryAuth"] = json!(artifact);
    let (_, _, st) = run_to_end(&server, &admin, &body);
    assert_eq!(st["status"], "succeeded", "{st}\n{}", server.log());
    // Another tenant cannot use it.
    let (_, _, st) = run_to_end(&server, &other, &body);
    assert_eq!(st["status"], "failed", "{st}");
    assert!(
        st["reason"].as_str().unwrap().contains("registryAuth"),
        "{st}"
    );
    let _ = std::fs::remove_dir_all(Path::new(&own_dir));
    let (status, _) = server.stop();
    assert!(status.success());
}

/// A docker `config.json` with basic credentials for `host`.
fn serve_harness_auth(host: &str, user: &str, password: &str) -> String {
    let token = stella_testkit::fixtures::base64_encode(format!("{user}:{password}").as_bytes());
    json!({"auths": {host: {"auth": token}}}).to_string()
}

#[test]
fn a_restart_fails_the_running_export_as_interrupted_and_ends_open_event_streams() {
    let reg =
        FaultyBlobRegistry::start(stalling_content(), BlobFault::StallAfter(1024 * 1024)).unwrap();
    let server = serve_harness::start(&env());
    let admin = client_token(&server, "exp", "t1", "export.read,export.admin");
    let body = json!({
        "profile": "mirror:full",
        "selection": {"images": [format!("{}/slow/app:v1", reg.host_port())]},
        "options": {"plainHttp": true},
    });
    let r = post_export(&server, &admin, &body);
    assert_eq!(r.status, 202);
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        wait_for_status(&server, &admin, &id, "running")["status"],
        "running"
    );
    // A client follows the events while the server is stopped under it:
    // shutdown must not wait for the stream.
    let follower = std::process::Command::new("curl")
        .args(["-sSN", "--max-time", "60", "-H"])
        .arg(format!("Authorization: Bearer {admin}"))
        .arg(format!("{}/exports/{id}/events", server.url))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let stopped = Instant::now();
    let server = server.restart(&env());
    assert!(
        stopped.elapsed() < Duration::from_secs(30),
        "shutdown waited for the stream"
    );
    let out = follower.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("event: progress"));
    let st = status_of(&server, &admin, &id);
    assert_eq!(st["status"], "failed", "{st}");
    assert_eq!(st["reason"], "interrupted");
    let evs = events(&server, &admin, &id);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].0, "failed");
    let m = String::from_utf8(
        Command::new("curl")
            .args(["-sf"])
            .arg(format!("{}/metrics", server.url))
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(
        m.contains("stella_export_failures_total{reason=\"interrupted\"} 1"),
        "{m}"
    );
    let (status, _) = server.stop();
    assert!(status.success());
}
