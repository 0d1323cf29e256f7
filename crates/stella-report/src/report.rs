//! The image report (shape of the API reference's `POST /api/v1/reports`):
//! `reportId`, `imageDigest`, `generatedAt`, `verdict` (`pass | warn |
//! blocked`), `policy` (`revisionId`, `digest`), `summary`, `verdicts[]`,
//! `issues[]`, plus `scanners[]` (which scanner reports were read) and
//! `evidence` (the report `verify image` produces, from the same engine).
//!
//! Deterministic: verdicts sorted by finding id, issues sorted, canonical
//! JSON (RFC 8785, null fields omitted); `generatedAt` is passed in and
//! also stamps the evidence section; `reportId` is derived from the
//! report's own canonical bytes, so the same inputs give the same bytes.

use serde::Serialize;
use stella_types::Digest;
use stella_verify::{Report as EvidenceReport, Verdict as EvidenceVerdict};

use crate::findings::ReportFormat;
use crate::judge::{FindingStatus, FindingVerdict, ReportIssue};

/// The report's overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportVerdict {
    Pass,
    Warn,
    Blocked,
}

/// Which policy decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRef {
    /// The policy store's revision (`local` for a policy file).
    pub revision_id: String,
    /// SHA-256 of the policy document.
    pub digest: Digest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct ReportSummary {
    pub total: usize,
    pub blocked: usize,
    pub warned: usize,
    pub ignored: usize,
    pub quieted: usize,
}

/// One scanner report read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScannerRef {
    pub digest: Digest,
    pub format: ReportFormat,
    pub findings: usize,
    /// Signer names, or `unsigned` / `unverified`.
    pub trust: String,
}

/// The image report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
// Fields in canonical key order: the canonical writer then need not move
// the whole (megabytes long) object to sort its members.
pub struct ImageReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    pub evidence: EvidenceReport,
    pub generated_at: String,
    pub image_digest: Digest,
    pub issues: Vec<ReportIssue>,
    pub policy: PolicyRef,
    pub report_id: String,
    pub scanners: Vec<ScannerRef>,
    pub summary: ReportSummary,
    pub verdict: ReportVerdict,
    pub verdicts: Vec<FindingVerdict>,
    /// The canonical bytes, computed once when the report is assembled.
    #[serde(skip)]
    canonical: Vec<u8>,
}

/// The parts a report is assembled from.
pub struct ReportParts {
    pub image_digest: Digest,
    pub generated_at: String,
    pub policy: PolicyRef,
    pub environment: Option<String>,
    pub verdicts: Vec<FindingVerdict>,
    pub issues: Vec<ReportIssue>,
    pub scanners: Vec<ScannerRef>,
    pub evidence: EvidenceReport,
}

impl ImageReport {
    /// Assembles the report: summary, verdict and id from the parts.
    pub fn assemble(parts: ReportParts) -> ImageReport {
        let ReportParts {
            image_digest,
            generated_at,
            policy,
            environment,
            mut verdicts,
            mut issues,
            mut scanners,
            mut evidence,
        } = parts;
        verdicts.sort_by(|a, b| a.finding_id.cmp(&b.finding_id));
        scanners.sort();
        evidence.evaluated_at = generated_at.clone();
        if evidence.verdict == EvidenceVerdict::Fail {
            issues.push(ReportIssue::new(
                "evidence.failed",
                "error",
                "the image's evidence does not meet the policy's requirements (see evidence)"
                    .into(),
                None,
            ));
        }
        issues.sort();
        let summary = summarize(&verdicts);
        let verdict = if summary.blocked > 0 || evidence.verdict == EvidenceVerdict::Fail {
            ReportVerdict::Blocked
        } else if summary.warned > 0 {
            ReportVerdict::Warn
        } else {
            ReportVerdict::Pass
        };
        let mut report = ImageReport {
            report_id: String::new(),
            image_digest,
            generated_at,
            verdict,
            policy,
            environment,
            summary,
            verdicts,
            issues,
            scanners,
            evidence,
            canonical: Vec::new(),
        };
        let (canonical, report_id) = canonical_with_id(&report);
        report.canonical = canonical;
        report.report_id = report_id;
        report
    }

    /// RFC 8785 canonical JSON (what the DSSE envelope signs), as computed
    /// when the report was assembled.
    pub fn to_canonical_json(&self) -> Vec<u8> {
        self.canonical.clone()
    }

    /// The canonical bytes without a copy.
    pub fn canonical_bytes(&self) -> &[u8] {
        &self.canonical
    }

    /// Short text: verdict, counts, then every finding that is not a plain pass.
    pub fn to_text(&self) -> String {
        let s = &self.summary;
        let mut out = format!(
            "{} {} ({})\n  findings: {} total, {} blocked, {} warned, {} ignored, {} quieted\n",
            match self.verdict {
                ReportVerdict::Pass => "PASS",
                ReportVerdict::Warn => "WARN",
                ReportVerdict::Blocked => "BLOCKED",
            },
            self.image_digest,
            self.report_id,
            s.total,
            s.blocked,
            s.warned,
            s.ignored,
            s.quieted
        );
        for v in self
            .verdicts
            .iter()
            .filter(|v| v.status != FindingStatus::Pass)
        {
            out.push_str(&format!(
                "  {:<8} {}{}{}\n",
                format!("{:?}", v.status),
                v.finding_id,
                v.rule_name
                    .as_ref()
                    .map(|r| format!(" [{r}]"))
                    .unwrap_or_default(),
                v.notes
                    .as_ref()
                    .map(|n| format!(": {n}"))
                    .unwrap_or_default()
            ));
        }
        for i in self.issues.iter().filter(|i| i.severity != "info") {
            out.push_str(&format!("  {}: {} [{}]\n", i.severity, i.message, i.code));
        }
        out
    }
}

