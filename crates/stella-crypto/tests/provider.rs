//! What the provider gives sigstore, checked against OpenSSL-made keys and
//! signatures: verification over a precomputed digest (ECDSA, RSA), ECDSA
//! with the hash the signature algorithm names rather than the curve's own,
//! P-521, bare PKCS#1 RSA public keys, and the X.509/CMS algorithm mapping.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use stella_crypto::x509::signature_algorithm;
use stella_crypto::{
    CryptoError, HashAlgorithm, KeyKind, PrivateKey, PublicKey, SignatureAlgorithm,
};
use stella_testkit::fixtures::pki::{openssl, read};
use stella_types::digest::{sha256_bytes, sha384_bytes, sha512_bytes};

const MSG: &[u8] = b"sigstore artifact";

fn openssl_sign(d: &std::path::Path, key: &str, digest: &str, out: &str) -> Vec<u8> {
    std::fs::write(d.join("msg"), MSG).unwrap();
    openssl(d, &["dgst", digest, "-sign", key, "-out", out, "msg"]);
    std::fs::read(d.join(out)).unwrap()
}

fn ec_key(d: &std::path::Path, curve: &str, name: &str) -> PublicKey {
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            &format!("ec_paramgen_curve:{curve}"),
            "-out",
            &format!("{name}.key"),
        ],
    );
    openssl(
        d,
        &[
            "pkey",
            "-in",
            &format!("{name}.key"),
            "-pubout",
            "-out",
            &format!("{name}.pub"),
        ],
    );
    PublicKey::from_pem(&read(d, &format!("{name}.pub"))).unwrap()
}

#[test]
fn ecdsa_with_another_hash_than_the_curves() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p256 = ec_key(d, "P-256", "p256");
    let sig = openssl_sign(d, "p256.key", "-sha384", "p256-384.sig");
    p256.verify(SignatureAlgorithm::EcdsaSha384, MSG, &sig)
        .unwrap();
    // The curve-bound algorithm means SHA-256 and does not verify it.
    assert_eq!(
        p256.verify(SignatureAlgorithm::EcdsaP256Sha256, MSG, &sig),
        Err(CryptoError::BadSignature)
    );
    // ES384 (P-384 + SHA-384) does not fit a P-256 key.
    assert!(matches!(
        p256.verify(SignatureAlgorithm::EcdsaP384Sha384, MSG, &sig),
        Err(CryptoError::UnsupportedAlgorithm(_))
    ));
    let sig256 = openssl_sign(d, "p256.key", "-sha256", "p256-256.sig");
    p256.verify(SignatureAlgorithm::EcdsaSha256, MSG, &sig256)
        .unwrap();
    p256.verify(SignatureAlgorithm::EcdsaP256Sha256, MSG, &sig256)
        .unwrap();
}

#[test]
fn p521_keys_from_openssl_and_generated() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = ec_key(d, "P-521", "p521");
    assert_eq!(key.kind(), KeyKind::EcdsaP521);
    assert_eq!(key.default_algorithm(), SignatureAlgorithm::EcdsaP521Sha512);
    let sig = openssl_sign(d, "p521.key", "-sha512", "p521.sig");
    key.verify(key.default_algorithm(), MSG, &sig).unwrap();
    key.verify_prehashed(key.default_algorithm(), &sha512_bytes(MSG), &sig)
        .unwrap();
    let private = PrivateKey::from_pkcs8_pem(&read(d, "p521.key"), None).unwrap();
    assert_eq!(private.kind(), KeyKind::EcdsaP521);

    let fresh = PrivateKey::generate(KeyKind::EcdsaP521).unwrap();
    let s = fresh.sign(MSG).unwrap();
    fresh
        .public_key()
        .verify(SignatureAlgorithm::EcdsaP521Sha512, MSG, &s)
        .unwrap();
}

