//! The generic operations (push_referrer, walk_referrers, copy_graph,
//! pull/delete) between an OCI layout and real registries: Debian's
//! `docker-registry` (distribution 2.8, no referrers API: tag schema
//! fallback) and the in-process spec registry (referrers API).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::spec;
use stella_oci::artifact::{delete_referrer, pull_referrer, push_referrer};
use stella_oci::copy::{CopyOptions, copy_graph};
use stella_oci::layout::OciLayout;
use stella_oci::referrers::walk_referrers;
use stella_oci::registry::{RegistryClient, RegistryOptions, Repository};
use stella_oci::store::*;
use stella_testkit::{DistributionRegistry, SpecConfig, SpecRegistry};
use stella_types::Reference;

fn repo(host_port: &str) -> Repository {
    let Reference::Registry(r) = Reference::parse(&format!("{host_port}/stella/app:v1")).unwrap()
    else {
        panic!()
    };
    let client = RegistryClient::new(RegistryOptions {
        plain_http: true,
        ..RegistryOptions::default()
    })
    .unwrap();
    client.repository(&r)
}

/// layout → registry → new layout, with nested referrers; then push, pull
/// and delete a referrer directly on the registry.
async fn round_trip(reg: &Repository, expect_mode: ReferrersMode) {
    let t = tempfile::tempdir().unwrap();
    let src = OciLayout::open_or_create(&t.path().join("src")).unwrap();
    let img = common::image(&src, Some("v1"), "registry").await;
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

    let opts = CopyOptions::default();
    let r = copy_graph(&src, reg, &img, Some("v1"), &opts, &NoProgress)
        .await
        .unwrap();
    assert_eq!(r.manifests_copied, 3, "{r:?}");
    assert_eq!(reg.referrers_mode().await.unwrap(), expect_mode);
    assert_eq!(reg.resolve_tag("v1").await.unwrap().digest, img.digest);
    let tree = walk_referrers(reg, &img.digest, &[], 4).await.unwrap();
    assert_eq!(tree.len(), 1);
    assert_eq!(tree[0].descriptor.digest, sbom.descriptor.digest);
    assert_eq!(
        tree[0].descriptor.artifact_type.as_deref(),
        Some("application/spdx+json")
    );
    assert_eq!(tree[0].children[0].descriptor.digest, sig.descriptor.digest);

    // Back into a fresh layout: same graph.
    let back = OciLayout::open_or_create(&t.path().join("back")).unwrap();
    copy_graph(reg, &back, &img, Some("v1"), &opts, &NoProgress)
        .await
        .unwrap();
    let tree_back = walk_referrers(&back, &img.digest, &[], 4).await.unwrap();
    assert_eq!(
        tree_back[0].children[0].descriptor.digest,
        sig.descriptor.digest
    );
    // Copying again is idempotent.
    let again = copy_graph(&src, reg, &img, Some("v1"), &opts, &NoProgress)
        .await
        .unwrap();
    assert_eq!(again.manifests_copied, 0, "{again:?}");
    assert_eq!(
        walk_referrers(reg, &img.digest, &[], 1)
            .await
            .unwrap()
            .len(),
        1
    );

    // Push, pull and delete directly on the registry.
    let vex = push_referrer(
        reg,
        &img,
        &spec("application/openvex+json", "vex.json", "[1]"),
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(vex.mode, expect_mode);
    let listed = reg.list_referrers(&img.digest, &[]).await.unwrap();
    assert_eq!(listed.referrers.len(), 2);
    let files = pull_referrer(
        reg,
        &vex.descriptor.digest,
        &t.path().join("out"),
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read(&files[0].path).unwrap(), b"[1]");
    let subject = delete_referrer(reg, &vex.descriptor.digest).await.unwrap();
    assert_eq!(subject.digest, img.digest);
    let listed = reg.list_referrers(&img.digest, &[]).await.unwrap();
    assert_eq!(listed.referrers.len(), 1, "{listed:?}");
    assert_eq!(
        listed.referrers[0].descriptor.digest,
        sbom.descriptor.digest
    );
}

#[tokio::test]
async fn distribution_tag_schema_round_trip() {
    let registry = DistributionRegistry::start_plain().expect("docker-registry must be installed");
    round_trip(&repo(&registry.host_port()), ReferrersMode::TagSchema).await;
}

#[tokio::test]
async fn referrers_api_round_trip() {
    let registry = SpecRegistry::start(SpecConfig::default());
    round_trip(&repo(&registry.host_port()), ReferrersMode::Api).await;
}
