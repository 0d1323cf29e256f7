//! The default backend, on aws-lc-rs (AWS-LC: the same optimized P-256 code as
//! OpenSSL/BoringSSL). Implements the traits of [`crate::provider`] (and
//! depends on them, never the reverse); knows nothing about DSSE,
//! certificates or files.

use std::num::NonZeroU32;
use std::sync::Arc;

use aws_lc_rs::cipher::{
    AES_128, AES_256, DecryptionContext, PaddedBlockDecryptingKey, UnboundCipherKey,
};
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as sig, KeyPair, ParsedPublicKey, UnparsedPublicKey};

use crate::provider::{
    CryptoProvider, HashAlgorithm, KeyBackend, KeyWrapCipher, PbeBackend, SigningKey, VerifyingKey,
};
use crate::{CryptoError, KeyKind, SignatureAlgorithm};

/// The aws-lc-rs provider.
pub static PROVIDER: CryptoProvider = CryptoProvider {
    name: "aws-lc-rs",
    keys: &AwsLcKeys,
    pbe: &AwsLcPbe,
};

#[derive(Debug)]
struct AwsLcKeys;
#[derive(Debug)]
struct AwsLcPbe;

/// A verifying key. ECDSA keys are parsed once, for the curve's own hash in
/// both signature encodings; another hash (X.509 and CMS pair them freely)
/// parses the key again per call. RSA keys are kept as SPKI bytes and parsed
/// per algorithm (rarely used).
#[derive(Debug)]
enum AwsVerifying {
    Ecdsa {
        kind: KeyKind,
        spki: Vec<u8>,
        asn1: ParsedPublicKey,
        fixed: ParsedPublicKey,
    },
    Ed25519(ParsedPublicKey),
    Rsa(Vec<u8>),
}

/// The curve's own hash and the (ASN.1, fixed) algorithms for it.
fn ecdsa_default(
    kind: KeyKind,
) -> Option<(
    HashAlgorithm,
    &'static sig::EcdsaVerificationAlgorithm,
    &'static sig::EcdsaVerificationAlgorithm,
)> {
    Some(match kind {
        KeyKind::EcdsaP256 => (
            HashAlgorithm::Sha256,
            &sig::ECDSA_P256_SHA256_ASN1,
            &sig::ECDSA_P256_SHA256_FIXED,
        ),
        KeyKind::EcdsaP384 => (
            HashAlgorithm::Sha384,
            &sig::ECDSA_P384_SHA384_ASN1,
            &sig::ECDSA_P384_SHA384_FIXED,
        ),
        KeyKind::EcdsaP521 => (
            HashAlgorithm::Sha512,
            &sig::ECDSA_P521_SHA512_ASN1,
            &sig::ECDSA_P521_SHA512_FIXED,
        ),
        _ => return None,
    })
}

/// ASN.1-encoded ECDSA verification for a curve and any SHA-2 hash.
fn ecdsa_asn1(
    kind: KeyKind,
    hash: HashAlgorithm,
) -> Option<&'static sig::EcdsaVerificationAlgorithm> {
    use HashAlgorithm as H;
    Some(match (kind, hash) {
        (KeyKind::EcdsaP256, H::Sha256) => &sig::ECDSA_P256_SHA256_ASN1,
        (KeyKind::EcdsaP256, H::Sha384) => &sig::ECDSA_P256_SHA384_ASN1,
        (KeyKind::EcdsaP256, H::Sha512) => &sig::ECDSA_P256_SHA512_ASN1,
        (KeyKind::EcdsaP384, H::Sha256) => &sig::ECDSA_P384_SHA256_ASN1,
        (KeyKind::EcdsaP384, H::Sha384) => &sig::ECDSA_P384_SHA384_ASN1,
        (KeyKind::EcdsaP384, H::Sha512) => &sig::ECDSA_P384_SHA512_ASN1,
        (KeyKind::EcdsaP521, H::Sha256) => &sig::ECDSA_P521_SHA256_ASN1,
        (KeyKind::EcdsaP521, H::Sha384) => &sig::ECDSA_P521_SHA384_ASN1,
        (KeyKind::EcdsaP521, H::Sha512) => &sig::ECDSA_P521_SHA512_ASN1,
        _ => return None,
    })
}

