//! Library-level tests: hostile and malformed inputs never panic and are
//! classified (unusable vs failed); base64 flavours; bundle CA certificates
//! are never trust anchors; checkpoint anchoring (`--rekor-checkpoint`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;
use stella_sigstore::checkpoint_anchor::{PinnedCheckpoint, anchor_bundle};
use stella_sigstore::{
    Artifact, Bundle, HashAlg, IdentityPolicy, Matcher, Policy, SigstoreError, TrustedRoot,
    Verifier, VerifierConfig,
};

const CONF: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/conformance/sigstore"
);
const SAN: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const ISS: &str = "https://token.actions.githubusercontent.com";

fn conf(p: &str) -> PathBuf {
    Path::new(CONF).join(p)
}

fn case(name: &str) -> Value {
    serde_json::from_slice(
        &std::fs::read(conf(&format!(
            "test/assets/bundle-verify/{name}/bundle.sigstore.json"
        )))
        .unwrap(),
    )
    .unwrap()
}

fn production() -> TrustedRoot {
    TrustedRoot::from_json(&std::fs::read(conf("trusted_root/production.json")).unwrap()).unwrap()
}

fn artifact() -> Vec<u8> {
    std::fs::read(conf("test/assets/a.txt")).unwrap()
}

fn policy() -> Policy {
    Policy::Identity(IdentityPolicy {
        identity: Matcher::Exact(SAN.into()),
        issuer: Matcher::Exact(ISS.into()),
    })
}

fn verify_value(v: &Value, root: &TrustedRoot) -> Result<(), SigstoreError> {
    let b = Bundle::parse(&serde_json::to_vec(v).unwrap())?;
    let a = artifact();
    Verifier::new(root.clone(), VerifierConfig::default())
        .verify(&b, Artifact::Bytes(&a), &policy())
        .map(|_| ())
}

#[test]
fn happy_paths_verify_through_the_library() {
    let root = production();
    for c in [
        "happy-path-v0.1",
        "happy-path-v0.2",
        "happy-path-v0.3",
        "happy-path-v0.3-new-mediaType",
    ] {
        verify_value(&case(c), &root).unwrap_or_else(|e| panic!("{c}: {e}"));
    }
    // Digest mode (pre-hashed ECDSA).
    let b = Bundle::parse(&serde_json::to_vec(&case("happy-path-v0.3")).unwrap()).unwrap();
    let d = HashAlg::Sha256.digest(&artifact());
    let r = Verifier::new(root.clone(), VerifierConfig::default())
        .verify(
            &b,
            Artifact::Digest {
                algorithm: HashAlg::Sha256,
                digest: &d,
            },
            &policy(),
        )
        .unwrap();
    assert_eq!(r.identity.as_deref(), Some(SAN));
    assert_eq!(r.issuer.as_deref(), Some(ISS));
    assert!(!r.verified_times.is_empty());
    // Regex policies.
    let re = Policy::Identity(IdentityPolicy {
        identity: Matcher::regex("^https://github.com/sigstore-conformance/").unwrap(),
        issuer: Matcher::regex("githubusercontent").unwrap(),
    });
    Verifier::new(root.clone(), VerifierConfig::default())
        .verify(&b, Artifact::Bytes(&artifact()), &re)
        .unwrap();
    let wrong = Policy::Identity(IdentityPolicy {
        identity: Matcher::regex("^https://gitlab.com/").unwrap(),
        issuer: Matcher::Exact(ISS.into()),
    });
    let e = Verifier::new(root, VerifierConfig::default())
        .verify(&b, Artifact::Bytes(&artifact()), &wrong)
        .unwrap_err();
    assert!(matches!(e, SigstoreError::Failed(_)), "{e}");
}

fn set_path(v: &mut Value, path: &[&str], new: Value) {
    let mut cur = v;
    for p in &path[..path.len() - 1] {
        cur = if let Ok(i) = p.parse::<usize>() {
            &mut cur[i]
        } else {
            &mut cur[*p]
        };
    }
    let last = path[path.len() - 1];
    if let Ok(i) = last.parse::<usize>() {
        cur[i] = new;
    } else {
        cur[last] = new;
    }
}

