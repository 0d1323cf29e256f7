//! Choosing what goes into a bundle: walks the subject (and, for an index,
//! its per-platform manifests), then the referrers graph of every manifest
//! recursively, applying the [`Selection`] (artifact types, signed
//! attestations, transparency-log material, the image itself), and
//! produces a [`BundlePlan`] for the writer, with the referrers left out
//! and why ([`ExclusionReason`], which the caller words). Also copies the
//! same selection into another store as native referrers.
//!
//! Works over the `stella_oci` store traits, so a registry and a local
//! layout are handled alike. It does not write files (see `writer`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use stella_oci::store::{
    BlobSource, ContentRead, ContentWrite, NoProgress, ReferrersRead, ReferrersWrite,
};
use stella_types::media_types::annotations::{CREATED, REF_NAME};
use stella_types::{Descriptor, Digest, DigestAlgorithm, ImageIndex, Manifest};
use time::OffsetDateTime;

use crate::error::BundleError;
use crate::format::*;
use crate::writer::BundlePlan;

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub selection: Selection,
    /// `created` time; `None` = newest `org.opencontainers.image.created`
    /// annotation among the exported manifests, else 1970-01-01T00:00:00Z
    /// (so the same registry state always gives the same bytes).
    pub created: Option<OffsetDateTime>,
    pub tool_name: String,
    pub tool_version: String,
    /// Tag recorded for the subject in `index.json` (default `latest`).
    pub tag: Option<String>,
    /// Referrers graph depth (1 = direct referrers).
    pub max_depth: usize,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            selection: Selection::default(),
            created: None,
            tool_name: "stella".into(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            tag: None,
            max_depth: stella_types::limits::MAX_REFERRER_DEPTH,
        }
    }
}

/// Why a referrer was left out; the caller turns it into its own words
/// (the command line names the switch that would include it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExclusionReason {
    /// Its artifact type is not among `Selection::artifact_types`.
    ArtifactTypeNotSelected,
    /// Listed as a referrer, but its manifest names another subject.
    SubjectDiffers,
    /// A signed attestation, and `Selection::include_dsse` is off.
    SignedAttestationNotSelected,
    /// Transparency-log material, and `Selection::include_rekor_proof` is off.
    TransparencyLogNotSelected,
}

impl ExclusionReason {
    /// A neutral description (no command-line words).
    pub fn describe(self) -> &'static str {
        match self {
            ExclusionReason::ArtifactTypeNotSelected => "not a requested artifact type",
            ExclusionReason::SubjectDiffers => "listed as a referrer but its subject differs",
            ExclusionReason::SignedAttestationNotSelected => {
                "signed attestation (signed attestations not selected)"
            }
            ExclusionReason::TransparencyLogNotSelected => {
                "transparency-log material (not selected)"
            }
        }
    }
}

/// Referrers left out by the selection rules, for the caller to report.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Excluded {
    pub digest: String,
    pub artifact_type: Option<String>,
    /// Why, as a code.
    pub why: ExclusionReason,
    /// Why, in words ([`ExclusionReason::describe`]).
    pub reason: String,
}

impl Excluded {
    fn new(digest: &Digest, artifact_type: Option<String>, why: ExclusionReason) -> Self {
        Excluded {
            digest: digest.to_string(),
            artifact_type,
            why,
            reason: why.describe().to_string(),
        }
    }
}

fn store_err(ctx: String) -> impl FnOnce(stella_oci::OciError) -> BundleError {
    move |e| BundleError::store(ctx, e)
}

struct Collector {
    artifacts: BTreeMap<Digest, ArtifactEntry>,
    manifest_bytes: BTreeMap<Digest, Vec<u8>>,
    index_descriptors: Vec<Descriptor>,
    newest_created: Option<OffsetDateTime>,
}

