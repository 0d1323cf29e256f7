//! Conformance vectors: transparency-dev/merkle probes, the RFC 6962
//! reference tree, real Rekor proofs, and C2SP signed-note / checkpoint vectors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use stella_tlog::checkpoint::Checkpoint;
use stella_tlog::note::{Note, NoteVerifier, Vkey, VkeyAlgorithm};
use stella_tlog::{leaf_hash, verify_consistency, verify_inclusion};

const CONF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/conformance");

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

fn b64list(v: &Value) -> Vec<Vec<u8>> {
    match v {
        Value::Null => vec![],
        Value::Array(a) => a
            .iter()
            .map(|x| STANDARD.decode(x.as_str().unwrap()).unwrap())
            .collect(),
        _ => panic!("bad proof"),
    }
}

fn b64(v: &Value) -> Vec<u8> {
    match v {
        Value::Null => vec![],
        v => STANDARD.decode(v.as_str().unwrap()).unwrap(),
    }
}

fn load(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn inclusion_probe(v: &Value) -> bool {
    verify_inclusion(
        v["leafIdx"].as_u64().unwrap(),
        v["treeSize"].as_u64().unwrap(),
        &b64(&v["leafHash"]),
        &b64list(&v["proof"]),
        &b64(&v["root"]),
    )
    .is_ok()
}

#[test]
fn merkle_inclusion_probes() {
    let mut files = vec![];
    walk(
        &Path::new(CONF).join("merkle/testdata/inclusion"),
        &mut files,
    );
    assert_eq!(files.len(), 98);
    let mut bad = vec![];
    for f in &files {
        let v = load(f);
        let want_ok = !v["wantErr"].as_bool().unwrap();
        if inclusion_probe(&v) != want_ok {
            bad.push(f.display().to_string());
        }
    }
    assert!(bad.is_empty(), "deviating inclusion probes: {bad:#?}");
}

#[test]
fn merkle_consistency_probes() {
    let mut files = vec![];
    walk(
        &Path::new(CONF).join("merkle/testdata/consistency"),
        &mut files,
    );
    assert_eq!(files.len(), 98);
    let mut bad = vec![];
    for f in &files {
        let v = load(f);
        let want_ok = !v["wantErr"].as_bool().unwrap();
        let got = verify_consistency(
            v["size1"].as_u64().unwrap(),
            v["size2"].as_u64().unwrap(),
            &b64list(&v["proof"]),
            &b64(&v["root1"]),
            &b64(&v["root2"]),
        )
        .is_ok();
        if got != want_ok {
            bad.push(f.display().to_string());
        }
    }
    assert!(bad.is_empty(), "deviating consistency probes: {bad:#?}");
}

fn hx(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

#[test]
fn rfc6962_reference_tree() {
    let v = load(&Path::new(CONF).join("merkle/rfc6962_reference_tree.json"));
    let inputs = v["leaf_inputs_hex"].as_array().unwrap();
    let hashes = v["leaf_hashes_hex"].as_array().unwrap();
    for (i, h) in inputs.iter().zip(hashes) {
        assert_eq!(leaf_hash(&hx(i)).to_vec(), hx(h));
    }
    let mut n = 0;
    for p in v["inclusion_proofs"].as_array().unwrap() {
        let proof: Vec<Vec<u8>> = p["proof_hex"].as_array().unwrap().iter().map(hx).collect();
        verify_inclusion(
            p["leaf_index"].as_u64().unwrap(),
            p["tree_size"].as_u64().unwrap(),
            &hx(&p["leaf_hash_hex"]),
            &proof,
            &hx(&p["root_hex"]),
        )
        .unwrap();
        n += 1;
    }
    for p in v["consistency_proofs"].as_array().unwrap() {
        let proof: Vec<Vec<u8>> = p["proof_hex"].as_array().unwrap().iter().map(hx).collect();
        verify_consistency(
            p["size1"].as_u64().unwrap(),
            p["size2"].as_u64().unwrap(),
            &proof,
            &hx(&p["root1_hex"]),
            &hx(&p["root2_hex"]),
        )
        .unwrap();
        n += 1;
    }
    assert_eq!(n, 72);
}

#[test]
fn rekor_real_proofs() {
    let dir = Path::new(CONF).join("merkle/sigstore-rekor");
    let mut files = vec![];
    walk(&dir, &mut files);
    assert_eq!(files.len(), 7);
    for f in files {
        let want_ok = !f
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .ends_with("_fail.json");
        assert_eq!(inclusion_probe(&load(&f)), want_ok, "{}", f.display());
    }
}

/// Test-only verifier backed by stella-crypto (the provider callers plug in).
struct TestVerifier {
    vkey: Vkey,
    any_name: bool,
}

impl NoteVerifier for TestVerifier {
    fn name(&self) -> &str {
        &self.vkey.name
    }
    fn key_id(&self) -> u32 {
        self.vkey.key_id
    }
    fn matches_name(&self, name: &str) -> bool {
        self.any_name || name == self.vkey.name
    }
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        use stella_crypto::{PublicKey, SignatureAlgorithm};
        let (spki, alg) = match self.vkey.algorithm {
            // RFC 8410 SubjectPublicKeyInfo prefix for a raw Ed25519 key.
            VkeyAlgorithm::Ed25519 => {
                let mut spki = hex::decode("302a300506032b6570032100").unwrap();
                spki.extend_from_slice(&self.vkey.key);
                (spki, SignatureAlgorithm::Ed25519)
            }
            VkeyAlgorithm::Ecdsa => (self.vkey.key.clone(), SignatureAlgorithm::EcdsaSha256),
            _ => return false,
        };
        PublicKey::from_spki_der(&spki).is_ok_and(|k| k.verify(alg, msg, sig).is_ok())
    }
}

fn signed_note() -> Value {
    load(&Path::new(CONF).join("signed-note/vectors.json"))
}

#[test]
fn vkey_ids_and_bad_vkeys() {
    let v = signed_note();
    for k in v["key_ids"].as_array().unwrap() {
        let vk = Vkey::parse(k["vkey"].as_str().unwrap()).unwrap();
        assert_eq!(
            format!("{:08x}", vk.key_id),
            k["key_id_hex"].as_str().unwrap()
        );
    }
    for k in v["bad_vkeys"].as_array().unwrap() {
        assert!(Vkey::parse(k["vkey"].as_str().unwrap()).is_err(), "{k}");
    }
}

#[test]
fn notes() {
    let v = signed_note();
    let mut count = 0;
    for n in v["notes"].as_array().unwrap() {
        let verifiers: Vec<TestVerifier> = n["trusted_vkeys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| TestVerifier {
                vkey: Vkey::parse(k.as_str().unwrap()).unwrap(),
                any_name: false,
            })
            .collect();
        let refs: Vec<&dyn NoteVerifier> =
            verifiers.iter().map(|v| v as &dyn NoteVerifier).collect();
        let got = Note::parse(n["note"].as_str().unwrap()).and_then(|note| note.verify(&refs));
        let want_ok = n["expected"].as_str().unwrap() == "ok";
        assert_eq!(got.is_ok(), want_ok, "{}: {got:?}", n["desc"]);
        if let Some(d) = n.get("observed_detail").filter(|d| !d.is_null()) {
            assert_eq!(
                got.unwrap().len(),
                d["verified"].as_array().unwrap().len(),
                "{}",
                n["desc"]
            );
        }
        count += 1;
    }
    assert_eq!(count, 17);
}

