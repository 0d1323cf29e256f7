//! Crypto provider: key loading (PEM, PKCS#8 plain and PBES2-encrypted, SPKI,
//! SEC1), signing and verification behind one provider struct
//! ([`CryptoProvider`], rustls-style) with an aws-lc-rs default backend, plus
//! X.509 chain validation shared by the PKI and sigstore verifiers.
//!
//! Does not: talk to the network, read files, know about DSSE or OCI.

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
