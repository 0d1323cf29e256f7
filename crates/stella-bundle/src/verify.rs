//! `bundle verify`: one streaming pass over a bundle that checks every
//! blob's digest and size, the checksum list, the layout's consistency
//! (every referrer's subject is the bundle subject or another manifest in
//! it; every blob a manifest lists is present, except image config/layers
//! when the bundle was exported without `--include-image`), the bundle
//! manifest signature, every signed attestation (through an
//! [`AttestationVerifier`], in practice `stella_attest::verify`), subject
//! binding, and required artifact / predicate types. Produces a
//! deterministic [`VerifyReport`].
//!
//! Which layers are attestations is the one classifier's answer
//! (`stella_types::media_types::attestation_layers`): by media type, or by
//! content for a generic layer type under an attestation `artifactType`.
//!
//! Memory: only manifests (parsed, capped) and one attestation document at
//! a time are held; other blobs are hashed as they stream.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use serde::Serialize;
use stella_types::limits::{MAX_JSON_DOCUMENT_BYTES, MAX_MANIFEST_BYTES};
use stella_types::media_types;
use stella_types::{Descriptor, Digest, Manifest};

use crate::error::{BundleError, codes};
use crate::format::*;
use crate::limits::MAX_MANIFEST_BYTES_TOTAL;
use crate::reader::BundleReader;
use crate::tarball::ReadLimits;

/// The verdict of the attestation engine on one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationOutcome {
    pub verified: bool,
    pub predicate_type: Option<String>,
    pub signer: Option<String>,
    pub reason: String,
    /// When a Rekor checkpoint was pinned: one entry per transparency-log
    /// entry of the document (empty when it has none or none was pinned).
    pub tlog_anchors: Vec<TlogAnchor>,
}

/// Whether one transparency-log inclusion proof of an attestation is tied to
/// the checkpoint the user pinned (`--rekor-checkpoint`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TlogAnchor {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_index: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree_size: Option<u64>,
    pub anchored: bool,
    pub detail: String,
}

/// Verifies one signed attestation document (DSSE envelope or sigstore
/// bundle, by media type) whose statement must bind to `subject`.
pub trait AttestationVerifier {
    fn verify(&self, bytes: &[u8], media_type: &str, subject: &Digest) -> AttestationOutcome;
}

/// What `verify_bundle` checks.
#[derive(Default)]
pub struct VerifyOptions<'a> {
    /// `None`: integrity only, attestations reported as not checked (used by import).
    pub attestations: Option<&'a dyn AttestationVerifier>,
    /// Checks the bundle manifest signature; `None` means no keys.
    pub manifest_signature: Option<&'a dyn ManifestSignatureVerifier>,
    /// Artifact types or predicate types that must be present (and verified).
    pub require: Vec<String>,
    /// The user pinned a Rekor checkpoint: the attestation verifier anchors
    /// every inclusion proof to it and reports them in
    /// [`AttestationOutcome::tlog_anchors`]; any proof that is not anchored
    /// (or no proof at all) fails verification unless
    /// `allow_unanchored_proofs`.
    pub rekor_checkpoint_given: bool,
    /// Accept inclusion proofs that could not be tied to the pinned
    /// checkpoint (they are still listed in the report). Risky.
    pub allow_unanchored_proofs: bool,
    /// Check integrity and structure only: attestations and the bundle
    /// manifest signature are reported as not checked, not failed (import).
    pub integrity_only: bool,
    pub limits: ReadLimits,
    /// How reasons name the caller's inputs (a command line names its
    /// flags); plain words by default. The library names no flag itself.
    pub words: VerifyWords,
}

/// What the caller calls the inputs that reasons mention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyWords {
    /// The trusted keys for the bundle manifest signature.
    pub key: String,
    /// The switch that accepts unanchored inclusion proofs.
    pub allow_unanchored: String,
}

impl Default for VerifyWords {
    fn default() -> Self {
        VerifyWords {
            key: "trusted key".into(),
            allow_unanchored: "unanchored proofs allowed".into(),
        }
    }
}

