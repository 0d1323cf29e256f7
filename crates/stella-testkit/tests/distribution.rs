//! Real `docker-registry` launcher tests.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use stella_testkit::DistributionRegistry;

fn get_status(url: &str, ca: Option<&std::path::Path>, auth: Option<(&str, &str)>) -> u16 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut b = reqwest::Client::builder();
        if let Some(ca) = ca {
            let pem = std::fs::read(ca).expect("ca");
            b = b.add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("pem"));
        }
        let client = b.build().expect("client");
        let mut req = client.get(url);
        if let Some((u, p)) = auth {
            req = req.basic_auth(u, Some(p));
        }
        req.send().await.expect("send").status().as_u16()
    })
}

#[test]
fn plain_registry_answers_v2_and_stops_on_drop() {
    let reg = DistributionRegistry::start_plain().expect("start");
    let url = format!("{}/v2/", reg.base_url());
    assert!(reg.base_url().starts_with("http://127.0.0.1:"));
    assert_eq!(get_status(&url, None, None), 200);
    assert!(reg.credentials().is_none());
    assert!(reg.ca_pem_path().is_none());
    let port = reg.port();
    drop(reg);
    // The process is gone: nothing listens on the port any more.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn htpasswd_registry_rejects_wrong_password() {
    let reg = DistributionRegistry::start_htpasswd("alice", "s3cret").expect("start");
    let url = format!("{}/v2/", reg.base_url());
    assert_eq!(get_status(&url, None, None), 401);
    assert_eq!(get_status(&url, None, Some(("alice", "wrong"))), 401);
    assert_eq!(get_status(&url, None, Some(("bob", "s3cret"))), 401);
    assert_eq!(get_status(&url, None, Some(("alice", "s3cret"))), 200);
    assert_eq!(
        reg.credentials(),
        Some(("alice".to_string(), "s3cret".to_string()))
    );
    let dir = reg.docker_config_dir().expect("docker config");
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).expect("read"))
            .expect("json");
    let auth = doc["auths"][reg.host_port()]["auth"]
        .as_str()
        .expect("auth");
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .expect("b64");
    assert_eq!(decoded, b"alice:s3cret");
}

#[test]
fn tls_registry_answers_with_generated_ca() {
    let reg = DistributionRegistry::start_tls().expect("start");
    assert!(reg.base_url().starts_with("https://127.0.0.1:"));
    let ca = reg.ca_pem_path().expect("ca path").to_path_buf();
    assert_eq!(
        get_status(&format!("{}/v2/", reg.base_url()), Some(&ca), None),
        200
    );
    // Also valid for the `localhost` name.
    let url = format!("https://localhost:{}/v2/", reg.port());
    assert_eq!(get_status(&url, Some(&ca), None), 200);
    // Without the CA the handshake fails.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let res = rt.block_on(async {
        reqwest::Client::new()
            .get(format!("{}/v2/", reg.base_url()))
            .send()
            .await
    });
    assert!(res.is_err(), "untrusted TLS must fail: {res:?}");
}

/// Parses `Bearer realm="..",service="..",scope=".."`.
fn parse_challenge(h: &str) -> std::collections::BTreeMap<String, String> {
    let rest = h.strip_prefix("Bearer ").expect("bearer challenge");
    let mut out = std::collections::BTreeMap::new();
    let mut s = rest;
    while let Some((k, v)) = s.split_once("=\"") {
        let (val, tail) = v.split_once('"').expect("closing quote");
        out.insert(
            k.trim_start_matches(',').trim().to_string(),
            val.to_string(),
        );
        s = tail;
    }
    out
}

