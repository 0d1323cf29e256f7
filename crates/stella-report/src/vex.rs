//! The narrow view of VEX a report needs: a [`VexLookup`] answers "which
//! statements speak about this vulnerability in this product or this
//! package?", and [`consensus`] turns the statements from signers the policy
//! trusts into one outcome.
//!
//! Parsing OpenVEX (or any VEX format) is not done here: the OpenVEX model
//! lives in `stella-vex`, which provides a [`VexLookup`] (and tests use the
//! in-memory [`StatementList`]). A lookup only returns statements; whether a
//! statement counts is decided here, from the signer the caller verified
//! and the policy's `vex.signers`.
//!
//! Outcome rules (docs/report.md): only statements signed by a trusted
//! signer count. All trusted statements agree: `not_affected` and `fixed`
//! quiet the finding, `affected` keeps it, `under_investigation` keeps it
//! and says so. Trusted statements disagree on whether the finding applies
//! (one side `not_affected`/`fixed`, the other `affected`/
//! `under_investigation`): a conflict, the finding is kept and both sides
//! are shown. Untrusted statements never count; they are reported as ignored.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Serialize;
use stella_types::Digest;

/// A VEX status (OpenVEX / CSAF vocabulary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VexStatus {
    NotAffected,
    Affected,
    Fixed,
    UnderInvestigation,
}

impl VexStatus {
    /// Whether the status says the finding does not apply.
    pub fn quiets(self) -> bool {
        matches!(self, Self::NotAffected | Self::Fixed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotAffected => "not_affected",
            Self::Affected => "affected",
            Self::Fixed => "fixed",
            Self::UnderInvestigation => "under_investigation",
        }
    }
}

/// One VEX statement about (product or package, vulnerability), with who
/// signed the document that carries it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VexStatement {
    /// Digest of the VEX document (or statement) as stored.
    pub digest: Digest,
    /// The issuer the document names (`author` in OpenVEX), for display.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Policy signer names that verified the document's signature (sorted);
    /// empty when unsigned or not verified.
    pub signers: Vec<String>,
    pub status: VexStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
    /// The vulnerability id the statement names.
    pub vulnerability: String,
    /// The product or subcomponent the statement matched (a purl or digest).
    pub product: String,
}

/// Where statements come from: a tenant's ingested statements, the OpenVEX
/// documents attached to the image, or both.
pub trait VexLookup {
    /// Statements about any of `vulnerabilities` (an id and its aliases) for
    /// the image `product` (its digest) or the package `purl`. Statements
    /// with wildcard products must not be returned as matches of everything;
    /// a lookup that cannot tell should leave them out.
    ///
    /// Statements the lookup holds are lent (`Cow::Borrowed`: a report over
    /// thousands of findings copies only what it cites); a lookup that
    /// builds them per call returns them owned.
    fn statements<'a>(
        &'a self,
        product: &Digest,
        purl: &str,
        vulnerabilities: &[String],
    ) -> Vec<Cow<'a, VexStatement>>;
}

/// No VEX at all.
pub struct NoVex;

impl VexLookup for NoVex {
    fn statements<'a>(&'a self, _: &Digest, _: &str, _: &[String]) -> Vec<Cow<'a, VexStatement>> {
        Vec::new()
    }
}

/// A plain list of statements, matched by exact product (image digest or
/// package URL, ignoring a purl's qualifiers) and vulnerability id. A
/// product that is neither (a wildcard such as `*`, a bare name) matches
/// nothing. Indexed by vulnerability id, so a lookup costs the statements
/// about that vulnerability, not all of them.
#[derive(Debug, Clone, Default)]
pub struct StatementList {
    // Looked up by exact id only (the result is sorted), so a hash map.
    by_vulnerability: HashMap<String, Vec<VexStatement>>,
}

impl StatementList {
    pub fn new(statements: Vec<VexStatement>) -> Self {
        let mut by_vulnerability: HashMap<String, Vec<VexStatement>> = HashMap::new();
        for s in statements {
            by_vulnerability
                .entry(s.vulnerability.clone())
                .or_default()
                .push(s);
        }
        StatementList { by_vulnerability }
    }

    pub fn len(&self) -> usize {
        self.by_vulnerability.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_vulnerability.is_empty()
    }
}

impl VexLookup for StatementList {
    fn statements<'a>(
        &'a self,
        product: &Digest,
        purl: &str,
        vulns: &[String],
    ) -> Vec<Cow<'a, VexStatement>> {
        let mut out: Vec<Cow<'a, VexStatement>> = vulns
            .iter()
            .filter_map(|v| self.by_vulnerability.get(v))
            .flatten()
            .filter(|s| names_digest(&s.product, product) || same_package(&s.product, purl))
            .map(Cow::Borrowed)
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// Two package URLs name the same package version (qualifiers and subpath ignored).
pub fn same_package(a: &str, b: &str) -> bool {
    let base = |p: &str| p.split(['?', '#']).next().unwrap_or(p).len();
    let (a_base, b_base) = (base(a), base(b));
    a.starts_with("pkg:") && a.get(..a_base) == b.get(..b_base)
}

