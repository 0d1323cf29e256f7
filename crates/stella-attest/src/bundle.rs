//! Sigstore bundles (protobuf-specs `sigstore_bundle.proto`, JSON encoding)
//! carrying a DSSE envelope signed by a key or an organisation certificate.
//!
//! Written: v0.3 (`application/vnd.dev.sigstore.bundle.v0.3+json`, what
//! cosign's new bundle format uses) with `verificationMaterial.publicKey.hint`
//! for key signatures or `verificationMaterial.certificate.rawBytes` (the leaf
//! only, as v0.3 requires). When the signer also gives intermediate CA
//! certificates, stella writes a **v0.2** bundle
//! (`application/vnd.dev.sigstore.bundle+json;version=0.2`) whose
//! `x509CertificateChain.certificates` holds leaf then intermediates, because
//! v0.3 forbids the chain form; both are read by sigstore clients.
//! `tlogEntries` is empty: key/PKI attestations are not logged.
//!
//! Read: v0.1, v0.2, v0.3 with a `dsseEnvelope`. Transparency-log entries and
//! timestamps in the bundle are not verified here (that is stella-sigstore's
//! job); a bundle is only as trusted as its key or certificate chain.

use serde::{Deserialize, Serialize};
use stella_types::limits::MAX_JSON_DOCUMENT_BYTES;
use stella_types::media_types::{AttestationFormat, SigstoreBundleVersion};

use crate::AttestError;
use crate::dsse::{Envelope, WireEnvelope, decode_base64, encode_base64};

/// v0.3 bundle media type (also the referrer artifactType).
pub const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// v0.2 bundle media type.
pub const BUNDLE_V02: &str = "application/vnd.dev.sigstore.bundle+json;version=0.2";
/// v0.1 bundle media type.
pub const BUNDLE_V01: &str = "application/vnd.dev.sigstore.bundle+json;version=0.1";

/// True for any sigstore bundle media type stella reads (every spelling of
/// v0.1–v0.3; see [`AttestationFormat::of_media_type`], the one classifier).
pub fn is_bundle_media_type(mt: &str) -> bool {
    matches!(
        AttestationFormat::of_media_type(mt),
        AttestationFormat::SigstoreBundle { version: Some(_) }
    )
}

fn is_v03(mt: &str) -> bool {
    AttestationFormat::of_media_type(mt)
        == AttestationFormat::SigstoreBundle {
            version: Some(SigstoreBundleVersion::V0_3),
        }
}

/// How the signer is identified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerMaterial {
    /// A public key known out of band; `hint` is unauthenticated.
    PublicKey {
        /// The hint (stella writes the lowercase hex SHA-256 of the SPKI DER).
        hint: Option<String>,
    },
    /// A certificate chain, leaf first (DER).
    Certificates(Vec<Vec<u8>>),
}

/// A parsed bundle with a DSSE envelope.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The bundle mediaType.
    pub media_type: String,
    /// Key or certificates.
    pub signer: SignerMaterial,
    /// Number of transparency-log entries present (not verified here).
    pub tlog_entries: usize,
    /// The envelope.
    pub envelope: Envelope,
}

#[derive(Serialize, Deserialize, Default)]
struct WireRaw {
    #[serde(rename = "rawBytes")]
    raw_bytes: String,
}

#[derive(Serialize, Deserialize, Default)]
struct WireChain {
    #[serde(default)]
    certificates: Vec<WireRaw>,
}

#[derive(Serialize, Deserialize, Default)]
struct WireHint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
}