#[test]
fn token_flow_issues_token_registry_accepts_for_blob_push() {
    let reg = DistributionRegistry::start_token_auth().expect("start");
    let (user, pass) = reg.credentials().expect("creds");
    let token_server = reg.token_server().expect("token server");
    let base = reg.base_url();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        let client = reqwest::Client::new();
        let start_url = format!("{base}/v2/test/repo/blobs/uploads/");
        let r = client.post(&start_url).send().await.expect("post");
        assert_eq!(r.status().as_u16(), 401);
        let challenge = r
            .headers()
            .get("www-authenticate")
            .expect("challenge")
            .to_str()
            .expect("ascii")
            .to_string();
        let params = parse_challenge(&challenge);
        assert_eq!(
            params.get("realm").map(String::as_str),
            Some(token_server.realm())
        );
        let scope = params.get("scope").expect("scope").clone();
        // distribution lists the actions in no fixed order ("pull,push" or "push,pull").
        let (resource, actions) = scope.rsplit_once(':').expect("scope has actions");
        assert_eq!(resource, "repository:test/repo");
        let mut actions: Vec<&str> = actions.split(',').collect();
        actions.sort_unstable();
        assert_eq!(actions, ["pull", "push"], "{scope}");
        let service = params.get("service").expect("service").clone();

        // Wrong password: the token server refuses.
        let bad = client
            .get(format!(
                "{}?service={service}&scope={scope}",
                token_server.realm()
            ))
            .basic_auth(&user, Some("nope"))
            .send()
            .await
            .expect("token");
        assert_eq!(bad.status().as_u16(), 401);

        // Anonymous token: issued, but grants nothing, so the registry refuses the push.
        let anon: serde_json::Value = client
            .get(format!(
                "{}?service={service}&scope={scope}",
                token_server.realm()
            ))
            .send()
            .await
            .expect("token")
            .bytes()
            .await
            .map(|b| serde_json::from_slice(&b).expect("json"))
            .expect("body");
        let anon_token = anon["token"].as_str().expect("token").to_string();
        let r = client
            .post(&start_url)
            .bearer_auth(&anon_token)
            .send()
            .await
            .expect("post");
        assert_eq!(r.status().as_u16(), 401);

        let tok: serde_json::Value = client
            .get(format!(
                "{}?service={service}&scope={scope}",
                token_server.realm()
            ))
            .basic_auth(&user, Some(&pass))
            .send()
            .await
            .expect("token")
            .bytes()
            .await
            .map(|b| serde_json::from_slice(&b).expect("json"))
            .expect("body");
        assert_eq!(tok["expires_in"], 300);
        let token = tok["token"].as_str().expect("token").to_string();
        assert_eq!(tok["access_token"].as_str(), Some(token.as_str()));

        let r = client
            .post(&start_url)
            .bearer_auth(&token)
            .send()
            .await
            .expect("post");
        assert_eq!(r.status().as_u16(), 202, "{:?}", r.text().await);
        let location = r
            .headers()
            .get("location")
            .expect("location")
            .to_str()
            .expect("ascii")
            .to_string();
        let location = if location.starts_with('/') {
            format!("{base}{location}")
        } else {
            location
        };
        let blob = b"hello from the token flow".to_vec();
        use sha2::Digest as _;
        let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&blob)));
        let sep = if location.contains('?') { '&' } else { '?' };
        let r = client
            .put(format!("{location}{sep}digest={digest}"))
            .bearer_auth(&token)
            .header("content-type", "application/octet-stream")
            .body(blob.clone())
            .send()
            .await
            .expect("put");
        assert_eq!(r.status().as_u16(), 201, "{:?}", r.text().await);
        let r = client
            .get(format!("{base}/v2/test/repo/blobs/{digest}"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("get");
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.bytes().await.expect("body").as_ref(), blob.as_slice());
    });
    let scopes = token_server.requested_scopes();
    // The requests repeat the challenge's scope, whose action order distribution does not fix.
    assert!(
        scopes.iter().all(|s| s == "repository:test/repo:pull,push"
            || s == "repository:test/repo:push,pull"),
        "{scopes:?}"
    );
    assert_eq!(scopes.len(), 3);
    assert_eq!(token_server.issued_count(), 2);
    assert_eq!(token_server.rejected_count(), 1);
}

fn status_of(method: &str, url: &str, body: Vec<u8>) -> u16 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        reqwest::Client::new()
            .request(m, url)
            .body(body)
            .send()
            .await
            .expect("send")
            .status()
            .as_u16()
    })
}

#[test]
fn garbage_collect_removes_unreferenced_blob_and_restarts() {
    let mut reg = DistributionRegistry::start_plain().expect("start");
    let blob = b"unreferenced".to_vec();
    use sha2::Digest as _;
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&blob)));
    let base = reg.base_url();
    // distribution 2.8 ignores `?digest=` on POST (202 + session), so POST then PUT.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let put = rt.block_on(async {
        let c = reqwest::Client::new();
        let r = c
            .post(format!("{base}/v2/gc/test/blobs/uploads/?digest={digest}"))
            .body(blob.clone())
            .send()
            .await
            .expect("post");
        assert_eq!(r.status().as_u16(), 202);
        let loc = r.headers()["location"].to_str().expect("ascii").to_string();
        let sep = if loc.contains('?') { '&' } else { '?' };
        c.put(format!("{loc}{sep}digest={digest}"))
            .body(blob.clone())
            .send()
            .await
            .expect("put")
            .status()
            .as_u16()
    });
    assert_eq!(put, 201);
    let blob_url = format!("{base}/v2/gc/test/blobs/{digest}");
    assert_eq!(status_of("HEAD", &blob_url, vec![]), 200);
    let out = reg.garbage_collect(true).expect("gc");
    assert!(reg.is_running());
    assert_eq!(reg.base_url(), base, "same port after restart");
    assert_eq!(
        status_of("HEAD", &blob_url, vec![]),
        404,
        "gc output: {out}"
    );
    let lines = reg.access_log_lines();
    let heads = lines
        .iter()
        .filter(|l| l.contains("HEAD /v2/gc/test/blobs/"))
        .count();
    assert_eq!(heads, 2, "access log: {lines:?}");
}
