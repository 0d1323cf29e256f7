//! Keyless verification outside `verify blob` on the TUF-cached trusted
//! root: `verify attestation`, `bundle verify` and `verify image` (flags and
//! policy keyless signers) with identity flags and no `--trusted-root` use
//! the root `stella trust update` cached (seeded here from a python-tuf
//! repository served on 127.0.0.1, into a private `STELLA_CACHE_DIR`), name
//! its origin, and stop with exit 2 saying what to do when nothing is
//! cached. Also: `--tlog-threshold` / `--timestamp-threshold` and the
//! policy's `tlogThreshold` reach the sigstore verifier in every command.
//!
//! The evidence is sigstore-conformance's production-signed DSSE bundle
//! `happy-path-intoto-in-dsse-v3`, attached as a referrer of an image. Its
//! statement is about a file, so the keyless engine verifies the signature,
//! certificate and Rekor entry and then rejects it for its subject: that
//! rejection reason only appears when the production root was used. A
//! cache seeded with the staging root makes the same run fail earlier, on
//! trust, which shows the cache's content is what verification uses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../stella-trust/tests/support/tuf_fixture.rs"]
mod tuf_fixture;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use stella_oci::artifact::{ArtifactSpec, LayerSource, push_referrer};
use stella_oci::layout::OciLayout;
use stella_oci::store::{BlobSource, ContentWrite, NoProgress};
use stella_types::{Descriptor, ImageManifest, media_types};
use tuf_fixture::{SIGSTORE_CONF, TufFixture, production_root, staging_root};

const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// The binary in `dir` with `cache` as its trust cache.
fn stella(dir: &Path, cache: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_stella"))
        .args(args)
        .current_dir(dir)
        .env("STELLA_CACHE_DIR", cache)
        .env_remove("XDG_CACHE_HOME")
        .env_remove("STELLA_USERNAME")
        .env_remove("STELLA_PASSWORD")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn expect(r: Run, code: i32, what: &str) -> Run {
    assert_eq!(
        r.code, code,
        "{what}: stdout {} stderr {}",
        r.stdout, r.stderr
    );
    r
}

/// A cache holding `root`, updated through TUF from a local mirror; returns
/// the cache and the mirror (kept alive so its URL stays meaningful).
fn seeded_cache(root: &Path) -> (tempfile::TempDir, TufFixture) {
    let fx = TufFixture::new(root);
    let cache = tempfile::tempdir().unwrap();
    let tuf_root = fx.root_json();
    let r = stella(
        cache.path(),
        cache.path(),
        &[
            "trust",
            "update",
            "--tuf-mirror",
            &fx.url,
            "--tuf-root",
            tuf_root.to_str().unwrap(),
        ],
    );
    expect(r, 0, "trust update");
    (cache, fx)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// A minimal image tagged `v1` with the keyless DSSE bundle as a referrer.
fn image_with_keyless_referrer(dir: &Path) -> Descriptor {
    let bundle = std::fs::read(
        Path::new(SIGSTORE_CONF)
            .join("test/assets/bundle-verify/happy-path-intoto-in-dsse-v3/bundle.sigstore.json"),
    )
    .unwrap();
    rt().block_on(async {
        let l = OciLayout::open_or_create(dir).unwrap();
        let layer = b"layer bytes, never unpacked".to_vec();
        let ld = Descriptor::for_bytes(media_types::OCI_LAYER_TAR, &layer);
        let config = br#"{"architecture":"amd64","os":"linux"}"#;
        let cd = Descriptor::for_bytes(media_types::OCI_CONFIG, config);
        l.push_blob(&cd, BlobSource::Bytes(config), &NoProgress)
            .await
            .unwrap();
        l.push_blob(&ld, BlobSource::Bytes(&layer), &NoProgress)
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
        let image = l
            .push_manifest(media_types::OCI_MANIFEST, &m.to_json_bytes(), Some("v1"))
            .await
            .unwrap();
        let spec = ArtifactSpec {
            artifact_type: BUNDLE_V03.into(),
            layers: vec![LayerSource::Bytes {
                bytes: bundle,
                media_type: BUNDLE_V03.into(),
                title: Some("bundle.sigstore.json".into()),
            }],
            annotations: BTreeMap::new(),
        };
        push_referrer(&l, &image, &spec, &NoProgress).await.unwrap();
        image
    })
}

const ATTESTATION: &[&str] = &[
    "verify",
    "attestation",
    "--image",
    "oci:A:v1",
    "--certificate-identity",
    IDENTITY,
    "--certificate-oidc-issuer",
    ISSUER,
];

fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    base.iter().chain(extra).copied().collect()
}

/// The one attestation's reason from `verify attestation --output json`.
fn reason(v: &Value) -> String {
    v["attestations"][0]["reason"].as_str().unwrap().to_string()
}

#[test]
fn verify_attestation_with_identity_flags_uses_the_cached_root() {
    let w = tempfile::tempdir().unwrap();
    let dir = w.path();
    let image = image_with_keyless_referrer(&dir.join("A"));
    let (cache, fx) = seeded_cache(&production_root());

    // JSON: the keyless engine ran on the cached production root (the
    // signature, certificate and Rekor entry verified; the subject is
    // another file's digest), and the origin is reported.
    let r = expect(
        stella(dir, cache.path(), &with(ATTESTATION, &["--output", "json"])),
        1,
        "verify attestation (cached production root)",
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let why = reason(&v);
    assert!(
        why.contains("no statement subject has sha256 digest") && why.contains(image.digest.hex()),
        "{why}"
    );
    assert_eq!(v["trustedRoot"]["source"], "tufCache", "{v}");
    assert_eq!(v["trustedRoot"]["mirror"], fx.url.as_str(), "{v}");
    assert_eq!(v["trustedRoot"]["metadataExpired"], false, "{v}");

    // Text: one line names the cache first.
    let r = expect(
        stella(dir, cache.path(), ATTESTATION),
        1,
        "verify attestation text",
    );
    let first = r.stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("trusted root: TUF cache of {}, updated ", fx.url)),
        "{}",
        r.stdout
    );

    // --trusted-root overrides the cache and is reported as a file.
    let staging = staging_root();
    let r = expect(
        stella(
            dir,
            cache.path(),
            &with(
                ATTESTATION,
                &[
                    "--output",
                    "json",
                    "--trusted-root",
                    staging.to_str().unwrap(),
                ],
            ),
        ),
        1,
        "verify attestation --trusted-root staging",
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["trustedRoot"]["source"], "file", "{v}");
    assert!(
        !reason(&v).contains("no statement subject"),
        "the staging root cannot verify a production bundle: {}",
        reason(&v)
    );
}

