//! The manifest endpoints: `HEAD`/`GET`/`PUT`/`DELETE /v2/<name>/manifests/<reference>`.
//!
//! Every manifest read is capped and checked against the digest asked for
//! and against `Docker-Content-Digest` when the registry sends it. `Accept`
//! lists every manifest media type Stella reads (distribution 2.8 answers
//! "manifest unknown" when the stored type is not accepted) and `PUT` sends
//! the manifest's exact media type as `Content-Type`.
//!
//! What this module does not do: decide what to push, or retry a `PUT`
//! after a transport failure.

use reqwest::{Method, StatusCode};
use stella_types::limits::MAX_MANIFEST_BYTES;
use stella_types::media_types::MANIFEST_ACCEPT;
use stella_types::{Descriptor, Digest, DigestError, Manifest, ManifestError};
use url::Url;

use super::Repository;
use super::auth::Access;
use super::client::{Req, ReqBody, Target, header_str, read_capped, read_error_body, unexpected};
use crate::OciError;
use crate::store::{BlobSource, FetchedManifest, NoProgress};

/// A manifest as served, its digest computed over the bytes.
pub(crate) struct RawManifest {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
    pub digest: Digest,
    pub etag: Option<String>,
}

/// How a conditional manifest `PUT` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PutOutcome {
    /// Stored; whether the answer carried `OCI-Subject` (a registry with
    /// the referrers API must send it for a manifest with a `subject`).
    Written { oci_subject: bool },
    /// 412: the `If-Match` precondition failed; re-read and merge.
    PreconditionFailed,
    /// 400 with `MANIFEST_BLOB_UNKNOWN` (an index names a missing manifest).
    ChildUnknown(String),
}

pub(crate) use stella_types::reference::is_valid_tag as valid_tag;

