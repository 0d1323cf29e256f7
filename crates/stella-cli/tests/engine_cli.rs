//! The commands that now call `stella_engine`, on what the first round got
//! wrong (each test fails on the code before the engine):
//! - `SOURCE_DATE_EPOCH` in the past never loosens `maxAge` in `verify
//!   image` (it only stamps `evaluatedAt`);
//! - a keyless (certificate) bundle that the sigstore parser refuses is
//!   reported with the parser's reason by `verify attestation` and `bundle
//!   verify`, not as "not a keyless bundle, and no --key or --trust-root";
//! - an attestation attached by a generic client (PyPI `oras`, layer type
//!   `application/vnd.oci.image.layer.v1.tar`; `stella evidence
//!   push-referrer`, `application/json`) under a DSSE envelope artifact
//!   type is read by content and verified, on a real docker-registry and
//!   in a layout.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use stella_testkit::distribution::DistributionRegistry;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn stella_env(dir: &Path, args: &[&str], sde: &str) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_stella"))
        .arg("--plain-http")
        .arg("--no-progress")
        .args(args)
        .current_dir(dir)
        .env("SOURCE_DATE_EPOCH", sde)
        .env("DOCKER_CONFIG", dir.join("docker-config"))
        .env_remove("STELLA_USERNAME")
        .env_remove("STELLA_REQUEST_STATS")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn stella(dir: &Path, args: &[&str]) -> Run {
    stella_env(dir, args, "1700000000")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let r = stella(dir, args);
    assert_eq!(r.code, 0, "stella {args:?}: {}{}", r.stdout, r.stderr);
    r.stdout
}

fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A tiny OCI image (tag v1) in a layout.
fn make_layout(dir: &Path, seed: &str) {
    let script = r#"
import hashlib, json, os, sys
d, seed = sys.argv[1], sys.argv[2]
os.makedirs(d + "/blobs/sha256", exist_ok=True)
def put(b, mt):
    h = hashlib.sha256(b).hexdigest()
    open(f"{d}/blobs/sha256/{h}", "wb").write(b)
    return {"mediaType": mt, "digest": "sha256:" + h, "size": len(b)}
l = put(("layer " + seed).encode(), "application/vnd.oci.image.layer.v1.tar")
cfg = put(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [l["digest"]]}}).encode(),
          "application/vnd.oci.image.config.v1+json")
m = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": cfg, "layers": [l]}).encode(),
        "application/vnd.oci.image.manifest.v1+json")
m["annotations"] = {"org.opencontainers.image.ref.name": "v1"}
json.dump({"schemaVersion": 2, "manifests": [m]}, open(d + "/index.json", "w"))
open(d + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
"#;
    python(script, &[dir.to_str().unwrap(), seed]);
}

/// The image manifest descriptor of a `make_layout` layout.
fn layout_image(dir: &Path) -> Value {
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    index["manifests"][0].clone()
}

fn keys(w: &Path) {
    std::fs::create_dir_all(w.join("docker-config")).unwrap();
    ok(
        w,
        &[
            "key",
            "generate",
            "--output-key",
            "ci.pem",
            "--output-pub",
            "ci.pub",
        ],
    );
    std::fs::write(
        w.join("prov.json"),
        br#"{"buildDefinition":{"buildType":"x"}}"#,
    )
    .unwrap();
}

// ------------------------------------------------------- SOURCE_DATE_EPOCH

/// Evidence made at SOURCE_DATE_EPOCH=1700000000 (Nov 2023) is years older
/// than a 30-day limit. Verifying with SOURCE_DATE_EPOCH set to 100 s later
/// used to evaluate ages at that past time and pass; now ages are judged at
/// the real time and it fails, while `evaluatedAt` keeps the stamp.
#[test]
fn past_source_date_epoch_does_not_loosen_max_age() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    keys(w);
    make_layout(&w.join("img"), "age");
    ok(
        w,
        &[
            "attest",
            "--image",
            "oci:img:v1",
            "--type",
            "slsaprovenance",
            "--predicate",
            "prov.json",
            "--key",
            "ci.pem",
        ],
    );
    std::fs::write(
        w.join("policy.yaml"),
        "version: 1\nsigners:\n  ci:\n    keys: [ci.pub]\nrequirements:\n\
         \x20 - name: provenance\n    type: slsaprovenance\n    maxAge: 30d\n",
    )
    .unwrap();
    let args = [
        "verify",
        "image",
        "oci:img:v1",
        "--use-referrers",
        "--policy",
        "policy.yaml",
        "--output",
        "json",
    ];
    let r = stella_env(w, &args, "1700000100");
    assert_eq!(
        r.code, 1,
        "a past SOURCE_DATE_EPOCH loosened maxAge: {}{}",
        r.stdout, r.stderr
    );
    let report: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(report["verdict"], "fail");
    assert_eq!(report["evaluatedAt"], "2023-11-14T22:15:00Z", "{report}");
    let reason = report["requirements"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("over the 30d limit"), "{reason}");
    // The same run twice gives the same bytes (the stamp, not the clock).
    let again = stella_env(w, &args, "1700000100");
    assert_eq!(again.stdout, r.stdout);
}