#[derive(Serialize, Deserialize, Default)]
struct WireMaterial {
    #[serde(rename = "publicKey", default, skip_serializing_if = "Option::is_none")]
    public_key: Option<WireHint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    certificate: Option<WireRaw>,
    #[serde(
        rename = "x509CertificateChain",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    chain: Option<WireChain>,
    #[serde(rename = "tlogEntries", default)]
    tlog_entries: Vec<serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
struct WireBundle {
    #[serde(rename = "mediaType")]
    media_type: String,
    #[serde(rename = "verificationMaterial")]
    verification_material: WireMaterial,
    #[serde(
        rename = "dsseEnvelope",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    dsse_envelope: Option<WireEnvelope>,
    #[serde(
        rename = "messageSignature",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    message_signature: Option<serde_json::Value>,
}

fn malformed(detail: impl Into<String>) -> AttestError {
    AttestError::Malformed {
        what: "sigstore bundle",
        detail: detail.into(),
    }
}

impl Bundle {
    /// Parses bundle JSON (cap MAX_JSON_DOCUMENT_BYTES).
    pub fn parse(json: &[u8]) -> Result<Self, AttestError> {
        if json.len() as u64 > MAX_JSON_DOCUMENT_BYTES {
            return Err(AttestError::TooLarge {
                what: "sigstore bundle",
                size: json.len() as u64,
                cap: MAX_JSON_DOCUMENT_BYTES,
            });
        }
        let wire: WireBundle =
            serde_json::from_slice(json).map_err(|e| malformed(format!("not bundle JSON: {e}")))?;
        if !is_bundle_media_type(&wire.media_type) {
            return Err(malformed(format!(
                "unsupported bundle mediaType {:?}",
                wire.media_type
            )));
        }
        let env = match (wire.dsse_envelope, wire.message_signature) {
            (Some(e), _) => e,
            (None, Some(_)) => {
                return Err(malformed(
                    "bundle holds a message signature, not a DSSE attestation",
                ));
            }
            (None, None) => return Err(malformed("bundle has no dsseEnvelope")),
        };
        let envelope = Envelope::from_wire(env)?;
        let vm = wire.verification_material;
        let signer = match (vm.public_key, vm.certificate, vm.chain) {
            (Some(h), None, None) => SignerMaterial::PublicKey { hint: h.hint },
            (None, Some(c), None) => SignerMaterial::Certificates(vec![
                decode_base64(&c.raw_bytes)
                    .map_err(|e| malformed(format!("certificate is not base64: {e}")))?,
            ]),
            (None, None, Some(chain)) => {
                if chain.certificates.is_empty() {
                    return Err(malformed("empty x509CertificateChain"));
                }
                if chain.certificates.len() > stella_crypto::x509::MAX_CHAIN_CERTS {
                    return Err(malformed("x509CertificateChain too long"));
                }
                if is_v03(&wire.media_type) {
                    return Err(malformed(
                        "v0.3 bundles must carry the leaf in certificate, not x509CertificateChain",
                    ));
                }
                SignerMaterial::Certificates(
                    chain
                        .certificates
                        .iter()
                        .map(|c| decode_base64(&c.raw_bytes))
                        .collect::<Result<_, _>>()
                        .map_err(|e| malformed(format!("certificate is not base64: {e}")))?,
                )
            }
            (None, None, None) => {
                return Err(malformed(
                    "verificationMaterial names no key or certificate",
                ));
            }
            _ => {
                return Err(malformed(
                    "verificationMaterial has more than one of publicKey, certificate, x509CertificateChain",
                ));
            }
        };
        Ok(Bundle {
            media_type: wire.media_type,
            signer,
            tlog_entries: vm.tlog_entries.len(),
            envelope,
        })
    }

    /// Builds the bundle for a signed envelope: v0.3 unless more than one
    /// certificate is given (then v0.2 with x509CertificateChain).
    pub fn new(envelope: Envelope, signer: SignerMaterial) -> Self {
        let media_type = match &signer {
            SignerMaterial::Certificates(c) if c.len() > 1 => BUNDLE_V02,
            _ => BUNDLE_V03,
        };
        Bundle {
            media_type: media_type.to_string(),
            signer,
            tlog_entries: 0,
            envelope,
        }
    }

    /// Canonical JSON of the bundle.
    pub fn to_json(&self) -> Result<Vec<u8>, AttestError> {
        let mut vm = WireMaterial::default();
        match &self.signer {
            SignerMaterial::PublicKey { hint } => {
                vm.public_key = Some(WireHint { hint: hint.clone() })
            }
            SignerMaterial::Certificates(certs) if certs.len() == 1 && is_v03(&self.media_type) => {
                vm.certificate = certs.first().map(|c| WireRaw {
                    raw_bytes: encode_base64(c),
                });
            }
            SignerMaterial::Certificates(certs) => {
                vm.chain = Some(WireChain {
                    certificates: certs
                        .iter()
                        .map(|c| WireRaw {
                            raw_bytes: encode_base64(c),
                        })
                        .collect(),
                })
            }
        }
        let wire = WireBundle {
            media_type: self.media_type.clone(),
            verification_material: vm,
            dsse_envelope: Some(self.envelope.to_wire()),
            message_signature: None,
        };
        stella_types::canonical_json::to_canonical_vec(&wire)
            .map_err(|e| AttestError::Encode(e.to_string()))
    }
}
