//! Media type and annotation names from the OCI image spec v1.1, Docker,
//! DSSE, in-toto and sigstore, in one place, and the one answer to "is
//! this an attestation, and in what format" ([`AttestationFormat`]), by
//! media type ([`AttestationFormat::of_media_type`]) or, for layers that a
//! generic client pushed under a default type, by content
//! ([`AttestationFormat::of_content`]).
//!
//! Not here: parsing or verifying the documents (stella-attest,
//! stella-sigstore), or deciding what a command does with each format.

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

pub const DOCKER_MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Every manifest media type Stella reads; sent as `Accept` when fetching
/// manifests (distribution 2.8 only returns what is listed here).
pub const MANIFEST_ACCEPT: &[&str] = &[
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST_V2,
    DOCKER_MANIFEST_LIST,
];

pub const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";
pub const IN_TOTO_JSON: &str = "application/vnd.in-toto+json";
pub const SIGSTORE_BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// The media type stella writes for each sigstore bundle version (what the
/// bundle's own `mediaType` field says, protobuf-specs spelling).
pub const SIGSTORE_BUNDLE_V01: &str = "application/vnd.dev.sigstore.bundle+json;version=0.1";
pub const SIGSTORE_BUNDLE_V02: &str = "application/vnd.dev.sigstore.bundle+json;version=0.2";
/// Generic layer media types: what clients such as `oras attach` give a file
/// layer when told nothing else. Such a layer is only read as an
/// attestation when its manifest's `artifactType` says it is one.
pub const GENERIC_LAYER_TYPES: &[&str] = &[
    OCI_LAYER_TAR,
    "application/octet-stream",
    "application/json",
    "text/plain",
];

/// The empty JSON config blob (`{}`) that artifacts without a config use.
pub const EMPTY_JSON: &[u8] = b"{}";
pub const EMPTY_JSON_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

/// Annotation keys.
pub mod annotations {
    pub const TITLE: &str = "org.opencontainers.image.title";
    pub const CREATED: &str = "org.opencontainers.image.created";
    pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
    pub const SIGSTORE_PREDICATE_TYPE: &str = "dev.sigstore.bundle.predicateType";
    pub const SIGSTORE_CONTENT: &str = "dev.sigstore.bundle.content";
}

/// A sigstore bundle format version (protobuf-specs `Bundle.mediaType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SigstoreBundleVersion {
    V0_1,
    V0_2,
    V0_3,
}

impl SigstoreBundleVersion {
    fn parse(v: &str) -> Option<Self> {
        match v {
            "0.1" => Some(Self::V0_1),
            "0.2" => Some(Self::V0_2),
            "0.3" => Some(Self::V0_3),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V0_1 => "0.1",
            Self::V0_2 => "0.2",
            Self::V0_3 => "0.3",
        }
    }
}

/// What a layer (or a referrer's `artifactType`) holds, as far as
/// attestations go. One classifier for every command: discovery, `verify
/// image`, `verify attestation`, bundle export and `bundle verify` all ask
/// it, so they never disagree about a referrer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttestationFormat {
    /// A sigstore bundle (signed: DSSE envelope or message signature plus
    /// verification material). `version` is `None` for a bundle type of a
    /// version Stella does not know (it is still an attestation, and fails
    /// verification rather than passing as a plain artifact).
    SigstoreBundle {
        version: Option<SigstoreBundleVersion>,
    },
    /// A DSSE envelope (signed), e.g. a cosign legacy `.att` layer.
    DsseEnvelope,
    /// A bare in-toto Statement: an attestation, but unsigned.
    InTotoStatement,
    /// Anything else (an SBOM, a VEX document, an image layer...).
    NotAttestation,
}

impl AttestationFormat {
    /// Classifies a media type (or an artifactType). Case-insensitive,
    /// parameters other than a bundle's `version` ignored. Spellings read:
    /// `application/vnd.dev.sigstore.bundle+json;version=0.1|0.2|0.3`,
    /// `application/vnd.dev.sigstore.bundle.v0.1|v0.2|v0.3+json`,
    /// `application/vnd.dsse.envelope.v1+json`, `application/vnd.in-toto+json`.
    pub fn of_media_type(media_type: &str) -> Self {
        let lower = media_type.trim().to_ascii_lowercase();
        let mut parts = lower.split(';');
        let essence = parts.next().unwrap_or("").trim();
        let params: Vec<(&str, &str)> = parts
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
            .collect();
        const BUNDLE: &str = "application/vnd.dev.sigstore.bundle";
        if essence == "application/vnd.dsse.envelope.v1+json" {
            return Self::DsseEnvelope;
        }
        if essence == IN_TOTO_JSON {
            return Self::InTotoStatement;
        }
        let Some(rest) = essence.strip_prefix(BUNDLE) else {
            return Self::NotAttestation;
        };
        if rest == "+json" {
            let version = params
                .iter()
                .find(|(k, _)| *k == "version")
                .and_then(|(_, v)| SigstoreBundleVersion::parse(v));
            return Self::SigstoreBundle { version };
        }
        match rest
            .strip_prefix(".v")
            .and_then(|r| r.strip_suffix("+json"))
        {
            Some(v) => Self::SigstoreBundle {
                version: SigstoreBundleVersion::parse(v),
            },
            None => Self::NotAttestation,
        }
    }

