//! `POST /api/v1/reports` with `attach: true` and the tenant's
//! `registryAuth` credentials, end to end: a real registry (Debian
//! `docker-registry`, distribution 2.8) behind htpasswd basic auth, `stella
//! serve` as a real process whose own `DOCKER_CONFIG` holds valid
//! credentials that must never be used, HTTP with curl.
//!
//! Checked: without the tenant's artifact, reports, previews and attaching
//! fail with a 502 naming the refused authentication (and nothing is
//! pushed); an unknown artifact is a 400; with it the report is computed
//! and attached; `stella evidence list-referrers` finds the verdict bundle; PyPI
//! securesystemslib + cryptography (fetching the bundle from the registry
//! with `requests`) verify its DSSE envelope with the key `GET
//! /api/v1/reports/keys` publishes and find the returned report as the
//! verdict predicate about the image's digest; another tenant cannot use
//! the artifact; `stella report --server --attach --registry-auth` sends
//! both and prints the server's `attached.digest`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve_harness;

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use stella_testkit::cli::{Run, Stella};
use stella_testkit::distribution::DistributionRegistry;
use stella_testkit::fixtures::{PythonLayer, base64_encode, python_layout};

const USER: &str = "reporter";
const PASSWORD: &str = "s3cret-pass";
const GENERATED_AT: &str = "2026-09-21T14:13:20Z";
const POLICY: &str = "version: 1
unsignedEvidence: ignore
rules:
  - name: Block critical
    severity: [Critical]
    action: block
";
const BUNDLE_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const VERDICT: &str = "https://stella.dev/attestation/verdict/v1";

/// Fetches the referrer's bundle from the registry (basic auth), verifies
/// the DSSE envelope with the published key and prints the statement.
const PY_VERIFY: &str = r#"
import base64, copy, json, sys, requests
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
host, repo, digest, user, password, pem = sys.argv[1:7]
auth = (user, password)
m = requests.get(f"http://{host}/v2/{repo}/manifests/{digest}", auth=auth,
    headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}, timeout=30)
m.raise_for_status()
layer = m.json()["layers"][0]
blob = requests.get(f"http://{host}/v2/{repo}/blobs/{layer['digest']}", auth=auth, timeout=30)
blob.raise_for_status()
bundle = json.loads(blob.content)
e = bundle["dsseEnvelope"]
pub = load_pem_public_key(open(pem, "rb").read())
key = SSlibKey.from_crypto(pub, keyid=e["signatures"][0]["keyid"])
Envelope.from_dict(copy.deepcopy(e)).verify([key], 1)
payload = base64.b64decode(e["payload"])
pae = b"DSSEv1 %d %s %d %s" % (len(e["payloadType"]), e["payloadType"].encode(), len(payload), payload)
pub.verify(base64.b64decode(e["signatures"][0]["sig"]), pae)
print(json.dumps({"payloadType": e["payloadType"], "statement": json.loads(payload),
    "mediaType": bundle["mediaType"], "annotations": m.json().get("annotations", {})}))
"#;

fn stella(dir: &Path, args: &[&str]) -> Run {
    Stella::new(env!("CARGO_BIN_EXE_stella"))
        .current_dir(dir)
        .global_arg("--plain-http")
        .global_arg("--no-progress")
        .env("DOCKER_CONFIG", dir.join("docker-config"))
        .env_remove("STELLA_REQUEST_STATS")
        .env_remove("STELLA_SERVER")
        .run(args)
}

/// A docker `config.json` with basic credentials for `host`.
fn docker_config(host: &str) -> String {
    let token = base64_encode(format!("{USER}:{PASSWORD}").as_bytes());
    json!({"auths": {host: {"auth": token}}}).to_string()
}

