//! Walking the referrers graph of a subject: direct referrers, referrers of
//! referrers (a signature on an SBOM) to a bounded depth, and cosign legacy
//! attachment tags, sorted deterministically.
//!
//! Depth 1 costs one `list_referrers` call (no manifest fetches), so a flat
//! listing on a registry is as cheap as reading its referrers index. The
//! artifact-type filter applies to the first level only: the signature on a
//! matching SBOM is still shown.
//!
//! What this module does not do: print, or fetch blobs.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

use stella_types::limits::{MAX_REFERRER_DEPTH, MAX_REFERRERS_PER_SUBJECT};
use stella_types::media_types::annotations;
use stella_types::{Descriptor, Digest};

use crate::OciError;
use crate::store::*;

/// One referrer in the walked graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferrerNode {
    /// As listed (a legacy node carries its tag as the ref.name annotation).
    pub descriptor: Descriptor,
    /// Listed by a fallback index but the manifest is gone.
    pub dangling: bool,
    /// For cosign legacy tags: `sig`, `att` or `sbom`.
    pub legacy: Option<String>,
    /// Referrers of this referrer (empty at the depth limit).
    pub children: Vec<ReferrerNode>,
}

fn sort_key(n: &ReferrerNode) -> (bool, &str, &Digest) {
    (
        n.legacy.is_some(),
        n.descriptor.artifact_type.as_deref().unwrap_or(""),
        &n.descriptor.digest,
    )
}

/// Walks the referrers graph of `subject` to `depth` levels (1 = direct
/// referrers), sorted by (artifactType, digest) with legacy tags last,
/// cycle-safe (visited set) and bounded (limits::MAX_REFERRER_DEPTH,
/// MAX_REFERRERS_PER_SUBJECT nodes in all).
pub async fn walk_referrers<S: ContentRead + ReferrersRead>(
    store: &S,
    subject: &Digest,
    artifact_types: &[String],
    depth: usize,
) -> Result<Vec<ReferrerNode>, OciError> {
    let depth = depth.clamp(1, MAX_REFERRER_DEPTH);
    let mut visited = BTreeSet::new();
    visited.insert(subject.clone());
    let mut count = 0usize;
    walk(
        store,
        subject,
        artifact_types,
        depth,
        &mut visited,
        &mut count,
    )
    .await
}

type WalkFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<ReferrerNode>, OciError>> + 'a>>;

fn walk<'a, S: ContentRead + ReferrersRead>(
    store: &'a S,
    subject: &'a Digest,
    artifact_types: &'a [String],
    depth: usize,
    visited: &'a mut BTreeSet<Digest>,
    count: &'a mut usize,
) -> WalkFuture<'a> {
    Box::pin(async move {
        let listing = store.list_referrers(subject, artifact_types).await?;
        let mut nodes = Vec::new();
        for e in listing.referrers {
            nodes.push(ReferrerNode {
                descriptor: e.descriptor,
                dangling: e.dangling,
                legacy: None,
                children: vec![],
            });
        }
        for l in listing.legacy {
            let mut d = l.descriptor;
            d.annotations
                .insert(annotations::REF_NAME.to_string(), l.tag);
            nodes.push(ReferrerNode {
                descriptor: d,
                dangling: false,
                legacy: Some(l.kind),
                children: vec![],
            });
        }
        *count += nodes.len();
        if *count > MAX_REFERRERS_PER_SUBJECT {
            return Err(OciError::Protocol(format!(
                "the referrers graph of {subject} has more than {MAX_REFERRERS_PER_SUBJECT} nodes"
            )));
        }
        nodes.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
        if depth > 1 {
            for n in &mut nodes {
                if n.dangling || !visited.insert(n.descriptor.digest.clone()) {
                    continue;
                }
                let d = n.descriptor.digest.clone();
                n.children = walk(store, &d, &[], depth - 1, visited, count).await?;
            }
        }
        Ok(nodes)
    })
}