impl Collector {
    fn add_blob(&mut self, d: &Descriptor, used_by: &Digest) -> Result<(), BundleError> {
        if d.digest.algorithm() != DigestAlgorithm::Sha256 {
            return Err(BundleError::InvalidInput(format!(
                "blob {} is not sha256; StellaBundle v1 stores sha256 content only",
                d.digest
            )));
        }
        let e = self
            .artifacts
            .entry(d.digest.clone())
            .or_insert_with(|| ArtifactEntry {
                digest: d.digest.clone(),
                size: d.size,
                media_type: d.media_type.clone(),
                artifact_type: None,
                role: Role::Blob,
                refers_to: None,
                used_by: Vec::new(),
            });
        if e.role == Role::Blob && !e.used_by.contains(used_by) {
            e.used_by.push(used_by.clone());
            e.used_by.sort();
        }
        Ok(())
    }

    fn add_manifest(
        &mut self,
        desc: &Descriptor,
        bytes: Vec<u8>,
        parsed: &Manifest,
        role: Role,
        refers_to: Option<Digest>,
    ) -> Result<(), BundleError> {
        if desc.digest.algorithm() != DigestAlgorithm::Sha256 {
            return Err(BundleError::InvalidInput(format!(
                "manifest {} is not sha256; StellaBundle v1 stores sha256 content only",
                desc.digest
            )));
        }
        if let Some(c) = parsed
            .annotations()
            .get(CREATED)
            .and_then(|s| stella_types::timestamp::parse_rfc3339(s))
            && self.newest_created.is_none_or(|n| c > n)
        {
            self.newest_created = Some(c);
        }
        // A manifest may also have been seen as a blob of something else: the manifest role wins.
        self.artifacts.insert(
            desc.digest.clone(),
            ArtifactEntry {
                digest: desc.digest.clone(),
                size: bytes.len() as u64,
                media_type: parsed.media_type().to_string(),
                artifact_type: if role == Role::Referrer {
                    parsed.artifact_type().map(str::to_string)
                } else {
                    None
                },
                role,
                refers_to,
                used_by: Vec::new(),
            },
        );
        self.manifest_bytes.insert(desc.digest.clone(), bytes);
        Ok(())
    }
}

