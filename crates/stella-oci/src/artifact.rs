//! Referrer artifacts: build and push an OCI 1.1 artifact manifest about a
//! subject, resolve references, pull an artifact's files safely, delete one.
//!
//! The manifest Stella writes (image-spec v1.1 `manifest.md`, "guidelines
//! for artifact usage"): `artifactType` set, the empty config
//! (`application/vnd.oci.empty.v1+json`, blob `{}`), one layer per file with
//! `org.opencontainers.image.title`, the `subject` descriptor (media type,
//! digest, size only) and the caller's annotations plus
//! `org.opencontainers.image.created` (from `SOURCE_DATE_EPOCH` when set).
//! Serialization is deterministic, so the same inputs give the same digest.
//!
//! What this module does not do: talk HTTP or touch a layout directly (it is
//! written over the store traits), or print anything.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use stella_types::digest::Hasher;
use stella_types::media_types::{self, annotations};
use stella_types::{Descriptor, Digest, ImageManifest, Manifest, Reference};

use crate::OciError;
use crate::store::*;

/// Where one layer of an artifact comes from.
#[derive(Debug, Clone)]
pub enum LayerSource {
    /// A file, streamed; its title is the file name.
    File { path: PathBuf, media_type: String },
    /// Bytes in memory, with an optional title.
    Bytes {
        bytes: Vec<u8>,
        media_type: String,
        title: Option<String>,
    },
}

/// What to push as a referrer.
#[derive(Debug, Clone, Default)]
pub struct ArtifactSpec {
    pub artifact_type: String,
    pub layers: Vec<LayerSource>,
    pub annotations: BTreeMap<String, String>,
}

/// The result of [`push_referrer`].
#[derive(Debug, Clone)]
pub struct PushedArtifact {
    /// The referrer manifest: media type, digest, size, artifactType and its annotations.
    pub descriptor: Descriptor,
    pub manifest_bytes: Vec<u8>,
    pub subject: Descriptor,
    pub mode: ReferrersMode,
}

/// Hashes a file by streaming it; returns (digest, size).
pub fn digest_file(path: &Path) -> Result<(Digest, u64), OciError> {
    let mut f = std::fs::File::open(path)
        .map_err(|e| OciError::io(format!("cannot read {}", path.display()), e))?;
    if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(OciError::InvalidInput(format!(
            "{} is a directory, not a file",
            path.display()
        )));
    }
    let mut h = Hasher::new(stella_types::DigestAlgorithm::Sha256);
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| OciError::io(format!("cannot read {}", path.display()), e))?;
        if n == 0 {
            break;
        }
        let Some(chunk) = buf.get(..n) else { break };
        h.update(chunk);
        size += n as u64;
    }
    Ok((h.finish(), size))
}

fn file_title(path: &Path) -> Result<String, OciError> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| {
            OciError::InvalidInput(format!(
                "{} has no usable (UTF-8) file name",
                path.display()
            ))
        })
}

/// The descriptor Stella puts in `subject`: media type, digest and size only.
pub fn subject_descriptor(subject: &Descriptor) -> Descriptor {
    Descriptor::new(&subject.media_type, subject.digest.clone(), subject.size)
}

/// The empty config descriptor (`{}`).
pub fn empty_descriptor() -> Descriptor {
    // The constant is a valid digest (checked by a stella-types test).
    let digest = Digest::parse(media_types::EMPTY_JSON_DIGEST)
        .unwrap_or_else(|_| Digest::sha256_of(media_types::EMPTY_JSON));
    Descriptor::new(
        media_types::OCI_EMPTY,
        digest,
        media_types::EMPTY_JSON.len() as u64,
    )
}

