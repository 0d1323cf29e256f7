//! The decision sections of a version 1 policy: `vex:` (which signers' VEX
//! statements count) and `rules:` (what to do with each scanner finding).
//! Both are optional, so every policy written before them stays valid.
//!
//! ```yaml
//! vex:
//!   signers: [vendor, distro]      # names from $.signers, most trusted first
//! rules:
//!   - name: Ignore Low dev
//!     severity: [Low, None]        # Critical, High, Medium, Low, None, Unknown
//!     environments: [dev, staging]
//!     action: ignore               # block | warn | ignore
//! ```
//!
//! This module parses and validates (every problem has a JSON path such as
//! `$.rules[0].severity`); applying the rules to findings is
//! `stella-report`'s job. Nothing here reads files or findings.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use super::{Ctx, Signer, kind};

/// Finding severities a rule can name, from most to least severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum FindingSeverity {
    Critical,
    High,
    Medium,
    Low,
    None,
    Unknown,
}

impl FindingSeverity {
    /// Every severity, most severe first.
    pub const ALL: [FindingSeverity; 6] = [
        Self::Critical,
        Self::High,
        Self::Medium,
        Self::Low,
        Self::None,
        Self::Unknown,
    ];

    /// The name as policies and reports spell it (`Critical`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "Critical",
            Self::High => "High",
            Self::Medium => "Medium",
            Self::Low => "Low",
            Self::None => "None",
            Self::Unknown => "Unknown",
        }
    }

    /// Parses a level name, ignoring ASCII case (`low`, `Low`, `LOW`).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// What a rule does to the findings it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    Block,
    Warn,
    Ignore,
}

impl RuleAction {
    /// The name as policies and reports spell it (`block`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::Warn => "warn",
            Self::Ignore => "ignore",
        }
    }
}

/// A VEX status a rule can match (`none`: no trusted VEX statement at all;
/// `conflict`: trusted statements disagree).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VexStatusMatch {
    NotAffected,
    Affected,
    Fixed,
    UnderInvestigation,
    Conflict,
    None,
}

impl VexStatusMatch {
    const NAMES: [(&'static str, VexStatusMatch); 6] = [
        ("not_affected", Self::NotAffected),
        ("affected", Self::Affected),
        ("fixed", Self::Fixed),
        ("under_investigation", Self::UnderInvestigation),
        ("conflict", Self::Conflict),
        ("none", Self::None),
    ];

    fn parse(s: &str) -> Option<Self> {
        Self::NAMES.iter().find(|(n, _)| *n == s).map(|(_, v)| *v)
    }
}

/// Whose VEX counts: signer names from `$.signers`, most trusted first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct VexPolicy {
    pub signers: Vec<String>,
}

/// One finding rule. Every condition given must hold (an empty list or an
/// absent age means "any"); the first rule that matches a finding decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub name: String,
    pub action: RuleAction,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub severity: Vec<FindingSeverity>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub environments: Vec<String>,
    /// Package URL patterns (`*` matches any run of characters).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
    /// Vulnerability id patterns, matched against the id and its aliases.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vulnerabilities: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vex_status: Vec<VexStatusMatch>,
    /// The trusted VEX must come from one of these signers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vex_signers: Vec<String>,
    /// The vulnerability was published at least this long ago (seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub older_than_seconds: Option<u64>,
    /// The vulnerability was published less than this long ago (seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newer_than_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
}

/// Keys a rule may carry.
const RULE_KEYS: [&str; 11] = [
    "name",
    "action",
    "severity",
    "environments",
    "packages",
    "vulnerabilities",
    "vexStatus",
    "vexSigners",
    "olderThan",
    "newerThan",
    "justification",
];

/// Longest pattern accepted (patterns are matched against every finding).
const MAX_PATTERN_CHARS: usize = 512;

pub(super) fn parse_vex(
    v: &Value,
    signers: &BTreeMap<String, Signer>,
    ctx: &mut Ctx,
) -> Option<VexPolicy> {
    let m = ctx.object(v, "$.vex")?;
    ctx.unknown_keys(m, "$.vex", &["signers"]);
    let mut out = VexPolicy::default();
    if let Some(s) = m.get("signers") {
        let names = ctx.string_list(s, "$.vex.signers");
        check_signers(&names, "$.vex.signers", signers, ctx);
        out.signers = dedup_keep_order(names);
    }
    if out.signers.is_empty() {
        ctx.warn(
            "$.vex.signers",
            "policy.vex.no_signers",
            "no VEX signer is trusted, so no VEX statement will quiet a finding",
        );
    }
    Some(out)
}

