//! Content digests (`<algorithm>:<hex>`) and a reader that checks one as it streams.
//!
//! Only `sha256` and `sha512` are accepted, as the OCI image spec registers
//! them; the encoded part must be lowercase hex of the right length. This
//! module does not fetch content; it only names and checks it.

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256, Sha512};

/// A digest algorithm registered by the OCI image spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DigestAlgorithm {
    Sha256,
    Sha512,
}

impl DigestAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "sha256",
            DigestAlgorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            DigestAlgorithm::Sha256 => 64,
            DigestAlgorithm::Sha512 => 128,
        }
    }
}

/// Why a string is not a valid digest, or content does not match one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DigestError {
    #[error("digest {0:?} has no ':' between algorithm and value")]
    MissingSeparator(String),
    #[error("digest algorithm {0:?} is not supported (use sha256 or sha512)")]
    UnsupportedAlgorithm(String),
    #[error("digest {0:?} is not lowercase hex of the right length")]
    BadEncoding(String),
    #[error("content digest mismatch: expected {expected}, got {actual}")]
    Mismatch { expected: String, actual: String },
    #[error("content size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch { expected: u64, actual: u64 },
}

/// A validated content digest such as `sha256:9f86d0...`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: DigestAlgorithm,
    hex: String,
}

impl Digest {
    /// Parses and validates `<algorithm>:<lowercase hex>`.
    pub fn parse(s: &str) -> Result<Self, DigestError> {
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| DigestError::MissingSeparator(s.to_string()))?;
        let algorithm = match alg {
            "sha256" => DigestAlgorithm::Sha256,
            "sha512" => DigestAlgorithm::Sha512,
            other => return Err(DigestError::UnsupportedAlgorithm(other.to_string())),
        };
        let ok = hex.len() == algorithm.hex_len()
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !ok {
            return Err(DigestError::BadEncoding(s.to_string()));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }

    /// The SHA-256 digest of `data`.
    pub fn sha256_of(data: &[u8]) -> Self {
        Digest {
            algorithm: DigestAlgorithm::Sha256,
            hex: hex::encode(Sha256::digest(data)),
        }
    }

    /// The digest of `data` with this digest's algorithm.
    pub fn same_algorithm_of(&self, data: &[u8]) -> Self {
        let mut h = Hasher::new(self.algorithm);
        h.update(data);
        h.finish()
    }

