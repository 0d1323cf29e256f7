//! Referrers of a subject: the referrers API (`GET /v2/<name>/referrers/<digest>`,
//! with `Link` pagination, `artifactType` filtering and `OCI-Filters-Applied`)
//! or, on registries without it, the referrers tag schema: an image index
//! tagged `<alg>-<hex>` listing the referrer manifests.
//!
//! The mode is decided per registry by probing the API (404 means tag
//! schema; an `OCI-Subject` header alone proves nothing) and cached in the
//! [`super::RegistryClient`] for `RegistryOptions::referrers_mode_ttl`
//! (a long-running process re-probes after it, e.g. once a registry was
//! upgraded to one with the API).
//!
//! Updating a fallback index when writers race (no registry gives a lock;
//! distribution 2.8 ignores `If-Match`), see docs/referrers.md "Racing
//! writers" for the argument in full:
//! 1. read the index with push credentials (remember its `ETag`), merge our
//!    edit, de-duplicate by digest and sort by (artifactType, digest);
//! 2. `PUT` it (with `If-Match` when we have an `ETag`; 412 → re-read,
//!    merge), but only if the `PUT` leaves within [`WRITE_WINDOW`] of the
//!    read's answer arriving; a writer that was slower (a stalled process,
//!    a slow merge) reads again instead of writing what it read earlier;
//! 3. wait the settle delay, [`WRITE_WINDOW`] + [`SETTLE_MARGIN`] + twice
//!    the slower of our own read and write round trips (plus a random
//!    backoff that grows with each round lost to contention), and re-read:
//!    if our edit is gone, merge it into what is there and write again; if
//!    another writer wrote after us, check once more.
//!    `RegistryOptions::unsafe_single_writer` skips this step (and its cost)
//!    for callers that guarantee there is no concurrent writer.
//!
//! Why this cannot lose an entry: a writer that drops our entry must have
//! read the index before our write landed (everyone reading after sees our
//! entry and merges into it), and it sends its write within
//! [`WRITE_WINDOW`] of that read's answer, so its write lands within
//! [`WRITE_WINDOW`] plus one of its round trips after ours. Our re-read
//! comes later than that; if it still sees our entry, no stale write is
//! left in flight. If it does not, we restore it. Entries of other writers
//! are never dropped: we only ever merge into what we last read. The one
//! exception is an entry whose manifest a HEAD shows to be gone, when the
//! registry refuses the index because of it (distribution checks that an
//! index's children exist).
//!
//! What this module does not do: walk the graph (see the crate's
//! `referrers` module) or HEAD every listed entry by default (listing stays
//! one request per page; [`Repository::check_dangling`] is explicit).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use stella_types::limits::{MAX_PAGES, MAX_REFERRERS_INDEX_BYTES, MAX_REFERRERS_PER_SUBJECT};
use stella_types::media_types::{EMPTY_JSON_DIGEST, OCI_EMPTY, OCI_INDEX};
use stella_types::{Descriptor, Digest, ImageIndex, ManifestError};
use url::Url;

use super::Repository;
use super::auth::Access;
use super::client::{CachedMode, Req, header_str, read_capped, unexpected};
use super::manifests::PutOutcome;
use crate::OciError;
use crate::store::{LegacyAttachment, ReferrerEntry, ReferrerListing, ReferrersMode};

/// Write rounds before giving up with [`OciError::Conflict`].
pub const MAX_UPDATE_ROUNDS: usize = 12;
/// Reads thrown away because the `PUT` could not leave within
/// [`WRITE_WINDOW`], before giving up with [`OciError::Conflict`].
pub const MAX_LATE_READS: usize = 24;
/// Longest time a writer lets pass between the answer to its read of a
/// fallback index and sending the `PUT` based on it. Past it the read is
/// stale: read again. Every Stella writer keeps to it, which is what lets
/// the others' settle delay be short.
pub const WRITE_WINDOW: Duration = Duration::from_millis(50);
/// Slack in the settle delay, on top of [`WRITE_WINDOW`] and the round
/// trips, for a registry to apply a `PUT` it has received.
pub const SETTLE_MARGIN: Duration = Duration::from_millis(50);
/// HEADs in flight at once when checking entries.
pub const CHECK_CONCURRENCY: usize = 8;
/// Tags asked for (`n`) when looking for cosign legacy tags.
pub const TAGS_PAGE: usize = 1000;
/// Largest tag list read when looking for cosign legacy tags.
const MAX_TAGS_LIST_BYTES: u64 = 4 << 20;

