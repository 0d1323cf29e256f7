//! End-to-end tests of the library over an in-memory store: deterministic
//! export, verification, import idempotency, a corpus of hostile tars, and
//! third-party tools (tar, sha256sum, skopeo) reading what we write.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::Command;

use stella_oci::store::*;
use stella_types::media_types::{
    DSSE_ENVELOPE, EMPTY_JSON, OCI_CONFIG, OCI_EMPTY, OCI_LAYER_TAR, OCI_MANIFEST,
};
use stella_types::{Descriptor, Digest, ImageManifest};
use time::OffsetDateTime;

use crate::error::codes;
use crate::format::*;
use crate::tarball::{Compression, ReadLimits, WriteKind, padding, ustar_header};
use crate::verify::*;
use crate::*;
use stella_testkit::mem_store::MemStore;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A tiny but real image (config + one tar layer) so skopeo can copy it.
async fn push_image(s: &MemStore) -> Descriptor {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["DIFF"]}}"#
            .to_vec();
    // A one-file tar layer.
    let mut layer = Vec::new();
    layer.extend_from_slice(&ustar_header("hello.txt", 6, 0, WriteKind::File).unwrap());
    layer.extend_from_slice(b"hello\n");
    layer.extend(vec![0u8; padding(6) + 1024]);
    let diff = Digest::sha256_of(&layer);
    let config = String::from_utf8(config)
        .unwrap()
        .replace("DIFF", &diff.to_string())
        .into_bytes();
    let cfg = Descriptor::for_bytes(OCI_CONFIG, &config);
    let lay = Descriptor::for_bytes(OCI_LAYER_TAR, &layer);
    s.push_blob(&cfg, BlobSource::Bytes(&config), &NoProgress)
        .await
        .unwrap();
    s.push_blob(&lay, BlobSource::Bytes(&layer), &NoProgress)
        .await
        .unwrap();
    let m = ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.into()),
        artifact_type: None,
        config: cfg,
        layers: vec![lay],
        subject: None,
        annotations: BTreeMap::new(),
    };
    s.push_manifest(OCI_MANIFEST, &m.to_json_bytes(), Some("v1"))
        .await
        .unwrap()
}

async fn push_referrer(
    s: &MemStore,
    subject: &Descriptor,
    artifact_type: &str,
    layer_mt: &str,
    content: &[u8],
) -> Descriptor {
    let empty = Descriptor::new(OCI_EMPTY, Digest::sha256_of(EMPTY_JSON), 2);
    s.push_blob(&empty, BlobSource::Bytes(EMPTY_JSON), &NoProgress)
        .await
        .unwrap();
    let layer = Descriptor::for_bytes(layer_mt, content);
    s.push_blob(&layer, BlobSource::Bytes(content), &NoProgress)
        .await
        .unwrap();
    let mut ann = BTreeMap::new();
    ann.insert(
        "org.opencontainers.image.created".to_string(),
        "2024-05-01T00:00:00Z".to_string(),
    );
    let m = ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.into()),
        artifact_type: Some(artifact_type.into()),
        config: empty,
        layers: vec![layer],
        subject: Some(subject.clone()),
        annotations: ann,
    };
    let mut d = s
        .push_manifest(OCI_MANIFEST, &m.to_json_bytes(), None)
        .await
        .unwrap();
    d.artifact_type = Some(artifact_type.into());
    s.add_referrer(subject, &d).await.unwrap();
    d
}

