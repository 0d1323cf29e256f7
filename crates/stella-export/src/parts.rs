//! Splitting an export archive into parts of at most a given size for
//! removable media, and checking parts on reassembly. The parts list
//! (`<name>.parts.json`, canonical JSON) names every part with its size and
//! SHA-256 and the whole archive's size and SHA-256; a reader checks each
//! part before using it, and names a part that is missing, truncated,
//! changed or swapped with another.
//!
//! What this module does not do: know what is inside the archive.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use stella_types::digest::{DigestAlgorithm, Hasher};

use crate::error::{ExportError, codes};
use crate::format::PARTS_MEDIA_TYPE;

/// One part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PartInfo {
    /// File name, in the directory of the parts list.
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// The parts list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PartsList {
    pub media_type: String,
    /// File name of the reassembled archive.
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub parts: Vec<PartInfo>,
}

/// Name of the parts list for an archive path.
pub fn parts_list_path(archive: &Path) -> PathBuf {
    let mut s = archive.as_os_str().to_owned();
    s.push(".parts.json");
    PathBuf::from(s)
}

fn part_name(base: &str, n: usize) -> String {
    format!("{base}.{n:03}")
}

/// A writer that spreads its bytes over part files of at most `max` bytes
/// each (temp files renamed into place by [`PartWriter::finish`]).
pub struct PartWriter {
    dir: PathBuf,
    base: String,
    max: u64,
    current: Option<(tempfile::NamedTempFile, io::BufWriter<File>, Hasher, u64)>,
    done: Vec<(tempfile::NamedTempFile, PartInfo)>,
    whole: Hasher,
    total: u64,
}

impl PartWriter {
    pub fn new(archive: &Path, max: u64) -> Result<Self, ExportError> {
        if max == 0 {
            return Err(ExportError::InvalidInput(
                "the part size must be more than 0".into(),
            ));
        }
        let dir = archive
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let base = archive
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| ExportError::InvalidInput("the output needs a UTF-8 file name".into()))?
            .to_string();
        Ok(PartWriter {
            dir,
            base,
            max,
            current: None,
            done: Vec::new(),
            whole: Hasher::new(DigestAlgorithm::Sha256),
            total: 0,
        })
    }

    fn close_current(&mut self) -> io::Result<()> {
        if let Some((tmp, mut w, h, size)) = self.current.take() {
            w.flush()?;
            drop(w);
            let info = PartInfo {
                name: part_name(&self.base, self.done.len() + 1),
                size,
                sha256: h.finish().hex().to_string(),
            };
            self.done.push((tmp, info));
        }
        Ok(())
    }

    /// Closes the last part, renames every part into place, writes the
    /// parts list and returns it with the paths written.
    pub fn finish(mut self) -> Result<(PartsList, Vec<PathBuf>), ExportError> {
        self.close_current()
            .map_err(|e| ExportError::io("writing a part", e))?;
        let mut written = Vec::new();
        let mut parts = Vec::new();
        for (tmp, info) in self.done {
            let path = self.dir.join(&info.name);
            tmp.as_file()
                .sync_all()
                .map_err(|e| ExportError::io("syncing a part", e))?;
            crate::write::set_file_mode(tmp.as_file())?;
            tmp.persist(&path)
                .map_err(|e| ExportError::io(format!("writing {}", path.display()), e.error))?;
            written.push(path);
            parts.push(info);
        }
        let list = PartsList {
            media_type: PARTS_MEDIA_TYPE.into(),
            name: self.base.clone(),
            size: self.total,
            sha256: self.whole.finish().hex().to_string(),
            parts,
        };
        let bytes = stella_types::canonical_json::to_canonical_vec(&list)
            .map_err(|e| ExportError::InvalidInput(format!("parts list: {e}")))?;
        let list_path = parts_list_path(&self.dir.join(&self.base));
        crate::write::write_atomic(&list_path, &bytes)?;
        written.push(list_path);
        Ok((list, written))
    }
}

impl Write for PartWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.current.as_ref().is_some_and(|c| c.3 >= self.max) {
            self.close_current()?;
        }
        if self.current.is_none() {
            let tmp = tempfile::Builder::new()
                .prefix(crate::write::TEMP_PREFIX)
                .tempfile_in(&self.dir)?;
            let f = tmp.reopen()?;
            self.current = Some((
                tmp,
                io::BufWriter::with_capacity(1 << 20, f),
                Hasher::new(DigestAlgorithm::Sha256),
                0,
            ));
        }
        let Some((_, w, h, size)) = self.current.as_mut() else {
            return Ok(0);
        };
        let room = usize::try_from(self.max - *size).unwrap_or(usize::MAX);
        let chunk = buf.get(..buf.len().min(room)).unwrap_or(buf);
        let n = w.write(chunk)?;
        let written = chunk.get(..n).unwrap_or(chunk);
        h.update(written);
        self.whole.update(written);
        *size += n as u64;
        self.total += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.current.as_mut() {
            Some((_, w, _, _)) => w.flush(),
            None => Ok(()),
        }
    }
}

