//! Harness: key and certificate loading in `stella_crypto`: PEM blocks,
//! public keys (SPKI), private keys (PKCS#8, no passphrase: the
//! passphrase path is bounded by `MAX_PBKDF2_ITERATIONS` and would only
//! slow the fuzzer down), certificates and chains, as PEM text and as DER.
//!
//! Shared by `fuzz/fuzz_targets/pem_keys.rs` and the corpus replay test in
//! `crates/stella-crypto/tests/fuzz_corpus.rs`.

use stella_crypto::x509::Certificate;
use stella_crypto::{PrivateKey, PublicKey, pem};

/// Runs one input; must never panic or hang.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = pem::parse_all(&text);
    if let Ok(key) = PublicKey::from_pem(&text) {
        round_trip_public(&key);
    }
    if let Ok(key) = PrivateKey::from_pkcs8_pem(&text, None) {
        round_trip_public(key.public_key());
    }
    if let Ok(cert) = Certificate::from_pem(&text) {
        inspect(&cert);
    }
    if let Ok(chain) = Certificate::pem_chain(&text) {
        chain.iter().for_each(inspect);
    }
    if let Ok(key) = PublicKey::from_spki_der(data) {
        round_trip_public(&key);
    }
    let _ = PrivateKey::from_pkcs8_der(data);
    if let Ok(cert) = Certificate::from_der(data) {
        inspect(&cert);
    }
}

/// What we load we can write and load again, to the same key.
fn round_trip_public(key: &PublicKey) {
    let again = PublicKey::from_pem(&key.to_pem());
    assert!(
        again.as_ref().is_ok_and(|k| k == key),
        "public key PEM round trip: {again:?}"
    );
}

fn inspect(cert: &Certificate) {
    let _ = cert.public_key();
    let _ = cert.subject();
    let _ = cert.issuer();
    let _ = cert.serial_hex();
    let _ = cert.not_before();
    let _ = cert.not_after();
    let _ = cert.basic_constraints();
    let _ = cert.key_usage();
    let again = Certificate::from_pem(&cert.to_pem());
    assert!(again.is_ok(), "certificate PEM round trip: {again:?}");
}
