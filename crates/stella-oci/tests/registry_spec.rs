//! The registry client against the testkit's in-process spec registry (with
//! the native Referrers API and fault injection): mode probe, pagination,
//! filtering, 429 handling, caps, a lying `OCI-Subject`, a registry dying
//! mid-push, malformed content.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use stella_oci::OciError;
use stella_oci::registry::{RegistryClient, RegistryOptions, Repository};
use stella_oci::store::*;
use stella_testkit::spec_registry::OVERSIZED_TAG;
use stella_testkit::{SpecConfig, SpecRegistry};
use stella_types::media_types::{EMPTY_JSON, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST};
use stella_types::reference::RegistryReference;
use stella_types::{Descriptor, ImageManifest};

const REPO: &str = "spec/app";

fn open(reg: &SpecRegistry) -> (RegistryClient, Repository) {
    let client = RegistryClient::new(RegistryOptions {
        plain_http: true,
        ..Default::default()
    })
    .unwrap();
    let repo = client.repository(&RegistryReference {
        registry: reg.host_port(),
        repository: REPO.to_string(),
        tag: None,
        digest: None,
    });
    (client, repo)
}

fn manifest_bytes(
    subject: Option<&Descriptor>,
    artifact_type: Option<&str>,
    layer: &Descriptor,
) -> Vec<u8> {
    ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.into()),
        artifact_type: artifact_type.map(str::to_string),
        config: Descriptor::for_bytes(OCI_EMPTY, EMPTY_JSON),
        layers: vec![layer.clone()],
        subject: subject.cloned(),
        annotations: BTreeMap::from([("k".to_string(), "v".to_string())]),
    }
    .to_json_bytes()
}

async fn push_manifest_with_blobs(
    repo: &Repository,
    subject: Option<&Descriptor>,
    artifact_type: Option<&str>,
    payload: &str,
) -> Descriptor {
    repo.push_blob(
        &Descriptor::for_bytes(OCI_EMPTY, EMPTY_JSON),
        BlobSource::Bytes(EMPTY_JSON),
        &NoProgress,
    )
    .await
    .unwrap();
    let layer = Descriptor::for_bytes("application/json", payload.as_bytes());
    repo.push_blob(&layer, BlobSource::Bytes(payload.as_bytes()), &NoProgress)
        .await
        .unwrap();
    let bytes = manifest_bytes(subject, artifact_type, &layer);
    let mut d = repo
        .push_manifest(OCI_MANIFEST, &bytes, None)
        .await
        .unwrap();
    d.artifact_type = artifact_type.map(str::to_string);
    d
}

