//! `stella evidence export-bundle` and `stella bundle inspect|verify|import`
//! on local OCI image layouts, run as the built binary: a full round trip
//! (image + SBOM + VEX + signed attestation -> export -> verify -> import
//! -> list -> export again, byte-identical), signed bundles, tampering,
//! exit codes and third-party tools (tar, sha256sum, skopeo).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use stella_testkit::cli::{Run, Stella};
use stella_testkit::fixtures;
use stella_types::{Descriptor, media_types};

fn cli(dir: &Path) -> Stella {
    Stella::new(env!("CARGO_BIN_EXE_stella")).current_dir(dir)
}

fn ok(dir: &Path, args: &[&str]) -> String {
    cli(dir).ok(args)
}

fn code(dir: &Path, args: &[&str], expected: i32) -> Run {
    cli(dir).code(args, expected)
}

/// A small real image (config + one tar layer made by GNU tar) tagged `v1` in a layout.
fn make_image(dir: &Path) -> Descriptor {
    let layer = fixtures::system_tar("hello.txt", b"hello\n");
    let layer_digest = Descriptor::for_bytes(media_types::OCI_LAYER_TAR, &layer).digest;
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{layer_digest}"]}}}}"#
    );
    fixtures::layout_image(dir, "v1", config.as_bytes(), &layer)
}

/// Image + SBOM + VEX + signed provenance attestation in layout `A`, and a key pair.
fn setup(w: &Path) -> Descriptor {
    let image = make_image(&w.join("A"));
    std::fs::write(
        w.join("sbom.spdx.json"),
        br#"{"spdxVersion":"SPDX-2.3","name":"x"}"#,
    )
    .unwrap();
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
            "oci:A:v1",
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
            "oci:A:v1",
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
            "key",
            "generate",
            "--output-key",
            "other.pem",
            "--output-pub",
            "other.pub",
        ],
    );
    ok(
        w,
        &[
            "attest",
            "--image",
            "oci:A:v1",
            "--predicate",
            "prov.json",
            "--type",
            "https://slsa.dev/provenance/v1",
            "--key",
            "k.pem",
        ],
    );
    image
}

