//! Referrer artifacts: build and push an OCI 1.1 artifact manifest about a
//! subject, resolve references, pull an artifact's files safely, delete one.
//!
//! The manifest Stella writes (image-spec v1.1 `manifest.md`, "guidelines
//! for artifact usage"): `artifactType` set, the empty config
//! (`application/vnd.oci.empty.v1+json`, blob `{}`), one layer per file with
//! `org.opencontainers.image.title`, the `subject` descriptor (media type,
//! digest, size only) and the caller's annotations plus
//! `org.opencontainers.image.created` (the caller's when given, else the
//! creation time passed in, else now; the binary passes `SOURCE_DATE_EPOCH`).
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
/// manifest and, per layer, the descriptor and its source. Unless the
/// spec's annotations carry `org.opencontainers.image.created`, it is set
/// from `created` (now when `None`).
pub fn build_manifest(
    subject: &Descriptor,
    spec: &ArtifactSpec,
    created: Option<time::OffsetDateTime>,
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
        let t = stella_types::timestamp::creation_time(created);
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
/// annotations + org.opencontainers.image.created, now unless the caller set
/// it in the spec's annotations), asks the store whether its bookkeeping has
/// room for it (ReferrersWrite::check_referrer_room: nothing is written
/// when it has not), pushes blobs (skip existing; the files through
/// ContentWrite::push_blob_likely_new), the manifest by digest with the
/// empty config (ContentWrite::push_manifest_config_likely_present: a
/// registry uploads the config only if it refuses the manifest), learns the referrers mode (after the manifest PUT, whose answer
/// may already tell it) and calls ReferrersWrite::add_referrer. Files are
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
            build_manifest(&subject, &spec, None)
        })
        .await?
    };
    let bytes = manifest.to_json_bytes();
    store.check_referrer_room(subject, &bytes).await?;
    // The referrer's own files are usually new: no HEAD before upload.
    for (d, src) in &layers {
        match src {
            LayerSource::File { path, .. } => {
                store
                    .push_blob_likely_new(d, BlobSource::File(path), progress)
                    .await?
            }
            LayerSource::Bytes { bytes, .. } => {
                store
                    .push_blob_likely_new(d, BlobSource::Bytes(bytes), progress)
                    .await?
            }
        };
    }
    // The empty config is shared by every artifact: usually there already.
    let pushed = store
        .push_manifest_config_likely_present(
            media_types::OCI_MANIFEST,
            &bytes,
            &empty_descriptor(),
            media_types::EMPTY_JSON,
        )
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
    // After the manifest PUT: a registry's answer to it (no `OCI-Subject`)
    // can already tell the mode, saving the referrers API probe.
    let mode = store.referrers_mode().await?;
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

/// Characters that make a name display as something it is not: bidi
/// embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069), the
/// implicit direction marks (U+200E, U+200F, U+061C) and the line and
/// paragraph separators (U+2028, U+2029). `evil\u{202e}txt.exe` shows as
/// `evilexe.txt`.
fn is_deceptive_char(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{061C}'
            | '\u{2028}'
            | '\u{2029}'
    )
}

/// Longest part of a refused name echoed in an error message, in characters.
pub const ECHOED_NAME_CHARS: usize = 80;

/// A name from outside, made safe to print in one line: control and
/// deceptive characters escaped (`\u{202e}`), cut to
/// [`ECHOED_NAME_CHARS`] characters plus `…` and its total length.
pub fn echo_name(name: &str) -> String {
    let mut out = String::new();
    let total = name.chars().count();
    for c in name.chars().take(ECHOED_NAME_CHARS) {
        if c.is_control() || is_deceptive_char(c) {
            out.extend(c.escape_unicode());
        } else if c == '"' || c == '\\' {
            out.push('\\');
            out.push(c);
        } else {
            out.push(c);
        }
    }
    if total > ECHOED_NAME_CHARS {
        out.push_str(&format!("…\" ({total} characters)"));
        format!("\"{out}")
    } else {
        format!("\"{out}\"")
    }
}

