//! Judging findings: merge the findings of every scanner report into one per
//! (package, vulnerability), look up VEX, apply the policy's rules, and
//! return one verdict per finding plus the report's issues.
//!
//! Order (docs/report.md): the first rule whose conditions all hold decides
//! (`block` -> Blocked, `warn` -> Warned, `ignore` -> Ignored). A finding
//! that trusted VEX quiets (`not_affected`, `fixed`) is Quieted, unless a
//! rule that names `vexStatus` matches it: rules without `vexStatus` never
//! touch a quieted finding. A finding no rule matches passes. The clock is
//! passed in; nothing here reads it.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;
use stella_types::Digest;
use stella_verify::policy::{
    FindingSeverity, Policy, Rule, RuleAction, VexStatusMatch, pattern_matches,
};
use time::OffsetDateTime;

use crate::findings::Finding;
use crate::vex::{Consensus, VexLookup, VexStatement, VexStatus, consensus};

/// One finding after merging every report that states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedFinding {
    pub purl: String,
    pub vulnerability: String,
    pub aliases: Vec<String>,
    pub severity: FindingSeverity,
    pub fixed_version: Option<String>,
    pub published: Option<OffsetDateTime>,
    /// Digests of the scanner reports stating it (sorted).
    pub sources: Vec<Digest>,
}

impl MergedFinding {
    /// `<vulnerability>:<purl>`, unique within a report.
    pub fn id(&self) -> String {
        let mut id = String::with_capacity(self.vulnerability.len() + 1 + self.purl.len());
        id.push_str(&self.vulnerability);
        id.push(':');
        id.push_str(&self.purl);
        id
    }
}

/// Merges findings by (package URL, vulnerability id): the most severe
/// severity wins (a forged or stale report can only make it worse), aliases
/// and sources are united, the fixed version is the first one stated (in
/// source order), the publication date the earliest. Sorted by id.
///
/// The findings are put in key order by sorting their positions (a stable
/// sort: the findings of one report keep their order), then runs of equal
/// keys are folded. Scanners list findings mostly in order, so the sort
/// mostly finds runs instead of comparing every pair.
pub fn merge(findings: impl IntoIterator<Item = Finding>) -> Vec<MergedFinding> {
    let mut all: Vec<Option<Finding>> = findings.into_iter().map(Some).collect();
    let mut order: Vec<usize> = (0..all.len()).collect();
    {
        let key = |i: &usize| {
            all.get(*i)
                .and_then(Option::as_ref)
                .map(|f| (f.vulnerability.as_str(), f.purl.as_str(), &f.source))
        };
        order.sort_by(|a, b| key(a).cmp(&key(b)));
    }
    let mut merged: Vec<MergedFinding> = Vec::with_capacity(all.len());
    for f in order
        .into_iter()
        .filter_map(|i| all.get_mut(i).and_then(Option::take))
    {
        match merged.last_mut() {
            Some(m) if m.vulnerability == f.vulnerability && m.purl == f.purl => m.absorb(f),
            _ => merged.push(MergedFinding {
                purl: f.purl,
                vulnerability: f.vulnerability,
                aliases: f.aliases,
                severity: crate::findings::most_severe([f.severity]),
                fixed_version: f.fixed_version,
                published: f.published,
                sources: vec![f.source],
            }),
        }
    }
    for m in &mut merged {
        m.aliases.sort();
        m.aliases.dedup();
        // In source order already (the sort's last key).
        m.sources.dedup();
    }
    merged
}

impl MergedFinding {
    /// Folds in another statement of the same finding, from a report that
    /// sorts at or after the ones folded in so far.
    fn absorb(&mut self, f: Finding) {
        self.severity = crate::findings::most_severe([self.severity, f.severity]);
        self.aliases.extend(f.aliases);
        if self.fixed_version.is_none() {
            self.fixed_version = f.fixed_version;
        }
        self.published = match (self.published, f.published) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.sources.push(f.source);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FindingStatus {
    Blocked,
    Warned,
    Ignored,
    Quieted,
    Pass,
}

impl FindingStatus {
    /// The name as the report spells it (`Blocked`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Blocked => "Blocked",
            Self::Warned => "Warned",
            Self::Ignored => "Ignored",
            Self::Quieted => "Quieted",
            Self::Pass => "Pass",
        }
    }
}

/// A VEX statement as the report cites it.
// Report structs declare their fields in canonical (RFC 8785) key order, so
// the canonical writer finds every object already sorted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VexCitation {
    pub digest: Digest,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
    pub signers: Vec<String>,
    pub status: VexStatus,
}

