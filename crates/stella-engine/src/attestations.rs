//! `verify attestation`: find the attestations attached to an image (OCI
//! 1.1 referrers whose artifactType is an attestation format, and cosign
//! legacy `sha256-<hex>.att` tags), verify each against one trust policy
//! (keys, CA roots, keyless), check that its statement is about the image,
//! and filter by predicate type.
//!
//! Docker buildx attestation manifests listed in the image index (when the
//! image named is an index) are searched too, but only what is signed is
//! reported: a layer that is a sigstore bundle or DSSE envelope, checked
//! against the platform manifest `vnd.docker.reference.digest` names (which
//! must be an image of the same index), and an attestation referrer of the
//! attestation manifest, checked against the attestation manifest. Bare
//! buildx statements are unsigned: `verify image` counts them, this does
//! not report them (they would only fail it).
//!
//! A broken attestation found in the store is a verification failure in the
//! report (it is evidence, not the caller's input); only store failures are
//! errors.
//!
//! Not here: resolving the reference, loading keys, printing.

use serde::Serialize;
use stella_attest::verify::{AttestationVerdict, FailureKind, TrustPolicy, verify_attestation};
use stella_oci::referrers::{
    DOCKER_REFERENCE_TYPE, ReferrerNode, buildx_attestations, fetch_index, is_index_media_type,
    walk_referrers,
};
use stella_oci::store::{ContentRead, ReferrersRead};
use stella_types::media_types::{AttestationFormat, annotations};
use stella_types::{Descriptor, Digest, Manifest};
use time::OffsetDateTime;

use crate::error::EngineError;
use crate::layers::{attestation_layers, read_layer};

/// What to verify.
#[derive(Debug, Clone)]
pub struct AttestationsRequest {
    /// The image's name as the report shows it (`host/repo`).
    pub image_name: String,
    /// The resolved image manifest.
    pub image: Descriptor,
    /// Keep only attestations of this (resolved) predicate type; failures
    /// whose type is unknown are kept.
    pub predicate_type: Option<String>,
}

/// One attestation found and judged.
#[derive(Debug, Clone, Serialize)]
pub struct AttestationItem {
    /// The referrer manifest (or legacy tag manifest) digest.
    pub referrer: String,
    /// The layer holding the bundle or envelope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    /// cosign legacy tag, when found that way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legacy_tag: Option<String>,
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub verified: bool,
    /// Verified predicate type, or (when not verified) the unverified claim.
    #[serde(rename = "predicateType", skip_serializing_if = "Option::is_none")]
    pub predicate_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureKind>,
    /// The digest the attestation was checked to be about (the image, or for
    /// a buildx attestation manifest the platform manifest it names).
    #[serde(skip)]
    pub about: Option<Digest>,
    /// When verified: the in-toto statement bytes whose signature verified
    /// (for consumers that read the predicate, e.g. OpenVEX ingestion).
    #[serde(skip)]
    pub verified_payload: Option<Vec<u8>>,
}

/// The result of [`verify_attestations`].
#[derive(Debug, Clone, Serialize)]
pub struct AttestationsReport {
    pub image: String,
    pub digest: String,
    #[serde(rename = "predicateType", skip_serializing_if = "Option::is_none")]
    pub predicate_type: Option<String>,
    /// At least one attestation was found and every one found verified.
    pub verified: bool,
    pub attestations: Vec<AttestationItem>,
}

/// The document that was checked: its bytes, and the digest it had to be about.
struct Checked<'a> {
    bytes: &'a [u8],
    about: &'a Digest,
}

fn item_from(
    verdict: AttestationVerdict,
    checked: Checked<'_>,
    referrer: &Digest,
    layer: &Descriptor,
    legacy_tag: Option<String>,
    annotation_type: Option<&str>,
) -> AttestationItem {
    let verified_payload = if verdict.verified {
        crate::vex::verified_payload(checked.bytes, &layer.media_type)
    } else {
        None
    };
    let predicate_type = verdict
        .predicate_type
        .clone()
        .or(verdict.claimed_predicate_type.clone())
        .or(annotation_type.map(str::to_string));
    AttestationItem {
        referrer: referrer.to_string(),
        layer: Some(layer.digest.to_string()),
        legacy_tag,
        media_type: layer.media_type.clone(),
        verified: verdict.verified,
        predicate_type,
        signer: verdict.signer,
        reason: verdict.reason,
        failure: verdict.failure,
        about: Some(checked.about.clone()),
        verified_payload,
    }
}