#[test]
fn export_verify_import_round_trip_is_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let image = setup(w);

    // Without --include-dsse the attestation is left out (and said so).
    let r = code(
        w,
        &[
            "evidence",
            "export-bundle",
            "--image",
            "oci:A:v1",
            "--output",
            "plain.tar.gz",
        ],
        0,
    );
    assert!(r.stderr.contains("use --include-dsse"), "{}", r.stderr);
    let inspect: Value = serde_json::from_str(&ok(
        w,
        &[
            "bundle",
            "inspect",
            "--bundle",
            "plain.tar.gz",
            "--output",
            "json",
        ],
    ))
    .unwrap();
    let referrers = inspect["manifest"]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["role"] == "referrer")
        .count();
    assert_eq!(referrers, 2);

    // Full bundle, signed.
    ok(
        w,
        &[
            "evidence",
            "export-bundle",
            "--image",
            "oci:A:v1",
            "--include-dsse",
            "--include-image",
            "--sign-key",
            "k.pem",
            "--output",
            "full.tar.gz",
        ],
    );
    let again = ok(
        w,
        &[
            "evidence",
            "export-bundle",
            "--image",
            "oci:A:v1",
            "--include-dsse",
            "--include-image",
            "--sign-key",
            "k.pem",
            "--output",
            "full2.tar.gz",
        ],
    );
    assert!(again.contains("signed"));
    assert_eq!(
        std::fs::read(w.join("full.tar.gz")).unwrap(),
        std::fs::read(w.join("full2.tar.gz")).unwrap()
    );

    let out = ok(
        w,
        &[
            "bundle",
            "verify",
            "--bundle",
            "full.tar.gz",
            "--key",
            "k.pub",
            "--require",
            "application/spdx+json",
            "--require",
            "https://slsa.dev/provenance/v1",
            "--output",
            "json",
        ],
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verified"], true);
    assert_eq!(v["subject"], image.digest.to_string());
    let checks: BTreeMap<String, String> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(checks["bundle-signature"], "verified");
    assert_eq!(checks["attestations"], "verified");
    // --rekor-checkpoint is now really checked (needs --trusted-root): see tests/keyless_attestation.rs.
    assert!(!checks.contains_key("rekor-checkpoint"));
    assert!(v["artifacts"].as_array().unwrap().iter().any(
        |a| a["status"] == "verified" && a["predicateType"] == "https://slsa.dev/provenance/v1"
    ));

    // Text report.
    let text = ok(
        w,
        &[
            "bundle",
            "verify",
            "--bundle",
            "full.tar.gz",
            "--key",
            "k.pub",
        ],
    );
    assert!(text.contains("VERIFIED"), "{text}");

    // Wrong key / no key / missing requirement: exit 1.
    let r = code(
        w,
        &[
            "bundle",
            "verify",
            "--bundle",
            "full.tar.gz",
            "--key",
            "other.pub",
        ],
        1,
    );
    assert!(r.stdout.contains("FAILED"));
    code(w, &["bundle", "verify", "--bundle", "full.tar.gz"], 1);
    let r = code(
        w,
        &[
            "bundle",
            "verify",
            "--bundle",
            "full.tar.gz",
            "--key",
            "k.pub",
            "--require",
            "application/vnd.cyclonedx+json",
            "--output",
            "json",
        ],
        1,
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["requirements"][0]["satisfied"], false);

    // Import into a second layout, twice: the second uploads nothing.
    let first = ok(
        w,
        &[
            "bundle",
            "import",
            "--bundle",
            "full.tar.gz",
            "--to",
            "oci:B:v1",
        ],
    );
    assert!(first.contains("4 manifest(s) pushed"), "{first}");
    let second = ok(
        w,
        &[
            "bundle",
            "import",
            "--bundle",
            "full.tar.gz",
            "--to",
            "oci:B:v1",
        ],
    );
    assert!(
        second.contains("0 manifest(s) pushed")
            && second.contains("0 blob(s) pushed")
            && second.contains("0 bytes uploaded"),
        "{second}"
    );
    let listed: Value = serde_json::from_str(&ok(
        w,
        &["evidence", "list-referrers", "oci:B:v1", "--format", "json"],
    ))
    .unwrap();
    let n = listed
        .as_array()
        .map(|a| a.len())
        .or_else(|| listed["referrers"].as_array().map(|a| a.len()))
        .unwrap();
    assert_eq!(n, 3, "{listed}");

    // Export again from the imported copy: identical bytes.
    ok(
        w,
        &[
            "evidence",
            "export-bundle",
            "--image",
            "oci:B:v1",
            "--include-dsse",
            "--include-image",
            "--sign-key",
            "k.pem",
            "--output",
            "full3.tar.gz",
        ],
    );
    assert_eq!(
        std::fs::read(w.join("full.tar.gz")).unwrap(),
        std::fs::read(w.join("full3.tar.gz")).unwrap()
    );

    // --push-referrers copies the same graph without writing a tar; idempotent.
    let p1 = ok(
        w,
        &[
            "evidence",
            "export-bundle",
            "--image",
            "oci:A:v1",
            "--include-dsse",
            "--push-referrers",
            "oci:C:v1",
        ],
    );
    assert!(p1.contains("4 manifest(s) pushed"), "{p1}");
    let p2 = ok(
        w,
        &[
            "evidence",
            "export-bundle",
            "--image",
            "oci:A:v1",
            "--include-dsse",
            "--push-referrers",
            "oci:C:v1",
        ],
    );
    assert!(
        p2.contains("0 manifest(s) pushed") && p2.contains("0 blob(s) pushed"),
        "{p2}"
    );
}

#[test]
fn compressions_third_party_tools_and_skopeo() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    setup(w);
    for (c, name, flag) in [
        ("gzip", "b.tar.gz", "-z"),
        ("zstd", "b.tar.zst", "--zstd"),
        ("none", "b.tar", ""),
    ] {
        ok(
            w,
            &[
                "evidence",
                "export-bundle",
                "--image",
                "oci:A:v1",
                "--include-dsse",
                "--include-image",
                "--compression",
                c,
                "--output",
                name,
            ],
        );
        let mut cmd = Command::new("tar");
        if !flag.is_empty() {
            cmd.arg(flag);
        }
        let out = cmd.arg("-tf").arg(w.join(name)).output().unwrap();
        assert!(
            out.status.success(),
            "{c}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8(out.stdout)
                .unwrap()
                .starts_with("stella-bundle.json\nSHA256SUMS\noci-layout\nindex.json\n")
        );
        ok(w, &["bundle", "verify", "--bundle", name, "--key", "k.pub"]);
    }
    let x = w.join("x");
    std::fs::create_dir(&x).unwrap();
    assert!(
        Command::new("tar")
            .arg("-xf")
            .arg(w.join("b.tar"))
            .arg("-C")
            .arg(&x)
            .status()
            .unwrap()
            .success()
    );
    let sums = Command::new("sha256sum")
        .args(["--strict", "-c", "SHA256SUMS"])
        .current_dir(&x)
        .output()
        .unwrap();
    assert!(
        sums.status.success(),
        "{}",
        String::from_utf8_lossy(&sums.stderr)
    );
    let sk = Command::new("skopeo")
        .args(["copy", "--insecure-policy"])
        .arg(format!("oci:{}:v1", x.display()))
        .arg(format!("oci:{}:v1", w.join("sk").display()))
        .output()
        .unwrap();
    assert!(
        sk.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&sk.stderr)
    );
    // The extracted layout is itself a store stella can read.
    let listed = ok(
        w,
        &[
            "evidence",
            "list-referrers",
            &format!("oci:{}:v1", x.display()),
        ],
    );
    assert!(listed.contains("application/spdx+json"), "{listed}");
}