impl Repository {
    pub(crate) fn target(&self) -> Target<'_> {
        Target {
            registry: &self.registry,
            repository: &self.name,
        }
    }

    /// `<base>/v2/<name>/<tail>`.
    pub(crate) fn url(&self, tail: &str) -> Result<Url, OciError> {
        let s = format!(
            "{}/v2/{}/{}",
            self.client.shared.base_url(&self.registry),
            self.name,
            tail
        );
        Url::parse(&s).map_err(|e| {
            OciError::InvalidInput(format!("cannot form a URL for {}: {e}", self.display()))
        })
    }

    fn manifest_url(&self, reference: &str) -> Result<Url, OciError> {
        if Digest::parse(reference).is_err() && !valid_tag(reference) {
            return Err(OciError::InvalidInput(format!(
                "{reference:?} is neither a tag nor a digest"
            )));
        }
        self.url(&format!("manifests/{reference}"))
    }

    /// `HEAD` a manifest: its descriptor if it exists.
    pub(crate) async fn manifest_exists_impl(
        &self,
        reference: &str,
    ) -> Result<Option<Descriptor>, OciError> {
        let req = Req::new(Method::HEAD, self.manifest_url(reference)?, Access::Pull)
            .header("Accept", MANIFEST_ACCEPT.join(", "));
        let resp = self.client.shared.execute(&self.target(), &req).await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => {
                let digest = header_str(&resp, "docker-content-digest")
                    .and_then(|d| Digest::parse(d.trim()).ok());
                let digest = match (digest, Digest::parse(reference)) {
                    (Some(served), Ok(asked))
                        if served.algorithm() == asked.algorithm() && served != asked =>
                    {
                        return Err(OciError::integrity(
                            format!(
                                "manifest {}@{asked} (Docker-Content-Digest)",
                                self.display()
                            ),
                            DigestError::Mismatch {
                                expected: asked.to_string(),
                                actual: served.to_string(),
                            },
                        ));
                    }
                    (_, Ok(asked)) => asked,
                    (Some(d), Err(_)) => d,
                    (None, Err(_)) => {
                        // No digest header: fall back to GET and compute it.
                        return Ok(self
                            .get_manifest_raw(reference, MAX_MANIFEST_BYTES)
                            .await?
                            .map(|raw| descriptor_of(&raw)));
                    }
                };
                let media_type = header_str(&resp, "content-type")
                    .map(|c| c.split(';').next().unwrap_or(c).trim().to_string())
                    .unwrap_or_default();
                // The header itself: for a HEAD answer the body length is 0.
                let size = header_str(&resp, "content-length")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(0);
                if media_type.is_empty() || size == 0 {
                    return Ok(self
                        .get_manifest_raw(reference, MAX_MANIFEST_BYTES)
                        .await?
                        .map(|raw| descriptor_of(&raw)));
                }
                Ok(Some(Descriptor::new(media_type, digest, size)))
            }
            _ => Err(unexpected(
                resp,
                &self.registry,
                &format!("manifest {}:{reference}", self.display()),
            )
            .await),
        }
    }

    /// `GET` a manifest (or index) by tag or digest, capped at `cap`;
    /// `None` on 404. Checks `Docker-Content-Digest` against the bytes.
    pub(crate) async fn get_manifest_raw(
        &self,
        reference: &str,
        cap: u64,
    ) -> Result<Option<RawManifest>, OciError> {
        self.get_manifest_raw_as(reference, cap, Access::Pull).await
    }

    /// [`Self::get_manifest_raw`] with the credentials of `access`: a read
    /// that a `PUT` will follow asks for push access up front, so no token
    /// fetch falls between the read and the write.
    pub(crate) async fn get_manifest_raw_as(
        &self,
        reference: &str,
        cap: u64,
        access: Access,
    ) -> Result<Option<RawManifest>, OciError> {
        let req = Req::new(Method::GET, self.manifest_url(reference)?, access)
            .header("Accept", MANIFEST_ACCEPT.join(", "));
        let resp = self.client.shared.execute(&self.target(), &req).await?;
        let what = format!(
            "manifest {}{}{reference}",
            self.display(),
            if reference.contains(':') { "@" } else { ":" }
        );
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(unexpected(resp, &self.registry, &what).await);
        }
        let content_type = header_str(&resp, "content-type")
            .map(|c| c.split(';').next().unwrap_or(c).trim().to_string());
        let header_digest =
            header_str(&resp, "docker-content-digest").map(|d| d.trim().to_string());
        let etag = header_str(&resp, "etag").map(str::to_string);
        let bytes = read_capped(resp, cap, &what).await?;
        let digest = Digest::sha256_of(&bytes);
        if let Some(h) = header_digest {
            let claimed = Digest::parse(&h).map_err(|e| {
                OciError::Protocol(format!(
                    "registry {} sent a bad Docker-Content-Digest for {what}: {e}",
                    self.registry
                ))
            })?;
            claimed
                .verify(&bytes)
                .map_err(|e| OciError::integrity(format!("{what} (Docker-Content-Digest)"), e))?;
        }
        Ok(Some(RawManifest {
            bytes,
            content_type,
            digest,
            etag,
        }))
    }

    pub(crate) async fn resolve_tag_impl(&self, tag: &str) -> Result<Descriptor, OciError> {
        if !valid_tag(tag) {
            return Err(OciError::InvalidInput(format!(
                "{tag:?} is not a valid tag"
            )));
        }
        let d = self
            .manifest_exists_impl(tag)
            .await?
            .ok_or_else(|| OciError::not_found(format!("image {}:{tag}", self.display())))?;
        if d.size > MAX_MANIFEST_BYTES {
            return Err(OciError::manifest(
                &d.digest,
                ManifestError::TooLarge {
                    size: d.size,
                    limit: MAX_MANIFEST_BYTES,
                },
            ));
        }
        Ok(d)
    }

    pub(crate) async fn fetch_manifest_impl(
        &self,
        digest: &Digest,
    ) -> Result<FetchedManifest, OciError> {
        let raw = self
            .get_manifest_raw(&digest.to_string(), MAX_MANIFEST_BYTES)
            .await?
            .ok_or_else(|| OciError::not_found(format!("manifest {}@{digest}", self.display())))?;
        digest
            .verify(&raw.bytes)
            .map_err(|e| OciError::integrity(format!("manifest {}@{digest}", self.display()), e))?;
        let parsed = Manifest::parse(&raw.bytes, raw.content_type.as_deref())
            .map_err(|e| OciError::manifest(digest, e))?;
        let mut descriptor =
            Descriptor::new(parsed.media_type(), digest.clone(), raw.bytes.len() as u64);
        if let Manifest::Image(m) = &parsed {
            descriptor.artifact_type = m.artifact_type.clone();
        }
        Ok(FetchedManifest {
            descriptor,
            bytes: raw.bytes,
        })
    }

    pub(crate) async fn push_manifest_impl(
        &self,
        media_type: &str,
        bytes: &[u8],
        tag: Option<&str>,
    ) -> Result<Descriptor, OciError> {
        let digest = Digest::sha256_of(bytes);
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(OciError::manifest(
                &digest,
                ManifestError::TooLarge {
                    size: bytes.len() as u64,
                    limit: MAX_MANIFEST_BYTES,
                },
            ));
        }
        // PUT by tag creates both the manifest and the tag in one request.
        let reference = match tag {
            Some(t) => t.to_string(),
            None => digest.to_string(),
        };
        let mut outcome = self
            .put_manifest(&reference, media_type, bytes, None)
            .await?;
        // distribution 2.8 can report a blob that exists as unknown while a
        // concurrent request rewrites its link; look again before failing.
        for attempt in 1..=3u64 {
            if !matches!(outcome, PutOutcome::ChildUnknown(_)) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(
                100 * attempt + fastrand::u64(0..=100),
            ))
            .await;
            outcome = self
                .put_manifest(&reference, media_type, bytes, None)
                .await?;
        }
        self.manifest_pushed(outcome, media_type, bytes)
    }

    /// [`crate::store::ContentWrite::push_manifest_config_likely_present`]: the manifest
    /// first (by digest); only when the registry says it names content the
    /// repository lacks, the config blob, then the manifest again (with
    /// [`Self::push_manifest_impl`]'s retries).
    pub(crate) async fn push_manifest_config_first_try_impl(
        &self,
        media_type: &str,
        bytes: &[u8],
        config: &Descriptor,
        config_bytes: &[u8],
    ) -> Result<Descriptor, OciError> {
        let digest = Digest::sha256_of(bytes);
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return self.push_manifest_impl(media_type, bytes, None).await;
        }
        let outcome = self
            .put_manifest(&digest.to_string(), media_type, bytes, None)
            .await?;
        if matches!(outcome, PutOutcome::ChildUnknown(_)) {
            self.push_blob_impl(config, BlobSource::Bytes(config_bytes), &NoProgress)
                .await?;
            return self.push_manifest_impl(media_type, bytes, None).await;
        }
        self.manifest_pushed(outcome, media_type, bytes)
    }

    /// The result of a manifest `PUT` (by digest or tag) once no retry is left.
    fn manifest_pushed(
        &self,
        outcome: PutOutcome,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Descriptor, OciError> {
        let digest = Digest::sha256_of(bytes);
        match outcome {
            PutOutcome::Written { oci_subject } => {
                if !oci_subject {
                    self.note_no_oci_subject(bytes);
                }
                Ok(Descriptor::new(media_type, digest, bytes.len() as u64))
            }
            PutOutcome::PreconditionFailed => Err(OciError::Protocol(format!(
                "registry {} refused an unconditional manifest PUT with 412",
                self.registry
            ))),
            PutOutcome::ChildUnknown(m) => Err(OciError::Protocol(format!(
                "registry {} refused manifest {digest}: it names content the repository lacks ({m})",
                self.registry
            ))),
        }
    }

    /// `PUT` manifest bytes under a tag or digest, with `If-Match` if given.
    pub(crate) async fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
        if_match: Option<&str>,
    ) -> Result<PutOutcome, OciError> {
        let digest = Digest::sha256_of(bytes);
        let mut req = Req::new(Method::PUT, self.manifest_url(reference)?, Access::Push)
            .header("Content-Type", media_type)
            .body(ReqBody::Bytes(bytes::Bytes::copy_from_slice(bytes)));
        if let Some(etag) = if_match {
            req = req.header("If-Match", etag);
        }
        let resp = self.client.shared.execute(&self.target(), &req).await?;
        let status = resp.status();
        if status == StatusCode::PRECONDITION_FAILED {
            return Ok(PutOutcome::PreconditionFailed);
        }
        if status == StatusCode::BAD_REQUEST {
            let raw = read_capped(
                resp,
                stella_types::limits::MAX_ERROR_BODY_BYTES,
                "error body",
            )
            .await
            .unwrap_or_default();
            let codes = super::client::error_codes(&raw);
            let summary = super::client::summarize_error_body(&raw).unwrap_or_default();
            if codes
                .iter()
                .any(|c| c == "MANIFEST_BLOB_UNKNOWN" || c == "BLOB_UNKNOWN")
            {
                return Ok(PutOutcome::ChildUnknown(summary));
            }
            return Err(OciError::Protocol(format!(
                "registry {} rejected manifest {digest} ({media_type}): {summary}",
                self.registry
            )));
        }
        if !status.is_success() {
            return Err(unexpected(
                resp,
                &self.registry,
                &format!("manifest upload to {}:{reference}", self.display()),
            )
            .await);
        }
        if let Some(d) = header_str(&resp, "docker-content-digest")
            && d.trim() != digest.to_string()
        {
            return Err(OciError::integrity(
                format!(
                    "manifest upload to {}:{reference} (Docker-Content-Digest)",
                    self.display()
                ),
                DigestError::Mismatch {
                    expected: digest.to_string(),
                    actual: d.trim().to_string(),
                },
            ));
        }
        Ok(PutOutcome::Written {
            oci_subject: header_str(&resp, "oci-subject").is_some(),
        })
    }

    pub(crate) async fn delete_manifest_impl(&self, digest: &Digest) -> Result<(), OciError> {
        let req = Req::new(
            Method::DELETE,
            self.manifest_url(&digest.to_string())?,
            Access::Delete,
        );
        let resp = self.client.shared.execute(&self.target(), &req).await?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        if status == StatusCode::METHOD_NOT_ALLOWED {
            let body = read_error_body(resp).await;
            return Err(OciError::Protocol(format!(
                "registry {} does not allow deleting manifests{} (distribution: set REGISTRY_STORAGE_DELETE_ENABLED=true)",
                self.registry,
                body.map(|b| format!(": {b}")).unwrap_or_default()
            )));
        }
        Err(unexpected(
            resp,
            &self.registry,
            &format!("manifest {}@{digest}", self.display()),
        )
        .await)
    }
}

fn descriptor_of(raw: &RawManifest) -> Descriptor {
    let mt = raw
        .content_type
        .clone()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            Manifest::parse(&raw.bytes, None)
                .ok()
                .map(|m| m.media_type().to_string())
        })
        .unwrap_or_default();
    Descriptor::new(mt, raw.digest.clone(), raw.bytes.len() as u64)
}
