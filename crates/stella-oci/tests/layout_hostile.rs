//! Hostile OCI layouts (issue 10 §5): a layout handed to Stella must not be
//! able to make it write outside the layout, hang, or believe what
//! `index.json` says over what the manifests say.

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{image, spec};
use stella_oci::artifact::{pull_referrer, push_referrer, resolve};
use stella_oci::layout::{OciLayout, SUBJECT_ANNOTATION};
use stella_oci::store::*;
use stella_types::media_types;
use stella_types::{Descriptor, Reference};

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn mkfifo(path: &Path) {
    let st = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success());
}

/// Rewrites `index.json` by hand (as a hostile layout's owner would).
fn edit_index(root: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let path = root.join("index.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
}

fn entry_of<'a>(v: &'a mut serde_json::Value, digest: &str) -> &'a mut serde_json::Value {
    v["manifests"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e["digest"] == digest)
        .unwrap()
}

#[tokio::test]
async fn a_symlinked_lock_file_creates_nothing_at_its_target() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("lay");
    let l = OciLayout::open_or_create(&root).unwrap();
    let img = image(&l, Some("v1"), "a").await;
    let outside = t.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let target = outside.join("planted");
    let lock = root.join("index.json.lock");
    let _ = std::fs::remove_file(&lock);
    std::os::unix::fs::symlink(&target, &lock).unwrap();
    let before = std::fs::read(root.join("index.json")).unwrap();

    let err = push_referrer(&l, &img, &spec("application/x.a", "a", "{}"), &NoProgress)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert!(
        !target.exists(),
        "a file was created through the lock symlink"
    );
    assert_eq!(std::fs::read(root.join("index.json")).unwrap(), before);
    // Tagging goes through the same lock.
    assert!(
        l.push_manifest(
            media_types::OCI_MANIFEST,
            &l.fetch_manifest(&img.digest).await.unwrap().bytes,
            Some("v2")
        )
        .await
        .is_err()
    );
    assert!(!target.exists());
}

#[tokio::test]
async fn a_symlinked_blob_directory_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("lay");
    let l = OciLayout::open_or_create(&root).unwrap();
    let img = image(&l, Some("v1"), "a").await;
    // Move blobs/sha256 elsewhere and leave a symlink in its place.
    let outside = t.path().join("outside-sha256");
    std::fs::rename(root.join("blobs/sha256"), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("blobs/sha256")).unwrap();
    let before = files_in(&outside);

    let err = OciLayout::open(&root).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    // A handle opened before the swap does not write through it either.
    let body = b"new blob";
    let d = Descriptor::for_bytes("application/octet-stream", body);
    let err = l
        .push_blob(&d, BlobSource::Bytes(body), &NoProgress)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert!(
        push_referrer(&l, &img, &spec("application/x.a", "a", "{}"), &NoProgress)
            .await
            .is_err()
    );
    assert!(l.fetch_manifest(&img.digest).await.is_err());
    assert_eq!(
        files_in(&outside),
        before,
        "blobs were written through the symlink"
    );

    // `blobs` itself as a symlink: refused the same way.
    let t2 = tempfile::tempdir().unwrap();
    let root2 = t2.path().join("lay");
    OciLayout::open_or_create(&root2).unwrap();
    let outside2 = t2.path().join("outside-blobs");
    std::fs::rename(root2.join("blobs"), &outside2).unwrap();
    std::os::unix::fs::symlink(&outside2, root2.join("blobs")).unwrap();
    assert!(OciLayout::open(&root2).is_err());
    assert!(OciLayout::open_or_create(&root2).is_err());
}