fn failed_item(
    referrer: &Digest,
    legacy_tag: Option<String>,
    media_type: &str,
    reason: String,
    annotation_type: Option<&str>,
) -> AttestationItem {
    AttestationItem {
        referrer: referrer.to_string(),
        layer: None,
        legacy_tag,
        media_type: media_type.to_string(),
        verified: false,
        predicate_type: annotation_type.map(str::to_string),
        signer: None,
        reason,
        failure: Some(FailureKind::Failed),
        about: None,
        verified_payload: None,
    }
}

/// Finds and verifies every attestation of `request.image` with `trust`,
/// certificate chains checked at `now` unless `trust` fixes a time.
pub async fn verify_attestations<S: ContentRead + ReferrersRead>(
    store: &S,
    request: &AttestationsRequest,
    trust: &TrustPolicy,
    now: OffsetDateTime,
) -> Result<AttestationsReport, EngineError> {
    let mut trust = trust.clone();
    trust.verification_time = Some(crate::trust::at(&trust, now));
    let image = &request.image.digest;
    let nodes = walk_referrers(store, image, &[], 1)
        .await
        .map_err(|source| EngineError::ListReferrers {
            subject: image.clone(),
            source,
        })?;
    let mut items = Vec::new();
    for node in nodes.iter().filter(|n| is_candidate(n)) {
        items.extend(check_referrer(store, node, image, &trust).await?);
    }
    items.extend(signed_buildx_items(store, &request.image, &trust).await?);
    if let Some(w) = &request.predicate_type {
        items.retain(|i| i.predicate_type.as_deref().is_none_or(|t| t == w));
    }
    Ok(AttestationsReport {
        image: request.image_name.clone(),
        digest: image.to_string(),
        predicate_type: request.predicate_type.clone(),
        verified: !items.is_empty() && items.iter().all(|i| i.verified),
        attestations: items,
    })
}

/// The signed attestations of the buildx attestation manifests of an image
/// index (see the module docs); nothing for a platform manifest.
async fn signed_buildx_items<S: ContentRead + ReferrersRead>(
    store: &S,
    image: &Descriptor,
    trust: &TrustPolicy,
) -> Result<Vec<AttestationItem>, EngineError> {
    if !is_index_media_type(&image.media_type) {
        return Ok(Vec::new());
    }
    let fetch_err = |source| EngineError::FetchReferrer {
        digest: image.digest.clone(),
        source,
    };
    let index = fetch_index(store, &image.digest).await.map_err(fetch_err)?;
    let images: Vec<&Digest> = index
        .manifests
        .iter()
        .filter(|d| d.annotation(DOCKER_REFERENCE_TYPE).is_none())
        .map(|d| &d.digest)
        .collect();
    let mut items = Vec::new();
    for att in buildx_attestations(&index, None) {
        let d = &att.descriptor.digest;
        let referrers = walk_referrers(store, d, &[], 1).await.map_err(|source| {
            EngineError::ListReferrers {
                subject: d.clone(),
                source,
            }
        })?;
        for node in referrers.iter().filter(|n| is_candidate(n)) {
            items.extend(check_referrer(store, node, d, trust).await?);
        }
        items.extend(
            signed_buildx_layers(store, &att.descriptor, &att.about, &images, trust).await?,
        );
    }
    Ok(items)
}

/// The signed layers (bundle or DSSE envelope) of one buildx attestation
/// manifest, verified against `about` when it is one of `images`.
async fn signed_buildx_layers<S: ContentRead>(
    store: &S,
    att: &Descriptor,
    about: &Digest,
    images: &[&Digest],
    trust: &TrustPolicy,
) -> Result<Vec<AttestationItem>, EngineError> {
    let fetched =
        store
            .fetch_manifest(&att.digest)
            .await
            .map_err(|source| EngineError::FetchReferrer {
                digest: att.digest.clone(),
                source,
            })?;
    let Ok(Manifest::Image(manifest)) = Manifest::parse(&fetched.bytes, Some(&att.media_type))
    else {
        return Ok(Vec::new());
    };
    let mut items = Vec::new();
    for layer in attestation_layers(&manifest, "")
        .into_iter()
        .filter(|l| l.declared.is_signed())
    {
        let l = &layer.descriptor;
        let layer_type = l.annotation(stella_oci::referrers::IN_TOTO_PREDICATE_TYPE);
        if !images.contains(&about) {
            items.push(failed_item(
                &att.digest,
                None,
                &l.media_type,
                format!("buildx attestation manifest is about {about}, not an image of this index"),
                layer_type,
            ));
            continue;
        }
        match read_layer(store, &layer).await {
            Ok(bytes) => items.push(item_from(
                verify_attestation(&bytes, &l.media_type, about, trust),
                Checked {
                    bytes: &bytes,
                    about,
                },
                &att.digest,
                l,
                None,
                layer_type,
            )),
            Err(e) => items.push(failed_item(
                &att.digest,
                None,
                &l.media_type,
                format!("cannot fetch layer {}: {e}", l.digest),
                layer_type,
            )),
        }
    }
    Ok(items)
}