    /// Classifies a JSON document by its shape, for layers whose media type
    /// says nothing (see [`is_generic_layer_type`]): a sigstore bundle has a
    /// bundle `mediaType` and `verificationMaterial`; a DSSE envelope has
    /// `payloadType`, `payload` and `signatures`; an in-toto Statement has
    /// an in-toto `_type`. Anything else, including non-JSON, is
    /// [`AttestationFormat::NotAttestation`]. Nothing is verified here.
    pub fn of_content(bytes: &[u8]) -> Self {
        let Ok(serde_json::Value::Object(v)) = serde_json::from_slice(bytes) else {
            return Self::NotAttestation;
        };
        if v.contains_key("verificationMaterial") {
            if let Some(mt) = v.get("mediaType").and_then(|m| m.as_str())
                && let f @ Self::SigstoreBundle { .. } = Self::of_media_type(mt)
            {
                return f;
            }
            return Self::NotAttestation;
        }
        if ["payloadType", "payload", "signatures"]
            .iter()
            .all(|k| v.contains_key(*k))
        {
            return Self::DsseEnvelope;
        }
        let in_toto = v
            .get("_type")
            .and_then(|t| t.as_str())
            .is_some_and(|t| t.starts_with("https://in-toto.io/Statement/"));
        if in_toto {
            return Self::InTotoStatement;
        }
        Self::NotAttestation
    }

    /// Any attestation format, signed or not.
    pub fn is_attestation(self) -> bool {
        self != Self::NotAttestation
    }

    /// A signed container: a sigstore bundle or a DSSE envelope.
    pub fn is_signed(self) -> bool {
        matches!(self, Self::SigstoreBundle { .. } | Self::DsseEnvelope)
    }

    /// The media type to hand a verifier for this format (the bundle
    /// spelling of its version; v0.3 for an unknown version).
    pub fn canonical_media_type(self) -> Option<&'static str> {
        match self {
            Self::SigstoreBundle {
                version: Some(SigstoreBundleVersion::V0_1),
            } => Some(SIGSTORE_BUNDLE_V01),
            Self::SigstoreBundle {
                version: Some(SigstoreBundleVersion::V0_2),
            } => Some(SIGSTORE_BUNDLE_V02),
            Self::SigstoreBundle { .. } => Some(SIGSTORE_BUNDLE_V03),
            Self::DsseEnvelope => Some(DSSE_ENVELOPE),
            Self::InTotoStatement => Some(IN_TOTO_JSON),
            Self::NotAttestation => None,
        }
    }
}

/// Shorthand for `AttestationFormat::of_media_type(mt).is_attestation()`.
pub fn is_attestation_media_type(mt: &str) -> bool {
    AttestationFormat::of_media_type(mt).is_attestation()
}

/// True for a layer media type that says nothing about its content (see
/// [`GENERIC_LAYER_TYPES`]; an empty type counts too).
pub fn is_generic_layer_type(mt: &str) -> bool {
    let essence = mt.split(';').next().unwrap_or("").trim();
    essence.is_empty()
        || GENERIC_LAYER_TYPES
            .iter()
            .any(|g| g.eq_ignore_ascii_case(essence))
}

/// Generic layers read by content per referrer, at most.
pub const MAX_GENERIC_LAYERS: usize = 4;

/// A layer chosen as (possibly) holding an attestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationLayer {
    pub descriptor: crate::Descriptor,
    /// The format its media type declares; `NotAttestation` for a generic
    /// layer picked because of the manifest's `artifactType`, whose format
    /// is then decided by its content ([`AttestationFormat::of_content`]).
    pub declared: AttestationFormat,
}

impl AttestationLayer {
    /// Picked for its content rather than its media type.
    pub fn by_content(&self) -> bool {
        !self.declared.is_attestation()
    }
}

