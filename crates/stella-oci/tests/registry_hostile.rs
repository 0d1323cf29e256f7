//! The registry client against hostile servers (`stella_testkit::hostile`)
//! and real distribution registries whose token realm is somewhere it
//! should not be: credentials stay with the registry they belong to, every
//! request has a deadline, and no error text carries a URL's secrets.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use stella_oci::OciError;
use stella_oci::registry::{RegistryClient, RegistryOptions, RegistryTimeouts, Repository};
use stella_oci::store::*;
use stella_testkit::hostile::{HOSTILE_TOKEN, HostileServer, Misbehaviour, TagListLie};
use stella_testkit::{DistributionAuth, DistributionConfig, DistributionRegistry};
use stella_types::Descriptor;
use stella_types::reference::RegistryReference;

const USER: &str = "alice";
const PASSWORD: &str = "pw-that-must-stay-home";

fn repo_on(client: &RegistryClient, host: &str, name: &str) -> Repository {
    client.repository(&RegistryReference {
        registry: host.to_string(),
        repository: name.to_string(),
        tag: None,
        digest: None,
    })
}

fn plain_client_with_credentials() -> RegistryClient {
    RegistryClient::new(RegistryOptions {
        plain_http: true,
        credentials: Some((USER.into(), PASSWORD.into())),
        ..Default::default()
    })
    .unwrap()
}

/// Small deadlines so hostile servers are cut off quickly.
fn short_timeouts() -> RegistryTimeouts {
    RegistryTimeouts {
        connect: Duration::from_secs(5),
        idle: Duration::from_millis(400),
        request: Duration::from_secs(5),
        min_bytes_per_second: 1024 * 1024,
    }
}

/// The error, its sources and its `Debug`, all in one string.
fn everything_said(err: &OciError) -> String {
    let mut out = format!("{err} {err:?}");
    let mut src = std::error::Error::source(err);
    while let Some(s) = src {
        out.push_str(&format!(" | {s} {s:?}"));
        src = s.source();
    }
    out
}

async fn fetch_blob(repo: &Repository, d: &Descriptor) -> Result<u64, OciError> {
    let mut sink = Vec::new();
    repo.fetch_blob_to(d, &mut sink).await
}

// --- Issue 10 §1: credentials only to the registry they belong to ---

