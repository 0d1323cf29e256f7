//! Checking and repairing a subject's referrers tag schema index as other
//! tools left it: duplicate entries, entries without the `artifactType` or
//! annotations the spec asks for (older cosign wrote
//! `application/vnd.oci.empty.v1+json` as the artifact type), dangling
//! entries (manifest gone), entries whose manifest names another subject,
//! and a tag that resolves to the subject itself (a GitLab bug: the subject
//! is never treated as its own index).
//!
//! The rewrite (unless `dry_run`) goes through the same merge-and-settle
//! update as every other index write, as an edit (drop these digests, put
//! these corrected entries), so entries other writers add meanwhile survive.
//!
//! What this module does not do: delete manifests, or touch the native
//! referrers API (a registry with the API keeps its own index; only a
//! leftover fallback tag is checked).

use std::collections::{BTreeMap, BTreeSet};

use futures_util::StreamExt;
use serde::Serialize;
use stella_types::media_types::OCI_EMPTY;
use stella_types::{Descriptor, Digest, Manifest};

use super::Repository;
use super::referrers::{CHECK_CONCURRENCY, IndexEdit, normalize_entries};
use crate::OciError;
use crate::store::FetchedManifest;

/// What a repair found and did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepairReport {
    pub findings: Vec<RepairFinding>,
    /// The index needs (or needed) rewriting.
    pub changed: bool,
    /// The index was rewritten.
    pub written: bool,
}

/// One problem with a fallback index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepairFinding {
    /// `duplicate`, `missing-artifact-type`, `missing-annotations`,
    /// `wrong-descriptor`, `dangling`, `wrong-subject`, `self-reference`,
    /// `unreadable`, `unsorted`.
    pub kind: String,
    pub digest: Option<Digest>,
    pub detail: String,
}

fn finding(kind: &str, digest: Option<&Digest>, detail: String) -> RepairFinding {
    RepairFinding {
        kind: kind.to_string(),
        digest: digest.cloned(),
        detail,
    }
}

