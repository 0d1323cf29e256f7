//! The tag listing endpoint: `GET /v2/<name>/tags/list`, paginated with
//! `n`/`last` (distribution spec "Listing Tags"). Used to export a whole
//! repository.
//!
//! Work is bounded against a registry that lies: every page is capped
//! ([`MAX_PAGE_BYTES`]), a page with nothing new ends the listing (a
//! registry that ignores `last` sends the same tags again), and a listing
//! longer than [`MAX_TAGS`] tags or `MAX_PAGES` pages is refused rather
//! than returned in part.
//!
//! What this module does not do: resolve tags (see `manifests`).

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};

use super::Repository;
use super::auth::Access;
use super::client::{Req, read_capped, unexpected};
use crate::OciError;

/// Tags asked for per page.
const PAGE: usize = 1000;
/// Largest tags page read.
const MAX_PAGE_BYTES: u64 = 4 * 1024 * 1024;
/// Most tags listed for one repository.
pub const MAX_TAGS: usize = 100_000;

#[derive(serde::Deserialize)]
struct TagsPage {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl Repository {
    /// Every tag of the repository, sorted; empty for an unknown repository.
    pub async fn list_tags(&self) -> Result<Vec<String>, OciError> {
        let mut out: BTreeSet<String> = BTreeSet::new();
        // The last tag of the previous page (the registry's order).
        let mut last: Option<String> = None;
        for _ in 0..stella_types::limits::MAX_PAGES {
            let mut tail = format!("tags/list?n={PAGE}");
            if let Some(last) = &last {
                tail.push_str(&format!("&last={last}"));
            }
            let req = Req::new(Method::GET, self.url(&tail)?, Access::Pull);
            let resp = self.client.shared.execute(&self.target(), &req).await?;
            let page = match resp.status() {
                StatusCode::NOT_FOUND => return Ok(out.into_iter().collect()),
                s if s.is_success() => read_capped(resp, MAX_PAGE_BYTES, "tags list").await?,
                _ => {
                    return Err(unexpected(
                        resp,
                        &self.registry,
                        &format!("tags of {}", self.display()),
                    )
                    .await);
                }
            };
            let page: TagsPage = serde_json::from_slice(&page).map_err(|e| {
                OciError::Protocol(format!("tags list of {} is not JSON: {e}", self.display()))
            })?;
            let tags = page.tags.unwrap_or_default();
            let before = out.len();
            for t in tags {
                if stella_types::reference::is_valid_tag(&t) {
                    last = Some(t.clone());
                    out.insert(t);
                }
            }
            if out.len() > MAX_TAGS {
                return Err(OciError::Protocol(format!(
                    "tags list of {} has more than {MAX_TAGS} tags; refusing a partial answer",
                    self.display()
                )));
            }
            if out.len() == before || out.len() - before < PAGE {
                return Ok(out.into_iter().collect());
            }
        }
        Err(OciError::Protocol(format!(
            "tags list of {} has more than {} pages",
            self.display(),
            stella_types::limits::MAX_PAGES
        )))
    }
}