#[tokio::test(flavor = "multi_thread")]
async fn redirect_target_gets_no_credentials_and_its_challenge_is_not_answered() {
    let stranger = HostileServer::start(Misbehaviour::ChallengeWithOwnRealm).unwrap();
    let registry = HostileServer::start(Misbehaviour::RedirectBlobs {
        to: format!("{}/presigned/blob", stranger.base_url()),
        basic_auth: Some((USER.into(), PASSWORD.into())),
    })
    .unwrap();
    let client = plain_client_with_credentials();
    let repo = repo_on(&client, &registry.host_port(), "hostile/app");
    let d = Descriptor::for_bytes("application/octet-stream", b"hello");

    // A first request teaches the client that the registry wants Basic auth,
    // so the blob GET carries it up front.
    assert!(repo.blob_exists(&d.digest).await.unwrap());
    let err = fetch_blob(&repo, &d).await.unwrap_err();

    assert!(matches!(err, OciError::Unauthorized(_)), "{err}");
    assert!(
        err.to_string().contains(&stranger.host_port()),
        "the error names the host that asked: {err}"
    );
    let seen = stranger.requests();
    assert!(!seen.is_empty(), "the redirect was followed");
    assert!(
        seen.iter().all(|r| r.authorization.is_none()),
        "the redirect target got credentials or a token: {seen:?}"
    );
    assert!(
        seen.iter().all(|r| !r.path.starts_with("/token")),
        "the redirect target's challenge was answered: {seen:?}"
    );
    let at_registry = registry.requests();
    assert!(
        at_registry.iter().all(|r| !r
            .authorization
            .as_deref()
            .unwrap_or("")
            .contains(HOSTILE_TOKEN)),
        "a stranger's token was sent to the registry: {at_registry:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn redirect_target_challenge_teaches_the_client_nothing() {
    // A 401 from the redirect target changes nothing in the client's auth
    // state: the next request still sends the registry its own Basic
    // credentials and the target still gets none.
    let stranger = HostileServer::start(Misbehaviour::ChallengeWithOwnRealm).unwrap();
    let registry = HostileServer::start(Misbehaviour::RedirectBlobs {
        to: format!("{}/v2/hostile/app/blobs/elsewhere", stranger.base_url()),
        basic_auth: Some((USER.into(), PASSWORD.into())),
    })
    .unwrap();
    let client = plain_client_with_credentials();
    let repo = repo_on(&client, &registry.host_port(), "hostile/app");
    let d = Descriptor::for_bytes("application/octet-stream", b"x");
    assert!(repo.blob_exists(&d.digest).await.unwrap());
    // Twice: the second request must not have learnt anything from the first.
    for _ in 0..2 {
        let err = fetch_blob(&repo, &d).await.unwrap_err();
        assert!(matches!(err, OciError::Unauthorized(_)), "{err}");
    }
    assert!(
        stranger
            .requests()
            .iter()
            .all(|r| r.authorization.is_none()),
        "{:?}",
        stranger.requests()
    );
    // The registry itself still gets its Basic credentials.
    assert!(
        registry.requests().iter().any(|r| r
            .authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Basic "))),
        "{:?}",
        registry.requests()
    );
}

fn token_registry(tls: bool) -> DistributionRegistry {
    DistributionRegistry::start(DistributionConfig {
        auth: DistributionAuth::Token {
            user: USER.into(),
            password: PASSWORD.into(),
        },
        tls,
        ..DistributionConfig::default()
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn token_realm_on_another_host_is_used_by_default() {
    // distribution's token realm is the testkit token server: another port,
    // so another host. Named by the registry's own challenge, it is trusted.
    let reg = token_registry(false);
    let tokens = reg.token_server().unwrap();
    let client = plain_client_with_credentials();
    let repo = repo_on(&client, &reg.host_port(), "realm/app");
    let d = Descriptor::for_bytes("application/octet-stream", b"absent");
    assert!(!repo.blob_exists(&d.digest).await.unwrap());
    assert!(tokens.issued_count() >= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn token_realm_on_another_host_is_refused_in_strict_mode() {
    let reg = token_registry(false);
    let tokens = reg.token_server().unwrap();
    let client = RegistryClient::new(RegistryOptions {
        plain_http: true,
        credentials: Some((USER.into(), PASSWORD.into())),
        no_cross_host_realm: true,
        ..Default::default()
    })
    .unwrap();
    let repo = repo_on(&client, &reg.host_port(), "realm/app");
    let d = Descriptor::for_bytes("application/octet-stream", b"absent");
    let err = repo.blob_exists(&d.digest).await.unwrap_err();
    assert!(matches!(err, OciError::Unauthorized(_)), "{err}");
    // The library names no CLI flag: the default words say which setting refused it.
    assert!(
        err.to_string().contains("strict token-realm setting"),
        "{err}"
    );
    assert!(err.to_string().contains(&tokens.host_port()), "{err}");
    assert_eq!(tokens.request_count(), 0, "nothing was sent to the realm");
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_realm_of_an_https_registry_is_refused() {
    let reg = token_registry(true);
    let tokens = reg.token_server().unwrap();
    assert!(tokens.realm().starts_with("http://"));
    let client = RegistryClient::new(RegistryOptions {
        ca_file: Some(reg.ca_pem_path().unwrap().into()),
        credentials: Some((USER.into(), PASSWORD.into())),
        ..Default::default()
    })
    .unwrap();
    let repo = repo_on(&client, &reg.host_port(), "realm/app");
    let d = Descriptor::for_bytes("application/octet-stream", b"absent");
    let err = repo.blob_exists(&d.digest).await.unwrap_err();
    assert!(matches!(err, OciError::Unauthorized(_)), "{err}");
    assert!(err.to_string().contains("plain http"), "{err}");
    assert_eq!(
        tokens.request_count(),
        0,
        "no token request, with or without credentials, over plain http"
    );
}

// --- Issue 10 §2: deadlines ---

fn client_with(timeouts: RegistryTimeouts) -> RegistryClient {
    RegistryClient::new(RegistryOptions {
        plain_http: true,
        timeouts,
        ..Default::default()
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn server_that_never_answers_times_out_and_is_not_retried() {
    let server = HostileServer::start(Misbehaviour::NeverAnswer).unwrap();
    let client = client_with(short_timeouts());
    let repo = repo_on(&client, &server.host_port(), "slow/app");
    let err = repo.resolve_tag("v1").await.unwrap_err();
    assert!(matches!(err, OciError::Timeout { .. }), "{err}");
    assert!(err.is_transient(), "a worker may back off and try again");
    assert_eq!(
        server.requests().len(),
        1,
        "a request that timed out after it was sent is not replayed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn trickling_blob_is_cut_off_by_the_request_deadline() {
    // One byte every 150 ms never trips the idle timeout; the deadline for
    // the whole transfer does.
    let body = vec![b'z'; 200];
    let server = HostileServer::start(Misbehaviour::TrickleBlob {
        body: body.clone(),
        every: Duration::from_millis(150),
    })
    .unwrap();
    let client = client_with(RegistryTimeouts {
        idle: Duration::from_secs(5),
        request: Duration::from_millis(600),
        ..short_timeouts()
    });
    let repo = repo_on(&client, &server.host_port(), "slow/app");
    let d = Descriptor::for_bytes("application/octet-stream", &body);
    let err = fetch_blob(&repo, &d).await.unwrap_err();
    assert!(matches!(err, OciError::Timeout { .. }), "{err}");
    let gets = server
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .count();
    assert_eq!(gets, 1, "not retried blindly");
}

#[tokio::test(flavor = "multi_thread")]
async fn token_request_that_never_answers_times_out() {
    let server = HostileServer::start(Misbehaviour::TokenNeverAnswers).unwrap();
    let client = client_with(short_timeouts());
    let repo = repo_on(&client, &server.host_port(), "slow/app");
    let d = Descriptor::for_bytes("application/octet-stream", b"x");
    let err = repo.blob_exists(&d.digest).await.unwrap_err();
    assert!(matches!(err, OciError::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("token"), "{err}");
}

// --- Issue 10 §4: no secrets in error text ---

#[tokio::test(flavor = "multi_thread")]
async fn upload_session_state_is_not_in_transport_errors() {
    let secret = "SESSION-STATE-SECRET-31337";
    let server = HostileServer::start(Misbehaviour::UploadSessionThenDrop {
        secret_state: secret.into(),
    })
    .unwrap();
    let client = client_with(short_timeouts());
    let repo = repo_on(&client, &server.host_port(), "drop/app");
    let data = b"some blob".to_vec();
    let d = Descriptor::for_bytes("application/octet-stream", &data);
    let err = repo
        .push_blob(&d, BlobSource::Bytes(&data), &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, OciError::Transport { .. }), "{err}");
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.method == "PUT" && r.path.contains(secret)),
        "the PUT went to the session URL: {:?}",
        server.requests()
    );
    assert!(
        std::error::Error::source(&err).is_some(),
        "keeps its source"
    );
    let said = everything_said(&err);
    assert!(!said.contains(secret), "{said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn presigned_url_signature_is_not_in_transport_errors() {
    let secret = "X-Amz-Signature=SIGNATURE-SECRET-4242";
    let storage = HostileServer::start(Misbehaviour::DropConnection).unwrap();
    let registry = HostileServer::start(Misbehaviour::RedirectBlobs {
        to: format!("{}/bucket/blob?{secret}", storage.base_url()),
        basic_auth: None,
    })
    .unwrap();
    let client = client_with(short_timeouts());
    let repo = repo_on(&client, &registry.host_port(), "presigned/app");
    let d = Descriptor::for_bytes("application/octet-stream", b"hello");
    let err = fetch_blob(&repo, &d).await.unwrap_err();
    assert!(matches!(err, OciError::Transport { .. }), "{err}");
    assert!(
        storage.requests().iter().any(|r| r.path.contains(secret)),
        "the redirect was followed: {:?}",
        storage.requests()
    );
    let said = everything_said(&err);
    assert!(!said.contains("SIGNATURE-SECRET-4242"), "{said}");
}

// --- Issue 11 §3: the `tags/list` path against a registry that lies ---

fn plain_client() -> RegistryClient {
    RegistryClient::new(RegistryOptions {
        plain_http: true,
        ..Default::default()
    })
    .unwrap()
}

/// The requests a [`TagListLie`] server saw, as (method, path) with the
/// path up to its query.
fn routes(server: &HostileServer) -> Vec<(String, String)> {
    server
        .requests()
        .into_iter()
        .map(|r| {
            let route = r.path.split('?').next().unwrap_or("").to_string();
            (r.method, route)
        })
        .collect()
}

fn tag_list_requests(server: &HostileServer) -> usize {
    routes(server)
        .iter()
        .filter(|(_, p)| p.ends_with("/tags/list"))
        .count()
}

/// Manifest HEADs of the cosign legacy tags `<base>.att|.sbom|.sig`.
fn legacy_heads(server: &HostileServer, base: &str) -> Vec<String> {
    let mut heads: Vec<String> = routes(server)
        .into_iter()
        .filter(|(m, _)| m == "HEAD")
        .filter_map(|(_, p)| p.rsplit_once("/manifests/").map(|(_, t)| t.to_string()))
        .filter(|t| t.starts_with(base))
        .collect();
    heads.sort();
    heads
}

fn legacy_tags_of(subject: &stella_types::Digest) -> Vec<String> {
    let base = subject.referrers_tag();
    ["att", "sbom", "sig"]
        .iter()
        .map(|k| format!("{base}.{k}"))
        .collect()
}

/// Lists the referrers of a fresh subject on `server` (legacy tags
/// included): nothing is there, whatever the tag list says.
async fn list_nothing(server: &HostileServer) -> stella_types::Digest {
    let client = plain_client();
    let repo = repo_on(&client, &server.host_port(), "hostile/app");
    let subject = stella_types::Digest::sha256_of(b"a subject with no referrers");
    let listing = repo.list_referrers(&subject, &[]).await.unwrap();
    assert!(listing.referrers.is_empty(), "{listing:?}");
    assert!(listing.legacy.is_empty(), "{listing:?}");
    subject
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_tag_list_is_cut_off_and_legacy_tags_are_looked_up_one_by_one() {
    let server = HostileServer::start(Misbehaviour::LyingTagList(TagListLie::Oversized {
        bytes: 64 << 20,
    }))
    .unwrap();
    let subject = list_nothing(&server).await;
    // One tag list (read up to its cap, then dropped), then each of the
    // three legacy tags looked up instead: no retry, no second listing.
    assert_eq!(tag_list_requests(&server), 1, "{:?}", routes(&server));
    assert_eq!(
        legacy_heads(&server, &subject.referrers_tag()),
        legacy_tags_of(&subject)
    );

    // Listing the repository's tags (export) refuses it with a clear error.
    let client = plain_client();
    let repo = repo_on(&client, &server.host_port(), "hostile/app");
    let before = tag_list_requests(&server);
    let err = repo.list_tags().await.unwrap_err();
    let said = err.to_string();
    assert!(
        said.contains("tags list") && said.contains("limit"),
        "{said}"
    );
    assert_eq!(tag_list_requests(&server) - before, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn tag_list_pagination_loop_ends_after_one_repeat() {
    let server = HostileServer::start(Misbehaviour::LyingTagList(TagListLie::LinkLoop)).unwrap();
    let subject = list_nothing(&server).await;
    // A paginated answer that did not honour `last` proves nothing about
    // the legacy tags: they are looked up, and the Link is not followed.
    assert_eq!(tag_list_requests(&server), 1, "{:?}", routes(&server));
    assert_eq!(
        legacy_heads(&server, &subject.referrers_tag()),
        legacy_tags_of(&subject)
    );

    // Export's listing: the second page brings nothing new, which ends it
    // (distribution 2.8 also ignores `last` and resends every tag).
    let client = plain_client();
    let repo = repo_on(&client, &server.host_port(), "hostile/app");
    let before = tag_list_requests(&server);
    let tags = repo.list_tags().await.unwrap();
    assert_eq!(tags.len(), 1000);
    assert_eq!(tag_list_requests(&server) - before, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn endless_tag_list_is_refused_after_the_tag_cap() {
    let server = HostileServer::start(Misbehaviour::LyingTagList(TagListLie::Endless)).unwrap();
    let subject = list_nothing(&server).await;
    // A page that honoured `last` and runs past `<base>.sig` is complete
    // for the legacy tags: none of them exists, nothing is looked up.
    assert_eq!(tag_list_requests(&server), 1, "{:?}", routes(&server));
    assert!(legacy_heads(&server, &subject.referrers_tag()).is_empty());

    let client = plain_client();
    let repo = repo_on(&client, &server.host_port(), "hostile/app");
    let before = tag_list_requests(&server);
    let err = repo.list_tags().await.unwrap_err();
    let said = err.to_string();
    assert!(
        said.contains(&format!(
            "more than {} tags",
            stella_oci::registry::tags::MAX_TAGS
        )),
        "{said}"
    );
    let pages = tag_list_requests(&server) - before;
    assert_eq!(pages, stella_oci::registry::tags::MAX_TAGS / 1000 + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_tags_a_tag_list_claims_are_checked_not_believed() {
    let server =
        HostileServer::start(Misbehaviour::LyingTagList(TagListLie::PhantomLegacyTags)).unwrap();
    let subject = list_nothing(&server).await;
    assert_eq!(tag_list_requests(&server), 1);
    // Each claimed tag is looked up (and found missing), none assumed.
    assert_eq!(
        legacy_heads(&server, &subject.referrers_tag()),
        legacy_tags_of(&subject)
    );
}
