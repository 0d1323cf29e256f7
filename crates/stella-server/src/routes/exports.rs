//! The Export Center routes (issue 14 §4): `POST /exports` (202 +
//! `Location`), `GET /exports` (paginated), `GET /exports/{id}`,
//! `GET /exports/{id}/events` (server-sent events), `GET
//! /exports/{id}/download` (single HTTP range, `ETag` = sha256),
//! `DELETE /exports/{id}` and `GET /exports/signing-key`. Scopes
//! `export.read` (GET) and `export.admin` (POST, DELETE). Another tenant's
//! export is 404 on every route.
//!
//! The jobs themselves run in [`crate::exports`].

use std::convert::Infallible;
use std::path::PathBuf;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use stella_store::{ExportJobRecord, ExportRepository, TenantContext};

use crate::auth::{Principal, Scope};
use crate::error::{ApiError, FieldError, Problem};
use crate::exports::request::ExportCreate;
use crate::exports::{is_final, signing};
use crate::state::AppState;

const CHUNK: usize = 64 * 1024;

/// Progress counters. `bytesTotal` and `entriesTotal` grow while the
/// selection is resolved; they are final once the job has succeeded.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportProgress {
    pub bytes_done: i64,
    pub bytes_total: i64,
    pub entries_done: i64,
    pub entries_total: i64,
}

/// The finished file.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportFile {
    pub size: i64,
    /// Hex sha256 of the file (also its `ETag`).
    pub sha256: String,
    /// Where to download it.
    pub href: String,
}

/// An export job.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportJob {
    pub id: String,
    pub profile: String,
    /// `queued`, `running`, `succeeded`, `failed` or `deleted`.
    pub status: String,
    pub progress: ExportProgress,
    /// `sha256:<hex>` of `manifest.json` (succeeded jobs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<ExportFile>,
    /// Why it failed (`interrupted` when the server restarted under it).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// The client that created it.
    pub created_by: String,
    /// The request as accepted.
    #[schema(value_type = Object)]
    pub request: serde_json::Value,
    /// The server's verification of the finished file (the report of
    /// `stella export verify`, with the tenant's key when signed).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub verification: Option<serde_json::Value>,
}

impl From<&ExportJobRecord> for ExportJob {
    fn from(r: &ExportJobRecord) -> Self {
        let file = match (r.status.as_str(), r.file_size, &r.file_sha256) {
            ("succeeded", Some(size), Some(sha)) => Some(ExportFile {
                size,
                sha256: sha.clone(),
                href: format!("/exports/{}/download", r.export_id),
            }),
            _ => None,
        };
        ExportJob {
            id: r.export_id.to_string(),
            profile: r.profile.clone(),
            status: r.status.clone(),
            progress: ExportProgress {
                bytes_done: r.bytes_done,
                bytes_total: r.bytes_total,
                entries_done: r.entries_done,
                entries_total: r.entries_total,
            },
            manifest_digest: r.manifest_digest.clone(),
            file,
            reason: r.reason.clone(),
            created_at: r.created_at.clone(),
            started_at: r.started_at.clone(),
            finished_at: r.finished_at.clone(),
            created_by: r.created_by.clone(),
            request: serde_json::from_str(&r.request_json).unwrap_or(serde_json::Value::Null),
            verification: r
                .verification_json
                .as_deref()
                .and_then(|v| serde_json::from_str(v).ok()),
        }
    }
}