/// A DSSE envelope our fake verifier understands: payload = statement JSON, sig = "good" or anything else.
fn envelope(subject: &Digest, predicate_type: &str, good: bool) -> Vec<u8> {
    use base64::Engine as _;
    let stmt = serde_json::json!({"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"img","digest":{"sha256":subject.hex()}}],"predicateType":predicate_type,"predicate":{}});
    let b64 = base64::engine::general_purpose::STANDARD;
    serde_json::to_vec(&serde_json::json!({"payloadType":"application/vnd.in-toto+json","payload":b64.encode(stmt.to_string()),"signatures":[{"keyid":"k","sig":b64.encode(if good {"good"} else {"bad"})}]})).unwrap()
}

struct FakeAttest;
impl AttestationVerifier for FakeAttest {
    fn verify(&self, bytes: &[u8], _mt: &str, subject: &Digest) -> AttestationOutcome {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        let stmt: serde_json::Value =
            serde_json::from_slice(&b64.decode(v["payload"].as_str().unwrap()).unwrap()).unwrap();
        let pt = stmt["predicateType"].as_str().map(str::to_string);
        let sig = b64
            .decode(v["signatures"][0]["sig"].as_str().unwrap())
            .unwrap();
        if sig != b"good" {
            return AttestationOutcome {
                verified: false,
                predicate_type: pt,
                signer: None,
                reason: "bad signature".into(),
                tlog_anchors: Vec::new(),
            };
        }
        if stmt["subject"][0]["digest"]["sha256"].as_str() != Some(subject.hex()) {
            return AttestationOutcome {
                verified: false,
                predicate_type: pt,
                signer: None,
                reason: "subject mismatch".into(),
                tlog_anchors: Vec::new(),
            };
        }
        AttestationOutcome {
            verified: true,
            predicate_type: pt,
            signer: Some("k".into()),
            reason: "ok".into(),
            tlog_anchors: Vec::new(),
        }
    }
}

struct FakeKey(&'static str);
impl ManifestSigner for FakeKey {
    fn key_id(&self) -> String {
        self.0.into()
    }
    fn sign(&self, m: &[u8]) -> Result<Vec<u8>, String> {
        let mut v = self.0.as_bytes().to_vec();
        v.extend_from_slice(m);
        Ok(Digest::sha256_of(&v).hex().as_bytes().to_vec())
    }
}
impl ManifestSignatureVerifier for FakeKey {
    fn has_keys(&self) -> bool {
        true
    }
    fn verify(&self, _k: &str, m: &[u8], s: &[u8]) -> Result<String, String> {
        if self.sign(m)? == s {
            Ok(self.0.into())
        } else {
            Err("signature does not verify with key".into())
        }
    }
}

struct Fixture {
    store: MemStore,
    image: Descriptor,
    sbom: Descriptor,
    att: Descriptor,
}

async fn fixture(bad_attestation: bool) -> Fixture {
    let store = MemStore::default();
    let image = push_image(&store).await;
    let sbom = push_referrer(
        &store,
        &image,
        "application/spdx+json",
        "application/spdx+json",
        br#"{"spdxVersion":"SPDX-2.3"}"#,
    )
    .await;
    let _vex = push_referrer(
        &store,
        &image,
        "application/openvex+json",
        "application/openvex+json",
        br#"{"@context":"openvex"}"#,
    )
    .await;
    let env = envelope(
        &image.digest,
        "https://slsa.dev/provenance/v1",
        !bad_attestation,
    );
    let att = push_referrer(&store, &image, DSSE_ENVELOPE, DSSE_ENVELOPE, &env).await;
    // A signature-like referrer of the SBOM (depth 2).
    let _sig = push_referrer(
        &store,
        &sbom,
        "application/vnd.example.sig",
        "text/plain",
        b"sig of sbom",
    )
    .await;
    Fixture {
        store,
        image,
        sbom,
        att,
    }
}

fn options(include_dsse: bool, include_image: bool) -> ExportOptions {
    ExportOptions {
        selection: Selection {
            include_dsse,
            include_image,
            ..Selection::default()
        },
        tag: Some("v1".into()),
        ..ExportOptions::default()
    }
}

async fn export_bytes(
    s: &MemStore,
    subject: &Descriptor,
    opts: &ExportOptions,
    c: Compression,
    signer: Option<&dyn ManifestSigner>,
) -> Vec<u8> {
    let (plan, _) = plan_export(s, subject, opts).await.unwrap();
    let (out, _) = write_bundle(s, &plan, signer, c, Vec::new()).await.unwrap();
    out
}

/// Verifies `b` twice: from memory (decoded on this thread) and from a
/// file (`open_path`: gzip and zstd decoded on their own thread); both
/// must come to the same result.
fn verify_bytes(b: Vec<u8>, opts: &VerifyOptions<'_>) -> Result<VerifyReport, BundleError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bundle");
    std::fs::write(&path, &b).unwrap();
    let from_file = reader::BundleReader::open_path(&path, opts.limits)
        .and_then(|mut r| verify_open(&mut r, opts));
    let in_memory = verify_bundle(std::io::Cursor::new(b), opts);
    match (&in_memory, &from_file) {
        (Ok(a), Ok(b)) => assert_eq!(
            serde_json::to_value(a).unwrap(),
            serde_json::to_value(b).unwrap()
        ),
        (Err(a), Err(b)) => assert_eq!(a.code(), b.code(), "{a} / {b}"),
        (a, b) => panic!("in memory: {a:?}, from a file: {b:?}"),
    }
    in_memory
}

// ------------------------------------------------------------ tests

#[test]
fn export_is_deterministic_for_every_compression() {
    block_on(async {
        let f = fixture(false).await;
        for c in [Compression::Gzip, Compression::Zstd, Compression::None] {
            let a = export_bytes(&f.store, &f.image, &options(true, true), c, None).await;
            let b = export_bytes(&f.store, &f.image, &options(true, true), c, None).await;
            assert_eq!(a, b, "{c:?}");
            let r = verify_bytes(a, &VerifyOptions::default()).unwrap();
            assert_eq!(r.compression, c.as_str());
        }
        // gzip header: mtime 0, no file name flag.
        let g = export_bytes(
            &f.store,
            &f.image,
            &options(true, true),
            Compression::Gzip,
            None,
        )
        .await;
        assert_eq!(&g[..4], &[0x1f, 0x8b, 8, 0]);
        assert_eq!(&g[4..8], &[0, 0, 0, 0]);
    });
}

#[test]
fn created_time_changes_only_the_created_field_and_mtimes() {
    block_on(async {
        let f = fixture(false).await;
        let mut o1 = options(false, false);
        o1.created = Some(OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap());
        let mut o2 = o1.clone();
        o2.created = Some(OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap());
        let a = export_bytes(&f.store, &f.image, &o1, Compression::None, None).await;
        let b = export_bytes(&f.store, &f.image, &o2, Compression::None, None).await;
        assert_ne!(a, b);
        let ra = BundleReader::open(std::io::Cursor::new(a), ReadLimits::default()).unwrap();
        let rb = BundleReader::open(std::io::Cursor::new(b), ReadLimits::default()).unwrap();
        assert_eq!(ra.manifest().created, "2023-11-14T22:13:20Z");
        assert_eq!(rb.manifest().created, "2027-01-15T08:00:00Z");
        let mut ma = ra.manifest().clone();
        ma.created = rb.manifest().created.clone();
        assert_eq!(&ma, rb.manifest());
        // Without SOURCE_DATE_EPOCH: newest created annotation in the graph.
        let c = export_bytes(
            &f.store,
            &f.image,
            &options(false, false),
            Compression::None,
            None,
        )
        .await;
        let rc = BundleReader::open(std::io::Cursor::new(c), ReadLimits::default()).unwrap();
        assert_eq!(rc.manifest().created, "2024-05-01T00:00:00Z");
    });
}

#[test]
fn selection_rules_and_verification() {
    block_on(async {
        let f = fixture(false).await;
        // Without --include-dsse the attestation is left out.
        let (plan, excluded) = plan_export(&f.store, &f.image, &options(false, false))
            .await
            .unwrap();
        assert!(plan.manifest.artifact(&f.att.digest).is_none());
        assert!(
            excluded
                .iter()
                .any(|e| e.digest == f.att.digest.to_string())
        );
        assert!(plan.manifest.artifact(&f.sbom.digest).is_some());
        // Depth 2 referrer (of the SBOM) is in.
        assert_eq!(
            plan.manifest
                .artifacts
                .iter()
                .filter(|a| a.role == Role::Referrer)
                .count(),
            3
        );

        let bytes = export_bytes(
            &f.store,
            &f.image,
            &options(true, false),
            Compression::Zstd,
            None,
        )
        .await;
        let v = FakeAttest;
        let opts = VerifyOptions {
            attestations: Some(&v),
            require: vec![
                "application/spdx+json".into(),
                "https://slsa.dev/provenance/v1".into(),
            ],
            ..VerifyOptions::default()
        };
        let r = verify_bytes(bytes.clone(), &opts).unwrap();
        assert!(r.verified, "{:?}", r.failures);
        let att = r
            .artifacts
            .iter()
            .find(|a| a.digest == f.att.digest)
            .unwrap();
        assert_eq!(att.status, Status::Verified);
        assert_eq!(
            att.predicate_type.as_deref(),
            Some("https://slsa.dev/provenance/v1")
        );
        assert!(!r.checks.iter().any(|c| c.name == "rekor-checkpoint"));

        // A pinned checkpoint with no inclusion proof to anchor fails closed,
        // unless unanchored proofs are explicitly accepted.
        let pinned = VerifyOptions {
            attestations: Some(&v),
            rekor_checkpoint_given: true,
            ..VerifyOptions::default()
        };
        let r = verify_bytes(bytes.clone(), &pinned).unwrap();
        assert!(!r.verified);
        assert!(r.has_failure(codes::UNANCHORED), "{:?}", r.failures);
        assert!(
            r.checks
                .iter()
                .any(|c| c.name == "rekor-checkpoint" && c.status == Status::Absent)
        );
        let accepted = VerifyOptions {
            allow_unanchored_proofs: true,
            ..pinned
        };
        let r = verify_bytes(bytes.clone(), &accepted).unwrap();
        assert!(r.verified, "{:?}", r.failures);

        // A missing requirement fails.
        let opts2 = VerifyOptions {
            attestations: Some(&v),
            require: vec!["application/vnd.cyclonedx+json".into()],
            ..VerifyOptions::default()
        };
        let r = verify_bytes(bytes, &opts2).unwrap();
        assert!(!r.verified);
        assert!(r.has_failure("requirement"));
    });
}

#[test]
fn bad_attestation_signature_fails_verification() {
    block_on(async {
        let f = fixture(true).await;
        let bytes = export_bytes(
            &f.store,
            &f.image,
            &options(true, false),
            Compression::Gzip,
            None,
        )
        .await;
        let v = FakeAttest;
        let r = verify_bytes(
            bytes,
            &VerifyOptions {
                attestations: Some(&v),
                ..VerifyOptions::default()
            },
        )
        .unwrap();
        assert!(!r.verified);
        let att = r
            .artifacts
            .iter()
            .find(|a| a.digest == f.att.digest)
            .unwrap();
        assert_eq!(att.status, Status::Failed);
        assert!(r.has_failure(codes::SIGNATURE));
    });
}

#[test]
fn bundle_manifest_signature() {
    block_on(async {
        let f = fixture(false).await;
        let key = FakeKey("k1");
        let bytes = export_bytes(
            &f.store,
            &f.image,
            &options(false, false),
            Compression::Gzip,
            Some(&key),
        )
        .await;
        let ok = verify_bytes(
            bytes.clone(),
            &VerifyOptions {
                manifest_signature: Some(&key),
                ..VerifyOptions::default()
            },
        )
        .unwrap();
        assert!(ok.verified, "{:?}", ok.failures);
        let other = FakeKey("k2");
        let bad = verify_bytes(
            bytes.clone(),
            &VerifyOptions {
                manifest_signature: Some(&other),
                ..VerifyOptions::default()
            },
        )
        .unwrap();
        assert!(!bad.verified && bad.has_failure(codes::SIGNATURE));
        let nokey = verify_bytes(bytes, &VerifyOptions::default()).unwrap();
        assert!(!nokey.verified && nokey.has_failure(codes::SIGNATURE));
    });
}

#[test]
fn multi_arch_index_children_and_their_referrers() {
    block_on(async {
        let s = MemStore::default();
        let amd = push_image(&s).await;
        let idx = stella_types::ImageIndex {
            manifests: vec![amd.clone()],
            ..stella_types::ImageIndex::empty()
        };
        let index = s
            .push_manifest(
                stella_types::media_types::OCI_INDEX,
                &idx.to_json_bytes(),
                Some("multi"),
            )
            .await
            .unwrap();
        let child_sbom = push_referrer(
            &s,
            &amd,
            "application/spdx+json",
            "application/spdx+json",
            b"{}x",
        )
        .await;
        let top_sbom = push_referrer(
            &s,
            &index,
            "application/spdx+json",
            "application/spdx+json",
            b"{}y",
        )
        .await;
        let (plan, _) = plan_export(&s, &index, &options(false, false))
            .await
            .unwrap();
        assert_eq!(
            plan.manifest.artifact(&amd.digest).unwrap().role,
            Role::ChildManifest
        );
        assert_eq!(
            plan.manifest
                .artifact(&child_sbom.digest)
                .unwrap()
                .refers_to
                .as_ref(),
            Some(&amd.digest)
        );
        assert!(plan.manifest.artifact(&top_sbom.digest).is_some());
        let (bytes, _) = write_bundle(&s, &plan, None, Compression::None, Vec::new())
            .await
            .unwrap();
        let r = verify_bytes(bytes, &VerifyOptions::default()).unwrap();
        assert!(r.verified, "{:?}", r.failures);
    });
}

#[test]
fn import_is_idempotent_and_round_trips_byte_identically() {
    block_on(async {
        let f = fixture(false).await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.tar.gz");
        let (plan, _) = plan_export(&f.store, &f.image, &options(true, true))
            .await
            .unwrap();
        write_bundle_to_path(&f.store, &plan, None, Compression::Gzip, &path, false)
            .await
            .unwrap();
        // Only the bundle is left in the directory (no temp files).
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let dst = MemStore::default();
        let r1 = import_bundle(&path, &dst, None, ReadLimits::default())
            .await
            .unwrap();
        assert!(r1.blobs_pushed > 0 && r1.manifests_pushed == 5, "{r1:?}");
        assert_eq!(r1.referrers_recorded, 4);
        let r2 = import_bundle(&path, &dst, None, ReadLimits::default())
            .await
            .unwrap();
        assert_eq!(
            (r2.blobs_pushed, r2.manifests_pushed, r2.bytes_pushed),
            (0, 0, 0),
            "{r2:?}"
        );
        assert_eq!(r2.blobs_skipped, r1.blobs_pushed);
        // Export from the imported store: identical bytes.
        let subject = dst.resolve_tag("v1").await.unwrap();
        assert_eq!(subject.digest, f.image.digest);
        let (plan2, _) = plan_export(&dst, &subject, &options(true, true))
            .await
            .unwrap();
        let path2 = dir.path().join("c.tar.gz");
        write_bundle_to_path(&dst, &plan2, None, Compression::Gzip, &path2, false)
            .await
            .unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            std::fs::read(&path2).unwrap()
        );

        // push_plan (--push-referrers) copies the same graph, idempotently.
        let dst2 = MemStore::default();
        let p1 = push_plan(&f.store, &dst2, &plan, Some("v1")).await.unwrap();
        assert_eq!(p1.manifests_pushed, 5);
        let p2 = push_plan(&f.store, &dst2, &plan, Some("v1")).await.unwrap();
        assert_eq!((p2.blobs_pushed, p2.manifests_pushed), (0, 0));
        assert_eq!(
            dst2.list_referrers(&f.image.digest, &[])
                .await
                .unwrap()
                .referrers
                .len(),
            3
        );
    });
}

#[test]
fn third_party_tools_read_the_bundle() {
    block_on(async {
        let f = fixture(false).await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.tar.gz");
        let (plan, _) = plan_export(&f.store, &f.image, &options(true, true))
            .await
            .unwrap();
        write_bundle_to_path(&f.store, &plan, None, Compression::Gzip, &path, false)
            .await
            .unwrap();
        let out = Command::new("tar").arg("-tzf").arg(&path).output().unwrap();
        assert!(out.status.success());
        let listing = String::from_utf8(out.stdout).unwrap();
        let names: Vec<&str> = listing.lines().collect();
        assert_eq!(
            &names[..5],
            &[
                MANIFEST_NAME,
                CHECKSUMS_NAME,
                OCI_LAYOUT_NAME,
                INDEX_NAME,
                "blobs/"
            ]
        );
        assert!(names.contains(&format!("blobs/sha256/{}", f.sbom.digest.hex()).as_str()));
        let x = dir.path().join("x");
        std::fs::create_dir(&x).unwrap();
        assert!(
            Command::new("tar")
                .arg("-xzf")
                .arg(&path)
                .arg("-C")
                .arg(&x)
                .status()
                .unwrap()
                .success()
        );
        let sums = Command::new("sha256sum")
            .arg("--strict")
            .arg("-c")
            .arg(CHECKSUMS_NAME)
            .current_dir(&x)
            .output()
            .unwrap();
        assert!(
            sums.status.success(),
            "{}",
            String::from_utf8_lossy(&sums.stderr)
        );
        // skopeo reads the extracted layout.
        let dst = dir.path().join("copy");
        let sk = Command::new("skopeo")
            .args(["copy", "--insecure-policy"])
            .arg(format!("oci:{}:v1", x.display()))
            .arg(format!("oci:{}:v1", dst.display()))
            .output()
            .unwrap();
        assert!(
            sk.status.success(),
            "skopeo: {}",
            String::from_utf8_lossy(&sk.stderr)
        );
        // zstd too.
        let zpath = dir.path().join("b.tar.zst");
        write_bundle_to_path(&f.store, &plan, None, Compression::Zstd, &zpath, false)
            .await
            .unwrap();
        let out = Command::new("tar")
            .arg("--zstd")
            .arg("-tf")
            .arg(&zpath)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

// ------------------------------------------------------------ hostile corpus

/// A valid plain bundle as a list of (path, data) entries, for mutation.
fn valid_entries() -> Vec<(String, u8, Vec<u8>)> {
    block_on(async {
        let f = fixture(false).await;
        let bytes = export_bytes(
            &f.store,
            &f.image,
            &options(false, false),
            Compression::None,
            None,
        )
        .await;
        let mut out = Vec::new();
        let mut ar = tar::Archive::new(&bytes[..]);
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().to_string();
            let t = e.header().entry_type().as_byte();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            out.push((path, t, data));
        }
        out
    })
}

/// Raw tar from entries; `lie` adds to the declared size of the entry with that index.
fn raw_tar(entries: &[(String, u8, Vec<u8>)], lie: Option<(usize, u64)>) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (path, t, data)) in entries.iter().enumerate() {
        let mut h = tar::Header::new_ustar();
        h.as_mut_bytes()[..path.len().min(100)]
            .copy_from_slice(&path.as_bytes()[..path.len().min(100)]);
        let size = data.len() as u64 + lie.filter(|l| l.0 == i).map(|l| l.1).unwrap_or(0);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::new(*t));
        if *t == b'2' || *t == b'1' {
            h.set_link_name("/etc/passwd").unwrap();
        }
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.extend(vec![0u8; padding(data.len() as u64)]);
    }
    out.extend(vec![0u8; 1024]);
    out
}

fn expect_unusable(bytes: Vec<u8>, code: &str) {
    match verify_bytes(bytes, &VerifyOptions::default()) {
        Err(e) => {
            assert_eq!(e.code(), code, "{e}");
            assert!(!e.is_verification_failure());
        }
        Ok(r) => panic!("expected unusable {code}, got report {:?}", r.failures),
    }
}

fn expect_failed(bytes: Vec<u8>, code: &str) {
    match verify_bytes(bytes, &VerifyOptions::default()) {
        Ok(r) => assert!(
            !r.verified && r.has_failure(code),
            "expected {code}: {:?}",
            r.failures
        ),
        Err(e) => panic!("expected verification failure {code}, got {e}"),
    }
}

#[test]
fn the_valid_corpus_base_verifies() {
    let e = valid_entries();
    let r = verify_bytes(raw_tar(&e, None), &VerifyOptions::default()).unwrap();
    assert!(r.verified, "{:?}", r.failures);
}

#[test]
fn hostile_paths_links_and_devices_are_unusable() {
    let base = valid_entries();
    let cases: Vec<(String, u8, &str)> = vec![
        ("../evil".into(), b'0', codes::PATH_TRAVERSAL),
        ("blobs/../../evil".into(), b'0', codes::PATH_TRAVERSAL),
        ("/etc/evil".into(), b'0', codes::ABSOLUTE_PATH),
        ("blobs/sha256/link".into(), b'2', codes::LINK),
        ("blobs/sha256/hard".into(), b'1', codes::LINK),
        ("blobs/sha256/dev".into(), b'3', codes::SPECIAL_FILE),
        ("blobs/sha256/fifo".into(), b'6', codes::SPECIAL_FILE),
        ("blobs/sha256/pax".into(), b'x', codes::UNSUPPORTED_ENTRY),
        ("notes.txt".into(), b'0', codes::UNEXPECTED_ENTRY),
    ];
    for (path, t, code) in cases {
        let mut e = base.clone();
        e.insert(6, (path, t, b"x".to_vec()));
        expect_unusable(raw_tar(&e, None), code);
        // Also as the very first entry.
        let mut e = base.clone();
        e.insert(0, (e[0].0.clone(), e[0].1, e[0].2.clone()));
        e[0].0 = "../first".into();
        expect_unusable(raw_tar(&e, None), codes::PATH_TRAVERSAL);
    }
}

#[test]
fn duplicates_lies_and_truncation_are_unusable() {
    let base = valid_entries();
    let last = base.len() - 1;
    let mut dup = base.clone();
    dup.push(base[last].clone());
    expect_unusable(raw_tar(&dup, None), codes::DUPLICATE_ENTRY);
    let mut dup_head = base.clone();
    dup_head.insert(1, base[0].clone());
    expect_unusable(raw_tar(&dup_head, None), codes::DUPLICATE_ENTRY);
    // Header claims more bytes than the archive holds.
    let lying = raw_tar(&base, Some((last, 100_000)));
    expect_unusable(lying, codes::TRUNCATED);
    // Cut in the middle.
    let full = raw_tar(&base, None);
    expect_unusable(full[..full.len() - 2048].to_vec(), codes::TRUNCATED);
    // Not a bundle at all.
    expect_unusable(b"hello world, not a tar".repeat(40), codes::NOT_A_BUNDLE);
}

/// A strict ratio cap (50:1 after 1 MiB) that an honest bundle of 16 MiB of zeros exceeds.
fn strict_ratio() -> ReadLimits {
    ReadLimits {
        max_expansion_ratio: 50,
        ratio_grace_bytes: 1024 * 1024,
        max_total_bytes: 1 << 40,
    }
}

/// A store holding an image and one referrer whose evidence is `zeros` zero bytes.
async fn compressible_fixture(zeros: usize) -> (MemStore, Descriptor) {
    let s = MemStore::default();
    let image = push_image(&s).await;
    push_referrer(
        &s,
        &image,
        "application/spdx+json",
        "application/spdx+json",
        &vec![0u8; zeros],
    )
    .await;
    (s, image)
}

/// Issue 10 §3: what export writes, verify and import read back, however
/// well it compresses (the bundle manifest bounds the size, not a ratio).
#[test]
fn compressible_evidence_exports_verifies_and_imports_under_a_strict_ratio() {
    block_on(async {
        let (s, image) = compressible_fixture(16 * 1024 * 1024).await;
        let dir = tempfile::tempdir().unwrap();
        for c in [Compression::Gzip, Compression::Zstd] {
            let path = dir.path().join(format!("b{}", c.extension()));
            let (plan, _) = plan_export(&s, &image, &options(false, false))
                .await
                .unwrap();
            write_bundle_to_path(&s, &plan, None, c, &path, false)
                .await
                .unwrap();
            let bytes = std::fs::read(&path).unwrap();
            assert!(bytes.len() < 1024 * 1024 / 2, "{c:?}: {}", bytes.len());
            let opts = VerifyOptions {
                limits: strict_ratio(),
                ..VerifyOptions::default()
            };
            let report = verify_bytes(bytes, &opts).unwrap();
            assert!(report.verified, "{c:?}: {:?}", report.failures);
            // Evidence only (no image in the bundle): the target has the image.
            let dst = MemStore::default();
            push_image(&dst).await;
            let r = import_bundle(&path, &dst, None, strict_ratio())
                .await
                .unwrap();
            assert_eq!(r.referrers_recorded, 1, "{c:?}");
        }
    });
}

/// Before the bundle manifest is known, the ratio cap still stops a bomb:
/// here a 30 MiB "bundle manifest" of spaces.
#[test]
fn a_bomb_before_the_bundle_manifest_is_stopped_by_the_ratio_cap() {
    let mut doc = vec![b' '; 30 * 1024 * 1024];
    doc.extend_from_slice(b"{}");
    let tar = raw_tar(&[(MANIFEST_NAME.to_string(), b'0', doc)], None);
    let gz = gzip(&tar);
    let err = verify_bytes(
        gz,
        &VerifyOptions {
            limits: strict_ratio(),
            ..VerifyOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.code(), codes::EXPANSION_RATIO, "{err}");
    assert!(!err.is_verification_failure());
}

/// A bundle manifest that declares more than the reader accepts is refused
/// at once, before any blob is read.
#[test]
fn a_declared_size_over_the_readers_cap_is_refused_on_open() {
    let tar = raw_tar(&valid_entries(), None);
    let limits = ReadLimits {
        max_total_bytes: tar.len() as u64 / 2,
        ..ReadLimits::default()
    };
    let err = match BundleReader::open(std::io::Cursor::new(tar), limits) {
        Err(e) => e,
        Ok(_) => panic!("opened a bundle declaring more than the cap"),
    };
    assert_eq!(err.code(), codes::TOO_LARGE, "{err}");
    assert!(err.to_string().contains("declares"), "{err}");
}

/// Export refuses, before writing, a bundle the reader would refuse: here
/// a layer that claims 2 TiB (over the 1 TiB archive cap).
#[test]
fn export_refuses_a_bundle_the_reader_would_refuse() {
    block_on(async {
        let s = MemStore::default();
        let image = push_image(&s).await;
        let (mut plan, _) = plan_export(&s, &image, &options(false, true))
            .await
            .unwrap();
        let layer = plan
            .manifest
            .artifacts
            .iter_mut()
            .find(|a| a.role == Role::Blob && a.media_type == OCI_LAYER_TAR)
            .unwrap();
        layer.size = 2 << 40;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.tar.gz");
        let err = write_bundle_to_path(&s, &plan, None, Compression::Gzip, &path, false)
            .await
            .unwrap_err();
        assert_eq!(err.code(), codes::INVALID_INPUT, "{err}");
        assert!(err.to_string().contains("would refuse"), "{err}");
        assert!(err.to_string().contains("cap"), "{err}");
        // Nothing written, not even a temporary file.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    });
}

/// An existing output file is kept unless the caller allows replacing it.
#[test]
fn export_does_not_replace_an_existing_file_unless_asked() {
    block_on(async {
        let f = fixture(false).await;
        let (plan, _) = plan_export(&f.store, &f.image, &options(false, false))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.tar.gz");
        std::fs::write(&path, b"precious").unwrap();
        let err = write_bundle_to_path(&f.store, &plan, None, Compression::Gzip, &path, false)
            .await
            .unwrap_err();
        assert_eq!(err.code(), codes::INVALID_INPUT, "{err}");
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"precious");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        write_bundle_to_path(&f.store, &plan, None, Compression::Gzip, &path, true)
            .await
            .unwrap();
        let report = verify_bytes(std::fs::read(&path).unwrap(), &VerifyOptions::default());
        assert!(report.unwrap().verified);
    });
}

/// A failing store leaves no `.stella-bundle-*.partial` behind; a stale
/// one (a killed export) is swept by the next export into the directory.
#[test]
fn a_failed_export_leaves_no_partial_file_and_stale_ones_are_swept() {
    block_on(async {
        let f = fixture(false).await;
        let (plan, _) = plan_export(&f.store, &f.image, &options(false, true))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join(".stella-bundle-killed.partial");
        std::fs::write(&stale, b"left by a killed export").unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 3600);
        std::fs::File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let fresh = dir.path().join(".stella-bundle-running.partial");
        std::fs::write(&fresh, b"another export, still running").unwrap();
        // A store that lost a blob the plan names.
        let layer = plan
            .manifest
            .artifacts
            .iter()
            .find(|a| a.media_type == OCI_LAYER_TAR)
            .unwrap()
            .digest
            .clone();
        f.store.blobs.lock().unwrap().remove(&layer);
        let path = dir.path().join("b.tar.gz");
        let err = write_bundle_to_path(&f.store, &plan, None, Compression::Gzip, &path, false)
            .await
            .unwrap_err();
        assert_eq!(err.code(), codes::STORE, "{err}");
        let left: BTreeSet<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            left,
            BTreeSet::from([".stella-bundle-running.partial".to_string()])
        );
    });
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn zstd_frame(bytes: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(bytes, 3).unwrap()
}

fn expect_trailing(bytes: Vec<u8>, what: &str) {
    match verify_bytes(bytes, &VerifyOptions::default()) {
        Err(e) => assert_eq!(e.code(), codes::TRAILING_DATA, "{what}: {e}"),
        Ok(r) => panic!("{what}: accepted (verified: {})", r.verified),
    }
}

/// Issue 10 §6: a bundle is exactly what its manifest lists. Nothing may
/// follow the tar end marker but zero padding to the 10240-byte record,
/// and nothing may follow the gzip member or zstd frame.
#[test]
fn data_after_the_end_of_the_archive_is_refused() {
    let entries = valid_entries();
    let tar = raw_tar(&entries, None);
    // What GNU tar writes: zero padding up to the record size is fine.
    let mut padded = tar.clone();
    padded.resize(padded.len().div_ceil(10240) * 10240, 0);
    assert!(padded.len() > tar.len());
    for ok in [padded.clone(), gzip(&padded), zstd_frame(&padded)] {
        let r = verify_bytes(ok, &VerifyOptions::default()).unwrap();
        assert!(r.verified, "{:?}", r.failures);
    }
    // An extra entry after the end marker (other tar readers may list it).
    let extra_data = b"unverified".to_vec();
    let d = Digest::sha256_of(&extra_data);
    let extra = raw_tar(
        &[(format!("blobs/sha256/{}", d.hex()), b'0', extra_data)],
        None,
    );
    let mut hidden = tar.clone();
    hidden.extend_from_slice(&extra);
    expect_trailing(hidden.clone(), "plain: entry after the end marker");
    expect_trailing(gzip(&hidden), "gzip: entry after the end marker");
    // Zeros beyond the record, and garbage within it.
    let mut zeros = padded.clone();
    zeros.extend(vec![0u8; 512]);
    expect_trailing(zeros, "plain: zeros beyond the record");
    let mut garbage = tar.clone();
    garbage.extend_from_slice(b"garbage");
    expect_trailing(garbage, "plain: garbage after the end marker");
    // A second gzip member, trailing garbage after the member.
    let mut two_members = gzip(&tar);
    two_members.extend(gzip(&extra));
    expect_trailing(two_members, "gzip: second member");
    let mut gz_garbage = gzip(&tar);
    gz_garbage.extend_from_slice(b"\0\0garbage");
    expect_trailing(gz_garbage, "gzip: trailing garbage");
    // A second zstd frame, trailing garbage after the frame.
    let mut two_frames = zstd_frame(&tar);
    two_frames.extend(zstd_frame(&extra));
    expect_trailing(two_frames, "zstd: second frame");
    let mut zst_garbage = zstd_frame(&tar);
    zst_garbage.extend_from_slice(b"garbage");
    expect_trailing(zst_garbage, "zstd: trailing garbage");
    // A gzip member without its trailer (CRC, size) is cut short, not accepted.
    let gz = gzip(&tar);
    let cut = gz[..gz.len() - 8].to_vec();
    let err = verify_bytes(cut, &VerifyOptions::default()).unwrap_err();
    assert!(!err.is_verification_failure(), "{err}");
}

/// Import reads through the same reader: it refuses trailing data too, and
/// pushes nothing.
#[test]
fn import_refuses_trailing_data_and_pushes_nothing() {
    let mut two_members = gzip(&raw_tar(&valid_entries(), None));
    two_members.extend(gzip(b"more"));
    block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.tar.gz");
        std::fs::write(&path, &two_members).unwrap();
        let dst = MemStore::default();
        let err = import_bundle(&path, &dst, None, ReadLimits::default())
            .await
            .unwrap_err();
        assert_eq!(err.code(), codes::TRAILING_DATA, "{err}");
        assert!(dst.manifests.lock().unwrap().is_empty());
        assert!(dst.blobs.lock().unwrap().is_empty());
    });
}