pub(super) fn parse_rules(
    v: &Value,
    signers: &BTreeMap<String, Signer>,
    vex: Option<&VexPolicy>,
    ctx: &mut Ctx,
) -> Vec<Rule> {
    let Value::Array(items) = v else {
        ctx.err(
            "$.rules",
            "policy.type",
            format!("must be a list, found {}", kind(v)),
        );
        return Vec::new();
    };
    let mut names = BTreeSet::new();
    let mut rules = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("$.rules[{i}]");
        let Some(rule) = parse_rule(item, &path, signers, vex, ctx) else {
            continue;
        };
        if !names.insert(rule.name.clone()) {
            ctx.err(
                &format!("{path}.name"),
                "policy.rule.duplicate",
                format!("rule name {:?} is used twice", rule.name),
            );
        }
        rules.push(rule);
    }
    rules
}

fn parse_rule(
    v: &Value,
    path: &str,
    signers: &BTreeMap<String, Signer>,
    vex: Option<&VexPolicy>,
    ctx: &mut Ctx,
) -> Option<Rule> {
    let m = ctx.object(v, path)?;
    ctx.unknown_keys(m, path, &RULE_KEYS);
    let name = required(m.get("name"), &format!("{path}.name"), ctx)
        .and_then(|n| ctx.string(n, &format!("{path}.name")));
    let action = required(m.get("action"), &format!("{path}.action"), ctx)
        .and_then(|a| parse_action(a, &format!("{path}.action"), ctx));
    let list = |key: &str, ctx: &mut Ctx| {
        m.get(key)
            .map(|v| ctx.string_list(v, &format!("{path}.{key}")))
            .unwrap_or_default()
    };
    let severity = parse_enum_list(
        &list("severity", ctx),
        &format!("{path}.severity"),
        ctx,
        |s| {
            FindingSeverity::parse(s).ok_or_else(|| {
                format!("Invalid level '{s}' (use Critical, High, Medium, Low, None or Unknown)")
            })
        },
    );
    let vex_status = parse_enum_list(
        &list("vexStatus", ctx),
        &format!("{path}.vexStatus"),
        ctx,
        |s| {
            VexStatusMatch::parse(s).ok_or_else(|| format!("unknown VEX status '{s}' (use not_affected, affected, fixed, under_investigation, conflict or none)"))
        },
    );
    let environments = dedup_keep_order(list("environments", ctx));
    let packages = patterns(list("packages", ctx), &format!("{path}.packages"), ctx);
    let vulnerabilities = patterns(
        list("vulnerabilities", ctx),
        &format!("{path}.vulnerabilities"),
        ctx,
    );
    let vex_signers = list("vexSigners", ctx);
    check_signers(&vex_signers, &format!("{path}.vexSigners"), signers, ctx);
    check_vex_trusted(&vex_signers, &format!("{path}.vexSigners"), vex, ctx);
    let older_than_seconds = m
        .get("olderThan")
        .and_then(|v| ctx.duration(v, &format!("{path}.olderThan")));
    let newer_than_seconds = m
        .get("newerThan")
        .and_then(|v| ctx.duration(v, &format!("{path}.newerThan")));
    let justification = m
        .get("justification")
        .and_then(|v| ctx.string(v, &format!("{path}.justification")));
    Some(Rule {
        name: name?,
        action: action?,
        severity,
        environments,
        packages,
        vulnerabilities,
        vex_status,
        vex_signers: dedup_keep_order(vex_signers),
        older_than_seconds,
        newer_than_seconds,
        justification,
    })
}

fn required<'v>(v: Option<&'v Value>, path: &str, ctx: &mut Ctx) -> Option<&'v Value> {
    if v.is_none() {
        ctx.err(path, "policy.rule.required", "is required");
    }
    v
}

fn parse_action(v: &Value, path: &str, ctx: &mut Ctx) -> Option<RuleAction> {
    match ctx.string(v, path)?.as_str() {
        "block" => Some(RuleAction::Block),
        "warn" => Some(RuleAction::Warn),
        "ignore" => Some(RuleAction::Ignore),
        other => {
            ctx.err(
                path,
                "policy.rule.action",
                format!("{other:?} is not one of block, warn, ignore"),
            );
            None
        }
    }
}

