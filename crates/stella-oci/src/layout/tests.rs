//! Unit tests for the layout store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use stella_types::media_types::{self, annotations};
use stella_types::{Descriptor, Digest, ImageManifest};

use super::*;
use crate::artifact::{ArtifactSpec, LayerSource, push_referrer};
use crate::referrers::walk_referrers;

/// Writes a tiny image (config + one layer + manifest) tagged `tag`.
pub(crate) async fn make_image(l: &OciLayout, tag: &str, seed: &str) -> Descriptor {
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"seed":"{seed}"}}"#
    );
    let cd = Descriptor::for_bytes(media_types::OCI_CONFIG, config.as_bytes());
    l.push_blob(&cd, BlobSource::Bytes(config.as_bytes()), &NoProgress)
        .await
        .unwrap();
    let layer = format!("layer-{seed}");
    let ld = Descriptor::for_bytes(media_types::OCI_LAYER_TAR, layer.as_bytes());
    l.push_blob(&ld, BlobSource::Bytes(layer.as_bytes()), &NoProgress)
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
    l.push_manifest(media_types::OCI_MANIFEST, &m.to_json_bytes(), Some(tag))
        .await
        .unwrap()
}

fn spec(at: &str, name: &str, body: &[u8]) -> ArtifactSpec {
    ArtifactSpec {
        artifact_type: at.into(),
        layers: vec![LayerSource::Bytes {
            bytes: body.to_vec(),
            media_type: "application/json".into(),
            title: Some(name.into()),
        }],
        annotations: BTreeMap::from([(
            annotations::CREATED.to_string(),
            "2024-01-01T00:00:00Z".to_string(),
        )]),
    }
}

#[tokio::test]
async fn creates_a_valid_layout() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lay");
    let l = OciLayout::open_or_create(&root).unwrap();
    assert_eq!(
        std::fs::read(root.join("oci-layout")).unwrap(),
        OCI_LAYOUT_FILE
    );
    assert!(l.read_index().unwrap().manifests.is_empty());
    // Re-opening an existing layout works; a non-layout non-empty dir does not.
    OciLayout::open(&root).unwrap();
    std::fs::write(dir.path().join("junk"), b"x").unwrap();
    assert!(OciLayout::open_or_create(dir.path()).is_err());
    assert!(
        OciLayout::open(&dir.path().join("missing"))
            .unwrap_err()
            .is_not_found()
    );
}

#[tokio::test]
async fn blobs_are_checked_on_push_and_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let l = OciLayout::open_or_create(dir.path()).unwrap();
    let good = Descriptor::for_bytes("application/octet-stream", b"hello");
    assert_eq!(
        l.push_blob(&good, BlobSource::Bytes(b"hello"), &NoProgress)
            .await
            .unwrap(),
        PushOutcome::Uploaded
    );
    assert_eq!(
        l.push_blob(&good, BlobSource::Bytes(b"hello"), &NoProgress)
            .await
            .unwrap(),
        PushOutcome::AlreadyExisted
    );
    // Wrong bytes for a descriptor: refused, nothing stored, no temp file left.
    let lie = Descriptor::for_bytes("application/octet-stream", b"world");
    let err = l
        .push_blob(&lie, BlobSource::Bytes(b"w0rld"), &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, OciError::Integrity { .. }), "{err}");
    assert!(!l.blob_exists(&lie.digest).await.unwrap());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let mut out = Vec::new();
    assert_eq!(l.fetch_blob_to(&good, &mut out).await.unwrap(), 5);
    assert_eq!(out, b"hello");
    // Corrupt the stored blob: fetch detects it.
    std::fs::write(l.blob_path(&good.digest), b"hellO").unwrap();
    let err = l.fetch_blob_to(&good, &mut Vec::new()).await.unwrap_err();
    assert!(matches!(err, OciError::Integrity { .. }), "{err}");
    // A file source streams too.
    let f = dir.path().join("f.bin");
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&f, &big).unwrap();
    let bd = Descriptor::for_bytes("application/octet-stream", &big);
    l.push_blob(&bd, BlobSource::File(&f), &NoProgress)
        .await
        .unwrap();
    assert_eq!(l.fetch_blob_bytes(&bd, 1 << 20).await.unwrap(), big);
    let missing = Descriptor::for_bytes("x/y", b"nope");
    assert!(
        l.fetch_blob_to(&missing, &mut Vec::new())
            .await
            .unwrap_err()
            .is_not_found()
    );
}

