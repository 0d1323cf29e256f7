//! Writing an export: fetch what the selection needs into a staging
//! directory beside the output (blobs by digest, written atomically, so an
//! interrupted run resumes where it stopped), derive the head files
//! (`manifest.json`, `manifest.dsse.json`, `checksums.txt`,
//! `provenance.json`) from what is staged, then produce the output: the
//! staging directory renamed into place, or a tar (plain or zstd), possibly
//! age-encrypted and split into parts. Everything but the age encryption
//! and an ECDSA signature is a pure function of the inputs, so two runs,
//! and a killed run resumed, give byte-identical output.
//!
//! What this module does not do: resolve the selection (`collect`), read
//! exports (`read`), print, or read the clock or the environment.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use stella_bundle::archive::{ArchiveWriter, Compression};
use stella_bundle::format::ManifestSigner;
use stella_oci::store::{ContentRead, Progress};
use stella_types::digest::{DigestAlgorithm, Hasher};
use stella_types::media_types::annotations::REF_NAME;
use stella_types::{Descriptor, Digest, ImageIndex};
use time::OffsetDateTime;

use crate::collect::{Collected, SourceRepository};
use crate::crypt::Recipients;
use crate::error::ExportError;
use crate::format::*;
use crate::parts::PartWriter;

/// Prefix of every temporary file or directory the writer leaves while running.
pub const TEMP_PREFIX: &str = ".stella-export-";
/// The `oci-layout` file of a mirror export.
pub const OCI_LAYOUT_BYTES: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// What to produce.
#[derive(Debug)]
pub enum OutputKind {
    /// A directory (the export's files as they are).
    Directory,
    /// A tar, plain or zstd-compressed.
    Archive(Compression),
}

/// Where and how to write.
#[derive(Debug)]
pub struct OutputSpec {
    pub path: PathBuf,
    pub kind: OutputKind,
    /// Encrypt the archive to these recipients (archives only).
    pub recipients: Option<Recipients>,
    /// Split the (encrypted) archive into parts of at most this many bytes.
    pub max_part_size: Option<u64>,
}

/// The base of a delta.
#[derive(Debug, Clone)]
pub struct BaseExport {
    pub manifest: ExportManifest,
    pub digest: Digest,
}

/// One export run.
pub struct ExportRequest<'a> {
    pub profile: Profile,
    pub selection: Selection,
    pub sources: Vec<SourceRepository>,
    pub platforms: crate::collect::PlatformFilter,
    pub base: Option<BaseExport>,
    /// `SOURCE_DATE_EPOCH` if the caller has it.
    pub created: Option<OffsetDateTime>,
    pub signer: Option<&'a dyn ManifestSigner>,
    pub output: OutputSpec,
    pub progress: &'a dyn Progress,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct ExportSummary {
    pub manifest_digest: Digest,
    pub manifest: ExportManifest,
    /// Files written (the directory, the archive, or the parts and their list).
    pub written: Vec<PathBuf>,
    /// Blobs fetched from sources in this run (not found staged by an earlier run).
    pub fetched_blobs: usize,
    /// Bytes of the entries.
    pub entry_bytes: u64,
}

/// Writes `bytes` to `path` atomically (temp file in the same directory, synced, renamed).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    let dir = parent_dir(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)
        .map_err(|e| ExportError::io(format!("creating a file in {}", dir.display()), e))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| ExportError::io(format!("writing {}", path.display()), e))?;
    set_file_mode(tmp.as_file())?;
    tmp.persist(path)
        .map_err(|e| ExportError::io(format!("writing {}", path.display()), e.error))?;
    Ok(())
}

/// Files the writer leaves are mode 0644 whatever the umask (temp files start 0600).
pub fn set_file_mode(f: &fs::File) -> Result<(), ExportError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(fs::Permissions::from_mode(0o644))
            .map_err(|e| ExportError::io("setting a file mode", e))?;
    }
    #[cfg(not(unix))]
    let _ = f;
    Ok(())
}

