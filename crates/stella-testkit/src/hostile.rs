//! Hostile HTTP servers for the registry client's security tests: each
//! [`Misbehaviour`] is one way a registry, or a host a registry sends the
//! client to, can try to hold a client up or take its secrets. The server is
//! a small hyper HTTP/1.1 server on 127.0.0.1 (its own thread and runtime,
//! stopped on drop) that records every request it gets ([`SeenRequest`]:
//! method, path with query, `Authorization`), so tests assert what the
//! client sent where.
//!
//! Two servers are two hosts for the client (different `host:port`).
//!
//! What this does not do: TLS (use a TLS [`crate::DistributionRegistry`] for
//! https), speak more of the registry API than each misbehaviour needs, or
//! defend itself (it only serves tests).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use crate::TestkitError;
use crate::server::{BackgroundServer, Dropped, bind_local, run_in_background};

/// The token [`Misbehaviour::ChallengeWithOwnRealm`] hands out.
pub const HOSTILE_TOKEN: &str = "hostile-token-from-a-stranger";

/// How a [`HostileServer`] misbehaves.
#[derive(Debug, Clone)]
pub enum Misbehaviour {
    /// Reads each request and never sends a status line (the connection
    /// stays open).
    NeverAnswer,
    /// Reads each request and closes the connection without answering.
    DropConnection,
    /// Answers blob `GET`s 200 with the full `Content-Length` at once, then
    /// sends `body` one byte every `every`; `HEAD` gets the headers only.
    TrickleBlob { body: Vec<u8>, every: Duration },
    /// A registry that answers blob `GET`s with a `307` to `to` (e.g. a
    /// pre-signed URL on another host) and blob `HEAD`s with 200. With
    /// `basic_auth`, every request without those credentials gets 401
    /// `WWW-Authenticate: Basic`.
    RedirectBlobs {
        to: String,
        basic_auth: Option<(String, String)>,
    },
    /// Answers every request 401 `WWW-Authenticate: Bearer
    /// realm="http://<itself>/token"`, and `GET /token` with
    /// [`HOSTILE_TOKEN`] to anyone: a host that tries to collect the
    /// credentials a client answers challenges with.
    ChallengeWithOwnRealm,
    /// Like [`Misbehaviour::ChallengeWithOwnRealm`], but `/token` never
    /// answers.
    TokenNeverAnswers,
    /// Opens upload sessions (`POST .../blobs/uploads/` → 202) whose
    /// `Location` carries `?_state=<secret_state>`, answers blob `HEAD` 404,
    /// and drops the connection on the `PATCH`/`PUT` that follows.
    UploadSessionThenDrop { secret_state: String },
    /// A registry without the Referrers API (the probe and every manifest
    /// answer 404, `GET /v2/` 200) whose `tags/list` misbehaves as `lie`
    /// says: the path a client takes to find cosign legacy tags or to list
    /// a repository's tags.
    LyingTagList(TagListLie),
}

/// How a [`Misbehaviour::LyingTagList`] server answers `GET .../tags/list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagListLie {
    /// A well-formed tag list of about `bytes` bytes, streamed without a
    /// `Content-Length` (the client must cut it off itself).
    Oversized { bytes: usize },
    /// The same full page (`n` tags, `n` as asked, at most 1000) on every
    /// request, `last` ignored, with a `Link` `rel="next"` back to the URL
    /// asked: pagination that never ends and never moves.
    LinkLoop,
    /// Every page is `n` new tags sorted after `last` (`last` honoured),
    /// with a `Link` to the next page: a repository with endless tags.
    Endless,
    /// Claims a complete list holding the cosign legacy tags
    /// `sha256-<hex>.att|.sbom|.sig` of every `last` asked (or of nothing),
    /// tags that do not exist: every manifest HEAD answers 404.
    PhantomLegacyTags,
}

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
}

type Body = BoxBody<Bytes, std::io::Error>;

/// A running hostile server (stops on drop).
pub struct HostileServer {
    server: BackgroundServer,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
}

impl std::fmt::Debug for HostileServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostileServer")
            .field("addr", &self.server.addr())
            .finish_non_exhaustive()
    }
}