/// Reads a parts list (capped at 16 MiB).
pub fn read_parts_list(path: &Path) -> Result<PartsList, ExportError> {
    let bytes = crate::read::read_file_capped(path, 16 * 1024 * 1024)?;
    let list: PartsList = serde_json::from_slice(&bytes).map_err(|e| {
        ExportError::unusable(
            codes::NOT_AN_EXPORT,
            format!("{} is not a parts list: {e}", path.display()),
        )
    })?;
    if list.media_type != PARTS_MEDIA_TYPE || list.parts.is_empty() {
        return Err(ExportError::unusable(
            codes::NOT_AN_EXPORT,
            format!("{} is not a Stella export parts list", path.display()),
        ));
    }
    for p in &list.parts {
        if p.name.contains('/') || p.name.contains('\\') || p.name.starts_with('.') {
            return Err(ExportError::unusable(
                codes::NOT_AN_EXPORT,
                format!(
                    "parts list names {:?}, which is not a plain file name",
                    p.name
                ),
            ));
        }
    }
    Ok(list)
}

fn hash_file(path: &Path) -> io::Result<(u64, String)> {
    let mut f = File::open(path)?;
    let mut h = Hasher::new(DigestAlgorithm::Sha256);
    let mut buf = vec![0u8; 1 << 20];
    let mut n_total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(buf.get(..n).unwrap_or(&[]));
        n_total += n as u64;
    }
    Ok((n_total, h.finish().hex().to_string()))
}

/// Checks every part against the list (all of them, naming each problem):
/// a missing part is unusable input; a truncated, changed or swapped part
/// is a verification failure. Returns the part paths in order.
pub fn check_parts(list_path: &Path, list: &PartsList) -> Result<Vec<PathBuf>, ExportError> {
    let dir = list_path.parent().unwrap_or(Path::new("."));
    let count = list.parts.len();
    let mut paths = Vec::new();
    let mut missing = Vec::new();
    let mut bad = Vec::new();
    for (i, p) in list.parts.iter().enumerate() {
        let path = dir.join(&p.name);
        paths.push(path.clone());
        let (size, hex) = match hash_file(&path) {
            Ok(x) => x,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                missing.push(format!("part {} of {count} ({}) is missing", i + 1, p.name));
                continue;
            }
            Err(e) => return Err(ExportError::io(format!("reading {}", path.display()), e)),
        };
        if hex == p.sha256 && size == p.size {
            continue;
        }
        let other = list
            .parts
            .iter()
            .position(|o| o.sha256 == hex && o.size == size);
        bad.push(match other {
            Some(j) => format!(
                "part {} of {count} ({}) holds the content of part {} ({}): parts swapped or renamed",
                i + 1,
                p.name,
                j + 1,
                list.parts.get(j).map(|o| o.name.as_str()).unwrap_or("?")
            ),
            None if size < p.size => format!(
                "part {} of {count} ({}) is truncated: {size} of {} bytes",
                i + 1,
                p.name,
                p.size
            ),
            None => format!(
                "part {} of {count} ({}) does not match the parts list (sha256 {hex})",
                i + 1,
                p.name
            ),
        });
    }
    if !missing.is_empty() {
        missing.extend(bad);
        return Err(ExportError::unusable(
            codes::MISSING_PART,
            missing.join("; "),
        ));
    }
    if !bad.is_empty() {
        return Err(ExportError::failed(codes::PART_MISMATCH, bad.join("; ")));
    }
    Ok(paths)
}

/// Reads the parts one after the other as one stream.
pub struct PartsReader {
    paths: std::vec::IntoIter<PathBuf>,
    current: Option<io::BufReader<File>>,
}

impl PartsReader {
    pub fn new(paths: Vec<PathBuf>) -> Self {
        PartsReader {
            paths: paths.into_iter(),
            current: None,
        }
    }
}

impl Read for PartsReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.current.is_none() {
                match self.paths.next() {
                    Some(p) => {
                        self.current = Some(io::BufReader::with_capacity(1 << 20, File::open(p)?))
                    }
                    None => return Ok(0),
                }
            }
            let Some(r) = self.current.as_mut() else {
                return Ok(0);
            };
            let n = r.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            self.current = None;
        }
    }
}
