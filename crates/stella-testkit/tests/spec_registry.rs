//! Behaviour of the in-process spec registry (Referrers API + fault injection).

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use stella_testkit::spec_registry::{OVERSIZED_BYTES, OVERSIZED_TAG, sha256_digest};
use stella_testkit::{SpecConfig, SpecRegistry};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn push_blob(reg: &SpecRegistry, repo: &str, data: &[u8]) -> String {
    let digest = sha256_digest(data);
    let r = client()
        .post(format!(
            "{}/v2/{repo}/blobs/uploads/?digest={digest}",
            reg.base_url()
        ))
        .body(data.to_vec())
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 201);
    digest
}

async fn put_manifest(
    reg: &SpecRegistry,
    repo: &str,
    reference: &str,
    body: &[u8],
) -> reqwest::Response {
    client()
        .put(format!(
            "{}/v2/{repo}/manifests/{reference}",
            reg.base_url()
        ))
        .header("content-type", OCI_MANIFEST)
        .body(body.to_vec())
        .send()
        .await
        .expect("put")
}

/// Pushes an image (empty config, one layer) tagged `v1`; returns its digest and size.
async fn push_subject(reg: &SpecRegistry, repo: &str) -> (String, usize) {
    push_blob(reg, repo, b"{}").await;
    let layer = push_blob(reg, repo, b"layer-bytes").await;
    let m = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": EMPTY_DIGEST, "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": layer, "size": 11}],
    })
    .to_string();
    let r = put_manifest(reg, repo, "v1", m.as_bytes()).await;
    assert_eq!(r.status().as_u16(), 201);
    assert!(r.headers().get("oci-subject").is_none());
    (sha256_digest(m.as_bytes()), m.len())
}

async fn push_referrer(
    reg: &SpecRegistry,
    repo: &str,
    subject: &(String, usize),
    artifact_type: &str,
    n: usize,
) -> (String, reqwest::Response) {
    let m = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": EMPTY_DIGEST, "size": 2},
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject.0, "size": subject.1},
        "annotations": {"n": n.to_string()},
    })
    .to_string();
    let digest = sha256_digest(m.as_bytes());
    let r = put_manifest(reg, repo, &digest, m.as_bytes()).await;
    (digest, r)
}

async fn list(
    reg: &SpecRegistry,
    url_path: &str,
) -> (reqwest::header::HeaderMap, serde_json::Value) {
    let r = client()
        .get(format!("{}{url_path}", reg.base_url()))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 200);
    let headers = r.headers().clone();
    let body: serde_json::Value =
        serde_json::from_slice(&r.bytes().await.expect("body")).expect("json");
    (headers, body)
}

fn next_link(h: &reqwest::header::HeaderMap) -> Option<String> {
    let v = h.get("link")?.to_str().ok()?;
    let start = v.find('<')? + 1;
    let end = v.find('>')?;
    assert!(v.contains("rel=\"next\""));
    v.get(start..end).map(str::to_string)
}