/// Builds the plan for the bundle of `subject` (a manifest or index descriptor) in `store`.
/// Returns the plan and the referrers the selection left out.
pub async fn plan_export<S: ContentRead + ReferrersRead>(
    store: &S,
    subject: &Descriptor,
    opts: &ExportOptions,
) -> Result<(BundlePlan, Vec<Excluded>), BundleError> {
    let sel = &opts.selection;
    let tag = opts.tag.clone().unwrap_or_else(|| "latest".to_string());
    if !is_valid_tag(&tag) {
        return Err(BundleError::InvalidInput(format!(
            "{tag:?} is not a valid tag"
        )));
    }
    let mut c = Collector {
        artifacts: BTreeMap::new(),
        manifest_bytes: BTreeMap::new(),
        index_descriptors: Vec::new(),
        newest_created: None,
    };
    let mut excluded = Vec::new();

    // 1. The subject and, for an index, its child manifests (recursively).
    let mut image_queue: VecDeque<(Descriptor, Role)> = VecDeque::new();
    image_queue.push_back((subject.clone(), Role::Subject));
    let mut image_manifests: Vec<Digest> = Vec::new();
    let mut subject_desc = subject.clone();
    while let Some((desc, role)) = image_queue.pop_front() {
        if c.manifest_bytes.contains_key(&desc.digest) {
            continue;
        }
        let fetched = store
            .fetch_manifest(&desc.digest)
            .await
            .map_err(store_err(format!("fetching manifest {}", desc.digest)))?;
        let parsed = Manifest::parse(&fetched.bytes, Some(&fetched.descriptor.media_type))
            .map_err(|e| BundleError::InvalidInput(format!("manifest {}: {e}", desc.digest)))?;
        if role == Role::Subject {
            subject_desc = Descriptor::new(
                parsed.media_type(),
                desc.digest.clone(),
                fetched.bytes.len() as u64,
            );
        }
        match &parsed {
            Manifest::Index(idx) => {
                for child in &idx.manifests {
                    image_queue.push_back((child.clone(), Role::ChildManifest));
                }
            }
            Manifest::Image(m) => {
                if sel.include_image {
                    c.add_blob(&m.config, &desc.digest)?;
                    for l in &m.layers {
                        c.add_blob(l, &desc.digest)?;
                    }
                }
            }
        }
        image_manifests.push(desc.digest.clone());
        c.add_manifest(&desc, fetched.bytes, &parsed, role, None)?;
    }

    // 2. Referrers of every image manifest, recursively.
    let mut queue: VecDeque<(Digest, usize)> =
        image_manifests.iter().map(|d| (d.clone(), 1)).collect();
    let mut visited: BTreeSet<Digest> = image_manifests.iter().cloned().collect();
    let mut referrer_descs: Vec<Descriptor> = Vec::new();
    while let Some((subject_digest, depth)) = queue.pop_front() {
        let listing = store
            .list_referrers(&subject_digest, &[])
            .await
            .map_err(store_err(format!("listing referrers of {subject_digest}")))?;
        for entry in listing.referrers {
            let d = &entry.descriptor;
            if entry.dangling || visited.contains(&d.digest) {
                continue;
            }
            if depth == 1 && !sel.artifact_types.is_empty() {
                let at = d.artifact_type.as_deref().unwrap_or("");
                if !sel.artifact_types.iter().any(|t| t == at) {
                    excluded.push(Excluded::new(
                        &d.digest,
                        d.artifact_type.clone(),
                        ExclusionReason::ArtifactTypeNotSelected,
                    ));
                    continue;
                }
            }
            let fetched = store
                .fetch_manifest(&d.digest)
                .await
                .map_err(store_err(format!("fetching referrer {}", d.digest)))?;
            let parsed = Manifest::parse(&fetched.bytes, Some(&fetched.descriptor.media_type))
                .map_err(|e| BundleError::InvalidInput(format!("referrer {}: {e}", d.digest)))?;
            if parsed.subject().map(|s| &s.digest) != Some(&subject_digest) {
                // A listing that names a manifest whose subject is something else: not ours to copy.
                excluded.push(Excluded::new(
                    &d.digest,
                    d.artifact_type.clone(),
                    ExclusionReason::SubjectDiffers,
                ));
                continue;
            }
            let layers: Vec<Descriptor> = match &parsed {
                Manifest::Image(m) => m.layers.clone(),
                Manifest::Index(_) => Vec::new(),
            };
            let class = classify(parsed.artifact_type(), &layers);
            let keep = match class {
                EvidenceClass::Plain => true,
                EvidenceClass::SignedAttestation => sel.include_dsse,
                EvidenceClass::TransparencyLog => sel.include_rekor_proof,
            };
            if !keep {
                let why = match class {
                    EvidenceClass::SignedAttestation => {
                        ExclusionReason::SignedAttestationNotSelected
                    }
                    _ => ExclusionReason::TransparencyLogNotSelected,
                };
                excluded.push(Excluded::new(
                    &d.digest,
                    parsed.artifact_type().map(str::to_string),
                    why,
                ));
                continue;
            }
            visited.insert(d.digest.clone());
            let desc = Descriptor {
                media_type: parsed.media_type().to_string(),
                digest: d.digest.clone(),
                size: fetched.bytes.len() as u64,
                artifact_type: parsed.artifact_type().map(str::to_string),
                urls: None,
                annotations: parsed.annotations().clone(),
                platform: None,
                data: None,
            };
            match &parsed {
                Manifest::Image(m) => {
                    c.add_blob(&m.config, &d.digest)?;
                    for l in &m.layers {
                        c.add_blob(l, &d.digest)?;
                    }
                }
                Manifest::Index(idx) => {
                    // Children of an index referrer travel with it (manifests and their blobs).
                    for child in &idx.manifests {
                        let f = store
                            .fetch_manifest(&child.digest)
                            .await
                            .map_err(store_err(format!("fetching manifest {}", child.digest)))?;
                        let p = Manifest::parse(&f.bytes, Some(&f.descriptor.media_type)).map_err(
                            |e| {
                                BundleError::InvalidInput(format!("manifest {}: {e}", child.digest))
                            },
                        )?;
                        if let Manifest::Image(m) = &p {
                            c.add_blob(&m.config, &child.digest)?;
                            for l in &m.layers {
                                c.add_blob(l, &child.digest)?;
                            }
                        }
                        c.add_manifest(child, f.bytes, &p, Role::ChildManifest, None)?;
                    }
                }
            }
            c.add_manifest(
                &desc,
                fetched.bytes,
                &parsed,
                Role::Referrer,
                Some(subject_digest.clone()),
            )?;
            referrer_descs.push(desc);
            if depth < opts.max_depth {
                queue.push_back((d.digest.clone(), depth + 1));
            }
        }
    }

    // 3. index.json: the tagged subject, then every referrer by digest.
    let mut tagged = subject_desc.clone();
    tagged.annotations.insert(REF_NAME.to_string(), tag.clone());
    referrer_descs.sort_by(|a, b| a.digest.cmp(&b.digest));
    c.index_descriptors.push(tagged);
    c.index_descriptors.extend(referrer_descs);
    let mut index = ImageIndex::empty();
    index.manifests = c.index_descriptors.clone();

    let created = opts
        .created
        .or(c.newest_created)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let manifest = BundleManifest {
        schema_version: 1,
        media_type: BUNDLE_MANIFEST_MEDIA_TYPE.to_string(),
        created: stella_types::timestamp::rfc3339(created),
        tool: Tool {
            name: opts.tool_name.clone(),
            version: opts.tool_version.clone(),
        },
        subject: SubjectInfo {
            media_type: subject_desc.media_type.clone(),
            digest: subject_desc.digest.clone(),
            size: subject_desc.size,
            tag,
        },
        selection: sel.clone(),
        artifacts: c.artifacts.into_values().collect(),
    };
    let plan = BundlePlan {
        manifest,
        manifest_bytes: c.manifest_bytes,
        index,
        mtime: u64::try_from(created.unix_timestamp()).unwrap_or(0),
    };
    Ok((plan, excluded))
}

