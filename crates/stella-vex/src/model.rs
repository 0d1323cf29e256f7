//! The OpenVEX document model (v0.2.0), parsing and validation by the
//! spec rules.
//!
//! [`parse`] accepts the current format and the legacy v0.0.1 shape
//! (plain-string `vulnerability` and `products`, string `version`) and
//! returns the canonical v0.2.0 model: timestamps in UTC, every statement
//! checked by the status rules. It does not look at signatures, decide who
//! issued a document, or read the clock (see [`Document::check_not_after`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::VexError;

/// The current OpenVEX context.
pub const CONTEXT_V020: &str = "https://openvex.dev/ns/v0.2.0";
/// Default size cap for one document.
pub const DEFAULT_MAX_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;

/// An instant, serialised as RFC 3339 in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub OffsetDateTime);

impl Timestamp {
    /// Parses RFC 3339 (any offset) into UTC.
    pub fn parse(s: &str) -> Option<Timestamp> {
        OffsetDateTime::parse(s.trim(), &Rfc3339)
            .ok()
            .map(|t| Timestamp(t.to_offset(time::UtcOffset::UTC)))
    }
    /// RFC 3339 in UTC (`Z`).
    pub fn to_rfc3339(self) -> String {
        self.0
            .format(&Rfc3339)
            .unwrap_or_else(|_| self.0.unix_timestamp().to_string())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse(&s).ok_or_else(|| serde::de::Error::custom("not an RFC 3339 timestamp"))
    }
}

/// The status of a statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    NotAffected,
    Affected,
    Fixed,
    UnderInvestigation,
}

impl Status {
    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "not_affected" => Status::NotAffected,
            "affected" => Status::Affected,
            "fixed" => Status::Fixed,
            "under_investigation" => Status::UnderInvestigation,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Status::NotAffected => "not_affected",
            Status::Affected => "affected",
            Status::Fixed => "fixed",
            Status::UnderInvestigation => "under_investigation",
        }
    }
    /// How cautious a status is when trusted issuers disagree: the higher,
    /// the more it warns (affected > under_investigation > fixed > not_affected).
    pub fn caution(self) -> u8 {
        match self {
            Status::Affected => 3,
            Status::UnderInvestigation => 2,
            Status::Fixed => 1,
            Status::NotAffected => 0,
        }
    }
}

/// The justification labels of the spec.
pub const JUSTIFICATIONS: [&str; 5] = [
    "component_not_present",
    "vulnerable_code_not_present",
    "vulnerable_code_not_in_execute_path",
    "vulnerable_code_cannot_be_controlled_by_adversary",
    "inline_mitigations_already_exist",
];

/// A vulnerability reference.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vulnerability {
    #[serde(rename = "@id", skip_serializing_if = "Option::is_none", default)]
    pub id: Option<String>,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub aliases: Vec<String>,
}

/// A component: a product or one of its subcomponents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Component {
    #[serde(rename = "@id", skip_serializing_if = "Option::is_none", default)]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub identifiers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub hashes: BTreeMap<String, String>,
}

/// A product, with the subcomponents the statement narrows to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    #[serde(flatten)]
    pub component: Component,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub subcomponents: Vec<Component>,
}

impl Product {
    /// A product named by one identifier (purl or IRI).
    pub fn named(id: &str) -> Product {
        Product {
            component: Component {
                id: Some(id.to_string()),
                identifiers: BTreeMap::new(),
                hashes: BTreeMap::new(),
            },
            subcomponents: Vec::new(),
        }
    }
}

/// One statement, its timestamp resolved (the statement's own, else the
/// document's).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "@id", skip_serializing_if = "Option::is_none", default)]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub version: Option<u64>,
    pub vulnerability: Vulnerability,
    pub timestamp: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_updated: Option<Timestamp>,
    pub products: Vec<Product>,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub supplier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub status_notes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub justification: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub impact_statement: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub action_statement: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub action_statement_timestamp: Option<Timestamp>,
}