/// Directories the writer leaves are mode 0755 whatever the umask.
fn set_dir_mode(dir: &Path) -> Result<(), ExportError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
            .map_err(|e| ExportError::io(format!("setting the mode of {}", dir.display()), e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The staging directory of an output: `.stella-export-<name>.staging` beside it.
pub fn staging_dir(output: &Path) -> Result<PathBuf, ExportError> {
    let name = output
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| ExportError::InvalidInput("the output needs a UTF-8 file name".into()))?;
    Ok(parent_dir(output).join(format!("{TEMP_PREFIX}{name}.staging")))
}

fn hash_file(path: &Path) -> io::Result<(u64, Digest)> {
    let mut f = fs::File::open(path)?;
    let mut h = Hasher::new(DigestAlgorithm::Sha256);
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(buf.get(..n).unwrap_or(&[]));
        total += n as u64;
    }
    Ok((total, h.finish()))
}

/// Whether a staged file already holds exactly this content (a resumed run).
fn staged_ok(path: &Path, digest: &Digest, size: u64) -> bool {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_file() && m.len() == size => {
            matches!(hash_file(path), Ok((_, d)) if &d == digest)
        }
        _ => false,
    }
}

fn write_staged(path: &Path, bytes: &[u8], digest: &Digest) -> Result<(), ExportError> {
    if staged_ok(path, digest, bytes.len() as u64) {
        return Ok(());
    }
    write_atomic(path, bytes)
}

async fn fetch_staged(
    store: &stella_oci::AnyStore,
    d: &Descriptor,
    path: &Path,
    progress: &dyn Progress,
) -> Result<bool, ExportError> {
    if staged_ok(path, &d.digest, d.size) {
        return Ok(false);
    }
    let dir = parent_dir(path);
    let tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)
        .map_err(|e| ExportError::io(format!("creating a file in {}", dir.display()), e))?;
    let f = tmp
        .reopen()
        .map_err(|e| ExportError::io("opening a temp file", e))?;
    let mut sink = tokio::fs::File::from_std(f);
    progress.start(&format!("blob {}", short(&d.digest)), d.size);
    let fetched = store.fetch_blob_to(d, &mut sink).await;
    progress.advance(d.size);
    progress.finish();
    fetched.map_err(|e| ExportError::store(format!("fetching blob {}", d.digest), e))?;
    tokio::io::AsyncWriteExt::flush(&mut sink)
        .await
        .map_err(|e| ExportError::io("writing a blob", e))?;
    let std_file = sink.into_std().await;
    std_file
        .sync_all()
        .map_err(|e| ExportError::io("syncing a blob", e))?;
    set_file_mode(&std_file)?;
    drop(std_file);
    tmp.persist(path)
        .map_err(|e| ExportError::io(format!("writing {}", path.display()), e.error))?;
    Ok(true)
}

fn short(d: &Digest) -> &str {
    d.hex().get(..12).unwrap_or(d.hex())
}

fn created_time(req: &ExportRequest<'_>, collected: &Collected) -> String {
    let t = req
        .created
        .or_else(|| {
            collected
                .newest_created
                .as_deref()
                .and_then(stella_types::timestamp::parse_rfc3339)
        })
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    stella_types::timestamp::rfc3339(t)
}

