//! Sigstore trust roots without hand-made files.
//!
//! - [`update`] refreshes a mirror's `trusted_root.json` through TUF (the
//!   `tough` client over Stella's reqwest stack) into a per-user cache,
//!   atomically: a failed or refused update leaves the cache as it was.
//! - [`TufCache`] finds the cache and loads a cached root back offline,
//!   checked against the digest its update recorded.
//! - [`choose_trusted_root`] is what verification commands call: an explicit
//!   `--trusted-root` file wins, otherwise the cached root of the mirror last
//!   updated, with its age and the expiry of the TUF metadata behind it.
//! - [`TrustedRootSummary`] lists what a trusted root trusts, for display.
//!
//! This crate prints nothing and reads no clock of its own: callers pass
//! `now` (Unix seconds). It does not verify sigstore bundles
//! (stella-sigstore does) and reads no environment except in
//! [`TufCache::from_env`].

mod cache;
mod embedded;
mod error;
mod mirror;
mod summary;
mod transport;
mod update;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use cache::{CacheState, CachedTrust, RoleInfo, TufCache, TufRoles};
pub use embedded::public_good_root as embedded_public_good_root;
pub use error::TrustError;
pub use mirror::{Mirror, PUBLIC_GOOD_MIRROR, TRUSTED_ROOT_TARGET};
pub use summary::{AuthoritySummary, LogSummary, TrustedRootSummary, Window, rfc3339};
pub use transport::Timeouts;
pub use update::{StartingRoot, UpdateOutcome, UpdateRequest, update};

/// Where the trusted root a verification uses came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "source", rename_all = "camelCase")]
pub enum TrustedRootOrigin {
    /// `--trusted-root <file>`.
    #[serde(rename_all = "camelCase")]
    File { path: PathBuf },
    /// The cache `stella trust update` filled.
    #[serde(rename_all = "camelCase")]
    TufCache {
        mirror: String,
        /// Unix seconds.
        updated_at: i64,
        age_seconds: i64,
        /// When the TUF metadata behind it expires (earliest role).
        metadata_expires: i64,
        /// That time has passed: the root still verifies, but should be
        /// refreshed with `stella trust update`.
        metadata_expired: bool,
    },
}

impl TrustedRootOrigin {
    /// One line for text output, e.g. "trusted root: TUF cache of
    /// https://…, updated 3 h ago".
    pub fn describe(&self) -> String {
        match self {
            TrustedRootOrigin::File { path } => format!("trusted root: {}", path.display()),
            TrustedRootOrigin::TufCache {
                mirror,
                age_seconds,
                metadata_expired,
                ..
            } => {
                let mut s = format!(
                    "trusted root: TUF cache of {mirror}, updated {} ago",
                    human_duration(*age_seconds)
                );
                if *metadata_expired {
                    s.push_str(" (its TUF metadata has expired: run `stella trust update`)");
                }
                s
            }
        }
    }
}

/// The trusted root JSON a verification should use, and where it is from.
#[derive(Debug, Clone)]
pub struct ChosenTrustedRoot {
    pub json: Vec<u8>,
    pub origin: TrustedRootOrigin,
}

/// The trusted root for a verification: the `explicit` file when given
/// (it overrides everything), else the cached root of the mirror last
/// updated, found through [`TufCache::from_env`]. Offline: never touches
/// the network. Errors with [`TrustError::NoCachedRoot`] when neither
/// exists. This is the one call verification commands make.
pub fn choose_trusted_root(
    explicit: Option<&Path>,
    now: i64,
) -> Result<ChosenTrustedRoot, TrustError> {
    if let Some(path) = explicit {
        let json = read_trusted_root_file(path)?;
        return Ok(ChosenTrustedRoot {
            json,
            origin: TrustedRootOrigin::File {
                path: path.to_path_buf(),
            },
        });
    }
    cached_trusted_root(&TufCache::from_env()?, now)
}

/// The cached trusted root of the mirror last updated, offline.
pub fn cached_trusted_root(cache: &TufCache, now: i64) -> Result<ChosenTrustedRoot, TrustError> {
    let cached = cache
        .load_selected()?
        .ok_or_else(|| TrustError::NoCachedRoot {
            dir: cache.dir().to_path_buf(),
        })?;
    Ok(ChosenTrustedRoot {
        origin: TrustedRootOrigin::TufCache {
            mirror: cached.state.mirror.clone(),
            updated_at: cached.state.updated_at,
            age_seconds: cached.age_seconds(now),
            metadata_expires: cached.metadata_expires(),
            metadata_expired: cached.metadata_expired(now),
        },
        json: cached.trusted_root_json,
    })
}

fn read_trusted_root_file(path: &Path) -> Result<Vec<u8>, TrustError> {
    use std::io::Read as _;
    let cap = stella_sigstore::trust_root::MAX_TRUSTED_ROOT_BYTES as u64;
    let bad = |reason: String| TrustError::BadInputFile {
        what: "trusted root",
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let mut buf = Vec::new();
    file.take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(|e| bad(e.to_string()))?;
    if buf.len() as u64 > cap {
        return Err(bad(format!("larger than the {cap}-byte limit")));
    }
    Ok(buf)
}

/// "42 s", "5 min", "3 h", "2 d".
pub fn human_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86400 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn explicit_file_wins_over_an_empty_cache() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("root.json");
        std::fs::write(&file, b"{}").unwrap();
        let chosen = choose_trusted_root(Some(&file), 0).unwrap();
        assert_eq!(chosen.json, b"{}");
        assert_eq!(chosen.origin, TrustedRootOrigin::File { path: file });
    }

    #[test]
    fn no_cache_and_no_file_says_what_to_do() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = TufCache::at(tmp.path().join("tuf"));
        let e = cached_trusted_root(&cache, 0).unwrap_err();
        assert!(matches!(e, TrustError::NoCachedRoot { .. }));
        assert!(e.to_string().contains("none is cached"), "{e}");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(-5), "0 s");
        assert_eq!(human_duration(59), "59 s");
        assert_eq!(human_duration(600), "10 min");
        assert_eq!(human_duration(7200), "2 h");
        assert_eq!(human_duration(3 * 86400 + 5), "3 d");
    }
}
