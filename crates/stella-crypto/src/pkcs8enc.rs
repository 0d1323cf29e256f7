//! Decryption of `ENCRYPTED PRIVATE KEY` (PKCS#8 EncryptedPrivateKeyInfo,
//! RFC 5958) protected with PKCS#5 v2 PBES2 (RFC 8018): PBKDF2 with
//! HMAC-SHA1/256/384/512 and AES-128/256-CBC — what `openssl genpkey -aes256`
//! and `openssl pkcs8 -topk8 -v2 aes256` emit. scrypt and legacy PBES1 are
//! rejected as unsupported. The primitives come from the provider.

use der::{Decode, Reader, Tag};
use spki::AlgorithmIdentifierRef;

use crate::provider::{CryptoProvider, HashAlgorithm, KeyWrapCipher};
use crate::{CryptoError, oids};

/// Largest PBKDF2 iteration count accepted (bounds CPU spent on hostile files).
pub const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

fn bad(what: &str) -> impl Fn(der::Error) -> CryptoError + '_ {
    move |e| CryptoError::MalformedKey(format!("encrypted private key: {what}: {e}"))
}

/// Decrypts EncryptedPrivateKeyInfo DER to PrivateKeyInfo DER.
pub fn decrypt(
    provider: &CryptoProvider,
    der_bytes: &[u8],
    passphrase: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let mut reader = der::SliceReader::new(der_bytes).map_err(bad("structure"))?;
    let (alg, data): (AlgorithmIdentifierRef<'_>, &[u8]) = reader
        .sequence(|r| {
            let alg: AlgorithmIdentifierRef<'_> = r.decode()?;
            let data: &der::asn1::OctetStringRef = r.decode()?;
            Ok::<_, der::Error>((alg, data.as_bytes()))
        })
        .map_err(bad("structure"))?;
    if alg.oid != oids::PBES2 {
        return Err(CryptoError::UnsupportedAlgorithm(format!(
            "private key encryption scheme {} (only PBES2 is supported)",
            alg.oid
        )));
    }
    let params = alg
        .parameters
        .ok_or_else(|| CryptoError::MalformedKey("PBES2 without parameters".into()))?;
    let (kdf, enc): (AlgorithmIdentifierRef<'_>, AlgorithmIdentifierRef<'_>) = params
        .sequence(|r| Ok::<_, der::Error>((r.decode()?, r.decode()?)))
        .map_err(bad("PBES2 parameters"))?;
    if kdf.oid != oids::PBKDF2 {
        return Err(CryptoError::UnsupportedAlgorithm(format!(
            "key derivation function {} (only PBKDF2 is supported)",
            kdf.oid
        )));
    }
    let kdf_params = kdf
        .parameters
        .ok_or_else(|| CryptoError::MalformedKey("PBKDF2 without parameters".into()))?;
    let (salt, iterations, key_len, prf) = kdf_params
        .sequence(|r| {
            let salt: &der::asn1::OctetStringRef = r.decode()?;
            let iterations: u32 = r.decode()?;
            let mut key_len: Option<u32> = None;
            let mut prf: Option<AlgorithmIdentifierRef<'_>> = None;
            if !r.is_finished() && Tag::peek(r)? == Tag::Integer {
                key_len = Some(r.decode()?);
            }
            if !r.is_finished() {
                prf = Some(r.decode()?);
            }
            Ok::<_, der::Error>((salt.as_bytes(), iterations, key_len, prf))
        })
        .map_err(bad("PBKDF2 parameters"))?;
    if iterations == 0 || iterations > MAX_PBKDF2_ITERATIONS {
        return Err(CryptoError::MalformedKey(format!(
            "PBKDF2 iteration count {iterations} out of range"
        )));
    }
    let prf = match prf.map(|p| p.oid) {
        None => HashAlgorithm::Sha1,
        Some(o) if o == oids::HMAC_SHA1 => HashAlgorithm::Sha1,
        Some(o) if o == oids::HMAC_SHA256 => HashAlgorithm::Sha256,
        Some(o) if o == oids::HMAC_SHA384 => HashAlgorithm::Sha384,
        Some(o) if o == oids::HMAC_SHA512 => HashAlgorithm::Sha512,
        Some(o) => {
            return Err(CryptoError::UnsupportedAlgorithm(format!("PBKDF2 PRF {o}")));
        }
    };
    let (cipher, cipher_key_len) = if enc.oid == oids::AES256_CBC {
        (KeyWrapCipher::Aes256Cbc, 32usize)
    } else if enc.oid == oids::AES128_CBC {
        (KeyWrapCipher::Aes128Cbc, 16usize)
    } else {
        return Err(CryptoError::UnsupportedAlgorithm(format!(
            "key encryption cipher {} (AES-128/256-CBC supported)",
            enc.oid
        )));
    };
    if key_len.is_some_and(|k| k as usize != cipher_key_len) {
        return Err(CryptoError::MalformedKey(
            "PBKDF2 key length does not match the cipher".into(),
        ));
    }
    let iv: &der::asn1::OctetStringRef = enc
        .parameters
        .ok_or_else(|| CryptoError::MalformedKey("AES-CBC without IV".into()))?
        .decode_as()
        .map_err(bad("IV"))?;
    let mut key = zeroize::Zeroizing::new(vec![0u8; cipher_key_len]);
    provider
        .pbe
        .pbkdf2(prf, passphrase, salt, iterations, &mut key)?;
    let plain = provider
        .pbe
        .cbc_decrypt(cipher, &key, iv.as_bytes(), data)?;
    // A wrong passphrase usually fails the padding check; when it does not,
    // the plaintext is not a DER SEQUENCE.
    if der::asn1::AnyRef::from_der(&plain).is_err() {
        return Err(CryptoError::WrongPassphrase);
    }
    Ok(plain)
}
