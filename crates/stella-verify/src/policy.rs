//! The evidence policy: a versioned YAML document saying which evidence an
//! image must carry and who may sign it.
//!
//! Parsing goes YAML -> JSON value tree -> hand validation, so that every
//! problem is reported with a JSON path (`$.requirements[1].signers[0]`),
//! as `stella policy validate` prints them; unknown keys are errors, never
//! silently ignored. This module does not read key files or verify
//! anything; paths in the policy are returned as written, for the caller to
//! resolve relative to the policy file.
//!
//! Format (version 1), documented with examples in `docs/policy.md`:
//! ```yaml
//! version: 1
//! signers:
//!   release: { keys: [release.pub] }
//!   org-pki: { caRoots: [ca.pem] }
//!   ci: { keyless: { identity: "https://…/release.yml@refs/heads/main", issuer: "https://token.actions.githubusercontent.com" } }
//! unsignedEvidence: fail        # ignore | warn | fail
//! maxEvidenceAge: 90d
//! requireTransparencyLog: false
//! requirements:
//!   - name: sbom
//!     type: cyclonedx           # alias, predicate type URI or artifactType
//!     signers: [release]
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Map, Value};
use stella_types::Digest;

use crate::duration::parse_duration;

mod rules;
pub use rules::{FindingSeverity, Rule, RuleAction, VexPolicy, VexStatusMatch, pattern_matches};

/// The only policy format version this build reads.
pub const POLICY_VERSION: u64 = 1;

/// Largest keyless threshold a policy may set (a sigstore bundle carries
/// at most 32 log entries and 32 timestamps).
pub const MAX_THRESHOLD: usize = 32;

/// What to do with evidence nobody (trusted) signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum UnsignedAction {
    Ignore,
    Warn,
    Fail,
}

/// A keyless (sigstore) identity: exact value or regular expression for
/// both the certificate identity (SAN) and the OIDC issuer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeylessIdentity {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_regexp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer_regexp: Option<String>,
    /// Verified transparency-log entries the signer's bundles must carry
    /// (`None`: the verifier's default, 1). 0 accepts bundles signed with
    /// only an RFC 3161 timestamp (at least one timestamp is then required).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tlog_threshold: Option<usize>,
    /// Verified RFC 3161 timestamps the signer's bundles must carry
    /// (`None`: the verifier's default, 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp_threshold: Option<usize>,
}

/// A named trust anchor: public keys, organisation CA roots, or a keyless identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Signer {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ca_roots: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyless: Option<KeylessIdentity>,
}

/// One kind of evidence the image must carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Requirement {
    pub name: String,
    /// The type as written (alias, URI or media type).
    pub r#type: String,
    /// The type after alias resolution; evidence matches when its
    /// artifactType or predicateType equals this.
    pub resolved_type: String,
    /// Signer names allowed to sign this evidence; empty means any signer
    /// the policy names.
    pub signers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<u64>,
    pub transparency_log: bool,
    pub unsigned: UnsignedAction,
}

/// A validated policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub version: u64,
    /// SHA-256 of the policy file's bytes, as written.
    pub digest: Digest,
    pub signers: BTreeMap<String, Signer>,
    pub unsigned_evidence: UnsignedAction,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_evidence_age_seconds: Option<u64>,
    pub require_transparency_log: bool,
    pub requirements: Vec<Requirement>,
    /// `vex:`: whose VEX statements count (absent: none counts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vex: Option<VexPolicy>,
    /// `rules:`: what to do with scanner findings, first match wins.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, PartialOrd, Ord)]
pub struct PolicyIssue {
    pub path: String,
    pub severity: Severity,
    pub code: String,
    pub message: String,
}

/// Everything `stella policy validate` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyDiagnostics {
    pub success: bool,
    pub version: Option<u64>,
    pub requirement_count: usize,
    /// Finding rules (`$.rules`); omitted from JSON when there are none, so
    /// the output for policies without rules is unchanged.
    #[serde(skip_serializing_if = "is_zero")]
    pub rule_count: usize,
    pub error_count: usize,
    pub warning_count: usize,
    pub issues: Vec<PolicyIssue>,
}

