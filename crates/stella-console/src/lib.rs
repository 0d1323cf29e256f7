//! The Stella web console, served by `stella serve` under `/console/`.
//!
//! Server-rendered HTML (maud: every value is escaped as text unless a
//! template says otherwise, and none does) with a little progressive
//! JavaScript; the CSS and the script are embedded in the binary, so the
//! console works offline with no separate web server and no build step.
//! Pages work without JavaScript; the script only adds confirmations,
//! busy states, in-place list editing and an export's live progress.
//!
//! The console is a client of the Stella API: [`router`] takes the API's
//! router and calls it in-process with the signed-in user's bearer token
//! ([`api`]), so scopes, tenant isolation and validation are the API's.
//! Sessions ([`session`]) keep the token on the server; the browser holds
//! only a random id in an `HttpOnly`, `SameSite=Strict` cookie. Every
//! state-changing request carries the session's CSRF token and, when the
//! browser sends `Origin`, must come from the same origin. Every response
//! carries a Content-Security-Policy without inline scripts or styles.
//!
//! Not here: anything the API does not offer. The console touches the
//! database only for its own sessions table ([`session`]), through
//! `stella-store`.

pub mod api;
mod assets;
mod layout;
mod pages;
pub mod session;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::api::{Api, Problem};
use crate::layout::{Page, see_other};
use crate::session::{SESSION_COOKIE, Session, Sessions};

/// How the server runs the console.
#[derive(Clone, Debug)]
pub struct ConsoleOptions {
    /// Mark cookies `Secure` (the server is reached over TLS).
    pub secure_cookies: bool,
    /// The API's artifact size cap; the console reads no more of an upload.
    pub max_upload_bytes: u64,
    /// Where sessions are kept across restarts (`None`: in memory).
    pub session_store: Option<stella_store::Store>,
    /// Reverse proxies (by peer address) whose `X-Forwarded-Proto: https`
    /// is believed: cookies sent through them are marked `Secure`.
    pub trusted_proxies: Vec<IpAddr>,
}

/// Shared by every console handler.
#[derive(Clone)]
pub(crate) struct Console {
    pub api: Api,
    pub sessions: Arc<Sessions>,
    pub options: Arc<ConsoleOptions>,
}

/// Multipart framing allowed on top of the upload cap.
const MULTIPART_OVERHEAD: u64 = 64 * 1024;

/// The console's routes, all under `/console` (merge them into the
/// server's router). `api` is the API's router (with its state), which the
/// console calls in-process.
pub fn router<S: Clone + Send + Sync + 'static>(api: Router, options: ConsoleOptions) -> Router<S> {
    Router::new()
        .route("/console/", get(|| async { layout::see_other("") }))
        .nest("/console", pages(api, options))
}

fn pages<S: Clone + Send + Sync + 'static>(api: Router, options: ConsoleOptions) -> Router<S> {
    let upload_limit = usize::try_from(options.max_upload_bytes.saturating_add(MULTIPART_OVERHEAD))
        .unwrap_or(usize::MAX);
    let state = Console {
        api: Api::new(api),
        sessions: Arc::new(Sessions::new(options.session_store.clone())),
        options: Arc::new(options),
    };
    Router::new()
        .route("/", get(home))
        .route(
            "/sign-in",
            get(pages::signin::form).post(pages::signin::submit),
        )
        .route("/sign-out", post(pages::signin::sign_out))
        .route("/providers", get(pages::providers::catalog))
        .route("/providers/open", get(pages::providers::open))
        .route("/providers/{providerId}", get(pages::providers::page))
        .route(
            "/providers/{providerId}/artifacts",
            post(pages::providers::upload).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route(
            "/providers/{providerId}/artifacts/{artifactId}/delete",
            post(pages::providers::delete),
        )
        .route(
            "/providers/{providerId}/config",
            get(pages::config::page).post(pages::config::save),
        )
        .route("/providers/{providerId}/status", get(pages::status::page))
        .route("/providers/{providerId}/run", post(pages::status::run))
        .route("/vex", get(pages::vex::page))
        .route("/check", get(pages::check::form).post(pages::check::run))
        .route(
            "/exports",
            get(pages::exports::list).post(pages::exports::create),
        )
        .route("/exports/{exportId}", get(pages::exports::detail))
        .route("/exports/{exportId}/events", get(pages::exports::events))
        .route(
            "/exports/{exportId}/download",
            get(pages::exports::download),
        )
        .route("/exports/{exportId}/delete", post(pages::exports::delete))
        .route("/static/{file}", get(assets::serve))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(same_origin))
        .layer(axum::middleware::map_response(security_headers))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            secure_behind_proxy,
        ))
        .with_state(state)
}

async fn home(session: Option<Signed>) -> Response {
    match session {
        Some(_) => see_other("/providers"),
        None => see_other("/sign-in"),
    }
}

async fn not_found(session: Option<Signed>) -> Response {
    let problem = Problem::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "Not found",
        "there is no console page at this address",
    );
    Page {
        title: "Not found",
        section: "",
        session: session.as_ref().map(|s| &s.0),
        problem: Some(&problem),
        subnav: None,
        body: maud::html! {},
    }
    .respond(StatusCode::NOT_FOUND)
}

/// The signed-in user of a request. Without a live session a page load is
/// sent to the sign-in page and any other request is refused (401).
pub(crate) struct Signed(pub Session);

