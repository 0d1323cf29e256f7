//! Opening an export for reading, whatever form it travels in: a
//! directory, a tar (plain or zstd), an age-encrypted tar, or parts with
//! their parts list (`<name>.parts.json`, or the archive name whose parts
//! list sits beside it). Archives go through the StellaBundle hostile
//! archive reader (`stella_bundle::archive`); directories are walked without
//! following symlinks and refuse anything but regular files and
//! directories. Either way the caller sees one stream of entries in the
//! archive order, `manifest.json` first.
//!
//! What this module does not do: check content against the manifest
//! (`verify`), or write anything.

use std::fs;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use stella_bundle::ReadLimits;
use stella_bundle::archive::{ArchiveReader, TAR_TRAILER_SLACK, tar_entry_bytes};

use crate::crypt::{Identities, is_age, peek};
use crate::error::{ExportError, codes};
use crate::format::*;
use crate::parts::{PartsReader, check_parts, parts_list_path, read_parts_list};

/// Reads a whole small file, refusing anything over `cap` bytes.
pub fn read_file_capped(path: &Path, cap: u64) -> Result<Vec<u8>, ExportError> {
    let f = fs::File::open(path)
        .map_err(|e| ExportError::io(format!("reading {}", path.display()), e))?;
    let mut buf = Vec::new();
    f.take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(|e| ExportError::io(format!("reading {}", path.display()), e))?;
    if buf.len() as u64 > cap {
        return Err(ExportError::unusable(
            codes::NOT_AN_EXPORT,
            format!("{} is larger than the {cap}-byte limit", path.display()),
        ));
    }
    Ok(buf)
}

/// How an export was found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// `directory`, `archive`
    pub kind: &'static str,
    /// `none`, `zstd`, `gzip` (archives)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<&'static str>,
    pub encrypted: bool,
    /// Number of parts (archives split into parts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parts: Option<usize>,
}

/// One entry of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    pub path: String,
    pub size: u64,
    pub is_dir: bool,
}

enum Inner {
    Dir {
        root: PathBuf,
        queue: std::vec::IntoIter<StreamEntry>,
        current: Option<fs::File>,
    },
    Archive(Box<ArchiveReader>),
}

/// An open export: a stream of entries.
pub struct ExportStream {
    inner: Inner,
    pub container: Container,
}

