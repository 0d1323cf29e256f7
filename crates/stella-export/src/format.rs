//! The export's own files: the export manifest (`manifest.json`, canonical
//! JSON), its DSSE signature (`manifest.dsse.json`), the checksum list
//! (`checksums.txt`, `sha256sum` format) and the provenance Statement
//! (`provenance.json`). Types, canonical serialization, parsing with the
//! rules of `docs/export-format.md`, signing and signature checking through
//! the StellaBundle signer/verifier traits.
//!
//! What this module does not do: read stores, files or archives.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use serde::{Deserialize, Serialize};
use stella_bundle::format::{
    EnvelopeSignature, ManifestEnvelope, ManifestSignatureVerifier, ManifestSigner,
};
use stella_types::{Descriptor, Digest};

use crate::error::{ExportError, codes};

/// Format version this library writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Media type of `manifest.json` (also the DSSE payload type).
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.stella.export.manifest.v1+json";
/// Media type of the json:raw evidence index.
pub const EVIDENCE_INDEX_MEDIA_TYPE: &str = "application/vnd.stella.export.evidence-index.v1+json";
/// Media type of a parts list.
pub const PARTS_MEDIA_TYPE: &str = "application/vnd.stella.export.parts.v1+json";

pub const MANIFEST_NAME: &str = "manifest.json";
pub const SIGNATURE_NAME: &str = "manifest.dsse.json";
/// An optional detached sigstore bundle over `manifest.json` (keyless).
pub const SIGSTORE_NAME: &str = "manifest.sigstore.json";
pub const CHECKSUMS_NAME: &str = "checksums.txt";
pub const PROVENANCE_NAME: &str = "provenance.json";
pub const OCI_LAYOUT_NAME: &str = "oci-layout";
pub const INDEX_NAME: &str = "index.json";
pub const BLOBS_DIR: &str = "blobs/";
pub const BLOBS_SHA256_DIR: &str = "blobs/sha256/";
pub const EVIDENCE_DIR: &str = "evidence/";

/// Largest `manifest.json`, `checksums.txt`, `provenance.json` or `index.json` read.
pub const MAX_HEAD_FILE_BYTES: u64 = stella_types::limits::MAX_JSON_DOCUMENT_BYTES;
/// Largest `manifest.dsse.json` read.
pub const MAX_SIGNATURE_BYTES: u64 = 16 * 1024 * 1024;
/// Largest `oci-layout` read.
pub const MAX_OCI_LAYOUT_BYTES: u64 = 4096;
/// Most entries one export may list.
pub const MAX_ENTRIES: usize = 1_000_000;

/// What an export holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Profile {
    /// Every selected image with all its content and evidence, as an OCI image layout.
    #[serde(rename = "mirror:full")]
    MirrorFull,
    /// Only the manifests and blobs absent from a base export, as an OCI image layout.
    #[serde(rename = "mirror:delta")]
    MirrorDelta,
    /// One canonical JSON file per evidence item, plus an index.
    #[serde(rename = "json:raw")]
    JsonRaw,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::MirrorFull => "mirror:full",
            Profile::MirrorDelta => "mirror:delta",
            Profile::JsonRaw => "json:raw",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "mirror:full" => Some(Profile::MirrorFull),
            "mirror:delta" => Some(Profile::MirrorDelta),
            "json:raw" => Some(Profile::JsonRaw),
            _ => None,
        }
    }

    /// Mirror profiles hold an OCI image layout.
    pub fn is_mirror(self) -> bool {
        matches!(self, Profile::MirrorFull | Profile::MirrorDelta)
    }
}

/// The selection as the user gave it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Selection {
    /// Image references (`--image`, and the lines of `--images-file`), in the order given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    /// Repositories exported with every tag (`--repository`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<String>,
    /// Platforms kept from image indexes (`os/arch[/variant]`), or `None` for all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platforms: Option<Vec<String>>,
}

/// The tool that wrote the export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

