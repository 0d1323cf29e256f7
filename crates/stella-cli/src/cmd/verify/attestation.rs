//! `stella verify attestation`: discover the attestations among an image's
//! referrers (OCI 1.1 referrers whose artifactType is a sigstore bundle or a
//! DSSE envelope, and cosign legacy `sha256-<hex>.att` tags whose layers are
//! DSSE envelopes), verify each against the trusted keys / CA roots or, for
//! keyless sigstore bundles (Fulcio certificate + Rekor entries), offline
//! against `--trusted-root` and the `--certificate-identity` /
//! `--certificate-oidc-issuer` policy (through `stella_attest`, i.e. the
//! `stella_sigstore` engine of `verify blob`), check that the statement is
//! about this image's digest, filter by predicate type and print one line
//! per attestation (or JSON).
//!
//! Exit codes: 0 when at least one attestation (of the requested type) was
//! found and every one found verified; 1 when any failed or none was found;
//! 2 for unusable user input (bad flags, key files, reference, network).
//! A broken attestation found in the registry is a verification failure
//! (exit 1), not an input error: it is evidence, not the user's input.

use anyhow::Context;
use serde::Serialize;
use stella_attest::bundle::is_bundle_media_type;
use stella_attest::predicate_types;
use stella_attest::verify::{
    AttestationVerdict, DSSE_ENVELOPE, FailureKind, TrustPolicy, verify_attestation,
};
use stella_oci::artifact::resolve;
use stella_oci::referrers::walk_referrers;
use stella_oci::store::ContentRead;
use stella_types::limits::MAX_JSON_DOCUMENT_BYTES;
use stella_types::manifest::Manifest;
use stella_types::media_types::annotations;
use stella_types::{Descriptor, Digest};

use crate::cli::{RegistryArgs, TextOrJson, VerifyAttestationArgs};
use crate::cmd::bundle::keyless_trust;
use crate::cmd::key::{load_certificates, load_public_key};
use crate::exit::Outcome;
use crate::store::{OpenMode, open_store, parse_reference};

/// One attestation found and judged.
#[derive(Debug, Serialize)]
struct Item {
    /// The referrer manifest (or legacy tag manifest) digest.
    referrer: String,
    /// The layer holding the bundle or envelope.
    #[serde(skip_serializing_if = "Option::is_none")]
    layer: Option<String>,
    /// cosign legacy tag, when found that way.
    #[serde(skip_serializing_if = "Option::is_none")]
    legacy_tag: Option<String>,
    #[serde(rename = "mediaType")]
    media_type: String,
    verified: bool,
    /// Verified predicate type, or (when not verified) the unverified claim.
    #[serde(rename = "predicateType", skip_serializing_if = "Option::is_none")]
    predicate_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signer: Option<String>,
    reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<FailureKind>,
}

#[derive(Serialize)]
struct Report<'a> {
    image: String,
    digest: String,
    #[serde(rename = "predicateType", skip_serializing_if = "Option::is_none")]
    predicate_type: Option<&'a str>,
    verified: bool,
    attestations: &'a [Item],
}

fn is_attestation_type(t: &str) -> bool {
    is_bundle_media_type(t) || t == DSSE_ENVELOPE
}

fn item_from(
    verdict: AttestationVerdict,
    referrer: &Digest,
    layer: Option<&Descriptor>,
    legacy_tag: Option<String>,
    annotation_type: Option<&str>,
) -> Item {
    let predicate_type = verdict
        .predicate_type
        .clone()
        .or(verdict.claimed_predicate_type.clone())
        .or(annotation_type.map(str::to_string));
    Item {
        referrer: referrer.to_string(),
        layer: layer.map(|l| l.digest.to_string()),
        legacy_tag,
        media_type: layer.map(|l| l.media_type.clone()).unwrap_or_default(),
        verified: verdict.verified,
        predicate_type,
        signer: verdict.signer,
        reason: verdict.reason,
        failure: verdict.failure,
    }
}

fn failed_item(
    referrer: &Digest,
    legacy_tag: Option<String>,
    media_type: &str,
    reason: String,
    annotation_type: Option<&str>,
) -> Item {
    Item {
        referrer: referrer.to_string(),
        layer: None,
        legacy_tag,
        media_type: media_type.to_string(),
        verified: false,
        predicate_type: annotation_type.map(str::to_string),
        signer: None,
        reason,
        failure: Some(FailureKind::Failed),
    }
}