/// A starting size for the report's canonical bytes: about 0.5 KiB per
/// verdict (the benchmark's verdicts average 500 bytes) plus the rest
/// (evidence, issues), with room to splice the id in. A buffer that large is
/// written once instead of regrown a dozen times; untouched capacity costs
/// address space only.
fn expected_size(verdicts: usize) -> usize {
    const PER_VERDICT: usize = 640;
    const REST: usize = 64 * 1024;
    verdicts.saturating_mul(PER_VERDICT).saturating_add(REST)
}

/// The members of [`ImageReport`] whose keys sort before `issues`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Head<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    environment: &'a Option<String>,
    evidence: &'a EvidenceReport,
    generated_at: &'a str,
    image_digest: &'a Digest,
}

/// The members of [`ImageReport`] between `reportId` and `verdicts`.
#[derive(Serialize)]
struct Tail<'a> {
    scanners: &'a [ScannerRef],
    summary: &'a ReportSummary,
    verdict: ReportVerdict,
}

/// `report-` and 16 hex digits.
const REPORT_ID_LEN: usize = 23;

/// The report's canonical bytes and its id, written once into one buffer.
///
/// The id is the first 16 hex digits of the SHA-256 of the canonical bytes
/// with an empty `reportId`. The members are written in canonical key
/// order: the small ones through `stella_types::canonical_json`, `issues`
/// and `verdicts` (the bulk) straight by [`crate::verdict_json`], and a
/// fixed-length slot for the id; the hash skips the slot and the id is
/// written into it, so the megabytes of verdicts are neither searched nor
/// moved. Same bytes as canonicalising the finished report (pinned by
/// `tests/decide.rs`).
fn canonical_with_id(report: &ImageReport) -> (Vec<u8>, String) {
    let mut out = Vec::with_capacity(expected_size(report.verdicts.len()));
    let Some(slot) = write_canonical(&mut out, report) else {
        return (Vec::new(), String::new());
    };
    let mut hasher = stella_types::digest::Hasher::new(stella_types::DigestAlgorithm::Sha256);
    hasher.update(out.get(..slot.start).unwrap_or_default());
    hasher.update(out.get(slot.end..).unwrap_or_default());
    let digest = hasher.finish();
    let id = format!("report-{}", digest.hex().get(..16).unwrap_or_default());
    match out.get_mut(slot) {
        Some(place) if place.len() == id.len() => place.copy_from_slice(id.as_bytes()),
        _ => return (Vec::new(), String::new()),
    }
    (out, id)
}

/// Writes the report with a zeroed `reportId` of the final length; returns
/// where the id goes (`None`: a part did not serialise).
fn write_canonical(out: &mut Vec<u8>, report: &ImageReport) -> Option<std::ops::Range<usize>> {
    use stella_types::canonical_json::{append_canonical, append_canonical_str};
    let head = Head {
        environment: &report.environment,
        evidence: &report.evidence,
        generated_at: &report.generated_at,
        image_digest: &report.image_digest,
    };
    let tail = Tail {
        scanners: &report.scanners,
        summary: &report.summary,
        verdict: report.verdict,
    };
    // `{head members` (its closing brace dropped; `evidence` is always there).
    append_canonical(out, &head).ok()?;
    (out.pop() == Some(b'}')).then_some(())?;
    out.extend_from_slice(b",\"issues\":");
    crate::verdict_json::write_issues(out, &report.issues);
    out.extend_from_slice(b",\"policy\":");
    append_canonical(out, &report.policy).ok()?;
    out.extend_from_slice(b",\"reportId\":");
    let start = out.len() + 1;
    append_canonical_str(out, &"0".repeat(REPORT_ID_LEN));
    let slot = start..start + REPORT_ID_LEN;
    // `{tail members}`: its opening brace becomes the comma after the id,
    // its closing brace makes way for the verdicts.
    let tail_at = out.len();
    append_canonical(out, &tail).ok()?;
    (out.pop() == Some(b'}')).then_some(())?;
    *out.get_mut(tail_at)? = b',';
    out.extend_from_slice(b",\"verdicts\":");
    crate::verdict_json::write_verdicts(out, &report.verdicts);
    out.push(b'}');
    Some(slot)
}

fn summarize(verdicts: &[FindingVerdict]) -> ReportSummary {
    let count = |s: FindingStatus| verdicts.iter().filter(|v| v.status == s).count();
    ReportSummary {
        total: verdicts.len(),
        blocked: count(FindingStatus::Blocked),
        warned: count(FindingStatus::Warned),
        ignored: count(FindingStatus::Ignored),
        quieted: count(FindingStatus::Quieted),
    }
}
