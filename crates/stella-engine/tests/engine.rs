//! The engine as a server would call it: images and referrers in an OCI
//! layout built in a temp dir, keys made in memory, the policy parsed from
//! YAML, and the clock injected. No files are read by the engine, no
//! environment variable is consulted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use stella_attest::verify::TrustPolicy;
use stella_crypto::{KeyKind, PrivateKey};
use stella_engine::image::{VerifyImageRequest, verify_image};
use stella_engine::{AttestationsRequest, NamedSigner, Trust, verify_attestations};
use stella_oci::artifact::{ArtifactSpec, LayerSource, push_referrer};
use stella_oci::layout::OciLayout;
use stella_oci::store::{BlobSource, ContentWrite, NoProgress};
use stella_types::media_types::{self, annotations};
use stella_types::{Descriptor, Digest};
use stella_verify::policy::Policy;
use stella_verify::{Report, Verdict};
use time::OffsetDateTime;
use time::macros::datetime;

const SLSA: &str = "https://slsa.dev/provenance/v1";
const SBOM: &str = "application/spdx+json";
/// When the evidence was made.
const MADE: OffsetDateTime = datetime!(2025-01-10 12:00:00 UTC);

struct Fixture {
    _dir: tempfile::TempDir,
    layout: OciLayout,
    image: Descriptor,
    ci: PrivateKey,
}

async fn image(seed: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let layout = OciLayout::open_or_create(&dir.path().join("layout")).unwrap();
    let layer = format!("layer {seed}").into_bytes();
    let layer_d = Descriptor::for_bytes(media_types::OCI_LAYER_TAR, &layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer_d.digest.to_string()]}
    }))
    .unwrap();
    let config_d = Descriptor::for_bytes(media_types::OCI_CONFIG, &config);
    for (d, b) in [(&layer_d, &layer), (&config_d, &config)] {
        layout
            .push_blob(d, BlobSource::Bytes(b), &NoProgress)
            .await
            .unwrap();
    }
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": media_types::OCI_MANIFEST,
        "config": config_d, "layers": [layer_d],
    }))
    .unwrap();
    let image = layout
        .push_manifest(media_types::OCI_MANIFEST, &manifest, Some("v1"))
        .await
        .unwrap();
    Fixture {
        _dir: dir,
        layout,
        image,
        ci: PrivateKey::generate(KeyKind::EcdsaP256).unwrap(),
    }
}

fn created(at: OffsetDateTime) -> BTreeMap<String, String> {
    BTreeMap::from([(
        annotations::CREATED.to_string(),
        stella_types::timestamp::rfc3339(at),
    )])
}

/// Signs a provenance statement about `about` with `key` and attaches it to
/// the fixture image, the layer under `layer_type` (the bundle's own media
/// type when `None`).
async fn attach_provenance(
    f: &Fixture,
    about: &Digest,
    key: &PrivateKey,
    artifact_type: Option<&str>,
    layer_type: Option<&str>,
) -> Digest {
    let signed = stella_attest::sign::attest(
        "app",
        about,
        SLSA,
        serde_json::json!({"buildDefinition": {"buildType": "x"}}),
        key,
        &[],
    )
    .unwrap();
    let spec = ArtifactSpec {
        artifact_type: artifact_type.unwrap_or(&signed.media_type).to_string(),
        layers: vec![LayerSource::Bytes {
            bytes: signed.bundle_json.clone(),
            media_type: layer_type.unwrap_or(&signed.media_type).to_string(),
            title: None,
        }],
        annotations: created(MADE),
    };
    push_referrer(&f.layout, &f.image, &spec, &NoProgress)
        .await
        .unwrap()
        .descriptor
        .digest
}

async fn attach_sbom(f: &Fixture) -> Digest {
    let spec = ArtifactSpec {
        artifact_type: SBOM.into(),
        layers: vec![LayerSource::Bytes {
            bytes: br#"{"spdxVersion":"SPDX-2.3"}"#.to_vec(),
            media_type: SBOM.into(),
            title: Some("sbom.spdx.json".into()),
        }],
        annotations: created(MADE),
    };
    push_referrer(&f.layout, &f.image, &spec, &NoProgress)
        .await
        .unwrap()
        .descriptor
        .digest
}

fn policy(max_age: Option<&str>) -> Policy {
    let age = max_age
        .map(|a| format!("    maxAge: {a}\n"))
        .unwrap_or_default();
    let yaml = format!(
        "version: 1\nsigners:\n  ci:\n    keys: [ci.pub]\nrequirements:\n\
         \x20 - name: sbom\n    type: {SBOM}\n    unsigned: ignore\n\
         \x20 - name: provenance\n    type: slsaprovenance\n    signers: [ci]\n{age}"
    );
    let (p, diagnostics) = Policy::parse(yaml.as_bytes(), &|a| {
        stella_types::predicate_types::resolve_alias(a).map(str::to_string)
    });
    p.unwrap_or_else(|| panic!("{diagnostics:?}"))
}

