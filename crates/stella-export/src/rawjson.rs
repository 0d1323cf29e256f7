//! The `json:raw` profile: every JSON layer of every referrer of the
//! selected images (SBOMs, VEX, provenance, DSSE envelopes, sigstore
//! bundles, reports) as one canonical JSON file (RFC 8785) named by the
//! SHA-256 of its canonical bytes, plus an index (`index.json`) saying
//! which repository, subject and referrer each item came from.
//!
//! What this module does not do: verify the evidence (a `json:raw` export
//! carries it as found), or export layers that are not JSON (they are
//! counted in the index as skipped).

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use serde::Serialize;
use stella_oci::store::ContentRead;
use stella_types::{Digest, Manifest};

use crate::collect::Collected;
use crate::error::ExportError;
use crate::format::*;
use crate::write::{ExportRequest, write_atomic};

/// Largest evidence layer exported.
pub const MAX_EVIDENCE_BYTES: u64 = stella_types::limits::MAX_JSON_DOCUMENT_BYTES;

/// One item of the evidence index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceItem {
    pub repository: String,
    pub subject: Digest,
    pub referrer: Digest,
    pub layer: Digest,
    pub layer_media_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// `evidence/<hex>.json`, or absent when skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Why the layer was not exported (not JSON, too large).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EvidenceIndex<'a> {
    media_type: &'a str,
    items: &'a [EvidenceItem],
}

/// Fetches and writes the evidence files and the index into `staging`.
pub async fn stage(
    req: &ExportRequest<'_>,
    collected: &Collected,
    staging: &Path,
) -> Result<(Vec<Entry>, usize), ExportError> {
    let dir = staging.join("evidence");
    fs::create_dir_all(&dir)
        .map_err(|e| ExportError::io(format!("creating {}", dir.display()), e))?;
    let mut items = Vec::new();
    let mut files = BTreeSet::new();
    let mut fetched = 0;
    for state in &collected.states {
        let source = req
            .sources
            .iter()
            .find(|s| s.repository == state.repository)
            .ok_or_else(|| ExportError::InvalidInput("internal: unknown repository".into()))?;
        for edge in &state.referrers {
            let Some((mt, bytes)) = collected.manifests.get(&edge.referrer) else {
                continue;
            };
            let Ok(Manifest::Image(m)) = Manifest::parse(bytes, Some(mt)) else {
                continue;
            };
            for layer in &m.layers {
                let mut item = EvidenceItem {
                    repository: state.repository.clone(),
                    subject: edge.subject.clone(),
                    referrer: edge.referrer.clone(),
                    layer: layer.digest.clone(),
                    layer_media_type: layer.media_type.clone(),
                    artifact_type: edge.artifact_type.clone(),
                    path: None,
                    skipped: None,
                };
                if layer.size > MAX_EVIDENCE_BYTES {
                    item.skipped = Some(format!("larger than {MAX_EVIDENCE_BYTES} bytes"));
                    items.push(item);
                    continue;
                }
                let raw = source
                    .store
                    .fetch_blob_bytes(layer, MAX_EVIDENCE_BYTES)
                    .await
                    .map_err(|e| ExportError::store(format!("fetching {}", layer.digest), e))?;
                fetched += 1;
                let canonical = serde_json::from_slice::<serde_json::Value>(&raw)
                    .ok()
                    .and_then(|v| stella_types::canonical_json::canonicalize(&v).ok());
                let Some(canonical) = canonical else {
                    item.skipped = Some("not JSON".into());
                    items.push(item);
                    continue;
                };
                let digest = Digest::sha256_of(&canonical);
                let path = format!("{EVIDENCE_DIR}{}.json", digest.hex());
                if files.insert((
                    path.clone(),
                    canonical.len() as u64,
                    digest.hex().to_string(),
                )) {
                    write_atomic(&staging.join(&path), &canonical)?;
                }
                item.path = Some(path);
                items.push(item);
            }
        }
    }
    items.sort();
    items.dedup();
    let index = stella_types::canonical_json::to_canonical_vec(&EvidenceIndex {
        media_type: EVIDENCE_INDEX_MEDIA_TYPE,
        items: &items,
    })
    .map_err(|e| ExportError::InvalidInput(format!("cannot render the evidence index: {e}")))?;
    write_atomic(&staging.join(INDEX_NAME), &index)?;
    let mut entries: Vec<Entry> = files
        .into_iter()
        .map(|(path, size, sha256)| Entry {
            path,
            size,
            sha256,
            role: roles::EVIDENCE.into(),
        })
        .collect();
    entries.push(Entry {
        path: INDEX_NAME.into(),
        size: index.len() as u64,
        sha256: Digest::sha256_of(&index).hex().to_string(),
        role: roles::EVIDENCE_INDEX.into(),
    });
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((entries, fetched))
}