fn get_str(v: &Value, path: &[&str]) -> String {
    let mut cur = v;
    for p in path {
        cur = if let Ok(i) = p.parse::<usize>() {
            &cur[i]
        } else {
            &cur[*p]
        };
    }
    cur.as_str().unwrap().to_string()
}

#[test]
fn base64_flavours() {
    let root = production();
    let sig_path = ["messageSignature", "signature"];
    let base = case("happy-path-v0.3");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(get_str(&base, &sig_path))
        .unwrap();
    // URL-safe without padding: accepted (Go protojson accepts it).
    let mut v = base.clone();
    set_path(
        &mut v,
        &sig_path,
        Value::String(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw)),
    );
    verify_value(&v, &root).unwrap();
    // Line-wrapped standard base64: accepted.
    let mut v = base.clone();
    let std = base64::engine::general_purpose::STANDARD.encode(&raw);
    set_path(
        &mut v,
        &sig_path,
        Value::String(format!("{}\n{}\r\n", &std[..20], &std[20..])),
    );
    verify_value(&v, &root).unwrap();
    // Not base64 at all: unusable.
    let mut v = base.clone();
    set_path(&mut v, &sig_path, Value::String("@@not base64@@".into()));
    assert!(verify_value(&v, &root).unwrap_err().is_unusable());
    // Too much padding: unusable.
    let mut v = base;
    set_path(&mut v, &sig_path, Value::String(format!("{std}==")));
    assert!(verify_value(&v, &root).is_err());
}

#[test]
fn unknown_versions_and_missing_fields_are_unusable() {
    let root = production();
    for mt in [
        "application/vnd.dev.sigstore.bundle+json;version=0.4",
        "application/vnd.dev.sigstore.bundle.v0.4+json",
        "",
    ] {
        let mut v = case("happy-path-v0.3");
        set_path(&mut v, &["mediaType"], Value::String(mt.into()));
        assert!(verify_value(&v, &root).unwrap_err().is_unusable(), "{mt}");
    }
    for (path, val) in [
        (vec!["mediaType"], Value::Null),
        (vec!["mediaType"], Value::from(3)),
        (vec!["verificationMaterial"], Value::Null),
        (vec!["verificationMaterial"], Value::String("x".into())),
        (
            vec!["verificationMaterial", "tlogEntries", "0", "logIndex"],
            Value::from("abc"),
        ),
        (
            vec![
                "verificationMaterial",
                "tlogEntries",
                "0",
                "inclusionProof",
                "hashes",
            ],
            Value::String("x".into()),
        ),
        (
            vec![
                "verificationMaterial",
                "tlogEntries",
                "0",
                "inclusionProof",
                "checkpoint",
            ],
            Value::Null,
        ),
        (
            vec![
                "verificationMaterial",
                "tlogEntries",
                "0",
                "canonicalizedBody",
            ],
            Value::from(5),
        ),
        (vec!["messageSignature", "signature"], Value::Null),
        (vec!["messageSignature"], Value::Array(vec![])),
    ] {
        let mut v = case("happy-path-v0.3");
        set_path(&mut v, &path, val.clone());
        let e = verify_value(&v, &root).unwrap_err();
        assert!(e.is_unusable(), "{path:?}={val}: {e}");
    }
}

#[test]
fn absent_int64_fields_are_zero_not_missing() {
    // Protobuf JSON has no presence for int64: null or absent is 0. On a real
    // bundle whose entry is not at index 0 that makes the signed entry
    // timestamp (or proof) fail to verify: a verification failure, never
    // "is required".
    let root = production();
    for field in ["logIndex", "integratedTime"] {
        let mut v = case("happy-path-v0.3");
        set_path(
            &mut v,
            &["verificationMaterial", "tlogEntries", "0", field],
            Value::Null,
        );
        let e = verify_value(&v, &root).unwrap_err();
        assert!(!e.is_unusable(), "{field}: {e}");
        assert!(!e.to_string().contains("required"), "{field}: {e}");
    }
    for field in ["logIndex", "treeSize"] {
        let mut v = case("happy-path-v0.3");
        set_path(
            &mut v,
            &[
                "verificationMaterial",
                "tlogEntries",
                "0",
                "inclusionProof",
                field,
            ],
            Value::Null,
        );
        let e = verify_value(&v, &root).unwrap_err();
        assert!(!e.is_unusable(), "inclusionProof.{field}: {e}");
        assert!(
            !e.to_string().contains("required"),
            "inclusionProof.{field}: {e}"
        );
    }
}

