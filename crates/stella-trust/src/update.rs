//! `trust update`: one TUF refresh of a mirror's `trusted_root.json` into
//! the cache. The TUF client work (root rotation, signature thresholds,
//! expiry, rollback and freeze checks, target hashes and lengths) is
//! tough's; this module picks the starting root, runs tough inside a staging
//! directory seeded with the previous metadata, checks that the target is a
//! usable sigstore trusted root and publishes the result atomically.
//!
//! Expiry checks use the system clock (tough reads it, and refuses a clock
//! that went backwards since the last update); the injected `now` is only
//! what the cache records as the update time.

use stella_sigstore::TrustedRoot;
use stella_sigstore::trust_root::MAX_TRUSTED_ROOT_BYTES;
use stella_types::digest::Digest;
use tough::{ExpirationEnforcement, IntoVec as _, RepositoryLoader, TargetName};

use crate::cache::{CacheState, CachedTrust, RoleInfo, TufCache, TufRoles};
use crate::embedded;
use crate::error::TrustError;
use crate::mirror::{Mirror, TRUSTED_ROOT_TARGET};
use crate::transport::{MirrorTransport, Timeouts};

/// What to update and how.
#[derive(Debug, Clone)]
pub struct UpdateRequest {
    pub mirror: Mirror,
    /// The TUF `root.json` to start from (`--tuf-root`). `None`: the root
    /// cached by the last update of this mirror, else the embedded
    /// public-good root (public-good mirror only).
    pub tuf_root: Option<Vec<u8>>,
    /// Unix seconds recorded as the update time.
    pub now: i64,
    pub timeouts: Timeouts,
    /// Extra PEM CA certificates for the mirror's TLS (`--ca-file`).
    pub extra_ca_pem: Option<Vec<u8>>,
}

/// Where the starting TUF root came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartingRoot {
    Given,
    Cached,
    Embedded,
}

impl StartingRoot {
    pub fn as_str(self) -> &'static str {
        match self {
            StartingRoot::Given => "given",
            StartingRoot::Cached => "cached",
            StartingRoot::Embedded => "embedded",
        }
    }
}

/// A finished update.
#[derive(Debug, Clone)]
pub struct UpdateOutcome {
    pub cached: CachedTrust,
    pub started_from: StartingRoot,
}

/// Refreshes `request.mirror`'s trusted root through TUF into `cache`.
/// On any error the cache is left exactly as it was.
pub async fn update(
    cache: &TufCache,
    request: &UpdateRequest,
) -> Result<UpdateOutcome, TrustError> {
    let total = request.timeouts.total;
    match tokio::time::timeout(total, update_within_deadline(cache, request)).await {
        Ok(result) => result,
        Err(_) => Err(TrustError::Timeout {
            mirror: request.mirror.as_str().to_string(),
            seconds: total.as_secs(),
        }),
    }
}

async fn update_within_deadline(
    cache: &TufCache,
    request: &UpdateRequest,
) -> Result<UpdateOutcome, TrustError> {
    let mirror = &request.mirror;
    let (root, started_from) = starting_root(cache, request)?;
    let staging = cache.begin(mirror)?;
    let transport = MirrorTransport::new(&request.timeouts, request.extra_ca_pem.as_deref())?;
    let repo = RepositoryLoader::new(&root, mirror.metadata_url(), mirror.targets_url()?)
        .transport(transport)
        .datastore(staging.path())
        .expiration_enforcement(ExpirationEnforcement::Safe)
        .load()
        .await
        .map_err(|e| classify(mirror, &e))?;

    let json = fetch_trusted_root(&repo, mirror).await?;
    check_trusted_root(mirror, &json)?;
    let state = CacheState {
        mirror: mirror.as_str().to_string(),
        updated_at: request.now,
        tuf: roles_of(&repo),
        trusted_root_digest: Digest::sha256_of(&json).to_string(),
    };
    let cached = cache.commit(mirror, staging, state, &json)?;
    Ok(UpdateOutcome {
        cached,
        started_from,
    })
}