/// Opens `path` as an export. `identities` decrypt an encrypted one.
pub fn open_export(
    path: &Path,
    identities: Option<&Identities>,
) -> Result<ExportStream, ExportError> {
    if path.to_string_lossy().ends_with(".parts.json") {
        return open_parts(path, identities);
    }
    match fs::metadata(path) {
        Ok(m) if m.is_dir() => open_dir(path),
        Ok(_) => {
            let f = fs::File::open(path)
                .map_err(|e| ExportError::io(format!("reading {}", path.display()), e))?;
            open_archive(Box::new(f), identities, None)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound && parts_list_path(path).is_file() => {
            open_parts(&parts_list_path(path), identities)
        }
        Err(e) => Err(ExportError::io(format!("reading {}", path.display()), e)),
    }
}

fn open_parts(
    list_path: &Path,
    identities: Option<&Identities>,
) -> Result<ExportStream, ExportError> {
    let list = read_parts_list(list_path)?;
    let paths = check_parts(list_path, &list)?;
    let n = paths.len();
    open_archive(Box::new(PartsReader::new(paths)), identities, Some(n))
}

fn open_archive(
    input: Box<dyn Read>,
    identities: Option<&Identities>,
    parts: Option<usize>,
) -> Result<ExportStream, ExportError> {
    let mut buffered = BufReader::with_capacity(1 << 20, input);
    let head = peek(&mut buffered, 64).map_err(|e| ExportError::io("reading the export", e))?;
    let (reader, encrypted): (Box<dyn Read>, bool) = if is_age(&head) {
        let ids = identities.ok_or_else(|| {
            ExportError::unusable(
                codes::ENCRYPTED,
                "the export is age-encrypted: give an identity to decrypt it (--identity)",
            )
        })?;
        (Box::new(ids.decrypt(buffered)?), true)
    } else {
        (Box::new(buffered), false)
    };
    let archive = ArchiveReader::open(reader, ReadLimits::default())?;
    let compression = archive.compression().as_str();
    Ok(ExportStream {
        inner: Inner::Archive(Box::new(archive)),
        container: Container {
            kind: "archive",
            compression: Some(compression),
            encrypted,
            parts,
        },
    })
}

/// Rank of a path in the archive order.
fn rank(path: &str) -> u8 {
    match path {
        MANIFEST_NAME => 0,
        SIGNATURE_NAME | SIGSTORE_NAME => 1,
        CHECKSUMS_NAME => 2,
        PROVENANCE_NAME => 3,
        OCI_LAYOUT_NAME => 4,
        INDEX_NAME => 5,
        p if p.ends_with('/') => 6,
        _ => 7,
    }
}

fn open_dir(root: &Path) -> Result<ExportStream, ExportError> {
    let mut entries = Vec::new();
    walk_dir(root, "", &mut entries, 0)?;
    entries.sort_by(|a, b| (rank(&a.path), &a.path).cmp(&(rank(&b.path), &b.path)));
    Ok(ExportStream {
        inner: Inner::Dir {
            root: root.to_path_buf(),
            queue: entries.into_iter(),
            current: None,
        },
        container: Container {
            kind: "directory",
            compression: None,
            encrypted: false,
            parts: None,
        },
    })
}

fn walk_dir(
    root: &Path,
    prefix: &str,
    out: &mut Vec<StreamEntry>,
    depth: usize,
) -> Result<(), ExportError> {
    if depth > 4 {
        return Err(ExportError::unusable(
            codes::NOT_AN_EXPORT,
            format!("{prefix} is nested deeper than an export goes"),
        ));
    }
    let dir = root.join(prefix);
    let rd =
        fs::read_dir(&dir).map_err(|e| ExportError::io(format!("reading {}", dir.display()), e))?;
    for e in rd {
        let e = e.map_err(|e| ExportError::io(format!("reading {}", dir.display()), e))?;
        let name = e.file_name();
        let name = name.to_str().ok_or_else(|| {
            ExportError::unusable(codes::NOT_AN_EXPORT, "a file name is not UTF-8")
        })?;
        let rel = format!("{prefix}{name}");
        let ft = e
            .file_type()
            .map_err(|err| ExportError::io(format!("reading {rel}"), err))?;
        if ft.is_dir() {
            out.push(StreamEntry {
                path: format!("{rel}/"),
                size: 0,
                is_dir: true,
            });
            walk_dir(root, &format!("{rel}/"), out, depth + 1)?;
        } else if ft.is_file() {
            let size = e
                .metadata()
                .map_err(|err| ExportError::io(format!("reading {rel}"), err))?
                .len();
            out.push(StreamEntry {
                path: rel,
                size,
                is_dir: false,
            });
        } else {
            return Err(ExportError::unusable(
                codes::NOT_AN_EXPORT,
                format!(
                    "{rel} is a symlink or special file; an export holds only files and directories"
                ),
            ));
        }
    }
    Ok(())
}

impl ExportStream {
    /// The next entry, or `None` at the end.
    pub fn next_entry(&mut self) -> Result<Option<StreamEntry>, ExportError> {
        match &mut self.inner {
            Inner::Dir {
                root,
                queue,
                current,
            } => {
                *current = None;
                let Some(e) = queue.next() else {
                    return Ok(None);
                };
                if !e.is_dir {
                    let p = root.join(&e.path);
                    *current =
                        Some(fs::File::open(&p).map_err(|err| {
                            ExportError::io(format!("reading {}", p.display()), err)
                        })?);
                }
                Ok(Some(e))
            }
            Inner::Archive(a) => Ok(a.next_entry()?.map(|h| StreamEntry {
                path: h.path,
                size: h.size,
                is_dir: h.is_dir,
            })),
        }
    }

    /// The data of the current entry (exactly its size, or an error).
    pub fn data(&mut self) -> Box<dyn Read + '_> {
        match &mut self.inner {
            Inner::Dir { current, .. } => match current {
                Some(f) => Box::new(f),
                None => Box::new(io::empty()),
            },
            Inner::Archive(a) => Box::new(a.data()),
        }
    }

    /// Reads the current entry whole (for head files), refusing more than `cap` bytes.
    pub fn read_small(&mut self, e: &StreamEntry, cap: u64) -> Result<Vec<u8>, ExportError> {
        if e.size > cap {
            return Err(ExportError::unusable(
                codes::NOT_AN_EXPORT,
                format!("{} is {} bytes, over the {cap}-byte limit", e.path, e.size),
            ));
        }
        let mut buf = Vec::with_capacity(usize::try_from(e.size).unwrap_or(0));
        self.data()
            .take(cap + 1)
            .read_to_end(&mut buf)
            .map_err(|err| ArchiveReader::io_error(&e.path, err))?;
        if buf.len() as u64 != e.size {
            return Err(ExportError::unusable(
                codes::NOT_AN_EXPORT,
                format!("{} changed size while being read", e.path),
            ));
        }
        Ok(buf)
    }

    /// Once `manifest.json` is read: bounds an archive by what it declares.
    pub fn bound_by(&mut self, manifest: &ExportManifest, manifest_len: u64) {
        if let Inner::Archive(a) = &mut self.inner {
            let mut total = tar_entry_bytes(manifest_len)
                + tar_entry_bytes(MAX_SIGNATURE_BYTES)
                + 2 * tar_entry_bytes(MAX_HEAD_FILE_BYTES)
                + 3 * 512
                + TAR_TRAILER_SLACK;
            for e in &manifest.entries {
                total = total.saturating_add(tar_entry_bytes(e.size));
            }
            a.bound_total(total);
        }
    }

    /// After the last entry: an archive must end there.
    pub fn finish(self) -> Result<(), ExportError> {
        match self.inner {
            Inner::Dir { .. } => Ok(()),
            Inner::Archive(a) => Ok(a.finish()?),
        }
    }
}

/// Reads just `manifest.json` (and its bytes) from an export, or from a
/// `manifest.json` file given directly.
pub fn read_manifest(
    path: &Path,
    identities: Option<&Identities>,
) -> Result<(ExportManifest, Vec<u8>), ExportError> {
    if path.is_file() && path.file_name().is_some_and(|n| n == MANIFEST_NAME) {
        let bytes = read_file_capped(path, MAX_HEAD_FILE_BYTES)?;
        return Ok((ExportManifest::parse(&bytes)?, bytes));
    }
    let mut s = open_export(path, identities)?;
    let first = s.next_entry()?;
    match first {
        Some(e) if e.path == MANIFEST_NAME && !e.is_dir => {
            let bytes = s.read_small(&e, MAX_HEAD_FILE_BYTES)?;
            Ok((ExportManifest::parse(&bytes)?, bytes))
        }
        _ => Err(ExportError::unusable(
            codes::NOT_AN_EXPORT,
            format!(
                "{} does not start with {MANIFEST_NAME}: not a Stella export",
                path.display()
            ),
        )),
    }
}
