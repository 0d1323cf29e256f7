//! Resolving a selection against its source stores: each selected tag or
//! digest is resolved, its manifest tree walked (image indexes filtered by
//! platform if asked), its referrers listed recursively, and, where the
//! source keeps referrers through the tag schema, the fallback index tags
//! recorded. The result is one [`RepositoryState`] per repository plus the
//! manifest bytes seen (kept: they are small) and the blobs to fetch.
//!
//! What this module does not do: write files (see `write`), decide what a
//! delta leaves out, or list a registry's tags (the caller does).

use std::collections::{BTreeMap, BTreeSet};

use stella_oci::AnyStore;
use stella_oci::store::{ContentRead, ReferrersMode, ReferrersRead};
use stella_types::limits::MAX_REFERRER_DEPTH;
use stella_types::{Descriptor, Digest, Manifest};

use crate::error::ExportError;
use crate::format::{ContentItem, ContentKind, ReferrerEdge, RepositoryState, ResolvedImage};

/// One repository to export from, with the tags and digests selected in it.
#[derive(Debug, Clone)]
pub struct SourceRepository {
    /// The repository path recorded in the export (`rel/app`).
    pub repository: String,
    pub store: AnyStore,
    /// Selected tags.
    pub tags: BTreeSet<String>,
    /// Images selected by digest only.
    pub digests: BTreeSet<Digest>,
}

/// A blob to fetch, and from which repository (index into the sources).
#[derive(Debug, Clone)]
pub struct BlobToFetch {
    pub descriptor: Descriptor,
    pub source: usize,
}

/// What collection found.
#[derive(Debug, Default)]
pub struct Collected {
    /// Sorted by repository.
    pub states: Vec<RepositoryState>,
    /// Every manifest's bytes by digest.
    pub manifests: BTreeMap<Digest, (String, Vec<u8>)>,
    /// Every non-manifest blob by digest.
    pub blobs: BTreeMap<Digest, BlobToFetch>,
    /// Newest `org.opencontainers.image.created` annotation seen (RFC 3339).
    pub newest_created: Option<String>,
}

/// `sha256-<hex>` tags (the referrers tag schema and cosign legacy
/// attachments): found through the referrers, never exported as tags when
/// a whole repository is selected.
pub fn is_schema_tag(t: &str) -> bool {
    t.strip_prefix("sha256-").is_some_and(|rest| {
        rest.len() >= 64 && rest.as_bytes().iter().take(64).all(u8::is_ascii_hexdigit)
    })
}

/// Platforms to keep from image indexes (`None`: all).
pub type PlatformFilter = Option<BTreeSet<String>>;

fn platform_string(p: &stella_types::descriptor::Platform) -> String {
    match &p.variant {
        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
        None => format!("{}/{}", p.os, p.architecture),
    }
}

fn keep_platform(filter: &PlatformFilter, d: &Descriptor) -> bool {
    let Some(wanted) = filter else { return true };
    let Some(p) = &d.platform else { return true };
    let full = platform_string(p);
    let short = format!("{}/{}", p.os, p.architecture);
    wanted.contains(&full) || wanted.contains(&short)
}

struct RepoWalk<'a> {
    idx: usize,
    store: &'a AnyStore,
    filter: &'a PlatformFilter,
    out: &'a mut Collected,
    content: BTreeMap<Digest, ContentItem>,
    /// Manifests of this repository whose referrers are to be listed.
    subjects: BTreeSet<Digest>,
}

