//! Importing a bundle made without its image (evidence only) into a target
//! that lacks the image: refused before anything is uploaded, with the
//! typed `SubjectMissing` error, on a real registry (Debian's
//! `docker-registry`, distribution 2.8, started by `stella_testkit`) and on
//! an OCI layout; accepted once the image is in the target.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;

use stella_bundle::{
    BundleError, Compression, ExportOptions, MissingSubject, ReadLimits, Selection, codes,
    import_bundle, import_bundle_with, plan_export, write_bundle_to_path,
};
use stella_oci::artifact::{ArtifactSpec, LayerSource, push_referrer};
use stella_oci::layout::OciLayout;
use stella_oci::registry::{RegistryClient, RegistryOptions, Repository};
use stella_oci::store::*;
use stella_testkit::DistributionRegistry;
use stella_types::media_types::{OCI_CONFIG, OCI_LAYER_TAR, OCI_MANIFEST};
use stella_types::{Descriptor, ImageManifest, Reference};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn repository(host_port: &str, name: &str) -> Repository {
    let Reference::Registry(r) = Reference::parse(&format!("{host_port}/{name}:v1")).unwrap()
    else {
        panic!("not a registry reference")
    };
    RegistryClient::new(RegistryOptions {
        plain_http: true,
        ..RegistryOptions::default()
    })
    .unwrap()
    .repository(&r)
}

/// The parts of a small image: config, one layer, and the manifest over them.
struct Image {
    config: (Descriptor, Vec<u8>),
    layer: (Descriptor, Vec<u8>),
    manifest: Vec<u8>,
}

fn image() -> Image {
    let layer = b"not really a tar, but the registry does not look inside".to_vec();
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let cfg = Descriptor::for_bytes(OCI_CONFIG, &config);
    let lay = Descriptor::for_bytes(OCI_LAYER_TAR, &layer);
    let m = ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.into()),
        artifact_type: None,
        config: cfg.clone(),
        layers: vec![lay.clone()],
        subject: None,
        annotations: BTreeMap::new(),
    };
    Image {
        config: (cfg, config),
        layer: (lay, layer),
        manifest: m.to_json_bytes(),
    }
}

/// Pushes the image (blobs, then the manifest tagged `v1`) into `store`.
async fn push_image<S: ContentWrite>(store: &S, img: &Image) -> Descriptor {
    for (d, b) in [&img.config, &img.layer] {
        store
            .push_blob(d, BlobSource::Bytes(b), &NoProgress)
            .await
            .unwrap();
    }
    store
        .push_manifest(OCI_MANIFEST, &img.manifest, Some("v1"))
        .await
        .unwrap()
}

/// A source layout with the image and an SBOM referrer; writes an
/// evidence-only bundle (no image) to `out`. Returns the image descriptor
/// and the SBOM layer descriptor.
async fn evidence_only_bundle(dir: &Path, img: &Image, out: &Path) -> (Descriptor, Descriptor) {
    let src = OciLayout::open_or_create(&dir.join("src")).unwrap();
    let subject = push_image(&src, img).await;
    let sbom = br#"{"spdxVersion":"SPDX-2.3","name":"evidence only"}"#.to_vec();
    let spec = ArtifactSpec {
        artifact_type: "application/spdx+json".into(),
        layers: vec![LayerSource::Bytes {
            bytes: sbom.clone(),
            media_type: "application/spdx+json".into(),
            title: Some("sbom.spdx.json".into()),
        }],
        annotations: BTreeMap::new(),
    };
    push_referrer(&src, &subject, &spec, &NoProgress)
        .await
        .unwrap();
    let opts = ExportOptions {
        selection: Selection {
            include_image: false,
            ..Selection::default()
        },
        tag: Some("v1".into()),
        ..ExportOptions::default()
    };
    let (plan, _) = plan_export(&src, &subject, &opts).await.unwrap();
    assert!(!plan.manifest.selection.include_image);
    write_bundle_to_path(&src, &plan, None, Compression::Gzip, out, false)
        .await
        .unwrap();
    (
        subject,
        Descriptor::for_bytes("application/spdx+json", &sbom),
    )
}

fn expect_subject_missing(
    r: Result<stella_bundle::TransferReport, BundleError>,
    subject: &Descriptor,
) {
    match r {
        Err(BundleError::SubjectMissing { subject: s, tag }) => {
            assert_eq!(s, subject.digest);
            assert_eq!(tag, "v1");
        }
        other => panic!("expected SubjectMissing, got {other:?}"),
    }
}

/// Requests that write to the registry (blob uploads and manifest puts).
fn writes(reg: &DistributionRegistry) -> Vec<String> {
    reg.access_log_lines()
        .into_iter()
        .filter(|l| {
            ["\"POST ", "\"PUT ", "\"PATCH "]
                .iter()
                .any(|m| l.contains(m))
        })
        .collect()
}

