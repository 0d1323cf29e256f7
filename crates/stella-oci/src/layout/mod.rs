//! A local OCI image layout directory (image-spec `image-layout.md`): the
//! embedded default store. Stays valid for other tools (skopeo can copy from it).
//!
//! On disk: `oci-layout` (`{"imageLayoutVersion":"1.0.0"}`), `index.json`,
//! `blobs/<alg>/<hex>`. Conventions:
//! - Tags are `org.opencontainers.image.ref.name` annotations on `index.json`
//!   entries; tagging replaces any entry with the same name.
//! - Referrer manifests are listed in `index.json` without a ref name (so
//!   skopeo and garbage collectors see them), carrying their `artifactType`,
//!   the manifest's annotations and [`SUBJECT_ANNOTATION`] (the subject
//!   digest), so listing referrers reads `index.json` only. Entries written
//!   by other tools without that annotation are found by reading their
//!   manifest's `subject`.
//! - cosign legacy attachments are entries tagged `sha256-<hex>.sig|.att|.sbom`.
//!
//! Every write is atomic: a temp file in the same directory, checked (blobs
//! by digest and size), flushed, then renamed. `index.json` updates hold an
//! exclusive lock on `index.json.lock`, so concurrent Stella processes do
//! not lose entries.
//!
//! What this module does not do: decide what an artifact looks like
//! (`artifact`), walk graphs (`referrers`, `copy`), or garbage-collect blobs.

mod index;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use stella_types::digest::Hasher;
use stella_types::limits::{MAX_MANIFEST_BYTES, MAX_REFERRERS_PER_SUBJECT};
use stella_types::media_types::{self, annotations};
use stella_types::{Descriptor, Digest, ImageIndex, Manifest};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::OciError;
use crate::store::*;

pub use index::IndexLock;

/// Annotation Stella puts on a referrer's `index.json` entry naming the
/// referrer's subject digest (lets listing avoid reading every manifest).
pub const SUBJECT_ANNOTATION: &str = "dev.stella.referrer.subject";

/// The contents of the `oci-layout` file Stella writes.
pub const OCI_LAYOUT_FILE: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

const CHUNK: usize = 64 * 1024;

/// An OCI image layout directory.
#[derive(Debug, Clone)]
pub struct OciLayout {
    root: PathBuf,
    /// Last parsed `index.json`, keyed by its file identity (inode, size,
    /// mtime): every update renames a new file into place, so a changed
    /// index never matches. Saves re-parsing while walking a tree.
    index_cache: Arc<Mutex<Option<CachedIndex>>>,
    /// Subject digest (or none) of manifests without Stella's annotation.
    subject_cache: Arc<Mutex<std::collections::HashMap<Digest, Option<Digest>>>>,
}

type IndexKey = (u64, u64, Option<std::time::SystemTime>);
type CachedIndex = (IndexKey, Arc<ImageIndex>);

fn index_key(path: &Path) -> Option<IndexKey> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let ino = 0u64;
    Some((ino, meta.len(), meta.modified().ok()))
}

impl OciLayout {
    /// Opens a layout, creating an empty one if `dir` does not exist (or is
    /// an empty directory).
    pub fn open_or_create(dir: &Path) -> Result<Self, OciError> {
        let layout = OciLayout::at(dir);
        let marker = dir.join("oci-layout");
        if marker.is_file() {
            layout.check_marker()?;
            return Ok(layout);
        }
        if dir.exists() {
            let empty = std::fs::read_dir(dir)
                .map_err(|e| OciError::io(format!("cannot read directory {}", dir.display()), e))?
                .next()
                .is_none();
            if !empty {
                return Err(OciError::InvalidInput(format!(
                    "{} is not an OCI image layout (no oci-layout file) and is not empty",
                    dir.display()
                )));
            }
        }
        std::fs::create_dir_all(dir.join("blobs").join("sha256"))
            .map_err(|e| OciError::io(format!("cannot create OCI layout {}", dir.display()), e))?;
        if !dir.join("index.json").exists() {
            index::write_atomic(
                &dir.join("index.json"),
                &ImageIndex::empty().to_json_bytes(),
            )?;
        }
        index::write_atomic(&marker, OCI_LAYOUT_FILE)?;
        Ok(layout)
    }