/// Counts of a copy or import.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferReport {
    pub manifests_pushed: usize,
    pub manifests_skipped: usize,
    pub blobs_pushed: usize,
    pub blobs_skipped: usize,
    pub bytes_pushed: u64,
    pub referrers_recorded: usize,
}

/// Order in which manifests must be pushed: child manifests, then the
/// subject, then referrers by depth (a referrer after what it refers to).
pub(crate) fn push_order(manifest: &BundleManifest) -> Vec<&ArtifactEntry> {
    let by_digest: BTreeMap<&Digest, &ArtifactEntry> =
        manifest.artifacts.iter().map(|a| (&a.digest, a)).collect();
    let depth = |a: &ArtifactEntry| -> usize {
        let mut d = 0;
        let mut cur = a;
        while let Some(next) = cur.refers_to.as_ref().and_then(|r| by_digest.get(r)) {
            d += 1;
            cur = next;
            if d > manifest.artifacts.len() {
                break;
            }
        }
        d
    };
    let mut ms: Vec<(u8, usize, &ArtifactEntry)> = manifest
        .artifacts
        .iter()
        .filter(|a| a.role.is_manifest())
        .map(|a| {
            let rank = match a.role {
                Role::ChildManifest => 0,
                Role::Subject => 1,
                _ => 2,
            };
            (rank, depth(a), a)
        })
        .collect();
    ms.sort_by(|x, y| (x.0, x.1, &x.2.digest).cmp(&(y.0, y.1, &y.2.digest)));
    // Child manifests of index referrers must precede their index; rank 0 covers that.
    ms.into_iter().map(|(_, _, a)| a).collect()
}

