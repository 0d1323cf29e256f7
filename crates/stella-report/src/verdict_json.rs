//! The report's `verdicts[]` and `issues[]` written straight as canonical
//! JSON (RFC 8785), the bulk of a report's bytes.
//!
//! The shapes are fixed and every key is ASCII, so members are written in
//! canonical (sorted) order as they come: no serde round, no per-object sort
//! check, keys copied as constants; strings go through the shared escaper
//! (`stella_types::canonical_json::append_canonical_str`). The bytes are
//! exactly what canonicalising the same values through their `Serialize`
//! impls gives (tests below compare both on generated verdicts; the report's
//! own bytes are pinned in `tests/decide.rs`). Each writer destructures its
//! struct without `..`, so a new field does not compile until it is written
//! here too.
//!
//! What this module does not do: write anything else of the report (the
//! small parts go through `stella_types::canonical_json`).

use stella_types::Digest;
use stella_types::canonical_json::append_canonical_str as string;

use crate::judge::{FindingVerdict, ReportIssue, VerdictInputs, VexCitation, VexOutcome};

/// Appends `[verdict,…]`.
pub(crate) fn write_verdicts(out: &mut Vec<u8>, verdicts: &[FindingVerdict]) {
    array(out, verdicts, verdict);
}

/// Appends `[issue,…]`.
pub(crate) fn write_issues(out: &mut Vec<u8>, issues: &[ReportIssue]) {
    array(out, issues, issue);
}

fn array<T>(out: &mut Vec<u8>, items: &[T], item: fn(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        item(out, x);
    }
    out.push(b']');
}

/// An object being written; members must come in canonical key order.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    last_key: Option<&'static str>,
}

impl<'a> Object<'a> {
    fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Object {
            out,
            last_key: None,
        }
    }

    /// Starts the member `key` (ASCII letters only, so written unescaped)
    /// and returns the output for its value.
    fn key(&mut self, key: &'static str) -> &mut Vec<u8> {
        debug_assert!(self.last_key < Some(key), "{key} out of order");
        debug_assert!(key.bytes().all(|b| b.is_ascii_alphabetic()));
        if self.last_key.is_some() {
            self.out.push(b',');
        }
        self.last_key = Some(key);
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    fn close(self) {
        self.out.push(b'}');
    }
}

/// A name from a fixed vocabulary (enum spellings: ASCII letters and `_`).
fn name(out: &mut Vec<u8>, name: &str) {
    debug_assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.push(b'"');
}

fn digest(out: &mut Vec<u8>, d: &Digest) {
    out.push(b'"');
    out.extend_from_slice(d.algorithm().as_str().as_bytes());
    out.push(b':');
    // Validated lower-case hex: nothing to escape.
    out.extend_from_slice(d.hex().as_bytes());
    out.push(b'"');
}

fn strings(out: &mut Vec<u8>, items: &[String]) {
    array(out, items, |out, s| string(out, s));
}

/// An unsigned integer in decimal (canonical JSON writes integers plainly).
fn unsigned(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        if let Some(d) = digits.get_mut(at) {
            // n % 10 < 10, so the cast cannot truncate.
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(at..).unwrap_or_default());
}

fn verdict(out: &mut Vec<u8>, v: &FindingVerdict) {
    let FindingVerdict {
        finding_id,
        inputs,
        notes,
        quiet,
        quieted_by,
        rule_action,
        rule_name,
        source_trust,
        status,
    } = v;
    let mut o = Object::open(out);
    string(o.key("findingId"), finding_id);
    verdict_inputs(o.key("inputs"), inputs);
    if let Some(notes) = notes {
        string(o.key("notes"), notes);
    }
    o.key("quiet")
        .extend_from_slice(if *quiet { b"true" } else { b"false" });
    if !quieted_by.is_empty() {
        array(o.key("quietedBy"), quieted_by, citation);
    }
    if let Some(action) = rule_action {
        name(o.key("ruleAction"), action.as_str());
    }
    if let Some(rule) = rule_name {
        string(o.key("ruleName"), rule);
    }
    string(o.key("sourceTrust"), source_trust);
    name(o.key("status"), status.as_str());
    o.close();
}

fn verdict_inputs(out: &mut Vec<u8>, inputs: &VerdictInputs) {
    let VerdictInputs {
        age_days,
        aliases,
        environment,
        fixed_version,
        published,
        purl,
        severity,
        sources,
        vex,
        vulnerability,
    } = inputs;
    let mut o = Object::open(out);
    if let Some(days) = age_days {
        unsigned(o.key("ageDays"), *days);
    }
    if !aliases.is_empty() {
        strings(o.key("aliases"), aliases);
    }
    if let Some(environment) = environment {
        string(o.key("environment"), environment);
    }
    if let Some(fixed) = fixed_version {
        string(o.key("fixedVersion"), fixed);
    }
    if let Some(published) = published {
        string(o.key("published"), published);
    }
    string(o.key("purl"), purl);
    name(o.key("severity"), severity.as_str());
    array(o.key("sources"), sources, digest);
    if let Some(vex) = vex {
        vex_outcome(o.key("vex"), vex);
    }
    string(o.key("vulnerability"), vulnerability);
    o.close();
}

fn vex_outcome(out: &mut Vec<u8>, vex: &VexOutcome) {
    let VexOutcome {
        keeping,
        quieting,
        status,
    } = vex;
    let mut o = Object::open(out);
    if !keeping.is_empty() {
        array(o.key("keeping"), keeping, citation);
    }
    if !quieting.is_empty() {
        array(o.key("quieting"), quieting, citation);
    }
    name(o.key("status"), status);
    o.close();
}