impl Default for Tool {
    fn default() -> Self {
        Tool {
            name: "stella".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// One selected image (a tag's or digest's target) in a repository.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResolvedImage {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    /// `os/arch[/variant]` of the image (an index: of each child kept), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
}

/// A referrer manifest of a subject in a repository.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReferrerEdge {
    pub subject: Digest,
    pub referrer: Digest,
    pub media_type: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl ReferrerEdge {
    /// The referrer's descriptor as a referrers listing gives it.
    pub fn descriptor(&self) -> Descriptor {
        let mut d = Descriptor::new(&self.media_type, self.referrer.clone(), self.size);
        d.artifact_type = self.artifact_type.clone();
        d
    }
}

/// Whether a content item is a manifest (or index) or a plain blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentKind {
    Manifest,
    Blob,
}

/// One manifest or blob a repository holds in the exported state.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContentItem {
    pub digest: Digest,
    pub size: u64,
    pub kind: ContentKind,
    /// Manifests only: the manifest's media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

/// The exported state of one repository: its tags, selected images,
/// referrers and everything they reach.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepositoryState {
    /// Repository path without the registry host (`rel/app`).
    pub repository: String,
    /// Tag → manifest digest; includes referrers tag-schema indexes (`sha256-<hex>`).
    pub tags: BTreeMap<String, Digest>,
    /// The selected images, sorted by digest.
    pub images: Vec<ResolvedImage>,
    /// Referrers found recursively, sorted by (subject, referrer).
    pub referrers: Vec<ReferrerEdge>,
    /// Every manifest and blob of the state, sorted by digest.
    pub content: Vec<ContentItem>,
}

/// What a delta removes from one repository of its base's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemovedState {
    pub repository: String,
    /// Tags the base had and this state does not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Referrers the base had and this state does not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub referrers: Vec<ReferrerEdge>,
}

/// What `current` lost compared with `base`.
pub fn removed_since(base: &[RepositoryState], current: &[RepositoryState]) -> Vec<RemovedState> {
    let mut out = Vec::new();
    for b in base {
        let now = current.iter().find(|c| c.repository == b.repository);
        let tags: Vec<String> = b
            .tags
            .keys()
            .filter(|t| now.is_none_or(|n| !n.tags.contains_key(*t)))
            .cloned()
            .collect();
        let referrers: Vec<ReferrerEdge> = b
            .referrers
            .iter()
            .filter(|e| {
                now.is_none_or(|n| {
                    !n.referrers
                        .iter()
                        .any(|x| x.referrer == e.referrer && x.subject == e.subject)
                })
            })
            .cloned()
            .collect();
        if !tags.is_empty() || !referrers.is_empty() {
            out.push(RemovedState {
                repository: b.repository.clone(),
                tags,
                referrers,
            });
        }
    }
    out
}

/// One file of the export described by the manifest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Entry {
    pub path: String,
    pub size: u64,
    /// Lowercase hex SHA-256 of the file.
    pub sha256: String,
    pub role: String,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportManifest {
    pub media_type: String,
    pub format_version: u32,
    pub profile: Profile,
    /// RFC 3339 UTC, from `SOURCE_DATE_EPOCH` or the inputs.
    pub created: String,
    pub tool: Tool,
    pub selection: Selection,
    /// Delta only: digest of the base export's `manifest.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<Digest>,
    /// SHA-256 over the canonical JSON of profile, selection, base and images.
    pub inputs_hash: Digest,
    /// Resolved state, sorted by repository.
    pub images: Vec<RepositoryState>,
    /// Delta only: what the base's state had that this state no longer
    /// has (tags, referrers), by repository; an import removes it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<RemovedState>,
    /// Every file of the export except `manifest.json`, `manifest.dsse.json`,
    /// `checksums.txt` and `provenance.json`, sorted by path.
    pub entries: Vec<Entry>,
}

