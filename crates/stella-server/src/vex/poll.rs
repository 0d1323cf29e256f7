//! Cheap change detection for the provider runner: a fingerprint of what a
//! registry shows about one subscribed image, taken with a few requests
//! before discovery, so a run on an unchanged image skips the referrers
//! walk and ingests nothing.
//!
//! The fingerprint holds the image's manifest digest (one HEAD of the tag;
//! none for a digest reference), the referrers listing (on a registry
//! without the Referrers API the digest of the `sha256-<hex>` fallback
//! index; with the API a digest of the listed referrers, one GET per page)
//! and the digest of the cosign legacy `sha256-<hex>.att` tag, plus a
//! digest of the provider configuration, so a changed key or mode
//! re-verifies. A new referrer changes the fallback index or the API
//! listing; a re-pushed `.att` changes its tag's digest.
//!
//! Companion tags (`sha256-<hex>` and `sha256-<hex>.att`) are HEADed only
//! when they may exist: when [`should_list`] says a repository's tag
//! listing (`tags/list`, once per repository per run, shared by its
//! images) is cheaper than HEADing every image's companions, the listing
//! tells which exist and absent ones cost nothing. Requests for an
//! unchanged image: 1 (tag subscription) + the companion tags that exist +
//! its share of the listing; without a listing, 1 + 2 (tag) or 2 (digest).
//!
//! Not here: discovery, verification or storage (the runner stores the
//! fingerprint with the image's run status).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use stella_oci::OciError;
use stella_oci::registry::Repository;
use stella_oci::store::{ContentRead, ReferrersMode, ReferrersRead};
use stella_types::Digest;
use stella_types::reference::RegistryReference;

/// Tags a listing page holds (`stella_oci`'s `list_tags` asks for 1,000).
const TAGS_PER_PAGE: u64 = 1000;

/// Requests a listing saves on an image never seen before: its `.att` HEAD
/// in [`observe`] and the legacy-tag listing of its discovery
/// (`super::listed`), which distribution 2.8 answers with every tag.
pub const SAVED_PER_NEW_IMAGE: u64 = 2;

/// What the registry showed of one image.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Fingerprint {
    /// The resolved image manifest (or index) digest.
    pub image: String,
    /// `api`, `tag-schema` (the mode the listing was read with).
    pub mode: String,
    /// Digest of the referrers listing, `none` when there is none.
    pub referrers: String,
    /// Digest of the `.att` legacy tag, `none` when absent.
    pub att: String,
    /// Digest of the provider configuration the run used.
    pub config: String,
    /// Tags the repository's listing held when one was read (a cost
    /// estimate for the next run; not part of the comparison).
    #[serde(default, rename = "repoTags", skip_serializing_if = "Option::is_none")]
    pub repo_tags: Option<u64>,
}

impl PartialEq for Fingerprint {
    fn eq(&self, other: &Self) -> bool {
        (
            &self.image,
            &self.mode,
            &self.referrers,
            &self.att,
            &self.config,
        ) == (
            &other.image,
            &other.mode,
            &other.referrers,
            &other.att,
            &other.config,
        )
    }
}

impl Fingerprint {
    /// The stored text form.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a stored fingerprint (`None` for `""` or an unreadable one).
    pub fn from_text(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }

    /// Companion HEADs a tag listing would save on this image if it is
    /// unchanged: the absent fallback tag (tag schema) and `.att` tag.
    fn absent_companions(&self) -> u64 {
        let fallback = u64::from(self.mode == "tag-schema" && self.referrers == "none");
        fallback + u64::from(self.att == "none")
    }
}

/// The `sha256-…` tags of one repository, from one listing.
#[derive(Clone, Debug, Default)]
pub struct CompanionTags {
    tags: BTreeSet<String>,
    /// Every tag the listing held.
    pub total: u64,
}

impl CompanionTags {
    pub(crate) fn has(&self, tag: &str) -> bool {
        self.tags.contains(tag)
    }
}

/// Lists `repo`'s tags once (all pages) and keeps the companion ones.
pub async fn list_companions(repo: &Repository) -> Result<CompanionTags, OciError> {
    let all = repo.list_tags().await?;
    let total = all.len() as u64;
    Ok(CompanionTags {
        tags: all
            .into_iter()
            .filter(|t| t.starts_with("sha256-"))
            .collect(),
        total,
    })
}

/// Whether listing a repository's tags saves requests for images whose
/// last fingerprints are `previous` (one per subscribed image of the
/// repository; `None`: never seen): when the companion HEADs it spares on
/// unchanged images, plus [`SAVED_PER_NEW_IMAGE`] per never-seen image,
/// outnumber the listing's estimated pages.
pub fn should_list(previous: &[Option<&Fingerprint>]) -> bool {
    let unseen = previous.iter().filter(|p| p.is_none()).count() as u64;
    let saved: u64 = previous
        .iter()
        .flatten()
        .map(|f| f.absent_companions())
        .sum::<u64>()
        + unseen * SAVED_PER_NEW_IMAGE;
    let tags = previous
        .iter()
        .flatten()
        .filter_map(|f| f.repo_tags)
        .max()
        .unwrap_or(0);
    saved > tags / TAGS_PER_PAGE + 1
}

