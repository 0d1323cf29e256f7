//! Cheap change detection for the provider runner: a fingerprint of what a
//! registry shows about one subscribed image, taken with a few HEAD
//! requests before discovery, so a run on an unchanged image skips the
//! referrers walk and ingests nothing.
//!
//! The fingerprint holds the image's manifest digest (one HEAD of the tag;
//! none for a digest reference), the referrers listing (on a registry
//! without the Referrers API the digest of the `sha256-<hex>` fallback
//! index, one HEAD; with the API a digest of the listed referrers, one GET
//! per page) and the digest of the cosign legacy `sha256-<hex>.att` tag
//! (one HEAD), plus a digest of the provider configuration, so a changed
//! key or mode re-verifies. A new referrer changes the fallback index or
//! the API listing; a re-pushed `.att` changes its tag's digest.
//!
//! Not here: discovery, verification or storage (the runner stores the
//! fingerprint with the image's run status).

use serde::{Deserialize, Serialize};
use stella_oci::OciError;
use stella_oci::registry::Repository;
use stella_oci::store::{ContentRead, ReferrersMode, ReferrersRead};
use stella_types::Digest;
use stella_types::reference::RegistryReference;

/// What the registry showed of one image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// The digest a tag points at, `none` when the tag does not exist.
async fn tag_digest(repo: &Repository, tag: &str) -> Result<String, OciError> {
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

/// Takes the fingerprint of `reference` in `repo`. `known_mode` is the
/// referrers mode a previous fingerprint recorded (saves the per-registry
/// mode probe); `config` the provider configuration digest.
pub async fn observe(
    repo: &Repository,
    reference: &RegistryReference,
    known_mode: Option<&str>,
    config: &str,
) -> Result<Fingerprint, OciError> {
    let image = image_digest(repo, reference).await?;
    let mode = match known_mode {
        Some("tag-schema") => ReferrersMode::TagSchema,
        Some("api") => ReferrersMode::Api,
        _ => repo.referrers_mode().await?,
    };
    let base = image.referrers_tag();
    let (mode_name, referrers) = match mode {
        ReferrersMode::Api => {
            let listing = repo.list_referrers_skip_legacy(&image, &[]).await?;
            let mut digests: Vec<String> = listing
                .referrers
                .iter()
                .map(|e| e.descriptor.digest.to_string())
                .collect();
            digests.sort();
            let text = if digests.is_empty() {
                "none".to_string()
            } else {
                Digest::sha256_of(digests.join("\n").as_bytes()).to_string()
            };
            ("api", text)
        }
        _ => ("tag-schema", tag_digest(repo, &base).await?),
    };
    let att = tag_digest(repo, &format!("{base}.att")).await?;
    Ok(Fingerprint {
        image: image.to_string(),
        mode: mode_name.into(),
        referrers,
        att,
        config: config.to_string(),
    })
}
