//! Walking the referrers graph of a subject: direct referrers, referrers of
//! referrers (a signature on an SBOM) to a bounded depth, and cosign legacy
//! attachment tags, sorted deterministically; and Docker buildx attestation
//! manifests, which live inside an image index rather than as referrers
//! ([`buildx_attestations`], [`walk_referrers_with_buildx`]).
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
use stella_types::media_types::{DOCKER_MANIFEST_LIST, IN_TOTO_JSON, OCI_INDEX, annotations};
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
    /// For a buildx attestation manifest (an entry of an image index): the
    /// platform image manifest it is about (`vnd.docker.reference.digest`).
    pub buildx_about: Option<Digest>,
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
                buildx_about: None,
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
                buildx_about: None,
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

/// Annotation on an image-index entry naming what kind of reference it is
/// (buildkit's attestation storage).
pub const DOCKER_REFERENCE_TYPE: &str = "vnd.docker.reference.type";
/// Annotation on an image-index entry naming the manifest it refers to.
pub const DOCKER_REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";
/// The [`DOCKER_REFERENCE_TYPE`] value of a buildx attestation manifest.
pub const ATTESTATION_MANIFEST: &str = "attestation-manifest";
/// Layer annotation buildkit sets to the statement's predicate type.
pub const IN_TOTO_PREDICATE_TYPE: &str = "in-toto.io/predicate-type";

/// A buildx attestation manifest listed in an image index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildxAttestation {
    /// The index entry (an image manifest with platform `unknown/unknown`).
    pub descriptor: Descriptor,
    /// The platform image manifest it is about (`vnd.docker.reference.digest`).
    pub about: Digest,
}

