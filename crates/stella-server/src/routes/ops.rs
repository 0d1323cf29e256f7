//! Operational routes: health, readiness, metrics, version, JWKS, and the
//! OpenAPI document. None needs a token.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, description = "`ok`", body = String, content_type = "text/plain")))]
pub async fn healthz() -> &'static str {
    "ok"
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    pub status: &'static str,
    pub schema_version: i64,
}

/// Readiness: the database answers and its schema is current.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Database unreachable or schema not current", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Readiness>, ApiError> {
    state
        .store
        .ping()
        .await
        .map_err(|_| ApiError::Unavailable)?;
    let status = state
        .store
        .schema_status()
        .await
        .map_err(|_| ApiError::Unavailable)?;
    if !status.is_current() {
        return Err(ApiError::Unavailable);
    }
    Ok(Json(Readiness {
        status: "ready",
        schema_version: status.applied,
    }))
}

/// Prometheus metrics (OpenMetrics text).
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Metrics", body = String, content_type = "application/openmetrics-text")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let text = state.metrics.render(state.store.pool_stats());
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    pub version: &'static str,
    /// The git commit built (see `build.rs`), else `unknown`.
    pub git_sha: &'static str,
    /// RFC 3339 build date (`SOURCE_DATE_EPOCH` or the commit time), else `unknown`.
    pub build_date: &'static str,
}

/// Version, git SHA and build date of this server.
#[utoipa::path(get, path = "/version", tag = "ops",
    responses((status = 200, description = "Version", body = VersionInfo)))]
pub async fn version() -> Json<VersionInfo> {
    Json(VersionInfo {
        version: env!("CARGO_PKG_VERSION"),
        git_sha: env!("STELLA_GIT_SHA"),
        build_date: env!("STELLA_BUILD_DATE"),
    })
}

/// Public keys that verify access tokens (JWK Set, RFC 7517).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, description = "JWK Set", body = Object)))]
pub async fn jwks(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.authority.jwks())
}

/// This document, as JSON.
#[utoipa::path(get, path = "/openapi/v1.json", tag = "ops",
    responses((status = 200, description = "OpenAPI 3.1 document", body = Object)))]
pub async fn openapi_json() -> Response {
    let doc = crate::openapi::ApiDoc::openapi();
    match serde_json::to_vec_pretty(&doc) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(_) => ApiError::Internal.into_response(),
    }
}

/// This document, as YAML.
#[utoipa::path(get, path = "/openapi/v1.yaml", tag = "ops",
    responses((status = 200, description = "OpenAPI 3.1 document", body = Object, content_type = "application/yaml")))]
pub async fn openapi_yaml() -> Response {
    let doc = crate::openapi::ApiDoc::openapi();
    match serde_yaml_ng::to_string(&doc) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/yaml")], body).into_response(),
        Err(_) => ApiError::Internal.into_response(),
    }
}
