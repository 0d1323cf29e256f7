//! Capability traits that every content store implements: a local OCI image
//! layout and a remote registry repository are two implementations of the
//! same traits, so push, list, pull, copy, export and import are written
//! once. Functions should ask for the narrowest trait they need.
//!
//! Every trait method returns a `Send` future (implementations may still
//! write `async fn`), and the traits require `Send + Sync`, so a store can
//! be shared by the tasks of a multi-threaded server. For a store chosen at
//! run time without the closed [`crate::AnyStore`] enum, see
//! [`crate::dyn_store`] (`Arc<dyn DynStore>`).
//!
//! What this module does not do: HTTP, files, or deciding what an artifact
//! looks like (see `artifact` and `referrers`).

use std::future::Future;
use std::path::Path;

use stella_types::{Descriptor, Digest};
use tokio::io::AsyncWrite;

use crate::OciError;

/// How a store answers "which manifests refer to this subject?". Decided
/// once per store (for a registry: once per registry, by probing), never
/// re-guessed per call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReferrersMode {
    /// Not probed yet.
    Unknown,
    /// The registry serves `GET /v2/<name>/referrers/<digest>`.
    Api,
    /// The referrers tag schema: an image index tagged `<alg>-<hex>`.
    TagSchema,
    /// A local OCI image layout: referrers are found from `index.json`.
    Layout,
}

impl ReferrersMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ReferrersMode::Unknown => "unknown",
            ReferrersMode::Api => "api",
            ReferrersMode::TagSchema => "tag-schema",
            ReferrersMode::Layout => "layout",
        }
    }
}

/// A manifest's bytes, already checked against its digest and the size cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedManifest {
    pub descriptor: Descriptor,
    pub bytes: Vec<u8>,
}

/// Where the bytes of a blob to push come from. Files are streamed, never
/// read whole into memory.
#[derive(Debug, Clone, Copy)]
pub enum BlobSource<'a> {
    Bytes(&'a [u8]),
    File(&'a Path),
}

/// Whether a push sent bytes or found the content already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    Uploaded,
    AlreadyExisted,
}

/// Receives byte counts while a blob moves, for progress bars. The library
/// never draws anything itself.
pub trait Progress: Send + Sync {
    /// A transfer of `total` bytes named `label` starts.
    fn start(&self, label: &str, total: u64);
    /// `n` more bytes moved.
    fn advance(&self, n: u64);
    /// The transfer ended (successfully or not).
    fn finish(&self);
}

/// A `Progress` that ignores everything.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// Reading manifests and blobs.
pub trait ContentRead: Send + Sync {
    /// Resolves a tag to the descriptor of the manifest it names.
    fn resolve_tag(&self, tag: &str) -> impl Future<Output = Result<Descriptor, OciError>> + Send;
    /// Fetches a manifest by digest, checked against the digest and capped in size.
    fn fetch_manifest(
        &self,
        digest: &Digest,
    ) -> impl Future<Output = Result<FetchedManifest, OciError>> + Send;
    /// Whether a manifest with this digest exists.
    fn manifest_exists(
        &self,
        digest: &Digest,
    ) -> impl Future<Output = Result<bool, OciError>> + Send;
    /// Whether a blob with this digest exists.
    fn blob_exists(&self, digest: &Digest) -> impl Future<Output = Result<bool, OciError>> + Send;
    /// Streams a blob into `sink`, checking size and digest as it goes; on a
    /// mismatch it fails (the caller must discard what was written).
    fn fetch_blob_to(
        &self,
        descriptor: &Descriptor,
        sink: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> impl Future<Output = Result<u64, OciError>> + Send;
    /// Fetches a small blob into memory, refusing anything over `cap` bytes.
    fn fetch_blob_bytes(
        &self,
        descriptor: &Descriptor,
        cap: u64,
    ) -> impl Future<Output = Result<Vec<u8>, OciError>> + Send {
        async move {
            if descriptor.size > cap {
                return Err(OciError::Protocol(format!(
                    "blob {} is {} bytes, over the {cap}-byte limit for in-memory reads",
                    descriptor.digest, descriptor.size
                )));
            }
            let mut buf = Vec::with_capacity(usize::try_from(descriptor.size).unwrap_or(0));
            self.fetch_blob_to(descriptor, &mut buf).await?;
            Ok(buf)
        }
    }
}

/// Writing manifests and blobs.
pub trait ContentWrite: Send + Sync {
    /// Pushes a blob unless it already exists. The store checks the bytes
    /// against `descriptor` (digest and size).
    fn push_blob(
        &self,
        descriptor: &Descriptor,
        source: BlobSource<'_>,
        progress: &dyn Progress,
    ) -> impl Future<Output = Result<PushOutcome, OciError>> + Send;
    /// [`ContentWrite::push_blob`] for content that is usually new to the
    /// store (a referrer's own files). A registry then skips the `HEAD`:
    /// it asks to mount the blob from the repository itself and uploads
    /// only when that is refused. Mounting an existing blob may rewrite its
    /// repository link (distribution), so copies of shared image layers use
    /// `push_blob`'s `HEAD` first instead.
    fn push_blob_likely_new(
        &self,
        descriptor: &Descriptor,
        source: BlobSource<'_>,
        progress: &dyn Progress,
    ) -> impl Future<Output = Result<PushOutcome, OciError>> + Send {
        self.push_blob(descriptor, source, progress)
    }
    /// Pushes manifest bytes (by digest, and under `tag` if given) and
    /// returns their descriptor.
    fn push_manifest(
        &self,
        media_type: &str,
        bytes: &[u8],
        tag: Option<&str>,
    ) -> impl Future<Output = Result<Descriptor, OciError>> + Send;
    /// Deletes a manifest by digest.
    fn delete_manifest(&self, digest: &Digest)
    -> impl Future<Output = Result<(), OciError>> + Send;
    /// Pushes a manifest (by digest) whose `config` blob is usually in the
    /// store already: the empty JSON `{}` every artifact manifest shares.
    /// By default the blob is pushed first ([`ContentWrite::push_blob`]).
    /// A registry sends the manifest first instead and pushes the blob
    /// only when the manifest is refused for naming content the repository
    /// lacks (then sends the manifest again): one request fewer whenever
    /// the blob is there. Registries check that a manifest's blobs exist
    /// (distribution answers `MANIFEST_BLOB_UNKNOWN`), which is what makes
    /// skipping the check safe.
    fn push_manifest_config_likely_present(
        &self,
        media_type: &str,
        bytes: &[u8],
        config: &Descriptor,
        config_bytes: &[u8],
    ) -> impl Future<Output = Result<Descriptor, OciError>> + Send {
        async move {
            self.push_blob(config, BlobSource::Bytes(config_bytes), &NoProgress)
                .await?;
            self.push_manifest(media_type, bytes, None).await
        }
    }
}

/// One entry of a referrers listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferrerEntry {
    /// The descriptor as the API or index lists it.
    pub descriptor: Descriptor,
    /// Listed by a fallback index but the manifest is gone.
    pub dangling: bool,
}

