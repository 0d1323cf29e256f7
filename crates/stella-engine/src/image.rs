//! `verify image`: discover an image's evidence among its referrers, verify
//! each attestation against every named signer, lend the signers of an
//! attestation about a plain artifact (a signature on an SBOM) to that
//! artifact, and judge the lot against a policy at the time the caller
//! gives.
//!
//! Work is bounded: at most [`USEFUL_DEPTH`] levels, at most
//! `MAX_REFERRERS_PER_SUBJECT` artifacts in all, each digest examined once
//! (cycles and diamonds are cut by a visited set), one manifest request per
//! artifact and one blob request per attestation, none repeated. The
//! requests of both levels share one pool of at most `FETCH_CONCURRENCY`
//! in flight, refilled as soon as any answer arrives (one slow answer holds
//! up only its own artifact).
//!
//! Docker buildx attestations (in-toto Statements kept as attestation
//! manifests inside the image index, not as referrers) are discovered too:
//! for an image index, every attestation manifest it lists; for a platform
//! manifest, those of the parent index the caller names
//! ([`discover_in_index`]). Each statement layer is one piece of evidence
//! under the layer's digest: unsigned unless the layer is a
//! signed container or a verified attestation about the attestation
//! manifest vouches for it; rejected unless the statement's subject is the
//! platform manifest that `vnd.docker.reference.digest` names, and that
//! manifest is listed in the same index.
//!
//! Not here: resolving references, importing bundles, loading keys or
//! policies, printing, signing verdicts.

use std::collections::{BTreeSet, VecDeque};

use futures_util::stream::{FuturesUnordered, StreamExt};
use stella_attest::statement::Statement;
use stella_attest::verify::container_format;
use stella_oci::OciError;
use stella_oci::referrers::{
    DOCKER_REFERENCE_TYPE, buildx_attestations, fetch_index, is_index_media_type, walk_referrers,
};
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

/// Statement layers of one buildx attestation manifest read, at most.
pub const MAX_BUILDX_LAYERS: usize = 64;

/// One artifact to examine, found at level 1 (`parent` = the image) or 2.
#[derive(Clone)]
struct Item {
    descriptor: Descriptor,
    parent: Digest,
    legacy: Option<String>,
    buildx: Option<BuildxTarget>,
}

/// What a buildx attestation manifest says it is about.
#[derive(Debug, Clone)]
struct BuildxTarget {
    /// `vnd.docker.reference.digest`: the platform image manifest.
    about: Digest,
    /// That digest is an image (not attestation) entry of the same index.
    listed: bool,
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
    discover_in_index(store, subject, None, depth, trust, now).await
}