fn citation(out: &mut Vec<u8>, c: &VexCitation) {
    let VexCitation {
        digest: d,
        issuer,
        justification,
        signers,
        status,
    } = c;
    let mut o = Object::open(out);
    digest(o.key("digest"), d);
    if let Some(issuer) = issuer {
        string(o.key("issuer"), issuer);
    }
    if let Some(justification) = justification {
        string(o.key("justification"), justification);
    }
    strings(o.key("signers"), signers);
    name(o.key("status"), status.as_str());
    o.close();
}

fn issue(out: &mut Vec<u8>, i: &ReportIssue) {
    let ReportIssue {
        code,
        severity,
        message,
        finding_id,
    } = i;
    let mut o = Object::open(out);
    string(o.key("code"), code);
    if let Some(finding) = finding_id {
        string(o.key("findingId"), finding);
    }
    string(o.key("message"), message);
    string(o.key("severity"), severity);
    o.close();
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use stella_types::canonical_json::to_canonical_vec;
    use stella_verify::policy::{FindingSeverity, RuleAction};

    use super::*;
    use crate::judge::FindingStatus;
    use crate::vex::VexStatus;

    /// A small deterministic generator (xorshift).
    struct Gen(u64);

    impl Gen {
        fn next(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }

        fn coin(&mut self) -> bool {
            self.next(2) == 0
        }

        /// Text with quotes, backslashes, every kind of control, `/`, DEL,
        /// and two- to four-byte characters.
        fn text(&mut self) -> String {
            const PIECES: [&str; 14] = [
                "CVE-2024-1234",
                "pkg:npm/a@1?arch=x#p",
                "\"",
                "\\",
                "\n\r\t",
                "\u{8}\u{c}",
                "\u{0}\u{1f}\u{b}",
                "/",
                "\u{7f}",
                "é",
                "€",
                "😀",
                "\u{e000}",
                "",
            ];
            (0..self.next(4))
                .map(|_| PIECES[self.next(PIECES.len())])
                .collect()
        }

        fn opt_text(&mut self) -> Option<String> {
            self.coin().then(|| self.text())
        }

        fn texts(&mut self) -> Vec<String> {
            (0..self.next(3)).map(|_| self.text()).collect()
        }

        fn digest(&mut self) -> Digest {
            Digest::sha256_of(&self.next(1_000).to_le_bytes())
        }

        fn citations(&mut self) -> Vec<VexCitation> {
            const STATUSES: [VexStatus; 4] = [
                VexStatus::NotAffected,
                VexStatus::Affected,
                VexStatus::Fixed,
                VexStatus::UnderInvestigation,
            ];
            (0..self.next(3))
                .map(|_| VexCitation {
                    digest: self.digest(),
                    issuer: self.opt_text(),
                    justification: self.opt_text(),
                    signers: self.texts(),
                    status: STATUSES[self.next(4)],
                })
                .collect()
        }

        fn verdict(&mut self) -> FindingVerdict {
            const STATUSES: [FindingStatus; 5] = [
                FindingStatus::Blocked,
                FindingStatus::Warned,
                FindingStatus::Ignored,
                FindingStatus::Quieted,
                FindingStatus::Pass,
            ];
            const ACTIONS: [RuleAction; 3] =
                [RuleAction::Block, RuleAction::Warn, RuleAction::Ignore];
            const OUTCOMES: [&str; 5] = [
                "not_affected",
                "affected",
                "fixed",
                "under_investigation",
                "conflict",
            ];
            let vex = self.coin().then(|| VexOutcome {
                keeping: self.citations(),
                quieting: self.citations(),
                status: OUTCOMES[self.next(5)],
            });
            FindingVerdict {
                finding_id: self.text(),
                inputs: VerdictInputs {
                    age_days: self
                        .coin()
                        .then(|| [0, 7, 10, 99_999, u64::MAX][self.next(5)]),
                    aliases: self.texts(),
                    environment: self.opt_text(),
                    fixed_version: self.opt_text(),
                    published: self.opt_text(),
                    purl: self.text(),
                    severity: FindingSeverity::ALL[self.next(6)],
                    sources: (0..self.next(3)).map(|_| self.digest()).collect(),
                    vex,
                    vulnerability: self.text(),
                },
                notes: self.opt_text(),
                quiet: self.coin(),
                quieted_by: self.citations(),
                rule_action: self.coin().then(|| ACTIONS[self.next(3)]),
                rule_name: self.opt_text(),
                source_trust: self.text(),
                status: STATUSES[self.next(5)],
            }
        }
    }

    #[test]
    fn verdicts_are_written_as_serde_canonicalises_them() {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        let verdicts: Vec<FindingVerdict> = (0..3_000).map(|_| g.verdict()).collect();
        let mut written = Vec::new();
        write_verdicts(&mut written, &verdicts);
        assert_eq!(
            String::from_utf8(written).unwrap(),
            String::from_utf8(to_canonical_vec(&verdicts).unwrap()).unwrap()
        );
        let mut empty = Vec::new();
        write_verdicts(&mut empty, &[]);
        assert_eq!(empty, b"[]");
    }

    #[test]
    fn issues_are_written_as_serde_canonicalises_them() {
        let mut g = Gen(0x2545_f491_4f6c_dd1d);
        let issues: Vec<ReportIssue> = (0..2_000)
            .map(|_| ReportIssue::new(&g.text(), &g.text(), g.text(), g.opt_text()))
            .collect();
        let mut written = Vec::new();
        write_issues(&mut written, &issues);
        assert_eq!(written, to_canonical_vec(&issues).unwrap());
    }

    #[test]
    fn integers_in_decimal() {
        for n in [0, 1, 9, 10, 12_345, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            unsigned(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }
}
