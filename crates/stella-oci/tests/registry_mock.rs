//! The registry client against a tiny scripted HTTP server, for answers no
//! honest registry gives: content that does not match its digest, a lying
//! `Docker-Content-Digest`, an oversized referrers page without
//! `Content-Length`, a next-page link to another host.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use stella_oci::OciError;
use stella_oci::registry::{RegistryClient, RegistryOptions, Repository};
use stella_oci::store::*;
use stella_types::media_types::{OCI_INDEX, OCI_MANIFEST};
use stella_types::reference::RegistryReference;
use stella_types::{Descriptor, Digest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One scripted answer: status, headers, body (sent with Content-Length
/// unless `chunked`).
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    chunked: bool,
}

type Script = Arc<dyn Fn(&str, &str) -> Answer + Send + Sync>;

async fn serve(script: Script) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let script = script.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut tmp = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut tmp).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&tmp[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let mut first = head.lines().next().unwrap_or("").split(' ');
                let method = first.next().unwrap_or("").to_string();
                let path = first.next().unwrap_or("").to_string();
                let a = script(&method, &path);
                let mut out = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", a.status);
                for (k, v) in &a.headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                if a.chunked {
                    out.push_str("Transfer-Encoding: chunked\r\n\r\n");
                    let mut bytes = out.into_bytes();
                    for c in a.body.chunks(64 * 1024) {
                        bytes.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                        bytes.extend_from_slice(c);
                        bytes.extend_from_slice(b"\r\n");
                    }
                    bytes.extend_from_slice(b"0\r\n\r\n");
                    let _ = sock.write_all(&bytes).await;
                } else {
                    out.push_str(&format!("Content-Length: {}\r\n\r\n", a.body.len()));
                    let mut bytes = out.into_bytes();
                    if method != "HEAD" {
                        bytes.extend_from_slice(&a.body);
                    }
                    let _ = sock.write_all(&bytes).await;
                }
                let _ = sock.shutdown().await;
            });
        }
    });
    addr
}

fn answer(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    Answer {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.to_vec(),
        chunked: false,
    }
}

fn open(host: &str) -> Repository {
    RegistryClient::new(RegistryOptions {
        plain_http: true,
        ..Default::default()
    })
    .unwrap()
    .repository(&RegistryReference {
        registry: host.to_string(),
        repository: "m/app".into(),
        tag: None,
        digest: None,
    })
}

const MANIFEST: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;

#[tokio::test]
async fn content_not_matching_its_digest_is_an_integrity_error() {
    let good = Digest::sha256_of(MANIFEST);
    let other = Digest::sha256_of(b"something else");
    let (good_s, other_s) = (good.to_string(), other.to_string());
    let host = serve(Arc::new(move |_m: &str, path: &str| {
        if path.ends_with(&format!("manifests/{good_s}")) {
            // Right bytes, lying header.
            answer(
                200,
                &[
                    ("Content-Type", OCI_MANIFEST),
                    ("Docker-Content-Digest", &other_s),
                ],
                MANIFEST,
            )
        } else if path.ends_with(&format!("manifests/{other_s}")) {
            // Wrong bytes for the digest asked, no header.
            answer(200, &[("Content-Type", OCI_MANIFEST)], MANIFEST)
        } else if path.contains("/blobs/") {
            answer(200, &[], b"not the blob you asked for")
        } else {
            answer(404, &[], b"")
        }
    }))
    .await;
    let repo = open(&host);
    let e = repo.fetch_manifest(&good).await.unwrap_err();
    assert!(matches!(e, OciError::Integrity { .. }), "{e}");
    let e = repo.fetch_manifest(&other).await.unwrap_err();
    assert!(matches!(e, OciError::Integrity { .. }), "{e}");
    let blob = Descriptor::new(
        "application/octet-stream",
        Digest::sha256_of(b"the blob"),
        26,
    );
    let e = repo
        .fetch_blob_to(&blob, &mut Vec::new())
        .await
        .unwrap_err();
    assert!(matches!(e, OciError::Integrity { .. }), "{e}");
}

#[tokio::test]
async fn oversized_referrers_page_without_length_is_refused() {
    let big: Vec<u8> = {
        let mut v = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[],"annotations":{"pad":""#.to_vec();
        v.extend(std::iter::repeat_n(
            b'a',
            (stella_types::limits::MAX_REFERRERS_INDEX_BYTES + 10) as usize,
        ));
        v.extend_from_slice(b"\"}}");
        v
    };
    let big = Arc::new(big);
    let host = serve(Arc::new(move |_m: &str, path: &str| {
        if path.contains("/referrers/") {
            Answer {
                status: 200,
                headers: vec![("Content-Type".into(), OCI_INDEX.into())],
                body: big.as_ref().clone(),
                chunked: true,
            }
        } else {
            answer(404, &[], b"")
        }
    }))
    .await;
    let repo = open(&host);
    repo.set_referrers_mode(ReferrersMode::Api);
    let e = repo
        .list_referrers(&Digest::sha256_of(b"s"), &[])
        .await
        .unwrap_err();
    assert!(matches!(e, OciError::Protocol(_)), "{e}");
    assert!(e.to_string().contains("limit"), "{e}");
}

#[tokio::test]
async fn next_page_on_another_host_is_refused() {
    let host = serve(Arc::new(|_m: &str, path: &str| {
        if path.contains("/referrers/") {
            answer(
                200,
                &[("Content-Type", OCI_INDEX), ("Link", "<http://evil.example/v2/m/app/referrers/x?page=2>; rel=\"next\"")],
                br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#,
            )
        } else {
            answer(404, &[], b"")
        }
    }))
    .await;
    let repo = open(&host);
    repo.set_referrers_mode(ReferrersMode::Api);
    let e = repo
        .list_referrers(&Digest::sha256_of(b"s"), &[])
        .await
        .unwrap_err();
    assert!(matches!(e, OciError::Protocol(_)), "{e}");
    assert!(e.to_string().contains("another host"), "{e}");
}

#[tokio::test]
async fn retry_after_too_long_fails_at_once_with_rate_limited() {
    let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = requests.clone();
    let host = serve(Arc::new(move |_m: &str, _p: &str| {
        seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        answer(429, &[("Retry-After", "3600")], b"")
    }))
    .await;
    let repo = open(&host);
    let e = repo
        .blob_exists(&Digest::sha256_of(b"x"))
        .await
        .unwrap_err();
    assert!(matches!(e, OciError::RateLimited(_)), "{e}");
    assert!(e.to_string().contains("3600"), "{e}");
    // "At once": one request, no retry after a wait it refuses to make.
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 1);
}
