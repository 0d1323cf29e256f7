//! `stella evidence` on a local OCI image layout, run as the built binary
//! in temp dirs: push, list (table/json/tree), pull, delete, idempotence,
//! hostile input, exit codes, and skopeo interop.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use stella_oci::layout::OciLayout;
use stella_oci::store::{BlobSource, ContentWrite, NoProgress};
use stella_testkit::cli::{Stella, json};
use stella_testkit::fixtures::{self, PLAIN_CONFIG, runtime as rt};
use stella_types::media_types::{self, annotations};
use stella_types::{Descriptor, Digest, ImageManifest};

fn ok(args: &[&str]) -> String {
    Stella::new(env!("CARGO_BIN_EXE_stella")).ok(args)
}

/// Asserts exit code 2 with a one-line `stella: error:` message containing `needle`.
fn fails(args: &[&str], needle: &str) {
    Stella::new(env!("CARGO_BIN_EXE_stella")).fails(args, needle);
}

/// Writes a tiny image (config + one layer + manifest) tagged `v1`.
fn make_image(dir: &Path) -> Descriptor {
    fixtures::layout_image(dir, "v1", PLAIN_CONFIG, b"not really a tar")
}

fn index_json(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap()
}

fn entries_with(dir: &Path, digest: &str) -> usize {
    index_json(dir)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["digest"] == digest)
        .count()
}

fn sha256_file(p: &Path) -> String {
    Digest::sha256_of(&std::fs::read(p).unwrap()).to_string()
}

