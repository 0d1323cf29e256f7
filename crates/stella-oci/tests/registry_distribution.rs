//! The registry client against a real distribution 2.8 process (Debian's
//! `docker-registry`): blobs, manifests, tag-schema referrers, auth, TLS,
//! concurrency and repair.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;

use stella_oci::OciError;
use stella_oci::registry::{RegistryClient, RegistryOptions, Repository};
use stella_oci::store::*;
use stella_testkit::DistributionRegistry;
use stella_testkit::fixtures;
use stella_types::media_types::{EMPTY_JSON, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST};
use stella_types::reference::RegistryReference;
use stella_types::{Descriptor, Digest, ImageIndex, ImageManifest};

fn repo_on(client: &RegistryClient, host: &str, name: &str) -> Repository {
    client.repository(&RegistryReference {
        registry: host.to_string(),
        repository: name.to_string(),
        tag: None,
        digest: None,
    })
}

fn plain_client() -> RegistryClient {
    RegistryClient::new(RegistryOptions {
        plain_http: true,
        ..Default::default()
    })
    .unwrap()
}

fn empty_config() -> Descriptor {
    Descriptor::for_bytes(OCI_EMPTY, EMPTY_JSON)
}

/// Pushes a small image (config + one layer) and returns its descriptor.
async fn push_image(repo: &Repository, seed: &str, tag: Option<&str>) -> Descriptor {
    let config = format!("{{\"seed\":\"{seed}\"}}");
    let layer = format!("layer of {seed}");
    fixtures::push_image(repo, config.as_bytes(), layer.as_bytes(), tag).await
}

/// Pushes an artifact manifest referring to `subject` (without recording it).
async fn push_artifact(
    repo: &Repository,
    subject: &Descriptor,
    artifact_type: &str,
    payload: &str,
) -> Descriptor {
    let cfg = empty_config();
    repo.push_blob(&cfg, BlobSource::Bytes(EMPTY_JSON), &NoProgress)
        .await
        .unwrap();
    let layer = payload.as_bytes().to_vec();
    let layer_d = Descriptor::for_bytes("application/json", &layer);
    repo.push_blob(&layer_d, BlobSource::Bytes(&layer), &NoProgress)
        .await
        .unwrap();
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "org.opencontainers.image.created".to_string(),
        "2026-01-01T00:00:00Z".to_string(),
    );
    let m = ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.into()),
        artifact_type: Some(artifact_type.into()),
        config: cfg,
        layers: vec![layer_d],
        subject: Some(subject.clone()),
        annotations: annotations.clone(),
    };
    let mut d = repo
        .push_manifest(OCI_MANIFEST, &m.to_json_bytes(), None)
        .await
        .unwrap();
    d.artifact_type = Some(artifact_type.into());
    d.annotations = annotations;
    d
}

