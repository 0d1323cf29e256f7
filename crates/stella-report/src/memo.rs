//! A store that reads each thing once: [`ReadOnce`] wraps a store for the
//! life of one request and remembers the manifests, small blobs, tag
//! resolutions and referrer listings it has read, so computing two reports
//! of one image (a policy preview: the active revision and the candidate)
//! reads the registry once per blob, and the evidence a report reads after
//! the engine verified it is not fetched a second time.
//!
//! Manifests and blobs are remembered by digest (the inner store checked
//! the bytes against it). Tags and referrer listings are not
//! content-addressed: remembering them means every read in the request
//! sees one snapshot of the registry, which is what a preview compares.
//! Blobs over [`MAX_REMEMBERED_BLOB`] bytes, and any blob once
//! [`MAX_REMEMBERED_TOTAL`] bytes of blobs are held, are passed through
//! (read again when asked again), so one request's memory stays bounded.
//! Errors are not remembered.
//!
//! Not here: anything that outlives a request (see [`crate::cache`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use stella_oci::OciError;
use stella_oci::store::{
    ContentRead, FetchedManifest, ReferrerListing, ReferrersMode, ReferrersRead,
};
use stella_types::{Descriptor, Digest};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Largest blob remembered (documents and attestation layers are far
/// smaller; image layers are larger and never read by a report).
pub const MAX_REMEMBERED_BLOB: u64 = stella_types::limits::MAX_JSON_DOCUMENT_BYTES;

/// Most bytes of blobs one [`ReadOnce`] holds.
pub const MAX_REMEMBERED_TOTAL: u64 = 64 * 1024 * 1024;

#[derive(Default)]
struct Seen {
    tags: HashMap<String, Descriptor>,
    manifests: HashMap<Digest, FetchedManifest>,
    blobs: HashMap<Digest, Vec<u8>>,
    blob_bytes: u64,
    listings: HashMap<(Digest, Vec<String>, bool), ReferrerListing>,
    mode: Option<ReferrersMode>,
}

/// A store that reads each manifest, small blob, tag and listing once.
pub struct ReadOnce<S> {
    inner: S,
    seen: Mutex<Seen>,
    reads: AtomicU64,
}

impl<S> ReadOnce<S> {
    pub fn new(inner: S) -> Self {
        ReadOnce {
            inner,
            seen: Mutex::new(Seen::default()),
            reads: AtomicU64::new(0),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// How many reads were passed to the wrapped store.
    pub fn inner_reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    fn seen(&self) -> MutexGuard<'_, Seen> {
        // Every update is a single insert: a poisoned map is still whole.
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
    }
}

impl<S: ContentRead> ContentRead for ReadOnce<S> {
    async fn resolve_tag(&self, tag: &str) -> Result<Descriptor, OciError> {
        if let Some(d) = self.seen().tags.get(tag) {
            return Ok(d.clone());
        }
        self.count();
        let d = self.inner.resolve_tag(tag).await?;
        self.seen().tags.insert(tag.to_string(), d.clone());
        Ok(d)
    }

    async fn fetch_manifest(&self, digest: &Digest) -> Result<FetchedManifest, OciError> {
        if let Some(m) = self.seen().manifests.get(digest) {
            return Ok(m.clone());
        }
        self.count();
        let m = self.inner.fetch_manifest(digest).await?;
        self.seen().manifests.insert(digest.clone(), m.clone());
        Ok(m)
    }

    async fn manifest_exists(&self, digest: &Digest) -> Result<bool, OciError> {
        if self.seen().manifests.contains_key(digest) {
            return Ok(true);
        }
        self.count();
        self.inner.manifest_exists(digest).await
    }

    async fn blob_exists(&self, digest: &Digest) -> Result<bool, OciError> {
        if self.seen().blobs.contains_key(digest) {
            return Ok(true);
        }
        self.count();
        self.inner.blob_exists(digest).await
    }

    async fn fetch_blob_to(
        &self,
        descriptor: &Descriptor,
        sink: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<u64, OciError> {
        if descriptor.size > MAX_REMEMBERED_BLOB {
            self.count();
            return self.inner.fetch_blob_to(descriptor, sink).await;
        }
        let remembered = self.seen().blobs.get(&descriptor.digest).cloned();
        let bytes = match remembered {
            Some(b) => b,
            None => {
                self.count();
                let mut buf = Vec::with_capacity(usize::try_from(descriptor.size).unwrap_or(0));
                self.inner.fetch_blob_to(descriptor, &mut buf).await?;
                let mut seen = self.seen();
                let total = seen.blob_bytes.saturating_add(buf.len() as u64);
                if total <= MAX_REMEMBERED_TOTAL {
                    seen.blob_bytes = total;
                    seen.blobs.insert(descriptor.digest.clone(), buf.clone());
                }
                drop(seen);
                buf
            }
        };
        sink.write_all(&bytes)
            .await
            .map_err(|e| OciError::io(format!("writing blob {}", descriptor.digest), e))?;
        Ok(bytes.len() as u64)
    }
}

impl<S: ReferrersRead> ReadOnce<S> {
    async fn listing(
        &self,
        subject: &Digest,
        artifact_types: &[String],
        skip_legacy: bool,
    ) -> Result<ReferrerListing, OciError> {
        let key = (subject.clone(), artifact_types.to_vec(), skip_legacy);
        if let Some(l) = self.seen().listings.get(&key) {
            return Ok(l.clone());
        }
        self.count();
        let l = if skip_legacy {
            self.inner
                .list_referrers_skip_legacy(subject, artifact_types)
                .await?
        } else {
            self.inner.list_referrers(subject, artifact_types).await?
        };
        self.seen().listings.insert(key, l.clone());
        Ok(l)
    }
}

impl<S: ReferrersRead> ReferrersRead for ReadOnce<S> {
    async fn referrers_mode(&self) -> Result<ReferrersMode, OciError> {
        if let Some(m) = self.seen().mode {
            return Ok(m);
        }
        let m = self.inner.referrers_mode().await?;
        self.seen().mode = Some(m);
        Ok(m)
    }

    async fn list_referrers(
        &self,
        subject: &Digest,
        artifact_types: &[String],
    ) -> Result<ReferrerListing, OciError> {
        self.listing(subject, artifact_types, false).await
    }

    async fn list_referrers_skip_legacy(
        &self,
        subject: &Digest,
        artifact_types: &[String],
    ) -> Result<ReferrerListing, OciError> {
        self.listing(subject, artifact_types, true).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    /// A store that serves fixed content and counts every call by name;
    /// a blob or manifest it does not hold is a not-found error.
    #[derive(Default)]
    struct Counting {
        blobs: HashMap<Digest, Vec<u8>>,
        manifests: HashMap<Digest, Vec<u8>>,
        calls: Mutex<HashMap<&'static str, u32>>,
    }

    impl Counting {
        fn call(&self, name: &'static str) {
            *self.calls.lock().unwrap().entry(name).or_default() += 1;
        }
        fn calls(&self, name: &str) -> u32 {
            self.calls.lock().unwrap().get(name).copied().unwrap_or(0)
        }
        fn with_blob(mut self, bytes: Vec<u8>) -> (Self, Descriptor) {
            let d = Digest::sha256_of(&bytes);
            let desc = Descriptor::new("application/json", d.clone(), bytes.len() as u64);
            self.blobs.insert(d, bytes);
            (self, desc)
        }
    }

    impl ContentRead for Counting {
        async fn resolve_tag(&self, tag: &str) -> Result<Descriptor, OciError> {
            self.call("resolve_tag");
            let (d, b) = self
                .manifests
                .iter()
                .next()
                .ok_or_else(|| OciError::not_found(tag))?;
            Ok(Descriptor::new(
                "application/json",
                d.clone(),
                b.len() as u64,
            ))
        }
        async fn fetch_manifest(&self, digest: &Digest) -> Result<FetchedManifest, OciError> {
            self.call("fetch_manifest");
            let bytes = self
                .manifests
                .get(digest)
                .cloned()
                .ok_or_else(|| OciError::not_found(digest.to_string()))?;
            Ok(FetchedManifest {
                descriptor: Descriptor::new("application/json", digest.clone(), bytes.len() as u64),
                bytes,
            })
        }
        async fn manifest_exists(&self, digest: &Digest) -> Result<bool, OciError> {
            self.call("manifest_exists");
            Ok(self.manifests.contains_key(digest))
        }
        async fn blob_exists(&self, digest: &Digest) -> Result<bool, OciError> {
            self.call("blob_exists");
            Ok(self.blobs.contains_key(digest))
        }
        async fn fetch_blob_to(
            &self,
            descriptor: &Descriptor,
            sink: &mut (dyn AsyncWrite + Unpin + Send),
        ) -> Result<u64, OciError> {
            self.call("fetch_blob_to");
            let bytes = self
                .blobs
                .get(&descriptor.digest)
                .ok_or_else(|| OciError::not_found(descriptor.digest.to_string()))?;
            sink.write_all(bytes)
                .await
                .map_err(|e| OciError::io("sink", e))?;
            Ok(bytes.len() as u64)
        }
    }

    impl ReferrersRead for Counting {
        async fn referrers_mode(&self) -> Result<ReferrersMode, OciError> {
            self.call("referrers_mode");
            Ok(ReferrersMode::Layout)
        }
        async fn list_referrers(
            &self,
            _subject: &Digest,
            _artifact_types: &[String],
        ) -> Result<ReferrerListing, OciError> {
            self.call("list_referrers");
            Ok(ReferrerListing {
                mode: ReferrersMode::Layout,
                referrers: Vec::new(),
                legacy: Vec::new(),
            })
        }
    }

    async fn blob(store: &ReadOnce<Counting>, d: &Descriptor) -> Result<Vec<u8>, OciError> {
        let mut out = Vec::new();
        store.fetch_blob_to(d, &mut out).await?;
        Ok(out)
    }

    #[tokio::test]
    async fn each_manifest_blob_tag_and_listing_is_read_once() {
        let manifest = br#"{"schemaVersion":2}"#.to_vec();
        let m = Digest::sha256_of(&manifest);
        let (mut inner, doc) = Counting::default().with_blob(b"{\"doc\":1}".to_vec());
        inner.manifests.insert(m.clone(), manifest.clone());
        let store = ReadOnce::new(inner);
        for _ in 0..3 {
            assert_eq!(store.fetch_manifest(&m).await.unwrap().bytes, manifest);
            assert_eq!(blob(&store, &doc).await.unwrap(), b"{\"doc\":1}");
            assert_eq!(store.resolve_tag("v1").await.unwrap().digest, m);
            store.list_referrers(&m, &[]).await.unwrap();
            store.list_referrers_skip_legacy(&m, &[]).await.unwrap();
            store.referrers_mode().await.unwrap();
            // Known from what was read: no call to the inner store.
            assert!(store.manifest_exists(&m).await.unwrap());
            assert!(store.blob_exists(&doc.digest).await.unwrap());
        }
        let inner = store.inner();
        for (name, once) in [
            ("fetch_manifest", 1),
            ("fetch_blob_to", 1),
            ("resolve_tag", 1),
            // With and without the legacy tags are two listings.
            ("list_referrers", 2),
            ("referrers_mode", 1),
            ("manifest_exists", 0),
            ("blob_exists", 0),
        ] {
            assert_eq!(inner.calls(name), once, "{name}");
        }
        assert_eq!(store.inner_reads(), 5);
        // A listing with other artifact types is another listing.
        store
            .list_referrers(&m, &["application/spdx+json".into()])
            .await
            .unwrap();
        assert_eq!(store.inner().calls("list_referrers"), 3);
    }

    #[tokio::test]
    async fn errors_are_not_remembered() {
        let (inner, doc) = Counting::default().with_blob(b"x".to_vec());
        let store = ReadOnce::new(inner);
        let missing = Digest::sha256_of(b"missing");
        let gone = Descriptor::new("application/json", missing.clone(), 1);
        for _ in 0..2 {
            assert!(store.fetch_manifest(&missing).await.is_err());
            assert!(blob(&store, &gone).await.is_err());
        }
        assert_eq!(store.inner().calls("fetch_manifest"), 2);
        assert_eq!(store.inner().calls("fetch_blob_to"), 2);
        // What did succeed is still remembered next to the failures.
        blob(&store, &doc).await.unwrap();
        blob(&store, &doc).await.unwrap();
        assert_eq!(store.inner().calls("fetch_blob_to"), 3);
    }

    #[tokio::test]
    async fn a_blob_over_the_size_limit_is_passed_through_every_time() {
        let size = usize::try_from(MAX_REMEMBERED_BLOB).unwrap() + 1;
        let (inner, big) = Counting::default().with_blob(vec![7; size]);
        let store = ReadOnce::new(inner);
        assert_eq!(blob(&store, &big).await.unwrap().len(), size);
        assert_eq!(blob(&store, &big).await.unwrap().len(), size);
        assert_eq!(store.inner().calls("fetch_blob_to"), 2);
        assert_eq!(store.inner_reads(), 2);
        // Not held, so not known to exist without asking.
        assert!(store.blob_exists(&big.digest).await.unwrap());
        assert_eq!(store.inner().calls("blob_exists"), 1);
    }
}