/// Maps a predicate-type alias (`cyclonedx`) to its URI; `None` if not an alias.
pub type AliasResolver<'a> = &'a dyn Fn(&str) -> Option<String>;

struct Ctx {
    issues: Vec<PolicyIssue>,
}

impl Ctx {
    fn err(&mut self, path: &str, code: &str, message: impl Into<String>) {
        self.issues.push(PolicyIssue {
            path: path.to_string(),
            severity: Severity::Error,
            code: code.to_string(),
            message: message.into(),
        });
    }
    fn warn(&mut self, path: &str, code: &str, message: impl Into<String>) {
        self.issues.push(PolicyIssue {
            path: path.to_string(),
            severity: Severity::Warning,
            code: code.to_string(),
            message: message.into(),
        });
    }

    fn object<'v>(&mut self, v: &'v Value, path: &str) -> Option<&'v Map<String, Value>> {
        match v {
            Value::Object(m) => Some(m),
            other => {
                self.err(
                    path,
                    "policy.type",
                    format!("must be a mapping, found {}", kind(other)),
                );
                None
            }
        }
    }

    fn unknown_keys(&mut self, m: &Map<String, Value>, path: &str, allowed: &[&str]) {
        for k in m.keys() {
            if !allowed.contains(&k.as_str()) {
                self.err(
                    &format!("{path}.{k}"),
                    "policy.unknown_key",
                    format!("unknown key {k:?} (allowed: {})", allowed.join(", ")),
                );
            }
        }
    }

    fn string(&mut self, v: &Value, path: &str) -> Option<String> {
        match v {
            Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
            Value::String(_) => {
                self.err(path, "policy.empty", "must not be empty");
                None
            }
            other => {
                self.err(
                    path,
                    "policy.type",
                    format!("must be a string, found {}", kind(other)),
                );
                None
            }
        }
    }

    fn string_list(&mut self, v: &Value, path: &str) -> Vec<String> {
        match v {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| self.string(item, &format!("{path}[{i}]")))
                .collect(),
            Value::String(_) => self.string(v, path).into_iter().collect(),
            other => {
                self.err(
                    path,
                    "policy.type",
                    format!("must be a list of strings, found {}", kind(other)),
                );
                Vec::new()
            }
        }
    }

    fn boolean(&mut self, v: &Value, path: &str) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            other => {
                self.err(
                    path,
                    "policy.type",
                    format!("must be true or false, found {}", kind(other)),
                );
                None
            }
        }
    }

    /// A count: a whole number from 0 to [`MAX_THRESHOLD`].
    fn count(&mut self, v: &Value, path: &str) -> Option<usize> {
        match v.as_u64().and_then(|n| usize::try_from(n).ok()) {
            Some(n) if n <= MAX_THRESHOLD => Some(n),
            _ => {
                self.err(
                    path,
                    "policy.type",
                    format!(
                        "must be a whole number from 0 to {MAX_THRESHOLD}, found {}",
                        match v {
                            Value::Number(n) => n.to_string(),
                            other => kind(other).to_string(),
                        }
                    ),
                );
                None
            }
        }
    }

    fn duration(&mut self, v: &Value, path: &str) -> Option<u64> {
        let s = self.string(v, path)?;
        match parse_duration(&s) {
            Ok(d) if d > 0 => Some(d),
            Ok(_) => {
                self.err(path, "policy.duration", "must be longer than zero");
                None
            }
            Err(e) => {
                self.err(path, "policy.duration", e);
                None
            }
        }
    }

    fn unsigned_action(&mut self, v: &Value, path: &str) -> Option<UnsignedAction> {
        match self.string(v, path)?.as_str() {
            "ignore" => Some(UnsignedAction::Ignore),
            "warn" => Some(UnsignedAction::Warn),
            "fail" => Some(UnsignedAction::Fail),
            other => {
                self.err(
                    path,
                    "policy.unsigned",
                    format!("{other:?} is not one of ignore, warn, fail"),
                );
                None
            }
        }
    }

    fn regex(&mut self, v: &Value, path: &str) -> Option<String> {
        let s = self.string(v, path)?;
        match regex::Regex::new(&s) {
            Ok(_) => Some(s),
            Err(e) => {
                self.err(
                    path,
                    "policy.regexp",
                    format!("invalid regular expression: {e}"),
                );
                None
            }
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Whether `t` looks like something evidence can carry as its type: a URI
/// (predicate type) or a media type (`type/subtype`).
fn plausible_type(t: &str) -> bool {
    let uri = t.contains("://") && !t.contains(char::is_whitespace);
    let media = t.split_once('/').is_some_and(|(a, b)| {
        !a.is_empty() && !b.is_empty() && !t.contains(char::is_whitespace) && !t.contains("://")
    });
    uri || media
}

impl Policy {
    /// Parses and validates policy bytes. Returns the policy when there are
    /// no errors (warnings are returned either way).
    pub fn parse(bytes: &[u8], aliases: AliasResolver<'_>) -> (Option<Policy>, PolicyDiagnostics) {
        let mut ctx = Ctx { issues: Vec::new() };
        let policy = Self::parse_inner(bytes, aliases, &mut ctx);
        ctx.issues.sort();
        let error_count = ctx
            .issues
            .iter()
            .filter(|i| i.severity == Severity::Error)
            .count();
        let warning_count = ctx.issues.len() - error_count;
        let diagnostics = PolicyDiagnostics {
            success: error_count == 0 && policy.is_some(),
            version: policy.as_ref().map(|p| p.version),
            requirement_count: policy.as_ref().map_or(0, |p| p.requirements.len()),
            rule_count: policy.as_ref().map_or(0, |p| p.rules.len()),
            error_count,
            warning_count,
            issues: ctx.issues,
        };
        let policy = if diagnostics.success { policy } else { None };
        (policy, diagnostics)
    }

    fn parse_inner(bytes: &[u8], aliases: AliasResolver<'_>, ctx: &mut Ctx) -> Option<Policy> {
        if bytes.len() as u64 > stella_types::limits::MAX_JSON_DOCUMENT_BYTES {
            ctx.err("$", "policy.size", "policy file is too large");
            return None;
        }
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(_) => {
                ctx.err("$", "policy.encoding", "policy is not UTF-8 text");
                return None;
            }
        };
        let root: Value = match serde_yaml_ng::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                ctx.err("$", "policy.syntax", format!("not valid YAML: {e}"));
                return None;
            }
        };
        let m = ctx.object(&root, "$")?;
        ctx.unknown_keys(
            m,
            "$",
            &[
                "version",
                "signers",
                "unsignedEvidence",
                "maxEvidenceAge",
                "requireTransparencyLog",
                "requirements",
                "vex",
                "rules",
            ],
        );

        let version = match m.get("version") {
            None => {
                ctx.err(
                    "$.version",
                    "policy.version",
                    format!("is required (use {POLICY_VERSION})"),
                );
                None
            }
            Some(Value::Number(n)) if n.as_u64() == Some(POLICY_VERSION) => Some(POLICY_VERSION),
            Some(Value::String(s)) if s == "1" || s == "1.0" => Some(POLICY_VERSION),
            Some(other) => {
                ctx.err(
                    "$.version",
                    "policy.version",
                    format!("unsupported version {other} (this build reads {POLICY_VERSION})"),
                );
                None
            }
        };

        let mut signers = BTreeMap::new();
        if let Some(v) = m.get("signers")
            && let Some(sm) = ctx.object(v, "$.signers")
        {
            for (name, sv) in sm {
                let path = format!("$.signers.{name}");
                if let Some(s) = Self::parse_signer(sv, &path, ctx) {
                    signers.insert(name.clone(), s);
                }
            }
        }

        let unsigned_evidence = m
            .get("unsignedEvidence")
            .and_then(|v| ctx.unsigned_action(v, "$.unsignedEvidence"))
            .unwrap_or(UnsignedAction::Fail);
        let max_evidence_age_seconds = m
            .get("maxEvidenceAge")
            .and_then(|v| ctx.duration(v, "$.maxEvidenceAge"));
        let require_transparency_log = m
            .get("requireTransparencyLog")
            .and_then(|v| ctx.boolean(v, "$.requireTransparencyLog"))
            .unwrap_or(false);

        let mut requirements = Vec::new();
        match m.get("requirements") {
            None => ctx.warn(
                "$.requirements",
                "policy.requirements.none",
                "no requirements: any image passes",
            ),
            Some(Value::Array(items)) => {
                if items.is_empty() {
                    ctx.warn(
                        "$.requirements",
                        "policy.requirements.none",
                        "no requirements: any image passes",
                    );
                }
                let mut names = BTreeSet::new();
                for (i, item) in items.iter().enumerate() {
                    let path = format!("$.requirements[{i}]");
                    let Some(r) = Self::parse_requirement(
                        item,
                        &path,
                        aliases,
                        &signers,
                        unsigned_evidence,
                        max_evidence_age_seconds,
                        require_transparency_log,
                        ctx,
                    ) else {
                        continue;
                    };
                    if !names.insert(r.name.clone()) {
                        ctx.err(
                            &format!("{path}.name"),
                            "policy.requirement.duplicate",
                            format!("requirement name {:?} is used twice", r.name),
                        );
                    }
                    requirements.push(r);
                }
            }
            Some(other) => ctx.err(
                "$.requirements",
                "policy.type",
                format!("must be a list, found {}", kind(other)),
            ),
        }

        let needs_signers = requirements
            .iter()
            .any(|r| r.unsigned != UnsignedAction::Ignore);
        if signers.is_empty() && needs_signers && !requirements.is_empty() {
            ctx.err(
                "$.signers",
                "policy.signers.none",
                "no signers are defined, so no evidence can ever be trusted: add signers or set unsignedEvidence: ignore",
            );
        }

        let vex = m
            .get("vex")
            .and_then(|v| rules::parse_vex(v, &signers, ctx));
        let rules = m
            .get("rules")
            .map(|v| rules::parse_rules(v, &signers, vex.as_ref(), ctx))
            .unwrap_or_default();
        if !rules.is_empty() {
            // A policy of finding rules alone is complete: no evidence
            // requirement is not a sign that "any image passes".
            ctx.issues.retain(|i| i.code != "policy.requirements.none");
        }

        let version = version?;
        let digest = Digest::sha256_of(bytes);
        Some(Policy {
            version,
            digest,
            signers,
            unsigned_evidence,
            max_evidence_age_seconds,
            require_transparency_log,
            requirements,
            vex,
            rules,
        })
    }

    fn parse_signer(v: &Value, path: &str, ctx: &mut Ctx) -> Option<Signer> {
        let m = ctx.object(v, path)?;
        ctx.unknown_keys(m, path, &["keys", "caRoots", "keyless"]);
        let mut s = Signer::default();
        if let Some(k) = m.get("keys") {
            s.keys = ctx.string_list(k, &format!("{path}.keys"));
        }
        if let Some(k) = m.get("caRoots") {
            s.ca_roots = ctx.string_list(k, &format!("{path}.caRoots"));
        }
        if let Some(k) = m.get("keyless") {
            let kp = format!("{path}.keyless");
            if let Some(km) = ctx.object(k, &kp) {
                ctx.unknown_keys(
                    km,
                    &kp,
                    &[
                        "identity",
                        "identityRegexp",
                        "issuer",
                        "issuerRegexp",
                        "tlogThreshold",
                        "timestampThreshold",
                    ],
                );
                let id = KeylessIdentity {
                    identity: km
                        .get("identity")
                        .and_then(|v| ctx.string(v, &format!("{kp}.identity"))),
                    identity_regexp: km
                        .get("identityRegexp")
                        .and_then(|v| ctx.regex(v, &format!("{kp}.identityRegexp"))),
                    issuer: km
                        .get("issuer")
                        .and_then(|v| ctx.string(v, &format!("{kp}.issuer"))),
                    issuer_regexp: km
                        .get("issuerRegexp")
                        .and_then(|v| ctx.regex(v, &format!("{kp}.issuerRegexp"))),
                    tlog_threshold: km
                        .get("tlogThreshold")
                        .and_then(|v| ctx.count(v, &format!("{kp}.tlogThreshold"))),
                    timestamp_threshold: km
                        .get("timestampThreshold")
                        .and_then(|v| ctx.count(v, &format!("{kp}.timestampThreshold"))),
                };
                if id.tlog_threshold == Some(0) {
                    ctx.warn(
                        &format!("{kp}.tlogThreshold"),
                        "policy.keyless.no_tlog",
                        "bundles without a transparency-log entry are accepted; each must then carry a verified RFC 3161 timestamp",
                    );
                }
                let ids = [
                    km.contains_key("identity"),
                    km.contains_key("identityRegexp"),
                ];
                let iss = [km.contains_key("issuer"), km.contains_key("issuerRegexp")];
                if ids == [true, true] || iss == [true, true] {
                    ctx.err(
                        &kp,
                        "policy.keyless.conflict",
                        "give either the exact value or the regexp, not both",
                    );
                }
                if !ids.contains(&true) || !iss.contains(&true) {
                    ctx.err(&kp, "policy.keyless.incomplete", "a keyless signer needs an identity (or identityRegexp) and an issuer (or issuerRegexp)");
                }
                s.keyless = Some(id);
            }
        }
        if s.keys.is_empty() && s.ca_roots.is_empty() && s.keyless.is_none() {
            ctx.err(
                path,
                "policy.signer.empty",
                "a signer needs keys, caRoots or keyless",
            );
            return None;
        }
        Some(s)
    }

    #[allow(clippy::too_many_arguments)]
    fn parse_requirement(
        v: &Value,
        path: &str,
        aliases: AliasResolver<'_>,
        signers: &BTreeMap<String, Signer>,
        default_unsigned: UnsignedAction,
        default_max_age: Option<u64>,
        default_tlog: bool,
        ctx: &mut Ctx,
    ) -> Option<Requirement> {
        let m = ctx.object(v, path)?;
        ctx.unknown_keys(
            m,
            path,
            &[
                "name",
                "type",
                "signers",
                "maxAge",
                "transparencyLog",
                "unsigned",
            ],
        );
        let r#type = match m.get("type") {
            Some(t) => ctx.string(t, &format!("{path}.type")),
            None => {
                ctx.err(
                    &format!("{path}.type"),
                    "policy.requirement.type",
                    "is required",
                );
                None
            }
        };
        let resolved_type = r#type
            .as_deref()
            .map(|t| aliases(t).unwrap_or_else(|| t.to_string()));
        if let (Some(t), Some(rt)) = (&r#type, &resolved_type)
            && aliases(t).is_none()
            && !plausible_type(rt)
        {
            ctx.err(
                &format!("{path}.type"),
                "policy.requirement.unknown_type",
                format!("{t:?} is not a known alias, a predicate type URI or a media type, so no evidence can satisfy it"),
            );
        }
        let name = match m.get("name") {
            Some(n) => ctx.string(n, &format!("{path}.name")),
            None => r#type.clone(),
        };
        let mut req_signers = Vec::new();
        if let Some(sv) = m.get("signers") {
            let sp = format!("{path}.signers");
            for (i, s) in ctx.string_list(sv, &sp).into_iter().enumerate() {
                if !signers.contains_key(&s) {
                    ctx.err(&format!("{sp}[{i}]"), "policy.signer.undefined", format!("signer {s:?} is not defined under $.signers, so nobody can produce this evidence"));
                }
                req_signers.push(s);
            }
            req_signers.sort();
            req_signers.dedup();
        }
        let max_age_seconds = match m.get("maxAge") {
            Some(v) => ctx.duration(v, &format!("{path}.maxAge")),
            None => default_max_age,
        };
        let transparency_log = match m.get("transparencyLog") {
            Some(v) => ctx
                .boolean(v, &format!("{path}.transparencyLog"))
                .unwrap_or(default_tlog),
            None => default_tlog,
        };
        let unsigned = match m.get("unsigned") {
            Some(v) => ctx
                .unsigned_action(v, &format!("{path}.unsigned"))
                .unwrap_or(default_unsigned),
            None => default_unsigned,
        };
        if transparency_log && unsigned != UnsignedAction::Fail {
            ctx.warn(path, "policy.requirement.tlog_unsigned", "transparencyLog only applies to signed evidence; unsigned evidence of this type is not failed");
        }
        Some(Requirement {
            name: name?,
            r#type: r#type?,
            resolved_type: resolved_type?,
            signers: req_signers,
            max_age_seconds,
            transparency_log,
            unsigned,
        })
    }
}

