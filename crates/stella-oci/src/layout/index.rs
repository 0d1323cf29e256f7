//! `index.json` I/O for the layout: capped reads (the index cap,
//! `limits::MAX_LAYOUT_INDEX_BYTES`, not the manifest cap), serialization
//! refused over that same cap (what we write we can read back), atomic
//! writes (temp file in the same directory, flushed, renamed) and the
//! exclusive lock that serialises read-modify-write updates across threads
//! and processes. The lock file is never opened through a symlink.
//!
//! Everything here blocks (file I/O, `flock`): callers run it on the
//! blocking pool.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use stella_types::ImageIndex;
use stella_types::limits::MAX_LAYOUT_INDEX_BYTES;

use crate::OciError;

/// Name of the lock file next to `index.json`.
pub const LOCK_FILE: &str = "index.json.lock";

/// An exclusive lock on a layout's `index.json` (released on drop).
#[derive(Debug)]
pub struct IndexLock {
    file: File,
}

impl IndexLock {
    /// Blocks until this process holds the lock for the layout at `root`.
    /// Refuses a lock file that is a symlink (or anything but a regular
    /// file) instead of creating or locking a file elsewhere.
    pub fn acquire(root: &Path) -> Result<Self, OciError> {
        let path = root.join(LOCK_FILE);
        let file = super::fs::open_or_create_regular(&path)
            .map_err(|e| OciError::io(format!("cannot open lock file {}", path.display()), e))?;
        file.lock()
            .map_err(|e| OciError::io(format!("cannot lock {}", path.display()), e))?;
        Ok(IndexLock { file })
    }
}

impl Drop for IndexLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// Reads and parses `index.json`, capped at `MAX_LAYOUT_INDEX_BYTES`.
pub fn read_index(path: &Path) -> Result<ImageIndex, OciError> {
    let bytes = super::fs::read_capped(path, MAX_LAYOUT_INDEX_BYTES)?;
    // index.json may omit mediaType.
    crate::referrers::parse_image_index(&bytes, &path.display().to_string())
}

/// Serializes `index.json`, refusing an index Stella could not read back.
pub fn encode_index(idx: &ImageIndex, path: &Path) -> Result<Vec<u8>, OciError> {
    let bytes = idx.to_json_bytes();
    crate::referrers::check_index_fits(
        &bytes,
        MAX_LAYOUT_INDEX_BYTES,
        &path.display().to_string(),
    )?;
    Ok(bytes)
}

/// Writes `bytes` to `path` atomically: temp file in the same directory,
/// flushed to disk, renamed over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OciError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = temp_builder()
        .tempfile_in(dir)
        .map_err(|e| OciError::io(format!("cannot create temp file in {}", dir.display()), e))?;
    tmp.write_all(bytes)
        .map_err(|e| OciError::io(format!("cannot write {}", path.display()), e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| OciError::io(format!("cannot write {}", path.display()), e))?;
    tmp.persist(path)
        .map_err(|e| OciError::io(format!("cannot replace {}", path.display()), e.error))?;
    Ok(())
}

/// A temp-file builder for layout files: hidden `.tmp-` prefix and, on
/// Unix, mode 0644 like files written by other layout tools.
pub fn temp_builder<'a, 'b>() -> tempfile::Builder<'a, 'b> {
    let mut b = tempfile::Builder::new();
    b.prefix(".tmp-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(std::fs::Permissions::from_mode(0o644));
    }
    b
}
