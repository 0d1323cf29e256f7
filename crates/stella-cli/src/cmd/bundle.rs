//! `stella bundle inspect|verify|import` and `stella evidence export-bundle`:
//! glue between the flags and `stella_bundle`. Keys are loaded here
//! (`cmd::verify::trust`) and plugged into the library's verifier traits
//! through `stella_engine::bundle` (attestations go through the same engine
//! as `verify attestation`, including keyless sigstore bundles checked
//! against `--trusted-root` and the identity policy, and their inclusion
//! proofs anchored to `--rekor-checkpoint`); the libraries never print or
//! load keys.
//!
//! Exit codes: 0 verified / done, 1 verification failed, 2 unusable input.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::json;
use stella_attest::verify::TrustPolicy;
use stella_bundle::format::ManifestSigner;
use stella_bundle::verify::{Status, VerifyOptions, VerifyReport, VerifyWords};
use stella_bundle::{
    BundleError, BundleReader, Compression, ExportOptions, ReadLimits, Selection, plan_export,
    push_plan, write_bundle_to_path,
};
use stella_crypto::{PrivateKey, PublicKey};
use stella_engine::bundle::{BundleAttestations, ManifestKeys};
use stella_oci::artifact::resolve;
use stella_trust::TrustedRootOrigin;
use stella_types::{Digest, Reference};

use super::key::{load_certificates, load_private_key, load_public_key};
use crate::cli::{
    BundleCommand, BundleImportArgs, BundleInspectArgs, BundleVerifyArgs,
    Compression as CliCompression, ExportBundleArgs, RegistryArgs, TextOrJson,
};
use crate::exit::Outcome;
use crate::store::{OpenMode, open_store, parse_reference};

pub async fn run(command: BundleCommand, registry: &RegistryArgs) -> anyhow::Result<Outcome> {
    match command {
        // Reading, decompressing and hashing a bundle is blocking work: off the async runtime.
        BundleCommand::Inspect(a) => tokio::task::spawn_blocking(move || inspect(a)).await?,
        BundleCommand::Verify(a) => tokio::task::spawn_blocking(move || verify(*a)).await?,
        BundleCommand::Import(a) => import(a, registry).await,
    }
}

/// Maps a library error: verification failures exit 1 with the reason on
/// stderr, everything else is an error (exit 2).
fn finish_err(e: BundleError) -> anyhow::Result<Outcome> {
    if e.is_verification_failure() {
        eprintln!("stella: {e}");
        Ok(Outcome::VerificationFailed)
    } else {
        Err(anyhow::Error::new(e))
    }
}

use super::emit;

fn emitln(line: String) -> anyhow::Result<()> {
    emit(&(line + "\n"))
}

macro_rules! outln {
    ($b:expr) => { $b.push('\n') };
    ($b:expr, $($t:tt)*) => {{ $b.push_str(&format!($($t)*)); $b.push('\n'); }};
}

fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    let s = serde_json::to_string_pretty(v).context("cannot render JSON")?;
    emitln(s)
}

// ------------------------------------------------------------------ export

struct KeySigner(PrivateKey);

impl ManifestSigner for KeySigner {
    fn key_id(&self) -> String {
        self.0.public_key().keyid()
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        self.0.sign(message).map_err(|e| e.to_string())
    }
}

fn default_output(subject: &Digest, c: Compression) -> PathBuf {
    let hex = subject.hex();
    PathBuf::from(format!(
        "stella-bundle-{}{}",
        hex.get(..12).unwrap_or(hex),
        c.extension()
    ))
}