/// The fallback index of a subject as read.
#[derive(Debug, Clone)]
pub(crate) struct FallbackIndex {
    pub index: ImageIndex,
    pub etag: Option<String>,
    /// Digest of the bytes read (None when the tag does not exist).
    pub digest: Option<Digest>,
    /// The tag resolves to the subject itself (a registry bug), not an index.
    pub self_reference: bool,
}

/// A fallback index read for an update, with the read's round trip and
/// the moment its answer arrived (the start of the write window).
struct TimedRead {
    index: FallbackIndex,
    rtt: Duration,
    answered: Instant,
}

/// How the settle check after a write ended.
enum Settled {
    /// Our edit is still there after every write that could undo it.
    Kept,
    /// A stale write undid it: merge into this read and write again.
    Lost(Box<TimedRead>),
}

/// How long to wait after our write before re-reading: longer than any
/// writer that read before our write landed needs to send its write
/// ([`WRITE_WINDOW`]) and have it land (its round trip, taken as at most
/// twice ours, plus [`SETTLE_MARGIN`]).
pub fn settle_delay(rtt: Duration) -> Duration {
    WRITE_WINDOW + SETTLE_MARGIN + rtt * 2
}

/// A random pause that grows with the rounds already lost to other
/// writers, so racing writers stop colliding; none on the first round.
async fn contention_backoff(round: usize) {
    if round == 0 {
        return;
    }
    let cap = 40 * (round as u64).min(8);
    tokio::time::sleep(Duration::from_millis(fastrand::u64(0..=cap))).await;
}

/// From one tag-list answer to `?n=`[`TAGS_PAGE`]`&last=<base>`: the tags
/// from `base` up to `<base>.sig`, or `None` when the answer may have left
/// some out. Sorted tags all after `base` (the registry honoured `last`)
/// are complete up to the last one shown; anything else must be the whole
/// list (no `Link` to a next page, fewer than `n` tags).
fn legacy_candidates(tags: Vec<String>, paginated: bool, base: &str) -> Option<BTreeSet<String>> {
    let last_legacy = format!("{base}.sig");
    let honoured_last =
        tags.iter().all(|t| t.as_str() > base) && tags.windows(2).all(|w| w.first() < w.get(1));
    let complete = if honoured_last {
        tags.len() < TAGS_PAGE || tags.last().is_some_and(|t| *t > last_legacy)
    } else {
        !paginated && tags.len() < TAGS_PAGE
    };
    complete.then(|| {
        tags.into_iter()
            .filter(|t| t.starts_with(base) && t.as_str() <= last_legacy.as_str())
            .collect()
    })
}

/// A change to a fallback index: upsert `put` entries, drop `remove` digests.
#[derive(Debug, Clone, Default)]
pub(crate) struct IndexEdit {
    pub put: Vec<Descriptor>,
    pub remove: BTreeSet<Digest>,
    /// Rewrite even when the edit is already in place but the index is not
    /// in canonical form (repair).
    pub canonicalize: bool,
}

impl IndexEdit {
    fn apply(&self, index: &ImageIndex) -> ImageIndex {
        let put: BTreeSet<&Digest> = self.put.iter().map(|d| &d.digest).collect();
        let mut entries: Vec<Descriptor> = index
            .manifests
            .iter()
            .filter(|d| !self.remove.contains(&d.digest) && !put.contains(&d.digest))
            .cloned()
            .collect();
        entries.extend(self.put.iter().cloned());
        let mut out = index.clone();
        out.schema_version = 2;
        out.media_type = Some(OCI_INDEX.to_string());
        out.subject = None;
        out.manifests = normalize_entries(entries);
        out
    }

    fn satisfied(&self, index: &ImageIndex) -> bool {
        let removed = index
            .manifests
            .iter()
            .all(|d| !self.remove.contains(&d.digest));
        let put = self
            .put
            .iter()
            .all(|p| index.manifests.iter().any(|d| d == p));
        removed && put
    }
}

