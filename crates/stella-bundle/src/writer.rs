//! The deterministic bundle writer: given a [`BundlePlan`] (what goes in)
//! and a content store to read blobs from, writes the tar in the fixed
//! order of the format (bundle manifest, signature, checksums, `oci-layout`,
//! `index.json`, directories, blobs sorted by digest) with fixed metadata,
//! through the chosen compressor. Blobs stream from the store; only
//! manifests (already in the plan) are held in memory.
//!
//! The tar and its compression run on a blocking thread (never on the async
//! runtime); before a byte is written, a bundle the reader would refuse is
//! refused, so export and `bundle verify` cannot disagree.
//!
//! What it does not do: choose the content (see `export`), or read bundles.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use stella_oci::store::ContentRead;
use stella_types::limits::MAX_MANIFEST_BYTES;
use stella_types::{Descriptor, Digest, ImageIndex};
use tokio::sync::mpsc;

use crate::error::BundleError;
use crate::format::*;
use crate::limits::{MAX_BUNDLE_MANIFEST_BYTES, MAX_LAYOUT_FILE_BYTES, MAX_MANIFEST_BYTES_TOTAL};
use crate::tarball::{
    BLOCK, Compression, Compressor, ReadLimits, WriteKind, declared_tar_bytes, padding,
    ustar_header,
};

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

/// The metadata entries of a bundle, rendered: what comes before the blobs.
struct Head {
    manifest_bytes: Vec<u8>,
    signature: Option<Vec<u8>>,
    sums: Vec<u8>,
    index_bytes: Vec<u8>,
}

impl Head {
    /// Sizes of the head files, as [`declared_tar_bytes`] takes them.
    fn file_sizes(&self) -> Vec<u64> {
        [
            self.manifest_bytes.len(),
            self.sums.len(),
            OCI_LAYOUT_CONTENT.len(),
            self.index_bytes.len(),
        ]
        .into_iter()
        .chain(self.signature.as_ref().map(Vec::len))
        .map(|n| n as u64)
        .collect()
    }
}

/// Renders (and signs) the bundle manifest, the checksum list and `index.json`.
fn render_head(
    plan: &BundlePlan,
    signer: Option<&dyn ManifestSigner>,
) -> Result<Head, BundleError> {
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
    Ok(Head {
        manifest_bytes,
        signature,
        sums: render_checksums(&sums),
        index_bytes,
    })
}

fn refuse_unreadable(why: String) -> BundleError {
    BundleError::InvalidInput(format!(
        "refusing to write a bundle that its readers (verify, import) would refuse: {why}"
    ))
}

/// Refuses, before a byte is written, a bundle that a reader with `limits`
/// (and the fixed caps of `crate::limits`) would refuse, so that export and
/// `bundle verify` / `bundle import` can never disagree on the far side of
/// an air gap.
fn check_readable(head: &Head, plan: &BundlePlan, limits: &ReadLimits) -> Result<(), BundleError> {
    let files: [(&str, Option<usize>, u64); 4] = [
        (
            MANIFEST_NAME,
            Some(head.manifest_bytes.len()),
            MAX_BUNDLE_MANIFEST_BYTES,
        ),
        (
            CHECKSUMS_NAME,
            Some(head.sums.len()),
            MAX_BUNDLE_MANIFEST_BYTES,
        ),
        (
            INDEX_NAME,
            Some(head.index_bytes.len()),
            MAX_LAYOUT_FILE_BYTES,
        ),
        (
            SIGNATURE_NAME,
            head.signature.as_ref().map(Vec::len),
            MAX_LAYOUT_FILE_BYTES,
        ),
    ];
    for (name, size, cap) in files {
        if let Some(size) = size.filter(|s| *s as u64 > cap) {
            return Err(refuse_unreadable(format!(
                "{name} would be {size} bytes, over the reader's {cap}-byte cap"
            )));
        }
    }
    // The structural rules the reader applies (version, sorting, artifact count, tag).
    BundleManifest::parse(&head.manifest_bytes).map_err(|e| refuse_unreadable(e.to_string()))?;
    let mut manifests_total: u64 = 0;
    for a in plan
        .manifest
        .artifacts
        .iter()
        .filter(|a| a.role.is_manifest())
    {
        if a.size > MAX_MANIFEST_BYTES {
            return Err(refuse_unreadable(format!(
                "manifest {} is {} bytes, over the reader's {MAX_MANIFEST_BYTES}-byte cap",
                a.digest, a.size
            )));
        }
        manifests_total = manifests_total.saturating_add(a.size);
    }
    if manifests_total > MAX_MANIFEST_BYTES_TOTAL {
        return Err(refuse_unreadable(format!(
            "its manifests total {manifests_total} bytes, over the reader's {MAX_MANIFEST_BYTES_TOTAL}-byte cap"
        )));
    }
    let declared = declared_tar_bytes(&head.file_sizes(), &plan.manifest);
    if declared > limits.max_total_bytes {
        return Err(refuse_unreadable(format!(
            "the archive would be {declared} bytes, over the reader's {}-byte cap",
            limits.max_total_bytes
        )));
    }
    Ok(())
}