#[tokio::test]
async fn referrers_listing_filters_and_paginates() {
    let reg = SpecRegistry::start(SpecConfig {
        page_size: Some(2),
        ..SpecConfig::default()
    });
    let subject = push_subject(&reg, "app").await;
    let mut sboms = Vec::new();
    for i in 0..3 {
        let (d, r) = push_referrer(&reg, "app", &subject, "application/spdx+json", i).await;
        assert_eq!(r.status().as_u16(), 201);
        assert_eq!(
            r.headers().get("oci-subject").and_then(|v| v.to_str().ok()),
            Some(subject.0.as_str())
        );
        assert_eq!(
            r.headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok()),
            Some(d.as_str())
        );
        sboms.push(d);
    }
    let (sig, _) = push_referrer(
        &reg,
        "app",
        &subject,
        "application/vnd.dev.sigstore.bundle.v0.3+json",
        9,
    )
    .await;

    // Unfiltered: 4 referrers over pages of 2, no filter header.
    let mut seen = Vec::new();
    let mut path = format!("/v2/app/referrers/{}", subject.0);
    let mut pages = 0;
    loop {
        let (h, body) = list(&reg, &path).await;
        pages += 1;
        assert_eq!(
            h.get("content-type").and_then(|v| v.to_str().ok()),
            Some(OCI_INDEX)
        );
        assert!(h.get("oci-filters-applied").is_none());
        assert_eq!(body["mediaType"], OCI_INDEX);
        for d in body["manifests"].as_array().expect("array") {
            seen.push(d["digest"].as_str().expect("digest").to_string());
            assert_eq!(d["mediaType"], OCI_MANIFEST);
            assert!(d["annotations"]["n"].is_string());
        }
        match next_link(&h) {
            Some(next) => path = next,
            None => break,
        }
        assert!(pages < 10, "pagination does not terminate");
    }
    assert_eq!(pages, 2);
    let mut expected = sboms.clone();
    expected.push(sig.clone());
    expected.sort();
    assert_eq!(seen, expected);

    // Filtered: only the 3 SBOMs, filter header set, pagination keeps the filter.
    let mut path = format!(
        "/v2/app/referrers/{}?artifactType=application%2Fspdx%2Bjson",
        subject.0
    );
    let mut filtered = Vec::new();
    loop {
        let (h, body) = list(&reg, &path).await;
        assert_eq!(
            h.get("oci-filters-applied").and_then(|v| v.to_str().ok()),
            Some("artifactType")
        );
        for d in body["manifests"].as_array().expect("array") {
            assert_eq!(d["artifactType"], "application/spdx+json");
            filtered.push(d["digest"].as_str().expect("digest").to_string());
        }
        match next_link(&h) {
            Some(next) => path = next,
            None => break,
        }
    }
    sboms.sort();
    assert_eq!(filtered, sboms);

    // Unknown subject: empty index, 200.
    let other = sha256_digest(b"nothing");
    let (_, body) = list(&reg, &format!("/v2/app/referrers/{other}")).await;
    assert_eq!(body["manifests"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn rate_limit_answers_429_then_serves() {
    let reg = SpecRegistry::start(SpecConfig {
        rate_limit_first_n: 2,
        ..SpecConfig::default()
    });
    for _ in 0..2 {
        let r = client()
            .get(format!("{}/v2/", reg.base_url()))
            .send()
            .await
            .expect("get");
        assert_eq!(r.status().as_u16(), 429);
        assert_eq!(
            r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
            Some("1")
        );
    }
    let r = client()
        .get(format!("{}/v2/", reg.base_url()))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(reg.request_count(), 3);
    let log = reg.requests();
    assert!(
        log.iter().all(|r| r.method == "GET" && r.path == "/v2/"),
        "{log:?}"
    );
}

#[tokio::test]
async fn manifest_get_requires_matching_accept() {
    let reg = SpecRegistry::start(SpecConfig::default());
    let subject = push_subject(&reg, "app").await;
    let url = format!("{}/v2/app/manifests/v1", reg.base_url());
    let r = client().get(&url).send().await.expect("get");
    assert_eq!(r.status().as_u16(), 404, "no Accept header");
    let r = client()
        .get(&url)
        .header(
            "accept",
            "application/vnd.docker.distribution.manifest.v2+json, */*",
        )
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 404, "Accept without the stored type");
    let r = client()
        .get(&url)
        .header("accept", format!("{OCI_INDEX}, {OCI_MANIFEST};q=0.9"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some(OCI_MANIFEST)
    );
    assert_eq!(
        r.headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok()),
        Some(subject.0.as_str())
    );
    let r = client()
        .head(&url)
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .expect("head");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok()),
        Some(subject.1.to_string().as_str())
    );
    // A manifest whose layer is missing is refused.
    let bad = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": EMPTY_DIGEST, "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": sha256_digest(b"absent"), "size": 6}],
    })
    .to_string();
    let r = put_manifest(&reg, "app", "bad", bad.as_bytes()).await;
    assert_eq!(r.status().as_u16(), 400);
    // DELETE by digest removes the manifest and its tag.
    let r = client()
        .delete(format!("{}/v2/app/manifests/{}", reg.base_url(), subject.0))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status().as_u16(), 202);
    assert!(!reg.has_manifest("app", &subject.0));
    assert!(reg.tags("app").is_empty());
}

