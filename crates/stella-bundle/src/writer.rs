//! The deterministic bundle writer: given a [`BundlePlan`] (what goes in)
//! and a content store to read blobs from, writes the tar in the fixed
//! order of the format (bundle manifest, signature, checksums, `oci-layout`,
//! `index.json`, directories, blobs sorted by digest) with fixed metadata,
//! through the chosen compressor. Blobs stream from the store; only
//! manifests (already in the plan) are held in memory.
//!
//! What it does not do: choose the content (see `export`), or read bundles.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use stella_oci::store::ContentRead;
use stella_types::{Descriptor, Digest, ImageIndex};

use crate::error::BundleError;
use crate::format::*;
use crate::tarball::{BLOCK, Compression, Compressor, WriteKind, padding, ustar_header};

/// Everything the writer needs besides blob bytes.
#[derive(Debug, Clone)]
pub struct BundlePlan {
    pub manifest: BundleManifest,
    /// Raw bytes of every manifest in the bundle (roles other than `blob`).
    pub manifest_bytes: BTreeMap<Digest, Vec<u8>>,
    /// `index.json` of the layout.
    pub index: ImageIndex,
    /// The tar mtime of every entry (seconds since 1970, the `created` time).
    pub mtime: u64,
}

/// What was written.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteSummary {
    pub subject: Digest,
    pub artifacts: usize,
    pub blob_bytes: u64,
    pub signed: bool,
    pub compression: Compression,
}

/// Low-level deterministic tar writer.
pub(crate) struct TarWriter<W: Write> {
    out: Compressor<W>,
    mtime: u64,
    open_remaining: Option<(String, u64, u64)>,
}

impl<W: Write> TarWriter<W> {
    pub(crate) fn new(out: W, compression: Compression, mtime: u64) -> io::Result<Self> {
        Ok(TarWriter {
            out: Compressor::new(out, compression)?,
            mtime,
            open_remaining: None,
        })
    }

    pub(crate) fn add_file(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        self.begin_file(path, data.len() as u64)?;
        self.write_data(data)?;
        self.end_file()
    }

    pub(crate) fn add_dir(&mut self, path: &str) -> io::Result<()> {
        let h = ustar_header(path, 0, self.mtime, WriteKind::Dir)?;
        self.out.write_all(&h)
    }

    pub(crate) fn begin_file(&mut self, path: &str, size: u64) -> io::Result<()> {
        if self.open_remaining.is_some() {
            return Err(io::Error::other("tar writer: previous entry not finished"));
        }
        let h = ustar_header(path, size, self.mtime, WriteKind::File)?;
        self.out.write_all(&h)?;
        self.open_remaining = Some((path.to_string(), size, size));
        Ok(())
    }

    pub(crate) fn write_data(&mut self, data: &[u8]) -> io::Result<()> {
        let Some((path, remaining, _)) = self.open_remaining.as_mut() else {
            return Err(io::Error::other("tar writer: no entry open"));
        };
        if data.len() as u64 > *remaining {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{path}: more bytes than the declared size"),
            ));
        }
        *remaining -= data.len() as u64;
        self.out.write_all(data)
    }

    pub(crate) fn end_file(&mut self) -> io::Result<()> {
        match self.open_remaining.take() {
            Some((_, 0, size)) => self.pad_for(size)?,
            Some((path, left, _)) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{path}: {left} bytes fewer than the declared size"),
                ));
            }
            None => return Err(io::Error::other("tar writer: no entry open")),
        }
        Ok(())
    }

    fn pad_for(&mut self, size: u64) -> io::Result<()> {
        let pad = padding(size);
        if pad > 0 {
            self.out.write_all(&[0u8; BLOCK][..pad])?;
        }
        Ok(())
    }

    pub(crate) fn finish(mut self) -> io::Result<W> {
        if self.open_remaining.is_some() {
            return Err(io::Error::other("tar writer: entry not finished"));
        }
        self.out.write_all(&[0u8; 2 * BLOCK])?;
        self.out.finish()
    }
}

/// Adapter so a store can stream a blob straight into the tar.
struct SinkAdapter<'a, W: Write> {
    tar: &'a mut TarWriter<W>,
}

