//! Trust material from the command line: reads the files the flags name
//! and builds the engine's trust (keys, CA roots, keyless trust with an
//! optional pinned checkpoint and evidence thresholds), mapping the
//! engine's typed errors to the flags' words. The sigstore trusted root is
//! `--trusted-root`, else the one `stella trust update` cached (stella-trust
//! picks it; its origin is returned for the report). Shared by `verify
//! image`, `verify attestation` and `bundle verify`.

use std::path::Path;

use anyhow::Context;
use stella_attest::keyless::KeylessTrust;
use stella_attest::verify::TrustWords;
use stella_engine::TrustError;
use stella_engine::trust::{self as engine, Thresholds};
use stella_trust::{ChosenTrustedRoot, TrustedRootOrigin};

use crate::cli::KeylessArgs;

/// How reasons name the trust flags.
pub(crate) fn cli_words() -> TrustWords {
    TrustWords {
        key: "--key".into(),
        ca_root: "--trust-root".into(),
        via_ca_root: "a --trust-root CA".into(),
    }
}

/// Largest checkpoint note read.
const MAX_CHECKPOINT_BYTES: u64 = 64 * 1024;

pub(crate) fn read_capped(path: &Path, cap: u64, what: &str) -> anyhow::Result<Vec<u8>> {
    crate::cmd::read_capped(path, cap)
        .with_context(|| format!("cannot read {what} {}", path.display()))
}

/// A matcher from `--certificate-<what>` or `--certificate-<what>-regexp`.
pub(crate) fn matcher(
    exact: &Option<String>,
    re: &Option<String>,
    what: &str,
) -> anyhow::Result<stella_sigstore::Matcher> {
    engine::matcher(exact.as_deref(), re.as_deref())?.with_context(|| {
        format!(
            "keyless verification needs --certificate-{what} or --certificate-{what}-regexp (or use --key)"
        )
    })
}

/// Keyless trust made from the flags, and where its trusted root came from.
pub(crate) struct LoadedKeyless {
    pub trust: KeylessTrust,
    pub origin: TrustedRootOrigin,
}

/// Whether the flags ask for keyless verification: an identity or issuer,
/// a pinned checkpoint, or an explicit trusted root.
fn wants_keyless(k: &KeylessArgs, checkpoint: Option<&Path>) -> bool {
    k.certificate_identity.is_some()
        || k.certificate_identity_regexp.is_some()
        || k.certificate_oidc_issuer.is_some()
        || k.certificate_oidc_issuer_regexp.is_some()
        || checkpoint.is_some()
        || k.trusted_root.is_some()
}

/// The thresholds the flags set.
pub(crate) fn thresholds(k: &KeylessArgs) -> Thresholds {
    Thresholds {
        tlog: k.tlog_threshold.map(usize::from),
        timestamps: k.timestamp_threshold.map(usize::from),
    }
}

/// The trusted root: `--trusted-root`, else the root `stella trust update`
/// cached (offline). Neither: a usage error saying what to do. `now` is
/// Unix seconds (the cache's age is reported against it).
pub(crate) fn choose_root(explicit: Option<&Path>, now: i64) -> anyhow::Result<ChosenTrustedRoot> {
    stella_trust::choose_trusted_root(explicit, now).map_err(crate::cmd::trust::worded)
}

/// The line text output prints about a cached root (`None` for a root the
/// user named with `--trusted-root`).
pub(crate) fn origin_note(origin: &TrustedRootOrigin) -> Option<String> {
    match origin {
        TrustedRootOrigin::TufCache { .. } => Some(origin.describe()),
        _ => None,
    }
}

/// Keyless trust from the flags: `None` when no `--certificate-identity*`,
/// `--certificate-oidc-issuer*`, checkpoint nor `--trusted-root` was given.
/// Otherwise the trusted root is `--trusted-root` or the cached one (see
/// [`choose_root`]). A pinned checkpoint must be signed by a transparency
/// log of the trusted root; otherwise the error is a
/// [`TrustError::CheckpointRejected`].
pub(crate) fn keyless_trust(
    k: &KeylessArgs,
    checkpoint: Option<&Path>,
    now: i64,
) -> anyhow::Result<Option<LoadedKeyless>> {
    if !wants_keyless(k, checkpoint) {
        if k.tlog_threshold.is_some() || k.timestamp_threshold.is_some() {
            anyhow::bail!(
                "--tlog-threshold/--timestamp-threshold apply to keyless verification: give --certificate-identity and --certificate-oidc-issuer"
            );
        }
        return Ok(None);
    }
    let chosen = choose_root(k.trusted_root.as_deref(), now)?;
    let identity = stella_sigstore::IdentityPolicy {
        identity: matcher(
            &k.certificate_identity,
            &k.certificate_identity_regexp,
            "identity",
        )?,
        issuer: matcher(
            &k.certificate_oidc_issuer,
            &k.certificate_oidc_issuer_regexp,
            "oidc-issuer",
        )?,
    };
    let trust = keyless_from(&chosen, identity, thresholds(k), checkpoint)?;
    Ok(Some(LoadedKeyless {
        trust,
        origin: chosen.origin,
    }))
}

/// Keyless trust on a chosen trusted root: the identity that must have
/// signed, the evidence thresholds and an optional pinned checkpoint file.
pub(crate) fn keyless_from(
    chosen: &ChosenTrustedRoot,
    identity: stella_sigstore::IdentityPolicy,
    thresholds: Thresholds,
    checkpoint: Option<&Path>,
) -> anyhow::Result<KeylessTrust> {
    let verifier = match engine::keyless_verifier(&chosen.json, thresholds) {
        Ok(v) => v,
        Err(TrustError::TrustedRoot(e)) => {
            return Err(
                anyhow::Error::new(e).context(format!("{} is unusable", chosen.origin.describe()))
            );
        }
        Err(e) => return Err(e.into()),
    };
    let checkpoint = match checkpoint {
        None => None,
        Some(p) => {
            let bytes = read_capped(p, MAX_CHECKPOINT_BYTES, "Rekor checkpoint")?;
            let note = String::from_utf8(bytes)
                .with_context(|| format!("Rekor checkpoint {} is not text", p.display()))?;
            match engine::pin_checkpoint(&note, &verifier) {
                Ok(c) => Some(c),
                Err(TrustError::CheckpointUnusable(e)) => {
                    return Err(anyhow::Error::new(e)
                        .context(format!("Rekor checkpoint {} is unusable", p.display())));
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    Ok(engine::keyless_trust(verifier, identity, checkpoint))
}

/// The checkpoint rejection inside an error, if that is what it is (a
/// verification failure, exit 1, rather than a usage error).
pub(crate) fn checkpoint_rejected(e: &anyhow::Error) -> Option<&TrustError> {
    e.downcast_ref::<TrustError>()
        .filter(|t| matches!(t, TrustError::CheckpointRejected(_)))
}
