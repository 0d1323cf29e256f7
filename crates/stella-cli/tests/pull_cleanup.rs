//! Issue 10 §6: `stella evidence pull-referrer` and `export-bundle` leave
//! nothing behind when the registry dies mid-blob or the process gets
//! SIGTERM mid-transfer (no `.stella-pull-*` / `.stella-bundle-*.partial`
//! temp file, no output directory they created), and refused layer titles
//! are echoed short and escaped, never written.
//!
//! The registry is `stella_testkit::blob_faults::FaultyBlobRegistry`, a
//! small hyper server that dies or stalls after part of one blob.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use stella_testkit::blob_faults::{BlobFault, FaultyBlobContent, FaultyBlobRegistry};
use stella_testkit::spec_registry::sha256_digest;
use stella_types::media_types::{self, annotations};
use stella_types::{Descriptor, Digest, ImageManifest};

const REPO: &str = "demo/app";
const A_SIZE: usize = 512 * 1024;
const B_SIZE: usize = 8 * 1024 * 1024;
/// Bytes of the faulty blob sent before it dies or stalls.
const SENT: usize = 2 * 1024 * 1024;

fn stella() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_stella"));
    c.env("DOCKER_CONFIG", "/nonexistent-stella-test-docker-config")
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env_remove("STELLA_USERNAME")
        .env_remove("STELLA_PASSWORD");
    c
}

fn layer(title: &str, bytes: &[u8]) -> Descriptor {
    let mut d = Descriptor::for_bytes("application/octet-stream", bytes);
    d.annotations
        .insert(annotations::TITLE.to_string(), title.to_string());
    d
}

