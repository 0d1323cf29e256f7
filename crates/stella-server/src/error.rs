//! The one error type of the HTTP API and its one mapping to HTTP: every
//! 4xx/5xx leaves here as `application/problem+json` (RFC 9457) with a
//! machine `code`, the request's `traceId`, and for validation failures a
//! list of `errors: [{path, code, message}]`.
//!
//! Nothing else in the crate chooses a status code for an error.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use stella_store::StoreError;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";
const PROBLEM_BASE: &str = "https://stella.dev/problems/";

tokio::task_local! {
    /// The trace id of the request being handled (set by the request
    /// middleware); problems carry it.
    pub static TRACE_ID: String;
}

/// One field that failed validation. `path` is a JSON path (`$.file`) for
/// body parts and the parameter name for path and query parameters.
#[derive(Clone, Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub code: String,
    pub message: String,
}

impl FieldError {
    pub fn new(path: &str, code: &str, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

/// An RFC 9457 problem document as Stella sends it.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// `https://stella.dev/problems/<code>`
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// W3C trace id of the request (from `traceparent` when sent).
    pub trace_id: String,
    /// Machine-readable code, e.g. `QUOTA_EXCEEDED`.
    pub code: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// Everything an API call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("the client id or secret is wrong, or the client is revoked")]
    InvalidClient,
    #[error("this call needs the `{0}` scope")]
    MissingScope(&'static str),
    #[error("{0} not found")]
    NotFound(String),
    #[error("the request has invalid fields")]
    Validation(Vec<FieldError>),
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    HeadersTooLarge(String),
    #[error("the tenant's artifact quota ({0}) would be exceeded")]
    QuotaExceeded(String),
    #[error("the artifact is referenced by a provider configuration")]
    ArtifactInUse,
    #[error("rate limit reached; retry after {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("the service cannot reach its database right now")]
    Unavailable,
    /// The keys of an external token issuer cannot be fetched.
    #[error("the keys of token issuer {0} cannot be fetched right now")]
    IssuerUnavailable(String),
    #[error("the server has no space left to store this; nothing was stored")]
    InsufficientStorage,
    #[error("internal error")]
    Internal,
    /// A registry (or other upstream) the request named failed or refused.
    #[error("{0}")]
    Upstream(String),
    /// A status produced outside our handlers (no route, wrong method,
    /// timeout, panic): mapped to a problem by the request middleware.
    #[error("{1}")]
    Status(StatusCode, String),
}

impl ApiError {
    fn status_code_title(&self) -> (StatusCode, &'static str, &'static str) {
        use ApiError::*;
        match self {
            Unauthorized(_) => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "Unauthorized"),
            InvalidClient => (StatusCode::UNAUTHORIZED, "INVALID_CLIENT", "Invalid client"),
            MissingScope(_) => (
                StatusCode::FORBIDDEN,
                "INSUFFICIENT_SCOPE",
                "Insufficient scope",
            ),
            NotFound(_) => (StatusCode::NOT_FOUND, "NOT_FOUND", "Not found"),
            Validation(_) => (
                StatusCode::BAD_REQUEST,
                "VALIDATION_FAILED",
                "Validation failed",
            ),
            BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code, "Bad request"),
            UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "Unsupported media type",
            ),
            PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                "Payload too large",
            ),
            HeadersTooLarge(_) => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "HEADERS_TOO_LARGE",
                "Request header fields too large",
            ),
            QuotaExceeded(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "QUOTA_EXCEEDED",
                "Quota exceeded",
            ),
            ArtifactInUse => (StatusCode::CONFLICT, "ARTIFACT_IN_USE", "Artifact in use"),
            RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED",
                "Too many requests",
            ),
            Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE",
                "Service unavailable",
            ),
            IssuerUnavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "ISSUER_UNAVAILABLE",
                "Service unavailable",
            ),
            InsufficientStorage => (
                StatusCode::INSUFFICIENT_STORAGE,
                "INSUFFICIENT_STORAGE",
                "Insufficient storage",
            ),
            Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "Internal error",
            ),
            Upstream(_) => (
                StatusCode::BAD_GATEWAY,
                "UPSTREAM_FAILED",
                "Upstream failed",
            ),
            Status(s, _) => status_defaults(*s),
        }
    }

    /// A local file-system failure: a full disk is 507, anything else 500.
    pub fn from_io(e: &std::io::Error) -> Self {
        if matches!(
            e.kind(),
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
        ) {
            ApiError::InsufficientStorage
        } else {
            ApiError::Internal
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status_code_title().0
    }

    /// The problem document for this error.
    pub fn problem(&self) -> Problem {
        let (status, code, title) = self.status_code_title();
        let errors = match self {
            ApiError::Validation(e) => e.clone(),
            _ => Vec::new(),
        };
        let detail = match self {
            ApiError::Validation(e) if e.len() == 1 => e.first().map(|f| f.message.clone()),
            _ => None,
        }
        .unwrap_or_else(|| self.to_string());
        Problem {
            problem_type: format!("{PROBLEM_BASE}{code}"),
            title: title.into(),
            status: status.as_u16(),
            detail,
            trace_id: TRACE_ID.try_with(Clone::clone).unwrap_or_default(),
            code: code.into(),
            errors,
        }
    }
}

