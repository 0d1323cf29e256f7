//! `stella report` end to end, run as the built binary against a real
//! registry (Debian `docker-registry`, distribution 2.8, tag-schema
//! fallback): scanner reports in the five formats attached as referrers
//! (four plain artifacts pushed with `stella evidence push-referrer`, the
//! in-toto vulns predicate signed with `stella attest`), judged by a policy
//! with block, warn and ignore rules; the signed `{report, dsse}` output
//! checked by PyPI securesystemslib and cryptography and by `stella report
//! verify`; byte-identical reruns; bad input (a report about another
//! image, a finding without a package URL) exits 2.
//!
//! Fixtures: `crates/stella-report/tests/fixtures` (sources in its README).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod report_fixture;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use report_fixture::{ok, stella, write_fixture};
use serde_json::Value;
use stella_testkit::distribution::DistributionRegistry;
use stella_testkit::fixtures::{PythonLayer, python_layout, skopeo_push};

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

fn setup(w: &Path) {
    std::fs::create_dir_all(w.join("docker-config")).unwrap();
    for k in ["ci", "vendor", "distro", "report", "other"] {
        ok(
            w,
            &[
                "key",
                "generate",
                "--output-key",
                &format!("{k}.pem"),
                "--output-pub",
                &format!("{k}.pub"),
            ],
        );
    }
    std::fs::write(w.join("policy.yaml"), POLICY).unwrap();
}

fn push(w: &Path, image: &str, artifact_type: &str, file: &str) -> String {
    let out = ok(
        w,
        &[
            "evidence",
            "push-referrer",
            "--image",
            image,
            "--artifact-type",
            artifact_type,
            "--file",
            file,
        ],
    );
    out.split_whitespace()
        .find(|t| t.starts_with("sha256:"))
        .unwrap_or_else(|| panic!("no digest in {out}"))
        .to_string()
}

fn report_json(w: &Path, args: &[&str]) -> (i32, Value, String, String) {
    let mut all = vec!["report"];
    all.extend_from_slice(args);
    let r = stella(w, &all);
    assert!(
        r.code == 0 || r.code == 1,
        "stella {all:?}: exit {} {}{}",
        r.code,
        r.stdout,
        r.stderr
    );
    let v: Value = serde_json::from_str(r.stdout.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.stdout));
    (r.code, v, r.stdout, r.stderr)
}

const PY_VERIFY: &str = r#"
import copy, json, sys, base64
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import hashes
doc = json.load(open(sys.argv[1]))
pub = load_pem_public_key(open(sys.argv[2], "rb").read())
e = doc["dsse"]
assert e["payloadType"] == "application/vnd.stellaops.report+json", e["payloadType"]
key = SSlibKey.from_crypto(pub, keyid=e["signatures"][0]["keyid"])
Envelope.from_dict(copy.deepcopy(e)).verify([key], 1)
payload = base64.b64decode(e["payload"])
pae = b"DSSEv1 %d %s %d %s" % (len(e["payloadType"]), e["payloadType"].encode(), len(payload), payload)
sig = base64.b64decode(e["signatures"][0]["sig"])
if isinstance(pub, ec.EllipticCurvePublicKey):
    pub.verify(sig, pae, ec.ECDSA(hashes.SHA256()))
else:
    pub.verify(sig, pae)
