//! sigstore-conformance bundle-verification suite, driven through the built
//! `stella verify blob` binary via an adapter for the conformance CLI
//! protocol (`verify-bundle [--staging] --bundle B (--certificate-identity I
//! --certificate-oidc-issuer O | --key K) [--trusted-root T] FILE_OR_DIGEST`).
//! Every case runs twice (artifact path and `sha256:` digest), 140 runs in
//! all; each must end with the expected status (0 for PASS cases, non-zero
//! for `_fail` cases). Also runs the sigstore-go `extra/` vectors.
//!
//! Expected deviations: none. (The list below is checked: a case listed as
//! an expected deviation that actually conforms fails the test, like xfail
//! strict upstream.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use stella_testkit::cli::Stella;

const CONF: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/conformance/sigstore"
);

/// (case name, mode, written reason). Empty: every run conforms.
const EXPECTED_DEVIATIONS: &[(&str, &str, &str)] = &[];

/// The binary with an empty trust cache (`STELLA_CACHE_DIR`), so a cache
/// `stella trust update` filled on this machine cannot change a result.
fn stella() -> Stella {
    static EMPTY_CACHE: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let cache = EMPTY_CACHE.get_or_init(|| tempfile::tempdir().unwrap());
    Stella::new(env!("CARGO_BIN_EXE_stella"))
        .env("STELLA_CACHE_DIR", cache.path())
        .env_remove("XDG_CACHE_HOME")
}

fn conf(p: &str) -> PathBuf {
    Path::new(CONF).join(p)
}

/// Maps the conformance protocol onto `stella verify blob` (the adapter the
/// upstream README sketches): drops `--staging`, defaults `--trusted-root` to
/// the public-good production root, passes the other flags through, keeps the
/// artifact/digest last.
fn adapter(protocol_args: &[String]) -> Vec<String> {
    assert_eq!(
        protocol_args.first().map(String::as_str),
        Some("verify-bundle"),
        "unsupported command"
    );
    let mut out = vec!["verify".to_string(), "blob".to_string()];
    let mut trusted_root = conf("trusted_root/production.json").display().to_string();
    let rest = &protocol_args[1..];
    let (artifact, flags) = rest.split_last().unwrap();
    let mut i = 0;
    while i < flags.len() {
        match flags[i].as_str() {
            "--staging" => i += 1,
            "--trusted-root" => {
                trusted_root = flags[i + 1].clone();
                i += 2;
            }
            f => {
                out.push(f.to_string());
                out.push(flags[i + 1].clone());
                i += 2;
            }
        }
    }
    out.push("--trusted-root".into());
    out.push(trusted_root);
    out.push(artifact.clone());
    out
}

/// The protocol invocation the upstream harness builds for a case.
fn protocol_args(case: &Value, digest_mode: bool) -> Vec<String> {
    let s = |k: &str| case[k].as_str().map(str::to_string);
    let mut a = vec![
        "verify-bundle".to_string(),
        "--bundle".into(),
        conf(&s("bundle").unwrap()).display().to_string(),
    ];
    if let Some(k) = s("key") {
        a.extend(["--key".into(), conf(&k).display().to_string()]);
    } else {
        a.extend([
            "--certificate-identity".into(),
            s("certificate_identity").unwrap(),
        ]);
        a.extend([
            "--certificate-oidc-issuer".into(),
            s("certificate_oidc_issuer").unwrap(),
        ]);
    }
    if case["trusted_root_is_custom"].as_bool().unwrap() {
        a.extend([
            "--trusted-root".into(),
            conf(&s("trusted_root").unwrap()).display().to_string(),
        ]);
    }
    if digest_mode {
        a.push(format!("sha256:{}", s("artifact_sha256").unwrap()));
    } else {
        a.push(conf(&s("artifact").unwrap()).display().to_string());
    }
    a
}

fn run_stella(args: &[String]) -> (i32, String) {
    // The conformance runs see no SOURCE_DATE_EPOCH, like the conformance suite.
    let out = stella()
        .env_remove("SOURCE_DATE_EPOCH")
        .output_with(args, &[], None);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    (
        out.status.code().unwrap_or(-1),
        text.trim().replace('\n', " | "),
    )
}

