//! Public and private keys: PEM / SPKI / PKCS#8 (plain or PBES2-encrypted) /
//! SEC1 loading, generation, signing and verification through a
//! [`CryptoProvider`]. Does not handle certificates (see [`crate::x509`]) nor
//! any envelope format.

use std::fmt;
use std::sync::Arc;

use der::Decode;
use spki::SubjectPublicKeyInfoRef;

use crate::backend::default_provider;
use crate::provider::{CryptoProvider, HashAlgorithm, SigningKey, VerifyingKey};
use crate::{CryptoError, oids, pem};

/// The kind of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// ECDSA on NIST P-256.
    EcdsaP256,
    /// ECDSA on NIST P-384.
    EcdsaP384,
    /// ECDSA on NIST P-521 (verification and generation; seen in sigstore
    /// trusted roots).
    EcdsaP521,
    /// Ed25519.
    Ed25519,
    /// RSA with the modulus size in bits.
    Rsa {
        /// Modulus size in bits.
        bits: usize,
    },
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyKind::EcdsaP256 => f.write_str("ecdsa-p256"),
            KeyKind::EcdsaP384 => f.write_str("ecdsa-p384"),
            KeyKind::EcdsaP521 => f.write_str("ecdsa-p521"),
            KeyKind::Ed25519 => f.write_str("ed25519"),
            KeyKind::Rsa { bits } => write!(f, "rsa-{bits}"),
        }
    }
}

/// A signature algorithm (key type + hash + padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    /// ECDSA P-256 with SHA-256.
    EcdsaP256Sha256,
    /// ECDSA P-384 with SHA-384.
    EcdsaP384Sha384,
    /// ECDSA P-521 with SHA-512.
    EcdsaP521Sha512,
    /// ECDSA with SHA-256 on whatever curve the key has. X.509, CMS and
    /// sigstore name only the hash (`ecdsa-with-SHA256`), not the curve.
    EcdsaSha256,
    /// ECDSA with SHA-384 on the key's curve.
    EcdsaSha384,
    /// ECDSA with SHA-512 on the key's curve.
    EcdsaSha512,
    /// Pure Ed25519.
    Ed25519,
    /// RSA PKCS#1 v1.5 with SHA-256.
    RsaPkcs1Sha256,
    /// RSA PKCS#1 v1.5 with SHA-384.
    RsaPkcs1Sha384,
    /// RSA PKCS#1 v1.5 with SHA-512.
    RsaPkcs1Sha512,
    /// RSA-PSS with SHA-256 (MGF1 SHA-256, salt = hash length).
    RsaPssSha256,
    /// RSA-PSS with SHA-384.
    RsaPssSha384,
    /// RSA-PSS with SHA-512.
    RsaPssSha512,
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SignatureAlgorithm::EcdsaP256Sha256 => "ecdsa-p256-sha256",
            SignatureAlgorithm::EcdsaP384Sha384 => "ecdsa-p384-sha384",
            SignatureAlgorithm::EcdsaP521Sha512 => "ecdsa-p521-sha512",
            SignatureAlgorithm::EcdsaSha256 => "ecdsa-sha256",
            SignatureAlgorithm::EcdsaSha384 => "ecdsa-sha384",
            SignatureAlgorithm::EcdsaSha512 => "ecdsa-sha512",
            SignatureAlgorithm::Ed25519 => "ed25519",
            SignatureAlgorithm::RsaPkcs1Sha256 => "rsa-pkcs1-sha256",
            SignatureAlgorithm::RsaPkcs1Sha384 => "rsa-pkcs1-sha384",
            SignatureAlgorithm::RsaPkcs1Sha512 => "rsa-pkcs1-sha512",
            SignatureAlgorithm::RsaPssSha256 => "rsa-pss-sha256",
            SignatureAlgorithm::RsaPssSha384 => "rsa-pss-sha384",
            SignatureAlgorithm::RsaPssSha512 => "rsa-pss-sha512",
        })
    }
}

impl SignatureAlgorithm {
    /// The hash the algorithm signs with; `None` for pure Ed25519, which
    /// hashes internally and cannot verify a digest.
    pub fn hash(self) -> Option<HashAlgorithm> {
        use SignatureAlgorithm as A;
        match self {
            A::EcdsaP256Sha256 | A::EcdsaSha256 | A::RsaPkcs1Sha256 | A::RsaPssSha256 => {
                Some(HashAlgorithm::Sha256)
            }
            A::EcdsaP384Sha384 | A::EcdsaSha384 | A::RsaPkcs1Sha384 | A::RsaPssSha384 => {
                Some(HashAlgorithm::Sha384)
            }
            A::EcdsaP521Sha512 | A::EcdsaSha512 | A::RsaPkcs1Sha512 | A::RsaPssSha512 => {
                Some(HashAlgorithm::Sha512)
            }
            A::Ed25519 => None,
        }
    }

