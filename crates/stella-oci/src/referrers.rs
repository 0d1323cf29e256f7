//! Walking the referrers graph of a subject: direct referrers, referrers of
//! referrers (a signature on an SBOM) to a bounded depth, and cosign legacy
//! attachment tags, sorted deterministically.
//!
//! Depth 1 costs one `list_referrers` call (no manifest fetches), so a flat
//! listing on a registry is as cheap as reading its referrers index. The
//! artifact-type filter applies to the first level only: the signature on a
//! matching SBOM is still shown.
//!
//! Also the rules every writer of an image index Stella keeps (a layout's
//! `index.json`, a referrers tag-schema index in a layout or a registry)
//! shares, so that what Stella writes it can read back:
//! [`check_index_fits`] / [`check_tag_schema_index_fits`] before writing,
//! [`parse_image_index`] when reading with the index cap.
//!
//! What this module does not do: print, or fetch blobs.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

use stella_types::limits::{
    MAX_REFERRER_DEPTH, MAX_REFERRERS_PER_SUBJECT, MAX_TAG_SCHEMA_INDEX_BYTES,
};
use stella_types::media_types::{OCI_INDEX, annotations};
use stella_types::{Descriptor, Digest, ImageIndex};

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
pub async fn walk_referrers<S: ContentRead + ReferrersRead + ?Sized>(
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

type WalkFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<ReferrerNode>, OciError>> + Send + 'a>>;

fn walk<'a, S: ContentRead + ReferrersRead + ?Sized>(
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

/// Refuses to write `bytes`, the serialization of `what` (an image index
/// Stella keeps), when they are over `cap`, the most Stella reads back for
/// that index. Call it before writing anything, so a refused change leaves
/// the store as it was.
pub fn check_index_fits(bytes: &[u8], cap: u64, what: &str) -> Result<(), OciError> {
    let size = bytes.len() as u64;
    if size <= cap {
        return Ok(());
    }
    Err(OciError::InvalidInput(format!(
        "{what} would grow to {size} bytes, over the {cap}-byte limit that Stella \
         (and registries) read back; refusing to write it. Delete referrers that are \
         no longer needed, or keep annotations short (each entry carries the \
         referrer's annotations)"
    )))
}

/// [`check_index_fits`] for a referrers tag-schema index (`<alg>-<hex>`
/// tag): capped at `limits::MAX_TAG_SCHEMA_INDEX_BYTES`, because registries
/// and Stella read it as a manifest. Every writer of such an index (the
/// layout, the registry fallback) calls this before writing.
pub fn check_tag_schema_index_fits(bytes: &[u8], subject: &Digest) -> Result<(), OciError> {
    check_index_fits(
        bytes,
        MAX_TAG_SCHEMA_INDEX_BYTES,
        &format!(
            "the referrers index of {subject} (tag {})",
            subject.referrers_tag()
        ),
    )
}

/// Parses an image index read with the index cap (the caller bounded
/// `bytes`), not the manifest cap: schemaVersion 2, `mediaType` absent or
/// the OCI index type, and the shape of an index (no `config`).
pub fn parse_image_index(bytes: &[u8], what: &str) -> Result<ImageIndex, OciError> {
    #[derive(serde::Deserialize)]
    struct Shape {
        config: Option<serde::de::IgnoredAny>,
    }
    let bad =
        |why: String| OciError::Protocol(format!("{what} is not a usable image index: {why}"));
    let shape: Shape = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    if shape.config.is_some() {
        return Err(bad("it is an image manifest".into()));
    }
    let index: ImageIndex = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    if index.schema_version != 2 {
        return Err(bad(format!(
            "schemaVersion {} (expected 2)",
            index.schema_version
        )));
    }
    if let Some(mt) = index.media_type.as_deref()
        && mt != OCI_INDEX
    {
        return Err(bad(format!("mediaType {mt:?}")));
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn index_size_check_is_at_the_cap() {
        let subject = Digest::sha256_of(b"s");
        let at_cap = vec![b' '; MAX_TAG_SCHEMA_INDEX_BYTES as usize];
        check_tag_schema_index_fits(&at_cap, &subject).unwrap();
        let over = vec![b' '; MAX_TAG_SCHEMA_INDEX_BYTES as usize + 1];
        let e = check_tag_schema_index_fits(&over, &subject).unwrap_err();
        assert!(e.to_string().contains(&subject.referrers_tag()), "{e}");
    }

    #[test]
    fn index_parse_checks_shape_version_and_type() {
        let ok = parse_image_index(br#"{"schemaVersion":2,"manifests":[]}"#, "x").unwrap();
        assert!(ok.manifests.is_empty());
        for bad in [
            &br#"{"schemaVersion":1,"manifests":[]}"#[..],
            br#"{"schemaVersion":2,"config":{},"layers":[]}"#,
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#,
            b"[",
        ] {
            assert!(parse_image_index(bad, "x").is_err());
        }
    }
}