/// The hash an ECDSA algorithm asks of a key of `kind`; `None` when the
/// algorithm does not fit the key (e.g. ES384 with a P-256 key).
fn ecdsa_hash(kind: KeyKind, alg: SignatureAlgorithm) -> Option<HashAlgorithm> {
    use SignatureAlgorithm as A;
    match (kind, alg) {
        (KeyKind::EcdsaP256, A::EcdsaP256Sha256)
        | (KeyKind::EcdsaP384, A::EcdsaP384Sha384)
        | (KeyKind::EcdsaP521, A::EcdsaP521Sha512)
        | (_, A::EcdsaSha256 | A::EcdsaSha384 | A::EcdsaSha512) => alg.hash(),
        _ => None,
    }
}

fn rsa_params(alg: SignatureAlgorithm) -> Option<&'static sig::RsaParameters> {
    use SignatureAlgorithm as A;
    Some(match alg {
        A::RsaPkcs1Sha256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        A::RsaPkcs1Sha384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        A::RsaPkcs1Sha512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        A::RsaPssSha256 => &sig::RSA_PSS_2048_8192_SHA256,
        A::RsaPssSha384 => &sig::RSA_PSS_2048_8192_SHA384,
        A::RsaPssSha512 => &sig::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

fn import_digest(
    hash: HashAlgorithm,
    digest: &[u8],
) -> Result<aws_lc_rs::digest::Digest, CryptoError> {
    use aws_lc_rs::digest;
    let alg = match hash {
        HashAlgorithm::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
        HashAlgorithm::Sha256 => &digest::SHA256,
        HashAlgorithm::Sha384 => &digest::SHA384,
        HashAlgorithm::Sha512 => &digest::SHA512,
    };
    digest::Digest::import_less_safe(digest, alg).map_err(|_| CryptoError::BadSignature)
}

fn rejected(e: impl std::fmt::Display) -> CryptoError {
    CryptoError::MalformedKey(e.to_string())
}

impl KeyBackend for AwsLcKeys {
    fn parse_public(
        &self,
        spki_der: &[u8],
        kind: KeyKind,
    ) -> Result<Arc<dyn VerifyingKey>, CryptoError> {
        let key = match kind {
            KeyKind::EcdsaP256 | KeyKind::EcdsaP384 | KeyKind::EcdsaP521 => {
                let (_, asn1, fixed) = ecdsa_default(kind).ok_or_else(|| {
                    CryptoError::UnsupportedAlgorithm(format!("{kind} is not an ECDSA key"))
                })?;
                AwsVerifying::Ecdsa {
                    kind,
                    spki: spki_der.to_vec(),
                    asn1: ParsedPublicKey::new(asn1, spki_der).map_err(rejected)?,
                    fixed: ParsedPublicKey::new(fixed, spki_der).map_err(rejected)?,
                }
            }
            KeyKind::Ed25519 => AwsVerifying::Ed25519(
                ParsedPublicKey::new(&sig::ED25519, spki_der).map_err(rejected)?,
            ),
            KeyKind::Rsa { .. } => {
                // Validate once so a malformed key is reported at load time.
                ParsedPublicKey::new(&sig::RSA_PKCS1_2048_8192_SHA256, spki_der)
                    .or_else(|_| {
                        ParsedPublicKey::new(
                            &sig::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
                            spki_der,
                        )
                    })
                    .map_err(rejected)?;
                AwsVerifying::Rsa(spki_der.to_vec())
            }
        };
        Ok(Arc::new(key))
    }

    fn load_pkcs8(&self, der: &[u8]) -> Result<Arc<dyn SigningKey>, CryptoError> {
        if let Ok(k) = sig::EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, der) {
            return Ok(Arc::new(AwsSigning::Ecdsa(KeyKind::EcdsaP256, k)));
        }
        if let Ok(k) = sig::EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P384_SHA384_ASN1_SIGNING, der) {
            return Ok(Arc::new(AwsSigning::Ecdsa(KeyKind::EcdsaP384, k)));
        }
        if let Ok(k) = sig::EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P521_SHA512_ASN1_SIGNING, der) {
            return Ok(Arc::new(AwsSigning::Ecdsa(KeyKind::EcdsaP521, k)));
        }
        if let Ok(k) = sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            return Ok(Arc::new(AwsSigning::Ed25519(k)));
        }
        if let Ok(k) = sig::RsaKeyPair::from_pkcs8(der) {
            let bits = k.public_modulus_len() * 8;
            return Ok(Arc::new(AwsSigning::Rsa(bits, k)));
        }
        Err(CryptoError::MalformedKey(
            "not a supported PKCS#8 private key (ECDSA P-256/P-384/P-521, Ed25519, RSA)".into(),
        ))
    }

    fn load_sec1(&self, der: &[u8]) -> Result<Arc<dyn SigningKey>, CryptoError> {
        if let Ok(k) =
            sig::EcdsaKeyPair::from_private_key_der(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, der)
        {
            return Ok(Arc::new(AwsSigning::Ecdsa(KeyKind::EcdsaP256, k)));
        }
        if let Ok(k) =
            sig::EcdsaKeyPair::from_private_key_der(&sig::ECDSA_P384_SHA384_ASN1_SIGNING, der)
        {
            return Ok(Arc::new(AwsSigning::Ecdsa(KeyKind::EcdsaP384, k)));
        }
        if let Ok(k) =
            sig::EcdsaKeyPair::from_private_key_der(&sig::ECDSA_P521_SHA512_ASN1_SIGNING, der)
        {
            return Ok(Arc::new(AwsSigning::Ecdsa(KeyKind::EcdsaP521, k)));
        }
        Err(CryptoError::MalformedKey(
            "not a P-256, P-384 or P-521 EC PRIVATE KEY".into(),
        ))
    }

    fn generate(&self, kind: KeyKind) -> Result<Arc<dyn SigningKey>, CryptoError> {
        let backend = |e: aws_lc_rs::error::Unspecified| CryptoError::Backend(e.to_string());
        Ok(match kind {
            KeyKind::EcdsaP256 => Arc::new(AwsSigning::Ecdsa(
                kind,
                sig::EcdsaKeyPair::generate(&sig::ECDSA_P256_SHA256_ASN1_SIGNING)
                    .map_err(backend)?,
            )),
            KeyKind::EcdsaP384 => Arc::new(AwsSigning::Ecdsa(
                kind,
                sig::EcdsaKeyPair::generate(&sig::ECDSA_P384_SHA384_ASN1_SIGNING)
                    .map_err(backend)?,
            )),
            KeyKind::EcdsaP521 => Arc::new(AwsSigning::Ecdsa(
                kind,
                sig::EcdsaKeyPair::generate(&sig::ECDSA_P521_SHA512_ASN1_SIGNING)
                    .map_err(backend)?,
            )),
            KeyKind::Ed25519 => Arc::new(AwsSigning::Ed25519(
                sig::Ed25519KeyPair::generate().map_err(backend)?,
            )),
            KeyKind::Rsa { bits } => {
                let size = match bits {
                    2048 => aws_lc_rs::rsa::KeySize::Rsa2048,
                    3072 => aws_lc_rs::rsa::KeySize::Rsa3072,
                    4096 => aws_lc_rs::rsa::KeySize::Rsa4096,
                    other => {
                        return Err(CryptoError::UnsupportedAlgorithm(format!(
                            "RSA key size {other}"
                        )));
                    }
                };
                Arc::new(AwsSigning::Rsa(
                    bits,
                    sig::RsaKeyPair::generate(size).map_err(backend)?,
                ))
            }
        })
    }
}

