//! A store as a trait object: [`DynStore`] is the object-safe twin of the
//! four capability traits (same methods, boxed `Send` futures), so a
//! server can hold `Arc<dyn DynStore>` ([`SharedStore`]) for any store,
//! including ones this crate does not know, and hand it to tasks on a
//! multi-threaded runtime.
//!
//! Every type implementing the four store traits implements [`DynStore`]
//! (blanket impl), and `dyn DynStore` and `Arc<T>` implement the store
//! traits again, so the operations written over the traits (`artifact`,
//! `referrers`, `copy`, bundle export and import) take a shared store
//! unchanged. The methods carry a `dyn_` prefix so that having both
//! traits in scope never makes a call ambiguous; callers use the store
//! traits, not these.
//!
//! What this module does not do: open stores (see [`crate::open_store`] and
//! [`crate::AnyStore::into_shared`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use stella_types::{Descriptor, Digest};
use tokio::io::AsyncWrite;

use crate::OciError;
use crate::store::*;

/// A boxed, `Send` future borrowing for `'a`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A store shared between tasks and threads.
pub type SharedStore = Arc<dyn DynStore>;

/// Object-safe form of [`ContentRead`] + [`ContentWrite`] +
/// [`ReferrersRead`] + [`ReferrersWrite`]; see the module docs. Each
/// `dyn_<name>` method is the store-trait method `<name>` with a boxed
/// future (`dyn_list_referrers` covers both listing methods).
pub trait DynStore: Send + Sync {
    fn dyn_resolve_tag<'a>(&'a self, tag: &'a str) -> BoxFuture<'a, Result<Descriptor, OciError>>;
    fn dyn_fetch_manifest<'a>(
        &'a self,
        digest: &'a Digest,
    ) -> BoxFuture<'a, Result<FetchedManifest, OciError>>;
    fn dyn_manifest_exists<'a>(
        &'a self,
        digest: &'a Digest,
    ) -> BoxFuture<'a, Result<bool, OciError>>;
    fn dyn_blob_exists<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, Result<bool, OciError>>;
    fn dyn_fetch_blob_to<'a>(
        &'a self,
        descriptor: &'a Descriptor,
        sink: &'a mut (dyn AsyncWrite + Unpin + Send),
    ) -> BoxFuture<'a, Result<u64, OciError>>;
    fn dyn_push_blob<'a>(
        &'a self,
        descriptor: &'a Descriptor,
        source: BlobSource<'a>,
        progress: &'a dyn Progress,
    ) -> BoxFuture<'a, Result<PushOutcome, OciError>>;
    fn dyn_push_blob_likely_new<'a>(
        &'a self,
        descriptor: &'a Descriptor,
        source: BlobSource<'a>,
        progress: &'a dyn Progress,
    ) -> BoxFuture<'a, Result<PushOutcome, OciError>>;
    fn dyn_push_manifest<'a>(
        &'a self,
        media_type: &'a str,
        bytes: &'a [u8],
        tag: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Descriptor, OciError>>;
    fn dyn_delete_manifest<'a>(&'a self, digest: &'a Digest)
    -> BoxFuture<'a, Result<(), OciError>>;
    fn dyn_push_manifest_config_likely_present<'a>(
        &'a self,
        media_type: &'a str,
        bytes: &'a [u8],
        config: &'a Descriptor,
        config_bytes: &'a [u8],
    ) -> BoxFuture<'a, Result<Descriptor, OciError>>;
    fn dyn_referrers_mode(&self) -> BoxFuture<'_, Result<ReferrersMode, OciError>>;
    fn dyn_list_referrers<'a>(
        &'a self,
        subject: &'a Digest,
        artifact_types: &'a [String],
        skip_legacy: bool,
    ) -> BoxFuture<'a, Result<ReferrerListing, OciError>>;
    fn dyn_add_referrer<'a>(
        &'a self,
        subject: &'a Descriptor,
        referrer: &'a Descriptor,
    ) -> BoxFuture<'a, Result<(), OciError>>;
    fn dyn_remove_referrer<'a>(
        &'a self,
        subject: &'a Digest,
        referrer: &'a Digest,
    ) -> BoxFuture<'a, Result<(), OciError>>;
    fn dyn_check_referrer_room<'a>(
        &'a self,
        subject: &'a Descriptor,
        manifest: &'a [u8],
    ) -> BoxFuture<'a, Result<(), OciError>>;
}

