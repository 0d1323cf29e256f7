//! verify_attestation end to end on bytes: key- and PKI-signed bundles, plain
//! envelopes, and the bad inputs the verifier must reject with a reason.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use stella_testkit::fixtures::pki as common;

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use stella_attest::bundle::{BUNDLE_V02, BUNDLE_V03};
use stella_attest::dsse::{Envelope, encode_base64};
use stella_attest::sign::attest;
use stella_attest::verify::{
    DSSE_ENVELOPE, FailureKind, TrustPolicy, TrustWords, verify_attestation,
};
use stella_crypto::x509::Certificate;
use stella_crypto::{KeyKind, PrivateKey};
use stella_types::Digest;

fn image() -> Digest {
    Digest::sha256_of(b"image manifest")
}

fn key_policy(k: &PrivateKey) -> TrustPolicy {
    TrustPolicy {
        keys: vec![k.public_key().clone()],
        ..Default::default()
    }
}

fn signed_bundle(k: &PrivateKey) -> Vec<u8> {
    attest(
        "example.com/app",
        &image(),
        "https://slsa.dev/provenance/v1",
        json!({"buildType": "x"}),
        k,
        &[],
    )
    .unwrap()
    .bundle_json
}

fn mutate(bundle: &[u8], f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(bundle).unwrap();
    f(&mut v);
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn key_signed_bundle_verifies_both_algorithms() {
    for kind in [KeyKind::EcdsaP256, KeyKind::Ed25519] {
        let k = PrivateKey::generate(kind).unwrap();
        let b = signed_bundle(&k);
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["mediaType"], BUNDLE_V03);
        assert_eq!(v["verificationMaterial"]["tlogEntries"], json!([]));
        assert_eq!(
            v["dsseEnvelope"]["payloadType"],
            "application/vnd.in-toto+json"
        );
        let verdict = verify_attestation(&b, BUNDLE_V03, &image(), &key_policy(&k));
        assert!(verdict.verified, "{verdict:?}");
        assert_eq!(
            verdict.predicate_type.as_deref(),
            Some("https://slsa.dev/provenance/v1")
        );
        assert!(verdict.signer.unwrap().starts_with("key sha256:"));
    }
}

#[test]
fn wrong_key_other_image_and_tampering_fail() {
    let k = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
    let other = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
    let b = signed_bundle(&k);

    let v = verify_attestation(&b, BUNDLE_V03, &image(), &key_policy(&other));
    assert!(!v.verified);
    assert_eq!(v.failure, Some(FailureKind::Failed));
    assert!(v.reason.contains("does not verify"), "{}", v.reason);
    // The unverified claim is still reported for display.
    assert_eq!(
        v.claimed_predicate_type.as_deref(),
        Some("https://slsa.dev/provenance/v1")
    );
    assert_eq!(v.predicate_type, None);

    // Validly signed, but about another image.
    let v = verify_attestation(
        &b,
        BUNDLE_V03,
        &Digest::sha256_of(b"other"),
        &key_policy(&k),
    );
    assert!(!v.verified);
    assert!(v.reason.contains("subject does not match"), "{}", v.reason);

    // Tampered payload.
    let t = mutate(&b, |v| {
        let p = v["dsseEnvelope"]["payload"].as_str().unwrap().to_string();
        let mut bytes = stella_attest::dsse::decode_base64(&p).unwrap();
        bytes[10] ^= 1;
        v["dsseEnvelope"]["payload"] = Value::String(encode_base64(&bytes));
    });
    let v = verify_attestation(&t, BUNDLE_V03, &image(), &key_policy(&k));
    assert!(
        !v.verified && v.reason.contains("does not verify"),
        "{}",
        v.reason
    );

    // payloadType changed.
    let t = mutate(&b, |v| {
        v["dsseEnvelope"]["payloadType"] = json!("text/plain")
    });
    let v = verify_attestation(&t, BUNDLE_V03, &image(), &key_policy(&k));
    assert!(
        !v.verified && v.reason.contains("payloadType"),
        "{}",
        v.reason
    );

    // Zero and two signatures.
    let t = mutate(&b, |v| v["dsseEnvelope"]["signatures"] = json!([]));
    let v = verify_attestation(&t, BUNDLE_V03, &image(), &key_policy(&k));
    assert!(v.reason.contains("0 signatures"), "{}", v.reason);
    let t = mutate(&b, |v| {
        let s = v["dsseEnvelope"]["signatures"][0].clone();
        v["dsseEnvelope"]["signatures"] = json!([s.clone(), s]);
    });
    let v = verify_attestation(&t, BUNDLE_V03, &image(), &key_policy(&k));
    assert!(v.reason.contains("2 signatures"), "{}", v.reason);

    // Truncated and non-base64 signatures.
    let t = mutate(&b, |v| {
        let s = v["dsseEnvelope"]["signatures"][0]["sig"]
            .as_str()
            .unwrap()
            .to_string();
        v["dsseEnvelope"]["signatures"][0]["sig"] = json!(s[..s.len() - 8].to_string());
    });
    let v = verify_attestation(&t, BUNDLE_V03, &image(), &key_policy(&k));
    assert!(!v.verified, "{v:?}");
    let t = mutate(&b, |v| {
        v["dsseEnvelope"]["signatures"][0]["sig"] = json!("!!not base64!!")
    });
    let v = verify_attestation(&t, BUNDLE_V03, &image(), &key_policy(&k));
    assert_eq!(v.failure, Some(FailureKind::Unusable));
    assert!(v.reason.contains("base64"), "{}", v.reason);

    // Not JSON at all; unknown media type.
    let v = verify_attestation(b"\xff\xfe", BUNDLE_V03, &image(), &key_policy(&k));
    assert_eq!(v.failure, Some(FailureKind::Unusable));
    let v = verify_attestation(b"{}", "application/octet-stream", &image(), &key_policy(&k));
    assert_eq!(v.failure, Some(FailureKind::Unusable));
    // Empty policy.
    let v = verify_attestation(&b, BUNDLE_V03, &image(), &TrustPolicy::default());
    assert_eq!(v.failure, Some(FailureKind::Unusable));
}

