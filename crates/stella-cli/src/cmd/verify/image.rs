//! `stella verify image`: discover an image's evidence (among its referrers,
//! or in a StellaBundle), verify each piece, judge the lot against a policy,
//! print a deterministic report, and optionally sign the verdict and attach
//! it to the image.
//!
//! One engine serves both sources: `--bundle` first checks the bundle's
//! integrity while importing it into a private temporary OCI layout, then
//! discovery runs on that layout exactly as it runs on a registry. The
//! work is `stella_engine::image`; this module parses flags, loads the
//! policy and keys, and prints.
//!
//! Keyless signers use `--trusted-root`, else the sigstore trusted root
//! `stella trust update` cached; the report's shape is fixed, so a cached
//! root's origin is noted on stderr.
//!
//! Time: age limits are checked against the wall clock. `SOURCE_DATE_EPOCH`
//! only stamps the report's `evaluatedAt` (reproducible output); it never
//! moves the evaluation time, so a past value cannot loosen `maxAge`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use stella_attest::verify::TrustPolicy;
use stella_crypto::PublicKey;
use stella_crypto::x509::Certificate;
use stella_engine::image::{VerifyImageRequest, discover_in_index, judge};
use stella_engine::trust::Thresholds;
use stella_engine::{NamedSigner, Trust};
use stella_oci::AnyStore;
use stella_oci::store::ContentRead;
use stella_trust::ChosenTrustedRoot;
use stella_types::Digest;
use stella_types::limits::{DEFAULT_REFERRER_DEPTH, MAX_JSON_DOCUMENT_BYTES};
use stella_types::predicate_types::{STELLA_VERDICT, resolve_alias};
use stella_verify::policy::{KeylessIdentity, Policy, Requirement, Signer, UnsignedAction};
use stella_verify::{Report, Verdict};
use time::OffsetDateTime;

use crate::cli::{RegistryArgs, TextOrJson, VerifyImageArgs};
use crate::exit::Outcome;
use crate::store::{OpenMode, open};

/// The report's `evaluatedAt` stamp: `SOURCE_DATE_EPOCH` when set (so the
/// same inputs give the same bytes), else none (the evaluation time).
fn report_stamp() -> anyhow::Result<Option<OffsetDateTime>> {
    crate::cmd::evidence::source_date_epoch()
}

/// The evaluation time: now, in whole seconds.
fn wall_clock() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

pub async fn run(args: VerifyImageArgs, registry: &RegistryArgs) -> anyhow::Result<Outcome> {
    let report_time = report_stamp()?;
    let now = wall_clock();
    let (policy, base_dir) = load_policy(&args)?;
    let trust = Trust {
        signers: load_signers(&policy, &base_dir, &args, now.unix_timestamp())?,
    };
    let depth = args.depth.unwrap_or(DEFAULT_REFERRER_DEPTH);

    // Where the evidence comes from.
    let _tmp;
    let mut parent_index = None;
    let (display, store, subject) = if let Some(bundle) = &args.bundle {
        let tmp = tempfile::tempdir().context("cannot create a temporary directory")?;
        let dir = tmp.path().join("layout");
        let layout = stella_oci::layout::OciLayout::open_or_create(&dir)?;
        let limits = stella_bundle::tarball::ReadLimits::default();
        // A private scratch layout: evidence-only bundles are read without their image.
        let scratch = stella_bundle::MissingSubject::AllowInScratchStore;
        stella_bundle::import::import_bundle_with(
            bundle,
            &layout,
            Some("subject"),
            limits,
            scratch,
        )
        .await
        .with_context(|| format!("bundle {}", bundle.display()))?;
        let store = AnyStore::Layout(layout);
        let subject = store.resolve_tag("subject").await?;
        if let Some(r) = &args.reference {
            let want = stella_types::Reference::parse(r)?;
            if let Some(d) = want.digest()
                && d != &subject.digest
            {
                bail!(
                    "bundle {} is about {}, not {d}",
                    bundle.display(),
                    subject.digest
                );
            }
        }
        _tmp = Some(tmp);
        let display = args
            .reference
            .clone()
            .unwrap_or_else(|| format!("bundle:{}", bundle.display()));
        (display, store, subject)
    } else {
        _tmp = None;
        let Some(r) = &args.reference else {
            bail!("--use-referrers needs an image reference");
        };
        let (reference, store) = open(r, registry, OpenMode::Existing)?;
        let subject = stella_oci::artifact::resolve(&store, &reference).await?;
        // `repo:tag@sha256:<platform>`: the tag's index holds buildx attestations.
        parent_index = crate::cmd::evidence::parent_index(&store, &reference, &subject).await?;
        (
            reference.with_digest(subject.digest.clone()).to_string(),
            store,
            subject,
        )
    };

    let evidence =
        discover_in_index(&store, &subject, parent_index.as_ref(), depth, &trust, now).await;
    crate::cmd::evidence::print_request_stats(&store);
    let request = VerifyImageRequest {
        reference: display,
        subject,
        policy,
        depth,
        report_time,
    };
    let report = judge(&request, &evidence?, now);
    print_report(&report, args.output)?;

    if args.attach_verdict {
        attach_verdict(&args, registry, &report).await?;
    }
    Ok(match report.verdict {
        Verdict::Pass => Outcome::Success,
        Verdict::Fail => Outcome::VerificationFailed,
    })
}