impl AwsVerifying {
    fn mismatch(alg: SignatureAlgorithm) -> CryptoError {
        CryptoError::UnsupportedAlgorithm(format!("{alg} does not fit this key type"))
    }

    fn verify_ecdsa(
        kind: KeyKind,
        spki: &[u8],
        (asn1, fixed): (&ParsedPublicKey, &ParsedPublicKey),
        alg: SignatureAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        let hash = ecdsa_hash(kind, alg).ok_or_else(|| Self::mismatch(alg))?;
        let (own_hash, _, _) = ecdsa_default(kind).ok_or_else(|| Self::mismatch(alg))?;
        if hash != own_hash {
            // Another hash than the curve's own: ASN.1 DER signatures only.
            let other = ecdsa_asn1(kind, hash).ok_or_else(|| Self::mismatch(alg))?;
            return UnparsedPublicKey::new(other, spki)
                .verify(message, signature)
                .map_err(|_| CryptoError::BadSignature);
        }
        let field = match kind {
            KeyKind::EcdsaP256 => 32,
            KeyKind::EcdsaP384 => 48,
            _ => 66,
        };
        if signature.len() == 2 * field {
            if fixed.verify_sig(message, signature).is_ok() {
                return Ok(());
            }
            // A DER signature can, rarely, be exactly 2×field long.
            if signature.first() == Some(&0x30) && asn1.verify_sig(message, signature).is_ok() {
                return Ok(());
            }
            return Err(CryptoError::BadSignature);
        }
        if signature.first() != Some(&0x30) || signature.len() < 8 {
            return Err(CryptoError::MalformedSignature(format!(
                "ECDSA signature of {} bytes is neither ASN.1 DER nor raw r||s",
                signature.len()
            )));
        }
        asn1.verify_sig(message, signature)
            .map_err(|_| CryptoError::BadSignature)
    }
}

