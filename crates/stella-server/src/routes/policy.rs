//! The tenant's policy store (seed 003 §2.3): `POST /policy/import`,
//! `GET /policy/export`, `POST /policy/validate`, `POST /policy/preview`,
//! `POST /policy/activate`. Scopes `policy.read` (export, validate,
//! preview) and `policy.write` (import, activate).
//!
//! A policy is the format of docs/policy.md, sent as YAML or JSON (by
//! `Content-Type`). What is stored, digested and exported is its canonical
//! JSON (RFC 8785), so importing an export gives the same bytes and digest.
//! Validation errors come back as a 400 problem whose `errors[]` carry the
//! JSON path of each (`$.rules[0].severity`).
//!
//! Preview computes the image's report under the active revision (the
//! built-in empty policy when none is active) and under the candidate, with
//! the same code as `POST /api/v1/reports`, and lines the verdicts up per
//! finding (`stella_report::preview`). Nothing is stored by a preview.
//! Both sides read the registry through one request store
//! (`stella_report::memo`): each manifest, blob and referrer listing is
//! fetched once, and both sides judge the same snapshot.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use stella_store::{PolicyRepository, PolicyRevisionRecord};
use stella_verify::policy::Policy;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Principal, Scope};
use crate::error::{ApiError, FieldError, Problem};
use crate::routes::reports::{
    ReportInput, access, compute, image_reference, json_bytes, registry_auth_option, report_time,
    request_store,
};
use crate::routes::verify::aliases;
use crate::state::AppState;

/// The policy the report uses when no revision is active: no rules, no
/// trusted VEX, nothing required (the CLI's default without `--policy`).
const EMPTY_POLICY: &[u8] = b"version: 1\nunsignedEvidence: ignore\n";

/// A stored revision.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevisionRef {
    pub revision_id: String,
    /// `sha256:` of the canonical policy bytes.
    pub policy_digest: String,
}

/// A valid policy.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValidationResult {
    pub valid: bool,
    pub policy_digest: String,
    /// Warnings (`{path, code, message}`); errors come back as a 400 problem.
    pub warnings: Vec<FieldError>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ExportParams {
    /// A revision id; default the active revision.
    pub revision_id: Option<String>,
}

/// Which revision to activate.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActivateBody {
    pub revision_id: String,
}

/// The activated revision.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Activated {
    pub revision_id: String,
    pub policy_digest: String,
    pub active: bool,
}

/// A candidate policy and the image to preview it on.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreviewBody {
    /// The candidate policy, YAML or JSON text.
    pub policy: String,
    pub image: Option<String>,
    pub image_digest: Option<String>,
    pub environment: Option<String>,
    #[serde(default)]
    pub plain_http: bool,
    /// A docker config JSON artifact of the tenant with the registry
    /// credentials; default: anonymous.
    #[schema(format = "uuid")]
    pub registry_auth: Option<String>,
    /// The provider the `registryAuth` artifact is staged under (default `exports`).
    pub registry_auth_provider: Option<String>,
    /// RFC 3339 time (whole seconds) stamped on both reports; default now.
    pub generated_at: Option<String>,
}

/// The not-found problem for a revision (or for "no active revision").
pub(crate) fn revision_not_found(revision_id: Option<&str>) -> ApiError {
    match revision_id {
        Some(id) => ApiError::NotFound(format!("policy revision `{id}`")),
        None => ApiError::NotFound("an active policy revision".into()),
    }
}

/// Parses a stored revision (it was valid when imported).
pub(crate) fn parse_stored(revision: &PolicyRevisionRecord) -> Result<Policy, ApiError> {
    let (policy, _) = Policy::parse(&revision.canonical, &aliases);
    policy.ok_or_else(|| {
        tracing::error!(revision = %revision.revision_id, "stored policy revision no longer parses");
        ApiError::Internal
    })
}

/// Whether a `Content-Type` names YAML (else JSON is expected).
fn content_kind(headers: &HeaderMap) -> Result<bool, ApiError> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = value.split(';').next().unwrap_or("").trim();
    match essence.to_ascii_lowercase().as_str() {
        "application/json" => Ok(false),
        "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" => Ok(true),
        _ => Err(ApiError::UnsupportedMediaType(format!(
            "send the policy as application/json or application/yaml, not `{essence}`"
        ))),
    }
}