/// Checks that a layer title is a plain file name: not empty, not `.`/`..`,
/// no path separators, no control characters, no bidi or line-separator
/// characters (which make a name display as another), not absolute, at most
/// 255 bytes. The error echoes at most [`ECHOED_NAME_CHARS`] characters of
/// it, escaped.
pub fn check_title(title: &str) -> Result<(), OciError> {
    let why = if title.len() > 255 {
        Some("longer than 255 bytes")
    } else if title.is_empty()
        || title == "."
        || title == ".."
        || title.contains("..")
        || title.contains('/')
        || title.contains('\\')
        || Path::new(title).is_absolute()
    {
        Some("refusing path traversal")
    } else if title.chars().any(char::is_control) {
        Some("it holds control characters")
    } else if title.chars().any(is_deceptive_char) {
        Some("it holds bidirectional-override or line-separator characters")
    } else {
        None
    };
    match why {
        Some(why) => Err(OciError::InvalidInput(format!(
            "layer title {} is not a plain file name ({why})",
            echo_name(title)
        ))),
        None => Ok(()),
    }
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

/// Prefix of the temporary files [`pull_referrer`] writes into the output directory.
pub const PULL_TEMP_PREFIX: &str = ".stella-pull-";

/// How old a temporary file of ours must be before a later run removes it.
/// A running pull or export writes its file continuously, so its
/// modification time stays fresh.
pub const STALE_TEMP_AFTER: std::time::Duration = std::time::Duration::from_secs(60 * 60);

/// Removes, from `dir`, temporary files of ours that a killed process left
/// behind: regular files named `<prefix>*<suffix>` last modified more than
/// [`STALE_TEMP_AFTER`] ago. Symlinks, directories and other files are
/// never touched; a file that cannot be removed is left alone. Returns how
/// many were removed.
pub fn sweep_stale_temp_files(dir: &Path, prefix: &str, suffix: &str) -> usize {
    sweep_temp_files_older_than(dir, prefix, suffix, STALE_TEMP_AFTER)
}

/// [`sweep_stale_temp_files`] with an explicit age.
pub fn sweep_temp_files_older_than(
    dir: &Path,
    prefix: &str,
    suffix: &str,
    age: std::time::Duration,
) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let now = std::time::SystemTime::now();
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(prefix)
            || !name.ends_with(suffix)
            || name.len() <= prefix.len() + suffix.len()
        {
            continue;
        }
        // `DirEntry::metadata` does not follow symlinks.
        let Ok(meta) = entry.metadata() else { continue };
        let old = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|a| a >= age);
        if meta.file_type().is_file() && old && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The output directories a pull created (deepest first). Unless disarmed,
/// removes them on drop, each only while empty: a pull that fails or is
/// cancelled leaves no directory of its own behind, and never removes one
/// that existed before or holds anything.
struct CreatedDirs {
    dirs: Vec<PathBuf>,
    keep: bool,
}

impl CreatedDirs {
    /// Creates `dir` (and missing parents), remembering which ones were new.
    fn create(dir: &Path) -> Result<Self, OciError> {
        let mut missing = Vec::new();
        let mut p = dir;
        while std::fs::symlink_metadata(p).is_err() {
            missing.push(p.to_path_buf());
            match p.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => p = parent,
                _ => break,
            }
        }
        let guard = CreatedDirs {
            dirs: missing,
            keep: false,
        };
        std::fs::create_dir_all(dir)
            .map_err(|e| OciError::io(format!("cannot create {}", dir.display()), e))?;
        Ok(guard)
    }
}

impl Drop for CreatedDirs {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        for d in &self.dirs {
            // `remove_dir` refuses a non-empty directory: nothing of anyone else's goes.
            if std::fs::remove_dir(d).is_err() {
                break;
            }
        }
    }
}