#[cfg(test)]
#[allow(clippy::panic, clippy::unwrap_used)]
mod tests {
    use super::*;

    fn aliases(s: &str) -> Option<String> {
        match s {
            "cyclonedx" => Some("https://cyclonedx.org/bom".into()),
            "slsaprovenance" => Some("https://slsa.dev/provenance/v1".into()),
            _ => None,
        }
    }

    fn parse(yaml: &str) -> (Option<Policy>, PolicyDiagnostics) {
        Policy::parse(yaml.as_bytes(), &aliases)
    }

    const GOOD: &str = r#"
version: 1
signers:
  release: { keys: [release.pub] }
  ci:
    keyless: { identityRegexp: "^https://github.com/acme/", issuer: "https://token.actions.githubusercontent.com" }
unsignedEvidence: warn
maxEvidenceAge: 90d
requirements:
  - name: sbom
    type: cyclonedx
    signers: [release]
  - type: slsaprovenance
    transparencyLog: true
    unsigned: fail
  - type: application/vnd.openvex+json
    unsigned: ignore
"#;

    #[test]
    fn good_policy_parses_with_defaults_and_aliases() {
        let (p, d) = parse(GOOD);
        assert!(d.success, "{:?}", d.issues);
        let p = p.unwrap();
        assert_eq!(p.requirements.len(), 3);
        assert_eq!(p.requirements[0].resolved_type, "https://cyclonedx.org/bom");
        assert_eq!(p.requirements[0].unsigned, UnsignedAction::Warn);
        assert_eq!(p.requirements[0].max_age_seconds, Some(90 * 86_400));
        assert_eq!(p.requirements[1].name, "slsaprovenance");
        assert!(p.requirements[1].transparency_log);
        assert_eq!(p.requirements[2].unsigned, UnsignedAction::Ignore);
        assert_eq!(p.digest, Digest::sha256_of(GOOD.as_bytes()));
    }