#[test]
fn the_cache_content_is_what_verification_trusts() {
    let w = tempfile::tempdir().unwrap();
    let dir = w.path();
    image_with_keyless_referrer(&dir.join("A"));
    let (cache, _fx) = seeded_cache(&staging_root());
    let r = expect(
        stella(dir, cache.path(), &with(ATTESTATION, &["--output", "json"])),
        1,
        "verify attestation (cached staging root)",
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["trustedRoot"]["source"], "tufCache", "{v}");
    let why = reason(&v);
    println!("staging cache: {why}");
    assert!(
        why.starts_with("keyless:") && !why.contains("no statement subject"),
        "{why}"
    );
}

#[test]
fn without_cache_or_trusted_root_keyless_commands_say_what_to_do() {
    let w = tempfile::tempdir().unwrap();
    let dir = w.path();
    image_with_keyless_referrer(&dir.join("A"));
    let empty = tempfile::tempdir().unwrap();
    let r = expect(
        stella(dir, empty.path(), ATTESTATION),
        2,
        "verify attestation, no cache",
    );
    assert!(
        r.stderr.contains("stella trust update") && r.stderr.contains("--trusted-root"),
        "{}",
        r.stderr
    );
    let r = expect(
        stella(
            dir,
            empty.path(),
            &with(
                &[
                    "verify",
                    "image",
                    "oci:A:v1",
                    "--use-referrers",
                    "--require",
                    "slsaprovenance",
                ],
                &[
                    "--certificate-identity",
                    IDENTITY,
                    "--certificate-oidc-issuer",
                    ISSUER,
                ],
            ),
        ),
        2,
        "verify image, no cache",
    );
    assert!(r.stderr.contains("stella trust update"), "{}", r.stderr);
    // Key-only verification needs no sigstore trusted root at all.
    let r = stella(
        dir,
        empty.path(),
        &[
            "verify",
            "attestation",
            "--image",
            "oci:A:v1",
            "--tlog-threshold",
            "0",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--certificate-identity"), "{}", r.stderr);
}

#[test]
fn verify_image_keyless_signers_use_the_cached_root() {
    let w = tempfile::tempdir().unwrap();
    let dir = w.path();
    image_with_keyless_referrer(&dir.join("A"));
    let (cache, fx) = seeded_cache(&production_root());
    let args = [
        "verify",
        "image",
        "oci:A:v1",
        "--use-referrers",
        "--require",
        "slsaprovenance",
        "--output",
        "json",
        "--certificate-identity",
        IDENTITY,
        "--certificate-oidc-issuer",
        ISSUER,
    ];
    let r = expect(stella(dir, cache.path(), &args), 1, "verify image");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let ev = &v["evidence"][0];
    assert_eq!(ev["status"], "rejected", "{v}");
    assert!(
        ev["reason"]
            .as_str()
            .unwrap()
            .contains("sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"),
        "{v}"
    );
    // The report keeps its fixed shape; the origin is on stderr.
    assert!(v.get("trustedRoot").is_none(), "{v}");
    assert!(
        r.stderr
            .contains(&format!("trusted root: TUF cache of {}", fx.url)),
        "{}",
        r.stderr
    );

    // A policy keyless signer does the same.
    std::fs::write(
        dir.join("policy.yaml"),
        format!("version: 1\nsigners:\n  ci:\n    keyless: {{ identity: \"{IDENTITY}\", issuer: \"{ISSUER}\" }}\nrequirements:\n  - type: slsaprovenance\n"),
    )
    .unwrap();
    let r = expect(
        stella(
            dir,
            cache.path(),
            &[
                "verify",
                "image",
                "oci:A:v1",
                "--use-referrers",
                "--policy",
                "policy.yaml",
                "--output",
                "json",
            ],
        ),
        1,
        "verify image --policy",
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["evidence"][0]["status"], "rejected", "{v}");
}

/// `--tlog-threshold` / `--timestamp-threshold` (and the policy's
/// `tlogThreshold`) reach the sigstore verifier in every command. The
/// bundle has one log entry and no RFC 3161 timestamp.
#[test]
fn threshold_flags_reach_the_verifier() {
    let w = tempfile::tempdir().unwrap();
    let dir = w.path();
    image_with_keyless_referrer(&dir.join("A"));
    let (cache, _fx) = seeded_cache(&production_root());
    let bundle = Path::new(SIGSTORE_CONF)
        .join("test/assets/bundle-verify/happy-path-intoto-in-dsse-v3/bundle.sigstore.json");
    let a_txt = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";
    let blob = |extra: &[&str]| {
        let mut a = vec![
            "verify",
            "blob",
            "--bundle",
            bundle.to_str().unwrap(),
            "--certificate-identity",
            IDENTITY,
            "--certificate-oidc-issuer",
            ISSUER,
        ];
        a.extend_from_slice(extra);
        a.push(a_txt);
        stella(dir, cache.path(), &a)
    };
    expect(blob(&[]), 0, "verify blob, default thresholds");
    expect(blob(&["--tlog-threshold", "1"]), 0, "--tlog-threshold 1");
    let r = expect(blob(&["--tlog-threshold", "2"]), 1, "--tlog-threshold 2");
    assert!(
        r.stderr
            .contains("1 verified transparency-log entries, 2 required"),
        "{}",
        r.stderr
    );
    let r = expect(
        blob(&["--timestamp-threshold", "1"]),
        1,
        "--timestamp-threshold 1",
    );
    assert!(
        r.stderr
            .contains("0 verified RFC 3161 timestamps, 1 required"),
        "{}",
        r.stderr
    );
    // No log entry required: a timestamp is, and this bundle has none.
    let r = expect(blob(&["--tlog-threshold", "0"]), 1, "--tlog-threshold 0");
    assert!(
        r.stderr
            .contains("0 verified RFC 3161 timestamps, 1 required"),
        "{}",
        r.stderr
    );
    expect(blob(&["--tlog-threshold", "x"]), 2, "not a number");

    let r = expect(
        stella(
            dir,
            cache.path(),
            &with(ATTESTATION, &["--output", "json", "--tlog-threshold", "2"]),
        ),
        1,
        "verify attestation --tlog-threshold 2",
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(reason(&v).contains("2 required"), "{}", reason(&v));

    let image = |extra: &[&str]| {
        let mut a = vec![
            "verify",
            "image",
            "oci:A:v1",
            "--use-referrers",
            "--output",
            "json",
        ];
        a.extend_from_slice(extra);
        let r = expect(stella(dir, cache.path(), &a), 1, "verify image");
        serde_json::from_str::<Value>(&r.stdout).unwrap()
    };
    let v = image(&[
        "--require",
        "slsaprovenance",
        "--certificate-identity",
        IDENTITY,
        "--certificate-oidc-issuer",
        ISSUER,
        "--timestamp-threshold",
        "1",
    ]);
    assert_eq!(v["evidence"][0]["status"], "failed", "{v}");
    assert!(
        v["evidence"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("RFC 3161 timestamps, 1 required"),
        "{v}"
    );
    std::fs::write(
        dir.join("strict.yaml"),
        format!("version: 1\nsigners:\n  ci:\n    keyless: {{ identity: \"{IDENTITY}\", issuer: \"{ISSUER}\", tlogThreshold: 2 }}\nrequirements:\n  - type: slsaprovenance\n"),
    )
    .unwrap();
    let v = image(&["--policy", "strict.yaml"]);
    assert_eq!(v["evidence"][0]["status"], "failed", "{v}");
    assert!(
        v["evidence"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("transparency-log entries, 2 required"),
        "{v}"
    );
    // Thresholds without a keyless signer to apply them to: a usage error.
    let r = stella(
        dir,
        cache.path(),
        &[
            "verify",
            "image",
            "oci:A:v1",
            "--use-referrers",
            "--policy",
            "strict.yaml",
            "--tlog-threshold",
            "0",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
}

/// `bundle verify` with identity flags (and with a pinned checkpoint) on the
/// cached root: the keyless engine runs (the attestation is rejected for
/// its subject, as with `--trusted-root`) and the origin is reported.
#[test]
fn bundle_verify_uses_the_cached_root() {
    let w = tempfile::tempdir().unwrap();
    let dir = w.path();
    image_with_keyless_referrer(&dir.join("A"));
    let (cache, fx) = seeded_cache(&production_root());
    expect(
        stella(
            dir,
            cache.path(),
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
        ),
        0,
        "export-bundle",
    );
    let base = [
        "bundle",
        "verify",
        "--bundle",
        "b.tar",
        "--certificate-identity",
        IDENTITY,
        "--certificate-oidc-issuer",
        ISSUER,
    ];
    let r = expect(
        stella(dir, cache.path(), &with(&base, &["--output", "json"])),
        1,
        "bundle verify (cached root)",
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["trustedRoot"]["source"], "tufCache", "{v}");
    assert_eq!(v["trustedRoot"]["mirror"], fx.url.as_str(), "{v}");
    let failures = v["failures"].as_array().unwrap();
    assert!(
        failures.iter().any(|f| f["code"] == "signature"
            && f["reason"]
                .as_str()
                .unwrap()
                .contains("no statement subject has sha256 digest")),
        "{failures:?}"
    );
    let r = expect(stella(dir, cache.path(), &base), 1, "bundle verify text");
    assert!(
        r.stdout
            .starts_with(&format!("trusted root: TUF cache of {}", fx.url)),
        "{}",
        r.stdout
    );
    // A pinned checkpoint alone is checked against the cached root's logs.
    let bundle: Value =
        serde_json::from_slice(
            &std::fs::read(Path::new(SIGSTORE_CONF).join(
                "test/assets/bundle-verify/intoto-with-custom-trust-root/bundle.sigstore.json",
            ))
            .unwrap(),
        )
        .unwrap();
    let foreign = bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["checkpoint"]
        ["envelope"]
        .as_str()
        .unwrap();
    std::fs::write(dir.join("foreign.cp"), foreign).unwrap();
    let r = expect(
        stella(
            dir,
            cache.path(),
            &with(&base, &["--rekor-checkpoint", "foreign.cp"]),
        ),
        1,
        "foreign checkpoint",
    );
    assert!(
        r.stderr.contains("pinned Rekor checkpoint rejected"),
        "{}",
        r.stderr
    );
    // Without a cache the same command says what to do.
    let empty = tempfile::tempdir().unwrap();
    let r = expect(
        stella(dir, empty.path(), &base),
        2,
        "bundle verify, no cache",
    );
    assert!(r.stderr.contains("stella trust update"), "{}", r.stderr);
}

/// The library names no flag when a bundle's signer is of the other kind;
/// `verify blob` says which flag to use.
#[test]
fn wrong_signer_kind_is_worded_by_the_cli() {
    let w = tempfile::tempdir().unwrap();
    let dir = w.path();
    let (cache, _fx) = seeded_cache(&production_root());
    let conf = Path::new(SIGSTORE_CONF);
    let cert_bundle =
        conf.join("test/assets/bundle-verify/happy-path-intoto-in-dsse-v3/bundle.sigstore.json");
    let key = conf.join("extra/sigstore-go/examples/publish_key.pub");
    let a_txt = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";
    let r = expect(
        stella(
            dir,
            cache.path(),
            &[
                "verify",
                "blob",
                "--bundle",
                cert_bundle.to_str().unwrap(),
                "--key",
                key.to_str().unwrap(),
                a_txt,
            ],
        ),
        1,
        "certificate bundle with --key",
    );
    assert!(
        r.stderr.contains(
            "bundle is signed with a certificate identity, but a managed key (publicKey) was required; verify it with --certificate-identity"
        ),
        "{}",
        r.stderr
    );
    let key_bundle = conf.join("extra/sigstore-go/examples/bundle-publish.json");
    let r = expect(
        stella(
            dir,
            cache.path(),
            &[
                "verify",
                "blob",
                "--bundle",
                key_bundle.to_str().unwrap(),
                "--certificate-identity",
                IDENTITY,
                "--certificate-oidc-issuer",
                ISSUER,
                "--output",
                "json",
                a_txt,
            ],
        ),
        1,
        "managed-key bundle with identity flags",
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let why = v["reason"].as_str().unwrap();
    assert!(
        why.starts_with("bundle is signed with a managed key (publicKey)")
            && why.ends_with("verify it with --key <public-key>"),
        "{why}"
    );
}