#[tokio::test(flavor = "multi_thread")]
async fn probe_picks_api_and_pages_are_followed() {
    let reg = SpecRegistry::start(SpecConfig {
        page_size: Some(2),
        ..Default::default()
    });
    let (client, repo) = open(&reg);
    assert_eq!(repo.referrers_mode().await.unwrap(), ReferrersMode::Api);
    let subject = push_manifest_with_blobs(&repo, None, None, "subject").await;
    let mut want = Vec::new();
    for i in 0..5 {
        let at = if i % 2 == 0 {
            "application/spdx+json"
        } else {
            "application/openvex+json"
        };
        let d =
            push_manifest_with_blobs(&repo, Some(&subject), Some(at), &format!("ref {i}")).await;
        // With the API, recording is a no-op: no index tag is written.
        let before = client.request_count();
        repo.add_referrer(&subject, &d).await.unwrap();
        assert_eq!(client.request_count(), before);
        want.push(d.digest);
    }
    assert!(!reg.tags(REPO).contains(&subject.digest.referrers_tag()));

    let listing = repo.list_referrers(&subject.digest, &[]).await.unwrap();
    assert_eq!(listing.mode, ReferrersMode::Api);
    let mut got: Vec<_> = listing
        .referrers
        .iter()
        .map(|e| e.descriptor.digest.clone())
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    // Sorted by (artifactType, digest) and carrying the manifest's annotations.
    let types: Vec<_> = listing
        .referrers
        .iter()
        .map(|e| e.descriptor.artifact_type.clone().unwrap())
        .collect();
    let mut sorted = types.clone();
    sorted.sort();
    assert_eq!(types, sorted);
    assert!(
        listing
            .referrers
            .iter()
            .all(|e| e.descriptor.annotation("k") == Some("v"))
    );
    let pages = reg
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains(&format!("/referrers/{}", subject.digest)))
        .count();
    assert_eq!(pages, 3, "5 referrers in pages of 2");

    // One artifact type: passed to the registry as a filter.
    let only = repo
        .list_referrers(&subject.digest, &["application/spdx+json".to_string()])
        .await
        .unwrap();
    assert_eq!(only.referrers.len(), 3);
    assert!(
        reg.requests()
            .iter()
            .any(|r| r.path.contains("artifactType=application%2Fspdx%2Bjson"))
    );
    // Two types: filtered here.
    let both = repo
        .list_referrers(
            &subject.digest,
            &[
                "application/spdx+json".to_string(),
                "application/openvex+json".to_string(),
            ],
        )
        .await
        .unwrap();
    assert_eq!(both.referrers.len(), 5);
    let none = repo
        .list_referrers(&subject.digest, &["x/none".to_string()])
        .await
        .unwrap();
    assert!(none.referrers.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn pagination_loop_is_an_error_not_a_hang() {
    let reg = SpecRegistry::start(SpecConfig {
        link_loop: true,
        ..Default::default()
    });
    let (_client, repo) = open(&reg);
    let subject = push_manifest_with_blobs(&repo, None, None, "s").await;
    let err = repo.list_referrers(&subject.digest, &[]).await.unwrap_err();
    assert!(matches!(err, OciError::Protocol(_)), "{err}");
    assert!(err.to_string().contains("pagination loop"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn oci_subject_header_alone_does_not_mean_api() {
    let reg = SpecRegistry::start(SpecConfig {
        send_oci_subject_without_api: true,
        ..Default::default()
    });
    let (_client, repo) = open(&reg);
    let subject = push_manifest_with_blobs(&repo, None, None, "s").await;
    let art =
        push_manifest_with_blobs(&repo, Some(&subject), Some("application/spdx+json"), "a").await;
    assert_eq!(
        repo.referrers_mode().await.unwrap(),
        ReferrersMode::TagSchema
    );
    repo.add_referrer(&subject, &art).await.unwrap();
    assert!(reg.tags(REPO).contains(&subject.digest.referrers_tag()));
    let listing = repo.list_referrers(&subject.digest, &[]).await.unwrap();
    assert_eq!(listing.mode, ReferrersMode::TagSchema);
    assert_eq!(listing.referrers.len(), 1);
    assert_eq!(listing.referrers[0].descriptor.digest, art.digest);
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_are_honoured_then_reported() {
    // Two 429s (Retry-After: 1) then success.
    let reg = SpecRegistry::start(SpecConfig {
        rate_limit_first_n: 2,
        ..Default::default()
    });
    let (client, repo) = open(&reg);
    assert_eq!(repo.referrers_mode().await.unwrap(), ReferrersMode::Api);
    // Retried after each 429 (how long it waited is not asserted: no wall-clock checks).
    assert_eq!(client.request_count(), 3);

    // Always 429: bounded attempts, then a clear RateLimited error.
    let reg = SpecRegistry::start(SpecConfig {
        rate_limit_first_n: 1000,
        ..Default::default()
    });
    let (client, repo) = open(&reg);
    let err = repo
        .blob_exists(&stella_types::Digest::sha256_of(b"x"))
        .await
        .unwrap_err();
    assert!(matches!(err, OciError::RateLimited(_)), "{err}");
    assert!(err.to_string().contains("429"), "{err}");
    assert_eq!(
        client.request_count(),
        u64::from(stella_oci::registry::client::MAX_RATE_LIMIT_ATTEMPTS)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_and_malformed_manifests_are_refused() {
    let reg = SpecRegistry::start(SpecConfig {
        oversized_manifest: true,
        ..Default::default()
    });
    let (_client, repo) = open(&reg);
    // Refused from Content-Length (HEAD or GET) without buffering 8 MiB.
    let err = repo.resolve_tag(OVERSIZED_TAG).await.unwrap_err();
    assert!(
        matches!(err, OciError::Manifest { .. } | OciError::Protocol(_)),
        "{err}"
    );
    assert!(err.to_string().contains("limit"), "{err}");

    let bad = reg.seed_manifest(REPO, Some("bad"), OCI_MANIFEST, b"{not json");
    let err = repo
        .fetch_manifest(&bad.parse().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, OciError::Manifest { .. }), "{err}");

    // A malformed fallback index is a Manifest error, not an empty listing.
    let subject = push_manifest_with_blobs(&repo, None, None, "s").await;
    reg.seed_manifest(
        REPO,
        Some(&subject.digest.referrers_tag()),
        OCI_INDEX,
        b"[1,2,3]",
    );
    repo.set_referrers_mode(ReferrersMode::TagSchema);
    let err = repo.list_referrers(&subject.digest, &[]).await.unwrap_err();
    assert!(matches!(err, OciError::Manifest { .. }), "{err}");

    let err = repo.resolve_tag("missing").await.unwrap_err();
    assert!(err.is_not_found());
    assert!(
        err.to_string()
            .contains(&format!("{}/{REPO}:missing", reg.host_port())),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn registry_dying_mid_push_leaves_no_index_entry() {
    // Enough requests for the probe and the blobs, then the connection drops.
    let reg = SpecRegistry::start(SpecConfig {
        fail_after_requests: Some(11),
        ..Default::default()
    });
    let (_client, repo) = open(&reg);
    repo.set_referrers_mode(ReferrersMode::TagSchema);
    let subject = push_manifest_with_blobs(&repo, None, None, "s").await; // 3+3+1 = 7 requests
    let art_layer = Descriptor::for_bytes("application/json", b"payload");
    repo.push_blob(&art_layer, BlobSource::Bytes(b"payload"), &NoProgress)
        .await
        .unwrap(); // HEAD+POST+PUT: 10
    let bytes = manifest_bytes(Some(&subject), Some("application/spdx+json"), &art_layer);
    // Request 11 (the manifest PUT) gets through; the index GET is dropped.
    let d = repo
        .push_manifest(OCI_MANIFEST, &bytes, None)
        .await
        .unwrap();
    let err = repo.add_referrer(&subject, &d).await.unwrap_err();
    assert!(matches!(err, OciError::Transport { .. }), "{err}");
    assert!(!reg.tags(REPO).contains(&subject.digest.referrers_tag()));
}
