//! Scanner findings: reads the vulnerability findings of a scanner report and
//! normalises each to a [`Finding`] (package URL, vulnerability id and
//! aliases, severity, fixed version, publication date, the digest of the
//! report it came from).
//!
//! Formats (detected from the document itself, see [`ReportFormat`]):
//! Trivy JSON (`SchemaVersion` 2), Grype JSON (`matches`), CycloneDX with
//! `vulnerabilities` (VDR), SARIF 2.1.0 from container scanners, and the
//! in-toto vulns predicate (`https://in-toto.io/attestation/vulns`, v0.1
//! and v0.2; a bare predicate or a whole statement). Where each format puts
//! the package URL, severity and fix is documented in `docs/report.md`.
//!
//! Bad input is an error, never a silently shorter list: a finding without a
//! package URL, a severity word outside the known vocabulary, a missing
//! vulnerability id, a document over [`Limits::max_bytes`] or with more than
//! [`Limits::max_findings`] findings. Errors name the JSON path of the
//! offending finding.
//!
//! Not here: fetching reports (see `crate::gather`), checking signatures
//! (the engine does), VEX, or policy.

mod cyclonedx;
mod grype;
mod sarif;
mod trivy;
mod vulns;

use serde::Serialize;
use serde_json::{Map, Value};
use stella_types::Digest;
use stella_verify::policy::FindingSeverity;
use time::OffsetDateTime;

/// One vulnerability in one package, as a scanner report states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Package URL of the affected package.
    pub purl: String,
    /// The scanner's id for the vulnerability (CVE, GHSA, …).
    pub vulnerability: String,
    /// Other ids of the same vulnerability (sorted, without `vulnerability`).
    pub aliases: Vec<String>,
    pub severity: FindingSeverity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_version: Option<String>,
    /// When the vulnerability was published, when the report says.
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_rfc3339")]
    pub published: Option<OffsetDateTime>,
    /// Digest of the scanner report the finding came from.
    pub source: Digest,
}

mod opt_rfc3339 {
    use serde::Serializer;
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(t: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&stella_types::timestamp::rfc3339(*t)),
            None => s.serialize_none(),
        }
    }
}

/// The scanner report formats read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReportFormat {
    Trivy,
    Grype,
    Cyclonedx,
    Sarif,
    IntotoVulns,
}

impl ReportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trivy => "trivy",
            Self::Grype => "grype",
            Self::Cyclonedx => "cyclonedx",
            Self::Sarif => "sarif",
            Self::IntotoVulns => "intoto-vulns",
        }
    }
}

/// One scanner report, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannerReport {
    pub format: ReportFormat,
    /// Digest of the report document's bytes.
    pub digest: Digest,
    /// Image digests the report says it is about (empty when it names none).
    pub subjects: Vec<Digest>,
    pub findings: Vec<Finding>,
}

/// Caps on what one report may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_findings: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: stella_types::limits::MAX_JSON_DOCUMENT_BYTES,
            max_findings: 100_000,
        }
    }
}

/// Why a scanner report cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FindingsError {
    #[error("scanner report is {size} bytes, over the {cap}-byte limit")]
    TooLarge { size: u64, cap: u64 },
    #[error("scanner report is not JSON: {0}")]
    NotJson(String),
    #[error(
        "not a scanner report Stella reads (Trivy JSON, Grype JSON, CycloneDX with vulnerabilities, SARIF 2.1.0, in-toto vulns)"
    )]
    UnknownFormat,
    #[error("{format} report: {path}: {detail}")]
    Malformed {
        format: &'static str,
        path: String,
        detail: String,
    },
    #[error("{format} report holds more than {cap} findings")]
    TooManyFindings { format: &'static str, cap: usize },
    #[error("{format} report: {path}: finding {vulnerability} has no package URL")]
    NoPurl {
        format: &'static str,
        path: String,
        vulnerability: String,
    },
    #[error("{format} report: {path}: unknown severity {value:?}")]
    UnknownSeverity {
        format: &'static str,
        path: String,
        value: String,
    },
}