#[test]
fn gzip_bomb_is_stopped_by_the_total_cap() {
    // A bundle whose tar holds far more than its manifest declares hits the total cap.
    let base = valid_entries();
    let mut e = base.clone();
    let blob_idx = e
        .iter()
        .position(|x| x.0.starts_with("blobs/sha256/") && x.1 == b'0')
        .unwrap();
    e[blob_idx].2 = vec![0u8; 8 * 1024 * 1024];
    let tar = raw_tar(&e, None);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let err = verify_bundle(std::io::Cursor::new(gz), &VerifyOptions::default()).unwrap_err();
    assert_eq!(err.code(), codes::TOO_LARGE, "{err}");
}

#[test]
fn missing_extra_and_wrong_blobs_fail_verification() {
    let base = valid_entries();
    let blob_idx = base
        .iter()
        .position(|x| x.0.starts_with("blobs/sha256/") && x.1 == b'0')
        .unwrap();
    let mut missing = base.clone();
    missing.remove(blob_idx);
    expect_failed(raw_tar(&missing, None), codes::MISSING_BLOB);

    let mut extra = base.clone();
    let d = Digest::sha256_of(b"extra");
    extra.push((format!("blobs/sha256/{}", d.hex()), b'0', b"extra".to_vec()));
    expect_failed(raw_tar(&extra, None), codes::EXTRA_BLOB);

    let mut wrong = base.clone();
    let mut data = wrong[blob_idx].2.clone();
    data[0] ^= 1;
    wrong[blob_idx].2 = data;
    expect_failed(raw_tar(&wrong, None), codes::DIGEST_MISMATCH);

    let mut short = base.clone();
    short[blob_idx].2.push(b' ');
    expect_failed(raw_tar(&short, None), codes::SIZE_MISMATCH);

    // Checksum list that disagrees with the layout.
    let sums_idx = base.iter().position(|x| x.0 == CHECKSUMS_NAME).unwrap();
    let mut sums = base.clone();
    let text = String::from_utf8(sums[sums_idx].2.clone()).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.remove(0);
    sums[sums_idx].2 = (lines.join("\n") + "\n").into_bytes();
    expect_failed(raw_tar(&sums, None), codes::CHECKSUM_LIST);
    let mut sums2 = base.clone();
    sums2[sums_idx].2 = text
        .replacen(|c: char| c.is_ascii_hexdigit(), "0", 1)
        .into_bytes();
    if sums2[sums_idx].2 == base[sums_idx].2 {
        sums2[sums_idx].2 = text.replacen('0', "1", 1).into_bytes();
    }
    expect_failed(raw_tar(&sums2, None), codes::CHECKSUM_LIST);
}

