//! The HTTP core every endpoint module goes through: one `reqwest` client
//! (connection pool, rustls with optional extra CA roots), request counting,
//! auth attachment and challenge handling (via [`super::auth`]), 429 with
//! `Retry-After` back-off, limited retries of idempotent requests on
//! transport errors and 502/503/504, capped body reads and the mapping of
//! registry answers to [`OciError`].
//!
//! What this module does not do: know any endpoint's semantics (that is in
//! `blobs`, `manifests`, `referrers`), or retry non-idempotent requests
//! after a transport failure (an upload is restarted by its caller, never
//! half-replayed).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, HeaderMap, RETRY_AFTER};
use reqwest::{Method, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use url::Url;

use super::RegistryOptions;
use super::auth::{Access, AuthCache};
use crate::OciError;
use crate::store::ReferrersMode;

/// Attempts of one request when the registry answers 429.
pub const MAX_RATE_LIMIT_ATTEMPTS: u32 = 6;
/// Total time one request may spend waiting on 429s before failing.
pub const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// Longest single wait honoured from a `Retry-After` header.
pub const MAX_SINGLE_RETRY_AFTER: Duration = Duration::from_secs(30);
/// Retries of idempotent requests after transport errors or 500/502/503/504
/// (distribution 2.8 answers 500 while a link file it reads is being
/// rewritten by a concurrent request).
pub const MAX_TRANSIENT_RETRIES: u32 = 3;
/// Read size when streaming a file into a request body.
const FILE_READ_CHUNK: usize = 256 * 1024;

/// State shared by every repository of one [`super::RegistryClient`].
pub struct Shared {
    pub(crate) http: reqwest::Client,
    pub(crate) options: RegistryOptions,
    requests: AtomicU64,
    pub(crate) auth: AuthCache,
    /// Referrers mode per registry host, decided once by probing.
    pub(crate) modes: Mutex<HashMap<String, ReferrersMode>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("plain_http", &self.options.plain_http)
            .field("ca_file", &self.options.ca_file)
            .field("requests", &self.request_count())
            .finish_non_exhaustive()
    }
}

/// What a request carries.
#[derive(Clone)]
pub(crate) enum ReqBody {
    Empty,
    Bytes(Bytes),
    /// `len` bytes of a file from `offset`, streamed (re-opened on retry);
    /// `counter` is advanced as bytes are read, for progress.
    File {
        path: PathBuf,
        offset: u64,
        len: u64,
        counter: Arc<AtomicU64>,
    },
}

