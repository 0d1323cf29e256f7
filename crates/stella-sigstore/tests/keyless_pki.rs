//! Keyless verification against a private sigstore deployment built in the
//! test: a Fulcio-like CA (root + intermediate, made with rcgen), a Rekor-like
//! log key, a trusted_root.json naming them, and bundles signed and logged
//! here. Covers what the public conformance data cannot:
//! - the keyless path runs stella-crypto's one chain validator: an
//!   intermediate without keyCertSign, a leaf without digitalSignature and a
//!   path-length violation are refused (the old sigstore-private validator
//!   accepted all three);
//! - protobuf-JSON zero values: a log entry at index 0 (the first entry of a
//!   new log), whose `logIndex` fields the bundle leaves out, verifies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, SanType,
};
use serde_json::{Value, json};
use stella_crypto::{KeyKind, PrivateKey};
use stella_sigstore::{
    Artifact, Bundle, IdentityPolicy, Matcher, Policy, SigstoreError, TrustedRoot, Verifier,
    VerifierConfig,
};
use stella_types::digest::sha256_bytes;
use time::OffsetDateTime;

const IDENTITY: &str = "https://example.test/workflows/release.yml@refs/heads/main";
const OIDC_ISSUER: &str = "https://issuer.example.test";
const LOG_URL: &str = "https://rekor.example.test";
const ARTIFACT: &[u8] = b"release artifact\n";
/// 2025-01-01T00:05:00Z: when the entry was logged (inside the leaf's window).
const INTEGRATED_TIME: i64 = 1_735_689_900;

/// What to break in the certificate hierarchy.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Pki {
    Good,
    IntermediateWithoutKeyCertSign,
    LeafWithoutDigitalSignature,
    RootPathLenZero,
}

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

fn ca_params(cn: &str, path_len: Option<u8>, key_cert_sign: bool) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name
        .push(DnType::OrganizationName, "Stella test");
    p.not_before = at(1_704_067_200); // 2024-01-01
    p.not_after = at(1_893_456_000); // 2030-01-01
    p.is_ca = IsCa::Ca(match path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    p.key_usages = if key_cert_sign {
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign]
    } else {
        vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::CrlSign]
    };
    p
}

/// DER of a UTF8String (the Fulcio v2 issuer extension value).
fn utf8_string(s: &str) -> Vec<u8> {
    let mut out = vec![0x0c, u8::try_from(s.len()).unwrap()];
    out.extend_from_slice(s.as_bytes());
    out
}

/// The CA chain (intermediate, root) as DER and the leaf DER + its key.
struct Hierarchy {
    chain: Vec<Vec<u8>>,
    leaf: Vec<u8>,
    leaf_key: PrivateKey,
}

fn hierarchy(pki: Pki) -> Hierarchy {
    let root_key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
    let root_len = if pki == Pki::RootPathLenZero {
        Some(0)
    } else {
        Some(1)
    };
    let root_params = ca_params("test root", root_len, true);
    let root_cert = root_params.self_signed(&root_key).unwrap();
    let root = Issuer::new(root_params, root_key);

    let int_key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
    let int_params = ca_params(
        "test intermediate",
        Some(0),
        pki != Pki::IntermediateWithoutKeyCertSign,
    );
    let int_cert = int_params.signed_by(&int_key, &root).unwrap();
    let int = Issuer::new(int_params, int_key);

    let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.not_before = at(INTEGRATED_TIME - 300);
    p.not_after = at(INTEGRATED_TIME + 300);
    p.subject_alt_names = vec![SanType::URI(IDENTITY.try_into().unwrap())];
    p.key_usages = if pki == Pki::LeafWithoutDigitalSignature {
        vec![KeyUsagePurpose::KeyAgreement]
    } else {
        vec![KeyUsagePurpose::DigitalSignature]
    };
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    p.custom_extensions = vec![CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 4, 1, 57264, 1, 8],
        utf8_string(OIDC_ISSUER),
    )];
    let leaf = p.signed_by(&leaf_key, &int).unwrap();
    Hierarchy {
        chain: vec![int_cert.der().to_vec(), root_cert.der().to_vec()],
        leaf: leaf.der().to_vec(),
        leaf_key: PrivateKey::from_pkcs8_der(&leaf_key.serialize_der()).unwrap(),
    }
}