#[test]
fn push_list_pull_delete_round_trip() {
    let t = tempfile::tempdir().unwrap();
    let lay = t.path().join("lay");
    let img = make_image(&lay);
    let sbom = t.path().join("sbom.spdx.json");
    std::fs::write(&sbom, br#"{"spdxVersion":"SPDX-2.3"}"#).unwrap();
    let notes = t.path().join("notes.txt");
    std::fs::write(&notes, b"some notes\n").unwrap();
    let image_ref = format!("oci:{}:v1", lay.display());

    let pushed = json(&ok(&[
        "evidence",
        "push-referrer",
        "--image",
        &image_ref,
        "--artifact-type",
        "application/spdx+json",
        "--file",
        sbom.to_str().unwrap(),
        "--file",
        &format!("{}:text/markdown", notes.display()),
        "--annotation",
        "team=sec",
        "--output",
        "json",
    ]));
    let sbom_digest = pushed["digest"].as_str().unwrap().to_string();
    assert_eq!(pushed["subject"], img.digest.to_string());
    assert_eq!(pushed["mode"], "layout");
    assert_eq!(pushed["artifactType"], "application/spdx+json");
    assert_eq!(pushed["mediaType"], media_types::OCI_MANIFEST);

    // The manifest on disk has the documented shape.
    let blob = lay
        .join("blobs/sha256")
        .join(sbom_digest.trim_start_matches("sha256:"));
    let m: Value = serde_json::from_slice(&std::fs::read(&blob).unwrap()).unwrap();
    assert_eq!(m["config"]["mediaType"], media_types::OCI_EMPTY);
    assert_eq!(m["config"]["digest"], media_types::EMPTY_JSON_DIGEST);
    assert_eq!(m["subject"]["digest"], img.digest.to_string());
    assert_eq!(
        m["layers"][0]["annotations"][annotations::TITLE],
        "sbom.spdx.json"
    );
    assert_eq!(m["layers"][0]["mediaType"], "application/json");
    assert_eq!(m["layers"][1]["mediaType"], "text/markdown");
    assert_eq!(m["annotations"]["team"], "sec");
    assert_eq!(
        m["annotations"][annotations::CREATED],
        "2023-11-14T22:13:20Z"
    );
    assert_eq!(
        pushed["size"].as_u64().unwrap(),
        std::fs::metadata(&blob).unwrap().len()
    );

    // A signature on the SBOM (referrer of a referrer), pinned by digest.
    let sig = t.path().join("sig.bin");
    std::fs::write(&sig, b"signature bytes").unwrap();
    let sig_digest = ok(&[
        "evidence",
        "push-referrer",
        "--image",
        &format!("oci:{}@{sbom_digest}", lay.display()),
        "--artifact-type",
        "application/vnd.dev.cosign.simplesigning.v1+json",
        "--file",
        sig.to_str().unwrap(),
    ])
    .trim()
    .to_string();
    Digest::parse(&sig_digest).unwrap();

    // Table: header and the SBOM row, not the nested signature.
    let table = ok(&["evidence", "list-referrers", &image_ref]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("DIGEST")
            && lines[0].contains("ARTIFACT TYPE")
            && lines[0].contains("CREATED")
    );
    assert_eq!(lines.len(), 2, "{table}");
    assert!(lines[1].contains(&sbom_digest) && lines[1].contains("application/spdx+json"));
    assert!(lines[1].contains("2023-11-14T22:13:20Z"));

    // JSON depth 1 and tree.
    let listed = json(&ok(&[
        "evidence",
        "list-referrers",
        &image_ref,
        "--format",
        "json",
    ]));
    assert_eq!(listed["subject"], img.digest.to_string());
    assert_eq!(listed["mode"], "layout");
    let refs = listed["referrers"].as_array().unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0]["digest"], sbom_digest.as_str());
    assert!(refs[0].get("referrers").is_none());
    assert_eq!(refs[0]["annotations"]["team"], "sec");
    let deep = json(&ok(&[
        "evidence",
        "list-referrers",
        &image_ref,
        "--format",
        "json",
        "--depth",
        "2",
    ]));
    assert_eq!(
        deep["referrers"][0]["referrers"][0]["digest"],
        sig_digest.as_str()
    );
    let tree = ok(&["evidence", "list-referrers", &image_ref, "--format", "tree"]);
    let tl: Vec<&str> = tree.lines().collect();
    assert_eq!(tl.len(), 3, "{tree}");
    assert!(tl[1].starts_with("└── ") && tl[1].contains(&sbom_digest));
    assert!(tl[2].starts_with("    └── ") && tl[2].contains(&sig_digest));
    // Filter by artifact type.
    let none = json(&ok(&[
        "evidence",
        "list-referrers",
        &image_ref,
        "--format",
        "json",
        "--artifact-type",
        "x/none",
    ]));
    assert!(none["referrers"].as_array().unwrap().is_empty());

    // Pull: files byte-identical, digests as in the manifest.
    let out = t.path().join("out");
    ok(&[
        "evidence",
        "pull-referrer",
        &format!("oci:{}@{sbom_digest}", lay.display()),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read(out.join("sbom.spdx.json")).unwrap(),
        std::fs::read(&sbom).unwrap()
    );
    assert_eq!(
        std::fs::read(out.join("notes.txt")).unwrap(),
        std::fs::read(&notes).unwrap()
    );
    assert_eq!(
        sha256_file(&out.join("sbom.spdx.json")),
        m["layers"][0]["digest"].as_str().unwrap()
    );
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");

    // Delete: manifest and index entry gone; the image stays.
    ok(&[
        "evidence",
        "delete-referrer",
        &format!("oci:{}@{sbom_digest}", lay.display()),
    ]);
    assert_eq!(entries_with(&lay, &sbom_digest), 0);
    assert!(!blob.exists());
    let after = json(&ok(&[
        "evidence",
        "list-referrers",
        &image_ref,
        "--format",
        "json",
    ]));
    assert!(after["referrers"].as_array().unwrap().is_empty());
    fails(
        &[
            "evidence",
            "pull-referrer",
            &format!("oci:{}@{sbom_digest}", lay.display()),
            "--output",
            out.to_str().unwrap(),
        ],
        "not found",
    );
}

