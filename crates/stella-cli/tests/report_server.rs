//! The policy store and signed reports of `stella serve`, end to end: a real
//! registry (Debian `docker-registry`, distribution 2.8) with scanner
//! reports in the five formats attached to an image (four plain referrers,
//! the in-toto vulns predicate signed with `stella attest`), `stella serve`
//! as a real process (SQLite), HTTP with curl.
//!
//! Checked: validation errors with JSON paths; import (YAML) → export →
//! import (JSON) → export byte-identical with the same digest; preview
//! diffs against the active revision; `POST /api/v1/reports` signed with
//! the tenant's key, verified by PyPI securesystemslib + cryptography and
//! `stella report verify`, its payload byte-identical to the offline `stella
//! report --output json` (same exported policy, same SOURCE_DATE_EPOCH);
//! `stella report --server` exit codes (1 blocked, 2 unknown revision);
//! key rotation (the old key stays published and verifies the old report);
//! tenant isolation (tenant B neither sees nor uses tenant A's revisions).
//! The store-level isolation on Postgres is `stella-store`'s
//! tests/postgres_policy.rs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod report_fixture;

mod serve_harness;

use std::path::Path;
use std::process::Command;

use report_fixture::{ok, stella, write_fixture};
use serde_json::{Value, json};
use stella_testkit::distribution::DistributionRegistry;
use stella_testkit::fixtures::{PythonLayer, base64_decode, python_layout, skopeo_push};

const GENERATED_AT: &str = "2026-09-21T14:13:20Z";

const POLICY: &str = "version: 1
signers:
  ci: { keys: [ci.pub] }
  vendor: { keys: [vendor.pub] }
  distro: { keys: [distro.pub] }
vex:
  signers: [vendor, distro]
rules:
  - name: Ignore Low dev
    severity: [Low, None]
    environments: [dev, staging]
    action: ignore
  - name: Block critical
    severity: [Critical]
    action: block
  - name: Block high
    severity: [High]
    action: block
  - name: Warn medium
    severity: [Medium]
    action: warn
";

const PY_VERIFY: &str = r#"
import copy, json, sys, base64
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
doc = json.load(open(sys.argv[1]))
pub = load_pem_public_key(open(sys.argv[2], "rb").read())
e = doc["dsse"]
assert e["payloadType"] == "application/vnd.stellaops.report+json", e["payloadType"]
key = SSlibKey.from_crypto(pub, keyid=e["signatures"][0]["keyid"])
Envelope.from_dict(copy.deepcopy(e)).verify([key], 1)
payload = base64.b64decode(e["payload"])
pae = b"DSSEv1 %d %s %d %s" % (len(e["payloadType"]), e["payloadType"].encode(), len(payload), payload)
pub.verify(base64.b64decode(e["signatures"][0]["sig"]), pae)
print(json.loads(payload)["reportId"])
"#;

/// An image with the five scanner formats attached; returns its digest.
fn image_with_scans(w: &Path, app: &str) -> String {
    let out = ok(w, &["report", "--image", app, "--output", "json"]);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    let digest = v["report"]["imageDigest"].as_str().unwrap().to_string();
    for (name, out) in [
        ("trivy.json", "trivy.json"),
        ("grype.json", "grype.json"),
        ("cyclonedx-vdr.json", "bom.cdx.json"),
        ("sarif.json", "scan.sarif"),
        ("vulns-statement.json", "vulns-statement.json"),
    ] {
        write_fixture(w, name, &digest, out);
    }
    let statement: Value =
        serde_json::from_slice(&std::fs::read(w.join("vulns-statement.json")).unwrap()).unwrap();
    std::fs::write(w.join("vulns.json"), statement["predicate"].to_string()).unwrap();
    for (artifact_type, file) in [
        ("application/vnd.aquasec.trivy.report+json", "trivy.json"),
        ("application/vnd.anchore.grype.report+json", "grype.json"),
        ("application/vnd.cyclonedx+json", "bom.cdx.json"),
        ("application/sarif+json", "scan.sarif"),
    ] {
        ok(
            w,
            &[
                "evidence",
                "push-referrer",
                "--image",
                app,
                "--artifact-type",
                artifact_type,
                "--file",
                file,
            ],
        );
    }
    ok(
        w,
        &[
            "attest",
            "--image",
            app,
            "--type",
            "vuln",
            "--predicate",
            "vulns.json",
            "--key",
            "ci.pem",
        ],
    );
    digest
}