fn starting_root(
    cache: &TufCache,
    request: &UpdateRequest,
) -> Result<(Vec<u8>, StartingRoot), TrustError> {
    if let Some(given) = &request.tuf_root {
        return Ok((given.clone(), StartingRoot::Given));
    }
    if let Some(generation) = cache.current_generation(&request.mirror)? {
        let path = generation.join("root.json");
        match std::fs::read(&path) {
            Ok(bytes) => return Ok((bytes, StartingRoot::Cached)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(TrustError::io(path, e)),
        }
    }
    if let Some(bytes) = embedded::public_good_root().filter(|_| request.mirror.is_public_good()) {
        return Ok((bytes.to_vec(), StartingRoot::Embedded));
    }
    Err(TrustError::NoStartingRoot {
        mirror: request.mirror.as_str().to_string(),
        hint: if request.mirror.is_public_good() {
            " (this build of stella does not embed the Sigstore public-good TUF root; \
             obtain its root.json out of band, or build with the \
             embedded-public-good-root feature)"
        } else {
            " (a mirror other than the Sigstore public-good instance needs its own root.json \
             the first time; later updates start from the cached one)"
        },
    })
}

async fn fetch_trusted_root(
    repo: &tough::Repository,
    mirror: &Mirror,
) -> Result<Vec<u8>, TrustError> {
    let name = TargetName::new(TRUSTED_ROOT_TARGET).map_err(|e| classify(mirror, &e))?;
    let stream = repo
        .read_target(&name)
        .await
        .map_err(|e| classify(mirror, &e))?
        .ok_or_else(|| TrustError::MissingTarget {
            mirror: mirror.as_str().to_string(),
            target: TRUSTED_ROOT_TARGET.to_string(),
        })?;
    // tough checks the length and hashes the signed targets metadata lists
    // while the stream is read; an error means the bytes must not be used.
    stream.into_vec().await.map_err(|e| classify(mirror, &e))
}

/// The target is signed, but it must also be something we can verify with.
fn check_trusted_root(mirror: &Mirror, json: &[u8]) -> Result<(), TrustError> {
    let refuse = |reason: String| TrustError::Refused {
        mirror: mirror.as_str().to_string(),
        reason,
    };
    if json.len() > MAX_TRUSTED_ROOT_BYTES {
        return Err(refuse(format!(
            "{TRUSTED_ROOT_TARGET} is larger than {MAX_TRUSTED_ROOT_BYTES} bytes"
        )));
    }
    TrustedRoot::from_json(json).map(drop).map_err(|e| {
        refuse(format!(
            "{TRUSTED_ROOT_TARGET} is not a usable sigstore trusted root: {e}"
        ))
    })
}

fn roles_of(repo: &tough::Repository) -> TufRoles {
    TufRoles {
        root: RoleInfo {
            version: repo.root().signed.version.get(),
            expires: repo.root().signed.expires.as_second(),
        },
        timestamp: RoleInfo {
            version: repo.timestamp().signed.version.get(),
            expires: repo.timestamp().signed.expires.as_second(),
        },
        snapshot: RoleInfo {
            version: repo.snapshot().signed.version.get(),
            expires: repo.snapshot().signed.expires.as_second(),
        },
        targets: RoleInfo {
            version: repo.targets().signed.version.get(),
            expires: repo.targets().signed.expires.as_second(),
        },
    }
}

/// Whether a transport error wraps one of tough's own checks (length, hash).
fn carries_check_failure(e: &tough::error::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(inner) = s.downcast_ref::<tough::error::Error>() {
            return !matches!(inner, tough::error::Error::Transport { .. })
                || carries_check_failure(inner);
        }
        source = s.source();
    }
    false
}

/// Sorts tough's errors into network trouble, local storage trouble and
/// refusals. Anything not known to be one of the first two is a refusal:
/// the update fails closed either way, this only picks the message and the
/// exit code.
fn classify(mirror: &Mirror, e: &tough::error::Error) -> TrustError {
    use tough::error::Error as E;
    let mirror = mirror.as_str().to_string();
    let reason = e.to_string();
    match e {
        // tough reports a target's length or hash failure as a transport
        // error of the stream that carried it: look inside.
        E::Transport { .. } if carries_check_failure(e) => TrustError::Refused { mirror, reason },
        E::Transport { .. } => TrustError::Network { mirror, reason },
        E::DatastoreInit { .. }
        | E::DatastoreCreate { .. }
        | E::DatastoreOpen { .. }
        | E::DatastoreRemove { .. }
        | E::DatastoreSerialize { .. }
        | E::DirCreate { .. } => TrustError::Io {
            path: std::path::PathBuf::from("TUF datastore"),
            source: std::io::Error::other(reason),
        },
        E::ParseTrustedMetadata { .. } => TrustError::UnusableStartingRoot { reason },
        _ => TrustError::Refused { mirror, reason },
    }
}
