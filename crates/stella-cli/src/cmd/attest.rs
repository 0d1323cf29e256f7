//! `stella attest`: sign a predicate about an image as an in-toto Statement
//! v1 in a DSSE envelope, wrap it in a sigstore bundle (v0.3; v0.2 when an
//! intermediate chain is given) and push it as an OCI 1.1 referrer of the
//! image (artifactType = bundle media type, annotation
//! `dev.sigstore.bundle.predicateType`), as cosign's new bundle format does.

use anyhow::Context;
use stella_attest::predicate_types;
use stella_crypto::PrivateKey;
use stella_crypto::x509::Certificate;
use stella_oci::artifact::resolve;
use stella_oci::store::{
    ContentRead, ContentWrite, NoProgress, Progress, ReferrersRead, ReferrersWrite,
};
use stella_types::limits::MAX_JSON_DOCUMENT_BYTES;
use stella_types::{Descriptor, Digest, Reference};

use super::key::load_certificates;
pub(crate) use super::key::load_private_key;
use crate::cli::{AttestArgs, RegistryArgs};
use crate::exit::Outcome;
use crate::store::{OpenMode, open_store, parse_reference};

/// The subject name written into the statement (the engine's rule).
pub(crate) fn subject_name(reference: &Reference) -> String {
    stella_engine::publish::subject_name(reference)
}

pub async fn run(args: AttestArgs, registry: &RegistryArgs) -> anyhow::Result<Outcome> {
    // Everything the user gave is checked before any network or store access.
    let reference = parse_reference(&args.image)?;
    let predicate_type = predicate_types::resolve(&args.predicate_type)?;
    let predicate_bytes = super::read_capped(&args.predicate, MAX_JSON_DOCUMENT_BYTES)
        .with_context(|| format!("cannot read predicate {}", args.predicate.display()))?;
    let predicate: serde_json::Value = serde_json::from_slice(&predicate_bytes)
        .with_context(|| format!("predicate {} is not JSON", args.predicate.display()))?;
    if !predicate.is_object() {
        anyhow::bail!(
            "predicate {} must be a JSON object",
            args.predicate.display()
        );
    }
    let key = load_private_key(&args.key)?;
    let mut certificates = Vec::new();
    if let Some(cert_path) = &args.certificate {
        let mut leaf = load_certificates(cert_path, "certificate")?;
        // The first certificate is the signer; any others in the same file
        // count as intermediates.
        certificates.append(&mut leaf);
        if let Some(chain) = &args.certificate_chain {
            certificates.extend(load_certificates(chain, "certificate chain")?);
        }
    }

    let store = open_store(&reference, registry, OpenMode::Existing)?;
    let image = resolve(&store, &reference)
        .await
        .with_context(|| format!("cannot resolve {reference}"))?;
    let signed = stella_attest::sign::attest(
        &subject_name(&reference),
        &image.digest,
        &predicate_type,
        predicate,
        &key,
        &certificates,
    )
    .context("cannot sign the attestation")?;

    if let Some(out) = &args.output {
        std::fs::write(out, &signed.bundle_json)
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    if args.no_push {
        println!(
            "signed {predicate_type} attestation for {}@{} (not pushed){}",
            subject_name(&reference),
            image.digest,
            args.output
                .as_ref()
                .map(|p| format!("; bundle written to {}", p.display()))
                .unwrap_or_default()
        );
        return Ok(Outcome::Success);
    }
    let progress = crate::progress::for_args(registry);
    let pushed = push_signed(&store, &image, &signed, progress.as_ref()).await?;
    println!(
        "attested {}@{}: {predicate_type} -> referrer {}",
        subject_name(&reference),
        image.digest,
        pushed
    );
    Ok(Outcome::Success)
}

/// Pushes a signed attestation as a referrer of `image` (the engine's
/// [`stella_engine::publish::push_signed`], stamped with
/// `SOURCE_DATE_EPOCH` as `created` when set). Returns the referrer digest.
async fn push_signed<S: ContentRead + ContentWrite + ReferrersRead + ReferrersWrite>(
    store: &S,
    image: &Descriptor,
    signed: &stella_attest::sign::SignedAttestation,
    progress: &dyn Progress,
) -> anyhow::Result<Digest> {
    let created = super::evidence::source_date_epoch()?;
    Ok(stella_engine::publish::push_signed(store, image, signed, created, progress).await?)
}

/// Signs `predicate` (of `predicate_type`) about `subject` (the resolved
/// image of `reference`) and pushes it as a referrer; for other commands
/// (e.g. `verify image --attach-verdict`). Returns the referrer digest.
pub(crate) async fn sign_and_push<
    S: ContentRead + ContentWrite + ReferrersRead + ReferrersWrite,
>(
    store: &S,
    reference: &Reference,
    subject: &Descriptor,
    predicate_type: &str,
    predicate: serde_json::Value,
    key: &PrivateKey,
    certificates: &[Certificate],
) -> anyhow::Result<Digest> {
    let attachment = stella_engine::publish::Attachment {
        reference,
        subject,
        predicate_type,
        predicate,
        key,
        certificates,
        created: super::evidence::source_date_epoch()?,
    };
    let attached = stella_engine::publish::sign_and_attach(store, attachment, &NoProgress).await?;
    Ok(attached.digest)
}
