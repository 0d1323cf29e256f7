//! `verify image`: discover an image's evidence among its referrers, verify
//! each attestation against every named signer, lend the signers of an
//! attestation about a plain artifact (a signature on an SBOM) to that
//! artifact, and judge the lot against a policy at the time the caller
//! gives.
//!
//! Work is bounded: at most [`USEFUL_DEPTH`] levels, at most
//! `MAX_REFERRERS_PER_SUBJECT` artifacts in all, each digest examined once
//! (cycles and diamonds are cut by a visited set), one manifest request per
//! artifact and one blob request per attestation, none repeated.
//!
//! Not here: resolving references, importing bundles, loading keys or
//! policies, printing, signing verdicts.

use std::collections::BTreeSet;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use stella_attest::verify::container_format;
use stella_oci::OciError;
use stella_oci::referrers::walk_referrers;
use stella_oci::store::{ContentRead, ReferrerListing, ReferrersRead};
use stella_types::limits::{MAX_JSON_DOCUMENT_BYTES, MAX_REFERRERS_PER_SUBJECT};
use stella_types::media_types::{AttestationFormat, annotations};
use stella_types::{Descriptor, Digest, Manifest};
use stella_verify::policy::Policy;
use stella_verify::{Evidence, Report, SignatureCheck, evaluate};
use time::OffsetDateTime;

use crate::check::check_attestation;
use crate::error::EngineError;
use crate::layers::{AttestationLayer, attestation_layers, read_layer};
use crate::trust::{NamedSigner, Trust};

/// Deepest level of the referrers graph that can change a verdict: the
/// image's referrers (level 1) and the attestations about them (level 2,
/// e.g. a signature on an SBOM). A deeper request walks no further: deeper
/// artifacts could only vouch for evidence of evidence.
pub const USEFUL_DEPTH: usize = 2;
/// Manifests and blobs fetched at the same time.
const FETCH_CONCURRENCY: usize = 16;

/// What to verify.
#[derive(Debug, Clone)]
pub struct VerifyImageRequest {
    /// The image as the report names it (e.g. `host/repo@sha256:…`).
    pub reference: String,
    /// The resolved image manifest.
    pub subject: Descriptor,
    /// The policy to judge the evidence against.
    pub policy: Policy,
    /// Levels of the referrers graph to walk (clamped to 1..=[`USEFUL_DEPTH`]).
    pub depth: usize,
    /// The time stamped on the report as `evaluatedAt`, when it must differ
    /// from the evaluation time (reproducible output). Age limits are always
    /// checked against the evaluation time, never against this.
    pub report_time: Option<OffsetDateTime>,
}

/// Discovers and verifies the image's evidence, then evaluates the policy
/// at `now` (which also dates certificate-chain checks).
pub async fn verify_image<S: ContentRead + ReferrersRead>(
    store: &S,
    request: &VerifyImageRequest,
    trust: &Trust,
    now: OffsetDateTime,
) -> Result<Report, EngineError> {
    let evidence = discover(store, &request.subject, request.depth, trust, now).await?;
    Ok(judge(request, &evidence, now))
}

/// Evaluates already discovered evidence (see [`discover`]).
pub fn judge(request: &VerifyImageRequest, evidence: &[Evidence], now: OffsetDateTime) -> Report {
    let mut report = evaluate(
        &request.policy,
        &request.reference,
        &request.subject.digest,
        evidence,
        now,
    );
    if let Some(t) = request.report_time {
        report.evaluated_at = stella_types::timestamp::rfc3339(t);
    }
    report
}

/// One artifact to examine, found at level 1 (`parent` = the image) or 2.
struct Item {
    descriptor: Descriptor,
    parent: Digest,
    legacy: Option<String>,
}

