//! OpenVEX evidence of an image: discovery and verification through the
//! same walk as `verify attestation` ([`crate::verify_attestations`]), then
//! OpenVEX validation of each verified predicate.
//!
//! Layouts: sigstore-bundle and DSSE-envelope referrers, cosign legacy
//! `.att` tags and signed buildx attestation layers (all found and verified
//! by [`crate::verify_attestations`]); plain `application/openvex+json`
//! referrers, which are unsigned and accepted only when the caller does not
//! require signatures (they are marked unsigned). For an image index, every
//! platform manifest is searched too.
//!
//! The issuer of a signed document is the verified signer identity (key id,
//! or certificate identity and issuer), never the document's `author`. A
//! document is accepted only when its attestation verified, it is about the
//! image (checked by the verifier against the signed subject), and it is a
//! valid OpenVEX document with no timestamp after `now` plus a small skew.
//!
//! Not here: storing statements, reading files or the clock (callers pass
//! `now`), or deciding consensus (`stella_vex`).

use stella_attest::verify::TrustPolicy;
use stella_oci::referrers::{
    DOCKER_REFERENCE_TYPE, fetch_index, is_index_media_type, walk_referrers,
};
use stella_oci::store::{ContentRead, ReferrersRead};
use stella_types::media_types::AttestationFormat;
use stella_types::predicate_types::OPENVEX;
use stella_types::{Descriptor, Digest, Manifest};
use time::OffsetDateTime;

use crate::attestations::{AttestationsRequest, verify_attestations};
use crate::error::EngineError;

/// Media type of a plain (unsigned) OpenVEX document.
pub const OPENVEX_MEDIA_TYPE: &str = "application/openvex+json";
/// Timestamps up to this far ahead of `now` are tolerated (clock skew).
pub const FUTURE_SKEW: time::Duration = time::Duration::minutes(5);
/// How the refusal of a document with a timestamp after `now` (plus
/// [`FUTURE_SKEW`]) begins: such a document may be accepted by a later
/// search, unlike the other refusals ([`VexDiscovery::not_yet_valid`]).
pub const NOT_YET_VALID: &str = "not yet valid";

/// Caps against hostile registries.
#[derive(Clone, Copy, Debug)]
pub struct VexLimits {
    /// Referrers per manifest (the image, each platform manifest): a
    /// manifest with more is not examined at all (one listing counts them
    /// before anything is fetched) and the cap hit is reported.
    pub max_referrers: usize,
    /// Bytes per OpenVEX document.
    pub max_document_bytes: usize,
    /// Documents accepted by one call (a runner passes what is left of its
    /// per-run budget); the rest are refused as over the cap.
    pub max_documents: usize,
}

impl Default for VexLimits {
    fn default() -> Self {
        VexLimits {
            max_referrers: 1000,
            max_document_bytes: stella_vex::model::DEFAULT_MAX_DOCUMENT_BYTES,
            max_documents: 1000,
        }
    }
}

/// What to search.
#[derive(Clone, Debug)]
pub struct VexRequest {
    /// `host/repo`, for product names of statements without products.
    pub image_name: String,
    /// The resolved image (manifest or index).
    pub image: Descriptor,
    /// Refuse unsigned plain OpenVEX referrers (the default in providers).
    pub require_signatures: bool,
    pub limits: VexLimits,
}

/// One OpenVEX document found.
#[derive(Clone, Debug)]
pub struct VexEvidence {
    /// The digest the document is about (the image or a platform manifest).
    pub about: Digest,
    /// The referrer (or legacy tag, or buildx attestation) manifest.
    pub source: String,
    /// The layer holding it.
    pub layer: Option<String>,
    pub legacy_tag: Option<String>,
    pub media_type: String,
    /// Verified signature (false: a plain referrer).
    pub signed: bool,
    /// Verified signer identity; `unsigned:<author>` for accepted plain documents.
    pub issuer: Option<String>,
    /// sha256 of the verified statement (or the plain document) bytes.
    pub evidence_digest: Option<String>,
    /// The accepted document, or why it was refused.
    pub outcome: Result<stella_vex::Document, String>,
}

/// Everything found for one image.
#[derive(Clone, Debug, Default)]
pub struct VexDiscovery {
    pub evidence: Vec<VexEvidence>,
    /// Caps that were hit, in words.
    pub caps_hit: Vec<String>,
}

impl VexDiscovery {
    /// Documents refused only because a timestamp is after `now`: a later
    /// search may accept them, so a runner searches the image again even
    /// when nothing about it changed.
    pub fn not_yet_valid(&self) -> usize {
        self.evidence
            .iter()
            .filter(|e| matches!(&e.outcome, Err(r) if r.starts_with(NOT_YET_VALID)))
            .count()
    }