impl<W: Write + Unpin> tokio::io::AsyncWrite for SinkAdapter<'_, W> {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        Poll::Ready(this.tar.write_data(buf).map(|_| buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Writes the metadata entries (everything before the blobs) and returns the
/// bundle manifest bytes written.
fn write_head<W: Write>(
    tar: &mut TarWriter<W>,
    plan: &BundlePlan,
    signer: Option<&dyn ManifestSigner>,
) -> Result<(), BundleError> {
    let wio = |e: io::Error| BundleError::io("writing bundle", e);
    let manifest_bytes = plan.manifest.to_canonical_bytes()?;
    let index_bytes = plan.index.to_json_bytes();
    let signature = match signer {
        Some(s) => Some(sign_manifest(&manifest_bytes, s)?),
        None => None,
    };
    let mut sums = vec![
        (
            MANIFEST_NAME.to_string(),
            Digest::sha256_of(&manifest_bytes).hex().to_string(),
        ),
        (
            OCI_LAYOUT_NAME.to_string(),
            Digest::sha256_of(OCI_LAYOUT_CONTENT).hex().to_string(),
        ),
        (
            INDEX_NAME.to_string(),
            Digest::sha256_of(&index_bytes).hex().to_string(),
        ),
    ];
    if let Some(sig) = &signature {
        sums.push((
            SIGNATURE_NAME.to_string(),
            Digest::sha256_of(sig).hex().to_string(),
        ));
    }
    for a in &plan.manifest.artifacts {
        sums.push((blob_path(&a.digest), a.digest.hex().to_string()));
    }
    tar.add_file(MANIFEST_NAME, &manifest_bytes).map_err(wio)?;
    if let Some(sig) = &signature {
        tar.add_file(SIGNATURE_NAME, sig).map_err(wio)?;
    }
    let sums = render_checksums(&sums);
    for (name, data) in [
        (CHECKSUMS_NAME, &sums[..]),
        (OCI_LAYOUT_NAME, OCI_LAYOUT_CONTENT),
        (INDEX_NAME, &index_bytes[..]),
    ] {
        tar.add_file(name, data).map_err(wio)?;
    }
    tar.add_dir(BLOBS_DIR).map_err(wio)?;
    tar.add_dir(BLOBS_SHA256_DIR).map_err(wio)?;
    Ok(())
}

/// Writes the bundle described by `plan` to `out`, streaming blobs from `store`.
pub async fn write_bundle<S: ContentRead, W: Write + Send + Unpin>(
    store: &S,
    plan: &BundlePlan,
    signer: Option<&dyn ManifestSigner>,
    compression: Compression,
    out: W,
) -> Result<(W, WriteSummary), BundleError> {
    let wio = |e: io::Error| BundleError::io("writing bundle", e);
    let mut tar = TarWriter::new(out, compression, plan.mtime).map_err(wio)?;
    write_head(&mut tar, plan, signer)?;
    for a in &plan.manifest.artifacts {
        let path = blob_path(&a.digest);
        if let Some(bytes) = plan.manifest_bytes.get(&a.digest) {
            if Digest::sha256_of(bytes) != a.digest || bytes.len() as u64 != a.size {
                return Err(BundleError::InvalidInput(format!(
                    "plan holds wrong bytes for manifest {}",
                    a.digest
                )));
            }
            tar.add_file(&path, bytes).map_err(wio)?;
        } else {
            tar.begin_file(&path, a.size).map_err(wio)?;
            let desc = Descriptor::new(a.media_type.clone(), a.digest.clone(), a.size);
            let mut sink = SinkAdapter { tar: &mut tar };
            store
                .fetch_blob_to(&desc, &mut sink)
                .await
                .map_err(|e| BundleError::store(format!("fetching blob {}", a.digest), e))?;
            tar.end_file().map_err(wio)?;
        }
    }
    let out = tar.finish().map_err(wio)?;
    let summary = WriteSummary {
        subject: plan.manifest.subject.digest.clone(),
        artifacts: plan.manifest.artifacts.len(),
        blob_bytes: plan.manifest.total_blob_bytes(),
        signed: signer.is_some(),
        compression,
    };
    Ok((out, summary))
}

/// Writes the bundle to `path` atomically: into a temporary file in the same
/// directory, synced, then renamed. An interrupted export leaves no partial bundle.
pub async fn write_bundle_to_path<S: ContentRead>(
    store: &S,
    plan: &BundlePlan,
    signer: Option<&dyn ManifestSigner>,
    compression: Compression,
    path: &Path,
) -> Result<WriteSummary, BundleError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".stella-bundle-")
        .suffix(".partial")
        .tempfile_in(&dir)
        .map_err(|e| {
            BundleError::io(format!("creating a temporary file in {}", dir.display()), e)
        })?;
    let (file, tmp_path) = tmp.into_parts();
    let writer = io::BufWriter::with_capacity(1 << 20, file);
    let (writer, summary) = write_bundle(store, plan, signer, compression, writer).await?;
    let file = writer
        .into_inner()
        .map_err(|e| BundleError::io("writing bundle", e.into_error()))?;
    file.sync_all()
        .map_err(|e| BundleError::io("syncing bundle", e))?;
    drop(file);
    tmp_path.persist(path).map_err(|e| {
        BundleError::io(format!("renaming bundle into {}", path.display()), e.error)
    })?;
    Ok(summary)
}