/// Status of one check or artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Integrity (and structure) checked.
    Ok,
    /// Signature verified too.
    Verified,
    Failed,
    NotChecked,
    Absent,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Verified => "verified",
            Status::Failed => "failed",
            Status::NotChecked => "not-checked",
            Status::Absent => "absent",
        }
    }
}

/// One bundle-level check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub detail: String,
}

/// One artifact of the bundle.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactReport {
    pub digest: Digest,
    pub role: Role,
    pub media_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refers_to: Option<Digest>,
    pub size: u64,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicate_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// A `--require` and whether it was met.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequirementReport {
    pub requirement: String,
    pub satisfied: bool,
    pub by: Vec<Digest>,
}

/// A verification failure with its stable code.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub code: String,
    pub reason: String,
}

/// The result of `bundle verify`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    pub verified: bool,
    pub subject: Digest,
    pub tag: String,
    pub created: String,
    pub tool: String,
    pub compression: String,
    pub checks: Vec<Check>,
    pub artifacts: Vec<ArtifactReport>,
    pub requirements: Vec<RequirementReport>,
    pub failures: Vec<Failure>,
}

impl VerifyReport {
    pub fn has_failure(&self, code: &str) -> bool {
        self.failures.iter().any(|f| f.code == code)
    }
}

struct ParsedManifest {
    subject: Option<Digest>,
    children: Vec<Descriptor>,
    attestation_layers: Vec<Descriptor>,
    is_index: bool,
}

fn fail(failures: &mut Vec<Failure>, e: &BundleError) {
    let reason = match e {
        BundleError::VerificationFailed { reason, .. } | BundleError::Unusable { reason, .. } => {
            reason.clone()
        }
        other => other.to_string(),
    };
    failures.push(Failure {
        code: e.code().to_string(),
        reason,
    });
}

/// Verifies a bundle in one streaming pass. `Err` only for unusable input
/// (exit 2); verification failures are in the report (`verified: false`).
pub fn verify_bundle<R: Read + 'static>(
    input: R,
    opts: &VerifyOptions<'_>,
) -> Result<VerifyReport, BundleError> {
    let mut reader = BundleReader::open(input, opts.limits)?;
    verify_open(&mut reader, opts)
}

