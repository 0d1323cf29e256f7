//! The blob endpoints: `HEAD`/`GET /v2/<name>/blobs/<digest>` and uploads
//! (`POST /v2/<name>/blobs/uploads/`, then `PUT` with the body, or `PATCH`
//! chunks then `PUT`).
//!
//! Uploads start with a `HEAD` (an existing blob is skipped), then `POST`
//! opens a session (202). The body always goes in a later `PUT`/`PATCH`,
//! never in the `POST` (distribution 2.8 ignores a single-POST body). Files
//! are streamed from disk in bounded reads and never held in memory; files
//! larger than one chunk go up as `PATCH` chunks. Reads stream through a
//! digest and size check.
//!
//! What this module does not do: retry an upload after a transport error
//! (the session is cancelled; nothing is committed under the digest unless
//! the registry verified it), or mount from another repository. It does not
//! mount from its own repository as an existence check either: on
//! distribution 2.8 a mount rewrites the repository's blob link in place
//! (truncate, then write), and a concurrent manifest PUT that reads the
//! link at that moment fails with `MANIFEST_BLOB_UNKNOWN`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::{Method, Response, StatusCode};
use stella_types::digest::Hasher;
use stella_types::{Descriptor, Digest, DigestError};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use url::Url;

use super::Repository;
use super::auth::Access;
use super::client::{Req, ReqBody, header_str, read_capped, unexpected};
use super::http::net_error;
use crate::OciError;
use crate::store::{BlobSource, Progress, PushOutcome};

/// Bytes per `PATCH` for file uploads unless the options say otherwise.
pub const DEFAULT_CHUNK_SIZE: u64 = 64 * 1024 * 1024;

impl Repository {
    fn blob_url(&self, digest: &Digest) -> Result<Url, OciError> {
        self.url(&format!("blobs/{digest}"))
    }

    pub(crate) async fn blob_exists_impl(&self, digest: &Digest) -> Result<bool, OciError> {
        self.blob_exists_as(digest, Access::Pull).await
    }

