//! The body of `POST /exports` and its validation into a [`JobPlan`]: the
//! profile, the selection (registry references only: a server never reads
//! a caller's local layouts) and the options.
//!
//! This module does not touch registries or files; `job` does.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use stella_export::Profile;
use stella_export::crypt::Recipients;
use stella_types::Reference;
use stella_types::reference::RegistryReference;

use crate::error::FieldError;

/// Most images (or repositories) one export may name.
pub const MAX_SELECTION: usize = 1000;

/// `POST /exports`.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportCreate {
    /// `mirror:full`, `mirror:delta` or `json:raw`.
    pub profile: String,
    pub selection: ExportSelection,
    #[serde(default)]
    pub options: ExportOptions,
}

/// What to export: image references (tag or digest) and whole repositories
/// (every tag), all on registries.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportSelection {
    /// `registry/repo:tag` or `registry/repo@sha256:…` (as `--image`, or the
    /// lines of `--images-file`).
    #[serde(default)]
    pub images: Vec<String>,
    /// `registry/repo`: every tag (as `--repository`).
    #[serde(default)]
    pub repositories: Vec<String>,
}

/// How to export.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportOptions {
    /// The id of an earlier, succeeded export of the same tenant: the base
    /// of a `mirror:delta`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = "uuid")]
    pub since: Option<String>,
    /// age recipients (X25519 `age1…` or `ssh-ed25519 …`) to encrypt to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
    /// Not supported by the service (a download is one file); refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_part_size: Option<u64>,
    /// Platforms (`os/arch[/variant]`) to keep; absent or `["all"]`: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_platforms: Option<Vec<String>>,
    /// Sign `manifest.json` with the tenant's export key
    /// (`GET /exports/signing-key`).
    #[serde(default)]
    pub sign: bool,
    /// A docker config JSON artifact of the tenant with the registry
    /// credentials (staged under provider `registryAuthProvider`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = "uuid")]
    pub registry_auth: Option<String>,
    /// The provider the `registryAuth` artifact is staged under (default `exports`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_auth_provider: Option<String>,
    /// Talk plain HTTP to the registries (test and lab registries only).
    #[serde(default)]
    pub plain_http: bool,
}

/// A validated request.
#[derive(Clone, Debug)]
pub struct JobPlan {
    pub profile: Profile,
    /// Image references as given, parsed.
    pub images: Vec<(String, RegistryReference)>,
    pub repositories: Vec<(String, RegistryReference)>,
    pub platforms: Option<Vec<String>>,
    pub recipients: Vec<String>,
    pub since: Option<Uuid>,
    pub sign: bool,
    pub registry_auth: Option<(String, Uuid)>,
    pub plain_http: bool,
}

fn registry_ref(path: &str, raw: &str, errors: &mut Vec<FieldError>) -> Option<RegistryReference> {
    match Reference::parse(raw.trim()) {
        Ok(Reference::Registry(r)) => Some(r),
        Ok(Reference::Layout(_)) => {
            errors.push(FieldError::new(
                path,
                "LAYOUT_NOT_ALLOWED",
                "the service exports from registries only, not from oci: layouts",
            ));
            None
        }
        Err(e) => {
            errors.push(FieldError::new(path, "INVALID_REFERENCE", e.to_string()));
            None
        }
    }
}

fn check_selection(s: &ExportSelection, plan: &mut JobPlan, errors: &mut Vec<FieldError>) {
    if s.images.is_empty() && s.repositories.is_empty() {
        errors.push(FieldError::new(
            "$.selection",
            "EMPTY_SELECTION",
            "give images or repositories",
        ));
    }
    if s.images.len() + s.repositories.len() > MAX_SELECTION {
        errors.push(FieldError::new(
            "$.selection",
            "TOO_MANY",
            format!("at most {MAX_SELECTION} images and repositories"),
        ));
        return;
    }
    for (i, raw) in s.images.iter().enumerate() {
        let path = format!("$.selection.images[{i}]");
        if let Some(r) = registry_ref(&path, raw, errors) {
            plan.images.push((raw.trim().to_string(), r));
        }
    }
    for (i, raw) in s.repositories.iter().enumerate() {
        let path = format!("$.selection.repositories[{i}]");
        if let Some(r) = registry_ref(&path, raw, errors) {
            if r.tag.is_some() || r.digest.is_some() {
                errors.push(FieldError::new(
                    &path,
                    "NOT_A_REPOSITORY",
                    "names a tag or digest; give the repository only",
                ));
            } else {
                plan.repositories.push((raw.trim().to_string(), r));
            }
        }
    }
}

fn uuid_field(path: &str, raw: Option<&str>, errors: &mut Vec<FieldError>) -> Option<Uuid> {
    let raw = raw?;
    let id = Uuid::parse_str(raw.trim()).ok();
    if id.is_none() {
        errors.push(FieldError::new(path, "INVALID_UUID", "must be a UUID"));
    }
    id
}

fn check_options(o: &ExportOptions, plan: &mut JobPlan, errors: &mut Vec<FieldError>) {
    if o.max_part_size.is_some() {
        errors.push(FieldError::new(
            "$.options.maxPartSize",
            "NOT_SUPPORTED",
            "the service serves one file per export; split it after download (stella export run --max-part-size on the CLI)",
        ));
    }
    if !o.recipients.is_empty() {
        if let Err(e) = Recipients::parse(o.recipients.iter().map(String::as_str)) {
            errors.push(FieldError::new(
                "$.options.recipients",
                "INVALID_RECIPIENT",
                e.to_string(),
            ));
        }
        plan.recipients = o.recipients.clone();
    }
    plan.platforms = o.include_platforms.as_ref().and_then(|list| {
        let set: BTreeSet<String> = list
            .iter()
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect();
        (!set.is_empty() && !set.contains("all")).then(|| set.into_iter().collect())
    });
    plan.registry_auth = crate::registry_auth::parse(
        "$.options.",
        o.registry_auth.as_deref(),
        o.registry_auth_provider.as_deref(),
        errors,
    );
    plan.since = uuid_field("$.options.since", o.since.as_deref(), errors);
    plan.sign = o.sign;
    plan.plain_http = o.plain_http;
}

impl ExportCreate {
    /// Validates everything that needs no store or network.
    pub fn plan(&self) -> Result<JobPlan, Vec<FieldError>> {
        let mut errors = Vec::new();
        let profile = Profile::parse(&self.profile);
        if profile.is_none() {
            errors.push(FieldError::new(
                "$.profile",
                "INVALID_PROFILE",
                "profile is mirror:full, mirror:delta or json:raw",
            ));
        }
        let mut plan = JobPlan {
            profile: profile.unwrap_or(Profile::MirrorFull),
            images: Vec::new(),
            repositories: Vec::new(),
            platforms: None,
            recipients: Vec::new(),
            since: None,
            sign: false,
            registry_auth: None,
            plain_http: false,
        };
        check_selection(&self.selection, &mut plan, &mut errors);
        check_options(&self.options, &mut plan, &mut errors);
        if plan.profile == Profile::MirrorDelta && plan.since.is_none() {
            errors.push(FieldError::new(
                "$.options.since",
                "BASE_REQUIRED",
                "mirror:delta needs since (the id of an earlier export)",
            ));
        }
        if errors.is_empty() {
            Ok(plan)
        } else {
            Err(errors)
        }
    }
}