fn trust(key: &PrivateKey) -> Trust {
    Trust {
        signers: vec![NamedSigner {
            name: "ci".into(),
            trust: TrustPolicy {
                keys: vec![key.public_key().clone()],
                ..TrustPolicy::default()
            },
        }],
    }
}

async fn verify(f: &Fixture, policy: Policy, now: OffsetDateTime) -> Report {
    let request = VerifyImageRequest {
        reference: "app@".to_string() + &f.image.digest.to_string(),
        subject: f.image.clone(),
        policy,
        depth: 2,
        report_time: None,
    };
    verify_image(&f.layout, &request, &trust(&f.ci), now)
        .await
        .unwrap()
}

fn requirement<'a>(r: &'a Report, name: &str) -> &'a stella_verify::report::RequirementResult {
    r.requirements.iter().find(|q| q.name == name).unwrap()
}

#[tokio::test]
async fn signed_provenance_and_plain_sbom_pass() {
    let f = image("pass").await;
    attach_sbom(&f).await;
    let prov = attach_provenance(&f, &f.image.digest, &f.ci, None, None).await;
    let now = MADE + time::Duration::days(1);
    let report = verify(&f, policy(None), now).await;
    assert_eq!(report.verdict, Verdict::Pass, "{}", report.to_text());
    assert_eq!(requirement(&report, "provenance").evidence, vec![prov]);
    assert_eq!(report.evaluated_at, "2025-01-11T12:00:00Z");
}

/// The injected clock decides ages: the same evidence passes a 30-day
/// limit one day after it was made and fails it a year later.
#[tokio::test]
async fn max_age_is_judged_at_the_injected_time() {
    let f = image("age").await;
    attach_sbom(&f).await;
    attach_provenance(&f, &f.image.digest, &f.ci, None, None).await;
    let fresh = verify(&f, policy(Some("30d")), MADE + time::Duration::days(1)).await;
    assert_eq!(fresh.verdict, Verdict::Pass, "{}", fresh.to_text());
    let stale = verify(&f, policy(Some("30d")), MADE + time::Duration::days(365)).await;
    assert_eq!(stale.verdict, Verdict::Fail, "{}", stale.to_text());
    let reason = &requirement(&stale, "provenance").reason;
    assert!(reason.contains("over the 30d limit"), "{reason}");
}

/// A report time only stamps `evaluatedAt`; it never moves the evaluation.
#[tokio::test]
async fn report_time_does_not_loosen_max_age() {
    let f = image("stamp").await;
    attach_sbom(&f).await;
    attach_provenance(&f, &f.image.digest, &f.ci, None, None).await;
    let request = VerifyImageRequest {
        reference: "app".into(),
        subject: f.image.clone(),
        policy: policy(Some("30d")),
        depth: 2,
        report_time: Some(MADE),
    };
    let now = MADE + time::Duration::days(365);
    let report = verify_image(&f.layout, &request, &trust(&f.ci), now)
        .await
        .unwrap();
    assert_eq!(report.verdict, Verdict::Fail, "{}", report.to_text());
    assert_eq!(report.evaluated_at, "2025-01-10T12:00:00Z");
}

#[tokio::test]
async fn untrusted_signer_and_other_subject_never_satisfy() {
    let f = image("bad").await;
    attach_sbom(&f).await;
    let stranger = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
    let by_stranger = attach_provenance(&f, &f.image.digest, &stranger, None, None).await;
    let elsewhere = Digest::sha256_of(b"another image");
    let about_other = attach_provenance(&f, &elsewhere, &f.ci, None, None).await;
    let report = verify(&f, policy(None), MADE).await;
    assert_eq!(report.verdict, Verdict::Fail, "{}", report.to_text());
    let ev = |d: &Digest| report.evidence.iter().find(|e| &e.digest == d).unwrap();
    assert!(ev(&by_stranger).satisfies.is_empty());
    assert!(ev(&about_other).satisfies.is_empty());
    let why = &ev(&about_other).reason;
    assert!(why.contains(&elsewhere.to_string()), "{why}");
}

/// An attestation pushed by a generic client: the layer has a default type
/// (`application/octet-stream`) and only the artifactType says what it is.
/// Both engines read it by content.
#[tokio::test]
async fn generic_layer_attestation_is_read_by_content() {
    let f = image("generic").await;
    attach_sbom(&f).await;
    let prov = attach_provenance(
        &f,
        &f.image.digest,
        &f.ci,
        Some(media_types::SIGSTORE_BUNDLE_V03),
        Some("application/octet-stream"),
    )
    .await;
    let report = verify(&f, policy(None), MADE).await;
    assert_eq!(report.verdict, Verdict::Pass, "{}", report.to_text());
    assert_eq!(
        requirement(&report, "provenance").evidence,
        vec![prov.clone()]
    );

    let request = AttestationsRequest {
        image_name: "app".into(),
        image: f.image.clone(),
        predicate_type: None,
    };
    let policy = TrustPolicy {
        keys: vec![f.ci.public_key().clone()],
        ..TrustPolicy::default()
    };
    let r = verify_attestations(&f.layout, &request, &policy, MADE)
        .await
        .unwrap();
    assert!(r.verified, "{r:?}");
    assert_eq!(r.attestations.len(), 1);
    assert_eq!(r.attestations[0].referrer, prov.to_string());
    assert_eq!(r.attestations[0].media_type, "application/octet-stream");
    assert_eq!(r.attestations[0].predicate_type.as_deref(), Some(SLSA));
}