/// Walks the referrers graph and turns every artifact into policy evidence.
/// A plain artifact (an SBOM) counts as signed when an attestation about its
/// digest, verified by a policy signer, refers to it.
pub async fn discover<S: ContentRead + ReferrersRead>(
    store: &S,
    subject: &Descriptor,
    depth: usize,
    trust: &Trust,
    now: OffsetDateTime,
) -> Result<Vec<Evidence>, EngineError> {
    let signers = trust.at(now);
    let items = list_items(store, subject, depth.clamp(1, USEFUL_DEPTH)).await?;
    let examined: Vec<Option<Evidence>> =
        stream::iter(items.iter().map(|it| examine(store, it, &signers)))
            .buffered(FETCH_CONCURRENCY)
            .try_collect()
            .await?;
    let mut out = Vec::new();
    let mut lent = Vec::new();
    for (it, ev) in items.iter().zip(examined) {
        let Some(ev) = ev else { continue };
        if it.parent == subject.digest || it.legacy.is_some() {
            out.push(ev);
        } else if ev.other_subject.is_none() {
            // An attestation about another artifact (e.g. signing an SBOM):
            // lend its signers to that artifact.
            if let SignatureCheck::Verified { signers, .. } = &ev.signature {
                lent.push((it.parent.clone(), signers.clone()));
            }
        }
    }
    for (target, signers) in lent {
        lend_signature(&mut out, &target, &signers);
    }
    Ok(out)
}

/// The artifacts to examine: the image's referrers (cosign `.sig` tags
/// aside) and, at depth 2, the referrers of its plain artifacts.
async fn list_items<S: ContentRead + ReferrersRead>(
    store: &S,
    subject: &Descriptor,
    depth: usize,
) -> Result<Vec<Item>, EngineError> {
    let top = walk_referrers(store, &subject.digest, &[], 1).await?;
    let mut visited: BTreeSet<Digest> = BTreeSet::new();
    visited.insert(subject.digest.clone());
    let mut items = Vec::new();
    for n in &top {
        if n.dangling
            || n.legacy.as_deref() == Some("sig")
            || !visited.insert(n.descriptor.digest.clone())
        {
            continue;
        }
        items.push(Item {
            descriptor: n.descriptor.clone(),
            parent: subject.digest.clone(),
            legacy: n.legacy.clone(),
        });
    }
    if depth > 1 {
        // Only plain artifacts (an SBOM, a VEX document) can be vouched for
        // by attestations about them; an attestation is signed in itself and
        // a signature lent to it could not change its standing, so its own
        // referrers are not listed (saves one listing per attestation).
        let parents: Vec<Digest> = items
            .iter()
            .filter(|i| {
                !i.descriptor
                    .artifact_type
                    .as_deref()
                    .is_some_and(|t| AttestationFormat::of_media_type(t).is_signed())
            })
            .map(|i| i.descriptor.digest.clone())
            .collect();
        // Below the image, cosign legacy tags are not looked up (three
        // requests per artifact, almost never there).
        let levels: Vec<ReferrerListing> = stream::iter(
            parents
                .iter()
                .map(|d| store.list_referrers_skip_legacy(d, &[])),
        )
        .buffered(FETCH_CONCURRENCY)
        .try_collect()
        .await?;
        for (parent, listing) in parents.iter().zip(levels) {
            for c in listing.referrers {
                if c.dangling || !visited.insert(c.descriptor.digest.clone()) {
                    continue;
                }
                items.push(Item {
                    descriptor: c.descriptor,
                    parent: parent.clone(),
                    legacy: None,
                });
            }
        }
    }
    if items.len() > MAX_REFERRERS_PER_SUBJECT {
        return Err(EngineError::TooManyReferrers {
            subject: subject.digest.clone(),
            count: items.len(),
            limit: MAX_REFERRERS_PER_SUBJECT,
        });
    }
    Ok(items)
}

fn created_of(d: &Descriptor, manifest: &Manifest) -> Option<OffsetDateTime> {
    d.annotation(annotations::CREATED)
        .or_else(|| {
            manifest
                .annotations()
                .get(annotations::CREATED)
                .map(String::as_str)
        })
        .and_then(stella_types::timestamp::parse_rfc3339)
}