/// One HTTP call with curl: (status, body).
fn call(
    url: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<(&str, &[u8])>,
) -> (u16, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("out");
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-X", method, "-o"])
        .arg(&out_file)
        .args(["-w", "%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {token}"));
    if let Some((content_type, bytes)) = body {
        let in_file = dir.path().join("in");
        std::fs::write(&in_file, bytes).unwrap();
        cmd.arg("-H")
            .arg(format!("Content-Type: {content_type}"))
            .arg("--data-binary")
            .arg(format!("@{}", in_file.display()));
    }
    let out = cmd.arg(format!("{url}{path}")).output().unwrap();
    let status: u16 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    (status, std::fs::read(&out_file).unwrap_or_default())
}

fn call_json(url: &str, token: &str, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let bytes = body.to_string();
    let (status, out) = call(
        url,
        token,
        method,
        path,
        Some(("application/json", bytes.as_bytes())),
    );
    (status, serde_json::from_slice(&out).unwrap_or(Value::Null))
}

fn get_json(url: &str, token: &str, path: &str) -> (u16, Value) {
    let (status, out) = call(url, token, "GET", path, None);
    (status, serde_json::from_slice(&out).unwrap_or(Value::Null))
}

/// The report part of `{report, dsse}` as printed: its exact bytes.
fn report_bytes(printed: &str) -> &str {
    let printed = printed.trim();
    let inner = printed
        .strip_suffix('}')
        .unwrap_or_else(|| panic!("not an object: {printed}"));
    let at = inner.find("\"report\":").unwrap() + "\"report\":".len();
    &inner[at..]
}

/// An empty docker config dir and the key pairs of the three signers the
/// tests' policies name (`ci`, `vendor`, `distro`: `<name>.pem`/`.pub`).
fn signer_keys(w: &Path) {
    std::fs::create_dir_all(w.join("docker-config")).unwrap();
    for k in ["ci", "vendor", "distro"] {
        let (key, public) = (format!("{k}.pem"), format!("{k}.pub"));
        ok(
            w,
            &[
                "key",
                "generate",
                "--output-key",
                &key,
                "--output-pub",
                &public,
            ],
        );
    }
}