/// A validated OpenVEX document in the v0.2.0 shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    #[serde(rename = "@context")]
    pub context: String,
    #[serde(rename = "@id")]
    pub id: String,
    pub author: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub role: Option<String>,
    pub timestamp: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_updated: Option<Timestamp>,
    pub version: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tooling: Option<String>,
    pub statements: Vec<Statement>,
}

/// Options for [`parse_with`].
#[derive(Clone, Debug)]
pub struct ParseOptions {
    /// Refuse documents larger than this.
    pub max_bytes: usize,
    /// Products for statements that name none (in an attestation, the
    /// subjects cascade into such statements, OpenVEX ATTESTING.md). Empty:
    /// a statement without products is invalid.
    pub default_products: Vec<Product>,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            max_bytes: DEFAULT_MAX_DOCUMENT_BYTES,
            default_products: Vec::new(),
        }
    }
}

/// Parses and validates a standalone document (statements must name products).
pub fn parse(bytes: &[u8]) -> Result<Document, VexError> {
    parse_with(bytes, &ParseOptions::default())
}

/// Parses and validates with options.
pub fn parse_with(bytes: &[u8], options: &ParseOptions) -> Result<Document, VexError> {
    if bytes.len() > options.max_bytes {
        return Err(VexError::TooLarge {
            size: bytes.len(),
            limit: options.max_bytes,
        });
    }
    let raw: RawDocument =
        serde_json::from_slice(bytes).map_err(|e| VexError::Malformed(e.to_string()))?;
    raw.into_document(options)
}

/// Parses an already-decoded JSON value (an in-toto predicate).
pub fn from_value(value: serde_json::Value, options: &ParseOptions) -> Result<Document, VexError> {
    let raw: RawDocument =
        serde_json::from_value(value).map_err(|e| VexError::Malformed(e.to_string()))?;
    raw.into_document(options)
}

impl Document {
    /// Refuses a document or statement timestamp later than `latest`
    /// (the caller passes now plus an allowed clock skew).
    pub fn check_not_after(&self, latest: OffsetDateTime) -> Result<(), VexError> {
        if self.timestamp.0 > latest {
            return Err(VexError::invalid(
                "$.timestamp",
                "timestamp is in the future",
            ));
        }
        for (i, s) in self.statements.iter().enumerate() {
            if s.timestamp.0 > latest {
                return Err(VexError::invalid(
                    format!("$.statements[{i}].timestamp"),
                    "timestamp is in the future",
                ));
            }
        }
        Ok(())
    }

    /// The document as canonical JSON (RFC 8785 style, as stella-types
    /// produces for anything signed).
    pub fn to_canonical_json(&self) -> Result<Vec<u8>, VexError> {
        stella_types::canonical_json::to_canonical_vec(self)
            .map_err(|e| VexError::Encode(e.to_string()))
    }
}

impl Statement {
    /// sha256 of the statement's canonical JSON (`sha256:<hex>`): the same
    /// statement content gives the same digest wherever it was found.
    pub fn digest(&self) -> Result<String, VexError> {
        let bytes = stella_types::canonical_json::to_canonical_vec(self)
            .map_err(|e| VexError::Encode(e.to_string()))?;
        Ok(stella_types::Digest::sha256_of(&bytes).to_string())
    }
}

// ---- raw (as found) shapes -------------------------------------------------

#[derive(Deserialize)]
#[serde(untagged)]
enum RawVersion {
    Number(u64),
    Text(String),
}

