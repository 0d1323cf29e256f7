//! The OpenVEX caps against a hostile registry, on the engine the runner
//! and `stella vex ingest` call (`stella_engine::vex::discover_vex`), with
//! 10,000 plain OpenVEX referrers on one image in the testkit's in-memory
//! store: under `maxReferrersPerImage` (1,000) the image is not examined at
//! all (no document is read) and the hit is reported; with a cap
//! above the count every referrer is examined, and the documents cap keeps
//! the first 1,000 and reports the rest.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use stella_attest::verify::TrustPolicy;
use stella_engine::vex::{VexLimits, VexRequest, discover_vex};
use stella_oci::store::{BlobSource, ContentWrite, NoProgress, ReferrersWrite};
use stella_testkit::mem_store::MemStore;
use stella_types::media_types::{EMPTY_JSON, OCI_EMPTY, OCI_MANIFEST};
use stella_types::{Descriptor, ImageManifest};

const REFERRERS: usize = 10_000;
const OPENVEX: &str = "application/openvex+json";

async fn push_manifest(store: &MemStore, m: &ImageManifest) -> Descriptor {
    store
        .push_manifest(OCI_MANIFEST, &m.to_json_bytes(), None)
        .await
        .unwrap()
}

fn manifest(
    config: Descriptor,
    layers: Vec<Descriptor>,
    subject: Option<Descriptor>,
) -> ImageManifest {
    ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.into()),
        artifact_type: subject.as_ref().map(|_| OPENVEX.to_string()),
        config,
        layers,
        subject,
        annotations: BTreeMap::new(),
    }
}

/// An image with `REFERRERS` plain OpenVEX referrers, each a distinct valid document.
async fn crowded_image(store: &MemStore) -> Descriptor {
    let empty = Descriptor::for_bytes(OCI_EMPTY, EMPTY_JSON);
    store
        .push_blob(&empty, BlobSource::Bytes(EMPTY_JSON), &NoProgress)
        .await
        .unwrap();
    let image = push_manifest(store, &manifest(empty.clone(), vec![], None)).await;
    for i in 0..REFERRERS {
        let doc = format!(
            r#"{{"@context":"https://openvex.dev/ns/v0.2.0","@id":"https://v/{i}","author":"A",
            "timestamp":"2024-05-01T00:00:00Z","version":1,
            "statements":[{{"vulnerability":{{"name":"CVE-2024-{i}"}},"status":"fixed"}}]}}"#
        );
        let layer = Descriptor::for_bytes(OPENVEX, doc.as_bytes());
        store
            .push_blob(&layer, BlobSource::Bytes(doc.as_bytes()), &NoProgress)
            .await
            .unwrap();
        let referrer = push_manifest(
            store,
            &manifest(empty.clone(), vec![layer], Some(image.clone())),
        )
        .await;
        store.add_referrer(&image, &referrer).await.unwrap();
    }
    image
}

fn request(image: &Descriptor, max_referrers: usize) -> VexRequest {
    VexRequest {
        image_name: "registry.example/app".into(),
        image: image.clone(),
        require_signatures: false,
        limits: VexLimits {
            max_referrers,
            max_document_bytes: 64 * 1024,
            max_documents: 1000,
        },
    }
}

#[tokio::test]
async fn ten_thousand_referrers_hit_the_caps_and_are_reported() {
    let store = MemStore::default();
    let image = crowded_image(&store).await;
    let now = time::OffsetDateTime::now_utc();

    let capped = discover_vex(&store, &request(&image, 1000), &TrustPolicy::default(), now)
        .await
        .unwrap();
    assert!(capped.evidence.is_empty(), "{:?}", capped.evidence.len());
    assert_eq!(capped.caps_hit.len(), 1, "{:?}", capped.caps_hit);
    assert!(
        capped.caps_hit[0].contains("10000 referrers")
            && capped.caps_hit[0].contains("over the cap of 1000 referrers per image"),
        "{:?}",
        capped.caps_hit
    );

    let examined = discover_vex(
        &store,
        &request(&image, 20_000),
        &TrustPolicy::default(),
        now,
    )
    .await
    .unwrap();
    assert_eq!(examined.evidence.len(), REFERRERS);
    assert_eq!(examined.accepted().count(), 1000);
    let over = examined
        .evidence
        .iter()
        .filter(|e| {
            e.outcome
                .as_ref()
                .is_err_and(|r| r.contains("over the documents"))
        })
        .count();
    assert_eq!(over, REFERRERS - 1000);
    assert!(
        examined
            .caps_hit
            .iter()
            .any(|c| c.contains("10000 documents") && c.contains("over the cap of 1000")),
        "{:?}",
        examined.caps_hit
    );
}