// ------------------------------------------------------- misleading reason

fn conf(p: &str) -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/conformance/sigstore/"
    ))
    .join(p)
}

const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";
const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// A production keyless bundle whose first tlog entry's `logIndex` is not a
/// number: still a certificate bundle by shape, refused by the parser.
fn broken_keyless_bundle(w: &Path) -> PathBuf {
    let src = conf("test/assets/bundle-verify/happy-path-intoto-in-dsse-v3/bundle.sigstore.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(src).unwrap()).unwrap();
    v["verificationMaterial"]["tlogEntries"][0]["logIndex"] = Value::from("not-a-number");
    let out = w.join("broken.sigstore.json");
    std::fs::write(&out, serde_json::to_vec(&v).unwrap()).unwrap();
    out
}

fn keyless_flags() -> Vec<String> {
    vec![
        "--trusted-root".into(),
        conf("trusted_root/production.json").display().to_string(),
        "--certificate-identity".into(),
        IDENTITY.into(),
        "--certificate-oidc-issuer".into(),
        ISSUER.into(),
    ]
}

#[test]
fn unparsable_certificate_bundle_reports_the_parse_error() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    std::fs::create_dir_all(w.join("docker-config")).unwrap();
    make_layout(&w.join("img"), "keyless");
    let bundle = broken_keyless_bundle(w);
    ok(
        w,
        &[
            "evidence",
            "push-referrer",
            "--image",
            "oci:img:v1",
            "--artifact-type",
            BUNDLE_V03,
            "--file",
            &format!("{}:{BUNDLE_V03}", bundle.display()),
        ],
    );
    let mut args: Vec<String> = ["verify", "attestation", "--image", "oci:img:v1"]
        .map(String::from)
        .to_vec();
    args.extend(keyless_flags());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = stella(w, &argv);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(!r.stdout.contains("not a keyless"), "{}", r.stdout);
    assert!(r.stdout.contains("logIndex"), "{}", r.stdout);

    ok(
        w,
        &[
            "evidence",
            "export-bundle",
            "--image",
            "oci:img:v1",
            "--include-dsse",
            "--output",
            "b.tar.gz",
        ],
    );
    let mut args: Vec<String> = [
        "bundle", "verify", "--bundle", "b.tar.gz", "--output", "json",
    ]
    .map(String::from)
    .to_vec();
    args.extend(keyless_flags());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = stella(w, &argv);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let report: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let failures = report["failures"].to_string();
    assert!(!failures.contains("not a keyless"), "{failures}");
    assert!(failures.contains("logIndex"), "{failures}");
}

// ------------------------------------------------------- generic layers

/// Signs a provenance statement about `image` and writes its DSSE envelope
/// (the `dsseEnvelope` of the bundle `stella attest` makes) to `out`.
fn envelope(w: &Path, image: &str, out: &str) {
    ok(
        w,
        &[
            "attest",
            "--image",
            image,
            "--type",
            "slsaprovenance",
            "--predicate",
            "prov.json",
            "--key",
            "ci.pem",
            "--no-push",
            "--output",
            "signed.bundle.json",
        ],
    );
    let b: Value =
        serde_json::from_slice(&std::fs::read(w.join("signed.bundle.json")).unwrap()).unwrap();
    std::fs::write(w.join(out), serde_json::to_vec(&b["dsseEnvelope"]).unwrap()).unwrap();
}

/// oras-py (the PyPI `oras` client) attaches the envelope as `oras attach
/// --artifact-type application/vnd.dsse.envelope.v1+json` would on a
/// registry without the Referrers API: config type = the artifact type,
/// the file under oras' default layer type, a subject; then the
/// `sha256-<hex>` fallback index is written with the artifactType.
const ORAS_ATTACH: &str = r#"
import hashlib, json, sys, urllib.request
import oras.client, oras.oci
reg, repo, subject_json, envelope, config = sys.argv[1:6]
subject = json.loads(subject_json)
client = oras.client.OrasClient(hostname=reg, insecure=True)
client.push(target=f"{reg}/{repo}:attached", files=[envelope],
            manifest_config=f"{config}:application/vnd.dsse.envelope.v1+json",
            subject=oras.oci.Subject(mediaType=subject["mediaType"], digest=subject["digest"], size=subject["size"]),
            disable_path_validation=True, quiet=True)
req = urllib.request.Request(f"http://{reg}/v2/{repo}/manifests/attached",
                             headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
body = urllib.request.urlopen(req).read()
m = json.loads(body)
layer_types = [l["mediaType"] for l in m["layers"]]
desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": "sha256:" + hashlib.sha256(body).hexdigest(), "size": len(body),
        "artifactType": "application/vnd.dsse.envelope.v1+json"}
