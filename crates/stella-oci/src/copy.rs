//! Copying a graph (an image manifest or index, its children and, if asked,
//! its referrers recursively) from one store to another, digests preserved.
//!
//! Order: children before parents (blobs, then manifests, then the referrer
//! bookkeeping), so a failure never leaves a manifest whose blobs are
//! missing. Content already in the destination is skipped, so copying twice
//! is idempotent. Blobs stream through a temp file, never whole in memory.
//! cosign legacy tags of a copied subject are copied with their tag.
//!
//! What this module does not do: decide which store is which, or print.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

use stella_types::limits::MAX_REFERRER_DEPTH;
use stella_types::{Descriptor, Digest, Manifest};

use crate::OciError;
use crate::store::*;

/// What to copy besides the root.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Copy referrers of the root (and of each child of an index root).
    pub include_referrers: bool,
    /// Levels of referrers to follow (1 = direct referrers).
    pub referrer_depth: usize,
    /// Copy the image's config and layers (referrer artifacts' blobs are always copied).
    pub include_image_blobs: bool,
    /// Only first-level referrers of these artifact types (empty: all).
    pub artifact_types: Vec<String>,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            include_referrers: true,
            referrer_depth: stella_types::limits::DEFAULT_REFERRER_DEPTH,
            include_image_blobs: true,
            artifact_types: Vec::new(),
        }
    }
}

/// What [`copy_graph`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    pub manifests_copied: usize,
    pub manifests_skipped: usize,
    pub blobs_copied: usize,
    pub blobs_skipped: usize,
    pub bytes_copied: u64,
}

struct Ctx<'a, S: ?Sized, D: ?Sized> {
    src: &'a S,
    dst: &'a D,
    progress: &'a dyn Progress,
    report: CopyReport,
    done_manifests: BTreeSet<Digest>,
    done_referrers_of: BTreeSet<Digest>,
}

/// Copies `root` (image manifest or index, with children) and, if asked,
/// its referrers recursively, from src to dst, preserving digests;
/// referrers are recorded with dst.add_referrer. Idempotent.
pub async fn copy_graph<
    S: ContentRead + ReferrersRead + ?Sized,
    D: ContentRead + ContentWrite + ReferrersRead + ReferrersWrite + ?Sized,