#[test]
fn sigstore_conformance_bundle_verify() {
    let cases: Value = serde_json::from_slice(&std::fs::read(conf("cases.json")).unwrap()).unwrap();
    let cases = cases["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 70, "expected the 70 upstream cases");
    let mut pass = 0;
    let mut deviations = Vec::new();
    let mut unexpected_conformance = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let want_ok = case["expected"].as_str().unwrap() == "PASS";
        assert_eq!(
            want_ok,
            !name.ends_with("_fail"),
            "{name}: expectation and name disagree"
        );
        for (mode, digest) in [("PATH", false), ("DIGEST", true)] {
            let args = adapter(&protocol_args(case, digest));
            let (code, text) = run_stella(&args);
            assert!(
                code == 0 || code == 1 || code == 2,
                "{mode}-{name}: exit code {code} (crash?): {text}"
            );
            let conforms = (code == 0) == want_ok;
            let listed = EXPECTED_DEVIATIONS
                .iter()
                .any(|(n, m, _)| *n == name && *m == mode);
            println!(
                "{:<5} {mode}-{name}: exit {code}{}",
                if conforms { "ok" } else { "DEV" },
                if text.is_empty() {
                    String::new()
                } else {
                    format!(" ({text})")
                }
            );
            match (conforms, listed) {
                (true, false) => pass += 1,
                (true, true) => unexpected_conformance.push(format!("{mode}-{name}")),
                (false, true) => {}
                (false, false) => deviations.push(format!("{mode}-{name}: exit {code}: {text}")),
            }
        }
    }
    println!(
        "sigstore conformance: {pass}/{} runs conform, {} expected deviations, {} unexpected",
        cases.len() * 2,
        EXPECTED_DEVIATIONS.len(),
        deviations.len()
    );
    assert!(
        deviations.is_empty(),
        "deviating runs:\n{}",
        deviations.join("\n")
    );
    assert!(
        unexpected_conformance.is_empty(),
        "listed deviations that now conform: {unexpected_conformance:?}"
    );
    assert_eq!(pass + EXPECTED_DEVIATIONS.len(), 140);
}

const SJS_SAN: &str =
    "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main";
const GHA: &str = "https://token.actions.githubusercontent.com";
const SJS_SHA512: &str = "sha512:46d4e2f74c4877316640000a6fdf8a8b59f1e0847667973e9859f774dd31b8f1e0937813b777fb66a2ac67d50540fe34640966eee9fc2ccca387082b4c85cd3c";
const NPM_SHA512: &str = "sha512:76176ffa33808b54602c7c35de5c6e9a4deb96066dba6533f50ac234f4f1f4c6b3527515dc17c06fbe2860030f410eee69ea20079bd3a2c6f3dcf3b329b10751";

fn extra(bundle: &str, root: &str, policy: &[String], artifact: &str) -> (i32, String) {
    let mut a: Vec<String> = vec![
        "verify".into(),
        "blob".into(),
        "--bundle".into(),
        conf(&format!("extra/sigstore-go/{bundle}"))
            .display()
            .to_string(),
        "--trusted-root".into(),
        conf(root).display().to_string(),
    ];
    a.extend(policy.iter().cloned());
    a.push(artifact.into());
    run_stella(&a)
}