#[test]
fn oversized_proof_is_rejected() {
    let mut v = case("happy-path-v0.3");
    let hashes: Vec<Value> = (0..200).map(|_| Value::String("AAAA".into())).collect();
    set_path(
        &mut v,
        &[
            "verificationMaterial",
            "tlogEntries",
            "0",
            "inclusionProof",
            "hashes",
        ],
        Value::Array(hashes),
    );
    assert!(verify_value(&v, &production()).unwrap_err().is_unusable());
}

#[test]
fn checkpoint_from_another_log_fails() {
    let root = production();
    let other = case("happy-path-intoto-in-dsse-v3");
    let cp_path = [
        "verificationMaterial",
        "tlogEntries",
        "0",
        "inclusionProof",
        "checkpoint",
        "envelope",
    ];
    let mut v = case("happy-path-v0.3");
    set_path(&mut v, &cp_path, Value::String(get_str(&other, &cp_path)));
    assert!(matches!(
        verify_value(&v, &root).unwrap_err(),
        SigstoreError::Failed(_)
    ));
    // A Rekor v2 (staging) checkpoint in a production Rekor v1 entry.
    let r2 = case("rekor2-happy-path");
    let mut v = case("happy-path-v0.3");
    set_path(&mut v, &cp_path, Value::String(get_str(&r2, &cp_path)));
    assert!(matches!(
        verify_value(&v, &root).unwrap_err(),
        SigstoreError::Failed(_)
    ));
}

fn trusted_ca_der(root_json: &Value, last: bool) -> String {
    let certs = root_json["certificateAuthorities"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["certChain"]["certificates"]
        .as_array()
        .unwrap();
    let c = if last {
        certs.last().unwrap()
    } else {
        certs.first().unwrap()
    };
    c["rawBytes"].as_str().unwrap().to_string()
}

#[test]
fn bundle_ca_certificates_are_never_anchors() {
    let root = production();
    let root_json: Value =
        serde_json::from_slice(&std::fs::read(conf("trusted_root/production.json")).unwrap())
            .unwrap();
    // Extra CA certificates after the leaf are ignored: still verifies.
    let mut v = case("happy-path-v0.1");
    let chain = v["verificationMaterial"]["x509CertificateChain"]["certificates"]
        .as_array_mut()
        .unwrap();
    chain.push(serde_json::json!({"rawBytes": trusted_ca_der(&root_json, false)}));
    chain.push(serde_json::json!({"rawBytes": trusted_ca_der(&root_json, true)}));
    verify_value(&v, &root).unwrap();
    // A CA certificate as the signer: rejected (never treated as a trust anchor).
    let mut v = case("happy-path-v0.3");
    set_path(
        &mut v,
        &["verificationMaterial", "certificate", "rawBytes"],
        Value::String(trusted_ca_der(&root_json, true)),
    );
    assert!(verify_value(&v, &root).is_err());
    // A trusted root whose CA is replaced by another: the same bundle fails.
    let staging =
        TrustedRoot::from_json(&std::fs::read(conf("trusted_root/staging.json")).unwrap()).unwrap();
    assert!(verify_value(&case("happy-path-v0.3"), &staging).is_err());
}

/// Deterministic mutation fuzzing of every conformance bundle: byte flips,
/// truncations and JSON field mutations. Nothing may panic.
#[test]
fn mutations_never_panic() {
    let root = production();
    let dir = conf("test/assets/bundle-verify");
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let mut runs = 0;
    let a = artifact();
    let verifier = Verifier::new(root, VerifierConfig::default());
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path().join("bundle.sigstore.json");
        let Ok(bytes) = std::fs::read(&p) else {
            continue;
        };
        for _ in 0..40 {
            let mut m = bytes.clone();
            match rng.u8(0..3) {
                0 => {
                    let i = rng.usize(0..m.len());
                    m[i] ^= 1 << rng.u8(0..8);
                }
                1 => m.truncate(rng.usize(0..m.len())),
                _ => {
                    let i = rng.usize(0..m.len());
                    m[i] = b"\"{}[]0-:,nx"[rng.usize(0..11)];
                }
            }
            if let Ok(b) = Bundle::parse(&m) {
                let _ = verifier.verify(&b, Artifact::Bytes(&a), &policy());
            }
            runs += 1;
        }
        // Field-level mutations of the parsed JSON.
        let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        let mut paths = Vec::new();
        collect_paths(&v, &mut vec![], &mut paths);
        for path in paths.iter().take(200) {
            for new in [
                Value::Null,
                Value::from("x"),
                Value::from(-1),
                Value::Array(vec![]),
                serde_json::json!({}),
            ] {
                let mut m = v.clone();
                let refs: Vec<&str> = path.iter().map(String::as_str).collect();
                set_path(&mut m, &refs, new);
                if let Ok(b) = Bundle::from_value(&m) {
                    let _ = verifier.verify(&b, Artifact::Bytes(&a), &policy());
                }
                runs += 1;
            }
        }
    }
    assert!(runs > 5000, "{runs}");
}

