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
//!   digest). Listing reads each entry's manifest and lets its own `subject`
//!   decide (see `listing`); the annotation only names the subject of an
//!   entry whose manifest is gone (dangling).
//! - cosign legacy attachments are entries tagged `sha256-<hex>.sig|.att|.sbom`.
//!
//! Every write is atomic: a temp file in the same directory, checked (blobs
//! by digest and size), flushed, then renamed. `index.json` updates hold an
//! exclusive lock on `index.json.lock`, so concurrent Stella processes do
//! not lose entries. An update that would make `index.json` or a
//! tag-schema index larger than Stella reads back is refused before
//! anything is written.
//!
//! Trust: the layout is data, not instructions (see `docs/security.md`).
//! Files are never opened through symlinks, only regular files are read
//! (`fs`), the `blobs` directories must be real directories, and sizes and
//! media types in `index.json` are checked against the manifest bytes.
//!
//! Blocking: the store-trait methods run all file I/O and the `flock` on
//! tokio's blocking pool. The inherent methods ([`OciLayout::open`],
//! [`OciLayout::read_index`], [`OciLayout::update_index`],
//! [`OciLayout::tag`]) block; call them from synchronous code or
//! `spawn_blocking`.
//!
//! What this module does not do: decide what an artifact looks like
//! (`artifact`), walk graphs (`referrers`, `copy`), or garbage-collect blobs.

mod fs;
mod index;
mod listing;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use stella_types::digest::Hasher;
use stella_types::limits::MAX_MANIFEST_BYTES;
use stella_types::media_types::{self, annotations};
use stella_types::{Descriptor, Digest, ImageIndex, Manifest};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::OciError;
use crate::blocking;
use crate::store::*;

pub use index::IndexLock;
use listing::{FactsCache, ManifestFacts, StagedBlob};

/// Annotation Stella puts on a referrer's `index.json` entry naming the
/// referrer's subject digest. A hint only: the manifest's own `subject`
/// decides whether an entry is a referrer.
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
    /// What each manifest read so far says about itself (by digest).
    facts_cache: Arc<Mutex<FactsCache>>,
}

type IndexKey = (u64, u64, Option<std::time::SystemTime>);
type CachedIndex = (IndexKey, Arc<ImageIndex>);

fn index_key(path: &Path) -> Option<IndexKey> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let ino = 0u64;
    Some((ino, meta.len(), meta.modified().ok()))
}

