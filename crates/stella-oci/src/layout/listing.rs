//! Which `index.json` entries are referrers of a subject, decided by the
//! manifests themselves: each entry's manifest is read (digest-checked) and
//! its own `subject` decides. The layout's word is not believed: the
//! [`super::SUBJECT_ANNOTATION`] hint, the entry's `size` and `mediaType`
//! can lie (a crafted `index.json` could otherwise hide real referrers,
//! invent some, or carry a size of 2^64-1 into new referrers and exports).
//! What a listing reports (media type, size, artifactType, annotations)
//! comes from the manifest bytes. The hint is used only for an entry whose
//! manifest is gone (reported as dangling) or unreadable (an error, since
//! the listing would otherwise be silently partial).
//!
//! Facts read from a manifest are cached per layout handle by digest
//! (content-addressed, so they never change), bounded in entries and bytes.
//!
//! Also here: keeping the subject's tag-schema index in step, built from
//! the same verified facts and refused over its cap before anything is
//! written. Everything here blocks: callers run it on the blocking pool.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use stella_types::limits::{MAX_MANIFEST_BYTES, MAX_REFERRERS_PER_SUBJECT};
use stella_types::media_types::{self, annotations};
use stella_types::{Descriptor, Digest, ImageIndex, Manifest};

use super::{OciLayout, SUBJECT_ANNOTATION, is_index_type, parse_legacy_tag, upsert};
use crate::OciError;
use crate::store::{LegacyAttachment, ReferrerEntry};

/// Upper bound on the bytes of annotations and strings the facts cache keeps.
const FACTS_CACHE_MAX_BYTES: usize = 64 * 1024 * 1024;

/// What Stella needs to know about one manifest, read from its bytes.
#[derive(Debug)]
pub(super) struct ManifestFacts {
    size: u64,
    /// `mediaType` as the document itself declares it.
    declared_media_type: Option<String>,
    is_index: bool,
    /// artifactType as the referrers API reports it.
    artifact_type: Option<String>,
    annotations: BTreeMap<String, String>,
    pub(super) subject: Option<Digest>,
}

impl ManifestFacts {
    /// Facts of manifest bytes; `None` if they are not a manifest Stella reads.
    pub(super) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let m = Manifest::parse(bytes, None).ok()?;
        let (declared_media_type, is_index) = match &m {
            Manifest::Image(i) => (i.media_type.clone(), false),
            Manifest::Index(i) => (i.media_type.clone(), true),
        };
        Some(ManifestFacts {
            size: bytes.len() as u64,
            declared_media_type,
            is_index,
            artifact_type: m.artifact_type().map(str::to_string),
            annotations: m.annotations().clone(),
            subject: m.subject().map(|s| s.digest.clone()),
        })
    }

    fn weight(&self) -> usize {
        let strings = self
            .annotations
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>();
        256 + strings + self.artifact_type.as_ref().map_or(0, String::len)
    }

    /// The media type of this manifest for an entry claiming `claimed`:
    /// the declared one; for a document that declares none, the claim if
    /// it names a manifest of the same kind, else the default for the shape.
    pub(super) fn media_type(&self, claimed: &str) -> String {
        if let Some(d) = &self.declared_media_type {
            return d.clone();
        }
        let claim_fits =
            super::is_manifest_type(claimed) && is_index_type(claimed) == self.is_index;
        if claim_fits {
            claimed.to_string()
        } else if self.is_index {
            media_types::OCI_INDEX.to_string()
        } else {
            media_types::OCI_MANIFEST.to_string()
        }
    }

    /// How `entry` misdescribes this manifest (size or media type), if it does.
    pub(super) fn mismatch(&self, entry: &Descriptor) -> Option<String> {
        if entry.size != self.size {
            return Some(format!(
                "size {} but the manifest is {} bytes",
                entry.size, self.size
            ));
        }
        let actual = self.media_type(&entry.media_type);
        (actual != entry.media_type).then(|| {
            format!(
                "media type {:?} but the manifest is a {actual}",
                entry.media_type
            )
        })
    }

    /// The descriptor a listing reports: everything from the manifest.
    fn listing_descriptor(&self, entry: &Descriptor) -> Descriptor {
        let mut d = Descriptor::new(
            self.media_type(&entry.media_type),
            entry.digest.clone(),
            self.size,
        );
        d.artifact_type = self.artifact_type.clone();
        d.annotations = self.annotations.clone();
        d
    }

    /// The `index.json` entry Stella writes for this manifest as a
    /// referrer of `subject` (`claimed`: the media type the caller gave).
    fn referrer_entry(&self, digest: &Digest, subject: &Digest, claimed: &str) -> Descriptor {
        let mut entry = Descriptor::new(self.media_type(claimed), digest.clone(), self.size);
        entry.artifact_type = self.artifact_type.clone();
        entry.annotations = self.annotations.clone();
        entry.annotations.remove(annotations::REF_NAME);
        entry
            .annotations
            .insert(SUBJECT_ANNOTATION.to_string(), subject.to_string());
        entry
    }
}

