//! `stella verify image`: discover an image's evidence (among its referrers,
//! or in a StellaBundle), verify each piece, judge the lot against a policy,
//! print a deterministic report, and optionally sign the verdict and attach
//! it to the image.
//!
//! One engine serves both sources: `--bundle` first checks the bundle's
//! integrity while importing it into a private temporary OCI layout, then
//! discovery runs on that layout exactly as it runs on a registry.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use stella_attest::verify::{AttestationVerdict, TrustPolicy, verify_attestation};
use stella_crypto::PublicKey;
use stella_crypto::x509::Certificate;
use stella_oci::referrers::walk_referrers;
use stella_oci::store::ContentRead;
use stella_oci::store::ReferrersRead;
use stella_oci::{AnyStore, OciError};
use stella_types::limits::{
    DEFAULT_REFERRER_DEPTH, MAX_JSON_DOCUMENT_BYTES, MAX_REFERRERS_PER_SUBJECT,
};
use stella_types::media_types::annotations;
use stella_types::predicate_types::{STELLA_VERDICT, resolve_alias};
use stella_types::{Descriptor, Digest, Manifest};
use stella_verify::policy::{KeylessIdentity, Policy, Requirement, Signer, UnsignedAction};
use stella_verify::{Evidence, Report, SignatureCheck, Verdict, evaluate};
use time::OffsetDateTime;

use crate::cli::{RegistryArgs, TextOrJson, VerifyImageArgs};
use crate::exit::Outcome;
use crate::store::{OpenMode, open};

/// Trust material of one named policy signer, loaded from disk.
struct SignerTrust {
    name: String,
    policy: TrustPolicy,
}

pub async fn run(args: VerifyImageArgs, registry: &RegistryArgs) -> anyhow::Result<Outcome> {
    let now = stella_types::timestamp::creation_time()?;
    let (policy, base_dir) = load_policy(&args)?;
    let signers = load_signers(&policy, &base_dir, &args)?;
    let depth = args.depth.unwrap_or(DEFAULT_REFERRER_DEPTH);

    // Where the evidence comes from.
    let _tmp;
    let (display, store, subject) = if let Some(bundle) = &args.bundle {
        let tmp = tempfile::tempdir().context("cannot create a temporary directory")?;
        let dir = tmp.path().join("layout");
        let layout = stella_oci::layout::OciLayout::open_or_create(&dir)?;
        let limits = stella_bundle::tarball::ReadLimits::default();
        stella_bundle::import::import_bundle(bundle, &layout, Some("subject"), limits)
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
        (
            reference.with_digest(subject.digest.clone()).to_string(),
            store,
            subject,
        )
    };

    let evidence = discover(&store, &subject, depth, &signers).await;
    crate::cmd::evidence::print_request_stats(&store);
    let report = evaluate(&policy, &display, &subject.digest, &evidence?, now);
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
            let (policy, diagnostics) = crate::cmd::policy::load(path)?;
            let Some(policy) = policy else {
                let first: Vec<String> = diagnostics
                    .issues
                    .iter()
                    .filter(|i| i.severity == stella_verify::Severity::Error)
                    .take(3)
                    .map(|i| format!("{}: {}", i.path, i.message))
                    .collect();
                bail!(
                    "policy {} is invalid ({} error(s)): {} (see `stella policy validate`)",
                    path.display(),
                    diagnostics.error_count,
                    first.join("; ")
                );
            };
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
            }),
            ..Signer::default()
        };
        policy.signers.insert("keyless".to_string(), s);
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

fn load_signers(
    policy: &Policy,
    base: &Path,
    args: &VerifyImageArgs,
) -> anyhow::Result<Vec<SignerTrust>> {
    let mut out = Vec::new();
    for (name, s) in &policy.signers {
        // Flags are relative to the working directory, policy paths to the policy.
        let from_flag = name.starts_with("key-") || name.starts_with("trust-root-");
        let dir = if from_flag { Path::new(".") } else { base };
        let mut tp = TrustPolicy::default();
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
        if let Some(id) = &s.keyless {
            tp.keyless = Some(keyless_trust_for(name, id, args)?);
        }
        out.push(SignerTrust {
            name: name.clone(),
            policy: tp,
        });
    }
    Ok(out)
}