    /// Opens an existing layout; fails with `NotFound` if `dir` is not one.
    pub fn open(dir: &Path) -> Result<Self, OciError> {
        if !dir.join("oci-layout").is_file() || !dir.join("index.json").is_file() {
            return Err(OciError::not_found(format!(
                "OCI image layout {}",
                dir.display()
            )));
        }
        let layout = OciLayout::at(dir);
        layout.check_marker()?;
        Ok(layout)
    }

    fn check_marker(&self) -> Result<(), OciError> {
        let path = self.root.join("oci-layout");
        let bytes = read_capped(&path, 4096)?;
        let v: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| OciError::Protocol(format!("{}: not valid JSON: {e}", path.display())))?;
        match v.get("imageLayoutVersion").and_then(|x| x.as_str()) {
            Some("1.0.0") => Ok(()),
            other => Err(OciError::Protocol(format!(
                "{}: unsupported imageLayoutVersion {other:?} (expected \"1.0.0\")",
                path.display()
            ))),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with this digest lives.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    /// Reads `index.json` (capped, parsed).
    pub fn read_index(&self) -> Result<ImageIndex, OciError> {
        index::read_index(&self.index_path())
    }

    fn at(dir: &Path) -> Self {
        OciLayout {
            root: dir.to_path_buf(),
            index_cache: Arc::new(Mutex::new(None)),
            subject_cache: Arc::new(Mutex::new(std::collections::HashMap::new())),
        }
    }

    /// `index.json`, from the cache when the file has not changed.
    fn read_index_cached(&self) -> Result<Arc<ImageIndex>, OciError> {
        let path = self.index_path();
        let before = index_key(&path);
        if let (Some(k), Ok(slot)) = (&before, self.index_cache.lock())
            && let Some((ck, idx)) = slot.as_ref()
            && ck == k
        {
            return Ok(Arc::clone(idx));
        }
        let idx = Arc::new(index::read_index(&path)?);
        // Only cache if the file did not change while we read it.
        if let Some(k) = before
            && index_key(&path) == Some(k)
            && let Ok(mut slot) = self.index_cache.lock()
        {
            *slot = Some((k, Arc::clone(&idx)));
        }
        Ok(idx)
    }

    /// Applies `f` to `index.json` under the exclusive lock and writes the
    /// result atomically (only if it changed). Returns what `f` returned.
    pub fn update_index<T>(
        &self,
        f: impl FnOnce(&mut ImageIndex) -> Result<T, OciError>,
    ) -> Result<T, OciError> {
        let _lock = IndexLock::acquire(&self.root)?;
        if let Ok(mut slot) = self.index_cache.lock() {
            *slot = None;
        }
        let path = self.index_path();
        let mut idx = index::read_index(&path)?;
        let before = idx.clone();
        let out = f(&mut idx)?;
        if idx != before {
            index::write_atomic(&path, &idx.to_json_bytes())?;
        }
        Ok(out)
    }

    /// Points `tag` at `descriptor` (replacing any entry with that ref name).
    pub fn tag(&self, descriptor: &Descriptor, tag: &str) -> Result<(), OciError> {
        let mut entry = Descriptor::new(
            &descriptor.media_type,
            descriptor.digest.clone(),
            descriptor.size,
        );
        entry.artifact_type = descriptor.artifact_type.clone();
        entry.platform = descriptor.platform.clone();
        entry
            .annotations
            .insert(annotations::REF_NAME.to_string(), tag.to_string());
        self.update_index(|idx| {
            upsert(&mut idx.manifests, entry, |d| {
                d.annotation(annotations::REF_NAME) == Some(tag)
            });
            Ok(())
        })
    }

    /// Reads a blob whole, refusing more than `cap` bytes, checked against its digest.
    fn read_blob_checked(
        &self,
        digest: &Digest,
        cap: u64,
        what: &str,
    ) -> Result<Vec<u8>, OciError> {
        let path = self.blob_path(digest);
        let bytes = match read_capped(&path, cap) {
            Err(OciError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(OciError::not_found(format!(
                    "{what} {digest} in {}",
                    self.root.display()
                )));
            }
            other => other?,
        };
        digest.verify(&bytes).map_err(|e| {
            OciError::integrity(format!("{what} {digest} in {}", self.root.display()), e)
        })?;
        Ok(bytes)
    }

    fn manifest_descriptor(
        digest: &Digest,
        bytes: &[u8],
        served: Option<&str>,
    ) -> Result<Descriptor, OciError> {
        let m = Manifest::parse(bytes, served).map_err(|e| OciError::manifest(digest, e))?;
        let mut d = Descriptor::new(m.media_type(), digest.clone(), bytes.len() as u64);
        d.artifact_type = match &m {
            Manifest::Image(im) => im.artifact_type.clone(),
            Manifest::Index(ix) => ix.artifact_type.clone(),
        };
        Ok(d)
    }

    /// Is `digest` still referenced by an `index.json` entry or by an image
    /// index listed there (one level)?
    fn still_referenced(&self, idx: &ImageIndex, digest: &Digest) -> bool {
        if idx.manifests.iter().any(|d| &d.digest == digest) {
            return true;
        }
        idx.manifests
            .iter()
            .filter(|d| is_index_type(&d.media_type))
            .any(|d| {
                self.read_blob_checked(&d.digest, MAX_MANIFEST_BYTES, "manifest")
                    .ok()
                    .and_then(|b| Manifest::parse(&b, None).ok())
                    .is_some_and(|m| m.children().iter().any(|c| &c.digest == digest))
            })
    }
}

/// Replaces the first entry matching `same` with `entry` (keeping its
/// position, so re-tagging or re-adding does not reorder `index.json`),
/// drops any further matches, or appends `entry` if none matched.
fn upsert(entries: &mut Vec<Descriptor>, entry: Descriptor, same: impl Fn(&Descriptor) -> bool) {
    let mut slot = Some(entry);
    let mut out = Vec::with_capacity(entries.len() + 1);
    for d in entries.drain(..) {
        if same(&d) {
            if let Some(e) = slot.take() {
                out.push(e);
            }
        } else {
            out.push(d);
        }
    }
    if let Some(e) = slot {
        out.push(e);
    }
    *entries = out;
}

fn is_index_type(mt: &str) -> bool {
    mt == media_types::OCI_INDEX || mt == media_types::DOCKER_MANIFEST_LIST
}

fn is_manifest_type(mt: &str) -> bool {
    media_types::MANIFEST_ACCEPT.contains(&mt)
}

/// Reads a whole file, refusing more than `cap` bytes.
fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, OciError> {
    let f = std::fs::File::open(path)
        .map_err(|e| OciError::io(format!("cannot read {}", path.display()), e))?;
    let mut buf = Vec::new();
    f.take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(|e| OciError::io(format!("cannot read {}", path.display()), e))?;
    if buf.len() as u64 > cap {
        return Err(OciError::Protocol(format!(
            "{} is over the {cap}-byte limit",
            path.display()
        )));
    }
    Ok(buf)
}

/// Parses `sha256-<hex>.sig|.att|.sbom`, returning (subject hex, kind).
pub fn parse_legacy_tag(tag: &str) -> Option<(&str, &str)> {
    let rest = tag.strip_prefix("sha256-")?;
    let (hex, kind) = rest.rsplit_once('.')?;
    if !matches!(kind, "sig" | "att" | "sbom") {
        return None;
    }
    Some((hex, kind))
}

impl ContentRead for OciLayout {
    async fn resolve_tag(&self, tag: &str) -> Result<Descriptor, OciError> {
        let idx = self.read_index()?;
        let entry = idx
            .manifests
            .iter()
            .rev()
            .find(|d| d.annotation(annotations::REF_NAME) == Some(tag))
            .ok_or_else(|| {
                OciError::not_found(format!("tag {tag:?} in OCI layout {}", self.root.display()))
            })?;
        let mut d = Descriptor::new(&entry.media_type, entry.digest.clone(), entry.size);
        d.artifact_type = entry.artifact_type.clone();
        Ok(d)
    }