/// A policy's canonical JSON bytes and the parsed policy, or the
/// validation problem with every error's JSON path.
fn canonical_policy(
    bytes: &[u8],
    yaml: bool,
) -> Result<(Vec<u8>, Policy, Vec<FieldError>), ApiError> {
    let syntax = |m: String| ApiError::Validation(vec![FieldError::new("$", "policy.syntax", m)]);
    if bytes.len() as u64 > stella_types::limits::MAX_JSON_DOCUMENT_BYTES {
        return Err(ApiError::PayloadTooLarge("the policy is too large".into()));
    }
    let value: serde_json::Value = if yaml {
        serde_yaml_ng::from_slice(bytes).map_err(|e| syntax(format!("not valid YAML: {e}")))?
    } else {
        serde_json::from_slice(bytes).map_err(|e| syntax(format!("not valid JSON: {e}")))?
    };
    let canonical = stella_types::canonical_json::canonicalize(&value)
        .map_err(|e| syntax(format!("not representable as canonical JSON: {e}")))?;
    let (policy, diagnostics) = Policy::parse(&canonical, &aliases);
    let (errors, warnings): (Vec<_>, Vec<_>) = diagnostics
        .issues
        .into_iter()
        .partition(|i| i.severity == stella_verify::Severity::Error);
    let to_field =
        |i: stella_verify::policy::PolicyIssue| FieldError::new(&i.path, &i.code, i.message);
    match policy {
        Some(p) if errors.is_empty() => {
            Ok((canonical, p, warnings.into_iter().map(to_field).collect()))
        }
        _ => Err(ApiError::Validation(
            errors.into_iter().map(to_field).collect(),
        )),
    }
}

