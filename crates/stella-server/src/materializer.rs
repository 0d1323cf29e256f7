//! Scoped scratch copies of staged provider artifacts (seed 002
//! `VexProviderArtifactMaterializer`), for jobs whose tools need files (a
//! cosign key, a TUF root).
//!
//! A [`Session`] owns `<tmp>/stella-excititor-artifacts/<uuid>/` (mode
//! 0700, created fresh, never reused) and writes `<artifactId>.bin` files
//! (0600) into it with exclusive creation, so an existing file or a
//! planted symlink makes the write fail instead of being followed. The
//! directory is removed when the session ends: by [`Session::close`], or by
//! `Drop` after an error, a panic or a cancelled task. Both are
//! idempotent. [`Materializer::sweep`] removes session directories left by
//! a process that no longer runs (a crash).
//!
//! This module does not decide which artifacts a job needs.

use std::io::Write;
use std::path::{Path, PathBuf};

use uuid::Uuid;

use stella_store::{ArtifactRepository, StoreError, TenantContext};

const ROOT_NAME: &str = "stella-excititor-artifacts";
const OWNER_FILE: &str = ".owner";

#[derive(Debug, thiserror::Error)]
pub enum MaterializeError {
    #[error("scratch directory {path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("artifact {0} not found in the tenant")]
    NotFound(Uuid),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> MaterializeError {
    MaterializeError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Where sessions live: `<tmp>/stella-excititor-artifacts`.
#[derive(Clone, Debug)]
pub struct Materializer {
    root: PathBuf,
}

impl Materializer {
    /// Sessions under `tmp` (usually `std::env::temp_dir()`).
    pub fn new(tmp: &Path) -> Self {
        Self {
            root: tmp.join(ROOT_NAME),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the root (0700) if needed and refuses one that is a symlink
    /// or not a directory.
    fn ensure_root(&self) -> Result<(), MaterializeError> {
        match std::fs::symlink_metadata(&self.root) {
            Ok(meta) if meta.file_type().is_dir() => {}
            Ok(_) => return Err(io_err(&self.root, "exists and is not a directory")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                private_dir_builder()
                    .create(&self.root)
                    .or_else(|e| {
                        if e.kind() == std::io::ErrorKind::AlreadyExists {
                            Ok(())
                        } else {
                            Err(e)
                        }
                    })
                    .map_err(|e| io_err(&self.root, e))?;
            }
            Err(e) => return Err(io_err(&self.root, e)),
        }
        set_mode(&self.root, 0o700)
    }

    /// Starts a session in a fresh directory.
    pub fn open_session(&self) -> Result<Session, MaterializeError> {
        self.ensure_root()?;
        let dir = self.root.join(Uuid::new_v4().to_string());
        private_dir_builder()
            .create(&dir)
            .map_err(|e| io_err(&dir, e))?;
        let session = Session { dir, open: true };
        let owner = session.dir.join(OWNER_FILE);
        write_exclusive(&owner, std::process::id().to_string().as_bytes())?;
        Ok(session)
    }

    /// Removes session directories whose owning process no longer runs (or
    /// that have no owner record). Returns how many were removed.
    pub fn sweep(&self) -> Result<usize, MaterializeError> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io_err(&self.root, e)),
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            let is_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_dir());
            if !is_dir || Uuid::parse_str(&entry.file_name().to_string_lossy()).is_err() {
                continue;
            }
            let owner = std::fs::read_to_string(path.join(OWNER_FILE))
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok());
            if owner.is_some_and(process_runs) {
                continue;
            }
            if std::fs::remove_dir_all(&path).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(target_os = "linux")]
fn process_runs(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(not(target_os = "linux"))]
fn process_runs(_pid: u32) -> bool {
    // Without /proc, keep every directory that names an owner.
    true
}

fn private_dir_builder() -> std::fs::DirBuilder {
    #[allow(unused_mut)]
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
}

fn set_mode(path: &Path, mode: u32) -> Result<(), MaterializeError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| io_err(path, e))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Creates `path` (0600) exclusively: fails if anything, a symlink
/// included, is already there.
fn write_exclusive(path: &Path, bytes: &[u8]) -> Result<(), MaterializeError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| io_err(path, e))?;
    file.write_all(bytes).map_err(|e| io_err(path, e))?;
    file.sync_all().map_err(|e| io_err(path, e))
}

/// One job's scratch directory; removed when the session ends.
#[derive(Debug)]
pub struct Session {
    dir: PathBuf,
    open: bool,
}

impl Session {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes a payload as `<artifactId>.bin` (0600, exclusive).
    pub fn write(&self, artifact_id: Uuid, payload: &[u8]) -> Result<PathBuf, MaterializeError> {
        let path = self.dir.join(format!("{artifact_id}.bin"));
        write_exclusive(&path, payload)?;
        Ok(path)
    }