/// Parses each entry; a bad entry is reported at the list's path (as the
/// API reference's `$.rules[0].severity` errors are).
fn parse_enum_list<T: Ord + Copy>(
    items: &[String],
    path: &str,
    ctx: &mut Ctx,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Vec<T> {
    let mut out = Vec::new();
    for item in items {
        match parse(item) {
            Ok(v) => out.push(v),
            Err(msg) => ctx.err(path, "policy.rule.value", msg),
        }
    }
    out.sort();
    out.dedup();
    out
}

fn patterns(items: Vec<String>, path: &str, ctx: &mut Ctx) -> Vec<String> {
    for (i, p) in items.iter().enumerate() {
        if p.chars().count() > MAX_PATTERN_CHARS {
            ctx.err(
                &format!("{path}[{i}]"),
                "policy.rule.pattern",
                format!("pattern is longer than {MAX_PATTERN_CHARS} characters"),
            );
        }
    }
    dedup_keep_order(items)
}

fn check_signers(names: &[String], path: &str, signers: &BTreeMap<String, Signer>, ctx: &mut Ctx) {
    for (i, s) in names.iter().enumerate() {
        if !signers.contains_key(s) {
            ctx.err(
                &format!("{path}[{i}]"),
                "policy.signer.undefined",
                format!("signer {s:?} is not defined under $.signers"),
            );
        }
    }
}

/// A rule naming VEX signers the `vex:` section does not trust could never
/// match: their statements never count.
fn check_vex_trusted(names: &[String], path: &str, vex: Option<&VexPolicy>, ctx: &mut Ctx) {
    let trusted: &[String] = vex.map_or(&[], |v| &v.signers);
    for (i, s) in names.iter().enumerate() {
        if !trusted.contains(s) {
            ctx.err(
                &format!("{path}[{i}]"),
                "policy.rule.vex_signer_untrusted",
                format!("signer {s:?} is not listed under $.vex.signers, so its VEX never counts and this rule could never match"),
            );
        }
    }
}

fn dedup_keep_order(items: Vec<String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    items
        .into_iter()
        .filter(|s| seen.insert(s.clone()))
        .collect()
}

/// Whether `text` matches `pattern`, where `*` matches any run of
/// characters (including none) and everything else matches itself.
///
/// Compares bytes, without collecting characters: `*` is ASCII, so every
/// literal run of the pattern starts on a character boundary and can only
/// match the text from a character boundary (a UTF-8 lead byte never equals
/// a continuation byte). Same answers as matching characters.
pub fn pattern_matches(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    // Iterative wildcard match with one backtrack point: linear in practice.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(c) if Some(c) == t.get(ti) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|c| *c == b'*'))
}

#[cfg(test)]
#[allow(clippy::panic, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::policy::{Policy, PolicyDiagnostics};

    fn parse(yaml: &str) -> (Option<Policy>, PolicyDiagnostics) {
        Policy::parse(yaml.as_bytes(), &|_| None)
    }

    /// The API reference's import example, exactly as written there.
    const SEED_EXAMPLE: &str = "version: \"1.0\"\nrules:\n- name: Ignore Low dev\n  severity: [Low, None]\n  environments: [dev, staging]\n  action: ignore\n";

    #[test]
    fn seed_example_is_accepted_exactly() {
        let (p, d) = parse(SEED_EXAMPLE);
        assert!(d.success, "{:?}", d.issues);
        let p = p.unwrap();
        assert_eq!(p.rules.len(), 1);
        let r = &p.rules[0];
        assert_eq!(r.name, "Ignore Low dev");
        assert_eq!(
            r.severity,
            vec![FindingSeverity::Low, FindingSeverity::None]
        );
        assert_eq!(r.environments, vec!["dev", "staging"]);
        assert_eq!(r.action, RuleAction::Ignore);
        assert_eq!(d.error_count, 0);
        // Rules alone make a complete policy: no "any image passes" warning.
        assert_eq!(d.warning_count, 0, "{:?}", d.issues);
        assert_eq!(d.rule_count, 1);
        let (_, d) = parse("version: 1\n");
        assert!(
            d.issues
                .iter()
                .any(|i| i.code == "policy.requirements.none")
        );
    }

    #[test]
    fn full_rule_set_parses() {
        let (p, d) = parse(
            r#"
version: 1
signers:
  vendor: { keys: [vendor.pub] }
  distro: { keys: [distro.pub] }
vex:
  signers: [vendor, distro]
rules:
  - name: Block critical
    severity: [Critical]
    action: block
  - name: Old highs warn
    severity: [high]
    olderThan: 30d
    action: warn
  - name: Vendor says investigating
    vexStatus: [under_investigation]
    vexSigners: [vendor]
    packages: ["pkg:npm/*"]
    vulnerabilities: ["CVE-2024-*"]
    newerThan: 7d
    action: warn
    justification: waiting for the vendor
"#,
        );
        assert!(d.success, "{:?}", d.issues);
        let p = p.unwrap();
        assert_eq!(p.vex.as_ref().unwrap().signers, vec!["vendor", "distro"]);
        assert_eq!(p.rules.len(), 3);
        assert_eq!(p.rules[1].severity, vec![FindingSeverity::High]);
        assert_eq!(p.rules[1].older_than_seconds, Some(30 * 86_400));
        assert_eq!(
            p.rules[2].vex_status,
            vec![VexStatusMatch::UnderInvestigation]
        );
        assert_eq!(p.rules[2].newer_than_seconds, Some(7 * 86_400));
    }

    #[test]
    fn rule_errors_carry_json_paths() {
        let (p, d) = parse(
            r#"
version: 1
signers:
  vendor: { keys: [vendor.pub] }
vex:
  signers: [vendor, nobody]
  colour: red
rules:
  - name: Bad level
    severity: [Low, Severe]
    action: ignore
  - name: Bad action
    action: quarantine
  - severity: [High]
    action: block
  - name: Bad VEX
    vexStatus: [maybe]
    vexSigners: [other]
    olderThan: 3y
    action: warn
    extra: 1
  - name: Bad level
    action: warn
"#,
        );
        assert!(p.is_none());
        let got: Vec<(&str, &str)> = d
            .issues
            .iter()
            .map(|i| (i.path.as_str(), i.code.as_str()))
            .collect();
        for want in [
            ("$.vex.signers[1]", "policy.signer.undefined"),
            ("$.vex.colour", "policy.unknown_key"),
            ("$.rules[0].severity", "policy.rule.value"),
            ("$.rules[1].action", "policy.rule.action"),
            ("$.rules[2].name", "policy.rule.required"),
            ("$.rules[3].vexStatus", "policy.rule.value"),
            ("$.rules[3].vexSigners[0]", "policy.signer.undefined"),
            (
                "$.rules[3].vexSigners[0]",
                "policy.rule.vex_signer_untrusted",
            ),
            ("$.rules[3].olderThan", "policy.duration"),
            ("$.rules[3].extra", "policy.unknown_key"),
            ("$.rules[4].name", "policy.rule.duplicate"),
        ] {
            assert!(got.contains(&want), "missing {want:?} in {got:?}");
        }
        let level = d
            .issues
            .iter()
            .find(|i| i.path == "$.rules[0].severity")
            .unwrap();
        assert!(
            level.message.contains("Invalid level 'Severe'"),
            "{level:?}"
        );
    }

    #[test]
    fn rules_must_be_a_list() {
        let (_, d) = parse("version: 1\nrules: {name: x}\n");
        assert!(
            d.issues
                .iter()
                .any(|i| i.path == "$.rules" && i.code == "policy.type")
        );
    }

    #[test]
    fn wildcard_patterns() {
        assert!(pattern_matches("pkg:npm/*", "pkg:npm/lodash@4.17.4"));
        assert!(pattern_matches("*lodash*", "pkg:npm/lodash@4.17.4"));
        assert!(pattern_matches("CVE-2024-*", "CVE-2024-1234"));
        assert!(!pattern_matches("CVE-2024-*", "CVE-2023-1234"));
        assert!(pattern_matches("exact", "exact"));
        assert!(!pattern_matches("exact", "exactly"));
        assert!(pattern_matches("a*b*c", "aXXbYYc"));
        assert!(!pattern_matches("a*b*c", "aXXbYY"));
        assert!(pattern_matches("*", ""));
    }

    /// The character-by-character matcher `pattern_matches` replaced.
    fn matches_by_chars(pattern: &str, text: &str) -> bool {
        let p: Vec<char> = pattern.chars().collect();
        let t: Vec<char> = text.chars().collect();
        let (mut pi, mut ti) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while ti < t.len() {
            match p.get(pi) {
                Some('*') => {
                    star = Some((pi, ti));
                    pi += 1;
                }
                Some(c) if Some(c) == t.get(ti) => {
                    pi += 1;
                    ti += 1;
                }
                _ => match star {
                    Some((sp, st)) => {
                        pi = sp + 1;
                        ti = st + 1;
                        star = Some((sp, st + 1));
                    }
                    None => return false,
                },
            }
        }
        p[pi..].iter().all(|c| *c == '*')
    }

    #[test]
    fn byte_matching_answers_like_character_matching() {
        // Characters of one to four UTF-8 bytes sharing lead and
        // continuation bytes, so a byte-level slip would show.
        let alphabet = ['a', '*', 'é', 'è', 'ê', '€', '₤', '😀', '😁', '-'];
        let mut seed = 0x2545_f491_u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut word = |max: usize, stars: bool| -> String {
            let len = next(max + 1);
            (0..len)
                .map(|_| alphabet[next(alphabet.len())])
                .filter(|c| stars || *c != '*')
                .collect()
        };
        let mut matched = 0;
        for _ in 0..50_000 {
            let (p, t) = (word(5, true), word(7, false));
            let expected = matches_by_chars(&p, &t);
            assert_eq!(pattern_matches(&p, &t), expected, "{p:?} {t:?}");
            matched += usize::from(expected);
        }
        assert!(
            matched > 1_000,
            "too few matching pairs to compare: {matched}"
        );
    }
}