impl RepoWalk<'_> {
    async fn manifest(&mut self, digest: &Digest) -> Result<Manifest, ExportError> {
        let (media_type, bytes) = match self.out.manifests.get(digest) {
            Some(m) => m.clone(),
            None => {
                let f =
                    self.store.fetch_manifest(digest).await.map_err(|e| {
                        ExportError::store(format!("fetching manifest {digest}"), e)
                    })?;
                (f.descriptor.media_type, f.bytes)
            }
        };
        let m = Manifest::parse(&bytes, Some(&media_type))
            .map_err(|e| ExportError::InvalidInput(format!("manifest {digest}: {e}")))?;
        if let Some(c) = m
            .annotations()
            .get(stella_types::media_types::annotations::CREATED)
            && stella_types::timestamp::parse_rfc3339(c).is_some()
            && self.out.newest_created.as_deref().is_none_or(|n| {
                stella_types::timestamp::parse_rfc3339(n)
                    < stella_types::timestamp::parse_rfc3339(c)
            })
        {
            self.out.newest_created = Some(c.clone());
        }
        self.content.insert(
            digest.clone(),
            ContentItem {
                digest: digest.clone(),
                size: bytes.len() as u64,
                kind: ContentKind::Manifest,
                media_type: Some(media_type.clone()),
            },
        );
        self.out
            .manifests
            .entry(digest.clone())
            .or_insert((media_type, bytes));
        Ok(m)
    }

    fn blob(&mut self, d: &Descriptor) {
        self.content.insert(
            d.digest.clone(),
            ContentItem {
                digest: d.digest.clone(),
                size: d.size,
                kind: ContentKind::Blob,
                media_type: None,
            },
        );
        self.out
            .blobs
            .entry(d.digest.clone())
            .or_insert_with(|| BlobToFetch {
                descriptor: Descriptor::new(&d.media_type, d.digest.clone(), d.size),
                source: self.idx,
            });
    }

    /// Walks a manifest and what it points to; returns the platforms of
    /// the images kept (for an index, of its children).
    async fn tree(
        &mut self,
        digest: &Digest,
        filtered: bool,
        as_subject: bool,
    ) -> Result<Vec<String>, ExportError> {
        let mut stack = vec![digest.clone()];
        let mut platforms = BTreeSet::new();
        let mut seen = BTreeSet::new();
        while let Some(d) = stack.pop() {
            if !seen.insert(d.clone()) {
                continue;
            }
            if as_subject {
                self.subjects.insert(d.clone());
            }
            match self.manifest(&d).await? {
                Manifest::Image(im) => {
                    self.blob(&im.config);
                    for l in &im.layers {
                        self.blob(l);
                    }
                }
                Manifest::Index(ix) => {
                    for c in &ix.manifests {
                        if filtered && !keep_platform(self.filter, c) {
                            continue;
                        }
                        if let Some(p) = &c.platform {
                            platforms.insert(platform_string(p));
                        }
                        stack.push(c.digest.clone());
                    }
                }
            }
        }
        Ok(platforms.into_iter().collect())
    }
}

/// Resolves every source and walks what it selects.
pub async fn collect(
    sources: &[SourceRepository],
    filter: &PlatformFilter,
) -> Result<Collected, ExportError> {
    let mut out = Collected::default();
    for (idx, src) in sources.iter().enumerate() {
        let state = collect_repository(idx, src, filter, &mut out).await?;
        out.states.push(state);
    }
    out.states.sort_by(|a, b| a.repository.cmp(&b.repository));
    Ok(out)
}