/// Roles of entries.
pub mod roles {
    pub const OCI_LAYOUT: &str = "oci-layout";
    pub const LAYOUT_INDEX: &str = "layout-index";
    pub const MANIFEST: &str = "manifest";
    pub const BLOB: &str = "blob";
    pub const EVIDENCE: &str = "evidence";
    pub const EVIDENCE_INDEX: &str = "evidence-index";
}

fn bad(reason: impl Into<String>) -> ExportError {
    ExportError::unusable(codes::BAD_MANIFEST, reason)
}

/// The inputs hash: SHA-256 over canonical JSON of what determines the export.
pub fn inputs_hash(
    profile: Profile,
    selection: &Selection,
    base: Option<&Digest>,
    images: &[RepositoryState],
) -> Result<Digest, ExportError> {
    let v = serde_json::json!({
        "base": base,
        "images": images,
        "profile": profile,
        "selection": selection,
    });
    let bytes = stella_types::canonical_json::canonicalize(&v)
        .map_err(|e| ExportError::InvalidInput(format!("cannot hash the inputs: {e}")))?;
    Ok(Digest::sha256_of(&bytes))
}

impl ExportManifest {
    /// Canonical JSON bytes (what is written and signed).
    pub fn to_canonical_bytes(&self) -> Result<Vec<u8>, ExportError> {
        stella_types::canonical_json::to_canonical_vec(self)
            .map_err(|e| ExportError::InvalidInput(format!("cannot serialize the manifest: {e}")))
    }

    /// Parses and checks `manifest.json` (section 3 of the format).
    pub fn parse(bytes: &[u8]) -> Result<Self, ExportError> {
        let probe: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| bad(format!("{MANIFEST_NAME} is not JSON: {e}")))?;
        if probe.get("mediaType").and_then(|v| v.as_str()) != Some(MANIFEST_MEDIA_TYPE)
            || probe.get("formatVersion").and_then(|v| v.as_u64())
                != Some(u64::from(FORMAT_VERSION))
        {
            return Err(ExportError::unusable(
                codes::UNSUPPORTED_VERSION,
                format!(
                    "{MANIFEST_NAME} is not a version {FORMAT_VERSION} Stella export manifest ({MANIFEST_MEDIA_TYPE})"
                ),
            ));
        }
        let m: ExportManifest =
            serde_json::from_value(probe).map_err(|e| bad(format!("{MANIFEST_NAME}: {e}")))?;
        m.check()?;
        Ok(m)
    }

    fn check(&self) -> Result<(), ExportError> {
        if self.entries.len() > MAX_ENTRIES {
            return Err(bad(format!("more than {MAX_ENTRIES} entries")));
        }
        let mut last: Option<&str> = None;
        for e in &self.entries {
            check_entry_path(&e.path, self.profile)?;
            if last.is_some_and(|l| l >= e.path.as_str()) {
                return Err(bad(format!(
                    "entries are not sorted by path without duplicates (at {:?})",
                    e.path
                )));
            }
            last = Some(&e.path);
            if e.sha256.len() != 64
                || !e
                    .sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                return Err(bad(format!("entry {:?} has a malformed sha256", e.path)));
            }
            if let Some(hex) = e.path.strip_prefix(BLOBS_SHA256_DIR)
                && hex != e.sha256
            {
                return Err(bad(format!(
                    "entry {:?} is named after another digest than its sha256",
                    e.path
                )));
            }
        }
        if (self.profile == Profile::MirrorDelta) != self.base.is_some() {
            return Err(bad("a mirror:delta export, and only one, names its base"));
        }
        let mut repos = BTreeSet::new();
        for r in &self.images {
            if !repos.insert(r.repository.as_str()) {
                return Err(bad(format!("repository {} listed twice", r.repository)));
            }
            check_repository_name(&r.repository).map_err(bad)?;
            for tag in r.tags.keys() {
                if !stella_types::reference::is_valid_tag(tag) {
                    return Err(bad(format!("{}: invalid tag {tag:?}", r.repository)));
                }
            }
        }
        Ok(())
    }

    /// The entry for `path`.
    pub fn entry(&self, path: &str) -> Option<&Entry> {
        self.entries
            .binary_search_by(|e| e.path.as_str().cmp(path))
            .ok()
            .and_then(|i| self.entries.get(i))
    }

    /// Every manifest and blob digest of the exported state (all repositories).
    pub fn state_digests(&self) -> BTreeSet<Digest> {
        self.images
            .iter()
            .flat_map(|r| r.content.iter().map(|c| c.digest.clone()))
            .collect()
    }

    /// Sum of the entries' sizes.
    pub fn total_bytes(&self) -> u64 {
        self.entries
            .iter()
            .map(|e| e.size)
            .fold(0, u64::saturating_add)
    }
}