pub async fn export(args: ExportBundleArgs, registry: &RegistryArgs) -> anyhow::Result<Outcome> {
    let reference = parse_reference(&args.image)?;
    let compression = match args.compression {
        CliCompression::Gzip => Compression::Gzip,
        CliCompression::Zstd => Compression::Zstd,
        CliCompression::None => Compression::None,
    };
    if args.push_referrers.is_some() && (args.output.is_some() || args.sign_key.is_some()) {
        anyhow::bail!(
            "--push-referrers copies into a registry and writes no bundle: it cannot be combined with --output or --sign-key"
        );
    }
    let signer = match &args.sign_key {
        Some(p) => Some(KeySigner(load_private_key(p)?)),
        None => None,
    };
    let store = open_store(&reference, registry, OpenMode::Existing)?;
    let subject = resolve(&store, &reference)
        .await
        .with_context(|| format!("cannot resolve {reference}"))?;
    let created = super::evidence::source_date_epoch()?;
    let opts = ExportOptions {
        selection: Selection {
            include_dsse: args.include_dsse,
            include_rekor_proof: args.include_rekor_proof,
            include_image: args.include_image,
            artifact_types: args.artifact_types.clone(),
        },
        created,
        tag: reference.tag().map(str::to_string),
        ..ExportOptions::default()
    };
    let path = args
        .output
        .clone()
        .unwrap_or_else(|| default_output(&subject.digest, compression));
    if args.push_referrers.is_none() && !args.force && std::fs::symlink_metadata(&path).is_ok() {
        anyhow::bail!(
            "{} already exists; refusing to overwrite it (use --force to replace it)",
            path.display()
        );
    }
    let (plan, excluded) = match plan_export(&store, &subject, &opts).await {
        Ok(x) => x,
        Err(e) => return finish_err(e),
    };
    if let Some(target) = &args.push_referrers {
        let target_ref = parse_reference(target)?;
        let dst = open_store(&target_ref, registry, OpenMode::CreateLayout)?;
        let tag = target_ref.tag().or(reference.tag());
        let report = match push_plan(&store, &dst, &plan, tag).await {
            Ok(r) => r,
            Err(e) => return finish_err(e),
        };
        emitln(format!(
            "copied {} into {target}: {} manifest(s) pushed, {} skipped; {} blob(s) pushed, {} skipped; {} bytes; {} referrer(s) recorded",
            subject.digest,
            report.manifests_pushed,
            report.manifests_skipped,
            report.blobs_pushed,
            report.blobs_skipped,
            report.bytes_pushed,
            report.referrers_recorded
        ))?;
        report_excluded(&excluded);
        return Ok(Outcome::Success);
    }
    let written = write_bundle_to_path(
        &store,
        &plan,
        signer.as_ref().map(|s| s as &dyn ManifestSigner),
        compression,
        &path,
        args.force,
    );
    let summary = match super::evidence::until_interrupted(written).await? {
        Ok(s) => s,
        Err(e) => return finish_err(e),
    };
    emitln(format!(
        "wrote {}: subject {}, {} artifact(s), {} bytes of content, compression {}{}",
        path.display(),
        summary.subject,
        summary.artifacts,
        summary.blob_bytes,
        summary.compression.as_str(),
        if summary.signed { ", signed" } else { "" }
    ))?;
    report_excluded(&excluded);
    Ok(Outcome::Success)
}

/// Says on stderr which referrers the selection left out, and why (naming
/// the flag that would include them).
fn report_excluded(excluded: &[stella_bundle::export::Excluded]) {
    use stella_bundle::export::ExclusionReason as Why;
    for e in excluded {
        let why = match e.why {
            Why::ArtifactTypeNotSelected => "not a requested --artifact-type",
            Why::SignedAttestationNotSelected => "signed attestation (use --include-dsse)",
            Why::TransparencyLogNotSelected => {
                "transparency-log material (use --include-rekor-proof)"
            }
            Why::SubjectDiffers => e.reason.as_str(),
        };
        eprintln!(
            "left out {} ({}): {why}",
            e.digest,
            e.artifact_type.as_deref().unwrap_or("no artifact type"),
        );
    }
}

// ------------------------------------------------------------------ inspect