/// The digest a tag points at, `none` when the tag does not exist (or the
/// listing says it does not, which costs no request).
async fn tag_digest(
    repo: &Repository,
    tag: &str,
    listed: Option<&CompanionTags>,
) -> Result<String, OciError> {
    if listed.is_some_and(|l| !l.has(tag)) {
        return Ok("none".into());
    }
    match repo.resolve_tag(tag).await {
        Ok(d) => Ok(d.digest.to_string()),
        Err(e) if e.is_not_found() => Ok("none".into()),
        Err(e) => Err(e),
    }
}

/// The image digest: the reference's own, or one HEAD of its tag.
async fn image_digest(
    repo: &Repository,
    reference: &RegistryReference,
) -> Result<Digest, OciError> {
    if let Some(d) = &reference.digest {
        return Ok(d.clone());
    }
    let tag = reference.tag.as_deref().unwrap_or("latest");
    repo.resolve_tag(tag).await.map(|d| d.digest)
}

/// A digest of the Referrers API listing of `image` (one GET per page).
async fn api_listing(repo: &Repository, image: &Digest) -> Result<String, OciError> {
    let listing = repo.list_referrers_skip_legacy(image, &[]).await?;
    let mut digests: Vec<String> = listing
        .referrers
        .iter()
        .map(|e| e.descriptor.digest.to_string())
        .collect();
    digests.sort();
    Ok(if digests.is_empty() {
        "none".to_string()
    } else {
        Digest::sha256_of(digests.join("\n").as_bytes()).to_string()
    })
}

/// What one observation needs besides the image.
pub struct Observe<'a> {
    /// The referrers mode a previous fingerprint recorded (saves the
    /// per-registry mode probe).
    pub known_mode: Option<&'a str>,
    /// The provider configuration digest.
    pub config: &'a str,
    /// The repository's companion tags when this run listed them.
    pub listed: Option<&'a CompanionTags>,
}

/// Takes the fingerprint of `reference` in `repo`.
pub async fn observe(
    repo: &Repository,
    reference: &RegistryReference,
    how: &Observe<'_>,
) -> Result<Fingerprint, OciError> {
    let image = image_digest(repo, reference).await?;
    let mode = match how.known_mode {
        Some("tag-schema") => ReferrersMode::TagSchema,
        Some("api") => ReferrersMode::Api,
        _ => repo.referrers_mode().await?,
    };
    let base = image.referrers_tag();
    let (mode_name, referrers) = match mode {
        ReferrersMode::Api => ("api", api_listing(repo, &image).await?),
        _ => ("tag-schema", tag_digest(repo, &base, how.listed).await?),
    };
    let att = tag_digest(repo, &format!("{base}.att"), how.listed).await?;
    Ok(Fingerprint {
        image: image.to_string(),
        mode: mode_name.into(),
        referrers,
        att,
        config: how.config.to_string(),
        repo_tags: how.listed.map(|l| l.total),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(mode: &str, referrers: &str, att: &str, tags: Option<u64>) -> Fingerprint {
        Fingerprint {
            image: "sha256:aa".into(),
            mode: mode.into(),
            referrers: referrers.into(),
            att: att.into(),
            config: "c".into(),
            repo_tags: tags,
        }
    }

    #[test]
    fn listing_is_chosen_only_when_it_saves_requests() {
        let one = seen("tag-schema", "sha256:bb", "none", None);
        // One image saving one HEAD does not pay for a listing page.
        assert!(!should_list(&[Some(&one)]));
        assert!(should_list(&[Some(&one), Some(&one)]));
        // Both companions present: nothing to save.
        let both = seen("tag-schema", "sha256:bb", "sha256:cc", None);
        assert!(!should_list(&[Some(&both), Some(&both), Some(&both)]));
        // Never seen: each saves its `.att` HEAD and the legacy-tag
        // listing of its discovery, more than one listing page.
        assert!(should_list(&[None]));
        assert!(should_list(&[None, None, None]));
        // A repository of 5,000 tags needs 6 pages.
        let big = seen("api", "sha256:bb", "none", Some(5000));
        assert!(!should_list(&[Some(&big); 6]));
        assert!(should_list(&[Some(&big); 7]));
        // ... which two new images next to five seen ones pay for.
        let mut mixed = vec![Some(&big); 5];
        assert!(!should_list(&mixed));
        mixed.extend([None, None]);
        assert!(should_list(&mixed));
    }

    #[test]
    fn the_tag_count_is_not_part_of_the_comparison() {
        let a = seen("tag-schema", "none", "none", Some(3));
        let b = seen("tag-schema", "none", "none", None);
        assert_eq!(a, b);
        assert_ne!(a, seen("tag-schema", "sha256:bb", "none", None));
        let back = Fingerprint::from_text(&a.to_text()).unwrap();
        assert_eq!(back.repo_tags, Some(3));
    }
}