    async fn fetch_manifest(&self, digest: &Digest) -> Result<FetchedManifest, OciError> {
        let bytes = self.read_blob_checked(digest, MAX_MANIFEST_BYTES, "manifest")?;
        let descriptor = Self::manifest_descriptor(digest, &bytes, None)?;
        Ok(FetchedManifest { descriptor, bytes })
    }

    async fn manifest_exists(&self, digest: &Digest) -> Result<bool, OciError> {
        Ok(self.blob_path(digest).is_file())
    }

    async fn blob_exists(&self, digest: &Digest) -> Result<bool, OciError> {
        Ok(self.blob_path(digest).is_file())
    }

    async fn fetch_blob_to(
        &self,
        descriptor: &Descriptor,
        sink: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<u64, OciError> {
        let digest = &descriptor.digest;
        let path = self.blob_path(digest);
        let ctx = || format!("blob {digest} in {}", self.root.display());
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(OciError::not_found(ctx()));
            }
            Err(e) => return Err(OciError::io(format!("cannot read {}", ctx()), e)),
        };
        let mut hasher = Hasher::new(digest.algorithm());
        let mut seen: u64 = 0;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = file
                .read(&mut buf)
                .await
                .map_err(|e| OciError::io(format!("cannot read {}", ctx()), e))?;
            let Some(chunk) = buf.get(..n) else { break };
            if n == 0 {
                break;
            }
            seen += n as u64;
            if seen > descriptor.size {
                return Err(OciError::integrity(
                    ctx(),
                    stella_types::DigestError::SizeMismatch {
                        expected: descriptor.size,
                        actual: seen,
                    },
                ));
            }
            hasher.update(chunk);
            sink.write_all(chunk)
                .await
                .map_err(|e| OciError::io(format!("cannot write {}", ctx()), e))?;
        }
        if seen != descriptor.size {
            return Err(OciError::integrity(
                ctx(),
                stella_types::DigestError::SizeMismatch {
                    expected: descriptor.size,
                    actual: seen,
                },
            ));
        }
        let actual = hasher.finish();
        if &actual != digest {
            return Err(OciError::integrity(
                ctx(),
                stella_types::DigestError::Mismatch {
                    expected: digest.to_string(),
                    actual: actual.to_string(),
                },
            ));
        }
        sink.flush()
            .await
            .map_err(|e| OciError::io(format!("cannot write {}", ctx()), e))?;
        Ok(seen)
    }
}