/// Builds the artifact manifest (no I/O besides hashing files). Returns the
/// manifest and, per layer, the descriptor and its source.
pub fn build_manifest(
    subject: &Descriptor,
    spec: &ArtifactSpec,
) -> Result<(ImageManifest, Vec<(Descriptor, LayerSource)>), OciError> {
    let at = spec.artifact_type.trim();
    if at.is_empty() || !at.contains('/') || at.chars().any(char::is_whitespace) {
        return Err(OciError::InvalidInput(format!(
            "artifact type {:?} is not a media type (like application/vnd.cyclonedx+json)",
            spec.artifact_type
        )));
    }
    if let Some(k) = spec.annotations.keys().find(|k| k.trim().is_empty()) {
        return Err(OciError::InvalidInput(format!(
            "annotation key {k:?} is empty"
        )));
    }
    let mut titles = BTreeSet::new();
    let mut layers = Vec::new();
    for src in &spec.layers {
        let (mut d, title) = match src {
            LayerSource::File { path, media_type } => {
                let (digest, size) = digest_file(path)?;
                (
                    Descriptor::new(media_type, digest, size),
                    Some(file_title(path)?),
                )
            }
            LayerSource::Bytes {
                bytes,
                media_type,
                title,
            } => (Descriptor::for_bytes(media_type, bytes), title.clone()),
        };
        if let Some(t) = title {
            check_title(&t)?;
            if !titles.insert(t.clone()) {
                return Err(OciError::InvalidInput(format!(
                    "two layers have the same title {t:?}"
                )));
            }
            d.annotations.insert(annotations::TITLE.to_string(), t);
        }
        layers.push((d, src.clone()));
    }
    let mut ann = spec.annotations.clone();
    if !ann.contains_key(annotations::CREATED) {
        let t = stella_types::timestamp::creation_time()
            .map_err(|e| OciError::InvalidInput(e.to_string()))?;
        ann.insert(
            annotations::CREATED.to_string(),
            stella_types::timestamp::rfc3339(t),
        );
    }
    let layer_descs: Vec<Descriptor> = if layers.is_empty() {
        // image-spec: with no layers, use the empty descriptor once.
        vec![empty_descriptor()]
    } else {
        layers.iter().map(|(d, _)| d.clone()).collect()
    };
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(media_types::OCI_MANIFEST.to_string()),
        artifact_type: Some(at.to_string()),
        config: empty_descriptor(),
        layers: layer_descs,
        subject: Some(subject_descriptor(subject)),
        annotations: ann,
    };
    Ok((manifest, layers))
}

/// Builds the OCI 1.1 artifact manifest (artifactType, empty config, one
/// layer per source with org.opencontainers.image.title, subject,
/// annotations + org.opencontainers.image.created from SOURCE_DATE_EPOCH
/// unless the caller set it), asks the store whether its bookkeeping has
/// room for it (ReferrersWrite::check_referrer_room: nothing is written
/// when it has not), pushes blobs (skip existing), the empty config, the
/// manifest by digest, then calls ReferrersWrite::add_referrer. Files are
/// hashed on the blocking pool.
pub async fn push_referrer<
    S: ContentRead + ContentWrite + ReferrersRead + ReferrersWrite + ?Sized,
>(
    store: &S,
    subject: &Descriptor,
    spec: &ArtifactSpec,
    progress: &dyn Progress,
) -> Result<PushedArtifact, OciError> {
    let (manifest, layers) = {
        let (subject, spec) = (subject.clone(), spec.clone());
        crate::blocking::run("hashing the artifact's files", move || {
            build_manifest(&subject, &spec)
        })
        .await?
    };
    let bytes = manifest.to_json_bytes();
    store.check_referrer_room(subject, &bytes).await?;
    let mode = store.referrers_mode().await?;
    for (d, src) in &layers {
        match src {
            LayerSource::File { path, .. } => {
                store.push_blob(d, BlobSource::File(path), progress).await?
            }
            LayerSource::Bytes { bytes, .. } => {
                store
                    .push_blob(d, BlobSource::Bytes(bytes), progress)
                    .await?
            }
        };
    }
    store
        .push_blob(
            &empty_descriptor(),
            BlobSource::Bytes(media_types::EMPTY_JSON),
            &NoProgress,
        )
        .await?;
    let pushed = store
        .push_manifest(media_types::OCI_MANIFEST, &bytes, None)
        .await?;
    let mut descriptor = Descriptor::new(
        media_types::OCI_MANIFEST,
        pushed.digest.clone(),
        bytes.len() as u64,
    );
    if pushed.digest != Digest::sha256_of(&bytes) {
        return Err(OciError::Protocol(format!(
            "store answered digest {} for a manifest whose digest is {}",
            pushed.digest,
            Digest::sha256_of(&bytes)
        )));
    }
    descriptor.artifact_type = manifest.artifact_type.clone();
    descriptor.annotations = manifest.annotations.clone();
    store.add_referrer(subject, &descriptor).await?;
    Ok(PushedArtifact {
        descriptor,
        manifest_bytes: bytes,
        subject: subject_descriptor(subject),
        mode,
    })
}

