//! A tiny background HTTP/1.1 server (hyper) on its own thread and tokio runtime, so it
//! serves whether or not the test that owns it runs inside a runtime. Stops on drop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use crate::TestkitError;

/// A request with its body read into memory.
pub(crate) struct Req {
    pub method: hyper::Method,
    pub uri: hyper::Uri,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

/// What a handler returns: a response, or "drop the connection without answering".
pub(crate) enum Reply {
    Respond(Response<Full<Bytes>>),
    DropConnection,
}

#[derive(Debug)]
pub(crate) struct Dropped;
impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}
impl std::error::Error for Dropped {}

pub(crate) struct BackgroundServer {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundServer {
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for BackgroundServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Binds 127.0.0.1 on a port the OS chooses (non-blocking, for tokio).
pub(crate) fn bind_local() -> Result<(std::net::TcpListener, SocketAddr), TestkitError> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| TestkitError::io("binding 127.0.0.1:0", e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| TestkitError::io("set_nonblocking", e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| TestkitError::io("local_addr", e))?;
    Ok((listener, addr))
}

/// Runs an accept loop on `listener` in a background thread with its own
/// tokio runtime, handing every connection to `serve_connection` (on its own
/// task). The loop stops when the returned server is dropped.
pub(crate) fn run_in_background<C, F>(
    name: &str,
    listener: std::net::TcpListener,
    serve_connection: C,
) -> Result<BackgroundServer, TestkitError>
where
    C: Fn(tokio::net::TcpStream) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let addr = listener
        .local_addr()
        .map_err(|e| TestkitError::io("local_addr", e))?;
    let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                loop {
                    tokio::select! {
                        _ = &mut rx => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            tokio::spawn(serve_connection(stream));
                        }
                    }
                }
            });
        })
        .map_err(|e| TestkitError::io("spawning server thread", e))?;
    Ok(BackgroundServer {
        addr,
        shutdown: Some(tx),
        thread: Some(thread),
    })
}

/// Starts `handler` on 127.0.0.1 (port chosen by the OS) in a background thread.
pub(crate) fn spawn<H, F>(name: &str, handler: H) -> Result<BackgroundServer, TestkitError>
where
    H: Fn(Req) -> F + Send + Sync + 'static,
    F: Future<Output = Reply> + Send + 'static,
{
    let (listener, _) = bind_local()?;
    let handler = Arc::new(handler);
    run_in_background(name, listener, move |stream| {
        let handler = handler.clone();
        async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let handler = handler.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    let body = match body.collect().await {
                        Ok(b) => b.to_bytes(),
                        Err(_) => return Err(Dropped),
                    };
                    let req = Req {
                        method: parts.method,
                        uri: parts.uri,
                        headers: parts.headers,
                        body,
                    };
                    match handler(req).await {
                        Reply::Respond(r) => Ok::<_, Dropped>(r),
                        Reply::DropConnection => Err(Dropped),
                    }
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        }
    })
}

/// Builds a response; header values that fail to parse are skipped (test code only).
pub(crate) fn response(status: u16, headers: &[(&str, String)], body: impl Into<Bytes>) -> Reply {
    let mut b = Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, v.as_str());
    }
    match b.body(Full::new(body.into())) {
        Ok(r) => Reply::Respond(r),
        Err(_) => {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
            Reply::Respond(r)
        }
    }
}
