//! `stella report`: judge an image's scanner findings against a policy's
//! `rules:` with the VEX its `vex:` section trusts, and print the report
//! (text, or the `{report, dsse}` object with `--output json`), signed as a
//! DSSE envelope with `--sign-key`. `stella report verify` checks one.
//!
//! The work is `stella_report` (findings, judging, the report, the
//! envelope) on top of `stella_engine::verify_image` (the evidence section
//! is exactly what `verify image` computes). This module resolves the
//! image, loads the policy, keys and scan files, and prints.
//!
//! With `--server` (or `--policy-revision` without `--policy`) the server
//! computes and signs the report (`cmd::report_server`).
//!
//! Time: `generatedAt` is `SOURCE_DATE_EPOCH` when set, else now; finding
//! ages are always measured against the wall clock.
//!
//! VEX: the OpenVEX documents attached to the image (bare or as signed
//! attestations) are read with `stella-vex` through
//! `stella_report::openvex`, with the signers the engine verified; only the
//! policy's `vex.signers` count. An unreadable document from a trusted
//! signer is an error (exit 2); any other is skipped with a note on stderr.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use stella_crypto::PublicKey;
use stella_engine::Trust;
use stella_engine::image::VerifyImageRequest;
use stella_report::findings::{Limits, parse_report};
use stella_report::gather::check_subject;
use stella_report::openvex::OpenVexLookup;
use stella_report::{Decision, ImageReport, ReportVerdict, TrustedReport};
use stella_types::Digest;
use stella_types::limits::{DEFAULT_REFERRER_DEPTH, MAX_JSON_DOCUMENT_BYTES};
use stella_verify::policy::{Policy, UnsignedAction};
use time::OffsetDateTime;

use crate::cli::{
    KeylessArgs, RegistryArgs, ReportArgs, ReportCommand, ReportVerifyArgs, ServiceClientArgs,
    TextOrJson, VerifyImageArgs,
};
use crate::exit::Outcome;
use crate::store::{OpenMode, open};

pub async fn run(
    args: ReportArgs,
    registry: &RegistryArgs,
    service: &ServiceClientArgs,
) -> anyhow::Result<Outcome> {
    match args.command {
        Some(ReportCommand::Verify(v)) => verify(&v),
        None if args.policy.is_none() && (server_requested() || args.policy_revision.is_some()) => {
            super::report_server::report(&args, registry, service).await
        }
        None => report(args, registry).await,
    }
}

/// Whether `--server` was given on the command line: the global flag has a
/// default, so its presence is read from the arguments themselves.
/// `STELLA_SERVER` alone does not switch an offline report to the server.
fn server_requested() -> bool {
    std::env::args().any(|a| a == "--server" || a.starts_with("--server="))
}

fn wall_clock() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

async fn report(args: ReportArgs, registry: &RegistryArgs) -> anyhow::Result<Outcome> {
    let Some(image) = args.image.clone() else {
        bail!("--image is required");
    };
    if args.attach || args.registry_auth.is_some() {
        bail!(
            "--attach and --registry-auth are for server reports (--server); offline, \
             `stella verify image --attach-verdict` signs and attaches a verdict"
        );
    }
    let now = wall_clock();
    let generated_at = crate::cmd::evidence::source_date_epoch()?.unwrap_or(now);
    let (policy, base) = load_policy(args.policy.as_deref())?;
    let trust = Trust {
        signers: super::verify::image::load_signers(
            &policy,
            &base,
            &signer_args(&args),
            now.unix_timestamp(),
        )?,
    };
    let sign_key = args
        .sign_key
        .as_deref()
        .map(super::key::load_private_key)
        .transpose()?;

    let (reference, store) = open(&image, registry, OpenMode::Existing)?;
    let subject = stella_oci::artifact::resolve(&store, &reference).await?;
    let request = VerifyImageRequest {
        reference: reference.with_digest(subject.digest.clone()).to_string(),
        subject: subject.clone(),
        policy: policy.clone(),
        depth: args.depth.unwrap_or(DEFAULT_REFERRER_DEPTH),
        report_time: Some(generated_at),
    };
    let limits = Limits::default();
    let collected = stella_report::collect(&store, &request, &trust, now, &limits).await?;
    crate::cmd::evidence::print_request_stats(&store);
    let mut scanners = collected.scanners;
    scanners.extend(read_scan_files(&args.scans, &subject.digest, &limits)?);
    let trusted: &[String] = policy.vex.as_ref().map_or(&[], |v| &v.signers);
    let (vex, skipped) =
        OpenVexLookup::from_documents(&collected.vex_documents, &subject.digest, trusted)?;
    for s in &skipped {
        eprintln!("stella: skipped {s} (not signed by a trusted VEX signer)");
    }
    let decision = Decision {
        policy: &policy,
        revision_id: args
            .policy_revision
            .clone()
            .unwrap_or_else(|| "local".into()),
        environment: args.environment.clone(),
        vex: &vex,
        generated_at,
        now,
    };
    let report = stella_report::decide(&subject.digest, collected.evidence, scanners, &decision)?;
    let envelope = sign_key
        .as_ref()
        .map(|k| stella_report::sign_report(&report, k))
        .transpose()?;
    print(&report, envelope.as_ref(), args.output)?;
    Ok(outcome(&report))
}