impl From<VexStatement> for VexCitation {
    /// Moves the statement's strings (no copies).
    fn from(s: VexStatement) -> Self {
        VexCitation {
            digest: s.digest,
            status: s.status,
            signers: s.signers,
            issuer: s.issuer,
            justification: s.justification,
        }
    }
}

impl From<Cow<'_, VexStatement>> for VexCitation {
    /// Moves an owned statement's strings; copies a lent one's.
    fn from(s: Cow<'_, VexStatement>) -> Self {
        match s {
            Cow::Owned(s) => s.into(),
            Cow::Borrowed(s) => s.into(),
        }
    }
}

impl From<&VexStatement> for VexCitation {
    fn from(s: &VexStatement) -> Self {
        VexCitation {
            digest: s.digest.clone(),
            status: s.status,
            signers: s.signers.clone(),
            issuer: s.issuer.clone(),
            justification: s.justification.clone(),
        }
    }
}

/// What the trusted VEX said, as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VexOutcome {
    /// Statements saying it applies or is being investigated.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keeping: Vec<VexCitation>,
    /// Statements saying the finding does not apply (conflicts: that side).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub quieting: Vec<VexCitation>,
    /// `not_affected`, `affected`, `fixed`, `under_investigation` or `conflict`.
    pub status: &'static str,
}

/// The inputs that decided a verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerdictInputs {
    /// Whole days since publication, at the evaluation time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_days: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    pub purl: String,
    pub severity: FindingSeverity,
    /// Scanner reports that state the finding.
    pub sources: Vec<Digest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vex: Option<VexOutcome>,
    pub vulnerability: String,
}

/// One finding's verdict (the `verdicts[]` entry of the report).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FindingVerdict {
    pub finding_id: String,
    pub inputs: VerdictInputs,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    pub quiet: bool,
    /// The VEX statements that quieted the finding.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub quieted_by: Vec<VexCitation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_action: Option<RuleAction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_name: Option<String>,
    /// Who vouches for what decided: the trusted VEX signer, else the
    /// scanner reports' signers (`unsigned` / `unverified` when none).
    pub source_trust: String,
    pub status: FindingStatus,
}

/// A problem or notice in the report.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportIssue {
    pub code: String,
    /// `error`, `warning` or `info`.
    pub severity: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finding_id: Option<String>,
}

impl ReportIssue {
    pub fn new(code: &str, severity: &str, message: String, finding: Option<String>) -> Self {
        ReportIssue {
            code: code.into(),
            severity: severity.into(),
            message,
            finding_id: finding,
        }
    }
}

/// Everything judging needs besides the findings.
pub struct JudgeContext<'a> {
    pub policy: &'a Policy,
    pub image: &'a Digest,
    pub environment: Option<&'a str>,
    pub vex: &'a dyn VexLookup,
    /// Trust of each scanner report (by digest): signer names, or
    /// `unsigned` / `unverified`.
    pub source_trust: &'a BTreeMap<Digest, String>,
    pub now: OffsetDateTime,
}

/// Judges every finding; returns the verdicts (sorted by id) and issues.
pub fn judge(
    findings: &[MergedFinding],
    ctx: &JudgeContext<'_>,
) -> (Vec<FindingVerdict>, Vec<ReportIssue>) {
    judge_owned(findings.to_vec(), ctx)
}

/// [`judge`], taking the findings: their strings move into the verdicts
/// instead of being copied.
pub(crate) fn judge_owned(
    findings: Vec<MergedFinding>,
    ctx: &JudgeContext<'_>,
) -> (Vec<FindingVerdict>, Vec<ReportIssue>) {
    let trusted: &[String] = ctx.policy.vex.as_ref().map_or(&[], |v| &v.signers);
    let mut issues = Vec::new();
    let mut verdicts = Vec::with_capacity(findings.len());
    // The ids to look up are the finding's own strings, lent and put back
    // (one buffer for all findings).
    let mut ids: Vec<String> = Vec::new();
    for mut f in findings {
        ids.push(std::mem::take(&mut f.vulnerability));
        ids.append(&mut f.aliases);
        let statements = ctx.vex.statements(ctx.image, &f.purl, &ids);
        let mut lent = ids.drain(..);
        f.vulnerability = lent.next().unwrap_or_default();
        f.aliases.extend(lent);
        let (outcome, ignored) = consensus(statements, trusted);
        if !ignored.is_empty() {
            issues.push(ReportIssue::new(
                "vex.untrusted",
                "info",
                format!(
                    "{} VEX statement(s) ignored: not signed by a signer the policy trusts for VEX ({})",
                    ignored.len(),
                    cite(&ignored)
                ),
                Some(f.id()),
            ));
        }
        verdicts.push(judge_one(f, outcome, ctx, &mut issues));
    }
    issues.sort();
    (verdicts, issues)
}

