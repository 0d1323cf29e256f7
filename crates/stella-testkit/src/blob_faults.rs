//! A hostile read-only registry for pull tests: it serves `GET /v2/`, the
//! manifests and blobs it was given (by digest, manifests also by tag), and
//! misbehaves on exactly one blob, after sending part of it, with a named
//! [`BlobFault`]: the connection dies (a registry killed mid-transfer), or
//! the transfer stalls forever (a registry that hangs; the client is then
//! interrupted by the test).
//!
//! Every answer announces the full `Content-Length`, so the client cannot
//! tell the faulty blob from a good one until the bytes stop. Plain HTTP on
//! 127.0.0.1 only; no uploads, referrers API, tags list or auth.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use crate::TestkitError;
use crate::server::{BackgroundServer, bind_local, run_in_background};
use crate::spec_registry::sha256_digest;

/// What the faulty blob does after its first `n` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobFault {
    /// Send `n` bytes, then drop the connection.
    DieAfter(usize),
    /// Send `n` bytes, then send nothing more, ever.
    StallAfter(usize),
}

/// What to serve.
#[derive(Debug, Clone, Default)]
pub struct FaultyBlobContent {
    /// Repository name in the URL path.
    pub repo: String,
    /// Manifests as (media type, bytes, optional tag).
    pub manifests: Vec<(String, Vec<u8>, Option<String>)>,
    /// Blobs, served under their sha256 digest.
    pub blobs: Vec<Vec<u8>>,
    /// Digest (`sha256:<hex>`) of the blob that misbehaves.
    pub faulty_blob: String,
}

struct Served {
    repo: String,
    manifests: HashMap<String, (String, Bytes)>,
    blobs: HashMap<String, Bytes>,
    faulty_blob: String,
    fault: BlobFault,
    faulty_requests: AtomicUsize,
}

/// A running faulty registry (stops on drop).
pub struct FaultyBlobRegistry {
    server: BackgroundServer,
    served: Arc<Served>,
}

impl std::fmt::Debug for FaultyBlobRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyBlobRegistry")
            .field("addr", &self.server.addr())
            .field("fault", &self.served.fault)
            .finish()
    }
}

/// A response body: `first`, then the end, an error or nothing forever.
struct FaultyBody {
    first: Option<Bytes>,
    after: Option<BlobFault>,
    total: u64,
}

#[derive(Debug)]
struct Died;
impl std::fmt::Display for Died {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("registry died mid-blob (fault injection)")
    }
}
impl std::error::Error for Died {}

impl Body for FaultyBody {
    type Data = Bytes;
    type Error = Died;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Died>>> {
        let this = self.get_mut();
        if let Some(b) = this.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(b))));
        }
        match this.after {
            None => Poll::Ready(None),
            Some(BlobFault::DieAfter(_)) => Poll::Ready(Some(Err(Died))),
            // Never woken: the connection hangs until the server stops.
            Some(BlobFault::StallAfter(_)) => Poll::Pending,
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.total)
    }
}

fn reply(status: u16, headers: &[(&str, String)], body: FaultyBody) -> Response<FaultyBody> {
    let mut r = Response::new(body);
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            hyper::header::HeaderName::from_bytes(k.as_bytes()),
            hyper::header::HeaderValue::from_str(v),
        ) {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

fn whole(bytes: Bytes, head: bool) -> FaultyBody {
    let total = bytes.len() as u64;
    FaultyBody {
        first: if head { None } else { Some(bytes) },
        after: None,
        total: if head { 0 } else { total },
    }
}

fn not_found() -> Response<FaultyBody> {
    reply(404, &[], whole(Bytes::new(), false))
}

fn handle(served: &Served, method: &hyper::Method, path: &str) -> Response<FaultyBody> {
    let head = method == hyper::Method::HEAD;
    if method != hyper::Method::GET && !head {
        return reply(405, &[], whole(Bytes::new(), false));
    }
    if path == "/v2/" || path == "/v2" {
        return reply(200, &[], whole(Bytes::from_static(b"{}"), head));
    }
    let Some(rest) = path.strip_prefix(&format!("/v2/{}/", served.repo)) else {
        return not_found();
    };
    if let Some(reference) = rest.strip_prefix("manifests/") {
        let Some((media_type, bytes)) = served.manifests.get(reference) else {
            return not_found();
        };
        let headers = [
            ("content-type", media_type.clone()),
            ("docker-content-digest", sha256_digest(bytes)),
            ("content-length", bytes.len().to_string()),
        ];
        return reply(200, &headers, whole(bytes.clone(), head));
    }
    let Some(digest) = rest.strip_prefix("blobs/") else {
        return not_found();
    };
    let Some(bytes) = served.blobs.get(digest) else {
        return not_found();
    };
    let headers = [
        ("content-type", "application/octet-stream".to_string()),
        ("docker-content-digest", digest.to_string()),
        ("content-length", bytes.len().to_string()),
    ];
    if head || digest != served.faulty_blob {
        return reply(200, &headers, whole(bytes.clone(), head));
    }
    served.faulty_requests.fetch_add(1, Ordering::SeqCst);
    let n = match served.fault {
        BlobFault::DieAfter(n) | BlobFault::StallAfter(n) => n.min(bytes.len()),
    };
    let body = FaultyBody {
        first: Some(bytes.slice(..n)),
        after: Some(served.fault),
        total: bytes.len() as u64,
    };
    reply(200, &headers, body)
}

impl FaultyBlobRegistry {
    /// Starts serving `content` on a free 127.0.0.1 port, with `fault` on its faulty blob.
    pub fn start(content: FaultyBlobContent, fault: BlobFault) -> Result<Self, TestkitError> {
        let mut manifests = HashMap::new();
        for (media_type, bytes, tag) in content.manifests {
            let bytes = Bytes::from(bytes);
            manifests.insert(sha256_digest(&bytes), (media_type.clone(), bytes.clone()));
            if let Some(t) = tag {
                manifests.insert(t, (media_type, bytes));
            }
        }
        let blobs = content
            .blobs
            .into_iter()
            .map(|b| (sha256_digest(&b), Bytes::from(b)))
            .collect();
        let served = Arc::new(Served {
            repo: content.repo,
            manifests,
            blobs,
            faulty_blob: content.faulty_blob,
            fault,
            faulty_requests: AtomicUsize::new(0),
        });
        let (listener, _) = bind_local()?;
        let for_server = served.clone();
        let server = run_in_background("faulty-blob-registry", listener, move |stream| {
            let served = for_server.clone();
            async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let r = handle(&served, req.method(), req.uri().path());
                    async move { Ok::<_, std::convert::Infallible>(r) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            }
        })?;
        Ok(FaultyBlobRegistry { server, served })
    }

    /// `127.0.0.1:<port>`.
    pub fn host_port(&self) -> String {
        self.server.addr().to_string()
    }

    /// How many GETs of the faulty blob were answered (each one misbehaved).
    pub fn faulty_requests(&self) -> usize {
        self.served.faulty_requests.load(Ordering::SeqCst)
    }
}