    /// The signature algorithm of a key kind with an explicit hash (ECDSA on
    /// the key's curve, RSA PKCS#1 v1.5); Ed25519 ignores the hash. `None`
    /// for SHA-1, which is never accepted for signatures.
    pub fn with_hash(kind: KeyKind, hash: HashAlgorithm) -> Option<Self> {
        use SignatureAlgorithm as A;
        Some(match (kind, hash) {
            (KeyKind::Ed25519, _) => A::Ed25519,
            (_, HashAlgorithm::Sha1) => return None,
            (KeyKind::Rsa { .. }, HashAlgorithm::Sha256) => A::RsaPkcs1Sha256,
            (KeyKind::Rsa { .. }, HashAlgorithm::Sha384) => A::RsaPkcs1Sha384,
            (KeyKind::Rsa { .. }, HashAlgorithm::Sha512) => A::RsaPkcs1Sha512,
            (_, HashAlgorithm::Sha256) => A::EcdsaSha256,
            (_, HashAlgorithm::Sha384) => A::EcdsaSha384,
            (_, HashAlgorithm::Sha512) => A::EcdsaSha512,
        })
    }
}

/// A public key for verification. Cheap to clone; parsed once.
#[derive(Clone)]
pub struct PublicKey {
    spki: Vec<u8>,
    kind: KeyKind,
    inner: Arc<dyn VerifyingKey>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("kind", &self.kind)
            .field("keyid", &self.keyid())
            .finish()
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki == other.spki
    }
}
impl Eq for PublicKey {}

/// Classifies a SubjectPublicKeyInfo by its algorithm identifier.
pub fn classify_spki(der: &[u8]) -> Result<KeyKind, CryptoError> {
    let spki = SubjectPublicKeyInfoRef::from_der(der)
        .map_err(|e| CryptoError::MalformedKey(format!("not a SubjectPublicKeyInfo: {e}")))?;
    let oid = spki.algorithm.oid;
    if oid == oids::EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters_oid()
            .map_err(|_| CryptoError::MalformedKey("EC key without a named curve".into()))?;
        if curve == oids::SECP256R1 {
            Ok(KeyKind::EcdsaP256)
        } else if curve == oids::SECP384R1 {
            Ok(KeyKind::EcdsaP384)
        } else if curve == oids::SECP521R1 {
            Ok(KeyKind::EcdsaP521)
        } else {
            Err(CryptoError::UnsupportedAlgorithm(format!(
                "EC curve {curve}"
            )))
        }
    } else if oid == oids::ED25519 {
        Ok(KeyKind::Ed25519)
    } else if oid == oids::RSA_ENCRYPTION {
        let bits = rsa_modulus_bits(spki.subject_public_key.raw_bytes())?;
        Ok(KeyKind::Rsa { bits })
    } else {
        Err(CryptoError::UnsupportedAlgorithm(format!(
            "public key algorithm {oid}"
        )))
    }
}

fn rsa_modulus_bits(rsa_public_key: &[u8]) -> Result<usize, CryptoError> {
    use der::Reader;
    let bad = |e: der::Error| CryptoError::MalformedKey(format!("bad RSA public key: {e}"));
    let mut reader = der::SliceReader::new(rsa_public_key).map_err(bad)?;
    let modulus: der::asn1::UintRef<'_> = reader
        .sequence(|r| {
            let n: der::asn1::UintRef<'_> = r.decode()?;
            let _e: der::asn1::UintRef<'_> = r.decode()?;
            Ok::<_, der::Error>(n)
        })
        .map_err(bad)?;
    let bytes = modulus.as_bytes();
    let lead = bytes
        .first()
        .map(|b| b.leading_zeros() as usize)
        .unwrap_or(0);
    Ok((bytes.len() * 8).saturating_sub(lead))
}