fn cite(statements: &[Cow<'_, VexStatement>]) -> String {
    statements
        .iter()
        .map(|s| {
            let who = if s.signers.is_empty() {
                "unsigned".to_string()
            } else {
                s.signers.join("+")
            };
            format!("{} says {} ({})", who, s.status.as_str(), s.digest)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn judge_one(
    f: MergedFinding,
    outcome: Consensus<'_>,
    ctx: &JudgeContext<'_>,
    issues: &mut Vec<ReportIssue>,
) -> FindingVerdict {
    let id = f.id();
    let age_secs = f
        .published
        .map(|p| u64::try_from((ctx.now - p).whole_seconds()).unwrap_or(0));
    let age_days = age_secs.map(|s| s / 86_400);
    let note = vex_note(&outcome);
    let agreed = matches!(outcome, Consensus::Agreed { .. });
    match &outcome {
        Consensus::Conflict { .. } => issues.push(ReportIssue::new(
            "vex.conflict",
            "warning",
            "trusted VEX statements disagree; the finding is kept".into(),
            Some(id.clone()),
        )),
        Consensus::Agreed {
            status: VexStatus::UnderInvestigation,
            signer,
            ..
        } => issues.push(ReportIssue::new(
            "vex.under_investigation",
            "info",
            format!("{signer} is still investigating; the finding is kept"),
            Some(id.clone()),
        )),
        _ => {}
    }
    let (vex_match, vex_signer, quieting, vex) = describe(outcome);
    let quieted = !quieting.is_empty();
    let rule = ctx.policy.rules.iter().find(|r| {
        (!quieted || !r.vex_status.is_empty())
            && rule_matches(r, &f, ctx, age_secs, vex_match, vex_signer.as_deref())
    });
    let source_trust = vex_signer
        .clone()
        .filter(|_| agreed)
        .unwrap_or_else(|| scanner_trust(&f, ctx.source_trust));
    let inputs = VerdictInputs {
        severity: f.severity,
        published: f.published.map(stella_types::timestamp::rfc3339),
        age_days,
        environment: ctx.environment.map(str::to_string),
        vex,
        purl: f.purl,
        vulnerability: f.vulnerability,
        aliases: f.aliases,
        fixed_version: f.fixed_version,
        sources: f.sources,
    };
    let (status, notes) = match rule {
        Some(r) => (
            match r.action {
                RuleAction::Block => FindingStatus::Blocked,
                RuleAction::Warn => FindingStatus::Warned,
                RuleAction::Ignore => FindingStatus::Ignored,
            },
            r.justification.clone().or(note),
        ),
        None if quieted => (FindingStatus::Quieted, note),
        None => (FindingStatus::Pass, note),
    };
    let quiet = status == FindingStatus::Quieted;
    FindingVerdict {
        finding_id: id,
        status,
        rule_name: rule.map(|r| r.name.clone()),
        rule_action: rule.map(|r| r.action),
        notes,
        quieted_by: if quiet { quieting } else { Vec::new() },
        quiet,
        inputs,
        source_trust,
    }
}

/// (status a rule matches, deciding signer, quieting citations, outcome
/// shown). Takes the outcome: its statements become the citations.
fn describe(
    outcome: Consensus<'_>,
) -> (
    VexStatusMatch,
    Option<String>,
    Vec<VexCitation>,
    Option<VexOutcome>,
) {
    match outcome {
        Consensus::None => (VexStatusMatch::None, None, Vec::new(), None),
        Consensus::Agreed {
            status,
            statements,
            signer,
        } => {
            let cites: Vec<VexCitation> = statements.into_iter().map(VexCitation::from).collect();
            let m = match status {
                VexStatus::NotAffected => VexStatusMatch::NotAffected,
                VexStatus::Affected => VexStatusMatch::Affected,
                VexStatus::Fixed => VexStatusMatch::Fixed,
                VexStatus::UnderInvestigation => VexStatusMatch::UnderInvestigation,
            };
            let (quieting, keeping) = if status.quiets() {
                (cites, Vec::new())
            } else {
                (Vec::new(), cites)
            };
            let shown = VexOutcome {
                status: status.as_str(),
                quieting: quieting.clone(),
                keeping,
            };
            (m, Some(signer), quieting, Some(shown))
        }
        Consensus::Conflict { quieting, keeping } => {
            let shown = VexOutcome {
                status: "conflict",
                quieting: quieting.into_iter().map(VexCitation::from).collect(),
                keeping: keeping.into_iter().map(VexCitation::from).collect(),
            };
            (VexStatusMatch::Conflict, None, Vec::new(), Some(shown))
        }
    }
}

fn vex_note(outcome: &Consensus<'_>) -> Option<String> {
    match outcome {
        Consensus::None => None,
        Consensus::Agreed { status, signer, .. } => Some(match status {
            VexStatus::UnderInvestigation => {
                format!("VEX: under investigation by {signer}; finding kept")
            }
            s => format!("VEX: {} according to {signer}", s.as_str()),
        }),
        Consensus::Conflict { quieting, keeping } => Some(format!(
            "VEX conflict, finding kept: {} | {}",
            cite(quieting),
            cite(keeping)
        )),
    }
}

fn scanner_trust(f: &MergedFinding, trust: &BTreeMap<Digest, String>) -> String {
    let of = |d: &Digest| trust.get(d).map_or("unsigned", String::as_str);
    if let [only] = f.sources.as_slice() {
        return of(only).to_string();
    }
    let mut all: Vec<&str> = f.sources.iter().map(of).collect();
    all.sort();
    all.dedup();
    all.join(",")
}

fn rule_matches(
    r: &Rule,
    f: &MergedFinding,
    ctx: &JudgeContext<'_>,
    age_secs: Option<u64>,
    vex: VexStatusMatch,
    vex_signer: Option<&str>,
) -> bool {
    let env_ok = r.environments.is_empty()
        || ctx
            .environment
            .is_some_and(|e| r.environments.iter().any(|x| x == e));
    let severity_ok = r.severity.is_empty() || r.severity.contains(&f.severity);
    let package_ok =
        r.packages.is_empty() || r.packages.iter().any(|p| pattern_matches(p, &f.purl));
    let vuln_ok = r.vulnerabilities.is_empty()
        || r.vulnerabilities.iter().any(|p| {
            pattern_matches(p, &f.vulnerability) || f.aliases.iter().any(|a| pattern_matches(p, a))
        });
    let vex_ok = r.vex_status.is_empty() || r.vex_status.contains(&vex);
    let signer_ok = r.vex_signers.is_empty()
        || vex_signer.is_some_and(|s| r.vex_signers.iter().any(|x| x == s));
    // An unknown age never satisfies an age condition.
    let older_ok = r
        .older_than_seconds
        .is_none_or(|min| age_secs.is_some_and(|a| a >= min));
    let newer_ok = r
        .newer_than_seconds
        .is_none_or(|max| age_secs.is_some_and(|a| a < max));
    env_ok && severity_ok && package_ok && vuln_ok && vex_ok && signer_ok && older_ok && newer_ok
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The merge `merge` replaced: a map by (vulnerability, purl) filled in
    /// source order.
    fn merge_by_map(findings: Vec<Finding>) -> Vec<MergedFinding> {
        let mut by_key: BTreeMap<(String, String), Vec<Finding>> = BTreeMap::new();
        let mut all = findings;
        all.sort_by(|a, b| a.source.cmp(&b.source));
        for f in all {
            by_key
                .entry((f.vulnerability.clone(), f.purl.clone()))
                .or_default()
                .push(f);
        }
        by_key
            .into_iter()
            .map(|((vulnerability, purl), fs)| {
                let mut aliases: Vec<String> = fs.iter().flat_map(|f| f.aliases.clone()).collect();
                aliases.sort();
                aliases.dedup();
                let mut sources: Vec<Digest> = fs.iter().map(|f| f.source.clone()).collect();
                sources.sort();
                sources.dedup();
                MergedFinding {
                    purl,
                    vulnerability,
                    aliases,
                    severity: crate::findings::most_severe(fs.iter().map(|f| f.severity)),
                    fixed_version: fs.iter().find_map(|f| f.fixed_version.clone()),
                    published: fs.iter().filter_map(|f| f.published).min(),
                    sources,
                }
            })
            .collect()
    }

    #[test]
    fn merge_folds_like_a_map_in_source_order() {
        let mut seed = 0x1234_5678_9abc_def1_u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for round in 0..50 {
            let findings: Vec<Finding> = (0..200 + round)
                .map(|_| Finding {
                    purl: format!("pkg:npm/p{}@1", next(8)),
                    vulnerability: format!("CVE-2024-{}", next(12)),
                    aliases: (0..next(3)).map(|_| format!("GHSA-{}", next(4))).collect(),
                    severity: FindingSeverity::ALL[next(6)],
                    fixed_version: (next(3) == 0).then(|| format!("{}.0", next(5))),
                    published: (next(2) == 0).then(|| {
                        OffsetDateTime::from_unix_timestamp(1_700_000_000 + next(1_000) as i64)
                            .unwrap()
                    }),
                    source: Digest::sha256_of(&[next(4) as u8]),
                })
                .collect();
            assert_eq!(merge(findings.clone()), merge_by_map(findings));
        }
    }
}