#[tokio::test]
async fn tags_resolve_and_retag_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let l = OciLayout::open_or_create(dir.path()).unwrap();
    let a = make_image(&l, "v1", "a").await;
    assert_eq!(l.resolve_tag("v1").await.unwrap().digest, a.digest);
    let b = make_image(&l, "v1", "b").await;
    assert_ne!(a.digest, b.digest);
    assert_eq!(l.resolve_tag("v1").await.unwrap().digest, b.digest);
    let idx = l.read_index().unwrap();
    assert_eq!(
        idx.manifests
            .iter()
            .filter(|d| d.annotation(annotations::REF_NAME) == Some("v1"))
            .count(),
        1
    );
    assert!(l.resolve_tag("nope").await.unwrap_err().is_not_found());
    let fetched = l.fetch_manifest(&b.digest).await.unwrap();
    assert_eq!(Digest::sha256_of(&fetched.bytes), b.digest);
    assert_eq!(fetched.descriptor.media_type, media_types::OCI_MANIFEST);
}

#[tokio::test]
async fn index_update_is_atomic_and_leaves_no_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let l = OciLayout::open_or_create(dir.path()).unwrap();
    make_image(&l, "v1", "a").await;
    // A failing update leaves index.json untouched.
    let before = std::fs::read(dir.path().join("index.json")).unwrap();
    let r: Result<(), OciError> = l.update_index(|idx| {
        idx.manifests.clear();
        Err(OciError::InvalidInput("boom".into()))
    });
    assert!(r.is_err());
    assert_eq!(
        std::fs::read(dir.path().join("index.json")).unwrap(),
        before
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(!names.iter().any(|n| n.starts_with(".tmp")), "{names:?}");
    // index.json is valid JSON with mediaType.
    let v: serde_json::Value = serde_json::from_slice(&before).unwrap();
    assert_eq!(v["schemaVersion"], 2);
    assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
}

#[test]
fn concurrent_writers_do_not_lose_entries() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let subject = {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let l = OciLayout::open_or_create(&root).unwrap();
        rt.block_on(make_image(&l, "v1", "s"))
    };
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let root = root.clone();
            let subject = subject.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                let l = OciLayout::open(&root).unwrap();
                for i in 0..6 {
                    let s = spec(
                        "application/x.test",
                        "f.json",
                        format!("{{\"t\":{t},\"i\":{i}}}").as_bytes(),
                    );
                    rt.block_on(push_referrer(&l, &subject, &s, &NoProgress))
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let l = OciLayout::open(&root).unwrap();
    let listing = rt.block_on(l.list_referrers(&subject.digest, &[])).unwrap();
    assert_eq!(listing.referrers.len(), 48);
    // image + 48 referrers + the subject's tag-schema index, which must list
    // all 48 too (it is rewritten under the same lock).
    assert_eq!(l.read_index().unwrap().manifests.len(), 50);
    let fallback = rt
        .block_on(l.resolve_tag(&subject.digest.referrers_tag()))
        .unwrap();
    let bytes = rt
        .block_on(l.fetch_manifest(&fallback.digest))
        .unwrap()
        .bytes;
    let index: stella_types::ImageIndex = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(index.manifests.len(), 48);
}