impl PublicKey {
    /// Parses SubjectPublicKeyInfo DER with the default provider.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, CryptoError> {
        Self::from_spki_der_with(default_provider(), der)
    }

    /// Parses SubjectPublicKeyInfo DER with `provider`.
    pub fn from_spki_der_with(provider: &CryptoProvider, der: &[u8]) -> Result<Self, CryptoError> {
        let kind = classify_spki(der)?;
        let inner = provider.keys.parse_public(der, kind)?;
        Ok(PublicKey {
            spki: der.to_vec(),
            kind,
            inner,
        })
    }

    /// Parses a bare PKCS#1 `RSAPublicKey` (as sigstore trusted roots carry
    /// with `PKCS1_RSA_*` key details) by wrapping it in a SubjectPublicKeyInfo.
    pub fn from_pkcs1_rsa_der(der_bytes: &[u8]) -> Result<Self, CryptoError> {
        use der::Encode;
        let bad = |e: der::Error| CryptoError::MalformedKey(format!("bad PKCS#1 RSA key: {e}"));
        rsa_modulus_bits(der_bytes)?;
        let spki = spki::SubjectPublicKeyInfoOwned {
            algorithm: spki::AlgorithmIdentifierOwned {
                oid: oids::RSA_ENCRYPTION,
                parameters: Some(der::asn1::Any::null()),
            },
            subject_public_key: der::asn1::BitString::from_bytes(der_bytes).map_err(bad)?,
        };
        Self::from_spki_der(&spki.to_der().map_err(bad)?)
    }

    /// Parses a `PUBLIC KEY` (SPKI) PEM block. Certificates are rejected here:
    /// use [`crate::x509::Certificate`] to get a certificate's key.
    pub fn from_pem(pem_text: &str) -> Result<Self, CryptoError> {
        Self::from_pem_with(default_provider(), pem_text)
    }

    /// [`Self::from_pem`] with an explicit provider.
    pub fn from_pem_with(provider: &CryptoProvider, pem_text: &str) -> Result<Self, CryptoError> {
        let blocks = pem::parse_all(pem_text)?;
        let mut keys = blocks.iter().filter(|b| b.label == "PUBLIC KEY");
        match (keys.next(), keys.next()) {
            (Some(block), None) => Self::from_spki_der_with(provider, &block.der),
            (Some(_), Some(_)) => Err(CryptoError::MalformedKey(
                "more than one PUBLIC KEY block".into(),
            )),
            (None, _) => {
                let labels: Vec<&str> = blocks.iter().map(|b| b.label.as_str()).collect();
                Err(CryptoError::MalformedKey(if labels.is_empty() {
                    "no PEM block found (expected -----BEGIN PUBLIC KEY-----)".into()
                } else {
                    format!(
                        "expected a PUBLIC KEY PEM block, found {}",
                        labels.join(", ")
                    )
                }))
            }
        }
    }

    /// The SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// The key as a `PUBLIC KEY` PEM block.
    pub fn to_pem(&self) -> String {
        pem::encode("PUBLIC KEY", &self.spki)
    }

    /// The key kind.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// A stable identifier: lowercase hex SHA-256 of the SPKI DER. (Only a hint
    /// in DSSE `keyid`; never used to decide trust.)
    pub fn keyid(&self) -> String {
        hex_lower(&stella_types::digest::sha256_bytes(&self.spki))
    }

    /// Verifies `signature` over `message`. ECDSA accepts ASN.1 DER signatures
    /// and, when the length is exactly 2×field size, raw r||s.
    pub fn verify(
        &self,
        alg: SignatureAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        self.inner.verify(alg, message, signature)
    }

    /// Verifies `signature` over an already computed `digest` (the hash of
    /// `alg`). ECDSA and RSA only: Ed25519 signs the message itself, so it is
    /// reported as unsupported. A digest of the wrong length does not verify.
    pub fn verify_prehashed(
        &self,
        alg: SignatureAlgorithm,
        digest: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        self.inner.verify_prehashed(alg, digest, signature)
    }

    /// The default algorithm for the key kind: P-256→SHA-256, P-384→SHA-384,
    /// P-521→SHA-512, Ed25519 pure, RSA→PKCS#1 v1.5 SHA-256.
    pub fn default_algorithm(&self) -> SignatureAlgorithm {
        default_algorithm(self.kind)
    }
}

