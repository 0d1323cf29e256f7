//! Policy evaluation: a pure function from a validated policy, the evidence
//! found for one image (already verified cryptographically by the caller),
//! and the evaluation time, to a deterministic [`Report`].
//!
//! Rules (also in `docs/policy.md`):
//! - Evidence matches a requirement when its `artifactType` or
//!   `predicateType` equals the requirement's resolved type.
//! - Evidence whose statement is about another digest is rejected and never
//!   satisfies anything, however well signed.
//! - Signed evidence satisfies a requirement when one of the requirement's
//!   allowed signers (any policy signer if none are listed) verified it,
//!   it carries a transparency-log proof when required, and it is not older
//!   than the maximum age (evidence with no trustworthy time fails an age
//!   check rather than passing it).
//! - Unsigned evidence satisfies a requirement under `unsigned: ignore`
//!   (silently) or `warn` (with a warning); under `fail` it cannot.
//! - The verdict is `pass` when every requirement is satisfied.

use std::collections::BTreeSet;

use stella_types::Digest;
use time::OffsetDateTime;

use crate::policy::{Policy, Requirement, UnsignedAction};
use crate::report::{
    EvidenceResult, EvidenceStatus, ImageInfo, PolicyInfo, Report, RequirementResult,
    RequirementStatus, Summary, Verdict,
};

/// What the caller found out about a piece of evidence's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureCheck {
    /// Plain evidence with no signature (e.g. a bare SBOM referrer).
    Unsigned,
    /// Verified; `signers` are the policy signer names whose trust material
    /// verified it (sorted, non-empty).
    Verified {
        signers: Vec<String>,
        transparency_log: bool,
    },
    /// A signature is present but did not verify against any trusted material.
    Failed { reason: String },
}

/// One piece of evidence found for the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub digest: Digest,
    pub artifact_type: String,
    pub predicate_type: Option<String>,
    pub signature: SignatureCheck,
    /// The time the evidence was made: a signed time when one exists,
    /// else the signed statement's or artifact's creation annotation.
    pub created: Option<OffsetDateTime>,
    /// `Some(digest)` when a signed statement names a different subject.
    pub other_subject: Option<String>,
}

impl Evidence {
    fn matches(&self, requirement: &Requirement) -> bool {
        self.artifact_type == requirement.resolved_type
            || self.predicate_type.as_deref() == Some(requirement.resolved_type.as_str())
    }
}

/// Why one piece of evidence can or cannot satisfy one requirement.
enum Fit {
    Satisfies,
    SatisfiesWithWarning(String),
    Not(String),
}

fn fit(e: &Evidence, r: &Requirement, policy: &Policy, now: OffsetDateTime) -> Fit {
    if let Some(other) = &e.other_subject {
        return Fit::Not(format!("{} is about {other}, not this image", e.digest));
    }
    let unsigned_ok = |warning: bool| {
        if warning {
            Fit::SatisfiesWithWarning(format!(
                "{} is unsigned (accepted with a warning)",
                e.digest
            ))
        } else {
            Fit::Satisfies
        }
    };
    let signers_ok = match &e.signature {
        SignatureCheck::Failed { reason } => return Fit::Not(format!("{}: {reason}", e.digest)),
        SignatureCheck::Unsigned => {
            return match r.unsigned {
                UnsignedAction::Ignore => unsigned_ok(false),
                UnsignedAction::Warn => unsigned_ok(true),
                UnsignedAction::Fail => Fit::Not(format!(
                    "{} is unsigned and unsigned evidence is not accepted",
                    e.digest
                )),
            };
        }
        SignatureCheck::Verified {
            signers,
            transparency_log,
        } => {
            let allowed: Vec<&String> = if r.signers.is_empty() {
                signers
                    .iter()
                    .filter(|s| policy.signers.contains_key(*s))
                    .collect()
            } else {
                signers.iter().filter(|s| r.signers.contains(s)).collect()
            };
            if allowed.is_empty() {
                let want = if r.signers.is_empty() {
                    "any policy signer".to_string()
                } else {
                    r.signers.join(", ")
                };
                return Fit::Not(format!("{} is signed, but not by {want}", e.digest));
            }
            if r.transparency_log && !transparency_log {
                return Fit::Not(format!(
                    "{} has no verified transparency-log proof",
                    e.digest
                ));
            }
            true
        }
    };
    debug_assert!(signers_ok);
    if let Some(max) = r.max_age_seconds {
        match e.created {
            None => {
                return Fit::Not(format!(
                    "{} has no creation time to check the {max}s age limit against",
                    e.digest
                ));
            }
            Some(created) => {
                let age = (now - created).whole_seconds();
                if age > max as i64 {
                    return Fit::Not(format!(
                        "{} is {} old, over the {} limit",
                        e.digest,
                        human(age.max(0) as u64),
                        human(max)
                    ));
                }
            }
        }
    }
    Fit::Satisfies
}

