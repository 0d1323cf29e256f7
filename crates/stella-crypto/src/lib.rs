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

pub use error::CryptoError;
pub use keys::{
    KeyKind, PrivateKey, PublicKey, SignatureAlgorithm, classify_spki, default_algorithm,
};
pub use provider::{CryptoProvider, default_provider};

/// SHA-256 of `data` with the default provider.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let v = default_provider()
        .hash
        .digest(provider::HashAlgorithm::Sha256, data);
    let mut out = [0u8; 32];
    if v.len() == 32 {
        out.copy_from_slice(&v);
    }
    out
}
