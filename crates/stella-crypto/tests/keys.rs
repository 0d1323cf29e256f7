//! Key loading, generation, signing and verification against keys and
//! signatures made by OpenSSL (an independent implementation).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use stella_crypto::{CryptoError, KeyKind, PrivateKey, PublicKey, SignatureAlgorithm};
use stella_testkit::fixtures::pki::{openssl, read, write};

#[test]
fn generate_load_round_trip_both_algorithms() {
    for kind in [KeyKind::EcdsaP256, KeyKind::Ed25519, KeyKind::EcdsaP384] {
        let key = PrivateKey::generate(kind).unwrap();
        let pem = key.to_pkcs8_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let loaded = PrivateKey::from_pkcs8_pem(&pem, None).unwrap();
        assert_eq!(loaded.kind(), kind);
        assert_eq!(loaded.public_key(), key.public_key());
        let pubpem = key.public_key().to_pem();
        let public = PublicKey::from_pem(&pubpem).unwrap();
        assert_eq!(public.kind(), kind);
        let sig = loaded.sign(b"message").unwrap();
        public
            .verify(public.default_algorithm(), b"message", &sig)
            .unwrap();
        assert_eq!(
            public.verify(public.default_algorithm(), b"messagE", &sig),
            Err(CryptoError::BadSignature)
        );
    }
}

#[test]
fn openssl_reads_our_keys_and_verifies_our_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (kind, name) in [(KeyKind::EcdsaP256, "ec"), (KeyKind::Ed25519, "ed")] {
        let key = PrivateKey::generate(kind).unwrap();
        write(d, &format!("{name}.key"), &key.to_pkcs8_pem().unwrap());
        write(d, &format!("{name}.pub"), &key.public_key().to_pem());
        std::fs::write(d.join("msg"), b"hello openssl").unwrap();
        let sig = key.sign(b"hello openssl").unwrap();
        std::fs::write(d.join(format!("{name}.sig")), &sig).unwrap();
        // openssl parses the private key we wrote...
        openssl(d, &["pkey", "-in", &format!("{name}.key"), "-noout"]);
        // ...and verifies the signature with the public key we wrote.
        let digest_args: &[&str] = if kind == KeyKind::Ed25519 {
            &[]
        } else {
            &["-sha256"]
        };
        let mut args = vec!["pkeyutl", "-verify", "-pubin", "-inkey"];
        let pubname = format!("{name}.pub");
        let signame = format!("{name}.sig");
        args.push(&pubname);
        args.extend_from_slice(&["-rawin", "-in", "msg", "-sigfile"]);
        args.push(&signame);
        if kind != KeyKind::Ed25519 {
            args.extend_from_slice(&["-digest", "sha256"]);
        }
        let _ = digest_args;
        openssl(d, &args);
    }
}

#[test]
fn sec1_ec_private_key_loads() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(
        d,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "sec1.pem",
        ],
    );
    let pem = read(d, "sec1.pem");
    assert!(pem.contains("BEGIN EC PRIVATE KEY"));
    let key = PrivateKey::from_pkcs8_pem(&pem, None).unwrap();
    assert_eq!(key.kind(), KeyKind::EcdsaP256);
    openssl(d, &["ec", "-in", "sec1.pem", "-pubout", "-out", "sec1.pub"]);
    let public = PublicKey::from_pem(&read(d, "sec1.pub")).unwrap();
    assert_eq!(&public, key.public_key());
}

#[test]
fn encrypted_pkcs8_with_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-aes256",
            "-pass",
            "pass:correct horse",
            "-out",
            "enc.pem",
        ],
    );
    openssl(
        d,
        &[
            "pkey",
            "-in",
            "enc.pem",
            "-passin",
            "pass:correct horse",
            "-pubout",
            "-out",
            "enc.pub",
        ],
    );
    let pem = read(d, "enc.pem");
    assert!(pem.contains("BEGIN ENCRYPTED PRIVATE KEY"));
    assert_eq!(
        PrivateKey::from_pkcs8_pem(&pem, None).err(),
        Some(CryptoError::PassphraseRequired)
    );
    assert_eq!(
        PrivateKey::from_pkcs8_pem(&pem, Some(b"wrong")).err(),
        Some(CryptoError::WrongPassphrase)
    );
    let key = PrivateKey::from_pkcs8_pem(&pem, Some(b"correct horse")).unwrap();
    let public = PublicKey::from_pem(&read(d, "enc.pub")).unwrap();
    assert_eq!(&public, key.public_key());

    // Ed25519 encrypted with AES-128 and an explicit hmacWithSHA512 PRF.
    openssl(d, &["genpkey", "-algorithm", "ED25519", "-out", "ed.pem"]);
    openssl(
        d,
        &[
            "pkcs8",
            "-topk8",
            "-in",
            "ed.pem",
            "-v2",
            "aes-128-cbc",
            "-v2prf",
            "hmacWithSHA512",
            "-passout",
            "pass:pw",
            "-out",
            "ed-enc.pem",
        ],
    );
    let key = PrivateKey::from_pkcs8_pem(&read(d, "ed-enc.pem"), Some(b"pw")).unwrap();
    assert_eq!(key.kind(), KeyKind::Ed25519);
}

