//! Opening a layout's files so that a hostile layout cannot turn them
//! against the reader: a symlink is never followed (a lock file or blob
//! pointing elsewhere), only regular files are read (a FIFO would block
//! the reader forever, a device could do anything), and the `blobs`
//! directories must be real directories (a symlinked `blobs/sha256` would
//! send writes elsewhere).
//!
//! On Unix files are opened with `O_NOFOLLOW | O_NONBLOCK` after an
//! `lstat`, and checked again with `fstat` on the open handle, so a file
//! swapped between the two checks is still refused. Elsewhere the `lstat`
//! check alone applies.
//!
//! All functions here block: call them from blocking code (see
//! `crate::blocking`).

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::Path;

use crate::OciError;

/// Why `meta` (from `lstat`) is not a regular file, if it is not one.
fn not_regular(meta: &std::fs::Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    if t.is_file() {
        None
    } else if t.is_symlink() {
        Some("a symbolic link")
    } else if t.is_dir() {
        Some("a directory")
    } else {
        Some("not a regular file (a FIFO, socket or device)")
    }
}

fn refused(path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{} is {why}; a layout's files must be regular files (refusing to follow or read it)",
            path.display()
        ),
    )
}

/// `lstat`: `Ok(None)` when `path` does not exist.
pub(super) fn lstat(path: &Path) -> io::Result<Option<std::fs::Metadata>> {
    match std::fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Is there a regular file (not a symlink) at `path`? A symlink, FIFO or
/// directory there is an error, not "absent".
pub(super) fn regular_file_exists(path: &Path) -> io::Result<Option<u64>> {
    match lstat(path)? {
        None => Ok(None),
        Some(m) => match not_regular(&m) {
            None => Ok(Some(m.len())),
            Some(why) => Err(refused(path, why)),
        },
    }
}

/// Options that never follow a final symlink and never block on open.
fn no_follow(opts: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    opts
}

/// Opens with `opts` (plus no-follow, non-blocking), then checks the open
/// handle is a regular file.
fn open_checked(path: &Path, opts: &mut OpenOptions) -> io::Result<File> {
    if let Some(m) = lstat(path)?
        && let Some(why) = not_regular(&m)
    {
        return Err(refused(path, why));
    }
    let file = no_follow(opts).open(path).map_err(|e| {
        #[cfg(unix)]
        if e.raw_os_error() == Some(libc::ELOOP) {
            return refused(path, "a symbolic link");
        }
        e
    })?;
    let meta = file.metadata()?;
    if let Some(why) = not_regular(&meta) {
        return Err(refused(path, why));
    }
    Ok(file)
}

/// Opens an existing regular file for reading (never a symlink or FIFO).
pub(super) fn open_regular(path: &Path) -> io::Result<File> {
    open_checked(path, OpenOptions::new().read(true))
}

/// Opens (creating if missing, mode 0644 on Unix) a regular file for
/// reading and writing, never through a symlink: the lock file.
pub(super) fn open_or_create_regular(path: &Path) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.create(true).truncate(false).read(true).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o644);
    }
    open_checked(path, &mut opts)
}

/// Reads a whole regular file, refusing more than `cap` bytes.
pub(super) fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, OciError> {
    let f = open_regular(path)
        .map_err(|e| OciError::io(format!("cannot read {}", path.display()), e))?;
    let mut buf = Vec::new();
    f.take(cap.saturating_add(1))
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

/// Checks that `path`, if it exists, is a real directory (not a symlink).
pub(super) fn check_dir(path: &Path) -> Result<(), OciError> {
    match lstat(path) {
        Ok(None) => Ok(()),
        Ok(Some(m)) if m.file_type().is_dir() => Ok(()),
        Ok(Some(m)) => {
            let why = if m.file_type().is_symlink() {
                "a symbolic link"
            } else {
                "not a directory"
            };
            Err(OciError::io(
                format!("unusable OCI layout directory {}", path.display()),
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{} is {why}; a layout's blob directories must be real directories",
                        path.display()
                    ),
                ),
            ))
        }
        Err(e) => Err(OciError::io(
            format!("cannot inspect {}", path.display()),
            e,
        )),
    }
}

/// Creates `path` (one level) unless it exists, then checks it is a real
/// directory. Unlike `create_dir_all`, never creates anything through a
/// symlink.
pub(super) fn ensure_dir(path: &Path) -> Result<(), OciError> {
    match std::fs::create_dir(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(OciError::io(format!("cannot create {}", path.display()), e)),
    }
    check_dir(path)
}

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn symlinks_fifos_and_dirs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"secret").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = open_regular(&link).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(open_or_create_regular(&link).is_err());
        // A dangling symlink: nothing is created at its target.
        let dangling = dir.path().join("dangling");
        let where_to = dir.path().join("created-through-link");
        std::os::unix::fs::symlink(&where_to, &dangling).unwrap();
        assert!(open_or_create_regular(&dangling).is_err());
        assert!(!where_to.exists());
        let fifo = dir.path().join("fifo");
        let st = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(st.success());
        let e = read_capped(&fifo, 10).unwrap_err();
        assert!(e.to_string().contains("FIFO"), "{e}");
        assert!(open_regular(dir.path()).is_err());
        assert_eq!(read_capped(&target, 10).unwrap(), b"secret");
        assert!(read_capped(&target, 3).is_err());
        let linked_dir = dir.path().join("ld");
        std::os::unix::fs::symlink(dir.path(), &linked_dir).unwrap();
        assert!(check_dir(&linked_dir).is_err());
        assert!(ensure_dir(&linked_dir).is_err());
        ensure_dir(&dir.path().join("real")).unwrap();
        check_dir(&dir.path().join("missing")).unwrap();
    }
}