/// Resolves a reference (tag or digest) to the descriptor of its manifest
/// (mediaType, digest, size). A digest wins over a tag.
pub async fn resolve<S: ContentRead + ?Sized>(
    store: &S,
    reference: &Reference,
) -> Result<Descriptor, OciError> {
    if let Some(d) = reference.digest() {
        return Ok(store
            .fetch_manifest(d)
            .await
            .map_err(|e| match e {
                OciError::NotFound { .. } => OciError::not_found(format!("image {reference}")),
                other => other,
            })?
            .descriptor);
    }
    match reference.tag() {
        Some(t) => store.resolve_tag(t).await.map_err(|e| match e {
            OciError::NotFound { .. } => OciError::not_found(format!("image {reference}")),
            other => other,
        }),
        None => Err(OciError::InvalidInput(format!(
            "reference {reference} names neither a tag nor a digest"
        ))),
    }
}

/// Checks that a layer title is a plain file name: not empty, not `.`/`..`,
/// no path separators, no NUL or control characters, not absolute.
pub fn check_title(title: &str) -> Result<(), OciError> {
    let bad = title.is_empty()
        || title == "."
        || title == ".."
        || title.contains("..")
        || title.contains('/')
        || title.contains('\\')
        || title.chars().any(char::is_control)
        || Path::new(title).is_absolute()
        || title.len() > 255;
    if bad {
        return Err(OciError::InvalidInput(format!(
            "layer title {title:?} is not a plain file name (refusing path traversal)"
        )));
    }
    Ok(())
}

/// One file written by [`pull_referrer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledFile {
    pub path: PathBuf,
    pub descriptor: Descriptor,
    /// The file was already there with the same content.
    pub unchanged: bool,
}

/// The name a layer is written under: its title, or `<alg>-<hex>` without one.
fn layer_file_name(d: &Descriptor) -> Result<String, OciError> {
    match d.annotation(annotations::TITLE) {
        Some(t) => {
            check_title(t)?;
            Ok(t.to_string())
        }
        None => Ok(format!(
            "{}-{}",
            d.digest.algorithm().as_str(),
            d.digest.hex()
        )),
    }
}

