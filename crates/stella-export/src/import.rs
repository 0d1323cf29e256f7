//! Importing an export into a registry (each repository recreated under a
//! prefix) or into OCI layouts (one per repository under a directory):
//! digests, tags and referrers preserved. The export is verified first
//! (one pass; signatures are checked only if the caller gives keys), then
//! streamed again: each blob a target repository lacks is written to a
//! private temp file and pushed; manifests are pushed after all blobs,
//! children and subjects first; then tags; then the referrers bookkeeping
//! (a fallback tag-schema index the source had travels as a tag and is
//! pushed as is; otherwise the target's `add_referrer` keeps its own). A
//! delta removes what its base had and it no longer has (referrers:
//! deleted; tags: reported, registries cannot delete a tag alone).
//!
//! A delta is applied only on its base: with `base` given, the base's
//! manifest digest must be the one the delta pins, and the base is imported
//! first; without it, every item of the state the delta does not carry
//! must already be in the target, checked before anything is uploaded.
//!
//! What this module does not do: build registry clients (the caller opens
//! a store per repository), or print.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use serde::Serialize;
use stella_oci::AnyStore;
use stella_oci::store::{BlobSource, ContentRead, ContentWrite, NoProgress, ReferrersWrite};
use stella_types::{Descriptor, Digest, Manifest};

use crate::error::{ExportError, codes};
use crate::format::*;
use crate::read::open_export;
use crate::verify::{VerifyOptions, read_head, verify_export};

/// Opens the target store of a repository (`rel/app`).
pub type OpenTarget<'a> = dyn Fn(&str) -> Result<AnyStore, ExportError> + Sync + 'a;

/// What an import did.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    pub manifest_digest: Option<Digest>,
    pub repositories: usize,
    pub blobs_pushed: usize,
    pub blobs_skipped: usize,
    pub manifests_pushed: usize,
    pub manifests_skipped: usize,
    pub tags: usize,
    pub referrers_recorded: usize,
    pub referrers_removed: usize,
    /// Tags the delta's base had that could not be removed from a registry.
    pub tags_left: Vec<String>,
}

/// Imports `path` (and first `base`, for a delta) into the stores `open` gives.
pub async fn import_export(
    path: &Path,
    base: Option<&Path>,
    open: &OpenTarget<'_>,
    opts: &VerifyOptions<'_>,
) -> Result<ImportReport, ExportError> {
    let report = verify_export(path, opts)?;
    check_verified(&report, opts)?;
    let (m, _) = crate::read::read_manifest(path, opts.identities)?;
    let mut out = ImportReport::default();
    if m.profile == Profile::JsonRaw {
        return Err(ExportError::InvalidInput(
            "a json:raw export holds evidence documents, not images: it cannot be imported into a registry".into(),
        ));
    }
    match (&m.base, base) {
        (Some(pinned), Some(b)) => {
            let (bm, bytes) = crate::read::read_manifest(b, opts.identities)?;
            let got = manifest_digest(&bytes);
            if &got != pinned {
                return Err(wrong_base(
                    pinned,
                    &format!("{} is export {got}", b.display()),
                ));
            }
            let _ = bm;
            let inner = Box::pin(import_export(b, None, open, opts)).await?;
            add(&mut out, &inner);
        }
        (None, Some(_)) => {
            return Err(ExportError::InvalidInput(
                "--base is for mirror:delta exports; this is a full export".into(),
            ));
        }
        _ => {}
    }
    let this = import_one(path, &m, open, opts).await?;
    add(&mut out, &this);
    out.manifest_digest = Some(report.manifest_digest);
    Ok(out)
}

fn add(total: &mut ImportReport, r: &ImportReport) {
    total.repositories = total.repositories.max(r.repositories);
    total.blobs_pushed += r.blobs_pushed;
    total.blobs_skipped += r.blobs_skipped;
    total.manifests_pushed += r.manifests_pushed;
    total.manifests_skipped += r.manifests_skipped;
    total.tags += r.tags;
    total.referrers_recorded += r.referrers_recorded;
    total.referrers_removed += r.referrers_removed;
    total.tags_left.extend(r.tags_left.iter().cloned());
}

fn wrong_base(pinned: &Digest, what: &str) -> ExportError {
    ExportError::unusable(
        codes::WRONG_BASE,
        format!("this delta applies only on export {pinned}, but {what}; nothing was imported"),
    )
}