/// sigstore-go unit-test vectors (README "Extra vectors"), expected results
/// from the sigstore-go tests.
#[test]
fn sigstore_go_extra_vectors() {
    let id = |san: &str, iss: &str| {
        vec![
            "--certificate-identity".to_string(),
            san.into(),
            "--certificate-oidc-issuer".into(),
            iss.into(),
        ]
    };
    let sjs = id(SJS_SAN, GHA);
    let mut results = Vec::new();
    let mut check = |name: &str, got: (i32, String), want: i32| {
        println!("{name}: exit {} ({})", got.0, got.1);
        results.push((name.to_string(), got.0 == want, got.1));
    };
    check(
        "sigstore.js provenance (public-good root)",
        extra(
            "bundles/sigstore.js@2.0.0-provenance.sigstore.json",
            "extra/sigstore-go/trusted-roots/public-good.json",
            &sjs,
            SJS_SHA512,
        ),
        0,
    );
    check(
        "sigstore.js provenance (production root)",
        extra(
            "bundles/sigstore.js@2.0.0-provenance.sigstore.json",
            "trusted_root/production.json",
            &sjs,
            SJS_SHA512,
        ),
        0,
    );
    let wrong = format!("sha512:5{}", &SJS_SHA512[8..]);
    check(
        "sigstore.js provenance, wrong subject digest",
        extra(
            "bundles/sigstore.js@2.0.0-provenance.sigstore.json",
            "extra/sigstore-go/trusted-roots/public-good.json",
            &sjs,
            &wrong,
        ),
        1,
    );
    let any = vec![
        "--certificate-identity-regexp".to_string(),
        ".".into(),
        "--certificate-oidc-issuer-regexp".into(),
        ".".into(),
    ];
    let (code, text) = extra(
        "bundles/dsse-2sigs.sigstore.json",
        "extra/sigstore-go/trusted-roots/public-good.json",
        &any,
        &format!("sha256:{}", "0".repeat(64)),
    );
    check("DSSE with two signatures", (i32::from(code != 0), text), 1);
    let on = id("foo!oidc.local", "http://oidc.local:8080");
    let on_digest = "sha256:bc103b4a84971ef6459b294a2b98568a2bfb72cded09d4acd1e16366a401f95b";
    check(
        "otherName SAN",
        extra(
            "bundles/othername.sigstore.json",
            "extra/sigstore-go/trusted-roots/scaffolding.json",
            &on,
            on_digest,
        ),
        0,
    );
    let on_bad = id("foo@oidc.local", "http://oidc.local:8080");
    check(
        "otherName SAN, email-style identity required",
        extra(
            "bundles/othername.sigstore.json",
            "extra/sigstore-go/trusted-roots/scaffolding.json",
            &on_bad,
            on_digest,
        ),
        1,
    );
    let npm = id(SJS_SAN, GHA);
    check(
        "npm provenance example",
        extra(
            "examples/bundle-provenance.json",
            "extra/sigstore-go/examples/trusted-root-public-good.json",
            &npm,
            NPM_SHA512,
        ),
        0,
    );
    let key = vec![
        "--key".to_string(),
        conf("extra/sigstore-go/examples/publish_key.pub")
            .display()
            .to_string(),
    ];
    check(
        "npm publish attestation (registry key)",
        extra(
            "examples/bundle-publish.json",
            "extra/sigstore-go/examples/trusted-root-public-good.json",
            &key,
            NPM_SHA512,
        ),
        0,
    );
    // public-key-validity: upstream fails it because the key is valid only in
    // 1970; stella has no way to express key validity windows on the command
    // line, and rejects it because the bundle has no transparency-log entry.
    let tmp = tempfile::tempdir().unwrap();
    let art = tmp.path().join("a");
    std::fs::write(&art, b"test content").unwrap();
    let pkv = vec![
        "--key".to_string(),
        conf("extra/sigstore-go/public-keys/public-key-validity.pem")
            .display()
            .to_string(),
    ];
    check(
        "public-key-validity (rejected: no tlog entry)",
        extra(
            "bundles/public-key-validity.sigstore.json",
            "extra/sigstore-go/trusted-roots/public-key-validity.json",
            &pkv,
            &art.display().to_string(),
        ),
        1,
    );
    let bad: Vec<_> = results.iter().filter(|r| !r.1).collect();
    println!(
        "sigstore-go extra vectors: {}/{} as expected",
        results.len() - bad.len(),
        results.len()
    );
    assert!(bad.is_empty(), "unexpected results: {bad:#?}");
}

/// Usage and output contract of `stella verify blob` beyond the protocol:
/// `verify blob --bundle <happy-path v0.3 bundle> <extra...>`, and the
/// paths of the production trusted root and the signed artifact.
struct BlobCase {
    root: String,
    art: String,
    bundle: String,
}

const BEACON_SAN: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";

impl BlobCase {
    fn new() -> Self {
        BlobCase {
            bundle: conf("test/assets/bundle-verify/happy-path-v0.3/bundle.sigstore.json")
                .display()
                .to_string(),
            root: conf("trusted_root/production.json").display().to_string(),
            art: conf("test/assets/a.txt").display().to_string(),
        }
    }

    fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = ["verify", "blob", "--bundle", &self.bundle]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }
}

#[test]
fn verify_blob_without_trusted_root_is_unusable() {
    let c = BlobCase::new();
    // No trusted root: unusable (2), one line on stderr.
    let (code, text) = run_stella(&c.args(&[
        "--certificate-identity",
        BEACON_SAN,
        "--certificate-oidc-issuer",
        "x",
        &c.art,
    ]));
    assert_eq!(code, 2, "{text}");
    assert!(text.starts_with("stella: error: "), "{text}");
}