/// What the async side hands to the blocking tar writer.
enum Piece {
    /// A file entry of this path and size begins.
    Begin {
        path: String,
        size: u64,
    },
    Data(Vec<u8>),
    /// The open file entry is complete.
    End,
}

/// Writes the head, then the pieces as they arrive, on a blocking thread
/// (compression and file I/O never run on the async runtime). A channel
/// closed before every blob arrived (the exporter failed or was cancelled)
/// is an error, so a partial bundle is never finished.
fn write_pieces<W: Write>(
    out: W,
    head: Head,
    mtime: u64,
    compression: Compression,
    artifacts: usize,
    mut rx: mpsc::Receiver<Piece>,
) -> Result<W, BundleError> {
    let wio = |e: io::Error| BundleError::io("writing bundle", e);
    let mut tar = TarWriter::new(out, compression, mtime).map_err(wio)?;
    tar.add_file(MANIFEST_NAME, &head.manifest_bytes)
        .map_err(wio)?;
    if let Some(sig) = &head.signature {
        tar.add_file(SIGNATURE_NAME, sig).map_err(wio)?;
    }
    for (name, data) in [
        (CHECKSUMS_NAME, &head.sums[..]),
        (OCI_LAYOUT_NAME, OCI_LAYOUT_CONTENT),
        (INDEX_NAME, &head.index_bytes[..]),
    ] {
        tar.add_file(name, data).map_err(wio)?;
    }
    tar.add_dir(BLOBS_DIR).map_err(wio)?;
    tar.add_dir(BLOBS_SHA256_DIR).map_err(wio)?;
    let mut ended = 0usize;
    while let Some(piece) = rx.blocking_recv() {
        match piece {
            Piece::Begin { path, size } => tar.begin_file(&path, size).map_err(wio)?,
            Piece::Data(d) => tar.write_data(&d).map_err(wio)?,
            Piece::End => {
                tar.end_file().map_err(wio)?;
                ended += 1;
            }
        }
    }
    if ended != artifacts {
        return Err(BundleError::InvalidInput(
            "bundle export stopped before every blob was written".into(),
        ));
    }
    tar.finish().map_err(wio)
}

type Reserve = Pin<
    Box<
        dyn std::future::Future<
                Output = Result<mpsc::OwnedPermit<Piece>, mpsc::error::SendError<()>>,
            > + Send,
    >,
>;

/// An `AsyncWrite` that hands each buffer to the blocking tar writer
/// (waiting for room in the bounded channel).
struct PieceSink {
    tx: mpsc::Sender<Piece>,
    reserving: Option<Reserve>,
}

fn writer_gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the bundle writer stopped")
}

impl tokio::io::AsyncWrite for PieceSink {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let tx = &this.tx;
        let reserve = this
            .reserving
            .get_or_insert_with(|| Box::pin(tx.clone().reserve_owned()));
        let permit = match reserve.as_mut().poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(r) => r,
        };
        this.reserving = None;
        match permit {
            Ok(p) => {
                p.send(Piece::Data(buf.to_vec()));
                Poll::Ready(Ok(buf.len()))
            }
            Err(_) => Poll::Ready(Err(writer_gone())),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

async fn send_piece(tx: &mpsc::Sender<Piece>, piece: Piece) -> Result<(), BundleError> {
    tx.send(piece)
        .await
        .map_err(|_| BundleError::io("writing bundle", writer_gone()))
}

/// Sends every blob of the plan, in order, to the blocking writer.
async fn feed_blobs<S: ContentRead>(
    store: &S,
    plan: &BundlePlan,
    tx: mpsc::Sender<Piece>,
) -> Result<(), BundleError> {
    for a in &plan.manifest.artifacts {
        let manifest = plan.manifest_bytes.get(&a.digest);
        if let Some(bytes) = manifest
            && (Digest::sha256_of(bytes) != a.digest || bytes.len() as u64 != a.size)
        {
            return Err(BundleError::InvalidInput(format!(
                "plan holds wrong bytes for manifest {}",
                a.digest
            )));
        }
        let path = blob_path(&a.digest);
        send_piece(&tx, Piece::Begin { path, size: a.size }).await?;
        if let Some(bytes) = manifest {
            send_piece(&tx, Piece::Data(bytes.clone())).await?;
        } else {
            let desc = Descriptor::new(a.media_type.clone(), a.digest.clone(), a.size);
            let mut sink = PieceSink {
                tx: tx.clone(),
                reserving: None,
            };
            store
                .fetch_blob_to(&desc, &mut sink)
                .await
                .map_err(|e| BundleError::store(format!("fetching blob {}", a.digest), e))?;
        }
        send_piece(&tx, Piece::End).await?;
    }
    Ok(())
}

fn join_error(e: tokio::task::JoinError) -> BundleError {
    BundleError::io("writing bundle", io::Error::other(e.to_string()))
}

/// Writes the bundle described by `plan` to `out`, streaming blobs from
/// `store`. The tar and its compression run on a blocking thread; blobs are
/// fetched here and handed over through a bounded channel. A bundle that
/// the reader would refuse (sizes over its caps) is refused before anything
/// is written.
pub async fn write_bundle<S: ContentRead, W: Write + Send + 'static>(
    store: &S,
    plan: &BundlePlan,
    signer: Option<&dyn ManifestSigner>,
    compression: Compression,
    out: W,
) -> Result<(W, WriteSummary), BundleError> {
    let head = render_head(plan, signer)?;
    check_readable(&head, plan, &ReadLimits::default())?;
    let (tx, rx) = mpsc::channel::<Piece>(16);
    let mtime = plan.mtime;
    let artifacts = plan.manifest.artifacts.len();
    let writer = tokio::task::spawn_blocking(move || {
        write_pieces(out, head, mtime, compression, artifacts, rx)
    });
    let fed = feed_blobs(store, plan, tx).await;
    let written = writer.await.map_err(join_error)?;
    // When fetching failed, the writer only saw the channel close: report the fetch error.
    let out = match (fed, written) {
        (Ok(()), Ok(out)) => out,
        (Err(e), Ok(_) | Err(BundleError::InvalidInput(_))) => return Err(e),
        (_, Err(e)) => return Err(e),
    };
    let summary = WriteSummary {
        subject: plan.manifest.subject.digest.clone(),
        artifacts: plan.manifest.artifacts.len(),
        blob_bytes: plan.manifest.total_blob_bytes(),
        signed: signer.is_some(),
        compression,
    };
    Ok((out, summary))
}