/// The first attestation layer of a referrer manifest, if any.
fn first_attestation_layer(manifest: &Manifest, artifact_type: &str) -> Option<AttestationLayer> {
    let Manifest::Image(m) = manifest else {
        return None;
    };
    attestation_layers(m, artifact_type).into_iter().next()
}

/// Fetches one artifact's manifest (and its attestation layer) and checks it.
/// `None` when the manifest is gone (a stale index entry).
async fn examine<S: ContentRead>(
    store: &S,
    it: &Item,
    signers: &[NamedSigner],
) -> Result<Option<Evidence>, EngineError> {
    let digest = &it.descriptor.digest;
    let fetched = match store.fetch_manifest(digest).await {
        Ok(f) => f,
        Err(OciError::NotFound { .. }) => return Ok(None),
        Err(source) => {
            return Err(EngineError::Referrer {
                digest: digest.clone(),
                source,
            });
        }
    };
    let manifest =
        Manifest::parse(&fetched.bytes, Some(&it.descriptor.media_type)).map_err(|source| {
            EngineError::ReferrerManifest {
                digest: digest.clone(),
                source,
            }
        })?;
    let artifact_type = it
        .descriptor
        .artifact_type
        .clone()
        .or_else(|| manifest.artifact_type().map(str::to_string))
        .unwrap_or_default();
    let created = created_of(&it.descriptor, &manifest);
    // A referrer manifest names its subject: one listed under this image but
    // naming another digest (copied index entry) is not about this image.
    let manifest_other = match manifest.subject() {
        Some(s) if it.legacy.is_none() && s.digest != it.parent => {
            Some(format!("{} (the referrer manifest's subject)", s.digest))
        }
        _ => None,
    };
    let mut evidence = Evidence {
        digest: digest.clone(),
        artifact_type: artifact_type.clone(),
        predicate_type: None,
        signature: SignatureCheck::Unsigned,
        created,
        other_subject: manifest_other,
    };
    let Some(layer) = first_attestation_layer(&manifest, &artifact_type) else {
        return Ok(Some(evidence));
    };
    if layer.by_content() && layer.descriptor.size > MAX_JSON_DOCUMENT_BYTES {
        evidence.signature = SignatureCheck::Failed {
            reason: format!(
                "layer {} is {} bytes, over the {MAX_JSON_DOCUMENT_BYTES}-byte limit for an attestation",
                layer.descriptor.digest, layer.descriptor.size
            ),
        };
        return Ok(Some(evidence));
    }
    let bytes =
        read_layer(store, &layer)
            .await
            .map_err(|source| EngineError::AttestationLayer {
                digest: digest.clone(),
                source,
            })?;
    let media_type = &layer.descriptor.media_type;
    if container_format(&bytes, media_type) == AttestationFormat::InTotoStatement {
        // A bare in-toto statement: evidence, but unsigned.
        return Ok(Some(evidence));
    }
    let check = check_attestation(&bytes, media_type, &it.parent, signers);
    evidence.predicate_type = check.predicate_type;
    evidence.signature = check.signature;
    evidence.other_subject = check.other_subject.or(evidence.other_subject);
    Ok(Some(evidence))
}

/// Adds `signers` to the evidence `target` (a plain artifact that a
/// verified attestation is about).
fn lend_signature(out: &mut [Evidence], target: &Digest, signers: &[String]) {
    if let Some(e) = out.iter_mut().find(|e| &e.digest == target) {
        match &mut e.signature {
            SignatureCheck::Verified { signers: s, .. } => {
                s.extend(signers.iter().cloned());
                s.sort();
                s.dedup();
            }
            // Only a plain (unsigned) artifact borrows signers: a failed
            // or rejected attestation stays failed whoever refers to it.
            SignatureCheck::Unsigned if e.other_subject.is_none() => {
                e.signature = SignatureCheck::Verified {
                    signers: signers.to_vec(),
                    transparency_log: false,
                }
            }
            SignatureCheck::Unsigned | SignatureCheck::Failed { .. } => {}
        }
    }
}