/// Cached facts by digest (`None`: the blob is not a manifest Stella reads).
#[derive(Debug, Default)]
pub(super) struct FactsCache {
    map: HashMap<Digest, Option<Arc<ManifestFacts>>>,
    bytes: usize,
}

/// What reading an entry's manifest found.
enum Lookup {
    Found(Arc<ManifestFacts>),
    NotManifest,
    Missing,
    Unreadable(OciError),
}

/// A manifest not yet in the layout whose facts a dry run should use.
pub(super) type Pending<'a> = Option<(&'a Digest, &'a Arc<ManifestFacts>)>;

/// A blob to write (before `index.json` points at it).
pub(super) struct StagedBlob {
    pub(super) descriptor: Descriptor,
    pub(super) bytes: Vec<u8>,
}

impl OciLayout {
    fn lookup(&self, digest: &Digest, pending: Pending<'_>) -> Lookup {
        if let Some((d, facts)) = pending
            && d == digest
        {
            return Lookup::Found(Arc::clone(facts));
        }
        // The caller checked the blob directories (`check_blob_dirs`).
        let path = self.blob_path(digest);
        // The file must still be there (and be a regular file) even when
        // the facts are cached: a deleted manifest is dangling.
        let size = match super::fs::regular_file_exists(&path) {
            Ok(Some(size)) => size,
            Ok(None) => return Lookup::Missing,
            Err(e) => {
                return Lookup::Unreadable(OciError::io(
                    format!("manifest {digest} in {}", self.root.display()),
                    e,
                ));
            }
        };
        // Cached facts hold while the file still has the size they were
        // read from (a cheap check that catches most corruption; the bytes
        // are digest-checked again whenever they are fetched).
        if let Ok(cache) = self.facts_cache.lock()
            && let Some(known) = cache.map.get(digest)
        {
            match known {
                Some(f) if f.size == size => return Lookup::Found(Arc::clone(f)),
                None => return Lookup::NotManifest,
                Some(_) => {}
            }
        }
        if size > MAX_MANIFEST_BYTES {
            return Lookup::NotManifest;
        }
        let facts = match self.read_blob_checked(digest, MAX_MANIFEST_BYTES, "manifest") {
            Ok(bytes) => ManifestFacts::from_bytes(&bytes).map(Arc::new),
            Err(e) if e.is_not_found() => return Lookup::Missing,
            Err(e) => return Lookup::Unreadable(e),
        };
        self.remember(digest, facts.clone());
        facts.map_or(Lookup::NotManifest, Lookup::Found)
    }

    fn remember(&self, digest: &Digest, facts: Option<Arc<ManifestFacts>>) {
        let weight = facts.as_ref().map_or(64, |f| f.weight());
        if let Ok(mut cache) = self.facts_cache.lock()
            && !cache.map.contains_key(digest)
            && cache.map.len() < MAX_REFERRERS_PER_SUBJECT
            && cache.bytes.saturating_add(weight) <= FACTS_CACHE_MAX_BYTES
        {
            cache.bytes += weight;
            cache.map.insert(digest.clone(), facts);
        }
    }