/// [`verify_bundle`] over an already opened reader (positioned before the blobs).
pub fn verify_open(
    reader: &mut BundleReader,
    opts: &VerifyOptions<'_>,
) -> Result<VerifyReport, BundleError> {
    let manifest = reader.manifest().clone();
    let mut failures: Vec<Failure> = Vec::new();
    let mut checks: Vec<Check> = Vec::new();
    for e in reader.take_soft_failures() {
        fail(&mut failures, &e);
    }
    let mut problems: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
    let mut parsed: BTreeMap<Digest, ParsedManifest> = BTreeMap::new();
    let mut verdicts: BTreeMap<(Digest, Digest), AttestationOutcome> = BTreeMap::new();
    let mut manifest_bytes_total: u64 = 0;

    // Subjects each attestation blob is claimed to be about (from the bundle manifest; checked against the real manifests below).
    let claimed_subjects = |a: &ArtifactEntry| -> BTreeSet<Digest> {
        a.used_by
            .iter()
            .filter_map(|u| manifest.artifact(u))
            .filter_map(|r| r.refers_to.clone())
            .collect()
    };

    // A blob of a generic type (`oras attach` defaults) that a referrer
    // with an attestation artifactType uses: read by content.
    let generic_attestation_layer = |a: &ArtifactEntry| -> bool {
        media_types::is_generic_layer_type(&a.media_type)
            && a.used_by
                .iter()
                .filter_map(|u| manifest.artifact(u))
                .any(|r| {
                    r.role == Role::Referrer
                        && r.artifact_type.as_deref().is_some_and(|t| {
                            media_types::AttestationFormat::of_media_type(t).is_signed()
                        })
                })
    };

    loop {
        let blob = match reader.next_blob() {
            Ok(Some(b)) => b,
            Ok(None) => break,
            Err(e) if e.is_verification_failure() => {
                fail(&mut failures, &e);
                continue;
            }
            Err(e) => return Err(e),
        };
        let a = blob.artifact.clone();
        if a.role.is_manifest() {
            if a.size > MAX_MANIFEST_BYTES
                || manifest_bytes_total.saturating_add(a.size) > MAX_MANIFEST_BYTES_TOTAL
            {
                return Err(BundleError::unusable(
                    codes::TOO_LARGE,
                    format!("manifest {} is too large", a.digest),
                ));
            }
            manifest_bytes_total += a.size;
            match blob.read_all() {
                Ok(bytes) => match Manifest::parse(&bytes, Some(&a.media_type)) {
                    Ok(m) => {
                        let attestation_layers = match &m {
                            Manifest::Image(im) => media_types::attestation_layers(
                                im,
                                a.artifact_type
                                    .as_deref()
                                    .unwrap_or(im.effective_artifact_type()),
                            )
                            .into_iter()
                            .map(|l| l.descriptor)
                            .collect(),
                            Manifest::Index(_) => Vec::new(),
                        };
                        parsed.insert(
                            a.digest.clone(),
                            ParsedManifest {
                                subject: m.subject().map(|s| s.digest.clone()),
                                children: m.children().into_iter().cloned().collect(),
                                attestation_layers,
                                is_index: matches!(m, Manifest::Index(_)),
                            },
                        );
                    }
                    Err(e) => problems
                        .entry(a.digest.clone())
                        .or_default()
                        .push(format!("not a valid manifest: {e}")),
                },
                Err(e) if e.is_verification_failure() => {
                    problems
                        .entry(a.digest.clone())
                        .or_default()
                        .push(e.to_string());
                    fail(&mut failures, &e);
                }
                Err(e) => return Err(e),
            }
        } else if opts.attestations.is_some()
            && (is_attestation_media_type(&a.media_type) || generic_attestation_layer(&a))
            && a.size <= MAX_JSON_DOCUMENT_BYTES
        {
            match blob.read_all() {
                Ok(bytes) => {
                    if let Some(v) = opts.attestations {
                        for s in claimed_subjects(&a) {
                            let out = v.verify(&bytes, &a.media_type, &s);
                            verdicts.insert((a.digest.clone(), s), out);
                        }
                    }
                }
                Err(e) if e.is_verification_failure() => {
                    problems
                        .entry(a.digest.clone())
                        .or_default()
                        .push(e.to_string());
                    fail(&mut failures, &e);
                }
                Err(e) => return Err(e),
            }
        } else {
            match blob.finish() {
                Ok(()) => {}
                Err(e) if e.is_verification_failure() => {
                    problems
                        .entry(a.digest.clone())
                        .or_default()
                        .push(e.to_string());
                    fail(&mut failures, &e);
                }
                Err(e) => return Err(e),
            }
        }
    }
    for m in reader.missing_blobs() {
        let e = BundleError::failed(
            codes::MISSING_BLOB,
            format!(
                "blob {} is in the bundle manifest but not in the archive",
                m.digest
            ),
        );
        problems
            .entry(m.digest.clone())
            .or_default()
            .push("missing from the archive".into());
        fail(&mut failures, &e);
    }

    // Layout consistency.
    let mut layout_problems: Vec<String> = Vec::new();
    let mut actual_used_by: BTreeMap<Digest, BTreeSet<Digest>> = BTreeMap::new();
    let image_manifests: BTreeSet<Digest> = {
        // The subject and its child manifests (recursively through indexes).
        let mut set = BTreeSet::new();
        let mut stack = vec![manifest.subject.digest.clone()];
        while let Some(d) = stack.pop() {
            if !set.insert(d.clone()) {
                continue;
            }
            if let Some(p) = parsed.get(&d)
                && p.is_index
            {
                stack.extend(p.children.iter().map(|c| c.digest.clone()));
            }
        }
        set
    };
    let mut listed_children: BTreeSet<Digest> = BTreeSet::new();
    for a in manifest.artifacts.iter().filter(|a| a.role.is_manifest()) {
        let Some(p) = parsed.get(&a.digest) else {
            continue;
        };
        if a.role == Role::Referrer {
            if p.subject.as_ref() != a.refers_to.as_ref() {
                problems
                    .entry(a.digest.clone())
                    .or_default()
                    .push("its subject differs from the bundle manifest's refersTo".into());
                layout_problems.push(format!(
                    "referrer {}: subject differs from the bundle manifest",
                    a.digest
                ));
            }
            let target_ok = p
                .subject
                .as_ref()
                .and_then(|s| manifest.artifact(s))
                .is_some_and(|t| t.role.is_manifest());
            if !target_ok {
                problems
                    .entry(a.digest.clone())
                    .or_default()
                    .push("refers to a manifest that is not in the bundle".into());
                layout_problems.push(format!(
                    "referrer {} refers to a manifest outside the bundle",
                    a.digest
                ));
            }
        } else if p.subject.is_some() {
            layout_problems.push(format!(
                "{} {} has a subject but is not listed as a referrer",
                a.role.as_str(),
                a.digest
            ));
        }
        for c in &p.children {
            if p.is_index {
                listed_children.insert(c.digest.clone());
            }
            match manifest.artifact(&c.digest) {
                Some(entry) => {
                    if entry.size != c.size {
                        layout_problems.push(format!(
                            "{} lists {} with size {}, bundle has {}",
                            a.digest, c.digest, c.size, entry.size
                        ));
                    }
                    if entry.role == Role::Blob {
                        actual_used_by
                            .entry(c.digest.clone())
                            .or_default()
                            .insert(a.digest.clone());
                    }
                }
                None => {
                    let image_blob_left_out = !manifest.selection.include_image
                        && !p.is_index
                        && image_manifests.contains(&a.digest);
                    if !image_blob_left_out {
                        problems
                            .entry(a.digest.clone())
                            .or_default()
                            .push(format!("lists {} which the bundle lacks", c.digest));
                        layout_problems.push(format!(
                            "{} lists {} which the bundle lacks",
                            a.digest, c.digest
                        ));
                    }
                }
            }
        }
    }
    for a in &manifest.artifacts {
        if a.role == Role::ChildManifest && !listed_children.contains(&a.digest) {
            layout_problems.push(format!(
                "child manifest {} is not listed by any index in the bundle",
                a.digest
            ));
        }
        if a.role == Role::Blob {
            let claimed: BTreeSet<Digest> = a.used_by.iter().cloned().collect();
            let actual = actual_used_by.get(&a.digest).cloned().unwrap_or_default();
            let all_parsed = claimed.iter().all(|u| parsed.contains_key(u));
            if all_parsed && claimed != actual {
                layout_problems.push(format!(
                    "blob {}: usedBy in the bundle manifest does not match the manifests",
                    a.digest
                ));
            }
        }
    }
    if layout_problems.is_empty() {
        checks.push(Check {
            name: "layout".into(),
            status: Status::Ok,
            detail: "every referrer refers to the subject or another manifest in the bundle".into(),
        });
    } else {
        for p in &layout_problems {
            failures.push(Failure {
                code: codes::LAYOUT.into(),
                reason: p.clone(),
            });
        }
        checks.push(Check {
            name: "layout".into(),
            status: Status::Failed,
            detail: layout_problems.join("; "),
        });
    }

    // Attestations and per-artifact status.
    let mut artifacts: Vec<ArtifactReport> = Vec::new();
    let mut predicate_hits: BTreeMap<String, Vec<Digest>> = BTreeMap::new();
    let mut artifact_type_hits: BTreeMap<String, Vec<Digest>> = BTreeMap::new();
    for a in &manifest.artifacts {
        let mut probs = problems.remove(&a.digest).unwrap_or_default();
        let mut status = if probs.is_empty() {
            Status::Ok
        } else {
            Status::Failed
        };
        let mut predicate_type = None;
        let mut signer = None;
        if a.role == Role::Referrer {
            if let Some(p) = parsed.get(&a.digest)
                && !p.attestation_layers.is_empty()
            {
                let subject = p.subject.clone();
                let mut all_verified = status == Status::Ok;
                for l in &p.attestation_layers {
                    match (opts.attestations, subject.as_ref()) {
                        (None, _) => {
                            all_verified = false;
                            if status == Status::Ok {
                                status = Status::NotChecked;
                            }
                        }
                        (Some(_), Some(s)) => match verdicts.get(&(l.digest.clone(), s.clone())) {
                            Some(v) if v.verified => {
                                predicate_type = predicate_type.or(v.predicate_type.clone());
                                signer = signer.or(v.signer.clone());
                            }
                            Some(v) => {
                                all_verified = false;
                                probs.push(format!("attestation {}: {}", l.digest, v.reason));
                            }
                            None => {
                                all_verified = false;
                                probs.push(format!("attestation {} was not verified (missing, too large, or misdescribed)", l.digest));
                            }
                        },
                        (Some(_), None) => {
                            all_verified = false;
                            probs.push("attestation referrer has no subject".into());
                        }
                    }
                }
                if opts.attestations.is_some() {
                    if all_verified {
                        status = Status::Verified;
                    } else {
                        status = Status::Failed;
                        failures.push(Failure {
                            code: codes::SIGNATURE.into(),
                            reason: format!(
                                "attestation referrer {}: {}",
                                a.digest,
                                probs.join("; ")
                            ),
                        });
                    }
                }
            }
            if matches!(status, Status::Ok | Status::Verified) {
                if let Some(at) = &a.artifact_type {
                    artifact_type_hits
                        .entry(at.clone())
                        .or_default()
                        .push(a.digest.clone());
                }
                if status == Status::Verified
                    && let Some(pt) = &predicate_type
                {
                    predicate_hits
                        .entry(pt.clone())
                        .or_default()
                        .push(a.digest.clone());
                }
            }
        }
        artifacts.push(ArtifactReport {
            digest: a.digest.clone(),
            role: a.role,
            media_type: a.media_type.clone(),
            artifact_type: a.artifact_type.clone(),
            refers_to: a.refers_to.clone(),
            size: a.size,
            status,
            predicate_type,
            signer,
            problems: probs,
        });
    }
    let attestation_count = artifacts
        .iter()
        .filter(|a| {
            matches!(a.status, Status::Verified | Status::NotChecked)
                || (a.role == Role::Referrer
                    && parsed
                        .get(&a.digest)
                        .is_some_and(|p| !p.attestation_layers.is_empty()))
        })
        .count();
    checks.push(Check {
        name: "attestations".into(),
        status: if attestation_count == 0 {
            Status::Absent
        } else if opts.attestations.is_none() {
            Status::NotChecked
        } else if artifacts
            .iter()
            .any(|a| a.role == Role::Referrer && a.status == Status::Failed)
        {
            Status::Failed
        } else {
            Status::Verified
        },
        detail: format!("{attestation_count} signed attestation referrer(s)"),
    });

    // Bundle manifest signature.
    match (reader.signature(), opts.manifest_signature) {
        (Some(sig), Some(v)) => {
            match verify_manifest_signature(sig, reader.manifest_bytes(), v, &opts.words.key) {
                Ok(signer) => checks.push(Check {
                    name: "bundle-signature".into(),
                    status: Status::Verified,
                    detail: format!("signed by {signer}"),
                }),
                Err(e) if e.is_verification_failure() => {
                    checks.push(Check {
                        name: "bundle-signature".into(),
                        status: Status::Failed,
                        detail: e.to_string(),
                    });
                    fail(&mut failures, &e);
                }
                Err(e) => return Err(e),
            }
        }
        (Some(_), _) if opts.integrity_only => checks.push(Check {
            name: "bundle-signature".into(),
            status: Status::NotChecked,
            detail: "integrity-only check; the signature was not verified".into(),
        }),
        (Some(_), None) => {
            let detail = unchecked_signature(&opts.words);
            failures.push(Failure {
                code: codes::SIGNATURE.into(),
                reason: detail.clone(),
            });
            checks.push(Check {
                name: "bundle-signature".into(),
                status: Status::Failed,
                detail,
            });
        }
        (None, _) => checks.push(Check {
            name: "bundle-signature".into(),
            status: Status::Absent,
            detail: "the bundle manifest is not signed".into(),
        }),
    }

    // Requirements.
    let mut requirements = Vec::new();
    for r in &opts.require {
        let mut by: Vec<Digest> = artifact_type_hits.get(r).cloned().unwrap_or_default();
        by.extend(predicate_hits.get(r).cloned().unwrap_or_default());
        by.sort();
        by.dedup();
        let satisfied = !by.is_empty();
        if !satisfied {
            failures.push(Failure {
                code: "requirement".into(),
                reason: format!("no verified artifact of type {r:?} in the bundle"),
            });
        }
        requirements.push(RequirementReport {
            requirement: r.clone(),
            satisfied,
            by,
        });
    }

    checks.push(Check {
        name: "checksums".into(),
        status: if failures.iter().any(|f| f.code == codes::CHECKSUM_LIST) {
            Status::Failed
        } else {
            Status::Ok
        },
        detail: format!("{CHECKSUMS_NAME} matches the layout"),
    });
    checks.push(Check {
        name: "blobs".into(),
        status: if failures.iter().any(|f| {
            [
                codes::DIGEST_MISMATCH,
                codes::SIZE_MISMATCH,
                codes::MISSING_BLOB,
                codes::EXTRA_BLOB,
            ]
            .contains(&f.code.as_str())
        }) {
            Status::Failed
        } else {
            Status::Ok
        },
        detail: format!(
            "{} blob(s), digests and sizes checked while streaming",
            manifest.artifacts.len()
        ),
    });
    if opts.rekor_checkpoint_given {
        rekor_checkpoint_check(&verdicts, opts, &mut checks, &mut failures);
    }
    checks.sort_by(|a, b| a.name.cmp(&b.name));

    Ok(VerifyReport {
        verified: failures.is_empty(),
        subject: manifest.subject.digest.clone(),
        tag: manifest.subject.tag.clone(),
        created: manifest.created.clone(),
        tool: format!("{} {}", manifest.tool.name, manifest.tool.version),
        compression: reader.compression().as_str().to_string(),
        checks,
        artifacts,
        requirements,
        failures,
    })
}

