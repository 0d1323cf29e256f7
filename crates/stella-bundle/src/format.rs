//! The StellaBundle v1 file format: entry names and order, the bundle
//! manifest (`stella-bundle.json`), the `sha256sum`-compatible checksum list
//! (`SHA256SUMS`), the optional DSSE signature over the bundle manifest and
//! the classification of referrers (attestation, transparency log, plain
//! evidence) that `--include-dsse` / `--include-rekor-proof` act on.
//!
//! The normative description is `docs/bundle-format.md`; this module is its
//! executable twin. It does no I/O.

use std::collections::BTreeSet;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use stella_types::{Descriptor, Digest, DigestAlgorithm};

use crate::error::{BundleError, codes};

/// Media type of the bundle manifest (also the DSSE payload type of its signature).
pub const BUNDLE_MANIFEST_MEDIA_TYPE: &str = "application/vnd.stella.bundle.manifest.v1+json";
/// Entry names, in the order they appear in the tar.
pub const MANIFEST_NAME: &str = "stella-bundle.json";
pub const SIGNATURE_NAME: &str = "stella-bundle.dsse.json";
pub const CHECKSUMS_NAME: &str = "SHA256SUMS";
pub const OCI_LAYOUT_NAME: &str = "oci-layout";
pub const INDEX_NAME: &str = "index.json";
pub const BLOBS_DIR: &str = "blobs/";
pub const BLOBS_SHA256_DIR: &str = "blobs/sha256/";
/// Contents of `oci-layout`.
pub const OCI_LAYOUT_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// The role an artifact plays in the bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The image manifest or index the bundle is about.
    Subject,
    /// A manifest listed by an index in the bundle (per-platform manifest of a subject index, or child of an index referrer).
    ChildManifest,
    /// A manifest whose `subject` is the bundle subject, a platform manifest or another referrer.
    Referrer,
    /// A config or layer blob of one of the manifests.
    Blob,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Subject => "subject",
            Role::ChildManifest => "child-manifest",
            Role::Referrer => "referrer",
            Role::Blob => "blob",
        }
    }

    pub fn is_manifest(self) -> bool {
        !matches!(self, Role::Blob)
    }
}

/// One blob of the layout, as the bundle manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArtifactEntry {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub role: Role,
    /// For a referrer: the digest of its `subject`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refers_to: Option<Digest>,
    /// For a blob: the manifests in the bundle that list it (sorted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub used_by: Vec<Digest>,
}

/// The tool that wrote the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

/// What the exporter was asked to include.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Selection {
    pub include_dsse: bool,
    pub include_rekor_proof: bool,
    pub include_image: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifact_types: Vec<String>,
}

/// The subject of the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubjectInfo {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    /// The tag recorded in `index.json` (`org.opencontainers.image.ref.name`).
    pub tag: String,
}

/// `stella-bundle.json`: written as canonical JSON (RFC 8785).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BundleManifest {
    pub schema_version: u32,
    pub media_type: String,
    /// RFC 3339 UTC, whole seconds.
    pub created: String,
    pub tool: Tool,
    pub subject: SubjectInfo,
    pub selection: Selection,
    /// Every blob under `blobs/`, sorted by digest.
    pub artifacts: Vec<ArtifactEntry>,
}

impl BundleManifest {
    /// Canonical bytes (what is written and signed).
    pub fn to_canonical_bytes(&self) -> Result<Vec<u8>, BundleError> {
        stella_types::canonical_json::to_canonical_vec(self).map_err(|e| {
            BundleError::InvalidInput(format!("cannot serialize bundle manifest: {e}"))
        })
    }