    /// Reads a staged artifact of `ctx`'s tenant and writes it.
    pub async fn materialize<R: ArtifactRepository + Sync>(
        &self,
        store: &R,
        ctx: &TenantContext,
        provider_id: &str,
        artifact_id: Uuid,
    ) -> Result<PathBuf, MaterializeError> {
        let payload = store
            .read_payload(ctx, provider_id, artifact_id)
            .await?
            .ok_or(MaterializeError::NotFound(artifact_id))?;
        self.write(artifact_id, &payload)
    }

    fn remove(&mut self) -> std::io::Result<()> {
        if !self.open {
            return Ok(());
        }
        self.open = false;
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Ends the session, removing its directory (off the async threads).
    pub async fn close(mut self) -> Result<(), MaterializeError> {
        let dir = self.dir.clone();
        self.open = false;
        let result = tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(&dir, e)),
            _ => Ok(()),
        })
        .await;
        match result {
            Ok(r) => r,
            Err(e) => Err(io_err(&self.dir, e)),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn files_under(p: &Path) -> usize {
        std::fs::read_dir(p).map(|d| d.count()).unwrap_or(0)
    }

    #[cfg(unix)]
    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn files_are_private_and_removed_on_close() {
        let tmp = tempfile::tempdir().unwrap();
        let m = Materializer::new(tmp.path());
        let s = m.open_session().unwrap();
        let id = Uuid::now_v7();
        let path = s.write(id, b"key material").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"key material");
        assert_eq!(
            path.file_name().unwrap().to_string_lossy(),
            format!("{id}.bin")
        );
        #[cfg(unix)]
        {
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(s.dir()), 0o700);
            assert_eq!(mode(m.root()), 0o700);
        }
        assert!(s.write(id, b"again").is_err(), "exclusive create");
        let dir = s.dir().to_path_buf();
        s.close().await.unwrap();
        assert!(!dir.exists());
        assert_eq!(files_under(m.root()), 0);
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_symlink_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let m = Materializer::new(tmp.path());
        let s = m.open_session().unwrap();
        let id = Uuid::now_v7();
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        std::os::unix::fs::symlink(&victim, s.dir().join(format!("{id}.bin"))).unwrap();
        assert!(s.write(id, b"evil").is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    }

    #[tokio::test]
    async fn removed_after_error_panic_and_cancellation() {
        let tmp = tempfile::tempdir().unwrap();
        let m = Materializer::new(tmp.path());
        // error path: the session is dropped with `?`
        let failing = || -> Result<(), MaterializeError> {
            let s = m.open_session()?;
            s.write(Uuid::nil(), b"x")?;
            s.write(Uuid::nil(), b"x")?; // fails: exists
            Ok(())
        };
        assert!(failing().is_err());
        // panic inside a task
        let m2 = m.clone();
        let joined = tokio::spawn(async move {
            let s = m2.open_session().unwrap();
            s.write(Uuid::nil(), b"x").unwrap();
            panic!("job failed");
        })
        .await;
        assert!(joined.is_err());
        // cancelled task
        let m3 = m.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let s = m3.open_session().unwrap();
            s.write(Uuid::nil(), b"x").unwrap();
            let _ = tx.send(());
            std::future::pending::<()>().await;
            drop(s);
        });
        rx.await.unwrap();
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        assert_eq!(files_under(m.root()), 0);
    }

    #[tokio::test]
    async fn a_thousand_sessions_leave_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let m = Materializer::new(tmp.path());
        for i in 0..1000u32 {
            let s = m.open_session().unwrap();
            s.write(Uuid::now_v7(), &i.to_be_bytes()).unwrap();
            if i % 2 == 0 {
                s.close().await.unwrap();
            } else {
                drop(s);
            }
        }
        assert_eq!(files_under(m.root()), 0);
    }

    #[test]
    fn sweep_removes_dirs_of_dead_owners_only() {
        let tmp = tempfile::tempdir().unwrap();
        let m = Materializer::new(tmp.path());
        let live = m.open_session().unwrap();
        let crashed = m.root().join(Uuid::new_v4().to_string());
        std::fs::create_dir(&crashed).unwrap();
        std::fs::write(crashed.join(OWNER_FILE), u32::MAX.to_string()).unwrap();
        std::fs::write(crashed.join("x.bin"), b"left over").unwrap();
        let orphan = m.root().join(Uuid::new_v4().to_string());
        std::fs::create_dir(&orphan).unwrap();
        assert_eq!(m.sweep().unwrap(), 2);
        assert!(live.dir().exists() && !crashed.exists() && !orphan.exists());
    }
}