#[test]
fn verify_blob_without_identity_policy_is_unusable() {
    let c = BlobCase::new();
    let (code, _) = run_stella(&c.args(&["--trusted-root", &c.root, &c.art]));
    assert_eq!(code, 2);
}

#[test]
fn verify_blob_with_a_bad_regexp_is_unusable() {
    let c = BlobCase::new();
    let (code, _) = run_stella(&c.args(&[
        "--trusted-root",
        &c.root,
        "--certificate-identity-regexp",
        "(",
        "--certificate-oidc-issuer",
        "x",
        &c.art,
    ]));
    assert_eq!(code, 2);
}

#[test]
fn verify_blob_json_output_on_success() {
    let c = BlobCase::new();
    let ok = stella().env_remove("SOURCE_DATE_EPOCH").output_with(
        &c.args(&[
            "--trusted-root",
            &c.root,
            "--certificate-identity-regexp",
            "^https://github\\.com/sigstore-conformance/",
            "--certificate-oidc-issuer",
            "https://token.actions.githubusercontent.com",
            "--output",
            "json",
            &c.art,
        ]),
        &[],
        None,
    );
    assert_eq!(ok.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(v["verified"], true);
    assert_eq!(v["result"]["identity"], BEACON_SAN);
    assert!(!v["result"]["verified_times"].as_array().unwrap().is_empty());
}

#[test]
fn verify_blob_json_output_on_failure() {
    let c = BlobCase::new();
    let bad = stella().env_remove("SOURCE_DATE_EPOCH").output_with(
        &c.args(&[
            "--trusted-root",
            &c.root,
            "--certificate-identity",
            "someone-else",
            "--certificate-oidc-issuer",
            "https://token.actions.githubusercontent.com",
            "--output",
            "json",
            &c.art,
        ]),
        &[],
        None,
    );
    assert_eq!(bad.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert_eq!(v["verified"], false);
    assert!(v["reason"].as_str().unwrap().contains("identity"));
}

#[test]
fn verify_blob_of_a_missing_file_that_is_not_a_digest_is_unusable() {
    let c = BlobCase::new();
    let (code, _) = run_stella(&c.args(&[
        "--trusted-root",
        &c.root,
        "--certificate-identity",
        BEACON_SAN,
        "--certificate-oidc-issuer",
        "x",
        "/nonexistent/file",
    ]));
    assert_eq!(code, 2);
}

/// Files over the in-memory cap are verified by their streamed SHA-256:
/// the verdict for a 65 MiB file must be exactly the verdict for
/// `sha256:<hex>` with the hex computed by coreutils' `sha256sum`.
#[test]
fn large_artifact_is_hashed_streaming_like_digest_mode() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.bin");
    let mut data = Vec::with_capacity(65 * 1024 * 1024 + 7);
    let mut x: u32 = 1;
    while data.len() < 65 * 1024 * 1024 + 7 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(&big, &data).unwrap();
    drop(data);
    let out = Command::new("sha256sum")
        .arg(&big)
        .output()
        .expect("sha256sum");
    let hex = String::from_utf8(out.stdout).unwrap();
    let hex = hex.split_whitespace().next().unwrap().to_string();

    let bundle = conf("test/assets/bundle-verify/happy-path-v0.3/bundle.sigstore.json")
        .display()
        .to_string();
    let root = conf("trusted_root/production.json").display().to_string();
    let san = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
    let run = |artifact: &str| {
        run_stella(&[
            "verify".into(),
            "blob".into(),
            "--bundle".into(),
            bundle.clone(),
            "--trusted-root".into(),
            root.clone(),
            "--certificate-identity".into(),
            san.into(),
            "--certificate-oidc-issuer".into(),
            "https://token.actions.githubusercontent.com".into(),
            "--output".into(),
            "json".into(),
            artifact.into(),
        ])
    };
    let (code_file, text_file) = run(big.to_str().unwrap());
    let (code_digest, text_digest) = run(&format!("sha256:{hex}"));
    assert_eq!(code_file, 1, "{text_file}");
    assert_eq!(
        (code_file, text_file.replace(big.to_str().unwrap(), "")),
        (
            code_digest,
            text_digest.replace(&format!("sha256:{hex}"), "")
        )
    );
    assert!(
        text_file.contains("differs from the artifact"),
        "{text_file}"
    );
}