    /// Parses and checks the structural rules of the format (version,
    /// sorting, uniqueness, sha256 only, subject listed with role subject).
    pub fn parse(bytes: &[u8]) -> Result<Self, BundleError> {
        let m: BundleManifest = serde_json::from_slice(bytes).map_err(|e| {
            BundleError::unusable(
                codes::BAD_MANIFEST,
                format!("{MANIFEST_NAME} is not a valid bundle manifest: {e}"),
            )
        })?;
        if m.schema_version != 1 || m.media_type != BUNDLE_MANIFEST_MEDIA_TYPE {
            return Err(BundleError::unusable(
                codes::UNSUPPORTED_VERSION,
                format!(
                    "{MANIFEST_NAME} has schemaVersion {} / mediaType {:?}; this reader supports 1 / {BUNDLE_MANIFEST_MEDIA_TYPE}",
                    m.schema_version, m.media_type
                ),
            ));
        }
        if m.artifacts.len() > crate::limits::MAX_ARTIFACTS {
            return Err(BundleError::unusable(
                codes::TOO_LARGE,
                "bundle manifest lists too many artifacts",
            ));
        }
        let mut prev: Option<&Digest> = None;
        let mut subjects = 0;
        for a in &m.artifacts {
            if a.digest.algorithm() != DigestAlgorithm::Sha256 {
                return Err(BundleError::unusable(
                    codes::BAD_MANIFEST,
                    format!("artifact {} is not sha256", a.digest),
                ));
            }
            if prev.is_some_and(|p| p >= &a.digest) {
                return Err(BundleError::unusable(
                    codes::BAD_MANIFEST,
                    format!(
                        "bundle manifest artifacts are not sorted and unique at {}",
                        a.digest
                    ),
                ));
            }
            prev = Some(&a.digest);
            if a.role == Role::Subject {
                subjects += 1;
                if a.digest != m.subject.digest
                    || a.size != m.subject.size
                    || a.media_type != m.subject.media_type
                {
                    return Err(BundleError::unusable(
                        codes::BAD_MANIFEST,
                        "subject artifact disagrees with the subject field",
                    ));
                }
            }
            if a.role == Role::Referrer && a.refers_to.is_none() {
                return Err(BundleError::unusable(
                    codes::BAD_MANIFEST,
                    format!("referrer {} has no refersTo", a.digest),
                ));
            }
        }
        if subjects != 1 {
            return Err(BundleError::unusable(
                codes::BAD_MANIFEST,
                "bundle manifest must list the subject exactly once",
            ));
        }
        if !is_valid_tag(&m.subject.tag) {
            return Err(BundleError::unusable(
                codes::BAD_MANIFEST,
                format!("subject tag {:?} is not a valid tag", m.subject.tag),
            ));
        }
        Ok(m)
    }

    /// The entry for a digest (artifacts are sorted).
    pub fn artifact(&self, digest: &Digest) -> Option<&ArtifactEntry> {
        self.artifacts
            .binary_search_by(|a| a.digest.cmp(digest))
            .ok()
            .and_then(|i| self.artifacts.get(i))
    }

    /// Total of all blob sizes.
    pub fn total_blob_bytes(&self) -> u64 {
        self.artifacts
            .iter()
            .map(|a| a.size)
            .fold(0u64, u64::saturating_add)
    }
}

pub use stella_types::reference::is_valid_tag;

/// Tar path of a blob.
pub fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm().as_str(), d.hex())
}

/// Parses a blob path back to a digest (`blobs/sha256/<64 lowercase hex>` only).
pub fn digest_from_blob_path(path: &str) -> Option<Digest> {
    let hex = path.strip_prefix(BLOBS_SHA256_DIR)?;
    Digest::parse(&format!("sha256:{hex}")).ok()
}

// ------------------------------------------------------------ checksum list

/// Renders `SHA256SUMS`: `<hex>  <path>\n` per line, sorted by path.
pub fn render_checksums(entries: &[(String, String)]) -> Vec<u8> {
    let mut sorted: Vec<&(String, String)> = entries.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::new();
    for (path, hex) in sorted {
        out.push_str(hex);
        out.push_str("  ");
        out.push_str(path);
        out.push('\n');
    }
    out.into_bytes()
}