/// Prefix of the temporary file an export writes before renaming it.
pub const PARTIAL_PREFIX: &str = ".stella-bundle-";
/// Suffix of the temporary file an export writes before renaming it.
pub const PARTIAL_SUFFIX: &str = ".partial";

/// Opens the temporary file next to `target` (after checking `target` may
/// be written and sweeping stale temporary files of ours).
fn open_partial(
    target: &Path,
    overwrite: bool,
) -> Result<(tempfile::NamedTempFile, std::fs::File), BundleError> {
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    if !overwrite && std::fs::symlink_metadata(target).is_ok() {
        return Err(BundleError::InvalidInput(format!(
            "{} already exists; refusing to overwrite it",
            target.display()
        )));
    }
    stella_oci::artifact::sweep_stale_temp_files(&dir, PARTIAL_PREFIX, PARTIAL_SUFFIX);
    let tmp = tempfile::Builder::new()
        .prefix(PARTIAL_PREFIX)
        .suffix(PARTIAL_SUFFIX)
        .tempfile_in(&dir)
        .map_err(|e| {
            BundleError::io(format!("creating a temporary file in {}", dir.display()), e)
        })?;
    let file = tmp
        .reopen()
        .map_err(|e| BundleError::io("opening the temporary bundle file", e))?;
    Ok((tmp, file))
}

/// Syncs the written file and renames the temporary file onto `target`.
fn commit_partial(
    tmp: tempfile::NamedTempFile,
    writer: io::BufWriter<std::fs::File>,
    target: &Path,
    overwrite: bool,
) -> Result<(), BundleError> {
    let file = writer
        .into_inner()
        .map_err(|e| BundleError::io("writing bundle", e.into_error()))?;
    file.sync_all()
        .map_err(|e| BundleError::io("syncing bundle", e))?;
    drop(file);
    let persisted = if overwrite {
        tmp.persist(target).map(drop)
    } else {
        tmp.persist_noclobber(target).map(drop)
    };
    persisted.map_err(|e| {
        BundleError::io(
            format!("renaming bundle into {}", target.display()),
            e.error,
        )
    })
}

/// Writes the bundle to `path` atomically: into a temporary file
/// (`.stella-bundle-*.partial`) in the same directory, synced, then
/// renamed. An export that fails or is cancelled (its future dropped)
/// removes the temporary file; stale ones left by a killed process (older
/// than [`stella_oci::artifact::STALE_TEMP_AFTER`]) are swept from that directory
/// first. An existing `path` is replaced only with `overwrite`.
pub async fn write_bundle_to_path<S: ContentRead>(
    store: &S,
    plan: &BundlePlan,
    signer: Option<&dyn ManifestSigner>,
    compression: Compression,
    path: &Path,
    overwrite: bool,
) -> Result<WriteSummary, BundleError> {
    let target = path.to_path_buf();
    let (tmp, file) = tokio::task::spawn_blocking(move || open_partial(&target, overwrite))
        .await
        .map_err(join_error)??;
    let writer = io::BufWriter::with_capacity(1 << 20, file);
    let (writer, summary) = write_bundle(store, plan, signer, compression, writer).await?;
    let target = path.to_path_buf();
    tokio::task::spawn_blocking(move || commit_partial(tmp, writer, &target, overwrite))
        .await
        .map_err(join_error)??;
    Ok(summary)
}