/// A cosign legacy attachment tag (`sha256-<hex>.sig|.att|.sbom`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyAttachment {
    pub tag: String,
    /// `sig`, `att` or `sbom`.
    pub kind: String,
    pub descriptor: Descriptor,
}

/// The referrers of one subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferrerListing {
    pub mode: ReferrersMode,
    /// Sorted by (artifactType, digest); de-duplicated by digest.
    pub referrers: Vec<ReferrerEntry>,
    /// cosign legacy tags for the subject, sorted by tag.
    pub legacy: Vec<LegacyAttachment>,
}

/// Listing referrers of a subject.
pub trait ReferrersRead: Send + Sync {
    /// How this store lists referrers (probing once if needed).
    fn referrers_mode(&self) -> impl Future<Output = Result<ReferrersMode, OciError>> + Send;
    /// Lists the referrers of `subject`, filtered to `artifact_types` when
    /// non-empty. Never silently partial: a page cap or a failure is an error.
    fn list_referrers(
        &self,
        subject: &Digest,
        artifact_types: &[String],
    ) -> impl Future<Output = Result<ReferrerListing, OciError>> + Send;
    /// Like [`ReferrersRead::list_referrers`], but `legacy` may be left
    /// empty: a registry then skips the three cosign legacy-tag lookups.
    /// For discovery below the image (referrers of an SBOM), where they
    /// cost three requests per artifact and are almost never there.
    fn list_referrers_skip_legacy(
        &self,
        subject: &Digest,
        artifact_types: &[String],
    ) -> impl Future<Output = Result<ReferrerListing, OciError>> + Send {
        self.list_referrers(subject, artifact_types)
    }
}

/// Keeping a store's referrers bookkeeping (fallback index, layout
/// `index.json`) in step with pushed and deleted referrer manifests.
pub trait ReferrersWrite: Send + Sync {
    /// Records `referrer` (a manifest already pushed, whose `subject` is
    /// `subject`) so that listing finds it. A no-op where the store indexes
    /// referrers itself (native API).
    fn add_referrer(
        &self,
        subject: &Descriptor,
        referrer: &Descriptor,
    ) -> impl Future<Output = Result<(), OciError>> + Send;
    /// Removes `referrer` from `subject`'s bookkeeping.
    fn remove_referrer(
        &self,
        subject: &Digest,
        referrer: &Digest,
    ) -> impl Future<Output = Result<(), OciError>> + Send;
    /// Checks, writing nothing, that recording the referrer manifest
    /// `manifest` (bytes, not yet pushed) of `subject` would leave this
    /// store's bookkeeping readable by Stella (its indexes within their
    /// caps). Called before a push, so a push that could not be read back
    /// is refused before anything is written. A store that keeps no
    /// bookkeeping of its own (native referrers API) has nothing to check.
    fn check_referrer_room(
        &self,
        subject: &Descriptor,
        manifest: &[u8],
    ) -> impl Future<Output = Result<(), OciError>> + Send {
        let _ = (subject, manifest);
        async { Ok(()) }
    }
}
