//! The HTTP client of a Stella server, shared by the client commands
//! (`stella auth …`, `stella vex providers …`): the global `--server`,
//! `--token` and `--wait-quota` settings, one deadline per request, the
//! one retry after a 429 (seed 003 `--wait-quota`), and problem answers
//! turned into [`ProblemError`], which the binary prints as the single line
//! `stella: error: <title>: <detail> (<code>)` (exit 2).
//!
//! It does not know any route's body; commands build their requests.

use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::cli::ServiceClientArgs;

/// Deadline of one request (connect, answer and body).
const REQUEST_DEADLINE: Duration = Duration::from_secs(30);
/// Longest `Retry-After` the client waits before its one retry.
pub const MAX_RETRY_WAIT: u64 = 60;

/// An RFC 9457 problem the server answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProblemError {
    pub status: u16,
    pub title: String,
    pub detail: String,
    pub code: String,
    /// Validation errors (`[{path, code, message, hint?}]`), when given.
    pub errors: Vec<serde_json::Value>,
}

impl std::fmt::Display for ProblemError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} ({})",
            printable(&self.title),
            printable(&self.detail),
            printable(&self.code)
        )
    }
}

impl std::error::Error for ProblemError {}

/// Server text made safe for one terminal line: control characters
/// (newlines, escapes) become spaces.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[derive(Deserialize)]
struct ProblemBody {
    title: String,
    #[serde(default)]
    detail: String,
    code: String,
    #[serde(default)]
    errors: Vec<serde_json::Value>,
}

/// The error for a failed answer: a [`ProblemError`] when the body is a
/// problem document, else the status alone.
pub fn failure(status: reqwest::StatusCode, body: &[u8]) -> anyhow::Error {
    match serde_json::from_slice::<ProblemBody>(body) {
        Ok(p) => anyhow::Error::new(ProblemError {
            status: status.as_u16(),
            title: p.title,
            detail: p.detail,
            code: p.code,
            errors: p.errors,
        }),
        Err(_) => anyhow::anyhow!("the server answered {status}"),
    }
}

/// Seconds to wait from a `Retry-After` header (delay-seconds form; an
/// HTTP date or garbage counts as 1), at most [`MAX_RETRY_WAIT`].
fn retry_after(headers: &reqwest::header::HeaderMap) -> u64 {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1)
        .clamp(1, MAX_RETRY_WAIT)
}

/// A successful answer.
pub struct Answer {
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json<T: for<'de> Deserialize<'de>>(&self) -> anyhow::Result<T> {
        serde_json::from_slice(&self.body).context("the server answered unexpected JSON")
    }
}

/// A client of one Stella server.
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    wait_quota: bool,
}

impl ApiClient {
    /// A client without a token (e.g. for the token request itself).
    pub fn anonymous(args: &ServiceClientArgs) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_DEADLINE)
            .connect_timeout(REQUEST_DEADLINE)
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            http,
            base: args.server.server.trim_end_matches('/').to_string(),
            token: None,
            wait_quota: args.wait_quota,
        })
    }

    /// A client with `--token` (env `STELLA_TOKEN`), else the token
    /// `stella auth login` cached.
    pub fn authenticated(args: &ServiceClientArgs) -> anyhow::Result<Self> {
        let token = match args.token.clone().or_else(crate::cmd::auth::cached_token) {
            Some(t) => t,
            None => bail!("no token: run `stella auth login` or pass --token (STELLA_TOKEN)"),
        };
        let mut client = Self::anonymous(args)?;
        client.token = Some(token);
        Ok(client)
    }

    /// The server's base URL, without a trailing `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `<server><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends the request `build` makes (called again for the retry, so a
    /// body is rebuilt), with the bearer token when there is one. A 429 is
    /// retried once after `Retry-After` unless `--wait-quota false`. Any
    /// other non-2xx answer is an error ([`ProblemError`] for a problem).
    pub async fn send(
        &self,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> anyhow::Result<Answer> {
        let attempts = if self.wait_quota { 2 } else { 1 };
        for attempt in 1..=attempts {
            let mut request = build(&self.http);
            if let Some(token) = &self.token {
                request = request.bearer_auth(token);
            }
            let response = request
                .send()
                .await
                .with_context(|| format!("cannot reach {}", self.base))?;
            let status = response.status();
            if status == reqwest::StatusCode::TOO_MANY_REQUESTS && attempt < attempts {
                let wait = retry_after(response.headers());
                eprintln!("stella: the server's rate limit is reached; retrying in {wait} s");
                tokio::time::sleep(Duration::from_secs(wait)).await;
                continue;
            }
            let body = response
                .bytes()
                .await
                .with_context(|| format!("reading the answer of {}", self.base))?;
            if !status.is_success() {
                return Err(failure(status, &body));
            }
            return Ok(Answer {
                body: body.to_vec(),
            });
        }
        bail!("rate limited twice by the server")
    }

    /// `GET <server><path>` as JSON.
    pub async fn get_json<T: for<'de> Deserialize<'de>>(&self, path: &str) -> anyhow::Result<T> {
        let url = self.url(path);
        self.send(|http| http.get(&url)).await?.json()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_problem_is_one_line_title_detail_code() {
        let body =
            br#"{"type":"https://stella.dev/problems/NOT_FOUND","title":"Not found","status":404,
            "detail":"artifact\nnot found\u001b[31m","code":"NOT_FOUND","traceId":"00"}"#;
        let e = failure(reqwest::StatusCode::NOT_FOUND, body);
        let p = e.downcast_ref::<ProblemError>().unwrap();
        assert_eq!(p.status, 404);
        assert_eq!(
            e.to_string(),
            "Not found: artifact not found [31m (NOT_FOUND)"
        );
        let plain = failure(reqwest::StatusCode::BAD_GATEWAY, b"<html>");
        assert!(plain.downcast_ref::<ProblemError>().is_none());
        assert!(plain.to_string().contains("502"));
    }

    #[test]
    fn retry_after_is_bounded() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&h), 1);
        h.insert(reqwest::header::RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&h), 3);
        h.insert(reqwest::header::RETRY_AFTER, "86400".parse().unwrap());
        assert_eq!(retry_after(&h), MAX_RETRY_WAIT);
        h.insert(reqwest::header::RETRY_AFTER, "0".parse().unwrap());
        assert_eq!(retry_after(&h), 1);
        h.insert(
            reqwest::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), 1);
    }
}
