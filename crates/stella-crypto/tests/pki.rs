//! Organisation PKI chains made by OpenSSL: path building and the checks of
//! `stella_crypto::x509::verify_chain`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, SystemTime};

use stella_crypto::CryptoError;
use stella_crypto::x509::{Certificate, ChainOptions, EkuPolicy, verify_chain};
use stella_testkit::fixtures::pki::{make_pki, read};

fn cert(dir: &std::path::Path, name: &str) -> Certificate {
    Certificate::from_pem(&read(dir, name)).unwrap()
}

fn reason(r: Result<Vec<Certificate>, CryptoError>) -> String {
    match r {
        Ok(_) => panic!("chain unexpectedly verified"),
        Err(CryptoError::CertificateRejected(m)) => m,
        Err(other) => panic!("unexpected error kind: {other:?}"),
    }
}

#[test]
fn org_pki_chain_checks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_pki(d);
    let root = cert(d, "root.pem");
    let int = cert(d, "int.pem");
    let now = SystemTime::now();
    let opts = ChainOptions::code_signing(now);

    // Valid chain: leaf -> intermediate -> root.
    let leaf = cert(d, "leaf.pem");
    let path = verify_chain(
        &leaf,
        std::slice::from_ref(&int),
        std::slice::from_ref(&root),
        &opts,
    )
    .unwrap();
    assert_eq!(path.len(), 3);
    assert_eq!(path[2], root);
    assert!(leaf.subject().contains("leaf@example.com"));

    // A leaf without EKU passes "code-signing EKU when present", fails when required.
    let noeku = cert(d, "leaf-noeku.pem");
    verify_chain(
        &noeku,
        std::slice::from_ref(&int),
        std::slice::from_ref(&root),
        &opts,
    )
    .unwrap();
    let strict = ChainOptions {
        eku: EkuPolicy::Required(stella_crypto::oids::KP_CODE_SIGNING),
        ..opts.clone()
    };
    assert!(
        reason(verify_chain(
            &noeku,
            std::slice::from_ref(&int),
            std::slice::from_ref(&root),
            &strict
        ))
        .contains("extended key usage")
    );

    // Missing intermediate.
    assert!(
        reason(verify_chain(&leaf, &[], std::slice::from_ref(&root), &opts))
            .contains("does not chain to a trusted root")
    );

    // Wrong CA.
    let other = cert(d, "other.pem");
    assert!(
        reason(verify_chain(
            &leaf,
            std::slice::from_ref(&int),
            std::slice::from_ref(&other),
            &opts
        ))
        .contains("does not chain")
    );

    // A self-signed certificate carried as an "intermediate" is never an anchor.
    let fake = cert(d, "fake-root.pem");
    assert!(
        verify_chain(
            &leaf,
            &[fake.clone(), int.clone()],
            std::slice::from_ref(&other),
            &opts
        )
        .is_err()
    );

    // Missing digitalSignature.
    let nods = cert(d, "leaf-nods.pem");
    assert!(
        reason(verify_chain(
            &nods,
            std::slice::from_ref(&int),
            std::slice::from_ref(&root),
            &opts
        ))
        .contains("digitalSignature")
    );

    // Wrong EKU.
    let server = cert(d, "leaf-server.pem");
    assert!(
        reason(verify_chain(
            &server,
            std::slice::from_ref(&int),
            std::slice::from_ref(&root),
            &opts
        ))
        .contains("codeSigning")
    );

    // Expired leaf: valid one day, checked three days later.
    let short = cert(d, "leaf-short.pem");
    verify_chain(
        &short,
        std::slice::from_ref(&int),
        std::slice::from_ref(&root),
        &opts,
    )
    .unwrap();
    let later = ChainOptions::code_signing(now + Duration::from_secs(3 * 86_400));
    assert!(
        reason(verify_chain(
            &short,
            std::slice::from_ref(&int),
            std::slice::from_ref(&root),
            &later
        ))
        .contains("expired")
    );
    // Not yet valid.
    let earlier = ChainOptions::code_signing(now - Duration::from_secs(3 * 86_400));
    assert!(
        reason(verify_chain(
            &leaf,
            std::slice::from_ref(&int),
            std::slice::from_ref(&root),
            &earlier
        ))
        .contains("not yet valid")
    );

    // A leaf (not a CA) cannot act as an issuer.
    assert!(
        verify_chain(
            &leaf,
            std::slice::from_ref(&noeku),
            std::slice::from_ref(&root),
            &opts
        )
        .is_err()
    );

    // No roots at all.
    assert!(
        reason(verify_chain(&leaf, std::slice::from_ref(&int), &[], &opts))
            .contains("no trusted root")
    );
}

#[test]
fn certificate_accessors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_pki(d);
    let leaf = cert(d, "leaf.pem");
    let int = cert(d, "int.pem");
    leaf.verify_issued_by(&int).unwrap();
    assert!(leaf.verify_issued_by(&leaf).is_err());
    assert_eq!(int.basic_constraints().unwrap(), Some((true, Some(0))));
    assert!(leaf.key_usage().unwrap().unwrap().digital_signature());
    assert_eq!(
        leaf.extended_key_usage().unwrap(),
        Some(vec![stella_crypto::oids::KP_CODE_SIGNING])
    );
    let chain =
        Certificate::pem_chain(&format!("{}{}", read(d, "leaf.pem"), read(d, "int.pem"))).unwrap();
    assert_eq!(chain.len(), 2);
    assert!(Certificate::from_der(&[0x30, 0x00]).is_err());
    assert!(
        Certificate::from_pem(&format!("{}{}", read(d, "leaf.pem"), read(d, "int.pem"))).is_err()
    );
}
