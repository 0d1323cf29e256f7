//! An in-memory store implementing `stella_oci`'s store traits, for library
//! tests that need content and referrers without a layout directory or a
//! registry (the bundle exporter and importer tests use it).
//!
//! It behaves like a layout: referrers are recorded explicitly with
//! `add_referrer` and listed in mode [`ReferrersMode::Layout`], sorted by
//! (artifactType, digest); pushed blobs are checked against their
//! descriptor's digest. What it does not do: persist anything, enforce size
//! caps, list cosign legacy tags, or model any registry's quirks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use stella_oci::OciError;
use stella_oci::store::{
    BlobSource, ContentRead, ContentWrite, FetchedManifest, Progress, PushOutcome, ReferrerEntry,
    ReferrerListing, ReferrersMode, ReferrersRead, ReferrersWrite,
};
use stella_types::{Descriptor, Digest, Manifest};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Blobs, manifests, tags and referrer sets, each behind a mutex.
#[derive(Debug, Default)]
pub struct MemStore {
    /// Exposed so tests can remove or inspect content directly.
    pub blobs: Mutex<BTreeMap<Digest, Vec<u8>>>,
    pub manifests: Mutex<BTreeMap<Digest, (String, Vec<u8>)>>,
    tags: Mutex<BTreeMap<String, Digest>>,
    referrers: Mutex<BTreeMap<Digest, BTreeSet<Digest>>>,
}

/// A poisoned lock only means another test thread panicked; the data is
/// still what that thread left, which is what a test wants to see.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MemStore {
    fn manifest(&self, d: &Digest) -> Result<(String, Vec<u8>), OciError> {
        lock(&self.manifests)
            .get(d)
            .cloned()
            .ok_or_else(|| OciError::not_found(d.to_string()))
    }
}

impl ContentRead for MemStore {
    async fn resolve_tag(&self, tag: &str) -> Result<Descriptor, OciError> {
        let d = lock(&self.tags)
            .get(tag)
            .cloned()
            .ok_or_else(|| OciError::not_found(tag))?;
        let (mt, b) = self.manifest(&d)?;
        Ok(Descriptor::new(mt, d, b.len() as u64))
    }

    async fn fetch_manifest(&self, d: &Digest) -> Result<FetchedManifest, OciError> {
        let (mt, b) = self.manifest(d)?;
        Ok(FetchedManifest {
            descriptor: Descriptor::new(mt, d.clone(), b.len() as u64),
            bytes: b,
        })
    }

    async fn manifest_exists(&self, d: &Digest) -> Result<bool, OciError> {
        Ok(lock(&self.manifests).contains_key(d))
    }

    async fn blob_exists(&self, d: &Digest) -> Result<bool, OciError> {
        Ok(lock(&self.blobs).contains_key(d))
    }

    async fn fetch_blob_to(
        &self,
        d: &Descriptor,
        sink: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<u64, OciError> {
        let b = lock(&self.blobs)
            .get(&d.digest)
            .cloned()
            .ok_or_else(|| OciError::not_found(d.digest.to_string()))?;
        // Small chunks, so readers see a stream, not one write.
        for chunk in b.chunks(1000) {
            sink.write_all(chunk)
                .await
                .map_err(|e| OciError::io("sink", e))?;
        }
        Ok(b.len() as u64)
    }
}

impl ContentWrite for MemStore {
    async fn push_blob(
        &self,
        d: &Descriptor,
        src: BlobSource<'_>,
        _p: &dyn Progress,
    ) -> Result<PushOutcome, OciError> {
        let bytes = match src {
            BlobSource::Bytes(b) => b.to_vec(),
            BlobSource::File(p) => std::fs::read(p).map_err(|e| OciError::io("read", e))?,
        };
        d.digest
            .verify(&bytes)
            .map_err(|e| OciError::integrity("push", e))?;
        let mut blobs = lock(&self.blobs);
        if blobs.contains_key(&d.digest) {
            return Ok(PushOutcome::AlreadyExisted);
        }
        blobs.insert(d.digest.clone(), bytes);
        Ok(PushOutcome::Uploaded)
    }

    async fn push_manifest(
        &self,
        mt: &str,
        bytes: &[u8],
        tag: Option<&str>,
    ) -> Result<Descriptor, OciError> {
        let d = Digest::sha256_of(bytes);
        lock(&self.manifests).insert(d.clone(), (mt.to_string(), bytes.to_vec()));
        if let Some(t) = tag {
            lock(&self.tags).insert(t.to_string(), d.clone());
        }
        Ok(Descriptor::new(mt, d, bytes.len() as u64))
    }

    async fn delete_manifest(&self, d: &Digest) -> Result<(), OciError> {
        lock(&self.manifests).remove(d);
        Ok(())
    }
}

impl ReferrersRead for MemStore {
    async fn referrers_mode(&self) -> Result<ReferrersMode, OciError> {
        Ok(ReferrersMode::Layout)
    }

    async fn list_referrers(
        &self,
        subject: &Digest,
        _artifact_types: &[String],
    ) -> Result<ReferrerListing, OciError> {
        let set = lock(&self.referrers)
            .get(subject)
            .cloned()
            .unwrap_or_default();
        let mut referrers = Vec::new();
        for d in set {
            let (mt, b) = self.manifest(&d)?;
            let m = Manifest::parse(&b, Some(&mt)).map_err(|e| OciError::manifest(&d, e))?;
            let mut desc = Descriptor::new(mt, d, b.len() as u64);
            desc.artifact_type = m.artifact_type().map(str::to_string);
            referrers.push(ReferrerEntry {
                descriptor: desc,
                dangling: false,
            });
        }
        referrers.sort_by(|a, b| {
            (&a.descriptor.artifact_type, &a.descriptor.digest)
                .cmp(&(&b.descriptor.artifact_type, &b.descriptor.digest))
        });
        Ok(ReferrerListing {
            mode: ReferrersMode::Layout,
            referrers,
            legacy: Vec::new(),
        })
    }
}

impl ReferrersWrite for MemStore {
    async fn add_referrer(
        &self,
        subject: &Descriptor,
        referrer: &Descriptor,
    ) -> Result<(), OciError> {
        lock(&self.referrers)
            .entry(subject.digest.clone())
            .or_default()
            .insert(referrer.digest.clone());
        Ok(())
    }

    async fn remove_referrer(&self, subject: &Digest, referrer: &Digest) -> Result<(), OciError> {
        if let Some(s) = lock(&self.referrers).get_mut(subject) {
            s.remove(referrer);
        }
        Ok(())
    }
}