    /// Keeps at most `max` accepted documents (the first ones, in
    /// discovery order): the rest are refused as over the cap, and the cap
    /// hit is reported. A runner that discovers several images at once
    /// applies what is left of its per-run budget here, in subscription
    /// order, so the outcome does not depend on which image finished first.
    pub fn cap_documents(&mut self, max: usize, image: &Digest) {
        let accepted = self.evidence.iter().filter(|e| e.outcome.is_ok()).count();
        if accepted <= max {
            return;
        }
        let mut kept = 0usize;
        for e in self.evidence.iter_mut() {
            if e.outcome.is_ok() {
                kept += 1;
                if kept > max {
                    e.outcome = Err("over the documents-per-image cap".into());
                }
            }
        }
        self.caps_hit.push(format!(
            "{accepted} documents on {image}, over the cap of {max} documents (per run)"
        ));
    }

    /// The accepted documents.
    pub fn accepted(&self) -> impl Iterator<Item = (&VexEvidence, &stella_vex::Document)> {
        self.evidence
            .iter()
            .filter_map(|e| e.outcome.as_ref().ok().map(|d| (e, d)))
    }
}

/// The in-toto statement bytes inside a signed container (the bytes the
/// verifier checked the signature over), or `None` when unparseable.
pub fn verified_payload(bytes: &[u8], media_type: &str) -> Option<Vec<u8>> {
    match stella_attest::verify::container_format(bytes, media_type) {
        AttestationFormat::SigstoreBundle { .. } => stella_attest::bundle::Bundle::parse(bytes)
            .ok()
            .map(|b| b.envelope.payload),
        AttestationFormat::DsseEnvelope => stella_attest::dsse::Envelope::parse(bytes)
            .ok()
            .map(|e| e.payload),
        _ => None,
    }
}

/// Finds, verifies and validates the OpenVEX documents of `request.image`.
pub async fn discover_vex<S: ContentRead + ReferrersRead>(
    store: &S,
    request: &VexRequest,
    trust: &TrustPolicy,
    now: OffsetDateTime,
) -> Result<VexDiscovery, EngineError> {
    let mut targets = vec![request.image.clone()];
    if is_index_media_type(&request.image.media_type) {
        let index = fetch_index(store, &request.image.digest)
            .await
            .map_err(|source| EngineError::FetchReferrer {
                digest: request.image.digest.clone(),
                source,
            })?;
        targets.extend(
            index
                .manifests
                .into_iter()
                .filter(|d| d.annotation(DOCKER_REFERENCE_TYPE).is_none()),
        );
    }
    let mut found = VexDiscovery::default();
    let latest = now + FUTURE_SKEW;
    for target in &targets {
        if over_referrer_cap(store, request, target, &mut found).await? {
            continue;
        }
        signed_documents(store, request, target, trust, now, latest, &mut found).await?;
        plain_documents(store, request, target, latest, &mut found).await?;
    }
    found.cap_documents(request.limits.max_documents, &request.image.digest);
    Ok(found)
}

/// Counts `target`'s referrers (one listing, nothing fetched) and reports
/// a manifest with more than `max_referrers` as a cap hit: it is skipped.
async fn over_referrer_cap<S: ContentRead + ReferrersRead>(
    store: &S,
    request: &VexRequest,
    target: &Descriptor,
    found: &mut VexDiscovery,
) -> Result<bool, EngineError> {
    let listing = store
        .list_referrers_skip_legacy(&target.digest, &[])
        .await
        .map_err(|source| EngineError::ListReferrers {
            subject: target.digest.clone(),
            source,
        })?;
    let count = listing.referrers.len();
    if count <= request.limits.max_referrers {
        return Ok(false);
    }
    found.caps_hit.push(format!(
        "{count} referrers on {}, over the cap of {} referrers per image: not examined",
        target.digest, request.limits.max_referrers
    ));
    Ok(true)
}

fn product_for(image_name: &str, about: &Digest) -> stella_vex::Product {
    let name = image_name.rsplit('/').next().unwrap_or(image_name);
    let repo = image_name.rsplit_once('/').map(|(r, _)| r);
    let mut id = format!(
        "pkg:oci/{}@sha256%3A{}",
        name.to_ascii_lowercase(),
        about.hex()
    );
    if let Some(r) = repo {
        id.push_str(&format!("?repository_url={r}"));
    }
    stella_vex::Product::named(&id)
}

fn parse_document(
    predicate: serde_json::Value,
    request: &VexRequest,
    about: &Digest,
    latest: OffsetDateTime,
) -> Result<stella_vex::Document, String> {
    let options = stella_vex::ParseOptions {
        max_bytes: request.limits.max_document_bytes,
        default_products: vec![product_for(&request.image_name, about)],
    };
    let doc = stella_vex::model::from_value(predicate, &options).map_err(|e| e.to_string())?;
    check_not_after(&doc, latest)?;
    Ok(doc)
}

/// Refuses a document with a timestamp after `latest`, as [`NOT_YET_VALID`].
fn check_not_after(doc: &stella_vex::Document, latest: OffsetDateTime) -> Result<(), String> {
    doc.check_not_after(latest)
        .map_err(|e| format!("{NOT_YET_VALID}: {e}"))
}