fn check_verified(
    report: &crate::verify::VerifyReport,
    opts: &VerifyOptions<'_>,
) -> Result<(), ExportError> {
    let blocking: Vec<String> = report
        .failures
        .iter()
        .filter(|f| opts.verifier.is_some() || f.code != codes::SIGNATURE)
        .map(|f| f.message.clone())
        .collect();
    if blocking.is_empty() {
        Ok(())
    } else {
        Err(ExportError::failed(
            codes::DIGEST_MISMATCH,
            format!(
                "the export does not verify; nothing was imported: {}",
                blocking.join("; ")
            ),
        ))
    }
}

struct RepoTarget<'s> {
    state: &'s RepositoryState,
    store: AnyStore,
}

async fn import_one(
    path: &Path,
    m: &ExportManifest,
    open: &OpenTarget<'_>,
    opts: &VerifyOptions<'_>,
) -> Result<ImportReport, ExportError> {
    let mut report = ImportReport {
        repositories: m.images.len(),
        ..ImportReport::default()
    };
    let mut targets = Vec::new();
    for s in &m.images {
        targets.push(RepoTarget {
            state: s,
            store: open(&s.repository)?,
        });
    }
    let held: BTreeSet<Digest> = m
        .entries
        .iter()
        .filter_map(|e| e.path.strip_prefix(BLOBS_SHA256_DIR))
        .filter_map(|h| Digest::parse(&format!("sha256:{h}")).ok())
        .collect();
    if let Some(pinned) = &m.base {
        check_base_present(&targets, &held, pinned).await?;
    }
    let manifests = push_blobs(path, m, &targets, opts, &mut report).await?;
    check_index_children(&targets, &manifests, m.selection.platforms.as_deref()).await?;
    for t in &targets {
        push_repository(t, &manifests, &mut report).await?;
    }
    for r in &m.removed {
        if let Some(t) = targets.iter().find(|t| t.state.repository == r.repository) {
            remove_old(t, r, &mut report).await?;
        }
    }
    Ok(report)
}

