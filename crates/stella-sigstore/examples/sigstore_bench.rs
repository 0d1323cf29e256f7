//! Offline verification throughput (used by bench/sigstore.sh).
//!
//! Verifies N sigstore bundles (cycling over the public-good happy-path
//! conformance bundles) against the production trusted root, then times each
//! step on its own: JSON parse, transparency log (SET + inclusion proof +
//! checkpoint), certificate path, SCT, artifact signature. Prints one JSON
//! object. Usage: sigstore_bench <conformance/sigstore dir> [N]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Instant;

use stella_crypto::x509::{ChainOptions, verify_chain};
use stella_sigstore::bundle::SignerMaterial;
use stella_sigstore::fulcio::OID_EKU_CODE_SIGNING;
use stella_sigstore::{
    Artifact, Bundle, Certificate, IdentityPolicy, Matcher, Policy, TrustedRoot, Verifier,
    VerifierConfig,
};

const CASES: &[&str] = &[
    "happy-path-v0.1",
    "happy-path-v0.2",
    "happy-path-v0.3",
    "happy-path-v0.3-new-mediaType",
    "happy-path-intoto-in-dsse-v3",
];
const SAN: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().expect("conformance/sigstore directory");
    let n: usize = args.next().map(|s| s.parse().unwrap()).unwrap_or(1000);
    let dir = Path::new(&dir);
    let root =
        TrustedRoot::from_json(&std::fs::read(dir.join("trusted_root/production.json")).unwrap())
            .unwrap();
    let artifact = std::fs::read(dir.join("test/assets/a.txt")).unwrap();
    let bundles: Vec<Vec<u8>> = CASES
        .iter()
        .map(|c| {
            std::fs::read(dir.join(format!(
                "test/assets/bundle-verify/{c}/bundle.sigstore.json"
            )))
            .unwrap()
        })
        .collect();
    let policy = Policy::Identity(IdentityPolicy {
        identity: Matcher::Exact(SAN.into()),
        issuer: Matcher::Exact("https://token.actions.githubusercontent.com".into()),
    });
    let verifier = Verifier::new(root.clone(), VerifierConfig::default());

    // End to end: parse + verify, N bundles.
    let t0 = Instant::now();
    for i in 0..n {
        let b = Bundle::parse(&bundles[i % bundles.len()]).unwrap();
        verifier
            .verify(&b, Artifact::Bytes(&artifact), &policy)
            .unwrap();
    }
    let total = t0.elapsed().as_secs_f64();

    // Steps, each timed alone over N bundles.
    let parsed: Vec<Bundle> = bundles.iter().map(|b| Bundle::parse(b).unwrap()).collect();
    let t = Instant::now();
    for i in 0..n {
        std::hint::black_box(Bundle::parse(&bundles[i % bundles.len()]).unwrap());
    }
    let parse = t.elapsed().as_secs_f64();

    let leaves: Vec<Certificate> = parsed
        .iter()
        .map(|b| match &b.signer {
            SignerMaterial::Certificate(d) => Certificate::from_der(d).unwrap(),
            SignerMaterial::PublicKey { .. } => panic!("keyless bundles only"),
        })
        .collect();
    let t = Instant::now();
    for i in 0..n {
        let b = &parsed[i % parsed.len()];
        std::hint::black_box(Certificate::from_der(match &b.signer {
            SignerMaterial::Certificate(d) => d,
            SignerMaterial::PublicKey { .. } => unreachable!(),
        }))
        .unwrap();
    }
    let cert_parse = t.elapsed().as_secs_f64();

    let times: Vec<i64> = parsed
        .iter()
        .map(|b| b.tlog_entries[0].integrated_time)
        .collect();
    let mut issuers = Vec::new();
    let t = Instant::now();
    for i in 0..n {
        // A fresh parse, as in a real verification: a parsed certificate
        // remembers the issuer signatures that verified.
        let leaf = &Certificate::from_der(leaves[i % leaves.len()].der()).unwrap();
        let tm = times[i % times.len()];
        let path = root
            .certificate_authorities
            .iter()
            .filter(|ca| ca.valid_for.contains(tm))
            .find_map(|ca| {
                let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(tm as u64);
                let opts = ChainOptions::code_signing(at).requiring_eku(OID_EKU_CODE_SIGNING);
                verify_chain(leaf, ca.intermediates(), ca.anchor(), &opts).ok()
            })
            .unwrap();
        if i < leaves.len() {
            issuers.push(path[1].clone());
        }
    }
    let chain = t.elapsed().as_secs_f64();

    let t = Instant::now();
    for i in 0..n {
        let k = i % leaves.len();
        stella_sigstore::sct::verify_embedded(&leaves[k], &issuers[k], &root).unwrap();
    }
    let sct = t.elapsed().as_secs_f64();

    // Transparency log + signature: a verifier without SCT/identity work is
    // not exposed, so time signature-only and Merkle-only parts directly.
    let t = Instant::now();
    for i in 0..n {
        let b = &parsed[i % parsed.len()];
        let e = &b.tlog_entries[0];
        let p = e.inclusion_proof.as_ref().unwrap();
        let leaf = stella_tlog::leaf_hash(&e.canonicalized_body);
        stella_tlog::verify_inclusion(p.log_index, p.tree_size, &leaf, &p.hashes, &p.root_hash)
            .unwrap();
        let note = stella_tlog::Note::parse(&p.checkpoint).unwrap();
        std::hint::black_box(stella_tlog::Checkpoint::parse_body(&note.text).unwrap());
    }
    let merkle = t.elapsed().as_secs_f64();

    // Signature verifications per bundle (all ECDSA): artifact/DSSE, SET,
    // checkpoint, SCT (P-256) + the leaf certificate (P-384 issuer key; the
    // intermediate-to-root link is verified once and remembered).
    let t = Instant::now();
    for i in 0..n {
        let k = i % parsed.len();
        let b = &parsed[k];
        let key = leaves[k].public_key().unwrap();
        let msg: Vec<u8> = match &b.content {
            stella_sigstore::Content::MessageSignature { .. } => artifact.clone(),
            stella_sigstore::Content::Dsse {
                payload_type,
                payload,
                ..
            } => stella_sigstore::pae(payload_type, payload),
        };
        assert!(
            key.verify(key.default_algorithm(), &msg, b.content.signature())
                .is_ok()
        );
    }
    let artifact_sig = t.elapsed().as_secs_f64();

    println!(
        "{{\"bundles\":{n},\"total_s\":{total:.6},\"bundles_per_s\":{:.1},\"p256_verifies_per_bundle\":4,\"p384_verifies_per_bundle\":1,\
\"steps_s\":{{\"json_parse\":{parse:.6},\"cert_parse\":{cert_parse:.6},\"cert_parse+chain(1xP-384; CA-to-root link remembered)\":{chain:.6},\"sct(1xP-256)\":{sct:.6},\"merkle+checkpoint_parse\":{merkle:.6},\"artifact_signature(1xP-256)\":{artifact_sig:.6}}}}}",
        n as f64 / total
    );
}
