//! Provider configuration (seed 002 OCI-CFG-002): the catalog of providers
//! and their fields (name, shape, required, description), decoding of the
//! `values` + `clearKeys` a client sends, and the one validator that the
//! API, the CLI and the runner (readiness) use.
//!
//! Values are kept as JSON: `scalar` → string (or boolean), `list<string>`
//! and `list<artifactRef>` → array of strings (sent as a JSON array, or as
//! newline-separated or JSON text), `artifactRef` → an artifact UUID.
//!
//! Not here: HTTP, storage, or checking that a referenced artifact exists
//! (the store does that when the configuration is saved).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

/// The OCI OpenVEX provider.
pub const OCI_OPENVEX: &str = "excititor:oci-openvex";
/// Default poll interval.
pub const DEFAULT_POLL: Duration = Duration::from_secs(3600);
/// Shortest poll interval accepted.
pub const MIN_POLL: Duration = Duration::from_secs(30);

/// How a field's value is shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub enum Shape {
    #[serde(rename = "scalar")]
    Scalar,
    #[serde(rename = "list<string>")]
    ListString,
    #[serde(rename = "artifactRef")]
    ArtifactRef,
    #[serde(rename = "list<artifactRef>")]
    ListArtifactRef,
}

impl Shape {
    pub fn is_artifact(self) -> bool {
        matches!(self, Shape::ArtifactRef | Shape::ListArtifactRef)
    }
    fn is_list(self) -> bool {
        matches!(self, Shape::ListString | Shape::ListArtifactRef)
    }
}

/// One configuration field.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct FieldDef {
    pub name: &'static str,
    pub shape: Shape,
    pub required: bool,
    pub description: &'static str,
}

/// A provider of the catalog.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ProviderDef {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub fields: Vec<FieldDef>,
}

const fn field(
    name: &'static str,
    shape: Shape,
    required: bool,
    description: &'static str,
) -> FieldDef {
    FieldDef {
        name,
        shape,
        required,
        description,
    }
}

/// Every provider Stella knows.
pub fn catalog() -> Vec<ProviderDef> {
    use Shape::*;
    vec![ProviderDef {
        id: OCI_OPENVEX,
        name: "OCI OpenVEX attestations",
        description: "Finds the OpenVEX attestations attached to subscribed images, verifies them and ingests their statements.",
        fields: vec![
            field(
                "imageSubscriptions",
                ListString,
                true,
                "Image references to watch: host/repo:tag or host/repo@sha256:…",
            ),
            field(
                "cosignMode",
                Scalar,
                true,
                "keyless | keypair | tuf-offline",
            ),
            field(
                "cosignKeys",
                ListArtifactRef,
                false,
                "Public keys (PEM) trusted to sign (keypair mode)",
            ),
            field(
                "cosignIssuer",
                Scalar,
                false,
                "Exact OIDC issuer of keyless signers",
            ),
            field(
                "cosignIssuerRegexp",
                Scalar,
                false,
                "Regular expression for the OIDC issuer (instead of cosignIssuer)",
            ),
            field(
                "cosignSubject",
                Scalar,
                false,
                "Exact certificate identity of keyless signers",
            ),
            field(
                "cosignSubjectRegexp",
                Scalar,
                false,
                "Regular expression for the certificate identity (instead of cosignSubject)",
            ),
            field(
                "tufRoot",
                ArtifactRef,
                false,
                "TUF root.json to start from when fetching the sigstore trusted root from tufMirror",
            ),
            field(
                "tufMirror",
                Scalar,
                false,
                "TUF repository URL (https; http only with allowHttpRegistries)",
            ),
            field(
                "offlineBundle",
                ArtifactRef,
                false,
                "sigstore trusted_root.json used offline (no network except the registry)",
            ),
            field(
                "registryAuth",
                ArtifactRef,
                false,
                "Docker config JSON with registry credentials",
            ),
            field(
                "allowHttpRegistries",
                Scalar,
                false,
                "true to allow plain-HTTP registries and TUF mirrors",
            ),
            field(
                "pollInterval",
                Scalar,
                false,
                "How often the runner polls: e.g. 90s, 15m, 1h (default 1h, at least 30s)",
            ),
            field(
                "requireSignatures",
                Scalar,
                false,
                "false to also ingest unsigned OpenVEX referrers, marked unsigned (default true)",
            ),
            field(
                "maxReferrersPerImage",
                Scalar,
                false,
                "Cap: an image (or platform manifest) with more referrers is not examined, and the run reports it (default 1000, 1-100000)",
            ),
            field(
                "maxDocumentBytes",
                Scalar,
                false,
                "Cap: bytes of one OpenVEX document; larger ones are refused (default 4194304, 1024-67108864)",
            ),
            field(
                "maxDocumentsPerRun",
                Scalar,
                false,
                "Cap: OpenVEX documents accepted in one run; images after it is reached wait for the next run (default 10000, 1-1000000)",
            ),
            field(
                "maxConcurrentImages",
                Scalar,
                false,
                "Images discovered and verified at once in a run (registry requests in flight); results are stored in subscription order (default 8, 1-64)",
            ),
        ],
    }]
}

