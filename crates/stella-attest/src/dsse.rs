//! DSSE envelopes (Dead Simple Signing Envelope v1,
//! <https://github.com/secure-systems-lab/dsse/blob/master/protocol.md>):
//! pre-authentication encoding, parsing with size caps, signing, verifying.
//!
//! Parsing accepts standard and URL-safe base64, padded or not (protobuf-JSON
//! encoders emit either); serialising writes standard padded base64. `keyid`
//! is kept as a hint only and never decides trust. Does not know about
//! in-toto statements or bundles.

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::{Deserialize, Serialize};
use stella_crypto::{PrivateKey, PublicKey};
use stella_types::limits::{MAX_DSSE_PAYLOAD_BYTES, MAX_JSON_DOCUMENT_BYTES};

use crate::AttestError;

/// Most signatures read from one envelope (more is hostile).
pub const MAX_SIGNATURES: usize = 64;

const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(false);
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// Decodes standard or URL-safe base64, padded or unpadded.
pub fn decode_base64(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
    if s.contains(['-', '_']) {
        URL_SAFE_LENIENT.decode(s)
    } else {
        STANDARD_LENIENT.decode(s)
    }
}

/// Standard padded base64.
pub fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// DSSE pre-authentication encoding (shared implementation in stella-types).
pub use stella_types::dsse::pae;

/// One signature of an envelope (decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Unauthenticated hint.
    pub keyid: Option<String>,
    /// Signature bytes.
    pub sig: Vec<u8>,
}

/// A parsed envelope. `payload` holds the decoded bytes that are signed and
/// later parsed: the same bytes, never re-encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// payloadType.
    pub payload_type: String,
    /// Decoded payload.
    pub payload: Vec<u8>,
    /// Decoded signatures.
    pub signatures: Vec<Signature>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct WireSignature {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) keyid: Option<String>,
    pub(crate) sig: String,
}

/// The JSON form of an envelope (base64 strings).
#[derive(Serialize, Deserialize)]
pub(crate) struct WireEnvelope {
    pub(crate) payload: String,
    #[serde(rename = "payloadType")]
    pub(crate) payload_type: String,
    pub(crate) signatures: Vec<WireSignature>,
}

fn malformed(detail: impl Into<String>) -> AttestError {
    AttestError::Malformed {
        what: "DSSE envelope",
        detail: detail.into(),
    }
}

impl Envelope {
    /// Parses envelope JSON (caps: MAX_JSON_DOCUMENT_BYTES for the document,
    /// MAX_DSSE_PAYLOAD_BYTES for the payload, MAX_SIGNATURES).
    pub fn parse(json: &[u8]) -> Result<Self, AttestError> {
        if json.len() as u64 > MAX_JSON_DOCUMENT_BYTES {
            return Err(AttestError::TooLarge {
                what: "DSSE envelope",
                size: json.len() as u64,
                cap: MAX_JSON_DOCUMENT_BYTES,
            });
        }
        let wire: WireEnvelope = serde_json::from_slice(json)
            .map_err(|e| malformed(format!("not envelope JSON: {e}")))?;
        Self::from_wire(wire)
    }

    pub(crate) fn from_wire(wire: WireEnvelope) -> Result<Self, AttestError> {
        // base64 expands 3 bytes to 4: reject before decoding.
        if (wire.payload.len() as u64) / 4 * 3 > MAX_DSSE_PAYLOAD_BYTES {
            return Err(AttestError::TooLarge {
                what: "DSSE payload",
                size: (wire.payload.len() as u64) / 4 * 3,
                cap: MAX_DSSE_PAYLOAD_BYTES,
            });
        }
        let payload = decode_base64(&wire.payload)
            .map_err(|e| malformed(format!("payload is not base64: {e}")))?;
        if wire.signatures.len() > MAX_SIGNATURES {
            return Err(malformed(format!(
                "{} signatures (limit {MAX_SIGNATURES})",
                wire.signatures.len()
            )));
        }
        let mut signatures = Vec::with_capacity(wire.signatures.len());
        for s in wire.signatures {
            let sig = decode_base64(&s.sig)
                .map_err(|e| malformed(format!("signature is not base64: {e}")))?;
            if sig.is_empty() {
                return Err(malformed("empty signature"));
            }
            signatures.push(Signature {
                keyid: s.keyid,
                sig,
            });
        }
        Ok(Envelope {
            payload_type: wire.payload_type,
            payload,
            signatures,
        })
    }

