//! `copy_graph` between two OCI layouts: an image with nested referrers and
//! a legacy cosign tag, an index root, idempotence, and the image-blobs switch.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{image, spec};
use stella_oci::artifact::{pull_referrer, push_referrer};
use stella_oci::copy::{CopyOptions, copy_graph};
use stella_oci::layout::OciLayout;
use stella_oci::referrers::walk_referrers;
use stella_oci::store::*;
use stella_types::media_types::{self};
use stella_types::{ImageIndex, ImageManifest};

#[tokio::test]
async fn copies_image_with_nested_referrers_and_is_idempotent() {
    let t = tempfile::tempdir().unwrap();
    let src = OciLayout::open_or_create(&t.path().join("src")).unwrap();
    let dst = OciLayout::open_or_create(&t.path().join("dst")).unwrap();
    let img = image(&src, Some("v1"), "a").await;
    let sbom = push_referrer(
        &src,
        &img,
        &spec("application/spdx+json", "sbom.json", "{\"s\":1}"),
        &NoProgress,
    )
    .await
    .unwrap();
    let sig = push_referrer(
        &src,
        &sbom.descriptor,
        &spec("application/x.sig", "sig.json", "{\"g\":1}"),
        &NoProgress,
    )
    .await
    .unwrap();
    push_referrer(
        &src,
        &img,
        &spec("application/openvex+json", "vex.json", "{\"v\":1}"),
        &NoProgress,
    )
    .await
    .unwrap();
    let legacy_tag = format!("sha256-{}.att", img.digest.hex());
    let legacy = image(&src, Some(&legacy_tag), "att").await;

    let opts = CopyOptions {
        include_referrers: true,
        referrer_depth: 4,
        include_image_blobs: true,
        artifact_types: vec![],
    };
    let r1 = copy_graph(&src, &dst, &img, Some("v1"), &opts, &NoProgress)
        .await
        .unwrap();
    // image + sbom + sig + vex + legacy = 5 manifests.
    assert_eq!(r1.manifests_copied, 5, "{r1:?}");
    assert_eq!(r1.manifests_skipped, 0);
    assert!(r1.blobs_copied >= 4 && r1.bytes_copied > 0, "{r1:?}");

    assert_eq!(dst.resolve_tag("v1").await.unwrap().digest, img.digest);
    assert_eq!(
        dst.resolve_tag(&legacy_tag).await.unwrap().digest,
        legacy.digest
    );
    let tree_src = walk_referrers(&src, &img.digest, &[], 4).await.unwrap();
    let tree_dst = walk_referrers(&dst, &img.digest, &[], 4).await.unwrap();
    assert_eq!(tree_src, tree_dst);
    let sbom_node = tree_dst
        .iter()
        .find(|n| n.descriptor.digest == sbom.descriptor.digest)
        .unwrap();
    assert_eq!(
        sbom_node.children[0].descriptor.digest,
        sig.descriptor.digest
    );
    // Copied artifacts are complete: their files pull and verify from dst.
    let files = pull_referrer(
        &dst,
        &sig.descriptor.digest,
        &t.path().join("out"),
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read(&files[0].path).unwrap(), b"{\"g\":1}");
    // The image's layer is there, byte-identical.
    let m = dst.fetch_manifest(&img.digest).await.unwrap();
    let parsed: ImageManifest = serde_json::from_slice(&m.bytes).unwrap();
    assert_eq!(
        dst.fetch_blob_bytes(&parsed.layers[0], 1 << 20)
            .await
            .unwrap(),
        src.fetch_blob_bytes(&parsed.layers[0], 1 << 20)
            .await
            .unwrap()
    );

    // Another tag in dst after the copy: a second copy must not reorder it.
    image(&dst, Some("zz-other"), "other").await;
    // Second copy: nothing new, index.json unchanged.
    let before = std::fs::read(t.path().join("dst/index.json")).unwrap();
    let r2 = copy_graph(&src, &dst, &img, Some("v1"), &opts, &NoProgress)
        .await
        .unwrap();
    assert_eq!(r2.manifests_copied, 0, "{r2:?}");
    assert_eq!(r2.blobs_copied, 0, "{r2:?}");
    assert_eq!(r2.manifests_skipped, 5);
    assert_eq!(
        std::fs::read(t.path().join("dst/index.json")).unwrap(),
        before
    );
}

