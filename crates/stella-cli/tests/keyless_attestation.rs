//! Keyless (Fulcio + Rekor) attestations outside `verify blob`: `verify
//! attestation` and `bundle verify` with `--trusted-root`, the identity
//! policy and `--rekor-checkpoint`, using the real production-signed DSSE
//! bundle `happy-path-intoto-in-dsse-v3` of sigstore-conformance.
//!
//! What is and is not covered, honestly:
//! - That bundle's statement is about a file (`a.txt`), and no image can
//!   have a manifest digest equal to a file digest. So the *successful*
//!   keyless path is tested at the library level
//!   (`stella_attest::verify::verify_attestation` with the statement's own
//!   subject digest), including checkpoint anchoring with real Rekor proofs
//!   and `stella_bundle`'s report over those anchors.
//! - Through the binary, the bundle is pushed as a referrer of a real image:
//!   `verify attestation` and `bundle verify` run the keyless engine on it
//!   and reject it for its subject (exit 1, subject reason); the checkpoint
//!   flags' usage and rejection paths are checked end to end.
//! - Consistency proofs: the engine accepts them, but neither sigstore
//!   bundles nor StellaBundles carry one today, so only "no consistency
//!   proof -> unanchored" is exercised.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use stella_attest::keyless::{AnchorState, KeylessTrust};
use stella_attest::verify::{TrustPolicy, verify_attestation};
use stella_sigstore::{
    IdentityPolicy, Matcher, PinnedCheckpoint, SigstoreError, TrustedRoot, Verifier, VerifierConfig,
};
use stella_testkit::cli::{Run, Stella};
use stella_testkit::fixtures;
use stella_types::{Descriptor, Digest};

const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";
/// sha256 of sigstore-conformance's `a.txt`, the statement subject.
const A_TXT: &str = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";

fn conf(p: &str) -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/conformance/sigstore/"
    ))
    .join(p)
}

fn asset(case: &str) -> PathBuf {
    conf(&format!(
        "test/assets/bundle-verify/{case}/bundle.sigstore.json"
    ))
}

fn production_root() -> PathBuf {
    conf("trusted_root/production.json")
}

