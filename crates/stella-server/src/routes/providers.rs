//! Provider catalog and configuration (seed 002 OCI-CFG-002):
//! `GET /excititor/providers`, `GET|PUT /excititor/providers/{id}/config`.
//! Validation is `crate::vex::provider` (the same validator the CLI and the
//! runner use); failures answer a `PROVIDER_CONFIG_INVALID` or
//! `PROVIDER_CONFIG_REQUIRED` problem whose `errors` carry JSON paths,
//! codes, messages and hints. Saving records the artifact references of
//! `artifactRef` fields in the same transaction, so a referenced artifact's
//! DELETE answers 409.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use stella_store::{ProviderConfigRecord, VexRepository};

use crate::auth::{Principal, Scope};
use crate::error::{ApiError, PROBLEM_CONTENT_TYPE, Problem, TRACE_ID};
use crate::routes::artifacts::{ProviderPath, validate_provider_id};
use crate::state::AppState;
use crate::vex::provider::{self, ConfigIssue, ProviderDef, Values};

/// The catalog.
#[derive(Serialize, ToSchema)]
pub struct ProviderList {
    pub items: Vec<ProviderDef>,
}

/// A provider's configuration with each field's shape and its readiness.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigView {
    pub provider_id: String,
    #[schema(value_type = Object)]
    pub values: Values,
    pub fields: Vec<provider::FieldDef>,
    /// No validation issue: the runner will run it.
    pub ready: bool,
    pub issues: Vec<ConfigIssue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
}

/// `PUT` body: values to set, then fields to clear.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigUpdate {
    #[serde(default)]
    #[schema(value_type = Object)]
    pub values: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub clear_keys: Vec<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct UpdateParams {
    /// Validate only; nothing is saved.
    pub validate_only: Option<bool>,
}

/// A configuration problem: the problem document plus `errors` with hints.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigProblem {
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub trace_id: String,
    pub code: String,
    pub errors: Vec<ConfigIssue>,
}

/// Answers `issues` as a 400 problem.
pub fn config_problem(issues: Vec<ConfigIssue>) -> Response {
    let code = provider::problem_code(&issues);
    let detail = match issues.as_slice() {
        [one] => format!("{}: {}", one.message, one.hint),
        many => format!("{} configuration problems", many.len()),
    };
    let body = ConfigProblem {
        problem_type: format!("https://stella.dev/problems/{code}"),
        title: if code == "PROVIDER_CONFIG_REQUIRED" {
            "Provider configuration incomplete".into()
        } else {
            "Provider configuration invalid".into()
        },
        status: 400,
        detail,
        trace_id: TRACE_ID.try_with(Clone::clone).unwrap_or_default(),
        code: code.into(),
        errors: issues,
    };
    let mut response = (StatusCode::BAD_REQUEST, Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
    );
    response
}

fn known_provider(path: Result<Path<String>, PathRejection>) -> Result<ProviderDef, ApiError> {
    let Path(id) = path.map_err(|r| ApiError::BadRequest {
        code: "INVALID_PATH",
        detail: r.body_text(),
    })?;
    validate_provider_id(&id)?;
    provider::provider(&id).ok_or_else(|| ApiError::NotFound(format!("provider {id}")))
}

fn stored_values(record: Option<&ProviderConfigRecord>) -> Values {
    record
        .and_then(|r| serde_json::from_str(&r.values_json).ok())
        .unwrap_or_default()
}

/// List the provider catalog with each field's shape.
#[utoipa::path(get, path = "/excititor/providers", tag = "providers",
    security(("bearer" = ["vex.read"])),
    responses(
        (status = 200, description = "The catalog", body = ProviderList),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope `vex.read` missing", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_providers(principal: Principal) -> Result<Json<ProviderList>, ApiError> {
    principal.require(Scope::VexRead)?;
    Ok(Json(ProviderList {
        items: provider::catalog(),
    }))
}