impl<S: ContentRead + ContentWrite + ReferrersRead + ReferrersWrite> DynStore for S {
    fn dyn_resolve_tag<'a>(&'a self, tag: &'a str) -> BoxFuture<'a, Result<Descriptor, OciError>> {
        Box::pin(self.resolve_tag(tag))
    }
    fn dyn_fetch_manifest<'a>(
        &'a self,
        digest: &'a Digest,
    ) -> BoxFuture<'a, Result<FetchedManifest, OciError>> {
        Box::pin(self.fetch_manifest(digest))
    }
    fn dyn_manifest_exists<'a>(
        &'a self,
        digest: &'a Digest,
    ) -> BoxFuture<'a, Result<bool, OciError>> {
        Box::pin(self.manifest_exists(digest))
    }
    fn dyn_blob_exists<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, Result<bool, OciError>> {
        Box::pin(self.blob_exists(digest))
    }
    fn dyn_fetch_blob_to<'a>(
        &'a self,
        descriptor: &'a Descriptor,
        sink: &'a mut (dyn AsyncWrite + Unpin + Send),
    ) -> BoxFuture<'a, Result<u64, OciError>> {
        Box::pin(self.fetch_blob_to(descriptor, sink))
    }
    fn dyn_push_blob<'a>(
        &'a self,
        descriptor: &'a Descriptor,
        source: BlobSource<'a>,
        progress: &'a dyn Progress,
    ) -> BoxFuture<'a, Result<PushOutcome, OciError>> {
        Box::pin(self.push_blob(descriptor, source, progress))
    }
    fn dyn_push_blob_likely_new<'a>(
        &'a self,
        descriptor: &'a Descriptor,
        source: BlobSource<'a>,
        progress: &'a dyn Progress,
    ) -> BoxFuture<'a, Result<PushOutcome, OciError>> {
        Box::pin(self.push_blob_likely_new(descriptor, source, progress))
    }
    fn dyn_push_manifest<'a>(
        &'a self,
        media_type: &'a str,
        bytes: &'a [u8],
        tag: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Descriptor, OciError>> {
        Box::pin(self.push_manifest(media_type, bytes, tag))
    }
    fn dyn_push_manifest_config_likely_present<'a>(
        &'a self,
        media_type: &'a str,
        bytes: &'a [u8],
        config: &'a Descriptor,
        config_bytes: &'a [u8],
    ) -> BoxFuture<'a, Result<Descriptor, OciError>> {
        Box::pin(self.push_manifest_config_likely_present(media_type, bytes, config, config_bytes))
    }
    fn dyn_delete_manifest<'a>(
        &'a self,
        digest: &'a Digest,
    ) -> BoxFuture<'a, Result<(), OciError>> {
        Box::pin(self.delete_manifest(digest))
    }
    fn dyn_referrers_mode(&self) -> BoxFuture<'_, Result<ReferrersMode, OciError>> {
        Box::pin(self.referrers_mode())
    }
    fn dyn_list_referrers<'a>(
        &'a self,
        subject: &'a Digest,
        artifact_types: &'a [String],
        skip_legacy: bool,
    ) -> BoxFuture<'a, Result<ReferrerListing, OciError>> {
        if skip_legacy {
            Box::pin(self.list_referrers_skip_legacy(subject, artifact_types))
        } else {
            Box::pin(self.list_referrers(subject, artifact_types))
        }
    }
    fn dyn_add_referrer<'a>(
        &'a self,
        subject: &'a Descriptor,
        referrer: &'a Descriptor,
    ) -> BoxFuture<'a, Result<(), OciError>> {
        Box::pin(self.add_referrer(subject, referrer))
    }
    fn dyn_remove_referrer<'a>(
        &'a self,
        subject: &'a Digest,
        referrer: &'a Digest,
    ) -> BoxFuture<'a, Result<(), OciError>> {
        Box::pin(self.remove_referrer(subject, referrer))
    }
    fn dyn_check_referrer_room<'a>(
        &'a self,
        subject: &'a Descriptor,
        manifest: &'a [u8],
    ) -> BoxFuture<'a, Result<(), OciError>> {
        Box::pin(self.check_referrer_room(subject, manifest))
    }
}