/// An index whose platform manifests are neither in this export nor in a
/// registry target (an `--include-platforms` subset) is refused by the
/// registry, so it is found before any manifest or tag is pushed: the
/// target's visible state stays as it was, and the reason names the way
/// out. An OCI layout accepts such an index and is not checked.
async fn check_index_children(
    targets: &[RepoTarget<'_>],
    manifests: &BTreeMap<Digest, Vec<u8>>,
    platforms: Option<&[String]>,
) -> Result<(), ExportError> {
    for t in targets {
        if matches!(t.store, AnyStore::Layout(_)) {
            continue;
        }
        let repo = &t.state.repository;
        for c in t
            .state
            .content
            .iter()
            .filter(|c| c.kind == ContentKind::Manifest)
        {
            let Some(bytes) = manifests.get(&c.digest) else {
                continue;
            };
            let Ok(Manifest::Index(index)) = Manifest::parse(bytes, c.media_type.as_deref()) else {
                continue;
            };
            for child in &index.manifests {
                if manifests.contains_key(&child.digest) {
                    continue;
                }
                let present = t
                    .store
                    .manifest_exists(&child.digest)
                    .await
                    .map_err(|e| ExportError::store(format!("checking {repo}"), e))?;
                if present {
                    continue;
                }
                let platform = child
                    .platform
                    .as_ref()
                    .map(|p| format!(" ({}/{})", p.os, p.architecture))
                    .unwrap_or_default();
                let kept = platforms.map_or_else(
                    || "this export".to_string(),
                    |p| {
                        format!(
                            "this export (made with --include-platforms {})",
                            p.join(",")
                        )
                    },
                );
                return Err(ExportError::InvalidInput(format!(
                    "{repo}@{} is an image index whose manifest {}{platform} is neither in {kept} nor in the target, \
                     and a registry refuses such an index; nothing was tagged. Import into an OCI layout (oci:<dir>), \
                     or export again with --include-platforms all",
                    c.digest, child.digest
                )));
            }
        }
    }
    Ok(())
}

/// A delta without `--base`: everything it does not carry must already be there.
async fn check_base_present(
    targets: &[RepoTarget<'_>],
    held: &BTreeSet<Digest>,
    pinned: &Digest,
) -> Result<(), ExportError> {
    let mut missing = 0usize;
    let mut example = None;
    for t in targets {
        for c in &t.state.content {
            if held.contains(&c.digest) {
                continue;
            }
            let there = match c.kind {
                ContentKind::Manifest => t.store.manifest_exists(&c.digest).await,
                ContentKind::Blob => t.store.blob_exists(&c.digest).await,
            }
            .map_err(|e| ExportError::store(format!("checking {}", t.state.repository), e))?;
            if !there {
                missing += 1;
                example.get_or_insert_with(|| format!("{}@{}", t.state.repository, c.digest));
            }
        }
    }
    if missing > 0 {
        return Err(wrong_base(
            pinned,
            &format!(
                "the target lacks {missing} item(s) of that base (e.g. {}): import the base first, or give it with --base",
                example.unwrap_or_default()
            ),
        ));
    }
    Ok(())
}

/// Streams the export, pushing each blob to the repositories that lack it;
/// returns the manifests' bytes.
async fn push_blobs(
    path: &Path,
    m: &ExportManifest,
    targets: &[RepoTarget<'_>],
    opts: &VerifyOptions<'_>,
    report: &mut ImportReport,
) -> Result<BTreeMap<Digest, Vec<u8>>, ExportError> {
    let manifest_kind: BTreeSet<&Digest> = m
        .images
        .iter()
        .flat_map(|r| r.content.iter())
        .filter(|c| c.kind == ContentKind::Manifest)
        .map(|c| &c.digest)
        .collect();
    let mut manifests = BTreeMap::new();
    let mut stream = open_export(path, opts.identities)?;
    read_head(&mut stream)?;
    while let Some(e) = stream.next_entry()? {
        let Some(hex) = e.path.strip_prefix(BLOBS_SHA256_DIR) else {
            continue;
        };
        let Ok(digest) = Digest::parse(&format!("sha256:{hex}")) else {
            continue;
        };
        if manifest_kind.contains(&digest) {
            let bytes = stream.read_small(&e, stella_types::limits::MAX_MANIFEST_BYTES)?;
            manifests.insert(digest, bytes);
            continue;
        }
        let mut needing = Vec::new();
        for t in targets {
            if !t.state.content.iter().any(|c| c.digest == digest) {
                continue;
            }
            let exists = t.store.blob_exists(&digest).await.map_err(|err| {
                ExportError::store(format!("checking {}", t.state.repository), err)
            })?;
            if exists {
                report.blobs_skipped += 1;
            } else {
                needing.push(t);
            }
        }
        if needing.is_empty() {
            continue;
        }
        let mut tmp = tempfile::NamedTempFile::new()
            .map_err(|err| ExportError::io("creating a temp file", err))?;
        std::io::copy(&mut stream.data(), tmp.as_file_mut())
            .map_err(|err| stella_bundle::archive::ArchiveReader::io_error(&e.path, err))?;
        tmp.as_file_mut()
            .flush()
            .map_err(|err| ExportError::io("writing a temp file", err))?;
        let d = Descriptor::new("application/octet-stream", digest.clone(), e.size);
        for t in needing {
            t.store
                .push_blob(&d, BlobSource::File(tmp.path()), &NoProgress)
                .await
                .map_err(|err| {
                    ExportError::store(format!("pushing {digest} to {}", t.state.repository), err)
                })?;
            report.blobs_pushed += 1;
        }
    }
    Ok(manifests)
}

/// Manifests of a repository in push order: every child and subject before
/// the manifest that names it.
fn push_order(
    state: &RepositoryState,
    manifests: &BTreeMap<Digest, Vec<u8>>,
) -> Vec<(Digest, String)> {
    let mine: BTreeMap<&Digest, &str> = state
        .content
        .iter()
        .filter(|c| c.kind == ContentKind::Manifest)
        .map(|c| (&c.digest, c.media_type.as_deref().unwrap_or_default()))
        .collect();
    let deps = |d: &Digest| -> Vec<Digest> {
        let Some(bytes) = manifests.get(d) else {
            return Vec::new();
        };
        let Ok(parsed) = Manifest::parse(bytes, mine.get(d).copied()) else {
            return Vec::new();
        };
        let mut v: Vec<Digest> = parsed
            .children()
            .into_iter()
            .map(|c| c.digest.clone())
            .collect();
        if let Some(s) = parsed.subject() {
            v.push(s.digest.clone());
        }
        v
    };
    let mut order = Vec::new();
    let mut done = BTreeSet::new();
    for start in mine.keys() {
        let mut stack = vec![((*start).clone(), false)];
        while let Some((d, expanded)) = stack.pop() {
            if done.contains(&d) || !mine.contains_key(&d) {
                continue;
            }
            if expanded {
                done.insert(d.clone());
                let mt = mine.get(&d).copied().unwrap_or_default().to_string();
                order.push((d, mt));
                continue;
            }
            stack.push((d.clone(), true));
            for c in deps(&d) {
                if !done.contains(&c) {
                    stack.push((c, false));
                }
            }
        }
    }
    order
}

async fn push_repository(
    t: &RepoTarget<'_>,
    manifests: &BTreeMap<Digest, Vec<u8>>,
    report: &mut ImportReport,
) -> Result<(), ExportError> {
    let repo = &t.state.repository;
    let err = |what: String| move |e| ExportError::store(what, e);
    for (d, mt) in push_order(t.state, manifests) {
        let Some(bytes) = manifests.get(&d) else {
            continue; // held by the base, already in the target
        };
        if t.store
            .manifest_exists(&d)
            .await
            .map_err(err(format!("checking {repo}")))?
        {
            report.manifests_skipped += 1;
            continue;
        }
        let pushed = t
            .store
            .push_manifest(&mt, bytes, None)
            .await
            .map_err(err(format!("pushing {d} to {repo}")))?;
        if pushed.digest != d {
            return Err(ExportError::InvalidInput(format!(
                "{repo} stored {d} as {}",
                pushed.digest
            )));
        }
        report.manifests_pushed += 1;
    }
    let media: BTreeMap<&Digest, &str> = t
        .state
        .content
        .iter()
        .filter_map(|c| c.media_type.as_deref().map(|m| (&c.digest, m)))
        .collect();
    for (tag, d) in &t.state.tags {
        let mt = media.get(d).copied().unwrap_or_default();
        let bytes = match manifests.get(d) {
            Some(b) => b.clone(),
            None => {
                t.store
                    .fetch_manifest(d)
                    .await
                    .map_err(err(format!("fetching {d} from {repo}")))?
                    .bytes
            }
        };
        t.store
            .push_manifest(mt, &bytes, Some(tag))
            .await
            .map_err(err(format!("tagging {repo}:{tag}")))?;
        report.tags += 1;
    }
    let layout = matches!(t.store, AnyStore::Layout(_));
    for e in &t.state.referrers {
        if !layout && t.state.tags.contains_key(&e.subject.referrers_tag()) {
            continue; // the source's fallback index came as a tag
        }
        let subject = match media.get(&e.subject) {
            Some(mt) => {
                let size = t
                    .state
                    .content
                    .iter()
                    .find(|c| c.digest == e.subject)
                    .map(|c| c.size)
                    .unwrap_or(0);
                Descriptor::new(*mt, e.subject.clone(), size)
            }
            None => continue,
        };
        t.store
            .add_referrer(&subject, &e.descriptor())
            .await
            .map_err(err(format!("recording referrer {} in {repo}", e.referrer)))?;
        report.referrers_recorded += 1;
    }
    Ok(())
}

async fn remove_old(
    t: &RepoTarget<'_>,
    removed: &RemovedState,
    report: &mut ImportReport,
) -> Result<(), ExportError> {
    let repo = &t.state.repository;
    let layout = matches!(t.store, AnyStore::Layout(_));
    for e in &removed.referrers {
        let still_used = t.state.content.iter().any(|c| c.digest == e.referrer);
        if layout || !t.state.tags.contains_key(&e.subject.referrers_tag()) {
            t.store
                .remove_referrer(&e.subject, &e.referrer)
                .await
                .map_err(|err| {
                    ExportError::store(format!("removing referrer {} in {repo}", e.referrer), err)
                })?;
        }
        if !still_used
            && t.store
                .manifest_exists(&e.referrer)
                .await
                .map_err(|err| ExportError::store(format!("checking {repo}"), err))?
        {
            t.store.delete_manifest(&e.referrer).await.map_err(|err| {
                ExportError::store(format!("deleting {} in {repo}", e.referrer), err)
            })?;
        }
        report.referrers_removed += 1;
    }
    for tag in &removed.tags {
        if !t.state.tags.contains_key(tag) {
            report.tags_left.push(format!("{repo}:{tag}"));
        }
    }
    Ok(())
}