/// A sink that records whether any write ran on a given thread.
struct ThreadWatch {
    runtime_thread: std::thread::ThreadId,
    on_runtime: std::sync::Arc<std::sync::atomic::AtomicBool>,
    written: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Write for ThreadWatch {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use std::sync::atomic::Ordering;
        if std::thread::current().id() == self.runtime_thread {
            self.on_runtime.store(true, Ordering::SeqCst);
        }
        self.written.fetch_add(buf.len(), Ordering::SeqCst);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Issue 9 §3: compression and writing never run on the async runtime's
/// thread (here a current-thread runtime on the test's own thread).
#[test]
fn the_tar_writer_and_compressor_run_off_the_async_runtime() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let on_runtime = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let sink = ThreadWatch {
        runtime_thread: std::thread::current().id(),
        on_runtime: on_runtime.clone(),
        written: written.clone(),
    };
    block_on(async {
        let f = fixture(false).await;
        let (plan, _) = plan_export(&f.store, &f.image, &options(true, true))
            .await
            .unwrap();
        write_bundle(&f.store, &plan, None, Compression::Gzip, sink)
            .await
            .unwrap();
    });
    assert!(written.load(Ordering::SeqCst) > 0);
    assert!(
        !on_runtime.load(Ordering::SeqCst),
        "bundle bytes were compressed and written on the runtime thread"
    );
}
