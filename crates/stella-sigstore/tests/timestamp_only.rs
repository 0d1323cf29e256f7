//! Keyless bundles with an RFC 3161 timestamp and no transparency-log entry
//! (how GitHub signs attestations of private repositories), against a
//! private deployment built in the test: a Fulcio-like CA and a timestamp
//! authority (rcgen), a trusted_root.json naming both, and the timestamp
//! itself made by a third party, `openssl ts -query` / `openssl ts -reply`.
//!
//! Checks: refused by default (a log entry is required); accepted with
//! `tlog_threshold` 0 (the verified time is the timestamp's genTime);
//! refused with threshold 0 when the bundle has no timestamp, when the
//! timestamp comes from a TSA the trusted root does not name, or when it
//! covers another signature; a timestamp threshold above what the bundle
//! carries is refused.
//!
//! `openssl ts -reply` stamps the current time, so the certificates here
//! are made valid around the wall clock (nothing asserts on timing).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use serde_json::{Value, json};
use stella_crypto::PrivateKey;
use stella_sigstore::{
    Artifact, Bundle, IdentityPolicy, Matcher, Policy, SigstoreError, TrustedRoot, Verifier,
    VerifierConfig,
};
use stella_types::digest::sha256_bytes;
use time::OffsetDateTime;

const IDENTITY: &str =
    "https://github.com/acme/private/.github/workflows/release.yml@refs/heads/main";
const OIDC_ISSUER: &str = "https://token.actions.githubusercontent.com";
const ARTIFACT: &[u8] = b"private release artifact\n";

fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

fn b64(b: &[u8]) -> String {
    STANDARD.encode(b)
}

/// A self-signed CA valid from 2024 to well after now.
fn ca(cn: &str) -> (Issuer<'static, KeyPair>, Vec<u8>) {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name
        .push(DnType::OrganizationName, "Stella test");
    p.not_before = at(1_704_067_200); // 2024-01-01
    p.not_after = at(now() + 10 * 365 * 86_400);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = p.self_signed(&key).unwrap();
    (Issuer::new(p, key), cert.der().to_vec())
}

/// DER of a UTF8String (the Fulcio v2 issuer extension value).
fn utf8_string(s: &str) -> Vec<u8> {
    let mut out = vec![0x0c, u8::try_from(s.len()).unwrap()];
    out.extend_from_slice(s.as_bytes());
    out
}

/// The Fulcio side: CA certificate, leaf certificate and the leaf's key.
struct Fulcio {
    ca: Vec<u8>,
    leaf: Vec<u8>,
    key: PrivateKey,
}

fn fulcio() -> Fulcio {
    let (issuer, ca_der) = ca("test fulcio");
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    // Short-lived like a Fulcio certificate, around the time openssl stamps.
    p.not_before = at(now() - 600);
    p.not_after = at(now() + 600);
    p.subject_alt_names = vec![SanType::URI(IDENTITY.try_into().unwrap())];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    p.custom_extensions = vec![CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 4, 1, 57264, 1, 8],
        utf8_string(OIDC_ISSUER),
    )];
    let leaf = p.signed_by(&key, &issuer).unwrap();
    Fulcio {
        ca: ca_der,
        leaf: leaf.der().to_vec(),
        key: PrivateKey::from_pkcs8_der(&key.serialize_der()).unwrap(),
    }
}

/// A timestamp authority: its CA and signing certificate (DER), and the
/// signing certificate and key as PEM files for `openssl ts -reply`.
struct Tsa {
    ca: Vec<u8>,
    leaf: Vec<u8>,
    dir: tempfile::TempDir,
}

