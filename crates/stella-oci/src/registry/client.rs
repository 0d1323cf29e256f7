//! The HTTP core every endpoint module goes through: one `reqwest` client
//! (connection pool, rustls with optional extra CA roots), request counting,
//! deadlines, auth attachment and challenge handling (via [`super::auth`]),
//! redirects, 429 with `Retry-After` back-off, limited retries of idempotent
//! requests on connection failures and 500/502/503/504, and the mapping of
//! registry answers to [`OciError`].
//!
//! Deadlines ([`super::RegistryTimeouts`]): a connect timeout, an idle
//! timeout between two reads (the status line included), and a deadline per
//! request that grows with the bytes it moves. A request that timed out
//! after it was sent is not retried (the server may be working on it, or
//! stalling on purpose); only connection failures are, where nothing was
//! sent.
//!
//! Redirects are followed here, not by `reqwest`, for `GET`/`HEAD` only (at
//! most [`MAX_REDIRECTS`], never from https to http). A request to another
//! host than the registry (a redirect target such as a pre-signed blob URL,
//! or an upload location elsewhere) carries no `Authorization`, and a 401 or
//! 403 from it is an error naming that host: its challenge is never
//! answered, so the registry's credentials and tokens stay with the
//! registry.
//!
//! What this module does not do: know any endpoint's semantics (that is in
//! `blobs`, `manifests`, `referrers`), or retry non-idempotent requests
//! after a transport failure (an upload is restarted by its caller, never
//! half-replayed).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, HeaderMap, LOCATION, RETRY_AFTER};
use reqwest::{Method, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use url::Url;

use super::auth::{Access, AuthCache, AuthEnv};
use super::credentials::{CredentialProvider, DockerConfigCredentials, StaticCredentials};
pub(crate) use super::http::{
    Target, chain, error_codes, header_str, read_capped, read_error_body, redact,
    summarize_error_body, unexpected,
};
use super::http::{host_port, is_certificate_problem, net_error_timed, origin};
use super::options::RegistryOptions;
use crate::OciError;
use crate::store::ReferrersMode;

/// Attempts of one request when the registry answers 429.
pub const MAX_RATE_LIMIT_ATTEMPTS: u32 = 6;
/// Total time one request may spend waiting on 429s before failing.
pub const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// Longest single wait honoured from a `Retry-After` header.
pub const MAX_SINGLE_RETRY_AFTER: Duration = Duration::from_secs(30);
/// Retries of idempotent requests after connection failures or
/// 500/502/503/504 (distribution 2.8 answers 500 while a link file it reads
/// is being rewritten by a concurrent request).
pub const MAX_TRANSIENT_RETRIES: u32 = 3;
/// Redirects followed for one `GET`/`HEAD`.
pub const MAX_REDIRECTS: u32 = 5;
/// Read size when streaming a file into a request body.
const FILE_READ_CHUNK: usize = 256 * 1024;

/// A probed referrers mode and until when it is trusted (`None`: set by
/// the caller, kept for the client's life).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CachedMode {
    pub mode: ReferrersMode,
    pub expires: Option<Instant>,
}

/// State shared by every repository of one [`super::RegistryClient`].
pub struct Shared {
    pub(crate) http: reqwest::Client,
    pub(crate) options: RegistryOptions,
    requests: AtomicU64,
    pub(crate) auth: AuthCache,
    provider: Arc<dyn CredentialProvider>,
    /// Referrers mode per registry host, decided by probing.
    pub(crate) modes: Mutex<HashMap<String, CachedMode>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("options", &self.options)
            .field("requests", &self.request_count())
            .field("auth", &self.auth)
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
    /// Bytes the request is expected to move (a blob's size), which
    /// lengthens its deadline; bodies sent count on their own.
    pub transfer_bytes: u64,
}