/// A provider by id.
pub fn provider(id: &str) -> Option<ProviderDef> {
    catalog().into_iter().find(|p| p.id == id)
}

/// One validation problem: JSON path, code, message and a hint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ConfigIssue {
    pub path: String,
    pub code: String,
    pub message: String,
    pub hint: String,
}

impl ConfigIssue {
    fn new(field: &str, code: &str, message: impl Into<String>, hint: impl Into<String>) -> Self {
        ConfigIssue {
            path: format!("$.values.{field}"),
            code: format!("PROVIDER_CONFIG_{code}"),
            message: message.into(),
            hint: hint.into(),
        }
    }
    /// A missing value (the problem is `PROVIDER_CONFIG_REQUIRED`).
    pub fn is_missing(&self) -> bool {
        self.code.starts_with("PROVIDER_CONFIG_MISSING_")
    }
}

/// The problem code for a set of issues.
pub fn problem_code(issues: &[ConfigIssue]) -> &'static str {
    if !issues.is_empty() && issues.iter().all(ConfigIssue::is_missing) {
        "PROVIDER_CONFIG_REQUIRED"
    } else {
        "PROVIDER_CONFIG_INVALID"
    }
}

/// Stored values: field name → JSON value.
pub type Values = BTreeMap<String, Value>;

/// Applies `clear_keys` then `incoming` to `current`, normalising each value
/// to its field's shape. Unknown fields and undecodable values are issues.
pub fn apply_update(
    def: &ProviderDef,
    current: &Values,
    incoming: &serde_json::Map<String, Value>,
    clear_keys: &[String],
) -> Result<Values, Vec<ConfigIssue>> {
    let mut values = current.clone();
    let mut issues = Vec::new();
    for key in clear_keys {
        if def.fields.iter().any(|f| f.name == key) {
            values.remove(key);
        } else {
            issues.push(unknown(key));
        }
    }
    for (key, value) in incoming {
        let Some(f) = def.fields.iter().find(|f| f.name == key) else {
            issues.push(unknown(key));
            continue;
        };
        match normalise(f, value) {
            Ok(Some(v)) => {
                values.insert(key.clone(), v);
            }
            Ok(None) => {
                values.remove(key);
            }
            Err(issue) => issues.push(issue),
        }
    }
    if issues.is_empty() {
        Ok(values)
    } else {
        Err(issues)
    }
}

fn unknown(key: &str) -> ConfigIssue {
    ConfigIssue::new(
        key,
        "UNKNOWN_FIELD",
        format!("{key} is not a field of this provider"),
        "GET /excititor/providers lists each provider's fields",
    )
}

/// A value in its field's shape; `None` for empty (the field is cleared).
fn normalise(f: &FieldDef, value: &Value) -> Result<Option<Value>, ConfigIssue> {
    let bad = |msg: &str| {
        ConfigIssue::new(
            f.name,
            "INVALID_VALUE",
            format!("{}: {msg}", f.name),
            "scalars are strings or booleans; lists are JSON arrays, JSON text or one item per line; artifact references are artifact UUIDs",
        )
    };
    if f.shape.is_list() {
        let items: Vec<String> = match value {
            Value::Array(a) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| bad("list items must be strings"))
                })
                .collect::<Result<_, _>>()?,
            Value::String(s) if s.trim_start().starts_with('[') => {
                serde_json::from_str::<Vec<String>>(s)
                    .map_err(|_| bad("not a JSON array of strings"))?
            }
            Value::String(s) => s.lines().map(str::to_string).collect(),
            Value::Null => Vec::new(),
            _ => return Err(bad("expected a list")),
        };
        let items: Vec<Value> = items
            .into_iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .map(Value::String)
            .collect();
        if f.shape == Shape::ListArtifactRef {
            for (i, item) in items.iter().enumerate() {
                check_uuid(f.name, i, item.as_str().unwrap_or_default())?;
            }
        }
        return Ok((!items.is_empty()).then_some(Value::Array(items)));
    }
    let text = match value {
        Value::String(s) => s.trim().to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => String::new(),
        _ => return Err(bad("expected a single value")),
    };
    if text.is_empty() {
        return Ok(None);
    }
    if f.shape == Shape::ArtifactRef {
        check_uuid(f.name, usize::MAX, &text)?;
    }
    Ok(Some(Value::String(text)))
}

