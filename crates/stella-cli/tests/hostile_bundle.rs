//! Issue 10 §3 and §6, run as the built binary on local OCI layouts:
//! what `export-bundle` writes, `bundle verify` and `bundle import` read
//! back (300 MB of zeros, a 293 KB gzip, was refused as a bomb); data after
//! the archive (a second gzip member, garbage, an entry after the end
//! marker) is refused; `--output` never replaces a file without `--force`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use stella_oci::layout::OciLayout;
use stella_oci::store::{BlobSource, ContentWrite, NoProgress};
use stella_types::media_types;
use stella_types::{Descriptor, ImageManifest};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn stella(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_stella"))
        .args(args)
        .current_dir(dir)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env("DOCKER_CONFIG", "/nonexistent-stella-test-docker-config")
        .env_remove("STELLA_USERNAME")
        .env_remove("STELLA_PASSWORD")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn expect(dir: &Path, args: &[&str], code: i32) -> Run {
    let r = stella(dir, args);
    assert_eq!(
        r.code, code,
        "stella {args:?}: stdout {} stderr {}",
        r.stdout, r.stderr
    );
    r
}

/// A minimal image (config, one layer) tagged `v1` in the layout at `dir`.
fn make_image(dir: &Path) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let l = OciLayout::open_or_create(dir).unwrap();
        let config = br#"{"architecture":"amd64","os":"linux"}"#;
        let layer = b"not really a tar, never unpacked";
        let cd = Descriptor::for_bytes(media_types::OCI_CONFIG, config);
        let ld = Descriptor::for_bytes(media_types::OCI_LAYER_TAR, layer);
        l.push_blob(&cd, BlobSource::Bytes(config), &NoProgress)
            .await
            .unwrap();
        l.push_blob(&ld, BlobSource::Bytes(layer), &NoProgress)
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
        l.push_manifest(media_types::OCI_MANIFEST, &m.to_json_bytes(), Some("v1"))
            .await
            .unwrap();
    });
}

/// A layout `A` with image `v1` and one referrer holding `file`.
fn layout_with_evidence(dir: &Path, file: &Path) {
    make_image(&dir.join("A"));
    expect(
        dir,
        &[
            "evidence",
            "push-referrer",
            "--image",
            "oci:A:v1",
            "--artifact-type",
            "application/spdx+json",
            "--file",
            file.to_str().unwrap(),
        ],
        0,
    );
}

/// The issue's case, with the default limits: 300 MB of zeros exports to a
/// gzip of a few hundred KB, which verify and import must accept.
#[test]
fn a_highly_compressible_300_mb_bundle_exports_verifies_and_imports() {
    let dir = tempfile::tempdir().unwrap();
    let zeros = dir.path().join("zeros.spdx.json");
    let f = std::fs::File::create(&zeros).unwrap();
    f.set_len(300 * 1000 * 1000).unwrap();
    drop(f);
    layout_with_evidence(dir.path(), &zeros);
    std::fs::remove_file(&zeros).unwrap();
    expect(
        dir.path(),
        &[
            "evidence",
            "export-bundle",
            "--image",
            "oci:A:v1",
            "--output",
            "b.tar.gz",
        ],
        0,
    );
    let size = std::fs::metadata(dir.path().join("b.tar.gz"))
        .unwrap()
        .len();
    assert!(size < 2 * 1024 * 1024, "{size} bytes");
    let r = expect(dir.path(), &["bundle", "verify", "--bundle", "b.tar.gz"], 0);
    assert!(!r.stderr.contains("bomb"), "{}", r.stderr);
    // The bundle carries evidence only: the image must be in the target first.
    make_image(&dir.path().join("B"));
    expect(
        dir.path(),
        &[
            "bundle", "import", "--bundle", "b.tar.gz", "--to", "oci:B:v1",
        ],
        0,
    );
    expect(
        dir.path(),
        &["evidence", "list-referrers", "oci:B:v1", "--format", "json"],
        0,
    );
    let imported = std::fs::read_dir(dir.path().join("B/blobs/sha256"))
        .unwrap()
        .filter_map(|e| e.unwrap().metadata().ok())
        .any(|m| m.len() == 300 * 1000 * 1000);
    assert!(imported, "the 300 MB blob is not in the imported layout");
    // zstd too.
    expect(
        dir.path(),
        &[
            "evidence",
            "export-bundle",
            "--image",
            "oci:A:v1",
            "--compression",
            "zstd",
            "--output",
            "b.tar.zst",
        ],
        0,
    );
    expect(
        dir.path(),
        &["bundle", "verify", "--bundle", "b.tar.zst"],
        0,
    );
}