impl FromRequestParts<Console> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Console) -> Result<Self, Response> {
        let session = match session::cookie(&parts.headers, SESSION_COOKIE) {
            Some(id) => state.sessions.get(&id).await,
            None => None,
        };
        match session {
            Some(s) => Ok(Signed(s)),
            None if parts.method == Method::GET || parts.method == Method::HEAD => {
                Err(see_other("/sign-in"))
            }
            None => Err(refused(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "Not signed in",
                "this action needs a session; sign in again",
            )),
        }
    }
}

impl axum::extract::OptionalFromRequestParts<Console> for Signed {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Console,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(
            <Signed as FromRequestParts<Console>>::from_request_parts(parts, state)
                .await
                .ok(),
        )
    }
}

/// A page that only says why a request was refused.
pub(crate) fn refused(status: StatusCode, code: &str, title: &str, detail: &str) -> Response {
    let problem = Problem::new(status, code, title, detail);
    Page {
        title,
        section: "",
        session: None,
        subnav: None,
        problem: Some(&problem),
        body: maud::html! {
            p { a href={ (layout::BASE) "/sign-in" } { "Sign in" } }
        },
    }
    .respond(status)
}

impl Signed {
    /// The refusal of a state-changing request whose form token is not the
    /// session's CSRF token (`None`: the token is right).
    pub fn csrf_refusal(&self, token: Option<&str>) -> Option<Response> {
        match token {
            Some(t) if session::same_secret(t, &self.0.csrf) => None,
            _ => Some(refused(
                StatusCode::FORBIDDEN,
                "CSRF_FAILED",
                "Request refused",
                "the form's CSRF token is missing or does not belong to this session; reload the page and try again",
            )),
        }
    }
}

/// Refuses a cross-origin state-changing request (the browser's `Origin`
/// must name this host). Requests without `Origin` still need the CSRF
/// token.
async fn same_origin(request: Request, next: Next) -> Response {
    let changes_state = !matches!(*request.method(), Method::GET | Method::HEAD);
    if changes_state && !origin_matches(request.headers()) {
        return refused(
            StatusCode::FORBIDDEN,
            "CROSS_ORIGIN",
            "Request refused",
            "the request came from another site",
        );
    }
    next.run(request).await
}

fn origin_matches(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    origin_host.is_some_and(|h| !host.is_empty() && h == host)
}

/// Marks the console's cookies `Secure` when the request reached a trusted
/// reverse proxy over TLS: the peer is one of
/// [`ConsoleOptions::trusted_proxies`] and says `X-Forwarded-Proto: https`.
/// From any other peer the header is ignored (a client could send it).
async fn secure_behind_proxy(
    axum::extract::State(console): axum::extract::State<Console>,
    request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let over_tls = forwarded_https(request.headers(), peer, &console.options.trusted_proxies);
    let mut response = next.run(request).await;
    if over_tls && !console.options.secure_cookies {
        mark_cookies_secure(response.headers_mut());
    }
    response
}

/// Whether a trusted proxy forwarded this request from an HTTPS client.
fn forwarded_https(headers: &HeaderMap, peer: Option<IpAddr>, trusted: &[IpAddr]) -> bool {
    let trusted_peer = peer.is_some_and(|p| trusted.contains(&p.to_canonical()));
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        // The proxy nearest to us appends last.
        .and_then(|v| v.rsplit(',').next())
        .map(str::trim);
    trusted_peer && proto.is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

fn mark_cookies_secure(headers: &mut HeaderMap) {
    let cookies: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    if cookies.is_empty() {
        return;
    }
    headers.remove(header::SET_COOKIE);
    for c in cookies {
        let secured = match c.to_str() {
            Ok(text) if !text.contains("; Secure") => {
                HeaderValue::from_str(&format!("{text}; Secure")).unwrap_or(c)
            }
            _ => c,
        };
        headers.append(header::SET_COOKIE, secured);
    }
}

/// The Content-Security-Policy of every console response: scripts, styles
/// and forms from this origin only, no inline script or style, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    for (name, value) in [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("x-frame-options", "DENY"),
        ("cross-origin-opener-policy", "same-origin"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    response
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        refused(self.status_code(), &self.code, &self.title, &self.detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let mut h = HeaderMap::new();
        assert!(origin_matches(&h), "no Origin: left to the CSRF token");
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(origin_matches(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://evil.test"));
        assert!(!origin_matches(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!origin_matches(&h));
    }

    #[test]
    fn forwarded_https_only_from_a_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.5".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let other: IpAddr = "10.0.0.6".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(forwarded_https(&h, Some(proxy), &[proxy]));
        assert!(
            !forwarded_https(&h, Some(other), &[proxy]),
            "untrusted peer"
        );
        assert!(!forwarded_https(&h, None, &[proxy]), "no peer known");
        h.insert("x-forwarded-proto", HeaderValue::from_static("https, http"));
        assert!(
            !forwarded_https(&h, Some(proxy), &[proxy]),
            "last hop was http"
        );
        h.insert("x-forwarded-proto", HeaderValue::from_static("http"));
        assert!(!forwarded_https(&h, Some(proxy), &[proxy]));
        let mut out = HeaderMap::new();
        out.append(
            header::SET_COOKIE,
            HeaderValue::from_static("a=1; Path=/console"),
        );
        out.append(header::SET_COOKIE, HeaderValue::from_static("b=2; Secure"));
        mark_cookies_secure(&mut out);
        let all: Vec<_> = out.get_all(header::SET_COOKIE).iter().collect();
        assert_eq!(all, ["a=1; Path=/console; Secure", "b=2; Secure"]);
    }
}