impl ContentRead for dyn DynStore + '_ {
    async fn resolve_tag(&self, tag: &str) -> Result<Descriptor, OciError> {
        self.dyn_resolve_tag(tag).await
    }
    async fn fetch_manifest(&self, digest: &Digest) -> Result<FetchedManifest, OciError> {
        self.dyn_fetch_manifest(digest).await
    }
    async fn manifest_exists(&self, digest: &Digest) -> Result<bool, OciError> {
        self.dyn_manifest_exists(digest).await
    }
    async fn blob_exists(&self, digest: &Digest) -> Result<bool, OciError> {
        self.dyn_blob_exists(digest).await
    }
    async fn fetch_blob_to(
        &self,
        descriptor: &Descriptor,
        sink: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<u64, OciError> {
        self.dyn_fetch_blob_to(descriptor, sink).await
    }
}

impl ContentWrite for dyn DynStore + '_ {
    async fn push_blob(
        &self,
        descriptor: &Descriptor,
        source: BlobSource<'_>,
        progress: &dyn Progress,
    ) -> Result<PushOutcome, OciError> {
        self.dyn_push_blob(descriptor, source, progress).await
    }
    async fn push_blob_likely_new(
        &self,
        descriptor: &Descriptor,
        source: BlobSource<'_>,
        progress: &dyn Progress,
    ) -> Result<PushOutcome, OciError> {
        self.dyn_push_blob_likely_new(descriptor, source, progress)
            .await
    }
    async fn push_manifest(
        &self,
        media_type: &str,
        bytes: &[u8],
        tag: Option<&str>,
    ) -> Result<Descriptor, OciError> {
        self.dyn_push_manifest(media_type, bytes, tag).await
    }
    async fn delete_manifest(&self, digest: &Digest) -> Result<(), OciError> {
        self.dyn_delete_manifest(digest).await
    }
    async fn push_manifest_config_likely_present(
        &self,
        media_type: &str,
        bytes: &[u8],
        config: &Descriptor,
        config_bytes: &[u8],
    ) -> Result<Descriptor, OciError> {
        self.dyn_push_manifest_config_likely_present(media_type, bytes, config, config_bytes)
            .await
    }
}

impl ReferrersRead for dyn DynStore + '_ {
    async fn referrers_mode(&self) -> Result<ReferrersMode, OciError> {
        self.dyn_referrers_mode().await
    }
    async fn list_referrers(
        &self,
        subject: &Digest,
        artifact_types: &[String],
    ) -> Result<ReferrerListing, OciError> {
        self.dyn_list_referrers(subject, artifact_types, false)
            .await
    }
    async fn list_referrers_skip_legacy(
        &self,
        subject: &Digest,
        artifact_types: &[String],
    ) -> Result<ReferrerListing, OciError> {
        self.dyn_list_referrers(subject, artifact_types, true).await
    }
}

impl ReferrersWrite for dyn DynStore + '_ {
    async fn add_referrer(
        &self,
        subject: &Descriptor,
        referrer: &Descriptor,
    ) -> Result<(), OciError> {
        self.dyn_add_referrer(subject, referrer).await
    }
    async fn remove_referrer(&self, subject: &Digest, referrer: &Digest) -> Result<(), OciError> {
        self.dyn_remove_referrer(subject, referrer).await
    }
    async fn check_referrer_room(
        &self,
        subject: &Descriptor,
        manifest: &[u8],
    ) -> Result<(), OciError> {
        self.dyn_check_referrer_room(subject, manifest).await
    }
}

