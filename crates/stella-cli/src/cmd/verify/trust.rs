//! Trust material from the command line: reads the files the flags name
//! and builds the engine's trust (keys, CA roots, keyless trust with an
//! optional pinned checkpoint), mapping the engine's typed errors to the
//! flags' words. Shared by `verify image`, `verify attestation` and
//! `bundle verify`.

use std::path::Path;

use anyhow::Context;
use stella_attest::keyless::KeylessTrust;
use stella_attest::verify::TrustWords;
use stella_engine::TrustError;
use stella_engine::trust as engine;
use stella_types::limits::MAX_JSON_DOCUMENT_BYTES;

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

/// Keyless trust from the flags: `None` when no `--trusted-root` was given
/// (then no `--certificate-*` flag nor checkpoint may be given either). A
/// pinned checkpoint must be signed by a transparency log of the trusted
/// root; otherwise the error is a [`TrustError::CheckpointRejected`].
pub(crate) fn keyless_trust(
    k: &KeylessArgs,
    checkpoint: Option<&Path>,
) -> anyhow::Result<Option<KeylessTrust>> {
    let Some(root_path) = &k.trusted_root else {
        if k.certificate_identity.is_some()
            || k.certificate_identity_regexp.is_some()
            || k.certificate_oidc_issuer.is_some()
            || k.certificate_oidc_issuer_regexp.is_some()
        {
            anyhow::bail!(
                "--certificate-identity/--certificate-oidc-issuer need --trusted-root <trusted_root.json> (stella has no built-in sigstore trust root)"
            );
        }
        if checkpoint.is_some() {
            anyhow::bail!(
                "--rekor-checkpoint needs --trusted-root <trusted_root.json>: the checkpoint's signature is checked with its log keys"
            );
        }
        return Ok(None);
    };
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
    let root_bytes = read_capped(root_path, MAX_JSON_DOCUMENT_BYTES, "trusted root")?;
    let verifier = match engine::keyless_verifier(&root_bytes) {
        Ok(v) => v,
        Err(TrustError::TrustedRoot(e)) => {
            return Err(anyhow::Error::new(e)
                .context(format!("trusted root {} is unusable", root_path.display())));
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
    Ok(Some(engine::keyless_trust(verifier, identity, checkpoint)))
}

/// The checkpoint rejection inside an error, if that is what it is (a
/// verification failure, exit 1, rather than a usage error).
pub(crate) fn checkpoint_rejected(e: &anyhow::Error) -> Option<&TrustError> {
    e.downcast_ref::<TrustError>()
        .filter(|t| matches!(t, TrustError::CheckpointRejected(_)))
}
