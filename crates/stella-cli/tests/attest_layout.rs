//! `stella key generate`, `stella attest` and `stella verify attestation` end
//! to end on local OCI image layouts, run as the built binary: round trip,
//! wrong key, evidence about another image, tampered envelope, cosign legacy
//! `.att` tags, organisation PKI, encrypted keys, usage errors and exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use stella_oci::layout::OciLayout;
use stella_oci::store::{BlobSource, ContentWrite, NoProgress};
use stella_testkit::cli::{Run, Stella, expect, json};
use stella_testkit::fixtures::runtime as rt;
use stella_testkit::fixtures::{self, PLAIN_CONFIG, base64_decode, base64_encode, pki};
use stella_types::media_types;
use stella_types::{Descriptor, ImageManifest};

const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const DSSE: &str = "application/vnd.dsse.envelope.v1+json";

fn stella_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    Stella::new(env!("CARGO_BIN_EXE_stella")).run_env(args, env)
}

fn stella(args: &[&str]) -> Run {
    stella_env(args, &[])
}

/// Writes a tiny image (config + one layer + manifest) tagged `tag`.
fn make_image(dir: &Path, tag: &str, layer: &[u8]) -> Descriptor {
    fixtures::layout_image(dir, tag, PLAIN_CONFIG, layer)
}

/// Pushes `bytes` as a referrer of `subject` the way stella/cosign do.
fn push_bundle(dir: &Path, subject: &Descriptor, bytes: Vec<u8>, media_type: &str) {
    fixtures::push_layout_referrer(dir, subject, media_type, bytes, None);
}

struct Fixture {
    _t: tempfile::TempDir,
    root: std::path::PathBuf,
    lay: std::path::PathBuf,
    img1: Descriptor,
    img2: Descriptor,
}

impl Fixture {
    fn new() -> Self {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().to_path_buf();
        let lay = root.join("lay");
        let img1 = make_image(&lay, "v1", b"layer one");
        let img2 = make_image(&lay, "v2", b"layer two");
        std::fs::write(
            root.join("pred.json"),
            br#"{"buildDefinition":{"buildType":"https://example.com/t"},"runDetails":{}}"#,
        )
        .unwrap();
        Fixture {
            _t: t,
            root,
            lay,
            img1,
            img2,
        }
    }
    fn p(&self, name: &str) -> String {
        self.root.join(name).display().to_string()
    }
    fn image(&self, tag: &str) -> String {
        format!("oci:{}:{tag}", self.lay.display())
    }
    fn keygen(&self, alg: &str, name: &str) {
        let r = stella(&[
            "key",
            "generate",
            "--algorithm",
            alg,
            "--output-key",
            &self.p(&format!("{name}.key")),
            "--output-pub",
            &self.p(&format!("{name}.pub")),
        ]);
        expect(&r, 0, "generated", "key generate");
    }
}

/// Two attestations on image v1: `slsaprovenance` signed by the P-256 key
/// `ecdsa-p256.key` (bundle also written to `b1.json`), and a custom type
/// signed by the Ed25519 key `ed25519.key`.
fn attest_both(f: &Fixture) {
    let r = stella(&[
        "attest",
        "--image",
        &f.image("v1"),
        "--predicate",
        &f.p("pred.json"),
        "--type",
        "slsaprovenance",
        "--key",
        &f.p("ecdsa-p256.key"),
        "--output",
        &f.p("b1.json"),
    ]);
    expect(&r, 0, "attested", "attest");
    let r = stella(&[
        "attest",
        "--image",
        &f.image("v1"),
        "--predicate",
        &f.p("pred.json"),
        "--type",
        "https://example.com/custom/v1",
        "--key",
        &f.p("ed25519.key"),
    ]);
    expect(&r, 0, "attested", "attest ed25519");
}

/// A fixture with both key pairs generated and [`attest_both`] done.
fn attested_fixture() -> Fixture {
    let f = Fixture::new();
    f.keygen("ecdsa-p256", "ecdsa-p256");
    f.keygen("ed25519", "ed25519");
    attest_both(&f);
    f
}