    /// HEAD a blob with the token level of the operation it is part of (a
    /// push asks for pull,push up front instead of two tokens).
    async fn blob_exists_as(&self, digest: &Digest, access: Access) -> Result<bool, OciError> {
        let req = Req::new(Method::HEAD, self.blob_url(digest)?, access);
        let resp = self.client.shared.execute(&self.target(), &req).await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(false),
            s if s.is_success() => Ok(true),
            _ => Err(unexpected(
                resp,
                &self.registry,
                &format!("blob {}@{digest}", self.display()),
            )
            .await),
        }
    }

    pub(crate) async fn fetch_blob_to_impl(
        &self,
        descriptor: &Descriptor,
        sink: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<u64, OciError> {
        let digest = &descriptor.digest;
        let what = format!("blob {}@{digest}", self.display());
        let req =
            Req::new(Method::GET, self.blob_url(digest)?, Access::Pull).transfer(descriptor.size);
        let resp = self.client.shared.execute(&self.target(), &req).await?;
        if !resp.status().is_success() {
            return Err(unexpected(resp, &self.registry, &what).await);
        }
        if let Some(len) = resp.content_length()
            && len != descriptor.size
        {
            return Err(OciError::integrity(
                what,
                DigestError::SizeMismatch {
                    expected: descriptor.size,
                    actual: len,
                },
            ));
        }
        let mut hasher = Hasher::new(digest.algorithm());
        let mut seen = 0u64;
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| net_error(&format!("reading {what}"), e, ""))?;
            seen += chunk.len() as u64;
            if seen > descriptor.size {
                return Err(OciError::integrity(
                    what,
                    DigestError::SizeMismatch {
                        expected: descriptor.size,
                        actual: seen,
                    },
                ));
            }
            hasher.update(&chunk);
            sink.write_all(&chunk)
                .await
                .map_err(|e| OciError::io(format!("writing {what}"), e))?;
        }
        if seen != descriptor.size {
            return Err(OciError::integrity(
                what,
                DigestError::SizeMismatch {
                    expected: descriptor.size,
                    actual: seen,
                },
            ));
        }
        let actual = hasher.finish();
        if &actual != digest {
            return Err(OciError::integrity(
                what,
                DigestError::Mismatch {
                    expected: digest.to_string(),
                    actual: actual.to_string(),
                },
            ));
        }
        sink.flush()
            .await
            .map_err(|e| OciError::io(format!("writing {what}"), e))?;
        Ok(seen)
    }

    pub(crate) async fn push_blob_impl(
        &self,
        descriptor: &Descriptor,
        source: BlobSource<'_>,
        progress: &dyn Progress,
    ) -> Result<PushOutcome, OciError> {
        let what = format!("blob {}@{}", self.display(), descriptor.digest);
        check_source(descriptor, &source, &what).await?;
        // HEAD first: an existing blob is never re-sent (and, on
        // distribution, its repository link is not rewritten, which a
        // concurrent manifest PUT could otherwise see half-written).
        if self
            .blob_exists_as(&descriptor.digest, Access::Push)
            .await?
        {
            return Ok(PushOutcome::AlreadyExisted);
        }
        let start = self.url("blobs/uploads/")?;
        self.start_and_upload(start, descriptor, source, progress, &what)
            .await
    }

    /// Like [`Self::push_blob_impl`] without the `HEAD`: `POST` an upload
    /// with `mount=<digest>&from=<this repository>`. A registry that has the
    /// blob answers 201 (nothing is sent); otherwise it opens an upload
    /// session (202), as the distribution spec says for a mount it cannot
    /// do. One request fewer for new content.
    pub(crate) async fn push_new_blob_impl(
        &self,
        descriptor: &Descriptor,
        source: BlobSource<'_>,
        progress: &dyn Progress,
    ) -> Result<PushOutcome, OciError> {
        let what = format!("blob {}@{}", self.display(), descriptor.digest);
        check_source(descriptor, &source, &what).await?;
        let mut start = self.url("blobs/uploads/")?;
        start
            .query_pairs_mut()
            .append_pair("mount", &descriptor.digest.to_string())
            .append_pair("from", &self.name);
        self.start_and_upload(start, descriptor, source, progress, &what)
            .await
    }

    /// `POST`s to `start` and, unless the registry answers that it mounted
    /// the blob (201), sends the bytes to the session it opened.
    async fn start_and_upload(
        &self,
        start: Url,
        descriptor: &Descriptor,
        source: BlobSource<'_>,
        progress: &dyn Progress,
        what: &str,
    ) -> Result<PushOutcome, OciError> {
        let digest = &descriptor.digest;
        let req = Req::new(Method::POST, start.clone(), Access::Push);
        let resp = self.client.shared.execute(&self.target(), &req).await?;
        match resp.status() {
            StatusCode::ACCEPTED => {}
            StatusCode::CREATED if start.query().is_some_and(|q| q.contains("mount=")) => {
                // Mounted: the registry has these bytes under this digest.
                if let Some(d) = header_str(&resp, "docker-content-digest")
                    && d.trim() != digest.to_string()
                {
                    return Err(OciError::integrity(
                        format!("{what} (mount answer's Docker-Content-Digest)"),
                        DigestError::Mismatch {
                            expected: digest.to_string(),
                            actual: d.trim().to_string(),
                        },
                    ));
                }
                return Ok(PushOutcome::AlreadyExisted);
            }
            _ => return Err(unexpected(resp, &self.registry, &format!("upload of {what}")).await),
        }
        let location = location(&resp, &start, &self.registry)?;

        let label = format!(
            "{}…",
            digest.to_string().chars().take(19).collect::<String>()
        );
        progress.start(&label, descriptor.size);
        let result = self
            .upload(location.clone(), descriptor, source, progress, what)
            .await;
        progress.finish();
        if let Err(e) = result {
            // Best effort: cancel the session so the registry can drop it.
            if let Some(loc) = e.1 {
                let cancel = Req::new(Method::DELETE, loc, Access::Push);
                let _ = tokio::time::timeout(
                    Duration::from_secs(5),
                    self.client.shared.execute(&self.target(), &cancel),
                )
                .await;
            }
            return Err(e.0);
        }
        Ok(PushOutcome::Uploaded)
    }

    /// Sends the bytes to an open session. On failure also returns the
    /// session URL to cancel.
    async fn upload(
        &self,
        mut location: Url,
        descriptor: &Descriptor,
        source: BlobSource<'_>,
        progress: &dyn Progress,
        what: &str,
    ) -> Result<(), (OciError, Option<Url>)> {
        let chunk = match self.client.shared.options.upload_chunk_size {
            0 => DEFAULT_CHUNK_SIZE,
            n => n,
        };
        let size = descriptor.size;
        let final_body = match source {
            BlobSource::Bytes(b) => {
                let body = ReqBody::Bytes(Bytes::copy_from_slice(b));
                progress.advance(0);
                Some((body, None))
            }
            BlobSource::File(p) if size <= chunk => {
                let counter = Arc::new(AtomicU64::new(0));
                Some((
                    ReqBody::File {
                        path: p.to_path_buf(),
                        offset: 0,
                        len: size,
                        counter: counter.clone(),
                    },
                    Some(counter),
                ))
            }
            BlobSource::File(p) => {
                let mut offset = 0u64;
                while offset < size {
                    let len = chunk.min(size - offset);
                    let counter = Arc::new(AtomicU64::new(0));
                    let body = ReqBody::File {
                        path: p.to_path_buf(),
                        offset,
                        len,
                        counter: counter.clone(),
                    };
                    let req = Req::new(Method::PATCH, location.clone(), Access::Push)
                        .header("Content-Type", "application/octet-stream")
                        .header("Content-Range", format!("{}-{}", offset, offset + len - 1))
                        .body(body);
                    let resp = self
                        .send_with_progress(&req, counter, progress)
                        .await
                        .map_err(|e| (e, Some(location.clone())))?;
                    if resp.status() != StatusCode::ACCEPTED
                        && resp.status() != StatusCode::NO_CONTENT
                    {
                        let loc = location.clone();
                        return Err((
                            unexpected(resp, &self.registry, &format!("chunk upload of {what}"))
                                .await,
                            Some(loc),
                        ));
                    }
                    location = super::blobs::location(&resp, &location, &self.registry)
                        .map_err(|e| (e, None))?;
                    offset += len;
                }
                None
            }
        };
        let mut put_url = location.clone();
        put_url
            .query_pairs_mut()
            .append_pair("digest", &descriptor.digest.to_string());
        // Finishing a chunked upload makes the registry verify the whole
        // blob: its deadline grows with the size.
        let mut req = Req::new(Method::PUT, put_url, Access::Push).transfer(size);
        let counter = match final_body {
            Some((body, counter)) => {
                req = req
                    .header("Content-Type", "application/octet-stream")
                    .body(body);
                counter
            }
            None => None,
        };
        let resp = match counter {
            Some(c) => self.send_with_progress(&req, c, progress).await,
            None => {
                let r = self.client.shared.execute(&self.target(), &req).await;
                if r.is_ok() && matches!(source, BlobSource::Bytes(_)) {
                    progress.advance(size);
                }
                r
            }
        }
        .map_err(|e| (e, Some(location.clone())))?;
        let status = resp.status();
        if status == StatusCode::CREATED
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::OK
        {
            if let Some(d) = header_str(&resp, "docker-content-digest")
                && d.trim() != descriptor.digest.to_string()
            {
                return Err((
                    OciError::integrity(
                        what.to_string(),
                        DigestError::Mismatch {
                            expected: descriptor.digest.to_string(),
                            actual: d.trim().to_string(),
                        },
                    ),
                    None,
                ));
            }
            return Ok(());
        }
        if status == StatusCode::BAD_REQUEST {
            let raw = read_capped(
                resp,
                stella_types::limits::MAX_ERROR_BODY_BYTES,
                "error body",
            )
            .await
            .unwrap_or_default();
            if super::client::error_codes(&raw)
                .iter()
                .any(|c| c == "DIGEST_INVALID" || c == "SIZE_INVALID")
            {
                return Err((
                    OciError::integrity(
                        what.to_string(),
                        DigestError::Mismatch {
                            expected: descriptor.digest.to_string(),
                            actual: "a different digest (the registry refused the upload)"
                                .to_string(),
                        },
                    ),
                    Some(location),
                ));
            }
            let summary = super::client::summarize_error_body(&raw).unwrap_or_default();
            return Err((
                OciError::Protocol(format!(
                    "registry {} rejected {what}: {summary}",
                    self.registry
                )),
                Some(location),
            ));
        }
        Err((
            unexpected(resp, &self.registry, &format!("upload of {what}")).await,
            Some(location),
        ))
    }

    /// Sends a request whose body advances `counter`, reporting progress
    /// while it runs.
    async fn send_with_progress(
        &self,
        req: &Req,
        counter: Arc<AtomicU64>,
        progress: &dyn Progress,
    ) -> Result<Response, OciError> {
        let target = self.target();
        let fut = self.client.shared.execute(&target, req);
        tokio::pin!(fut);
        let mut reported = 0u64;
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                r = &mut fut => {
                    let now = counter.load(Ordering::Relaxed);
                    if now > reported { progress.advance(now - reported); }
                    return r;
                }
                _ = tick.tick() => {
                    let now = counter.load(Ordering::Relaxed);
                    if now > reported { progress.advance(now - reported); reported = now; }
                }
            }
        }
    }
}

