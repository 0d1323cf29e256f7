//! The one error type of stella-trust. `Refused` means the TUF repository
//! (or the trusted root it serves) failed a security check — the caller
//! should report it as a verification failure; every other variant is an
//! input, network or local-storage problem.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The mirror URL cannot be used.
    #[error("TUF mirror {url:?}: {reason}")]
    BadMirror { url: String, reason: String },

    /// No TUF root to start from: not given, not cached, not compiled in.
    #[error("no TUF root.json to start from for mirror {mirror}{hint}")]
    NoStartingRoot { mirror: String, hint: &'static str },

    /// The TUF root.json to start from is not TUF root metadata at all.
    #[error("the TUF root.json to start from is unusable: {reason}")]
    UnusableStartingRoot { reason: String },

    /// A `--tuf-root` / `--trusted-root` file the user named is unusable.
    #[error("{what} {path}: {reason}")]
    BadInputFile {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },

    /// The TUF repository's metadata or target failed a security check
    /// (signature, threshold, expiry, rollback, hash, length, version).
    #[error("TUF update from {mirror} refused: {reason}")]
    Refused { mirror: String, reason: String },

    /// The mirror could not be reached or answered badly.
    #[error("TUF update from {mirror} failed: {reason}")]
    Network { mirror: String, reason: String },

    /// The TUF repository does not list a `trusted_root.json` target.
    #[error("TUF repository {mirror} has no {target} target")]
    MissingTarget { mirror: String, target: String },

    /// Nothing cached yet, and no trusted root given.
    #[error("no sigstore trusted root was given and none is cached in {dir}")]
    NoCachedRoot { dir: PathBuf },

    /// The cache exists but is damaged (changed or truncated by hand).
    #[error("cached trust root in {dir} is damaged ({reason}); update it again")]
    DamagedCache { dir: PathBuf, reason: String },

    /// Reading or writing the cache failed.
    #[error("trust cache {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// No cache directory can be derived from the environment.
    #[error("cannot find a cache directory")]
    NoCacheDir,

    /// The whole update took longer than its deadline.
    #[error("TUF update from {mirror} did not finish within {seconds} s")]
    Timeout { mirror: String, seconds: u64 },
}

impl TrustError {
    /// True when a security check refused the metadata (exit code 1), as
    /// opposed to unusable input, network or storage trouble (exit code 2).
    pub fn is_refusal(&self) -> bool {
        matches!(self, TrustError::Refused { .. })
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrustError::Io {
            path: path.into(),
            source,
        }
    }
}