#[test]
fn key_generate_attest_verify_round_trip() {
    let f = Fixture::new();
    for alg in ["ecdsa-p256", "ed25519"] {
        f.keygen(alg, alg);
        let key = std::fs::read_to_string(f.p(&format!("{alg}.key"))).unwrap();
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{alg}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(f.p(&format!("{alg}.key")))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "private key readable by others");
        }
    }
    // Refuses to overwrite.
    let r = stella(&[
        "key",
        "generate",
        "--output-key",
        &f.p("ecdsa-p256.key"),
        "--output-pub",
        &f.p("x.pub"),
    ]);
    expect(&r, 2, "already exists", "overwrite");

    attest_both(&f);

    // The written bundle is the v0.3 bundle about image v1.
    let b = json(&std::fs::read_to_string(f.p("b1.json")).unwrap());
    assert_eq!(b["mediaType"], BUNDLE_V03);
    assert!(b["verificationMaterial"]["publicKey"]["hint"].is_string());

    // Both keys trusted: both attestations verify.
    let r = stella(&[
        "verify",
        "attestation",
        "--image",
        &f.image("v1"),
        "--key",
        &f.p("ecdsa-p256.pub"),
        "--key",
        &f.p("ed25519.pub"),
    ]);
    expect(&r, 0, "2 of 2 attestations verified", "verify");
    assert!(
        r.stdout.contains("VERIFIED") && r.stdout.contains("https://slsa.dev/provenance/v1"),
        "{}",
        r.stdout
    );
}

#[test]
fn verify_attestation_filters_by_type() {
    let f = attested_fixture();
    // Filter by type: only the slsa one is requested, and one key suffices.
    let r = stella(&[
        "verify",
        "attestation",
        "--image",
        &f.image("v1"),
        "--key",
        &f.p("ecdsa-p256.pub"),
        "--type",
        "slsaprovenance",
        "--output",
        "json",
    ]);
    expect(&r, 0, "\"verified\": true", "verify --type json");
    let v = json(&r.stdout);
    assert_eq!(v["attestations"].as_array().unwrap().len(), 1);
    assert_eq!(
        v["attestations"][0]["predicateType"],
        "https://slsa.dev/provenance/v1"
    );
    assert_eq!(v["digest"], f.img1.digest.to_string());
}

#[test]
fn verify_attestation_with_one_of_two_keys_fails_the_other() {
    let f = attested_fixture();
    // Without the type filter the ed25519 attestation fails under the P-256 key alone.
    let r = stella(&[
        "verify",
        "attestation",
        "--image",
        &f.image("v1"),
        "--key",
        &f.p("ecdsa-p256.pub"),
    ]);
    expect(&r, 1, "1 of 2 attestations verified", "verify one key");
}

#[test]
fn verify_attestation_reports_a_missing_type() {
    let f = attested_fixture();
    // Missing evidence: no cyclonedx attestation.
    let r = stella(&[
        "verify",
        "attestation",
        "--image",
        &f.image("v1"),
        "--key",
        &f.p("ecdsa-p256.pub"),
        "--type",
        "cyclonedx",
    ]);
    expect(
        &r,
        1,
        "no attestations of type https://cyclonedx.org/bom found",
        "missing type",
    );
}

#[test]
fn verify_attestation_of_an_image_without_attestations_fails() {
    let f = attested_fixture();
    // None at all on v2.
    let r = stella(&[
        "verify",
        "attestation",
        "--image",
        &f.image("v2"),
        "--key",
        &f.p("ecdsa-p256.pub"),
    ]);
    expect(&r, 1, "no attestations found", "no attestations");
}

#[test]
fn verify_attestation_with_the_wrong_key_fails() {
    let f = attested_fixture();
    f.keygen("ecdsa-p256", "other");
    let r = stella(&[
        "verify",
        "attestation",
        "--image",
        &f.image("v1"),
        "--key",
        &f.p("other.pub"),
        "--type",
        "slsaprovenance",
    ]);
    expect(&r, 1, "does not verify", "wrong key");
    assert!(r.stdout.contains("FAILED"), "{}", r.stdout);
}

#[test]
fn attest_no_push_writes_the_bundle_and_attaches_nothing() {
    let f = attested_fixture();
    let r = stella(&[
        "attest",
        "--image",
        &f.image("v2"),
        "--predicate",
        &f.p("pred.json"),
        "--type",
        "spdx",
        "--key",
        &f.p("ecdsa-p256.key"),
        "--no-push",
        "--output",
        &f.p("b2.json"),
    ]);
    expect(&r, 0, "not pushed", "no-push");
    assert!(
        std::fs::metadata(f.p("b2.json")).is_ok_and(|m| m.len() > 0),
        "--no-push --output writes the bundle"
    );
    let r = stella(&[
        "verify",
        "attestation",
        "--image",
        &f.image("v2"),
        "--key",
        &f.p("ecdsa-p256.pub"),
    ]);
    expect(&r, 1, "no attestations found", "no-push pushed nothing");
}

