//! The console's client of the Stella API: requests go to the API's own
//! router in-process (no socket, no second HTTP stack), carrying the
//! session's bearer token, so every rule the API enforces (scopes, tenant
//! isolation, validation, quotas) holds for the console unchanged.
//!
//! Answers are either the JSON the route documents or a [`Problem`].
//! What this module does not do: render, or decide what an error means
//! for a page.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use bytes::Bytes;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Largest API answer the console reads.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// One field the API refused (`errors[]` of a problem).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct FieldError {
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub hint: String,
}

/// An RFC 9457 problem as the API sends it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub detail: String,
    #[serde(default)]
    pub status: u16,
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub trace_id: String,
    #[serde(default)]
    pub errors: Vec<FieldError>,
}

impl Problem {
    /// A problem the console itself raises.
    pub fn new(status: StatusCode, code: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            detail: detail.into(),
            status: status.as_u16(),
            code: code.into(),
            ..Self::default()
        }
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The error the API gave for a field (`$.reference`, `providerId`).
    pub fn field(&self, path: &str) -> Option<&FieldError> {
        self.errors.iter().find(|e| e.path == path)
    }

    /// A problem from an error answer: its problem body, or one made from
    /// the status when the body is not a problem.
    fn from_answer(status: StatusCode, body: &[u8]) -> Self {
        match serde_json::from_slice::<Problem>(body) {
            Ok(p) if !p.title.is_empty() => p,
            _ => Problem::new(
                status,
                "UNEXPECTED_ANSWER",
                status.canonical_reason().unwrap_or("Error"),
                format!("the API answered {status} without a problem document"),
            ),
        }
    }
}

/// The API, callable in-process.
#[derive(Clone)]
pub struct Api {
    router: Router,
}

/// A request body.
pub enum Payload {
    None,
    Form(String),
    Json(Vec<u8>),
    Multipart { boundary: String, body: Vec<u8> },
}

impl Api {
    pub fn new(router: Router) -> Self {
        Self { router }
    }

    /// Sends one request; the status and the whole body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        payload: Payload,
    ) -> Result<(StatusCode, Bytes), Problem> {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(token) = bearer {
            let value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                Problem::new(
                    StatusCode::UNAUTHORIZED,
                    "UNAUTHORIZED",
                    "Unauthorized",
                    "the session's token is not usable",
                )
            })?;
            builder = builder.header(header::AUTHORIZATION, value);
        }
        let body = match payload {
            Payload::None => Body::empty(),
            Payload::Form(s) => {
                builder = builder.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Body::from(s)
            }
            Payload::Json(b) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Body::from(b)
            }
            Payload::Multipart { boundary, body } => {
                builder = builder.header(
                    header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={boundary}"),
                );
                Body::from(body)
            }
        };
        let request = builder
            .body(body)
            .map_err(|_| internal("bad request path"))?;
        let mut router = self.router.clone();
        let response = tower_service::Service::call(&mut router, request)
            .await
            .map_err(|_| internal("the API did not answer"))?;
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), MAX_ANSWER_BYTES)
            .await
            .map_err(|_| internal("the API answer could not be read"))?;
        Ok((status, bytes))
    }

    /// Sends a GET and hands back the API's answer unread (status, headers,
    /// streaming body): for answers the console relays as they come (a
    /// download with `Range`, a server-sent event stream). `extra` headers
    /// are passed on as given.
    pub async fn forward(
        &self,
        path: &str,
        bearer: &str,
        extra: &[(header::HeaderName, HeaderValue)],
    ) -> Result<axum::response::Response, Problem> {
        let value = HeaderValue::from_str(&format!("Bearer {bearer}")).map_err(|_| {
            Problem::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "Unauthorized",
                "the session's token is not usable",
            )
        })?;
        let mut builder = Request::builder()
            .method(Method::GET)
            .uri(path)
            .header(header::AUTHORIZATION, value);
        for (name, v) in extra {
            builder = builder.header(name, v);
        }
        let request = builder
            .body(Body::empty())
            .map_err(|_| internal("bad request path"))?;
        let mut router = self.router.clone();
        tower_service::Service::call(&mut router, request)
            .await
            .map_err(|_| internal("the API did not answer"))
    }

    /// The problem of an error answer obtained with [`Api::forward`].
    pub async fn problem_of(response: axum::response::Response) -> Problem {
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), MAX_ANSWER_BYTES)
            .await
            .unwrap_or_default();
        Problem::from_answer(status, &body)
    }

    /// Sends a request and reads a JSON answer; any error status is a problem.
    pub async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        payload: Payload,
    ) -> Result<T, Problem> {
        let (status, body) = self.send(method, path, bearer, payload).await?;
        if !status.is_success() {
            return Err(Problem::from_answer(status, &body));
        }
        serde_json::from_slice(&body).map_err(|e| {
            tracing::warn!(error = %e, path, "unexpected API answer");
            internal("the API answer was not the expected JSON")
        })
    }

    /// Sends a request whose success has no body.
    pub async fn empty(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
    ) -> Result<(), Problem> {
        let (status, body) = self.send(method, path, bearer, Payload::None).await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(Problem::from_answer(status, &body))
        }
    }
}

fn internal(detail: &str) -> Problem {
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "CONSOLE_INTERNAL",
        "Internal error",
        detail,
    )
}

/// Percent-encodes one path segment (everything but unreserved characters
/// and `:`), so user input can never add a path segment or a query.
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Form-encodes `pairs` (`application/x-www-form-urlencoded`).
pub fn form(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        let mut out = String::new();
        for b in s.bytes() {
            match b {
                b' ' => out.push('+'),
                b if b.is_ascii_alphanumeric() || b"-._~".contains(&b) => out.push(char::from(b)),
                b => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cannot_escape() {
        assert_eq!(segment("excititor:oci-openvex"), "excititor:oci-openvex");
        assert_eq!(segment("../a/b?c#d"), "..%2Fa%2Fb%3Fc%23d");
        assert_eq!(form(&[("a b", "c&d=é")]), "a+b=c%26d%3D%C3%A9");
    }

    #[test]
    fn non_problem_errors_become_problems() {
        let p = Problem::from_answer(StatusCode::BAD_GATEWAY, b"<html>");
        assert_eq!(p.status, 502);
        assert!(!p.title.is_empty() && !p.detail.is_empty());
        let p = Problem::from_answer(
            StatusCode::CONFLICT,
            br#"{"title":"Artifact in use","detail":"d","status":409,"code":"ARTIFACT_IN_USE"}"#,
        );
        assert_eq!(p.code, "ARTIFACT_IN_USE");
    }
}
