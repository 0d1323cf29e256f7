//! What a provider keeps of its TUF client between runs: the metadata of
//! the last successful refresh (root, timestamp, snapshot, targets and the
//! trusted root they certified), stored per tenant and provider
//! (`vex_provider_state`, migration 0008), so the next run starts from the
//! last trusted root and the TUF client's rollback checks compare against
//! what was seen before: a mirror that serves older metadata than an
//! earlier run accepted is refused.
//!
//! The saved state belongs to one `tufRoot` artifact and one `tufMirror`;
//! when either changes the run starts again from the uploaded root.
//!
//! Not here: TUF itself (`stella_trust`), or where the run keeps the cache
//! (the materializer session's directory).

use std::collections::BTreeMap;
use std::path::{Component, Path};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The `vex_provider_state` name of the TUF state.
pub const STATE_NAME: &str = "tuf";
/// Largest file kept (TUF metadata and a trusted root are far smaller).
const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;
/// Most files kept.
const MAX_FILES: usize = 64;

/// The files of a TUF cache directory after a successful refresh.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TufState {
    /// The `tufRoot` artifact the chain started from.
    pub tuf_root: String,
    pub mirror: String,
    /// Path relative to the cache directory → base64 of the bytes.
    pub files: BTreeMap<String, String>,
}

impl TufState {
    /// Whether this state continues the chain of `tuf_root` at `mirror`.
    pub fn continues(&self, tuf_root: &str, mirror: &str) -> bool {
        self.tuf_root == tuf_root && self.mirror == mirror
    }
}

/// Reads every file under `dir` (leaving out unfinished `tmp-*` updates).
pub fn capture(dir: &Path) -> std::io::Result<BTreeMap<String, String>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let name = entry.file_name();
            if name.to_string_lossy().starts_with("tmp-") {
                continue;
            }
            let kind = entry.file_type()?;
            let path = entry.path();
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                if entry.metadata()?.len() > MAX_FILE_BYTES || files.len() >= MAX_FILES {
                    return Err(std::io::Error::other("TUF cache larger than expected"));
                }
                let rel = path
                    .strip_prefix(dir)
                    .map_err(std::io::Error::other)?
                    .to_string_lossy()
                    .into_owned();
                let bytes = std::fs::read(&path)?;
                files.insert(rel, base64::engine::general_purpose::STANDARD.encode(bytes));
            }
        }
    }
    Ok(files)
}

/// Writes `files` back under `dir`; a path that would leave `dir` or
/// unreadable base64 is an error (nothing is trusted from it).
pub fn restore(dir: &Path, files: &BTreeMap<String, String>) -> std::io::Result<()> {
    for (rel, b64) in files {
        let rel_path = Path::new(rel);
        if !rel_path
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(std::io::Error::other(format!("bad stored path {rel:?}")));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(std::io::Error::other)?;
        let path = dir.join(rel_path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, bytes)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_round_trips_and_stored_paths_stay_inside() {
        let a = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(a.path().join("m/gen-1")).unwrap();
        std::fs::create_dir_all(a.path().join("m/tmp-x")).unwrap();
        std::fs::write(a.path().join("m/gen-1/root.json"), b"{}").unwrap();
        std::fs::write(a.path().join("m/current"), b"gen-1").unwrap();
        std::fs::write(a.path().join("m/tmp-x/half"), b"?").unwrap();
        let files = capture(a.path()).unwrap();
        assert_eq!(
            files.keys().collect::<Vec<_>>(),
            ["m/current", "m/gen-1/root.json"]
        );
        let b = tempfile::tempdir().unwrap();
        restore(b.path(), &files).unwrap();
        assert_eq!(
            std::fs::read(b.path().join("m/gen-1/root.json")).unwrap(),
            b"{}"
        );
        let mut evil = BTreeMap::new();
        evil.insert("../x".to_string(), String::new());
        assert!(restore(b.path(), &evil).is_err());
    }
}
