//! Credentials per registry host ([`CredentialProvider`]), credential
//! helpers that fail or hang, `Debug` output that never shows a secret, and
//! the lifetime of the cached referrers mode.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use stella_oci::OciError;
use stella_oci::registry::credentials::{
    ChainCredentials, CredentialProvider, Credentials, DockerConfigCredentials, StaticCredentials,
};
use stella_oci::registry::{RegistryClient, RegistryOptions};
use stella_oci::store::*;
use stella_testkit::{SpecConfig, SpecRegistry};
use stella_types::media_types::EMPTY_JSON_DIGEST;
use stella_types::reference::RegistryReference;

const SECRET: &str = "hunter2-do-not-print";

/// A docker config naming helper `name` for `reg.example`, and the helper
/// script itself, both in `dir`.
fn helper_setup(dir: &Path, name: &str, script: &str) {
    let config = serde_json::json!({"credHelpers": {"reg.example": name}});
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let path = dir.join(format!("docker-credential-{name}"));
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test]
async fn failing_helper_answer_is_never_echoed() {
    let dir = tempfile::tempdir().unwrap();
    helper_setup(
        dir.path(),
        "leaky",
        &format!(
            "#!/bin/sh\necho '{{\"Username\":\"u\",\"Secret\":\"{SECRET}\"}}'\necho 'keychain locked' >&2\nexit 1\n"
        ),
    );
    let provider =
        DockerConfigCredentials::new(Some(dir.path().into())).with_helper_dir(dir.path().into());
    let err = provider.credentials("reg.example").await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains(SECRET), "{text}");
    assert!(text.contains("docker-credential-leaky"), "{text}");
    assert!(text.contains("keychain locked"), "stderr is shown: {text}");
}

#[tokio::test]
async fn helper_answering_a_non_string_secret_does_not_echo_it() {
    let dir = tempfile::tempdir().unwrap();
    helper_setup(
        dir.path(),
        "odd",
        "#!/bin/sh\necho '{\"Username\":\"u\",\"Secret\":987654321987}'\n",
    );
    let provider =
        DockerConfigCredentials::new(Some(dir.path().into())).with_helper_dir(dir.path().into());
    let err = provider.credentials("reg.example").await.unwrap_err();
    assert!(!err.to_string().contains("987654321987"), "{err}");
}

#[tokio::test]
async fn hanging_helper_is_killed_after_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    helper_setup(
        dir.path(),
        "hang",
        &format!(
            "#!/bin/sh\necho $$ > '{}'\nexec sleep 120\n",
            pid_file.display()
        ),
    );
    let provider = DockerConfigCredentials::new(Some(dir.path().into()))
        .with_helper_dir(dir.path().into())
        .with_helper_timeout(Duration::from_secs(2));
    let err = provider.credentials("reg.example").await.unwrap_err();
    assert!(matches!(err, OciError::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("docker-credential-hang"), "{err}");

    // The helper (now `sleep`, same pid) is gone or a zombie waiting to be
    // reaped: killed, not left running.
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_string();
    let stat = format!("/proc/{pid}/stat");
    let mut killed = false;
    for _ in 0..100 {
        match std::fs::read_to_string(&stat) {
            Err(_) => killed = true,
            Ok(s) => {
                let state = s.rsplit(')').next().unwrap_or("").split_whitespace().next();
                killed = state == Some("Z") || state == Some("X");
            }
        }
        if killed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(killed, "helper {pid} still runs");
}

#[tokio::test]
async fn static_credentials_belong_to_their_host() {
    let alice = Credentials::new("alice", SECRET);
    let provider = StaticCredentials::new().with_host("reg.example:5000", alice.clone());
    assert_eq!(
        provider.credentials("reg.example:5000").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(provider.credentials("reg.example").await.unwrap(), None);
    assert_eq!(
        provider.credentials("other.example:5000").await.unwrap(),
        None
    );

    // A chain falls through to the next provider for other hosts.
    let bob = Credentials::new("bob", "pw");
    let chain = ChainCredentials::new(vec![
        Arc::new(provider),
        Arc::new(StaticCredentials::new().with_host("other.example", bob.clone())),
    ]);
    assert_eq!(
        chain.credentials("reg.example:5000").await.unwrap(),
        Some(alice)
    );
    assert_eq!(chain.credentials("other.example").await.unwrap(), Some(bob));
    assert_eq!(chain.credentials("third.example").await.unwrap(), None);
}

#[test]
fn debug_output_never_shows_a_secret() {
    let creds = Credentials::new("alice", SECRET);
    let options = RegistryOptions {
        credentials: Some(("alice".into(), SECRET.into())),
        credential_provider: Some(Arc::new(
            StaticCredentials::new().with_host("reg.example", creds.clone()),
        )),
        ..Default::default()
    };
    let client = RegistryClient::new(options.clone()).unwrap();
    let repo = client.repository(&RegistryReference {
        registry: "reg.example".into(),
        repository: "a/b".into(),
        tag: None,
        digest: None,
    });
    let provider = StaticCredentials::for_every_host(creds.clone());
    for shown in [
        format!("{creds:?}"),
        format!("{options:?}"),
        format!("{client:?}"),
        format!("{repo:?}"),
        format!("{provider:?}"),
        format!("{:?}", client.options()),
    ] {
        assert!(!shown.contains(SECRET), "{shown}");
    }
    assert!(format!("{options:?}").contains("alice"));
}

fn probes(reg: &SpecRegistry) -> usize {
    reg.requests()
        .iter()
        .filter(|r| r.path.contains(&format!("/referrers/{EMPTY_JSON_DIGEST}")))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn referrers_mode_is_probed_again_after_its_lifetime() {
    let reg = SpecRegistry::start(SpecConfig::default());
    let reference = RegistryReference {
        registry: reg.host_port(),
        repository: "ttl/app".into(),
        tag: None,
        digest: None,
    };

    let cached = RegistryClient::new(RegistryOptions {
        plain_http: true,
        ..Default::default()
    })
    .unwrap()
    .repository(&reference);
    assert_eq!(cached.referrers_mode().await.unwrap(), ReferrersMode::Api);
    assert_eq!(cached.referrers_mode().await.unwrap(), ReferrersMode::Api);
    assert_eq!(probes(&reg), 1, "within its lifetime the mode is cached");

    let expiring = RegistryClient::new(RegistryOptions {
        plain_http: true,
        referrers_mode_ttl: Duration::ZERO,
        ..Default::default()
    })
    .unwrap()
    .repository(&reference);
    assert_eq!(expiring.referrers_mode().await.unwrap(), ReferrersMode::Api);
    assert_eq!(expiring.referrers_mode().await.unwrap(), ReferrersMode::Api);
    assert_eq!(probes(&reg), 3, "an expired mode is probed again");
    assert_eq!(expiring.cached_referrers_mode(), ReferrersMode::Unknown);
}

/// The registry's futures stay `Send` (a multi-threaded server spawns them).
#[test]
fn registry_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let client = RegistryClient::new(RegistryOptions::default()).unwrap();
    let repo = client.repository(&RegistryReference {
        registry: "reg.example".into(),
        repository: "a/b".into(),
        tag: None,
        digest: None,
    });
    let digest = stella_types::Digest::parse(EMPTY_JSON_DIGEST).unwrap();
    assert_send(&repo.resolve_tag("v1"));
    assert_send(&repo.blob_exists(&digest));
    assert_send(&repo.referrers_mode());
    assert_send(&repo.list_referrers(&digest, &[]));
    let provider = DockerConfigCredentials::new(None);
    assert_send(&provider.credentials("reg.example"));
}
