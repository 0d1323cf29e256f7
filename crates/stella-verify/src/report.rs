//! The verification report: what a release gate prints, stores and may sign
//! as a verdict attestation. Deterministic: requirements in policy order,
//! evidence sorted by digest, canonical JSON (RFC 8785) bytes.
//!
//! Shape (documented in `docs/policy.md`), after the signed report of the
//! API reference: image digest, policy digest, verdict, summary counts, and
//! one entry per requirement and per piece of evidence with status and reason.

use serde::Serialize;
use stella_types::Digest;

/// `apiVersion` of the report and the verdict predicate built from it.
pub const REPORT_API_VERSION: &str = "stella.dev/verify-report/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RequirementStatus {
    Satisfied,
    /// Satisfied only by evidence accepted with a warning.
    Warned,
    /// No evidence of the type.
    Missing,
    /// Evidence of the type exists but none is acceptable.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EvidenceStatus {
    Verified,
    Unsigned,
    Failed,
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageInfo {
    pub reference: String,
    pub digest: Digest,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyInfo {
    pub digest: Digest,
    pub version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub evidence: usize,
    pub verified: usize,
    pub unsigned: usize,
    pub failed: usize,
    pub rejected: usize,
    pub requirements: usize,
    pub satisfied: usize,
    pub unsatisfied: usize,
    pub warnings: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequirementResult {
    pub name: String,
    pub r#type: String,
    pub status: RequirementStatus,
    pub evidence: Vec<Digest>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceResult {
    pub digest: Digest,
    pub artifact_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicate_type: Option<String>,
    pub status: EvidenceStatus,
    pub signers: Vec<String>,
    /// Names of the requirements this evidence satisfies.
    pub satisfies: Vec<String>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub api_version: String,
    pub image: ImageInfo,
    pub policy: PolicyInfo,
    pub evaluated_at: String,
    pub verdict: Verdict,
    pub summary: Summary,
    pub requirements: Vec<RequirementResult>,
    pub evidence: Vec<EvidenceResult>,
}

impl Report {
    /// RFC 8785 canonical JSON bytes (what is printed with `--output json`
    /// and what a verdict attestation signs).
    pub fn to_canonical_json(&self) -> Vec<u8> {
        stella_types::canonical_json::to_canonical_vec(self).unwrap_or_default()
    }

    /// Short human-readable text: verdict, then what passed, failed and why.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let verdict = match self.verdict {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
        };
        out.push_str(&format!(
            "{verdict} {} ({})\n",
            self.image.reference, self.image.digest
        ));
        for r in &self.requirements {
            let mark = match r.status {
                RequirementStatus::Satisfied => "ok  ",
                RequirementStatus::Warned => "warn",
                RequirementStatus::Missing | RequirementStatus::Failed => "FAIL",
            };
            out.push_str(&format!("  {mark} {}: {}\n", r.name, r.reason));
        }
        let s = &self.summary;
        out.push_str(&format!(
            "  evidence: {} found, {} verified, {} unsigned, {} failed, {} rejected\n",
            s.evidence, s.verified, s.unsigned, s.failed, s.rejected
        ));
        out
    }
}
