//! The crypto provider: a plain struct of `&'static dyn` trait objects (the
//! rustls pattern), so a FIPS or regional backend can be plugged in later
//! without touching callers. [`crate::default_provider`] (assembled in
//! `backend`) returns the aws-lc-rs backend.
//!
//! Callers normally go through [`crate::PublicKey`] / [`crate::PrivateKey`],
//! which take a provider explicitly in their `*_with` constructors and use the
//! default otherwise. This module defines only the seams and depends on no
//! backend; it holds no key logic. Hashing is not a provider capability:
//! every Stella crate hashes through `stella_types::digest` (sha2).

use std::fmt::Debug;
use std::sync::Arc;

use crate::{CryptoError, KeyKind, SignatureAlgorithm};

/// Hash functions named by signature algorithms and key-encryption PRFs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HashAlgorithm {
    /// SHA-1 (only for legacy PBKDF2 PRFs; never for signatures).
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

/// Block ciphers used by PKCS#5 PBES2 key encryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyWrapCipher {
    /// AES-128-CBC with PKCS#7 padding.
    Aes128Cbc,
    /// AES-256-CBC with PKCS#7 padding.
    Aes256Cbc,
}

/// A parsed public key ready to verify signatures (parsed once, verified many times).
pub trait VerifyingKey: Send + Sync + Debug {
    /// Verifies `signature` over `message` (the backend hashes as `alg` says).
    fn verify(
        &self,
        alg: SignatureAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError>;
    /// Verifies `signature` over a `digest` already computed with `alg`'s
    /// hash (ECDSA and RSA; Ed25519 is `UnsupportedAlgorithm`).
    fn verify_prehashed(
        &self,
        alg: SignatureAlgorithm,
        digest: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError>;
}

/// A loaded private key.
pub trait SigningKey: Send + Sync + Debug {
    /// The key kind.
    fn kind(&self) -> KeyKind;
    /// Signs `message` with the key's default algorithm (ECDSA: ASN.1 DER signature).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError>;
    /// The public half as SubjectPublicKeyInfo DER.
    fn public_spki_der(&self) -> Result<Vec<u8>, CryptoError>;
    /// The key as unencrypted PKCS#8 v1 DER.
    fn to_pkcs8_der(&self) -> Result<Vec<u8>, CryptoError>;
}

/// Key parsing, generation and signing.
pub trait KeyBackend: Send + Sync + Debug {
    /// Parses a SubjectPublicKeyInfo already classified as `kind`.
    fn parse_public(
        &self,
        spki_der: &[u8],
        kind: KeyKind,
    ) -> Result<Arc<dyn VerifyingKey>, CryptoError>;
    /// Loads an unencrypted PKCS#8 private key (kind detected by the backend).
    fn load_pkcs8(&self, der: &[u8]) -> Result<Arc<dyn SigningKey>, CryptoError>;
    /// Loads an RFC 5915 / SEC1 `EC PRIVATE KEY`.
    fn load_sec1(&self, der: &[u8]) -> Result<Arc<dyn SigningKey>, CryptoError>;
    /// Generates a fresh key of `kind`.
    fn generate(&self, kind: KeyKind) -> Result<Arc<dyn SigningKey>, CryptoError>;
}

/// Primitives for password-based key encryption (PKCS#5 PBES2).
pub trait PbeBackend: Send + Sync + Debug {
    /// PBKDF2 with HMAC-`prf`, filling `out`.
    fn pbkdf2(
        &self,
        prf: HashAlgorithm,
        password: &[u8],
        salt: &[u8],
        iterations: u32,
        out: &mut [u8],
    ) -> Result<(), CryptoError>;
    /// Decrypts CBC + PKCS#7 padding; a padding error is reported as `WrongPassphrase`.
    fn cbc_decrypt(
        &self,
        cipher: KeyWrapCipher,
        key: &[u8],
        iv: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, CryptoError>;
}

/// A crypto provider: one struct, one field per capability.
#[derive(Debug, Clone, Copy)]
pub struct CryptoProvider {
    /// Human-readable backend name (shown in reports, e.g. `aws-lc-rs`).
    pub name: &'static str,
    /// Key parsing, generation, signing and verification.
    pub keys: &'static dyn KeyBackend,
    /// Password-based encryption primitives.
    pub pbe: &'static dyn PbeBackend,
}