fn human(secs: u64) -> String {
    if secs.is_multiple_of(86_400) && secs >= 86_400 {
        format!("{}d", secs / 86_400)
    } else if secs >= 86_400 {
        format!("{:.1}d", secs as f64 / 86_400.0)
    } else if secs >= 3600 {
        format!("{}h", secs / 3600)
    } else {
        format!("{secs}s")
    }
}

/// Evaluates `policy` against the evidence of one image at time `now`.
pub fn evaluate(
    policy: &Policy,
    image_reference: &str,
    image_digest: &Digest,
    evidence: &[Evidence],
    now: OffsetDateTime,
) -> Report {
    let mut evidence: Vec<&Evidence> = evidence.iter().collect();
    evidence.sort_by(|a, b| a.digest.cmp(&b.digest));
    evidence.dedup_by(|a, b| a.digest == b.digest);

    let mut satisfied_by: Vec<BTreeSet<String>> = vec![BTreeSet::new(); evidence.len()];
    let mut requirement_results = Vec::new();
    let mut warnings = 0usize;
    for r in &policy.requirements {
        let mut good = Vec::new();
        let mut warned = Vec::new();
        let mut reasons = Vec::new();
        for (i, e) in evidence.iter().enumerate() {
            if !e.matches(r) {
                continue;
            }
            match fit(e, r, policy, now) {
                Fit::Satisfies => {
                    good.push(e.digest.clone());
                    satisfied_by[i].insert(r.name.clone());
                }
                Fit::SatisfiesWithWarning(w) => {
                    warned.push(e.digest.clone());
                    satisfied_by[i].insert(r.name.clone());
                    reasons.push(w);
                }
                Fit::Not(why) => reasons.push(why),
            }
        }
        let (status, reason) = if !good.is_empty() {
            (
                RequirementStatus::Satisfied,
                format!("satisfied by {}", join(&good)),
            )
        } else if !warned.is_empty() {
            warnings += 1;
            (RequirementStatus::Warned, reasons.join("; "))
        } else if reasons.is_empty() {
            (
                RequirementStatus::Missing,
                format!("no evidence of type {}", r.resolved_type),
            )
        } else {
            (RequirementStatus::Failed, reasons.join("; "))
        };
        let mut all: Vec<Digest> = good.into_iter().chain(warned).collect();
        all.sort();
        requirement_results.push(RequirementResult {
            name: r.name.clone(),
            r#type: r.resolved_type.clone(),
            status,
            evidence: all,
            reason,
        });
    }

    let evidence_results: Vec<EvidenceResult> = evidence
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let (status, reason, signers) = match (&e.other_subject, &e.signature) {
                (Some(other), _) => (
                    EvidenceStatus::Rejected,
                    format!("statement is about {other}, not {image_digest}"),
                    vec![],
                ),
                (None, SignatureCheck::Failed { reason }) => {
                    (EvidenceStatus::Failed, reason.clone(), vec![])
                }
                (None, SignatureCheck::Unsigned) => {
                    (EvidenceStatus::Unsigned, "no signature".to_string(), vec![])
                }
                (
                    None,
                    SignatureCheck::Verified {
                        signers,
                        transparency_log,
                    },
                ) => (
                    EvidenceStatus::Verified,
                    format!(
                        "signed by {}{}",
                        signers.join(", "),
                        if *transparency_log {
                            ", logged in a transparency log"
                        } else {
                            ""
                        }
                    ),
                    signers.clone(),
                ),
            };
            EvidenceResult {
                digest: e.digest.clone(),
                artifact_type: e.artifact_type.clone(),
                predicate_type: e.predicate_type.clone(),
                status,
                signers,
                satisfies: satisfied_by[i].iter().cloned().collect(),
                reason,
            }
        })
        .collect();

    let count = |s: EvidenceStatus| evidence_results.iter().filter(|e| e.status == s).count();
    let unmet = requirement_results
        .iter()
        .filter(|r| {
            matches!(
                r.status,
                RequirementStatus::Missing | RequirementStatus::Failed
            )
        })
        .count();
    let summary = Summary {
        evidence: evidence_results.len(),
        verified: count(EvidenceStatus::Verified),
        unsigned: count(EvidenceStatus::Unsigned),
        failed: count(EvidenceStatus::Failed),
        rejected: count(EvidenceStatus::Rejected),
        requirements: requirement_results.len(),
        satisfied: requirement_results.len() - unmet,
        unsatisfied: unmet,
        warnings,
    };
    Report {
        api_version: crate::report::REPORT_API_VERSION.to_string(),
        image: ImageInfo {
            reference: image_reference.to_string(),
            digest: image_digest.clone(),
        },
        policy: PolicyInfo {
            digest: policy.digest.clone(),
            version: policy.version,
        },
        evaluated_at: stella_types::timestamp::rfc3339(now),
        verdict: if unmet == 0 {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        summary,
        requirements: requirement_results,
        evidence: evidence_results,
    }
}