#[tokio::test]
async fn referrers_are_listed_filtered_sorted_and_nested() {
    let dir = tempfile::tempdir().unwrap();
    let l = OciLayout::open_or_create(dir.path()).unwrap();
    let img = make_image(&l, "v1", "a").await;
    let other = make_image(&l, "v2", "b").await;
    let sbom = push_referrer(
        &l,
        &img,
        &spec("application/spdx+json", "sbom.json", b"{}1"),
        &NoProgress,
    )
    .await
    .unwrap();
    let vex = push_referrer(
        &l,
        &img,
        &spec("application/openvex+json", "vex.json", b"{}2"),
        &NoProgress,
    )
    .await
    .unwrap();
    push_referrer(
        &l,
        &other,
        &spec("application/spdx+json", "o.json", b"{}3"),
        &NoProgress,
    )
    .await
    .unwrap();
    let sig = push_referrer(
        &l,
        &sbom.descriptor,
        &spec("application/x.sig", "sig", b"sig"),
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(sbom.mode, ReferrersMode::Layout);

    let all = l.list_referrers(&img.digest, &[]).await.unwrap();
    let types: Vec<_> = all
        .referrers
        .iter()
        .map(|e| e.descriptor.artifact_type.clone().unwrap())
        .collect();
    assert_eq!(types, ["application/openvex+json", "application/spdx+json"]);
    assert_eq!(all.referrers[0].descriptor.digest, vex.descriptor.digest);
    // Listing carries the manifest annotations, not Stella's bookkeeping.
    let d = &all.referrers[1].descriptor;
    assert_eq!(
        d.annotation(annotations::CREATED),
        Some("2024-01-01T00:00:00Z")
    );
    assert!(d.annotation(SUBJECT_ANNOTATION).is_none());
    let only = l
        .list_referrers(&img.digest, &["application/spdx+json".into()])
        .await
        .unwrap();
    assert_eq!(only.referrers.len(), 1);

    let tree = walk_referrers(&l, &img.digest, &[], 3).await.unwrap();
    assert_eq!(tree.len(), 2);
    let sbom_node = tree
        .iter()
        .find(|n| n.descriptor.digest == sbom.descriptor.digest)
        .unwrap();
    assert_eq!(sbom_node.children.len(), 1);
    assert_eq!(
        sbom_node.children[0].descriptor.digest,
        sig.descriptor.digest
    );
    let flat = walk_referrers(&l, &img.digest, &[], 1).await.unwrap();
    assert!(flat.iter().all(|n| n.children.is_empty()));

    // Pushing the same thing again: same digest, one index entry.
    let again = push_referrer(
        &l,
        &img,
        &spec("application/spdx+json", "sbom.json", b"{}1"),
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(again.descriptor.digest, sbom.descriptor.digest);
    let n = l
        .read_index()
        .unwrap()
        .manifests
        .iter()
        .filter(|d| d.digest == sbom.descriptor.digest)
        .count();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn legacy_cosign_tags_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let l = OciLayout::open_or_create(dir.path()).unwrap();
    let img = make_image(&l, "v1", "a").await;
    let sig = make_image(&l, &format!("sha256-{}.sig", img.digest.hex()), "sig").await;
    make_image(
        &l,
        "sha256-0000000000000000000000000000000000000000000000000000000000000000.att",
        "x",
    )
    .await;
    let listing = l.list_referrers(&img.digest, &[]).await.unwrap();
    assert!(listing.referrers.is_empty());
    assert_eq!(listing.legacy.len(), 1);
    assert_eq!(listing.legacy[0].kind, "sig");
    assert_eq!(listing.legacy[0].descriptor.digest, sig.digest);
    let tree = walk_referrers(&l, &img.digest, &[], 1).await.unwrap();
    assert_eq!(tree[0].legacy.as_deref(), Some("sig"));
    assert_eq!(parse_legacy_tag("sha256-abc.sbom"), Some(("abc", "sbom")));
    assert_eq!(parse_legacy_tag("sha256-abc.txt"), None);
}

#[tokio::test]
async fn delete_removes_entry_and_blob_and_dangling_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let l = OciLayout::open_or_create(dir.path()).unwrap();
    let img = make_image(&l, "v1", "a").await;
    let a = push_referrer(&l, &img, &spec("application/x.a", "a", b"a"), &NoProgress)
        .await
        .unwrap();
    let b = push_referrer(&l, &img, &spec("application/x.b", "b", b"b"), &NoProgress)
        .await
        .unwrap();
    let subj = crate::artifact::delete_referrer(&l, &a.descriptor.digest)
        .await
        .unwrap();
    assert_eq!(subj.digest, img.digest);
    assert!(!l.blob_path(&a.descriptor.digest).exists());
    let listing = l.list_referrers(&img.digest, &[]).await.unwrap();
    assert_eq!(listing.referrers.len(), 1);
    assert!(
        l.fetch_manifest(&a.descriptor.digest)
            .await
            .unwrap_err()
            .is_not_found()
    );
    // Deleting an image through delete_referrer is refused.
    assert!(
        crate::artifact::delete_referrer(&l, &img.digest)
            .await
            .is_err()
    );
    // A manifest blob removed behind our back: its entry is reported dangling.
    std::fs::remove_file(l.blob_path(&b.descriptor.digest)).unwrap();
    let listing = l.list_referrers(&img.digest, &[]).await.unwrap();
    assert_eq!(listing.referrers.len(), 1);
    assert!(listing.referrers[0].dangling);
    // The image itself survives.
    assert!(l.fetch_manifest(&img.digest).await.is_ok());
}

#[tokio::test]
async fn pull_checks_titles_and_content() {
    let dir = tempfile::tempdir().unwrap();
    let l = OciLayout::open_or_create(&dir.path().join("lay")).unwrap();
    let img = make_image(&l, "v1", "a").await;
    let ok = push_referrer(
        &l,
        &img,
        &spec("application/x.a", "report.json", b"{\"a\":1}"),
        &NoProgress,
    )
    .await
    .unwrap();
    let out = dir.path().join("out");
    let files = crate::artifact::pull_referrer(&l, &ok.descriptor.digest, &out, &NoProgress)
        .await
        .unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(
        std::fs::read(out.join("report.json")).unwrap(),
        b"{\"a\":1}"
    );
    // Pulling again is fine (same content); different content is not overwritten.
    crate::artifact::pull_referrer(&l, &ok.descriptor.digest, &out, &NoProgress)
        .await
        .unwrap();
    std::fs::write(out.join("report.json"), b"other").unwrap();
    assert!(
        crate::artifact::pull_referrer(&l, &ok.descriptor.digest, &out, &NoProgress)
            .await
            .is_err()
    );
    assert_eq!(std::fs::read(out.join("report.json")).unwrap(), b"other");

    for bad in ["../evil", "/etc/passwd", "a/b", "", "..", "x\0y"] {
        assert!(crate::artifact::check_title(bad).is_err(), "{bad:?}");
    }
    // A hostile manifest written by hand: nothing is written.
    let body = b"pwn";
    let ld = {
        let mut d = Descriptor::for_bytes("text/plain", body);
        d.annotations
            .insert(annotations::TITLE.into(), "../pwned".into());
        d
    };
    l.push_blob(&ld, BlobSource::Bytes(body), &NoProgress)
        .await
        .unwrap();
    let m = ImageManifest {
        schema_version: 2,
        media_type: Some(media_types::OCI_MANIFEST.into()),
        artifact_type: Some("application/x.evil".into()),
        config: crate::artifact::empty_descriptor(),
        layers: vec![ld],
        subject: Some(img.clone()),
        annotations: BTreeMap::new(),
    };
    let md = l
        .push_manifest(media_types::OCI_MANIFEST, &m.to_json_bytes(), None)
        .await
        .unwrap();
    let out2 = dir.path().join("out2");
    assert!(
        crate::artifact::pull_referrer(&l, &md.digest, &out2, &NoProgress)
            .await
            .is_err()
    );
    assert!(!dir.path().join("pwned").exists());
}