    /// The referrers of `subject` among `idx`'s entries (cosign legacy
    /// tags excluded), in index order, de-duplicated by digest. Bounded by
    /// `MAX_REFERRERS_PER_SUBJECT`. An entry hinted as a referrer of
    /// `subject` whose manifest cannot be read is an error, unless
    /// `skip_unreadable` (bookkeeping writes leave it out rather than
    /// block every push and delete of the subject).
    pub(super) fn referrers_in(
        &self,
        idx: &ImageIndex,
        subject: &Digest,
        pending: Pending<'_>,
        skip_unreadable: bool,
    ) -> Result<Vec<ReferrerEntry>, OciError> {
        let subject_str = subject.to_string();
        // Digests already listed, or already found not to be referrers of
        // `subject` (one manifest is often listed under many tags).
        let mut seen = std::collections::HashSet::new();
        let mut dirs_checked = Vec::new();
        let mut out = Vec::new();
        for entry in &idx.manifests {
            if entry
                .annotation(annotations::REF_NAME)
                .is_some_and(|t| parse_legacy_tag(t).is_some())
                || !seen.insert(entry.digest.clone())
            {
                continue;
            }
            let alg = entry.digest.algorithm();
            if !dirs_checked.contains(&alg) {
                self.blob_file(&entry.digest)?;
                dirs_checked.push(alg);
            }
            let hinted = entry.annotation(SUBJECT_ANNOTATION) == Some(subject_str.as_str());
            let found = match self.lookup(&entry.digest, pending) {
                Lookup::Found(f) if f.subject.as_ref() == Some(subject) => ReferrerEntry {
                    descriptor: f.listing_descriptor(entry),
                    dangling: false,
                },
                Lookup::Missing if hinted => ReferrerEntry {
                    descriptor: dangling_descriptor(entry),
                    dangling: true,
                },
                Lookup::Unreadable(e) if hinted && !skip_unreadable => return Err(e),
                _ => continue,
            };
            out.push(found);
            if out.len() > MAX_REFERRERS_PER_SUBJECT {
                return Err(OciError::Protocol(format!(
                    "subject {subject} has more than {MAX_REFERRERS_PER_SUBJECT} referrers"
                )));
            }
        }
        Ok(out)
    }

    /// Records `referrer` (with the `facts` of its manifest) as a referrer
    /// of `subject` in `idx` and updates the subject's tag-schema index.
    /// Returns the tag-schema index blob to write first, if any. `pending`:
    /// the manifest is not in the layout yet (a dry run).
    pub(super) fn plan_add_referrer(
        &self,
        idx: &mut ImageIndex,
        subject: &Digest,
        referrer: &Descriptor,
        facts: &Arc<ManifestFacts>,
        pending: bool,
    ) -> Result<Option<StagedBlob>, OciError> {
        let digest = &referrer.digest;
        match &facts.subject {
            Some(s) if s == subject => {}
            Some(s) => {
                return Err(OciError::InvalidInput(format!(
                    "manifest {digest} has subject {s}, not {subject}"
                )));
            }
            None => {
                return Err(OciError::InvalidInput(format!(
                    "manifest {digest} has no subject"
                )));
            }
        }
        let entry = facts.referrer_entry(digest, subject, &referrer.media_type);
        upsert(&mut idx.manifests, entry, |d| {
            &d.digest == digest && d.annotation(annotations::REF_NAME).is_none()
        });
        let pending = pending.then_some((digest, facts));
        self.plan_tag_schema_index(idx, subject, pending, true)
    }