/// One HTTP call with curl: (status, body).
fn curl(url: &str, token: &str, method: &str, extra: &[&str]) -> (u16, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("out");
    let out = Command::new("curl")
        .args(["-s", "-X", method, "-o"])
        .arg(&out_file)
        .args(["-w", "%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .args(extra)
        .arg(url)
        .output()
        .unwrap();
    let status: u16 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    (status, std::fs::read(&out_file).unwrap_or_default())
}

fn post_json(url: &str, token: &str, body: &Value) -> (u16, Value) {
    let (status, out) = curl(
        url,
        token,
        "POST",
        &[
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &body.to_string(),
        ],
    );
    (status, serde_json::from_slice(&out).unwrap_or(Value::Null))
}

/// Pushes image `v1` of a fresh layout to `dest` with skopeo (credentials).
fn push_image(w: &Path, dest: &str) {
    python_layout(&w.join("img"), PythonLayer::Seed("attach"));
    let out = Command::new("skopeo")
        .args([
            "copy",
            "--insecure-policy",
            "--dest-tls-verify=false",
            "--preserve-digests",
            "--dest-creds",
            &format!("{USER}:{PASSWORD}"),
        ])
        .arg(format!("oci:{}:v1", w.join("img").display()))
        .arg(format!("docker://{dest}"))
        .output()
        .unwrap_or_else(|e| panic!("skopeo is required for this test: {e}"));
    assert!(
        out.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The referrers of `image` as `stella evidence list-referrers --format json` lists them.
fn referrers(w: &Path, image: &str) -> Vec<Value> {
    let r = stella(
        w,
        &["evidence", "list-referrers", image, "--format", "json"],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    match v {
        Value::Array(items) => items,
        other => other["referrers"].as_array().cloned().unwrap_or_default(),
    }
}

fn import_and_activate(url: &str, token: &str) {
    let (status, body) = curl(
        &format!("{url}/policy/import"),
        token,
        "POST",
        &[
            "-H",
            "Content-Type: application/yaml",
            "--data-binary",
            POLICY,
        ],
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let rev: Value = serde_json::from_slice(&body).unwrap();
    let (status, _) = post_json(
        &format!("{url}/policy/activate"),
        token,
        &json!({"revisionId": rev["revisionId"]}),
    );
    assert_eq!(status, 200);
}

#[test]
fn attach_pushes_the_signed_report_with_the_tenants_registry_credentials_only() {
    let reg = DistributionRegistry::start_htpasswd(USER, PASSWORD).unwrap();
    let host = reg.host_port();
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    std::fs::create_dir_all(w.join("docker-config")).unwrap();
    std::fs::write(w.join("docker-config/config.json"), docker_config(&host)).unwrap();
    let app = format!("{host}/private/app:v1");
    push_image(w, &app);

    // The server's own docker config holds valid credentials: never used.
    let server =
        serve_harness::start(&[("DOCKER_CONFIG", w.join("docker-config").to_str().unwrap())]);
    let url = server.url.clone();
    let admin = server.admin_token();
    import_and_activate(&url, &admin);
    let reports = format!("{url}/api/v1/reports");
    let request = json!({"image": app, "plainHttp": true, "generatedAt": GENERATED_AT});

    // Anonymous: reading, previewing and attaching fail clearly; nothing pushed.
    for (path, body) in [
        (reports.clone(), request.clone()),
        (
            format!("{url}/policy/preview"),
            json!({"policy": POLICY, "image": app, "plainHttp": true}),
        ),
        (reports.clone(), {
            let mut b = request.clone();
            b["attach"] = json!(true);
            b
        }),
    ] {
        let (status, problem) = post_json(&path, &admin, &body);
        assert_eq!(status, 502, "{path}: {problem}");
        let detail = problem["detail"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase();
        assert!(
            detail.contains("auth") || detail.contains("401"),
            "{path}: {problem}"
        );
    }
    assert!(referrers(w, &app).is_empty(), "nothing was attached");

    // An artifact id the tenant does not have is a 400 on the field.
    let mut unknown = request.clone();
    unknown["registryAuth"] = json!("00000000-0000-4000-8000-000000000000");
    let (status, problem) = post_json(&reports, &admin, &unknown);
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem.to_string().contains("REGISTRY_AUTH_NOT_FOUND"),
        "{problem}"
    );

    // Stage the docker config as the tenant's artifact.
    let config = w.join("auth.json");
    std::fs::write(&config, docker_config(&host)).unwrap();
    let (status, body) = curl(
        &format!("{url}/excititor/providers/exports/artifacts"),
        &admin,
        "POST",
        &[
            "-F",
            &format!("file=@{};type=application/json", config.display()),
        ],
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let artifact: Value = serde_json::from_slice(&body).unwrap();
    let artifact = artifact["artifactId"].as_str().unwrap().to_string();

    // Reading with the artifact: a report, nothing attached without `attach`.
    let mut with_auth = request.clone();
    with_auth["registryAuth"] = json!(artifact);
    let (status, plain) = post_json(&reports, &admin, &with_auth);
    assert_eq!(status, 200, "{plain}\n{}", server.log());
    assert!(plain.get("attached").is_none(), "{plain}");
    let digest = plain["report"]["imageDigest"].as_str().unwrap().to_string();
    assert!(referrers(w, &app).is_empty());
    let (status, preview) = post_json(
        &format!("{url}/policy/preview"),
        &admin,
        &json!({"policy": POLICY, "image": app, "plainHttp": true, "registryAuth": artifact}),
    );
    assert_eq!(status, 200, "{preview}");

    // Attach.
    let mut attach = with_auth.clone();
    attach["attach"] = json!(true);
    let (status, attached) = post_json(&reports, &admin, &attach);
    assert_eq!(status, 200, "{attached}\n{}", server.log());
    assert_eq!(
        attached["report"], plain["report"],
        "the same report, attached"
    );
    let referrer = attached["attached"]["digest"].as_str().unwrap().to_string();
    let listed = referrers(w, &app);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["digest"], json!(referrer));
    assert_eq!(listed[0]["artifactType"], json!(BUNDLE_TYPE));
    assert_eq!(
        listed[0]["annotations"]["dev.sigstore.bundle.predicateType"],
        json!(VERDICT)
    );

    // The envelope verifies with the tenant's published report key.
    let (status, keys) = curl(&format!("{url}/api/v1/reports/keys"), &admin, "GET", &[]);
    assert_eq!(status, 200);
    let keys: Value = serde_json::from_slice(&keys).unwrap();
    let pem = w.join("report.pub");
    std::fs::write(&pem, keys["keys"][0]["publicKey"].as_str().unwrap()).unwrap();
    let out = Command::new("python3")
        .arg("-c")
        .arg(PY_VERIFY)
        .args([&host, "private/app", &referrer, USER, PASSWORD])
        .arg(&pem)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["payloadType"], "application/vnd.in-toto+json");
    assert_eq!(seen["mediaType"], BUNDLE_TYPE);
    let statement = &seen["statement"];
    assert_eq!(statement["predicateType"], VERDICT);
    assert_eq!(statement["predicate"], plain["report"]);
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        json!(digest.trim_start_matches("sha256:"))
    );
    assert_eq!(
        seen["annotations"]["org.opencontainers.image.created"],
        GENERATED_AT
    );
    // A key that is not the tenant's does not verify it.
    let r = stella(
        w,
        &[
            "key",
            "generate",
            "--output-key",
            "other.pem",
            "--output-pub",
            "other.pub",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = Command::new("python3")
        .arg("-c")
        .arg(PY_VERIFY)
        .args([&host, "private/app", &referrer, USER, PASSWORD])
        .arg(w.join("other.pub"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "another key must not verify");

    // The CLI sends `attach` and `registryAuth` (and the testkit's
    // SOURCE_DATE_EPOCH as generatedAt): a second referrer.
    let base = [
        "--server",
        url.as_str(),
        "--token",
        admin.as_str(),
        "report",
    ];
    let anonymous = stella(w, &[&base[..], &["--image", &app, "--attach"]].concat());
    assert_eq!(anonymous.code, 2, "no credentials: {}", anonymous.stderr);
    let via_cli = stella(
        w,
        &[
            &base[..],
            &[
                "--image",
                &app,
                "--attach",
                "--registry-auth",
                &artifact,
                "--registry-auth-provider",
                "exports",
                "--output",
                "json",
            ],
        ]
        .concat(),
    );
    assert_eq!(via_cli.code, 0, "{}{}", via_cli.stdout, via_cli.stderr);
    let printed: Value = serde_json::from_str(via_cli.stdout.trim()).unwrap();
    assert_eq!(printed["report"]["imageDigest"], json!(digest));
    assert_eq!(printed["report"]["generatedAt"], "2023-11-14T22:13:20Z");
    let cli_referrer = printed["attached"]["digest"].as_str().unwrap().to_string();
    assert_ne!(
        cli_referrer, referrer,
        "another report time, another referrer"
    );
    let listed: Vec<Value> = referrers(w, &app)
        .into_iter()
        .map(|r| r["digest"].clone())
        .collect();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.contains(&json!(cli_referrer)), "{listed:?}");
    // Text output names the referrer (a third one: the report's evidence
    // section now lists the referrer the JSON run attached).
    let text = stella(
        w,
        &[
            &base[..],
            &["--image", &app, "--attach", "--registry-auth", &artifact],
        ]
        .concat(),
    );
    assert_eq!(text.code, 0, "{}", text.stderr);
    let text_referrer = text
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("attached as referrer "))
        .unwrap_or_else(|| panic!("{}", text.stdout))
        .to_string();
    let listed: Vec<Value> = referrers(w, &app)
        .into_iter()
        .map(|r| r["digest"].clone())
        .collect();
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(listed.contains(&json!(text_referrer)), "{listed:?}");
    // Offline, --attach and --registry-auth are refused (exit 2).
    let offline = stella(w, &["report", "--image", &app, "--attach"]);
    assert_eq!(offline.code, 2, "{}", offline.stderr);
    assert!(offline.stderr.contains("--server"), "{}", offline.stderr);
    assert_eq!(referrers(w, &app).len(), 3, "nothing pushed offline");

    // Another tenant cannot use tenant A's artifact.
    let added = stella(
        w,
        &[
            "admin",
            "clients",
            "add",
            "b-client",
            "--tenant",
            "other",
            "--scopes",
            "policy.read,policy.write,scanner.reports",
            "--output",
            "json",
            "--data-dir",
            server.data.path().to_str().unwrap(),
        ],
    );
    assert_eq!(added.code, 0, "{}", added.stderr);
    let secret: Value = serde_json::from_str(added.stdout.trim()).unwrap();
    let b = serve_harness::client_token(&url, "b-client", secret["clientSecret"].as_str().unwrap());
    import_and_activate(&url, &b);
    let (status, problem) = post_json(&reports, &b, &with_auth);
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem.to_string().contains("REGISTRY_AUTH_NOT_FOUND"),
        "{problem}"
    );
    let (status, _) = server.stop();
    assert!(status.success());
}