/// Runs an export.
pub async fn run_export(req: ExportRequest<'_>) -> Result<ExportSummary, ExportError> {
    check_request(&req)?;
    let collected = crate::collect::collect(&req.sources, &req.platforms).await?;
    let staging = staging_dir(&req.output.path)?;
    let blobs_dir = staging.join("blobs").join("sha256");
    let work_dir = if req.profile.is_mirror() {
        blobs_dir.clone()
    } else {
        staging.join("evidence")
    };
    fs::create_dir_all(&work_dir)
        .map_err(|e| ExportError::io(format!("creating {}", work_dir.display()), e))?;
    let mut d = work_dir.as_path();
    while d.starts_with(&staging) {
        set_dir_mode(d)?;
        d = parent_dir(d);
    }
    sweep_temp_files(&work_dir);
    sweep_temp_files(&staging);
    sweep_temp_files(parent_dir(&req.output.path));
    let base_digests = req
        .base
        .as_ref()
        .map(|b| b.manifest.state_digests())
        .unwrap_or_default();
    let (staged_entries, fetched) = match req.profile {
        Profile::JsonRaw => crate::rawjson::stage(&req, &collected, &staging).await?,
        _ => stage_mirror(&req, &collected, &base_digests, &blobs_dir).await?,
    };
    let created = created_time(&req, &collected);
    let base = req.base.as_ref().map(|b| b.digest.clone());
    let inputs_hash = inputs_hash(
        req.profile,
        &req.selection,
        base.as_ref(),
        &collected.states,
    )?;
    let manifest = ExportManifest {
        media_type: MANIFEST_MEDIA_TYPE.into(),
        format_version: FORMAT_VERSION,
        profile: req.profile,
        created,
        tool: Tool::default(),
        selection: req.selection.clone(),
        base,
        inputs_hash,
        removed: req
            .base
            .as_ref()
            .map(|b| removed_since(&b.manifest.images, &collected.states))
            .unwrap_or_default(),
        images: collected.states.clone(),
        entries: staged_entries,
    };
    let head = head_files(&manifest, req.signer)?;
    for (name, bytes) in &head {
        write_atomic(&staging.join(name), bytes)?;
    }
    let manifest_digest = manifest_digest(&head.first().map(|h| h.1.clone()).unwrap_or_default());
    let mtime = stella_types::timestamp::parse_rfc3339(&manifest.created)
        .map(|t| u64::try_from(t.unix_timestamp()).unwrap_or(0))
        .unwrap_or(0);
    let written = finish_output(&req.output, &staging, &manifest, &head, mtime)?;
    Ok(ExportSummary {
        manifest_digest,
        entry_bytes: manifest.total_bytes(),
        manifest,
        written,
        fetched_blobs: fetched,
    })
}

fn check_request(req: &ExportRequest<'_>) -> Result<(), ExportError> {
    match (req.profile, &req.base) {
        (Profile::MirrorDelta, None) => {
            return Err(ExportError::InvalidInput(
                "a mirror:delta export needs the previous export (--since)".into(),
            ));
        }
        (Profile::MirrorFull | Profile::JsonRaw, Some(_)) => {
            return Err(ExportError::InvalidInput(format!(
                "--since is only for mirror:delta, not {}",
                req.profile.as_str()
            )));
        }
        _ => {}
    }
    if let Some(b) = &req.base
        && !b.manifest.profile.is_mirror()
    {
        return Err(ExportError::InvalidInput(
            "the base of a mirror:delta must be a mirror export".into(),
        ));
    }
    if req.sources.is_empty() {
        return Err(ExportError::InvalidInput("nothing selected".into()));
    }
    let archive = matches!(req.output.kind, OutputKind::Archive(_));
    if !archive && (req.output.recipients.is_some() || req.output.max_part_size.is_some()) {
        return Err(ExportError::InvalidInput(
            "encryption and parts need an archive output (a name ending in .tar or .tar.zst)"
                .into(),
        ));
    }
    let exists = fs::symlink_metadata(&req.output.path).is_ok()
        || (req.output.max_part_size.is_some()
            && fs::symlink_metadata(crate::parts::parts_list_path(&req.output.path)).is_ok());
    if exists {
        return Err(ExportError::InvalidInput(format!(
            "{} already exists; refusing to overwrite it",
            req.output.path.display()
        )));
    }
    Ok(())
}

/// Leftover temp files of a killed run (only ours, by prefix).
fn sweep_temp_files(dir: &Path) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(n) = name.to_str() else { continue };
        let is_temp = n.starts_with(TEMP_PREFIX) && !n.ends_with(".staging");
        if is_temp && e.file_type().is_ok_and(|t| t.is_file()) {
            let _ = fs::remove_file(e.path());
        }
    }
}

