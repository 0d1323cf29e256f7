//! Typed errors of the crypto layer, split by cause (malformed input, bad
//! signature, unsupported algorithm, bad passphrase, certificate problems,
//! caller misuse) so callers can map them to exit codes without reading strings.

/// Every error stella-crypto returns.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoError {
    /// The key bytes (PEM, PKCS#8, SPKI, SEC1) could not be parsed.
    #[error("malformed key: {0}")]
    MalformedKey(String),
    /// The signature bytes are not a well-formed signature for the algorithm
    /// (e.g. truncated DER); reported as a verification failure by callers.
    #[error("malformed signature: {0}")]
    MalformedSignature(String),
    /// The signature does not verify under the key.
    #[error("signature does not verify")]
    BadSignature,
    /// The key type or signature algorithm is not supported (or the algorithm
    /// does not fit the key).
    #[error("unsupported algorithm: {0}")]
    UnsupportedAlgorithm(String),
    /// An encrypted private key needs a passphrase and none was given.
    #[error("the private key is encrypted and no passphrase was given")]
    PassphraseRequired,
    /// The passphrase did not decrypt the private key.
    #[error("wrong passphrase or corrupt encrypted private key")]
    WrongPassphrase,
    /// A certificate could not be parsed.
    #[error("malformed certificate: {0}")]
    MalformedCertificate(String),
    /// A certificate chain did not validate.
    #[error("certificate rejected: {0}")]
    CertificateRejected(String),
    /// The backend failed in a way that is not the input's fault.
    #[error("crypto backend failure: {0}")]
    Backend(String),
}

impl CryptoError {
    /// True when the error means "the evidence does not verify" (as opposed to
    /// unusable input or an unsupported feature).
    pub fn is_verification_failure(&self) -> bool {
        matches!(
            self,
            CryptoError::BadSignature
                | CryptoError::MalformedSignature(_)
                | CryptoError::CertificateRejected(_)
        )
    }
}
