//! The per-user TUF cache: where it lives, how a finished update is
//! published atomically, and how the trusted root is read back offline.
//!
//! Layout under `<cache>/stella/tuf/` (`$STELLA_CACHE_DIR/tuf/` when set):
//!
//! ```text
//! selected              URL of the mirror last updated (what verification uses)
//! <mirror-key>/current  name of the live generation, e.g. gen-AbC123
//! <mirror-key>/gen-*/   root.json timestamp.json snapshot.json targets.json
//!                       (TUF metadata, kept for rollback checks),
//!                       trusted_root.json, state.json
//! <mirror-key>/tmp-*/   an update in progress (removed when it fails)
//! ```
//!
//! An update works in a fresh `tmp-*` directory seeded with the live
//! generation's metadata, renames it to `gen-*` when complete, and then
//! replaces the `current` pointer by rename: readers see the old generation
//! or the new one, never a mix. This module does no TUF and no network.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use stella_sigstore::trust_root::MAX_TRUSTED_ROOT_BYTES;
use stella_types::digest::Digest;

use crate::error::TrustError;
use crate::mirror::Mirror;

const SELECTED_FILE: &str = "selected";
const CURRENT_FILE: &str = "current";
const STATE_FILE: &str = "state.json";
pub(crate) const TRUSTED_ROOT_FILE: &str = "trusted_root.json";
const MAX_STATE_BYTES: u64 = 64 * 1024;
/// Leftover `tmp-*` directories older than this are from a crashed update.
const STALE_STAGING_SECS: u64 = 24 * 60 * 60;

/// Version and expiry (Unix seconds) of one TUF role's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleInfo {
    pub version: u64,
    pub expires: i64,
}

/// The TUF metadata a cached trusted root was obtained through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TufRoles {
    pub root: RoleInfo,
    pub timestamp: RoleInfo,
    pub snapshot: RoleInfo,
    pub targets: RoleInfo,
}

impl TufRoles {
    /// When the first of the four roles expires.
    pub fn earliest_expiry(&self) -> i64 {
        [self.root, self.timestamp, self.snapshot, self.targets]
            .iter()
            .map(|r| r.expires)
            .min()
            .unwrap_or(self.root.expires)
    }
}

/// What an update recorded next to the trusted root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheState {
    pub mirror: String,
    /// When the update finished (Unix seconds, from the injected clock).
    pub updated_at: i64,
    pub tuf: TufRoles,
    /// `sha256:<hex>` of `trusted_root.json`, checked on every load.
    pub trusted_root_digest: String,
}

/// A cached trusted root, read back and checked against its state.
#[derive(Debug, Clone)]
pub struct CachedTrust {
    pub state: CacheState,
    pub trusted_root_json: Vec<u8>,
    /// The generation directory it was read from.
    pub dir: PathBuf,
}

impl CachedTrust {
    /// Seconds since the update, never negative.
    pub fn age_seconds(&self, now: i64) -> i64 {
        now.saturating_sub(self.state.updated_at).max(0)
    }

    /// When the TUF metadata behind this root expires (earliest role).
    pub fn metadata_expires(&self) -> i64 {
        self.state.tuf.earliest_expiry()
    }

    /// Whether that expiry has passed: time to run `stella trust update`.
    pub fn metadata_expired(&self, now: i64) -> bool {
        now >= self.metadata_expires()
    }
}

/// The cache directory tree for TUF mirrors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TufCache {
    dir: PathBuf,
}

impl TufCache {
    /// A cache rooted at `dir` (the `.../tuf` directory itself).
    pub fn at(dir: impl Into<PathBuf>) -> TufCache {
        TufCache { dir: dir.into() }
    }

    /// `$STELLA_CACHE_DIR/tuf`, else `$XDG_CACHE_HOME/stella/tuf`, else
    /// `$HOME/.cache/stella/tuf`.
    pub fn from_env() -> Result<TufCache, TrustError> {
        TufCache::locate(
            std::env::var_os("STELLA_CACHE_DIR"),
            std::env::var_os("XDG_CACHE_HOME"),
            std::env::var_os("HOME"),
        )
    }

