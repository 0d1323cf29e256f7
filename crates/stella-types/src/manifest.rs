//! OCI image manifests and image indexes (and their Docker v2 twins), parsed
//! from raw bytes with a size cap.
//!
//! Stella keeps the raw bytes of every manifest it reads or writes: the
//! digest is over those bytes, so these types are for reading fields, and
//! re-serializing one is only done for manifests Stella itself creates.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::descriptor::Descriptor;
use crate::limits::MAX_MANIFEST_BYTES;
use crate::media_types::{DOCKER_MANIFEST_LIST, DOCKER_MANIFEST_V2, OCI_INDEX, OCI_MANIFEST};

/// Why bytes are not a usable manifest or index.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    #[error("manifest is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: u64, limit: u64 },
    #[error("manifest is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("manifest has unsupported schemaVersion {0} (expected 2)")]
    SchemaVersion(u64),
    #[error("manifest media type {0:?} is not one Stella reads")]
    UnsupportedMediaType(String),
    #[error("manifest declares media type {declared:?} but was served as {served:?}")]
    MediaTypeConflict { declared: String, served: String },
}

/// An OCI image manifest (also used for OCI 1.1 artifacts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ImageManifest {
    /// The artifact type as the referrers API reports it: `artifactType`,
    /// else the config media type (OCI distribution spec, listing referrers).
    pub fn effective_artifact_type(&self) -> &str {
        self.artifact_type
            .as_deref()
            .unwrap_or(&self.config.media_type)
    }
}

/// An OCI image index (also the referrers response and fallback index).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ImageIndex {
    /// An empty OCI image index.
    pub fn empty() -> Self {
        ImageIndex {
            schema_version: 2,
            media_type: Some(OCI_INDEX.to_string()),
            artifact_type: None,
            manifests: Vec::new(),
            subject: None,
            annotations: BTreeMap::new(),
        }
    }

    /// Serializes as compact JSON with fields in spec order and sorted maps.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        // Serialization of these plain types cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

impl ImageManifest {
    /// Serializes as compact JSON with fields in spec order and sorted maps.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// A parsed manifest of either kind.
// Manifests are parsed one at a time and matched on immediately; boxing the
// image variant would only add an indirection at every call site.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    Image(ImageManifest),
    Index(ImageIndex),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    schema_version: Option<u64>,
    media_type: Option<String>,
    manifests: Option<serde::de::IgnoredAny>,
    config: Option<serde::de::IgnoredAny>,
}

impl Manifest {
    /// Parses manifest bytes. `served_media_type` is the `Content-Type` the
    /// registry (or the descriptor) gave, if any; when the document names its
    /// own `mediaType` the two must agree.
    pub fn parse(bytes: &[u8], served_media_type: Option<&str>) -> Result<Self, ManifestError> {
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge {
                size: bytes.len() as u64,
                limit: MAX_MANIFEST_BYTES,
            });
        }
        let probe: Probe = serde_json::from_slice(bytes)?;
        if let Some(v) = probe.schema_version
            && v != 2
        {
            return Err(ManifestError::SchemaVersion(v));
        }
        let served = served_media_type
            .map(|s| s.split(';').next().unwrap_or(s).trim())
            .filter(|s| {
                !s.is_empty() && *s != "application/json" && *s != "application/octet-stream"
            });
        if let (Some(declared), Some(served)) = (probe.media_type.as_deref(), served)
            && declared != served
        {
            return Err(ManifestError::MediaTypeConflict {
                declared: declared.to_string(),
                served: served.to_string(),
            });
        }
        let media_type = probe.media_type.as_deref().or(served);
        let is_index = match media_type {
            Some(OCI_INDEX | DOCKER_MANIFEST_LIST) => true,
            Some(OCI_MANIFEST | DOCKER_MANIFEST_V2) => false,
            Some(other) => return Err(ManifestError::UnsupportedMediaType(other.to_string())),
            None => probe.manifests.is_some() && probe.config.is_none(),
        };
        if is_index {
            Ok(Manifest::Index(serde_json::from_slice(bytes)?))
        } else {
            Ok(Manifest::Image(serde_json::from_slice(bytes)?))
        }
    }

    /// The media type to use for this manifest (declared, else by shape).
    pub fn media_type(&self) -> &str {
        match self {
            Manifest::Image(m) => m.media_type.as_deref().unwrap_or(OCI_MANIFEST),
            Manifest::Index(i) => i.media_type.as_deref().unwrap_or(OCI_INDEX),
        }
    }

    pub fn subject(&self) -> Option<&Descriptor> {
        match self {
            Manifest::Image(m) => m.subject.as_ref(),
            Manifest::Index(i) => i.subject.as_ref(),
        }
    }

    pub fn annotations(&self) -> &BTreeMap<String, String> {
        match self {
            Manifest::Image(m) => &m.annotations,
            Manifest::Index(i) => &i.annotations,
        }
    }

    /// Artifact type as the referrers API reports it (see
    /// [`ImageManifest::effective_artifact_type`]); for an index, its
    /// `artifactType` if any.
    pub fn artifact_type(&self) -> Option<&str> {
        match self {
            Manifest::Image(m) => Some(m.effective_artifact_type()),
            Manifest::Index(i) => i.artifact_type.as_deref(),
        }
    }

    /// Every descriptor this manifest points to (config, layers, or child
    /// manifests), not counting its subject.
    pub fn children(&self) -> Vec<&Descriptor> {
        match self {
            Manifest::Image(m) => std::iter::once(&m.config).chain(m.layers.iter()).collect(),
            Manifest::Index(i) => i.manifests.iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_artifact_manifest() {
        let raw = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
          "artifactType":"application/spdx+json",
          "config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},
          "layers":[],
          "subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}}"#;
        let m = Manifest::parse(raw, Some(OCI_MANIFEST)).unwrap();
        assert_eq!(m.artifact_type(), Some("application/spdx+json"));
        assert!(m.subject().is_some());
    }

    #[test]
    fn rejects_conflicting_and_oversized() {
        let raw = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        assert!(matches!(
            Manifest::parse(raw, Some(OCI_MANIFEST)),
            Err(ManifestError::MediaTypeConflict { .. })
        ));
        let big = vec![b' '; (MAX_MANIFEST_BYTES + 1) as usize];
        assert!(matches!(
            Manifest::parse(&big, None),
            Err(ManifestError::TooLarge { .. })
        ));
        assert!(matches!(
            Manifest::parse(b"{\"schemaVersion\":1}", None),
            Err(ManifestError::SchemaVersion(1))
        ));
        assert!(Manifest::parse(b"not json", None).is_err());
    }
}