fn tsa(cn: &str) -> Tsa {
    let (issuer, ca_der) = ca(&format!("{cn} CA"));
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.not_before = at(1_704_067_200);
    p.not_after = at(now() + 5 * 365 * 86_400);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    // RFC 3161 §2.3: the only extended key usage, marked critical
    // (openssl refuses to sign otherwise). DER: SEQUENCE { id-kp-timeStamping }.
    let mut eku = CustomExtension::from_oid_content(
        &[2, 5, 29, 37],
        vec![
            0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08,
        ],
    );
    eku.set_criticality(true);
    p.custom_extensions = vec![eku];
    let leaf = p.signed_by(&key, &issuer).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tsa.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.path().join("tsa.key"), key.serialize_pem()).unwrap();
    std::fs::write(
        dir.path().join("ca.pem"),
        stella_crypto::pem::encode("CERTIFICATE", &ca_der),
    )
    .unwrap();
    std::fs::write(dir.path().join("serial"), "01\n").unwrap();
    std::fs::write(
        dir.path().join("tsa.cnf"),
        format!(
            "[ tsa ]\ndefault_tsa = tsa1\n[ tsa1 ]\nserial = {}\ncrypto_device = builtin\n\
             signer_digest = sha256\ndefault_policy = 1.3.6.1.4.1.57264.2\n\
             digests = sha256\naccuracy = secs:1\nordering = no\ntsa_name = no\n\
             ess_cert_id_chain = no\ness_cert_id_alg = sha256\n",
            dir.path().join("serial").display()
        ),
    )
    .unwrap();
    Tsa {
        ca: ca_der,
        leaf: leaf.der().to_vec(),
        dir,
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A TimeStampResp from `tsa` over `data` (the signature bytes), made by
/// `openssl ts` (the signer certificate is included in the token).
fn timestamp(tsa: &Tsa, data: &[u8]) -> Vec<u8> {
    let d = tsa.dir.path();
    std::fs::write(d.join("data.bin"), data).unwrap();
    openssl(
        d,
        &[
            "ts",
            "-query",
            "-data",
            "data.bin",
            "-sha256",
            "-cert",
            "-no_nonce",
            "-out",
            "req.tsq",
        ],
    );
    openssl(
        d,
        &[
            "ts",
            "-reply",
            "-config",
            "tsa.cnf",
            "-queryfile",
            "req.tsq",
            "-signer",
            "tsa.pem",
            "-inkey",
            "tsa.key",
            "-chain",
            "ca.pem",
            "-out",
            "resp.tsr",
        ],
    );
    std::fs::read(d.join("resp.tsr")).unwrap()
}

fn trusted_root(f: &Fulcio, tsa: &Tsa) -> TrustedRoot {
    let doc = json!({
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [],
        "certificateAuthorities": [{
            "subject": {"organization": "Stella test", "commonName": "test fulcio"},
            "uri": "https://fulcio.example.test",
            "certChain": {"certificates": [{"rawBytes": b64(&f.ca)}]},
            "validFor": {"start": "2024-01-01T00:00:00Z"}
        }],
        "ctlogs": [],
        "timestampAuthorities": [{
            "subject": {"organization": "Stella test", "commonName": "test tsa"},
            "uri": "https://tsa.example.test",
            "certChain": {"certificates": [{"rawBytes": b64(&tsa.leaf)}, {"rawBytes": b64(&tsa.ca)}]},
            "validFor": {"start": "2024-01-01T00:00:00Z"}
        }]
    });
    TrustedRoot::from_json(&serde_json::to_vec(&doc).unwrap()).unwrap()
}

/// A v0.3 bundle: message signature over [`ARTIFACT`], no log entry, no
/// timestamp yet ([`with_timestamps`] adds them).
fn bundle(f: &Fulcio) -> Value {
    let sig = f.key.sign(ARTIFACT).unwrap();
    json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"certificate": {"rawBytes": b64(&f.leaf)}},
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": b64(&sha256_bytes(ARTIFACT))},
            "signature": b64(&sig)
        }
    })
}

fn signature(b: &Value) -> Vec<u8> {
    STANDARD
        .decode(b["messageSignature"]["signature"].as_str().unwrap())
        .unwrap()
}

fn with_timestamps(b: &mut Value, timestamps: &[Vec<u8>]) {
    b["verificationMaterial"]["timestampVerificationData"] = json!({
        "rfc3161Timestamps": timestamps.iter().map(|t| json!({"signedTimestamp": b64(t)})).collect::<Vec<_>>()
    });
}