fn print_report(report: &Report, output: TextOrJson) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match output {
        TextOrJson::Json => {
            out.write_all(&report.to_canonical_json())?;
            out.write_all(b"\n")?;
        }
        TextOrJson::Text => out.write_all(report.to_text().as_bytes())?,
    }
    out.flush()?;
    Ok(())
}

fn alias(a: &str) -> Option<String> {
    resolve_alias(a).map(str::to_string)
}

/// The policy file, or an ad-hoc policy made of --require and the trust flags.
/// Returns the directory that relative paths in the policy are resolved from.
fn load_policy(args: &VerifyImageArgs) -> anyhow::Result<(Policy, PathBuf)> {
    let (mut policy, base) = match &args.policy {
        Some(path) => {
            let policy = crate::cmd::policy::load_valid(path)?;
            let base = path
                .parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
            (policy, base)
        }
        None => {
            if args.require.is_empty() {
                bail!("nothing to check: give --policy or at least one --require");
            }
            let policy = Policy {
                version: stella_verify::policy::POLICY_VERSION,
                digest: Digest::sha256_of(b""),
                signers: BTreeMap::new(),
                unsigned_evidence: UnsignedAction::Fail,
                max_evidence_age_seconds: None,
                require_transparency_log: false,
                requirements: Vec::new(),
                vex: None,
                rules: Vec::new(),
            };
            (policy, PathBuf::from("."))
        }
    };
    // Command-line trust material becomes signers named after the flag.
    for (i, k) in args.keys.iter().enumerate() {
        if is_private_key_file(k) {
            continue; // only signs the verdict
        }
        let s = Signer {
            keys: vec![k.display().to_string()],
            ..Signer::default()
        };
        policy.signers.insert(format!("key-{}", i + 1), s);
    }
    for (i, c) in args.trust_roots.iter().enumerate() {
        let s = Signer {
            ca_roots: vec![c.display().to_string()],
            ..Signer::default()
        };
        policy.signers.insert(format!("trust-root-{}", i + 1), s);
    }
    let k = &args.keyless;
    if k.certificate_identity.is_some()
        || k.certificate_identity_regexp.is_some()
        || k.certificate_oidc_issuer.is_some()
        || k.certificate_oidc_issuer_regexp.is_some()
    {
        let s = Signer {
            keyless: Some(KeylessIdentity {
                identity: k.certificate_identity.clone(),
                identity_regexp: k.certificate_identity_regexp.clone(),
                issuer: k.certificate_oidc_issuer.clone(),
                issuer_regexp: k.certificate_oidc_issuer_regexp.clone(),
                tlog_threshold: k.tlog_threshold.map(usize::from),
                timestamp_threshold: k.timestamp_threshold.map(usize::from),
            }),
            ..Signer::default()
        };
        policy.signers.insert("keyless".to_string(), s);
    } else if k.tlog_threshold.is_some() || k.timestamp_threshold.is_some() {
        bail!(
            "--tlog-threshold/--timestamp-threshold apply to the signer --certificate-identity makes; set tlogThreshold/timestampThreshold on the policy's keyless signers instead"
        );
    }
    let existing: BTreeSet<String> = policy
        .requirements
        .iter()
        .map(|r| r.resolved_type.clone())
        .collect();
    for r in &args.require {
        let resolved = alias(r).unwrap_or_else(|| r.clone());
        if existing.contains(&resolved) {
            continue;
        }
        policy.requirements.push(Requirement {
            name: r.clone(),
            r#type: r.clone(),
            resolved_type: resolved,
            signers: Vec::new(),
            max_age_seconds: policy.max_evidence_age_seconds,
            transparency_log: policy.require_transparency_log,
            unsigned: policy.unsigned_evidence,
        });
    }
    if policy.requirements.is_empty() {
        bail!("the policy requires nothing; add requirements or --require");
    }
    if policy.signers.is_empty()
        && policy
            .requirements
            .iter()
            .any(|r| r.unsigned == UnsignedAction::Fail)
    {
        bail!("no trusted signer: give --key or --trust-root (or signers in the policy)");
    }
    Ok((policy, base))
}

fn is_private_key_file(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t.contains("PRIVATE KEY-----"))
}

fn read_text(base: &Path, p: &str) -> anyhow::Result<(PathBuf, String)> {
    let path = if Path::new(p).is_absolute() {
        PathBuf::from(p)
    } else {
        base.join(p)
    };
    let bytes = crate::cmd::read_capped(&path, MAX_JSON_DOCUMENT_BYTES)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let text =
        String::from_utf8(bytes).with_context(|| format!("{} is not PEM text", path.display()))?;
    Ok((path, text))
}