/// Streams `source` into a temp file next to `dest`, checking digest and
/// size, then renames it into place.
fn write_blob_checked(
    dest: &Path,
    descriptor: &Descriptor,
    source: BlobSource<'_>,
    progress: &dyn Progress,
) -> Result<(), OciError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| OciError::io(format!("cannot create {}", dir.display()), e))?;
    let mut tmp = index::temp_builder()
        .tempfile_in(dir)
        .map_err(|e| OciError::io(format!("cannot create temp file in {}", dir.display()), e))?;
    let ctx = || format!("blob {}", descriptor.digest);
    let mut hasher = Hasher::new(descriptor.digest.algorithm());
    let mut seen: u64 = 0;
    let mut push = |chunk: &[u8], tmp: &mut tempfile::NamedTempFile| -> Result<(), OciError> {
        seen += chunk.len() as u64;
        if seen > descriptor.size {
            return Err(OciError::integrity(
                ctx(),
                stella_types::DigestError::SizeMismatch {
                    expected: descriptor.size,
                    actual: seen,
                },
            ));
        }
        hasher.update(chunk);
        tmp.write_all(chunk)
            .map_err(|e| OciError::io(format!("cannot write {}", ctx()), e))?;
        progress.advance(chunk.len() as u64);
        Ok(())
    };
    match source {
        BlobSource::Bytes(b) => {
            for chunk in b.chunks(CHUNK) {
                push(chunk, &mut tmp)?;
            }
        }
        BlobSource::File(p) => {
            let mut f = std::fs::File::open(p)
                .map_err(|e| OciError::io(format!("cannot read {}", p.display()), e))?;
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = f
                    .read(&mut buf)
                    .map_err(|e| OciError::io(format!("cannot read {}", p.display()), e))?;
                if n == 0 {
                    break;
                }
                let Some(chunk) = buf.get(..n) else { break };
                push(chunk, &mut tmp)?;
            }
        }
    }
    if seen != descriptor.size {
        return Err(OciError::integrity(
            ctx(),
            stella_types::DigestError::SizeMismatch {
                expected: descriptor.size,
                actual: seen,
            },
        ));
    }
    let actual = hasher.finish();
    if actual != descriptor.digest {
        return Err(OciError::integrity(
            ctx(),
            stella_types::DigestError::Mismatch {
                expected: descriptor.digest.to_string(),
                actual: actual.to_string(),
            },
        ));
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| OciError::io(format!("cannot write {}", ctx()), e))?;
    tmp.persist(dest)
        .map_err(|e| OciError::io(format!("cannot store {}", ctx()), e.error))?;
    Ok(())
}