/// [`setup`] plus an uncompressed bundle `b.tar` of `oci:A:v1`.
fn setup_with_bundle(w: &Path) {
    setup(w);
    ok(
        w,
        &[
            "evidence",
            "export-bundle",
            "--image",
            "oci:A:v1",
            "--compression",
            "none",
            "--output",
            "b.tar",
        ],
    );
}

#[test]
fn tampered_bundle_fails_verify_and_is_not_imported() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    setup_with_bundle(w);
    // Flip one byte inside the SBOM blob: exit 1 with a digest failure.
    let mut bytes = std::fs::read(w.join("b.tar")).unwrap();
    let needle = br#""spdxVersion":"SPDX-2.3""#;
    let pos = bytes
        .windows(needle.len())
        .position(|x| x == needle)
        .unwrap();
    bytes[pos + 2] ^= 0x20;
    std::fs::write(w.join("t.tar"), &bytes).unwrap();
    let r = code(
        w,
        &["bundle", "verify", "--bundle", "t.tar", "--output", "json"],
        1,
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(
        v["failures"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "digest-mismatch"),
        "{v}"
    );
    // A tampered bundle is not imported.
    let r = code(
        w,
        &["bundle", "import", "--bundle", "t.tar", "--to", "oci:T:v1"],
        1,
    );
    assert!(r.stderr.contains("does not verify"), "{}", r.stderr);
}

/// Garbage and missing files: exit 2, one line.
fn assert_unusable(w: &Path, args: &[&str]) {
    let r = code(w, args, 2);
    assert_eq!(r.stderr.lines().count(), 1, "{:?}", r.stderr);
    assert!(r.stderr.starts_with("stella: error: "), "{:?}", r.stderr);
}

#[test]
fn garbage_bundle_is_unusable_for_verify() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("g.tar"), b"this is not a bundle at all").unwrap();
    assert_unusable(tmp.path(), &["bundle", "verify", "--bundle", "g.tar"]);
}

#[test]
fn garbage_bundle_is_unusable_for_inspect() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("g.tar"), b"this is not a bundle at all").unwrap();
    assert_unusable(tmp.path(), &["bundle", "inspect", "--bundle", "g.tar"]);
}

#[test]
fn garbage_bundle_is_unusable_for_import() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("g.tar"), b"this is not a bundle at all").unwrap();
    assert_unusable(
        tmp.path(),
        &["bundle", "import", "--bundle", "g.tar", "--to", "oci:G:v1"],
    );
}

#[test]
fn missing_bundle_file_is_unusable() {
    let tmp = tempfile::tempdir().unwrap();
    assert_unusable(tmp.path(), &["bundle", "verify", "--bundle", "missing.tar"]);
}

#[test]
fn export_into_a_missing_directory_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    setup(w);
    let r = code(
        w,
        &[
            "evidence",
            "export-bundle",
            "--image",
            "oci:A:v1",
            "--output",
            "nodir/b.tar.gz",
        ],
        2,
    );
    assert!(r.stderr.starts_with("stella: error: "));
    assert!(!w.join("nodir").exists(), "nothing written");
}

#[test]
fn keyless_flags_are_refused_by_bundle_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    setup_with_bundle(w);
    // Keyless flags are refused, not ignored.
    code(
        w,
        &[
            "bundle",
            "verify",
            "--bundle",
            "b.tar",
            "--trusted-root",
            "x.json",
        ],
        2,
    );
}
