//! An in-process, in-memory registry following the OCI distribution spec v1.1, including the
//! Referrers API (which distribution 2.8 lacks), with fault injection for client tests.
//!
//! Endpoints: `GET /v2/`; blobs `HEAD/GET/DELETE /v2/<name>/blobs/<digest>`; uploads `POST
//! /v2/<name>/blobs/uploads/` (monolithic with `?digest=` → 201, else 202 + session),
//! `PATCH` (appends; a `Content-Range` whose start is not the current size → 416), `PUT
//! ?digest=` (finalize, digest checked → 400 `DIGEST_INVALID`), `GET` (status, 204 + `Range`);
//! manifests `HEAD/GET/PUT/DELETE /v2/<name>/manifests/<tag|digest>`; `GET
//! /v2/<name>/tags/list[?n=&last=]`; `GET /v2/<name>/referrers/<digest>[?artifactType=]`.
//!
//! Rules (chosen to match distribution where it has one):
//! - Manifest `GET`/`HEAD`: the stored media type must appear in `Accept` (parameters and
//!   `q` ignored; `*/*` is NOT a wildcard, like distribution 2.8); otherwise 404
//!   `MANIFEST_UNKNOWN`. A request without `Accept` also gets 404. The response echoes the
//!   stored media type as `Content-Type` and sets `Docker-Content-Digest`.
//! - Manifest `PUT`: body ≤ `limits::MAX_MANIFEST_BYTES` (else 413); must be JSON; a
//!   `mediaType` field in the body must equal `Content-Type` (else 400 `MANIFEST_INVALID`);
//!   config and layers of an image manifest, and children of an index, must exist (else 400
//!   `MANIFEST_BLOB_UNKNOWN`); the subject need not exist. PUT by digest checks the digest.
//!   A manifest with `subject` gets `OCI-Subject: <subject digest>` in the 201 answer.
//! - Referrers: the list is computed from stored manifests whose `subject.digest` matches,
//!   sorted by digest; each descriptor carries `artifactType` (the manifest's, else its
//!   config media type) and the manifest's `annotations`. Unknown subjects give an empty
//!   index (200). With `?artifactType=` the list is filtered and `OCI-Filters-Applied:
//!   artifactType` is set. With `page_size` set, pages are linked with `Link:
//!   <…?page=N>; rel="next"`.
//! - `DELETE` of a manifest by digest removes it and every tag pointing to it; by tag removes
//!   the tag only. Answers 202.
//!
//! Fault injection (see [`SpecConfig`]) is applied in this order to every request after it is
//! counted and logged: `fail_after_requests` (drop the connection), then `rate_limit_first_n`
//! (429 with `Retry-After: 1`).
//!
//! What this does not do: authentication, cross-repository mounts, HTTPS, persistence, or
//! streaming (bodies are held in memory; keep test blobs small).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use sha2::Digest as _;
use stella_types::{limits, media_types};

use crate::TestkitError;
use crate::server::{BackgroundServer, Reply, Req, response};
use crate::token::parse_query;

/// The tag that serves an oversized manifest when [`SpecConfig::oversized_manifest`] is on.
pub const OVERSIZED_TAG: &str = "oversized";
/// Size of the oversized manifest body: twice `limits::MAX_MANIFEST_BYTES`.
pub const OVERSIZED_BYTES: u64 = 2 * limits::MAX_MANIFEST_BYTES;

/// Behaviour switches for [`SpecRegistry`].
#[derive(Debug, Clone, Default)]
pub struct SpecConfig {
    /// Referrers and tags-list page size; `None` = everything in one page.
    pub page_size: Option<usize>,
    /// Answer 429 (`Retry-After: 1`, code `TOOMANYREQUESTS`) to the first N requests.
    pub rate_limit_first_n: usize,
    /// After N requests, drop every further connection without an answer (a registry dying
    /// mid-push). Request number N+1 is the first dropped.
    pub fail_after_requests: Option<usize>,
    /// Serve [`OVERSIZED_BYTES`] of valid JSON for `GET /v2/<any>/manifests/oversized`.
    pub oversized_manifest: bool,
    /// Send `OCI-Subject` on manifest PUT but answer 404 on `/referrers/` (a registry that lies
    /// about supporting the Referrers API).
    pub send_oci_subject_without_api: bool,
    /// Every referrers answer carries `Link: <its own URL>; rel="next"` (a pagination loop).
    pub link_loop: bool,
}