impl ContentWrite for OciLayout {
    async fn push_blob(
        &self,
        descriptor: &Descriptor,
        source: BlobSource<'_>,
        progress: &dyn Progress,
    ) -> Result<PushOutcome, OciError> {
        let dest = self.blob_path(&descriptor.digest);
        if let Ok(meta) = std::fs::metadata(&dest)
            && meta.is_file()
            && meta.len() == descriptor.size
        {
            return Ok(PushOutcome::AlreadyExisted);
        }
        progress.start(&descriptor.digest.to_string(), descriptor.size);
        let r = write_blob_checked(&dest, descriptor, source, progress);
        progress.finish();
        r.map(|()| PushOutcome::Uploaded)
    }

    async fn push_manifest(
        &self,
        media_type: &str,
        bytes: &[u8],
        tag: Option<&str>,
    ) -> Result<Descriptor, OciError> {
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(OciError::Protocol(format!(
                "manifest is {} bytes, over the {MAX_MANIFEST_BYTES}-byte limit",
                bytes.len()
            )));
        }
        let digest = Digest::sha256_of(bytes);
        let mut descriptor = Self::manifest_descriptor(&digest, bytes, Some(media_type))?;
        if descriptor.media_type != media_type {
            return Err(OciError::InvalidInput(format!(
                "manifest {digest} is a {} but was pushed as {media_type}",
                descriptor.media_type
            )));
        }
        let dest = self.blob_path(&digest);
        if !dest.is_file() {
            write_blob_checked(&dest, &descriptor, BlobSource::Bytes(bytes), &NoProgress)?;
        }
        if let Some(tag) = tag {
            self.tag(&descriptor, tag)?;
        }
        descriptor.annotations = BTreeMap::new();
        Ok(descriptor)
    }

    async fn delete_manifest(&self, digest: &Digest) -> Result<(), OciError> {
        let path = self.blob_path(digest);
        let listed = self.update_index(|idx| {
            let before = idx.manifests.len();
            idx.manifests.retain(|d| &d.digest != digest);
            let listed = idx.manifests.len() != before;
            if !listed && !path.is_file() {
                return Err(OciError::not_found(format!(
                    "manifest {digest} in {}",
                    self.root.display()
                )));
            }
            let keep = self.still_referenced(idx, digest);
            if !keep {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(OciError::io(format!("cannot delete {}", path.display()), e));
                    }
                }
            }
            Ok(listed)
        })?;
        let _ = listed;
        Ok(())
    }
}