/// De-duplicates by digest (keeping the most complete descriptor, chosen
/// deterministically) and sorts by (artifactType, digest).
pub fn normalize_entries(entries: Vec<Descriptor>) -> Vec<Descriptor> {
    let mut best: BTreeMap<Digest, Descriptor> = BTreeMap::new();
    for d in entries {
        match best.get(&d.digest) {
            Some(current) if richness(current) >= richness(&d) => {}
            _ => {
                best.insert(d.digest.clone(), d);
            }
        }
    }
    let mut out: Vec<Descriptor> = best.into_values().collect();
    out.sort_by(|a, b| {
        (a.artifact_type.as_deref().unwrap_or(""), &a.digest)
            .cmp(&(b.artifact_type.as_deref().unwrap_or(""), &b.digest))
    });
    out
}

fn richness(d: &Descriptor) -> (bool, usize, Vec<u8>) {
    let real_type = d
        .artifact_type
        .as_deref()
        .is_some_and(|t| !t.is_empty() && t != OCI_EMPTY);
    (
        real_type,
        d.annotations.len(),
        serde_json::to_vec(d).unwrap_or_default(),
    )
}

fn filter_types(entries: Vec<Descriptor>, artifact_types: &[String]) -> Vec<Descriptor> {
    if artifact_types.is_empty() {
        return entries;
    }
    entries
        .into_iter()
        .filter(|d| {
            d.artifact_type
                .as_deref()
                .is_some_and(|t| artifact_types.iter().any(|a| a == t))
        })
        .collect()
}

/// The `rel="next"` target of a `Link` header (RFC 8288), if any.
pub(crate) fn next_link(header: &str) -> Option<String> {
    for part in header.split(',') {
        let part = part.trim();
        let (target, params) = match part.split_once('>') {
            Some((t, p)) => (t.trim().strip_prefix('<')?, p),
            None => continue,
        };
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            p.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_matches('"')
                        .split_whitespace()
                        .any(|r| r == "next")
            })
        });
        if is_next {
            return Some(target.to_string());
        }
    }
    None
}

impl Repository {
    pub(crate) async fn referrers_mode_impl(&self) -> Result<ReferrersMode, OciError> {
        if let Some(m) = self.fresh_mode() {
            return Ok(m);
        }
        let mode = self.probe_mode().await?;
        let ttl = self.client.shared.options.referrers_mode_ttl;
        self.store_mode(CachedMode {
            mode,
            expires: Instant::now().checked_add(ttl),
        });
        Ok(mode)
    }