impl Req {
    pub fn new(method: Method, url: Url, access: Access) -> Self {
        Req {
            method,
            url,
            headers: Vec::new(),
            body: ReqBody::Empty,
            access,
            transfer_bytes: 0,
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

    /// The request moves about `bytes` bytes (its deadline grows with them).
    pub fn transfer(mut self, bytes: u64) -> Self {
        self.transfer_bytes = bytes;
        self
    }

    fn idempotent(&self) -> bool {
        self.method == Method::GET || self.method == Method::HEAD
    }

    fn body_len(&self) -> u64 {
        match &self.body {
            ReqBody::Empty => 0,
            ReqBody::Bytes(b) => b.len() as u64,
            ReqBody::File { len, .. } => *len,
        }
    }
}

/// Whether a hop goes to the registry itself or elsewhere.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hop {
    Registry,
    /// Another host: no credentials, no token, no challenge answered.
    Elsewhere,
}

impl Shared {
    pub(crate) fn new(options: RegistryOptions) -> Result<Self, OciError> {
        let t = options.timeouts;
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("stella/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(t.connect)
            .read_timeout(t.idle)
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
        let provider: Arc<dyn CredentialProvider> =
            match (&options.credentials, &options.credential_provider) {
                (Some((user, password)), _) => Arc::new(StaticCredentials::for_every_host(
                    super::credentials::Credentials::new(user.clone(), password.clone()),
                )),
                (None, Some(p)) => p.clone(),
                (None, None) => Arc::new(DockerConfigCredentials::new(
                    options.docker_config_dir.clone(),
                )),
            };
        Ok(Shared {
            http,
            options,
            requests: AtomicU64::new(0),
            auth: AuthCache::default(),
            provider,
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

    fn registry_url(&self, registry: &str) -> Result<Url, OciError> {
        Url::parse(&format!("{}/", self.base_url(registry))).map_err(|e| {
            OciError::InvalidInput(format!("cannot form a URL for registry {registry}: {e}"))
        })
    }

    fn auth_env<'a>(&'a self, registry_url: &'a Url) -> AuthEnv<'a> {
        AuthEnv {
            http: &self.http,
            requests: &self.requests,
            provider: self.provider.as_ref(),
            registry_url,
            no_cross_host_realm: self.options.no_cross_host_realm,
            words: &self.options.words,
            token_deadline: self.options.timeouts.request,
        }
    }

    /// Sends `req`, handling auth challenges, redirects, 429 and transient
    /// failures. Returns every other answer (including 4xx) for the caller
    /// to judge.
    pub(crate) async fn execute(
        &self,
        target: &Target<'_>,
        req: &Req,
    ) -> Result<Response, OciError> {
        let registry_url = self.registry_url(target.registry)?;
        let mut url = req.url.clone();
        let mut redirects = 0u32;
        loop {
            let hop = if origin(&url) == origin(&registry_url) {
                Hop::Registry
            } else {
                Hop::Elsewhere
            };
            let resp = self.send(target, req, &url, &registry_url, hop).await?;
            if !resp.status().is_redirection() || !req.idempotent() {
                return Ok(resp);
            }
            let Some(location) = header_str(&resp, LOCATION.as_str()) else {
                return Ok(resp);
            };
            redirects += 1;
            url = redirect_target(&url, location, redirects, target.registry)?;
        }
    }

    /// One hop: sends `req` to `url` with the registry's auth when `hop` is
    /// the registry, with none otherwise; retries what may be retried.
    async fn send(
        &self,
        target: &Target<'_>,
        req: &Req,
        url: &Url,
        registry_url: &Url,
        hop: Hop,
    ) -> Result<Response, OciError> {
        let env = self.auth_env(registry_url);
        let deadline = self
            .options
            .timeouts
            .deadline_for(req.transfer_bytes.max(req.body_len()));
        let mut rate_limited_attempts = 0u32;
        let mut waited = Duration::ZERO;
        let mut transient = 0u32;
        let mut reauthed = false;
        loop {
            let auth = match hop {
                Hop::Registry => self.auth.header_for(&env, target, req.access).await?,
                Hop::Elsewhere => None,
            };
            let rb = self.build(req, url, auth.as_deref(), deadline).await?;
            self.count_request();
            let started = Instant::now();
            let resp = match rb.send().await {
                Ok(r) => r,
                Err(e) => {
                    let e = e.without_url();
                    let detail = chain(&e);
                    if req.idempotent()
                        && transient < MAX_TRANSIENT_RETRIES
                        && e.is_connect()
                        && !is_certificate_problem(&detail)
                    {
                        transient += 1;
                        tokio::time::sleep(backoff(transient)).await;
                        continue;
                    }
                    return Err(net_error_timed(
                        &format!("{} {}", req.method, redact(url)),
                        e,
                        &transport_hint(url, &detail, &self.options.words),
                        started,
                        self.options.timeouts.idle,
                        deadline,
                    ));
                }
            };
            let status = resp.status();
            if (status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN)
                && hop == Hop::Elsewhere
            {
                return Err(OciError::Unauthorized(format!(
                    "{} (reached from registry {} for {} {}) answered {status}; Stella sends \
                     credentials and tokens only to the registry itself, never to another host",
                    host_port(url),
                    target.registry,
                    req.method,
                    redact(url),
                )));
            }
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
                            &env,
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
                return Err(self.auth.refused(&env, target, auth.is_some()).await);
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
                        "{} is rate limiting {} {} (429 after {rate_limited_attempts} attempts, {:.1}s waited{}); try again later",
                        match hop {
                            Hop::Registry => format!("registry {}", target.registry),
                            Hop::Elsewhere => host_port(url),
                        },
                        req.method,
                        redact(url),
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

    /// The `reqwest` request for one attempt.
    async fn build(
        &self,
        req: &Req,
        url: &Url,
        auth: Option<&str>,
        deadline: Duration,
    ) -> Result<reqwest::RequestBuilder, OciError> {
        let mut rb = self
            .http
            .request(req.method.clone(), url.clone())
            .timeout(deadline);
        for (k, v) in &req.headers {
            rb = rb.header(*k, v);
        }
        if let Some(h) = auth {
            rb = rb.header(AUTHORIZATION, h);
        }
        Ok(match &req.body {
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
        })
    }
}

/// The next URL of a redirect: resolved against the current one, at most
/// [`MAX_REDIRECTS`] hops, http(s) only and never from https down to http.
fn redirect_target(
    current: &Url,
    location: &str,
    hops: u32,
    registry: &str,
) -> Result<Url, OciError> {
    if hops > MAX_REDIRECTS {
        return Err(OciError::Protocol(format!(
            "registry {registry}: more than {MAX_REDIRECTS} redirects for {}",
            redact(current)
        )));
    }
    let next = current.join(location.trim()).map_err(|e| {
        OciError::Protocol(format!(
            "registry {registry} redirected {} to an unusable location: {e}",
            redact(current)
        ))
    })?;
    let allowed = match next.scheme() {
        "https" => true,
        "http" => current.scheme() == "http",
        _ => false,
    };
    if !allowed {
        return Err(OciError::Protocol(format!(
            "registry {registry} redirected {} to {} ({}); refused (https is never downgraded)",
            redact(current),
            redact(&next),
            next.scheme()
        )));
    }
    Ok(next)
}

/// A hint for transport errors that usually mean a wrong flag.
fn transport_hint(url: &Url, detail: &str, words: &super::RegistryWords) -> String {
    if url.scheme() == "https"
        && (detail.contains("InvalidContentType") || detail.contains("corrupt message"))
    {
        format!(
            " (the registry may speak plain HTTP: {})",
            words.use_plain_http
        )
    } else if detail.contains("UnknownIssuer") || detail.contains("invalid peer certificate") {
        format!(
            " (the registry's certificate is not trusted: {})",
            words.trust_ca
        )
    } else {
        String::new()
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
    fn redirects_resolve_and_never_downgrade() {
        let https = Url::parse("https://reg.example/v2/a/blobs/sha256:1").unwrap();
        let next = redirect_target(&https, "/other/place?sig=1", 1, "reg.example").unwrap();
        assert_eq!(next.as_str(), "https://reg.example/other/place?sig=1");
        let cdn = redirect_target(&https, "https://cdn.example/b", 1, "reg.example").unwrap();
        assert_eq!(cdn.host_str(), Some("cdn.example"));
        let down = redirect_target(&https, "http://cdn.example/b?sig=SECRET", 1, "reg.example")
            .unwrap_err()
            .to_string();
        assert!(
            down.contains("refused") && !down.contains("SECRET"),
            "{down}"
        );
        assert!(redirect_target(&https, "file:///etc/passwd", 1, "reg.example").is_err());
        assert!(redirect_target(&https, "/x", MAX_REDIRECTS + 1, "reg.example").is_err());
        let http = Url::parse("http://reg.example/v2/a/blobs/sha256:1").unwrap();
        assert!(redirect_target(&http, "http://cdn.example/b", 1, "reg.example").is_ok());
    }
}