/// Reads a scanner report of any supported format.
pub fn parse_report(bytes: &[u8], limits: &Limits) -> Result<ScannerReport, FindingsError> {
    if bytes.len() as u64 > limits.max_bytes {
        return Err(FindingsError::TooLarge {
            size: bytes.len() as u64,
            cap: limits.max_bytes,
        });
    }
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| FindingsError::NotJson(e.to_string()))?;
    parse_value(&value, Digest::sha256_of(bytes), limits)
}

/// Reads an already parsed report (e.g. an in-toto statement taken out of a
/// verified envelope); `digest` is the digest the findings cite.
pub fn parse_value(
    value: &Value,
    digest: Digest,
    limits: &Limits,
) -> Result<ScannerReport, FindingsError> {
    let format = detect(value).ok_or(FindingsError::UnknownFormat)?;
    let mut out = Out {
        format,
        digest,
        limits: *limits,
        findings: Vec::new(),
        subjects: Vec::new(),
    };
    let root = value.as_object().ok_or(FindingsError::UnknownFormat)?;
    match format {
        ReportFormat::Trivy => trivy::read(root, &mut out)?,
        ReportFormat::Grype => grype::read(root, &mut out)?,
        ReportFormat::Cyclonedx => cyclonedx::read(root, &mut out)?,
        ReportFormat::Sarif => sarif::read(root, &mut out)?,
        ReportFormat::IntotoVulns => vulns::read(root, &mut out)?,
    }
    out.subjects.sort();
    out.subjects.dedup();
    Ok(ScannerReport {
        format,
        digest: out.digest,
        subjects: out.subjects,
        findings: out.findings,
    })
}

/// Which format a document is, from its own distinguishing keys.
pub fn detect(value: &Value) -> Option<ReportFormat> {
    let m = value.as_object()?;
    let s = |k: &str| m.get(k).and_then(Value::as_str);
    if s("_type").is_some_and(|t| t.starts_with("https://in-toto.io/Statement/"))
        && s("predicateType").is_some_and(vulns::is_vulns_type)
    {
        return Some(ReportFormat::IntotoVulns);
    }
    if m.get("scanner")
        .and_then(|sc| sc.get("result"))
        .is_some_and(Value::is_array)
    {
        return Some(ReportFormat::IntotoVulns);
    }
    if m.contains_key("SchemaVersion")
        && (m.contains_key("Results") || m.contains_key("ArtifactName"))
    {
        return Some(ReportFormat::Trivy);
    }
    if m.get("matches").is_some_and(Value::is_array) {
        return Some(ReportFormat::Grype);
    }
    if s("bomFormat") == Some("CycloneDX") {
        return Some(ReportFormat::Cyclonedx);
    }
    if s("version") == Some("2.1.0") && m.get("runs").is_some_and(Value::is_array) {
        return Some(ReportFormat::Sarif);
    }
    None
}

/// What the format readers fill in.
pub(crate) struct Out {
    format: ReportFormat,
    digest: Digest,
    limits: Limits,
    findings: Vec<Finding>,
    subjects: Vec<Digest>,
}

/// A finding as a reader collects it, before it is checked.
pub(crate) struct Raw<'a> {
    pub path: String,
    pub id: Option<&'a str>,
    pub purl: Option<&'a str>,
    pub aliases: Vec<String>,
    pub severity: Result<FindingSeverity, String>,
    pub fixed_version: Option<String>,
    pub published: Option<&'a str>,
}