/// Runs `pull_referrer` with a guard: if it blocks on the FIFO, the FIFO is
/// opened for writing (and closed) to release it, and the test fails.
async fn pull_guarded(
    root: &Path,
    digest: &stella_types::Digest,
    fifo: &Path,
    out: &Path,
) -> String {
    let l = OciLayout::open(root).unwrap();
    let (d, o) = (digest.clone(), out.to_path_buf());
    let task = tokio::spawn(async move { pull_referrer(&l, &d, &o, &NoProgress).await });
    let mut task = std::pin::pin!(task);
    match tokio::time::timeout(Duration::from_secs(60), &mut task).await {
        Ok(joined) => joined.unwrap().unwrap_err().to_string(),
        Err(_) => {
            use std::os::unix::fs::OpenOptionsExt;
            // Open and close a writer at once: the blocked reader sees EOF.
            drop(
                std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(fifo),
            );
            let _ = task.await;
            panic!("pull-referrer blocked on a FIFO in the layout");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_blob_is_refused_instead_of_hanging_a_pull() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("lay");
    let l = OciLayout::open_or_create(&root).unwrap();
    let img = image(&l, Some("v1"), "a").await;
    let pushed = push_referrer(
        &l,
        &img,
        &spec("application/x.a", "report.json", "{\"a\":1}"),
        &NoProgress,
    )
    .await
    .unwrap();
    // The layer blob becomes a FIFO.
    let fetched = l.fetch_manifest(&pushed.descriptor.digest).await.unwrap();
    let m: stella_types::ImageManifest = serde_json::from_slice(&fetched.bytes).unwrap();
    let layer = l.blob_path(&m.layers[0].digest);
    std::fs::remove_file(&layer).unwrap();
    mkfifo(&layer);
    let out = t.path().join("out");
    let err = pull_guarded(&root, &pushed.descriptor.digest, &layer, &out).await;
    assert!(err.contains("FIFO"), "{err}");
    // A failed pull removes the output directory it created (and so every file in it).
    assert!(
        !out.exists() || files_in(&out).is_empty(),
        "{:?}",
        files_in(&out)
    );
    // blob_exists does not call a FIFO a blob.
    assert!(l.blob_exists(&m.layers[0].digest).await.is_err());

    // The manifest blob itself as a FIFO.
    let manifest = l.blob_path(&pushed.descriptor.digest);
    std::fs::remove_file(&manifest).unwrap();
    mkfifo(&manifest);
    let err = pull_guarded(&root, &pushed.descriptor.digest, &manifest, &out).await;
    assert!(err.contains("FIFO"), "{err}");
    // Listing names the broken referrer instead of hanging or hiding it.
    let err = l.list_referrers(&img.digest, &[]).await.unwrap_err();
    assert!(err.to_string().contains("FIFO"), "{err}");
}

#[tokio::test]
async fn sizes_and_media_types_in_index_json_are_checked_against_the_manifest() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("lay");
    let l = OciLayout::open_or_create(&root).unwrap();
    let img = image(&l, Some("v1"), "a").await;
    let reference = Reference::parse(&format!("oci:{}:v1", root.display())).unwrap();
    assert_eq!(resolve(&l, &reference).await.unwrap().size, img.size);

    // The tag's entry claims a size of 2^64-1: resolving is refused, so
    // that size is never copied into a new referrer's subject.
    let real = img.digest.to_string();
    edit_index(&root, |v| {
        entry_of(v, &real)["size"] = serde_json::json!(u64::MAX)
    });
    let err = resolve(&l, &reference).await.unwrap_err();
    assert!(err.to_string().contains("size"), "{err}");

    // A media type lie is refused the same way.
    edit_index(&root, |v| {
        let e = entry_of(v, &real);
        e["size"] = serde_json::json!(img.size);
        e["mediaType"] = serde_json::json!(media_types::OCI_INDEX);
    });
    let err = resolve(&l, &reference).await.unwrap_err();
    assert!(err.to_string().contains("media type"), "{err}");
    edit_index(&root, |v| {
        entry_of(v, &real)["mediaType"] = serde_json::json!(media_types::OCI_MANIFEST);
    });
    let subject = resolve(&l, &reference).await.unwrap();
    assert_eq!(subject.size, img.size);

    // A referrer entry whose size lies: the listing reports the manifest's.
    let r = push_referrer(
        &l,
        &subject,
        &spec("application/x.a", "a", "{}"),
        &NoProgress,
    )
    .await
    .unwrap();
    let rd = r.descriptor.digest.to_string();
    edit_index(&root, |v| {
        entry_of(v, &rd)["size"] = serde_json::json!(u64::MAX)
    });
    let listing = l.list_referrers(&img.digest, &[]).await.unwrap();
    assert_eq!(listing.referrers.len(), 1);
    assert_eq!(
        listing.referrers[0].descriptor.size,
        r.manifest_bytes.len() as u64
    );

    // A cosign legacy tag whose entry lies about its size and type.
    let sig = image(&l, Some(&format!("sha256-{}.sig", img.digest.hex())), "sig").await;
    let sd = sig.digest.to_string();
    edit_index(&root, |v| {
        let e = entry_of(v, &sd);
        e["size"] = serde_json::json!(u64::MAX);
        e["mediaType"] = serde_json::json!(media_types::OCI_INDEX);
    });
    let listing = l.list_referrers(&img.digest, &[]).await.unwrap();
    assert_eq!(listing.legacy.len(), 1);
    assert_eq!(listing.legacy[0].descriptor.size, sig.size);
    assert_eq!(
        listing.legacy[0].descriptor.media_type,
        media_types::OCI_MANIFEST
    );
}

#[tokio::test]
async fn a_corrupt_referrer_fails_listing_but_not_other_writes() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("lay");
    let l = OciLayout::open_or_create(&root).unwrap();
    let img = image(&l, Some("v1"), "a").await;
    let bad = push_referrer(&l, &img, &spec("application/x.a", "a", "{}"), &NoProgress)
        .await
        .unwrap();
    let good = push_referrer(&l, &img, &spec("application/x.b", "b", "{}"), &NoProgress)
        .await
        .unwrap();
    std::fs::write(l.blob_path(&bad.descriptor.digest), b"{\"not\":\"it\"}").unwrap();
    // Listing does not silently drop the corrupt referrer.
    let err = l.list_referrers(&img.digest, &[]).await.unwrap_err();
    assert!(
        err.to_string().contains(&bad.descriptor.digest.to_string()),
        "{err}"
    );
    // Deleting and pushing other referrers of the subject still work.
    stella_oci::artifact::delete_referrer(&l, &good.descriptor.digest)
        .await
        .unwrap();
    push_referrer(&l, &img, &spec("application/x.c", "c", "{}"), &NoProgress)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_subject_annotation_can_neither_hide_nor_invent_referrers() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("lay");
    let l = OciLayout::open_or_create(&root).unwrap();
    let a = image(&l, Some("a"), "a").await;
    let b = image(&l, Some("b"), "b").await;
    let real = push_referrer(&l, &a, &spec("application/x.sbom", "s", "{}"), &NoProgress)
        .await
        .unwrap();
    // The real referrer of A is relabelled as B's, and image B's own entry
    // is labelled a referrer of A.
    let (rd, bd, ad) = (
        real.descriptor.digest.to_string(),
        b.digest.to_string(),
        a.digest.to_string(),
    );
    edit_index(&root, |v| {
        entry_of(v, &rd)["annotations"][SUBJECT_ANNOTATION] = serde_json::json!(bd);
        entry_of(v, &bd)["annotations"][SUBJECT_ANNOTATION] = serde_json::json!(ad);
    });
    let of_a = l.list_referrers(&a.digest, &[]).await.unwrap();
    let digests: Vec<_> = of_a
        .referrers
        .iter()
        .map(|e| e.descriptor.digest.clone())
        .collect();
    assert_eq!(
        digests,
        std::slice::from_ref(&real.descriptor.digest),
        "hidden or invented referrers of A"
    );
    assert!(
        l.list_referrers(&b.digest, &[])
            .await
            .unwrap()
            .referrers
            .is_empty()
    );

    // A later push rebuilds B's tag-schema index from the manifests: the
    // relabelled referrer of A does not get into it.
    let of_b = push_referrer(&l, &b, &spec("application/x.sbom", "t", "{}"), &NoProgress)
        .await
        .unwrap();
    let tag = l.resolve_tag(&b.digest.referrers_tag()).await.unwrap();
    let index: stella_types::ImageIndex =
        serde_json::from_slice(&l.fetch_manifest(&tag.digest).await.unwrap().bytes).unwrap();
    let in_index: Vec<_> = index.manifests.iter().map(|d| d.digest.clone()).collect();
    assert_eq!(in_index, [of_b.descriptor.digest]);
}