impl HostileServer {
    /// Starts a server with `misbehaviour` on a free 127.0.0.1 port.
    pub fn start(misbehaviour: Misbehaviour) -> Result<Self, TestkitError> {
        let (listener, addr) = bind_local()?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(State {
            misbehaviour,
            addr,
            seen: seen.clone(),
        });
        let server = run_in_background("stella-hostile-server", listener, move |stream| {
            let state = state.clone();
            async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let state = state.clone();
                    async move { handle(&state, req).await }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            }
        })?;
        Ok(HostileServer { server, seen })
    }

    /// `127.0.0.1:PORT`.
    pub fn host_port(&self) -> String {
        self.server.addr().to_string()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

struct State {
    misbehaviour: Misbehaviour,
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
}

async fn handle(state: &State, req: Request<Incoming>) -> Result<Response<Body>, Dropped> {
    let (parts, body) = req.into_parts();
    // Read the whole request first, as a server would before answering.
    let _ = body.collect().await;
    let method = parts.method.as_str().to_string();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let authorization = parts
        .headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Ok(mut seen) = state.seen.lock() {
        seen.push(SeenRequest {
            method: method.clone(),
            path: path.clone(),
            authorization: authorization.clone(),
        });
    }
    let is_blob = path.contains("/blobs/sha256:");
    let own_realm = format!("http://{}/token", state.addr);
    match &state.misbehaviour {
        Misbehaviour::NeverAnswer => std::future::pending().await,
        Misbehaviour::DropConnection => Err(Dropped),
        Misbehaviour::TrickleBlob { body, every } => {
            if !is_blob {
                return Ok(full(404, &[], Bytes::new()));
            }
            let len = body.len().to_string();
            if method == "HEAD" {
                return Ok(full(200, &[("Content-Length", len)], Bytes::new()));
            }
            Ok(trickle(body.clone(), *every))
        }
        Misbehaviour::RedirectBlobs { to, basic_auth } => {
            if let Some((user, password)) = basic_auth {
                let expected = format!("Basic {}", basic(user, password));
                if authorization.as_deref() != Some(expected.as_str()) {
                    return Ok(full(
                        401,
                        &[("WWW-Authenticate", "Basic realm=\"hostile\"".to_string())],
                        Bytes::new(),
                    ));
                }
            }
            Ok(match (method.as_str(), is_blob) {
                ("GET", true) => full(307, &[("Location", to.clone())], Bytes::new()),
                ("HEAD", true) => full(200, &[("Content-Length", "0".to_string())], Bytes::new()),
                _ => full(404, &[], Bytes::new()),
            })
        }
        Misbehaviour::ChallengeWithOwnRealm | Misbehaviour::TokenNeverAnswers => {
            if path.starts_with("/token") {
                if matches!(state.misbehaviour, Misbehaviour::TokenNeverAnswers) {
                    std::future::pending::<()>().await;
                }
                let body = format!("{{\"token\":\"{HOSTILE_TOKEN}\",\"expires_in\":300}}");
                return Ok(full(
                    200,
                    &[("Content-Type", "application/json".to_string())],
                    Bytes::from(body),
                ));
            }
            Ok(full(
                401,
                &[(
                    "WWW-Authenticate",
                    format!("Bearer realm=\"{own_realm}\",service=\"hostile\""),
                )],
                Bytes::new(),
            ))
        }
        Misbehaviour::UploadSessionThenDrop { secret_state } => {
            match method.as_str() {
                "HEAD" => Ok(full(404, &[], Bytes::new())),
                "POST" => {
                    let base = path.split('?').next().unwrap_or("");
                    let location = format!("{base}session-1?_state={secret_state}");
                    Ok(full(202, &[("Location", location)], Bytes::new()))
                }
                "DELETE" => Ok(full(204, &[], Bytes::new())),
                // PATCH / PUT: the connection goes away mid-upload.
                _ => Err(Dropped),
            }
        }
        Misbehaviour::LyingTagList(lie) => Ok(lying_registry(*lie, &path)),
    }
}

/// The answers of a [`Misbehaviour::LyingTagList`] server.
fn lying_registry(lie: TagListLie, path: &str) -> Response<Body> {
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    if route == "/v2/" || route == "/v2" {
        return full(200, &[], Bytes::from_static(b"{}"));
    }
    if !route.ends_with("/tags/list") {
        return full(404, &[], Bytes::new());
    }
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    };
    let n = param("n")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 1000);
    let last = param("last").unwrap_or_default();
    let json = [("Content-Type", "application/json".to_string())];
    match lie {
        TagListLie::Oversized { bytes } => streamed_tag_list(bytes),
        TagListLie::LinkLoop => {
            let tags: Vec<String> = (0..n).map(|i| format!("loop-{i:06}")).collect();
            let link = format!("<{path}>; rel=\"next\"");
            full(
                200,
                &[json[0].clone(), ("Link", link)],
                Bytes::from(tag_list_body(&tags)),
            )
        }
        TagListLie::Endless => {
            let start = last
                .strip_prefix("t-")
                .and_then(|v| v.parse::<u64>().ok())
                .map_or(0, |v| v + 1);
            let tags: Vec<String> = (start..start + n as u64)
                .map(|i| format!("t-{i:012}"))
                .collect();
            let next = tags.last().cloned().unwrap_or_default();
            let link = format!("<{route}?n={n}&last={next}>; rel=\"next\"");
            full(
                200,
                &[json[0].clone(), ("Link", link)],
                Bytes::from(tag_list_body(&tags)),
            )
        }
        TagListLie::PhantomLegacyTags => {
            let tags: Vec<String> = if last.is_empty() {
                Vec::new()
            } else {
                ["att", "sbom", "sig"]
                    .iter()
                    .map(|k| format!("{last}.{k}"))
                    .collect()
            };
            full(200, &json, Bytes::from(tag_list_body(&tags)))
        }
    }
}

