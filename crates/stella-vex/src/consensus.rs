//! Per-issuer effective statements and consensus across issuers.
//!
//! - [`IssuedStatement`]: one statement with who issued it (for evidence
//!   from a registry, the verified signer identity; never the document's
//!   self-declared author) and its document's id and version.
//! - Effective statement of one issuer for a (product, vulnerability) pair:
//!   the latest by statement timestamp (the document's when the statement
//!   has none), then document version, then statement digest (only to make
//!   the choice total).
//! - [`consensus`]: the issuers' effective statements are weighed by a
//!   [`TrustConfig`] (default: every issuer weight 1). The highest weight
//!   present decides; when issuers at that weight disagree, `conflict` is
//!   set and the most cautious status is reported (affected >
//!   under_investigation > fixed > not_affected). Issuers of weight 0 are
//!   not trusted and do not contribute.
//!
//! Results are deterministic: the same statements in any order give the
//! same value and the same canonical bytes. Nothing here does I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::VexError;
use crate::model::{Document, Statement, Status, Timestamp};
use crate::purl;

/// A statement and who issued it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuedStatement {
    pub issuer: String,
    pub document_id: String,
    pub document_version: u64,
    /// `sha256:<hex>` of the statement's canonical JSON.
    pub digest: String,
    pub statement: Statement,
}

impl IssuedStatement {
    /// Every statement of `doc`, issued by `issuer`.
    pub fn from_document(issuer: &str, doc: &Document) -> Result<Vec<IssuedStatement>, VexError> {
        doc.statements
            .iter()
            .map(|s| {
                Ok(IssuedStatement {
                    issuer: issuer.to_string(),
                    document_id: doc.id.clone(),
                    document_version: doc.version,
                    digest: s.digest()?,
                    statement: s.clone(),
                })
            })
            .collect()
    }

    /// Whether the statement is about `vulnerability` (name, alias or @id,
    /// case-insensitive).
    pub fn is_about_vulnerability(&self, vulnerability: &str) -> bool {
        let v = &self.statement.vulnerability;
        let want = vulnerability.trim();
        v.name.trim().eq_ignore_ascii_case(want)
            || v.aliases
                .iter()
                .any(|a| a.trim().eq_ignore_ascii_case(want))
            || v.id
                .as_deref()
                .is_some_and(|i| i.trim().eq_ignore_ascii_case(want))
    }

    /// Whether the statement is about `product_key` (a [`purl::normalize`]d
    /// key), as a product or one of its subcomponents.
    pub fn is_about_product(&self, product_key: &str) -> bool {
        self.statement
            .products
            .iter()
            .any(|p| purl::product_matches(p, product_key))
    }

    fn rank(&self) -> (Timestamp, u64, &str) {
        (
            self.statement.timestamp,
            self.document_version,
            self.digest.as_str(),
        )
    }
}

/// One issuer's weight in a [`TrustConfig`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerTrust {
    /// The issuer exactly as recorded (`key sha256:…`, or `identity (issuer …)`
    /// for keyless signers; the author for unsigned offline merges).
    pub issuer: String,
    /// Weight; when absent, taken from the position in the list (first is
    /// highest).
    #[serde(default)]
    pub weight: Option<u32>,
}

/// Which issuers to trust and how much. The default trusts every issuer
/// equally (weight 1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TrustConfig {
    #[serde(default)]
    pub issuers: Vec<IssuerTrust>,
    /// Weight of an issuer not listed; 0 ignores unlisted issuers.
    #[serde(default = "one", alias = "default_weight")]
    pub default_weight: u32,
}

fn one() -> u32 {
    1
}

impl Default for TrustConfig {
    fn default() -> Self {
        TrustConfig {
            issuers: Vec::new(),
            default_weight: 1,
        }
    }
}

impl TrustConfig {
    /// Checks the configuration: no issuer listed twice.
    pub fn validate(&self) -> Result<(), VexError> {
        let mut seen = std::collections::BTreeSet::new();
        for i in &self.issuers {
            if i.issuer.trim().is_empty() {
                return Err(VexError::Trust("an issuer entry has an empty name".into()));
            }
            if !seen.insert(i.issuer.as_str()) {
                return Err(VexError::Trust(format!(
                    "issuer {:?} listed twice",
                    i.issuer
                )));
            }
        }
        Ok(())
    }

    /// The weight of `issuer`. Listed issuers without a weight rank by
    /// position above the default weight: the first of n gets
    /// `default_weight + n`, the last `default_weight + 1`.
    pub fn weight(&self, issuer: &str) -> u32 {
        let n = self.issuers.len();
        for (i, entry) in self.issuers.iter().enumerate() {
            if entry.issuer == issuer {
                return entry.weight.unwrap_or_else(|| {
                    self.default_weight
                        .saturating_add(u32::try_from(n - i).unwrap_or(u32::MAX))
                });
            }
        }
        self.default_weight
    }
}

/// One issuer's effective statement as weighed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contribution {
    pub issuer: String,
    pub weight: u32,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub justification: Option<String>,
    pub timestamp: Timestamp,
    pub document_id: String,
    pub document_version: u64,
    pub statement_digest: String,
    /// At the highest weight present (so it decided the result).
    pub decisive: bool,
}