/// Store a policy as a new (inactive) revision.
#[utoipa::path(post, path = "/policy/import", tag = "policy",
    request_body(content = String, description = "The policy (docs/policy.md), YAML or JSON", content_type = "application/yaml"),
    security(("bearer" = ["policy.write"])),
    responses(
        (status = 201, description = "Stored", body = RevisionRef),
        (status = 400, description = "Invalid policy: `errors[]` with JSON paths", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope `policy.write` missing", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Policy too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Neither JSON nor YAML", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn import(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(axum::http::StatusCode, Json<RevisionRef>), ApiError> {
    let ctx = principal.require(Scope::PolicyWrite)?;
    let (canonical, policy, _) = canonical_policy(&body, content_kind(&headers)?)?;
    let record = PolicyRevisionRecord {
        revision_id: uuid::Uuid::now_v7().to_string(),
        policy_digest: policy.digest.to_string(),
        canonical,
        created_at: stella_types::timestamp::rfc3339(time::OffsetDateTime::now_utc()),
        created_by: ctx.subject().to_string(),
        active: false,
    };
    state.store.insert_policy_revision(&ctx, &record).await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(RevisionRef {
            revision_id: record.revision_id,
            policy_digest: record.policy_digest,
        }),
    ))
}

/// Check a policy without storing it.
#[utoipa::path(post, path = "/policy/validate", tag = "policy",
    request_body(content = String, description = "The policy, YAML or JSON", content_type = "application/yaml"),
    security(("bearer" = ["policy.read"])),
    responses(
        (status = 200, description = "Valid (warnings listed)", body = ValidationResult),
        (status = 400, description = "Invalid policy: `errors[]` with JSON paths", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope `policy.read` missing", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Policy too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Neither JSON nor YAML", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn validate(
    principal: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ValidationResult>, ApiError> {
    principal.require(Scope::PolicyRead)?;
    let (_, policy, warnings) = canonical_policy(&body, content_kind(&headers)?)?;
    Ok(Json(ValidationResult {
        valid: true,
        policy_digest: policy.digest.to_string(),
        warnings,
    }))
}

/// The canonical JSON of a revision (default: the active one).
#[utoipa::path(get, path = "/policy/export", tag = "policy",
    params(ExportParams),
    security(("bearer" = ["policy.read"])),
    responses(
        (status = 200, description = "The revision's canonical JSON, byte for byte as stored", content_type = "application/json"),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope `policy.read` missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such revision, or none active", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn export(
    State(state): State<AppState>,
    principal: Principal,
    params: Result<Query<ExportParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let ctx = principal.require(Scope::PolicyRead)?;
    let Query(params) = params.map_err(|r| ApiError::BadRequest {
        code: "INVALID_QUERY",
        detail: r.body_text(),
    })?;
    let id = params.revision_id.as_deref();
    let revision = state
        .store
        .get_policy_revision(&ctx, id)
        .await?
        .ok_or_else(|| revision_not_found(id))?;
    Ok(json_bytes(revision.canonical))
}

/// Make a revision the tenant's active one.
#[utoipa::path(post, path = "/policy/activate", tag = "policy",
    request_body(content = ActivateBody, content_type = "application/json"),
    security(("bearer" = ["policy.write"])),
    responses(
        (status = 200, description = "Active", body = Activated),
        (status = 400, description = "Bad body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope `policy.write` missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such revision in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn activate(
    State(state): State<AppState>,
    principal: Principal,
    body: Result<Json<ActivateBody>, JsonRejection>,
) -> Result<Json<Activated>, ApiError> {
    let ctx = principal.require(Scope::PolicyWrite)?;
    let Json(body) = body.map_err(super::bad_body)?;
    let at = stella_types::timestamp::rfc3339(time::OffsetDateTime::now_utc());
    if !state
        .store
        .activate_policy_revision(&ctx, &body.revision_id, &at)
        .await?
    {
        return Err(revision_not_found(Some(&body.revision_id)));
    }
    let revision = state
        .store
        .get_policy_revision(&ctx, Some(&body.revision_id))
        .await?
        .ok_or_else(|| revision_not_found(Some(&body.revision_id)))?;
    Ok(Json(Activated {
        revision_id: revision.revision_id,
        policy_digest: revision.policy_digest,
        active: revision.active,
    }))
}

/// Per-finding differences between the active revision and a candidate.
#[utoipa::path(post, path = "/policy/preview", tag = "policy",
    request_body(content = PreviewBody, content_type = "application/json"),
    security(("bearer" = ["policy.read"])),
    responses(
        (status = 200, description = "`{baseline, projected, changed, findings: [{findingId, baseline, projected, changed}]}`", content_type = "application/json"),
        (status = 400, description = "Bad body or reference, invalid candidate (`errors[]` with JSON paths under `$`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope `policy.read` missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown image", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The registry failed or refused", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn preview(
    State(state): State<AppState>,
    principal: Principal,
    body: Result<Json<PreviewBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let ctx = principal.require(Scope::PolicyRead)?;
    let Json(body) = body.map_err(super::bad_body)?;
    let reference = image_reference(body.image.as_deref(), body.image_digest.as_deref())?;
    let generated_at = report_time(body.generated_at.as_deref())?;
    let auth = registry_auth_option(
        body.registry_auth.as_deref(),
        body.registry_auth_provider.as_deref(),
    )?;
    // JSON is YAML: one parser reads either text.
    let (_, candidate, _) = canonical_policy(body.policy.as_bytes(), true)?;
    let (baseline_policy, baseline_id) = match state.store.get_policy_revision(&ctx, None).await? {
        Some(r) => (parse_stored(&r)?, r.revision_id),
        None => {
            let (p, _) = Policy::parse(EMPTY_POLICY, &aliases);
            (p.ok_or(ApiError::Internal)?, "none".to_string())
        }
    };
    let access = access(&state, &ctx, auth.as_ref(), body.plain_http).await?;
    // One store for both sides: each manifest and blob is read once.
    let store = request_store(&reference, &access.client)?;
    let input = |policy: Policy, revision_id: String| ReportInput {
        reference: reference.clone(),
        policy,
        revision_id,
        environment: body.environment.clone(),
        generated_at,
        store: store.clone(),
    };
    let baseline = compute(&state, &ctx, input(baseline_policy, baseline_id)).await?;
    let projected = compute(&state, &ctx, input(candidate, "candidate".into())).await?;
    let preview = stella_report::preview::diff(&baseline, &projected);
    let bytes = stella_types::canonical_json::to_canonical_vec(&preview).map_err(|e| {
        tracing::error!(error = %e, "preview output failed");
        ApiError::Internal
    })?;
    Ok(json_bytes(bytes))
}
