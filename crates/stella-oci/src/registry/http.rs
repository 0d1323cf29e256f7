//! Plain HTTP helpers shared by the request core ([`super::client`]) and
//! the token flow ([`super::auth`]): which repository a request is for,
//! origins, capped body reads, error bodies, and turning `reqwest` errors
//! into [`OciError`]s whose text holds no secret (no URL query, no
//! userinfo) while keeping the underlying error as `source()`.
//!
//! What this module does not do: send requests, attach auth or retry (that
//! is [`super::client`]); it depends on no other registry module, so the
//! client and auth modules can both use it without a cycle.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::{Response, StatusCode};
use url::Url;

use crate::OciError;

/// Which repository a request is for (auth scope and messages).
pub(crate) struct Target<'a> {
    pub registry: &'a str,
    pub repository: &'a str,
}

/// `scheme://host:port` of a URL (port made explicit), for comparing hosts.
pub(crate) fn origin(url: &Url) -> String {
    format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

/// `host[:port]` of a URL, for messages.
pub(crate) fn host_port(url: &Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

/// A URL without query, fragment or userinfo (upload session state,
/// pre-signed signatures, tokens), for messages.
pub(crate) fn redact(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_password(None);
    let _ = u.set_username("");
    u.to_string()
}

/// An error and its sources on one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let m = inner.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        src = inner.source();
    }
    s
}

/// Maps a `reqwest` error to a [`OciError::Timeout`] or
/// [`OciError::Transport`], prefixed by `context` (which must itself be
/// free of secrets, e.g. built with [`redact`]). The URL `reqwest` keeps
/// in its error (query included) is removed before anything is printed.
pub(crate) fn net_error(context: &str, e: reqwest::Error, hint: &str) -> OciError {
    net_error_in(context, e, hint, None)
}

/// [`net_error`] for a request that started at `started` with `idle` and
/// `deadline` as its limits, so a timeout says which one passed.
pub(crate) fn net_error_timed(
    context: &str,
    e: reqwest::Error,
    hint: &str,
    started: Instant,
    idle: Duration,
    deadline: Duration,
) -> OciError {
    let phase = if started.elapsed() >= deadline {
        format!(
            "timed out: the request deadline of {:.1}s passed",
            deadline.as_secs_f64()
        )
    } else {
        format!(
            "timed out: nothing received for {:.1}s (idle timeout)",
            idle.as_secs_f64()
        )
    };
    net_error_in(context, e, hint, Some(phase))
}

fn net_error_in(context: &str, e: reqwest::Error, hint: &str, phase: Option<String>) -> OciError {
    let e = e.without_url();
    let detail = chain(&e);
    if e.is_timeout() {
        let phase = match phase {
            _ if e.is_connect() => "connecting timed out".to_string(),
            Some(p) => p,
            None => "timed out (nothing received within the idle timeout, or the request \
                     deadline passed)"
                .to_string(),
        };
        return OciError::Timeout {
            message: format!("{context}: {phase}: {detail}"),
            source: Some(Box::new(e)),
        };
    }
    let certificate = is_certificate_problem(&detail);
    OciError::Transport {
        message: format!("{context}: {detail}{hint}"),
        transient: !certificate,
        source: Some(Box::new(e)),
    }
}

/// TLS problems that trying again will not fix.
pub(crate) fn is_certificate_problem(detail: &str) -> bool {
    [
        "UnknownIssuer",
        "invalid peer certificate",
        "certificate",
        "InvalidContentType",
    ]
    .iter()
    .any(|m| detail.contains(m))
}