impl<T: ContentRead + ?Sized> ContentRead for Arc<T> {
    fn resolve_tag(&self, tag: &str) -> impl Future<Output = Result<Descriptor, OciError>> + Send {
        (**self).resolve_tag(tag)
    }
    fn fetch_manifest(
        &self,
        digest: &Digest,
    ) -> impl Future<Output = Result<FetchedManifest, OciError>> + Send {
        (**self).fetch_manifest(digest)
    }
    fn manifest_exists(
        &self,
        digest: &Digest,
    ) -> impl Future<Output = Result<bool, OciError>> + Send {
        (**self).manifest_exists(digest)
    }
    fn blob_exists(&self, digest: &Digest) -> impl Future<Output = Result<bool, OciError>> + Send {
        (**self).blob_exists(digest)
    }
    fn fetch_blob_to(
        &self,
        descriptor: &Descriptor,
        sink: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> impl Future<Output = Result<u64, OciError>> + Send {
        (**self).fetch_blob_to(descriptor, sink)
    }
    fn fetch_blob_bytes(
        &self,
        descriptor: &Descriptor,
        cap: u64,
    ) -> impl Future<Output = Result<Vec<u8>, OciError>> + Send {
        (**self).fetch_blob_bytes(descriptor, cap)
    }
}

impl<T: ContentWrite + ?Sized> ContentWrite for Arc<T> {
    fn push_blob(
        &self,
        descriptor: &Descriptor,
        source: BlobSource<'_>,
        progress: &dyn Progress,
    ) -> impl Future<Output = Result<PushOutcome, OciError>> + Send {
        (**self).push_blob(descriptor, source, progress)
    }
    fn push_blob_likely_new(
        &self,
        descriptor: &Descriptor,
        source: BlobSource<'_>,
        progress: &dyn Progress,
    ) -> impl Future<Output = Result<PushOutcome, OciError>> + Send {
        (**self).push_blob_likely_new(descriptor, source, progress)
    }
    fn push_manifest(
        &self,
        media_type: &str,
        bytes: &[u8],
        tag: Option<&str>,
    ) -> impl Future<Output = Result<Descriptor, OciError>> + Send {
        (**self).push_manifest(media_type, bytes, tag)
    }
    fn push_manifest_config_likely_present(
        &self,
        media_type: &str,
        bytes: &[u8],
        config: &Descriptor,
        config_bytes: &[u8],
    ) -> impl Future<Output = Result<Descriptor, OciError>> + Send {
        (**self).push_manifest_config_likely_present(media_type, bytes, config, config_bytes)
    }
    fn delete_manifest(
        &self,
        digest: &Digest,
    ) -> impl Future<Output = Result<(), OciError>> + Send {
        (**self).delete_manifest(digest)
    }
}

impl<T: ReferrersRead + ?Sized> ReferrersRead for Arc<T> {
    fn referrers_mode(&self) -> impl Future<Output = Result<ReferrersMode, OciError>> + Send {
        (**self).referrers_mode()
    }
    fn list_referrers(
        &self,
        subject: &Digest,
        artifact_types: &[String],
    ) -> impl Future<Output = Result<ReferrerListing, OciError>> + Send {
        (**self).list_referrers(subject, artifact_types)
    }
    fn list_referrers_skip_legacy(
        &self,
        subject: &Digest,
        artifact_types: &[String],
    ) -> impl Future<Output = Result<ReferrerListing, OciError>> + Send {
        (**self).list_referrers_skip_legacy(subject, artifact_types)
    }
}

impl<T: ReferrersWrite + ?Sized> ReferrersWrite for Arc<T> {
    fn add_referrer(
        &self,
        subject: &Descriptor,
        referrer: &Descriptor,
    ) -> impl Future<Output = Result<(), OciError>> + Send {
        (**self).add_referrer(subject, referrer)
    }
    fn remove_referrer(
        &self,
        subject: &Digest,
        referrer: &Digest,
    ) -> impl Future<Output = Result<(), OciError>> + Send {
        (**self).remove_referrer(subject, referrer)
    }
    fn check_referrer_room(
        &self,
        subject: &Descriptor,
        manifest: &[u8],
    ) -> impl Future<Output = Result<(), OciError>> + Send {
        (**self).check_referrer_room(subject, manifest)
    }
}