/// One page of jobs.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportPage {
    pub items: Vec<ExportJob>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The tenant's export-signing public key.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportSigningKey {
    pub key_id: String,
    /// PEM `PUBLIC KEY` (for `stella export verify --key`).
    pub public_key_pem: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportListParams {
    /// Page size, 1–500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// Path parameter naming one export (OpenAPI only).
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct ExportPath {
    /// Export id (UUID).
    #[param(format = "uuid")]
    id: String,
}

fn parse_id(path: Result<Path<String>, PathRejection>) -> Result<Uuid, ApiError> {
    let Path(raw) = path.map_err(|r| ApiError::BadRequest {
        code: "INVALID_PATH",
        detail: r.body_text(),
    })?;
    Uuid::parse_str(&raw).map_err(|_| {
        ApiError::Validation(vec![FieldError::new(
            "id",
            "INVALID_UUID",
            "id must be a UUID",
        )])
    })
}

async fn load(
    state: &AppState,
    ctx: &TenantContext,
    id: Uuid,
) -> Result<ExportJobRecord, ApiError> {
    state
        .store
        .get_export_job(ctx, id)
        .await?
        .ok_or_else(|| ApiError::NotFound("export".into()))
}

/// Create an export job.
#[utoipa::path(post, path = "/exports", tag = "exports", operation_id = "create_export",
    request_body = ExportCreate,
    security(("bearer" = ["export.admin"])),
    responses(
        (status = 202, description = "Queued; `Location` names the job", body = ExportJob,
            headers(("Location" = String, description = "/exports/{id}"))),
        (status = 400, description = "Invalid body (field errors)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope `export.admin` missing", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    body: Result<Json<ExportCreate>, JsonRejection>,
) -> Result<Response, ApiError> {
    let ctx = principal.require(Scope::ExportAdmin)?;
    let Json(body) = body.map_err(super::bad_body)?;
    let plan = body.plan().map_err(ApiError::Validation)?;
    let rec = state.exports.submit(&ctx, &body, plan).await?;
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("/exports/{}", rec.export_id)) {
        headers.insert(header::LOCATION, v);
    }
    Ok((StatusCode::ACCEPTED, headers, Json(ExportJob::from(&rec))).into_response())
}

/// List the tenant's export jobs, oldest first.
#[utoipa::path(get, path = "/exports", tag = "exports", operation_id = "list_exports",
    params(ExportListParams),
    security(("bearer" = ["export.read"])),
    responses(
        (status = 200, description = "A page of jobs", body = ExportPage),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope `export.read` missing", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    query: Result<Query<ExportListParams>, QueryRejection>,
) -> Result<Json<ExportPage>, ApiError> {
    let ctx = principal.require(Scope::ExportRead)?;
    let Query(p) = query.map_err(super::bad_query)?;
    let limit = super::page_limit(p.limit)?;
    let after = super::uuid_cursor(p.cursor.as_deref())?;
    let rows = state.store.list_export_jobs(&ctx, after, limit).await?;
    let next_cursor = (rows.len() == limit as usize)
        .then(|| rows.last().map(|r| r.export_id.to_string()))
        .flatten();
    Ok(Json(ExportPage {
        items: rows.iter().map(ExportJob::from).collect(),
        next_cursor,
    }))
}

/// One job's status and progress.
#[utoipa::path(get, path = "/exports/{id}", tag = "exports", operation_id = "get_export",
    params(ExportPath),
    security(("bearer" = ["export.read"])),
    responses(
        (status = 200, description = "The job", body = ExportJob),
        (status = 400, description = "Bad id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope `export.read` missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such export in the caller's tenant", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<ExportJob>, ApiError> {
    let ctx = principal.require(Scope::ExportRead)?;
    let id = parse_id(path)?;
    Ok(Json(ExportJob::from(&load(&state, &ctx, id).await?)))
}

/// Cancel (if running) and delete an export and its file.
#[utoipa::path(delete, path = "/exports/{id}", tag = "exports", operation_id = "delete_export",
    params(ExportPath),
    security(("bearer" = ["export.admin"])),
    responses(
        (status = 204, description = "Deleted (a running job was cancelled first)"),
        (status = 400, description = "Bad id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope `export.admin` missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such export in the caller's tenant", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let ctx = principal.require(Scope::ExportAdmin)?;
    let id = parse_id(path)?;
    let mut rec = load(&state, &ctx, id).await?;
    let was_live = state.exports.cancel(id).await;
    let dir = state.exports.job_dir(&ctx, id);
    tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    })
    .await
    .map_err(|_| ApiError::Internal)?
    .map_err(|e| ApiError::from_io(&e))?;
    if was_live {
        state.metrics.export_failed("cancelled");
        rec.reason = format!("cancelled by {}", ctx.subject());
    }
    if rec.finished_at.is_none() {
        rec.finished_at = Some(crate::exports::now_rfc3339());
    }
    rec.status = "deleted".into();
    rec.file_path = None;
    state.store.update_export_job(&ctx, &rec).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn event_for(rec: &ExportJobRecord) -> Event {
    let name = match rec.status.as_str() {
        "succeeded" => "completed",
        "failed" => "failed",
        "deleted" => "deleted",
        _ => "progress",
    };
    let data = serde_json::to_string(&ExportJob::from(rec)).unwrap_or_else(|_| "{}".into());
    Event::default().event(name).data(data)
}

/// Server-sent events of one job.
#[utoipa::path(get, path = "/exports/{id}/events", tag = "exports", operation_id = "export_events",
    params(ExportPath),
    security(("bearer" = ["export.read"])),
    responses(
        (status = 200, description = "`text/event-stream`: `progress` events (the job as JSON), then one final `completed`, `failed` or `deleted` event; a job that has already ended sends its final event at once", content_type = "text/event-stream", body = String),
        (status = 400, description = "Bad id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope `export.read` missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such export in the caller's tenant", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn events(
    State(state): State<AppState>,
    principal: Principal,
    path: Result<Path<String>, PathRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let ctx = principal.require(Scope::ExportRead)?;
    let id = parse_id(path)?;
    let first = load(&state, &ctx, id).await?;
    let rx = if is_final(&first.status) {
        None
    } else {
        state.exports.subscribe(id)
    };
    let closing = state.exports.closing();
    let stream = EventStream {
        closing,
        state,
        ctx,
        id,
        rx,
        pending: Some(first),
        done: false,
    };
    let stream =
        futures_util::stream::unfold(
            stream,
            |mut s| async move { s.next().await.map(|e| (Ok(e), s)) },
        );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The state of one event stream: the record to send next, the live
/// channel while the job runs, and the store to read the end from.
struct EventStream {
    closing: tokio::sync::watch::Receiver<bool>,
    state: AppState,
    ctx: TenantContext,
    id: Uuid,
    rx: Option<tokio::sync::watch::Receiver<ExportJobRecord>>,
    pending: Option<ExportJobRecord>,
    done: bool,
}

impl EventStream {
    async fn next(&mut self) -> Option<Event> {
        if self.done {
            return None;
        }
        let rec = match self.pending.take() {
            Some(r) => r,
            None => {
                let mut closing = self.closing.clone();
                tokio::select! {
                    r = self.wait() => r,
                    _ = closing.wait_for(|c| *c) => return None,
                }
            }
        };
        if is_final(&rec.status) {
            self.done = true;
        }
        Some(event_for(&rec))
    }

    /// The next record: from the live channel, or (when the job has left
    /// it, or was never live here) from the store.
    async fn wait(&mut self) -> ExportJobRecord {
        if let Some(rx) = self.rx.as_mut() {
            if rx.changed().await.is_ok() {
                return rx.borrow_and_update().clone();
            }
            self.rx = None;
        }
        loop {
            match self.state.store.get_export_job(&self.ctx, self.id).await {
                Ok(Some(r)) if is_final(&r.status) => return r,
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    let mut gone = self.pending.clone().unwrap_or_else(|| placeholder(self.id));
                    gone.status = "deleted".into();
                    return gone;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

fn placeholder(id: Uuid) -> ExportJobRecord {
    ExportJobRecord {
        export_id: id,
        profile: String::new(),
        request_json: "null".into(),
        status: "deleted".into(),
        bytes_done: 0,
        bytes_total: 0,
        entries_done: 0,
        entries_total: 0,
        manifest_digest: None,
        file_path: None,
        file_size: None,
        file_sha256: None,
        reason: String::new(),
        verification_json: None,
        created_at: String::new(),
        started_at: None,
        finished_at: None,
        created_by: String::new(),
    }
}

/// A single byte range of a `size`-byte file: `Ok(None)` for no (or an
/// ignorable multi-range) header, `Err(())` when unsatisfiable.
fn parse_range(header: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        // Multiple ranges: answered with the whole file (RFC 9110 allows it).
        return Ok(None);
    }
    let (start, end) = spec.split_once('-').ok_or(())?;
    let (start, end) = (start.trim(), end.trim());
    let range = if start.is_empty() {
        let n: u64 = end.parse().map_err(|_| ())?;
        if n == 0 || size == 0 {
            return Err(());
        }
        (size.saturating_sub(n), size - 1)
    } else {
        let s: u64 = start.parse().map_err(|_| ())?;
        let e: u64 = if end.is_empty() {
            size.saturating_sub(1)
        } else {
            end.parse::<u64>()
                .map_err(|_| ())?
                .min(size.saturating_sub(1))
        };
        if s >= size || e < s {
            return Err(());
        }
        (s, e)
    };
    Ok(Some(range))
}

/// Download a finished export (`Range: bytes=…` for resumable downloads).
#[utoipa::path(get, path = "/exports/{id}/download", tag = "exports", operation_id = "download_export",
    params(ExportPath),
    security(("bearer" = ["export.read"])),
    responses(
        (status = 200, description = "The export file (`application/x-tar`); `ETag` is its sha256", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 206, description = "The requested range, with `Content-Range`", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, description = "Bad id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope `export.read` missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such export in the caller's tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The export has not succeeded (or was deleted)", body = Problem, content_type = "application/problem+json"),
        (status = 416, description = "The range is not satisfiable; `Content-Range: bytes */<size>`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn download(
    State(state): State<AppState>,
    principal: Principal,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ctx = principal.require(Scope::ExportRead)?;
    let id = parse_id(path)?;
    let rec = load(&state, &ctx, id).await?;
    let (Some(file), Some(sha)) = (state.exports.file_of(&rec), rec.file_sha256.clone()) else {
        return Err(ApiError::Status(
            StatusCode::CONFLICT,
            format!(
                "export {id} is {}: there is nothing to download",
                rec.status
            ),
        ));
    };
    if rec.status != "succeeded" {
        return Err(ApiError::Status(
            StatusCode::CONFLICT,
            format!("export {id} is {}", rec.status),
        ));
    }
    let size = u64::try_from(rec.file_size.unwrap_or(0)).unwrap_or(0);
    let etag = format!("\"{sha}\"");
    // If-Range with another validator: the whole file.
    let if_range_ok = headers
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.trim() == etag);
    let range_header = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .filter(|_| if_range_ok);
    match parse_range(range_header, size) {
        Err(()) => {
            let mut resp = ApiError::Status(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("the range is outside the {size}-byte file"),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            Ok(resp)
        }
        Ok(range) => serve_file(file, size, &etag, range, &id).await,
    }
}

async fn serve_file(
    file: PathBuf,
    size: u64,
    etag: &str,
    range: Option<(u64, u64)>,
    id: &Uuid,
) -> Result<Response, ApiError> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut f = tokio::fs::File::open(&file)
        .await
        .map_err(|e| ApiError::from_io(&e))?;
    let (start, end) = range.unwrap_or((0, size.saturating_sub(1)));
    let len = if size == 0 { 0 } else { end - start + 1 };
    f.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(|e| ApiError::from_io(&e))?;
    let reader = f.take(len);
    let stream = futures_util::stream::unfold(reader, |mut r| async move {
        let mut buf = vec![0u8; CHUNK];
        match r.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), r))
            }
            Err(e) => Some((Err(e), r)),
        }
    });
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"export-{id}.tar\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if range.is_some() {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{size}")) {
            h.insert(header::CONTENT_RANGE, v);
        }
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    Ok(resp)
}

/// The tenant's export-signing public key (created on first use).
#[utoipa::path(get, path = "/exports/signing-key", tag = "exports", operation_id = "get_export_signing_key",
    security(("bearer" = ["export.read"])),
    responses(
        (status = 200, description = "The key that signs the tenant's exports when `sign` is true", body = ExportSigningKey),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope `export.read` missing", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn signing_key(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<ExportSigningKey>, ApiError> {
    let ctx = principal.require(Scope::ExportRead)?;
    let data_dir = state.exports.data_dir().to_path_buf();
    let tenant = ctx.tenant().to_string();
    let key = tokio::task::spawn_blocking(move || signing::tenant_key(&data_dir, &tenant))
        .await
        .map_err(|_| ApiError::Internal)?
        .map_err(|e| {
            tracing::error!(error = %e, "export signing key");
            ApiError::Internal
        })?;
    Ok(Json(ExportSigningKey {
        key_id: key.public_key().keyid(),
        public_key_pem: key.public_key().to_pem(),
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), Ok(None));
        assert_eq!(parse_range(Some("bytes=0-4"), 10), Ok(Some((0, 4))));
        assert_eq!(parse_range(Some("bytes=5-"), 10), Ok(Some((5, 9))));
        assert_eq!(parse_range(Some("bytes=-3"), 10), Ok(Some((7, 9))));
        assert_eq!(parse_range(Some("bytes=8-100"), 10), Ok(Some((8, 9))));
        assert_eq!(parse_range(Some("bytes=10-"), 10), Err(()));
        assert_eq!(parse_range(Some("bytes=5-2"), 10), Err(()));
        assert_eq!(parse_range(Some("bytes=x-2"), 10), Err(()));
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), Ok(None));
        assert_eq!(parse_range(Some("items=0-1"), 10), Ok(None));
    }
}