/// A repository path as the distribution spec allows it.
pub fn check_repository_name(name: &str) -> Result<(), String> {
    let ok = stella_types::reference::valid_repository(name);
    if ok {
        Ok(())
    } else {
        Err(format!("invalid repository name {name:?}"))
    }
}

/// Which paths an export of `profile` may hold as entries.
pub fn check_entry_path(path: &str, profile: Profile) -> Result<(), ExportError> {
    let allowed = if profile.is_mirror() {
        path == OCI_LAYOUT_NAME
            || path == INDEX_NAME
            || path
                .strip_prefix(BLOBS_SHA256_DIR)
                .is_some_and(|h| Digest::parse(&format!("sha256:{h}")).is_ok())
    } else {
        path == INDEX_NAME
            || path
                .strip_prefix(EVIDENCE_DIR)
                .and_then(|n| n.strip_suffix(".json"))
                .is_some_and(|h| Digest::parse(&format!("sha256:{h}")).is_ok())
    };
    if allowed {
        Ok(())
    } else {
        Err(bad(format!(
            "entry {path:?} is not a name a {} export holds",
            profile.as_str()
        )))
    }
}

/// Path of a blob in the layout.
pub fn blob_path(d: &Digest) -> String {
    format!("{BLOBS_SHA256_DIR}{}", d.hex())
}

// ------------------------------------------------------------ checksums

/// `checksums.txt`: every file except itself, `sha256sum` text format, sorted by path.
pub fn render_checksums(files: &[(String, String)]) -> Vec<u8> {
    stella_bundle::format::render_checksums(files)
}

/// Parses `checksums.txt` into sorted `(path, hex)` pairs.
pub fn parse_checksums(bytes: &[u8]) -> Result<Vec<(String, String)>, ExportError> {
    stella_bundle::format::parse_checksums(bytes)
        .map_err(|e| ExportError::unusable(codes::CHECKSUMS, e.to_string()))
}

// ------------------------------------------------------------ provenance

/// `provenance.json`: an in-toto Statement v1 whose subjects are the
/// export's files (`(path, hex)`), with a SLSA v1 provenance predicate
/// describing the export run.
pub fn render_provenance(
    manifest: &ExportManifest,
    manifest_digest: &Digest,
    subjects: &[(String, String)],
) -> Result<Vec<u8>, ExportError> {
    let subject: Vec<serde_json::Value> = subjects
        .iter()
        .map(|(p, h)| serde_json::json!({"name": p, "digest": {"sha256": h}}))
        .collect();
    let deps: Vec<serde_json::Value> = manifest
        .images
        .iter()
        .flat_map(|r| {
            r.images.iter().map(move |i| {
                serde_json::json!({"name": r.repository, "digest": {"sha256": i.digest.hex()}})
            })
        })
        .collect();
    let v = serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": subject,
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": "urn:stella:export:v1",
                "externalParameters": {
                    "profile": manifest.profile,
                    "selection": manifest.selection,
                    "base": manifest.base,
                },
                "internalParameters": {"inputsHash": manifest.inputs_hash},
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {"id": format!("urn:stella:{}", manifest.tool.version)},
                "metadata": {
                    "invocationId": manifest_digest,
                    "startedOn": manifest.created,
                    "finishedOn": manifest.created,
                },
            },
        },
    });
    stella_types::canonical_json::canonicalize(&v)
        .map_err(|e| ExportError::InvalidInput(format!("cannot render provenance: {e}")))
}