#[test]
fn rsa_pkcs1_and_pss_signatures_from_openssl_verify() {
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
            "rsa.pem",
        ],
    );
    openssl(d, &["pkey", "-in", "rsa.pem", "-pubout", "-out", "rsa.pub"]);
    std::fs::write(d.join("msg"), b"rsa message").unwrap();
    openssl(
        d,
        &[
            "dgst",
            "-sha256",
            "-sign",
            "rsa.pem",
            "-out",
            "pkcs1.sig",
            "msg",
        ],
    );
    openssl(
        d,
        &[
            "dgst",
            "-sha384",
            "-sign",
            "rsa.pem",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:digest",
            "-out",
            "pss.sig",
            "msg",
        ],
    );
    let public = PublicKey::from_pem(&read(d, "rsa.pub")).unwrap();
    assert_eq!(public.kind(), KeyKind::Rsa { bits: 2048 });
    let pkcs1 = std::fs::read(d.join("pkcs1.sig")).unwrap();
    let pss = std::fs::read(d.join("pss.sig")).unwrap();
    public
        .verify(SignatureAlgorithm::RsaPkcs1Sha256, b"rsa message", &pkcs1)
        .unwrap();
    public
        .verify(SignatureAlgorithm::RsaPssSha384, b"rsa message", &pss)
        .unwrap();
    // Wrong padding / hash / message are rejected.
    assert!(
        public
            .verify(SignatureAlgorithm::RsaPssSha256, b"rsa message", &pkcs1)
            .is_err()
    );
    assert!(
        public
            .verify(SignatureAlgorithm::RsaPkcs1Sha384, b"rsa message", &pss)
            .is_err()
    );
    assert!(
        public
            .verify(SignatureAlgorithm::RsaPkcs1Sha256, b"rsa messagf", &pkcs1)
            .is_err()
    );
    // An RSA key is never used with an ECDSA algorithm.
    assert!(matches!(
        public.verify(SignatureAlgorithm::EcdsaP256Sha256, b"rsa message", &pkcs1),
        Err(CryptoError::UnsupportedAlgorithm(_))
    ));
}

#[test]
fn ecdsa_raw_and_der_signatures_and_truncation() {
    let key = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
    let der = key.sign(b"m").unwrap();
    let public = key.public_key();
    public
        .verify(SignatureAlgorithm::EcdsaP256Sha256, b"m", &der)
        .unwrap();
    let truncated = &der[..der.len() - 3];
    assert!(
        public
            .verify(SignatureAlgorithm::EcdsaP256Sha256, b"m", truncated)
            .is_err()
    );
    assert!(matches!(
        public.verify(SignatureAlgorithm::EcdsaP256Sha256, b"m", &[1, 2, 3]),
        Err(CryptoError::MalformedSignature(_))
    ));
    assert!(
        public
            .verify(SignatureAlgorithm::EcdsaP256Sha256, b"m", &[0u8; 64])
            .is_err()
    );
}

#[test]
fn malformed_inputs_are_errors_not_panics() {
    assert!(matches!(
        PublicKey::from_pem("nothing here"),
        Err(CryptoError::MalformedKey(_))
    ));
    assert!(PublicKey::from_spki_der(&[0x30, 0x03, 0x02, 0x01]).is_err());
    assert!(PublicKey::from_spki_der(&[]).is_err());
    assert!(
        PrivateKey::from_pkcs8_pem(
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            None
        )
        .is_err()
    );
    assert!(
        PrivateKey::from_pkcs8_pem(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n",
            Some(b"x")
        )
        .is_err()
    );
    let pk = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
    assert!(matches!(
        PublicKey::from_pem(&pk.to_pkcs8_pem().unwrap()),
        Err(CryptoError::MalformedKey(_))
    ));
}