/// Parses `SHA256SUMS` into sorted `(path, hex)` pairs, rejecting anything
/// but the exact format the writer produces.
pub fn parse_checksums(bytes: &[u8]) -> Result<Vec<(String, String)>, BundleError> {
    let bad = |m: String| BundleError::unusable(codes::CHECKSUM_LIST, m);
    let text =
        std::str::from_utf8(bytes).map_err(|_| bad(format!("{CHECKSUMS_NAME} is not UTF-8")))?;
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        let (hex, path) = line.split_once("  ").ok_or_else(|| {
            bad(format!(
                "{CHECKSUMS_NAME} line {} is not '<sha256>  <path>'",
                i + 1
            ))
        })?;
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad(format!(
                "{CHECKSUMS_NAME} line {} has a malformed hash",
                i + 1
            )));
        }
        if !seen.insert(path.to_string()) {
            return Err(bad(format!("{CHECKSUMS_NAME} lists {path:?} twice")));
        }
        out.push((path.to_string(), hex.to_string()));
    }
    out.sort();
    Ok(out)
}

// --------------------------------------------------- DSSE over the manifest

/// DSSE pre-authentication encoding (shared implementation in stella-types).
pub use stella_types::dsse::pae;

/// One DSSE signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub keyid: String,
    pub sig: String,
}

/// The DSSE envelope stored as `stella-bundle.dsse.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestEnvelope {
    pub payload_type: String,
    pub payload: String,
    pub signatures: Vec<EnvelopeSignature>,
}

/// Signs the bundle manifest (the library does not know about keys).
pub trait ManifestSigner {
    /// Key id to record (may be empty).
    fn key_id(&self) -> String;
    /// Signs the DSSE PAE bytes.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String>;
}

/// Checks a signature over the bundle manifest against trusted keys.
pub trait ManifestSignatureVerifier {
    /// Whether any trusted key is configured at all.
    fn has_keys(&self) -> bool;
    /// Verifies `signature` over `message` (DSSE PAE); `Ok(signer description)`.
    fn verify(&self, keyid: &str, message: &[u8], signature: &[u8]) -> Result<String, String>;
}

/// Builds the signature envelope for canonical manifest bytes.
pub fn sign_manifest(
    manifest_bytes: &[u8],
    signer: &dyn ManifestSigner,
) -> Result<Vec<u8>, BundleError> {
    let sig = signer
        .sign(&pae(BUNDLE_MANIFEST_MEDIA_TYPE, manifest_bytes))
        .map_err(|e| BundleError::InvalidInput(format!("cannot sign bundle manifest: {e}")))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let env = ManifestEnvelope {
        payload_type: BUNDLE_MANIFEST_MEDIA_TYPE.to_string(),
        payload: b64.encode(manifest_bytes),
        signatures: vec![EnvelopeSignature {
            keyid: signer.key_id(),
            sig: b64.encode(sig),
        }],
    };
    stella_types::canonical_json::to_canonical_vec(&env)
        .map_err(|e| BundleError::InvalidInput(format!("cannot serialize signature envelope: {e}")))
}

/// Verifies the signature envelope over `manifest_bytes`: the payload must
/// be exactly those bytes and at least one signature must verify.
pub fn verify_manifest_signature(
    envelope: &[u8],
    manifest_bytes: &[u8],
    verifier: &dyn ManifestSignatureVerifier,
    key_word: &str,
) -> Result<String, BundleError> {
    let env: ManifestEnvelope = serde_json::from_slice(envelope).map_err(|e| {
        BundleError::unusable(
            codes::SIGNATURE,
            format!("{SIGNATURE_NAME} is not a DSSE envelope: {e}"),
        )
    })?;
    let b64 = base64::engine::general_purpose::STANDARD;
    if env.payload_type != BUNDLE_MANIFEST_MEDIA_TYPE {
        return Err(BundleError::failed(
            codes::SIGNATURE,
            format!("signature payloadType is {:?}", env.payload_type),
        ));
    }
    let payload = b64
        .decode(env.payload.as_bytes())
        .map_err(|_| BundleError::unusable(codes::SIGNATURE, "signature payload is not base64"))?;
    if payload != manifest_bytes {
        return Err(BundleError::failed(
            codes::SIGNATURE,
            "signature payload is not the bundle manifest",
        ));
    }
    if !verifier.has_keys() {
        return Err(BundleError::failed(
            codes::SIGNATURE,
            format!("the bundle manifest is signed but no {key_word} was given to check it"),
        ));
    }
    let message = pae(&env.payload_type, &payload);
    let mut reasons = Vec::new();
    for s in &env.signatures {
        let Ok(sig) = b64.decode(s.sig.as_bytes()) else {
            reasons.push("signature is not base64".to_string());
            continue;
        };
        match verifier.verify(&s.keyid, &message, &sig) {
            Ok(signer) => return Ok(signer),
            Err(e) => reasons.push(e),
        }
    }
    if reasons.is_empty() {
        reasons.push("envelope has no signatures".into());
    }
    Err(BundleError::failed(
        codes::SIGNATURE,
        format!("bundle manifest signature: {}", reasons.join("; ")),
    ))
}

