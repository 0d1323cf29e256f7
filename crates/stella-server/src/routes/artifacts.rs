//! Provider artifact store (seed 002 OCI-CFG-001) under
//! `/excititor/providers/{providerId}/artifacts`. Uploads stream: the
//! request body reaches the multipart parser one network chunk at a time
//! ([`OneChunkAtATime`]), the payload is hashed and counted chunk by chunk,
//! held in memory up to [`IN_MEMORY_UPLOAD_BYTES`] and spilled into an
//! anonymous temp file past that, and refused with 413 as soon as it passes
//! the cap; only then is it inserted. A few uploads at a time
//! (`upload_permits`) are read and inserted; the rest wait before their
//! first body byte. Metadata routes never return the payload.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Json;
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use stella_store::{
    ArtifactMeta, ArtifactPayload, ArtifactQuota, ArtifactRepository, DeleteOutcome, NewArtifact,
};

use crate::auth::{Principal, Scope};
use crate::error::{ApiError, FieldError, Problem};
use crate::state::AppState;

/// Artifact metadata (never the payload).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    #[schema(format = "uuid")]
    pub artifact_id: String,
    pub provider_id: String,
    /// Lower-case hex SHA-256 of the payload.
    pub sha256: String,
    pub size_bytes: u64,
    pub mime_type: String,
    /// RFC 3339 UTC.
    pub staged_at: String,
    /// Subject (client id) of the token that staged it.
    pub staged_by: String,
}

impl From<ArtifactMeta> for Artifact {
    fn from(m: ArtifactMeta) -> Self {
        Self {
            artifact_id: m.artifact_id.to_string(),
            provider_id: m.provider_id,
            sha256: m.sha256,
            size_bytes: m.size_bytes,
            mime_type: m.mime_type,
            staged_at: m.staged_at,
            staged_by: m.staged_by,
        }
    }
}

/// One page of artifacts, oldest first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactPage {
    pub items: Vec<Artifact>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The multipart upload form.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The artifact payload.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// Media type to record; defaults to the file part's Content-Type.
    #[schema(rename = "mimeType")]
    mime_type: Option<String>,
}

/// Path parameters naming a provider (OpenAPI only; handlers validate
/// with [`validate_provider_id`]).
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code, non_snake_case)]
pub struct ProviderPath {
    /// Provider id: 1-128 of `A-Z a-z 0-9 . _ : -`, no leading `.`, no `..`.
    #[param(
        pattern = r"^[A-Za-z0-9_:-]+(\.[A-Za-z0-9_:-]+)*\.?$",
        max_length = 128
    )]
    providerId: String,
}

/// Path parameters naming one artifact (OpenAPI only).
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code, non_snake_case)]
pub struct ArtifactPath {
    /// Provider id: 1-128 of `A-Z a-z 0-9 . _ : -`, no leading `.`, no `..`.
    #[param(
        pattern = r"^[A-Za-z0-9_:-]+(\.[A-Za-z0-9_:-]+)*\.?$",
        max_length = 128
    )]
    providerId: String,
    /// Artifact id (UUID).
    #[param(format = "uuid")]
    artifactId: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1–500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

const MAX_MIME_LEN: usize = 255;

/// Provider ids: 1–128 of `A-Z a-z 0-9 . _ : -`, not starting with `.`,
/// no `..`. So no `/`, NUL or path traversal can reach any later use.
pub fn validate_provider_id(id: &str) -> Result<(), ApiError> {
    let ok_chars = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    let valid =
        !id.is_empty() && id.len() <= 128 && ok_chars && !id.starts_with('.') && !id.contains("..");
    if valid {
        Ok(())
    } else {
        Err(ApiError::Validation(vec![FieldError::new(
            "providerId",
            "INVALID_PROVIDER_ID",
            "provider ids are 1-128 characters of A-Z a-z 0-9 . _ : - without `..` or a leading `.`",
        )]))
    }
}

fn parse_artifact_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| {
        ApiError::Validation(vec![FieldError::new(
            "artifactId",
            "INVALID_UUID",
            "artifactId must be a UUID",
        )])
    })
}

fn path_rejection(r: PathRejection) -> ApiError {
    ApiError::BadRequest {
        code: "INVALID_PATH",
        detail: r.body_text(),
    }
}

fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge("the request body is larger than the upload limit".into())
    } else {
        ApiError::BadRequest {
            code: "MALFORMED_MULTIPART",
            detail: e.body_text(),
        }
    }
}