fn tag_list_body(tags: &[String]) -> Vec<u8> {
    let quoted: Vec<String> = tags.iter().map(|t| format!("\"{t}\"")).collect();
    format!("{{\"name\":\"hostile\",\"tags\":[{}]}}", quoted.join(",")).into_bytes()
}

/// A tag list of about `bytes` bytes in 64 KiB chunks, no `Content-Length`.
fn streamed_tag_list(bytes: usize) -> Response<Body> {
    const CHUNK: usize = 64 * 1024;
    let head = Bytes::from_static(b"{\"name\":\"hostile\",\"tags\":[\"a\"");
    let filler = Bytes::from(",\"a\"".repeat(CHUNK / 4));
    let chunks = bytes / filler.len().max(1);
    let parts = std::iter::once(head)
        .chain(std::iter::repeat_n(filler, chunks))
        .chain(std::iter::once(Bytes::from_static(b"]}")))
        .map(|b| Ok::<_, std::io::Error>(Frame::data(b)));
    let mut r = Response::new(StreamBody::new(futures_util::stream::iter(parts)).boxed());
    if let Ok(v) = hyper::header::HeaderValue::from_str("application/json") {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// A complete response; header values that fail to parse are skipped.
fn full(status: u16, headers: &[(&str, String)], body: Bytes) -> Response<Body> {
    let mut b = Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, v.as_str());
    }
    let body = Full::new(body)
        .map_err(|never: Infallible| match never {})
        .boxed();
    b.body(body).unwrap_or_else(|_| {
        let mut r = Response::new(
            Full::new(Bytes::new())
                .map_err(|never: Infallible| match never {})
                .boxed(),
        );
        *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

/// 200 with the full length announced, then one byte every `every`.
fn trickle(body: Vec<u8>, every: Duration) -> Response<Body> {
    let len = body.len();
    let stream = futures_util::stream::unfold((body, 0usize), move |(body, at)| async move {
        let byte = *body.get(at)?;
        tokio::time::sleep(every).await;
        Some((
            Ok::<_, std::io::Error>(Frame::data(Bytes::copy_from_slice(&[byte]))),
            (body, at + 1),
        ))
    });
    let mut r = Response::new(StreamBody::new(stream).boxed());
    if let Ok(v) = hyper::header::HeaderValue::from_str(&len.to_string()) {
        r.headers_mut().insert(hyper::header::CONTENT_LENGTH, v);
    }
    r
}
