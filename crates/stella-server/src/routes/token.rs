//! `POST /connect/token`: OAuth 2.0 client-credentials grant, form-encoded.

use axum::Json;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::TokenResponse;
use crate::error::{ApiError, FieldError, Problem};
use crate::state::AppState;

/// Form fields of the token request.
#[derive(Deserialize, ToSchema)]
pub struct TokenRequest {
    /// Must be `client_credentials`.
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Space-separated subset of the client's scopes; all of them if absent.
    pub scope: Option<String>,
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRequest")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

pub fn form_rejection(r: FormRejection) -> ApiError {
    match r {
        FormRejection::InvalidFormContentType(_) => ApiError::UnsupportedMediaType(
            "expected Content-Type: application/x-www-form-urlencoded".into(),
        ),
        other => ApiError::BadRequest {
            code: "INVALID_REQUEST",
            detail: other.body_text(),
        },
    }
}

/// Exchange client credentials for an access token.
#[utoipa::path(
    post,
    path = "/connect/token",
    tag = "auth",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "An ES256 access token", body = TokenResponse),
        (status = 400, description = "Missing field, wrong grant type or scope", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong client id or secret, or revoked client", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not form-encoded", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn token(
    State(state): State<AppState>,
    form: Result<Form<TokenRequest>, FormRejection>,
) -> Result<Json<TokenResponse>, ApiError> {
    let Form(req) = form.map_err(form_rejection)?;
    let mut missing = Vec::new();
    for (name, value) in [
        ("grant_type", &req.grant_type),
        ("client_id", &req.client_id),
        ("client_secret", &req.client_secret),
    ] {
        if value.as_deref().is_none_or(str::is_empty) {
            missing.push(FieldError::new(
                &format!("$.{name}"),
                "REQUIRED",
                format!("`{name}` is required"),
            ));
        }
    }
    if !missing.is_empty() {
        return Err(ApiError::Validation(missing));
    }
    if req.grant_type.as_deref() != Some("client_credentials") {
        return Err(ApiError::BadRequest {
            code: "UNSUPPORTED_GRANT_TYPE",
            detail: "only grant_type=client_credentials is supported".into(),
        });
    }
    let response = state
        .authority
        .issue(
            req.client_id.as_deref().unwrap_or_default(),
            req.client_secret.as_deref().unwrap_or_default(),
            req.scope.as_deref(),
        )
        .await?;
    Ok(Json(response))
}
