//! What we write we can read back (issue 10 §3): a layout's `index.json` is
//! read with the index cap (16 MiB), not the manifest cap, and a push that
//! would grow `index.json` or a tag-schema index past what Stella reads is
//! refused before anything is written.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{image, spec};
use stella_oci::artifact::{ArtifactSpec, delete_referrer, push_referrer};
use stella_oci::layout::OciLayout;
use stella_oci::store::*;
use stella_types::limits::{
    MAX_LAYOUT_INDEX_BYTES, MAX_MANIFEST_BYTES, MAX_TAG_SCHEMA_INDEX_BYTES,
};

/// Every file under `dir` with its size, to show nothing was written.
fn snapshot(dir: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, meta.len());
            }
        }
    }
    out
}

/// An artifact whose manifest carries an annotation of `bytes` bytes (it is
/// copied into the referrer's `index.json` entry and tag-schema entry).
fn big(title: &str, bytes: usize) -> ArtifactSpec {
    let mut s = spec("application/x.big", title, "{}");
    s.annotations.insert("x.padding".into(), "p".repeat(bytes));
    s
}

#[tokio::test]
async fn an_index_json_over_the_manifest_cap_is_still_read() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("lay");
    let l = OciLayout::open_or_create(&root).unwrap();
    let img = image(&l, Some("v1"), "a").await;
    // Another tool (or an older Stella) wrote a 5 MiB index.json: many tags.
    l.update_index(|idx| {
        let base = idx.manifests[0].clone();
        for i in 0..40_000 {
            let mut e = base.clone();
            e.annotations.insert(
                "org.opencontainers.image.ref.name".into(),
                format!("tag-{i:06}-{}", "x".repeat(64)),
            );
            idx.manifests.push(e);
        }
        Ok(())
    })
    .unwrap();
    let size = std::fs::metadata(root.join("index.json")).unwrap().len();
    assert!(
        size > MAX_MANIFEST_BYTES && size < MAX_LAYOUT_INDEX_BYTES,
        "{size}"
    );

    // list, push, resolve and delete all work on it.
    assert!(
        l.list_referrers(&img.digest, &[])
            .await
            .unwrap()
            .referrers
            .is_empty()
    );
    let r = push_referrer(&l, &img, &spec("application/x.a", "a", "{}"), &NoProgress)
        .await
        .unwrap();
    assert_eq!(l.resolve_tag("v1").await.unwrap().digest, img.digest);
    assert_eq!(
        l.list_referrers(&img.digest, &[])
            .await
            .unwrap()
            .referrers
            .len(),
        1
    );
    delete_referrer(&l, &r.descriptor.digest).await.unwrap();
    assert!(
        l.list_referrers(&img.digest, &[])
            .await
            .unwrap()
            .referrers
            .is_empty()
    );
}

#[tokio::test]
async fn a_push_that_would_overflow_the_tag_schema_index_writes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("lay");
    let l = OciLayout::open_or_create(&root).unwrap();
    let img = image(&l, Some("v1"), "a").await;
    let third = (MAX_TAG_SCHEMA_INDEX_BYTES / 3) as usize;
    push_referrer(&l, &img, &big("one", third), &NoProgress)
        .await
        .unwrap();
    push_referrer(&l, &img, &big("two", third), &NoProgress)
        .await
        .unwrap();
    let before = snapshot(&root);
    let index_before = std::fs::read(root.join("index.json")).unwrap();

    // A third one would make the subject's tag-schema index (an image index
    // read as a manifest) larger than the manifest cap.
    let err = push_referrer(&l, &img, &big("three", third), &NoProgress)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&img.digest.referrers_tag()), "{msg}");
    assert!(
        msg.contains(&MAX_TAG_SCHEMA_INDEX_BYTES.to_string()),
        "{msg}"
    );
    assert_eq!(snapshot(&root), before, "the refused push wrote something");
    assert_eq!(
        std::fs::read(root.join("index.json")).unwrap(),
        index_before
    );

    // The layout is still fully usable, and its tag-schema index readable.
    assert_eq!(
        l.list_referrers(&img.digest, &[])
            .await
            .unwrap()
            .referrers
            .len(),
        2
    );
    let tag = l.resolve_tag(&img.digest.referrers_tag()).await.unwrap();
    l.fetch_manifest(&tag.digest).await.unwrap();
    push_referrer(
        &l,
        &img,
        &spec("application/x.small", "s", "{}"),
        &NoProgress,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_push_that_would_overflow_index_json_writes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("lay");
    let l = OciLayout::open_or_create(&root).unwrap();
    // Referrers of different subjects: each tag-schema index stays under
    // its cap, but index.json carries every entry's annotations.
    let each = (MAX_MANIFEST_BYTES * 3 / 4) as usize;
    // Each push adds an index.json entry of a bit more than `each` bytes.
    let fits = (MAX_LAYOUT_INDEX_BYTES / each as u64) as usize;
    let mut pushed = 0;
    let err = loop {
        let img = image(&l, None, &format!("img{pushed}")).await;
        match push_referrer(&l, &img, &big("x", each), &NoProgress).await {
            Ok(_) => pushed += 1,
            Err(e) => {
                let before = snapshot(&root);
                // Pushing it again fails the same way and still writes nothing.
                assert!(
                    push_referrer(&l, &img, &big("x", each), &NoProgress)
                        .await
                        .is_err()
                );
                assert_eq!(snapshot(&root), before);
                break e;
            }
        }
        let size = std::fs::metadata(root.join("index.json")).unwrap().len();
        assert!(size <= MAX_LAYOUT_INDEX_BYTES, "index.json grew to {size}");
        assert!(
            pushed <= fits,
            "{pushed} pushes of {each} bytes fit in index.json"
        );
    };
    assert!(pushed >= 1, "{err}");
    assert!(err.to_string().contains("index.json"), "{err}");
    let size = std::fs::metadata(root.join("index.json")).unwrap().len();
    assert!(size <= MAX_LAYOUT_INDEX_BYTES, "{size}");
    // Still readable and usable.
    let idx = l.read_index().unwrap();
    assert!(!idx.manifests.is_empty());
}