impl VerifyingKey for AwsVerifying {
    fn verify(
        &self,
        alg: SignatureAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        match self {
            AwsVerifying::Ecdsa {
                kind,
                spki,
                asn1,
                fixed,
            } => Self::verify_ecdsa(*kind, spki, (asn1, fixed), alg, message, signature),
            AwsVerifying::Ed25519(k) => {
                if alg != SignatureAlgorithm::Ed25519 {
                    return Err(Self::mismatch(alg));
                }
                if signature.len() != 64 {
                    return Err(CryptoError::MalformedSignature(format!(
                        "Ed25519 signature must be 64 bytes, got {}",
                        signature.len()
                    )));
                }
                k.verify_sig(message, signature)
                    .map_err(|_| CryptoError::BadSignature)
            }
            AwsVerifying::Rsa(spki) => {
                let params = rsa_params(alg).ok_or_else(|| Self::mismatch(alg))?;
                UnparsedPublicKey::new(params, spki)
                    .verify(message, signature)
                    .map_err(|_| CryptoError::BadSignature)
            }
        }
    }

    fn verify_prehashed(
        &self,
        alg: SignatureAlgorithm,
        digest: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        match self {
            AwsVerifying::Ecdsa {
                kind, spki, asn1, ..
            } => {
                let hash = ecdsa_hash(*kind, alg).ok_or_else(|| Self::mismatch(alg))?;
                let d = import_digest(hash, digest)?;
                let verified = match ecdsa_default(*kind) {
                    Some((own, _, _)) if own == hash => asn1.verify_digest_sig(&d, signature),
                    _ => {
                        let other = ecdsa_asn1(*kind, hash).ok_or_else(|| Self::mismatch(alg))?;
                        UnparsedPublicKey::new(other, spki).verify_digest(&d, signature)
                    }
                };
                verified.map_err(|_| CryptoError::BadSignature)
            }
            AwsVerifying::Ed25519(_) => Err(CryptoError::UnsupportedAlgorithm(
                "an Ed25519 signature cannot be verified from a digest alone".into(),
            )),
            AwsVerifying::Rsa(spki) => {
                let params = rsa_params(alg).ok_or_else(|| Self::mismatch(alg))?;
                let hash = alg.hash().ok_or_else(|| Self::mismatch(alg))?;
                let d = import_digest(hash, digest)?;
                UnparsedPublicKey::new(params, spki)
                    .verify_digest(&d, signature)
                    .map_err(|_| CryptoError::BadSignature)
            }
        }
    }
}

#[derive(Debug)]
enum AwsSigning {
    Ecdsa(KeyKind, sig::EcdsaKeyPair),
    Ed25519(sig::Ed25519KeyPair),
    Rsa(usize, sig::RsaKeyPair),
}