async fn collect_repository(
    idx: usize,
    src: &SourceRepository,
    filter: &PlatformFilter,
    out: &mut Collected,
) -> Result<RepositoryState, ExportError> {
    let mut roots: BTreeMap<Digest, Descriptor> = BTreeMap::new();
    let mut tags = BTreeMap::new();
    for tag in &src.tags {
        let d =
            src.store.resolve_tag(tag).await.map_err(|e| {
                ExportError::store(format!("resolving {}:{tag}", src.repository), e)
            })?;
        tags.insert(tag.clone(), d.digest.clone());
        roots.insert(d.digest.clone(), d);
    }
    for digest in &src.digests {
        let f =
            src.store.fetch_manifest(digest).await.map_err(|e| {
                ExportError::store(format!("fetching {}@{digest}", src.repository), e)
            })?;
        roots.insert(digest.clone(), f.descriptor);
    }
    let mut walk = RepoWalk {
        idx,
        store: &src.store,
        filter,
        out,
        content: BTreeMap::new(),
        subjects: BTreeSet::new(),
    };
    let mut images = Vec::new();
    for (digest, d) in &roots {
        let mut platforms = walk.tree(digest, true, true).await?;
        if platforms.is_empty() {
            platforms = image_platform(&mut walk, digest).await;
        }
        images.push(ResolvedImage {
            digest: digest.clone(),
            media_type: d.media_type.clone(),
            size: d.size,
            platforms,
        });
    }
    let referrers = walk_referrers(&mut walk).await?;
    // Where the source keeps referrers through the tag schema, its fallback
    // indexes are tags of the repository and travel as such.
    let mode = src
        .store
        .referrers_mode()
        .await
        .map_err(|e| ExportError::store(format!("probing {}", src.repository), e))?;
    if mode == ReferrersMode::TagSchema {
        let subjects: BTreeSet<Digest> = referrers.iter().map(|e| e.subject.clone()).collect();
        for s in subjects {
            let tag = s.referrers_tag();
            match src.store.resolve_tag(&tag).await {
                Ok(d) => {
                    walk.tree(&d.digest, false, false).await?;
                    tags.insert(tag, d.digest);
                }
                Err(stella_oci::OciError::NotFound { .. }) => {}
                Err(e) => {
                    return Err(ExportError::store(
                        format!("resolving {}:{tag}", src.repository),
                        e,
                    ));
                }
            }
        }
    }
    Ok(RepositoryState {
        repository: src.repository.clone(),
        tags,
        images,
        referrers,
        content: walk.content.into_values().collect(),
    })
}

/// `os/arch` of a single image from its config (best effort: empty if the
/// config says nothing usable).
async fn image_platform(walk: &mut RepoWalk<'_>, digest: &Digest) -> Vec<String> {
    let Some((mt, bytes)) = walk.out.manifests.get(digest) else {
        return Vec::new();
    };
    let Ok(Manifest::Image(im)) = Manifest::parse(bytes, Some(mt)) else {
        return Vec::new();
    };
    if !im.config.media_type.contains("config") || im.config.size > 1024 * 1024 {
        return Vec::new();
    }
    let Ok(cfg) = walk.store.fetch_blob_bytes(&im.config, 1024 * 1024).await else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_slice(&cfg).unwrap_or_default();
    match (
        v.get("os").and_then(|o| o.as_str()),
        v.get("architecture").and_then(|o| o.as_str()),
    ) {
        (Some(os), Some(arch)) => vec![format!("{os}/{arch}")],
        _ => Vec::new(),
    }
}

/// Lists referrers of every subject recursively (breadth first, up to
/// [`MAX_REFERRER_DEPTH`] levels), walking each referrer's own tree.
async fn walk_referrers(walk: &mut RepoWalk<'_>) -> Result<Vec<ReferrerEdge>, ExportError> {
    let mut edges = BTreeSet::new();
    let mut listed = BTreeSet::new();
    let mut level: Vec<Digest> = walk.subjects.iter().cloned().collect();
    for _ in 0..MAX_REFERRER_DEPTH {
        let mut next = Vec::new();
        for subject in level {
            if !listed.insert(subject.clone()) {
                continue;
            }
            let listing = walk
                .store
                .list_referrers_skip_legacy(&subject, &[])
                .await
                .map_err(|e| ExportError::store(format!("listing referrers of {subject}"), e))?;
            for r in listing.referrers {
                if r.dangling {
                    continue;
                }
                let d = r.descriptor;
                walk.tree(&d.digest, false, false).await?;
                edges.insert(ReferrerEdge {
                    subject: subject.clone(),
                    referrer: d.digest.clone(),
                    media_type: d.media_type.clone(),
                    size: d.size,
                    artifact_type: d.artifact_type.clone(),
                });
                next.push(d.digest);
            }
        }
        if next.is_empty() {
            break;
        }
        level = next;
    }
    Ok(edges.into_iter().collect())
}