// ------------------------------------------------------------ classification

/// How `--include-dsse` / `--include-rekor-proof` treat a referrer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvidenceClass {
    /// SBOM, VEX, plain documents: always exported.
    Plain,
    /// Signed attestation (DSSE envelope, in-toto, sigstore bundle): needs `--include-dsse`.
    SignedAttestation,
    /// Transparency-log material (Rekor entries, proofs, checkpoints): needs `--include-rekor-proof`.
    TransparencyLog,
}

/// Is this media type an attestation document the verifier should check?
/// The one classifier, `stella_types::media_types::AttestationFormat`.
pub fn is_attestation_media_type(mt: &str) -> bool {
    stella_types::media_types::is_attestation_media_type(mt)
}

/// Is this media/artifact type transparency-log material?
pub fn is_tlog_type(t: &str) -> bool {
    t.starts_with("application/vnd.dev.sigstore.rekor")
        || t.starts_with("application/vnd.stella.tlog")
        || t.starts_with("application/vnd.stella.rekor")
}

/// Classifies a referrer from its artifact type and its layers' media types.
pub fn classify(artifact_type: Option<&str>, layers: &[Descriptor]) -> EvidenceClass {
    let at = artifact_type.unwrap_or("");
    if is_tlog_type(at) || layers.iter().any(|l| is_tlog_type(&l.media_type)) {
        return EvidenceClass::TransparencyLog;
    }
    if is_attestation_media_type(at)
        || layers
            .iter()
            .any(|l| is_attestation_media_type(&l.media_type))
    {
        return EvidenceClass::SignedAttestation;
    }
    EvidenceClass::Plain
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use stella_types::media_types::DSSE_ENVELOPE;

    #[test]
    fn checksums_round_trip_and_reject_garbage() {
        let h = "a".repeat(64);
        let list = vec![
            ("index.json".to_string(), h.clone()),
            ("blobs/sha256/x".to_string(), h.clone()),
        ];
        let text = render_checksums(&list);
        assert_eq!(
            String::from_utf8(text.clone()).unwrap(),
            format!("{h}  blobs/sha256/x\n{h}  index.json\n")
        );
        assert_eq!(parse_checksums(&text).unwrap().len(), 2);
        assert_eq!(
            parse_checksums(b"zz  a\n").unwrap_err().code(),
            codes::CHECKSUM_LIST
        );
        let dup = format!("{h}  a\n{h}  a\n");
        assert_eq!(
            parse_checksums(dup.as_bytes()).unwrap_err().code(),
            codes::CHECKSUM_LIST
        );
    }

    #[test]
    fn classification() {
        assert_eq!(
            classify(Some("application/spdx+json"), &[]),
            EvidenceClass::Plain
        );
        assert_eq!(
            classify(Some(DSSE_ENVELOPE), &[]),
            EvidenceClass::SignedAttestation
        );
        assert_eq!(
            classify(Some("application/vnd.dev.sigstore.bundle.v0.3+json"), &[]),
            EvidenceClass::SignedAttestation
        );
        let layer = Descriptor::for_bytes(DSSE_ENVELOPE, b"{}");
        assert_eq!(
            classify(Some("application/vnd.example"), &[layer]),
            EvidenceClass::SignedAttestation
        );
        assert_eq!(
            classify(Some("application/vnd.dev.sigstore.rekor.entry+json"), &[]),
            EvidenceClass::TransparencyLog
        );
    }

    #[test]
    fn tags() {
        assert!(is_valid_tag("v1.0_x-y"));
        assert!(!is_valid_tag("-x"));
        assert!(!is_valid_tag(""));
        assert!(!is_valid_tag("a/b"));
    }
}