    /// The cached mode of this registry, unless its lifetime has passed.
    fn fresh_mode(&self) -> Option<ReferrersMode> {
        let cached = self
            .client
            .shared
            .modes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&self.registry)
            .copied()?;
        match cached.expires {
            Some(t) if t <= Instant::now() => None,
            _ => Some(cached.mode),
        }
    }

    fn store_mode(&self, cached: CachedMode) {
        self.client
            .shared
            .modes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(self.registry.clone(), cached);
    }

    /// A manifest with a `subject` was stored without an `OCI-Subject`
    /// header in the answer: the distribution spec says a registry with
    /// the referrers API must send one, and that a client seeing none must
    /// use the tag schema. Take that as the mode (when none is known yet),
    /// which saves the probe a push would otherwise make. The header's
    /// presence proves nothing by itself, so it is never taken as `Api`.
    pub(crate) fn note_no_oci_subject(&self, manifest: &[u8]) {
        if self.fresh_mode().is_some() {
            return;
        }
        let has_subject = serde_json::from_slice::<serde_json::Value>(manifest)
            .is_ok_and(|v| v.get("subject").is_some_and(|s| s.is_object()));
        if has_subject {
            let ttl = self.client.shared.options.referrers_mode_ttl;
            self.store_mode(CachedMode {
                mode: ReferrersMode::TagSchema,
                expires: Instant::now().checked_add(ttl),
            });
        }
    }

    /// `GET /v2/<name>/referrers/<empty-json digest>`: a registry with the
    /// API must answer 200 with an image index even for an unknown subject.
    async fn probe_mode(&self) -> Result<ReferrersMode, OciError> {
        let req = Req::new(
            Method::GET,
            self.url(&format!("referrers/{EMPTY_JSON_DIGEST}"))?,
            Access::Pull,
        )
        .header("Accept", OCI_INDEX);
        let resp = self.client.shared.execute(&self.target(), &req).await?;
        let status = resp.status();
        if status.is_success() {
            let ct = header_str(&resp, "content-type").unwrap_or("").to_string();
            let body =
                read_capped(resp, MAX_REFERRERS_INDEX_BYTES, "referrers probe answer").await?;
            let is_index =
                serde_json::from_slice::<ImageIndex>(&body).is_ok_and(|i| i.schema_version == 2);
            if is_index && (ct.is_empty() || ct.contains(OCI_INDEX) || ct.contains("json")) {
                return Ok(ReferrersMode::Api);
            }
            return Ok(ReferrersMode::TagSchema);
        }
        match status.as_u16() {
            404 | 400 | 405 | 406 | 501 => Ok(ReferrersMode::TagSchema),
            _ => Err(unexpected(
                resp,
                &self.registry,
                &format!("referrers API probe of {}", self.display()),
            )
            .await),
        }
    }

    pub(crate) async fn list_referrers_impl(
        &self,
        subject: &Digest,
        artifact_types: &[String],
        with_legacy: bool,
    ) -> Result<ReferrerListing, OciError> {
        let mode = self.referrers_mode_impl().await?;
        let (entries, legacy) = tokio::join!(
            async {
                match mode {
                    ReferrersMode::Api => self.list_api(subject, artifact_types).await,
                    _ => self.read_fallback(subject).await.map(|f| f.index.manifests),
                }
            },
            async {
                if with_legacy {
                    self.legacy_tags(subject).await
                } else {
                    Ok(Vec::new())
                }
            }
        );
        let entries = normalize_entries(filter_types(entries?, artifact_types));
        Ok(ReferrerListing {
            mode,
            referrers: entries
                .into_iter()
                .map(|descriptor| ReferrerEntry {
                    descriptor,
                    dangling: false,
                })
                .collect(),
            legacy: legacy?,
        })
    }

    /// All pages of the referrers API answer.
    async fn list_api(
        &self,
        subject: &Digest,
        artifact_types: &[String],
    ) -> Result<Vec<Descriptor>, OciError> {
        let mut url = self.url(&format!("referrers/{subject}"))?;
        if let [only] = artifact_types {
            url.query_pairs_mut().append_pair("artifactType", only);
        }
        let what = format!("referrers of {}@{subject}", self.display());
        let mut seen: HashSet<String> = HashSet::new();
        let mut out = Vec::new();
        let mut next = Some(url);
        let mut pages = 0usize;
        while let Some(url) = next.take() {
            if !seen.insert(url.to_string()) {
                return Err(OciError::Protocol(format!(
                    "registry {} sent a pagination loop while listing {what}",
                    self.registry
                )));
            }
            pages += 1;
            if pages > MAX_PAGES {
                return Err(OciError::Protocol(format!(
                    "listing {what} needs more than {MAX_PAGES} pages; refusing a partial answer"
                )));
            }
            let req = Req::new(Method::GET, url.clone(), Access::Pull).header("Accept", OCI_INDEX);
            let resp = self.client.shared.execute(&self.target(), &req).await?;
            if resp.status() == StatusCode::NOT_FOUND {
                return Err(OciError::not_found(format!(
                    "repository {}",
                    self.display()
                )));
            }
            if !resp.status().is_success() {
                return Err(unexpected(resp, &self.registry, &what).await);
            }
            let link = header_str(&resp, "link").and_then(next_link);
            let body = read_capped(resp, MAX_REFERRERS_INDEX_BYTES, &what).await?;
            let index: ImageIndex =
                serde_json::from_slice(&body).map_err(|e| OciError::Manifest {
                    context: what.clone(),
                    source: ManifestError::Json(e),
                })?;
            if index.schema_version != 2 {
                return Err(OciError::Manifest {
                    context: what.clone(),
                    source: ManifestError::SchemaVersion(index.schema_version),
                });
            }
            out.extend(index.manifests);
            if out.len() > MAX_REFERRERS_PER_SUBJECT {
                return Err(OciError::Protocol(format!(
                    "{what}: more than {MAX_REFERRERS_PER_SUBJECT} referrers; refusing a partial answer"
                )));
            }
            if let Some(l) = link {
                let u = url.join(&l).map_err(|e| {
                    OciError::Protocol(format!(
                        "registry {} sent an unusable Link header: {e}",
                        self.registry
                    ))
                })?;
                if u.host_str() != url.host_str()
                    || u.port_or_known_default() != url.port_or_known_default()
                {
                    return Err(OciError::Protocol(format!(
                        "registry {} sent a next-page link to another host ({})",
                        self.registry,
                        u.host_str().unwrap_or("")
                    )));
                }
                next = Some(u);
            }
        }
        // Filtering is re-applied by the caller whether or not the registry
        // said so in OCI-Filters-Applied.
        Ok(out)
    }

    /// Reads the referrers tag schema index of `subject`.
    pub(crate) async fn read_fallback(&self, subject: &Digest) -> Result<FallbackIndex, OciError> {
        self.read_fallback_as(subject, Access::Pull).await
    }

    /// [`Self::read_fallback`] with the credentials of `access`.
    async fn read_fallback_as(
        &self,
        subject: &Digest,
        access: Access,
    ) -> Result<FallbackIndex, OciError> {
        let tag = subject.referrers_tag();
        let what = format!("referrers index {}:{tag}", self.display());
        let Some(raw) = self
            .get_manifest_raw_as(&tag, MAX_REFERRERS_INDEX_BYTES, access)
            .await?
        else {
            return Ok(FallbackIndex {
                index: ImageIndex::empty(),
                etag: None,
                digest: None,
                self_reference: false,
            });
        };
        if subject.same_algorithm_of(&raw.bytes) == *subject {
            return Ok(FallbackIndex {
                index: ImageIndex::empty(),
                etag: raw.etag,
                digest: Some(raw.digest),
                self_reference: true,
            });
        }
        let index: ImageIndex =
            serde_json::from_slice(&raw.bytes).map_err(|e| OciError::Manifest {
                context: what.clone(),
                source: ManifestError::Json(e),
            })?;
        if index.schema_version != 2 {
            return Err(OciError::Manifest {
                context: what,
                source: ManifestError::SchemaVersion(index.schema_version),
            });
        }
        if let Some(mt) = index.media_type.as_deref().or(raw.content_type.as_deref())
            && mt != OCI_INDEX
        {
            return Err(OciError::Manifest {
                context: what,
                source: ManifestError::UnsupportedMediaType(mt.to_string()),
            });
        }
        Ok(FallbackIndex {
            index,
            etag: raw.etag,
            digest: Some(raw.digest),
            self_reference: false,
        })
    }

    /// cosign's `sha256-<hex>.sig|.att|.sbom` tags for `subject`.
    async fn legacy_tags(&self, subject: &Digest) -> Result<Vec<LegacyAttachment>, OciError> {
        let base = subject.referrers_tag();
        let kinds = ["att", "sbom", "sig"];
        let tags: Vec<(String, &str)> = kinds
            .iter()
            .map(|k| (format!("{base}.{k}"), *k))
            .filter(|(t, _)| super::manifests::valid_tag(t))
            .collect();
        // One tag listing usually shows that none of the three exists; only
        // the tags it shows (or all three, when it cannot tell) are HEADed.
        let listed = self.tags_after(&base).await?;
        let names: Vec<String> = tags
            .iter()
            .map(|(t, _)| t.clone())
            .filter(|t| listed.as_ref().is_none_or(|l| l.contains(t)))
            .collect();
        let tags: Vec<(String, &str)> = tags
            .into_iter()
            .filter(|(t, _)| names.contains(t))
            .collect();
        let found = futures_util::future::join_all(
            names
                .into_iter()
                .map(move |t: String| async move { self.manifest_exists_impl(&t).await }),
        )
        .await;
        let mut out = Vec::new();
        for ((tag, kind), r) in tags.into_iter().zip(found) {
            if let Some(descriptor) = r? {
                out.push(LegacyAttachment {
                    tag,
                    kind: kind.to_string(),
                    descriptor,
                });
            }
        }
        out.sort_by(|a, b| a.tag.cmp(&b.tag));
        Ok(out)
    }

    /// The tags of this repository that could be cosign legacy tags of
    /// `base` (`<base>.att|.sbom|.sig`), from one `GET tags/list?n=&last=`,
    /// when that answer is provably complete for them; `None` when it is
    /// not (refused, paginated without honouring `last`, too large), and
    /// the caller looks each tag up instead. distribution 2.8 ignores `n`
    /// and `last` and sends every tag: complete when under [`TAGS_PAGE`].
    async fn tags_after(&self, base: &str) -> Result<Option<BTreeSet<String>>, OciError> {
        let mut url = self.url("tags/list")?;
        url.query_pairs_mut()
            .append_pair("n", &TAGS_PAGE.to_string())
            .append_pair("last", base);
        let req = Req::new(Method::GET, url, Access::Pull);
        let resp = self.client.shared.execute(&self.target(), &req).await?;
        if !resp.status().is_success() {
            return Ok(None);
        }
        let paginated = header_str(&resp, "link").is_some();
        let Ok(body) = read_capped(resp, MAX_TAGS_LIST_BYTES, "tag list").await else {
            return Ok(None);
        };
        #[derive(serde::Deserialize)]
        struct TagList {
            tags: Option<Vec<String>>,
        }
        let Ok(list) = serde_json::from_slice::<TagList>(&body) else {
            return Ok(None);
        };
        Ok(legacy_candidates(
            list.tags.unwrap_or_default(),
            paginated,
            base,
        ))
    }

    pub(crate) async fn add_referrer_impl(
        &self,
        subject: &Descriptor,
        referrer: &Descriptor,
    ) -> Result<(), OciError> {
        if self.referrers_mode_impl().await? == ReferrersMode::Api {
            // The registry indexes the manifest's subject itself.
            return Ok(());
        }
        let mut entry = referrer.clone();
        entry.data = None;
        if entry.artifact_type.is_none() {
            // The tag schema wants artifactType and annotations in the entry.
            let m = self.fetch_manifest_impl(&referrer.digest).await?;
            if let Ok(parsed) =
                stella_types::Manifest::parse(&m.bytes, Some(&m.descriptor.media_type))
            {
                entry.artifact_type = parsed.artifact_type().map(str::to_string);
                if entry.annotations.is_empty() {
                    entry.annotations = parsed.annotations().clone();
                }
            }
        }
        let edit = IndexEdit {
            put: vec![entry],
            ..Default::default()
        };
        self.update_fallback(&subject.digest, &edit)
            .await
            .map(|_| ())
    }

    pub(crate) async fn remove_referrer_impl(
        &self,
        subject: &Digest,
        referrer: &Digest,
    ) -> Result<(), OciError> {
        if self.referrers_mode_impl().await? == ReferrersMode::Api {
            return Ok(());
        }
        let edit = IndexEdit {
            remove: BTreeSet::from([referrer.clone()]),
            ..Default::default()
        };
        self.update_fallback(subject, &edit).await.map(|_| ())
    }

    /// Applies `edit` to `subject`'s fallback index with the settle
    /// protocol described in the module docs. Returns whether it wrote.
    pub(crate) async fn update_fallback(
        &self,
        subject: &Digest,
        edit: &IndexEdit,
    ) -> Result<bool, OciError> {
        let tag = subject.referrers_tag();
        let mut read = self.timed_read(subject).await?;
        let mut pruned = 0u32;
        let mut late_reads = 0usize;
        let mut round = 0usize;
        while round < MAX_UPDATE_ROUNDS {
            let current = &read.index;
            let merged = edit.apply(&current.index);
            let canonical =
                current.digest.is_some() && !current.self_reference && merged == current.index;
            if round == 0
                && edit.satisfied(&current.index)
                && (!edit.canonicalize || canonical)
                && current.digest.is_some()
            {
                return Ok(false);
            }
            if round == 0 && edit.put.is_empty() && current.digest.is_none() {
                // Nothing to remove from an index that does not exist.
                return Ok(false);
            }
            let bytes = merged.to_json_bytes();
            // Never write an index that Stella (or any reader with the
            // manifest cap) could not read back; removals only shrink it.
            if !edit.put.is_empty() {
                crate::referrers::check_tag_schema_index_fits(&bytes, subject)?;
            }
            if read.answered.elapsed() > WRITE_WINDOW {
                // Too long since the read: others' settle delays only
                // cover writes sent within the window. Read again.
                late_reads += 1;
                if late_reads > MAX_LATE_READS {
                    break;
                }
                read = self.timed_read(subject).await?;
                continue;
            }
            let written = Digest::sha256_of(&bytes);
            let etag = if current.self_reference {
                None
            } else {
                current.etag.clone()
            };
            let put_started = Instant::now();
            let outcome = self
                .put_manifest(&tag, OCI_INDEX, &bytes, etag.as_deref())
                .await?;
            let put_rtt = put_started.elapsed();
            match outcome {
                PutOutcome::Written { .. } => {}
                PutOutcome::PreconditionFailed => {
                    round += 1;
                    contention_backoff(round).await;
                    read = self.timed_read(subject).await?;
                    continue;
                }
                PutOutcome::ChildUnknown(detail) => {
                    if pruned >= 3 {
                        return Err(OciError::Protocol(format!(
                            "registry {} refused referrers index {}:{tag}: {detail}",
                            self.registry,
                            self.display()
                        )));
                    }
                    pruned += 1;
                    round += 1;
                    tokio::time::sleep(Duration::from_millis(
                        50 * u64::from(pruned) + fastrand::u64(0..=100),
                    ))
                    .await;
                    // Drop entries whose manifests are gone (the registry
                    // will not store an index naming them), keep the rest.
                    // Find them first, then re-read and write at once, so
                    // the HEADs do not widen our read-to-write window.
                    let gone = self.missing_manifests(&current.index.manifests).await?;
                    read = self.timed_read(subject).await?;
                    read.index.index.manifests.retain(|d| {
                        !gone.contains(&d.digest) || edit.put.iter().any(|p| p.digest == d.digest)
                    });
                    continue;
                }
            }
            if self.client.shared.options.unsafe_single_writer {
                // The caller promised there is no concurrent writer.
                return Ok(true);
            }
            let rtt = read.rtt.max(put_rtt).min(Duration::from_secs(5));
            match self.settle(subject, edit, &written, rtt, round).await? {
                Settled::Kept => return Ok(true),
                Settled::Lost(again) => {
                    read = *again;
                    round += 1;
                }
            }
        }
        Err(OciError::Conflict(format!(
            "gave up updating referrers index {}:{tag} after {MAX_UPDATE_ROUNDS} rounds: concurrent writers kept changing it (or every read was too slow to write within the window)",
            self.display()
        )))
    }

    /// Reads the fallback index for an update (push credentials), timing
    /// the round trip and noting when the answer arrived.
    async fn timed_read(&self, subject: &Digest) -> Result<TimedRead, OciError> {
        let started = Instant::now();
        let index = self.read_fallback_as(subject, Access::Push).await?;
        Ok(TimedRead {
            index,
            rtt: started.elapsed(),
            answered: Instant::now(),
        })
    }

    /// After our write: wait until every write sent by a writer that read
    /// before ours landed has landed too, then re-read. One check, or two
    /// when someone wrote after us.
    async fn settle(
        &self,
        subject: &Digest,
        edit: &IndexEdit,
        written: &Digest,
        rtt: Duration,
        round: usize,
    ) -> Result<Settled, OciError> {
        let mut checks_left = 1;
        let mut extended = false;
        loop {
            tokio::time::sleep(settle_delay(rtt)).await;
            contention_backoff(round).await;
            let read = self.timed_read(subject).await?;
            if !edit.satisfied(&read.index.index) || read.index.self_reference {
                return Ok(Settled::Lost(Box::new(read)));
            }
            checks_left -= 1;
            if read.index.digest.as_ref() != Some(written) && !extended {
                // Someone wrote after us: look once more.
                extended = true;
                checks_left += 1;
            }
            if checks_left == 0 {
                return Ok(Settled::Kept);
            }
        }
    }

    /// Digests among `entries` whose manifests the registry does not have.
    pub(crate) async fn missing_manifests(
        &self,
        entries: &[Descriptor],
    ) -> Result<BTreeSet<Digest>, OciError> {
        let digests: Vec<Digest> = entries.iter().map(|d| d.digest.clone()).collect();
        let results: Vec<(Digest, Result<Option<Descriptor>, OciError>)> =
            futures_util::stream::iter(digests.into_iter().map(move |digest: Digest| async move {
                let r = self.manifest_exists_impl(&digest.to_string()).await;
                (digest, r)
            }))
            .buffer_unordered(CHECK_CONCURRENCY)
            .collect()
            .await;
        let mut gone = BTreeSet::new();
        for (d, r) in results {
            if r?.is_none() {
                gone.insert(d);
            }
        }
        Ok(gone)
    }

    /// HEADs every listed referrer (bounded concurrency) and marks the ones
    /// whose manifest is gone as dangling. Listing does not do this by
    /// default, to stay one request per page.
    pub async fn check_dangling(&self, listing: &mut ReferrerListing) -> Result<(), OciError> {
        let descriptors: Vec<Descriptor> = listing
            .referrers
            .iter()
            .map(|e| e.descriptor.clone())
            .collect();
        let gone = self.missing_manifests(&descriptors).await?;
        for e in &mut listing.referrers {
            e.dangling = gone.contains(&e.descriptor.digest);
        }
        Ok(())
    }

    /// The referrers mode cached for this registry, without probing
    /// (`Unknown` when none is cached or its lifetime has passed).
    pub fn cached_referrers_mode(&self) -> ReferrersMode {
        self.fresh_mode().unwrap_or(ReferrersMode::Unknown)
    }

    /// Sets the referrers mode for this registry instead of probing (tests,
    /// or a user who knows better); it does not expire.
    pub fn set_referrers_mode(&self, mode: ReferrersMode) {
        self.store_mode(CachedMode {
            mode,
            expires: None,
        });
    }

    /// The API URL of a subject's referrers (for messages and tests).
    pub fn referrers_url(&self, subject: &Digest) -> Result<Url, OciError> {
        self.url(&format!("referrers/{subject}"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn desc(n: u8, at: &str) -> Descriptor {
        let mut d = Descriptor::for_bytes(stella_types::media_types::OCI_MANIFEST, &[n]);
        d.artifact_type = Some(at.to_string());
        d
    }

    #[test]
    fn normalize_dedupes_and_sorts() {
        let a = desc(1, "b/type");
        let b = desc(2, "a/type");
        let mut a_poor = a.clone();
        a_poor.artifact_type = Some(OCI_EMPTY.to_string());
        let out = normalize_entries(vec![a_poor.clone(), a.clone(), b.clone(), a.clone()]);
        assert_eq!(out, vec![b.clone(), a.clone()]);
        let out2 = normalize_entries(vec![b.clone(), a.clone(), a_poor]);
        assert_eq!(out, out2);
    }

    #[test]
    fn edit_keeps_other_entries() {
        let mut idx = ImageIndex::empty();
        idx.manifests = vec![desc(1, "x"), desc(2, "y")];
        let edit = IndexEdit {
            put: vec![desc(3, "a")],
            remove: BTreeSet::from([desc(2, "y").digest]),
            canonicalize: false,
        };
        assert!(!edit.satisfied(&idx));
        let out = edit.apply(&idx);
        assert_eq!(out.manifests, vec![desc(3, "a"), desc(1, "x")]);
        assert!(edit.satisfied(&out));
    }

    #[test]
    fn legacy_tag_lists_are_used_only_when_complete() {
        let base = "sha256-abc";
        let v = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        // distribution 2.8: every tag, unsorted, no Link.
        let all = v(&[
            "v1",
            "sha256-abc.sig",
            "zeta",
            "sha256-abc.att",
            "sha256-abc",
        ]);
        let got = legacy_candidates(all.clone(), false, base).unwrap();
        assert!(got.contains("sha256-abc.sig") && got.contains("sha256-abc.att"));
        assert!(!got.contains("sha256-abc.sbom") && !got.contains("v1"));
        // The same, but paginated: maybe cut, so not used.
        assert_eq!(legacy_candidates(all, true, base), None);
        // `last` honoured: sorted, after base; complete when short or past .sig.
        let after = v(&["sha256-abc.att", "v1"]);
        assert_eq!(
            legacy_candidates(after, true, base).unwrap(),
            BTreeSet::from(["sha256-abc.att".to_string()])
        );
        let mut full: Vec<String> = (0..TAGS_PAGE)
            .map(|i| format!("sha256-abc-{i:05}"))
            .collect();
        full.sort();
        assert_eq!(legacy_candidates(full.clone(), true, base), None);
        full.pop();
        full.push("sha256-abd".into());
        // Complete (the page reaches past `.sig`), and none of the three is there.
        let got = legacy_candidates(full, true, base).unwrap();
        assert!(
            ["att", "sbom", "sig"]
                .iter()
                .all(|k| !got.contains(&format!("{base}.{k}")))
        );
        // `last` ignored, first n tags only (no Link): not provably complete.
        let first_n: Vec<String> = (0..TAGS_PAGE).map(|i| format!("a{i:05}")).collect();
        assert_eq!(legacy_candidates(first_n, false, base), None);
    }

    #[test]
    fn link_headers() {
        assert_eq!(
            next_link(r#"</v2/a/referrers/x?n=2&last=b>; rel="next""#).as_deref(),
            Some("/v2/a/referrers/x?n=2&last=b")
        );
        assert_eq!(
            next_link(r#"<https://a/1>; rel="prev", <https://a/3>; rel=next"#).as_deref(),
            Some("https://a/3")
        );
        assert_eq!(next_link(r#"<https://a/1>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }
}