pub(crate) fn load_signers(
    policy: &Policy,
    base: &Path,
    args: &VerifyImageArgs,
    now: i64,
) -> anyhow::Result<Vec<NamedSigner>> {
    let mut out = Vec::new();
    let root = keyless_root(policy, args, now)?;
    for (name, s) in &policy.signers {
        // Flags are relative to the working directory, policy paths to the policy.
        let from_flag = name.starts_with("key-") || name.starts_with("trust-root-");
        let dir = if from_flag { Path::new(".") } else { base };
        let mut tp = TrustPolicy {
            words: super::trust::cli_words(),
            ..TrustPolicy::default()
        };
        for k in &s.keys {
            let (path, text) = read_text(dir, k)?;
            tp.keys.push(
                PublicKey::from_pem(&text)
                    .with_context(|| format!("public key {}", path.display()))?,
            );
        }
        for c in &s.ca_roots {
            let (path, text) = read_text(dir, c)?;
            let certs = Certificate::pem_chain(&text)
                .with_context(|| format!("CA certificate {}", path.display()))?;
            tp.ca_roots.extend(certs);
        }
        if let (Some(id), Some(root)) = (&s.keyless, &root) {
            tp.keyless = Some(keyless_trust_for(name, id, root)?);
        }
        out.push(NamedSigner {
            name: name.clone(),
            trust: tp,
        });
    }
    Ok(out)
}

/// The sigstore trusted root when a signer is keyless (`--trusted-root`,
/// else the cached one), chosen once. The report's shape is fixed
/// (docs/policy.md), so a cached root's origin is noted on stderr.
fn keyless_root(
    policy: &Policy,
    args: &VerifyImageArgs,
    now: i64,
) -> anyhow::Result<Option<ChosenTrustedRoot>> {
    let Some(name) = policy
        .signers
        .iter()
        .find_map(|(name, s)| s.keyless.as_ref().map(|_| name))
    else {
        return Ok(None);
    };
    let root = super::trust::choose_root(args.keyless.trusted_root.as_deref(), now)
        .with_context(|| format!("signer {name:?} is keyless"))?;
    if let Some(note) = super::trust::origin_note(&root.origin) {
        eprintln!("stella: {note}");
    }
    Ok(Some(root))
}

/// Sigstore trust for a keyless policy signer: the trusted root is
/// `--trusted-root` or the cached one (a policy names identities, not trust
/// roots); the identity, issuer and thresholds come from the signer.
fn keyless_trust_for(
    name: &str,
    id: &KeylessIdentity,
    root: &ChosenTrustedRoot,
) -> anyhow::Result<stella_attest::keyless::KeylessTrust> {
    let m = |exact: &Option<String>, re: &Option<String>, what: &str| {
        super::trust::matcher(exact, re, what).with_context(|| format!("signer {name:?}"))
    };
    let identity = stella_sigstore::IdentityPolicy {
        identity: m(&id.identity, &id.identity_regexp, "identity")?,
        issuer: m(&id.issuer, &id.issuer_regexp, "oidc-issuer")?,
    };
    let thresholds = Thresholds {
        tlog: id.tlog_threshold,
        timestamps: id.timestamp_threshold,
    };
    super::trust::keyless_from(root, identity, thresholds, None)
        .with_context(|| format!("signer {name:?}"))
}

/// Signs the report as a verdict attestation and pushes it as a referrer.
async fn attach_verdict(
    args: &VerifyImageArgs,
    registry: &RegistryArgs,
    report: &Report,
) -> anyhow::Result<()> {
    let key_path = match &args.verdict_key {
        Some(k) => k.clone(),
        None => args
            .keys
            .iter()
            .find(|k| is_private_key_file(k))
            .cloned()
            .context("--attach-verdict needs a private key: --verdict-key <key> or a private key among --key")?,
    };
    let Some(r) = &args.reference else {
        bail!("--attach-verdict needs the image reference to attach to");
    };
    let key = crate::cmd::attest::load_private_key(&key_path)?;
    let predicate: serde_json::Value = serde_json::from_slice(&report.to_canonical_json())?;
    let (reference, store) = open(r, registry, OpenMode::Existing)?;
    let subject = stella_oci::artifact::resolve(&store, &reference).await?;
    if subject.digest != report.image.digest {
        bail!(
            "{r} now resolves to {}, not the verified {}",
            subject.digest,
            report.image.digest
        );
    }
    let pushed = crate::cmd::attest::sign_and_push(
        &store,
        &reference,
        &subject,
        STELLA_VERDICT,
        predicate,
        &key,
        &[],
    )
    .await?;
    eprintln!("attached verdict {}", pushed);
    Ok(())
}