async fn signed_documents<S: ContentRead + ReferrersRead>(
    store: &S,
    request: &VexRequest,
    target: &Descriptor,
    trust: &TrustPolicy,
    now: OffsetDateTime,
    latest: OffsetDateTime,
    found: &mut VexDiscovery,
) -> Result<(), EngineError> {
    let report = verify_attestations(
        store,
        &AttestationsRequest {
            image_name: request.image_name.clone(),
            image: target.clone(),
            predicate_type: None,
        },
        trust,
        now,
    )
    .await?;
    for item in report.attestations {
        let is_vex = item
            .predicate_type
            .as_deref()
            .is_some_and(|t| t.starts_with(OPENVEX));
        if !is_vex {
            continue;
        }
        let about = item.about.clone().unwrap_or_else(|| target.digest.clone());
        let (outcome, evidence_digest) = match (&item.verified_payload, item.verified) {
            (Some(payload), true) => {
                let digest = Digest::sha256_of(payload).to_string();
                let outcome = stella_attest::statement::Statement::parse(payload)
                    .map_err(|e| format!("verified statement unreadable: {e}"))
                    .and_then(|s| {
                        s.predicate
                            .ok_or_else(|| "the statement has no predicate".to_string())
                    })
                    .and_then(|p| parse_document(p, request, &about, latest));
                (outcome, Some(digest))
            }
            _ => (Err(format!("not verified: {}", item.reason)), None),
        };
        found.evidence.push(VexEvidence {
            about,
            source: item.referrer,
            layer: item.layer,
            legacy_tag: item.legacy_tag,
            media_type: item.media_type,
            signed: item.verified,
            issuer: if item.verified { item.signer } else { None },
            evidence_digest,
            outcome,
        });
    }
    Ok(())
}

async fn plain_documents<S: ContentRead + ReferrersRead>(
    store: &S,
    request: &VexRequest,
    target: &Descriptor,
    latest: OffsetDateTime,
    found: &mut VexDiscovery,
) -> Result<(), EngineError> {
    let nodes = walk_referrers(store, &target.digest, &[OPENVEX_MEDIA_TYPE.to_string()], 1)
        .await
        .map_err(|source| EngineError::ListReferrers {
            subject: target.digest.clone(),
            source,
        })?;
    for node in nodes
        .iter()
        .filter(|n| n.legacy.is_none() && !n.dangling)
        .take(request.limits.max_referrers)
    {
        let d = &node.descriptor;
        let mut evidence = VexEvidence {
            about: target.digest.clone(),
            source: d.digest.to_string(),
            layer: None,
            legacy_tag: None,
            media_type: OPENVEX_MEDIA_TYPE.to_string(),
            signed: false,
            issuer: None,
            evidence_digest: None,
            outcome: Err(String::new()),
        };
        evidence.outcome =
            plain_document(store, request, target, node, latest, &mut evidence).await;
        found.evidence.push(evidence);
    }
    Ok(())
}

async fn plain_document<S: ContentRead>(
    store: &S,
    request: &VexRequest,
    target: &Descriptor,
    node: &stella_oci::referrers::ReferrerNode,
    latest: OffsetDateTime,
    evidence: &mut VexEvidence,
) -> Result<stella_vex::Document, String> {
    if request.require_signatures {
        return Err("unsigned OpenVEX referrer refused: signatures are required".into());
    }
    let d = &node.descriptor;
    let fetched = store
        .fetch_manifest(&d.digest)
        .await
        .map_err(|e| format!("cannot fetch referrer manifest: {e}"))?;
    let manifest = match Manifest::parse(&fetched.bytes, Some(&fetched.descriptor.media_type)) {
        Ok(Manifest::Image(m)) => m,
        _ => return Err("referrer is not an image manifest".into()),
    };
    if manifest.subject.as_ref().map(|s| &s.digest) != Some(&target.digest) {
        return Err("referrer manifest's subject is not this image".into());
    }
    let layer = manifest
        .layers
        .iter()
        .find(|l| l.media_type == OPENVEX_MEDIA_TYPE)
        .or_else(|| manifest.layers.first())
        .ok_or("referrer has no layer")?;
    evidence.layer = Some(layer.digest.to_string());
    let cap = u64::try_from(request.limits.max_document_bytes).unwrap_or(u64::MAX);
    let bytes = store
        .fetch_blob_bytes(layer, cap)
        .await
        .map_err(|e| format!("cannot fetch document: {e}"))?;
    evidence.evidence_digest = Some(Digest::sha256_of(&bytes).to_string());
    let options = stella_vex::ParseOptions {
        max_bytes: request.limits.max_document_bytes,
        default_products: vec![product_for(&request.image_name, &target.digest)],
    };
    let doc = stella_vex::parse_with(&bytes, &options).map_err(|e| e.to_string())?;
    check_not_after(&doc, latest)?;
    evidence.issuer = Some(format!("unsigned:{}", doc.author));
    Ok(doc)
}