/// One logged request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// Path and query as received.
    pub path: String,
}

#[derive(Clone)]
struct StoredManifest {
    media_type: String,
    bytes: Bytes,
}

#[derive(Default)]
struct RepoState {
    blobs: HashMap<String, Bytes>,
    manifests: HashMap<String, StoredManifest>,
    tags: BTreeMap<String, String>,
}

#[derive(Default)]
struct State {
    repos: HashMap<String, RepoState>,
    uploads: HashMap<String, (String, Vec<u8>)>,
    log: Vec<RequestRecord>,
}

struct Inner {
    config: SpecConfig,
    /// Set by [`SpecRegistry::revive`]: `fail_after_requests` no longer applies.
    revived: std::sync::atomic::AtomicBool,
    count: AtomicUsize,
    next_upload: AtomicU64,
    state: Mutex<State>,
}

/// A running in-process registry (stops on drop).
pub struct SpecRegistry {
    inner: Arc<Inner>,
    server: BackgroundServer,
}

impl std::fmt::Debug for SpecRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpecRegistry")
            .field("host_port", &self.host_port())
            .field("config", &self.inner.config)
            .finish()
    }
}

impl SpecRegistry {
    /// Starts the registry on a free 127.0.0.1 port.
    ///
    /// # Panics
    /// If no loopback port can be bound (test-only convenience; see [`Self::try_start`]).
    #[allow(clippy::panic)]
    pub fn start(config: SpecConfig) -> SpecRegistry {
        match Self::try_start(config) {
            Ok(r) => r,
            Err(e) => panic!("SpecRegistry::start: {e}"),
        }
    }

    /// Starts the registry on a free 127.0.0.1 port.
    pub fn try_start(config: SpecConfig) -> Result<SpecRegistry, TestkitError> {
        let inner = Arc::new(Inner {
            config,
            revived: std::sync::atomic::AtomicBool::new(false),
            count: AtomicUsize::new(0),
            next_upload: AtomicU64::new(1),
            state: Mutex::new(State::default()),
        });
        let h = inner.clone();
        let server = crate::server::spawn("stella-spec-registry", move |req| {
            let inner = h.clone();
            async move { handle(&inner, req) }
        })?;
        Ok(SpecRegistry { inner, server })
    }

