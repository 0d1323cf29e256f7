//! Stores usable from a multi-threaded server (issue 9 §3): store futures
//! are `Send`, and a store held as `Arc<dyn DynStore>` (no `AnyStore`) works
//! with the generic operations inside `tokio::spawn`ed tasks.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::{image, spec};
use stella_oci::artifact::{pull_referrer, push_referrer};
use stella_oci::copy::{CopyOptions, copy_graph};
use stella_oci::layout::OciLayout;
use stella_oci::referrers::walk_referrers;
use stella_oci::registry::Repository;
use stella_oci::store::*;
use stella_oci::{AnyStore, SharedStore};
use stella_types::Digest;

fn is_send<T: Send>(_: &T) {}

/// Compile-time checks: these only build if every store future, and the
/// generic operations over a store, are `Send`.
#[allow(dead_code)]
fn futures_are_send(layout: OciLayout, repo: Repository, any: AnyStore, shared: SharedStore) {
    let d = Digest::sha256_of(b"x");
    is_send(&layout.list_referrers(&d, &[]));
    is_send(&layout.fetch_manifest(&d));
    is_send(&repo.list_referrers(&d, &[]));
    is_send(&repo.fetch_manifest(&d));
    is_send(&any.resolve_tag("v1"));
    is_send(&shared.list_referrers_skip_legacy(&d, &[]));
    is_send(&walk_referrers(&*shared, &d, &[], 2));
    is_send(&walk_referrers(&repo, &d, &[], 2));
    let _: SharedStore = Arc::new(repo);
    let _: SharedStore = Arc::new(layout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_layout_works_across_spawned_tasks() {
    let t = tempfile::tempdir().unwrap();
    let layout = OciLayout::open_or_create(&t.path().join("src")).unwrap();
    let img = image(&layout, Some("v1"), "a").await;
    let store: SharedStore = AnyStore::Layout(layout).into_shared();

    // Eight tasks push referrers of the same image at once.
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            let img = img.clone();
            tokio::spawn(async move {
                let s = spec("application/x.test", "f.json", &format!("{{\"i\":{i}}}"));
                push_referrer(&*store, &img, &s, &NoProgress).await
            })
        })
        .collect();
    let mut pushed = Vec::new();
    for task in tasks {
        pushed.push(task.await.unwrap().unwrap().descriptor.digest);
    }
    let listing = store.list_referrers(&img.digest, &[]).await.unwrap();
    let mut listed: Vec<_> = listing
        .referrers
        .iter()
        .map(|e| e.descriptor.digest.clone())
        .collect();
    listed.sort();
    pushed.sort();
    assert_eq!(listed, pushed);

    // Walking, pulling and copying with shared stores, in spawned tasks.
    let walk = {
        let (store, d) = (Arc::clone(&store), img.digest.clone());
        tokio::spawn(async move { walk_referrers(&*store, &d, &[], 2).await })
    };
    assert_eq!(walk.await.unwrap().unwrap().len(), 8);
    let pull = {
        let (store, d, out) = (Arc::clone(&store), pushed[0].clone(), t.path().join("out"));
        tokio::spawn(async move { pull_referrer(&*store, &d, &out, &NoProgress).await })
    };
    assert_eq!(pull.await.unwrap().unwrap().len(), 1);
    let dst: SharedStore = Arc::new(OciLayout::open_or_create(&t.path().join("dst")).unwrap());
    let copy = {
        let (src, dst, root) = (Arc::clone(&store), Arc::clone(&dst), img.clone());
        tokio::spawn(async move {
            copy_graph(
                &src,
                &dst,
                &root,
                Some("v1"),
                &CopyOptions::default(),
                &NoProgress,
            )
            .await
        })
    };
    let report = copy.await.unwrap().unwrap();
    assert_eq!(report.manifests_copied, 9);
    let copied = dst.list_referrers(&img.digest, &[]).await.unwrap();
    assert_eq!(copied.referrers.len(), 8);
}