/// The `(path, sha256 hex)` subjects of `provenance.json`.
pub fn provenance_subjects(bytes: &[u8]) -> Result<Vec<(String, String)>, ExportError> {
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        ExportError::failed(
            codes::PROVENANCE,
            format!("{PROVENANCE_NAME} is not JSON: {e}"),
        )
    })?;
    let subjects = v
        .get("subject")
        .and_then(|s| s.as_array())
        .ok_or_else(|| ExportError::failed(codes::PROVENANCE, "provenance has no subjects"))?;
    let mut out = Vec::new();
    for s in subjects {
        let name = s.get("name").and_then(|n| n.as_str());
        let hex = s.pointer("/digest/sha256").and_then(|n| n.as_str());
        match (name, hex) {
            (Some(n), Some(h)) => out.push((n.to_string(), h.to_string())),
            _ => {
                return Err(ExportError::failed(
                    codes::PROVENANCE,
                    "a provenance subject lacks a name or sha256",
                ));
            }
        }
    }
    out.sort();
    Ok(out)
}

// ------------------------------------------------------------ signature

/// `manifest.dsse.json` over the canonical manifest bytes.
pub fn sign_manifest(
    manifest_bytes: &[u8],
    signer: &dyn ManifestSigner,
) -> Result<Vec<u8>, ExportError> {
    let sig = signer
        .sign(&stella_types::dsse::pae(
            MANIFEST_MEDIA_TYPE,
            manifest_bytes,
        ))
        .map_err(|e| ExportError::InvalidInput(format!("cannot sign the export manifest: {e}")))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let env = ManifestEnvelope {
        payload_type: MANIFEST_MEDIA_TYPE.to_string(),
        payload: b64.encode(manifest_bytes),
        signatures: vec![EnvelopeSignature {
            keyid: signer.key_id(),
            sig: b64.encode(sig),
        }],
    };
    stella_types::canonical_json::to_canonical_vec(&env)
        .map_err(|e| ExportError::InvalidInput(format!("cannot serialize the signature: {e}")))
}

/// Checks `manifest.dsse.json` against the manifest bytes and trusted
/// keys; returns the signer's description.
pub fn verify_manifest_signature(
    envelope: &[u8],
    manifest_bytes: &[u8],
    verifier: &dyn ManifestSignatureVerifier,
) -> Result<String, ExportError> {
    let fail = |m: String| ExportError::failed(codes::SIGNATURE, m);
    let env: ManifestEnvelope = serde_json::from_slice(envelope)
        .map_err(|e| fail(format!("{SIGNATURE_NAME} is not a DSSE envelope: {e}")))?;
    if env.payload_type != MANIFEST_MEDIA_TYPE {
        return Err(fail(format!(
            "signature payloadType is {:?}",
            env.payload_type
        )));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = b64
        .decode(env.payload.as_bytes())
        .map_err(|_| fail("signature payload is not base64".into()))?;
    if payload != manifest_bytes {
        return Err(fail(format!(
            "the signed payload is not {MANIFEST_NAME} (the manifest was changed after signing)"
        )));
    }
    let message = stella_types::dsse::pae(&env.payload_type, &payload);
    let mut reasons = Vec::new();
    for s in &env.signatures {
        let Ok(sig) = b64.decode(s.sig.as_bytes()) else {
            reasons.push("a signature is not base64".to_string());
            continue;
        };
        match verifier.verify(&s.keyid, &message, &sig) {
            Ok(signer) => return Ok(signer),
            Err(e) => reasons.push(e),
        }
    }
    if reasons.is_empty() {
        reasons.push("the envelope has no signatures".into());
    }
    Err(fail(format!(
        "export manifest signature: {}",
        reasons.join("; ")
    )))
}

/// The digest of `manifest.json` bytes: the export's identity.
pub fn manifest_digest(manifest_bytes: &[u8]) -> Digest {
    Digest::sha256_of(manifest_bytes)
}