/// [`discover`], also searching `parent_index` (the image index the user
/// named, e.g. by tag) for buildx attestation manifests about `subject`
/// when `subject` is a platform manifest. Without it only an index subject
/// yields buildx evidence: a platform manifest does not name its index.
pub async fn discover_in_index<S: ContentRead + ReferrersRead>(
    store: &S,
    subject: &Descriptor,
    parent_index: Option<&Digest>,
    depth: usize,
    trust: &Trust,
    now: OffsetDateTime,
) -> Result<Vec<Evidence>, EngineError> {
    let signers = trust.at(now);
    let top = top_items(store, subject, parent_index).await?;
    let parents = if depth.clamp(1, USEFUL_DEPTH) > 1 {
        plain_parents(&top)
    } else {
        Vec::new()
    };
    let (items, examined) = fetch_and_examine(store, subject, top, &parents, &signers).await?;
    let mut out = Vec::new();
    // The manifest each piece of evidence came from (its own digest, or a
    // buildx attestation manifest for each of its statement layers).
    let mut containers = Vec::new();
    let mut lent = Vec::new();
    for (it, ev) in items
        .iter()
        .zip(examined)
        .flat_map(|(it, evs)| evs.into_iter().map(move |e| (it, e)))
    {
        if it.parent == subject.digest || it.legacy.is_some() {
            containers.push(it.descriptor.digest.clone());
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
        lend_signature(&mut out, &containers, &target, &signers);
    }
    Ok(out)
}

/// The image's own artifacts to examine: its referrers (cosign `.sig`
/// tags aside) and its buildx attestation manifests, each digest once.
async fn top_items<S: ContentRead + ReferrersRead>(
    store: &S,
    subject: &Descriptor,
    parent_index: Option<&Digest>,
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
            buildx: None,
        });
    }
    for it in buildx_items(store, subject, parent_index).await? {
        if visited.insert(it.descriptor.digest.clone()) {
            items.push(it);
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

/// The plain artifacts among `top` (an SBOM, a VEX document): only they
/// can be vouched for by attestations about them. An attestation is signed
/// in itself and a signature lent to it could not change its standing, so
/// its own referrers are not listed (saves one listing per attestation).
fn plain_parents(top: &[Item]) -> Vec<Digest> {
    top.iter()
        .filter(|i| {
            !i.descriptor
                .artifact_type
                .as_deref()
                .is_some_and(|t| AttestationFormat::of_media_type(t).is_signed())
        })
        .map(|i| i.descriptor.digest.clone())
        .collect()
}

/// The second level: the referrers listed for `parents` (in that order),
/// each digest once and none already in `top` (or the image itself).
fn nested_from(top: &[Item], parents: &[Digest], listings: Vec<ReferrerListing>) -> Vec<Item> {
    let mut visited: BTreeSet<Digest> = top.iter().map(|i| i.descriptor.digest.clone()).collect();
    visited.extend(top.iter().map(|i| i.parent.clone()));
    let mut items = Vec::new();
    for (parent, listing) in parents.iter().zip(listings) {
        for c in listing.referrers {
            if c.dangling || !visited.insert(c.descriptor.digest.clone()) {
                continue;
            }
            items.push(Item {
                descriptor: c.descriptor,
                parent: parent.clone(),
                legacy: None,
                buildx: None,
            });
        }
    }
    items
}

/// One request-bearing piece of work of [`fetch_and_examine`].
enum Job {
    /// List the referrers of `parents[at]` (below the image, cosign
    /// legacy tags are not looked up: a tag listing per artifact, almost
    /// never there).
    List { at: usize, parent: Digest },
    /// Examine `items[at]`.
    Examine { at: usize, item: Box<Item> },
}

/// What a [`Job`] gave.
enum Done {
    Listed(usize, ReferrerListing),
    Examined(usize, Vec<Evidence>),
}

async fn run_job<S: ContentRead + ReferrersRead>(
    store: &S,
    job: Job,
    signers: &[NamedSigner],
) -> Result<Done, EngineError> {
    match job {
        Job::List { at, parent } => Ok(Done::Listed(
            at,
            store.list_referrers_skip_legacy(&parent, &[]).await?,
        )),
        Job::Examine { at, item } => Ok(Done::Examined(at, examine(store, &item, signers).await?)),
    }
}

/// Lists the second level (the referrers of `parents`) and examines every
/// artifact of both levels, with at most [`FETCH_CONCURRENCY`] jobs in
/// flight at any time: a job starts as soon as any other ends, so one slow
/// answer holds up only its own artifact, never the queue behind it.
/// Listings go first; the second level is examined once every listing is
/// in, so which parent a diamond's child belongs to does not depend on
/// which answer came first. Returns the items (top, then second level) and
/// their evidence, in that deterministic order.
async fn fetch_and_examine<S: ContentRead + ReferrersRead>(
    store: &S,
    subject: &Descriptor,
    top: Vec<Item>,
    parents: &[Digest],
    signers: &[NamedSigner],
) -> Result<(Vec<Item>, Vec<Vec<Evidence>>), EngineError> {
    let mut queue: VecDeque<Job> = parents
        .iter()
        .enumerate()
        .map(|(at, p)| Job::List {
            at,
            parent: p.clone(),
        })
        .chain(top.iter().enumerate().map(|(at, it)| Job::Examine {
            at,
            item: Box::new(it.clone()),
        }))
        .collect();
    let mut items = top;
    let mut listings: Vec<Option<ReferrerListing>> = vec![None; parents.len()];
    let mut listed = 0usize;
    let mut examined: Vec<Vec<Evidence>> = vec![Vec::new(); items.len()];
    let mut running = FuturesUnordered::new();
    loop {
        while running.len() < FETCH_CONCURRENCY {
            let Some(job) = queue.pop_front() else { break };
            running.push(run_job(store, job, signers));
        }
        let Some(done) = running.next().await else {
            break;
        };
        match done? {
            Done::Examined(at, evidence) => {
                if let Some(slot) = examined.get_mut(at) {
                    *slot = evidence;
                }
            }
            Done::Listed(at, listing) => {
                if let Some(slot) = listings.get_mut(at) {
                    *slot = Some(listing);
                }
                listed += 1;
                if listed < parents.len() {
                    continue;
                }
                let all = std::mem::take(&mut listings)
                    .into_iter()
                    .flatten()
                    .collect();
                let nested = nested_from(&items, parents, all);
                if items.len() + nested.len() > MAX_REFERRERS_PER_SUBJECT {
                    return Err(EngineError::TooManyReferrers {
                        subject: subject.digest.clone(),
                        count: items.len() + nested.len(),
                        limit: MAX_REFERRERS_PER_SUBJECT,
                    });
                }
                for item in nested {
                    let at = items.len();
                    queue.push_back(Job::Examine {
                        at,
                        item: Box::new(item.clone()),
                    });
                    items.push(item);
                    examined.push(Vec::new());
                }
            }
        }
    }
    Ok((items, examined))
}

/// The buildx attestation manifests about `subject` (see
/// [`discover_in_index`]), as level-1 items.
async fn buildx_items<S: ContentRead>(
    store: &S,
    subject: &Descriptor,
    parent_index: Option<&Digest>,
) -> Result<Vec<Item>, EngineError> {
    let (index, about) = if is_index_media_type(&subject.media_type) {
        (fetch_index(store, &subject.digest).await?, None)
    } else if let Some(parent) = parent_index.filter(|p| *p != &subject.digest) {
        (fetch_index(store, parent).await?, Some(&subject.digest))
    } else {
        return Ok(Vec::new());
    };
    let images: BTreeSet<&Digest> = index
        .manifests
        .iter()
        .filter(|d| d.annotation(DOCKER_REFERENCE_TYPE).is_none())
        .map(|d| &d.digest)
        .collect();
    Ok(buildx_attestations(&index, about)
        .into_iter()
        .map(|a| Item {
            parent: subject.digest.clone(),
            legacy: None,
            buildx: Some(BuildxTarget {
                listed: images.contains(&a.about),
                about: a.about,
            }),
            descriptor: a.descriptor,
        })
        .collect())
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

/// Fetches and parses one artifact's manifest; `None` when it is gone (a
/// stale index entry).
async fn fetch_item_manifest<S: ContentRead>(
    store: &S,
    it: &Item,
) -> Result<Option<Manifest>, EngineError> {
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
    Manifest::parse(&fetched.bytes, Some(&it.descriptor.media_type))
        .map(Some)
        .map_err(|source| EngineError::ReferrerManifest {
            digest: digest.clone(),
            source,
        })
}

/// Examines one artifact: a buildx attestation manifest gives one piece of
/// evidence per statement layer, anything else at most one.
async fn examine<S: ContentRead>(
    store: &S,
    it: &Item,
    signers: &[NamedSigner],
) -> Result<Vec<Evidence>, EngineError> {
    let Some(manifest) = fetch_item_manifest(store, it).await? else {
        return Ok(Vec::new());
    };
    match &it.buildx {
        Some(target) => examine_buildx(store, it, &manifest, target, signers).await,
        None => Ok(vec![examine_referrer(store, it, &manifest, signers).await?]),
    }
}

/// Checks one buildx attestation manifest: each in-toto layer (as the one
/// classifier sees it) is read and judged by [`buildx_layer_evidence`].
async fn examine_buildx<S: ContentRead>(
    store: &S,
    it: &Item,
    manifest: &Manifest,
    target: &BuildxTarget,
    signers: &[NamedSigner],
) -> Result<Vec<Evidence>, EngineError> {
    let digest = &it.descriptor.digest;
    let mut base = Evidence {
        digest: digest.clone(),
        artifact_type: String::new(),
        predicate_type: None,
        signature: SignatureCheck::Unsigned,
        created: created_of(&it.descriptor, manifest),
        other_subject: None,
    };
    if !target.listed {
        base.other_subject = Some(format!(
            "{} (named by vnd.docker.reference.digest, not an image of this index)",
            target.about
        ));
    }
    let Manifest::Image(m) = manifest else {
        base.signature = SignatureCheck::Failed {
            reason: "a buildx attestation manifest must be an image manifest, not an index".into(),
        };
        return Ok(vec![base]);
    };
    let mut out = Vec::new();
    for layer in attestation_layers(m, "")
        .into_iter()
        .take(MAX_BUILDX_LAYERS)
    {
        let bytes =
            read_layer(store, &layer)
                .await
                .map_err(|source| EngineError::AttestationLayer {
                    digest: digest.clone(),
                    source,
                })?;
        let mut ev = base.clone();
        ev.digest = layer.descriptor.digest.clone();
        ev.artifact_type = layer.descriptor.media_type.clone();
        out.push(buildx_layer_evidence(
            &bytes,
            &layer.descriptor,
            &target.about,
            ev,
            signers,
        ));
    }
    Ok(out)
}

/// Judges one layer of a buildx attestation manifest about the platform
/// manifest `about`: a bare in-toto Statement is unsigned evidence whose
/// predicate type is the statement's, rejected (as about another digest)
/// unless its subject includes `about`; a signed container is verified
/// like any attestation, against `about`.
fn buildx_layer_evidence(
    bytes: &[u8],
    layer: &Descriptor,
    about: &Digest,
    mut ev: Evidence,
    signers: &[NamedSigner],
) -> Evidence {
    let format = container_format(bytes, &layer.media_type);
    if format.is_signed() {
        let check = check_attestation(bytes, &layer.media_type, about, signers);
        ev.predicate_type = check.predicate_type;
        ev.signature = check.signature;
        ev.other_subject = ev.other_subject.or(check.other_subject);
        return ev;
    }
    match Statement::parse(bytes) {
        Ok(st) => {
            ev.predicate_type = Some(st.predicate_type.clone());
            if !st.has_subject_digest(about) && ev.other_subject.is_none() {
                ev.other_subject = Some(format!(
                    "{} (the statement's subject; vnd.docker.reference.digest names {about})",
                    st.subject_digests().join(", ")
                ));
            }
        }
        Err(e) => {
            ev.signature = SignatureCheck::Failed {
                reason: format!(
                    "layer {} is not a valid in-toto Statement: {e}",
                    layer.digest
                ),
            };
        }
    }
    ev
}

/// Checks one referrer (its first attestation layer, if any).
async fn examine_referrer<S: ContentRead>(
    store: &S,
    it: &Item,
    manifest: &Manifest,
    signers: &[NamedSigner],
) -> Result<Evidence, EngineError> {
    let digest = &it.descriptor.digest;
    let artifact_type = it
        .descriptor
        .artifact_type
        .clone()
        .or_else(|| manifest.artifact_type().map(str::to_string))
        .unwrap_or_default();
    let created = created_of(&it.descriptor, manifest);
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
    let Some(layer) = first_attestation_layer(manifest, &artifact_type) else {
        return Ok(evidence);
    };
    if layer.by_content() && layer.descriptor.size > MAX_JSON_DOCUMENT_BYTES {
        evidence.signature = SignatureCheck::Failed {
            reason: format!(
                "layer {} is {} bytes, over the {MAX_JSON_DOCUMENT_BYTES}-byte limit for an attestation",
                layer.descriptor.digest, layer.descriptor.size
            ),
        };
        return Ok(evidence);
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
        return Ok(evidence);
    }
    let check = check_attestation(&bytes, media_type, &it.parent, signers);
    evidence.predicate_type = check.predicate_type;
    evidence.signature = check.signature;
    evidence.other_subject = check.other_subject.or(evidence.other_subject);
    Ok(evidence)
}

/// Adds `signers` to the evidence `target` (a plain artifact that a
/// verified attestation is about).
/// Evidence borrows when the attestation is about it or about the manifest
/// it came from (`containers`, parallel to `out`): every statement of a
/// buildx attestation manifest borrows from an attestation about that
/// manifest, which pins each statement layer by digest.
fn lend_signature(
    out: &mut [Evidence],
    containers: &[Digest],
    target: &Digest,
    signers: &[String],
) {
    for (e, _) in out
        .iter_mut()
        .zip(containers)
        .filter(|(e, c)| &e.digest == target || *c == target)
    {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use stella_types::media_types::IN_TOTO_JSON;

    fn statement_about(d: &Digest) -> Vec<u8> {
        Statement::new_v1(
            "image",
            d,
            "https://slsa.dev/provenance/v0.2",
            serde_json::json!({"builder": {"id": "x"}}),
        )
        .to_canonical_json()
        .unwrap()
    }

    fn base(d: &Digest) -> Evidence {
        Evidence {
            digest: d.clone(),
            artifact_type: IN_TOTO_JSON.into(),
            predicate_type: None,
            signature: SignatureCheck::Unsigned,
            created: None,
            other_subject: None,
        }
    }

    #[test]
    fn buildx_statement_about_the_named_platform_is_unsigned_evidence() {
        let platform = Digest::sha256_of(b"platform");
        let bytes = statement_about(&platform);
        let layer = Descriptor::for_bytes(IN_TOTO_JSON, &bytes);
        let att = Digest::sha256_of(b"att");
        let ev = buildx_layer_evidence(&bytes, &layer, &platform, base(&att), &[]);
        assert_eq!(ev.signature, SignatureCheck::Unsigned);
        assert_eq!(
            ev.predicate_type.as_deref(),
            Some("https://slsa.dev/provenance/v0.2")
        );
        assert_eq!(ev.other_subject, None);
    }

    #[test]
    fn buildx_statement_about_another_digest_is_rejected() {
        let platform = Digest::sha256_of(b"platform");
        let other = Digest::sha256_of(b"other");
        let bytes = statement_about(&other);
        let layer = Descriptor::for_bytes(IN_TOTO_JSON, &bytes);
        let att = Digest::sha256_of(b"att");
        let ev = buildx_layer_evidence(&bytes, &layer, &platform, base(&att), &[]);
        let why = ev.other_subject.unwrap();
        assert!(why.contains(other.hex()), "{why}");
    }

    #[test]
    fn buildx_layer_that_is_not_a_statement_fails() {
        let platform = Digest::sha256_of(b"platform");
        let bytes = br#"{"_type":"nope"}"#;
        let layer = Descriptor::for_bytes(IN_TOTO_JSON, bytes);
        let att = Digest::sha256_of(b"att");
        let ev = buildx_layer_evidence(bytes, &layer, &platform, base(&att), &[]);
        assert!(matches!(ev.signature, SignatureCheck::Failed { .. }));
    }
}