#[tokio::test]
async fn chunked_upload_checks_digest() {
    let reg = SpecRegistry::start(SpecConfig::default());
    let c = client();
    let r = c
        .post(format!("{}/v2/a/b/blobs/uploads/", reg.base_url()))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 202);
    let loc = format!(
        "{}{}",
        reg.base_url(),
        r.headers()["location"].to_str().expect("loc")
    );
    let r = c
        .patch(&loc)
        .header("content-range", "0-4")
        .body(b"hello".to_vec())
        .send()
        .await
        .expect("patch");
    assert_eq!(r.status().as_u16(), 202);
    assert_eq!(
        r.headers().get("range").and_then(|v| v.to_str().ok()),
        Some("0-4")
    );
    let wrong = sha256_digest(b"hello world!");
    let r = c
        .put(format!("{loc}?digest={wrong}"))
        .body(b" world".to_vec())
        .send()
        .await
        .expect("put");
    assert_eq!(r.status().as_u16(), 400);
    assert!(!reg.has_blob("a/b", &wrong));
    let digest = push_blob(&reg, "a/b", b"hello world").await;
    let r = c
        .get(format!("{}/v2/a/b/blobs/{digest}", reg.base_url()))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.bytes().await.expect("body").as_ref(), b"hello world");
}

#[tokio::test]
async fn liar_registry_sends_oci_subject_but_has_no_api() {
    let reg = SpecRegistry::start(SpecConfig {
        send_oci_subject_without_api: true,
        ..SpecConfig::default()
    });
    let subject = push_subject(&reg, "app").await;
    let (_, r) = push_referrer(&reg, "app", &subject, "application/spdx+json", 0).await;
    assert_eq!(r.status().as_u16(), 201);
    assert!(r.headers().get("oci-subject").is_some());
    let r = client()
        .get(format!("{}/v2/app/referrers/{}", reg.base_url(), subject.0))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 404);
}

#[tokio::test]
async fn link_loop_points_to_itself() {
    let reg = SpecRegistry::start(SpecConfig {
        link_loop: true,
        ..SpecConfig::default()
    });
    let subject = push_subject(&reg, "app").await;
    let path = format!("/v2/app/referrers/{}", subject.0);
    let (h, _) = list(&reg, &path).await;
    assert_eq!(next_link(&h), Some(path));
}

#[tokio::test]
async fn fail_after_requests_drops_connections() {
    let reg = SpecRegistry::start(SpecConfig {
        fail_after_requests: Some(1),
        ..SpecConfig::default()
    });
    let r = client()
        .get(format!("{}/v2/", reg.base_url()))
        .send()
        .await
        .expect("first");
    assert_eq!(r.status().as_u16(), 200);
    let r = client().get(format!("{}/v2/", reg.base_url())).send().await;
    assert!(r.is_err(), "second request must fail: {r:?}");
    assert_eq!(reg.request_count(), 2);
}

#[tokio::test]
async fn oversized_manifest_is_served() {
    let reg = SpecRegistry::start(SpecConfig {
        oversized_manifest: true,
        ..SpecConfig::default()
    });
    let r = client()
        .get(format!(
            "{}/v2/any/manifests/{OVERSIZED_TAG}",
            reg.base_url()
        ))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 200);
    let body = r.bytes().await.expect("body");
    assert!(body.len() as u64 > OVERSIZED_BYTES);
}