#[test]
fn idempotent_push_gives_same_digest_and_one_entry() {
    let t = tempfile::tempdir().unwrap();
    let lay = t.path().join("lay");
    make_image(&lay);
    let f = t.path().join("vex.json");
    std::fs::write(&f, br#"{"statements":[]}"#).unwrap();
    let args = [
        "evidence",
        "push-referrer",
        "--image",
        &format!("oci:{}:v1", lay.display()),
        "--artifact-type",
        "application/openvex+json",
        "--file",
        f.to_str().unwrap(),
        "--annotation",
        "k=v",
    ];
    let a = ok(&args);
    let b = ok(&args);
    assert_eq!(a, b);
    assert_eq!(entries_with(&lay, a.trim()), 1);
    // A different annotation gives a different referrer.
    let mut other = args.to_vec();
    let last = other.len() - 1;
    other[last] = "k=w";
    let c = ok(&other);
    assert_ne!(a, c);
    // image + 2 referrers + the subject's tag-schema index (sha256-<hex>)
    let idx = index_json(&lay);
    let manifests = idx["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 4);
    let fallback = manifests
        .iter()
        .find(|m| m["mediaType"] == "application/vnd.oci.image.index.v1+json")
        .expect("tag-schema index entry");
    let tag = fallback["annotations"]["org.opencontainers.image.ref.name"]
        .as_str()
        .unwrap();
    assert!(tag.starts_with("sha256-"), "{tag}");
    let digest = fallback["digest"]
        .as_str()
        .unwrap()
        .strip_prefix("sha256:")
        .unwrap();
    let listed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lay.join("blobs/sha256").join(digest)).unwrap())
            .unwrap();
    let mut got: Vec<&str> = listed["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["digest"].as_str().unwrap())
        .collect();
    got.sort();
    let mut want = vec![a.trim(), c.trim()];
    want.sort();
    assert_eq!(got, want);
}

/// A layout with image `v1` and an evidence file `x.json`, for the bad-input
/// tests: each runs one bad command line and checks that it is refused with a
/// one-line exit-2 error and leaves the layout's index and blobs untouched.
struct BadInput {
    t: tempfile::TempDir,
    lay: std::path::PathBuf,
    image_ref: String,
    file: String,
}

impl BadInput {
    fn new() -> Self {
        let t = tempfile::tempdir().unwrap();
        let lay = t.path().join("lay");
        make_image(&lay);
        let image_ref = format!("oci:{}:v1", lay.display());
        let f = t.path().join("x.json");
        std::fs::write(&f, b"{}").unwrap();
        let file = f.to_str().unwrap().to_string();
        BadInput {
            t,
            lay,
            image_ref,
            file,
        }
    }

    fn path(&self, name: &str) -> String {
        self.t.path().join(name).to_str().unwrap().to_string()
    }

    fn refused(&self, args: &[&str], needle: &str) {
        let before = std::fs::read(self.lay.join("index.json")).unwrap();
        let blobs_before = std::fs::read_dir(self.lay.join("blobs/sha256"))
            .unwrap()
            .count();
        fails(args, needle);
        assert_eq!(std::fs::read(self.lay.join("index.json")).unwrap(), before);
        assert_eq!(
            std::fs::read_dir(self.lay.join("blobs/sha256"))
                .unwrap()
                .count(),
            blobs_before
        );
    }
}

#[test]
fn push_of_a_missing_evidence_file_is_refused() {
    let b = BadInput::new();
    let missing = b.path("missing.json");
    b.refused(
        &[
            "evidence",
            "push-referrer",
            "--image",
            &b.image_ref,
            "--artifact-type",
            "a/b",
            "--file",
            &missing,
        ],
        "missing.json",
    );
}

#[test]
fn push_to_a_missing_tag_is_refused() {
    let b = BadInput::new();
    b.refused(
        &[
            "evidence",
            "push-referrer",
            "--image",
            &format!("oci:{}:nope", b.lay.display()),
            "--artifact-type",
            "a/b",
            "--file",
            &b.file,
        ],
        "nope",
    );
}

#[test]
fn push_to_a_missing_layout_is_refused_and_creates_nothing() {
    let b = BadInput::new();
    let nolayout = b.t.path().join("nolayout");
    b.refused(
        &[
            "evidence",
            "push-referrer",
            "--image",
            &format!("oci:{}:v1", nolayout.display()),
            "--artifact-type",
            "a/b",
            "--file",
            &b.file,
        ],
        "nolayout",
    );
    assert!(
        !nolayout.exists(),
        "a read of a missing layout must not create it"
    );
}

#[test]
fn list_of_a_missing_tag_is_refused() {
    let b = BadInput::new();
    b.refused(
        &[
            "evidence",
            "list-referrers",
            &format!("oci:{}:nope", b.lay.display()),
        ],
        "nope",
    );
}

#[test]
fn annotation_without_a_value_is_refused() {
    let b = BadInput::new();
    b.refused(
        &[
            "evidence",
            "push-referrer",
            "--image",
            &b.image_ref,
            "--artifact-type",
            "a/b",
            "--file",
            &b.file,
            "--annotation",
            "novalue",
        ],
        "KEY=VALUE",
    );
}

#[test]
fn artifact_type_that_is_not_a_media_type_is_refused() {
    let b = BadInput::new();
    b.refused(
        &[
            "evidence",
            "push-referrer",
            "--image",
            &b.image_ref,
            "--artifact-type",
            "notatype",
            "--file",
            &b.file,
        ],
        "notatype",
    );
}

#[test]
fn pull_by_tag_instead_of_digest_is_refused() {
    let b = BadInput::new();
    let out = b.path("o");
    b.refused(
        &["evidence", "pull-referrer", &b.image_ref, "--output", &out],
        "digest",
    );
}

/// Pushes a hand-made referrer manifest with the given layers (blobs written too).
fn push_raw_referrer(
    lay: &Path,
    subject: &Descriptor,
    layers: Vec<(Vec<u8>, Option<&str>)>,
) -> Descriptor {
    rt().block_on(async {
        let l = OciLayout::open(lay).unwrap();
        let mut descs = Vec::new();
        for (bytes, title) in layers {
            let mut d = Descriptor::for_bytes("text/plain", &bytes);
            if let Some(t) = title {
                d.annotations.insert(annotations::TITLE.into(), t.into());
            }
            l.push_blob(&d, BlobSource::Bytes(&bytes), &NoProgress)
                .await
                .unwrap();
            descs.push(d);
        }
        let empty = Descriptor::for_bytes(media_types::OCI_EMPTY, media_types::EMPTY_JSON);
        l.push_blob(
            &empty,
            BlobSource::Bytes(media_types::EMPTY_JSON),
            &NoProgress,
        )
        .await
        .unwrap();
        let m = ImageManifest {
            schema_version: 2,
            media_type: Some(media_types::OCI_MANIFEST.into()),
            artifact_type: Some("application/x.test".into()),
            config: empty,
            layers: descs,
            subject: Some(Descriptor::new(
                &subject.media_type,
                subject.digest.clone(),
                subject.size,
            )),
            annotations: BTreeMap::new(),
        };
        l.push_manifest(media_types::OCI_MANIFEST, &m.to_json_bytes(), None)
            .await
            .unwrap()
    })
}

#[test]
fn hostile_titles_and_corrupt_blobs_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let lay = t.path().join("lay");
    let img = make_image(&lay);
    let out = t.path().join("sub").join("out");
    for title in ["../escape.txt", "/tmp/abs.txt", "a/b.txt", ""] {
        let d = push_raw_referrer(
            &lay,
            &img,
            vec![(format!("x{title}").into_bytes(), Some(title))],
        );
        fails(
            &[
                "evidence",
                "pull-referrer",
                &format!("oci:{}@{}", lay.display(), d.digest),
                "--output",
                out.to_str().unwrap(),
            ],
            "title",
        );
    }
    assert!(!t.path().join("sub").join("escape.txt").exists());
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().count() == 0);
}