fn collect_paths(v: &Value, cur: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                cur.push(k.clone());
                out.push(cur.clone());
                collect_paths(x, cur, out);
                cur.pop();
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate().take(3) {
                cur.push(i.to_string());
                out.push(cur.clone());
                collect_paths(x, cur, out);
                cur.pop();
            }
        }
        _ => {}
    }
}

#[test]
fn trusted_root_garbage_is_unusable() {
    for bad in [
        &b"{"[..],
        b"[]",
        b"{\"tlogs\": 3}",
        b"{\"tlogs\": [{\"publicKey\": null}]}",
        b"\xff\xfe",
    ] {
        assert!(TrustedRoot::from_json(bad).unwrap_err().is_unusable());
    }
    // validFor without start (trust-root-tlog-missing-validity-start_fail).
    let p = conf(
        "test/assets/bundle-verify/trust-root-tlog-missing-validity-start_fail/trusted_root.json",
    );
    assert!(TrustedRoot::from_json(&std::fs::read(p).unwrap()).is_err());
}

#[test]
fn rekor_checkpoint_anchoring() {
    let root = production();
    let v01 = case("happy-path-v0.1");
    let cp = get_str(
        &v01,
        &[
            "verificationMaterial",
            "tlogEntries",
            "0",
            "inclusionProof",
            "checkpoint",
            "envelope",
        ],
    );
    let pinned = PinnedCheckpoint::from_note(&cp, &root).unwrap();
    assert_eq!(pinned.log_url, "https://rekor.sigstore.dev");
    let b = Bundle::from_value(&v01).unwrap();
    let st = anchor_bundle(&pinned, &b, &[]);
    assert_eq!(st.len(), 1);
    assert!(st[0].is_anchored(), "{st:?}");
    // Another production bundle at a different tree size, no consistency proof.
    let b3 = Bundle::from_value(&case("happy-path-intoto-in-dsse-v3")).unwrap();
    let st = anchor_bundle(&pinned, &b3, &[]);
    assert!(!st[0].is_anchored(), "{st:?}");
    // A checkpoint from a log outside the trusted root is refused.
    let r2 = case("rekor2-happy-path");
    let cp2 = get_str(
        &r2,
        &[
            "verificationMaterial",
            "tlogEntries",
            "0",
            "inclusionProof",
            "checkpoint",
            "envelope",
        ],
    );
    assert!(PinnedCheckpoint::from_note(&cp2, &root).is_err());
    // A tampered pinned checkpoint is refused.
    let tampered = cp.replacen("23083062", "23083063", 1);
    assert!(PinnedCheckpoint::from_note(&tampered, &root).is_err());
}