impl Repository {
    /// Checks `subject`'s fallback index and, unless `dry_run`, rewrites it
    /// with the problems fixed.
    pub async fn repair_referrers_index(
        &self,
        subject: &Descriptor,
        dry_run: bool,
    ) -> Result<RepairReport, OciError> {
        let tag = subject.digest.referrers_tag();
        let current = self.read_fallback(&subject.digest).await?;
        let mut findings = Vec::new();
        if current.self_reference {
            findings.push(finding(
                "self-reference",
                Some(&subject.digest),
                format!(
                    "tag {tag} resolves to the subject itself, not to a referrers index; ignored"
                ),
            ));
            return Ok(RepairReport {
                findings,
                changed: false,
                written: false,
            });
        }
        if current.digest.is_none() {
            return Ok(RepairReport {
                findings,
                changed: false,
                written: false,
            });
        }
        let original = current.index.manifests.clone();

        let mut counts: BTreeMap<&Digest, usize> = BTreeMap::new();
        for d in &original {
            *counts.entry(&d.digest).or_default() += 1;
        }
        for (d, n) in &counts {
            if *n > 1 {
                findings.push(finding("duplicate", Some(d), format!("listed {n} times")));
            }
        }

        // Fetch each distinct referrer manifest once (bounded concurrency).
        let distinct: Vec<Digest> = counts.keys().map(|d| (*d).clone()).collect();
        let fetched: Vec<(Digest, Result<FetchedManifest, OciError>)> =
            futures_util::stream::iter(distinct.into_iter().map(|d| async move {
                let r = self.fetch_manifest_impl(&d).await;
                (d, r)
            }))
            .buffered(CHECK_CONCURRENCY)
            .collect()
            .await;

        let mut remove = BTreeSet::new();
        let mut put = Vec::new();
        for (digest, result) in fetched {
            let listed: Vec<&Descriptor> = original.iter().filter(|d| d.digest == digest).collect();
            let Some(first) = normalize_entries(listed.iter().map(|d| (*d).clone()).collect())
                .into_iter()
                .next()
            else {
                continue;
            };
            let fm = match result {
                Ok(fm) => fm,
                Err(e) if e.is_not_found() => {
                    findings.push(finding(
                        "dangling",
                        Some(&digest),
                        "the manifest no longer exists; entry removed".into(),
                    ));
                    remove.insert(digest);
                    continue;
                }
                Err(
                    e @ (OciError::Integrity { .. }
                    | OciError::Manifest { .. }
                    | OciError::Protocol(_)),
                ) => {
                    findings.push(finding(
                        "unreadable",
                        Some(&digest),
                        format!("{e}; entry kept"),
                    ));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let parsed = match Manifest::parse(&fm.bytes, Some(&fm.descriptor.media_type)) {
                Ok(p) => p,
                Err(e) => {
                    findings.push(finding(
                        "unreadable",
                        Some(&digest),
                        format!("{e}; entry kept"),
                    ));
                    continue;
                }
            };
            match parsed.subject() {
                Some(s) if s.digest == subject.digest => {}
                other => {
                    findings.push(finding(
                        "wrong-subject",
                        Some(&digest),
                        match other {
                            Some(s) => {
                                format!("the manifest's subject is {}; entry removed", s.digest)
                            }
                            None => "the manifest has no subject; entry removed".to_string(),
                        },
                    ));
                    remove.insert(digest);
                    continue;
                }
            }
            let mut fixed = first.clone();
            let real_type = parsed.artifact_type().map(str::to_string);
            let listed_type = first.artifact_type.as_deref();
            if listed_type.is_none_or(|t| t.is_empty() || t == OCI_EMPTY)
                && real_type.as_deref() != listed_type
            {
                findings.push(finding(
                    "missing-artifact-type",
                    Some(&digest),
                    format!(
                        "entry has artifactType {:?}; the manifest says {:?}",
                        listed_type.unwrap_or(""),
                        real_type.as_deref().unwrap_or("")
                    ),
                ));
                fixed.artifact_type = real_type;
            } else if real_type.is_some() && real_type.as_deref() != listed_type {
                findings.push(finding(
                    "wrong-descriptor",
                    Some(&digest),
                    format!(
                        "entry artifactType {:?} differs from the manifest's {:?}",
                        listed_type.unwrap_or(""),
                        real_type.as_deref().unwrap_or("")
                    ),
                ));
                fixed.artifact_type = real_type;
            }
            if &fixed.annotations != parsed.annotations() {
                findings.push(finding(
                    "missing-annotations",
                    Some(&digest),
                    "entry annotations differ from the manifest's; copied from the manifest".into(),
                ));
                fixed.annotations = parsed.annotations().clone();
            }
            if fixed.media_type != fm.descriptor.media_type || fixed.size != fm.descriptor.size {
                findings.push(finding(
                    "wrong-descriptor",
                    Some(&digest),
                    format!(
                        "entry says {} / {} bytes; the manifest is {} / {} bytes",
                        fixed.media_type, fixed.size, fm.descriptor.media_type, fm.descriptor.size
                    ),
                ));
                fixed.media_type = fm.descriptor.media_type.clone();
                fixed.size = fm.descriptor.size;
            }
            if fixed != first || listed.len() > 1 {
                put.push(fixed);
            }
        }

        // What the index would be with every fix applied.
        let edit = IndexEdit {
            put,
            remove,
            canonicalize: true,
        };
        let target: Vec<Descriptor> = {
            let mut idx = current.index.clone();
            idx.manifests = original.clone();
            edit_apply(&edit, &idx)
        };
        if findings.is_empty() && target != original {
            findings.push(finding(
                "unsorted",
                None,
                "entries are not sorted by (artifactType, digest)".into(),
            ));
        }
        let changed = target != original;
        let mut written = false;
        if changed && !dry_run {
            written = self.update_fallback(&subject.digest, &edit).await?;
        }
        Ok(RepairReport {
            findings,
            changed,
            written,
        })
    }
}

fn edit_apply(edit: &IndexEdit, idx: &stella_types::ImageIndex) -> Vec<Descriptor> {
    let put: BTreeSet<&Digest> = edit.put.iter().map(|d| &d.digest).collect();
    let mut entries: Vec<Descriptor> = idx
        .manifests
        .iter()
        .filter(|d| !edit.remove.contains(&d.digest) && !put.contains(&d.digest))
        .cloned()
        .collect();
    entries.extend(edit.put.iter().cloned());
    normalize_entries(entries)
}
