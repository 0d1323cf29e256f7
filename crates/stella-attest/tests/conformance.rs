//! Conformance: DSSE vectors (../shared/conformance/dsse/vectors.json) and
//! in-toto validation vectors (../shared/conformance/in-toto/validation_vectors.json).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use stella_attest::dsse::{Envelope, decode_base64, pae};
use stella_attest::statement::{ResourceDescriptor, Statement};
use stella_crypto::PublicKey;
use stella_crypto::x509::Certificate;

fn load(rel: &str) -> Value {
    let path = format!(
        "{}/../../../shared/conformance/{rel}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("conformance file {path} is required: {e}"));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn dsse_pae_vectors() {
    let v = load("dsse/vectors.json");
    let cases = v["pae"].as_array().unwrap();
    assert!(cases.len() >= 4);
    for c in cases {
        let got = pae(
            c["payloadType"].as_str().unwrap(),
            c["payload_utf8"].as_str().unwrap().as_bytes(),
        );
        assert_eq!(
            String::from_utf8(got).unwrap(),
            c["pae_utf8"].as_str().unwrap(),
            "case {c}"
        );
    }
}

#[test]
fn dsse_envelope_vectors() {
    let v = load("dsse/vectors.json");
    let keys = &v["keys"];
    let envs = v["envelopes"].as_array().unwrap();
    assert!(envs.len() >= 15);
    let (mut valid, mut invalid) = (0, 0);
    for e in envs {
        let id = e["id"].as_str().unwrap();
        let key = if let Some(k) = e["key"].as_str() {
            PublicKey::from_pem(keys[k]["public_key_pem"].as_str().unwrap()).unwrap()
        } else {
            Certificate::from_pem(e["key_certificate_pem"].as_str().unwrap())
                .unwrap()
                .public_key()
                .unwrap()
        };
        let bytes = serde_json::to_vec(&e["envelope"]).unwrap();
        let result = Envelope::parse(&bytes)
            .and_then(|env| env.verify_single(std::slice::from_ref(&key)).map(|_| env));
        let expected_valid = e["expected"].as_str().unwrap() == "valid";
        assert_eq!(
            result.is_ok(),
            expected_valid,
            "vector {id}: {:?}",
            result.err()
        );
        if expected_valid {
            valid += 1;
            // The payload handed on is the exact decoded bytes that were verified.
            let env = result.unwrap();
            let b64 = e["envelope"]["payload"].as_str().unwrap();
            assert_eq!(env.payload, decode_base64(b64).unwrap(), "vector {id}");
        } else {
            invalid += 1;
        }
    }
    assert!(
        valid >= 9 && invalid >= 5,
        "valid {valid} invalid {invalid}"
    );
}

#[test]
fn dsse_base64_forms() {
    let v = load("dsse/vectors.json");
    let b = &v["base64_decoding"];
    let want: Vec<u8> = (0..b["decoded_hex"].as_str().unwrap().len() / 2)
        .map(|i| {
            u8::from_str_radix(&b["decoded_hex"].as_str().unwrap()[2 * i..2 * i + 2], 16).unwrap()
        })
        .collect();
    let inputs = b["inputs"]
        .as_array()
        .or_else(|| b["cases"].as_array())
        .expect("base64 inputs");
    assert_eq!(inputs.len(), 4);
    // Stella accepts all four (standard/URL-safe, padded/unpadded), like protobuf-JSON decoders.
    for i in inputs {
        assert_eq!(
            decode_base64(i["input"].as_str().unwrap()).unwrap(),
            want,
            "{i}"
        );
    }
}

#[test]
fn in_toto_statement_vectors() {
    let v = load("in-toto/validation_vectors.json");
    let cases = v["statements"].as_array().unwrap();
    assert_eq!(cases.len(), 10);
    for c in cases {
        let json = c["json"].as_str().unwrap();
        let expected = c["expected"].as_str().unwrap();
        let got = match Statement::parse(json.as_bytes()) {
            Ok(_) => "ok".to_string(),
            Err(e) => e.kind().to_string(),
        };
        assert_eq!(got, expected, "statement {}", c["desc"]);
    }
}

#[test]
fn in_toto_resource_descriptor_vectors() {
    let v = load("in-toto/validation_vectors.json");
    let cases = v["resource_descriptors"].as_array().unwrap();
    assert_eq!(cases.len(), 8);
    for c in cases {
        let rd: ResourceDescriptor = serde_json::from_str(c["json"].as_str().unwrap()).unwrap();
        let got = match rd.validate() {
            Ok(()) => "ok".to_string(),
            Err(e) => e.kind().to_string(),
        };
        assert_eq!(got, c["expected"].as_str().unwrap(), "rd {}", c["desc"]);
    }
}

#[test]
fn in_toto_examples_parse() {
    let idx = load("in-toto/index.json");
    let text = idx.to_string();
    // Every strict-JSON example statement listed as valid parses; invalid ones fail.
    let base = format!(
        "{}/../../../shared/conformance/in-toto",
        env!("CARGO_MANIFEST_DIR")
    );
    let entries: Vec<Value> = match &idx {
        Value::Array(a) => a.clone(),
        Value::Object(o) => o
            .get("files")
            .and_then(|f| f.as_array().cloned())
            .unwrap_or_default(),
        _ => vec![],
    };
    assert!(
        !entries.is_empty(),
        "index.json layout not understood: {}",
        &text[..text.len().min(200)]
    );
    let mut checked = 0;
    for e in entries {
        if e["strict_json"].as_bool() != Some(true) || e.get("in_toto_go_validate").is_none() {
            continue;
        }
        let path = format!(
            "{base}/{}",
            e["file"].as_str().or(e["path"].as_str()).unwrap()
        );
        let bytes = std::fs::read(&path).unwrap();
        let want = e["in_toto_go_validate"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| e["in_toto_go_validate"].to_string());
        let got = match Statement::parse(&bytes) {
            Ok(_) => "ok".to_string(),
            Err(err) => err.kind().to_string(),
        };
        assert!(
            got == want || (want == "true" && got == "ok"),
            "{path}: got {got}, want {want}"
        );
        checked += 1;
    }
    assert!(checked >= 8, "checked {checked}");
}