impl OciLayout {
    /// The subject digest of an `index.json` entry, from Stella's annotation
    /// or (for entries written by other tools) by reading the manifest.
    /// `Ok(None)`: not a referrer. `Err(())`: the manifest is missing.
    fn entry_subject(&self, entry: &Descriptor, subject: &str) -> Result<Option<Digest>, ()> {
        if let Some(s) = entry.annotation(SUBJECT_ANNOTATION) {
            // Cheap string compare first; only a matching entry is parsed
            // and checked for existence (dangling).
            if s != subject {
                return Ok(None);
            }
            if !self.blob_path(&entry.digest).is_file() {
                return Err(());
            }
            return Ok(Digest::parse(s).ok());
        }
        if let Ok(cache) = self.subject_cache.lock()
            && let Some(known) = cache.get(&entry.digest)
        {
            return Ok(known.clone());
        }
        if !is_manifest_type(&entry.media_type)
            || is_index_type(&entry.media_type) && entry.size > MAX_MANIFEST_BYTES
        {
            return Ok(None);
        }
        match self.read_blob_checked(&entry.digest, MAX_MANIFEST_BYTES, "manifest") {
            Ok(bytes) => {
                let found = Manifest::parse(&bytes, None)
                    .ok()
                    .and_then(|m| m.subject().map(|s| s.digest.clone()));
                // Manifests are content-addressed: the answer never changes.
                if let Ok(mut cache) = self.subject_cache.lock()
                    && cache.len() < MAX_REFERRERS_PER_SUBJECT
                {
                    cache.insert(entry.digest.clone(), found.clone());
                }
                Ok(found)
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(_) => Ok(None),
        }
    }

    /// The descriptor a listing reports for an entry: media type, digest,
    /// size, artifactType and the manifest's annotations (ours removed).
    fn listing_descriptor(&self, entry: &Descriptor) -> Descriptor {
        let mut d = entry.clone();
        d.annotations.remove(SUBJECT_ANNOTATION);
        d.annotations.remove(annotations::REF_NAME);
        if d.artifact_type.is_none()
            && entry.annotation(SUBJECT_ANNOTATION).is_none()
            && let Ok(bytes) = self.read_blob_checked(&entry.digest, MAX_MANIFEST_BYTES, "manifest")
            && let Ok(m) = Manifest::parse(&bytes, None)
        {
            d.artifact_type = m.artifact_type().map(str::to_string);
            d.annotations = m.annotations().clone();
        }
        d
    }
}

impl ReferrersRead for OciLayout {
    async fn referrers_mode(&self) -> Result<ReferrersMode, OciError> {
        Ok(ReferrersMode::Layout)
    }

    async fn list_referrers(
        &self,
        subject: &Digest,
        artifact_types: &[String],
    ) -> Result<ReferrerListing, OciError> {
        let idx = self.read_index_cached()?;
        let subject_str = subject.to_string();
        let mut seen: BTreeMap<Digest, ReferrerEntry> = BTreeMap::new();
        let mut legacy = Vec::new();
        for entry in &idx.manifests {
            if let Some(tag) = entry.annotation(annotations::REF_NAME)
                && let Some((hex, kind)) = parse_legacy_tag(tag)
            {
                if hex == subject.hex()
                    && subject.algorithm() == stella_types::DigestAlgorithm::Sha256
                {
                    legacy.push(LegacyAttachment {
                        tag: tag.to_string(),
                        kind: kind.to_string(),
                        descriptor: Descriptor::new(
                            &entry.media_type,
                            entry.digest.clone(),
                            entry.size,
                        ),
                    });
                }
                continue;
            }
            if seen.contains_key(&entry.digest) {
                continue;
            }
            let (matches, dangling) = match self.entry_subject(entry, &subject_str) {
                Ok(Some(s)) => (&s == subject, false),
                Ok(None) => (false, false),
                Err(()) => (true, true),
            };
            if !matches {
                continue;
            }
            let descriptor = self.listing_descriptor(entry);
            if !artifact_types.is_empty()
                && !artifact_types
                    .iter()
                    .any(|t| Some(t.as_str()) == descriptor.artifact_type.as_deref())
            {
                continue;
            }
            seen.insert(
                entry.digest.clone(),
                ReferrerEntry {
                    descriptor,
                    dangling,
                },
            );
            if seen.len() > MAX_REFERRERS_PER_SUBJECT {
                return Err(OciError::Protocol(format!(
                    "subject {subject} has more than {MAX_REFERRERS_PER_SUBJECT} referrers"
                )));
            }
        }
        let mut referrers: Vec<ReferrerEntry> = seen.into_values().collect();
        referrers.sort_by(|a, b| {
            (
                a.descriptor.artifact_type.as_deref().unwrap_or(""),
                &a.descriptor.digest,
            )
                .cmp(&(
                    b.descriptor.artifact_type.as_deref().unwrap_or(""),
                    &b.descriptor.digest,
                ))
        });
        legacy.sort_by(|a, b| a.tag.cmp(&b.tag));
        legacy.dedup_by(|a, b| a.tag == b.tag);
        Ok(ReferrerListing {
            mode: ReferrersMode::Layout,
            referrers,
            legacy,
        })
    }
}

impl ReferrersWrite for OciLayout {
    async fn add_referrer(
        &self,
        subject: &Descriptor,
        referrer: &Descriptor,
    ) -> Result<(), OciError> {
        let bytes =
            self.read_blob_checked(&referrer.digest, MAX_MANIFEST_BYTES, "referrer manifest")?;
        let m = Manifest::parse(&bytes, Some(&referrer.media_type))
            .map_err(|e| OciError::manifest(&referrer.digest, e))?;
        match m.subject() {
            Some(s) if s.digest == subject.digest => {}
            Some(s) => {
                return Err(OciError::InvalidInput(format!(
                    "manifest {} has subject {}, not {}",
                    referrer.digest, s.digest, subject.digest
                )));
            }
            None => {
                return Err(OciError::InvalidInput(format!(
                    "manifest {} has no subject",
                    referrer.digest
                )));
            }
        }
        let mut entry =
            Descriptor::new(m.media_type(), referrer.digest.clone(), bytes.len() as u64);
        entry.artifact_type = m.artifact_type().map(str::to_string);
        entry.annotations = m.annotations().clone();
        entry.annotations.remove(annotations::REF_NAME);
        entry
            .annotations
            .insert(SUBJECT_ANNOTATION.to_string(), subject.digest.to_string());
        self.update_index(|idx| {
            let digest = entry.digest.clone();
            upsert(&mut idx.manifests, entry, |d| {
                d.digest == digest && d.annotation(annotations::REF_NAME).is_none()
            });
            self.sync_tag_schema_index(idx, &subject.digest)
        })
    }