/// Sigstore trust for a keyless policy signer: the trusted root comes from
/// `--trusted-root` (a policy names identities, not trust roots), the
/// identity and issuer from the signer.
fn keyless_trust_for(
    name: &str,
    id: &KeylessIdentity,
    args: &VerifyImageArgs,
) -> anyhow::Result<stella_attest::keyless::KeylessTrust> {
    if args.keyless.trusted_root.is_none() {
        bail!("signer {name:?} is keyless: give --trusted-root <trusted_root.json>");
    }
    let flags = crate::cli::KeylessArgs {
        trusted_root: args.keyless.trusted_root.clone(),
        certificate_identity: id.identity.clone(),
        certificate_identity_regexp: id.identity_regexp.clone(),
        certificate_oidc_issuer: id.issuer.clone(),
        certificate_oidc_issuer_regexp: id.issuer_regexp.clone(),
    };
    crate::cmd::bundle::keyless_trust(&flags, None)
        .with_context(|| format!("signer {name:?}"))?
        .with_context(|| format!("signer {name:?} has no usable keyless trust"))
}

/// Media types under which an artifact layer carries an attestation.
fn is_attestation_type(mt: &str) -> bool {
    mt == stella_types::media_types::DSSE_ENVELOPE
        || mt == stella_types::media_types::SIGSTORE_BUNDLE_V03
        || mt.starts_with("application/vnd.dev.sigstore.bundle")
}

fn attestation_layer(manifest: &Manifest, artifact_type: &str) -> Option<Descriptor> {
    let Manifest::Image(m) = manifest else {
        return None;
    };
    m.layers
        .iter()
        .find(|l| {
            is_attestation_type(&l.media_type)
                || (is_attestation_type(artifact_type) && m.layers.len() == 1)
        })
        .cloned()
}

/// The statement an attestation container carries, parsed WITHOUT trusting
/// it: only used to learn which digests it claims to be about, which is then
/// confirmed by verifying the signature against exactly those digests.
fn claimed_statement(
    bytes: &[u8],
    media_type: &str,
) -> Option<stella_attest::statement::Statement> {
    use stella_attest::bundle::{Bundle, is_bundle_media_type};
    use stella_attest::dsse::Envelope;
    let envelope = if is_bundle_media_type(media_type) {
        Bundle::parse(bytes).ok()?.envelope
    } else if media_type == stella_types::media_types::DSSE_ENVELOPE {
        Envelope::parse(bytes).ok()?
    } else {
        // Same sniffing as verify_attestation for other media types.
        Bundle::parse(bytes)
            .map(|b| b.envelope)
            .or_else(|_| Envelope::parse(bytes))
            .ok()?
    };
    stella_attest::statement::Statement::parse(envelope.payload_bytes()).ok()
}

/// The result of checking one attestation against every policy signer.
struct AttestationCheck {
    signature: SignatureCheck,
    /// The verified predicate type; for a failed signature, the claimed one
    /// (display only: failed evidence never satisfies a requirement).
    predicate_type: Option<String>,
    /// Set when a trusted signer DID sign the statement, but about other digests.
    other_subject: Option<String>,
}

/// Verifies an attestation against each signer separately, so the report
/// can say exactly which policy signers vouch for it.
///
/// Evidence "about another digest" is established without reading error
/// texts: when no signer verifies it for `about`, the statement's claimed
/// subjects are read and, if they do not include `about`, the signature is
/// verified again against those claimed digests. If a trusted signer did
/// sign that other statement, the evidence is rejected as being about
/// another digest; otherwise it is a plain signature failure.
fn check_attestation(
    bytes: &[u8],
    media_type: &str,
    about: &Digest,
    signers: &[SignerTrust],
) -> AttestationCheck {
    let claimed = claimed_statement(bytes, media_type);
    let claimed_type = claimed.as_ref().map(|s| s.predicate_type.clone());
    if signers.is_empty() {
        return AttestationCheck {
            signature: SignatureCheck::Failed {
                reason: "no trusted signer to check it against".into(),
            },
            predicate_type: claimed_type,
            other_subject: None,
        };
    }
    let mut verified_by = Vec::new();
    let mut verified_type = None;
    let mut logged = false;
    let mut reasons = BTreeSet::new();
    for s in signers {
        let v: AttestationVerdict = verify_attestation(bytes, media_type, about, &s.policy);
        if v.verified {
            verified_by.push(s.name.clone());
            verified_type = v.predicate_type.clone();
            // The keyless engine only accepts a bundle with a verified
            // transparency-log entry (threshold 1).
            logged |= s.policy.keyless.is_some();
        } else {
            reasons.insert(v.reason);
        }
    }
    if !verified_by.is_empty() {
        verified_by.sort();
        return AttestationCheck {
            signature: SignatureCheck::Verified {
                signers: verified_by,
                transparency_log: logged,
            },
            predicate_type: verified_type,
            other_subject: None,
        };
    }
    let reason = reasons.into_iter().collect::<Vec<_>>().join("; ");
    let mut other_subject = None;
    if let Some(st) = claimed.as_ref().filter(|st| !st.has_subject_digest(about)) {
        let others: Vec<Digest> = st
            .subject_digests()
            .iter()
            .filter_map(|d| Digest::parse(d).ok())
            .collect();
        let signed_elsewhere = others.iter().any(|d| {
            signers
                .iter()
                .any(|s| verify_attestation(bytes, media_type, d, &s.policy).verified)
        });
        if signed_elsewhere {
            other_subject = Some(st.subject_digests().join(", "));
        }
    }
    AttestationCheck {
        signature: SignatureCheck::Failed { reason },
        predicate_type: claimed_type,
        other_subject,
    }
}