    #[test]
    fn errors_carry_json_paths() {
        let (p, d) = parse(
            r#"
version: 1
signers:
  release: { keys: [a.pub], colour: blue }
  empty: {}
requirements:
  - type: sbomm
    signers: [nobody]
    maxAge: 3y
  - name: x
    type: cyclonedx
    unsigned: sometimes
extra: 1
"#,
        );
        assert!(p.is_none());
        assert!(!d.success);
        let paths: Vec<(&str, &str)> = d
            .issues
            .iter()
            .map(|i| (i.path.as_str(), i.code.as_str()))
            .collect();
        for want in [
            ("$.extra", "policy.unknown_key"),
            ("$.signers.release.colour", "policy.unknown_key"),
            ("$.signers.empty", "policy.signer.empty"),
            ("$.requirements[0].type", "policy.requirement.unknown_type"),
            ("$.requirements[0].signers[0]", "policy.signer.undefined"),
            ("$.requirements[0].maxAge", "policy.duration"),
            ("$.requirements[1].unsigned", "policy.unsigned"),
        ] {
            assert!(paths.contains(&want), "missing {want:?} in {paths:?}");
        }
        assert_eq!(
            d.error_count,
            d.issues
                .iter()
                .filter(|i| i.severity == Severity::Error)
                .count()
        );
    }