/// One request to a repository of a registry.
pub(crate) struct Req {
    pub method: Method,
    pub url: Url,
    pub headers: Vec<(&'static str, String)>,
    pub body: ReqBody,
    pub access: Access,
}

impl Req {
    pub fn new(method: Method, url: Url, access: Access) -> Self {
        Req {
            method,
            url,
            headers: Vec::new(),
            body: ReqBody::Empty,
            access,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, body: ReqBody) -> Self {
        self.body = body;
        self
    }

    fn idempotent(&self) -> bool {
        self.method == Method::GET || self.method == Method::HEAD
    }
}

/// Which repository a request is for (auth scope and messages).
pub(crate) struct Target<'a> {
    pub registry: &'a str,
    pub repository: &'a str,
}

impl Shared {
    pub(crate) fn new(options: RegistryOptions) -> Result<Self, OciError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("stella/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(300))
            .pool_idle_timeout(Duration::from_secs(60));
        if let Some(ca) = &options.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| OciError::io(format!("reading CA file {}", ca.display()), e))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                OciError::InvalidInput(format!("CA file {} is not usable PEM: {e}", ca.display()))
            })?;
            if certs.is_empty() {
                return Err(OciError::InvalidInput(format!(
                    "CA file {} holds no PEM certificate",
                    ca.display()
                )));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder.build().map_err(|e| {
            OciError::InvalidInput(format!("cannot set up the HTTP client: {}", chain(&e)))
        })?;
        Ok(Shared {
            http,
            options,
            requests: AtomicU64::new(0),
            auth: AuthCache::default(),
            modes: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub(crate) fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// `http(s)://<host>` for a registry name (Docker Hub's API host for `docker.io`).
    pub(crate) fn base_url(&self, registry: &str) -> String {
        let scheme = if self.options.plain_http {
            "http"
        } else {
            "https"
        };
        let host = if registry == "docker.io" {
            "registry-1.docker.io"
        } else {
            registry
        };
        format!("{scheme}://{host}")
    }

    /// Sends `req`, handling auth challenges, 429 and transient failures.
    /// Returns every other answer (including 4xx) for the caller to judge.
    pub(crate) async fn execute(
        &self,
        target: &Target<'_>,
        req: &Req,
    ) -> Result<Response, OciError> {
        let mut rate_limited_attempts = 0u32;
        let mut waited = Duration::ZERO;
        let mut transient = 0u32;
        let mut reauthed = false;
        loop {
            let auth = self.auth.header_for(self, target, req.access).await?;
            let mut rb = self.http.request(req.method.clone(), req.url.clone());
            for (k, v) in &req.headers {
                rb = rb.header(*k, v);
            }
            if let Some(h) = &auth {
                rb = rb.header(AUTHORIZATION, h);
            }
            rb = match &req.body {
                ReqBody::Empty => {
                    if req.method == Method::PUT
                        || req.method == Method::POST
                        || req.method == Method::PATCH
                    {
                        rb.header(CONTENT_LENGTH, "0")
                    } else {
                        rb
                    }
                }
                ReqBody::Bytes(b) => rb
                    .header(CONTENT_LENGTH, b.len().to_string())
                    .body(b.clone()),
                ReqBody::File {
                    path,
                    offset,
                    len,
                    counter,
                } => rb
                    .header(CONTENT_LENGTH, len.to_string())
                    .body(file_body(path.clone(), *offset, *len, counter.clone()).await?),
            };
            self.count_request();
            let resp = match rb.send().await {
                Ok(r) => r,
                Err(e) => {
                    if req.idempotent()
                        && transient < MAX_TRANSIENT_RETRIES
                        && (e.is_connect() || e.is_timeout())
                    {
                        transient += 1;
                        tokio::time::sleep(backoff(transient)).await;
                        continue;
                    }
                    let detail = chain(&e);
                    let hint = if req.url.scheme() == "https"
                        && (detail.contains("InvalidContentType")
                            || detail.contains("corrupt message"))
                    {
                        " (the registry may speak plain HTTP: use --plain-http)"
                    } else if detail.contains("UnknownIssuer")
                        || detail.contains("invalid peer certificate")
                    {
                        " (trust the registry's CA with --ca-file)"
                    } else {
                        ""
                    };
                    return Err(OciError::Transport(format!(
                        "{} {}: {detail}{hint}",
                        req.method,
                        redact(&req.url),
                    )));
                }
            };
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED {
                let challenge = resp
                    .headers()
                    .get(reqwest::header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                if !reauthed {
                    reauthed = true;
                    // Retry once with fresh auth, unless nothing would change.
                    if self
                        .auth
                        .on_challenge(
                            self,
                            target,
                            req.access,
                            challenge.as_deref(),
                            auth.is_some(),
                        )
                        .await?
                    {
                        continue;
                    }
                }
                return Err(self.auth.refused(self, target, auth.is_some()).await);
            }
            if status == StatusCode::FORBIDDEN {
                let body = read_error_body(resp).await;
                return Err(OciError::Unauthorized(format!(
                    "registry {} denied {} access to {}{}",
                    target.registry,
                    req.access.actions(),
                    target.repository,
                    body.map(|b| format!(": {b}")).unwrap_or_default()
                )));
            }
            if status == StatusCode::TOO_MANY_REQUESTS {
                rate_limited_attempts += 1;
                let asked = retry_after(resp.headers());
                let wait = asked
                    .map(|d| d.min(MAX_SINGLE_RETRY_AFTER))
                    .unwrap_or_else(|| backoff(rate_limited_attempts))
                    + Duration::from_millis(fastrand::u64(0..=250));
                if rate_limited_attempts >= MAX_RATE_LIMIT_ATTEMPTS
                    || waited + wait > MAX_RATE_LIMIT_WAIT
                    || asked.is_some_and(|a| a > MAX_SINGLE_RETRY_AFTER)
                {
                    return Err(OciError::RateLimited(format!(
                        "registry {} is rate limiting {} {} (429 after {rate_limited_attempts} attempts, {:.1}s waited{}); try again later",
                        target.registry,
                        req.method,
                        redact(&req.url),
                        waited.as_secs_f64(),
                        asked
                            .map(|a| format!(", asked to wait {}s more", a.as_secs()))
                            .unwrap_or_default()
                    )));
                }
                tokio::time::sleep(wait).await;
                waited += wait;
                continue;
            }
            if req.idempotent()
                && transient < MAX_TRANSIENT_RETRIES
                && matches!(status.as_u16(), 500 | 502..=504)
            {
                transient += 1;
                tokio::time::sleep(backoff(transient)).await;
                continue;
            }
            return Ok(resp);
        }
    }
}

/// Exponential back-off with jitter: 200 ms, 400 ms, 800 ms... (+0-50%).
fn backoff(attempt: u32) -> Duration {
    let base = 200u64.saturating_mul(1u64 << attempt.saturating_sub(1).min(8));
    Duration::from_millis(base + fastrand::u64(0..=base / 2))
}

/// `Retry-After` as delta-seconds or an HTTP date (RFC 9110 §10.2.3).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let when = time::PrimitiveDateTime::parse(v, &fmt).ok()?.assume_utc();
    let now = time::OffsetDateTime::from(SystemTime::now());
    let delta = when - now;
    Some(if delta.is_negative() {
        Duration::ZERO
    } else {
        delta.unsigned_abs()
    })
}

/// A streaming body over a file range that advances `counter`.
async fn file_body(
    path: PathBuf,
    offset: u64,
    len: u64,
    counter: Arc<AtomicU64>,
) -> Result<reqwest::Body, OciError> {
    let mut file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| OciError::io(format!("opening {}", path.display()), e))?;
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(|e| OciError::io(format!("seeking in {}", path.display()), e))?;
    let state = (file.take(len), counter, len);
    let stream = futures_util::stream::unfold(state, |(mut f, counter, mut left)| async move {
        if left == 0 {
            return None;
        }
        let mut buf = vec![0u8; FILE_READ_CHUNK.min(left as usize)];
        match f.read(&mut buf).await {
            Ok(0) => Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "file shrank during upload",
                )),
                (f, counter, 0),
            )),
            Ok(n) => {
                buf.truncate(n);
                left -= n as u64;
                counter.fetch_add(n as u64, Ordering::Relaxed);
                Some((Ok(Bytes::from(buf)), (f, counter, left)))
            }
            Err(e) => Some((Err(e), (f, counter, 0))),
        }
    });
    Ok(reqwest::Body::wrap_stream(stream))
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
        let chunk =
            chunk.map_err(|e| OciError::Transport(format!("reading {what}: {}", chain(&e))))?;
        if out.len() as u64 + chunk.len() as u64 > cap {
            return Err(OciError::Protocol(format!(
                "{what} is over the {cap}-byte limit"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The registry's error body, summarised (`CODE: message; ...`), capped.
pub(crate) async fn read_error_body(resp: Response) -> Option<String> {
    let bytes = read_capped(
        resp,
        stella_types::limits::MAX_ERROR_BODY_BYTES,
        "error body",
    )
    .await
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
fn clean(s: &str) -> String {
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

/// An error for an unexpected answer to `what` (`404` → NotFound naming `what`).
pub(crate) async fn unexpected(resp: Response, registry: &str, what: &str) -> OciError {
    let status = resp.status();
    let body = read_error_body(resp).await;
    if status == StatusCode::NOT_FOUND {
        return OciError::not_found(what.to_string());
    }
    OciError::Protocol(format!(
        "registry {registry} answered {status} for {what}{}",
        body.map(|b| format!(": {b}")).unwrap_or_default()
    ))
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

/// A URL without query (upload session state, tokens) for messages.
pub(crate) fn redact(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    let _ = u.set_password(None);
    u.to_string()
}

/// A header as a string, if present and ASCII.
pub(crate) fn header_str<'a>(resp: &'a Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        let future = time::OffsetDateTime::now_utc() + time::Duration::seconds(20);
        let fmt = time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        );
        let s = future.format(&fmt).unwrap_or_default();
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_str(&s).unwrap_or(HeaderValue::from_static("x")),
        );
        let d = retry_after(&h).unwrap_or_default();
        assert!(
            d >= Duration::from_secs(18) && d <= Duration::from_secs(20),
            "{d:?}"
        );
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

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
}