/// The consensus for one (product, vulnerability) pair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Consensus {
    /// The normalised product key asked about.
    pub product: String,
    pub vulnerability: String,
    pub status: Status,
    /// Trusted issuers at the deciding weight disagree.
    pub conflict: bool,
    pub rationale: String,
    /// Every issuer's effective statement, highest weight first, then by issuer.
    pub contributions: Vec<Contribution>,
}

/// The effective statement of each issuer among `statements` (already
/// filtered to one pair), keyed by issuer.
pub fn effective_by_issuer<'a>(
    statements: impl IntoIterator<Item = &'a IssuedStatement>,
) -> BTreeMap<&'a str, &'a IssuedStatement> {
    let mut best: BTreeMap<&str, &IssuedStatement> = BTreeMap::new();
    for s in statements {
        match best.get(s.issuer.as_str()) {
            Some(cur) if cur.rank() >= s.rank() => {}
            _ => {
                best.insert(s.issuer.as_str(), s);
            }
        }
    }
    best
}

/// The consensus for `product` (any identifier form; normalised here) and
/// `vulnerability` among `statements`, or `None` when no trusted issuer
/// says anything about the pair.
pub fn consensus(
    statements: &[IssuedStatement],
    product: &str,
    vulnerability: &str,
    trust: &TrustConfig,
) -> Option<Consensus> {
    let key = purl::normalize(product);
    let relevant = statements
        .iter()
        .filter(|s| s.is_about_vulnerability(vulnerability) && s.is_about_product(&key))
        .filter(|s| trust.weight(&s.issuer) > 0);
    let effective = effective_by_issuer(relevant);
    decide(key, vulnerability.trim().to_string(), effective, trust)
}

/// The consensus for every (product, vulnerability) pair the statements
/// name (products by their primary key, vulnerabilities by name), sorted
/// by product then vulnerability.
pub fn consensus_all(statements: &[IssuedStatement], trust: &TrustConfig) -> Vec<Consensus> {
    let mut pairs: BTreeMap<(String, String), Vec<&IssuedStatement>> = BTreeMap::new();
    for s in statements.iter().filter(|s| trust.weight(&s.issuer) > 0) {
        for p in &s.statement.products {
            let key = purl::primary_key(&p.component);
            let vuln = s.statement.vulnerability.name.trim().to_string();
            let entry = pairs.entry((key, vuln)).or_default();
            if !entry.iter().any(|e| std::ptr::eq(*e, s)) {
                entry.push(s);
            }
        }
    }
    pairs
        .into_iter()
        .filter_map(|((product, vuln), list)| {
            decide(product, vuln, effective_by_issuer(list), trust)
        })
        .collect()
}

fn decide(
    product: String,
    vulnerability: String,
    effective: BTreeMap<&str, &IssuedStatement>,
    trust: &TrustConfig,
) -> Option<Consensus> {
    let top = effective.keys().map(|i| trust.weight(i)).max()?;
    let mut contributions: Vec<Contribution> = effective
        .values()
        .map(|s| {
            let weight = trust.weight(&s.issuer);
            Contribution {
                issuer: s.issuer.clone(),
                weight,
                status: s.statement.status,
                justification: s.statement.justification.clone(),
                timestamp: s.statement.timestamp,
                document_id: s.document_id.clone(),
                document_version: s.document_version,
                statement_digest: s.digest.clone(),
                decisive: weight == top,
            }
        })
        .collect();
    contributions.sort_by(|a, b| b.weight.cmp(&a.weight).then(a.issuer.cmp(&b.issuer)));
    let decisive: Vec<&Contribution> = contributions.iter().filter(|c| c.decisive).collect();
    let mut statuses: Vec<Status> = decisive.iter().map(|c| c.status).collect();
    statuses.sort_by_key(|s| std::cmp::Reverse(s.caution()));
    statuses.dedup();
    let status = *statuses.first()?;
    let conflict = statuses.len() > 1;
    let rationale = rationale(&contributions, top, status, conflict);
    Some(Consensus {
        product,
        vulnerability,
        status,
        conflict,
        rationale,
        contributions,
    })
}

fn rationale(contributions: &[Contribution], top: u32, status: Status, conflict: bool) -> String {
    let decisive: Vec<String> = contributions
        .iter()
        .filter(|c| c.decisive)
        .map(|c| format!("{} says {}", c.issuer, c.status.as_str()))
        .collect();
    let overridden = contributions
        .iter()
        .filter(|c| !c.decisive && c.status != status)
        .count();
    let mut text = if conflict {
        format!(
            "trusted issuers at weight {top} disagree ({}); the most cautious status, {}, is reported",
            decisive.join("; "),
            status.as_str()
        )
    } else {
        format!(
            "{} at weight {top}: {} ({})",
            if decisive.len() == 1 {
                "the highest-weight issuer agrees".to_string()
            } else {
                format!("all {} highest-weight issuers agree", decisive.len())
            },
            status.as_str(),
            decisive.join("; ")
        )
    };
    if overridden > 0 {
        text.push_str(&format!(
            "; {overridden} lower-weight issuer{} with another status overridden",
            if overridden == 1 { "" } else { "s" }
        ));
    }
    text
}