    #[test]
    fn version_and_syntax_problems() {
        let (_, d) = parse("signers: {}\n");
        assert!(d.issues.iter().any(|i| i.path == "$.version"));
        let (_, d) = parse("version: 2\n");
        assert!(d.issues.iter().any(|i| i.code == "policy.version"));
        let (_, d) = parse("version: [1\n");
        assert!(d.issues.iter().any(|i| i.code == "policy.syntax"));
        let (_, d) = parse("- 1\n- 2\n");
        assert!(
            d.issues
                .iter()
                .any(|i| i.path == "$" && i.code == "policy.type")
        );
    }

    #[test]
    fn requirements_without_signers_cannot_be_met() {
        let (p, d) = parse("version: 1\nrequirements:\n  - type: cyclonedx\n");
        assert!(p.is_none());
        assert!(d.issues.iter().any(|i| i.code == "policy.signers.none"));
        let (p, _) =
            parse("version: 1\nunsignedEvidence: ignore\nrequirements:\n  - type: cyclonedx\n");
        assert!(p.is_some());
    }

    #[test]
    fn keyless_thresholds_are_counts_and_tlog_zero_warns() {
        let ok = "version: 1\nsigners:\n  ci: { keyless: { identity: a, issuer: b, tlogThreshold: 0, timestampThreshold: 1 } }\nrequirements: [{ type: slsaprovenance }]\n";
        let (p, d) = parse(ok);
        let id = p.unwrap().signers["ci"].keyless.clone().unwrap();
        assert_eq!(
            (id.tlog_threshold, id.timestamp_threshold),
            (Some(0), Some(1))
        );
        assert_eq!(d.error_count, 0, "{d:?}");
        assert!(d.issues.iter().any(|i| i.code == "policy.keyless.no_tlog"
            && i.path == "$.signers.ci.keyless.tlogThreshold"));
        for bad in ["-1", "1.5", "'2'", "33"] {
            let (_, d) = parse(&format!(
                "version: 1\nsigners:\n  ci: {{ keyless: {{ identity: a, issuer: b, timestampThreshold: {bad} }} }}\n"
            ));
            assert!(
                d.issues.iter().any(|i| i.code == "policy.type"
                    && i.path == "$.signers.ci.keyless.timestampThreshold"),
                "{bad}: {d:?}"
            );
        }
        // Without the fields: the verifier's defaults.
        let (p, _) = parse(
            "version: 1\nsigners:\n  ci: { keyless: { identity: a, issuer: b } }\nrequirements: [{ type: slsaprovenance }]\n",
        );
        let id = p.unwrap().signers["ci"].keyless.clone().unwrap();
        assert_eq!((id.tlog_threshold, id.timestamp_threshold), (None, None));
    }

    #[test]
    fn keyless_needs_both_halves() {
        let (_, d) = parse("version: 1\nsigners:\n  ci: { keyless: { identity: a } }\n");
        assert!(
            d.issues
                .iter()
                .any(|i| i.code == "policy.keyless.incomplete")
        );
        let (_, d) = parse(
            "version: 1\nsigners:\n  ci: { keyless: { identity: a, identityRegexp: b, issuer: c } }\n",
        );
        assert!(d.issues.iter().any(|i| i.code == "policy.keyless.conflict"));
        let (_, d) =
            parse("version: 1\nsigners:\n  ci: { keyless: { identityRegexp: '(', issuer: c } }\n");
        assert!(d.issues.iter().any(|i| i.code == "policy.regexp"));
    }
}
