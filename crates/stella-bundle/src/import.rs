//! `bundle import`: pushes a bundle's subject and every referrer into a
//! store, digests preserved, referrers recorded with
//! `ReferrersWrite::add_referrer` (which keeps a fallback index where the
//! store needs one). Two passes over the file: the first verifies
//! integrity (nothing is pushed from a bundle that does not verify); then
//! a bundle made without its image is refused, again before anything is
//! pushed, unless the target already has the subject manifest (the
//! evidence would refer to an image the target lacks; a registry refuses
//! the subject manifest only after every blob went up, and a layout would
//! keep a manifest whose blobs are absent); the second pass streams blobs
//! into the store one at a time through a private temporary directory
//! (files named by us, never by the archive), keeping only manifests in
//! memory. Idempotent: what exists is skipped and counted. Reading,
//! decompressing, hashing and temp-file writing run on blocking threads;
//! the async side only talks to the target store.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use stella_oci::store::{BlobSource, ContentRead, ContentWrite, NoProgress, ReferrersWrite};
use stella_types::{Descriptor, Digest};
use tokio::sync::mpsc;

use crate::error::{BundleError, codes};
use crate::export::{TransferReport, push_manifests};
use crate::format::{ArtifactEntry, BundleManifest};
use crate::reader::BundleReader;
use crate::tarball::ReadLimits;
use crate::verify::{VerifyOptions, verify_open};

fn join_error(e: tokio::task::JoinError) -> BundleError {
    BundleError::io("reading bundle", std::io::Error::other(e.to_string()))
}

/// Pass 1, on a blocking thread: the bundle's integrity and structure.
/// Returns its manifest when it verifies.
fn check_integrity(path: &Path, limits: ReadLimits) -> Result<BundleManifest, BundleError> {
    let mut reader = BundleReader::open_path(path, limits)?;
    let opts = VerifyOptions {
        limits,
        integrity_only: true,
        ..VerifyOptions::default()
    };
    let report = verify_open(&mut reader, &opts)?;
    if !report.verified {
        let reasons: Vec<String> = report.failures.iter().map(|f| f.reason.clone()).collect();
        return Err(BundleError::failed(
            report
                .failures
                .first()
                .map(|f| match f.code.as_str() {
                    codes::LAYOUT => codes::LAYOUT,
                    codes::CHECKSUM_LIST => codes::CHECKSUM_LIST,
                    codes::MISSING_BLOB => codes::MISSING_BLOB,
                    codes::EXTRA_BLOB => codes::EXTRA_BLOB,
                    codes::SIZE_MISMATCH => codes::SIZE_MISMATCH,
                    _ => codes::DIGEST_MISMATCH,
                })
                .unwrap_or(codes::DIGEST_MISMATCH),
            format!(
                "not importing a bundle that does not verify: {}",
                reasons.join("; ")
            ),
        ));
    }
    Ok(reader.manifest().clone())
}

/// What an import does with a bundle made without its image
/// (`selection.includeImage` false) when the target lacks the subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingSubject {
    /// Refuse before uploading anything ([`BundleError::SubjectMissing`]).
    #[default]
    Refuse,
    /// Import the evidence anyway, leaving the subject manifest without its
    /// blobs. Only for a private scratch store that serves to read the
    /// evidence (verifying a bundle offline), never a user's repository.
    AllowInScratchStore,
}

/// Refuses, before anything is uploaded, a bundle made without its image
/// (`selection.includeImage` false) whose subject the target lacks.
async fn require_subject<D: ContentRead>(
    dst: &D,
    manifest: &BundleManifest,
    tag: &str,
    missing: MissingSubject,
) -> Result<(), BundleError> {
    if manifest.selection.include_image || missing == MissingSubject::AllowInScratchStore {
        return Ok(());
    }
    let subject = &manifest.subject.digest;
    let exists = dst
        .manifest_exists(subject)
        .await
        .map_err(|e| BundleError::store(format!("checking image {subject}"), e))?;
    if exists {
        Ok(())
    } else {
        Err(BundleError::SubjectMissing {
            subject: subject.clone(),
            tag: tag.to_string(),
        })
    }
}

/// What the blocking reader hands to the pushing side.
enum Staged {
    /// A manifest's bytes (pushed after every blob).
    Manifest(Digest, Vec<u8>),
    /// A blob the target already has (read and checked, not written).
    Skipped,
    /// A blob written, digest checked, to this file in the private temp dir.
    Blob(ArtifactEntry, PathBuf),
}