/// Reads a whole body, refusing more than `cap` bytes without allocating
/// them (checks `Content-Length` first, then counts as it streams).
pub(crate) async fn read_capped(resp: Response, cap: u64, what: &str) -> Result<Vec<u8>, OciError> {
    if let Some(len) = resp.content_length()
        && len > cap
    {
        return Err(OciError::Protocol(format!(
            "{what} is {len} bytes, over the {cap}-byte limit"
        )));
    }
    let mut out = Vec::with_capacity(resp.content_length().unwrap_or(0).min(cap) as usize);
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| net_error(&format!("reading {what}"), e, ""))?;
        if out.len() as u64 + chunk.len() as u64 > cap {
            return Err(OciError::Protocol(format!(
                "{what} is over the {cap}-byte limit"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// How long reading an error body may take: error bodies are small, and a
/// server trickling one must not hold the caller up.
const ERROR_BODY_DEADLINE: Duration = Duration::from_secs(10);

/// The registry's error body, summarised (`CODE: message; ...`), capped.
pub(crate) async fn read_error_body(resp: Response) -> Option<String> {
    let read = read_capped(
        resp,
        stella_types::limits::MAX_ERROR_BODY_BYTES,
        "error body",
    );
    let bytes = tokio::time::timeout(ERROR_BODY_DEADLINE, read)
        .await
        .ok()?
        .ok()?;
    summarize_error_body(&bytes)
}

/// Error codes in an OCI error body (`{"errors":[{"code":..}]}`).
pub(crate) fn error_codes(bytes: &[u8]) -> Vec<String> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Vec::new();
    };
    v.get("errors")
        .and_then(|e| e.as_array())
        .map(|errs| {
            errs.iter()
                .filter_map(|e| e.get("code").and_then(|c| c.as_str()).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn summarize_error_body(bytes: &[u8]) -> Option<String> {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes)
        && let Some(errs) = v.get("errors").and_then(|e| e.as_array())
    {
        let parts: Vec<String> = errs
            .iter()
            .take(5)
            .map(|e| {
                let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("UNKNOWN");
                let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
                clean(&format!("{code}: {msg}"))
            })
            .collect();
        if !parts.is_empty() {
            return Some(parts.join("; "));
        }
    }
    let text = String::from_utf8_lossy(bytes);
    let text = clean(text.trim());
    if text.is_empty() { None } else { Some(text) }
}

/// One line, printable, at most 300 characters.
pub(crate) fn clean(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    if s.chars().count() > 300 {
        out.push('…');
    }
    out
}

/// An error for an unexpected answer to `what` (`404` → NotFound naming
/// `what`, 5xx → [`OciError::Unavailable`]).
pub(crate) async fn unexpected(resp: Response, registry: &str, what: &str) -> OciError {
    let status = resp.status();
    let body = read_error_body(resp).await;
    if status == StatusCode::NOT_FOUND {
        return OciError::not_found(what.to_string());
    }
    let message = format!(
        "registry {registry} answered {status} for {what}{}",
        body.map(|b| format!(": {b}")).unwrap_or_default()
    );
    if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        OciError::Unavailable(message)
    } else {
        OciError::Protocol(message)
    }
}

/// A header as a string, if present and ASCII.
pub(crate) fn header_str<'a>(resp: &'a Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_summarised() {
        let b =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(
            summarize_error_body(b).as_deref(),
            Some("MANIFEST_UNKNOWN: manifest unknown")
        );
        assert_eq!(error_codes(b), vec!["MANIFEST_UNKNOWN".to_string()]);
        assert_eq!(
            summarize_error_body(b"404 page not found\n").as_deref(),
            Some("404 page not found")
        );
        assert_eq!(summarize_error_body(b"").as_deref(), None);
    }

    #[test]
    fn redaction_drops_query_fragment_and_userinfo() {
        let u = Url::parse("https://user:pw@reg.example:5000/v2/a/blobs/uploads/x?_state=SECRET#f")
            .unwrap();
        let r = redact(&u);
        assert_eq!(r, "https://reg.example:5000/v2/a/blobs/uploads/x");
        assert_eq!(origin(&u), "https://reg.example:5000");
        let d = Url::parse("https://reg.example/v2/").unwrap();
        assert_eq!(origin(&d), "https://reg.example:443");
        assert_eq!(host_port(&u), "reg.example:5000");
    }
}