/// Read a provider's configuration, field shapes and readiness.
#[utoipa::path(get, path = "/excititor/providers/{providerId}/config", tag = "providers",
    params(ProviderPath),
    security(("bearer" = ["vex.read"])),
    responses(
        (status = 200, description = "The configuration (empty values when never configured)", body = ConfigView),
        (status = 400, description = "Bad provider id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope `vex.read` missing", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such provider", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_provider_config(
    State(state): State<AppState>,
    principal: Principal,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<ConfigView>, ApiError> {
    let ctx = principal.require(Scope::VexRead)?;
    let def = known_provider(path)?;
    let record = state.store.get_provider_config(&ctx, def.id).await?;
    Ok(Json(view(&def, record.as_ref())))
}

fn view(def: &ProviderDef, record: Option<&ProviderConfigRecord>) -> ConfigView {
    let values = stored_values(record);
    let issues = provider::validate(def.id, &values);
    ConfigView {
        provider_id: def.id.to_string(),
        ready: issues.is_empty(),
        issues,
        values,
        fields: def.fields.clone(),
        updated_at: record.map(|r| r.updated_at.clone()),
        updated_by: record.map(|r| r.updated_by.clone()),
    }
}

/// Set (`values`) and clear (`clearKeys`) configuration fields; the result
/// must validate. `validateOnly=true` checks without saving.
#[utoipa::path(put, path = "/excititor/providers/{providerId}/config", tag = "providers",
    params(ProviderPath, UpdateParams),
    request_body = ConfigUpdate,
    security(("bearer" = ["vex.admin"])),
    responses(
        (status = 200, description = "Saved (or valid, with validateOnly)", body = ConfigView),
        (status = 400, description = "`PROVIDER_CONFIG_INVALID` / `PROVIDER_CONFIG_REQUIRED` (a ConfigProblem: each error also has a `hint`), or a malformed body or bad provider id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope `vex.admin` missing", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such provider", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_provider_config(
    State(state): State<AppState>,
    principal: Principal,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<UpdateParams>, QueryRejection>,
    body: Result<Json<ConfigUpdate>, JsonRejection>,
) -> Result<Response, ApiError> {
    let ctx = principal.require(Scope::VexAdmin)?;
    let def = known_provider(path)?;
    let Query(params) = query.map_err(|r| ApiError::BadRequest {
        code: "INVALID_QUERY",
        detail: r.body_text(),
    })?;
    let Json(update) = body.map_err(super::bad_body)?;
    let current = state.store.get_provider_config(&ctx, def.id).await?;
    let values = match provider::apply_update(
        &def,
        &stored_values(current.as_ref()),
        &update.values,
        &update.clear_keys,
    ) {
        Ok(v) => v,
        Err(issues) => return Ok(config_problem(issues)),
    };
    let issues = provider::validate(def.id, &values);
    if !issues.is_empty() {
        return Ok(config_problem(issues));
    }
    let record = ProviderConfigRecord {
        provider_id: def.id.to_string(),
        values_json: serde_json::to_string(&values).map_err(|_| ApiError::Internal)?,
        updated_at: stella_vex::Timestamp(time::OffsetDateTime::now_utc()).to_rfc3339(),
        updated_by: ctx.subject().to_string(),
    };
    if params.validate_only != Some(true) {
        let references = provider::artifact_references(&def, &values);
        if !state
            .store
            .save_provider_config(&ctx, &record, &references)
            .await?
        {
            return Ok(config_problem(vec![missing_artifact(&references)]));
        }
    }
    Ok(Json(view(&def, Some(&record))).into_response())
}

fn missing_artifact(references: &[(String, uuid::Uuid)]) -> ConfigIssue {
    let fields: Vec<&str> = references.iter().map(|(f, _)| f.as_str()).collect();
    ConfigIssue {
        path: "$.values".into(),
        code: "PROVIDER_CONFIG_ARTIFACT_NOT_FOUND".into(),
        message: format!(
            "an artifact referenced by {} is not staged for this provider",
            fields.join(", ")
        ),
        hint: "list the staged artifacts with GET /excititor/providers/{id}/artifacts and upload the missing one".into(),
    }
}

/// Run status of a provider: the run as a whole (`image` empty) and each image.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderStatus {
    pub provider_id: String,
    pub runs: Vec<RunView>,
}

/// The last run of a provider or one image.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunView {
    /// Empty for the run as a whole.
    pub image: String,
    pub started_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// succeeded | partial | failed | blocked
    pub result: String,
    pub reason: String,
    #[schema(value_type = Object)]
    pub counts: serde_json::Value,
}

/// Run a provider now (synchronously) and answer its summary.
#[utoipa::path(post, path = "/excititor/providers/{providerId}/run", tag = "providers",
    params(ProviderPath),
    security(("bearer" = ["vex.admin"])),
    responses(
        (status = 200, description = "The run's summary: result succeeded | partial | failed | blocked | busy, reason, counts, per image", body = Object),
        (status = 400, description = "Bad provider id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope `vex.admin` missing", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such provider", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn run_provider(
    principal: Principal,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<crate::vex::runner::RunSummary>, ApiError> {
    let ctx = principal.require(Scope::VexAdmin)?;
    let def = known_provider(path)?;
    let materializer = crate::materializer::Materializer::new(&std::env::temp_dir());
    Ok(Json(
        crate::vex::runner::run_provider(&state.store, &ctx, def.id, &materializer).await,
    ))
}

/// Last run of the provider and of each subscribed image.
#[utoipa::path(get, path = "/excititor/providers/{providerId}/status", tag = "providers",
    params(ProviderPath),
    security(("bearer" = ["vex.read"])),
    responses(
        (status = 200, description = "Run status (no runs yet: empty)", body = ProviderStatus),
        (status = 400, description = "Bad provider id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope `vex.read` missing", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such provider", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn provider_status(
    principal: Principal,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<ProviderStatus>, ApiError> {
    let ctx = principal.require(Scope::VexRead)?;
    let def = known_provider(path)?;
    let runs = state.store.provider_runs(&ctx, def.id).await?;
    Ok(Json(ProviderStatus {
        provider_id: def.id.to_string(),
        runs: runs
            .into_iter()
            .map(|r| RunView {
                image: r.image,
                started_at: r.started_at,
                finished_at: r.finished_at,
                result: r.result,
                reason: r.reason,
                counts: serde_json::from_str(&r.counts_json).unwrap_or(serde_json::Value::Null),
            })
            .collect(),
    }))
}