fn b64(b: &[u8]) -> String {
    STANDARD.encode(b)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

struct Log {
    key: PrivateKey,
    id: Vec<u8>,
}

fn log() -> Log {
    let key = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
    let id = sha256_bytes(key.public_key().spki_der()).to_vec();
    Log { key, id }
}

fn trusted_root(h: &Hierarchy, log: &Log) -> TrustedRoot {
    let doc = json!({
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [{
            "baseUrl": LOG_URL,
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": b64(log.key.public_key().spki_der()),
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": {"start": "2024-01-01T00:00:00Z"}
            },
            "logId": {"keyId": b64(&log.id)}
        }],
        "certificateAuthorities": [{
            "subject": {"organization": "Stella test", "commonName": "test"},
            "uri": "https://fulcio.example.test",
            "certChain": {"certificates": h.chain.iter().map(|c| json!({"rawBytes": b64(c)})).collect::<Vec<_>>()},
            "validFor": {"start": "2024-01-01T00:00:00Z"}
        }],
        "ctlogs": [],
        "timestampAuthorities": []
    });
    TrustedRoot::from_json(&serde_json::to_vec(&doc).unwrap()).unwrap()
}

/// A checkpoint note for a one-leaf tree, signed Rekor v1 style (key ID =
/// first 4 bytes of the log ID).
fn checkpoint(log: &Log, root_hash: &[u8]) -> String {
    let text = format!("rekor.example.test - 1\n1\n{}\n", b64(root_hash));
    let sig = log.key.sign(text.as_bytes()).unwrap();
    let mut raw = log.id[..4].to_vec();
    raw.extend_from_slice(&sig);
    format!("{text}\n\u{2014} rekor.example.test {}\n", b64(&raw))
}

/// A v0.3 bundle: message signature over [`ARTIFACT`], logged at index 0 of
/// a fresh log with a signed entry timestamp and an inclusion proof. The
/// zero `logIndex` fields are written out ([`omit_zero_log_index`] removes
/// them as protobuf JSON does).
fn bundle(h: &Hierarchy, log: &Log) -> Value {
    let digest = sha256_bytes(ARTIFACT);
    let sig = h.leaf_key.sign(ARTIFACT).unwrap();
    let leaf_pem = stella_crypto::pem::encode("CERTIFICATE", &h.leaf);
    let body = serde_json::to_vec(&json!({
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": hex(&digest)}},
            "signature": {"content": b64(&sig), "publicKey": {"content": b64(leaf_pem.as_bytes())}}
        }
    }))
    .unwrap();
    let set_payload = format!(
        "{{\"body\":\"{}\",\"integratedTime\":{},\"logID\":\"{}\",\"logIndex\":0}}",
        b64(&body),
        INTEGRATED_TIME,
        hex(&log.id)
    );
    let set = log.key.sign(set_payload.as_bytes()).unwrap();
    let root_hash = stella_tlog::leaf_hash(&body);
    json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {
            "certificate": {"rawBytes": b64(&h.leaf)},
            "tlogEntries": [{
                "logIndex": "0",
                "logId": {"keyId": b64(&log.id)},
                "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"},
                "integratedTime": INTEGRATED_TIME.to_string(),
                "inclusionPromise": {"signedEntryTimestamp": b64(&set)},
                "inclusionProof": {
                    "logIndex": "0",
                    "rootHash": b64(&root_hash),
                    "treeSize": "1",
                    "hashes": [],
                    "checkpoint": {"envelope": checkpoint(log, &root_hash)}
                },
                "canonicalizedBody": b64(&body)
            }]
        },
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": b64(&digest)},
            "signature": b64(&sig)
        }
    })
}

/// Drops the zero `logIndex` fields, as a protobuf-JSON writer does.
fn omit_zero_log_index(b: &mut Value) {
    let entry = &mut b["verificationMaterial"]["tlogEntries"][0];
    entry.as_object_mut().unwrap().remove("logIndex");
    entry["inclusionProof"]
        .as_object_mut()
        .unwrap()
        .remove("logIndex");
}

fn verify(bundle: &Value, root: &TrustedRoot) -> Result<(), SigstoreError> {
    let b = Bundle::parse(&serde_json::to_vec(bundle).unwrap())?;
    let policy = Policy::Identity(IdentityPolicy {
        identity: Matcher::Exact(IDENTITY.into()),
        issuer: Matcher::Exact(OIDC_ISSUER.into()),
    });
    // No CT log in this deployment: SCTs are not required here.
    let config = VerifierConfig {
        require_sct: false,
        ..VerifierConfig::default()
    };
    Verifier::new(root.clone(), config)
        .verify(&b, Artifact::Bytes(ARTIFACT), &policy)
        .map(|_| ())
}

