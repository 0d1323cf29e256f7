//! Policy preview: how a candidate policy would change an image's report.
//! Both reports are computed by the caller with [`crate::decide`] (the
//! active revision as the baseline, the candidate as the projection); this
//! module only lines their verdicts up by finding id and says which
//! changed (status, rule or quiet).
//!
//! Not here: computing either report, storing anything.

use serde::Serialize;

use stella_verify::policy::RuleAction;

use crate::judge::{FindingStatus, FindingVerdict};
use crate::report::{ImageReport, ReportSummary, ReportVerdict};

/// One finding's outcome under one policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub status: FindingStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_action: Option<RuleAction>,
    pub quiet: bool,
}

impl Outcome {
    fn of(v: &FindingVerdict) -> Outcome {
        Outcome {
            status: v.status,
            rule_name: v.rule_name.clone(),
            rule_action: v.rule_action,
            quiet: v.quiet,
        }
    }
}

/// A finding under both policies (`None`: the finding is not in that
/// report, which happens only when the policies trust different scanner
/// signers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FindingDiff {
    pub finding_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub projected: Option<Outcome>,
    pub changed: bool,
}

/// The overall verdict and counts of one side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Side {
    pub verdict: ReportVerdict,
    pub summary: ReportSummary,
    pub policy_digest: String,
}

/// The preview: both sides and every finding, sorted by finding id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    pub baseline: Side,
    pub projected: Side,
    /// How many findings changed.
    pub changed: usize,
    pub findings: Vec<FindingDiff>,
}

fn side(r: &ImageReport) -> Side {
    Side {
        verdict: r.verdict,
        summary: r.summary,
        policy_digest: r.policy.digest.to_string(),
    }
}

/// Lines the verdicts of `baseline` and `projected` up by finding id.
pub fn diff(baseline: &ImageReport, projected: &ImageReport) -> Preview {
    let mut findings = Vec::new();
    let (mut b, mut p) = (
        baseline.verdicts.iter().peekable(),
        projected.verdicts.iter().peekable(),
    );
    // Both lists are sorted by finding id (ImageReport::assemble).
    loop {
        let (left, right) = match (b.peek(), p.peek()) {
            (None, None) => break,
            (Some(x), Some(y)) if x.finding_id == y.finding_id => (b.next(), p.next()),
            (Some(x), Some(y)) if x.finding_id < y.finding_id => (b.next(), None),
            (Some(_), None) => (b.next(), None),
            _ => (None, p.next()),
        };
        let baseline = left.map(Outcome::of);
        let projected = right.map(Outcome::of);
        let finding_id = left
            .or(right)
            .map(|v| v.finding_id.clone())
            .unwrap_or_default();
        findings.push(FindingDiff {
            changed: baseline != projected,
            finding_id,
            baseline,
            projected,
        });
    }
    Preview {
        baseline: side(baseline),
        projected: side(projected),
        changed: findings.iter().filter(|f| f.changed).count(),
        findings,
    }
}