fn valid_mime(m: &str) -> bool {
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    let essence = m.split(';').next().unwrap_or_default().trim();
    let printable = m.bytes().all(|b| (0x20..0x7f).contains(&b));
    m.len() <= MAX_MIME_LEN
        && printable
        && essence
            .split_once('/')
            .is_some_and(|(t, s)| token(t) && token(s))
}

/// A body stream that hands out one chunk per poll: after each chunk it
/// answers `Pending` once (and wakes its task at once). The multipart
/// parser (multer) copies everything a stream has ready into its buffer
/// before it yields anything, so without this a fast client's whole body
/// (up to the cap) sat in memory per upload; with it the parser holds
/// about one network read (at most hyper's buffer, 256 KiB).
pub struct OneChunkAtATime<S> {
    inner: S,
    just_yielded: bool,
}

impl<S> OneChunkAtATime<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            just_yielded: false,
        }
    }
}

impl<S: Stream + Unpin> Stream for OneChunkAtATime<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        if self.just_yielded {
            self.just_yielded = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let item = std::task::ready!(Pin::new(&mut self.inner).poll_next(cx));
        self.just_yielded = item.is_some();
        Poll::Ready(item)
    }
}

/// The multipart form of `request`, its body fed one chunk at a time.
async fn multipart_of(request: Request, state: &AppState) -> Result<Multipart, ApiError> {
    let request = request
        .map(|body| axum::body::Body::from_stream(OneChunkAtATime::new(body.into_data_stream())));
    Multipart::from_request(request, state).await.map_err(|_| {
        ApiError::UnsupportedMediaType(
            "expected Content-Type: multipart/form-data with a boundary".into(),
        )
    })
}

/// Uploads up to this size are staged in memory; a larger one spills to an
/// anonymous temp file once it passes it. Small uploads (the common case)
/// then cost no file creation and no blocking-pool hops for writing,
/// flushing and reading back, while memory stays bounded: at most
/// `CONCURRENT_UPLOADS` uploads are read at once, each holding at most
/// this much.
pub const IN_MEMORY_UPLOAD_BYTES: usize = 64 * 1024;

/// A payload staged while it streamed in, its size and digest checked.
struct Staged {
    payload: ArtifactPayload,
    sha256: String,
}

async fn stage_upload(
    field: &mut Field<'_>,
    cap: u64,
    tmp_dir: &std::path::Path,
) -> Result<Staged, ApiError> {
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let mut memory: Vec<u8> = Vec::new();
    let mut file: Option<tokio::fs::File> = None;
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        size = size.saturating_add(chunk.len() as u64);
        if size > cap {
            return Err(ApiError::PayloadTooLarge(format!(
                "the artifact is larger than the {cap}-byte limit"
            )));
        }
        hasher.update(&chunk);
        if file.is_none() && memory.len() + chunk.len() <= IN_MEMORY_UPLOAD_BYTES {
            memory.extend_from_slice(&chunk);
            continue;
        }
        let spilled = match &mut file {
            Some(f) => f,
            None => {
                let mut f = temp_file(tmp_dir)?;
                write_temp(&mut f, &std::mem::take(&mut memory)).await?;
                file.insert(f)
            }
        };
        write_temp(spilled, &chunk).await?;
    }
    let payload = match file {
        None => ArtifactPayload::Bytes(memory),
        Some(mut f) => {
            // tokio's File finishes a write in the background: without the
            // flush a last write that failed (no space left) would go
            // unnoticed and leave the file shorter than `size`.
            f.flush().await.map_err(temp_write_failed)?;
            ArtifactPayload::File { file: f, len: size }
        }
    };
    Ok(Staged {
        payload,
        sha256: hex::encode(hasher.finalize()),
    })
}

fn temp_file(tmp_dir: &std::path::Path) -> Result<tokio::fs::File, ApiError> {
    let std_file = tempfile::tempfile_in(tmp_dir).map_err(|e| {
        tracing::error!(error = %e, "cannot create upload temp file");
        ApiError::from_io(&e)
    })?;
    Ok(tokio::fs::File::from_std(std_file))
}

async fn write_temp(file: &mut tokio::fs::File, bytes: &[u8]) -> Result<(), ApiError> {
    file.write_all(bytes).await.map_err(temp_write_failed)
}