#[test]
fn policy_store_and_signed_reports_on_the_server() {
    let reg = DistributionRegistry::start_plain().unwrap();
    let host = reg.host_port();
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    signer_keys(w);
    python_layout(&w.join("img"), PythonLayer::Seed("a"));
    let app = format!("{host}/app:v1");
    skopeo_push(&w.join("img"), &app);
    let digest = image_with_scans(w, &app);

    let server = serve_harness::start(&[]);
    let url = server.url.clone();
    let data = server.data.path().to_path_buf();
    install_signer_keys(&server, w, "default");
    let a = server.admin_token();

    // Validation errors carry JSON paths; nothing is stored.
    let bad = POLICY.replace("severity: [Critical]", "severity: [Huge]");
    let (status, body) = call(
        &url,
        &a,
        "POST",
        "/policy/validate",
        Some(("application/yaml", bad.as_bytes())),
    );
    let problem: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 400, "{problem}");
    let paths: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"$.rules[1].severity"), "{problem}");
    let (status, _) = call(
        &url,
        &a,
        "POST",
        "/policy/validate",
        Some(("application/yaml", POLICY.as_bytes())),
    );
    assert_eq!(status, 200);
    let (status, _) = call(
        &url,
        &a,
        "POST",
        "/policy/import",
        Some(("text/plain", POLICY.as_bytes())),
    );
    assert_eq!(status, 415, "neither JSON nor YAML");

    // Import YAML, export canonical JSON, import that: same bytes, same digest.
    let (status, body) = call(
        &url,
        &a,
        "POST",
        "/policy/import",
        Some(("application/yaml", POLICY.as_bytes())),
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let r1: Value = serde_json::from_slice(&body).unwrap();
    let r1_id = r1["revisionId"].as_str().unwrap().to_string();
    let (status, exported) = call(
        &url,
        &a,
        "GET",
        &format!("/policy/export?revisionId={r1_id}"),
        None,
    );
    assert_eq!(status, 200);
    let sha = Command::new("sha256sum")
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        sha.stdin.as_ref().unwrap().write_all(&exported).unwrap();
    }
    let sha = String::from_utf8(sha.wait_with_output().unwrap().stdout).unwrap();
    assert_eq!(
        r1["policyDigest"].as_str().unwrap(),
        format!("sha256:{}", sha.split_whitespace().next().unwrap()),
        "the digest is sha256sum of the exported bytes"
    );
    let (status, body) = call(
        &url,
        &a,
        "POST",
        "/policy/import",
        Some(("application/json", &exported)),
    );
    assert_eq!(status, 201);
    let r2: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(r2["policyDigest"], r1["policyDigest"]);
    assert_ne!(r2["revisionId"], r1["revisionId"]);
    let r2_path = format!(
        "/policy/export?revisionId={}",
        r2["revisionId"].as_str().unwrap()
    );
    let (_, exported_again) = call(&url, &a, "GET", &r2_path, None);
    assert_eq!(exported_again, exported, "round trip byte-identical");

    // Nothing active yet: reports and a default export are 404.
    let request = json!({"image": app, "environment": "dev", "plainHttp": true,
        "generatedAt": GENERATED_AT});
    let (status, problem) = call_json(&url, &a, "POST", "/api/v1/reports", &request);
    assert_eq!(status, 404, "{problem}");
    let (status, _) = call(&url, &a, "GET", "/policy/export", None);
    assert_eq!(status, 404);
    let (status, activated) = call_json(
        &url,
        &a,
        "POST",
        "/policy/activate",
        &json!({"revisionId": r1_id}),
    );
    assert_eq!((status, &activated["active"]), (200, &json!(true)));
    let (_, active_export) = call(&url, &a, "GET", "/policy/export", None);
    assert_eq!(active_export, exported);

    // Preview: criticals warned instead of blocked changes exactly those two.
    let candidate = POLICY.replace(
        "  - name: Block critical\n    severity: [Critical]\n    action: block",
        "  - name: Warn critical\n    severity: [Critical]\n    action: warn",
    );
    let (status, preview) = call_json(
        &url,
        &a,
        "POST",
        "/policy/preview",
        &json!({"policy": candidate, "image": app, "environment": "dev", "plainHttp": true}),
    );
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["changed"], 2, "{preview}");
    assert_eq!(preview["baseline"]["verdict"], "blocked");
    assert_eq!(preview["baseline"]["summary"]["blocked"], 4);
    assert_eq!(preview["projected"]["summary"]["blocked"], 2);
    let changed: Vec<&Value> = preview["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["changed"] == true)
        .collect();
    for f in &changed {
        let id = f["findingId"].as_str().unwrap();
        assert!(
            id.starts_with("CVE-2024-0001:") || id.starts_with("CVE-2021-44228:"),
            "{f}"
        );
        assert_eq!(f["baseline"]["status"], "Blocked");
        assert_eq!(
            (&f["projected"]["status"], &f["projected"]["ruleName"]),
            (&json!("Warned"), &json!("Warn critical"))
        );
    }
    let (status, problem) = call_json(
        &url,
        &a,
        "POST",
        "/policy/preview",
        &json!({"policy": bad, "image": app, "plainHttp": true}),
    );
    assert_eq!(status, 400);
    assert!(
        problem.to_string().contains("$.rules[1].severity"),
        "{problem}"
    );

    // The signed report.
    let (status, body) = call(
        &url,
        &a,
        "POST",
        "/api/v1/reports",
        Some(("application/json", request.to_string().as_bytes())),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let signed: Value = serde_json::from_slice(&body).unwrap();
    let report = &signed["report"];
    assert_eq!(report["verdict"], "blocked");
    assert_eq!(report["imageDigest"], digest.as_str());
    assert_eq!(report["policy"]["revisionId"], r1_id.as_str());
    assert_eq!(report["generatedAt"], GENERATED_AT);
    assert_eq!(report["summary"]["total"], 7);
    std::fs::write(w.join("server-report.json"), &body).unwrap();
    let (_, keys) = get_json(&url, &a, "/api/v1/reports/keys");
    let keys = keys["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 1);
    std::fs::write(w.join("k1.pub"), keys[0]["publicKey"].as_str().unwrap()).unwrap();
    assert_eq!(
        signed["dsse"]["signatures"][0]["keyid"], keys[0]["kid"],
        "signed by the published key"
    );
    let py = Command::new("python3")
        .arg("-c")
        .arg(PY_VERIFY)
        .arg(w.join("server-report.json"))
        .arg(w.join("k1.pub"))
        .output()
        .expect("python3 with securesystemslib and cryptography is required");
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&py.stdout).trim(),
        report["reportId"].as_str().unwrap()
    );
    ok(
        w,
        &["report", "verify", "server-report.json", "--key", "k1.pub"],
    );

    // The offline CLI with the exported policy gives the same bytes.
    std::fs::write(w.join("exported.json"), &exported).unwrap();
    let offline = stella(
        w,
        &[
            "report",
            "--image",
            &app,
            "--policy",
            "exported.json",
            "--policy-revision",
            &r1_id,
            "--environment",
            "dev",
            "--output",
            "json",
        ],
    );
    assert_eq!(offline.code, 1, "{}", offline.stderr);
    let payload = base64_decode(signed["dsse"]["payload"].as_str().unwrap());
    assert_eq!(
        String::from_utf8(payload).unwrap(),
        report_bytes(&offline.stdout),
        "server payload = offline CLI report"
    );

    // `stella report --server`: the same object, exit 1 for blocked.
    let s = stella(
        w,
        &[
            "--server",
            &url,
            "--token",
            &a,
            "report",
            "--image",
            &app,
            "--environment",
            "dev",
            "--output",
            "json",
        ],
    );
    assert_eq!(s.code, 1, "{}{}", s.stdout, s.stderr);
    let via_cli: Value = serde_json::from_str(s.stdout.trim()).unwrap();
    assert_eq!(via_cli["dsse"]["payload"], signed["dsse"]["payload"]);
    let unknown = stella(
        w,
        &[
            "--server",
            &url,
            "--token",
            &a,
            "report",
            "--image",
            &app,
            "--policy-revision",
            "no-such-revision",
        ],
    );
    assert_eq!(unknown.code, 2, "{}{}", unknown.stdout, unknown.stderr);
    assert!(unknown.stderr.contains("NOT_FOUND"), "{}", unknown.stderr);
    let (status, _) = call_json(
        &url,
        &a,
        "POST",
        "/api/v1/reports",
        &json!({"image": format!("{host}/app:nope"), "plainHttp": true}),
    );
    assert_eq!(status, 404, "unknown image");

    // Rotation: the new key signs; the old one stays published and still
    // verifies the report it signed, but not the new one.
    let rotated = stella(
        w,
        &[
            "admin",
            "report-keys",
            "rotate",
            "--tenant",
            "default",
            "--data-dir",
            data.to_str().unwrap(),
        ],
    );
    assert_eq!(rotated.code, 0, "{}", rotated.stderr);
    let (_, keys) = get_json(&url, &a, "/api/v1/reports/keys");
    let keys = keys["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys[0].get("retiredAt").is_none());
    assert_eq!(keys[1]["kid"], signed["dsse"]["signatures"][0]["keyid"]);
    assert!(keys[1]["retiredAt"].is_string());
    std::fs::write(
        w.join("k1-published.pub"),
        keys[1]["publicKey"].as_str().unwrap(),
    )
    .unwrap();
    ok(
        w,
        &[
            "report",
            "verify",
            "server-report.json",
            "--key",
            "k1-published.pub",
        ],
    );
    let (_, body) = call(
        &url,
        &a,
        "POST",
        "/api/v1/reports",
        Some(("application/json", request.to_string().as_bytes())),
    );
    std::fs::write(w.join("server-report-2.json"), &body).unwrap();
    let new: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(new["dsse"]["signatures"][0]["keyid"], keys[0]["kid"]);
    assert_eq!(new["report"], signed["report"], "same inputs, same report");
    let old_key = stella(
        w,
        &[
            "report",
            "verify",
            "server-report-2.json",
            "--key",
            "k1-published.pub",
        ],
    );
    assert_eq!(old_key.code, 1, "{}{}", old_key.stdout, old_key.stderr);

    // Tenant isolation: tenant B neither sees nor uses A's revisions or keys.
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
            data.to_str().unwrap(),
        ],
    );
    assert_eq!(added.code, 0, "{}", added.stderr);
    let secret: Value = serde_json::from_str(added.stdout.trim()).unwrap();
    let b = serve_harness::client_token(&url, "b-client", secret["clientSecret"].as_str().unwrap());
    let (status, _) = call(
        &url,
        &b,
        "GET",
        &format!("/policy/export?revisionId={r1_id}"),
        None,
    );
    assert_eq!(status, 404);
    let (status, _) = call(&url, &b, "GET", "/policy/export", None);
    assert_eq!(status, 404);
    let (status, _) = call_json(
        &url,
        &b,
        "POST",
        "/policy/activate",
        &json!({"revisionId": r1_id}),
    );
    assert_eq!(status, 404);
    let mut with_a_revision = request.clone();
    with_a_revision["policyRevision"] = json!(r1_id);
    let (status, _) = call_json(&url, &b, "POST", "/api/v1/reports", &with_a_revision);
    assert_eq!(status, 404);
    let (_, b_keys) = get_json(&url, &b, "/api/v1/reports/keys");
    assert_eq!(b_keys["keys"], json!([]), "B sees none of A's keys");
    // ... and A's revision still active for A.
    let (_, still) = call(&url, &a, "GET", "/policy/export", None);
    assert_eq!(still, exported);
    // Scopes: B's token cannot be used without them (A's admin has them all).
    let (status, _) = call(&url, "not-a-token", "GET", "/policy/export", None);
    assert_eq!(status, 401);

    // The tenant's ingested VEX counts for the policy signer whose key
    // verified it (issuer `key sha256:<SPKI digest>`, computed here with
    // openssl): vendor's not_affected quiets log4j; the same statement
    // from ci (not a VEX signer of the policy) about lodash does not.
    let keyid = |public: &str| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "openssl pkey -pubin -in {public} -outform DER | sha256sum"
            ))
            .current_dir(w)
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        text.split_whitespace().next().unwrap().to_string()
    };
    let log4j = "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1";
    let lodash = "pkg:npm/lodash@4.17.20";
    let mut sql = String::new();
    for (n, signer, vuln, product) in [
        (1, "vendor.pub", "CVE-2021-44228", log4j),
        (2, "ci.pub", "CVE-2021-23337", lodash),
    ] {
        let statement = json!({"vulnerability": {"name": vuln}, "timestamp": "2026-01-01T00:00:00Z",
            "products": [{"@id": product}], "status": "not_affected",
            "justification": "vulnerable_code_not_present"});
        sql.push_str(&format!(
            "INSERT INTO vex_documents (doc_key, tenant_id, provider_id, issuer, document_id, \
             document_version, document_timestamp, author, signed, image_digest, evidence_digest, \
             ingested_at) VALUES ({n}, 'default', 'excititor:oci-openvex', 'key sha256:{}', \
             'https://example.com/vex/{n}', 1, '2026-01-01T00:00:00Z', 'Issuer {n}', 1, '{digest}', \
             'sha256:{:064}', '2026-01-02T00:00:00Z');
             INSERT INTO vex_statements (tenant_id, doc_key, statement_digest, vulnerability, status, \
             statement_json) VALUES ('default', {n}, 'sha256:{:064}', '{vuln}', 'not_affected', '{statement}');\n",
            keyid(signer),
            n,
            n + 10,
        ));
    }
    let db = Command::new("sqlite3")
        .arg(data.join("stella.db"))
        .arg(&sql)
        .output()
        .unwrap();
    assert!(
        db.status.success(),
        "{}",
        String::from_utf8_lossy(&db.stderr)
    );
    let (status, with_vex) = call_json(&url, &a, "POST", "/api/v1/reports", &request);
    assert_eq!(status, 200, "{with_vex}");
    let verdicts = with_vex["report"]["verdicts"].as_array().unwrap();
    let find = |id: &str| {
        verdicts
            .iter()
            .find(|v| v["findingId"].as_str().unwrap().starts_with(id))
            .unwrap()
    };
    let quieted = find("CVE-2021-44228:");
    assert_eq!(quieted["quiet"], true, "{quieted}");
    assert_eq!(
        quieted["quietedBy"][0]["digest"],
        format!("sha256:{:064}", 11),
        "{quieted}"
    );
    assert_eq!(quieted["quietedBy"][0]["signers"], json!(["vendor"]));
    assert_eq!(
        find("CVE-2021-23337:")["quiet"],
        false,
        "ci is no VEX signer"
    );
    assert_eq!(find("CVE-2021-23337:")["status"], "Blocked");
    assert_eq!(with_vex["report"]["summary"]["quieted"], 1);

    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
}