canon = json.dumps(doc["report"], sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
assert canon == payload, "payload is not the canonical report"
print(json.loads(payload)["reportId"])
"#;

#[test]
fn report_from_registry_referrers() {
    let reg = DistributionRegistry::start_plain().unwrap();
    let host = reg.host_port();
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    setup(w);
    python_layout(&w.join("img-a"), PythonLayer::Seed("a"));
    python_layout(&w.join("img-b"), PythonLayer::Seed("b"));
    skopeo_push(&w.join("img-a"), &format!("{host}/app:v1"));
    skopeo_push(&w.join("img-b"), &format!("{host}/app:v2"));
    let app = format!("{host}/app:v1");

    // No scanner reports yet: nothing to judge, pass; gives the digest.
    let (code, empty, _, _) = report_json(w, &["--image", &app, "--output", "json"]);
    assert_eq!(code, 0);
    assert_eq!(empty["report"]["summary"]["total"], 0);
    assert!(empty.get("dsse").is_none(), "no key, no envelope");
    let digest = empty["report"]["imageDigest"].as_str().unwrap().to_string();

    for (name, out) in [
        ("trivy.json", "trivy.json"),
        ("grype.json", "grype.json"),
        ("cyclonedx-vdr.json", "bom.cdx.json"),
        ("sarif.json", "scan.sarif"),
        ("vulns-statement.json", "vulns-statement.json"),
    ] {
        write_fixture(w, name, &digest, out);
    }
    // `stella attest` wraps a predicate in a statement about the image.
    let statement: Value =
        serde_json::from_slice(&std::fs::read(w.join("vulns-statement.json")).unwrap()).unwrap();
    std::fs::write(w.join("vulns.json"), statement["predicate"].to_string()).unwrap();

    let trivy = push(
        w,
        &app,
        "application/vnd.aquasec.trivy.report+json",
        "trivy.json",
    );
    let grype = push(
        w,
        &app,
        "application/vnd.anchore.grype.report+json",
        "grype.json",
    );
    let cdx = push(w, &app, "application/vnd.cyclonedx+json", "bom.cdx.json");
    let sarif = push(w, &app, "application/sarif+json", "scan.sarif");
    let attested = ok(
        w,
        &[
            "attest",
            "--image",
            &app,
            "--type",
            "vuln",
            "--predicate",
            "vulns.json",
            "--key",
            "ci.pem",
        ],
    );
    let vulns = attested.split_whitespace().last().unwrap().to_string();

    let signed = [
        "--image",
        &app,
        "--policy",
        "policy.yaml",
        "--environment",
        "dev",
        "--output",
        "json",
        "--sign-key",
        "report.pem",
    ];
    let (code, out, bytes, _) = report_json(w, &signed);
    assert_eq!(code, 1, "blocked exits 1");
    let report = &out["report"];
    assert_eq!(report["verdict"], "blocked");
    assert_eq!(report["imageDigest"], digest.as_str());
    assert_eq!(report["policy"]["revisionId"], "local");
    assert_eq!(report["generatedAt"], "2026-09-21T14:13:20Z");

    let verdicts: BTreeMap<String, &Value> = report["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["findingId"].as_str().unwrap().to_string(), v))
        .collect();
    let openssl =
        "CVE-2024-0001:pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=debian-12.5";
    let want = [
        (openssl, "Blocked", "Block critical"),
        (
            "CVE-2023-45853:pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12.5",
            "Ignored",
            "Ignore Low dev",
        ),
        (
            "CVE-2021-44906:pkg:npm/minimist@1.2.5",
            "Warned",
            "Warn medium",
        ),
        (
            "CVE-2021-23337:pkg:npm/lodash@4.17.20",
            "Blocked",
            "Block high",
        ),
        (
            "CVE-2023-44487:pkg:golang/golang.org/x/net@0.1.0",
            "Blocked",
            "Block high",
        ),
        (
            "CVE-2020-28493:pkg:pypi/jinja2@2.10",
            "Warned",
            "Warn medium",
        ),
        (
            "CVE-2021-44228:pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
            "Blocked",
            "Block critical",
        ),
    ];
    assert_eq!(verdicts.len(), want.len(), "{report}");
    for (id, status, rule) in want {
        let v = verdicts
            .get(id)
            .unwrap_or_else(|| panic!("{id} missing: {report}"));
        assert_eq!(
            (v["status"].as_str(), v["ruleName"].as_str()),
            (Some(status), Some(rule)),
            "{id}"
        );
        assert_eq!(v["quiet"], false);
        assert!(v.get("quietedBy").is_none());
    }
    // Each finding cites the referrer it came from; openssl is in two.
    let sources = |id: &str| -> Vec<String> {
        verdicts[id]["inputs"]["sources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let mut both = vec![trivy.clone(), grype.clone()];
    both.sort();
    assert_eq!(sources(openssl), both);
    assert_eq!(
        sources("CVE-2023-44487:pkg:golang/golang.org/x/net@0.1.0"),
        vec![cdx.clone()]
    );
    assert_eq!(
        sources("CVE-2020-28493:pkg:pypi/jinja2@2.10"),
        vec![sarif.clone()]
    );
    assert_eq!(
        sources("CVE-2021-44228:pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"),
        vec![vulns.clone()]
    );
    assert_eq!(
        verdicts["CVE-2021-44228:pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"]["sourceTrust"],
        "ci"
    );
    assert_eq!(verdicts[openssl]["sourceTrust"], "unsigned");
    let s = &report["summary"];
    assert_eq!(
        (
            s["total"].as_u64(),
            s["blocked"].as_u64(),
            s["warned"].as_u64(),
            s["ignored"].as_u64(),
            s["quieted"].as_u64()
        ),
        (Some(7), Some(4), Some(2), Some(1), Some(0))
    );
    let formats: Vec<&str> = report["scanners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["format"].as_str().unwrap())
        .collect();
    assert_eq!(formats.len(), 5, "{formats:?}");
    for f in ["trivy", "grype", "cyclonedx", "sarif", "intoto-vulns"] {
        assert!(formats.contains(&f), "{f} not read: {formats:?}");
    }
    // The evidence section is verify image's report, the vulns attestation verified.
    let ev = report["evidence"]["evidence"].as_array().unwrap();
    assert_eq!(ev.len(), 5);
    let att = ev.iter().find(|e| e["digest"] == vulns.as_str()).unwrap();
    assert_eq!(att["status"], "verified");
    assert_eq!(report["evidence"]["evaluatedAt"], report["generatedAt"]);

    // Same inputs, same bytes: the report and the signed payload (an ECDSA
    // signature itself is randomised, so the envelope's sig may differ).
    let (_, again, _, _) = report_json(w, &signed);
    assert!(
        again["report"] == out["report"],
        "report differs between runs"
    );
    assert_eq!(again["dsse"]["payload"], out["dsse"]["payload"]);
    assert_eq!(
        stella_testkit::fixtures::base64_decode(out["dsse"]["payload"].as_str().unwrap()),
        serde_json::to_vec(&out["report"]).unwrap(),
        "the payload is the report's canonical bytes"
    );

    // The envelope verifies with independent implementations...
    std::fs::write(w.join("signed.json"), &bytes).unwrap();
    let py = Command::new("python3")
        .arg("-c")
        .arg(PY_VERIFY)
        .arg(w.join("signed.json"))
        .arg(w.join("report.pub"))
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
    // ... and with stella report verify; tampering and other keys fail (exit 1).
    let v = ok(
        w,
        &["report", "verify", "signed.json", "--key", "report.pub"],
    );
    assert!(v.starts_with("verified report-"), "{v}");
    let tampered = bytes.replacen("\"verdict\":\"blocked\"", "\"verdict\":\"pass\"", 1);
    assert_ne!(tampered, bytes);
    std::fs::write(w.join("tampered.json"), tampered).unwrap();
    let t = stella(
        w,
        &["report", "verify", "tampered.json", "--key", "report.pub"],
    );
    assert_eq!(t.code, 1, "{}{}", t.stdout, t.stderr);
    let o = stella(
        w,
        &["report", "verify", "signed.json", "--key", "other.pub"],
    );
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    std::fs::write(w.join("junk.json"), "{").unwrap();
    assert_eq!(
        stella(w, &["report", "verify", "junk.json", "--key", "report.pub"]).code,
        2
    );

    // Another environment: the dev-only ignore rule no longer applies.
    let (_, prod, _, _) = report_json(
        w,
        &[
            "--image",
            &app,
            "--policy",
            "policy.yaml",
            "--environment",
            "prod",
            "--output",
            "json",
        ],
    );
    assert_eq!(prod["report"]["summary"]["ignored"], 0);

    // Warn only: exit 0 with a note.
    std::fs::write(
        w.join("warn.yaml"),
        "version: 1\nrules:\n  - name: Everything warns\n    action: warn\n",
    )
    .unwrap();
    let r = stella(w, &["report", "--image", &app, "--policy", "warn.yaml"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("WARN "), "{}", r.stdout);
    assert!(r.stderr.contains("verdict warn"), "{}", r.stderr);

    // Bad input exits 2 with a reason, never a pass.
    // A scanner report attached to v2 that names v1's digest.
    let v2 = format!("{host}/app:v2");
    push(
        w,
        &v2,
        "application/vnd.anchore.grype.report+json",
        "grype.json",
    );
    let r = stella(w, &["report", "--image", &v2]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("is about") && r.stderr.contains(&digest),
        "{}",
        r.stderr
    );
    // A finding without a package URL, given as a file.
    std::fs::write(
        w.join("nopurl.json"),
        r#"{"SchemaVersion":2,"Results":[{"Vulnerabilities":[{"VulnerabilityID":"CVE-1","PkgName":"x","Severity":"LOW"}]}]}"#,
    )
    .unwrap();
    let r = stella(w, &["report", "--image", &app, "--scan", "nopurl.json"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("CVE-1 has no package URL"),
        "{}",
        r.stderr
    );
    // An invalid rule names its JSON path.
    std::fs::write(
        w.join("bad.yaml"),
        "version: 1\nrules:\n  - name: x\n    severity: [Severe]\n    action: block\n",
    )
    .unwrap();
    let r = stella(w, &["report", "--image", &app, "--policy", "bad.yaml"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("$.rules[0].severity"), "{}", r.stderr);
    // A scanner report of v2 smuggled into v1's referrers (its manifest's
    // subject is v2; SARIF names no image itself): an error, not a report
    // silently left out.
    let smuggled = push(w, &v2, "application/sarif+json", "scan.sarif");
    let script = r#"
import http.client, json, sys
reg, a, ref = sys.argv[1], sys.argv[2], sys.argv[3]
c = http.client.HTTPConnection(reg)
IDX = "application/vnd.oci.image.index.v1+json"
MAN = "application/vnd.oci.image.manifest.v1+json"
c.request("GET", f"/v2/app/manifests/{ref}", headers={"Accept": MAN}); r = c.getresponse(); m = r.read()
assert r.status == 200, r.status
tag = a.replace(":", "-")
c.request("GET", f"/v2/app/manifests/{tag}", headers={"Accept": IDX}); r = c.getresponse(); idx = json.loads(r.read())
assert r.status == 200, r.status
idx["manifests"].append({"mediaType": MAN, "digest": ref, "size": len(m), "artifactType": json.loads(m)["artifactType"]})
c.request("PUT", f"/v2/app/manifests/{tag}", body=json.dumps(idx).encode(), headers={"Content-Type": IDX}); r = c.getresponse(); r.read()
assert r.status == 201, r.status
"#;
    let st = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args([host.as_str(), digest.as_str(), smuggled.as_str()])
        .status()
        .unwrap();
    assert!(st.success());
    let r = stella(w, &["report", "--image", &app, "--policy", "policy.yaml"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(&smuggled) && r.stderr.contains("is about"),
        "{}",
        r.stderr
    );
}

/// Offline on an OCI layout: the same command, no registry; a signed
/// report verifies and the same inputs give the same report bytes.
#[test]
fn report_on_an_oci_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    setup(w);
    python_layout(&w.join("lay"), PythonLayer::Seed("layout"));
    let image = format!("oci:{}:v1", w.join("lay").display());
    let (_, empty, _, _) = report_json(w, &["--image", &image, "--output", "json"]);
    let digest = empty["report"]["imageDigest"].as_str().unwrap().to_string();
    write_fixture(w, "trivy.json", &digest, "trivy.json");
    let trivy = push(w, &image, "application/json", "trivy.json");
    let args = [
        "--image",
        &image,
        "--policy",
        "policy.yaml",
        "--output",
        "json",
        "--sign-key",
        "report.pem",
    ];
    let (code, out, _, _) = report_json(w, &args);
    assert_eq!(code, 1);
    let report = &out["report"];
    assert_eq!(report["scanners"][0]["digest"], trivy.as_str());
    assert_eq!(report["scanners"][0]["format"], "trivy");
    let s = &report["summary"];
    // No environment: the dev-only ignore rule does not apply to zlib (Low).
    assert_eq!(
        (
            s["total"].as_u64(),
            s["blocked"].as_u64(),
            s["warned"].as_u64(),
            s["ignored"].as_u64()
        ),
        (Some(3), Some(1), Some(1), Some(0))
    );
    let (_, again, _, _) = report_json(w, &args);
    assert!(again["report"] == out["report"]);
    std::fs::write(w.join("signed.json"), out.to_string()).unwrap();
    let v = ok(
        w,
        &["report", "verify", "signed.json", "--key", "report.pub"],
    );
    assert!(v.contains(&digest), "{v}");
}

fn openvex(id: &str, author: &str, statements: Value) -> String {
    serde_json::json!({
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": id,
        "author": author,
        "timestamp": "2026-11-01T00:00:00Z",
        "version": 1,
        "statements": statements
    })
    .to_string()
}

/// Signed OpenVEX from two trusted issuers (vendor first) and one the VEX
/// section does not trust: quieted, conflicting, investigating and ignored.
#[test]
fn signed_openvex_quiets_conflicts_and_untrusted() {
    let reg = DistributionRegistry::start_plain().unwrap();
    let host = reg.host_port();
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    setup(w);
    python_layout(&w.join("img"), PythonLayer::Seed("vex"));
    skopeo_push(&w.join("img"), &format!("{host}/vex:v1"));
    let app = format!("{host}/vex:v1");
    let (_, empty, _, _) = report_json(w, &["--image", &app, "--output", "json"]);
    let digest = empty["report"]["imageDigest"].as_str().unwrap().to_string();
    for (name, out) in [
        ("trivy.json", "trivy.json"),
        ("grype.json", "grype.json"),
        ("cyclonedx-vdr.json", "bom.cdx.json"),
    ] {
        write_fixture(w, name, &digest, out);
    }
    push(w, &app, "application/json", "trivy.json");
    push(w, &app, "application/json", "grype.json");
    push(w, &app, "application/vnd.cyclonedx+json", "bom.cdx.json");
    let image_purl = format!("pkg:oci/vex@{}", digest.replace(':', "%3A"));
    std::fs::write(w.join("vendor.vex.json"), openvex("https://vendor.example/vex/1", "Vendor PSIRT", serde_json::json!([
        {"vulnerability": {"name": "GHSA-35jh-r3h4-6jhm"}, "products": [{"@id": "pkg:npm/lodash@4.17.20"}],
         "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"},
        {"vulnerability": {"name": "CVE-2023-44487"}, "products": [{"@id": image_purl}],
         "status": "not_affected", "justification": "vulnerable_code_not_present"}
    ]))).unwrap();
    std::fs::write(w.join("distro.vex.json"), openvex("https://distro.example/vex/7", "Distro Security", serde_json::json!([
        {"vulnerability": {"name": "CVE-2023-44487"}, "products": [{"@id": "pkg:golang/golang.org/x/net@0.1.0"}],
         "status": "affected", "action_statement": "upgrade to 0.17.0"}
    ]))).unwrap();
    std::fs::write(w.join("other.vex.json"), openvex("https://other.example/vex/3", "Someone", serde_json::json!([
        {"vulnerability": {"name": "CVE-2021-44906"}, "products": [{"@id": "pkg:npm/minimist@1.2.5"}],
         "status": "not_affected", "justification": "component_not_present"}
    ]))).unwrap();
    std::fs::write(
        w.join("vex-policy.yaml"),
        POLICY.replace(
            "  distro: { keys: [distro.pub] }\n",
            "  distro: { keys: [distro.pub] }\n  other: { keys: [other.pub] }\n",
        ),
    )
    .unwrap();
    for (file, key) in [
        ("vendor.vex.json", "vendor.pem"),
        ("distro.vex.json", "distro.pem"),
        ("other.vex.json", "other.pem"),
    ] {
        ok(
            w,
            &[
                "attest",
                "--image",
                &app,
                "--type",
                "openvex",
                "--predicate",
                file,
                "--key",
                key,
            ],
        );
    }
    let (code, out, _, _) = report_json(
        w,
        &[
            "--image",
            &app,
            "--policy",
            "vex-policy.yaml",
            "--output",
            "json",
        ],
    );
    assert_eq!(code, 1);
    let report = &out["report"];
    let verdicts: BTreeMap<String, &Value> = report["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["findingId"].as_str().unwrap().to_string(), v))
        .collect();
    let lodash = verdicts["CVE-2021-23337:pkg:npm/lodash@4.17.20"];
    assert_eq!(lodash["status"], "Quieted", "{lodash}");
    assert_eq!(lodash["quiet"], true);
    assert_eq!(
        lodash["quietedBy"][0]["signers"],
        serde_json::json!(["vendor"])
    );
    assert_eq!(lodash["quietedBy"][0]["issuer"], "Vendor PSIRT");
    assert_eq!(lodash["sourceTrust"], "vendor");
    let xnet = verdicts["CVE-2023-44487:pkg:golang/golang.org/x/net@0.1.0"];
    assert_eq!(xnet["status"], "Blocked", "{xnet}");
    assert_eq!(xnet["inputs"]["vex"]["status"], "conflict");
    assert_eq!(
        xnet["inputs"]["vex"]["quieting"][0]["signers"],
        serde_json::json!(["vendor"])
    );
    assert_eq!(
        xnet["inputs"]["vex"]["keeping"][0]["signers"],
        serde_json::json!(["distro"])
    );
    let minimist = verdicts["CVE-2021-44906:pkg:npm/minimist@1.2.5"];
    assert_eq!(minimist["status"], "Warned");
    assert!(minimist["inputs"].get("vex").is_none());
    let codes: Vec<&str> = report["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    assert!(
        codes.contains(&"vex.conflict") && codes.contains(&"vex.untrusted"),
        "{codes:?}"
    );
    assert_eq!(report["summary"]["quieted"], 1);
}