index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                    "manifests": [desc]}).encode()
tag = subject["digest"].replace(":", "-")
put = urllib.request.Request(f"http://{reg}/v2/{repo}/manifests/{tag}", data=index, method="PUT",
                             headers={"Content-Type": "application/vnd.oci.image.index.v1+json"})
urllib.request.urlopen(put).read()
print(json.dumps({"digest": desc["digest"], "layerTypes": layer_types}))
"#;

fn skopeo_push(layout: &Path, dest: &str) {
    let sk = Command::new("skopeo")
        .args([
            "copy",
            "--insecure-policy",
            "--dest-tls-verify=false",
            "--preserve-digests",
        ])
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(format!("docker://{dest}"))
        .output()
        .unwrap();
    assert!(
        sk.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&sk.stderr)
    );
}

#[test]
fn oras_attached_envelope_with_a_generic_layer_type_verifies() {
    let reg = DistributionRegistry::start_plain().unwrap();
    let host = reg.host_port();
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    keys(w);
    make_layout(&w.join("img"), "oras");
    skopeo_push(&w.join("img"), &format!("{host}/app:v1"));
    let image = format!("{host}/app:v1");
    envelope(w, &image, "envelope.json");
    std::fs::write(w.join("config.json"), b"{}").unwrap();
    let subject = layout_image(&w.join("img")).to_string();
    let out = python(
        ORAS_ATTACH,
        &[
            &host,
            "app",
            &subject,
            w.join("envelope.json").to_str().unwrap(),
            w.join("config.json").to_str().unwrap(),
        ],
    );
    let pushed: Value = serde_json::from_str(out.trim()).unwrap();
    let digest = pushed["digest"].as_str().unwrap();
    // oras gave the layer its generic default type.
    assert_eq!(
        pushed["layerTypes"],
        serde_json::json!(["application/vnd.oci.image.layer.v1.tar"])
    );

    let listed = ok(w, &["evidence", "list-referrers", &image]);
    assert!(listed.contains(digest), "{listed}");

    let r = stella(
        w,
        &[
            "verify",
            "attestation",
            "--image",
            &image,
            "--key",
            "ci.pub",
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("VERIFIED"), "{}", r.stdout);
    assert!(
        r.stdout.contains("https://slsa.dev/provenance/v1"),
        "{}",
        r.stdout
    );

    let r = stella(
        w,
        &[
            "verify",
            "image",
            &image,
            "--use-referrers",
            "--require",
            "slsaprovenance",
            "--key",
            "ci.pub",
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);

    ok(
        w,
        &[
            "evidence",
            "export-bundle",
            "--image",
            &image,
            "--include-dsse",
            "--output",
            "oras.tar.gz",
        ],
    );
    let r = stella(
        w,
        &[
            "bundle",
            "verify",
            "--bundle",
            "oras.tar.gz",
            "--key",
            "ci.pub",
            "--require",
            "https://slsa.dev/provenance/v1",
            "--output",
            "json",
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let report: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let art = report["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["digest"] == digest)
        .unwrap();
    assert_eq!(art["status"], "verified", "{art}");
}

/// In a layout, `stella evidence push-referrer` gives a `.json` file the
/// generic `application/json` type and anything else
/// `application/octet-stream`: both read by content under a DSSE envelope
/// artifact type; a generic layer holding something else fails.
#[test]
fn layout_generic_layers_are_read_by_content() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    keys(w);
    make_layout(&w.join("img"), "generic");
    envelope(w, "oci:img:v1", "envelope.json");
    std::fs::copy(w.join("envelope.json"), w.join("envelope.bin")).unwrap();
    for file in ["envelope.json", "envelope.bin"] {
        ok(
            w,
            &[
                "evidence",
                "push-referrer",
                "--image",
                "oci:img:v1",
                "--artifact-type",
                "application/vnd.dsse.envelope.v1+json",
                "--file",
                file,
            ],
        );
    }
    let r = stella(
        w,
        &[
            "verify",
            "attestation",
            "--image",
            "oci:img:v1",
            "--key",
            "ci.pub",
            "--output",
            "json",
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let report: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let types: Vec<&str> = report["attestations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["mediaType"].as_str().unwrap())
        .collect();
    assert_eq!(types.len(), 2, "{report}");
    assert!(types.contains(&"application/json"), "{types:?}");
    assert!(types.contains(&"application/octet-stream"), "{types:?}");

    std::fs::write(w.join("junk.bin"), b"\x00\x01 not an envelope").unwrap();
    ok(
        w,
        &[
            "evidence",
            "push-referrer",
            "--image",
            "oci:img:v1",
            "--artifact-type",
            "application/vnd.dsse.envelope.v1+json",
            "--file",
            "junk.bin",
        ],
    );
    let r = stella(
        w,
        &[
            "verify",
            "attestation",
            "--image",
            "oci:img:v1",
            "--key",
            "ci.pub",
        ],
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("is not a DSSE envelope or sigstore bundle"),
        "{}",
        r.stdout
    );
}