#[derive(Deserialize)]
struct RawDocument {
    #[serde(rename = "@context")]
    context: String,
    #[serde(rename = "@id")]
    id: Option<String>,
    author: Option<String>,
    role: Option<String>,
    timestamp: Option<String>,
    last_updated: Option<String>,
    version: Option<RawVersion>,
    tooling: Option<String>,
    #[serde(default)]
    statements: Option<Vec<RawStatement>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawVulnerability {
    Name(String),
    Full(Vulnerability),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawProduct {
    Name(String),
    Full(Product),
}

#[derive(Deserialize)]
struct RawStatement {
    #[serde(rename = "@id")]
    id: Option<String>,
    version: Option<RawVersion>,
    vulnerability: Option<RawVulnerability>,
    timestamp: Option<String>,
    last_updated: Option<String>,
    products: Option<Vec<RawProduct>>,
    status: Option<String>,
    supplier: Option<String>,
    status_notes: Option<String>,
    justification: Option<String>,
    impact_statement: Option<String>,
    action_statement: Option<String>,
    action_statement_timestamp: Option<String>,
}

fn timestamp(path: &str, value: Option<&str>) -> Result<Option<Timestamp>, VexError> {
    match value {
        None => Ok(None),
        Some(s) => Timestamp::parse(s)
            .map(Some)
            .ok_or_else(|| VexError::invalid(path, format!("{s:?} is not an RFC 3339 timestamp"))),
    }
}

fn version(path: &str, v: Option<RawVersion>) -> Result<Option<u64>, VexError> {
    match v {
        None => Ok(None),
        Some(RawVersion::Number(n)) => Ok(Some(n)),
        Some(RawVersion::Text(t)) => t
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| VexError::invalid(path, format!("version {t:?} is not an integer"))),
    }
}

fn required(path: &str, value: Option<String>, what: &str) -> Result<String, VexError> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(VexError::invalid(path, format!("{what} is required"))),
    }
}

impl RawDocument {
    fn into_document(self, options: &ParseOptions) -> Result<Document, VexError> {
        if !self.context.starts_with("https://openvex.dev/ns") {
            return Err(VexError::invalid(
                "$.@context",
                format!("{:?} is not an OpenVEX context", self.context),
            ));
        }
        let id = required("$.@id", self.id, "document @id")?;
        let author = required("$.author", self.author, "author")?;
        let doc_ts = timestamp("$.timestamp", self.timestamp.as_deref())?;
        let last_updated = timestamp("$.last_updated", self.last_updated.as_deref())?;
        // go-vex reads a document without version as version 1.
        let version = version("$.version", self.version)?.unwrap_or(1);
        let raw_statements = match self.statements {
            Some(s) if !s.is_empty() => s,
            _ => return Err(VexError::invalid("$.statements", "no statements")),
        };
        let mut statements = Vec::with_capacity(raw_statements.len());
        for (i, raw) in raw_statements.into_iter().enumerate() {
            statements.push(raw.into_statement(&format!("$.statements[{i}]"), doc_ts, options)?);
        }
        // A document without its own timestamp (accepted by go-vex when every
        // statement has one) is dated by its latest statement.
        let timestamp = match doc_ts {
            Some(t) => t,
            None => statements
                .iter()
                .map(|s| s.timestamp)
                .max()
                .ok_or_else(|| VexError::invalid("$.timestamp", "timestamp is required"))?,
        };
        Ok(Document {
            context: CONTEXT_V020.to_string(),
            id,
            author,
            role: self.role,
            timestamp,
            last_updated,
            version,
            tooling: self.tooling,
            statements,
        })
    }
}

