//! `bundle import`: pushes a bundle's subject and every referrer into a
//! store, digests preserved, referrers recorded with
//! `ReferrersWrite::add_referrer` (which keeps a fallback index where the
//! store needs one). Two passes over the file: the first verifies
//! integrity (nothing is pushed from a bundle that does not verify), the
//! second streams blobs into the store one at a time through a private
//! temporary directory (files named by us, never by the archive), keeping
//! only manifests in memory. Idempotent: what exists is skipped and counted.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use stella_oci::store::{BlobSource, ContentRead, ContentWrite, NoProgress, ReferrersWrite};
use stella_types::{Descriptor, Digest};

use crate::error::{BundleError, codes};
use crate::export::{TransferReport, push_manifests};
use crate::reader::BundleReader;
use crate::tarball::ReadLimits;
use crate::verify::{VerifyOptions, verify_open};

/// Imports the bundle at `path` into `dst`, tagging the subject with `tag`
/// (default: the tag recorded in the bundle).
pub async fn import_bundle<D: ContentRead + ContentWrite + ReferrersWrite>(
    path: &Path,
    dst: &D,
    tag: Option<&str>,
    limits: ReadLimits,
) -> Result<TransferReport, BundleError> {
    // Pass 1: integrity.
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
    let manifest = reader.manifest().clone();
    let tag = tag
        .map(str::to_string)
        .unwrap_or_else(|| manifest.subject.tag.clone());

    // Pass 2: push.
    let mut reader = BundleReader::open_path(path, limits)?;
    let tmp =
        tempfile::tempdir().map_err(|e| BundleError::io("creating a temporary directory", e))?;
    let mut result = TransferReport::default();
    let mut manifest_bytes: BTreeMap<Digest, Vec<u8>> = BTreeMap::new();
    while let Some(blob) = reader.next_blob()? {
        let a = blob.artifact.clone();
        if a.role.is_manifest() {
            let bytes = blob.read_all()?;
            manifest_bytes.insert(a.digest.clone(), bytes);
            continue;
        }
        let exists = dst
            .blob_exists(&a.digest)
            .await
            .map_err(|e| BundleError::store(format!("checking blob {}", a.digest), e))?;
        if exists {
            blob.finish()?;
            result.blobs_skipped += 1;
            continue;
        }
        // The file name is the digest hex we validated, inside our own temp dir.
        let file_path = tmp.path().join(a.digest.hex());
        let mut f = std::fs::File::create(&file_path)
            .map_err(|e| BundleError::io("creating a temporary file", e))?;
        let mut blob = blob;
        std::io::copy(&mut blob, &mut f)
            .map_err(|e| crate::tarball::io_to_bundle(&format!("blob {}", a.digest), e))?;
        blob.finish()?;
        f.flush()
            .map_err(|e| BundleError::io("writing a temporary file", e))?;
        drop(f);
        let desc = Descriptor::new(a.media_type.clone(), a.digest.clone(), a.size);
        dst.push_blob(&desc, BlobSource::File(&file_path), &NoProgress)
            .await
            .map_err(|e| BundleError::store(format!("pushing blob {}", a.digest), e))?;
        let _ = std::fs::remove_file(&file_path);
        result.blobs_pushed += 1;
        result.bytes_pushed += a.size;
    }
    push_manifests(dst, &manifest, &manifest_bytes, Some(&tag), &mut result).await?;
    Ok(result)
}