impl OciLayout {
    /// Opens a layout, creating an empty one if `dir` does not exist (or is
    /// an empty directory). Blocks.
    pub fn open_or_create(dir: &Path) -> Result<Self, OciError> {
        let layout = OciLayout::at(dir);
        let marker = dir.join("oci-layout");
        if fs::lstat(&marker)
            .map_err(|e| OciError::io(format!("cannot inspect {}", marker.display()), e))?
            .is_some()
        {
            layout.check_layout_files()?;
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
        std::fs::create_dir_all(dir)
            .map_err(|e| OciError::io(format!("cannot create OCI layout {}", dir.display()), e))?;
        layout.blob_dir_for_write(stella_types::DigestAlgorithm::Sha256)?;
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
    /// Blocks.
    pub fn open(dir: &Path) -> Result<Self, OciError> {
        let present = |name: &str| matches!(fs::lstat(&dir.join(name)), Ok(Some(_)));
        if !present("oci-layout") || !present("index.json") {
            return Err(OciError::not_found(format!(
                "OCI image layout {}",
                dir.display()
            )));
        }
        let layout = OciLayout::at(dir);
        layout.check_layout_files()?;
        Ok(layout)
    }

    /// Checks the marker file, that `index.json` is a regular file and that
    /// the blob directories are real directories.
    fn check_layout_files(&self) -> Result<(), OciError> {
        self.check_marker()?;
        let index = self.index_path();
        fs::regular_file_exists(&index)
            .map_err(|e| OciError::io(format!("unusable OCI layout {}", self.root.display()), e))?;
        fs::check_dir(&self.root.join("blobs"))?;
        fs::check_dir(&self.root.join("blobs").join("sha256"))
    }

    fn check_marker(&self) -> Result<(), OciError> {
        let path = self.root.join("oci-layout");
        let bytes = fs::read_capped(&path, 4096)?;
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

    /// The blob's path, after checking that `blobs` and `blobs/<alg>` are
    /// not symlinks (reads and existence checks).
    fn blob_file(&self, digest: &Digest) -> Result<PathBuf, OciError> {
        let blobs = self.root.join("blobs");
        fs::check_dir(&blobs)?;
        fs::check_dir(&blobs.join(digest.algorithm().as_str()))?;
        Ok(self.blob_path(digest))
    }

    /// Creates `blobs/<alg>` if needed, never through a symlink.
    fn blob_dir_for_write(&self, alg: stella_types::DigestAlgorithm) -> Result<(), OciError> {
        let blobs = self.root.join("blobs");
        fs::ensure_dir(&blobs)?;
        fs::ensure_dir(&blobs.join(alg.as_str()))
    }

    /// Whether the blob is present as a regular file (a symlink or FIFO in
    /// its place is an error).
    fn blob_present(&self, digest: &Digest) -> Result<bool, OciError> {
        let path = self.blob_file(digest)?;
        fs::regular_file_exists(&path)
            .map(|size| size.is_some())
            .map_err(|e| OciError::io(format!("blob {digest} in {}", self.root.display()), e))
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    /// Reads `index.json` (capped, parsed). Blocks.
    pub fn read_index(&self) -> Result<ImageIndex, OciError> {
        index::read_index(&self.index_path())
    }

    fn at(dir: &Path) -> Self {
        OciLayout {
            root: dir.to_path_buf(),
            index_cache: Arc::new(Mutex::new(None)),
            facts_cache: Arc::new(Mutex::new(FactsCache::default())),
        }
    }

    /// Runs `work` on this layout on the blocking pool.
    async fn blocking<T, F>(&self, work: F) -> Result<T, OciError>
    where
        T: Send + 'static,
        F: FnOnce(&OciLayout) -> Result<T, OciError> + Send + 'static,
    {
        let this = self.clone();
        let what = format!("OCI layout {}", self.root.display());
        blocking::run(&what, move || work(&this)).await
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
    /// result atomically (only if it changed; refused if Stella could not
    /// read the result back). Returns what `f` returned. Blocks.
    pub fn update_index<T>(
        &self,
        f: impl FnOnce(&mut ImageIndex) -> Result<T, OciError>,
    ) -> Result<T, OciError> {
        self.update_index_staged(|idx| f(idx).map(|out| (out, None)))
    }

    /// [`OciLayout::update_index`] where `f` may also return a blob that
    /// the new index points at: written (if missing) after every check
    /// passed and before `index.json`.
    fn update_index_staged<T>(
        &self,
        f: impl FnOnce(&mut ImageIndex) -> Result<(T, Option<StagedBlob>), OciError>,
    ) -> Result<T, OciError> {
        let _lock = IndexLock::acquire(&self.root)?;
        if let Ok(mut slot) = self.index_cache.lock() {
            *slot = None;
        }
        let path = self.index_path();
        let mut idx = index::read_index(&path)?;
        let before = idx.clone();
        let (out, staged) = f(&mut idx)?;
        let new_bytes = if idx == before {
            None
        } else {
            Some(index::encode_index(&idx, &path)?)
        };
        if let Some(blob) = staged
            && !self.blob_present(&blob.descriptor.digest)?
        {
            self.write_blob(
                &blob.descriptor,
                BlobSource::Bytes(&blob.bytes),
                &mut |_: u64| {},
            )?;
        }
        if let Some(bytes) = new_bytes {
            index::write_atomic(&path, &bytes)?;
        }
        Ok(out)
    }

    /// Points `tag` at `descriptor` (replacing any entry with that ref
    /// name). Blocks.
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
        let path = self.blob_file(digest)?;
        let bytes = match fs::read_capped(&path, cap) {
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

    /// The manifest a tag names, described from its bytes: the entry's
    /// size and media type must match them.
    fn resolve_tag_blocking(&self, tag: &str) -> Result<Descriptor, OciError> {
        let idx = self.read_index_cached()?;
        let entry = idx
            .manifests
            .iter()
            .rev()
            .find(|d| d.annotation(annotations::REF_NAME) == Some(tag))
            .ok_or_else(|| {
                OciError::not_found(format!("tag {tag:?} in OCI layout {}", self.root.display()))
            })?;
        let bytes = self.read_blob_checked(&entry.digest, MAX_MANIFEST_BYTES, "manifest")?;
        let facts = ManifestFacts::from_bytes(&bytes).ok_or_else(|| {
            OciError::Protocol(format!(
                "tag {tag:?} in OCI layout {} names {}, which is not a manifest",
                self.root.display(),
                entry.digest
            ))
        })?;
        if let Some(why) = facts.mismatch(entry) {
            return Err(OciError::Protocol(format!(
                "tag {tag:?} in OCI layout {}: index.json gives {why}",
                self.root.display()
            )));
        }
        Self::manifest_descriptor(&entry.digest, &bytes, Some(&entry.media_type))
    }

    fn fetch_manifest_blocking(&self, digest: &Digest) -> Result<FetchedManifest, OciError> {
        let bytes = self.read_blob_checked(digest, MAX_MANIFEST_BYTES, "manifest")?;
        let descriptor = Self::manifest_descriptor(digest, &bytes, None)?;
        Ok(FetchedManifest { descriptor, bytes })
    }

    /// Opens a blob for streaming: a regular file, never through a symlink.
    fn open_blob(&self, digest: &Digest) -> Result<std::fs::File, OciError> {
        let path = self.blob_file(digest)?;
        let ctx = || format!("blob {digest} in {}", self.root.display());
        fs::open_regular(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                OciError::not_found(ctx())
            } else {
                OciError::io(format!("cannot read {}", ctx()), e)
            }
        })
    }

    /// Streams `source` into a temp file in the blob directory, checking
    /// digest and size, then renames it into place. `advance` is told every
    /// chunk's length.
    fn write_blob(
        &self,
        descriptor: &Descriptor,
        source: BlobSource<'_>,
        advance: &mut dyn FnMut(u64),
    ) -> Result<(), OciError> {
        self.blob_dir_for_write(descriptor.digest.algorithm())?;
        let dest = self.blob_path(&descriptor.digest);
        write_blob_checked(&dest, descriptor, source, advance)
    }

    fn push_manifest_blocking(
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
        if !self.blob_present(&digest)? {
            self.write_blob(&descriptor, BlobSource::Bytes(bytes), &mut |_: u64| {})?;
        }
        if let Some(tag) = tag {
            self.tag(&descriptor, tag)?;
        }
        descriptor.annotations = BTreeMap::new();
        Ok(descriptor)
    }

    fn delete_manifest_blocking(&self, digest: &Digest) -> Result<(), OciError> {
        let path = self.blob_file(digest)?;
        self.update_index(|idx| {
            let before = idx.manifests.len();
            idx.manifests.retain(|d| &d.digest != digest);
            let listed = idx.manifests.len() != before;
            if !listed && !self.blob_present(digest)? {
                return Err(OciError::not_found(format!(
                    "manifest {digest} in {}",
                    self.root.display()
                )));
            }
            if !self.still_referenced(idx, digest) {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(OciError::io(format!("cannot delete {}", path.display()), e));
                    }
                }
            }
            Ok(())
        })
    }

    fn list_referrers_blocking(
        &self,
        subject: &Digest,
        artifact_types: &[String],
    ) -> Result<ReferrerListing, OciError> {
        let idx = self.read_index_cached()?;
        let mut referrers = self.referrers_in(&idx, subject, None, false)?;
        if !artifact_types.is_empty() {
            referrers.retain(|e| {
                artifact_types
                    .iter()
                    .any(|t| Some(t.as_str()) == e.descriptor.artifact_type.as_deref())
            });
        }
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
        Ok(ReferrerListing {
            mode: ReferrersMode::Layout,
            referrers,
            legacy: self.legacy_in(&idx, subject)?,
        })
    }

    fn add_referrer_blocking(
        &self,
        subject: &Descriptor,
        referrer: &Descriptor,
    ) -> Result<(), OciError> {
        let bytes =
            self.read_blob_checked(&referrer.digest, MAX_MANIFEST_BYTES, "referrer manifest")?;
        Manifest::parse(&bytes, Some(&referrer.media_type))
            .map_err(|e| OciError::manifest(&referrer.digest, e))?;
        let facts = ManifestFacts::from_bytes(&bytes)
            .map(Arc::new)
            .ok_or_else(|| {
                OciError::InvalidInput(format!("{} is not a manifest", referrer.digest))
            })?;
        self.update_index_staged(|idx| {
            let staged = self.plan_add_referrer(idx, &subject.digest, referrer, &facts, false)?;
            Ok(((), staged))
        })
    }

    /// The dry run of [`ReferrersWrite::add_referrer`] for manifest bytes
    /// not pushed yet: fails if the new `index.json` or tag-schema index
    /// would be over its cap (or the manifest does not refer to `subject`).
    fn check_referrer_room_blocking(
        &self,
        subject: &Descriptor,
        manifest: &[u8],
    ) -> Result<(), OciError> {
        let referrer = Descriptor::for_bytes(media_types::OCI_MANIFEST, manifest);
        let facts = ManifestFacts::from_bytes(manifest)
            .map(Arc::new)
            .ok_or_else(|| OciError::InvalidInput("the referrer is not a manifest".into()))?;
        let mut idx = (*self.read_index_cached()?).clone();
        self.plan_add_referrer(&mut idx, &subject.digest, &referrer, &facts, true)?;
        index::encode_index(&idx, &self.index_path())?;
        Ok(())
    }

    fn remove_referrer_blocking(
        &self,
        subject: &Digest,
        referrer: &Digest,
    ) -> Result<(), OciError> {
        self.update_index_staged(|idx| {
            idx.manifests.retain(|d| {
                !(&d.digest == referrer && d.annotation(annotations::REF_NAME).is_none())
            });
            let staged = self.plan_tag_schema_index(idx, subject, None, false)?;
            Ok(((), staged))
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

/// Parses `sha256-<hex>.sig|.att|.sbom`, returning (subject hex, kind).
pub fn parse_legacy_tag(tag: &str) -> Option<(&str, &str)> {
    let rest = tag.strip_prefix("sha256-")?;
    let (hex, kind) = rest.rsplit_once('.')?;
    if !matches!(kind, "sig" | "att" | "sbom") {
        return None;
    }
    Some((hex, kind))
}

/// Streams `source` into a temp file next to `dest`, checking digest and
/// size, then renames it into place. The caller made sure the directory is
/// a real one.
fn write_blob_checked(
    dest: &Path,
    descriptor: &Descriptor,
    source: BlobSource<'_>,
    advance: &mut dyn FnMut(u64),
) -> Result<(), OciError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let mut tmp = index::temp_builder()
        .tempfile_in(dir)
        .map_err(|e| OciError::io(format!("cannot create temp file in {}", dir.display()), e))?;
    let ctx = || format!("blob {}", descriptor.digest);
    let mut check = SizeAndDigest::new(descriptor);
    let mut push = |chunk: &[u8], tmp: &mut tempfile::NamedTempFile| -> Result<(), OciError> {
        check
            .update(chunk)
            .map_err(|e| OciError::integrity(ctx(), e))?;
        tmp.write_all(chunk)
            .map_err(|e| OciError::io(format!("cannot write {}", ctx()), e))?;
        advance(chunk.len() as u64);
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
    check.finish().map_err(|e| OciError::integrity(ctx(), e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| OciError::io(format!("cannot write {}", ctx()), e))?;
    tmp.persist(dest)
        .map_err(|e| OciError::io(format!("cannot store {}", ctx()), e.error))?;
    Ok(())
}

/// Checks bytes as they stream against a descriptor's size and digest.
struct SizeAndDigest<'a> {
    descriptor: &'a Descriptor,
    hasher: Hasher,
    seen: u64,
}

impl<'a> SizeAndDigest<'a> {
    fn new(descriptor: &'a Descriptor) -> Self {
        SizeAndDigest {
            descriptor,
            hasher: Hasher::new(descriptor.digest.algorithm()),
            seen: 0,
        }
    }

    fn update(&mut self, chunk: &[u8]) -> Result<(), stella_types::DigestError> {
        self.seen = self.seen.saturating_add(chunk.len() as u64);
        if self.seen > self.descriptor.size {
            return Err(stella_types::DigestError::SizeMismatch {
                expected: self.descriptor.size,
                actual: self.seen,
            });
        }
        self.hasher.update(chunk);
        Ok(())
    }

    fn finish(self) -> Result<u64, stella_types::DigestError> {
        if self.seen != self.descriptor.size {
            return Err(stella_types::DigestError::SizeMismatch {
                expected: self.descriptor.size,
                actual: self.seen,
            });
        }
        let actual = self.hasher.finish();
        if actual != self.descriptor.digest {
            return Err(stella_types::DigestError::Mismatch {
                expected: self.descriptor.digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(self.seen)
    }
}

impl ContentRead for OciLayout {
    async fn resolve_tag(&self, tag: &str) -> Result<Descriptor, OciError> {
        let tag = tag.to_string();
        self.blocking(move |l| l.resolve_tag_blocking(&tag)).await
    }

    async fn fetch_manifest(&self, digest: &Digest) -> Result<FetchedManifest, OciError> {
        let digest = digest.clone();
        self.blocking(move |l| l.fetch_manifest_blocking(&digest))
            .await
    }

    async fn manifest_exists(&self, digest: &Digest) -> Result<bool, OciError> {
        let digest = digest.clone();
        self.blocking(move |l| l.blob_present(&digest)).await
    }

    async fn blob_exists(&self, digest: &Digest) -> Result<bool, OciError> {
        let digest = digest.clone();
        self.blocking(move |l| l.blob_present(&digest)).await
    }

    async fn fetch_blob_to(
        &self,
        descriptor: &Descriptor,
        sink: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<u64, OciError> {
        let digest = &descriptor.digest;
        let ctx = || format!("blob {digest} in {}", self.root.display());
        let owned = digest.clone();
        let file = self.blocking(move |l| l.open_blob(&owned)).await?;
        let mut file = tokio::fs::File::from_std(file);
        let mut check = SizeAndDigest::new(descriptor);
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = file
                .read(&mut buf)
                .await
                .map_err(|e| OciError::io(format!("cannot read {}", ctx()), e))?;
            if n == 0 {
                break;
            }
            let Some(chunk) = buf.get(..n) else { break };
            check
                .update(chunk)
                .map_err(|e| OciError::integrity(ctx(), e))?;
            sink.write_all(chunk)
                .await
                .map_err(|e| OciError::io(format!("cannot write {}", ctx()), e))?;
        }
        let seen = check.finish().map_err(|e| OciError::integrity(ctx(), e))?;
        sink.flush()
            .await
            .map_err(|e| OciError::io(format!("cannot write {}", ctx()), e))?;
        Ok(seen)
    }
}

/// A blob source the blocking pool can own.
enum OwnedSource {
    Bytes(Vec<u8>),
    File(PathBuf),
}

impl OwnedSource {
    fn borrow(&self) -> BlobSource<'_> {
        match self {
            OwnedSource::Bytes(b) => BlobSource::Bytes(b),
            OwnedSource::File(p) => BlobSource::File(p),
        }
    }
}

impl ContentWrite for OciLayout {
    async fn push_blob(
        &self,
        descriptor: &Descriptor,
        source: BlobSource<'_>,
        progress: &dyn Progress,
    ) -> Result<PushOutcome, OciError> {
        let owned_desc = descriptor.clone();
        let present = self
            .blocking(move |l| {
                let path = l.blob_file(&owned_desc.digest)?;
                Ok(fs::regular_file_exists(&path)
                    .ok()
                    .flatten()
                    .is_some_and(|size| size == owned_desc.size))
            })
            .await?;
        if present {
            return Ok(PushOutcome::AlreadyExisted);
        }
        let source = match source {
            BlobSource::Bytes(b) => OwnedSource::Bytes(b.to_vec()),
            BlobSource::File(p) => OwnedSource::File(p.to_path_buf()),
        };
        // The blocking writer reports progress through a channel; this
        // task forwards it to `progress` until the writer is done.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let this = self.clone();
        let owned_desc = descriptor.clone();
        progress.start(&descriptor.digest.to_string(), descriptor.size);
        let writer = tokio::task::spawn_blocking(move || {
            this.write_blob(&owned_desc, source.borrow(), &mut |n| {
                let _ = tx.send(n);
            })
        });
        while let Some(n) = rx.recv().await {
            progress.advance(n);
        }
        progress.finish();
        let r = writer.await.map_err(|e| {
            OciError::io(
                format!(
                    "OCI layout {}: the blob writer did not finish",
                    self.root.display()
                ),
                std::io::Error::other(e.to_string()),
            )
        })?;
        r.map(|()| PushOutcome::Uploaded)
    }

    async fn push_manifest(
        &self,
        media_type: &str,
        bytes: &[u8],
        tag: Option<&str>,
    ) -> Result<Descriptor, OciError> {
        let media_type = media_type.to_string();
        let bytes = bytes.to_vec();
        let tag = tag.map(str::to_string);
        self.blocking(move |l| l.push_manifest_blocking(&media_type, &bytes, tag.as_deref()))
            .await
    }

    async fn delete_manifest(&self, digest: &Digest) -> Result<(), OciError> {
        let digest = digest.clone();
        self.blocking(move |l| l.delete_manifest_blocking(&digest))
            .await
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
        let subject = subject.clone();
        let artifact_types = artifact_types.to_vec();
        self.blocking(move |l| l.list_referrers_blocking(&subject, &artifact_types))
            .await
    }
}

impl ReferrersWrite for OciLayout {
    async fn add_referrer(
        &self,
        subject: &Descriptor,
        referrer: &Descriptor,
    ) -> Result<(), OciError> {
        let subject = subject.clone();
        let referrer = referrer.clone();
        self.blocking(move |l| l.add_referrer_blocking(&subject, &referrer))
            .await
    }

    async fn remove_referrer(&self, subject: &Digest, referrer: &Digest) -> Result<(), OciError> {
        let subject = subject.clone();
        let referrer = referrer.clone();
        self.blocking(move |l| l.remove_referrer_blocking(&subject, &referrer))
            .await
    }

    async fn check_referrer_room(
        &self,
        subject: &Descriptor,
        manifest: &[u8],
    ) -> Result<(), OciError> {
        let subject = subject.clone();
        let manifest = manifest.to_vec();
        self.blocking(move |l| l.check_referrer_room_blocking(&subject, &manifest))
            .await
    }
}

#[cfg(test)]
mod tests;