#[test]
fn evidence_for_another_image_and_tampering_are_rejected() {
    let f = Fixture::new();
    f.keygen("ecdsa-p256", "k");
    // A valid bundle about image v2, attached to image v1.
    let r = stella(&[
        "attest",
        "--image",
        &f.image("v2"),
        "--predicate",
        &f.p("pred.json"),
        "--type",
        "openvex",
        "--key",
        &f.p("k.key"),
        "--no-push",
        "--output",
        &f.p("about-v2.json"),
    ]);
    expect(&r, 0, "not pushed", "attest v2");
    let about_v2 = std::fs::read(f.p("about-v2.json")).unwrap();
    push_bundle(&f.lay, &f.img1, about_v2.clone(), BUNDLE_V03);
    let r = stella(&[
        "verify",
        "attestation",
        "--image",
        &f.image("v1"),
        "--key",
        &f.p("k.pub"),
    ]);
    expect(&r, 1, "statement subject does not match", "other image");
    assert!(
        r.stdout.contains(&f.img2.digest.to_string()),
        "{}",
        r.stdout
    );
    // The same bundle attached to v2 verifies there.
    push_bundle(&f.lay, &f.img2, about_v2.clone(), BUNDLE_V03);
    let r = stella(&[
        "verify",
        "attestation",
        "--image",
        &f.image("v2"),
        "--key",
        &f.p("k.pub"),
    ]);
    expect(&r, 0, "1 of 1 attestations verified", "right image");

    // Tampered: the payload is modified and the bundle re-pushed to v2.
    let mut b = json(std::str::from_utf8(&about_v2).unwrap());
    let payload = b["dsseEnvelope"]["payload"].as_str().unwrap().to_string();
    let mut stmt = json(&String::from_utf8(base64_decode(&payload)).unwrap());
    stmt["predicate"]["injected"] = Value::Bool(true);
    b["dsseEnvelope"]["payload"] =
        Value::String(base64_encode(&serde_json::to_vec(&stmt).unwrap()));
    push_bundle(&f.lay, &f.img2, serde_json::to_vec(&b).unwrap(), BUNDLE_V03);
    let r = stella(&[
        "verify",
        "attestation",
        "--image",
        &f.image("v2"),
        "--key",
        &f.p("k.pub"),
        "--output",
        "json",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let v = json(&r.stdout);
    let atts = v["attestations"].as_array().unwrap();
    assert_eq!(atts.len(), 2);
    assert_eq!(atts.iter().filter(|a| a["verified"] == true).count(), 1);
    let bad = atts.iter().find(|a| a["verified"] == false).unwrap();
    assert!(
        bad["reason"].as_str().unwrap().contains("does not verify"),
        "{bad}"
    );
    assert_eq!(bad["failure"], "failed");

    // Garbage where a bundle should be: a clear failure line, exit 1.
    push_bundle(&f.lay, &f.img2, b"{not json".to_vec(), BUNDLE_V03);
    let r = stella(&[
        "verify",
        "attestation",
        "--image",
        &f.image("v2"),
        "--key",
        &f.p("k.pub"),
    ]);
    expect(&r, 1, "malformed sigstore bundle", "garbage bundle");
}

#[test]
fn plain_dsse_referrers_and_cosign_legacy_att_tags_are_read() {
    let f = Fixture::new();
    f.keygen("ecdsa-p256", "k");
    let r = stella(&[
        "attest",
        "--image",
        &f.image("v1"),
        "--predicate",
        &f.p("pred.json"),
        "--type",
        "vuln",
        "--key",
        &f.p("k.key"),
        "--no-push",
        "--output",
        &f.p("b.json"),
    ]);
    expect(&r, 0, "not pushed", "attest");
    let b = json(&std::fs::read_to_string(f.p("b.json")).unwrap());
    let envelope = serde_json::to_vec(&b["dsseEnvelope"]).unwrap();

    // A plain DSSE envelope referrer.
    push_bundle(&f.lay, &f.img1, envelope.clone(), DSSE);
    let r = stella(&[
        "verify",
        "attestation",
        "--image",
        &f.image("v1"),
        "--key",
        &f.p("k.pub"),
        "--type",
        "vuln",
    ]);
    expect(
        &r,
        0,
        "https://in-toto.io/attestation/vulns/v0.2",
        "plain dsse",
    );

    // cosign legacy: tag sha256-<hex>.att on an image manifest whose layers are DSSE envelopes.
    rt().block_on(async {
        let l = OciLayout::open(&f.lay).unwrap();
        let cfg = media_types::EMPTY_JSON;
        let cd = Descriptor::for_bytes(media_types::OCI_CONFIG, cfg);
        l.push_blob(&cd, BlobSource::Bytes(cfg), &NoProgress)
            .await
            .unwrap();
        let ld = Descriptor::for_bytes(DSSE, &envelope);
        l.push_blob(&ld, BlobSource::Bytes(&envelope), &NoProgress)
            .await
            .unwrap();
        let m = ImageManifest {
            schema_version: 2,
            media_type: Some(media_types::OCI_MANIFEST.into()),
            artifact_type: None,
            config: cd,
            layers: vec![ld],
            subject: None,
            annotations: BTreeMap::new(),
        };
        for img in [&f.img1, &f.img2] {
            let tag = format!("sha256-{}.att", img.digest.hex());
            l.push_manifest(media_types::OCI_MANIFEST, &m.to_json_bytes(), Some(&tag))
                .await
                .unwrap();
        }
    });
    // ...on v1's legacy tag it verifies, next to the plain DSSE referrer.
    let r = stella(&[
        "verify",
        "attestation",
        "--image",
        &f.image("v1"),
        "--key",
        &f.p("k.pub"),
    ]);
    expect(&r, 0, "2 of 2 attestations verified", "legacy att");
    assert!(
        r.stdout
            .contains(&format!("sha256-{}.att", f.img1.digest.hex())),
        "{}",
        r.stdout
    );
    // The envelope is about v1, so on v2's legacy tag it is rejected...
    let r = stella(&[
        "verify",
        "attestation",
        "--image",
        &f.image("v2"),
        "--key",
        &f.p("k.pub"),
    ]);
    expect(&r, 1, "subject does not match", "legacy att other image");
    assert!(r.stdout.contains(".att"), "{}", r.stdout);
}

#[test]
fn organisation_pki_signed_attestations() {
    let f = Fixture::new();
    pki::make_pki(&f.root);
    let r = stella(&[
        "attest",
        "--image",
        &f.image("v1"),
        "--predicate",
        &f.p("pred.json"),
        "--type",
        "cyclonedx",
        "--key",
        &f.p("leaf.key"),
        "--certificate",
        &f.p("leaf.pem"),
        "--certificate-chain",
        &f.p("int.pem"),
    ]);
    expect(&r, 0, "attested", "attest pki");
    let r = stella(&[
        "verify",
        "attestation",
        "--image",
        &f.image("v1"),
        "--trust-root",
        &f.p("root.pem"),
    ]);
    expect(&r, 0, "1 of 1 attestations verified", "verify pki");
    assert!(
        r.stdout.contains("leaf@example.com") && r.stdout.contains("verification time"),
        "{}",
        r.stdout
    );
    let r = stella(&[
        "verify",
        "attestation",
        "--image",
        &f.image("v1"),
        "--trust-root",
        &f.p("other.pem"),
    ]);
    expect(&r, 1, "does not chain to a trusted root", "wrong ca");
    // Wrong EKU and missing digitalSignature, on image v2.
    for (leaf, reason) in [
        ("leaf-server", "codeSigning"),
        ("leaf-nods", "digitalSignature"),
    ] {
        let r = stella(&[
            "attest",
            "--image",
            &f.image("v2"),
            "--predicate",
            &f.p("pred.json"),
            "--type",
            "cyclonedx",
            "--key",
            &f.p(&format!("{leaf}.key")),
            "--certificate",
            &f.p(&format!("{leaf}.pem")),
            "--certificate-chain",
            &f.p("int.pem"),
        ]);
        expect(&r, 0, "attested", leaf);
        let r = stella(&[
            "verify",
            "attestation",
            "--image",
            &f.image("v2"),
            "--trust-root",
            &f.p("root.pem"),
        ]);
        expect(&r, 1, reason, leaf);
    }
    // A certificate that does not match the key is refused at attest time.
    let r = stella(&[
        "attest",
        "--image",
        &f.image("v1"),
        "--predicate",
        &f.p("pred.json"),
        "--type",
        "cyclonedx",
        "--key",
        &f.p("leaf-noeku.key"),
        "--certificate",
        &f.p("leaf.pem"),
    ]);
    expect(&r, 2, "not the signing key", "mismatched cert");
}

/// A fixture with an openssl-made, passphrase-encrypted P-256 key
/// (`enc.key`, passphrase `s3cret`) and its public key (`enc.pub`).
fn encrypted_key_fixture() -> Fixture {
    let f = Fixture::new();
    pki::openssl(
        &f.root,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-aes256",
            "-pass",
            "pass:s3cret",
            "-out",
            "enc.key",
        ],
    );
    pki::openssl(
        &f.root,
        &[
            "pkey",
            "-in",
            "enc.key",
            "-passin",
            "pass:s3cret",
            "-pubout",
            "-out",
            "enc.pub",
        ],
    );
    f
}

/// `stella attest` of `pred.json` (or `predicate`) on v1 with `--type ty --key key`.
fn attest_v1(f: &Fixture, predicate: &str, ty: &str, key: &str) -> Run {
    stella(&[
        "attest",
        "--image",
        &f.image("v1"),
        "--predicate",
        &f.p(predicate),
        "--type",
        ty,
        "--key",
        &f.p(key),
    ])
}

#[test]
fn encrypted_keys_need_the_right_passphrase() {
    let f = encrypted_key_fixture();
    let attest = |env: &[(&str, &str)]| {
        stella_env(
            &[
                "attest",
                "--image",
                &f.image("v1"),
                "--predicate",
                &f.p("pred.json"),
                "--type",
                "slsaprovenance",
                "--key",
                &f.p("enc.key"),
            ],
            env,
        )
    };
    expect(&attest(&[]), 2, "STELLA_PASSWORD", "no passphrase");
    expect(
        &attest(&[("STELLA_PASSWORD", "wrong")]),
        2,
        "wrong passphrase",
        "wrong passphrase",
    );
    expect(
        &attest(&[("STELLA_PASSWORD", "s3cret")]),
        0,
        "attested",
        "right passphrase",
    );
    let r = stella(&[
        "verify",
        "attestation",
        "--image",
        &f.image("v1"),
        "--key",
        &f.p("enc.pub"),
    ]);
    expect(&r, 0, "1 of 1", "verify encrypted-key attestation");
}

// Usage and input errors: exit 2, one line; one test each.

#[test]
fn attest_with_an_unknown_type_alias_is_a_usage_error() {
    let f = encrypted_key_fixture();
    let r = attest_v1(&f, "pred.json", "nonsense", "enc.key");
    expect(&r, 2, "unknown predicate type alias", "bad alias");
}

#[test]
fn attest_with_a_predicate_that_is_not_json_is_an_input_error() {
    let f = encrypted_key_fixture();
    std::fs::write(f.p("notjson.json"), b"{oops").unwrap();
    let r = attest_v1(&f, "notjson.json", "spdx", "enc.key");
    expect(&r, 2, "is not JSON", "bad predicate");
}

#[test]
fn attest_with_a_missing_key_file_is_an_input_error() {
    let f = encrypted_key_fixture();
    let r = attest_v1(&f, "pred.json", "spdx", "missing.key");
    expect(&r, 2, "cannot read private key", "missing key");
}

#[test]
fn verify_attestation_without_trust_is_a_usage_error() {
    let f = encrypted_key_fixture();
    let r = stella(&["verify", "attestation", "--image", &f.image("v1")]);
    expect(&r, 2, "--key", "no trust");
}

#[test]
fn verify_attestation_with_a_private_key_as_trust_is_an_input_error() {
    let f = encrypted_key_fixture();
    let r = stella(&[
        "verify",
        "attestation",
        "--image",
        &f.image("v1"),
        "--key",
        &f.p("enc.key"),
    ]);
    expect(&r, 2, "PUBLIC KEY", "private key given as public");
}

#[test]
fn verify_attestation_of_a_missing_tag_is_an_input_error() {
    let f = encrypted_key_fixture();
    let r = stella(&[
        "verify",
        "attestation",
        "--image",
        &f.image("nope"),
        "--key",
        &f.p("enc.pub"),
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}