#[test]
fn prehashed_verification() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p256 = ec_key(d, "P-256", "p256");
    let sig = openssl_sign(d, "p256.key", "-sha256", "p256.sig");
    p256.verify_prehashed(
        SignatureAlgorithm::EcdsaP256Sha256,
        &sha256_bytes(MSG),
        &sig,
    )
    .unwrap();
    let mut other = sha256_bytes(MSG);
    other[0] ^= 1;
    assert_eq!(
        p256.verify_prehashed(SignatureAlgorithm::EcdsaP256Sha256, &other, &sig),
        Err(CryptoError::BadSignature)
    );
    // A digest of the wrong length does not verify.
    assert_eq!(
        p256.verify_prehashed(
            SignatureAlgorithm::EcdsaP256Sha256,
            &sha384_bytes(MSG),
            &sig
        ),
        Err(CryptoError::BadSignature)
    );
    // P-384 key, SHA-384 digest.
    let p384 = ec_key(d, "P-384", "p384");
    let sig = openssl_sign(d, "p384.key", "-sha384", "p384.sig");
    p384.verify_prehashed(SignatureAlgorithm::EcdsaSha384, &sha384_bytes(MSG), &sig)
        .unwrap();

    // RSA PKCS#1 v1.5 over a digest.
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "rsa.key",
        ],
    );
    openssl(d, &["pkey", "-in", "rsa.key", "-pubout", "-out", "rsa.pub"]);
    let rsa = PublicKey::from_pem(&read(d, "rsa.pub")).unwrap();
    let sig = openssl_sign(d, "rsa.key", "-sha256", "rsa.sig");
    rsa.verify_prehashed(SignatureAlgorithm::RsaPkcs1Sha256, &sha256_bytes(MSG), &sig)
        .unwrap();
    assert_eq!(
        rsa.verify_prehashed(SignatureAlgorithm::RsaPkcs1Sha256, &other, &sig),
        Err(CryptoError::BadSignature)
    );

    // Ed25519 signs the message itself: no digest verification.
    let ed = PrivateKey::generate(KeyKind::Ed25519).unwrap();
    let s = ed.sign(MSG).unwrap();
    assert!(matches!(
        ed.public_key()
            .verify_prehashed(SignatureAlgorithm::Ed25519, &sha256_bytes(MSG), &s),
        Err(CryptoError::UnsupportedAlgorithm(_))
    ));
}

#[test]
fn pkcs1_rsa_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "rsa.key",
        ],
    );
    openssl(
        d,
        &[
            "rsa",
            "-in",
            "rsa.key",
            "-RSAPublicKey_out",
            "-outform",
            "DER",
            "-out",
            "rsa.pkcs1",
        ],
    );
    openssl(d, &["pkey", "-in", "rsa.key", "-pubout", "-out", "rsa.pub"]);
    let pkcs1 = std::fs::read(d.join("rsa.pkcs1")).unwrap();
    let key = PublicKey::from_pkcs1_rsa_der(&pkcs1).unwrap();
    assert_eq!(key.kind(), KeyKind::Rsa { bits: 2048 });
    // Wrapping the PKCS#1 key gives exactly the SPKI openssl writes.
    assert_eq!(key, PublicKey::from_pem(&read(d, "rsa.pub")).unwrap());
    let sig = openssl_sign(d, "rsa.key", "-sha256", "rsa.sig");
    key.verify(SignatureAlgorithm::RsaPkcs1Sha256, MSG, &sig)
        .unwrap();
    assert!(PublicKey::from_pkcs1_rsa_der(b"\x30\x03\x02\x01\x05").is_err());
}

#[test]
fn x509_and_cms_algorithm_mapping() {
    use const_oid::ObjectIdentifier as Oid;
    let alg = |oid: &str| spki::AlgorithmIdentifierOwned {
        oid: Oid::new_unwrap(oid),
        parameters: None,
    };
    // ecdsa-with-SHA384 names the hash; the curve is the key's.
    assert_eq!(
        signature_algorithm(&alg("1.2.840.10045.4.3.3"), None).unwrap(),
        SignatureAlgorithm::EcdsaSha384
    );
    assert_eq!(
        signature_algorithm(&alg("1.2.840.10045.4.3.4"), None).unwrap(),
        SignatureAlgorithm::EcdsaSha512
    );
    // CMS may name only the key type; the digest algorithm gives the hash.
    assert_eq!(
        signature_algorithm(&alg("1.2.840.113549.1.1.1"), Some(HashAlgorithm::Sha384)).unwrap(),
        SignatureAlgorithm::RsaPkcs1Sha384
    );
    assert_eq!(
        signature_algorithm(&alg("1.2.840.10045.2.1"), Some(HashAlgorithm::Sha256)).unwrap(),
        SignatureAlgorithm::EcdsaSha256
    );
    assert!(signature_algorithm(&alg("1.2.840.113549.1.1.1"), None).is_err());
    assert!(signature_algorithm(&alg("1.2.840.10045.2.1"), Some(HashAlgorithm::Sha1)).is_err());
    assert!(signature_algorithm(&alg("1.2.3.4"), None).is_err());
}