#[tokio::test(flavor = "multi_thread")]
async fn blobs_monolithic_and_chunked_round_trip() {
    let reg = DistributionRegistry::start_plain().unwrap();
    let client = RegistryClient::new(RegistryOptions {
        plain_http: true,
        upload_chunk_size: 1000,
        ..Default::default()
    })
    .unwrap();
    let repo = repo_on(&client, &reg.host_port(), "blobs/test");

    // Monolithic (bytes): POST + PUT; a second push finds it.
    let data = b"hello blob".to_vec();
    let d = Descriptor::for_bytes("application/octet-stream", &data);
    assert!(!repo.blob_exists(&d.digest).await.unwrap());
    assert_eq!(
        repo.push_blob(&d, BlobSource::Bytes(&data), &NoProgress)
            .await
            .unwrap(),
        PushOutcome::Uploaded
    );
    assert!(repo.blob_exists(&d.digest).await.unwrap());
    assert_eq!(
        repo.push_blob(&d, BlobSource::Bytes(&data), &NoProgress)
            .await
            .unwrap(),
        PushOutcome::AlreadyExisted
    );
    let mut out = Vec::new();
    assert_eq!(
        repo.fetch_blob_to(&d, &mut out).await.unwrap(),
        data.len() as u64
    );
    assert_eq!(out, data);

    // Chunked (file over the 1000-byte chunk size): PATCH x5 + PUT.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.bin");
    let big: Vec<u8> = (0..4500u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&path, &big).unwrap();
    let bd = Descriptor::for_bytes("application/octet-stream", &big);
    struct Count(std::sync::atomic::AtomicU64);
    impl Progress for Count {
        fn start(&self, _: &str, _: u64) {}
        fn advance(&self, n: u64) {
            self.0.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        }
        fn finish(&self) {}
    }
    let progress = Count(std::sync::atomic::AtomicU64::new(0));
    let before = client.request_count();
    assert_eq!(
        repo.push_blob(&bd, BlobSource::File(&path), &progress)
            .await
            .unwrap(),
        PushOutcome::Uploaded
    );
    assert_eq!(
        client.request_count() - before,
        1 + 1 + 5 + 1,
        "HEAD, POST, 5 PATCH, PUT"
    );
    assert_eq!(progress.0.load(std::sync::atomic::Ordering::Relaxed), 4500);
    let patches = reg
        .access_log_lines()
        .iter()
        .filter(|l| l.contains("\"PATCH /v2/blobs/test/blobs/uploads/"))
        .count();
    assert_eq!(patches, 5);
    let mut out = Vec::new();
    repo.fetch_blob_to(&bd, &mut out).await.unwrap();
    assert_eq!(out, big);

    // Verify with an independent GET too.
    let raw = reqwest::get(format!(
        "{}/v2/blobs/test/blobs/{}",
        reg.base_url(),
        bd.digest
    ))
    .await
    .unwrap()
    .bytes()
    .await
    .unwrap();
    assert_eq!(Digest::sha256_of(&raw), bd.digest);

    // A descriptor that does not match the bytes is refused before upload.
    let mut wrong = d.clone();
    wrong.digest = Digest::sha256_of(b"other");
    let err = repo
        .push_blob(&wrong, BlobSource::Bytes(&data), &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, OciError::Integrity { .. }), "{err}");
    // A file whose content does not match its digest is refused by the registry.
    let mut lying = bd.clone();
    lying.digest = Digest::sha256_of(b"not the file");
    let err = repo
        .push_blob(&lying, BlobSource::File(&path), &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, OciError::Integrity { .. }), "{err}");
    assert!(!repo.blob_exists(&lying.digest).await.unwrap());

    // Reading with a wrong expected size or digest fails.
    let mut bad = d.clone();
    bad.size += 1;
    assert!(matches!(
        repo.fetch_blob_to(&bad, &mut Vec::new()).await.unwrap_err(),
        OciError::Integrity { .. }
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn manifests_push_fetch_head_resolve_delete() {
    let reg = DistributionRegistry::start_plain().unwrap();
    let client = plain_client();
    let repo = repo_on(&client, &reg.host_port(), "apps/web");
    let d = push_image(&repo, "one", Some("v1")).await;

    let before = client.request_count();
    let resolved = repo.resolve_tag("v1").await.unwrap();
    assert_eq!(
        client.request_count() - before,
        1,
        "one HEAD resolves a tag"
    );
    assert_eq!(resolved.digest, d.digest);
    assert_eq!(resolved.media_type, OCI_MANIFEST);
    assert_eq!(resolved.size, d.size);

    let fetched = repo.fetch_manifest(&d.digest).await.unwrap();
    assert_eq!(Digest::sha256_of(&fetched.bytes), d.digest);
    assert_eq!(fetched.descriptor.media_type, OCI_MANIFEST);
    assert!(repo.manifest_exists(&d.digest).await.unwrap());

    let err = repo.resolve_tag("nope").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("{}/apps/web:nope", reg.host_port())),
        "{err}"
    );

    repo.delete_manifest(&d.digest).await.unwrap();
    assert!(!repo.manifest_exists(&d.digest).await.unwrap());
    let err = repo.fetch_manifest(&d.digest).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(err.to_string().contains(&d.digest.to_string()));

    // Oversized manifests are refused before sending.
    let big = vec![b' '; (stella_types::limits::MAX_MANIFEST_BYTES + 1) as usize];
    let before = client.request_count();
    let err = repo
        .push_manifest(OCI_MANIFEST, &big, None)
        .await
        .unwrap_err();
    assert!(matches!(err, OciError::Manifest { .. }), "{err}");
    assert_eq!(client.request_count(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn tag_schema_referrers_round_trip_and_budget() {
    let reg = DistributionRegistry::start_plain().unwrap();
    let client = plain_client();
    let repo = repo_on(&client, &reg.host_port(), "apps/api");
    let subject = push_image(&repo, "subject", Some("latest")).await;

    assert_eq!(
        repo.referrers_mode().await.unwrap(),
        ReferrersMode::TagSchema
    );
    // Cached per registry: another repository of the same client does not probe.
    let other = repo_on(&client, &reg.host_port(), "apps/other");
    let before = client.request_count();
    assert_eq!(
        other.referrers_mode().await.unwrap(),
        ReferrersMode::TagSchema
    );
    assert_eq!(client.request_count(), before);

    let empty = repo.list_referrers(&subject.digest, &[]).await.unwrap();
    assert!(empty.referrers.is_empty() && empty.legacy.is_empty());

    // The push-referrer sequence: blobs (mount-or-upload), manifest, index.
    let before = client.request_count();
    let sbom = push_artifact(&repo, &subject, "application/spdx+json", "{\"sbom\":1}").await;
    repo.add_referrer(&subject, &sbom).await.unwrap();
    let used = client.request_count() - before;
    // config and layer HEAD+POST+PUT, manifest PUT, index GET+PUT+GET
    eprintln!("first push-referrer: {used} requests");
    assert!(used <= 10, "push-referrer used {used} requests");
    let before = client.request_count();
    let vex = push_artifact(&repo, &subject, "application/openvex+json", "{\"vex\":1}").await;
    repo.add_referrer(&subject, &vex).await.unwrap();
    let used = client.request_count() - before;
    // config HEAD, layer HEAD+POST+PUT, manifest PUT, index GET+PUT+GET
    eprintln!("second push-referrer: {used} requests");
    assert!(used <= 8, "second push-referrer used {used} requests");

    let listing = repo.list_referrers(&subject.digest, &[]).await.unwrap();
    assert_eq!(listing.mode, ReferrersMode::TagSchema);
    let got: Vec<_> = listing
        .referrers
        .iter()
        .map(|e| {
            (
                e.descriptor.artifact_type.clone().unwrap(),
                e.descriptor.digest.clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("application/openvex+json".into(), vex.digest.clone()),
            ("application/spdx+json".into(), sbom.digest.clone())
        ]
    );
    assert!(listing.referrers.iter().all(|e| !e.dangling));
    assert_eq!(
        listing.referrers[1]
            .descriptor
            .annotations
            .get("org.opencontainers.image.created")
            .map(String::as_str),
        Some("2026-01-01T00:00:00Z")
    );

    // The fallback index is a real OCI index under sha256-<hex>.
    let idx_desc = repo
        .resolve_tag(&subject.digest.referrers_tag())
        .await
        .unwrap();
    assert_eq!(idx_desc.media_type, OCI_INDEX);

    let filtered = repo
        .list_referrers(&subject.digest, &["application/spdx+json".to_string()])
        .await
        .unwrap();
    assert_eq!(filtered.referrers.len(), 1);
    assert_eq!(filtered.referrers[0].descriptor.digest, sbom.digest);

    // Adding again is a no-op read.
    let before = client.request_count();
    repo.add_referrer(&subject, &sbom).await.unwrap();
    assert_eq!(client.request_count() - before, 1);

    repo.remove_referrer(&subject.digest, &sbom.digest)
        .await
        .unwrap();
    let listing = repo.list_referrers(&subject.digest, &[]).await.unwrap();
    assert_eq!(listing.referrers.len(), 1);
    assert_eq!(listing.referrers[0].descriptor.digest, vex.digest);

    // Dangling: delete the manifest; listing keeps it cheap, the explicit check marks it.
    repo.delete_manifest(&vex.digest).await.unwrap();
    let mut listing = repo.list_referrers(&subject.digest, &[]).await.unwrap();
    assert!(!listing.referrers[0].dangling);
    repo.check_dangling(&mut listing).await.unwrap();
    assert!(listing.referrers[0].dangling);
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_cosign_tags_are_reported() {
    let reg = DistributionRegistry::start_plain().unwrap();
    let client = plain_client();
    let repo = repo_on(&client, &reg.host_port(), "legacy/app");
    let subject = push_image(&repo, "s", Some("v1")).await;
    let sig = push_image(
        &repo,
        "sig",
        Some(&format!("{}.sig", subject.digest.referrers_tag())),
    )
    .await;
    let att = push_image(
        &repo,
        "att",
        Some(&format!("{}.att", subject.digest.referrers_tag())),
    )
    .await;
    let listing = repo.list_referrers(&subject.digest, &[]).await.unwrap();
    let legacy: Vec<_> = listing
        .legacy
        .iter()
        .map(|l| (l.kind.as_str(), l.descriptor.digest.clone()))
        .collect();
    assert_eq!(legacy, vec![("att", att.digest), ("sig", sig.digest)]);
    assert!(listing.referrers.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_auth_success_wrong_password_and_docker_config() {
    let reg = DistributionRegistry::start_htpasswd("alice", "wonderland").unwrap();
    let host = reg.host_port();
    let good = RegistryClient::new(RegistryOptions {
        plain_http: true,
        credentials: Some(("alice".into(), "wonderland".into())),
        ..Default::default()
    })
    .unwrap();
    let repo = repo_on(&good, &host, "secure/app");
    let d = push_image(&repo, "x", Some("v1")).await;
    assert_eq!(repo.resolve_tag("v1").await.unwrap().digest, d.digest);

    let bad = RegistryClient::new(RegistryOptions {
        plain_http: true,
        credentials: Some(("alice".into(), "wrong".into())),
        ..Default::default()
    })
    .unwrap();
    let err = repo_on(&bad, &host, "secure/app")
        .resolve_tag("v1")
        .await
        .unwrap_err();
    assert!(matches!(err, OciError::Unauthorized(_)), "{err}");
    assert!(err.to_string().contains(&host), "{err}");

    let empty_cfg = tempfile::tempdir().unwrap();
    let none = RegistryClient::new(RegistryOptions {
        plain_http: true,
        docker_config_dir: Some(empty_cfg.path().into()),
        ..Default::default()
    })
    .unwrap();
    let err = repo_on(&none, &host, "secure/app")
        .resolve_tag("v1")
        .await
        .unwrap_err();
    assert!(matches!(err, OciError::Unauthorized(_)), "{err}");
    assert!(err.to_string().contains("no credentials"), "{err}");

    // Credentials from a docker config.json (auths.<host>.auth).
    let cfg = reg.docker_config_dir().unwrap();
    let from_cfg = RegistryClient::new(RegistryOptions {
        plain_http: true,
        docker_config_dir: Some(cfg),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        repo_on(&from_cfg, &host, "secure/app")
            .resolve_tag("v1")
            .await
            .unwrap()
            .digest,
        d.digest
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bearer_token_flow_reuses_tokens() {
    let reg = DistributionRegistry::start_token_auth().unwrap();
    let host = reg.host_port();
    let creds = reg.credentials().unwrap();
    let client = RegistryClient::new(RegistryOptions {
        plain_http: true,
        credentials: Some(creds.clone()),
        ..Default::default()
    })
    .unwrap();
    let repo = repo_on(&client, &host, "tok/app");
    let subject = push_image(&repo, "t", Some("v1")).await;
    let art = push_artifact(&repo, &subject, "application/spdx+json", "{}").await;
    repo.add_referrer(&subject, &art).await.unwrap();
    let listing = repo.list_referrers(&subject.digest, &[]).await.unwrap();
    assert_eq!(listing.referrers.len(), 1);
    repo.delete_manifest(&art.digest).await.unwrap();

    let ts = reg.token_server().unwrap();
    let scopes = ts.requested_scopes();
    assert!(
        scopes.iter().any(|s| s == "repository:tok/app:pull,push"),
        "{scopes:?}"
    );
    assert!(
        scopes
            .iter()
            .any(|s| s == "repository:tok/app:delete,pull,push"),
        "{scopes:?}"
    );
    // Two tokens (pull,push then delete,pull,push), not one per request.
    assert!(
        ts.request_count() == 2,
        "token requests: {} ({scopes:?})",
        ts.request_count()
    );

    // Wrong password: the token server refuses; the error names the registry.
    let bad = RegistryClient::new(RegistryOptions {
        plain_http: true,
        credentials: Some((creds.0, "nope".into())),
        ..Default::default()
    })
    .unwrap();
    let err = repo_on(&bad, &host, "tok/app")
        .resolve_tag("v1")
        .await
        .unwrap_err();
    assert!(matches!(err, OciError::Unauthorized(_)), "{err}");
    assert!(err.to_string().contains(&host), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_with_custom_ca() {
    let reg = DistributionRegistry::start_tls().unwrap();
    let host = reg.host_port();
    let client = RegistryClient::new(RegistryOptions {
        ca_file: Some(reg.ca_pem_path().unwrap().into()),
        ..Default::default()
    })
    .unwrap();
    let repo = repo_on(&client, &host, "tls/app");
    let d = push_image(&repo, "tls", Some("v1")).await;
    assert_eq!(repo.resolve_tag("v1").await.unwrap().digest, d.digest);

    // Without the CA the certificate is refused; 127.0.0.1 does not imply plain HTTP.
    let untrusting = RegistryClient::new(RegistryOptions::default()).unwrap();
    let err = repo_on(&untrusting, &host, "tls/app")
        .resolve_tag("v1")
        .await
        .unwrap_err();
    assert!(matches!(err, OciError::Transport { .. }), "{err}");
    assert!(
        !err.is_transient(),
        "an untrusted certificate stays untrusted: {err}"
    );
    assert!(
        std::error::Error::source(&err).is_some(),
        "keeps its source"
    );

    // A CA file that is not PEM is a clear input error.
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let err = RegistryClient::new(RegistryOptions {
        ca_file: Some(junk),
        ..Default::default()
    })
    .unwrap_err();
    assert!(matches!(err, OciError::InvalidInput(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn registry_dying_is_a_transport_error() {
    let mut reg = DistributionRegistry::start_plain().unwrap();
    let client = plain_client();
    let repo = repo_on(&client, &reg.host_port(), "dying/app");
    let subject = push_image(&repo, "d", Some("v1")).await;
    reg.stop();
    let data = b"never stored".to_vec();
    let d = Descriptor::for_bytes("application/octet-stream", &data);
    let err = repo
        .push_blob(&d, BlobSource::Bytes(&data), &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, OciError::Transport { .. }), "{err}");
    assert!(
        err.is_transient(),
        "a registry that went away may come back: {err}"
    );
    reg.restart().unwrap();
    assert!(!repo.blob_exists(&d.digest).await.unwrap());
    assert!(
        repo.list_referrers(&subject.digest, &[])
            .await
            .unwrap()
            .referrers
            .is_empty()
    );
}

/// 8 writers with separate clients race on one subject (released together
/// by a barrier); all 8 stay listed, 20 times over.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_keep_every_entry() {
    let reg = DistributionRegistry::start_plain().unwrap();
    let host = reg.host_port();
    let setup = plain_client();
    let repo = repo_on(&setup, &host, "race/app");
    for run in 0..20 {
        let subject = push_image(&repo, &format!("race-{run}"), None).await;
        let mut arts = Vec::new();
        for i in 0..8 {
            arts.push(
                push_artifact(
                    &repo,
                    &subject,
                    "application/vnd.test+json",
                    &format!("{{\"run\":{run},\"i\":{i}}}"),
                )
                .await,
            );
        }
        let barrier = Arc::new(tokio::sync::Barrier::new(8));
        let mut tasks = Vec::new();
        for art in arts.clone() {
            let host = host.clone();
            let subject = subject.clone();
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                let client = plain_client();
                let repo = repo_on(&client, &host, "race/app");
                repo.set_referrers_mode(ReferrersMode::TagSchema);
                barrier.wait().await;
                repo.add_referrer(&subject, &art).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let listing = repo.list_referrers(&subject.digest, &[]).await.unwrap();
        let mut want: Vec<Digest> = arts.iter().map(|a| a.digest.clone()).collect();
        want.sort();
        let got: Vec<Digest> = listing
            .referrers
            .iter()
            .map(|e| e.descriptor.digest.clone())
            .collect();
        assert_eq!(got, want, "run {run}: entries lost");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn repair_fixes_what_other_tools_left() {
    let reg = DistributionRegistry::start_plain().unwrap();
    let client = plain_client();
    let repo = repo_on(&client, &reg.host_port(), "repair/app");
    let subject = push_image(&repo, "subject", Some("v1")).await;
    let other_subject = push_image(&repo, "other", Some("v2")).await;
    let good = push_artifact(&repo, &subject, "application/spdx+json", "{\"good\":1}").await;
    let old_cosign = push_artifact(
        &repo,
        &subject,
        "application/vnd.dev.cosign.simplesigning.v1+json",
        "{\"sig\":1}",
    )
    .await;
    let gone = push_artifact(&repo, &subject, "application/vnd.gone+json", "{\"gone\":1}").await;
    let foreign = push_artifact(
        &repo,
        &other_subject,
        "application/vnd.foreign+json",
        "{\"foreign\":1}",
    )
    .await;

    // An index as another tool wrote it.
    let mut broken_cosign =
        Descriptor::new(OCI_MANIFEST, old_cosign.digest.clone(), old_cosign.size);
    broken_cosign.artifact_type = Some(OCI_EMPTY.into());
    let mut index = ImageIndex::empty();
    index.manifests = vec![
        good.clone(),
        broken_cosign,
        good.clone(),
        gone.clone(),
        foreign.clone(),
    ];
    repo.push_manifest(
        OCI_INDEX,
        &index.to_json_bytes(),
        Some(&subject.digest.referrers_tag()),
    )
    .await
    .unwrap();
    repo.delete_manifest(&gone.digest).await.unwrap();

    let report = repo.repair_referrers_index(&subject, true).await.unwrap();
    assert!(report.changed && !report.written);
    let kinds: Vec<(&str, Option<Digest>)> = report
        .findings
        .iter()
        .map(|f| (f.kind.as_str(), f.digest.clone()))
        .collect();
    assert!(
        kinds.contains(&("duplicate", Some(good.digest.clone()))),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("missing-artifact-type", Some(old_cosign.digest.clone()))),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("missing-annotations", Some(old_cosign.digest.clone()))),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("dangling", Some(gone.digest.clone()))),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("wrong-subject", Some(foreign.digest.clone()))),
        "{kinds:?}"
    );
    // Dry run wrote nothing.
    assert_eq!(
        repo.list_referrers(&subject.digest, &[])
            .await
            .unwrap()
            .referrers
            .len(),
        4
    );

    let report = repo.repair_referrers_index(&subject, false).await.unwrap();
    assert!(report.changed && report.written);
    let listing = repo.list_referrers(&subject.digest, &[]).await.unwrap();
    let got: Vec<Descriptor> = listing
        .referrers
        .iter()
        .map(|e| e.descriptor.clone())
        .collect();
    assert_eq!(got, vec![good.clone(), old_cosign.clone()]);

    // Repaired: a second pass finds nothing.
    let report = repo.repair_referrers_index(&subject, false).await.unwrap();
    assert!(
        report.findings.is_empty() && !report.changed && !report.written,
        "{report:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tag_resolving_to_the_subject_is_not_an_index() {
    let reg = DistributionRegistry::start_plain().unwrap();
    let client = plain_client();
    let repo = repo_on(&client, &reg.host_port(), "gitlab/app");
    let subject = push_image(&repo, "s", Some("v1")).await;
    // The GitLab bug: sha256-<hex> tags the subject itself.
    let bytes = repo.fetch_manifest(&subject.digest).await.unwrap().bytes;
    repo.push_manifest(OCI_MANIFEST, &bytes, Some(&subject.digest.referrers_tag()))
        .await
        .unwrap();
    let listing = repo.list_referrers(&subject.digest, &[]).await.unwrap();
    assert!(listing.referrers.is_empty());
    let report = repo.repair_referrers_index(&subject, true).await.unwrap();
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.findings[0].kind, "self-reference");
    // A real referrer replaces the bogus tag with an index.
    let art = push_artifact(&repo, &subject, "application/spdx+json", "{}").await;
    repo.add_referrer(&subject, &art).await.unwrap();
    let listing = repo.list_referrers(&subject.digest, &[]).await.unwrap();
    assert_eq!(listing.referrers.len(), 1);
}

/// The documented hazard (docs/registry.md): `garbage-collect --delete-untagged`
/// on distribution 2.8 deletes referrers only the fallback index points to;
/// the entries become dangling and repair removes them. Plain GC keeps them.
#[tokio::test(flavor = "multi_thread")]
async fn gc_delete_untagged_hazard_is_real_and_repairable() {
    let mut reg = DistributionRegistry::start_plain().unwrap();
    let client = plain_client();
    let repo = repo_on(&client, &reg.host_port(), "gc/app");
    let subject = push_image(&repo, "gc", Some("v1")).await;
    let art = push_artifact(&repo, &subject, "application/spdx+json", "{\"gc\":1}").await;
    repo.add_referrer(&subject, &art).await.unwrap();

    reg.garbage_collect(false).unwrap();
    assert!(
        repo.manifest_exists(&art.digest).await.unwrap(),
        "plain GC keeps the referrer"
    );

    reg.garbage_collect(true).unwrap();
    assert!(repo.manifest_exists(&subject.digest).await.unwrap());
    assert!(
        !repo.manifest_exists(&art.digest).await.unwrap(),
        "--delete-untagged deleted the referrer"
    );
    let mut listing = repo.list_referrers(&subject.digest, &[]).await.unwrap();
    assert_eq!(listing.referrers.len(), 1);
    repo.check_dangling(&mut listing).await.unwrap();
    assert!(listing.referrers[0].dangling);

    let report = repo.repair_referrers_index(&subject, true).await.unwrap();
    assert!(report.changed && !report.written);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.kind == "dangling" && f.digest.as_ref() == Some(&art.digest))
    );

    // distribution refuses an index naming a missing manifest: a new push
    // drops the dangling entry (and only it) and succeeds.
    let art2 = push_artifact(&repo, &subject, "application/spdx+json", "{\"gc\":2}").await;
    repo.add_referrer(&subject, &art2).await.unwrap();
    let listing = repo.list_referrers(&subject.digest, &[]).await.unwrap();
    let got: Vec<Digest> = listing
        .referrers
        .iter()
        .map(|e| e.descriptor.digest.clone())
        .collect();
    assert_eq!(got, vec![art2.digest.clone()]);
    let report = repo.repair_referrers_index(&subject, false).await.unwrap();
    assert!(!report.changed, "{report:?}");
}

/// `unsafe_single_writer` skips the settle re-read: one request less per
/// index update and no settle delay, and the entry is still written.
#[tokio::test(flavor = "multi_thread")]
async fn unsafe_single_writer_skips_the_settle_check() {
    let reg = DistributionRegistry::start_plain().unwrap();
    let safe = plain_client();
    let unsafe_client = RegistryClient::new(RegistryOptions {
        plain_http: true,
        unsafe_single_writer: true,
        ..Default::default()
    })
    .unwrap();
    let repo = repo_on(&safe, &reg.host_port(), "apps/fast");
    let fast = repo_on(&unsafe_client, &reg.host_port(), "apps/fast");
    let subject = push_image(&repo, "subject", Some("latest")).await;
    repo.referrers_mode().await.unwrap();
    fast.referrers_mode().await.unwrap();

    let a = push_artifact(&repo, &subject, "application/spdx+json", "{\"a\":1}").await;
    let before = safe.request_count();
    repo.add_referrer(&subject, &a).await.unwrap();
    let safe_requests = safe.request_count() - before;

    let b = push_artifact(&fast, &subject, "application/spdx+json", "{\"b\":1}").await;
    let before = unsafe_client.request_count();
    fast.add_referrer(&subject, &b).await.unwrap();
    let fast_requests = unsafe_client.request_count() - before;

    // The settle check is the extra GET (its delay is not asserted: no wall-clock checks).
    assert_eq!(safe_requests, 3, "index GET + PUT + settle GET");
    assert_eq!(fast_requests, 2, "index GET + PUT only");
    let listed = repo.list_referrers(&subject.digest, &[]).await.unwrap();
    let digests: Vec<&Digest> = listed
        .referrers
        .iter()
        .map(|e| &e.descriptor.digest)
        .collect();
    assert!(
        digests.contains(&&a.digest) && digests.contains(&&b.digest),
        "{digests:?}"
    );
}

/// `list_referrers_skip_legacy` returns the same referrers as
/// `list_referrers` without the cosign legacy-tag lookup, which is one tag
/// listing when none of the three tags exists (distribution 2.8 ignores
/// `n` and `last` and sends every tag).
#[tokio::test(flavor = "multi_thread")]
async fn listing_without_legacy_tags_saves_the_tag_lookup() {
    let reg = DistributionRegistry::start_plain().unwrap();
    let client = plain_client();
    let repo = repo_on(&client, &reg.host_port(), "apps/lean");
    let subject = push_image(&repo, "subject", Some("latest")).await;
    let a = push_artifact(&repo, &subject, "application/spdx+json", "{\"a\":1}").await;
    repo.add_referrer(&subject, &a).await.unwrap();
    repo.referrers_mode().await.unwrap();

    let before = client.request_count();
    let full = repo.list_referrers(&subject.digest, &[]).await.unwrap();
    let full_requests = client.request_count() - before;
    let before = client.request_count();
    let lean = repo
        .list_referrers_skip_legacy(&subject.digest, &[])
        .await
        .unwrap();
    let lean_requests = client.request_count() - before;

    assert_eq!(full.referrers, lean.referrers);
    assert!(lean.legacy.is_empty());
    assert_eq!(
        full_requests,
        lean_requests + 1,
        "{full_requests} vs {lean_requests}"
    );
    assert_eq!(lean_requests, 1, "one index GET");
}

fn one_file_spec(body: &str) -> stella_oci::artifact::ArtifactSpec {
    stella_oci::artifact::ArtifactSpec {
        artifact_type: "application/vnd.test.count+json".into(),
        layers: vec![stella_oci::artifact::LayerSource::Bytes {
            bytes: body.as_bytes().to_vec(),
            media_type: "application/json".into(),
            title: Some("evidence.json".into()),
        }],
        annotations: BTreeMap::from([(
            "org.opencontainers.image.created".to_string(),
            "2026-01-01T00:00:00Z".to_string(),
        )]),
    }
}

/// A race-safe push of a new one-file referrer onto distribution 2.8 (no
/// Referrers API; empty config already in the repository) takes 6
/// requests: layer mount-POST + PUT (no HEAD), manifest PUT (no config
/// HEAD: the registry would refuse a manifest naming a missing config),
/// index GET + PUT + settle GET; with the subject's HEAD that a tag needs,
/// 7. There is no referrers probe: the manifest PUT's answer has no
/// OCI-Subject, which tells the tag schema. Pushing the same referrer again
/// sends no bytes (the mount answers 201) and leaves the index alone: 3
/// requests.
#[tokio::test(flavor = "multi_thread")]
async fn push_referrer_takes_six_requests_and_no_probe() {
    let reg = DistributionRegistry::start_plain().unwrap();
    let host = reg.host_port();
    let setup = plain_client();
    let seed = repo_on(&setup, &host, "apps/count");
    let subject = push_image(&seed, "subject", Some("v1")).await;
    push_artifact(&seed, &subject, "application/x.seed", "{}").await;

    let client = plain_client();
    let repo = repo_on(&client, &host, "apps/count");
    assert_eq!(repo.cached_referrers_mode(), ReferrersMode::Unknown);
    let before = client.request_count();
    let pushed = stella_oci::artifact::push_referrer(
        &repo,
        &subject,
        &one_file_spec("{\"n\":1}"),
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(client.request_count() - before, 6);
    assert_eq!(pushed.mode, ReferrersMode::TagSchema);
    assert_eq!(repo.cached_referrers_mode(), ReferrersMode::TagSchema);

    let again_client = plain_client();
    let again_repo = repo_on(&again_client, &host, "apps/count");
    let before = again_client.request_count();
    let again = stella_oci::artifact::push_referrer(
        &again_repo,
        &subject,
        &one_file_spec("{\"n\":1}"),
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(again.descriptor.digest, pushed.descriptor.digest);
    assert_eq!(again_client.request_count() - before, 3);

    let listed = seed.list_referrers(&subject.digest, &[]).await.unwrap();
    let digests: Vec<&Digest> = listed
        .referrers
        .iter()
        .map(|e| &e.descriptor.digest)
        .collect();
    assert_eq!(digests, vec![&pushed.descriptor.digest]);
    // The layer really is there (mounted or uploaded, never assumed).
    let layer = Descriptor::for_bytes("application/json", b"{\"n\":1}");
    assert!(seed.blob_exists(&layer.digest).await.unwrap());
}

/// The first referrer in a repository that lacks the empty config: the
/// registry refuses the manifest, the config is uploaded, the manifest
/// sent again; the referrer and its config are then really there.
#[tokio::test(flavor = "multi_thread")]
async fn push_referrer_uploads_the_empty_config_when_the_registry_lacks_it() {
    let reg = DistributionRegistry::start_plain().unwrap();
    let host = reg.host_port();
    let setup = plain_client();
    let seed = repo_on(&setup, &host, "apps/fresh");
    let subject = push_image(&seed, "fresh subject", None).await;
    let empty = empty_config();
    assert!(!seed.blob_exists(&empty.digest).await.unwrap());

    let client = plain_client();
    let repo = repo_on(&client, &host, "apps/fresh");
    let before = client.request_count();
    let pushed = stella_oci::artifact::push_referrer(
        &repo,
        &subject,
        &one_file_spec("{\"fresh\":1}"),
        &NoProgress,
    )
    .await
    .unwrap();
    // layer POST + PUT, refused manifest PUT, config HEAD + POST + PUT,
    // manifest PUT, index GET + PUT + settle GET.
    assert_eq!(client.request_count() - before, 10);
    assert!(seed.blob_exists(&empty.digest).await.unwrap());
    let fetched = seed
        .fetch_manifest(&pushed.descriptor.digest)
        .await
        .unwrap();
    assert_eq!(fetched.bytes, pushed.manifest_bytes);
    let listed = seed.list_referrers(&subject.digest, &[]).await.unwrap();
    assert_eq!(listed.referrers.len(), 1);
    assert_eq!(
        listed.referrers[0].descriptor.digest,
        pushed.descriptor.digest
    );
}