/// The reason for a signed bundle manifest that no key can check.
fn unchecked_signature(words: &VerifyWords) -> String {
    format!(
        "the bundle manifest is signed but no {} was given to check it",
        words.key
    )
}

/// `--rekor-checkpoint`: every inclusion proof of every verified attestation
/// must be anchored to the pinned checkpoint; the report names each one that
/// is not. Fails closed when the bundle has no proof to anchor.
fn rekor_checkpoint_check(
    verdicts: &BTreeMap<(Digest, Digest), AttestationOutcome>,
    opts: &VerifyOptions<'_>,
    checks: &mut Vec<Check>,
    failures: &mut Vec<Failure>,
) {
    let mut anchored = 0usize;
    let mut unanchored: Vec<String> = Vec::new();
    for ((blob, _), v) in verdicts.iter().filter(|(_, v)| v.verified) {
        for a in &v.tlog_anchors {
            if a.anchored {
                anchored += 1;
            } else {
                let at = match (a.log_index, a.tree_size) {
                    (Some(i), Some(t)) => format!(" log index {i} (tree size {t})"),
                    (Some(i), None) => format!(" log index {i}"),
                    _ => String::new(),
                };
                unanchored.push(format!("attestation {blob}{at}: {}", a.detail));
            }
        }
    }
    let allow = opts.allow_unanchored_proofs;
    let accepted = format!(" (accepted: {})", opts.words.allow_unanchored);
    let (status, detail) = if anchored == 0 && unanchored.is_empty() {
        (
            Status::Absent,
            "no transparency-log inclusion proof in the bundle to anchor to the pinned checkpoint"
                .to_string(),
        )
    } else if unanchored.is_empty() {
        (
            Status::Verified,
            format!("{anchored} inclusion proof(s) anchored to the pinned checkpoint"),
        )
    } else {
        (
            if allow {
                Status::NotChecked
            } else {
                Status::Failed
            },
            format!(
                "{anchored} inclusion proof(s) anchored, {} unanchored{}: {}",
                unanchored.len(),
                if allow { accepted.as_str() } else { "" },
                unanchored.join("; ")
            ),
        )
    };
    if !allow {
        if status == Status::Absent {
            failures.push(Failure {
                code: codes::UNANCHORED.into(),
                reason: detail.clone(),
            });
        }
        for u in &unanchored {
            failures.push(Failure {
                code: codes::UNANCHORED.into(),
                reason: format!("unanchored inclusion proof: {u}"),
            });
        }
    }
    checks.push(Check {
        name: "rekor-checkpoint".into(),
        status,
        detail,
    });
}