fn created_of(d: &Descriptor, manifest: &Manifest) -> Option<OffsetDateTime> {
    d.annotation(annotations::CREATED)
        .or_else(|| {
            manifest
                .annotations()
                .get(annotations::CREATED)
                .map(String::as_str)
        })
        .and_then(stella_types::timestamp::parse_rfc3339)
}

/// Deepest level of the referrers graph that can change a verdict: the
/// image's referrers (level 1) and the attestations about them (level 2,
/// e.g. a signature on an SBOM). `--depth` above 2 is accepted but walks no
/// further: deeper artifacts could only vouch for evidence of evidence.
const USEFUL_DEPTH: usize = 2;
/// Manifests and blobs fetched at the same time.
const FETCH_CONCURRENCY: usize = 16;

/// One artifact to examine, found at level 1 (`parent` = the image) or 2.
struct Item {
    descriptor: Descriptor,
    parent: Digest,
    legacy: Option<String>,
}

/// Walks the referrers graph and turns every artifact into policy evidence.
/// A plain artifact (an SBOM) counts as signed when an attestation about its
/// digest, verified by a policy signer, refers to it.
///
/// Work is bounded: at most [`USEFUL_DEPTH`] levels, at most
/// `MAX_REFERRERS_PER_SUBJECT` artifacts in all, each digest examined once
/// (cycles and diamonds are cut by a visited set), one manifest request per
/// artifact and one blob request per attestation, none repeated.
async fn discover(
    store: &AnyStore,
    subject: &Descriptor,
    depth: usize,
    signers: &[SignerTrust],
) -> anyhow::Result<Vec<Evidence>> {
    use futures_util::stream::{self, StreamExt, TryStreamExt};
    let depth = depth.clamp(1, USEFUL_DEPTH);
    let top = walk_referrers(store, &subject.digest, &[], 1).await?;
    let mut visited: BTreeSet<Digest> = BTreeSet::new();
    visited.insert(subject.digest.clone());
    let mut items = Vec::new();
    for n in &top {
        if n.dangling
            || n.legacy.as_deref() == Some("sig")
            || !visited.insert(n.descriptor.digest.clone())
        {
            continue;
        }
        items.push(Item {
            descriptor: n.descriptor.clone(),
            parent: subject.digest.clone(),
            legacy: n.legacy.clone(),
        });
    }
    if depth > 1 {
        // Only plain artifacts (an SBOM, a VEX document) can be vouched for
        // by attestations about them; an attestation is signed in itself and
        // a signature lent to it could not change its standing, so its own
        // referrers are not listed (saves one listing per attestation).
        let parents: Vec<Digest> = items
            .iter()
            .filter(|i| {
                !i.descriptor
                    .artifact_type
                    .as_deref()
                    .is_some_and(is_attestation_type)
            })
            .map(|i| i.descriptor.digest.clone())
            .collect();
        // Below the image, cosign legacy tags are not looked up (three
        // requests per artifact, almost never there).
        let levels: Vec<stella_oci::store::ReferrerListing> = stream::iter(
            parents
                .iter()
                .map(|d| store.list_referrers_skip_legacy(d, &[])),
        )
        .buffered(FETCH_CONCURRENCY)
        .try_collect()
        .await?;
        for (parent, listing) in parents.iter().zip(levels) {
            for c in listing.referrers {
                if c.dangling || !visited.insert(c.descriptor.digest.clone()) {
                    continue;
                }
                items.push(Item {
                    descriptor: c.descriptor,
                    parent: parent.clone(),
                    legacy: None,
                });
            }
        }
    }
    if items.len() > MAX_REFERRERS_PER_SUBJECT {
        bail!(
            "the referrers graph of {} has {} artifacts, over the limit of {MAX_REFERRERS_PER_SUBJECT}",
            subject.digest,
            items.len()
        );
    }
    let examined: Vec<Option<Evidence>> =
        stream::iter(items.iter().map(|it| examine(store, it, signers)))
            .buffered(FETCH_CONCURRENCY)
            .try_collect()
            .await?;
    let mut out = Vec::new();
    let mut lent = Vec::new();
    for (it, ev) in items.iter().zip(examined) {
        let Some(ev) = ev else { continue };
        if it.parent == subject.digest || it.legacy.is_some() {
            out.push(ev);
        } else if ev.other_subject.is_none() {
            // An attestation about another artifact (e.g. signing an SBOM):
            // lend its signers to that artifact.
            if let SignatureCheck::Verified { signers, .. } = &ev.signature {
                lent.push((it.parent.clone(), signers.clone()));
            }
        }
    }
    for (target, signers) in lent {
        lend_signature(&mut out, &target, &signers);
    }
    Ok(out)
}