/// The layers of a referrer manifest that hold an attestation, given its
/// artifact type (the listing's, else the manifest's own). A layer counts
/// when its media type is an attestation format; when none is but the
/// artifact type says sigstore bundle or DSSE envelope, the layers of a
/// generic type (what `oras attach` and other generic clients default to)
/// are picked, at most [`MAX_GENERIC_LAYERS`], to be read by content.
pub fn attestation_layers(
    manifest: &crate::ImageManifest,
    artifact_type: &str,
) -> Vec<AttestationLayer> {
    let declared: Vec<AttestationLayer> = manifest
        .layers
        .iter()
        .filter_map(|l| {
            let f = AttestationFormat::of_media_type(&l.media_type);
            f.is_attestation().then(|| AttestationLayer {
                descriptor: l.clone(),
                declared: f,
            })
        })
        .collect();
    if !declared.is_empty() || !AttestationFormat::of_media_type(artifact_type).is_signed() {
        return declared;
    }
    manifest
        .layers
        .iter()
        .filter(|l| is_generic_layer_type(&l.media_type))
        .take(MAX_GENERIC_LAYERS)
        .map(|l| AttestationLayer {
            descriptor: l.clone(),
            declared: AttestationFormat::NotAttestation,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Descriptor, Digest, ImageManifest};

    fn manifest(layers: &[&str]) -> ImageManifest {
        let json = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_EMPTY, "digest": EMPTY_JSON_DIGEST, "size": 2},
            "layers": layers.iter().enumerate().map(|(i, mt)| {
                let d = Descriptor::for_bytes(*mt, i.to_string().as_bytes());
                serde_json::to_value(d).unwrap_or_default()
            }).collect::<Vec<_>>(),
        });
        serde_json::from_value(json).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn declared_layers_win() {
        let m = manifest(&[OCI_LAYER_TAR, DSSE_ENVELOPE]);
        let picked = attestation_layers(&m, DSSE_ENVELOPE);
        assert_eq!(picked.len(), 1);
        assert_eq!(picked[0].declared, AttestationFormat::DsseEnvelope);
        assert!(!picked[0].by_content());
    }

    #[test]
    fn generic_layers_read_by_content_only_under_a_signed_artifact_type() {
        let m = manifest(&[
            OCI_LAYER_TAR,
            "application/octet-stream",
            "application/spdx+json",
        ]);
        let picked = attestation_layers(&m, SIGSTORE_BUNDLE_V03);
        assert_eq!(picked.len(), 2);
        assert!(picked.iter().all(AttestationLayer::by_content));
        assert!(attestation_layers(&m, "application/spdx+json").is_empty());
        assert!(attestation_layers(&m, IN_TOTO_JSON).is_empty());
        assert!(attestation_layers(&m, "").is_empty());
    }

    #[test]
    fn generic_layers_are_capped() {
        let m = manifest(&["application/octet-stream"; 10]);
        assert_eq!(
            attestation_layers(&m, DSSE_ENVELOPE).len(),
            MAX_GENERIC_LAYERS
        );
    }

    fn bundle(v: SigstoreBundleVersion) -> AttestationFormat {
        AttestationFormat::SigstoreBundle { version: Some(v) }
    }

    /// Every media type Stella reads, with the one answer for each.
    #[test]
    fn classifies_every_media_type_we_read() {
        use AttestationFormat::*;
        use SigstoreBundleVersion::*;
        let cases: &[(&str, AttestationFormat)] = &[
            (
                "application/vnd.dev.sigstore.bundle+json;version=0.1",
                bundle(V0_1),
            ),
            (
                "application/vnd.dev.sigstore.bundle+json;version=0.2",
                bundle(V0_2),
            ),
            (
                "application/vnd.dev.sigstore.bundle+json;version=0.3",
                bundle(V0_3),
            ),
            (
                "application/vnd.dev.sigstore.bundle+json; version=0.3",
                bundle(V0_3),
            ),
            (
                "application/vnd.dev.sigstore.bundle+json;version=\"0.2\"",
                bundle(V0_2),
            ),
            (
                "application/vnd.dev.sigstore.bundle.v0.1+json",
                bundle(V0_1),
            ),
            (
                "application/vnd.dev.sigstore.bundle.v0.2+json",
                bundle(V0_2),
            ),
            (
                "application/vnd.dev.sigstore.bundle.v0.3+json",
                bundle(V0_3),
            ),
            (
                "Application/Vnd.Dev.Sigstore.Bundle.v0.3+JSON",
                bundle(V0_3),
            ),
            (
                "application/vnd.dev.sigstore.bundle.v0.4+json",
                SigstoreBundle { version: None },
            ),
            (
                "application/vnd.dev.sigstore.bundle+json",
                SigstoreBundle { version: None },
            ),
            ("application/vnd.dsse.envelope.v1+json", DsseEnvelope),
            (
                "application/vnd.dsse.envelope.v1+json; charset=utf-8",
                DsseEnvelope,
            ),
            ("application/vnd.in-toto+json", InTotoStatement),
            // Not attestations: transparency-log material, cosign simple
            // signing payloads, documents, image content, near misses.
            (
                "application/vnd.dev.sigstore.rekor.entry+json",
                NotAttestation,
            ),
            ("application/vnd.dev.sigstore.bundlex+json", NotAttestation),
            ("application/vnd.dev.sigstore.bundle.v0.3", NotAttestation),
            (
                "application/vnd.dev.cosign.simplesigning.v1+json",
                NotAttestation,
            ),
            ("application/vnd.dsse.envelope.v2+json", NotAttestation),
            ("application/spdx+json", NotAttestation),
            ("application/vnd.cyclonedx+json", NotAttestation),
            ("application/openvex+json", NotAttestation),
            (OCI_LAYER_TAR, NotAttestation),
            (OCI_MANIFEST, NotAttestation),
            ("application/octet-stream", NotAttestation),
            ("", NotAttestation),
        ];
        for (mt, want) in cases {
            assert_eq!(AttestationFormat::of_media_type(mt), *want, "{mt:?}");
        }
        assert!(AttestationFormat::DsseEnvelope.is_signed());
        assert!(!AttestationFormat::InTotoStatement.is_signed());
        assert!(AttestationFormat::InTotoStatement.is_attestation());
        assert!(is_attestation_media_type(SIGSTORE_BUNDLE_V03));
        assert!(!is_attestation_media_type("application/spdx+json"));
    }

    #[test]
    fn canonical_media_types_classify_back() {
        use SigstoreBundleVersion::*;
        for f in [
            bundle(V0_1),
            bundle(V0_2),
            bundle(V0_3),
            AttestationFormat::DsseEnvelope,
            AttestationFormat::InTotoStatement,
        ] {
            let mt = f.canonical_media_type().unwrap_or_default();
            assert_eq!(AttestationFormat::of_media_type(mt), f, "{mt}");
        }
        assert_eq!(
            AttestationFormat::NotAttestation.canonical_media_type(),
            None
        );
    }

    #[test]
    fn classifies_content() {
        use AttestationFormat::*;
        let cases: &[(&[u8], AttestationFormat)] = &[
            (
                br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{},"dsseEnvelope":{}}"#,
                bundle(SigstoreBundleVersion::V0_3),
            ),
            (
                br#"{"mediaType":"application/vnd.dev.sigstore.bundle+json;version=0.1","verificationMaterial":{}}"#,
                bundle(SigstoreBundleVersion::V0_1),
            ),
            (
                br#"{"mediaType":"application/spdx+json","verificationMaterial":{}}"#,
                NotAttestation,
            ),
            (
                br#"{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}"#,
                DsseEnvelope,
            ),
            (
                br#"{"_type":"https://in-toto.io/Statement/v1","subject":[]}"#,
                InTotoStatement,
            ),
            (br#"{"spdxVersion":"SPDX-2.3"}"#, NotAttestation),
            (br#"["payloadType"]"#, NotAttestation),
            (b"\x1f\x8b\x08 binary", NotAttestation),
            (b"", NotAttestation),
        ];
        for (bytes, want) in cases {
            assert_eq!(
                AttestationFormat::of_content(bytes),
                *want,
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn generic_layer_types() {
        for mt in [
            OCI_LAYER_TAR,
            "application/octet-stream",
            "Application/Octet-Stream",
            "application/json",
            "",
        ] {
            assert!(is_generic_layer_type(mt), "{mt:?}");
        }
        for mt in [
            DSSE_ENVELOPE,
            SIGSTORE_BUNDLE_V03,
            OCI_LAYER_TAR_GZIP,
            "application/spdx+json",
        ] {
            assert!(!is_generic_layer_type(mt), "{mt:?}");
        }
    }

    #[test]
    fn empty_json_digest_is_right() {
        assert_eq!(Digest::sha256_of(EMPTY_JSON).to_string(), EMPTY_JSON_DIGEST);
    }
}