/// `text` is `digest` written out (`<algorithm>:<hex>`), compared without
/// formatting the digest.
fn names_digest(text: &str, digest: &Digest) -> bool {
    text.split_once(':')
        .is_some_and(|(alg, hex)| alg == digest.algorithm().as_str() && hex == digest.hex())
}

/// What the trusted statements say about one finding (the statements as
/// the lookup gave them: lent or owned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consensus<'a> {
    /// No statement from a trusted signer.
    None,
    /// All trusted statements agree on `status`.
    Agreed {
        status: VexStatus,
        statements: Vec<Cow<'a, VexStatement>>,
        /// The most trusted signer among them (policy order).
        signer: String,
    },
    /// Trusted statements disagree on whether the finding applies.
    Conflict {
        quieting: Vec<Cow<'a, VexStatement>>,
        keeping: Vec<Cow<'a, VexStatement>>,
    },
}

/// The outcome over `statements` given the trusted signers (most trusted
/// first). Returns the outcome and the statements left out as untrusted.
pub fn consensus<'a>(
    mut statements: Vec<Cow<'a, VexStatement>>,
    trusted: &[String],
) -> (Consensus<'a>, Vec<Cow<'a, VexStatement>>) {
    statements.sort();
    statements.dedup();
    let rank = |s: &VexStatement| {
        trusted
            .iter()
            .position(|t| s.signers.contains(t))
            .unwrap_or(usize::MAX)
    };
    let (counted, ignored): (Vec<_>, Vec<_>) =
        statements.into_iter().partition(|s| rank(s) != usize::MAX);
    if counted.is_empty() {
        return (Consensus::None, ignored);
    }
    let some_quiet = counted.iter().any(|s| s.status.quiets());
    let some_keep = counted.iter().any(|s| !s.status.quiets());
    if some_quiet && some_keep {
        let (quieting, keeping): (Vec<_>, Vec<_>) =
            counted.into_iter().partition(|s| s.status.quiets());
        return (Consensus::Conflict { quieting, keeping }, ignored);
    }
    let best = counted.iter().min_by_key(|s| rank(s));
    let signer = best
        .and_then(|s| trusted.get(rank(s)))
        .cloned()
        .unwrap_or_default();
    // Same side: the most trusted signer's status (e.g. fixed vs not_affected,
    // affected vs under_investigation).
    let status = best.map_or(VexStatus::Affected, |s| s.status);
    (
        Consensus::Agreed {
            status,
            statements: counted,
            signer,
        },
        ignored,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn st(n: u8, signer: &str, status: VexStatus) -> Cow<'static, VexStatement> {
        Cow::Owned(VexStatement {
            digest: Digest::sha256_of(&[n]),
            issuer: None,
            signers: if signer.is_empty() {
                vec![]
            } else {
                vec![signer.into()]
            },
            status,
            justification: None,
            vulnerability: "CVE-1".into(),
            product: "pkg:npm/a@1".into(),
        })
    }

    #[test]
    fn untrusted_statements_never_count() {
        let trusted = vec!["vendor".to_string()];
        let (c, ignored) = consensus(
            vec![
                st(1, "", VexStatus::NotAffected),
                st(2, "other", VexStatus::Fixed),
            ],
            &trusted,
        );
        assert_eq!(c, Consensus::None);
        assert_eq!(ignored.len(), 2);
    }

    #[test]
    fn agreement_takes_the_most_trusted_signer() {
        let trusted = vec!["vendor".to_string(), "distro".to_string()];
        let (c, _) = consensus(
            vec![
                st(1, "distro", VexStatus::Fixed),
                st(2, "vendor", VexStatus::NotAffected),
            ],
            &trusted,
        );
        let Consensus::Agreed {
            status,
            signer,
            statements,
        } = c
        else {
            panic!("{c:?}")
        };
        assert_eq!(
            (status, signer.as_str()),
            (VexStatus::NotAffected, "vendor")
        );
        assert_eq!(statements.len(), 2);
    }

    #[test]
    fn disagreement_is_a_conflict_with_both_sides() {
        let trusted = vec!["vendor".to_string(), "distro".to_string()];
        let (c, _) = consensus(
            vec![
                st(1, "distro", VexStatus::Affected),
                st(2, "vendor", VexStatus::NotAffected),
            ],
            &trusted,
        );
        let Consensus::Conflict { quieting, keeping } = c else {
            panic!("{c:?}")
        };
        assert_eq!(quieting[0].signers, vec!["vendor"]);
        assert_eq!(keeping[0].signers, vec!["distro"]);
    }

    #[test]
    fn purl_matching_ignores_qualifiers_only() {
        assert!(same_package(
            "pkg:deb/debian/curl@7.0?arch=amd64",
            "pkg:deb/debian/curl@7.0"
        ));
        assert!(!same_package(
            "pkg:deb/debian/curl@7.1",
            "pkg:deb/debian/curl@7.0"
        ));
        assert!(!same_package("*", "pkg:deb/debian/curl@7.0"));
    }
}