/// Fetches one artifact's manifest (and its attestation layer) and checks it.
/// `None` when the manifest is gone (a stale index entry).
async fn examine(
    store: &AnyStore,
    it: &Item,
    signers: &[SignerTrust],
) -> anyhow::Result<Option<Evidence>> {
    let digest = &it.descriptor.digest;
    let fetched = match store.fetch_manifest(digest).await {
        Ok(f) => f,
        Err(OciError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("referrer {digest}")),
    };
    let manifest = Manifest::parse(&fetched.bytes, Some(&it.descriptor.media_type))
        .with_context(|| format!("referrer {digest}"))?;
    let artifact_type = it
        .descriptor
        .artifact_type
        .clone()
        .or_else(|| manifest.artifact_type().map(str::to_string))
        .unwrap_or_default();
    let created = created_of(&it.descriptor, &manifest);
    // A referrer manifest names its subject: one listed under this image but
    // naming another digest (copied index entry) is not about this image.
    let manifest_other = match manifest.subject() {
        Some(s) if it.legacy.is_none() && s.digest != it.parent => {
            Some(format!("{} (the referrer manifest's subject)", s.digest))
        }
        _ => None,
    };
    let Some(layer) = attestation_layer(&manifest, &artifact_type) else {
        return Ok(Some(Evidence {
            digest: digest.clone(),
            artifact_type,
            predicate_type: None,
            signature: SignatureCheck::Unsigned,
            created,
            other_subject: manifest_other,
        }));
    };
    let bytes = store
        .fetch_blob_bytes(&layer, MAX_JSON_DOCUMENT_BYTES)
        .await
        .with_context(|| format!("attestation {digest}"))?;
    let check = check_attestation(&bytes, &layer.media_type, &it.parent, signers);
    Ok(Some(Evidence {
        digest: digest.clone(),
        artifact_type,
        predicate_type: check.predicate_type,
        signature: check.signature,
        created,
        other_subject: check.other_subject.or(manifest_other),
    }))
}

fn lend_signature(out: &mut [Evidence], target: &Digest, signers: &[String]) {
    if let Some(e) = out.iter_mut().find(|e| &e.digest == target) {
        match &mut e.signature {
            SignatureCheck::Verified { signers: s, .. } => {
                s.extend(signers.iter().cloned());
                s.sort();
                s.dedup();
            }
            // Only a plain (unsigned) artifact borrows signers: a failed
            // or rejected attestation stays failed whoever refers to it.
            SignatureCheck::Unsigned if e.other_subject.is_none() => {
                e.signature = SignatureCheck::Verified {
                    signers: signers.to_vec(),
                    transparency_log: false,
                }
            }
            SignatureCheck::Unsigned | SignatureCheck::Failed { .. } => {}
        }
    }
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