/// Downloads the layers of the artifact manifest `digest` into `out_dir`
/// (created if missing). Every layer streams into a temp file in `out_dir`
/// while its digest and size are checked; only when all are good are they
/// renamed into place. An existing file with the same content is left as
/// is; one with different content, or anything but a regular file, is an
/// error (never overwritten). Layers that are the empty descriptor and have
/// no title are skipped. File work runs on the blocking pool.
pub async fn pull_referrer<S: ContentRead + ?Sized>(
    store: &S,
    digest: &Digest,
    out_dir: &Path,
    progress: &dyn Progress,
) -> Result<Vec<PulledFile>, OciError> {
    let fetched = store.fetch_manifest(digest).await?;
    let m = Manifest::parse(&fetched.bytes, Some(&fetched.descriptor.media_type))
        .map_err(|e| OciError::manifest(digest, e))?;
    let Manifest::Image(m) = m else {
        return Err(OciError::InvalidInput(format!(
            "{digest} is an image index, not an artifact manifest"
        )));
    };
    let mut plan = Vec::new();
    let mut names = BTreeSet::new();
    for layer in &m.layers {
        if layer.media_type == media_types::OCI_EMPTY
            && layer.annotation(annotations::TITLE).is_none()
        {
            continue;
        }
        let name = layer_file_name(layer)?;
        if !names.insert(name.clone()) {
            return Err(OciError::InvalidInput(format!(
                "artifact {digest} has two layers titled {name:?}"
            )));
        }
        plan.push((name, layer.clone()));
    }
    {
        let out_dir = out_dir.to_path_buf();
        crate::blocking::run("creating the output directory", move || {
            std::fs::create_dir_all(&out_dir)
                .map_err(|e| OciError::io(format!("cannot create {}", out_dir.display()), e))
        })
        .await?;
    }
    let mut staged = Vec::new();
    for (name, layer) in plan {
        let dest = out_dir.join(&name);
        if let Some((d, size)) = existing_output(&dest).await? {
            if d == layer.digest && size == layer.size {
                staged.push((None, dest, layer));
                continue;
            }
            return Err(OciError::InvalidInput(format!(
                "{} already exists with different content (refusing to overwrite)",
                dest.display()
            )));
        }
        let (tmp, std_file) = {
            let out_dir = out_dir.to_path_buf();
            crate::blocking::run("creating a temp file", move || {
                let tmp = tempfile::Builder::new()
                    .prefix(".stella-pull-")
                    .tempfile_in(&out_dir)
                    .map_err(|e| {
                        OciError::io(
                            format!("cannot create temp file in {}", out_dir.display()),
                            e,
                        )
                    })?;
                let f = tmp.reopen().map_err(|e| {
                    OciError::io(format!("cannot write in {}", out_dir.display()), e)
                })?;
                Ok((tmp, f))
            })
            .await?
        };
        let mut sink = ProgressWriter {
            inner: tokio::fs::File::from_std(std_file),
            progress,
        };
        progress.start(&name, layer.size);
        let r = store.fetch_blob_to(&layer, &mut sink).await;
        progress.finish();
        r?;
        sink.inner
            .sync_all()
            .await
            .map_err(|e| OciError::io(format!("cannot write {}", dest.display()), e))?;
        staged.push((Some(tmp), dest, layer));
    }
    crate::blocking::run("moving the pulled files into place", move || {
        let mut out = Vec::new();
        for (tmp, dest, layer) in staged {
            let unchanged = tmp.is_none();
            if let Some(tmp) = tmp {
                tmp.persist_noclobber(&dest).map_err(|e| {
                    OciError::io(format!("cannot write {}", dest.display()), e.error)
                })?;
            }
            out.push(PulledFile {
                path: dest,
                descriptor: layer,
                unchanged,
            });
        }
        Ok(out)
    })
    .await
}

/// The digest and size of a file already at `dest`, if there is one. Only
/// a regular file is read: a symlink, FIFO or directory there is refused
/// (reading a FIFO would block forever).
async fn existing_output(dest: &Path) -> Result<Option<(Digest, u64)>, OciError> {
    let dest = dest.to_path_buf();
    crate::blocking::run("checking the output file", move || {
        let meta = match std::fs::symlink_metadata(&dest) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(OciError::io(
                    format!("cannot inspect {}", dest.display()),
                    e,
                ));
            }
        };
        if !meta.file_type().is_file() {
            return Err(OciError::InvalidInput(format!(
                "{} already exists and is not a regular file (refusing to overwrite or read it)",
                dest.display()
            )));
        }
        digest_file(&dest).map(Some)
    })
    .await
}

/// An `AsyncWrite` that reports bytes written to a [`Progress`].
struct ProgressWriter<'a, W> {
    inner: W,
    progress: &'a dyn Progress,
}

impl<W: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for ProgressWriter<'_, W> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = &r {
            self.progress.advance(*n as u64);
        }
        r
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Deletes a referrer: reads its manifest to learn the subject, removes the
/// bookkeeping entry (fallback index / layout index entry), then deletes the
/// manifest. Returns the subject. A manifest without a subject is refused
/// (this is not a way to delete images).
pub async fn delete_referrer<S: ContentRead + ContentWrite + ReferrersWrite + ?Sized>(
    store: &S,
    digest: &Digest,
) -> Result<Descriptor, OciError> {
    let fetched = store.fetch_manifest(digest).await?;
    let m = Manifest::parse(&fetched.bytes, Some(&fetched.descriptor.media_type))
        .map_err(|e| OciError::manifest(digest, e))?;
    let subject = m.subject().cloned().ok_or_else(|| {
        OciError::InvalidInput(format!(
            "manifest {digest} has no subject: it is not a referrer"
        ))
    })?;
    store.remove_referrer(&subject.digest, digest).await?;
    store.delete_manifest(digest).await?;
    Ok(subject)
}
