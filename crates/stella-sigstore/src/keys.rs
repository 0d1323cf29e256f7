//! Public keys and signature checks used by the verifier.
//!
//! A small private adapter over aws-lc-rs (the same backend as stella-crypto's
//! default provider) because sigstore needs operations the stella-crypto
//! skeleton does not expose: pre-hashed ECDSA verification (digest-only
//! artifacts), PKCS#1 RSA keys from trusted roots, and hash selection per
//! certificate signature algorithm. Parses SPKI; does not load private keys.

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};

use crate::der::{self, Reader};
use crate::error::SigstoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let alg = match self {
            HashAlg::Sha256 => &digest::SHA256,
            HashAlg::Sha384 => &digest::SHA384,
            HashAlg::Sha512 => &digest::SHA512,
        };
        digest::digest(alg, data).as_ref().to_vec()
    }
    pub fn from_oid(oid: &str) -> Option<HashAlg> {
        match oid {
            "2.16.840.1.101.3.4.2.1" => Some(HashAlg::Sha256),
            "2.16.840.1.101.3.4.2.2" => Some(HashAlg::Sha384),
            "2.16.840.1.101.3.4.2.3" => Some(HashAlg::Sha512),
            _ => None,
        }
    }
    pub fn output_len(self) -> usize {
        match self {
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    P256,
    P384,
    P521,
    Ed25519,
    Rsa,
}

/// A parsed public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub kind: KeyType,
    /// EC point, raw Ed25519 key, or PKCS#1 RSAPublicKey DER.
    raw: Vec<u8>,
    /// The SubjectPublicKeyInfo DER (empty for a bare PKCS#1 RSA key).
    pub spki: Vec<u8>,
}

fn bad_key(m: &str) -> SigstoreError {
    SigstoreError::unusable(format!("public key: {m}"))
}

impl PublicKey {
    pub fn from_spki_der(spki: &[u8]) -> Result<PublicKey, SigstoreError> {
        let seq = der::parse_one(spki, der::SEQUENCE)?;
        let mut r = seq.reader();
        let alg = r.read_tag(der::SEQUENCE)?;
        let bits = r.read_tag(der::BIT_STRING)?;
        r.finish()?;
        let mut ar = alg.reader();
        let oid = der::read_oid(&mut ar)?;
        let (&unused, key) = bits
            .value
            .split_first()
            .ok_or_else(|| bad_key("empty key"))?;
        if unused != 0 {
            return Err(bad_key("unaligned key bits"));
        }
        let kind = match oid.as_str() {
            "1.2.840.10045.2.1" => {
                let curve =
                    der::read_oid(&mut ar).map_err(|_| bad_key("EC key without named curve"))?;
                match curve.as_str() {
                    "1.2.840.10045.3.1.7" => KeyType::P256,
                    "1.3.132.0.34" => KeyType::P384,
                    "1.3.132.0.35" => KeyType::P521,
                    c => return Err(bad_key(&format!("unsupported curve {c}"))),
                }
            }
            "1.3.101.112" => KeyType::Ed25519,
            "1.2.840.113549.1.1.1" => KeyType::Rsa,
            o => return Err(bad_key(&format!("unsupported key algorithm {o}"))),
        };
        Ok(PublicKey {
            kind,
            raw: key.to_vec(),
            spki: spki.to_vec(),
        })
    }

    /// A bare PKCS#1 RSAPublicKey (trusted-root `PKCS1_RSA_*` key details).
    pub fn from_pkcs1_rsa(der_bytes: &[u8]) -> Result<PublicKey, SigstoreError> {
        der::parse_one(der_bytes, der::SEQUENCE)?;
        Ok(PublicKey {
            kind: KeyType::Rsa,
            raw: der_bytes.to_vec(),
            spki: Vec::new(),
        })
    }

    /// PEM `PUBLIC KEY` (SPKI).
    pub fn from_pem(pem: &str) -> Result<PublicKey, SigstoreError> {
        let der_bytes = pem_decode(pem, "PUBLIC KEY")?;
        PublicKey::from_spki_der(&der_bytes)
    }

    /// The hash sigstore pairs with this key for message signatures.
    pub fn default_hash(&self) -> HashAlg {
        match self.kind {
            KeyType::P384 => HashAlg::Sha384,
            KeyType::P521 => HashAlg::Sha512,
            _ => HashAlg::Sha256,
        }
    }

