//! StellaBundle against a real registry (Debian `docker-registry`, started by
//! `stella_testkit::distribution`, which has no Referrers API, so referrers
//! go through the tag-schema fallback index): image copied in with skopeo,
//! evidence pushed with stella, exported, verified, imported into another
//! repository (twice: the second uploads nothing), listed, and exported
//! again byte-identically.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use stella_testkit::cli::Stella;
use stella_testkit::distribution::DistributionRegistry;
use stella_testkit::fixtures::{PythonLayer, python_layout};

fn cli(dir: &Path) -> Stella {
    Stella::new(env!("CARGO_BIN_EXE_stella"))
        .current_dir(dir)
        .global_arg("--plain-http")
        .global_arg("--no-progress")
        .env("DOCKER_CONFIG", dir.join("docker-config"))
}

fn ok(dir: &Path, args: &[&str]) -> String {
    cli(dir).ok(args)
}

/// A tiny OCI image in a layout, built with python (no stella code involved).
fn make_layout(dir: &Path) {
    python_layout(dir, PythonLayer::HelloTar);
}

#[test]
fn registry_round_trip() {
    let reg = DistributionRegistry::start_plain().unwrap();
    let host = reg.host_port();
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    std::fs::create_dir(w.join("docker-config")).unwrap();
    make_layout(&w.join("img"));
    let sk = Command::new("skopeo")
        .args([
            "copy",
            "--insecure-policy",
            "--dest-tls-verify=false",
            "--preserve-digests",
        ])
        .arg(format!("oci:{}:v1", w.join("img").display()))
        .arg(format!("docker://{host}/app:v1"))
        .output()
        .unwrap();
    assert!(
        sk.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&sk.stderr)
    );

    let app = format!("{host}/app:v1");
    std::fs::write(w.join("sbom.spdx.json"), br#"{"spdxVersion":"SPDX-2.3"}"#).unwrap();
    std::fs::write(
        w.join("vex.json"),
        br#"{"@context":"https://openvex.dev/ns/v0.2.0"}"#,
    )
    .unwrap();
    std::fs::write(
        w.join("prov.json"),
        br#"{"buildDefinition":{"buildType":"x"}}"#,
    )
    .unwrap();
    ok(
        w,
        &[
            "evidence",
            "push-referrer",
            "--image",
            &app,
            "--artifact-type",
            "application/spdx+json",
            "--file",
            "sbom.spdx.json",
        ],
    );
    ok(
        w,
        &[
            "evidence",
            "push-referrer",
            "--image",
            &app,
            "--artifact-type",
            "application/openvex+json",
            "--file",
            "vex.json",
        ],
    );
    ok(
        w,
        &[
            "key",
            "generate",
            "--algorithm",
            "ed25519",
            "--output-key",
            "k.pem",
            "--output-pub",
            "k.pub",
        ],
    );
    ok(
        w,
        &[
            "attest",
            "--image",
            &app,
            "--predicate",
            "prov.json",
            "--type",
            "https://slsa.dev/provenance/v1",
            "--key",
            "k.pem",
        ],
    );

    ok(
        w,
        &[
            "evidence",
            "export-bundle",
            "--image",
            &app,
            "--include-dsse",
            "--include-image",
            "--output",
            "b.tar.zst",
            "--compression",
            "zstd",
        ],
    );
    let v: Value = serde_json::from_str(&ok(
        w,
        &[
            "bundle",
            "verify",
            "--bundle",
            "b.tar.zst",
            "--key",
            "k.pub",
            "--require",
            "application/spdx+json",
            "--require",
            "https://slsa.dev/provenance/v1",
            "--output",
            "json",
        ],
    ))
    .unwrap();
    assert_eq!(v["verified"], true, "{v}");

    let target = format!("{host}/mirror:v1");
    let first = ok(
        w,
        &["bundle", "import", "--bundle", "b.tar.zst", "--to", &target],
    );
    assert!(first.contains("4 manifest(s) pushed"), "{first}");
    let second = ok(
        w,
        &["bundle", "import", "--bundle", "b.tar.zst", "--to", &target],
    );
    assert!(
        second.contains("0 manifest(s) pushed") && second.contains("0 blob(s) pushed"),
        "{second}"
    );
    let listed = ok(
        w,
        &["evidence", "list-referrers", &target, "--format", "json"],
    );
    for t in [
        "application/spdx+json",
        "application/openvex+json",
        "application/vnd.dev.sigstore.bundle.v0.3+json",
    ] {
        assert!(listed.contains(t), "{t} not in {listed}");
    }
    ok(
        w,
        &[
            "evidence",
            "export-bundle",
            "--image",
            &target,
            "--include-dsse",
            "--include-image",
            "--output",
            "c.tar.zst",
            "--compression",
            "zstd",
        ],
    );
    assert_eq!(
        std::fs::read(w.join("b.tar.zst")).unwrap(),
        std::fs::read(w.join("c.tar.zst")).unwrap()
    );

    // --push-referrers into a third repository, then export from there too.
    let third = format!("{host}/third:v1");
    let p = ok(
        w,
        &[
            "evidence",
            "export-bundle",
            "--image",
            &app,
            "--include-dsse",
            "--include-image",
            "--push-referrers",
            &third,
        ],
    );
    assert!(p.contains("4 manifest(s) pushed"), "{p}");
    ok(
        w,
        &[
            "evidence",
            "export-bundle",
            "--image",
            &third,
            "--include-dsse",
            "--include-image",
            "--output",
            "d.tar.zst",
            "--compression",
            "zstd",
        ],
    );
    assert_eq!(
        std::fs::read(w.join("b.tar.zst")).unwrap(),
        std::fs::read(w.join("d.tar.zst")).unwrap()
    );
}