#[test]
fn checkpoint_bodies() {
    let v = signed_note();
    for c in v["checkpoint_bodies"].as_array().unwrap() {
        let got = Checkpoint::parse_body(c["body"].as_str().unwrap());
        let want_ok = c["expected"].as_str().unwrap() == "ok";
        assert_eq!(got.is_ok(), want_ok, "{}: {got:?}", c["desc"]);
        if let (Ok(cp), Some(p)) = (&got, c.get("parsed").filter(|p| p.get("origin").is_some())) {
            assert_eq!(cp.origin, p["origin"].as_str().unwrap());
            if let Some(s) = p["size"].as_u64() {
                assert_eq!(cp.size, s);
            }
        }
    }
}

#[test]
fn sigstore_checkpoints() {
    let v = signed_note();
    for c in v["sigstore_checkpoints"].as_array().unwrap() {
        let vk = Vkey::parse(c["trusted_vkey"].as_str().unwrap()).unwrap();
        // Rekor v1 (ECDSA) checkpoints are matched by key ID only.
        let any_name = vk.algorithm == VkeyAlgorithm::Ecdsa;
        let origin = vk.name.clone();
        let tv = TestVerifier { vkey: vk, any_name };
        let note = Note::parse(c["checkpoint"].as_str().unwrap());
        let result = note.and_then(|n| {
            n.verify(&[&tv as &dyn NoteVerifier])?;
            Checkpoint::parse_body(&n.text)
        });
        let expected = c["expected"].as_str().unwrap();
        let case = c["case"].as_str().unwrap();
        let ok = match result {
            Ok(cp) => {
                let root = STANDARD
                    .decode(c["inclusionProof_rootHash_b64"].as_str().unwrap())
                    .unwrap();
                let size: u64 = c["inclusionProof_treeSize"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                let origin_ok = any_name || cp.origin == origin;
                if expected.starts_with("ok (signature)") {
                    // Signature fine, but the root must not match the proof's.
                    assert!(cp.root_hash != root || cp.size != size, "{case}");
                    false
                } else {
                    origin_ok && cp.root_hash == root && cp.size == size
                }
            }
            Err(_) => false,
        };
        assert_eq!(ok, expected == "ok", "{case}");
    }
}

#[test]
fn anchor_same_and_consistent() {
    use stella_tlog::{AnchorInput, AnchorStatus, anchor_inclusion_proofs};
    let v = load(&Path::new(CONF).join("merkle/rfc6962_reference_tree.json"));
    let roots: Vec<Vec<u8>> = v["root_hashes_hex_by_size"]
        .as_array()
        .unwrap()
        .iter()
        .map(hx)
        .collect();
    let pinned = Checkpoint {
        origin: "log".into(),
        size: 8,
        root_hash: roots[8].clone(),
        extensions: vec![],
    };
    let cp = v["consistency_proofs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["size1"] == 3 && p["size2"] == 8)
        .unwrap();
    let proof: Vec<Vec<u8>> = cp["proof_hex"].as_array().unwrap().iter().map(hx).collect();
    let inputs = [
        AnchorInput {
            origin: Some("log"),
            tree_size: 8,
            root_hash: &roots[8],
            consistency_proof: None,
        },
        AnchorInput {
            origin: Some("log"),
            tree_size: 3,
            root_hash: &roots[3],
            consistency_proof: Some(&proof),
        },
        AnchorInput {
            origin: Some("log"),
            tree_size: 3,
            root_hash: &roots[4],
            consistency_proof: Some(&proof),
        },
        AnchorInput {
            origin: Some("other"),
            tree_size: 8,
            root_hash: &roots[8],
            consistency_proof: None,
        },
        AnchorInput {
            origin: None,
            tree_size: 5,
            root_hash: &roots[5],
            consistency_proof: None,
        },
        AnchorInput {
            origin: None,
            tree_size: 8,
            root_hash: &roots[7],
            consistency_proof: None,
        },
    ];
    let got = anchor_inclusion_proofs(&pinned, &inputs);
    assert_eq!(got[0], AnchorStatus::SameTreeHead);
    assert_eq!(got[1], AnchorStatus::Consistent);
    assert!(!got[2].is_anchored());
    assert!(!got[3].is_anchored());
    assert!(!got[4].is_anchored());
    assert!(!got[5].is_anchored());
}

#[test]
fn oversized_proof_rejected() {
    let proof = vec![vec![0u8; 32]; 10_000];
    assert!(verify_inclusion(0, u64::MAX, &[0u8; 32], &proof, &[0u8; 32]).is_err());
}
