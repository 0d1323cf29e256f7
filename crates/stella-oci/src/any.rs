//! `AnyStore`: a layout or a registry repository behind one type, so the
//! binary can open whatever the user's reference names and call the generic
//! operations once. A server that wants an open set of stores uses
//! [`crate::SharedStore`] instead ([`AnyStore::into_shared`]).

use stella_types::{Descriptor, Digest, Reference};
use tokio::io::AsyncWrite;

use crate::OciError;
use crate::layout::OciLayout;
use crate::registry::{RegistryClient, Repository};
use crate::store::*;

/// A store opened from a [`Reference`].
#[derive(Debug, Clone)]
pub enum AnyStore {
    Layout(OciLayout),
    Registry(Repository),
}

impl AnyStore {
    /// The same store as a trait object, to share between tasks.
    pub fn into_shared(self) -> crate::SharedStore {
        match self {
            AnyStore::Layout(l) => std::sync::Arc::new(l),
            AnyStore::Registry(r) => std::sync::Arc::new(r),
        }
    }
}

/// Opens the store a reference names (a layout is created if missing).
pub fn open_store(reference: &Reference, client: &RegistryClient) -> Result<AnyStore, OciError> {
    match reference {
        Reference::Layout(l) => Ok(AnyStore::Layout(OciLayout::open_or_create(&l.dir)?)),
        Reference::Registry(r) => Ok(AnyStore::Registry(client.repository(r))),
    }
}

macro_rules! both {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            AnyStore::Layout($s) => $e,
            AnyStore::Registry($s) => $e,
        }
    };
}

impl ContentRead for AnyStore {
    async fn resolve_tag(&self, tag: &str) -> Result<Descriptor, OciError> {
        both!(self, s => s.resolve_tag(tag).await)
    }
    async fn fetch_manifest(&self, d: &Digest) -> Result<FetchedManifest, OciError> {
        both!(self, s => s.fetch_manifest(d).await)
    }
    async fn manifest_exists(&self, d: &Digest) -> Result<bool, OciError> {
        both!(self, s => s.manifest_exists(d).await)
    }
    async fn blob_exists(&self, d: &Digest) -> Result<bool, OciError> {
        both!(self, s => s.blob_exists(d).await)
    }
    async fn fetch_blob_to(
        &self,
        d: &Descriptor,
        sink: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<u64, OciError> {
        both!(self, s => s.fetch_blob_to(d, sink).await)
    }
}

impl ContentWrite for AnyStore {
    async fn push_blob(
        &self,
        d: &Descriptor,
        src: BlobSource<'_>,
        p: &dyn Progress,
    ) -> Result<PushOutcome, OciError> {
        both!(self, s => s.push_blob(d, src, p).await)
    }
    async fn push_blob_likely_new(
        &self,
        d: &Descriptor,
        src: BlobSource<'_>,
        p: &dyn Progress,
    ) -> Result<PushOutcome, OciError> {
        both!(self, s => s.push_blob_likely_new(d, src, p).await)
    }
    async fn push_manifest(
        &self,
        m: &str,
        b: &[u8],
        t: Option<&str>,
    ) -> Result<Descriptor, OciError> {
        both!(self, s => s.push_manifest(m, b, t).await)
    }
    async fn delete_manifest(&self, d: &Digest) -> Result<(), OciError> {
        both!(self, s => s.delete_manifest(d).await)
    }
    async fn push_manifest_config_likely_present(
        &self,
        m: &str,
        b: &[u8],
        c: &Descriptor,
        cb: &[u8],
    ) -> Result<Descriptor, OciError> {
        both!(self, s => s.push_manifest_config_likely_present(m, b, c, cb).await)
    }
}

impl ReferrersRead for AnyStore {
    async fn referrers_mode(&self) -> Result<ReferrersMode, OciError> {
        both!(self, s => s.referrers_mode().await)
    }
    async fn list_referrers(&self, d: &Digest, a: &[String]) -> Result<ReferrerListing, OciError> {
        both!(self, s => s.list_referrers(d, a).await)
    }
    async fn list_referrers_skip_legacy(
        &self,
        d: &Digest,
        a: &[String],
    ) -> Result<ReferrerListing, OciError> {
        both!(self, s => s.list_referrers_skip_legacy(d, a).await)
    }
}

impl ReferrersWrite for AnyStore {
    async fn add_referrer(&self, sub: &Descriptor, r: &Descriptor) -> Result<(), OciError> {
        both!(self, s => s.add_referrer(sub, r).await)
    }
    async fn remove_referrer(&self, sub: &Digest, r: &Digest) -> Result<(), OciError> {
        both!(self, s => s.remove_referrer(sub, r).await)
    }
}