pub async fn run(args: VerifyAttestationArgs, registry: &RegistryArgs) -> anyhow::Result<Outcome> {
    let reference = parse_reference(&args.image)?;
    let wanted = args
        .predicate_type
        .as_deref()
        .map(predicate_types::resolve)
        .transpose()?;
    let keyless = keyless_trust(&args.keyless, None)?;
    if args.keys.is_empty() && args.trust_roots.is_empty() && keyless.is_none() {
        anyhow::bail!(
            "give --key <public-key>, --trust-root <ca-pem>, or --trusted-root <trusted_root.json> with --certificate-identity and --certificate-oidc-issuer"
        );
    }
    let mut policy = TrustPolicy {
        keyless,
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
    let nodes = walk_referrers(&store, &image.digest, &[], 1)
        .await
        .with_context(|| format!("cannot list the referrers of {}", image.digest))?;

    let mut items = Vec::new();
    for node in nodes {
        let d = &node.descriptor;
        let legacy_tag = node.legacy.as_ref().map(|_| {
            d.annotation(annotations::REF_NAME)
                .unwrap_or("")
                .to_string()
        });
        let candidate = match node.legacy.as_deref() {
            Some("att") => true,
            Some(_) => false,
            None => d.artifact_type.as_deref().is_some_and(is_attestation_type),
        };
        if !candidate {
            continue;
        }
        let ann_type = d.annotation(annotations::SIGSTORE_PREDICATE_TYPE);
        if node.dangling {
            items.push(failed_item(
                &d.digest,
                legacy_tag,
                d.artifact_type.as_deref().unwrap_or(""),
                "listed as a referrer but the manifest is missing".into(),
                ann_type,
            ));
            continue;
        }
        let fetched = store
            .fetch_manifest(&d.digest)
            .await
            .with_context(|| format!("cannot fetch referrer {}", d.digest))?;
        let manifest = match Manifest::parse(&fetched.bytes, Some(&fetched.descriptor.media_type)) {
            Ok(Manifest::Image(m)) => m,
            Ok(Manifest::Index(_)) => {
                items.push(failed_item(
                    &d.digest,
                    legacy_tag,
                    "",
                    "attestation referrer is an index, not a manifest".into(),
                    ann_type,
                ));
                continue;
            }
            Err(e) => {
                items.push(failed_item(
                    &d.digest,
                    legacy_tag,
                    "",
                    format!("referrer manifest unreadable: {e}"),
                    ann_type,
                ));
                continue;
            }
        };
        // The subject recorded in the referrer must be this image (the signed
        // statement is checked again below; this catches mis-filed referrers).
        if node.legacy.is_none()
            && manifest.subject.as_ref().map(|s| &s.digest) != Some(&image.digest)
        {
            items.push(failed_item(
                &d.digest,
                legacy_tag,
                "",
                "referrer manifest's subject is not this image".into(),
                ann_type,
            ));
            continue;
        }
        let layers: Vec<&Descriptor> = manifest
            .layers
            .iter()
            .filter(|l| is_attestation_type(&l.media_type))
            .collect();
        if layers.is_empty() {
            items.push(failed_item(
                &d.digest,
                legacy_tag,
                d.artifact_type.as_deref().unwrap_or(""),
                "attestation artifact has no bundle or DSSE envelope layer".into(),
                ann_type,
            ));
            continue;
        }
        for layer in layers {
            let layer_type = layer.annotation("predicateType").or(ann_type);
            let verdict = match store.fetch_blob_bytes(layer, MAX_JSON_DOCUMENT_BYTES).await {
                Ok(bytes) => verify_attestation(&bytes, &layer.media_type, &image.digest, &policy),
                Err(e) => {
                    items.push(failed_item(
                        &d.digest,
                        legacy_tag.clone(),
                        &layer.media_type,
                        format!("cannot fetch layer {}: {e}", layer.digest),
                        layer_type,
                    ));
                    continue;
                }
            };
            items.push(item_from(
                verdict,
                &d.digest,
                Some(layer),
                legacy_tag.clone(),
                layer_type,
            ));
        }
    }
    if let Some(w) = &wanted {
        items.retain(|i| i.predicate_type.as_deref().is_none_or(|t| t == w));
    }
    let all_ok = !items.is_empty() && items.iter().all(|i| i.verified);
    let name = super::super::attest::subject_name(&reference);
    match args.output {
        TextOrJson::Json => {
            let report = Report {
                image: name.clone(),
                digest: image.digest.to_string(),
                predicate_type: wanted.as_deref(),
                verified: all_ok,
                attestations: &items,
            };
            let mut out = serde_json::to_string_pretty(&report)?;
            out.push('\n');
            use std::io::Write;
            std::io::stdout().write_all(out.as_bytes())?;
        }
        TextOrJson::Text => {
            use std::io::Write;
            let mut out = String::new();
            for i in &items {
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
            if items.is_empty() {
                out.push_str(&format!(
                    "no attestations{} found for {name}@{}\n",
                    wanted
                        .as_deref()
                        .map(|w| format!(" of type {w}"))
                        .unwrap_or_default(),
                    image.digest
                ));
            } else {
                out.push_str(&format!(
                    "{verified} of {} attestations verified for {name}@{}\n",
                    items.len(),
                    image.digest
                ));
            }
            std::io::stdout().write_all(out.as_bytes())?;
        }
    }
    Ok(if all_ok {
        Outcome::Success
    } else {
        Outcome::VerificationFailed
    })
}