/// Pass 2, on a blocking thread: streams the bundle again and stages each
/// blob the target lacks as a file (named by its validated digest, inside
/// our own temporary directory). Stops early if the pushing side is gone.
fn stage_blobs(
    path: &Path,
    limits: ReadLimits,
    present: &BTreeSet<Digest>,
    tmp: &Path,
    tx: &mpsc::Sender<Staged>,
) -> Result<(), BundleError> {
    let mut reader = BundleReader::open_path(path, limits)?;
    while let Some(blob) = reader.next_blob()? {
        let a = blob.artifact.clone();
        let staged = if a.role.is_manifest() {
            Staged::Manifest(a.digest.clone(), blob.read_all()?)
        } else if present.contains(&a.digest) {
            blob.finish()?;
            Staged::Skipped
        } else {
            let file_path = tmp.join(a.digest.hex());
            let mut f = std::fs::File::create(&file_path)
                .map_err(|e| BundleError::io("creating a temporary file", e))?;
            let mut blob = blob;
            std::io::copy(&mut blob, &mut f)
                .map_err(|e| crate::tarball::io_to_bundle(&format!("blob {}", a.digest), e))?;
            blob.finish()?;
            f.flush()
                .map_err(|e| BundleError::io("writing a temporary file", e))?;
            Staged::Blob(a, file_path)
        };
        if tx.blocking_send(staged).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// Imports the bundle at `path` into `dst`, tagging the subject with `tag`
/// (default: the tag recorded in the bundle). A bundle made without its
/// image needs the image at the target already
/// ([`BundleError::SubjectMissing`] otherwise, nothing uploaded). Reading, decompressing and
/// hashing the bundle and writing temporary files run on blocking threads;
/// only the store calls run here.
pub async fn import_bundle<D: ContentRead + ContentWrite + ReferrersWrite>(
    path: &Path,
    dst: &D,
    tag: Option<&str>,
    limits: ReadLimits,
) -> Result<TransferReport, BundleError> {
    import_bundle_with(path, dst, tag, limits, MissingSubject::Refuse).await
}

/// [`import_bundle`], choosing what happens when the bundle was made
/// without its image and the target lacks it.
pub async fn import_bundle_with<D: ContentRead + ContentWrite + ReferrersWrite>(
    path: &Path,
    dst: &D,
    tag: Option<&str>,
    limits: ReadLimits,
    missing: MissingSubject,
) -> Result<TransferReport, BundleError> {
    let p = path.to_path_buf();
    let manifest = tokio::task::spawn_blocking(move || check_integrity(&p, limits))
        .await
        .map_err(join_error)??;
    let tag = tag
        .map(str::to_string)
        .unwrap_or_else(|| manifest.subject.tag.clone());
    require_subject(dst, &manifest, &tag, missing).await?;

    let mut present = BTreeSet::new();
    for a in manifest.artifacts.iter().filter(|a| !a.role.is_manifest()) {
        let exists = dst
            .blob_exists(&a.digest)
            .await
            .map_err(|e| BundleError::store(format!("checking blob {}", a.digest), e))?;
        if exists {
            present.insert(a.digest.clone());
        }
    }
    let tmp =
        tempfile::tempdir().map_err(|e| BundleError::io("creating a temporary directory", e))?;
    let (tx, mut rx) = mpsc::channel::<Staged>(1);
    let (p, tmp_path) = (path.to_path_buf(), tmp.path().to_path_buf());
    let reader =
        tokio::task::spawn_blocking(move || stage_blobs(&p, limits, &present, &tmp_path, &tx));
    let mut result = TransferReport::default();
    let mut manifest_bytes: BTreeMap<Digest, Vec<u8>> = BTreeMap::new();
    let mut pushed: Result<(), BundleError> = Ok(());
    while let Some(staged) = rx.recv().await {
        match staged {
            Staged::Manifest(d, bytes) => {
                manifest_bytes.insert(d, bytes);
            }
            Staged::Skipped => result.blobs_skipped += 1,
            Staged::Blob(a, file) => {
                let desc = Descriptor::new(a.media_type.clone(), a.digest.clone(), a.size);
                pushed = dst
                    .push_blob(&desc, BlobSource::File(&file), &NoProgress)
                    .await
                    .map(drop)
                    .map_err(|e| BundleError::store(format!("pushing blob {}", a.digest), e));
                let _ = tokio::fs::remove_file(&file).await;
                if pushed.is_err() {
                    break;
                }
                result.blobs_pushed += 1;
                result.bytes_pushed += a.size;
            }
        }
    }
    // Stop the reader (if still running) before the temp dir goes.
    drop(rx);
    let read = reader.await.map_err(join_error)?;
    pushed?;
    read?;
    push_manifests(dst, &manifest, &manifest_bytes, Some(&tag), &mut result).await?;
    Ok(result)
}