#[tokio::test]
async fn filters_types_and_can_skip_image_blobs() {
    let t = tempfile::tempdir().unwrap();
    let src = OciLayout::open_or_create(&t.path().join("src")).unwrap();
    let dst = OciLayout::open_or_create(&t.path().join("dst")).unwrap();
    let img = image(&src, Some("v1"), "a").await;
    push_referrer(
        &src,
        &img,
        &spec("application/spdx+json", "sbom.json", "{}"),
        &NoProgress,
    )
    .await
    .unwrap();
    let vex = push_referrer(
        &src,
        &img,
        &spec("application/openvex+json", "vex.json", "[]"),
        &NoProgress,
    )
    .await
    .unwrap();
    let opts = CopyOptions {
        include_referrers: true,
        referrer_depth: 1,
        include_image_blobs: false,
        artifact_types: vec!["application/openvex+json".into()],
    };
    copy_graph(&src, &dst, &img, None, &opts, &NoProgress)
        .await
        .unwrap();
    let listing = dst.list_referrers(&img.digest, &[]).await.unwrap();
    assert_eq!(listing.referrers.len(), 1);
    assert_eq!(
        listing.referrers[0].descriptor.digest,
        vex.descriptor.digest
    );
    let m: ImageManifest =
        serde_json::from_slice(&dst.fetch_manifest(&img.digest).await.unwrap().bytes).unwrap();
    assert!(!dst.blob_exists(&m.layers[0].digest).await.unwrap());
    assert!(dst.blob_exists(&vex.descriptor.digest).await.unwrap());
}

#[tokio::test]
async fn copies_an_index_with_children_and_their_referrers() {
    let t = tempfile::tempdir().unwrap();
    let src = OciLayout::open_or_create(&t.path().join("src")).unwrap();
    let dst = OciLayout::open_or_create(&t.path().join("dst")).unwrap();
    let amd = image(&src, None, "amd64").await;
    let arm = image(&src, None, "arm64").await;
    let mut idx = ImageIndex::empty();
    idx.manifests = vec![amd.clone(), arm.clone()];
    let root = src
        .push_manifest(media_types::OCI_INDEX, &idx.to_json_bytes(), Some("multi"))
        .await
        .unwrap();
    let on_child = push_referrer(
        &src,
        &arm,
        &spec("application/spdx+json", "arm.json", "{}"),
        &NoProgress,
    )
    .await
    .unwrap();
    let on_root = push_referrer(
        &src,
        &root,
        &spec("application/x.sig", "sig", "s"),
        &NoProgress,
    )
    .await
    .unwrap();

    let r = copy_graph(
        &src,
        &dst,
        &root,
        Some("multi"),
        &CopyOptions::default(),
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(r.manifests_copied, 5, "{r:?}");
    for d in [&amd.digest, &arm.digest, &root.digest] {
        assert!(dst.manifest_exists(d).await.unwrap());
    }
    assert_eq!(
        dst.list_referrers(&arm.digest, &[])
            .await
            .unwrap()
            .referrers[0]
            .descriptor
            .digest,
        on_child.descriptor.digest
    );
    assert_eq!(
        dst.list_referrers(&root.digest, &[])
            .await
            .unwrap()
            .referrers[0]
            .descriptor
            .digest,
        on_root.descriptor.digest
    );
    assert_eq!(
        dst.resolve_tag("multi").await.unwrap().media_type,
        media_types::OCI_INDEX
    );
}

#[tokio::test]
async fn a_missing_source_blob_fails_without_writing_the_manifest() {
    let t = tempfile::tempdir().unwrap();
    let src = OciLayout::open_or_create(&t.path().join("src")).unwrap();
    let dst = OciLayout::open_or_create(&t.path().join("dst")).unwrap();
    let img = image(&src, Some("v1"), "a").await;
    let m: ImageManifest =
        serde_json::from_slice(&src.fetch_manifest(&img.digest).await.unwrap().bytes).unwrap();
    std::fs::remove_file(src.blob_path(&m.layers[0].digest)).unwrap();
    let err = copy_graph(
        &src,
        &dst,
        &img,
        Some("v1"),
        &CopyOptions::default(),
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(!dst.manifest_exists(&img.digest).await.unwrap());
    assert!(dst.resolve_tag("v1").await.is_err());
}