fn status_defaults(s: StatusCode) -> (StatusCode, &'static str, &'static str) {
    match s {
        StatusCode::NOT_FOUND => (s, "NOT_FOUND", "Not found"),
        StatusCode::METHOD_NOT_ALLOWED => (s, "METHOD_NOT_ALLOWED", "Method not allowed"),
        StatusCode::REQUEST_TIMEOUT => (s, "REQUEST_TIMEOUT", "Request timeout"),
        StatusCode::PAYLOAD_TOO_LARGE => (s, "PAYLOAD_TOO_LARGE", "Payload too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            (s, "UNSUPPORTED_MEDIA_TYPE", "Unsupported media type")
        }
        StatusCode::UNPROCESSABLE_ENTITY => (s, "UNPROCESSABLE", "Unprocessable request"),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            (s, "HEADERS_TOO_LARGE", "Request header fields too large")
        }
        StatusCode::URI_TOO_LONG => (s, "URI_TOO_LONG", "URI too long"),
        StatusCode::RANGE_NOT_SATISFIABLE => (s, "RANGE_NOT_SATISFIABLE", "Range not satisfiable"),
        StatusCode::CONFLICT => (s, "CONFLICT", "Conflict"),
        s if s.is_server_error() => (s, "INTERNAL", "Internal error"),
        s => (s, "BAD_REQUEST", "Bad request"),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if matches!(
            self,
            ApiError::Internal | ApiError::Unavailable | ApiError::InsufficientStorage
        ) {
            tracing::warn!(error = %self, "request failed");
        }
        let problem = self.problem();
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (self.status(), body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        match &self {
            ApiError::Unauthorized(_) | ApiError::InvalidClient => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::RateLimited { retry_after } => {
                if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                    headers.insert(header::RETRY_AFTER, v);
                }
            }
            _ => {}
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::QuotaExceeded => ApiError::QuotaExceeded("count or bytes".into()),
            e if e.is_storage_full() => {
                tracing::warn!(error = %e, "database storage full");
                ApiError::InsufficientStorage
            }
            e if e.is_unstorable_text() => ApiError::BadRequest {
                code: "UNSTORABLE_TEXT",
                detail: "the request holds a NUL character, which cannot be stored".into(),
            },
            e if e.is_unavailable() => {
                tracing::warn!(error = %e, "database unavailable");
                ApiError::Unavailable
            }
            other => {
                tracing::error!(error = %other, "storage error");
                ApiError::Internal
            }
        }
    }
}