fn outcome(report: &ImageReport) -> Outcome {
    verdict_outcome(report.verdict, report.summary.warned)
}

/// Exit status of a verdict (warn counts as pass, with a note).
pub(super) fn verdict_outcome(verdict: ReportVerdict, warned: usize) -> Outcome {
    match verdict {
        ReportVerdict::Pass => Outcome::Success,
        ReportVerdict::Warn => {
            eprintln!("stella: verdict warn: {warned} finding(s) warned (counts as pass)");
            Outcome::Success
        }
        ReportVerdict::Blocked => Outcome::VerificationFailed,
    }
}

fn print(
    report: &ImageReport,
    envelope: Option<&stella_attest::dsse::Envelope>,
    output: TextOrJson,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match output {
        TextOrJson::Json => {
            out.write_all(&stella_report::signed_output(report, envelope)?)?;
            out.write_all(b"\n")?;
        }
        TextOrJson::Text => {
            out.write_all(report.to_text().as_bytes())?;
            if envelope.is_some() {
                out.write_all(b"  signed: use --output json to get the DSSE envelope\n")?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// The policy file (relative key paths resolve from its directory), or an
/// empty policy: no rules, no trusted VEX, nothing required.
fn load_policy(path: Option<&Path>) -> anyhow::Result<(Policy, PathBuf)> {
    let Some(path) = path else {
        let (p, d) = Policy::parse(b"version: 1\nunsignedEvidence: ignore\n", &|_| None);
        let p = p.with_context(|| format!("built-in empty policy: {:?}", d.issues))?;
        return Ok((p, PathBuf::from(".")));
    };
    let policy = crate::cmd::policy::load_valid(path)?;
    if policy.signers.is_empty()
        && policy
            .requirements
            .iter()
            .any(|r| r.unsigned == UnsignedAction::Fail)
    {
        bail!("policy {}: requirements need signers", path.display());
    }
    let base = path
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    Ok((policy, base))
}

/// The verify-image flags the signer loader reads (only the trusted root).
fn signer_args(args: &ReportArgs) -> VerifyImageArgs {
    VerifyImageArgs {
        reference: args.image.clone(),
        use_referrers: true,
        bundle: None,
        policy: args.policy.clone(),
        require: Vec::new(),
        keys: Vec::new(),
        trust_roots: Vec::new(),
        keyless: KeylessArgs {
            trusted_root: args.trusted_root.clone(),
            ..KeylessArgs::default()
        },
        depth: args.depth,
        output: TextOrJson::Text,
        attach_verdict: false,
        verdict_key: None,
    }
}

/// Scanner reports given as files: unsigned, and about this image if they say.
fn read_scan_files(
    files: &[PathBuf],
    image: &Digest,
    limits: &Limits,
) -> anyhow::Result<Vec<TrustedReport>> {
    let mut out = Vec::new();
    for f in files {
        let bytes = crate::cmd::read_capped(f, limits.max_bytes)
            .with_context(|| format!("cannot read scanner report {}", f.display()))?;
        let report = parse_report(&bytes, limits)
            .with_context(|| format!("scanner report {}", f.display()))?;
        check_subject(&report, image).with_context(|| format!("scanner report {}", f.display()))?;
        out.push(TrustedReport {
            report: std::sync::Arc::new(report),
            trust: "unsigned".into(),
        });
    }
    Ok(out)
}

fn verify(args: &ReportVerifyArgs) -> anyhow::Result<Outcome> {
    let bytes = crate::cmd::read_capped(&args.report, MAX_JSON_DOCUMENT_BYTES)
        .with_context(|| format!("cannot read {}", args.report.display()))?;
    let mut keys = Vec::new();
    for k in &args.keys {
        let text = String::from_utf8(crate::cmd::read_capped(k, 1 << 20)?)
            .with_context(|| format!("{} is not PEM text", k.display()))?;
        keys.push(
            PublicKey::from_pem(&text).with_context(|| format!("public key {}", k.display()))?,
        );
    }
    match stella_report::verify_signed(&bytes, &keys) {
        Ok(report) => {
            println!(
                "verified {} {} verdict {}",
                report["reportId"].as_str().unwrap_or("?"),
                report["imageDigest"].as_str().unwrap_or("?"),
                report["verdict"].as_str().unwrap_or("?")
            );
            Ok(Outcome::Success)
        }
        Err(e @ stella_report::SignError::Malformed(_)) => Err(e.into()),
        Err(e) => {
            println!("NOT VERIFIED: {e}");
            Ok(Outcome::VerificationFailed)
        }
    }
}