/// A client of `tenant` with the policy and report scopes; its token.
fn tenant_token(server: &serve_harness::Server, tenant: &str) -> String {
    let client = format!("{tenant}-client");
    let out = Command::new(serve_harness::BIN)
        .args(["admin", "clients", "add", &client, "--tenant", tenant])
        .args(["--scopes", "policy.read,policy.write,scanner.reports"])
        .args(["--output", "json", "--data-dir"])
        .arg(server.data.path())
        .envs(server.db_env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let added: Value = serde_json::from_slice(&out.stdout).unwrap();
    serve_harness::client_token(
        &server.url,
        &client,
        added["clientSecret"].as_str().unwrap(),
    )
}

/// Copies the signer keys `POLICY` names into the tenant's policy
/// directory, where the server reads stored policies' key files.
fn install_signer_keys(server: &serve_harness::Server, w: &Path, tenant: &str) {
    let keys_dir = server.data.path().join("policies").join(tenant);
    std::fs::create_dir_all(&keys_dir).unwrap();
    for k in ["ci.pub", "vendor.pub", "distro.pub"] {
        std::fs::copy(w.join(k), keys_dir.join(k)).unwrap();
    }
}

/// Imports and activates `POLICY` for the token's tenant (signer keys in
/// its policy directory); the revision id.
fn activate_policy(server: &serve_harness::Server, w: &Path, tenant: &str, token: &str) -> String {
    install_signer_keys(server, w, tenant);
    let (status, body) = call(
        &server.url,
        token,
        "POST",
        "/policy/import",
        Some(("application/yaml", POLICY.as_bytes())),
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let rev: Value = serde_json::from_slice(&body).unwrap();
    let id = rev["revisionId"].as_str().unwrap().to_string();
    let (status, _) = call_json(
        &server.url,
        token,
        "POST",
        "/policy/activate",
        &json!({"revisionId": id}),
    );
    assert_eq!(status, 200);
    id
}

/// `stella_report_cache_*` values from `/metrics`: (hits, misses, entries).
fn cache_metrics(url: &str) -> (u64, u64, u64) {
    let out = Command::new("curl")
        .args(["-s", &format!("{url}/metrics")])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    (
        value("stella_report_cache_lookups_total{result=\"hit\"}"),
        value("stella_report_cache_lookups_total{result=\"miss\"}"),
        value("stella_report_cache_entries"),
    )
}

/// Registry GETs of manifests and blobs in `lines` (access log lines).
fn content_gets(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| {
            let at = l.find("\"GET /v2/")?;
            let path = l.get(at + 5..)?.split_whitespace().next()?;
            (path.contains("/blobs/") || path.contains("/manifests/")).then(|| path.to_string())
        })
        .collect()
}

/// The service's report flow for two tenants on one backend, with the
/// report cache bounded to 6 entries (the image has 5 scanner reports):
/// the second report of a tenant takes all 5 from the cache and has the
/// same bytes; another tenant's report of the same image misses all 5;
/// the cache never holds more than its bound; a tenant cannot use or see
/// another's revisions (404); a preview reads each manifest and blob of
/// the registry once for both sides.
fn report_flow_with_cache_and_tenants(backend: serve_harness::Backend) {
    let reg = DistributionRegistry::start_plain().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    signer_keys(w);
    python_layout(&w.join("img"), PythonLayer::Seed("cache"));
    let app = format!("{}/cached/app:v1", reg.host_port());
    skopeo_push(&w.join("img"), &app);
    let digest = image_with_scans(w, &app);

    let server = serve_harness::start_on(backend, &[("STELLA_REPORTS_CACHE_MAX_ENTRIES", "6")]);
    let url = server.url.clone();
    let a = server.admin_token();
    let request = json!({"image": app, "environment": "dev", "plainHttp": true,
        "generatedAt": GENERATED_AT});
    let (status, problem) = call_json(&url, &a, "POST", "/api/v1/reports", &request);
    assert_eq!(status, 404, "no active revision: {problem}");
    let a_rev = activate_policy(&server, w, "default", &a);

    assert_eq!(cache_metrics(&url), (0, 0, 0));
    let (status, first) = call(
        &url,
        &a,
        "POST",
        "/api/v1/reports",
        Some(("application/json", request.to_string().as_bytes())),
    );
    assert_eq!(
        status,
        200,
        "{}\n{}",
        String::from_utf8_lossy(&first),
        server.log()
    );
    let signed: Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(signed["report"]["imageDigest"], digest.as_str());
    assert_eq!(signed["report"]["verdict"], "blocked");
    assert_eq!(signed["report"]["summary"]["total"], 7);
    assert_eq!(signed["report"]["scanners"].as_array().unwrap().len(), 5);
    assert_eq!(
        cache_metrics(&url),
        (0, 5, 5),
        "five scanner reports parsed"
    );
    let (_, second) = call(
        &url,
        &a,
        "POST",
        "/api/v1/reports",
        Some(("application/json", request.to_string().as_bytes())),
    );
    assert_eq!(second, first, "a cached report has the same bytes");
    assert_eq!(cache_metrics(&url), (5, 5, 5), "all five from the cache");

    // Tenant B: none of A's revisions; its own report misses A's entries.
    let b = tenant_token(&server, "other");
    let (status, _) = call_json(&url, &b, "POST", "/api/v1/reports", &request);
    assert_eq!(status, 404, "B has no active revision");
    let mut with_a_rev = request.clone();
    with_a_rev["policyRevision"] = json!(a_rev);
    let (status, problem) = call_json(&url, &b, "POST", "/api/v1/reports", &with_a_rev);
    assert_eq!(status, 404, "A's revision is unknown to B: {problem}");
    let (status, _) = call(
        &url,
        &b,
        "GET",
        &format!("/policy/export?revisionId={a_rev}"),
        None,
    );
    assert_eq!(status, 404);
    activate_policy(&server, w, "other", &b);
    let (status, b_report) = call_json(&url, &b, "POST", "/api/v1/reports", &request);
    assert_eq!(status, 200, "{b_report}");
    assert_eq!(b_report["report"]["verdicts"], signed["report"]["verdicts"]);
    assert_ne!(
        b_report["dsse"]["signatures"][0]["keyid"],
        signed["dsse"]["signatures"][0]["keyid"]
    );
    let (hits, misses, entries) = cache_metrics(&url);
    assert_eq!((hits, misses), (5, 10), "B never hits A's entries");
    assert_eq!(entries, 6, "bounded to 6 entries");
    let (_, keys) = get_json(&url, &b, "/api/v1/reports/keys");
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1, "only B's key");

    // A again after evictions: the same bytes, and still within the bound.
    let (_, third) = call(
        &url,
        &a,
        "POST",
        "/api/v1/reports",
        Some(("application/json", request.to_string().as_bytes())),
    );
    assert_eq!(third, first);
    assert!(cache_metrics(&url).2 <= 6);

    // Preview: both sides read each manifest and blob once.
    let before = reg.access_log_lines().len();
    let candidate = POLICY.replace("action: block", "action: warn");
    let (status, preview) = call_json(
        &url,
        &a,
        "POST",
        "/policy/preview",
        &json!({"policy": candidate, "image": app, "environment": "dev", "plainHttp": true}),
    );
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["baseline"]["verdict"], "blocked");
    assert_eq!(preview["projected"]["verdict"], "warn");
    let lines = reg.access_log_lines();
    let gets = content_gets(lines.get(before..).unwrap_or_default());
    assert!(!gets.is_empty(), "{lines:?}");
    let mut unique = gets.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), gets.len(), "a GET repeated: {gets:#?}");

    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
}

#[test]
fn report_cache_hits_per_tenant_and_stays_bounded() {
    report_flow_with_cache_and_tenants(serve_harness::Backend::Sqlite);
}

#[test]
fn report_flow_and_tenant_isolation_on_postgres() {
    report_flow_with_cache_and_tenants(serve_harness::Backend::Postgres);
}