    /// `127.0.0.1:PORT`.
    pub fn host_port(&self) -> String {
        self.server.addr().to_string()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.host_port())
    }

    /// The registry comes back after `fail_after_requests` killed it: every
    /// later request is answered again (same content, same address).
    pub fn revive(&self) {
        self.inner.revived.store(true, Ordering::SeqCst);
    }

    /// Requests received so far (including rate-limited and dropped ones).
    pub fn request_count(&self) -> usize {
        self.inner.count.load(Ordering::SeqCst)
    }

    /// The request log (method + path with query), in arrival order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.inner
            .state
            .lock()
            .map(|s| s.log.clone())
            .unwrap_or_default()
    }

    /// Stores a blob directly (test seeding); returns its `sha256:` digest.
    pub fn seed_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256_digest(bytes);
        if let Ok(mut st) = self.inner.state.lock() {
            st.repos
                .entry(repo.to_string())
                .or_default()
                .blobs
                .insert(digest.clone(), Bytes::copy_from_slice(bytes));
        }
        digest
    }

    /// Stores a manifest directly (no validation), tagging it if `tag` is given; returns its
    /// digest.
    pub fn seed_manifest(
        &self,
        repo: &str,
        tag: Option<&str>,
        media_type: &str,
        bytes: &[u8],
    ) -> String {
        let digest = sha256_digest(bytes);
        if let Ok(mut st) = self.inner.state.lock() {
            let r = st.repos.entry(repo.to_string()).or_default();
            r.manifests.insert(
                digest.clone(),
                StoredManifest {
                    media_type: media_type.to_string(),
                    bytes: Bytes::copy_from_slice(bytes),
                },
            );
            if let Some(t) = tag {
                r.tags.insert(t.to_string(), digest.clone());
            }
        }
        digest
    }

    /// Whether a manifest with this digest is stored in `repo`.
    pub fn has_manifest(&self, repo: &str, digest: &str) -> bool {
        self.inner
            .state
            .lock()
            .map(|s| {
                s.repos
                    .get(repo)
                    .is_some_and(|r| r.manifests.contains_key(digest))
            })
            .unwrap_or(false)
    }

    /// Whether a blob with this digest is stored in `repo`.
    pub fn has_blob(&self, repo: &str, digest: &str) -> bool {
        self.inner
            .state
            .lock()
            .map(|s| {
                s.repos
                    .get(repo)
                    .is_some_and(|r| r.blobs.contains_key(digest))
            })
            .unwrap_or(false)
    }

    /// The tags of `repo`, sorted.
    pub fn tags(&self, repo: &str) -> Vec<String> {
        self.inner
            .state
            .lock()
            .map(|s| {
                s.repos
                    .get(repo)
                    .map(|r| r.tags.keys().cloned().collect())
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

fn digest_of(algorithm: &str, bytes: &[u8]) -> Option<String> {
    match algorithm {
        "sha256" => Some(sha256_digest(bytes)),
        "sha512" => Some(format!(
            "sha512:{}",
            hex::encode(sha2::Sha512::digest(bytes))
        )),
        _ => None,
    }
}

fn is_digest(s: &str) -> bool {
    match s.split_once(':') {
        Some(("sha256", h)) => {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        }
        Some(("sha512", h)) => {
            h.len() == 128
                && h.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        }
        _ => false,
    }
}

fn error(status: u16, code: &str, message: &str) -> Reply {
    let body = serde_json::json!({"errors": [{"code": code, "message": message, "detail": null}]});
    response(
        status,
        &[("content-type", "application/json".to_string())],
        body.to_string(),
    )
}

const API_HEADER: (&str, &str) = ("docker-distribution-api-version", "registry/2.0");

enum Route<'a> {
    Base,
    Blob(String, &'a str),
    UploadStart(String),
    Upload(String, &'a str),
    Manifest(String, &'a str),
    Tags(String),
    Referrers(String, &'a str),
    Unknown,
}

fn route(path: &str) -> Route<'_> {
    if path == "/v2/" || path == "/v2" {
        return Route::Base;
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return Route::Unknown;
    };
    let segs: Vec<&str> = rest.split('/').collect();
    let n = segs.len();
    let name = |k: usize| segs.get(..k).map(|s| s.join("/")).unwrap_or_default();
    if n >= 3 {
        let (a, b) = (segs.get(n - 2).copied(), segs.get(n - 1).copied());
        match (a, b) {
            (Some("tags"), Some("list")) => return Route::Tags(name(n - 2)),
            (Some("blobs"), Some("uploads")) => return Route::UploadStart(name(n - 2)),
            (Some("blobs"), Some("")) => return Route::Unknown,
            _ => {}
        }
    }
    if n >= 4
        && segs.get(n - 3) == Some(&"blobs")
        && segs.get(n - 2) == Some(&"uploads")
        && let Some(id) = segs.get(n - 1)
    {
        if id.is_empty() {
            return Route::UploadStart(name(n - 3));
        }
        return Route::Upload(name(n - 3), id);
    }
    if n >= 2
        && let (Some(kind), Some(last)) = (segs.get(n - 2), segs.get(n - 1))
    {
        match *kind {
            "blobs" => return Route::Blob(name(n - 2), last),
            "manifests" => return Route::Manifest(name(n - 2), last),
            "referrers" => return Route::Referrers(name(n - 2), last),
            _ => {}
        }
    }
    Route::Unknown
}

fn handle(inner: &Inner, req: Req) -> Reply {
    let n = inner.count.fetch_add(1, Ordering::SeqCst) + 1;
    let path_q = req
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    if let Ok(mut st) = inner.state.lock() {
        st.log.push(RequestRecord {
            method: req.method.as_str().to_string(),
            path: path_q.clone(),
        });
    }
    if let Some(limit) = inner.config.fail_after_requests
        && n > limit
        && !inner.revived.load(Ordering::SeqCst)
    {
        return Reply::DropConnection;
    }
    if n <= inner.config.rate_limit_first_n {
        let body = serde_json::json!({"errors": [{"code": "TOOMANYREQUESTS", "message": "rate limited (fault injection)", "detail": null}]});
        return response(
            429,
            &[
                ("retry-after", "1".to_string()),
                ("content-type", "application/json".to_string()),
            ],
            body.to_string(),
        );
    }
    let query = parse_query(req.uri.query().unwrap_or(""));
    let q = |k: &str| {
        query
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let path = req.uri.path().to_string();
    let method = req.method.as_str();
    let Ok(mut st) = inner.state.lock() else {
        return error(500, "UNKNOWN", "state poisoned");
    };
    match route(&path) {
        Route::Base => match method {
            "GET" | "HEAD" => response(200, &[(API_HEADER.0, API_HEADER.1.to_string())], "{}"),
            _ => error(405, "UNSUPPORTED", "method not allowed"),
        },
        Route::Blob(name, digest) => {
            if !is_digest(digest) {
                return error(400, "DIGEST_INVALID", "invalid digest");
            }
            match method {
                "GET" | "HEAD" => {
                    let Some(b) = st.repos.get(&name).and_then(|r| r.blobs.get(digest)) else {
                        return error(404, "BLOB_UNKNOWN", "blob unknown to registry");
                    };
                    let headers = [
                        ("content-type", "application/octet-stream".to_string()),
                        ("docker-content-digest", digest.to_string()),
                        ("content-length", b.len().to_string()),
                    ];
                    let body = if method == "GET" {
                        b.clone()
                    } else {
                        Bytes::new()
                    };
                    head_or_get(method, &headers, body)
                }
                "DELETE" => match st.repos.get_mut(&name).and_then(|r| r.blobs.remove(digest)) {
                    Some(_) => response(202, &[], ""),
                    None => error(404, "BLOB_UNKNOWN", "blob unknown to registry"),
                },
                _ => error(405, "UNSUPPORTED", "method not allowed"),
            }
        }
        Route::UploadStart(name) => {
            if method != "POST" {
                return error(405, "UNSUPPORTED", "method not allowed");
            }
            if let Some(digest) = q("digest") {
                return finish_blob(&mut st, &name, &digest, req.body.to_vec());
            }
            let id = format!(
                "upload-{}",
                inner.next_upload.fetch_add(1, Ordering::SeqCst)
            );
            st.uploads.insert(id.clone(), (name.clone(), Vec::new()));
            response(
                202,
                &[
                    ("location", format!("/v2/{name}/blobs/uploads/{id}")),
                    ("docker-upload-uuid", id.clone()),
                    ("range", "0-0".to_string()),
                    ("content-length", "0".to_string()),
                ],
                "",
            )
        }
        Route::Upload(name, id) => {
            let Some((upload_repo, _)) = st.uploads.get(id) else {
                return error(404, "BLOB_UPLOAD_UNKNOWN", "upload unknown");
            };
            if *upload_repo != name {
                return error(404, "BLOB_UPLOAD_UNKNOWN", "upload unknown");
            }
            match method {
                "GET" => {
                    let len = st.uploads.get(id).map(|(_, d)| d.len()).unwrap_or(0);
                    response(
                        204,
                        &[
                            ("location", format!("/v2/{name}/blobs/uploads/{id}")),
                            ("range", format!("0-{}", len.saturating_sub(1))),
                        ],
                        "",
                    )
                }
                "PATCH" => {
                    let Some((_, data)) = st.uploads.get_mut(id) else {
                        return error(404, "BLOB_UPLOAD_UNKNOWN", "upload unknown");
                    };
                    if let Some(cr) = req
                        .headers
                        .get("content-range")
                        .and_then(|v| v.to_str().ok())
                    {
                        let start = cr
                            .split_once('-')
                            .and_then(|(s, _)| s.trim().parse::<usize>().ok());
                        if start != Some(data.len()) {
                            return error(416, "BLOB_UPLOAD_INVALID", "range not satisfiable");
                        }
                    }
                    data.extend_from_slice(&req.body);
                    let len = data.len();
                    response(
                        202,
                        &[
                            ("location", format!("/v2/{name}/blobs/uploads/{id}")),
                            ("range", format!("0-{}", len.saturating_sub(1))),
                            ("docker-upload-uuid", id.to_string()),
                        ],
                        "",
                    )
                }
                "PUT" => {
                    let Some(digest) = q("digest") else {
                        return error(400, "DIGEST_INVALID", "digest parameter missing");
                    };
                    let Some((_, mut data)) = st.uploads.remove(id) else {
                        return error(404, "BLOB_UPLOAD_UNKNOWN", "upload unknown");
                    };
                    data.extend_from_slice(&req.body);
                    finish_blob(&mut st, &name, &digest, data)
                }
                "DELETE" => {
                    st.uploads.remove(id);
                    response(204, &[], "")
                }
                _ => error(405, "UNSUPPORTED", "method not allowed"),
            }
        }
        Route::Manifest(name, reference) => {
            manifest(inner, &mut st, &req, method, &name, reference)
        }
        Route::Tags(name) => {
            if method != "GET" {
                return error(405, "UNSUPPORTED", "method not allowed");
            }
            let Some(repo) = st.repos.get(&name) else {
                return error(404, "NAME_UNKNOWN", "repository name not known to registry");
            };
            let last = q("last");
            let mut tags: Vec<String> = repo
                .tags
                .keys()
                .filter(|t| last.as_ref().is_none_or(|l| *t > l))
                .cloned()
                .collect();
            let limit = q("n")
                .and_then(|v| v.parse::<usize>().ok())
                .or(inner.config.page_size);
            let mut headers = vec![("content-type", "application/json".to_string())];
            if let Some(limit) = limit
                && tags.len() > limit
            {
                tags.truncate(limit);
                if let Some(l) = tags.last() {
                    headers.push((
                        "link",
                        format!("</v2/{name}/tags/list?n={limit}&last={l}>; rel=\"next\""),
                    ));
                }
            }
            let body = serde_json::json!({"name": name, "tags": tags});
            response(200, &headers, body.to_string())
        }
        Route::Referrers(name, digest) => {
            if method != "GET" {
                return error(405, "UNSUPPORTED", "method not allowed");
            }
            if inner.config.send_oci_subject_without_api {
                return error(404, "NAME_UNKNOWN", "referrers API not supported");
            }
            if !is_digest(digest) {
                return error(400, "DIGEST_INVALID", "invalid digest");
            }
            referrers(
                inner,
                &st,
                &name,
                digest,
                &q("artifactType"),
                q("page"),
                &path_q,
            )
        }
        Route::Unknown => error(404, "NAME_UNKNOWN", "unknown endpoint"),
    }
}

fn head_or_get(method: &str, headers: &[(&str, String)], body: Bytes) -> Reply {
    if method == "HEAD" {
        // hyper computes Content-Length from the (empty) body unless we keep ours; we send
        // the declared length header explicitly.
        response(200, headers, Bytes::new())
    } else {
        let h: Vec<(&str, String)> = headers
            .iter()
            .filter(|(k, _)| *k != "content-length")
            .cloned()
            .collect();
        response(200, &h, body)
    }
}

fn finish_blob(st: &mut State, name: &str, digest: &str, data: Vec<u8>) -> Reply {
    if !is_digest(digest) {
        return error(400, "DIGEST_INVALID", "invalid digest");
    }
    let alg = digest.split_once(':').map(|(a, _)| a).unwrap_or("");
    if digest_of(alg, &data).as_deref() != Some(digest) {
        return error(
            400,
            "DIGEST_INVALID",
            "provided digest did not match uploaded content",
        );
    }
    st.repos
        .entry(name.to_string())
        .or_default()
        .blobs
        .insert(digest.to_string(), Bytes::from(data));
    response(
        201,
        &[
            ("location", format!("/v2/{name}/blobs/{digest}")),
            ("docker-content-digest", digest.to_string()),
        ],
        "",
    )
}

fn media_type_base(v: &str) -> &str {
    v.split(';').next().unwrap_or("").trim()
}

fn accepts(req: &Req, media_type: &str) -> bool {
    req.headers.get_all("accept").iter().any(|v| {
        v.to_str()
            .map(|s| s.split(',').any(|t| media_type_base(t) == media_type))
            .unwrap_or(false)
    })
}

fn oversized_body() -> Bytes {
    let pad = "a".repeat(usize::try_from(OVERSIZED_BYTES).unwrap_or(8 << 20));
    let doc = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_MANIFEST,
        "config": {"mediaType": media_types::OCI_EMPTY, "digest": media_types::EMPTY_JSON_DIGEST, "size": 2},
        "layers": [],
        "annotations": {"padding": pad},
    });
    Bytes::from(doc.to_string())
}

fn manifest(
    inner: &Inner,
    st: &mut State,
    req: &Req,
    method: &str,
    name: &str,
    reference: &str,
) -> Reply {
    match method {
        "GET" | "HEAD" => {
            if inner.config.oversized_manifest && reference == OVERSIZED_TAG {
                let body = oversized_body();
                let headers = [
                    ("content-type", media_types::OCI_MANIFEST.to_string()),
                    ("docker-content-digest", sha256_digest(&body)),
                    ("content-length", body.len().to_string()),
                ];
                return head_or_get(method, &headers, body);
            }
            let Some(repo) = st.repos.get(name) else {
                return error(404, "NAME_UNKNOWN", "repository name not known to registry");
            };
            let digest = if is_digest(reference) {
                reference.to_string()
            } else {
                match repo.tags.get(reference) {
                    Some(d) => d.clone(),
                    None => return error(404, "MANIFEST_UNKNOWN", "manifest unknown"),
                }
            };
            let Some(m) = repo.manifests.get(&digest) else {
                return error(404, "MANIFEST_UNKNOWN", "manifest unknown");
            };
            if !accepts(req, &m.media_type) {
                return error(
                    404,
                    "MANIFEST_UNKNOWN",
                    "manifest found, but the Accept header does not list its media type",
                );
            }
            let headers = [
                ("content-type", m.media_type.clone()),
                ("docker-content-digest", digest.clone()),
                ("content-length", m.bytes.len().to_string()),
            ];
            head_or_get(method, &headers, m.bytes.clone())
        }
        "PUT" => put_manifest(inner, st, req, name, reference),
        "DELETE" => {
            let Some(repo) = st.repos.get_mut(name) else {
                return error(404, "NAME_UNKNOWN", "repository name not known to registry");
            };
            if is_digest(reference) {
                if repo.manifests.remove(reference).is_none() {
                    return error(404, "MANIFEST_UNKNOWN", "manifest unknown");
                }
                repo.tags.retain(|_, d| d != reference);
            } else if repo.tags.remove(reference).is_none() {
                return error(404, "MANIFEST_UNKNOWN", "manifest unknown");
            }
            response(202, &[], "")
        }
        _ => error(405, "UNSUPPORTED", "method not allowed"),
    }
}

fn put_manifest(inner: &Inner, st: &mut State, req: &Req, name: &str, reference: &str) -> Reply {
    if req.body.len() as u64 > limits::MAX_MANIFEST_BYTES {
        return error(413, "SIZE_INVALID", "manifest too large");
    }
    let Some(content_type) = req
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|v| media_type_base(v).to_string())
    else {
        return error(400, "MANIFEST_INVALID", "Content-Type required");
    };
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&req.body) else {
        return error(400, "MANIFEST_INVALID", "manifest is not JSON");
    };
    if let Some(mt) = doc.get("mediaType").and_then(|v| v.as_str())
        && mt != content_type
    {
        return error(
            400,
            "MANIFEST_INVALID",
            "mediaType does not match Content-Type",
        );
    }
    let digest = sha256_digest(&req.body);
    if is_digest(reference) {
        let alg = reference.split_once(':').map(|(a, _)| a).unwrap_or("");
        if digest_of(alg, &req.body).as_deref() != Some(reference) {
            return error(
                400,
                "DIGEST_INVALID",
                "manifest digest does not match reference",
            );
        }
    }
    let stored_digest = if is_digest(reference) {
        reference.to_string()
    } else {
        digest
    };
    let repo = st.repos.entry(name.to_string()).or_default();
    // Referenced content must exist (the subject need not).
    let mut missing = Vec::new();
    if let Some(cfg) = doc
        .get("config")
        .and_then(|c| c.get("digest"))
        .and_then(|d| d.as_str())
        && !repo.blobs.contains_key(cfg)
    {
        missing.push(cfg.to_string());
    }
    for l in doc
        .get("layers")
        .and_then(|l| l.as_array())
        .into_iter()
        .flatten()
    {
        if let Some(d) = l.get("digest").and_then(|d| d.as_str())
            && !repo.blobs.contains_key(d)
        {
            missing.push(d.to_string());
        }
    }
    for m in doc
        .get("manifests")
        .and_then(|l| l.as_array())
        .into_iter()
        .flatten()
    {
        if let Some(d) = m.get("digest").and_then(|d| d.as_str())
            && !repo.manifests.contains_key(d)
        {
            missing.push(d.to_string());
        }
    }
    if let Some(first) = missing.first() {
        return error(
            400,
            "MANIFEST_BLOB_UNKNOWN",
            &format!("blob unknown to registry: {first}"),
        );
    }
    repo.manifests.insert(
        stored_digest.clone(),
        StoredManifest {
            media_type: content_type,
            bytes: req.body.clone(),
        },
    );
    if !is_digest(reference) {
        repo.tags
            .insert(reference.to_string(), stored_digest.clone());
    }
    let mut headers = vec![
        ("location", format!("/v2/{name}/manifests/{stored_digest}")),
        ("docker-content-digest", stored_digest),
    ];
    if let Some(subject) = doc
        .get("subject")
        .and_then(|s| s.get("digest"))
        .and_then(|d| d.as_str())
    {
        let _ = inner;
        headers.push(("oci-subject", subject.to_string()));
    }
    response(201, &headers, "")
}

fn referrers(
    inner: &Inner,
    st: &State,
    name: &str,
    subject: &str,
    artifact_type: &Option<String>,
    page: Option<String>,
    self_path: &str,
) -> Reply {
    let mut descs: Vec<(String, serde_json::Value)> = Vec::new();
    if let Some(repo) = st.repos.get(name) {
        for (digest, m) in &repo.manifests {
            let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&m.bytes) else {
                continue;
            };
            let subj = doc
                .get("subject")
                .and_then(|s| s.get("digest"))
                .and_then(|d| d.as_str());
            if subj != Some(subject) {
                continue;
            }
            let at = doc
                .get("artifactType")
                .and_then(|v| v.as_str())
                .or_else(|| {
                    doc.get("config")
                        .and_then(|c| c.get("mediaType"))
                        .and_then(|v| v.as_str())
                })
                .map(str::to_string);
            if let Some(filter) = artifact_type
                && at.as_deref() != Some(filter.as_str())
            {
                continue;
            }
            let mut d = serde_json::json!({
                "mediaType": m.media_type,
                "digest": digest,
                "size": m.bytes.len(),
            });
            if let Some(at) = at {
                d["artifactType"] = serde_json::Value::String(at);
            }
            if let Some(ann) = doc.get("annotations").filter(|a| a.is_object()) {
                d["annotations"] = ann.clone();
            }
            descs.push((digest.clone(), d));
        }
    }
    descs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut headers = vec![("content-type", media_types::OCI_INDEX.to_string())];
    if artifact_type.is_some() {
        headers.push(("oci-filters-applied", "artifactType".to_string()));
    }
    let page_no = page.and_then(|p| p.parse::<usize>().ok()).unwrap_or(0);
    let items: Vec<serde_json::Value> = match inner.config.page_size {
        Some(size) if size > 0 => {
            let start = page_no.saturating_mul(size);
            let end = start.saturating_add(size).min(descs.len());
            if end < descs.len() {
                let mut next = format!("/v2/{name}/referrers/{subject}?page={}", page_no + 1);
                if let Some(at) = artifact_type {
                    next.push_str(&format!("&artifactType={}", encode_query(at)));
                }
                headers.push(("link", format!("<{next}>; rel=\"next\"")));
            }
            descs
                .get(start..end)
                .unwrap_or(&[])
                .iter()
                .map(|(_, d)| d.clone())
                .collect()
        }
        _ => descs.into_iter().map(|(_, d)| d).collect(),
    };
    if inner.config.link_loop {
        headers.retain(|(k, _)| *k != "link");
        headers.push(("link", format!("<{self_path}>; rel=\"next\"")));
    }
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_INDEX,
        "manifests": items,
    });
    response(200, &headers, body.to_string())
}

fn encode_query(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
