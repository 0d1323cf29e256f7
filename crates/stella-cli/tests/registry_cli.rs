//! End-to-end: the `stella` binary against a real distribution 2.8 registry
//! (Debian's `docker-registry`): evidence commands in tag-schema mode, auth
//! flags, docker config, TLS, and 8 racing push-referrer processes (x20).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use stella_oci::registry::{RegistryClient, RegistryOptions, Repository};
use stella_oci::store::*;
use stella_testkit::DistributionRegistry;
use stella_testkit::cli::{Stella, one_error_line, text};
use stella_testkit::fixtures::push_seed_image as push_image;
use stella_types::Digest;
use stella_types::reference::RegistryReference;

const STELLA: &str = env!("CARGO_BIN_EXE_stella");

fn stella(args: &[&str], stdin: Option<&str>, env: &[(&str, &Path)]) -> Output {
    let env: Vec<(&str, &OsStr)> = env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    Stella::new(STELLA)
        .env("DOCKER_CONFIG", "/nonexistent-stella-test-docker-config")
        .output_with(args, &env, stdin.map(str::as_bytes))
}

fn repository(host: &str, name: &str, options: RegistryOptions) -> Repository {
    RegistryClient::new(options)
        .unwrap()
        .repository(&RegistryReference {
            registry: host.to_string(),
            repository: name.to_string(),
            tag: None,
            digest: None,
        })
}

