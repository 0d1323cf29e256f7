//! `stella attest` / `stella verify attestation` against a real distribution
//! registry (Debian's `docker-registry`, no Referrers API: the fallback tag
//! schema is used).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Output;

use stella_oci::store::*;
use stella_testkit::DistributionRegistry;
use stella_testkit::cli::{Stella, text};
use stella_testkit::fixtures::push_seed_image as push_image;

fn stella(args: &[&str]) -> Output {
    Stella::new(env!("CARGO_BIN_EXE_stella"))
        .env("DOCKER_CONFIG", "/nonexistent-stella-test-docker-config")
        .output_with(args, &[], None)
}

#[tokio::test(flavor = "multi_thread")]
async fn attest_and_verify_on_a_registry() {
    let reg = DistributionRegistry::start_plain().unwrap();
    let host = reg.host_port();
    let repo = stella_testkit::distribution::plain_repository(&host, "att/app").unwrap();
    let subject = push_image(&repo, "att", "v1").await;
    let image = format!("{host}/att/app:v1");
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).display().to_string();
    std::fs::write(
        p("pred.json"),
        br#"{"buildDefinition":{"buildType":"https://example.com/t"},"runDetails":{}}"#,
    )
    .unwrap();

    for (name, alg) in [("k", "ecdsa-p256"), ("other", "ed25519")] {
        let out = stella(&[
            "key",
            "generate",
            "--algorithm",
            alg,
            "--output-key",
            &p(&format!("{name}.key")),
            "--output-pub",
            &p(&format!("{name}.pub")),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let out = stella(&[
        "--plain-http",
        "attest",
        "--image",
        &image,
        "--predicate",
        &p("pred.json"),
        "--type",
        "slsaprovenance",
        "--key",
        &p("k.key"),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // The referrer is listed with the bundle artifact type and cosign's annotation.
    let listing = repo.list_referrers(&subject.digest, &[]).await.unwrap();
    assert_eq!(listing.referrers.len(), 1);
    let d = &listing.referrers[0].descriptor;
    assert_eq!(
        d.artifact_type.as_deref(),
        Some("application/vnd.dev.sigstore.bundle.v0.3+json")
    );

    let out = stella(&[
        "--plain-http",
        "verify",
        "attestation",
        "--image",
        &image,
        "--key",
        &p("k.pub"),
        "--type",
        "slsaprovenance",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("1 of 1 attestations verified"),
        "{}",
        text(&out.stdout)
    );

    let out = stella(&[
        "--plain-http",
        "verify",
        "attestation",
        "--image",
        &image,
        "--key",
        &p("other.pub"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("does not verify"),
        "{}",
        text(&out.stdout)
    );

    // By digest works too; an unreachable registry is an input/network error.
    let by_digest = format!("{host}/att/app@{}", subject.digest);
    let out = stella(&[
        "--plain-http",
        "verify",
        "attestation",
        "--image",
        &by_digest,
        "--key",
        &p("k.pub"),
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verified"], true);
    let out = stella(&[
        "--plain-http",
        "verify",
        "attestation",
        "--image",
        "127.0.0.1:1/none/app:v1",
        "--key",
        &p("k.pub"),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}