fn outcome(pki: Pki) -> Result<(), SigstoreError> {
    let h = hierarchy(pki);
    let log = log();
    verify(&bundle(&h, &log), &trusted_root(&h, &log))
}

#[test]
fn private_deployment_at_log_index_zero_verifies() {
    outcome(Pki::Good).unwrap();
}

#[test]
fn log_index_zero_left_out_as_protobuf_json_does_verifies() {
    let h = hierarchy(Pki::Good);
    let log = log();
    let mut b = bundle(&h, &log);
    omit_zero_log_index(&mut b);
    verify(&b, &trusted_root(&h, &log)).unwrap();
    // `null` is the same as absent.
    let mut b = bundle(&h, &log);
    b["verificationMaterial"]["tlogEntries"][0]["logIndex"] = Value::Null;
    verify(&b, &trusted_root(&h, &log)).unwrap();
}

#[test]
fn absent_tree_size_reads_as_zero_and_fails_the_proof() {
    let h = hierarchy(Pki::Good);
    let log = log();
    let mut b = bundle(&h, &log);
    b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
        .as_object_mut()
        .unwrap()
        .remove("treeSize");
    let e = verify(&b, &trusted_root(&h, &log)).unwrap_err();
    assert!(!e.is_unusable(), "{e}");
    assert!(e.to_string().contains("inclusion proof"), "{e}");
}

#[test]
fn absent_integrated_time_reads_as_zero_and_fails_the_set() {
    let h = hierarchy(Pki::Good);
    let log = log();
    let mut b = bundle(&h, &log);
    b["verificationMaterial"]["tlogEntries"][0]
        .as_object_mut()
        .unwrap()
        .remove("integratedTime");
    let e = verify(&b, &trusted_root(&h, &log)).unwrap_err();
    assert!(!e.is_unusable(), "{e}");
    assert!(e.to_string().contains("signed entry timestamp"), "{e}");
}

#[test]
fn intermediate_without_key_cert_sign_is_refused() {
    let e = outcome(Pki::IntermediateWithoutKeyCertSign).unwrap_err();
    assert!(!e.is_unusable(), "{e}");
    assert!(e.to_string().contains("keyCertSign"), "{e}");
}

#[test]
fn leaf_without_digital_signature_is_refused() {
    let e = outcome(Pki::LeafWithoutDigitalSignature).unwrap_err();
    assert!(!e.is_unusable(), "{e}");
    assert!(e.to_string().contains("digitalSignature"), "{e}");
}

#[test]
fn path_length_violation_is_refused() {
    let e = outcome(Pki::RootPathLenZero).unwrap_err();
    assert!(!e.is_unusable(), "{e}");
    assert!(e.to_string().contains("path length"), "{e}");
}

#[test]
fn leaf_is_checked_at_the_signed_time_not_now() {
    // The leaf expired in 2025 (ten minutes of validity); the entry was
    // logged inside that window, so it verifies whatever "now" is. Moving
    // the logged time outside the window must fail.
    outcome(Pki::Good).unwrap();
    let h = hierarchy(Pki::Good);
    let log = log();
    let mut b = bundle(&h, &log);
    // A SET over a later time, re-signed by the log: the certificate is no
    // longer valid at the signed time.
    let later = INTEGRATED_TIME + 3600;
    let entry = &mut b["verificationMaterial"]["tlogEntries"][0];
    let body = STANDARD
        .decode(entry["canonicalizedBody"].as_str().unwrap())
        .unwrap();
    let payload = format!(
        "{{\"body\":\"{}\",\"integratedTime\":{later},\"logID\":\"{}\",\"logIndex\":0}}",
        b64(&body),
        hex(&log.id)
    );
    entry["integratedTime"] = json!(later.to_string());
    entry["inclusionPromise"]["signedEntryTimestamp"] =
        json!(b64(&log.key.sign(payload.as_bytes()).unwrap()));
    let e = verify(&b, &trusted_root(&h, &log)).unwrap_err();
    assert!(!e.is_unusable(), "{e}");
    assert!(e.to_string().contains("expired"), "{e}");
}