    /// [`TufCache::from_env`] with the variables passed in. Empty or
    /// relative XDG values are ignored, as the XDG spec says.
    pub fn locate(
        stella_cache_dir: Option<OsString>,
        xdg_cache_home: Option<OsString>,
        home: Option<OsString>,
    ) -> Result<TufCache, TrustError> {
        let non_empty = |v: Option<OsString>| v.filter(|s| !s.is_empty()).map(PathBuf::from);
        if let Some(dir) = non_empty(stella_cache_dir) {
            return Ok(TufCache::at(dir.join("tuf")));
        }
        if let Some(xdg) = non_empty(xdg_cache_home).filter(|p| p.is_absolute()) {
            return Ok(TufCache::at(xdg.join("stella").join("tuf")));
        }
        match non_empty(home) {
            Some(h) => Ok(TufCache::at(h.join(".cache").join("stella").join("tuf"))),
            None => Err(TrustError::NoCacheDir),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn mirror_dir(&self, mirror: &Mirror) -> PathBuf {
        self.dir.join(mirror.cache_key())
    }

    /// The mirror the last successful update was from.
    pub fn selected_mirror(&self) -> Result<Option<Mirror>, TrustError> {
        let path = self.dir.join(SELECTED_FILE);
        let Some(text) = read_small_text(&path)? else {
            return Ok(None);
        };
        Mirror::parse(text.trim())
            .map(Some)
            .map_err(|e| TrustError::DamagedCache {
                dir: self.dir.clone(),
                reason: format!("{SELECTED_FILE}: {e}"),
            })
    }

    /// The cached trusted root of the selected mirror, if any.
    pub fn load_selected(&self) -> Result<Option<CachedTrust>, TrustError> {
        match self.selected_mirror()? {
            Some(m) => self.load(&m),
            None => Ok(None),
        }
    }

    /// The cached trusted root of `mirror`, if any, checked against the
    /// digest its update recorded.
    pub fn load(&self, mirror: &Mirror) -> Result<Option<CachedTrust>, TrustError> {
        // A concurrent update may delete the generation between reading the
        // pointer and reading the files: one retry sees the new pointer.
        match self.load_once(mirror) {
            Err(TrustError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                self.load_once(mirror)
            }
            other => other,
        }
    }

    fn load_once(&self, mirror: &Mirror) -> Result<Option<CachedTrust>, TrustError> {
        let Some(dir) = self.current_generation(mirror)? else {
            return Ok(None);
        };
        let damaged = |reason: String| TrustError::DamagedCache {
            dir: dir.clone(),
            reason,
        };
        let state_path = dir.join(STATE_FILE);
        let state_bytes = read_capped(&state_path, MAX_STATE_BYTES)?;
        let state: CacheState = serde_json::from_slice(&state_bytes)
            .map_err(|e| damaged(format!("{STATE_FILE}: {e}")))?;
        if state.mirror != mirror.as_str() {
            return Err(damaged(format!(
                "{STATE_FILE} names mirror {} instead of {}",
                state.mirror,
                mirror.as_str()
            )));
        }
        let root_path = dir.join(TRUSTED_ROOT_FILE);
        let json = read_capped(&root_path, MAX_TRUSTED_ROOT_BYTES as u64)?;
        let actual = Digest::sha256_of(&json).to_string();
        if actual != state.trusted_root_digest {
            return Err(damaged(format!(
                "{TRUSTED_ROOT_FILE} is {actual}, the update recorded {}",
                state.trusted_root_digest
            )));
        }
        Ok(Some(CachedTrust {
            state,
            trusted_root_json: json,
            dir,
        }))
    }

    /// The live generation directory of `mirror`, if one was published.
    pub(crate) fn current_generation(
        &self,
        mirror: &Mirror,
    ) -> Result<Option<PathBuf>, TrustError> {
        let mdir = self.mirror_dir(mirror);
        let Some(name) = read_small_text(&mdir.join(CURRENT_FILE))? else {
            return Ok(None);
        };
        let name = name.trim();
        let valid = name.starts_with("gen-")
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(TrustError::DamagedCache {
                dir: mdir,
                reason: format!("{CURRENT_FILE} holds {name:?}"),
            });
        }
        Ok(Some(mdir.join(name)))
    }

    /// Starts an update: a fresh staging directory holding a copy of the
    /// live generation's TUF metadata (so rollbacks are detected).
    pub(crate) fn begin(&self, mirror: &Mirror) -> Result<Staging, TrustError> {
        let mdir = self.mirror_dir(mirror);
        create_private_dir_all(&mdir)?;
        sweep_stale_staging(&mdir);
        let dir = tempfile::Builder::new()
            .prefix("tmp-")
            .tempdir_in(&mdir)
            .map_err(|e| TrustError::io(&mdir, e))?;
        let previous = self.current_generation(mirror)?;
        if let Some(prev) = &previous {
            copy_metadata(prev, dir.path())?;
        }
        Ok(Staging { dir })
    }

    /// Publishes a completed staging directory as the live generation of
    /// `mirror`, selects the mirror, and removes the replaced generation.
    pub(crate) fn commit(
        &self,
        mirror: &Mirror,
        staging: Staging,
        state: CacheState,
        trusted_root_json: &[u8],
    ) -> Result<CachedTrust, TrustError> {
        let mdir = self.mirror_dir(mirror);
        let stage = staging.dir.path().to_path_buf();
        write_file_synced(&stage.join(TRUSTED_ROOT_FILE), trusted_root_json)?;
        let state_json = serde_json::to_vec_pretty(&state).map_err(|e| {
            TrustError::io(
                &stage,
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })?;
        write_file_synced(&stage.join(STATE_FILE), &state_json)?;
        sync_dir(&stage);

        let suffix = stage
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("tmp-"))
            .unwrap_or("x")
            .to_string();
        let gen_name = format!("gen-{suffix}");
        let gen_dir = mdir.join(&gen_name);
        let kept = staging.dir.keep();
        if let Err(e) = std::fs::rename(&kept, &gen_dir) {
            let _ = std::fs::remove_dir_all(&kept);
            return Err(TrustError::io(&gen_dir, e));
        }
        // The generation being replaced is whatever is live now: another
        // update may have published since this one began.
        let replaced = self.current_generation(mirror).ok().flatten();
        if let Err(e) = replace_file_atomically(&mdir, CURRENT_FILE, gen_name.as_bytes()) {
            let _ = std::fs::remove_dir_all(&gen_dir);
            return Err(e);
        }
        if let Some(old) = replaced.filter(|p| *p != gen_dir) {
            let _ = std::fs::remove_dir_all(old);
        }
        replace_file_atomically(&self.dir, SELECTED_FILE, mirror.as_str().as_bytes())?;
        Ok(CachedTrust {
            state,
            trusted_root_json: trusted_root_json.to_vec(),
            dir: gen_dir,
        })
    }
}

/// An update in progress. Dropping it removes the staging directory, so a
/// failed update leaves the cache exactly as it was.
pub(crate) struct Staging {
    dir: tempfile::TempDir,
}

impl Staging {
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Creates the cache directories readable and writable by the user only
/// (on Unix): nobody else should be able to swap the trusted root.
fn create_private_dir_all(dir: &Path) -> Result<(), TrustError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| TrustError::io(dir, e))
}