/// An image (config, one layer) and an artifact about it with layers titled
/// `titles` (contents `a`×512 KiB, then `b`×8 MiB, …). Returns what to
/// serve, the artifact's digest, the image's digest and the digest of the
/// artifact's last layer.
fn content(titles: &[&str]) -> (FaultyBlobContent, String, String, String) {
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let image_layer = vec![b'i'; B_SIZE];
    let cd = Descriptor::for_bytes(media_types::OCI_CONFIG, &config);
    let image = ImageManifest {
        schema_version: 2,
        media_type: Some(media_types::OCI_MANIFEST.into()),
        artifact_type: None,
        config: cd,
        layers: vec![Descriptor::for_bytes(
            media_types::OCI_LAYER_TAR,
            &image_layer,
        )],
        subject: None,
        annotations: BTreeMap::new(),
    };
    let image_bytes = image.to_json_bytes();
    let empty = b"{}".to_vec();
    let mut blobs = vec![config, image_layer.clone(), empty.clone()];
    let mut layers = Vec::new();
    for (i, t) in titles.iter().enumerate() {
        let bytes = if i == 0 {
            vec![b'a'; A_SIZE]
        } else {
            vec![b'a' + i as u8; B_SIZE]
        };
        layers.push(layer(t, &bytes));
        blobs.push(bytes);
    }
    let last = layers.last().unwrap().digest.to_string();
    let artifact = ImageManifest {
        schema_version: 2,
        media_type: Some(media_types::OCI_MANIFEST.into()),
        artifact_type: Some("application/x.evidence".into()),
        config: Descriptor::for_bytes(media_types::OCI_EMPTY, &empty),
        layers,
        subject: Some(Descriptor::for_bytes(
            media_types::OCI_MANIFEST,
            &image_bytes,
        )),
        annotations: BTreeMap::new(),
    };
    let artifact_bytes = artifact.to_json_bytes();
    let artifact_digest = sha256_digest(&artifact_bytes);
    let image_digest = sha256_digest(&image_bytes);
    let c = FaultyBlobContent {
        repo: REPO.into(),
        manifests: vec![
            (
                media_types::OCI_MANIFEST.into(),
                image_bytes,
                Some("v1".into()),
            ),
            (media_types::OCI_MANIFEST.into(), artifact_bytes, None),
        ],
        blobs,
        faulty_blob: last.clone(),
    };
    (c, artifact_digest, image_digest, last)
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn pull(reg: &FaultyBlobRegistry, digest: &str, out: &Path) -> Output {
    stella()
        .args(["--plain-http", "evidence", "pull-referrer"])
        .arg(format!("{}/{REPO}@{digest}", reg.host_port()))
        .arg("--output")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn a_registry_dying_mid_blob_leaves_no_temp_file_and_no_created_directory() {
    let (c, artifact, _, _) = content(&["a.bin", "b.bin"]);
    let reg = FaultyBlobRegistry::start(c, BlobFault::DieAfter(SENT)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("new").join("out");
    let r = pull(&reg, &artifact, &out);
    assert_eq!(
        r.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(
        reg.faulty_requests() >= 1,
        "the faulty blob was never asked for"
    );
    assert!(
        !dir.path().join("new").exists(),
        "left behind: {:?}",
        names(dir.path())
    );

    // Into a directory that exists: it keeps exactly what it held.
    let existing = dir.path().join("existing");
    std::fs::create_dir(&existing).unwrap();
    std::fs::write(existing.join("notes.txt"), b"mine").unwrap();
    let r = pull(&reg, &artifact, &existing);
    assert_eq!(r.status.code(), Some(2));
    assert_eq!(names(&existing), vec!["notes.txt".to_string()]);
}

/// Total bytes of our temp files in `dir` (0 if it does not exist yet).
fn temp_bytes(dir: &Path, prefix: &str) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// Starts `cmd`, waits until its temp files in `dir` hold `at_least` bytes
/// (the transfer is under way and stalled), sends SIGTERM and returns the
/// output.
fn sigterm_mid_transfer(mut cmd: Command, dir: &Path, prefix: &str, at_least: u64) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A guard against a test that can never get there, not a timing assertion.
    let give_up = Instant::now() + Duration::from_secs(120);
    while temp_bytes(dir, prefix) < at_least {
        assert!(
            Instant::now() < give_up,
            "the transfer never reached {at_least} bytes in {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    child.wait_with_output().unwrap()
}

#[test]
fn sigterm_during_a_pull_leaves_nothing_behind() {
    let (c, artifact, _, _) = content(&["a.bin", "b.bin"]);
    let reg = FaultyBlobRegistry::start(c, BlobFault::StallAfter(SENT)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut cmd = stella();
    cmd.args(["--plain-http", "evidence", "pull-referrer"])
        .arg(format!("{}/{REPO}@{artifact}", reg.host_port()))
        .arg("--output")
        .arg(&out);
    // a.bin complete and part of b.bin on disk, b.bin stalled.
    let r = sigterm_mid_transfer(cmd, &out, ".stella-pull-", (A_SIZE + SENT) as u64);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    assert!(!out.exists(), "left behind: {:?}", names(&out));
    assert_eq!(names(dir.path()), Vec::<String>::new());
}

#[test]
fn sigterm_during_an_export_leaves_no_partial_bundle() {
    let (mut c, _, image, _) = content(&["a.bin"]);
    // The image layer stalls (exported with --include-image).
    let image_layer = Digest::sha256_of(&vec![b'i'; B_SIZE]).to_string();
    c.faulty_blob = image_layer;
    let reg = FaultyBlobRegistry::start(c, BlobFault::StallAfter(SENT)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("b.tar");
    let mut cmd = stella();
    cmd.args([
        "--plain-http",
        "evidence",
        "export-bundle",
        "--include-image",
    ])
    .args(["--compression", "none", "--image"])
    .arg(format!("{}/{REPO}@{image}", reg.host_port()))
    .arg("--output")
    .arg(&bundle);
    let r = sigterm_mid_transfer(cmd, dir.path(), ".stella-bundle-", (SENT / 2) as u64);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    assert_eq!(names(dir.path()), Vec::<String>::new());
}

#[test]
fn hostile_titles_are_refused_echoed_short_and_nothing_is_written() {
    let long = format!("{}.txt", "x".repeat(3 * 1024 * 1024));
    for (title, what) in [
        ("evil\u{202e}txt.exe", "bidi override"),
        ("two\u{2028}lines.txt", "line separator"),
        ("a\u{2067}b.txt", "bidi isolate"),
        (long.as_str(), "3 MB title"),
    ] {
        let (c, artifact, _, _) = content(&["ok.bin", title]);
        let reg = FaultyBlobRegistry::start(c, BlobFault::DieAfter(usize::MAX)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let r = pull(&reg, &artifact, &out);
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{what}: {stderr}");
        assert!(stderr.contains("layer title"), "{what}: {stderr}");
        assert!(
            stderr.len() < 1024,
            "{what}: {} bytes of stderr",
            stderr.len()
        );
        assert_eq!(stderr.lines().count(), 1, "{what}: {stderr}");
        for c in ['\u{202e}', '\u{2028}', '\u{2067}'] {
            assert!(!stderr.contains(c), "{what}: raw {c:?} echoed");
        }
        assert!(!out.exists(), "{what}: output written");
        assert_eq!(reg.faulty_requests(), 0, "{what}: a blob was fetched");
    }
}