fn sign_payload(k: &PrivateKey, payload: &[u8]) -> Vec<u8> {
    Envelope::sign("application/vnd.in-toto+json", payload.to_vec(), k, None)
        .unwrap()
        .to_json()
        .unwrap()
}

#[test]
fn signed_but_bad_statements_fail_with_reason() {
    let k = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
    let p = key_policy(&k);
    let cases: [(&[u8], &str); 5] = [
        (b"\xff\xfe not utf8", "not UTF-8"),
        (b"not json", "not a JSON statement"),
        (br#"{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"x","predicate":{}}"#, "no subject"),
        (br#"{"_type":"https://in-toto.io/Statement/v9","subject":[{"digest":{"sha256":"00"}}],"predicateType":"x","predicate":{}}"#, "_type"),
        (br#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha256":"00"}}],"predicateType":"x","predicate":{}}"#, "wrong length"),
    ];
    for (payload, want) in cases {
        let env = sign_payload(&k, payload);
        let v = verify_attestation(&env, DSSE_ENVELOPE, &image(), &p);
        assert!(!v.verified, "{want}");
        assert!(v.reason.contains(want), "want {want:?}, got {}", v.reason);
    }
    // A statement v0.1 in a plain envelope about the image verifies.
    let st = format!(
        r#"{{"_type":"https://in-toto.io/Statement/v0.1","subject":[{{"name":"a","digest":{{"sha256":"{}"}}}}],"predicateType":"https://openvex.dev/ns","predicate":{{}}}}"#,
        image().hex()
    );
    let v = verify_attestation(
        &sign_payload(&k, st.as_bytes()),
        DSSE_ENVELOPE,
        &image(),
        &p,
    );
    assert!(v.verified, "{v:?}");
}

#[test]
fn oversized_payload_is_rejected_before_decoding() {
    let k = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
    let big = "A".repeat((stella_types::limits::MAX_DSSE_PAYLOAD_BYTES as usize / 3) * 4 + 8);
    let env = format!(
        r#"{{"payload":"{big}","payloadType":"application/vnd.in-toto+json","signatures":[{{"sig":"AAAA"}}]}}"#
    );
    let v = verify_attestation(env.as_bytes(), DSSE_ENVELOPE, &image(), &key_policy(&k));
    assert!(!v.verified);
    assert!(v.reason.contains("limit"), "{}", v.reason);
}

#[test]
fn pki_signed_bundles() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::make_pki(d);
    let load = |n: &str| Certificate::from_pem(&common::read(d, n)).unwrap();
    let key = |n: &str| PrivateKey::from_pkcs8_pem(&common::read(d, n), None).unwrap();
    let root = load("root.pem");
    let int = load("int.pem");
    let policy = TrustPolicy {
        ca_roots: vec![root.clone()],
        ..Default::default()
    };
    let sign = |leaf: &str, with_int: bool| {
        let mut certs = vec![load(&format!("{leaf}.pem"))];
        if with_int {
            certs.push(int.clone());
        }
        attest(
            "app",
            &image(),
            "https://spdx.dev/Document",
            json!({}),
            &key(&format!("{leaf}.key")),
            &certs,
        )
        .unwrap()
    };

    // Leaf + intermediate: written as a v0.2 bundle with x509CertificateChain.
    let s = sign("leaf", true);
    assert_eq!(s.media_type, BUNDLE_V02);
    let v: Value = serde_json::from_slice(&s.bundle_json).unwrap();
    assert_eq!(
        v["verificationMaterial"]["x509CertificateChain"]["certificates"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let verdict = verify_attestation(&s.bundle_json, &s.media_type, &image(), &policy);
    assert!(verdict.verified, "{verdict:?}");
    assert!(
        verdict.reason.contains("verification time"),
        "{}",
        verdict.reason
    );
    assert!(verdict.signer.unwrap().contains("leaf@example.com"));

    // Leaf only (v0.3): the intermediate is missing, so the chain fails...
    let s3 = sign("leaf", false);
    assert_eq!(s3.media_type, BUNDLE_V03);
    let v = verify_attestation(&s3.bundle_json, &s3.media_type, &image(), &policy);
    assert!(
        !v.verified && v.reason.contains("does not chain"),
        "{}",
        v.reason
    );
    // ...unless the user's trust-root file carries the intermediate as well.
    let both = TrustPolicy {
        ca_roots: vec![root.clone(), int.clone()],
        ..Default::default()
    };
    assert!(verify_attestation(&s3.bundle_json, &s3.media_type, &image(), &both).verified);

    // Wrong CA.
    let other = TrustPolicy {
        ca_roots: vec![load("other.pem")],
        ..Default::default()
    };
    let v = verify_attestation(&s.bundle_json, &s.media_type, &image(), &other);
    assert!(
        !v.verified && v.reason.contains("does not chain"),
        "{}",
        v.reason
    );
    // The intermediate carried in the bundle is never an anchor, even if it
    // is the only thing "trusted" besides an unrelated root.
    // Missing digitalSignature / wrong EKU.
    let v = verify_attestation(
        &sign("leaf-nods", true).bundle_json,
        BUNDLE_V02,
        &image(),
        &policy,
    );
    assert!(
        !v.verified && v.reason.contains("digitalSignature"),
        "{}",
        v.reason
    );
    let v = verify_attestation(
        &sign("leaf-server", true).bundle_json,
        BUNDLE_V02,
        &image(),
        &policy,
    );
    assert!(
        !v.verified && v.reason.contains("codeSigning"),
        "{}",
        v.reason
    );
    // Expired at verification time.
    let later = TrustPolicy {
        ca_roots: vec![root.clone()],
        verification_time: Some(SystemTime::now() + Duration::from_secs(3 * 86_400)),
        ..Default::default()
    };
    let v = verify_attestation(
        &sign("leaf-short", true).bundle_json,
        BUNDLE_V02,
        &image(),
        &later,
    );
    assert!(!v.verified && v.reason.contains("expired"), "{}", v.reason);
    // Certificate-signed but only a key trusted: the reason names the
    // missing material in the caller's words (plain ones by default; the
    // library names no command-line flag).
    let k = key("leaf.key");
    let v = verify_attestation(&s.bundle_json, &s.media_type, &image(), &key_policy(&k));
    assert!(
        !v.verified && v.reason.contains("no trusted CA root was given"),
        "{}",
        v.reason
    );
    assert!(!v.reason.contains("--"), "{}", v.reason);
    let worded = TrustPolicy {
        words: TrustWords {
            ca_root: "caRoots".into(),
            ..TrustWords::default()
        },
        ..key_policy(&k)
    };
    let v = verify_attestation(&s.bundle_json, &s.media_type, &image(), &worded);
    assert!(v.reason.contains("no caRoots was given"), "{}", v.reason);
    // Signing with a key that is not the certificate's is refused.
    assert!(
        attest(
            "app",
            &image(),
            "x:y",
            json!({}),
            &key("leaf-noeku.key"),
            &[load("leaf.pem")]
        )
        .is_err()
    );
}

/// Hostile-input smoke test: every truncation and a sweep of byte flips of a
/// valid bundle, envelope and certificate-carrying bundle give a verdict,
/// never a panic, and never "verified" unless the bytes are unchanged.
#[test]
fn truncations_and_bit_flips_never_panic_or_verify() {
    let k = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
    let b = signed_bundle(&k);
    let p = key_policy(&k);
    for cut in 0..b.len() {
        let v = verify_attestation(&b[..cut], BUNDLE_V03, &image(), &p);
        assert!(!v.verified, "truncated at {cut} verified");
    }
    // A flip may only survive where it changes nothing signed (e.g. the
    // unauthenticated hint / keyid, or an unknown field name serde ignores):
    // whatever verifies must decode to the same payload, type and signature.
    let orig = stella_attest::bundle::Bundle::parse(&b).unwrap().envelope;
    for i in 0..b.len() {
        let mut m = b.clone();
        m[i] ^= 0x04;
        let verified = verify_attestation(&m, BUNDLE_V03, &image(), &p).verified;
        if verified {
            let env = stella_attest::bundle::Bundle::parse(&m).unwrap().envelope;
            assert_eq!(env.payload, orig.payload, "flip at {i}");
            assert_eq!(env.payload_type, orig.payload_type, "flip at {i}");
            assert_eq!(env.signatures[0].sig, orig.signatures[0].sig, "flip at {i}");
        }
        if i % 7 == 0 {
            let _ = verify_attestation(&m, DSSE_ENVELOPE, &image(), &p);
            let _ = verify_attestation(&m, "application/json", &image(), &p);
        }
    }
}