fn join(d: &[Digest]) -> String {
    d.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
#[allow(clippy::panic, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    const POLICY: &str = r#"
version: 1
signers:
  release: { keys: [release.pub] }
  other: { keys: [other.pub] }
maxEvidenceAge: 30d
requirements:
  - { name: sbom, type: application/vnd.cyclonedx+json, unsigned: warn }
  - { name: provenance, type: "https://slsa.dev/provenance/v1", signers: [release] }
  - { name: vex, type: "https://openvex.dev/ns", signers: [release], transparencyLog: true }
"#;

    fn policy() -> Policy {
        let (p, d) = Policy::parse(POLICY.as_bytes(), &|_| None);
        p.unwrap_or_else(|| panic!("{:?}", d.issues))
    }

    fn t(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(secs).unwrap()
    }

    fn ev(n: u8, at: &str, pt: Option<&str>, sig: SignatureCheck) -> Evidence {
        Evidence {
            digest: Digest::sha256_of(&[n]),
            artifact_type: at.into(),
            predicate_type: pt.map(Into::into),
            signature: sig,
            created: Some(t(1_000_000)),
            other_subject: None,
        }
    }

    fn signed(by: &str, tlog: bool) -> SignatureCheck {
        SignatureCheck::Verified {
            signers: vec![by.into()],
            transparency_log: tlog,
        }
    }

    const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

    fn full_set() -> Vec<Evidence> {
        vec![
            ev(
                1,
                "application/vnd.cyclonedx+json",
                None,
                SignatureCheck::Unsigned,
            ),
            ev(
                2,
                BUNDLE,
                Some("https://slsa.dev/provenance/v1"),
                signed("release", false),
            ),
            ev(
                3,
                BUNDLE,
                Some("https://openvex.dev/ns"),
                signed("release", true),
            ),
        ]
    }

    fn image() -> Digest {
        Digest::sha256_of(b"image")
    }

    #[test]
    fn complete_evidence_passes_with_warning_for_unsigned_sbom() {
        let r = evaluate(&policy(), "oci:x:v1", &image(), &full_set(), t(1_000_100));
        assert_eq!(r.verdict, Verdict::Pass, "{r:#?}");
        assert_eq!(r.summary.warnings, 1);
        assert_eq!(r.requirements[0].status, RequirementStatus::Warned);
        assert_eq!(r.summary.verified, 2);
    }

    #[test]
    fn missing_provenance_fails() {
        let mut set = full_set();
        set.remove(1);
        let r = evaluate(&policy(), "x", &image(), &set, t(1_000_100));
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(r.requirements[1].status, RequirementStatus::Missing);
        assert!(
            r.requirements[1]
                .reason
                .contains("no evidence of type https://slsa.dev/provenance/v1")
        );
    }

    #[test]
    fn wrong_signer_fails_with_reason() {
        let mut set = full_set();
        set[1].signature = signed("other", false);
        let r = evaluate(&policy(), "x", &image(), &set, t(1_000_100));
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(r.requirements[1].status, RequirementStatus::Failed);
        assert!(
            r.requirements[1].reason.contains("not by release"),
            "{}",
            r.requirements[1].reason
        );
    }

    #[test]
    fn evidence_about_other_digest_is_rejected() {
        let mut set = full_set();
        set[1].other_subject = Some("sha256:beef".into());
        let r = evaluate(&policy(), "x", &image(), &set, t(1_000_100));
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.requirements[1].reason.contains("not this image"));
        assert_eq!(r.summary.rejected, 1);
    }

    #[test]
    fn tlog_and_age_are_enforced() {
        let mut set = full_set();
        set[2].signature = signed("release", false);
        let r = evaluate(&policy(), "x", &image(), &set, t(1_000_100));
        assert!(r.requirements[2].reason.contains("transparency-log"));
        let r = evaluate(
            &policy(),
            "x",
            &image(),
            &full_set(),
            t(1_000_000 + 31 * 86_400),
        );
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(
            r.requirements[1].reason.contains("over the 30d limit"),
            "{}",
            r.requirements[1].reason
        );
        let mut set = full_set();
        set[1].created = None;
        let r = evaluate(&policy(), "x", &image(), &set, t(1_000_100));
        assert!(r.requirements[1].reason.contains("no creation time"));
    }

    #[test]
    fn failed_signature_never_satisfies() {
        let mut set = full_set();
        set[1].signature = SignatureCheck::Failed {
            reason: "signature does not verify".into(),
        };
        let r = evaluate(&policy(), "x", &image(), &set, t(1_000_100));
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(r.summary.failed, 1);
    }

    #[test]
    fn report_is_deterministic_regardless_of_input_order() {
        let mut set = full_set();
        let a = evaluate(&policy(), "x", &image(), &set, t(1_000_100)).to_canonical_json();
        set.reverse();
        set.push(set[0].clone());
        let b = evaluate(&policy(), "x", &image(), &set, t(1_000_100)).to_canonical_json();
        assert_eq!(a, b);
    }
}