fn temp_write_failed(e: std::io::Error) -> ApiError {
    tracing::error!(error = %e, "writing upload temp file failed");
    ApiError::from_io(&e)
}

async fn read_text(mut field: Field<'_>, max: usize) -> Result<String, ApiError> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        buf.extend_from_slice(&chunk);
        if buf.len() > max {
            return Err(invalid_mime());
        }
    }
    String::from_utf8(buf).map_err(|_| invalid_mime())
}

fn invalid_mime() -> ApiError {
    ApiError::Validation(vec![FieldError::new(
        "$.mimeType",
        "INVALID_MIME_TYPE",
        "mimeType must be a media type such as application/json",
    )])
}

/// Stage an artifact for a provider (multipart: part `file`, optional `mimeType`).
#[utoipa::path(post, path = "/excititor/providers/{providerId}/artifacts", tag = "artifacts",
    params(ProviderPath),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    security(("bearer" = ["vex.admin"])),
    responses(
        (status = 201, description = "Staged", body = Artifact),
        (status = 400, description = "Malformed multipart, missing `file`, bad provider id or mimeType", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope `vex.admin` missing", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Over the size cap, or `QUOTA_EXCEEDED`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not multipart/form-data", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unreachable (`SERVICE_UNAVAILABLE`)", body = Problem, content_type = "application/problem+json"),
        (status = 507, description = "No space left for the upload (`INSUFFICIENT_STORAGE`); nothing was staged", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn upload(
    State(state): State<AppState>,
    principal: Principal,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<(StatusCode, HeaderMap, Json<Artifact>), ApiError> {
    let ctx = principal.require(Scope::VexAdmin)?;
    let Path(provider_id) = path.map_err(path_rejection)?;
    validate_provider_id(&provider_id)?;
    // Held from the first body byte until the insert is done: only a few
    // uploads are read (and hold buffers and a payload chunk) at once; the
    // others' bodies wait in the kernel's socket buffers.
    let _permit = state
        .upload_permits
        .acquire()
        .await
        .map_err(|_| ApiError::Internal)?;
    let mut multipart = multipart_of(request, &state).await?;
    let tmp_dir = state.config.data_dir.join("tmp");
    let mut staged: Option<Staged> = None;
    let mut file_type: Option<String> = None;
    let mut mime_type: Option<String> = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        match field.name().unwrap_or_default() {
            "file" if staged.is_none() => {
                file_type = field.content_type().map(str::to_string);
                staged = Some(
                    stage_upload(&mut field, state.config.artifact_max_bytes, &tmp_dir).await?,
                );
            }
            "mimeType" if mime_type.is_none() => {
                mime_type = Some(read_text(field, MAX_MIME_LEN).await?)
            }
            other => {
                let path = format!("$.{other}");
                return Err(ApiError::Validation(vec![FieldError::new(
                    &path,
                    "UNEXPECTED_PART",
                    format!("unexpected or repeated multipart part `{other}`"),
                )]));
            }
        }
    }
    let Some(staged) = staged else {
        return Err(ApiError::Validation(vec![FieldError::new(
            "$.file",
            "REQUIRED",
            "the multipart part `file` is required",
        )]));
    };
    let mime = mime_type
        .or(file_type)
        .unwrap_or_else(|| "application/octet-stream".into());
    if !valid_mime(&mime) {
        return Err(invalid_mime());
    }
    // A spilled payload streams from its temp file into the store, one
    // chunk at a time.
    let quota = ArtifactQuota {
        max_count: state.config.quota_max_count,
        max_bytes: state.config.quota_max_bytes,
    };
    let new = NewArtifact {
        provider_id,
        mime_type: mime,
        sha256: staged.sha256,
        payload: staged.payload,
    };
    let meta = state.store.insert_artifact(&ctx, new, quota).await?;
    let mut headers = HeaderMap::new();
    let location = format!(
        "/excititor/providers/{}/artifacts/{}",
        meta.provider_id, meta.artifact_id
    );
    if let Ok(v) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, v);
    }
    Ok((StatusCode::CREATED, headers, Json(meta.into())))
}

/// List a provider's staged artifacts (metadata), oldest first.
#[utoipa::path(get, path = "/excititor/providers/{providerId}/artifacts", tag = "artifacts",
    params(ProviderPath, ListParams),
    security(("bearer" = ["vex.read"])),
    responses(
        (status = 200, description = "A page of metadata", body = ArtifactPage),
        (status = 400, description = "Bad provider id, limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope `vex.read` missing", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unreachable (`SERVICE_UNAVAILABLE`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<ArtifactPage>, ApiError> {
    let ctx = principal.require(Scope::VexRead)?;
    let Path(provider_id) = path.map_err(path_rejection)?;
    validate_provider_id(&provider_id)?;
    let Query(params) = query.map_err(super::bad_query)?;
    let limit = super::page_limit(params.limit)?;
    let after = super::uuid_cursor(params.cursor.as_deref())?;
    let items = state
        .store
        .list_artifacts(&ctx, &provider_id, after, limit)
        .await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|m| m.artifact_id.to_string()))
        .flatten();
    Ok(Json(ArtifactPage {
        items: items.into_iter().map(Artifact::from).collect(),
        next_cursor,
    }))
}

/// One artifact's metadata (never the payload).
#[utoipa::path(get, path = "/excititor/providers/{providerId}/artifacts/{artifactId}", tag = "artifacts",
    params(ArtifactPath),
    security(("bearer" = ["vex.read"])),
    responses(
        (status = 200, description = "Metadata", body = Artifact),
        (status = 400, description = "Bad provider id or artifact id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope `vex.read` missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such artifact in the caller's tenant", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unreachable (`SERVICE_UNAVAILABLE`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Artifact>, ApiError> {
    let ctx = principal.require(Scope::VexRead)?;
    let Path((provider_id, raw_id)) = path.map_err(path_rejection)?;
    validate_provider_id(&provider_id)?;
    let id = parse_artifact_id(&raw_id)?;
    let meta = state.store.get_artifact(&ctx, &provider_id, id).await?;
    meta.map(|m| Json(m.into()))
        .ok_or_else(|| ApiError::NotFound("artifact".into()))
}

/// Delete an artifact unless a provider configuration references it.
#[utoipa::path(delete, path = "/excititor/providers/{providerId}/artifacts/{artifactId}", tag = "artifacts",
    params(ArtifactPath),
    security(("bearer" = ["vex.admin"])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Bad provider id or artifact id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope `vex.admin` missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such artifact in the caller's tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`ARTIFACT_IN_USE`: referenced by a provider configuration", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unreachable (`SERVICE_UNAVAILABLE`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let ctx = principal.require(Scope::VexAdmin)?;
    let Path((provider_id, raw_id)) = path.map_err(path_rejection)?;
    validate_provider_id(&provider_id)?;
    let id = parse_artifact_id(&raw_id)?;
    match state.store.delete_artifact(&ctx, &provider_id, id).await? {
        DeleteOutcome::Deleted => Ok(StatusCode::NO_CONTENT),
        DeleteOutcome::NotFound => Err(ApiError::NotFound("artifact".into())),
        DeleteOutcome::InUse => Err(ApiError::ArtifactInUse),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_ids() {
        for ok in ["excititor:oci-openvex", "a", "p.1_x-y"] {
            assert!(validate_provider_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a/b",
            "..",
            "a..b",
            ".hidden",
            "a\0b",
            "a b",
            &"x".repeat(129),
        ] {
            assert!(validate_provider_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_parser_gets_one_chunk_per_poll() {
        use futures_util::StreamExt;
        let chunks = (0..3).map(|i| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![i; 4])));
        let mut stream = OneChunkAtATime::new(futures_util::stream::iter(chunks));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        // A consumer that drains everything ready (as multer does) gets
        // one chunk, then Pending, then the next.
        let mut seen = Vec::new();
        for _ in 0..7 {
            match stream.poll_next_unpin(&mut cx) {
                Poll::Ready(Some(Ok(chunk))) => seen.push(Some(chunk.len())),
                Poll::Ready(Some(Err(_))) => unreachable!(),
                Poll::Ready(None) => seen.push(None),
                Poll::Pending => seen.push(Some(0)),
            }
        }
        let expected = [Some(4), Some(0), Some(4), Some(0), Some(4), Some(0), None];
        assert_eq!(seen, expected);
    }

    #[test]
    fn mime_types() {
        assert!(valid_mime("application/json"));
        assert!(valid_mime("text/plain; charset=utf-8"));
        for bad in ["", "json", "a/", "/b", "a/b\n", "a b/c"] {
            assert!(!valid_mime(bad), "{bad:?}");
        }
    }
}