#[test]
fn registry_lacking_the_image_gets_nothing_then_accepts_after_the_image_is_copied() {
    let reg = DistributionRegistry::start_plain().unwrap();
    let host = reg.host_port();
    let tmp = tempfile::tempdir().unwrap();
    let img = image();
    let bundle = tmp.path().join("evidence.tar.gz");
    block_on(async {
        let (subject, sbom_layer) = evidence_only_bundle(tmp.path(), &img, &bundle).await;
        let dst = repository(&host, "mirror");
        assert!(writes(&reg).is_empty());

        let refused = import_bundle(&bundle, &dst, None, ReadLimits::default()).await;
        let err = refused.as_ref().map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("nothing was uploaded"), "{err}");
        assert!(!err.contains("--"), "a library error names no flag: {err}");
        expect_subject_missing(refused, &subject);
        assert_eq!(
            BundleError::SubjectMissing {
                subject: subject.digest.clone(),
                tag: "v1".into()
            }
            .code(),
            codes::SUBJECT_MISSING
        );
        // Nothing was written: no upload, no manifest, and the evidence blob is absent.
        assert_eq!(writes(&reg), Vec::<String>::new());
        assert!(!dst.blob_exists(&sbom_layer.digest).await.unwrap());
        assert!(!dst.manifest_exists(&subject.digest).await.unwrap());

        // Once the image is there (same digest), the evidence goes in.
        let copied = push_image(&dst, &img).await;
        assert_eq!(copied.digest, subject.digest);
        let r = import_bundle(&bundle, &dst, None, ReadLimits::default())
            .await
            .unwrap();
        assert_eq!(r.referrers_recorded, 1, "{r:?}");
        assert!(dst.blob_exists(&sbom_layer.digest).await.unwrap());
        let listed = dst.list_referrers(&subject.digest, &[]).await.unwrap();
        assert_eq!(listed.referrers.len(), 1);
        assert_eq!(
            listed.referrers[0].descriptor.artifact_type.as_deref(),
            Some("application/spdx+json")
        );
    });
}

#[test]
fn layout_lacking_the_image_gets_no_blob_then_accepts_after_the_image_is_copied() {
    let tmp = tempfile::tempdir().unwrap();
    let img = image();
    let bundle = tmp.path().join("evidence.tar.gz");
    block_on(async {
        let (subject, sbom_layer) = evidence_only_bundle(tmp.path(), &img, &bundle).await;
        let dst_dir = tmp.path().join("dst");
        let dst = OciLayout::open_or_create(&dst_dir).unwrap();
        let refused = import_bundle(&bundle, &dst, None, ReadLimits::default()).await;
        expect_subject_missing(refused, &subject);
        let blobs = dst_dir.join("blobs").join("sha256");
        let count = std::fs::read_dir(&blobs).map(|d| d.count()).unwrap_or(0);
        assert_eq!(count, 0, "blobs were written to the layout");
        assert!(dst.resolve_tag("v1").await.is_err());

        push_image(&dst, &img).await;
        let r = import_bundle(&bundle, &dst, None, ReadLimits::default())
            .await
            .unwrap();
        assert_eq!(r.referrers_recorded, 1, "{r:?}");
        assert!(dst.blob_exists(&sbom_layer.digest).await.unwrap());
    });
}

/// `verify image --bundle` reads an evidence-only bundle through a private
/// scratch layout: there the missing image is allowed on request.
#[test]
fn a_scratch_store_may_take_the_evidence_without_the_image() {
    let tmp = tempfile::tempdir().unwrap();
    let img = image();
    let bundle = tmp.path().join("evidence.tar.gz");
    block_on(async {
        let (subject, sbom_layer) = evidence_only_bundle(tmp.path(), &img, &bundle).await;
        let scratch = OciLayout::open_or_create(&tmp.path().join("scratch")).unwrap();
        let r = import_bundle_with(
            &bundle,
            &scratch,
            Some("subject"),
            ReadLimits::default(),
            MissingSubject::AllowInScratchStore,
        )
        .await
        .unwrap();
        assert_eq!(r.referrers_recorded, 1, "{r:?}");
        assert!(scratch.blob_exists(&sbom_layer.digest).await.unwrap());
        assert_eq!(
            scratch.resolve_tag("subject").await.unwrap().digest,
            subject.digest
        );
        // The default still refuses on a fresh store.
        let other = OciLayout::open_or_create(&tmp.path().join("other")).unwrap();
        let refused = import_bundle_with(
            &bundle,
            &other,
            None,
            ReadLimits::default(),
            MissingSubject::default(),
        )
        .await;
        expect_subject_missing(refused, &subject);
    });
}

#[test]
fn a_bundle_with_its_image_needs_nothing_in_the_target() {
    let tmp = tempfile::tempdir().unwrap();
    let img = image();
    block_on(async {
        let src = OciLayout::open_or_create(&tmp.path().join("src")).unwrap();
        let subject = push_image(&src, &img).await;
        let opts = ExportOptions {
            selection: Selection {
                include_image: true,
                ..Selection::default()
            },
            ..ExportOptions::default()
        };
        let (plan, _) = plan_export(&src, &subject, &opts).await.unwrap();
        let bundle = tmp.path().join("full.tar");
        write_bundle_to_path(&src, &plan, None, Compression::None, &bundle, false)
            .await
            .unwrap();
        let dst = OciLayout::open_or_create(&tmp.path().join("dst")).unwrap();
        let r = import_bundle(&bundle, &dst, None, ReadLimits::default())
            .await
            .unwrap();
        assert_eq!(r.blobs_pushed, 2, "{r:?}");
        assert!(dst.manifest_exists(&subject.digest).await.unwrap());
    });
}