/// Downloads the layers of the artifact manifest `digest` into `out_dir`
/// (created if missing). Every layer streams into a temp file
/// (`.stella-pull-*`) in `out_dir` while its digest and size are checked;
/// only when all are good are they renamed into place. An existing file
/// with the same content is left as is; one with different content is an
/// error, and so is anything there but a regular file (never overwritten
/// or read). Layers that are the empty descriptor and have
/// no title are skipped.
///
/// Cleanup: a pull that fails, or whose future is dropped (the CLI drops it
/// on SIGINT/SIGTERM), removes its temp files and the output directory if
/// it created it and it is still empty. Temp files of ours older than
/// [`STALE_TEMP_AFTER`] (left by a killed process) are swept first. File
/// work runs on the blocking pool.
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
    let dir = out_dir.to_path_buf();
    let mut created = crate::blocking::run("creating the output directory", move || {
        let created = CreatedDirs::create(&dir)?;
        sweep_stale_temp_files(&dir, PULL_TEMP_PREFIX, "");
        Ok(created)
    })
    .await?;
    // Declared after `created`, so dropped (temp files removed) before it.
    let mut staged = Vec::new();
    for (name, layer) in plan {
        let dest = out_dir.join(&name);
        if let Some(unchanged) = existing_matches(&dest, &layer).await? {
            staged.push((None, unchanged, layer));
            continue;
        }
        let tmp = tempfile::Builder::new()
            .prefix(PULL_TEMP_PREFIX)
            .tempfile_in(out_dir)
            .map_err(|e| {
                OciError::io(
                    format!("cannot create temp file in {}", out_dir.display()),
                    e,
                )
            })?;
        let std_file = tmp
            .reopen()
            .map_err(|e| OciError::io(format!("cannot write in {}", out_dir.display()), e))?;
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
    let out = crate::blocking::run("moving the pulled files into place", move || {
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
    .await?;
    created.keep = true;
    Ok(out)
}

/// `Some(dest)` when `dest` already holds exactly `layer`; `None` when it
/// does not exist; an error when it holds something else (never overwritten).
async fn existing_matches(dest: &Path, layer: &Descriptor) -> Result<Option<PathBuf>, OciError> {
    let dest = dest.to_path_buf();
    let layer = layer.clone();
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
        // Reading a FIFO would block forever; a symlink could point anywhere.
        if !meta.file_type().is_file() {
            return Err(OciError::InvalidInput(format!(
                "{} already exists and is not a regular file (refusing to overwrite or read it)",
                dest.display()
            )));
        }
        let (d, size) = digest_file(&dest)?;
        if d == layer.digest && size == layer.size {
            return Ok(Some(dest));
        }
        Err(OciError::InvalidInput(format!(
            "{} already exists with different content (refusing to overwrite)",
            dest.display()
        )))
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::layout::OciLayout;

    #[test]
    fn titles_that_display_as_something_else_are_refused() {
        for bad in [
            "evil\u{202e}txt.exe",
            "a\u{202a}b",
            "a\u{2066}b",
            "a\u{2069}b",
            "a\u{200f}b",
            "line\u{2028}break",
            "para\u{2029}break",
            "bell\u{7}",
            "c1\u{85}",
        ] {
            let err = check_title(bad).unwrap_err().to_string();
            assert!(!err.contains(bad), "{err}");
            assert!(err.contains("\\u{"), "escaped: {err}");
        }
        for good in ["sbom.spdx.json", "résumé.txt", "日本語.json", "a b.txt"] {
            check_title(good).unwrap();
        }
    }

    #[test]
    fn a_refused_title_is_echoed_short_and_escaped() {
        let long = format!("{}\u{202e}{}", "x".repeat(3 * 1024 * 1024), "y");
        let err = check_title(&long).unwrap_err().to_string();
        assert!(err.len() < 400, "{} bytes", err.len());
        assert!(err.contains('…'), "{err}");
        assert!(err.contains(&"x".repeat(ECHOED_NAME_CHARS)), "{err}");
        assert!(!err.contains(&"x".repeat(ECHOED_NAME_CHARS + 1)), "{err}");
        assert!(err.contains("3145730 characters"), "{err}");
        // Short names are echoed whole, quoted, controls escaped.
        assert_eq!(echo_name("a\nb\"c"), "\"a\\u{a}b\\\"c\"");
    }

    /// Pushes an image and a two-file referrer; returns the referrer digest and its layers.
    async fn layout_with_referrer(l: &OciLayout) -> (Digest, Vec<Descriptor>) {
        let cfg = b"{}";
        let cd = Descriptor::for_bytes(media_types::OCI_CONFIG, cfg);
        l.push_blob(&cd, BlobSource::Bytes(cfg), &NoProgress)
            .await
            .unwrap();
        let m = ImageManifest {
            schema_version: 2,
            media_type: Some(media_types::OCI_MANIFEST.into()),
            artifact_type: None,
            config: cd,
            layers: vec![],
            subject: None,
            annotations: BTreeMap::new(),
        };
        let img = l
            .push_manifest(media_types::OCI_MANIFEST, &m.to_json_bytes(), Some("v1"))
            .await
            .unwrap();
        let layer = |name: &str, fill: u8| LayerSource::Bytes {
            bytes: vec![fill; 256 * 1024],
            media_type: "application/octet-stream".into(),
            title: Some(name.into()),
        };
        let spec = ArtifactSpec {
            artifact_type: "application/x.test".into(),
            layers: vec![layer("a.bin", b'a'), layer("b.bin", b'b')],
            annotations: BTreeMap::new(),
        };
        let pushed = push_referrer(l, &img, &spec, &NoProgress).await.unwrap();
        let Manifest::Image(m) = Manifest::parse(&pushed.manifest_bytes, None).unwrap() else {
            panic!("not an image manifest");
        };
        (pushed.descriptor.digest, m.layers)
    }

    /// A pull whose store fails in the middle of the second blob leaves
    /// neither temp files nor the output directories it created.
    #[tokio::test]
    async fn a_pull_that_fails_mid_blob_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let l = OciLayout::open_or_create(&dir.path().join("lay")).unwrap();
        let (referrer, layers) = layout_with_referrer(&l).await;
        // The second blob is cut short: the store fails after half of it.
        let b = l.blob_path(&layers[1].digest);
        let bytes = std::fs::read(&b).unwrap();
        std::fs::write(&b, &bytes[..bytes.len() / 2]).unwrap();
        let out = dir.path().join("new").join("out");
        let err = pull_referrer(&l, &referrer, &out, &NoProgress).await;
        assert!(err.is_err());
        assert!(!dir.path().join("new").exists(), "created directories left");
        // Into an existing directory: it stays, holding only what it held.
        let existing = dir.path().join("existing");
        std::fs::create_dir(&existing).unwrap();
        std::fs::write(existing.join("keep.txt"), b"mine").unwrap();
        assert!(
            pull_referrer(&l, &referrer, &existing, &NoProgress)
                .await
                .is_err()
        );
        let names: Vec<String> = std::fs::read_dir(&existing)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["keep.txt".to_string()]);
    }

    /// Stale temp files of ours (a killed pull) are swept by the next pull;
    /// fresh ones, other names, directories and symlinks are not.
    #[tokio::test]
    async fn the_next_pull_sweeps_stale_temp_files_of_ours_only() {
        let dir = tempfile::tempdir().unwrap();
        let l = OciLayout::open_or_create(&dir.path().join("lay")).unwrap();
        let (referrer, _) = layout_with_referrer(&l).await;
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 3600);
        let age = |p: &Path| {
            std::fs::File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(old)
                .unwrap();
        };
        let stale = out.join(".stella-pull-killed");
        std::fs::write(&stale, b"partial").unwrap();
        age(&stale);
        let fresh = out.join(".stella-pull-running");
        std::fs::write(&fresh, b"another pull").unwrap();
        let other = out.join("stella-pull-notours");
        std::fs::write(&other, b"x").unwrap();
        age(&other);
        std::fs::create_dir(out.join(".stella-pull-dir")).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(&other, out.join(".stella-pull-link")).unwrap();
        pull_referrer(&l, &referrer, &out, &NoProgress)
            .await
            .unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut expected = vec![
            ".stella-pull-dir",
            ".stella-pull-running",
            "a.bin",
            "b.bin",
            "stella-pull-notours",
        ];
        if cfg!(unix) {
            expected.insert(1, ".stella-pull-link");
        }
        assert_eq!(names, expected);
    }
}