async fn stage_mirror(
    req: &ExportRequest<'_>,
    collected: &Collected,
    base: &BTreeSet<Digest>,
    blobs_dir: &Path,
) -> Result<(Vec<Entry>, usize), ExportError> {
    let mut entries = Vec::new();
    let mut fetched = 0;
    for (digest, (_, bytes)) in &collected.manifests {
        if base.contains(digest) {
            continue;
        }
        write_staged(&blobs_dir.join(digest.hex()), bytes, digest)?;
        entries.push(blob_entry(digest, bytes.len() as u64, roles::MANIFEST));
    }
    for (digest, b) in &collected.blobs {
        if base.contains(digest) || collected.manifests.contains_key(digest) {
            continue;
        }
        let src = req
            .sources
            .get(b.source)
            .ok_or_else(|| ExportError::InvalidInput("internal: a blob without a source".into()))?;
        if fetch_staged(
            &src.store,
            &b.descriptor,
            &blobs_dir.join(digest.hex()),
            req.progress,
        )
        .await?
        {
            fetched += 1;
        }
        entries.push(blob_entry(digest, b.descriptor.size, roles::BLOB));
    }
    let index = layout_index(&collected.states)?;
    let staging = parent_dir(parent_dir(blobs_dir));
    write_atomic(&staging.join(OCI_LAYOUT_NAME), OCI_LAYOUT_BYTES)?;
    write_atomic(&staging.join(INDEX_NAME), &index)?;
    entries.push(Entry {
        path: OCI_LAYOUT_NAME.into(),
        size: OCI_LAYOUT_BYTES.len() as u64,
        sha256: Digest::sha256_of(OCI_LAYOUT_BYTES).hex().to_string(),
        role: roles::OCI_LAYOUT.into(),
    });
    entries.push(Entry {
        path: INDEX_NAME.into(),
        size: index.len() as u64,
        sha256: Digest::sha256_of(&index).hex().to_string(),
        role: roles::LAYOUT_INDEX.into(),
    });
    // Anything staged by an earlier run that this export does not hold goes.
    let wanted: BTreeSet<String> = entries
        .iter()
        .filter_map(|e| e.path.strip_prefix(BLOBS_SHA256_DIR).map(str::to_string))
        .collect();
    if let Ok(rd) = fs::read_dir(blobs_dir) {
        for e in rd.flatten() {
            if let Some(n) = e.file_name().to_str()
                && !wanted.contains(n)
            {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((entries, fetched))
}

fn blob_entry(d: &Digest, size: u64, role: &str) -> Entry {
    Entry {
        path: blob_path(d),
        size,
        sha256: d.hex().to_string(),
        role: role.into(),
    }
}

/// The layout's `index.json`: every tag as `<repository>:<tag>`, every
/// untagged selected image, and every referrer (with its subject), sorted
/// by (ref name, digest). Tags of the same manifest in several
/// repositories each get an entry.
pub fn layout_index(states: &[RepositoryState]) -> Result<Vec<u8>, ExportError> {
    let mut named: BTreeMap<(String, Digest), Descriptor> = BTreeMap::new();
    let mut media: BTreeMap<Digest, (String, u64)> = BTreeMap::new();
    for s in states {
        for c in &s.content {
            if let Some(mt) = &c.media_type {
                media.insert(c.digest.clone(), (mt.clone(), c.size));
            }
        }
    }
    let desc = |d: &Digest| -> Result<Descriptor, ExportError> {
        let (mt, size) = media.get(d).ok_or_else(|| {
            ExportError::InvalidInput(format!("internal: manifest {d} not collected"))
        })?;
        Ok(Descriptor::new(mt, d.clone(), *size))
    };
    for s in states {
        let mut tagged = BTreeSet::new();
        for (tag, d) in &s.tags {
            let mut x = desc(d)?;
            let name = format!("{}:{tag}", s.repository);
            x.annotations.insert(REF_NAME.into(), name.clone());
            tagged.insert(d.clone());
            named.insert((name, d.clone()), x);
        }
        for i in &s.images {
            if !tagged.contains(&i.digest) {
                named.insert((String::new(), i.digest.clone()), desc(&i.digest)?);
            }
        }
        for r in &s.referrers {
            let mut x = r.descriptor();
            x.annotations.insert(
                stella_oci::layout::SUBJECT_ANNOTATION.into(),
                r.subject.to_string(),
            );
            named.insert((String::new(), r.referrer.clone()), x);
        }
    }
    let mut idx = ImageIndex::empty();
    idx.manifests = named.into_values().collect();
    stella_types::canonical_json::to_canonical_vec(&idx)
        .map_err(|e| ExportError::InvalidInput(format!("cannot render index.json: {e}")))
}

/// `manifest.json`, `manifest.dsse.json` (if signed), `checksums.txt`,
/// `provenance.json`, in archive order.
fn head_files(
    manifest: &ExportManifest,
    signer: Option<&dyn ManifestSigner>,
) -> Result<Vec<(&'static str, Vec<u8>)>, ExportError> {
    let manifest_bytes = manifest.to_canonical_bytes()?;
    let digest = manifest_digest(&manifest_bytes);
    let mut files: Vec<(String, String)> = manifest
        .entries
        .iter()
        .map(|e| (e.path.clone(), e.sha256.clone()))
        .collect();
    files.push((MANIFEST_NAME.into(), digest.hex().to_string()));
    let provenance = render_provenance(manifest, &digest, &files)?;
    let signature = match signer {
        Some(s) => Some(sign_manifest(&manifest_bytes, s)?),
        None => None,
    };
    files.push((
        PROVENANCE_NAME.into(),
        Digest::sha256_of(&provenance).hex().to_string(),
    ));
    if let Some(sig) = &signature {
        files.push((
            SIGNATURE_NAME.into(),
            Digest::sha256_of(sig).hex().to_string(),
        ));
    }
    let checksums = render_checksums(&files);
    let mut out = vec![(MANIFEST_NAME, manifest_bytes)];
    if let Some(sig) = signature {
        out.push((SIGNATURE_NAME, sig));
    }
    out.push((CHECKSUMS_NAME, checksums));
    out.push((PROVENANCE_NAME, provenance));
    Ok(out)
}

fn finish_output(
    spec: &OutputSpec,
    staging: &Path,
    manifest: &ExportManifest,
    head: &[(&'static str, Vec<u8>)],
    mtime: u64,
) -> Result<Vec<PathBuf>, ExportError> {
    match spec.kind {
        OutputKind::Directory => {
            fs::rename(staging, &spec.path).map_err(|e| {
                ExportError::io(format!("moving the export to {}", spec.path.display()), e)
            })?;
            Ok(vec![spec.path.clone()])
        }
        OutputKind::Archive(c) => {
            let written = write_archive(spec, c, staging, manifest, head, mtime)?;
            fs::remove_dir_all(staging)
                .map_err(|e| ExportError::io(format!("removing {}", staging.display()), e))?;
            Ok(written)
        }
    }
}

/// Where archive bytes go: one file or parts.
enum Sink {
    File(tempfile::NamedTempFile, io::BufWriter<fs::File>),
    Parts(Box<PartWriter>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::File(_, w) => w.write(buf),
            Sink::Parts(p) => p.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::File(_, w) => w.flush(),
            Sink::Parts(p) => p.flush(),
        }
    }
}

impl Sink {
    fn finish(self, path: &Path) -> Result<Vec<PathBuf>, ExportError> {
        match self {
            Sink::File(tmp, mut w) => {
                w.flush()
                    .map_err(|e| ExportError::io("writing the archive", e))?;
                drop(w);
                tmp.as_file()
                    .sync_all()
                    .map_err(|e| ExportError::io("syncing the archive", e))?;
                set_file_mode(tmp.as_file())?;
                tmp.persist(path)
                    .map_err(|e| ExportError::io(format!("writing {}", path.display()), e.error))?;
                Ok(vec![path.to_path_buf()])
            }
            Sink::Parts(p) => Ok(p.finish()?.1),
        }
    }
}

fn write_archive(
    spec: &OutputSpec,
    compression: Compression,
    staging: &Path,
    manifest: &ExportManifest,
    head: &[(&'static str, Vec<u8>)],
    mtime: u64,
) -> Result<Vec<PathBuf>, ExportError> {
    let sink = match spec.max_part_size {
        Some(max) => Sink::Parts(Box::new(PartWriter::new(&spec.path, max)?)),
        None => {
            let dir = parent_dir(&spec.path);
            let tmp = tempfile::Builder::new()
                .prefix(TEMP_PREFIX)
                .tempfile_in(dir)
                .map_err(|e| ExportError::io(format!("creating a file in {}", dir.display()), e))?;
            let f = tmp
                .reopen()
                .map_err(|e| ExportError::io("opening a temp file", e))?;
            Sink::File(tmp, io::BufWriter::with_capacity(1 << 20, f))
        }
    };
    let io_err = |e| ExportError::io("writing the archive", e);
    let sink = match &spec.recipients {
        Some(r) => {
            let enc = r.encrypt(sink)?;
            let mut tar = ArchiveWriter::new(enc, compression, mtime).map_err(io_err)?;
            write_tar(&mut tar, staging, manifest, head)?;
            tar.finish().map_err(io_err)?.finish().map_err(io_err)?
        }
        None => {
            let mut tar = ArchiveWriter::new(sink, compression, mtime).map_err(io_err)?;
            write_tar(&mut tar, staging, manifest, head)?;
            tar.finish().map_err(io_err)?
        }
    };
    sink.finish(&spec.path)
}

/// The archive order (normative): head files, then `oci-layout` and
/// `index.json`, then the directories, then the other entries by path.
pub fn archive_order(entries: &[Entry], profile: Profile) -> (Vec<&Entry>, Vec<&'static str>) {
    let first: Vec<&Entry> = [OCI_LAYOUT_NAME, INDEX_NAME]
        .iter()
        .filter_map(|n| entries.iter().find(|e| e.path == *n))
        .collect();
    let rest = entries
        .iter()
        .filter(|e| e.path != OCI_LAYOUT_NAME && e.path != INDEX_NAME);
    let dirs: Vec<&'static str> = if profile.is_mirror() {
        vec![BLOBS_DIR, BLOBS_SHA256_DIR]
    } else {
        vec![EVIDENCE_DIR]
    };
    (first.into_iter().chain(rest).collect(), dirs)
}

fn write_tar<W: Write>(
    tar: &mut ArchiveWriter<W>,
    staging: &Path,
    manifest: &ExportManifest,
    head: &[(&'static str, Vec<u8>)],
) -> Result<(), ExportError> {
    let io_err = |e| ExportError::io("writing the archive", e);
    for (name, bytes) in head {
        tar.file(name, bytes.len() as u64, &mut &bytes[..])
            .map_err(io_err)?;
    }
    let (ordered, dirs) = archive_order(&manifest.entries, manifest.profile);
    let mut dirs_written = false;
    for e in ordered {
        if !dirs_written && e.path.contains('/') {
            for d in &dirs {
                tar.dir(d).map_err(io_err)?;
            }
            dirs_written = true;
        }
        let path = staging.join(&e.path);
        let mut f = fs::File::open(&path)
            .map_err(|err| ExportError::io(format!("reading {}", path.display()), err))?;
        tar.file(&e.path, e.size, &mut f).map_err(io_err)?;
    }
    if !dirs_written {
        for d in &dirs {
            tar.dir(d).map_err(io_err)?;
        }
    }
    Ok(())
}
