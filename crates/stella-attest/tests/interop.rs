//! Interoperability with independent DSSE implementations: PyPI
//! `securesystemslib` and `cryptography`. python3 and both packages are
//! required: a missing interpreter or package fails the test, never skips it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use stella_attest::bundle::BUNDLE_V03;
use stella_attest::verify::{DSSE_ENVELOPE, TrustPolicy, verify_attestation};
use stella_crypto::{KeyKind, PrivateKey, PublicKey};
use stella_types::Digest;

fn python(dir: &Path, script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("python3 is required for the interop tests: {e}"));
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const PY_SIGN: &str = r#"
import json, sys, base64
from securesystemslib.dsse import Envelope
from securesystemslib.signer import CryptoSigner
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives import serialization

digest = sys.argv[1]
stmt = {"_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "example.com/app", "digest": {"sha256": digest}}],
        "predicateType": "https://openvex.dev/ns",
        "predicate": {"statements": [], "note": "signed by python " + "\u00e9"}}
payload = json.dumps(stmt, indent=1).encode()
out = {}

# 1. securesystemslib, ECDSA P-256 (DER signature, with keyid).
signer = CryptoSigner.generate_ecdsa()
env = Envelope(payload=payload, payload_type="application/vnd.in-toto+json", signatures={})
env.sign(signer)
out["sslib"] = {"envelope": env.to_dict(), "pub": signer.public_key.keyval["public"]}

# 2. plain cryptography, Ed25519, PAE computed here, URL-safe base64.
sk = ed25519.Ed25519PrivateKey.generate()
pt = "application/vnd.in-toto+json"
pae = b"DSSEv1 %d %s %d %s" % (len(pt.encode()), pt.encode(), len(payload), payload)
sig = sk.sign(pae)
pub = sk.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
out["ed25519"] = {"envelope": {"payload": base64.urlsafe_b64encode(payload).decode(), "payloadType": pt,
                               "signatures": [{"keyid": "", "sig": base64.urlsafe_b64encode(sig).decode()}]},
                  "pub": pub}
print(json.dumps(out))
"#;

const PY_VERIFY: &str = r#"
import copy, json, sys, base64
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives import hashes

bundle = json.load(open(sys.argv[1]))
pub = load_pem_public_key(open(sys.argv[2], "rb").read())
assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
e = bundle["dsseEnvelope"]
# securesystemslib: keyid is only used to pair signature and key.
keyid = e["signatures"][0]["keyid"]
env = Envelope.from_dict(copy.deepcopy(e))
key = SSlibKey.from_crypto(pub, keyid=keyid)
env.verify([key], 1)
# cryptography over a PAE computed here, then parse the statement.
payload = base64.b64decode(e["payload"])
pt = e["payloadType"].encode()
pae = b"DSSEv1 %d %s %d %s" % (len(pt), pt, len(payload), payload)
sig = base64.b64decode(e["signatures"][0]["sig"])
if isinstance(pub, ec.EllipticCurvePublicKey):
    pub.verify(sig, pae, ec.ECDSA(hashes.SHA256()))
else:
    pub.verify(sig, pae)
st = json.loads(payload)
print(st["subject"][0]["digest"]["sha256"], st["predicateType"])
# A modified payload must fail in securesystemslib too.
e2 = copy.deepcopy(e); e2["payload"] = base64.b64encode(payload + b" ").decode()
try:
    Envelope.from_dict(e2).verify([key], 1)
    print("TAMPER-ACCEPTED")
except Exception:
    print("tamper-rejected")
"#;

#[test]
fn python_signed_envelopes_verify_in_stella() {
    let dir = tempfile::tempdir().unwrap();
    let image = Digest::sha256_of(b"python interop image");
    let out: Value = serde_json::from_str(&python(dir.path(), PY_SIGN, &[image.hex()])).unwrap();
    for which in ["sslib", "ed25519"] {
        let key = PublicKey::from_pem(out[which]["pub"].as_str().unwrap()).unwrap();
        let policy = TrustPolicy {
            keys: vec![key],
            ..Default::default()
        };
        let env = serde_json::to_vec(&out[which]["envelope"]).unwrap();
        let v = verify_attestation(&env, DSSE_ENVELOPE, &image, &policy);
        assert!(v.verified, "{which}: {v:?}");
        assert_eq!(v.predicate_type.as_deref(), Some("https://openvex.dev/ns"));
        // The same envelope is not evidence for another image.
        let v = verify_attestation(&env, DSSE_ENVELOPE, &Digest::sha256_of(b"x"), &policy);
        assert!(!v.verified, "{which}");
        // And a different key does not verify it.
        let other = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
        let v = verify_attestation(
            &env,
            DSSE_ENVELOPE,
            &image,
            &TrustPolicy {
                keys: vec![other.public_key().clone()],
                ..Default::default()
            },
        );
        assert!(!v.verified, "{which}");
    }
}

#[test]
fn stella_bundles_verify_in_python() {
    let dir = tempfile::tempdir().unwrap();
    let image = Digest::sha256_of(b"stella interop image");
    for kind in [KeyKind::EcdsaP256, KeyKind::Ed25519] {
        let key = PrivateKey::generate(kind).unwrap();
        let signed = stella_attest::sign::attest(
            "example.com/app",
            &image,
            "https://slsa.dev/provenance/v1",
            json!({"b": [1, 2.5, "ü"]}),
            &key,
            &[],
        )
        .unwrap();
        assert_eq!(signed.media_type, BUNDLE_V03);
        std::fs::write(dir.path().join("bundle.json"), &signed.bundle_json).unwrap();
        std::fs::write(dir.path().join("key.pub"), key.public_key().to_pem()).unwrap();
        let out = python(dir.path(), PY_VERIFY, &["bundle.json", "key.pub"]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines,
            vec![
                format!("{} https://slsa.dev/provenance/v1", image.hex()).as_str(),
                "tamper-rejected"
            ],
            "{kind}"
        );
    }
}