fn read_small_text(path: &Path) -> Result<Option<String>, TrustError> {
    match read_capped(path, 4096) {
        Ok(b) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
        Err(TrustError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, TrustError> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| TrustError::io(path, e))?;
    let mut buf = Vec::new();
    file.take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(|e| TrustError::io(path, e))?;
    if buf.len() as u64 > cap {
        return Err(TrustError::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("larger than the {cap}-byte limit"),
            ),
        ));
    }
    Ok(buf)
}

/// Copies the TUF metadata files (not the trusted root or state) of the
/// previous generation into the staging directory.
fn copy_metadata(from: &Path, to: &Path) -> Result<(), TrustError> {
    let entries = std::fs::read_dir(from).map_err(|e| TrustError::io(from, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| TrustError::io(from, e))?;
        let name = entry.file_name();
        let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
        if !is_file || name == TRUSTED_ROOT_FILE || name == STATE_FILE {
            continue;
        }
        let dest = to.join(&name);
        std::fs::copy(entry.path(), &dest).map_err(|e| TrustError::io(&dest, e))?;
    }
    Ok(())
}

fn write_file_synced(path: &Path, bytes: &[u8]) -> Result<(), TrustError> {
    let mut f = std::fs::File::create(path).map_err(|e| TrustError::io(path, e))?;
    f.write_all(bytes).map_err(|e| TrustError::io(path, e))?;
    f.sync_all().map_err(|e| TrustError::io(path, e))
}

/// Writes `dir/name` through a temp file and a rename.
fn replace_file_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), TrustError> {
    let target = dir.join(name);
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| TrustError::io(dir, e))?;
    tmp.write_all(bytes)
        .map_err(|e| TrustError::io(&target, e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| TrustError::io(&target, e))?;
    tmp.persist(&target)
        .map_err(|e| TrustError::io(&target, e.error))?;
    sync_dir(dir);
    Ok(())
}

/// Best effort: make a rename durable (not supported on every platform).
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Removes `tmp-*` directories left by an update that crashed long ago.
/// Recent ones may belong to an update running right now and are kept.
fn sweep_stale_staging(mirror_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(mirror_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let is_staging = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with("tmp-"));
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > STALE_STAGING_SECS);
        if is_staging && old {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn locate_prefers_override_then_xdg_then_home() {
        let c = TufCache::locate(Some("/o".into()), Some("/x".into()), Some("/h".into())).unwrap();
        assert_eq!(c.dir(), Path::new("/o/tuf"));
        let c = TufCache::locate(None, Some("/x".into()), Some("/h".into())).unwrap();
        assert_eq!(c.dir(), Path::new("/x/stella/tuf"));
        let c = TufCache::locate(Some("".into()), Some("rel".into()), Some("/h".into())).unwrap();
        assert_eq!(c.dir(), Path::new("/h/.cache/stella/tuf"));
        assert!(matches!(
            TufCache::locate(None, None, None),
            Err(TrustError::NoCacheDir)
        ));
    }

    #[test]
    fn empty_cache_loads_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = TufCache::at(tmp.path().join("tuf"));
        assert!(cache.load_selected().unwrap().is_none());
        assert!(cache.load(&Mirror::public_good()).unwrap().is_none());
    }

    #[test]
    fn a_bad_current_pointer_is_reported_as_damage() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = TufCache::at(tmp.path());
        let m = Mirror::public_good();
        let mdir = cache.mirror_dir(&m);
        std::fs::create_dir_all(&mdir).unwrap();
        std::fs::write(mdir.join(CURRENT_FILE), "../../etc").unwrap();
        let e = cache.load(&m).unwrap_err();
        assert!(matches!(e, TrustError::DamagedCache { .. }), "{e}");
    }
}