impl SigningKey for AwsSigning {
    fn kind(&self) -> KeyKind {
        match self {
            AwsSigning::Ecdsa(kind, _) => *kind,
            AwsSigning::Ed25519(_) => KeyKind::Ed25519,
            AwsSigning::Rsa(bits, _) => KeyKind::Rsa { bits: *bits },
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let backend = |e: aws_lc_rs::error::Unspecified| CryptoError::Backend(e.to_string());
        let rng = SystemRandom::new();
        match self {
            AwsSigning::Ecdsa(_, k) => {
                Ok(k.sign(&rng, message).map_err(backend)?.as_ref().to_vec())
            }
            AwsSigning::Ed25519(k) => Ok(k.try_sign(message).map_err(backend)?.as_ref().to_vec()),
            AwsSigning::Rsa(_, k) => {
                let mut out = vec![0u8; k.public_modulus_len()];
                k.sign(&sig::RSA_PKCS1_SHA256, &rng, message, &mut out)
                    .map_err(backend)?;
                Ok(out)
            }
        }
    }

    fn public_spki_der(&self) -> Result<Vec<u8>, CryptoError> {
        let backend = |e: aws_lc_rs::error::Unspecified| CryptoError::Backend(e.to_string());
        let der: PublicKeyX509Der<'static> = match self {
            AwsSigning::Ecdsa(_, k) => k.public_key().as_der().map_err(backend)?,
            AwsSigning::Ed25519(k) => k.public_key().as_der().map_err(backend)?,
            AwsSigning::Rsa(_, k) => k.public_key().as_der().map_err(backend)?,
        };
        Ok(der.as_ref().to_vec())
    }

    fn to_pkcs8_der(&self) -> Result<Vec<u8>, CryptoError> {
        let backend = |e: aws_lc_rs::error::Unspecified| CryptoError::Backend(e.to_string());
        Ok(match self {
            AwsSigning::Ecdsa(_, k) => k.to_pkcs8v1().map_err(backend)?.as_ref().to_vec(),
            AwsSigning::Ed25519(k) => k.to_pkcs8v1().map_err(backend)?.as_ref().to_vec(),
            AwsSigning::Rsa(_, k) => {
                let der: Pkcs8V1Der<'static> = k.as_der().map_err(backend)?;
                der.as_ref().to_vec()
            }
        })
    }
}

impl PbeBackend for AwsLcPbe {
    fn pbkdf2(
        &self,
        prf: HashAlgorithm,
        password: &[u8],
        salt: &[u8],
        iterations: u32,
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        use aws_lc_rs::pbkdf2;
        let alg = match prf {
            HashAlgorithm::Sha1 => pbkdf2::PBKDF2_HMAC_SHA1,
            HashAlgorithm::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            HashAlgorithm::Sha384 => pbkdf2::PBKDF2_HMAC_SHA384,
            HashAlgorithm::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        };
        let iterations = NonZeroU32::new(iterations)
            .ok_or_else(|| CryptoError::MalformedKey("PBKDF2 iteration count is 0".into()))?;
        if out.is_empty() || out.len() > 64 {
            return Err(CryptoError::MalformedKey("bad PBKDF2 key length".into()));
        }
        pbkdf2::derive(alg, iterations, salt, password, out);
        Ok(())
    }

    fn cbc_decrypt(
        &self,
        cipher: KeyWrapCipher,
        key: &[u8],
        iv: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let alg = match cipher {
            KeyWrapCipher::Aes128Cbc => &AES_128,
            KeyWrapCipher::Aes256Cbc => &AES_256,
        };
        let iv: [u8; 16] = iv
            .try_into()
            .map_err(|_| CryptoError::MalformedKey("AES-CBC IV must be 16 bytes".into()))?;
        if data.is_empty() || !data.len().is_multiple_of(16) {
            return Err(CryptoError::MalformedKey(
                "encrypted key length is not a multiple of the AES block".into(),
            ));
        }
        let unbound = UnboundCipherKey::new(alg, key)
            .map_err(|_| CryptoError::MalformedKey("bad AES key length".into()))?;
        let dk = PaddedBlockDecryptingKey::cbc_pkcs7(unbound)
            .map_err(|e| CryptoError::Backend(e.to_string()))?;
        let mut buf = data.to_vec();
        let plain = dk
            .decrypt(&mut buf, DecryptionContext::Iv128(FixedLength::from(iv)))
            .map_err(|_| CryptoError::WrongPassphrase)?;
        Ok(plain.to_vec())
    }
}