/// Pushes the manifests of a bundle (bytes given) into `dst` in dependency
/// order, tagging the subject with `tag`, and records referrers.
pub(crate) async fn push_manifests<D: ContentRead + ContentWrite + ReferrersWrite>(
    dst: &D,
    manifest: &BundleManifest,
    bytes: &BTreeMap<Digest, Vec<u8>>,
    tag: Option<&str>,
    report: &mut TransferReport,
) -> Result<(), BundleError> {
    for a in push_order(manifest) {
        let Some(b) = bytes.get(&a.digest) else {
            return Err(BundleError::failed(
                crate::error::codes::MISSING_BLOB,
                format!("manifest {} is missing", a.digest),
            ));
        };
        let exists = dst
            .manifest_exists(&a.digest)
            .await
            .map_err(store_err(format!("checking manifest {}", a.digest)))?;
        let subject_tag = if a.role == Role::Subject { tag } else { None };
        let tag_ok = match subject_tag {
            Some(t) if exists => dst
                .resolve_tag(t)
                .await
                .map(|d| d.digest == a.digest)
                .unwrap_or(false),
            _ => true,
        };
        if exists && tag_ok {
            report.manifests_skipped += 1;
        } else {
            let pushed = dst
                .push_manifest(&a.media_type, b, subject_tag)
                .await
                .map_err(store_err(format!("pushing manifest {}", a.digest)))?;
            if pushed.digest != a.digest {
                return Err(BundleError::store(
                    format!("pushing manifest {}", a.digest),
                    stella_oci::OciError::Protocol(format!(
                        "store recorded it as {}",
                        pushed.digest
                    )),
                ));
            }
            if exists {
                report.manifests_skipped += 1;
            } else {
                report.manifests_pushed += 1;
                report.bytes_pushed += a.size;
            }
        }
        if a.role == Role::Referrer
            && let Some(subject) = a.refers_to.as_ref().and_then(|s| manifest.artifact(s))
        {
            let subject_desc = Descriptor::new(
                subject.media_type.clone(),
                subject.digest.clone(),
                subject.size,
            );
            let mut referrer = Descriptor::new(a.media_type.clone(), a.digest.clone(), a.size);
            referrer.artifact_type = a.artifact_type.clone();
            if let Ok(Manifest::Image(m)) = Manifest::parse(b, Some(&a.media_type)) {
                referrer.annotations = m.annotations;
            }
            dst.add_referrer(&subject_desc, &referrer)
                .await
                .map_err(store_err(format!("recording referrer {}", a.digest)))?;
            report.referrers_recorded += 1;
        }
    }
    Ok(())
}

/// Copies a planned selection from `src` into `dst` as native referrers
/// (`--push-referrers`): blobs first (skipping those present), then
/// manifests in dependency order. Idempotent.
pub async fn push_plan<S: ContentRead, D: ContentRead + ContentWrite + ReferrersWrite>(
    src: &S,
    dst: &D,
    plan: &BundlePlan,
    tag: Option<&str>,
) -> Result<TransferReport, BundleError> {
    let mut report = TransferReport::default();
    let tmp =
        tempfile::tempdir().map_err(|e| BundleError::io("creating a temporary directory", e))?;
    for a in plan
        .manifest
        .artifacts
        .iter()
        .filter(|a| a.role == Role::Blob)
    {
        if dst
            .blob_exists(&a.digest)
            .await
            .map_err(store_err(format!("checking blob {}", a.digest)))?
        {
            report.blobs_skipped += 1;
            continue;
        }
        let desc = Descriptor::new(a.media_type.clone(), a.digest.clone(), a.size);
        let path = tmp.path().join(a.digest.hex());
        let mut f = tokio::fs::File::create(&path)
            .await
            .map_err(|e| BundleError::io("creating a temporary file", e))?;
        src.fetch_blob_to(&desc, &mut f)
            .await
            .map_err(store_err(format!("fetching blob {}", a.digest)))?;
        tokio::io::AsyncWriteExt::flush(&mut f)
            .await
            .map_err(|e| BundleError::io("writing a temporary file", e))?;
        drop(f);
        dst.push_blob(&desc, BlobSource::File(&path), &NoProgress)
            .await
            .map_err(store_err(format!("pushing blob {}", a.digest)))?;
        let _ = tokio::fs::remove_file(&path).await;
        report.blobs_pushed += 1;
        report.bytes_pushed += a.size;
    }
    push_manifests(dst, &plan.manifest, &plan.manifest_bytes, tag, &mut report).await?;
    Ok(report)
}