/// The default signature algorithm of a key kind.
pub fn default_algorithm(kind: KeyKind) -> SignatureAlgorithm {
    match kind {
        KeyKind::EcdsaP256 => SignatureAlgorithm::EcdsaP256Sha256,
        KeyKind::EcdsaP384 => SignatureAlgorithm::EcdsaP384Sha384,
        KeyKind::EcdsaP521 => SignatureAlgorithm::EcdsaP521Sha512,
        KeyKind::Ed25519 => SignatureAlgorithm::Ed25519,
        KeyKind::Rsa { .. } => SignatureAlgorithm::RsaPkcs1Sha256,
    }
}

pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0xf) as usize] as char);
    }
    s
}

/// A private key for signing.
#[derive(Clone)]
pub struct PrivateKey {
    inner: Arc<dyn SigningKey>,
    public: PublicKey,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("kind", &self.inner.kind())
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    fn from_inner(
        provider: &CryptoProvider,
        inner: Arc<dyn SigningKey>,
    ) -> Result<Self, CryptoError> {
        let spki = inner.public_spki_der()?;
        let public = PublicKey::from_spki_der_with(provider, &spki)?;
        Ok(PrivateKey { inner, public })
    }

    /// Loads a private key from PEM: `PRIVATE KEY` (PKCS#8), `ENCRYPTED PRIVATE
    /// KEY` (PKCS#8 PBES2; needs `passphrase`) or `EC PRIVATE KEY` (SEC1).
    pub fn from_pkcs8_pem(pem_text: &str, passphrase: Option<&[u8]>) -> Result<Self, CryptoError> {
        Self::from_pem_with(default_provider(), pem_text, passphrase)
    }

    /// [`Self::from_pkcs8_pem`] with an explicit provider.
    pub fn from_pem_with(
        provider: &CryptoProvider,
        pem_text: &str,
        passphrase: Option<&[u8]>,
    ) -> Result<Self, CryptoError> {
        let blocks = pem::parse_all(pem_text)?;
        let block = blocks
            .iter()
            .find(|b| b.label.ends_with("PRIVATE KEY"))
            .ok_or_else(|| CryptoError::MalformedKey("no PRIVATE KEY PEM block found".into()))?;
        match block.label.as_str() {
            "PRIVATE KEY" => Self::from_pkcs8_der_with(provider, &block.der),
            "ENCRYPTED PRIVATE KEY" => {
                let pass = passphrase.ok_or(CryptoError::PassphraseRequired)?;
                let plain =
                    zeroize::Zeroizing::new(crate::pkcs8enc::decrypt(provider, &block.der, pass)?);
                Self::from_pkcs8_der_with(provider, &plain).map_err(|e| match e {
                    // Garbage that happened to unpad looks like a malformed key.
                    CryptoError::MalformedKey(_) => CryptoError::WrongPassphrase,
                    other => other,
                })
            }
            "EC PRIVATE KEY" => Self::from_inner(provider, provider.keys.load_sec1(&block.der)?),
            other => Err(CryptoError::UnsupportedAlgorithm(format!(
                "{other} PEM block (convert to PKCS#8: openssl pkcs8 -topk8)"
            ))),
        }
    }

    /// Loads unencrypted PKCS#8 DER.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, CryptoError> {
        Self::from_pkcs8_der_with(default_provider(), der)
    }

    /// [`Self::from_pkcs8_der`] with an explicit provider.
    pub fn from_pkcs8_der_with(provider: &CryptoProvider, der: &[u8]) -> Result<Self, CryptoError> {
        Self::from_inner(provider, provider.keys.load_pkcs8(der)?)
    }

    /// Generates a key with the default provider.
    pub fn generate(kind: KeyKind) -> Result<Self, CryptoError> {
        Self::generate_with(default_provider(), kind)
    }

    /// Generates a key with `provider`.
    pub fn generate_with(provider: &CryptoProvider, kind: KeyKind) -> Result<Self, CryptoError> {
        Self::from_inner(provider, provider.keys.generate(kind)?)
    }

    /// The key as an unencrypted PKCS#8 `PRIVATE KEY` PEM block.
    pub fn to_pkcs8_pem(&self) -> Result<String, CryptoError> {
        let der = zeroize::Zeroizing::new(self.inner.to_pkcs8_der()?);
        Ok(pem::encode("PRIVATE KEY", &der))
    }

    /// The public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The key kind.
    pub fn kind(&self) -> KeyKind {
        self.inner.kind()
    }

    /// The algorithm [`Self::sign`] uses.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        default_algorithm(self.kind())
    }

    /// Signs `message` with [`Self::algorithm`]. ECDSA signatures are ASN.1 DER.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.inner.sign(message)
    }
}