    /// Keeps the subject's referrers tag-schema index (an image index
    /// tagged `<alg>-<hex>`, exactly as a registry without the Referrers
    /// API holds it) in step with the verified referrers in `idx`. This
    /// makes the referrers portable with tools that know only tags:
    /// `skopeo copy --all oci:<dir>:sha256-<hex> docker://…` moves them
    /// into a registry, where `stella evidence list-referrers` finds them.
    /// Without referrers the tag is removed. When `growing`, an index over
    /// `limits::MAX_TAG_SCHEMA_INDEX_BYTES` is refused (a removal may
    /// still shrink an index written over the cap by an older version).
    pub(super) fn plan_tag_schema_index(
        &self,
        idx: &mut ImageIndex,
        subject: &Digest,
        pending: Pending<'_>,
        growing: bool,
    ) -> Result<Option<StagedBlob>, OciError> {
        let tag = subject.referrers_tag();
        let mut entries: Vec<Descriptor> = self
            .referrers_in(idx, subject, pending, true)?
            .into_iter()
            .filter(|e| !e.dangling)
            .map(|e| {
                let mut d = e.descriptor;
                d.annotations.retain(|k, _| !k.starts_with("dev.stella."));
                d
            })
            .collect();
        entries.sort_by(|a, b| {
            (a.artifact_type.as_deref().unwrap_or(""), &a.digest)
                .cmp(&(b.artifact_type.as_deref().unwrap_or(""), &b.digest))
        });
        if entries.is_empty() {
            idx.manifests
                .retain(|d| d.annotation(annotations::REF_NAME) != Some(tag.as_str()));
            return Ok(None);
        }
        let mut fallback = ImageIndex::empty();
        fallback.manifests = entries;
        let bytes = fallback.to_json_bytes();
        if growing {
            crate::referrers::check_tag_schema_index_fits(&bytes, subject)?;
        }
        let descriptor = Descriptor::for_bytes(media_types::OCI_INDEX, &bytes);
        let mut entry = descriptor.clone();
        entry
            .annotations
            .insert(annotations::REF_NAME.to_string(), tag.clone());
        upsert(&mut idx.manifests, entry, |d| {
            d.annotation(annotations::REF_NAME) == Some(tag.as_str())
        });
        Ok(Some(StagedBlob { descriptor, bytes }))
    }
}

impl OciLayout {
    /// The cosign legacy attachments (`sha256-<hex>.sig|.att|.sbom` tags)
    /// of `subject` in `idx`, sorted by tag, described from their manifest
    /// bytes; a tag whose manifest is gone or is not a manifest is left
    /// out, one that cannot be read is an error.
    pub(super) fn legacy_in(
        &self,
        idx: &ImageIndex,
        subject: &Digest,
    ) -> Result<Vec<LegacyAttachment>, OciError> {
        let mut legacy = Vec::new();
        if subject.algorithm() != stella_types::DigestAlgorithm::Sha256 {
            return Ok(legacy);
        }
        for entry in &idx.manifests {
            let Some(tag) = entry.annotation(annotations::REF_NAME) else {
                continue;
            };
            let Some((hex, kind)) = parse_legacy_tag(tag) else {
                continue;
            };
            if hex != subject.hex() {
                continue;
            }
            self.blob_file(&entry.digest)?;
            let facts = match self.lookup(&entry.digest, None) {
                Lookup::Found(f) => f,
                Lookup::Unreadable(e) => return Err(e),
                Lookup::Missing | Lookup::NotManifest => continue,
            };
            legacy.push(LegacyAttachment {
                tag: tag.to_string(),
                kind: kind.to_string(),
                descriptor: Descriptor::new(
                    facts.media_type(&entry.media_type),
                    entry.digest.clone(),
                    facts.size,
                ),
            });
        }
        legacy.sort_by(|a, b| a.tag.cmp(&b.tag));
        legacy.dedup_by(|a, b| a.tag == b.tag);
        Ok(legacy)
    }
}

/// A dangling entry as listed: the entry, our bookkeeping removed (its
/// manifest is gone, so nothing can be checked).
fn dangling_descriptor(entry: &Descriptor) -> Descriptor {
    let mut d = entry.clone();
    d.annotations.remove(SUBJECT_ANNOTATION);
    d.annotations.remove(annotations::REF_NAME);
    d
}