fn check_uuid(field: &str, index: usize, s: &str) -> Result<(), ConfigIssue> {
    if uuid::Uuid::parse_str(s).is_ok() {
        return Ok(());
    }
    let name = if index == usize::MAX {
        field.to_string()
    } else {
        format!("{field}[{index}]")
    };
    Err(ConfigIssue::new(
        &name,
        "INVALID_ARTIFACT_REF",
        format!("{name}: {s:?} is not an artifact id"),
        "upload the file with POST /excititor/providers/{id}/artifacts (or `stella vex providers configure --upload-artifact <field>=@<path>`) and use its artifactId",
    ))
}

/// The artifact references of a configuration: (field key, artifact id),
/// list items keyed `field[i]`.
pub fn artifact_references(def: &ProviderDef, values: &Values) -> Vec<(String, uuid::Uuid)> {
    let mut refs = Vec::new();
    for f in def.fields.iter().filter(|f| f.shape.is_artifact()) {
        match values.get(f.name) {
            Some(Value::String(s)) => {
                if let Ok(id) = uuid::Uuid::parse_str(s) {
                    refs.push((f.name.to_string(), id));
                }
            }
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(id) = item.as_str().and_then(|s| uuid::Uuid::parse_str(s).ok()) {
                        refs.push((format!("{}[{i}]", f.name), id));
                    }
                }
            }
            _ => {}
        }
    }
    refs
}

/// The OCI OpenVEX configuration, typed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OciOpenVexConfig {
    pub images: Vec<String>,
    pub mode: String,
    pub cosign_keys: Vec<uuid::Uuid>,
    pub issuer: Option<String>,
    pub issuer_regexp: Option<String>,
    pub subject: Option<String>,
    pub subject_regexp: Option<String>,
    pub tuf_root: Option<uuid::Uuid>,
    pub tuf_mirror: Option<String>,
    pub offline_bundle: Option<uuid::Uuid>,
    pub registry_auth: Option<uuid::Uuid>,
    pub allow_http: bool,
    pub poll_interval: Duration,
    pub require_signatures: bool,
    pub caps: Caps,
}

/// Caps against hostile registries (configurable; hits are reported in
/// the run status).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps {
    /// `maxReferrersPerImage`.
    pub referrers_per_image: usize,
    /// `maxDocumentBytes`.
    pub document_bytes: usize,
    /// `maxDocumentsPerRun`.
    pub documents_per_run: usize,
    /// `maxConcurrentImages`.
    pub concurrent_images: usize,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            referrers_per_image: 1000,
            document_bytes: stella_vex::model::DEFAULT_MAX_DOCUMENT_BYTES,
            documents_per_run: 10_000,
            concurrent_images: 8,
        }
    }
}

/// A whole-number cap field within `range`, `default` when absent.
fn cap(
    values: &Values,
    key: &str,
    default: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<usize, ConfigIssue> {
    let Some(t) = text(values, key) else {
        return Ok(default);
    };
    match t.trim().parse::<usize>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(ConfigIssue::new(
            key,
            "INVALID_VALUE",
            format!(
                "{key}: {t:?} is not a whole number from {} to {}",
                range.start(),
                range.end()
            ),
            format!("e.g. {default}"),
        )),
    }
}

