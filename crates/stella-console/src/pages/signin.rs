//! Sign in (client credentials, or a pasted access token) and sign out.
//!
//! Client credentials go to the API's `POST /connect/token`; a pasted token
//! is checked by one authenticated API call (401 refuses it). Either way
//! the session lives until the token expires. The sign-in form carries a
//! random value that must match a cookie set with the form (login CSRF).

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use maud::html;
use serde::Deserialize;

use crate::api::{self, Payload, Problem};
use crate::layout::{BASE, Page, field_error, see_other};
use crate::session::{self, LOGIN_COOKIE, SESSION_COOKIE, Session};
use crate::{Console, Signed};

#[derive(Deserialize, Default)]
pub struct SignInQuery {
    #[serde(default)]
    out: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct SignInForm {
    #[serde(default)]
    mode: String,
    #[serde(default)]
    login: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    token: String,
}

impl std::fmt::Debug for SignInForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInForm")
            .field("mode", &self.mode)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// What the token endpoint answers (the fields the console uses).
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: i64,
}

/// The claims the console shows (the API verifies the token itself).
#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    scope: String,
    exp: i64,
}

fn claims(token: &str) -> Option<Claims> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub async fn form(
    State(console): State<Console>,
    headers: HeaderMap,
    session: Option<Signed>,
    Query(q): Query<SignInQuery>,
) -> Response {
    if session.is_some() {
        return see_other("/providers");
    }
    render(
        &console,
        &headers,
        None,
        q.out.is_some(),
        "",
        StatusCode::OK,
    )
}