fn verify(
    b: &Value,
    root: &TrustedRoot,
    tlog: usize,
    timestamps: usize,
) -> Result<stella_sigstore::VerificationResult, SigstoreError> {
    let parsed = Bundle::parse(&serde_json::to_vec(b).unwrap())?;
    let policy = Policy::Identity(IdentityPolicy {
        identity: Matcher::Exact(IDENTITY.into()),
        issuer: Matcher::Exact(OIDC_ISSUER.into()),
    });
    // No CT log in this deployment: SCTs are not required here.
    let config = VerifierConfig {
        tlog_threshold: tlog,
        timestamp_threshold: timestamps,
        require_sct: false,
    };
    Verifier::new(root.clone(), config).verify(&parsed, Artifact::Bytes(ARTIFACT), &policy)
}

/// The bundle signed by `f` and stamped by `tsa` over its own signature.
fn stamped(f: &Fulcio, tsa: &Tsa) -> Value {
    let mut b = bundle(f);
    let ts = timestamp(tsa, &signature(&b));
    with_timestamps(&mut b, &[ts]);
    b
}

#[test]
fn timestamp_only_bundle_is_refused_by_default() {
    let (f, t) = (fulcio(), tsa("test tsa"));
    let root = trusted_root(&f, &t);
    let b = stamped(&f, &t);
    let d = VerifierConfig::default();
    let e = verify(&b, &root, d.tlog_threshold, d.timestamp_threshold).unwrap_err();
    println!("refused: {e}");
    assert!(!e.is_unusable(), "{e}");
    assert!(e.to_string().contains("transparency-log"), "{e}");
}

#[test]
fn timestamp_only_bundle_verifies_with_tlog_threshold_zero() {
    let (f, t) = (fulcio(), tsa("test tsa"));
    let root = trusted_root(&f, &t);
    let b = stamped(&f, &t);
    let before = now();
    let r = verify(&b, &root, 0, 1).unwrap();
    assert!(r.tlog_entries.is_empty());
    assert_eq!(r.identity.as_deref(), Some(IDENTITY));
    // The verified time is the timestamp's genTime (openssl stamped it
    // within this test run, so it is no earlier than ten minutes back).
    assert_eq!(r.verified_times.len(), 1, "{:?}", r.verified_times);
    assert_eq!(r.verified_times[0].source, "tsa");
    assert!(r.verified_times[0].unix >= before - 600);
    // Threshold 0 for both still verifies: one timestamp is always required
    // without a log entry, and this bundle has one.
    verify(&b, &root, 0, 0).unwrap();
    // More timestamps than the bundle carries: refused.
    let e = verify(&b, &root, 0, 2).unwrap_err();
    assert!(e.to_string().contains("RFC 3161"), "{e}");
}

#[test]
fn no_log_entry_and_no_timestamp_is_refused_even_with_both_thresholds_zero() {
    let (f, t) = (fulcio(), tsa("test tsa"));
    let root = trusted_root(&f, &t);
    let b = bundle(&f);
    let e = verify(&b, &root, 0, 0).unwrap_err();
    println!("refused: {e}");
    assert!(!e.is_unusable(), "{e}");
    assert!(e.to_string().contains("RFC 3161"), "{e}");
}

#[test]
fn timestamp_from_an_untrusted_tsa_is_refused() {
    let (f, trusted, other) = (fulcio(), tsa("test tsa"), tsa("rogue tsa"));
    let root = trusted_root(&f, &trusted);
    let b = stamped(&f, &other);
    let e = verify(&b, &root, 0, 1).unwrap_err();
    println!("refused: {e}");
    assert!(!e.is_unusable(), "{e}");
    assert!(
        e.to_string().contains("does not chain to a trusted root"),
        "{e}"
    );
}

#[test]
fn timestamp_over_another_signature_is_refused() {
    let (f, t) = (fulcio(), tsa("test tsa"));
    let root = trusted_root(&f, &t);
    let mut b = bundle(&f);
    let ts = timestamp(&t, b"some other signature");
    with_timestamps(&mut b, &[ts]);
    let e = verify(&b, &root, 0, 1).unwrap_err();
    println!("refused: {e}");
    assert!(!e.is_unusable(), "{e}");
    assert!(e.to_string().contains("message imprint"), "{e}");
}