fn caps(values: &Values, issues: &mut Vec<ConfigIssue>) -> Caps {
    let d = Caps::default();
    let mut take = |key: &str, default: usize, range| {
        cap(values, key, default, range).unwrap_or_else(|e| {
            issues.push(e);
            default
        })
    };
    Caps {
        referrers_per_image: take("maxReferrersPerImage", d.referrers_per_image, 1..=100_000),
        document_bytes: take(
            "maxDocumentBytes",
            d.document_bytes,
            1024..=64 * 1024 * 1024,
        ),
        documents_per_run: take("maxDocumentsPerRun", d.documents_per_run, 1..=1_000_000),
        concurrent_images: take("maxConcurrentImages", d.concurrent_images, 1..=64),
    }
}

fn text(values: &Values, key: &str) -> Option<String> {
    values.get(key).and_then(Value::as_str).map(str::to_string)
}

fn list(values: &Values, key: &str) -> Vec<String> {
    match values.get(key) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

fn boolean(values: &Values, key: &str, default: bool) -> Result<bool, ConfigIssue> {
    match text(values, key).as_deref() {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(ConfigIssue::new(
            key,
            "INVALID_VALUE",
            format!("{key}: {other:?} is not true or false"),
            "use true or false",
        )),
    }
}

/// Parses a poll interval: `<n>[s|m|h]`.
pub fn parse_interval(s: &str) -> Option<Duration> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().ok()?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

fn is_image_reference(s: &str) -> bool {
    match stella_types::reference::Reference::parse(s) {
        Ok(stella_types::reference::Reference::Registry(r)) => {
            r.tag.is_some() || r.digest.is_some()
        }
        _ => false,
    }
}

/// Validates an OCI OpenVEX configuration: every issue (empty when ready),
/// and the typed configuration when there is none.
pub fn validate_oci_openvex(values: &Values) -> Result<OciOpenVexConfig, Vec<ConfigIssue>> {
    let mut issues = Vec::new();
    let images = list(values, "imageSubscriptions");
    if images.is_empty() {
        issues.push(ConfigIssue::new(
            "imageSubscriptions",
            "MISSING_IMAGE_SUBSCRIPTIONS",
            "no image is subscribed",
            "add image references, e.g. `stella vex providers configure excititor:oci-openvex --image registry.example/app:1.0`",
        ));
    }
    for (i, image) in images.iter().enumerate() {
        if !is_image_reference(image) {
            issues.push(ConfigIssue::new(
                &format!("imageSubscriptions[{i}]"),
                "INVALID_IMAGE_REFERENCE",
                format!("{image:?} is not an image reference"),
                "use host[:port]/repository:tag or host[:port]/repository@sha256:<hex>",
            ));
        }
    }
    let mode = text(values, "cosignMode").unwrap_or_default();
    let keyless_identity = |issues: &mut Vec<ConfigIssue>| {
        if text(values, "cosignIssuer").is_none() && text(values, "cosignIssuerRegexp").is_none() {
            issues.push(ConfigIssue::new(
                "cosignIssuer",
                "MISSING_COSIGN_ISSUER",
                format!("{mode} mode needs the signers' OIDC issuer"),
                "set cosignIssuer (exact) or cosignIssuerRegexp, e.g. https://token.actions.githubusercontent.com",
            ));
        }
        if text(values, "cosignSubject").is_none() && text(values, "cosignSubjectRegexp").is_none()
        {
            issues.push(ConfigIssue::new(
                "cosignSubject",
                "MISSING_COSIGN_SUBJECT",
                format!("{mode} mode needs the signers' certificate identity"),
                "set cosignSubject (exact) or cosignSubjectRegexp",
            ));
        }
    };
    match mode.as_str() {
        "keypair" => {
            if list(values, "cosignKeys").is_empty() {
                issues.push(ConfigIssue::new(
                    "cosignKeys",
                    "MISSING_COSIGN_KEY",
                    "keypair mode needs at least one public key",
                    "upload the public key: `stella vex providers configure excititor:oci-openvex --upload-artifact cosignKeys=@cosign.pub`",
                ));
            }
        }
        "keyless" => {
            keyless_identity(&mut issues);
            if text(values, "offlineBundle").is_none() && text(values, "tufRoot").is_none() {
                issues.push(ConfigIssue::new(
                    "tufRoot",
                    "MISSING_TUF_ROOT",
                    "keyless mode needs a trusted root: tufRoot (with tufMirror) or offlineBundle",
                    "upload a TUF root.json as tufRoot and set tufMirror, or a sigstore trusted_root.json as offlineBundle",
                ));
            }
        }
        "tuf-offline" => {
            keyless_identity(&mut issues);
            if text(values, "tufRoot").is_none() && text(values, "offlineBundle").is_none() {
                issues.push(ConfigIssue::new(
                    "tufRoot",
                    "MISSING_TUF_ROOT",
                    "tuf-offline mode needs tufRoot (with tufMirror) or offlineBundle",
                    "upload the TUF root.json: --upload-artifact tufRoot=@root.json, or a trusted_root.json as offlineBundle",
                ));
            }
        }
        "" => issues.push(ConfigIssue::new(
            "cosignMode",
            "MISSING_COSIGN_MODE",
            "cosignMode is not set",
            "set cosignMode to keyless, keypair or tuf-offline",
        )),
        other => issues.push(ConfigIssue::new(
            "cosignMode",
            "INVALID_COSIGN_MODE",
            format!("{other:?} is not a cosign mode"),
            "use keyless, keypair or tuf-offline",
        )),
    }
    let allow_http = boolean(values, "allowHttpRegistries", false).unwrap_or_else(|e| {
        issues.push(e);
        false
    });
    let require_signatures = boolean(values, "requireSignatures", true).unwrap_or_else(|e| {
        issues.push(e);
        true
    });
    let mirror = text(values, "tufMirror");
    if let Some(m) = &mirror {
        match url::Url::parse(m) {
            Ok(u) if u.scheme() == "https" => {}
            Ok(u) if u.scheme() == "http" && !allow_http => issues.push(ConfigIssue::new(
                "tufMirror",
                "HTTP_REGISTRY_BLOCKED",
                format!("{m} is plain HTTP"),
                "use an https mirror, or set allowHttpRegistries to true for a trusted local network",
            )),
            Ok(u) if u.scheme() == "http" => {}
            _ => issues.push(ConfigIssue::new(
                "tufMirror",
                "INVALID_VALUE",
                format!("{m:?} is not an http(s) URL"),
                "e.g. https://tuf-repo-cdn.sigstore.dev",
            )),
        }
    }
    let poll_interval = match text(values, "pollInterval") {
        None => DEFAULT_POLL,
        Some(p) => match parse_interval(&p) {
            Some(d) if d >= MIN_POLL => d,
            _ => {
                issues.push(ConfigIssue::new(
                    "pollInterval",
                    "INVALID_POLL_INTERVAL",
                    format!("{p:?} is not an interval of at least 30s"),
                    "e.g. 90s, 15m or 1h",
                ));
                DEFAULT_POLL
            }
        },
    };
    let caps = caps(values, &mut issues);
    if !issues.is_empty() {
        return Err(issues);
    }
    let uuid_of = |k: &str| text(values, k).and_then(|s| uuid::Uuid::parse_str(&s).ok());
    Ok(OciOpenVexConfig {
        images,
        mode,
        cosign_keys: list(values, "cosignKeys")
            .iter()
            .filter_map(|s| uuid::Uuid::parse_str(s).ok())
            .collect(),
        issuer: text(values, "cosignIssuer"),
        issuer_regexp: text(values, "cosignIssuerRegexp"),
        subject: text(values, "cosignSubject"),
        subject_regexp: text(values, "cosignSubjectRegexp"),
        tuf_root: uuid_of("tufRoot"),
        tuf_mirror: mirror,
        offline_bundle: uuid_of("offlineBundle"),
        registry_auth: uuid_of("registryAuth"),
        allow_http,
        poll_interval,
        require_signatures,
        caps,
    })
}

/// The validator for any provider of the catalog.
pub fn validate(provider_id: &str, values: &Values) -> Vec<ConfigIssue> {
    match provider_id {
        OCI_OPENVEX => validate_oci_openvex(values).err().unwrap_or_default(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn codes(values: serde_json::Value) -> Vec<(String, String)> {
        let def = provider(OCI_OPENVEX).unwrap();
        let v = apply_update(&def, &Values::new(), values.as_object().unwrap(), &[]).unwrap();
        validate(OCI_OPENVEX, &v)
            .into_iter()
            .map(|i| (i.path, i.code))
            .collect()
    }

    #[test]
    fn each_seed_code_at_its_path() {
        let key = uuid::Uuid::now_v7().to_string();
        assert_eq!(
            codes(serde_json::json!({"cosignMode": "keypair", "cosignKeys": [key]})),
            [(
                "$.values.imageSubscriptions".into(),
                "PROVIDER_CONFIG_MISSING_IMAGE_SUBSCRIPTIONS".into()
            )]
        );
        assert_eq!(
            codes(
                serde_json::json!({"imageSubscriptions": "reg.example/app:1\nnot a ref", "cosignMode": "keypair"})
            ),
            [
                (
                    "$.values.imageSubscriptions[1]".to_string(),
                    "PROVIDER_CONFIG_INVALID_IMAGE_REFERENCE".to_string()
                ),
                (
                    "$.values.cosignKeys".into(),
                    "PROVIDER_CONFIG_MISSING_COSIGN_KEY".into()
                ),
            ]
        );
        assert_eq!(
            codes(
                serde_json::json!({"imageSubscriptions": "[\"reg.example/app@sha256:0000000000000000000000000000000000000000000000000000000000000000\"]", "cosignMode": "keyless"})
            ),
            [
                (
                    "$.values.cosignIssuer".to_string(),
                    "PROVIDER_CONFIG_MISSING_COSIGN_ISSUER".to_string()
                ),
                (
                    "$.values.cosignSubject".into(),
                    "PROVIDER_CONFIG_MISSING_COSIGN_SUBJECT".into()
                ),
                (
                    "$.values.tufRoot".into(),
                    "PROVIDER_CONFIG_MISSING_TUF_ROOT".into()
                ),
            ]
        );
        assert_eq!(
            codes(
                serde_json::json!({"imageSubscriptions": ["r.example/a:1"], "cosignMode": "magic"})
            ),
            [(
                "$.values.cosignMode".to_string(),
                "PROVIDER_CONFIG_INVALID_COSIGN_MODE".to_string()
            )]
        );
        let root = uuid::Uuid::now_v7().to_string();
        assert_eq!(
            codes(
                serde_json::json!({"imageSubscriptions": ["r.example/a:1"], "cosignMode": "tuf-offline",
                "cosignIssuer": "https://issuer", "cosignSubject": "me@example.com", "tufRoot": root,
                "tufMirror": "http://mirror.local/"})
            ),
            [(
                "$.values.tufMirror".to_string(),
                "PROVIDER_CONFIG_HTTP_REGISTRY_BLOCKED".to_string()
            )]
        );
        assert!(codes(serde_json::json!({"imageSubscriptions": ["r.example/a:1"], "cosignMode": "tuf-offline",
                "cosignIssuer": "https://issuer", "cosignSubject": "me@example.com", "tufRoot": root,
                "tufMirror": "http://mirror.local/", "allowHttpRegistries": true})).is_empty());
    }

    #[test]
    fn problem_code_is_required_only_when_everything_missing_is_missing() {
        let missing = ConfigIssue::new("a", "MISSING_COSIGN_KEY", "m", "h");
        let invalid = ConfigIssue::new("b", "INVALID_COSIGN_MODE", "m", "h");
        assert_eq!(
            problem_code(std::slice::from_ref(&missing)),
            "PROVIDER_CONFIG_REQUIRED"
        );
        assert_eq!(problem_code(&[missing, invalid]), "PROVIDER_CONFIG_INVALID");
    }

    #[test]
    fn updates_normalise_shapes_clear_keys_and_refuse_unknown_fields() {
        let def = provider(OCI_OPENVEX).unwrap();
        let v = apply_update(
            &def,
            &Values::new(),
            serde_json::json!({"imageSubscriptions": " a/b:1 \n\n c/d:2 "})
                .as_object()
                .unwrap(),
            &[],
        )
        .unwrap();
        assert_eq!(
            v["imageSubscriptions"],
            serde_json::json!(["a/b:1", "c/d:2"])
        );
        let v = apply_update(
            &def,
            &v,
            &serde_json::Map::new(),
            &["imageSubscriptions".into()],
        )
        .unwrap();
        assert!(v.is_empty());
        let err = apply_update(
            &def,
            &v,
            serde_json::json!({"nope": "x", "tufRoot": "not-a-uuid"})
                .as_object()
                .unwrap(),
            &[],
        )
        .unwrap_err();
        let codes: Vec<&str> = err.iter().map(|i| i.code.as_str()).collect();
        assert_eq!(
            codes,
            [
                "PROVIDER_CONFIG_UNKNOWN_FIELD",
                "PROVIDER_CONFIG_INVALID_ARTIFACT_REF"
            ]
        );
    }
}
