//! DSSE vectors (../shared/conformance/dsse): PAE encoding and the real
//! Sigstore envelopes, verified the way the bundle verifier does (exactly one
//! signature, ECDSA DER over PAE with the Fulcio leaf key).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use serde_json::Value;
use stella_sigstore::{Certificate, pae};

const DSSE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/conformance/dsse/vectors.json"
);

fn vectors() -> Value {
    serde_json::from_slice(&std::fs::read(DSSE).unwrap()).unwrap()
}

#[test]
fn pae_vectors() {
    let v = vectors();
    let cases = v["pae"].as_array().unwrap();
    assert!(cases.len() >= 4);
    for c in cases {
        let got = pae(
            c["payloadType"].as_str().unwrap(),
            c["payload_utf8"].as_str().unwrap().as_bytes(),
        );
        assert_eq!(got, c["pae_utf8"].as_str().unwrap().as_bytes(), "{c}");
    }
}

#[test]
fn sigstore_envelopes() {
    let v = vectors();
    let mut n = 0;
    for e in v["envelopes"].as_array().unwrap() {
        let id = e["id"].as_str().unwrap();
        if !id.starts_with("sigstore-") {
            continue;
        }
        let key = Certificate::from_pem(e["key_certificate_pem"].as_str().unwrap())
            .unwrap()
            .public_key()
            .unwrap();
        let env = &e["envelope"];
        let sigs = env["signatures"].as_array().unwrap();
        let b64 = base64::engine::general_purpose::STANDARD;
        let ok = sigs.len() == 1 && {
            let payload = b64.decode(env["payload"].as_str().unwrap()).unwrap();
            let sig = b64.decode(sigs[0]["sig"].as_str().unwrap()).unwrap();
            key.verify(
                key.default_algorithm(),
                &pae(env["payloadType"].as_str().unwrap(), &payload),
                &sig,
            )
            .is_ok()
        };
        assert_eq!(ok, e["expected"].as_str().unwrap() == "valid", "{id}");
        n += 1;
    }
    assert_eq!(n, 6);
}