#[test]
fn layers_with_the_same_title_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let lay = t.path().join("lay");
    let img = make_image(&lay);
    let out = t.path().join("sub").join("out");
    // Two layers with the same title.
    let d = push_raw_referrer(
        &lay,
        &img,
        vec![
            (b"one".to_vec(), Some("same.txt")),
            (b"two".to_vec(), Some("same.txt")),
        ],
    );
    fails(
        &[
            "evidence",
            "pull-referrer",
            &format!("oci:{}@{}", lay.display(), d.digest),
            "--output",
            out.to_str().unwrap(),
        ],
        "same.txt",
    );
}

#[test]
fn a_corrupted_layer_blob_is_refused_and_leaves_no_file() {
    let t = tempfile::tempdir().unwrap();
    let lay = t.path().join("lay");
    let img = make_image(&lay);
    // A corrupted layer blob: digest mismatch, no file (not even a partial one) left.
    let d = push_raw_referrer(
        &lay,
        &img,
        vec![
            (b"good content".to_vec(), Some("good.txt")),
            (b"bad content".to_vec(), Some("bad.txt")),
        ],
    );
    let bad = Digest::sha256_of(b"bad content");
    std::fs::write(lay.join("blobs/sha256").join(bad.hex()), b"BAD content").unwrap();
    let out2 = t.path().join("out2");
    fails(
        &[
            "evidence",
            "pull-referrer",
            &format!("oci:{}@{}", lay.display(), d.digest),
            "--output",
            out2.to_str().unwrap(),
        ],
        "mismatch",
    );
    let left: Vec<_> = std::fs::read_dir(&out2)
        .map(|r| r.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_malformed_referrer_manifest_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let lay = t.path().join("lay");
    make_image(&lay);
    let out2 = t.path().join("out2");
    // A malformed manifest.
    let junk = b"{not json";
    let jd = Digest::sha256_of(junk);
    std::fs::write(lay.join("blobs/sha256").join(jd.hex()), junk).unwrap();
    fails(
        &[
            "evidence",
            "pull-referrer",
            &format!("oci:{}@{jd}", lay.display()),
            "--output",
            out2.to_str().unwrap(),
        ],
        &jd.to_string(),
    );
}

#[test]
fn legacy_cosign_tags_are_listed_as_legacy() {
    let t = tempfile::tempdir().unwrap();
    let lay = t.path().join("lay");
    let img = make_image(&lay);
    // Tag the image manifest itself as a fake cosign .sig (any manifest will do).
    rt().block_on(async {
        let l = OciLayout::open(&lay).unwrap();
        l.tag(&img, &format!("sha256-{}.sig", img.digest.hex()))
            .unwrap();
    });
    let listed = json(&ok(&[
        "evidence",
        "list-referrers",
        &format!("oci:{}:v1", lay.display()),
        "--format",
        "json",
    ]));
    let r = &listed["referrers"][0];
    assert_eq!(r["legacy"], "sig");
    assert_eq!(r["tag"], format!("sha256-{}.sig", img.digest.hex()));
    let table = ok(&[
        "evidence",
        "list-referrers",
        &format!("oci:{}:v1", lay.display()),
    ]);
    assert!(table.contains("legacy-sig"), "{table}");
}

#[test]
fn repair_index_on_a_layout_says_there_is_nothing_to_repair() {
    let t = tempfile::tempdir().unwrap();
    let lay = t.path().join("lay");
    make_image(&lay);
    let r = json(&ok(&[
        "evidence",
        "repair-index",
        &format!("oci:{}:v1", lay.display()),
        "--output",
        "json",
    ]));
    assert_eq!(r["mode"], "layout");
    assert_eq!(r["changed"], false);
    let text = ok(&[
        "evidence",
        "repair-index",
        &format!("oci:{}:v1", lay.display()),
        "--dry-run",
    ]);
    assert!(text.contains("no referrers fallback index"), "{text}");
}

#[test]
fn skopeo_reads_the_layout_after_stella_writes_referrers() {
    let t = tempfile::tempdir().unwrap();
    let lay = t.path().join("lay");
    let img = make_image(&lay);
    let f = t.path().join("sbom.json");
    std::fs::write(&f, b"{}").unwrap();
    let image_ref = format!("oci:{}:v1", lay.display());
    let d = ok(&[
        "evidence",
        "push-referrer",
        "--image",
        &image_ref,
        "--artifact-type",
        "application/spdx+json",
        "--file",
        f.to_str().unwrap(),
    ]);

    let inspect = Command::new("skopeo")
        .args(["inspect", "--raw", &image_ref])
        .output()
        .expect("skopeo is required for this test");
    assert!(
        inspect.status.success(),
        "{}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    let on_disk = std::fs::read(lay.join("blobs/sha256").join(img.digest.hex())).unwrap();
    assert_eq!(inspect.stdout, on_disk);

    let other = t.path().join("copy");
    let copy = Command::new("skopeo")
        .args(["copy", &image_ref, &format!("oci:{}:v1", other.display())])
        .output()
        .unwrap();
    assert!(
        copy.status.success(),
        "{}",
        String::from_utf8_lossy(&copy.stderr)
    );
    // skopeo may re-encode the manifest; the copy must be a layout with v1 in it.
    let copied = Command::new("skopeo")
        .args(["inspect", "--raw", &format!("oci:{}:v1", other.display())])
        .output()
        .unwrap();
    assert!(
        copied.status.success(),
        "{}",
        String::from_utf8_lossy(&copied.stderr)
    );
    let v: Value = serde_json::from_slice(&copied.stdout).unwrap();
    assert_eq!(v["schemaVersion"], 2);
    // The referrer is still ours and still listed after skopeo read the layout.
    assert_eq!(entries_with(&lay, d.trim()), 1);
}

#[test]
fn concurrent_processes_do_not_lose_index_entries() {
    let t = tempfile::tempdir().unwrap();
    let lay = t.path().join("lay");
    make_image(&lay);
    let image_ref = format!("oci:{}:v1", lay.display());
    let children: Vec<_> = (0..8)
        .map(|i| {
            let f = t.path().join(format!("f{i}.json"));
            std::fs::write(&f, format!("{{\"i\":{i}}}")).unwrap();
            Command::new(env!("CARGO_BIN_EXE_stella"))
                .args([
                    "evidence",
                    "push-referrer",
                    "--image",
                    &image_ref,
                    "--artifact-type",
                    "application/x.t",
                    "--file",
                ])
                .arg(&f)
                .env("SOURCE_DATE_EPOCH", "1700000000")
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut digests = std::collections::BTreeSet::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success());
        digests.insert(String::from_utf8(out.stdout).unwrap().trim().to_string());
    }
    assert_eq!(digests.len(), 8);
    for d in &digests {
        assert_eq!(entries_with(&lay, d), 1, "{d}");
    }
    let listed = json(&ok(&[
        "evidence",
        "list-referrers",
        &image_ref,
        "--format",
        "json",
    ]));
    assert_eq!(listed["referrers"].as_array().unwrap().len(), 8);
}

#[test]
fn large_files_stream_through_push_and_pull() {
    let t = tempfile::tempdir().unwrap();
    let lay = t.path().join("lay");
    make_image(&lay);
    let big = t.path().join("big.bin");
    {
        use std::io::Write as _;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
        let chunk: Vec<u8> = (0..65_537u32)
            .map(|i| (i.wrapping_mul(7919) % 256) as u8)
            .collect();
        for _ in 0..400 {
            f.write_all(&chunk).unwrap(); // ~26 MB
        }
    }
    let d = ok(&[
        "--no-progress",
        "evidence",
        "push-referrer",
        "--image",
        &format!("oci:{}:v1", lay.display()),
        "--artifact-type",
        "application/x.big",
        "--file",
        big.to_str().unwrap(),
    ]);
    let out = t.path().join("out");
    ok(&[
        "evidence",
        "pull-referrer",
        &format!("oci:{}@{}", lay.display(), d.trim()),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(sha256_file(&out.join("big.bin")), sha256_file(&big));
    assert_eq!(
        std::fs::metadata(out.join("big.bin")).unwrap().len(),
        65_537 * 400
    );
}

/// The same commands against a real registry (distribution 2.8: the
/// referrers tag schema), the image copied there from a layout.
#[test]
fn evidence_commands_work_on_a_registry_too() {
    let registry = stella_testkit::DistributionRegistry::start_plain()
        .expect("docker-registry must be installed");
    let t = tempfile::tempdir().unwrap();
    let lay = t.path().join("lay");
    let img = make_image(&lay);
    let target = format!("{}/stella/app:v1", registry.host_port());
    rt().block_on(async {
        let src = OciLayout::open(&lay).unwrap();
        let stella_types::Reference::Registry(r) = stella_types::Reference::parse(&target).unwrap()
        else {
            panic!()
        };
        let client =
            stella_oci::registry::RegistryClient::new(stella_oci::registry::RegistryOptions {
                plain_http: true,
                ..Default::default()
            })
            .unwrap();
        let repo = client.repository(&r);
        stella_oci::copy::copy_graph(
            &src,
            &repo,
            &img,
            Some("v1"),
            &Default::default(),
            &NoProgress,
        )
        .await
        .unwrap();
    });
    let f = t.path().join("sbom.json");
    std::fs::write(&f, b"{\"x\":1}").unwrap();
    let pushed = json(&ok(&[
        "--plain-http",
        "evidence",
        "push-referrer",
        "--image",
        &target,
        "--artifact-type",
        "application/spdx+json",
        "--file",
        f.to_str().unwrap(),
        "--output",
        "json",
    ]));
    assert_eq!(pushed["mode"], "tag-schema");
    assert_eq!(pushed["subject"], img.digest.to_string());
    let d = pushed["digest"].as_str().unwrap().to_string();
    let listed = json(&ok(&[
        "--plain-http",
        "evidence",
        "list-referrers",
        &target,
        "--format",
        "json",
    ]));
    assert_eq!(listed["referrers"][0]["digest"], d.as_str());
    assert_eq!(listed["mode"], "tag-schema");
    let out = t.path().join("out");
    let pinned = format!("{}/stella/app@{d}", registry.host_port());
    ok(&[
        "--plain-http",
        "evidence",
        "pull-referrer",
        &pinned,
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(out.join("sbom.json")).unwrap(), b"{\"x\":1}");
    let repair = json(&ok(&[
        "--plain-http",
        "evidence",
        "repair-index",
        &target,
        "--dry-run",
        "--output",
        "json",
    ]));
    assert_eq!(repair["changed"], false, "{repair}");
    ok(&["--plain-http", "evidence", "delete-referrer", &pinned]);
    let listed = json(&ok(&[
        "--plain-http",
        "evidence",
        "list-referrers",
        &target,
        "--format",
        "json",
    ]));
    assert!(
        listed["referrers"].as_array().unwrap().is_empty(),
        "{listed}"
    );
    fails(
        &[
            "--plain-http",
            "evidence",
            "list-referrers",
            &format!("{}/stella/app:nope", registry.host_port()),
        ],
        "nope",
    );
}

fn skopeo(args: &[&str]) -> Vec<u8> {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo must be installed");
    assert!(
        out.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Interop with skopeo as an independent client, both directions:
/// a layout written by stella (image + referrers + the subject's tag-schema
/// index) is copied into a real registry by `skopeo copy oci:…`, and stella
/// then lists the referrers there; skopeo 1.9 drops `artifactType` from the
/// index it rewrites, which `repair-index` mends. An artifact pushed by
/// stella reads back through `skopeo inspect --raw` with exactly the bytes
/// of its digest (checked with sha256 of skopeo's output, not stella's).
#[test]
fn skopeo_copies_a_stella_layout_into_a_registry_and_stella_lists_it() {
    let registry = stella_testkit::DistributionRegistry::start_plain()
        .expect("docker-registry must be installed");
    let t = tempfile::tempdir().unwrap();
    let lay = t.path().join("lay");
    let img = make_image(&lay);
    let src = format!("oci:{}:v1", lay.display());
    let mut pushed = Vec::new();
    for (name, at) in [
        ("sbom.json", "application/vnd.cyclonedx+json"),
        ("vex.json", "application/openvex+json"),
    ] {
        let f = t.path().join(name);
        std::fs::write(&f, format!("{{\"doc\":\"{name}\"}}")).unwrap();
        let out = ok(&[
            "evidence",
            "push-referrer",
            "--image",
            &src,
            "--artifact-type",
            at,
            "--file",
            f.to_str().unwrap(),
        ]);
        pushed.push((out.trim().to_string(), at));
    }
    let host = registry.host_port();
    let tag = img.digest.referrers_tag();
    skopeo(&[
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &src,
        &format!("docker://{host}/app:v1"),
    ]);
    skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:{tag}", lay.display()),
        &format!("docker://{host}/app:{tag}"),
    ]);

    let target = format!("{host}/app:v1");
    let listed = json(&ok(&[
        "--plain-http",
        "evidence",
        "list-referrers",
        &target,
        "--format",
        "json",
    ]));
    let digests: Vec<&str> = listed["referrers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["digest"].as_str().unwrap())
        .collect();
    for (d, _) in &pushed {
        assert!(digests.contains(&d.as_str()), "{d} not listed in {listed}");
    }
    // skopeo rewrote the index without artifactType; repair puts it back.
    ok(&["--plain-http", "evidence", "repair-index", &target]);
    let listed = json(&ok(&[
        "--plain-http",
        "evidence",
        "list-referrers",
        &target,
        "--format",
        "json",
    ]));
    for (d, at) in &pushed {
        let entry = listed["referrers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["digest"] == d.as_str())
            .unwrap_or_else(|| panic!("{d} missing after repair: {listed}"));
        assert_eq!(entry["artifactType"], *at, "{listed}");
    }

    // stella -> registry -> skopeo: byte-identical manifest.
    let f = t.path().join("scan.json");
    std::fs::write(&f, b"{\"findings\":[]}").unwrap();
    let out = json(&ok(&[
        "--plain-http",
        "evidence",
        "push-referrer",
        "--image",
        &target,
        "--artifact-type",
        "application/vnd.example.scan+json",
        "--file",
        f.to_str().unwrap(),
        "--output",
        "json",
    ]));
    let digest = out["digest"].as_str().unwrap();
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{host}/app@{digest}"),
    ]);
    assert_eq!(Digest::sha256_of(&raw).to_string(), digest);
    assert_eq!(raw.len() as u64, out["size"].as_u64().unwrap());
}