/// The signed checkpoint note inside a bundle's first inclusion proof.
fn checkpoint_of(case: &str) -> String {
    let v: Value = serde_json::from_slice(&std::fs::read(asset(case)).unwrap()).unwrap();
    v["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["checkpoint"]["envelope"]
        .as_str()
        .unwrap()
        .to_string()
}

fn dsse_bundle() -> Vec<u8> {
    std::fs::read(asset("happy-path-intoto-in-dsse-v3")).unwrap()
}

fn trust(identity: &str, checkpoint: Option<&str>) -> Result<KeylessTrust, SigstoreError> {
    let root = TrustedRoot::from_json(&std::fs::read(production_root()).unwrap())?;
    let verifier = Verifier::new(root, VerifierConfig::default());
    let checkpoint = match checkpoint {
        Some(n) => Some(Arc::new(PinnedCheckpoint::from_note(
            n,
            verifier.trusted_root(),
        )?)),
        None => None,
    };
    Ok(KeylessTrust {
        verifier: Arc::new(verifier),
        identity: IdentityPolicy {
            identity: Matcher::Exact(identity.into()),
            issuer: Matcher::Exact(ISSUER.into()),
        },
        checkpoint,
        consistency_proofs: Vec::new(),
    })
}

fn policy(t: KeylessTrust) -> TrustPolicy {
    TrustPolicy {
        keyless: Some(t),
        ..TrustPolicy::default()
    }
}

// ------------------------------------------------------------ library level

#[test]
fn keyless_attestation_verifies_against_its_subject() {
    let subject = Digest::parse(A_TXT).unwrap();
    let v = verify_attestation(
        &dsse_bundle(),
        BUNDLE_V03,
        &subject,
        &policy(trust(IDENTITY, None).unwrap()),
    );
    assert!(v.verified, "{}", v.reason);
    assert_eq!(
        v.predicate_type.as_deref(),
        Some("https://slsa.dev/provenance/v1")
    );
    assert!(v.signer.as_deref().unwrap().starts_with(IDENTITY), "{v:?}");
    assert!(v.reason.contains("keyless"), "{}", v.reason);
    assert!(
        v.anchors.is_empty(),
        "no checkpoint pinned, nothing anchored"
    );
}

#[test]
fn keyless_attestation_rejects_other_subject_and_identity() {
    let other = Digest::sha256_of(b"not a.txt");
    let v = verify_attestation(
        &dsse_bundle(),
        BUNDLE_V03,
        &other,
        &policy(trust(IDENTITY, None).unwrap()),
    );
    assert!(!v.verified);
    assert!(
        v.reason.contains("no statement subject") && v.reason.contains(other.hex()),
        "{}",
        v.reason
    );
    // The claimed predicate type is still reported for display/filtering.
    assert_eq!(
        v.claimed_predicate_type.as_deref(),
        Some("https://slsa.dev/provenance/v1")
    );

    let subject = Digest::parse(A_TXT).unwrap();
    let v = verify_attestation(
        &dsse_bundle(),
        BUNDLE_V03,
        &subject,
        &policy(trust("https://example.com/someone-else", None).unwrap()),
    );
    assert!(!v.verified);
    assert!(v.reason.contains("identity"), "{}", v.reason);
}

#[test]
fn keyless_inclusion_proof_anchoring() {
    let subject = Digest::parse(A_TXT).unwrap();
    // The bundle's own checkpoint (same tree size and root): anchored.
    let own = checkpoint_of("happy-path-intoto-in-dsse-v3");
    let v = verify_attestation(
        &dsse_bundle(),
        BUNDLE_V03,
        &subject,
        &policy(trust(IDENTITY, Some(&own)).unwrap()),
    );
    assert!(v.verified, "{}", v.reason);
    assert_eq!(v.anchors.len(), 1);
    assert_eq!(
        v.anchors[0].state,
        AnchorState::SameTreeHead,
        "{:?}",
        v.anchors
    );
    assert_eq!(v.anchors[0].tree_size, Some(33786589));

    // A real checkpoint of the same log (same origin) at another size, and
    // no consistency proof: unanchored, saying why.
    let later = checkpoint_of("managed-key-happy-path");
    assert!(later.contains("\n649584076\n"));
    let v = verify_attestation(
        &dsse_bundle(),
        BUNDLE_V03,
        &subject,
        &policy(trust(IDENTITY, Some(&later)).unwrap()),
    );
    assert!(v.verified, "the signature still verifies: {}", v.reason);
    assert_eq!(v.anchors.len(), 1);
    assert_eq!(v.anchors[0].state, AnchorState::Unanchored);
    assert!(
        v.anchors[0].detail.contains("33786589")
            && v.anchors[0].detail.contains("649584076")
            && v.anchors[0].detail.contains("no consistency proof"),
        "{}",
        v.anchors[0].detail
    );

    // Same key, another log shard (origin): unanchored.
    let shard = checkpoint_of("happy-path-v0.3");
    let v = verify_attestation(
        &dsse_bundle(),
        BUNDLE_V03,
        &subject,
        &policy(trust(IDENTITY, Some(&shard)).unwrap()),
    );
    assert_eq!(v.anchors[0].state, AnchorState::Unanchored);
    assert!(
        v.anchors[0].detail.contains("from log"),
        "{}",
        v.anchors[0].detail
    );

    // A checkpoint from a log outside the trusted root is refused outright.
    let foreign = checkpoint_of("intoto-with-custom-trust-root");
    let e = trust(IDENTITY, Some(&foreign)).unwrap_err();
    assert!(matches!(e, SigstoreError::Failed(_)), "{e:?}");
    // A mangled note is unusable input.
    let e = trust(IDENTITY, Some("not a checkpoint")).unwrap_err();
    assert!(e.is_unusable(), "{e:?}");
}

/// `stella_bundle`'s `rekor-checkpoint` check over real anchors. The test
/// verifier checks each attestation against its statement's own subject
/// (`a.txt`), because no image manifest can carry that digest; everything
/// else (engine, proofs, anchoring, report) is the real code.
#[test]
fn bundle_report_over_real_anchors() {
    use stella_bundle::verify::{AttestationOutcome, AttestationVerifier, Status, VerifyOptions};

    struct AgainstStatementSubject(TrustPolicy);
    impl AttestationVerifier for AgainstStatementSubject {
        fn verify(&self, bytes: &[u8], mt: &str, _subject: &Digest) -> AttestationOutcome {
            let v = verify_attestation(bytes, mt, &Digest::parse(A_TXT).unwrap(), &self.0);
            AttestationOutcome {
                verified: v.verified,
                predicate_type: v.predicate_type,
                signer: v.signer,
                reason: v.reason,
                tlog_anchors: v
                    .anchors
                    .into_iter()
                    .map(|a| stella_bundle::verify::TlogAnchor {
                        log_index: a.log_index,
                        tree_size: a.tree_size,
                        anchored: a.is_anchored(),
                        detail: a.detail,
                    })
                    .collect(),
            }
        }
    }
    let w = tempfile::tempdir().unwrap();
    let image = make_image(&w.path().join("A"));
    push_keyless_referrer(&w.path().join("A"), &image);
    ok(
        w.path(),
        &[
            "evidence",
            "export-bundle",
            "--image",
            "oci:A:v1",
            "--include-dsse",
            "--include-rekor-proof",
            "--output",
            "b.tar",
        ],
    );
    let run = |cp: &str, allow: bool| {
        let v = AgainstStatementSubject(policy(trust(IDENTITY, Some(cp)).unwrap()));
        let opts = VerifyOptions {
            attestations: Some(&v),
            rekor_checkpoint_given: true,
            allow_unanchored_proofs: allow,
            ..VerifyOptions::default()
        };
        let f = std::fs::File::open(w.path().join("b.tar")).unwrap();
        stella_bundle::verify::verify_bundle(f, &opts).unwrap()
    };
    let check = |r: &stella_bundle::verify::VerifyReport| {
        r.checks
            .iter()
            .find(|c| c.name == "rekor-checkpoint")
            .cloned()
            .unwrap()
    };

    let r = run(&checkpoint_of("happy-path-intoto-in-dsse-v3"), false);
    assert!(r.verified, "{:?}", r.failures);
    assert_eq!(check(&r).status, Status::Verified, "{:?}", check(&r));
    assert!(check(&r).detail.contains("1 inclusion proof(s) anchored"));

    let r = run(&checkpoint_of("managed-key-happy-path"), false);
    assert!(!r.verified);
    assert!(r.has_failure("unanchored-proof"), "{:?}", r.failures);
    assert_eq!(check(&r).status, Status::Failed);
    assert!(
        r.failures
            .iter()
            .any(|f| f.reason.contains("log index") && f.reason.contains("no consistency proof")),
        "{:?}",
        r.failures
    );

    let r = run(&checkpoint_of("managed-key-happy-path"), true);
    assert!(r.verified, "{:?}", r.failures);
    assert_eq!(check(&r).status, Status::NotChecked);
    assert!(
        check(&r)
            .detail
            .contains("(accepted: unanchored proofs allowed)")
    );
}

// ------------------------------------------------------------ the binary

fn cli(dir: &Path) -> Stella {
    Stella::new(env!("CARGO_BIN_EXE_stella")).current_dir(dir)
}

fn code(dir: &Path, args: &[&str], expected: i32) -> Run {
    cli(dir).code(args, expected)
}

fn ok(dir: &Path, args: &[&str]) -> String {
    cli(dir).ok(args)
}

/// A minimal image (config + one layer) tagged `v1`.
fn make_image(dir: &Path) -> Descriptor {
    fixtures::layout_image(
        dir,
        "v1",
        br#"{"architecture":"amd64","os":"linux"}"#,
        b"not really a tar, never unpacked",
    )
}

/// Attaches the keyless DSSE sigstore bundle as an OCI 1.1 referrer.
fn push_keyless_referrer(dir: &Path, image: &Descriptor) {
    fixtures::push_layout_referrer(
        dir,
        image,
        BUNDLE_V03,
        dsse_bundle(),
        Some("bundle.sigstore.json"),
    );
}

fn keyless_flags(root: &Path) -> Vec<String> {
    vec![
        "--trusted-root".into(),
        root.display().to_string(),
        "--certificate-identity".into(),
        IDENTITY.into(),
        "--certificate-oidc-issuer".into(),
        ISSUER.into(),
    ]
}

#[test]
fn cli_keyless_referrer_and_bundle_checkpoint_flags() {
    let w = tempfile::tempdir().unwrap();
    let dir = w.path();
    let image = make_image(&dir.join("A"));
    push_keyless_referrer(&dir.join("A"), &image);
    let root = production_root();
    let kf = keyless_flags(&root);
    let kf: Vec<&str> = kf.iter().map(String::as_str).collect();

    // verify attestation: found as a referrer, run through the keyless
    // engine, rejected because its statement is not about this image.
    let mut args = vec!["verify", "attestation", "--image", "oci:A:v1"];
    args.extend(&kf);
    args.extend(["--output", "json"]);
    let r = code(dir, &args, 1);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let a = &v["attestations"][0];
    assert_eq!(a["verified"], false);
    let reason = a["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("keyless:")
            && reason.contains("no statement subject has sha256 digest")
            && reason.contains(image.digest.hex()),
        "{reason}"
    );
    assert_eq!(a["predicateType"], "https://slsa.dev/provenance/v1");

    // Keyless flags without a trusted root are a usage error.
    code(
        dir,
        &[
            "verify",
            "attestation",
            "--image",
            "oci:A:v1",
            "--certificate-identity",
            IDENTITY,
        ],
        2,
    );

    // Export: the sigstore bundle travels byte for byte.
    ok(
        dir,
        &[
            "evidence",
            "export-bundle",
            "--image",
            "oci:A:v1",
            "--include-dsse",
            "--include-rekor-proof",
            "--output",
            "b.tar",
        ],
    );
    std::fs::write(
        dir.join("own.cp"),
        checkpoint_of("happy-path-intoto-in-dsse-v3"),
    )
    .unwrap();
    std::fs::write(
        dir.join("foreign.cp"),
        checkpoint_of("intoto-with-custom-trust-root"),
    )
    .unwrap();
    std::fs::write(dir.join("garbage.cp"), "hello\n").unwrap();

    // bundle verify with the keyless engine: the attestation is rejected for
    // its subject, so no proof is anchored and the pinned checkpoint is not
    // satisfied ("absent"), and the report says why.
    let mut args = vec!["bundle", "verify", "--bundle", "b.tar", "--output", "json"];
    args.extend(&kf);
    args.extend(["--rekor-checkpoint", "own.cp"]);
    let r = code(dir, &args, 1);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let failures = v["failures"].as_array().unwrap();
    assert!(
        failures.iter().any(|f| f["code"] == "signature"
            && f["reason"]
                .as_str()
                .unwrap()
                .contains("no statement subject has sha256 digest")),
        "{failures:?}"
    );
    let cp = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "rekor-checkpoint")
        .unwrap();
    assert_eq!(cp["status"], "absent", "{cp}");
    assert!(failures.iter().any(|f| f["code"] == "unanchored-proof"));
    assert!(!r.stdout.contains("not implemented"));

    // A checkpoint signed by a log that is not in the trusted root: rejected.
    let mut args = vec!["bundle", "verify", "--bundle", "b.tar"];
    args.extend(&kf);
    args.extend([
        "--rekor-checkpoint",
        "foreign.cp",
        "--allow-unanchored-proofs",
    ]);
    let r = code(dir, &args, 1);
    assert!(
        r.stderr.contains("pinned Rekor checkpoint rejected"),
        "{}",
        r.stderr
    );

    // Malformed checkpoint, or a checkpoint without a trusted root: exit 2.
    let mut args = vec!["bundle", "verify", "--bundle", "b.tar"];
    args.extend(&kf);
    args.extend(["--rekor-checkpoint", "garbage.cp"]);
    code(dir, &args, 2);
    let r = code(
        dir,
        &[
            "bundle",
            "verify",
            "--bundle",
            "b.tar",
            "--rekor-checkpoint",
            "own.cp",
        ],
        2,
    );
    assert!(r.stderr.contains("--trusted-root"), "{}", r.stderr);
    // The risky switch only makes sense with a pinned checkpoint.
    code(
        dir,
        &[
            "bundle",
            "verify",
            "--bundle",
            "b.tar",
            "--allow-unanchored-proofs",
        ],
        2,
    );
}