    /// Checks `data` against this digest.
    pub fn verify(&self, data: &[u8]) -> Result<(), DigestError> {
        let actual = self.same_algorithm_of(data);
        if &actual == self {
            Ok(())
        } else {
            Err(DigestError::Mismatch {
                expected: self.to_string(),
                actual: actual.to_string(),
            })
        }
    }

    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The encoded (hex) part, without the algorithm.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The referrers tag schema tag for this digest: `<alg>-<hex>`, cut to
    /// the 128 characters a tag may have.
    pub fn referrers_tag(&self) -> String {
        let mut tag = format!("{}-{}", self.algorithm.as_str(), self.hex);
        tag.truncate(128);
        tag
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An incremental hasher for one digest algorithm.
#[derive(Clone)]
pub enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    pub fn new(algorithm: DigestAlgorithm) -> Self {
        match algorithm {
            DigestAlgorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            DigestAlgorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub fn finish(self) -> Digest {
        match self {
            Hasher::Sha256(h) => Digest {
                algorithm: DigestAlgorithm::Sha256,
                hex: hex::encode(h.finalize()),
            },
            Hasher::Sha512(h) => Digest {
                algorithm: DigestAlgorithm::Sha512,
                hex: hex::encode(h.finalize()),
            },
        }
    }
}

/// SHA-256 of `data` as raw bytes: the one SHA-256 every Stella crate uses
/// for content digests, Merkle hashes, key IDs and DSSE bindings.
pub fn sha256_bytes(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// SHA-256 over the concatenation of `parts`, without copying them together
/// (RFC 6962 Merkle nodes, signed-note key IDs).
pub fn sha256_concat(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// SHA-384 of `data` as raw bytes (sigstore artifacts and timestamps).
pub fn sha384_bytes(data: &[u8]) -> [u8; 48] {
    sha2::Sha384::digest(data).into()
}

/// SHA-512 of `data` as raw bytes.
pub fn sha512_bytes(data: &[u8]) -> [u8; 64] {
    Sha512::digest(data).into()
}

/// Wraps a reader and checks, as bytes stream through, that the content
/// has exactly the expected size and digest.
///
/// It fails with `InvalidData` as soon as more bytes than expected arrive,
/// and at end of stream if the size or digest is wrong, so a caller that
/// reads to the end never accepts bad content. The wrapped
/// [`DigestError`] is available through `io::Error::get_ref`.
pub struct VerifyingReader<R> {
    inner: R,
    expected: Digest,
    expected_size: u64,
    seen: u64,
    hasher: Option<Hasher>,
}

impl<R: Read> VerifyingReader<R> {
    pub fn new(inner: R, expected: Digest, expected_size: u64) -> Self {
        let hasher = Some(Hasher::new(expected.algorithm()));
        VerifyingReader {
            inner,
            expected,
            expected_size,
            seen: 0,
            hasher,
        }
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.seen
    }
}

fn invalid(e: DigestError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.seen += n as u64;
        if self.seen > self.expected_size {
            return Err(invalid(DigestError::SizeMismatch {
                expected: self.expected_size,
                actual: self.seen,
            }));
        }
        if n > 0 {
            if let Some(h) = self.hasher.as_mut() {
                h.update(&buf[..n]);
            }
            return Ok(n);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        // End of stream: check exactly once.
        if let Some(h) = self.hasher.take() {
            if self.seen != self.expected_size {
                return Err(invalid(DigestError::SizeMismatch {
                    expected: self.expected_size,
                    actual: self.seen,
                }));
            }
            let actual = h.finish();
            if actual != self.expected {
                return Err(invalid(DigestError::Mismatch {
                    expected: self.expected.to_string(),
                    actual: actual.to_string(),
                }));
            }
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_displays() {
        let d = Digest::parse(EMPTY).unwrap();
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(d, Digest::sha256_of(b""));
        assert_eq!(d.referrers_tag(), EMPTY.replace(':', "-"));
    }

    #[test]
    fn rejects_bad_digests() {
        assert!(matches!(
            Digest::parse("sha256"),
            Err(DigestError::MissingSeparator(_))
        ));
        assert!(matches!(
            Digest::parse("md5:abc"),
            Err(DigestError::UnsupportedAlgorithm(_))
        ));
        assert!(matches!(
            Digest::parse("sha256:ABC"),
            Err(DigestError::BadEncoding(_))
        ));
        let upper = EMPTY.to_uppercase().replace("SHA256", "sha256");
        assert!(matches!(
            Digest::parse(&upper),
            Err(DigestError::BadEncoding(_))
        ));
    }

    #[test]
    fn verifying_reader_accepts_good_and_rejects_bad() {
        let data = b"hello world".to_vec();
        let d = Digest::sha256_of(&data);
        let mut out = Vec::new();
        VerifyingReader::new(&data[..], d.clone(), 11)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);

        let err = VerifyingReader::new(&b"hello worle"[..], d.clone(), 11)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("digest mismatch"), "{err}");

        let err = VerifyingReader::new(&data[..], d.clone(), 10)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("size mismatch"), "{err}");

        let err = VerifyingReader::new(&data[..], d, 12)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("size mismatch"), "{err}");
    }

    #[test]
    fn raw_hash_helpers_match_known_answers() {
        // FIPS 180-2 "abc" test vectors.
        assert_eq!(
            hex::encode(super::sha256_bytes(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            super::sha256_concat(&[b"a", b"", b"bc"]),
            super::sha256_bytes(b"abc")
        );
        assert_eq!(
            hex::encode(super::sha384_bytes(b"abc")),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"
        );
        assert_eq!(
            hex::encode(super::sha512_bytes(b"abc")),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
    }
}