impl Out {
    fn name(&self) -> &'static str {
        self.format.as_str()
    }

    pub(crate) fn malformed(&self, path: &str, detail: impl Into<String>) -> FindingsError {
        FindingsError::Malformed {
            format: self.name(),
            path: path.to_string(),
            detail: detail.into(),
        }
    }

    /// Records an image digest the report names (`repo@sha256:…` or a bare digest).
    pub(crate) fn subject(&mut self, text: &str) {
        let tail = text.rsplit_once('@').map_or(text, |(_, d)| d);
        if let Ok(d) = Digest::parse(tail) {
            self.subjects.push(d);
        }
    }

    /// Checks and keeps one finding.
    pub(crate) fn push(&mut self, raw: Raw<'_>) -> Result<(), FindingsError> {
        if self.findings.len() >= self.limits.max_findings {
            return Err(FindingsError::TooManyFindings {
                format: self.name(),
                cap: self.limits.max_findings,
            });
        }
        let Some(id) = raw.id.map(str::trim).filter(|s| !s.is_empty()) else {
            return Err(self.malformed(&raw.path, "finding has no vulnerability id"));
        };
        let Some(purl) = raw.purl.map(str::trim).filter(|p| p.starts_with("pkg:")) else {
            return Err(FindingsError::NoPurl {
                format: self.name(),
                path: raw.path,
                vulnerability: id.to_string(),
            });
        };
        let severity = raw
            .severity
            .map_err(|value| FindingsError::UnknownSeverity {
                format: self.name(),
                path: raw.path.clone(),
                value,
            })?;
        let mut aliases: Vec<String> = raw
            .aliases
            .into_iter()
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty() && a != id)
            .collect();
        aliases.sort();
        aliases.dedup();
        self.findings.push(Finding {
            purl: purl.to_string(),
            vulnerability: id.to_string(),
            aliases,
            severity,
            fixed_version: raw
                .fixed_version
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty()),
            published: raw
                .published
                .and_then(stella_types::timestamp::parse_rfc3339),
            source: self.digest.clone(),
        });
        Ok(())
    }
}

/// A severity word as scanners write it. `Negligible` (Grype) counts as
/// Low, `info` (CycloneDX) as None; an absent or empty value is Unknown.
/// Anything else is an error carrying the word.
pub(crate) fn severity_word(word: Option<&str>) -> Result<FindingSeverity, String> {
    let Some(w) = word.map(str::trim).filter(|w| !w.is_empty()) else {
        return Ok(FindingSeverity::Unknown);
    };
    match w.to_ascii_lowercase().as_str() {
        "critical" => Ok(FindingSeverity::Critical),
        "high" | "important" => Ok(FindingSeverity::High),
        "medium" | "moderate" => Ok(FindingSeverity::Medium),
        "low" | "negligible" => Ok(FindingSeverity::Low),
        "none" | "info" => Ok(FindingSeverity::None),
        "unknown" => Ok(FindingSeverity::Unknown),
        _ => Err(w.to_string()),
    }
}

/// The CVSS v3 qualitative rating of a base score (0.0–10.0).
pub(crate) fn severity_of_score(score: f64) -> Result<FindingSeverity, String> {
    match score {
        s if !(0.0..=10.0).contains(&s) => Err(format!("score {s}")),
        s if s >= 9.0 => Ok(FindingSeverity::Critical),
        s if s >= 7.0 => Ok(FindingSeverity::High),
        s if s >= 4.0 => Ok(FindingSeverity::Medium),
        s if s > 0.0 => Ok(FindingSeverity::Low),
        _ => Ok(FindingSeverity::None),
    }
}

/// The most severe of several severities (Unknown only when nothing else is known).
pub(crate) fn most_severe(all: impl IntoIterator<Item = FindingSeverity>) -> FindingSeverity {
    all.into_iter()
        .filter(|s| *s != FindingSeverity::Unknown)
        .min()
        .unwrap_or(FindingSeverity::Unknown)
}

// Small accessors over JSON values, so readers stay short.

pub(crate) fn str_at<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    m.get(key).and_then(Value::as_str)
}

pub(crate) fn obj_at<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Map<String, Value>> {
    m.get(key).and_then(Value::as_object)
}

/// The array at `key`: absent or null is empty; anything else not an array is malformed.
pub(crate) fn array_at<'a>(
    out: &Out,
    m: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'a [Value], FindingsError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(out.malformed(&format!("{path}.{key}"), "must be a list")),
    }
}

pub(crate) fn as_object<'a>(
    out: &Out,
    v: &'a Value,
    path: &str,
) -> Result<&'a Map<String, Value>, FindingsError> {
    v.as_object()
        .ok_or_else(|| out.malformed(path, "must be an object"))
}

/// Strings of an array of strings or of objects with `key` (skipping others).
pub(crate) fn strings_of(v: Option<&Value>, key: &str) -> Vec<String> {
    let Some(Value::Array(items)) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|i| match i {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => str_at(o, key).map(str::to_string),
            _ => None,
        })
        .collect()
}