/// True for a media type of an image index (OCI or Docker manifest list).
pub fn is_index_media_type(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// The buildx attestation manifests of `index`: entries annotated
/// `vnd.docker.reference.type: attestation-manifest` with a well-formed
/// `vnd.docker.reference.digest` (others are skipped: they name nothing).
/// With `about`, only those about that platform manifest. Sorted by
/// (about, digest). The platform (`unknown/unknown` by buildkit) is not
/// required: the annotations are what buildkit documents for traversal.
pub fn buildx_attestations(index: &ImageIndex, about: Option<&Digest>) -> Vec<BuildxAttestation> {
    let mut out: Vec<BuildxAttestation> = index
        .manifests
        .iter()
        .filter(|d| d.annotation(DOCKER_REFERENCE_TYPE) == Some(ATTESTATION_MANIFEST))
        .filter_map(|d| {
            let target: Digest = d.annotation(DOCKER_REFERENCE_DIGEST)?.parse().ok()?;
            Some(BuildxAttestation {
                descriptor: d.clone(),
                about: target,
            })
        })
        .filter(|a| about.is_none_or(|want| &a.about == want))
        .collect();
    out.sort_by(|a, b| (&a.about, &a.descriptor.digest).cmp(&(&b.about, &b.descriptor.digest)));
    out.dedup_by(|a, b| a.descriptor.digest == b.descriptor.digest);
    out
}

/// Reads the image index `digest` from the store (manifest cap).
pub async fn fetch_index<S: ContentRead + ?Sized>(
    store: &S,
    digest: &Digest,
) -> Result<ImageIndex, OciError> {
    let fetched = store.fetch_manifest(digest).await?;
    parse_image_index_any(&fetched.bytes, &format!("image index {digest}"))
}

/// Like [`parse_image_index`] but also accepts a Docker manifest list.
fn parse_image_index_any(bytes: &[u8], what: &str) -> Result<ImageIndex, OciError> {
    let index: ImageIndex = serde_json::from_slice(bytes)
        .map_err(|e| OciError::Protocol(format!("{what} is not a usable image index: {e}")))?;
    match index.media_type.as_deref() {
        Some(DOCKER_MANIFEST_LIST) => Ok(index),
        _ => parse_image_index(bytes, what),
    }
}

/// The buildx attestation manifests about `subject`, as referrer nodes:
/// when `subject` is an image index, every attestation manifest it lists;
/// when it is a platform manifest and `parent_index` (an index the user
/// named, e.g. by tag) is given, those of that index about `subject`;
/// otherwise none (a bare platform digest has no parent to search).
pub async fn buildx_nodes<S: ContentRead + ReferrersRead + ?Sized>(
    store: &S,
    subject: &Descriptor,
    parent_index: Option<&Digest>,
) -> Result<Vec<ReferrerNode>, OciError> {
    let found = if is_index_media_type(&subject.media_type) {
        buildx_attestations(&fetch_index(store, &subject.digest).await?, None)
    } else if let Some(parent) = parent_index.filter(|p| *p != &subject.digest) {
        buildx_attestations(&fetch_index(store, parent).await?, Some(&subject.digest))
    } else {
        Vec::new()
    };
    Ok(found
        .into_iter()
        .map(|a| ReferrerNode {
            descriptor: a.descriptor,
            dangling: false,
            legacy: None,
            buildx_about: Some(a.about),
            children: vec![],
        })
        .collect())
}

/// [`walk_referrers`] plus the buildx attestation manifests about `subject`
/// ([`buildx_nodes`]), listed after the OCI referrers and before cosign
/// legacy tags. They have no artifactType: with an artifact-type filter they
/// are kept only when it names `application/vnd.in-toto+json`. Their own
/// OCI referrers (a signature on an attestation manifest) are walked like
/// any referrer's.
pub async fn walk_referrers_with_buildx<S: ContentRead + ReferrersRead + ?Sized>(
    store: &S,
    subject: &Descriptor,
    parent_index: Option<&Digest>,
    artifact_types: &[String],
    depth: usize,
) -> Result<Vec<ReferrerNode>, OciError> {
    let mut nodes = walk_referrers(store, &subject.digest, artifact_types, depth).await?;
    let wanted = artifact_types.is_empty()
        || artifact_types
            .iter()
            .any(|t| t.eq_ignore_ascii_case(IN_TOTO_JSON));
    if !wanted {
        return Ok(nodes);
    }
    let mut buildx = buildx_nodes(store, subject, parent_index).await?;
    let depth = depth.clamp(1, MAX_REFERRER_DEPTH);
    if depth > 1 {
        for n in &mut buildx {
            n.children = walk_referrers(store, &n.descriptor.digest, &[], depth - 1).await?;
        }
    }
    let at = nodes
        .iter()
        .position(|n| n.legacy.is_some())
        .unwrap_or(nodes.len());
    nodes.splice(at..at, buildx);
    Ok(nodes)
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

    fn entry(body: &[u8], ann: &[(&str, &str)]) -> Descriptor {
        let mut d = Descriptor::for_bytes(stella_types::media_types::OCI_MANIFEST, body);
        for (k, v) in ann {
            d.annotations.insert((*k).to_string(), (*v).to_string());
        }
        d
    }

    #[test]
    fn buildx_attestations_are_found_by_annotation_and_filtered_by_platform_digest() {
        let amd = entry(b"amd64", &[]);
        let arm = entry(b"arm64", &[]);
        let amd_s = amd.digest.to_string();
        let arm_s = arm.digest.to_string();
        let att_amd = entry(
            b"att-amd",
            &[
                (DOCKER_REFERENCE_TYPE, ATTESTATION_MANIFEST),
                (DOCKER_REFERENCE_DIGEST, &amd_s),
            ],
        );
        let att_arm = entry(
            b"att-arm",
            &[
                (DOCKER_REFERENCE_TYPE, ATTESTATION_MANIFEST),
                (DOCKER_REFERENCE_DIGEST, &arm_s),
            ],
        );
        // Not attestation manifests: another reference type, a bad digest.
        let other = entry(
            b"other",
            &[
                (DOCKER_REFERENCE_TYPE, "something-else"),
                (DOCKER_REFERENCE_DIGEST, &amd_s),
            ],
        );
        let broken = entry(
            b"broken",
            &[
                (DOCKER_REFERENCE_TYPE, ATTESTATION_MANIFEST),
                (DOCKER_REFERENCE_DIGEST, "sha256:nothex"),
            ],
        );
        let mut index = ImageIndex::empty();
        index.manifests = vec![
            amd.clone(),
            att_arm.clone(),
            arm,
            other,
            broken,
            att_amd.clone(),
        ];
        let all = buildx_attestations(&index, None);
        let digests: BTreeSet<_> = all.iter().map(|a| a.descriptor.digest.clone()).collect();
        assert_eq!(
            digests,
            [att_amd.digest.clone(), att_arm.digest.clone()]
                .into_iter()
                .collect()
        );
        let only = buildx_attestations(&index, Some(&amd.digest));
        assert_eq!(only.len(), 1);
        assert_eq!(only[0].descriptor.digest, att_amd.digest);
        assert_eq!(only[0].about, amd.digest);
    }
}