    fn algorithm(&self, hash: HashAlg) -> &'static dyn VerificationAlgorithm {
        match (self.kind, hash) {
            (KeyType::P256, HashAlg::Sha256) => &signature::ECDSA_P256_SHA256_ASN1,
            (KeyType::P256, HashAlg::Sha384) => &signature::ECDSA_P256_SHA384_ASN1,
            (KeyType::P256, HashAlg::Sha512) => &signature::ECDSA_P256_SHA512_ASN1,
            (KeyType::P384, HashAlg::Sha256) => &signature::ECDSA_P384_SHA256_ASN1,
            (KeyType::P384, HashAlg::Sha384) => &signature::ECDSA_P384_SHA384_ASN1,
            (KeyType::P384, HashAlg::Sha512) => &signature::ECDSA_P384_SHA512_ASN1,
            (KeyType::P521, HashAlg::Sha256) => &signature::ECDSA_P521_SHA256_ASN1,
            (KeyType::P521, HashAlg::Sha384) => &signature::ECDSA_P521_SHA384_ASN1,
            (KeyType::P521, HashAlg::Sha512) => &signature::ECDSA_P521_SHA512_ASN1,
            (KeyType::Ed25519, _) => &signature::ED25519,
            (KeyType::Rsa, HashAlg::Sha256) => &signature::RSA_PKCS1_2048_8192_SHA256,
            (KeyType::Rsa, HashAlg::Sha384) => &signature::RSA_PKCS1_2048_8192_SHA384,
            (KeyType::Rsa, HashAlg::Sha512) => &signature::RSA_PKCS1_2048_8192_SHA512,
        }
    }

    /// Verifies `sig` over `msg` (ECDSA: ASN.1 DER; RSA: PKCS#1 v1.5; Ed25519: pure).
    pub fn verify(&self, hash: HashAlg, msg: &[u8], sig: &[u8]) -> bool {
        UnparsedPublicKey::new(self.algorithm(hash), &self.raw)
            .verify(msg, sig)
            .is_ok()
    }

    /// RSASSA-PSS with MGF1 of the same hash.
    pub fn verify_pss(&self, hash: HashAlg, msg: &[u8], sig: &[u8]) -> bool {
        if self.kind != KeyType::Rsa {
            return false;
        }
        let alg: &'static dyn VerificationAlgorithm = match hash {
            HashAlg::Sha256 => &signature::RSA_PSS_2048_8192_SHA256,
            HashAlg::Sha384 => &signature::RSA_PSS_2048_8192_SHA384,
            HashAlg::Sha512 => &signature::RSA_PSS_2048_8192_SHA512,
        };
        UnparsedPublicKey::new(alg, &self.raw)
            .verify(msg, sig)
            .is_ok()
    }

    /// Verifies an ECDSA signature over an already computed digest. Ed25519
    /// cannot be verified from a digest; returns an error for it.
    pub fn verify_prehashed(
        &self,
        hash: HashAlg,
        digest_bytes: &[u8],
        sig: &[u8],
    ) -> Result<bool, SigstoreError> {
        if !matches!(
            self.kind,
            KeyType::P256 | KeyType::P384 | KeyType::P521 | KeyType::Rsa
        ) {
            return Err(SigstoreError::unusable(
                "an Ed25519 message signature cannot be verified from a digest alone; pass the artifact file",
            ));
        }
        let dalg = match hash {
            HashAlg::Sha256 => &digest::SHA256,
            HashAlg::Sha384 => &digest::SHA384,
            HashAlg::Sha512 => &digest::SHA512,
        };
        let Ok(d) = digest::Digest::import_less_safe(digest_bytes, dalg) else {
            return Ok(false);
        };
        Ok(UnparsedPublicKey::new(self.algorithm(hash), &self.raw)
            .verify_digest(&d, sig)
            .is_ok())
    }
}

/// Decodes the first PEM block with the given label.
pub fn pem_decode(pem: &str, label: &str) -> Result<Vec<u8>, SigstoreError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem
        .find(&begin)
        .ok_or_else(|| SigstoreError::unusable(format!("no PEM {label} block")))?;
    let rest = pem.get(start + begin.len()..).unwrap_or("");
    let stop = rest
        .find(&end)
        .ok_or_else(|| SigstoreError::unusable(format!("unterminated PEM {label} block")))?;
    let body: String = rest
        .get(..stop)
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    crate::b64::decode("PEM", &body)
}

/// Every PEM block with the given label.
pub fn pem_decode_all(pem: &str, label: &str) -> Result<Vec<Vec<u8>>, SigstoreError> {
    let begin = format!("-----BEGIN {label}-----");
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(i) = rest.find(&begin) {
        let tail = rest.get(i..).unwrap_or("");
        out.push(pem_decode(tail, label)?);
        rest = tail.get(begin.len()..).unwrap_or("");
    }
    Ok(out)
}

/// Reads an AlgorithmIdentifier (OID, raw parameters).
pub fn read_alg_id<'a>(
    r: &mut Reader<'a>,
) -> Result<(String, Option<der::Tlv<'a>>), SigstoreError> {
    let seq = r.read_tag(der::SEQUENCE)?;
    let mut sr = seq.reader();
    let oid = der::read_oid(&mut sr)?;
    let params = if sr.is_empty() {
        None
    } else {
        Some(sr.read()?)
    };
    Ok((oid, params))
}

/// Verifies an X.509/CMS-style signature given the signature algorithm OID.
/// `digest_hint` is the CMS digest algorithm, used when the OID names only the key type.
pub fn verify_by_oid(
    key: &PublicKey,
    sig_oid: &str,
    digest_hint: Option<HashAlg>,
    msg: &[u8],
    sig: &[u8],
) -> bool {
    let hash = match sig_oid {
        "1.2.840.10045.4.3.2" | "1.2.840.113549.1.1.11" => HashAlg::Sha256,
        "1.2.840.10045.4.3.3" | "1.2.840.113549.1.1.12" => HashAlg::Sha384,
        "1.2.840.10045.4.3.4" | "1.2.840.113549.1.1.13" => HashAlg::Sha512,
        "1.3.101.112" => HashAlg::Sha256,
        "1.2.840.113549.1.1.1" | "1.2.840.10045.2.1" => match digest_hint {
            Some(h) => h,
            None => return false,
        },
        "1.2.840.113549.1.1.10" => return digest_hint.is_some_and(|h| key.verify_pss(h, msg, sig)),
        _ => return false,
    };
    let family_ok = match sig_oid {
        "1.3.101.112" => key.kind == KeyType::Ed25519,
        o if o.starts_with("1.2.840.10045") => {
            matches!(key.kind, KeyType::P256 | KeyType::P384 | KeyType::P521)
        }
        _ => key.kind == KeyType::Rsa,
    };
    family_ok && key.verify(hash, msg, sig)
}