fn render(
    console: &Console,
    headers: &HeaderMap,
    problem: Option<&Problem>,
    signed_out: bool,
    client_id: &str,
    status: StatusCode,
) -> Response {
    let existing = session::cookie(headers, LOGIN_COOKIE);
    let login = existing
        .clone()
        .or_else(session::random_token)
        .unwrap_or_default();
    let invalid = |path: &str| problem.and_then(|p| p.field(path)).is_some();
    let body = html! {
        @if signed_out {
            div.notice role="status" { p { "You are signed out." } }
        }
        p { "Sign in with an API client's credentials, or paste an access token. The token stays on the server; your browser keeps only a session cookie." }
        section.panel {
            h2 { "Client credentials" }
            form.stack method="post" action={ (BASE) "/sign-in" } {
                input type="hidden" name="mode" value="credentials";
                input type="hidden" name="login" value=(login);
                div {
                    label for="client_id" { "Client id" }
                    input type="text" id="client_id" name="client_id" autocomplete="username" required value=(client_id)
                        aria-invalid=[invalid("$.client_id").then_some("true")]
                        aria-describedby=[invalid("$.client_id").then_some("client_id-error")];
                    (field_error(problem, "$.client_id", "client_id-error"))
                }
                div {
                    label for="client_secret" { "Client secret" }
                    input type="password" id="client_secret" name="client_secret" autocomplete="current-password" required
                        aria-invalid=[invalid("$.client_secret").then_some("true")]
                        aria-describedby=[invalid("$.client_secret").then_some("client_secret-error")];
                    (field_error(problem, "$.client_secret", "client_secret-error"))
                }
                div {
                    label for="scope" { "Scopes (optional)" }
                    input type="text" id="scope" name="scope" aria-describedby="scope-hint";
                    p.hint id="scope-hint" { "Space-separated, e.g. " code { "vex.read vex.admin" } "; all of the client's scopes when empty." }
                }
                div { button type="submit" { "Sign in" } }
            }
        }
        section.panel {
            h2 { "Access token" }
            form.stack method="post" action={ (BASE) "/sign-in" } {
                input type="hidden" name="mode" value="token";
                input type="hidden" name="login" value=(login);
                div {
                    label for="token" { "Access token" }
                    textarea id="token" name="token" rows="4" required spellcheck="false" autocomplete="off" {}
                }
                div { button type="submit" { "Sign in with token" } }
            }
        }
    };
    let mut response = Page {
        title: "Sign in",
        section: "",
        session: None,
        problem,
        subnav: None,
        body,
    }
    .respond(status);
    if existing.is_none()
        && let Some(c) =
            session::set_cookie(LOGIN_COOKIE, &login, 600, console.options.secure_cookies)
    {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

pub async fn submit(
    State(console): State<Console>,
    headers: HeaderMap,
    form_data: Result<Form<SignInForm>, FormRejection>,
) -> Response {
    let Ok(Form(f)) = form_data else {
        let p = Problem::new(
            StatusCode::BAD_REQUEST,
            "INVALID_FORM",
            "Bad request",
            "the sign-in form could not be read",
        );
        return render(&console, &headers, Some(&p), false, "", p.status_code());
    };
    let fail = |p: Problem| {
        let status = p.status_code();
        render(
            &console,
            &headers,
            Some(&p),
            false,
            f.client_id.trim(),
            status,
        )
    };
    let expected = session::cookie(&headers, LOGIN_COOKIE);
    if !expected.is_some_and(|c| session::same_secret(&c, &f.login)) {
        return fail(Problem::new(
            StatusCode::FORBIDDEN,
            "CSRF_FAILED",
            "Request refused",
            "the sign-in form does not belong to this browser session; reload the page and sign in again",
        ));
    }
    let token = match f.mode.as_str() {
        "credentials" => match credentials(&console, &f).await {
            Ok(t) => t,
            Err(p) => return fail(p),
        },
        "token" => match pasted(&console, f.token.trim()).await {
            Ok(t) => t,
            Err(p) => return fail(p),
        },
        _ => {
            return fail(Problem::new(
                StatusCode::BAD_REQUEST,
                "INVALID_FORM",
                "Bad request",
                "unknown sign-in mode",
            ));
        }
    };
    start_session(&console, token).await
}

struct Granted {
    token: String,
    expires_at: i64,
}

async fn credentials(console: &Console, f: &SignInForm) -> Result<Granted, Problem> {
    let mut pairs = vec![
        ("grant_type", "client_credentials"),
        ("client_id", f.client_id.trim()),
        ("client_secret", f.client_secret.as_str()),
    ];
    if !f.scope.trim().is_empty() {
        pairs.push(("scope", f.scope.trim()));
    }
    let answer: TokenAnswer = console
        .api
        .json(
            Method::POST,
            "/connect/token",
            None,
            Payload::Form(api::form(&pairs)),
        )
        .await?;
    Ok(Granted {
        expires_at: session::now().saturating_add(answer.expires_in),
        token: answer.access_token,
    })
}

async fn pasted(console: &Console, token: &str) -> Result<Granted, Problem> {
    let unusable = || {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "Unauthorized",
            "the pasted text is not a Stella access token",
        )
    };
    let c = claims(token).ok_or_else(unusable)?;
    // Any authenticated call verifies the token; 403 (a scope it lacks)
    // still proves it valid, 401 does not.
    let (status, body) = console
        .api
        .send(Method::GET, "/verify/policies", Some(token), Payload::None)
        .await?;
    if status == StatusCode::UNAUTHORIZED {
        return Err(serde_json::from_slice(&body).unwrap_or_else(|_| unusable()));
    }
    Ok(Granted {
        token: token.to_string(),
        expires_at: c.exp,
    })
}

async fn start_session(console: &Console, granted: Granted) -> Response {
    let (Some(id), Some(csrf)) = (session::random_token(), session::random_token()) else {
        return Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "CONSOLE_INTERNAL",
            "Internal error",
            "no random numbers for a session id",
        )
        .into_response();
    };
    let c = claims(&granted.token);
    let session = Session {
        id: id.clone(),
        csrf,
        subject: c.as_ref().map(|c| c.sub.clone()).unwrap_or_default(),
        tenant: c.as_ref().map(|c| c.tenant.clone()).unwrap_or_default(),
        scopes: c
            .as_ref()
            .map(|c| c.scope.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default(),
        expires_at: c
            .as_ref()
            .map_or(granted.expires_at, |c| c.exp.min(granted.expires_at)),
        bearer: granted.token,
    };
    let max_age = session.expires_at.saturating_sub(session::now()).max(0);
    if console.sessions.insert(session).await.is_err() {
        return Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "SESSION_STORE_FAILED",
            "Sign-in failed",
            "the session could not be stored; try again (the server log says why)",
        )
        .into_response();
    }
    let secure = console.options.secure_cookies;
    let mut response = see_other("/providers");
    let h = response.headers_mut();
    if let Some(c) = session::set_cookie(SESSION_COOKIE, &id, max_age, secure) {
        h.append(header::SET_COOKIE, c);
    }
    if let Some(c) = session::set_cookie(LOGIN_COOKIE, "", 0, secure) {
        h.append(header::SET_COOKIE, c);
    }
    response
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf: Option<String>,
}

pub async fn sign_out(
    State(console): State<Console>,
    signed: Signed,
    form_data: Result<Form<CsrfOnly>, FormRejection>,
) -> Response {
    let token = form_data.ok().and_then(|Form(f)| f.csrf);
    if let Some(r) = signed.csrf_refusal(token.as_deref()) {
        return r;
    }
    console.sessions.remove(&signed.0.id).await;
    let mut response = see_other("/sign-in?out=1");
    if let Some(c) = session::set_cookie(SESSION_COOKIE, "", 0, console.options.secure_cookies) {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_read_from_the_payload() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"sub":"ci","tenant":"acme","scope":"vex.read","exp":5}"#);
        let c = claims(&format!("h.{payload}.s")).unwrap_or_else(|| panic!("claims"));
        assert_eq!(
            (c.sub.as_str(), c.tenant.as_str(), c.exp),
            ("ci", "acme", 5)
        );
        assert!(claims("not a token").is_none());
    }
}