fn inspect(args: BundleInspectArgs) -> anyhow::Result<Outcome> {
    let reader = match BundleReader::open_path(&args.bundle, ReadLimits::default()) {
        Ok(r) => r,
        Err(e) => return finish_err(e),
    };
    let m = reader.manifest();
    match args.output {
        TextOrJson::Json => print_json(&json!({
            "bundle": args.bundle.display().to_string(),
            "compression": reader.compression().as_str(),
            "signed": reader.signature().is_some(),
            "manifest": m,
        }))?,
        TextOrJson::Text => {
            let mut b = String::new();
            outln!(b, "bundle:      {}", args.bundle.display());
            outln!(
                b,
                "subject:     {} ({}, tag {})",
                m.subject.digest,
                m.subject.media_type,
                m.subject.tag
            );
            outln!(b, "created:     {}", m.created);
            outln!(b, "tool:        {} {}", m.tool.name, m.tool.version);
            outln!(b, "compression: {}", reader.compression().as_str());
            outln!(
                b,
                "signed:      {}",
                if reader.signature().is_some() {
                    "yes (DSSE over the bundle manifest)"
                } else {
                    "no"
                }
            );
            outln!(
                b,
                "selection:   include-dsse={} include-rekor-proof={} include-image={}{}",
                m.selection.include_dsse,
                m.selection.include_rekor_proof,
                m.selection.include_image,
                if m.selection.artifact_types.is_empty() {
                    String::new()
                } else {
                    format!(" artifact-types={}", m.selection.artifact_types.join(","))
                }
            );
            outln!(
                b,
                "artifacts:   {} ({} bytes)",
                m.artifacts.len(),
                m.total_blob_bytes()
            );
            outln!(b);
            outln!(
                b,
                "{:<17} {:<71} {:>10}  {}",
                "ROLE",
                "DIGEST",
                "SIZE",
                "TYPE / REFERS TO"
            );
            for a in &m.artifacts {
                let ty = a.artifact_type.as_deref().unwrap_or(&a.media_type);
                let refers = a
                    .refers_to
                    .as_ref()
                    .map(|r| format!(" -> {r}"))
                    .unwrap_or_default();
                outln!(
                    b,
                    "{:<17} {:<71} {:>10}  {ty}{refers}",
                    a.role.as_str(),
                    a.digest.to_string(),
                    a.size
                );
            }
            emit(&b)?;
        }
    }
    Ok(Outcome::Success)
}

// ------------------------------------------------------------------ verify

/// Keys for the manifest signature, the attestation trust policy, and
/// where the sigstore trusted root came from (when keyless trust is used).
type VerifyMaterial = (Vec<PublicKey>, TrustPolicy, Option<TrustedRootOrigin>);

fn load_verify_material(args: &BundleVerifyArgs) -> anyhow::Result<VerifyMaterial> {
    let loaded = super::verify::trust::keyless_trust(
        &args.keyless,
        args.rekor_checkpoint.as_deref(),
        super::trust::unix_now(),
    )?;
    let (keyless, origin) = match loaded {
        Some(l) => (Some(l.trust), Some(l.origin)),
        None => (None, None),
    };
    let mut keys = Vec::new();
    for p in &args.keys {
        keys.push(load_public_key(p)?);
    }
    let mut ca_roots = Vec::new();
    for p in &args.trust_roots {
        ca_roots.extend(load_certificates(p, "trust root")?);
    }
    let policy = TrustPolicy {
        keys: keys.clone(),
        ca_roots,
        keyless,
        words: super::verify::trust::cli_words(),
        ..TrustPolicy::default()
    };
    Ok((keys, policy, origin))
}

fn verify(args: BundleVerifyArgs) -> anyhow::Result<Outcome> {
    let (keys, policy, origin) = match load_verify_material(&args) {
        Ok(x) => x,
        Err(e) => {
            if let Some(r) = super::verify::trust::checkpoint_rejected(&e) {
                eprintln!("stella: verification failed: {r}");
                return Ok(Outcome::VerificationFailed);
            }
            return Err(e);
        }
    };
    let engine = BundleAttestations::new(policy, time::OffsetDateTime::now_utc());
    let key_verifier = ManifestKeys::new(keys, super::verify::trust::cli_words());
    let opts = VerifyOptions {
        attestations: Some(&engine),
        manifest_signature: Some(&key_verifier),
        require: args.require.clone(),
        rekor_checkpoint_given: args.rekor_checkpoint.is_some(),
        allow_unanchored_proofs: args.allow_unanchored_proofs,
        integrity_only: false,
        limits: ReadLimits::default(),
        words: VerifyWords {
            key: "--key".into(),
            allow_unanchored: "--allow-unanchored-proofs".into(),
        },
    };
    let report = match BundleReader::open_path(&args.bundle, opts.limits)
        .and_then(|mut r| stella_bundle::verify::verify_open(&mut r, &opts))
    {
        Ok(r) => r,
        Err(e) => return Err(anyhow::Error::new(e)),
    };
    match args.output {
        TextOrJson::Json => {
            let mut v = serde_json::to_value(&report)?;
            if let (Some(o), Some(map)) = (&origin, v.as_object_mut()) {
                map.insert("trustedRoot".into(), serde_json::to_value(o)?);
            }
            print_json(&v)?
        }
        TextOrJson::Text => {
            if let Some(note) = origin.as_ref().and_then(super::verify::trust::origin_note) {
                emitln(note)?;
            }
            emit(&print_report(&args.bundle, &report))?
        }
    }
    Ok(if report.verified {
        Outcome::Success
    } else {
        Outcome::VerificationFailed
    })
}

