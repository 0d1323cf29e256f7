//! `stella attest` / `stella verify attestation` against a real distribution
//! registry (Debian's `docker-registry`, no Referrers API: the fallback tag
//! schema is used).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::process::{Command, Output};

use stella_oci::registry::{RegistryClient, RegistryOptions, Repository};
use stella_oci::store::*;
use stella_testkit::DistributionRegistry;
use stella_types::media_types::OCI_MANIFEST;
use stella_types::reference::RegistryReference;
use stella_types::{Descriptor, ImageManifest};

fn stella(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stella"))
        .args(args)
        .env("DOCKER_CONFIG", "/nonexistent-stella-test-docker-config")
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env_remove("STELLA_USERNAME")
        .env_remove("STELLA_PASSWORD")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

async fn push_image(repo: &Repository, seed: &str, tag: &str) -> Descriptor {
    let config = format!("{{\"seed\":\"{seed}\"}}").into_bytes();
    let config_d = Descriptor::for_bytes("application/vnd.oci.image.config.v1+json", &config);
    repo.push_blob(&config_d, BlobSource::Bytes(&config), &NoProgress)
        .await
        .unwrap();
    let layer = format!("layer {seed}").into_bytes();
    let layer_d = Descriptor::for_bytes("application/vnd.oci.image.layer.v1.tar", &layer);
    repo.push_blob(&layer_d, BlobSource::Bytes(&layer), &NoProgress)
        .await
        .unwrap();
    let m = ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.into()),
        artifact_type: None,
        config: config_d,
        layers: vec![layer_d],
        subject: None,
        annotations: BTreeMap::new(),
    };
    repo.push_manifest(OCI_MANIFEST, &m.to_json_bytes(), Some(tag))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn attest_and_verify_on_a_registry() {
    let reg = DistributionRegistry::start_plain().unwrap();
    let host = reg.host_port();
    let repo = RegistryClient::new(RegistryOptions {
        plain_http: true,
        ..Default::default()
    })
    .unwrap()
    .repository(&RegistryReference {
        registry: host.clone(),
        repository: "att/app".into(),
        tag: None,
        digest: None,
    });
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