/// A cosign `.att` tag, or a referrer whose artifactType is an attestation.
fn is_candidate(node: &ReferrerNode) -> bool {
    match node.legacy.as_deref() {
        Some("att") => true,
        Some(_) => false,
        None => node
            .descriptor
            .artifact_type
            .as_deref()
            .is_some_and(|t| AttestationFormat::of_media_type(t).is_attestation()),
    }
}

/// Verifies the attestation layers of one referrer (one item per layer, or
/// one failed item when the referrer cannot hold any).
async fn check_referrer<S: ContentRead>(
    store: &S,
    node: &ReferrerNode,
    image: &Digest,
    trust: &TrustPolicy,
) -> Result<Vec<AttestationItem>, EngineError> {
    let d = &node.descriptor;
    let legacy_tag = node.legacy.as_ref().map(|_| {
        d.annotation(annotations::REF_NAME)
            .unwrap_or("")
            .to_string()
    });
    let ann_type = d.annotation(annotations::SIGSTORE_PREDICATE_TYPE);
    let artifact_type = d.artifact_type.as_deref().unwrap_or("");
    let failed = |media_type: &str, reason: &str| {
        vec![failed_item(
            &d.digest,
            legacy_tag.clone(),
            media_type,
            reason.to_string(),
            ann_type,
        )]
    };
    if node.dangling {
        return Ok(failed(
            artifact_type,
            "listed as a referrer but the manifest is missing",
        ));
    }
    let fetched =
        store
            .fetch_manifest(&d.digest)
            .await
            .map_err(|source| EngineError::FetchReferrer {
                digest: d.digest.clone(),
                source,
            })?;
    let manifest = match Manifest::parse(&fetched.bytes, Some(&fetched.descriptor.media_type)) {
        Ok(Manifest::Image(m)) => m,
        Ok(Manifest::Index(_)) => {
            return Ok(failed(
                "",
                "attestation referrer is an index, not a manifest",
            ));
        }
        Err(e) => return Ok(failed("", &format!("referrer manifest unreadable: {e}"))),
    };
    // The subject recorded in the referrer must be this image (the signed
    // statement is checked again below; this catches mis-filed referrers).
    if node.legacy.is_none() && manifest.subject.as_ref().map(|s| &s.digest) != Some(image) {
        return Ok(failed("", "referrer manifest's subject is not this image"));
    }
    let own_type = manifest.artifact_type.as_deref().unwrap_or(artifact_type);
    let layers = attestation_layers(
        &manifest,
        if artifact_type.is_empty() {
            own_type
        } else {
            artifact_type
        },
    );
    if layers.is_empty() {
        return Ok(failed(
            artifact_type,
            "attestation artifact has no bundle or DSSE envelope layer",
        ));
    }
    let mut items = Vec::new();
    for layer in layers {
        let l = &layer.descriptor;
        let layer_type = l.annotation("predicateType").or(ann_type);
        let bytes = match read_layer(store, &layer).await {
            Ok(bytes) => bytes,
            Err(e) => {
                items.push(failed_item(
                    &d.digest,
                    legacy_tag.clone(),
                    &l.media_type,
                    format!("cannot fetch layer {}: {e}", l.digest),
                    layer_type,
                ));
                continue;
            }
        };
        let verdict = verify_attestation(&bytes, &l.media_type, image, trust);
        items.push(item_from(
            verdict,
            Checked {
                bytes: &bytes,
                about: image,
            },
            &d.digest,
            l,
            legacy_tag.clone(),
            layer_type,
        ));
    }
    Ok(items)
}