fn print_report(path: &Path, r: &VerifyReport) -> String {
    let mut b = String::new();
    outln!(b, "bundle:  {}", path.display());
    outln!(b, "subject: {} (tag {})", r.subject, r.tag);
    outln!(
        b,
        "created: {}  tool: {}  compression: {}",
        r.created,
        r.tool,
        r.compression
    );
    outln!(b);
    outln!(
        b,
        "{:<11} {:<17} {:<71} {}",
        "STATUS",
        "ROLE",
        "DIGEST",
        "TYPE"
    );
    for a in &r.artifacts {
        let ty = a.artifact_type.as_deref().unwrap_or(&a.media_type);
        let mut extra = String::new();
        if let Some(p) = &a.predicate_type {
            extra.push_str(&format!(" predicate={p}"));
        }
        if let Some(s) = &a.signer {
            extra.push_str(&format!(" signer={s}"));
        }
        outln!(
            b,
            "{:<11} {:<17} {:<71} {ty}{extra}",
            a.status.as_str(),
            a.role.as_str(),
            a.digest.to_string()
        );
        for p in &a.problems {
            outln!(b, "{:<11} {p}", "");
        }
    }
    outln!(b);
    for c in &r.checks {
        outln!(
            b,
            "check {:<17} {:<11} {}",
            c.name,
            c.status.as_str(),
            c.detail
        );
    }
    for q in &r.requirements {
        outln!(
            b,
            "require {:<40} {}",
            q.requirement,
            if q.satisfied {
                format!("satisfied by {}", q.by.len())
            } else {
                "MISSING".to_string()
            }
        );
    }
    for f in &r.failures {
        outln!(b, "failure [{}] {}", f.code, f.reason);
    }
    let verified = r
        .artifacts
        .iter()
        .filter(|a| a.status == Status::Verified)
        .count();
    outln!(b);
    outln!(
        b,
        "{}: {} artifact(s), {} signed attestation(s) verified",
        if r.verified { "VERIFIED" } else { "FAILED" },
        r.artifacts.len(),
        verified
    );
    b
}

// ------------------------------------------------------------------ import

async fn import(args: BundleImportArgs, registry: &RegistryArgs) -> anyhow::Result<Outcome> {
    let target: Reference = parse_reference(&args.to)?;
    if target.digest().is_some() {
        anyhow::bail!(
            "--to names a repository (and optionally a tag), not a digest: the bundle's digests are preserved"
        );
    }
    let dst = open_store(&target, registry, OpenMode::CreateLayout)?;
    let report =
        match stella_bundle::import_bundle(&args.bundle, &dst, target.tag(), ReadLimits::default())
            .await
        {
            Ok(r) => r,
            Err(BundleError::SubjectMissing { subject, tag }) => {
                return Err(subject_missing(&args, &target, &subject, &tag));
            }
            Err(e) => return finish_err(e),
        };
    emitln(format!(
        "imported {} into {}: {} manifest(s) pushed, {} skipped; {} blob(s) pushed, {} skipped; {} bytes uploaded; {} referrer(s) recorded",
        args.bundle.display(),
        args.to,
        report.manifests_pushed,
        report.manifests_skipped,
        report.blobs_pushed,
        report.blobs_skipped,
        report.bytes_pushed,
        report.referrers_recorded
    ))?;
    Ok(Outcome::Success)
}

/// The import was refused because the target lacks the image a bundle made
/// without `--include-image` refers to: say what to do, in our words (one
/// line: errors are printed on one line).
fn subject_missing(
    args: &BundleImportArgs,
    target: &Reference,
    subject: &Digest,
    tag: &str,
) -> anyhow::Error {
    let dest = target.with_tag(tag);
    let skopeo_dest = match &dest {
        Reference::Layout(_) => dest.to_string(),
        Reference::Registry(_) => format!("docker://{dest}"),
    };
    anyhow::anyhow!(
        "{to} has no image {subject}, and {bundle} was exported without --include-image, so its \
         evidence would refer to nothing; nothing was uploaded. Copy the image into {to} first \
         with its digest preserved, then import again (e.g. `skopeo copy --all \
         --preserve-digests docker://<source>/<repository>@{subject} {skopeo_dest}`, or, where \
         the source is reachable, `stella evidence export-bundle --image \
         <source>/<repository>@{subject} --include-image --push-referrers {dest}`), or export the \
         bundle again with --include-image.",
        to = args.to,
        bundle = args.bundle.display(),
    )
}