>(
    src: &S,
    dst: &D,
    root: &Descriptor,
    tag: Option<&str>,
    opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<CopyReport, OciError> {
    let mut cx = Ctx {
        src,
        dst,
        progress,
        report: CopyReport::default(),
        done_manifests: BTreeSet::new(),
        done_referrers_of: BTreeSet::new(),
    };
    let children = copy_manifest(&mut cx, &root.digest, tag, opts.include_image_blobs).await?;
    if opts.include_referrers && opts.referrer_depth > 0 {
        let depth = opts.referrer_depth.min(MAX_REFERRER_DEPTH);
        copy_referrers(&mut cx, root, &opts.artifact_types, depth).await?;
        for child in children {
            copy_referrers(&mut cx, &child, &opts.artifact_types, depth).await?;
        }
    }
    Ok(cx.report)
}

async fn copy_blob<S: ContentRead + ?Sized, D: ContentWrite + ContentRead + ?Sized>(
    cx: &mut Ctx<'_, S, D>,
    d: &Descriptor,
) -> Result<(), OciError> {
    if cx.dst.blob_exists(&d.digest).await? {
        cx.report.blobs_skipped += 1;
        return Ok(());
    }
    let (tmp, f) = crate::blocking::run("creating a temp file", || {
        let tmp = tempfile::NamedTempFile::new()
            .map_err(|e| OciError::io("cannot create temp file", e))?;
        let f = tmp
            .reopen()
            .map_err(|e| OciError::io("cannot open temp file", e))?;
        Ok((tmp, f))
    })
    .await?;
    let mut sink = tokio::fs::File::from_std(f);
    cx.src.fetch_blob_to(d, &mut sink).await?;
    drop(sink);
    cx.dst
        .push_blob(d, BlobSource::File(tmp.path()), cx.progress)
        .await?;
    // Removing the temp file is file work too.
    crate::blocking::run("removing a temp file", move || {
        drop(tmp);
        Ok(())
    })
    .await?;
    cx.report.blobs_copied += 1;
    cx.report.bytes_copied += d.size;
    Ok(())
}

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = Result<T, OciError>> + Send + 'a>>;

/// Copies one manifest with its children (blobs first). Returns, for an
/// index, the descriptors of its child manifests.
fn copy_manifest<
    'a,
    'b: 'a,
    S: ContentRead + ReferrersRead + ?Sized,
    D: ContentRead + ContentWrite + ReferrersRead + ReferrersWrite + ?Sized,
>(
    cx: &'a mut Ctx<'b, S, D>,
    digest: &'a Digest,
    tag: Option<&'a str>,
    with_blobs: bool,
) -> BoxFut<'a, Vec<Descriptor>> {
    Box::pin(async move {
        let fetched = cx.src.fetch_manifest(digest).await?;
        let m = Manifest::parse(&fetched.bytes, Some(&fetched.descriptor.media_type))
            .map_err(|e| OciError::manifest(digest, e))?;
        let mut child_manifests = Vec::new();
        let first_time = cx.done_manifests.insert(digest.clone());
        if first_time {
            match &m {
                Manifest::Image(im) => {
                    if with_blobs {
                        copy_blob(cx, &im.config).await?;
                        for l in &im.layers {
                            copy_blob(cx, l).await?;
                        }
                    }
                }
                Manifest::Index(ix) => {
                    for c in &ix.manifests {
                        copy_manifest(cx, &c.digest, None, with_blobs).await?;
                        child_manifests.push(c.clone());
                    }
                }
            }
        } else if let Manifest::Index(ix) = &m {
            child_manifests = ix.manifests.clone();
        }
        if cx.dst.manifest_exists(digest).await? {
            cx.report.manifests_skipped += 1;
            if tag.is_some() {
                cx.dst
                    .push_manifest(&fetched.descriptor.media_type, &fetched.bytes, tag)
                    .await?;
            }
        } else {
            let d = cx
                .dst
                .push_manifest(&fetched.descriptor.media_type, &fetched.bytes, tag)
                .await?;
            if &d.digest != digest {
                return Err(OciError::Protocol(format!(
                    "destination stored {digest} as {}",
                    d.digest
                )));
            }
            cx.report.manifests_copied += 1;
        }
        Ok(child_manifests)
    })
}

/// Copies the referrers of `subject` (and their referrers, to `depth`).
fn copy_referrers<
    'a,
    'b: 'a,
    S: ContentRead + ReferrersRead + ?Sized,
    D: ContentRead + ContentWrite + ReferrersRead + ReferrersWrite + ?Sized,
>(
    cx: &'a mut Ctx<'b, S, D>,
    subject: &'a Descriptor,
    artifact_types: &'a [String],
    depth: usize,
) -> BoxFut<'a, ()> {
    Box::pin(async move {
        if depth == 0 || !cx.done_referrers_of.insert(subject.digest.clone()) {
            return Ok(());
        }
        let listing = cx
            .src
            .list_referrers(&subject.digest, artifact_types)
            .await?;
        for e in listing.referrers {
            if e.dangling {
                continue;
            }
            copy_manifest(cx, &e.descriptor.digest, None, true).await?;
            let subj = crate::artifact::subject_descriptor(subject);
            cx.dst.add_referrer(&subj, &e.descriptor).await?;
            copy_referrers(cx, &e.descriptor, &[], depth - 1).await?;
        }
        for l in listing.legacy {
            copy_manifest(cx, &l.descriptor.digest, Some(&l.tag), true).await?;
        }
        Ok(())
    })
}