impl RawStatement {
    fn into_statement(
        self,
        path: &str,
        doc_ts: Option<Timestamp>,
        options: &ParseOptions,
    ) -> Result<Statement, VexError> {
        let vulnerability = match self.vulnerability {
            Some(RawVulnerability::Name(name)) => Vulnerability {
                id: None,
                name,
                description: None,
                aliases: Vec::new(),
            },
            Some(RawVulnerability::Full(v)) => v,
            None => {
                return Err(VexError::invalid(
                    format!("{path}.vulnerability"),
                    "vulnerability is required",
                ));
            }
        };
        if vulnerability.name.trim().is_empty() {
            return Err(VexError::invalid(
                format!("{path}.vulnerability.name"),
                "vulnerability name is required",
            ));
        }
        let mut products: Vec<Product> = self
            .products
            .unwrap_or_default()
            .into_iter()
            .map(|p| match p {
                RawProduct::Name(n) => Product::named(&n),
                RawProduct::Full(p) => p,
            })
            .collect();
        if products.is_empty() {
            products = options.default_products.clone();
        }
        if products.is_empty() {
            return Err(VexError::invalid(
                format!("{path}.products"),
                "statement names no product",
            ));
        }
        for (j, p) in products.iter().enumerate() {
            check_component(&format!("{path}.products[{j}]"), &p.component)?;
            for (k, c) in p.subcomponents.iter().enumerate() {
                check_component(&format!("{path}.products[{j}].subcomponents[{k}]"), c)?;
            }
        }
        let status_text = required(&format!("{path}.status"), self.status, "status")?;
        let status = Status::parse(&status_text).ok_or_else(|| {
            VexError::invalid(
                format!("{path}.status"),
                format!("unknown status {status_text:?}"),
            )
        })?;
        let timestamp = match timestamp(&format!("{path}.timestamp"), self.timestamp.as_deref())? {
            Some(t) => t,
            None => doc_ts.ok_or_else(|| {
                VexError::invalid(
                    format!("{path}.timestamp"),
                    "neither the statement nor the document has a timestamp",
                )
            })?,
        };
        let statement = Statement {
            id: self.id,
            version: version(&format!("{path}.version"), self.version)?,
            vulnerability,
            timestamp,
            last_updated: timestamp_opt(path, "last_updated", self.last_updated.as_deref())?,
            products,
            status,
            supplier: self.supplier,
            status_notes: self.status_notes,
            justification: self.justification,
            impact_statement: self.impact_statement,
            action_statement: self.action_statement,
            action_statement_timestamp: timestamp_opt(
                path,
                "action_statement_timestamp",
                self.action_statement_timestamp.as_deref(),
            )?,
        };
        check_status_rules(path, &statement)?;
        Ok(statement)
    }
}

fn timestamp_opt(path: &str, field: &str, v: Option<&str>) -> Result<Option<Timestamp>, VexError> {
    timestamp(&format!("{path}.{field}"), v)
}

fn check_component(path: &str, c: &Component) -> Result<(), VexError> {
    let has_id = c.id.as_deref().is_some_and(|s| !s.trim().is_empty());
    if !has_id && c.identifiers.is_empty() && c.hashes.is_empty() {
        return Err(VexError::invalid(
            path,
            "a product needs an @id, identifiers or hashes",
        ));
    }
    Ok(())
}

fn present(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|s| !s.trim().is_empty())
}

/// The status rules of the spec (and go-vex `Statement.Validate`).
fn check_status_rules(path: &str, s: &Statement) -> Result<(), VexError> {
    let bad = |field: &str, msg: &str| Err(VexError::invalid(format!("{path}.{field}"), msg));
    if let Some(j) = s.justification.as_deref()
        && !JUSTIFICATIONS.contains(&j)
    {
        return bad("justification", &format!("unknown justification {j:?}"));
    }
    let (just, impact, action) = (
        present(&s.justification),
        present(&s.impact_statement),
        present(&s.action_statement),
    );
    match s.status {
        Status::NotAffected => {
            if !just && !impact {
                return bad(
                    "justification",
                    "not_affected needs a justification or an impact_statement",
                );
            }
            if action {
                return bad("action_statement", "not_affected takes no action_statement");
            }
        }
        Status::Affected => {
            if !action {
                return bad("action_statement", "affected needs an action_statement");
            }
            if just || impact {
                return bad(
                    if just {
                        "justification"
                    } else {
                        "impact_statement"
                    },
                    "affected takes no justification or impact_statement",
                );
            }
        }
        Status::Fixed | Status::UnderInvestigation => {
            for (field, set) in [
                ("justification", just),
                ("impact_statement", impact),
                ("action_statement", action),
            ] {
                if set {
                    return bad(field, &format!("{} takes no {field}", s.status.as_str()));
                }
            }
        }
    }
    Ok(())
}