    async fn remove_referrer(&self, subject: &Digest, referrer: &Digest) -> Result<(), OciError> {
        self.update_index(|idx| {
            idx.manifests.retain(|d| {
                !(&d.digest == referrer && d.annotation(annotations::REF_NAME).is_none())
            });
            self.sync_tag_schema_index(idx, subject)
        })
    }
}

impl OciLayout {
    /// Keeps the subject's referrers tag-schema index (an image index tagged
    /// `<alg>-<hex>`, exactly as a registry without the Referrers API holds
    /// it) in step with the referrer entries of `index.json`. This makes the
    /// referrers portable with tools that know only tags: `skopeo copy --all
    /// oci:<dir>:sha256-<hex> docker://…` moves them into a registry, where
    /// `stella evidence list-referrers` finds them. Called under the
    /// `index.json` lock; the index blob is written before `index.json`
    /// points at it. Without referrers the tag is removed.
    fn sync_tag_schema_index(
        &self,
        idx: &mut ImageIndex,
        subject: &Digest,
    ) -> Result<(), OciError> {
        let tag = subject.referrers_tag();
        let subject_str = subject.to_string();
        let mut entries: Vec<Descriptor> = idx
            .manifests
            .iter()
            .filter(|d| {
                d.annotation(annotations::REF_NAME).is_none()
                    && d.annotation(SUBJECT_ANNOTATION) == Some(subject_str.as_str())
            })
            .map(|d| {
                let mut e = Descriptor::new(&d.media_type, d.digest.clone(), d.size);
                e.artifact_type = d.artifact_type.clone();
                e.annotations = d.annotations.clone();
                e.annotations.retain(|k, _| !k.starts_with("dev.stella."));
                e
            })
            .collect();
        entries.sort_by(|a, b| {
            (a.artifact_type.as_deref().unwrap_or(""), &a.digest)
                .cmp(&(b.artifact_type.as_deref().unwrap_or(""), &b.digest))
        });
        entries.dedup_by(|a, b| a.digest == b.digest);
        if entries.is_empty() {
            idx.manifests
                .retain(|d| d.annotation(annotations::REF_NAME) != Some(tag.as_str()));
            return Ok(());
        }
        let mut fallback = ImageIndex::empty();
        fallback.manifests = entries;
        let bytes = fallback.to_json_bytes();
        let descriptor = Descriptor::for_bytes(stella_types::media_types::OCI_INDEX, &bytes);
        let path = self.blob_path(&descriptor.digest);
        if !path.exists() {
            write_blob_checked(&path, &descriptor, BlobSource::Bytes(&bytes), &NoProgress)?;
        }
        let mut entry = descriptor;
        entry
            .annotations
            .insert(annotations::REF_NAME.to_string(), tag.clone());
        upsert(&mut idx.manifests, entry, |d| {
            d.annotation(annotations::REF_NAME) == Some(tag.as_str())
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests;
