//! Building and signing an attestation: in-toto Statement v1 (canonical
//! JSON) → DSSE envelope (payloadType `application/vnd.in-toto+json`) →
//! sigstore bundle. No I/O; pushing is the caller's job.

use serde_json::Value;
use stella_crypto::PrivateKey;
use stella_crypto::x509::Certificate;
use stella_types::Digest;

use crate::AttestError;
use crate::bundle::{Bundle, SignerMaterial};
use crate::dsse::Envelope;
use crate::statement::Statement;

/// The DSSE payloadType of in-toto statements.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// A signed attestation ready to push.
#[derive(Debug, Clone)]
pub struct SignedAttestation {
    /// The statement that was signed.
    pub statement: Statement,
    /// The bundle.
    pub bundle: Bundle,
    /// Canonical bundle JSON (the referrer layer).
    pub bundle_json: Vec<u8>,
    /// The bundle media type (use it as the referrer artifactType and layer mediaType).
    pub media_type: String,
}

/// The key hint stella writes (bundle `publicKey.hint` and DSSE `keyid`):
/// lowercase hex SHA-256 of the SPKI DER. Only a hint: never decides trust.
pub fn key_hint(key: &stella_crypto::PublicKey) -> String {
    key.keyid()
}

/// Signs a statement about `subject_digest` (named `subject_name`).
///
/// With `certificates` (leaf first, then intermediates) the leaf's public key
/// must be the signing key's; without, the bundle names the key by hint.
pub fn attest(
    subject_name: &str,
    subject_digest: &Digest,
    predicate_type: &str,
    predicate: Value,
    key: &PrivateKey,
    certificates: &[Certificate],
) -> Result<SignedAttestation, AttestError> {
    let statement = Statement::new_v1(subject_name, subject_digest, predicate_type, predicate);
    statement.validate()?;
    let payload = statement.to_canonical_json()?;
    let signer = if let Some(leaf) = certificates.first() {
        if leaf.public_key()?.spki_der() != key.public_key().spki_der() {
            return Err(AttestError::Untrusted(
                "the certificate's public key is not the signing key's".into(),
            ));
        }
        SignerMaterial::Certificates(certificates.iter().map(|c| c.der().to_vec()).collect())
    } else {
        SignerMaterial::PublicKey {
            hint: Some(key_hint(key.public_key())),
        }
    };
    let envelope = Envelope::sign(
        IN_TOTO_PAYLOAD_TYPE,
        payload,
        key,
        Some(key_hint(key.public_key())),
    )?;
    let bundle = Bundle::new(envelope, signer);
    let bundle_json = bundle.to_json()?;
    Ok(SignedAttestation {
        statement,
        media_type: bundle.media_type.clone(),
        bundle,
        bundle_json,
    })
}