fn small_bundle(dir: &Path) {
    let doc = dir.join("sbom.spdx.json");
    std::fs::write(&doc, br#"{"spdxVersion":"SPDX-2.3"}"#).unwrap();
    layout_with_evidence(dir, &doc);
    expect(
        dir,
        &[
            "evidence",
            "export-bundle",
            "--image",
            "oci:A:v1",
            "--output",
            "b.tar.gz",
        ],
        0,
    );
}

/// Runs a system tool with `input` on stdin; returns its stdout.
fn filter(tool: &str, args: &[&str], input: &[u8], dir: &Path) -> Vec<u8> {
    let mut child = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert!(out.status.success(), "{tool} {args:?}");
    out.stdout
}

fn gzip(bytes: &[u8], dir: &Path) -> Vec<u8> {
    filter("gzip", &["-c", "-n"], bytes, dir)
}

/// A ustar archive (by the system tar) holding one file
/// `blobs/sha256/<hex of data>`, as a smuggled second archive would.
fn extra_tar(data: &[u8]) -> Vec<u8> {
    let src = tempfile::tempdir().unwrap();
    let hex = stella_types::Digest::sha256_of(data).hex().to_string();
    std::fs::create_dir_all(src.path().join("blobs/sha256")).unwrap();
    std::fs::write(src.path().join("blobs/sha256").join(&hex), data).unwrap();
    let out = Command::new("tar")
        .args(["--format=ustar", "-cf", "-", &format!("blobs/sha256/{hex}")])
        .current_dir(src.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

/// True when the layout at `dir` holds no image (it may not exist at all).
fn holds_nothing(dir: &Path) -> bool {
    match std::fs::read(dir.join("index.json")) {
        Err(_) => true,
        Ok(b) => {
            let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
            v["manifests"].as_array().is_none_or(|m| m.is_empty())
        }
    }
}

#[test]
fn data_after_the_archive_is_refused_by_verify_and_import() {
    let dir = tempfile::tempdir().unwrap();
    small_bundle(dir.path());
    let good = std::fs::read(dir.path().join("b.tar.gz")).unwrap();
    let plain = filter("gzip", &["-dc"], &good, dir.path());
    let extra = extra_tar(b"an unverified blob");
    let mut second_member = good.clone();
    second_member.extend(gzip(&extra, dir.path()));
    let mut garbage = good.clone();
    garbage.extend_from_slice(b"garbage");
    let mut after_marker = plain.clone();
    after_marker.extend_from_slice(&extra);
    // The system tar, reading past zero blocks, lists the smuggled blob.
    std::fs::write(dir.path().join("after.tar"), &after_marker).unwrap();
    let listed = Command::new("tar")
        .args(["--ignore-zeros", "-tf", "after.tar"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&listed.stdout)
            .contains(stella_types::Digest::sha256_of(b"an unverified blob").hex())
    );
    for (name, bytes) in [
        ("member.tar.gz", second_member),
        ("garbage.tar.gz", garbage),
        ("after.tar", after_marker),
    ] {
        std::fs::write(dir.path().join(name), &bytes).unwrap();
        let r = expect(dir.path(), &["bundle", "verify", "--bundle", name], 2);
        assert!(
            r.stderr.contains("after the end of the archive"),
            "{name}: {}",
            r.stderr
        );
        let r = expect(
            dir.path(),
            &["bundle", "import", "--bundle", name, "--to", "oci:C:v1"],
            2,
        );
        assert!(
            r.stderr.contains("after the end of the archive"),
            "{name}: {}",
            r.stderr
        );
        assert!(holds_nothing(&dir.path().join("C")), "{name}: imported");
    }
    // The untouched bundle still verifies.
    expect(dir.path(), &["bundle", "verify", "--bundle", "b.tar.gz"], 0);
}

#[test]
fn export_bundle_refuses_to_replace_an_existing_file_without_force() {
    let dir = tempfile::tempdir().unwrap();
    small_bundle(dir.path());
    let first = std::fs::read(dir.path().join("b.tar.gz")).unwrap();
    std::fs::write(dir.path().join("b.tar.gz"), b"precious").unwrap();
    let args = [
        "evidence",
        "export-bundle",
        "--image",
        "oci:A:v1",
        "--output",
        "b.tar.gz",
    ];
    let r = expect(dir.path(), &args, 2);
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
    assert!(r.stderr.contains("--force"), "{}", r.stderr);
    assert_eq!(
        std::fs::read(dir.path().join("b.tar.gz")).unwrap(),
        b"precious"
    );
    let mut forced = args.to_vec();
    forced.push("--force");
    expect(dir.path(), &forced, 0);
    assert_eq!(std::fs::read(dir.path().join("b.tar.gz")).unwrap(), first);
    // Only the bundle and the inputs are there: no temporary file.
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".stella-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