/// `verify image` with keyless flags: the real sigstore bundle attached to
/// image A is verified through the CLI by the keyless engine (identity,
/// issuer, Fulcio chain, Rekor entry) and then rejected, because its
/// statement is about `a.txt`, not A. A wrong identity makes it a plain
/// signature failure instead; a policy keyless signer without
/// `--trusted-root` is a usage error.
#[test]
fn verify_image_uses_keyless_signers() {
    let w = tempfile::tempdir().unwrap();
    let dir = w.path();
    let image = make_image(&dir.join("A"));
    push_keyless_referrer(&dir.join("A"), &image);
    let root = production_root();
    let kf = keyless_flags(&root);
    let kf: Vec<&str> = kf.iter().map(String::as_str).collect();

    let mut args = vec![
        "verify",
        "image",
        "oci:A:v1",
        "--use-referrers",
        "--require",
        "slsaprovenance",
        "--output",
        "json",
    ];
    args.extend(&kf);
    let r = code(dir, &args, 1);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let ev = &v["evidence"][0];
    assert_eq!(ev["status"], "rejected", "{v}");
    assert!(ev["reason"].as_str().unwrap().contains(A_TXT), "{v}");
    assert_eq!(v["requirements"][0]["status"], "failed", "{v}");

    let mut wrong = vec![
        "verify",
        "image",
        "oci:A:v1",
        "--use-referrers",
        "--require",
        "slsaprovenance",
        "--output",
        "json",
        "--trusted-root",
        root.to_str().unwrap(),
        "--certificate-identity",
        "https://example.com/not-the-signer",
        "--certificate-oidc-issuer",
        ISSUER,
    ];
    let r = code(dir, &wrong, 1);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["evidence"][0]["status"], "failed", "{v}");
    wrong.truncate(8);

    std::fs::write(
        dir.join("policy.yaml"),
        format!("version: 1\nsigners:\n  ci:\n    keyless: {{ identity: \"{IDENTITY}\", issuer: \"{ISSUER}\" }}\nrequirements:\n  - type: slsaprovenance\n"),
    )
    .unwrap();
    let r = code(
        dir,
        &[
            "verify",
            "image",
            "oci:A:v1",
            "--use-referrers",
            "--policy",
            "policy.yaml",
        ],
        2,
    );
    assert!(r.stderr.contains("--trusted-root"), "{}", r.stderr);
    let r = code(
        dir,
        &[
            "verify",
            "image",
            "oci:A:v1",
            "--use-referrers",
            "--policy",
            "policy.yaml",
            "--trusted-root",
            root.to_str().unwrap(),
            "--output",
            "json",
        ],
        1,
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["evidence"][0]["status"], "rejected", "{v}");
}
