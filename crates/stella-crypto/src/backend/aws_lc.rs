//! The default backend, on aws-lc-rs (AWS-LC: the same optimized P-256 code as
//! OpenSSL/BoringSSL). Implements the traits of [`crate::provider`]; knows
//! nothing about DSSE, certificates or files.

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
    CryptoProvider, HashAlgorithm, HashBackend, KeyBackend, KeyWrapCipher, PbeBackend, SigningKey,
    VerifyingKey,
};
use crate::{CryptoError, KeyKind, SignatureAlgorithm};

/// The aws-lc-rs provider.
pub static PROVIDER: CryptoProvider = CryptoProvider {
    name: "aws-lc-rs",
    keys: &AwsLcKeys,
    hash: &AwsLcHash,
    pbe: &AwsLcPbe,
};

#[derive(Debug)]
struct AwsLcKeys;
#[derive(Debug)]
struct AwsLcHash;
#[derive(Debug)]
struct AwsLcPbe;

/// A verifying key: ECDSA keys are parsed once for both signature encodings;
/// RSA keys are kept as SPKI bytes and parsed per algorithm (rarely used).
#[derive(Debug)]
enum AwsVerifying {
    Ecdsa {
        kind: KeyKind,
        asn1: ParsedPublicKey,
        fixed: ParsedPublicKey,
    },
    Ed25519(ParsedPublicKey),
    Rsa(Vec<u8>),
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
            KeyKind::EcdsaP256 => AwsVerifying::Ecdsa {
                kind,
                asn1: ParsedPublicKey::new(&sig::ECDSA_P256_SHA256_ASN1, spki_der)
                    .map_err(rejected)?,
                fixed: ParsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, spki_der)
                    .map_err(rejected)?,
            },
            KeyKind::EcdsaP384 => AwsVerifying::Ecdsa {
                kind,
                asn1: ParsedPublicKey::new(&sig::ECDSA_P384_SHA384_ASN1, spki_der)
                    .map_err(rejected)?,
                fixed: ParsedPublicKey::new(&sig::ECDSA_P384_SHA384_FIXED, spki_der)
                    .map_err(rejected)?,
            },
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
        if let Ok(k) = sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            return Ok(Arc::new(AwsSigning::Ed25519(k)));
        }
        if let Ok(k) = sig::RsaKeyPair::from_pkcs8(der) {
            let bits = k.public_modulus_len() * 8;
            return Ok(Arc::new(AwsSigning::Rsa(bits, k)));
        }
        Err(CryptoError::MalformedKey(
            "not a supported PKCS#8 private key (ECDSA P-256/P-384, Ed25519, RSA)".into(),
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
        Err(CryptoError::MalformedKey(
            "not a P-256 or P-384 EC PRIVATE KEY".into(),
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

impl VerifyingKey for AwsVerifying {
    fn verify(
        &self,
        alg: SignatureAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        use SignatureAlgorithm as A;
        let mismatch =
            || CryptoError::UnsupportedAlgorithm(format!("{alg} does not fit this key type"));
        match self {
            AwsVerifying::Ecdsa { kind, asn1, fixed } => {
                let field = match (kind, alg) {
                    (KeyKind::EcdsaP256, A::EcdsaP256Sha256) => 32,
                    (KeyKind::EcdsaP384, A::EcdsaP384Sha384) => 48,
                    _ => return Err(mismatch()),
                };
                if signature.len() == 2 * field {
                    if fixed.verify_sig(message, signature).is_ok() {
                        return Ok(());
                    }
                    // A DER signature can, rarely, be exactly 2×field long.
                    if signature.first() == Some(&0x30)
                        && asn1.verify_sig(message, signature).is_ok()
                    {
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
            AwsVerifying::Ed25519(k) => {
                if alg != A::Ed25519 {
                    return Err(mismatch());
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
                let params: &'static sig::RsaParameters = match alg {
                    A::RsaPkcs1Sha256 => &sig::RSA_PKCS1_2048_8192_SHA256,
                    A::RsaPkcs1Sha384 => &sig::RSA_PKCS1_2048_8192_SHA384,
                    A::RsaPkcs1Sha512 => &sig::RSA_PKCS1_2048_8192_SHA512,
                    A::RsaPssSha256 => &sig::RSA_PSS_2048_8192_SHA256,
                    A::RsaPssSha384 => &sig::RSA_PSS_2048_8192_SHA384,
                    A::RsaPssSha512 => &sig::RSA_PSS_2048_8192_SHA512,
                    _ => return Err(mismatch()),
                };
                UnparsedPublicKey::new(params, spki)
                    .verify(message, signature)
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

impl HashBackend for AwsLcHash {
    fn digest(&self, alg: HashAlgorithm, data: &[u8]) -> Vec<u8> {
        use aws_lc_rs::digest;
        let a = match alg {
            HashAlgorithm::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            HashAlgorithm::Sha256 => &digest::SHA256,
            HashAlgorithm::Sha384 => &digest::SHA384,
            HashAlgorithm::Sha512 => &digest::SHA512,
        };
        digest::digest(a, data).as_ref().to_vec()
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