fn plain() -> RegistryOptions {
    RegistryOptions {
        plain_http: true,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn evidence_commands_on_distribution_tag_schema() {
    let reg = DistributionRegistry::start_plain().unwrap();
    let host = reg.host_port();
    let repo = repository(&host, "cli/app", plain());
    let subject = push_image(&repo, "cli", "v1").await;
    let image = format!("{host}/cli/app:v1");
    let dir = tempfile::tempdir().unwrap();
    let sbom = dir.path().join("sbom.spdx.json");
    std::fs::write(&sbom, "{\"spdxVersion\":\"SPDX-2.3\"}").unwrap();

    let out = stella(
        &[
            "--plain-http",
            "evidence",
            "push-referrer",
            "--image",
            &image,
            "--artifact-type",
            "application/spdx+json",
            "--file",
            sbom.to_str().unwrap(),
            "--output",
            "json",
        ],
        None,
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pushed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pushed["mode"], "tag-schema");
    assert_eq!(pushed["subject"], subject.digest.to_string());
    let digest: Digest = pushed["digest"].as_str().unwrap().parse().unwrap();

    // The fallback index holds it (checked with the library, not the CLI).
    let listing = repo.list_referrers(&subject.digest, &[]).await.unwrap();
    assert_eq!(listing.referrers.len(), 1);
    assert_eq!(listing.referrers[0].descriptor.digest, digest);

    let out = stella(
        &[
            "--plain-http",
            "evidence",
            "list-referrers",
            &image,
            "--format",
            "json",
        ],
        None,
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["mode"], "tag-schema");
    assert_eq!(listed["referrers"][0]["digest"], digest.to_string());

    let out = stella(
        &[
            "--plain-http",
            "evidence",
            "repair-index",
            &image,
            "--dry-run",
            "--output",
            "json",
        ],
        None,
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["changed"], false, "{report}");

    // Unknown image: exit 2, one error line naming the reference.
    let out = stella(
        &[
            "--plain-http",
            "evidence",
            "list-referrers",
            &format!("{host}/cli/app:nope"),
        ],
        None,
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    one_error_line(&err);
    assert!(
        err.contains(&format!("{host}/cli/app:nope")) && err.contains("not found"),
        "{err}"
    );

    // 127.0.0.1 does not imply plain HTTP: without the flag, TLS fails (exit 2).
    let out = stella(&["evidence", "list-referrers", &image], None, &[]);
    assert_eq!(out.status.code(), Some(2));
    one_error_line(&text(&out.stderr));
}

/// 8 push-referrer processes race on one subject; all 8 entries stay in
/// the fallback index, 20 times over.
#[tokio::test(flavor = "multi_thread")]
async fn eight_racing_push_referrer_processes_lose_nothing_x20() {
    let reg = DistributionRegistry::start_plain().unwrap();
    let host = reg.host_port();
    let repo = repository(&host, "race/cli", plain());
    let dir = tempfile::tempdir().unwrap();
    for run in 0..20 {
        let tag = format!("run{run}");
        let subject = push_image(&repo, &tag, &tag).await;
        let image = format!("{host}/race/cli:{tag}");
        let mut children = Vec::new();
        for i in 0..8 {
            let f = dir.path().join(format!("evidence-{run}-{i}.json"));
            std::fs::write(&f, format!("{{\"run\":{run},\"writer\":{i}}}")).unwrap();
            let child = Command::new(STELLA)
                .args([
                    "--plain-http",
                    "--no-progress",
                    "evidence",
                    "push-referrer",
                    "--image",
                    &image,
                ])
                .args([
                    "--artifact-type",
                    "application/vnd.stella.test+json",
                    "--file",
                ])
                .arg(&f)
                .env("DOCKER_CONFIG", "/nonexistent-stella-test-docker-config")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            children.push(child);
        }
        let mut want = Vec::new();
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "run {run}: {}", text(&out.stderr));
            want.push(text(&out.stdout).trim().parse::<Digest>().unwrap());
        }
        want.sort();
        want.dedup();
        assert_eq!(want.len(), 8, "run {run}: 8 distinct referrers pushed");
        let listing = repo.list_referrers(&subject.digest, &[]).await.unwrap();
        let got: Vec<Digest> = listing
            .referrers
            .iter()
            .map(|e| e.descriptor.digest.clone())
            .collect();
        assert_eq!(got, want, "run {run}: the fallback index lost entries");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_from_flags_and_docker_config() {
    let reg = DistributionRegistry::start_htpasswd("alice", "wonderland").unwrap();
    let host = reg.host_port();
    let repo = repository(
        &host,
        "auth/app",
        RegistryOptions {
            plain_http: true,
            credentials: Some(("alice".into(), "wonderland".into())),
            ..Default::default()
        },
    );
    let subject = push_image(&repo, "auth", "v1").await;
    let image = format!("{host}/auth/app:v1");

    let ok = stella(
        &[
            "--plain-http",
            "--username",
            "alice",
            "--password-stdin",
            "evidence",
            "list-referrers",
            &image,
            "--format",
            "json",
        ],
        Some("wonderland\n"),
        &[],
    );
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    let v: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(v["subject"], subject.digest.to_string());

    let bad = stella(
        &[
            "--plain-http",
            "--username",
            "alice",
            "--password-stdin",
            "evidence",
            "list-referrers",
            &image,
        ],
        Some("wrong\n"),
        &[],
    );
    assert_eq!(bad.status.code(), Some(2));
    let err = text(&bad.stderr);
    one_error_line(&err);
    assert!(err.contains(&host) && err.contains("alice"), "{err}");

    let none = stella(
        &["--plain-http", "evidence", "list-referrers", &image],
        None,
        &[],
    );
    assert_eq!(none.status.code(), Some(2));
    assert!(
        text(&none.stderr).contains("no credentials"),
        "{}",
        text(&none.stderr)
    );

    let cfg = reg.docker_config_dir().unwrap();
    let from_cfg = stella(
        &["--plain-http", "evidence", "list-referrers", &image],
        None,
        &[("DOCKER_CONFIG", cfg.as_path())],
    );
    assert!(from_cfg.status.success(), "{}", text(&from_cfg.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_registry_with_ca_file() {
    let reg = DistributionRegistry::start_tls().unwrap();
    let host = reg.host_port();
    let ca = reg.ca_pem_path().unwrap().to_path_buf();
    let repo = repository(
        &host,
        "tls/app",
        RegistryOptions {
            ca_file: Some(ca.clone()),
            ..Default::default()
        },
    );
    push_image(&repo, "tls", "v1").await;
    let image = format!("{host}/tls/app:v1");
    let ok = stella(
        &[
            "--ca-file",
            ca.to_str().unwrap(),
            "evidence",
            "list-referrers",
            &image,
        ],
        None,
        &[],
    );
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    let untrusted = stella(&["evidence", "list-referrers", &image], None, &[]);
    assert_eq!(untrusted.status.code(), Some(2));
    one_error_line(&text(&untrusted.stderr));
}

/// `credHelpers` in the docker config: the helper is run with the host on
/// stdin and its JSON answer used.
#[tokio::test(flavor = "multi_thread")]
async fn credential_helper_from_docker_config() {
    use std::os::unix::fs::PermissionsExt;
    let reg = DistributionRegistry::start_htpasswd("helper-user", "helper-pass").unwrap();
    let host = reg.host_port();
    let repo = repository(
        &host,
        "helper/app",
        RegistryOptions {
            plain_http: true,
            credentials: Some(("helper-user".into(), "helper-pass".into())),
            ..Default::default()
        },
    );
    push_image(&repo, "helper", "v1").await;

    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let seen = dir.path().join("seen-host");
    let helper = bin.join("docker-credential-stellatest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 3\ncat > {}\necho '{{\"ServerURL\":\"x\",\"Username\":\"helper-user\",\"Secret\":\"helper-pass\"}}'\n",
            seen.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = dir.path().join("docker");
    std::fs::create_dir(&cfg).unwrap();
    std::fs::write(
        cfg.join("config.json"),
        format!("{{\"credHelpers\":{{\"{host}\":\"stellatest\"}}}}"),
    )
    .unwrap();

    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(STELLA)
        .args([
            "--plain-http",
            "evidence",
            "list-referrers",
            &format!("{host}/helper/app:v1"),
        ])
        .env("DOCKER_CONFIG", &cfg)
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&seen).unwrap().trim(), host);
}
