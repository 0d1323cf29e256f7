//! `stella vex ingest` on an OCI image layout: an OpenVEX attestation found
//! as a cosign legacy `sha256-<hex>.att` tag (a DSSE envelope layer), signed
//! by the trusted key, is ingested; the same envelope filed under the other
//! image's legacy tag is refused (its statement is not about that image).
//! Offline, inside a network namespace (`unshare -n`), the same ingest
//! works and makes no network connection.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use stella_oci::layout::OciLayout;
use stella_oci::store::{BlobSource, ContentWrite, NoProgress};
use stella_testkit::cli::Stella;
use stella_testkit::fixtures::{self, PLAIN_CONFIG, runtime as rt};
use stella_types::media_types;
use stella_types::{Descriptor, ImageManifest};

const DSSE: &str = "application/vnd.dsse.envelope.v1+json";

fn stella() -> Stella {
    Stella::new(env!("CARGO_BIN_EXE_stella"))
}

/// A layout under `t` with images `v1` and `v2`, a key pair `k.key`/`k.pub`
/// and one DSSE envelope (OpenVEX about `v1`, signed by `k.key`) filed under
/// both images' cosign legacy `.att` tags.
fn legacy_att_layout(t: &std::path::Path) -> (std::path::PathBuf, Descriptor, Descriptor) {
    let p = |n: &str| t.join(n).display().to_string();
    let lay = t.join("lay");
    let img1 = fixtures::layout_image(&lay, "v1", PLAIN_CONFIG, b"one");
    let img2 = fixtures::layout_image(&lay, "v2", PLAIN_CONFIG, b"two");
    let image = |tag: &str| format!("oci:{}:{tag}", lay.display());
    stella().ok(&[
        "key",
        "generate",
        "--algorithm",
        "ecdsa-p256",
        "--output-key",
        &p("k.key"),
        "--output-pub",
        &p("k.pub"),
    ]);
    std::fs::write(p("vex.json"), r#"{"@context":"https://openvex.dev/ns/v0.2.0","@id":"https://v/legacy","author":"A",
        "timestamp":"2024-05-01T00:00:00Z","version":3,
        "statements":[{"vulnerability":{"name":"CVE-2024-42"},"status":"not_affected","impact_statement":"not loaded"}]}"#).unwrap();
    stella().ok(&[
        "attest",
        "--image",
        &image("v1"),
        "--predicate",
        &p("vex.json"),
        "--type",
        "openvex",
        "--key",
        &p("k.key"),
        "--no-push",
        "--output",
        &p("b.json"),
    ]);
    let bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p("b.json")).unwrap()).unwrap();
    let envelope = serde_json::to_vec(&bundle["dsseEnvelope"]).unwrap();
    rt().block_on(async {
        let l = OciLayout::open(&lay).unwrap();
        let cfg = media_types::EMPTY_JSON;
        let cd = Descriptor::for_bytes(media_types::OCI_CONFIG, cfg);
        l.push_blob(&cd, BlobSource::Bytes(cfg), &NoProgress)
            .await
            .unwrap();
        let ld = Descriptor::for_bytes(DSSE, &envelope);
        l.push_blob(&ld, BlobSource::Bytes(&envelope), &NoProgress)
            .await
            .unwrap();
        let m = ImageManifest {
            schema_version: 2,
            media_type: Some(media_types::OCI_MANIFEST.into()),
            artifact_type: None,
            config: cd,
            layers: vec![ld],
            subject: None,
            annotations: BTreeMap::new(),
        };
        for img in [&img1, &img2] {
            let tag = format!("sha256-{}.att", img.digest.hex());
            l.push_manifest(media_types::OCI_MANIFEST, &m.to_json_bytes(), Some(&tag))
                .await
                .unwrap();
        }
    });
    (lay, img1, img2)
}

#[test]
fn a_cosign_legacy_att_tag_is_ingested_only_for_its_own_image() {
    let t = tempfile::tempdir().unwrap();
    let p = |n: &str| t.path().join(n).display().to_string();
    let (lay, img1, img2) = legacy_att_layout(t.path());
    let image = |tag: &str| format!("oci:{}:{tag}", lay.display());
    let db = p("vex.db");
    let out: serde_json::Value = serde_json::from_str(&stella().ok(&[
        "vex",
        "ingest",
        "--image",
        &image("v1"),
        "--image",
        &image("v2"),
        "--key",
        &p("k.pub"),
        "--db",
        &db,
        "--output",
        "json",
    ]))
    .unwrap();
    let images = out["images"].as_array().unwrap();
    assert_eq!(images[0]["counts"]["inserted"], 1, "{out:#}");
    assert_eq!(images[1]["counts"]["inserted"], 0, "{out:#}");
    assert_eq!(images[1]["counts"]["rejected"], 1, "{out:#}");
    let rows: serde_json::Value = serde_json::from_str(&stella().ok(&[
        "vex",
        "query",
        "--db",
        &db,
        "--product",
        &format!("sha256:{}", img1.digest.hex()),
        "--output",
        "json",
    ]))
    .unwrap();
    assert_eq!(rows["items"][0]["documentVersion"], 3, "{rows:#}");
    assert_eq!(
        rows["items"][0]["statement"]["vulnerability"]["name"],
        "CVE-2024-42"
    );
    let none: serde_json::Value = serde_json::from_str(&stella().ok(&[
        "vex",
        "query",
        "--db",
        &db,
        "--product",
        &format!("sha256:{}", img2.digest.hex()),
        "--output",
        "json",
    ]))
    .unwrap();
    assert_eq!(none["items"].as_array().unwrap().len(), 0);
}

/// Offline mode: `stella vex ingest` of an OCI layout inside a network
/// namespace with no interface up (`unshare -n`, root), traced with
/// `strace -e trace=connect`: the document is ingested and the process
/// makes no network connection (no AF_INET/AF_INET6 `connect`).
#[test]
fn offline_ingest_in_a_network_namespace_makes_no_network_call() {
    let probe = std::process::Command::new("unshare")
        .args(["-n", "true"])
        .status();
    assert!(
        probe.is_ok_and(|s| s.success()),
        "unshare -n needs root (CAP_SYS_ADMIN); the test machine and CI run as root"
    );
    let t = tempfile::tempdir().unwrap();
    let p = |n: &str| t.path().join(n).display().to_string();
    let (lay, img1, _) = legacy_att_layout(t.path());
    let trace = p("connect.trace");
    let out = std::process::Command::new("unshare")
        .args([
            "-n",
            "strace",
            "-f",
            "-qq",
            "-e",
            "trace=connect",
            "-o",
            &trace,
        ])
        .arg(env!("CARGO_BIN_EXE_stella"))
        .args(["vex", "ingest", "--image"])
        .arg(format!("oci:{}:v1", lay.display()))
        .args([
            "--key",
            &p("k.pub"),
            "--db",
            &p("offline.db"),
            "--output",
            "json",
        ])
        .env("XDG_CONFIG_HOME", "/nonexistent-stella-test-config")
        .env("DOCKER_CONFIG", "/nonexistent-stella-test-docker-config")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["images"][0]["counts"]["inserted"], 1, "{result:#}");
    assert_eq!(
        result["images"][0]["digest"],
        img1.digest.to_string(),
        "{result:#}"
    );
    let calls = std::fs::read_to_string(&trace).unwrap();
    let network: Vec<&str> = calls.lines().filter(|l| l.contains("AF_INET")).collect();
    assert!(network.is_empty(), "network connects: {network:#?}");
}
