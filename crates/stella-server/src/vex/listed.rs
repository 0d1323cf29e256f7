//! The registry as one image's discovery sees it: a [`Repository`] whose
//! referrers listings are read once per subject and kept for the rest of
//! that image's discovery, and whose cosign legacy tags
//! (`sha256-<hex>.att|.sbom|.sig`) come from the run's tag listing of the
//! repository (`super::poll::CompanionTags`) when there is one.
//!
//! Why: `stella_engine::vex::discover_vex` lists a subject's referrers up
//! to three times (the referrer cap, the attestation walk, the plain
//! OpenVEX walk), and each listing of a registry without the Referrers API
//! is a fallback-index GET plus a tag listing for the legacy tags, which
//! distribution 2.8 answers with every tag of the repository. With the
//! cache and the run's listing, an image costs one index GET and a HEAD
//! per legacy tag that exists.
//!
//! Not here: anything written, or kept beyond one image's discovery (a new
//! [`ListedRepository`] per image, so a run sees each image as it is).

use std::collections::HashMap;
use std::sync::Mutex;

use stella_oci::OciError;
use stella_oci::registry::Repository;
use stella_oci::store::{
    ContentRead, FetchedManifest, LegacyAttachment, ReferrerListing, ReferrersMode, ReferrersRead,
};
use stella_types::{Descriptor, Digest};
use tokio::io::AsyncWrite;

use super::poll::CompanionTags;

/// Cosign's legacy tag kinds, in the order the registry client lists them.
const LEGACY_KINDS: [&str; 3] = ["att", "sbom", "sig"];

/// One image's view of its repository (see the module docs).
pub struct ListedRepository<'a> {
    repo: &'a Repository,
    /// The run's tag listing of this repository, if it took one.
    listed: Option<&'a CompanionTags>,
    /// Full listings (every artifact type, legacy tags included) by subject.
    listings: Mutex<HashMap<Digest, ReferrerListing>>,
}

impl<'a> ListedRepository<'a> {
    pub fn new(repo: &'a Repository, listed: Option<&'a CompanionTags>) -> Self {
        ListedRepository {
            repo,
            listed,
            listings: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, subject: &Digest) -> Option<ReferrerListing> {
        self.listings
            .lock()
            .ok()
            .and_then(|m| m.get(subject).cloned())
    }

    /// Every referrer and legacy tag of `subject`, read once.
    async fn full_listing(&self, subject: &Digest) -> Result<ReferrerListing, OciError> {
        if let Some(l) = self.cached(subject) {
            return Ok(l);
        }
        let listing = match self.listed {
            Some(tags) => {
                let mut l = self.repo.list_referrers_skip_legacy(subject, &[]).await?;
                l.legacy = self.legacy_from_listing(subject, tags).await?;
                l
            }
            None => self.repo.list_referrers(subject, &[]).await?,
        };
        if let Ok(mut m) = self.listings.lock() {
            m.insert(subject.clone(), listing.clone());
        }
        Ok(listing)
    }

    /// The legacy tags of `subject` the run's tag listing shows, each
    /// resolved with one HEAD (a tag deleted since the listing is left out).
    async fn legacy_from_listing(
        &self,
        subject: &Digest,
        tags: &CompanionTags,
    ) -> Result<Vec<LegacyAttachment>, OciError> {
        let base = subject.referrers_tag();
        let mut out = Vec::new();
        for kind in LEGACY_KINDS {
            let tag = format!("{base}.{kind}");
            if !tags.has(&tag) {
                continue;
            }
            match self.repo.resolve_tag(&tag).await {
                Ok(descriptor) => out.push(LegacyAttachment {
                    tag,
                    kind: kind.to_string(),
                    descriptor,
                }),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.tag.cmp(&b.tag));
        Ok(out)
    }
}

/// `listing` with only the referrers of `artifact_types` (all when empty),
/// as the registry client filters them.
fn of_types(mut listing: ReferrerListing, artifact_types: &[String]) -> ReferrerListing {
    if !artifact_types.is_empty() {
        listing.referrers.retain(|e| {
            e.descriptor
                .artifact_type
                .as_deref()
                .is_some_and(|t| artifact_types.iter().any(|a| a == t))
        });
    }
    listing
}

impl ContentRead for ListedRepository<'_> {
    async fn resolve_tag(&self, tag: &str) -> Result<Descriptor, OciError> {
        self.repo.resolve_tag(tag).await
    }
    async fn fetch_manifest(&self, digest: &Digest) -> Result<FetchedManifest, OciError> {
        self.repo.fetch_manifest(digest).await
    }
    async fn manifest_exists(&self, digest: &Digest) -> Result<bool, OciError> {
        self.repo.manifest_exists(digest).await
    }
    async fn blob_exists(&self, digest: &Digest) -> Result<bool, OciError> {
        self.repo.blob_exists(digest).await
    }
    async fn fetch_blob_to(
        &self,
        descriptor: &Descriptor,
        sink: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<u64, OciError> {
        self.repo.fetch_blob_to(descriptor, sink).await
    }
    async fn fetch_blob_bytes(
        &self,
        descriptor: &Descriptor,
        cap: u64,
    ) -> Result<Vec<u8>, OciError> {
        self.repo.fetch_blob_bytes(descriptor, cap).await
    }
}

impl ReferrersRead for ListedRepository<'_> {
    async fn referrers_mode(&self) -> Result<ReferrersMode, OciError> {
        self.repo.referrers_mode().await
    }
    async fn list_referrers(
        &self,
        subject: &Digest,
        artifact_types: &[String],
    ) -> Result<ReferrerListing, OciError> {
        Ok(of_types(self.full_listing(subject).await?, artifact_types))
    }
    async fn list_referrers_skip_legacy(
        &self,
        subject: &Digest,
        artifact_types: &[String],
    ) -> Result<ReferrerListing, OciError> {
        // The legacy tags are wanted by the next listing of the same
        // subject anyway (the attestation walk): read them now, once.
        self.list_referrers(subject, artifact_types).await
    }
}
