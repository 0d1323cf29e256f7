//! The hash algorithms sigstore names for artifacts, message digests, log
//! bodies and RFC 3161 imprints (SHA-256/384/512). Hashing goes through
//! `stella_types::digest` (sha2), the one hashing path of Stella; this module
//! only names algorithms and maps them to OIDs and to stella-crypto.

use const_oid::ObjectIdentifier;
use stella_crypto::HashAlgorithm;
use stella_crypto::oids;
use stella_types::digest::{sha256_bytes, sha384_bytes, sha512_bytes};

/// A SHA-2 hash named by a sigstore bundle, log entry or timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    /// The digest of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            HashAlg::Sha256 => sha256_bytes(data).to_vec(),
            HashAlg::Sha384 => sha384_bytes(data).to_vec(),
            HashAlg::Sha512 => sha512_bytes(data).to_vec(),
        }
    }

    /// The algorithm of a `id-sha256` / `id-sha384` / `id-sha512` OID.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<HashAlg> {
        if *oid == oids::SHA256 {
            Some(HashAlg::Sha256)
        } else if *oid == oids::SHA384 {
            Some(HashAlg::Sha384)
        } else if *oid == oids::SHA512 {
            Some(HashAlg::Sha512)
        } else {
            None
        }
    }

    /// Digest length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// Lowercase name as in-toto subjects and Rekor bodies spell it.
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha256 => "sha256",
            HashAlg::Sha384 => "sha384",
            HashAlg::Sha512 => "sha512",
        }
    }

    /// Parses `sha256`, `SHA2_256`, `sha2-256` and the like.
    pub fn from_name(s: &str) -> Option<HashAlg> {
        match s.to_ascii_lowercase().replace(['_', '-'], "").as_str() {
            "sha256" | "sha2256" => Some(HashAlg::Sha256),
            "sha384" | "sha2384" => Some(HashAlg::Sha384),
            "sha512" | "sha2512" => Some(HashAlg::Sha512),
            _ => None,
        }
    }

    /// The same algorithm in stella-crypto's vocabulary.
    pub fn to_crypto(self) -> HashAlgorithm {
        match self {
            HashAlg::Sha256 => HashAlgorithm::Sha256,
            HashAlg::Sha384 => HashAlgorithm::Sha384,
            HashAlg::Sha512 => HashAlgorithm::Sha512,
        }
    }

    /// From stella-crypto's vocabulary (SHA-1 has no place in sigstore).
    pub fn from_crypto(h: HashAlgorithm) -> Option<HashAlg> {
        match h {
            HashAlgorithm::Sha256 => Some(HashAlg::Sha256),
            HashAlgorithm::Sha384 => Some(HashAlg::Sha384),
            HashAlgorithm::Sha512 => Some(HashAlg::Sha512),
            _ => None,
        }
    }
}