    pub(crate) fn to_wire(&self) -> WireEnvelope {
        WireEnvelope {
            payload: encode_base64(&self.payload),
            payload_type: self.payload_type.clone(),
            signatures: self
                .signatures
                .iter()
                .map(|s| WireSignature {
                    keyid: s.keyid.clone(),
                    sig: encode_base64(&s.sig),
                })
                .collect(),
        }
    }

    /// Canonical JSON of the envelope.
    pub fn to_json(&self) -> Result<Vec<u8>, AttestError> {
        stella_types::canonical_json::to_canonical_vec(&self.to_wire())
            .map_err(|e| AttestError::Encode(e.to_string()))
    }

    /// Signs `payload` with `key` over PAE; `keyid` is an optional hint.
    pub fn sign(
        payload_type: &str,
        payload: Vec<u8>,
        key: &PrivateKey,
        keyid: Option<String>,
    ) -> Result<Self, AttestError> {
        let sig = key.sign(&pae(payload_type, &payload))?;
        Ok(Envelope {
            payload_type: payload_type.to_string(),
            payload,
            signatures: vec![Signature { keyid, sig }],
        })
    }

    /// The decoded payload (the bytes that are signed and later parsed).
    pub fn payload_bytes(&self) -> &[u8] {
        &self.payload
    }

    /// The bytes signatures cover.
    pub fn pae(&self) -> Vec<u8> {
        pae(&self.payload_type, &self.payload)
    }

    /// Verifies one signature under one key.
    pub fn verify_signature(&self, index: usize, key: &PublicKey) -> Result<(), AttestError> {
        let sig = self
            .signatures
            .get(index)
            .ok_or(AttestError::SignatureCount(self.signatures.len()))?;
        key.verify(key.default_algorithm(), &self.pae(), &sig.sig)?;
        Ok(())
    }

    /// Sigstore/stella rule: exactly one signature, verified by one of `keys`
    /// (the keyid hint is ignored). Returns the index of the key that verified.
    pub fn verify_single(&self, keys: &[PublicKey]) -> Result<usize, AttestError> {
        if self.signatures.len() != 1 {
            return Err(AttestError::SignatureCount(self.signatures.len()));
        }
        let sig = self
            .signatures
            .first()
            .ok_or(AttestError::SignatureCount(0))?;
        let pae = self.pae();
        let mut last = None;
        for (i, key) in keys.iter().enumerate() {
            match key.verify(key.default_algorithm(), &pae, &sig.sig) {
                Ok(()) => return Ok(i),
                Err(e) => last = Some(e),
            }
        }
        let which = if keys.len() == 1 {
            "the given key".to_string()
        } else {
            format!("any of the {} given keys", keys.len())
        };
        Err(AttestError::Untrusted(match last {
            Some(stella_crypto::CryptoError::MalformedSignature(d)) => {
                format!("signature does not verify with {which} (malformed: {d})")
            }
            Some(stella_crypto::CryptoError::UnsupportedAlgorithm(d)) => {
                format!("signature does not verify with {which} ({d})")
            }
            Some(_) => format!("signature does not verify with {which}"),
            None => "no trusted key given".into(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_alphabets() {
        assert_eq!(decode_base64("-_8=").ok(), Some(vec![0xfb, 0xff]));
        assert_eq!(decode_base64("+/8=").ok(), Some(vec![0xfb, 0xff]));
        assert_eq!(decode_base64("+/8").ok(), Some(vec![0xfb, 0xff]));
        assert!(decode_base64("!!!").is_err());
    }

    #[test]
    fn zero_and_many_signatures_rejected() -> Result<(), Box<dyn std::error::Error>> {
        let key = PrivateKey::generate(stella_crypto::KeyKind::EcdsaP256)?;
        let mut env = Envelope::sign("t", b"p".to_vec(), &key, None)?;
        let pubs = vec![key.public_key().clone()];
        assert_eq!(env.verify_single(&pubs).ok(), Some(0));
        let extra = env.signatures[0].clone();
        env.signatures.push(extra);
        assert!(matches!(
            env.verify_single(&pubs),
            Err(AttestError::SignatureCount(2))
        ));
        env.signatures.clear();
        assert!(matches!(
            env.verify_single(&pubs),
            Err(AttestError::SignatureCount(0))
        ));
        Ok(())
    }
}
