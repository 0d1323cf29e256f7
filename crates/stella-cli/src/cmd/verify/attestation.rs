//! `stella verify attestation`: discover the attestations among an image's
//! referrers (OCI 1.1 referrers whose artifactType is an attestation format
//! — sigstore bundle, DSSE envelope, in-toto — and cosign legacy
//! `sha256-<hex>.att` tags whose layers are DSSE envelopes), verify each
//! against the trusted keys / CA roots or, for keyless sigstore bundles
//! (Fulcio certificate + Rekor entries and/or RFC 3161 timestamps), offline
//! against `--trusted-root` (else the root `stella trust update` cached;
//! text output names it, JSON adds `trustedRoot`) and the
//! `--certificate-identity` / `--certificate-oidc-issuer` policy,
//! check that the statement is about this image's digest, filter by
//! predicate type and print one line per attestation (or JSON). The work is
//! `stella_engine::attestations`; this module loads keys and prints.
//!
//! Exit codes: 0 when at least one attestation (of the requested type) was
//! found and every one found verified; 1 when any failed or none was found;
//! 2 for unusable user input (bad flags, key files, reference, network).
//! A broken attestation found in the registry is a verification failure
//! (exit 1), not an input error: it is evidence, not the user's input.

use std::io::Write;

use anyhow::Context;
use stella_attest::predicate_types;
use stella_attest::verify::TrustPolicy;
use stella_engine::{AttestationsReport, AttestationsRequest, verify_attestations};
use stella_oci::artifact::resolve;

use super::trust::{cli_words, keyless_trust, origin_note};
use crate::cli::{RegistryArgs, TextOrJson, VerifyAttestationArgs};
use crate::cmd::key::{load_certificates, load_public_key};
use crate::exit::Outcome;
use crate::store::{OpenMode, open_store, parse_reference};

pub async fn run(args: VerifyAttestationArgs, registry: &RegistryArgs) -> anyhow::Result<Outcome> {
    let reference = parse_reference(&args.image)?;
    let wanted = args
        .predicate_type
        .as_deref()
        .map(predicate_types::resolve)
        .transpose()?;
    let loaded = keyless_trust(&args.keyless, None, crate::cmd::trust::unix_now())?;
    if args.keys.is_empty() && args.trust_roots.is_empty() && loaded.is_none() {
        anyhow::bail!(
            "give --key <public-key>, --trust-root <ca-pem>, or --certificate-identity and --certificate-oidc-issuer (sigstore trusted root: --trusted-root <trusted_root.json> or `stella trust update`)"
        );
    }
    let (keyless, origin) = match loaded {
        Some(l) => (Some(l.trust), Some(l.origin)),
        None => (None, None),
    };
    let mut policy = TrustPolicy {
        keyless,
        words: cli_words(),
        ..TrustPolicy::default()
    };
    for k in &args.keys {
        policy.keys.push(load_public_key(k)?);
    }
    for r in &args.trust_roots {
        policy.ca_roots.extend(load_certificates(r, "trust root")?);
    }

    let store = open_store(&reference, registry, OpenMode::Existing)?;
    let image = resolve(&store, &reference)
        .await
        .with_context(|| format!("cannot resolve {reference}"))?;
    let request = AttestationsRequest {
        image_name: super::super::attest::subject_name(&reference),
        image,
        predicate_type: wanted,
    };
    let now = time::OffsetDateTime::now_utc();
    let report = verify_attestations(&store, &request, &policy, now).await?;
    match args.output {
        TextOrJson::Json => {
            let mut v = serde_json::to_value(&report)?;
            if let (Some(o), Some(map)) = (&origin, v.as_object_mut()) {
                map.insert("trustedRoot".into(), serde_json::to_value(o)?);
            }
            let mut out = serde_json::to_string_pretty(&v)?;
            out.push('\n');
            std::io::stdout().write_all(out.as_bytes())?;
        }
        TextOrJson::Text => {
            let mut out = String::new();
            if let Some(note) = origin.as_ref().and_then(origin_note) {
                out.push_str(&note);
                out.push('\n');
            }
            out.push_str(&render_text(&report));
            std::io::stdout().write_all(out.as_bytes())?;
        }
    }
    Ok(if report.verified {
        Outcome::Success
    } else {
        Outcome::VerificationFailed
    })
}

/// One line per attestation, then a summary line.
fn render_text(report: &AttestationsReport) -> String {
    let items = &report.attestations;
    let mut out = String::new();
    for i in items {
        out.push_str(&format!(
            "{:<8} {} {} {}: {}\n",
            if i.verified { "VERIFIED" } else { "FAILED" },
            i.legacy_tag
                .as_deref()
                .map(str::to_string)
                .unwrap_or_else(|| i.referrer.clone()),
            i.predicate_type.as_deref().unwrap_or("-"),
            i.signer.as_deref().unwrap_or("-"),
            i.reason
        ));
    }
    let verified = items.iter().filter(|i| i.verified).count();
    let (name, digest) = (&report.image, &report.digest);
    if items.is_empty() {
        out.push_str(&format!(
            "no attestations{} found for {name}@{digest}\n",
            report
                .predicate_type
                .as_deref()
                .map(|w| format!(" of type {w}"))
                .unwrap_or_default(),
        ));
    } else {
        out.push_str(&format!(
            "{verified} of {} attestations verified for {name}@{digest}\n",
            items.len(),
        ));
    }
    out
}
