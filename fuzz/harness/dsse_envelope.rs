//! Harness: DSSE envelopes, sigstore bundles and in-toto statements as
//! `stella_attest` reads them, the PAE of `stella_types::dsse`, and the
//! whole `verify_attestation` path against a fixed key that also signed the
//! committed seeds, with the subject the statement claims (so inputs near a
//! seed reach the signature-verified paths). The first byte picks the media
//! type the bytes are offered under.
//!
//! Shared by `fuzz/fuzz_targets/dsse_envelope.rs` and the corpus replay
//! test in `crates/stella-attest/tests/fuzz_corpus.rs`.

use std::sync::OnceLock;

use stella_attest::bundle::{BUNDLE_V02, BUNDLE_V03, Bundle};
use stella_attest::dsse::Envelope;
use stella_attest::statement::Statement;
use stella_attest::verify::{DSSE_ENVELOPE, TrustPolicy, verify_attestation};
use stella_crypto::PrivateKey;
use stella_types::Digest;

const MEDIA_TYPES: [&str; 4] = [
    DSSE_ENVELOPE,
    BUNDLE_V03,
    BUNDLE_V02,
    "application/vnd.in-toto+json",
];

/// A P-256 key made for the fuzz corpus only and used nowhere else: the
/// committed seeds are signed with it (`fuzz/make_corpus.sh` reads it from
/// this file).
const CORPUS_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgbwJZyAOfvLLAN1q4
NV1iEI8EdfItjCcqwaz1DU8WZRKhRANCAATZPWrl7CloawucSCK861MS7VkClBP2
6r5V33B50MRTFbvI+qWrQyrLJ+KHJySU+TFmHMGpFS8eZMk2QwnuJah9
-----END PRIVATE KEY-----
";

fn policy() -> Option<&'static TrustPolicy> {
    static POLICY: OnceLock<Option<TrustPolicy>> = OnceLock::new();
    POLICY
        .get_or_init(|| {
            let key = PrivateKey::from_pkcs8_pem(CORPUS_KEY_PEM, None).ok()?;
            Some(TrustPolicy {
                keys: vec![key.public_key().clone()],
                ..Default::default()
            })
        })
        .as_ref()
}

/// The first subject digest the input's statement claims, if any.
fn claimed_subject(envelope: Option<&Envelope>) -> Option<Digest> {
    let statement = Statement::parse(envelope?.payload_bytes()).ok()?;
    let first = statement.subject_digests().into_iter().next()?;
    Digest::parse(&first).ok()
}

/// Runs one input; must never panic or hang.
pub fn run(data: &[u8]) {
    let _ = verified(data);
}

/// Runs one input and says whether `verify_attestation` accepted it (the
/// replay test uses this to check that the signed seeds reach the
/// verified path).
pub fn verified(data: &[u8]) -> bool {
    let Some((&selector, rest)) = data.split_first() else {
        return false;
    };
    let mut envelope = Envelope::parse(rest).ok();
    if let Some(e) = &envelope {
        check_pae(&e.payload_type, e.payload_bytes(), &e.pae());
    }
    if let Ok(bundle) = Bundle::parse(rest) {
        envelope = envelope.or(Some(bundle.envelope));
    }
    let _ = Statement::parse(rest);
    let (payload_type, payload) = split_pae_input(rest);
    check_pae(
        &payload_type,
        payload,
        &stella_types::dsse::pae(&payload_type, payload),
    );
    if let Some(policy) = policy() {
        let media_type = MEDIA_TYPES[usize::from(selector) % MEDIA_TYPES.len()];
        let subject = claimed_subject(envelope.as_ref())
            .unwrap_or_else(|| Digest::sha256_of(b"fuzzed subject"));
        return verify_attestation(rest, media_type, &subject, policy).verified;
    }
    false
}

/// Splits the input at its first NUL into a payload type and a payload.
fn split_pae_input(data: &[u8]) -> (String, &[u8]) {
    match data.iter().position(|b| *b == 0) {
        Some(i) => (
            String::from_utf8_lossy(data.get(..i).unwrap_or_default()).into_owned(),
            data.get(i + 1..).unwrap_or_default(),
        ),
        None => (String::new(), data),
    }
}

/// PAE is `DSSEv1 <len type> <type> <len payload> <payload>`: the layout
/// must be exactly that, so two (type, payload) pairs never collide.
fn check_pae(payload_type: &str, payload: &[u8], pae: &[u8]) {
    let header = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    );
    assert_eq!(pae.len(), header.len() + payload.len(), "PAE length");
    assert!(pae.starts_with(header.as_bytes()), "PAE header");
    assert!(pae.ends_with(payload), "PAE body");
}