/// A generic layer that holds no attestation is a failure, not a pass.
#[tokio::test]
async fn generic_layer_without_an_attestation_fails() {
    let f = image("junk").await;
    let spec = ArtifactSpec {
        artifact_type: media_types::DSSE_ENVELOPE.into(),
        layers: vec![LayerSource::Bytes {
            bytes: b"not an envelope".to_vec(),
            media_type: media_types::OCI_LAYER_TAR.into(),
            title: None,
        }],
        annotations: created(MADE),
    };
    push_referrer(&f.layout, &f.image, &spec, &NoProgress)
        .await
        .unwrap();
    let request = AttestationsRequest {
        image_name: "app".into(),
        image: f.image.clone(),
        predicate_type: None,
    };
    let policy = TrustPolicy {
        keys: vec![f.ci.public_key().clone()],
        ..TrustPolicy::default()
    };
    let r = verify_attestations(&f.layout, &request, &policy, MADE)
        .await
        .unwrap();
    assert!(!r.verified);
    assert_eq!(r.attestations.len(), 1, "{r:?}");
    assert!(
        r.attestations[0]
            .reason
            .contains("is not a DSSE envelope or sigstore bundle"),
        "{}",
        r.attestations[0].reason
    );
}

/// In-toto typed referrers: a bare statement is an attestation, but
/// unsigned (a failure for `verify attestation`, unsigned evidence for the
/// policy); an envelope under the in-toto type is read by content.
#[tokio::test]
async fn in_toto_typed_referrers() {
    let f = image("intoto").await;
    let statement = serde_json::to_vec(&serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "app", "digest": {"sha256": f.image.digest.hex()}}],
        "predicateType": SLSA,
        "predicate": {},
    }))
    .unwrap();
    let bare = push_referrer(
        &f.layout,
        &f.image,
        &ArtifactSpec {
            artifact_type: media_types::IN_TOTO_JSON.into(),
            layers: vec![LayerSource::Bytes {
                bytes: statement,
                media_type: media_types::IN_TOTO_JSON.into(),
                title: None,
            }],
            annotations: created(MADE),
        },
        &NoProgress,
    )
    .await
    .unwrap()
    .descriptor
    .digest;
    let signed = stella_attest::sign::attest(
        "app",
        &f.image.digest,
        SLSA,
        serde_json::json!({}),
        &f.ci,
        &[],
    )
    .unwrap();
    let envelope = serde_json::to_vec(
        &serde_json::from_slice::<serde_json::Value>(&signed.bundle_json).unwrap()["dsseEnvelope"],
    )
    .unwrap();
    let wrapped = push_referrer(
        &f.layout,
        &f.image,
        &ArtifactSpec {
            artifact_type: media_types::IN_TOTO_JSON.into(),
            layers: vec![LayerSource::Bytes {
                bytes: envelope,
                media_type: media_types::IN_TOTO_JSON.into(),
                title: None,
            }],
            annotations: created(MADE),
        },
        &NoProgress,
    )
    .await
    .unwrap()
    .descriptor
    .digest;

    let request = AttestationsRequest {
        image_name: "app".into(),
        image: f.image.clone(),
        predicate_type: None,
    };
    let policy = TrustPolicy {
        keys: vec![f.ci.public_key().clone()],
        ..TrustPolicy::default()
    };
    let r = verify_attestations(&f.layout, &request, &policy, MADE)
        .await
        .unwrap();
    let item = |d: &Digest| {
        r.attestations
            .iter()
            .find(|i| i.referrer == d.to_string())
            .unwrap()
    };
    assert!(!item(&bare).verified);
    assert!(
        item(&bare).reason.contains("unsigned in-toto statement"),
        "{r:?}"
    );
    assert!(item(&wrapped).verified, "{r:?}");
    assert!(!r.verified);

    let report = verify(&f, policy_in_toto(), MADE).await;
    let ev = |d: &Digest| report.evidence.iter().find(|e| &e.digest == d).unwrap();
    assert_eq!(
        ev(&bare).status,
        stella_verify::report::EvidenceStatus::Unsigned,
        "{}",
        report.to_text()
    );
    assert_eq!(
        ev(&wrapped).status,
        stella_verify::report::EvidenceStatus::Verified,
        "{}",
        report.to_text()
    );
}

fn policy_in_toto() -> Policy {
    let yaml = "version: 1\nsigners:\n  ci:\n    keys: [ci.pub]\nrequirements:\n\
                \x20 - name: provenance\n    type: slsaprovenance\n    signers: [ci]\n";
    let (p, d) = Policy::parse(yaml.as_bytes(), &|a| {
        stella_types::predicate_types::resolve_alias(a).map(str::to_string)
    });
    p.unwrap_or_else(|| panic!("{d:?}"))
}