/// The upload session URL from `Location`, resolved against the request URL.
pub(crate) fn location(resp: &Response, base: &Url, registry: &str) -> Result<Url, OciError> {
    let loc = header_str(resp, "location").ok_or_else(|| {
        OciError::Protocol(format!(
            "registry {registry} opened an upload without a Location header"
        ))
    })?;
    base.join(loc.trim()).map_err(|e| {
        OciError::Protocol(format!(
            "registry {registry} sent an unusable upload Location: {e}"
        ))
    })
}

/// What can be checked locally before talking to the registry: the bytes
/// (or the file's size) against `descriptor`.
async fn check_source(
    descriptor: &Descriptor,
    source: &BlobSource<'_>,
    what: &str,
) -> Result<(), OciError> {
    match source {
        BlobSource::Bytes(b) => {
            if b.len() as u64 != descriptor.size {
                return Err(OciError::integrity(
                    what.to_string(),
                    DigestError::SizeMismatch {
                        expected: descriptor.size,
                        actual: b.len() as u64,
                    },
                ));
            }
            descriptor
                .digest
                .verify(b)
                .map_err(|e| OciError::integrity(what.to_string(), e))
        }
        BlobSource::File(p) => {
            let meta = tokio::fs::metadata(p)
                .await
                .map_err(|e| OciError::io(format!("reading {}", p.display()), e))?;
            if meta.len() != descriptor.size {
                return Err(OciError::integrity(
                    format!("{} for {what}", p.display()),
                    DigestError::SizeMismatch {
                        expected: descriptor.size,
                        actual: meta.len(),
                    },
                ));
            }
            Ok(())
        }
    }
}
