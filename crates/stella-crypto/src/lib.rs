//! Crypto provider: key loading (PEM, PKCS#8 plain and PBES2-encrypted, SPKI,
//! bare PKCS#1 RSA public keys, SEC1), signing and verification (also over a
//! precomputed digest; ECDSA with the hash the signature algorithm names)
//! behind one provider struct ([`CryptoProvider`], rustls-style) with an
//! aws-lc-rs default backend, plus the one X.509 chain validator shared by
//! the organisation-PKI and sigstore verifiers.
//!
//! Does not: talk to the network, read files, know about DSSE or OCI, or
//! hash (`stella_types::digest` is the one hashing path; [`sha256`] is a
//! thin alias kept for callers).

#![forbid(unsafe_code)]

mod backend;
mod error;
mod keys;
pub mod oids;
pub mod pem;
mod pkcs8enc;
pub mod provider;
pub mod x509;

pub use backend::default_provider;
pub use error::CryptoError;
pub use keys::{
    KeyKind, PrivateKey, PublicKey, SignatureAlgorithm, classify_spki, default_algorithm,
};
pub use provider::{CryptoProvider, HashAlgorithm};

/// SHA-256 of `data` (through `stella_types::digest`, the one hashing path).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    stella_types::digest::sha256_bytes(data)
}
