//! `stella vex ingest` / `stella vex query --db` against a real distribution
//! registry (Debian's `docker-registry`; no Referrers API, so the fallback
//! tag schema): OpenVEX attestations attached by `stella attest` with a
//! trusted key and an untrusted key, a DSSE envelope signed by an
//! independent implementation (PyPI `cryptography`, PAE written here from
//! the DSSE spec), a plain unsigned `application/openvex+json` referrer, and
//! a trusted attestation about another digest filed under the image.
//! Exactly the trusted, on-subject documents are stored; a re-run stores
//! nothing; a higher document version supersedes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use stella_oci::artifact::{ArtifactSpec, LayerSource, push_referrer};
use stella_oci::store::NoProgress;
use stella_testkit::DistributionRegistry;
use stella_testkit::cli::{Stella, text};
use stella_testkit::fixtures::push_seed_image as push_image;
use stella_types::Descriptor;

fn stella(args: &[&str]) -> Output {
    Stella::new(env!("CARGO_BIN_EXE_stella"))
        .env("DOCKER_CONFIG", "/nonexistent-stella-test-docker-config")
        .output_with(args, &[], None)
}

fn ok(args: &[&str]) -> String {
    let out = stella(args);
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

fn vex_doc(id: &str, version: u64, vuln: &str, status: &str, extra: &str) -> String {
    format!(
        r#"{{"@context":"https://openvex.dev/ns/v0.2.0","@id":"{id}","author":"Claimed Author",
        "timestamp":"2024-05-01T00:00:00Z","version":{version},
        "statements":[{{"vulnerability":{{"name":"{vuln}"}},"status":"{status}"{extra}}}]}}"#
    )
}

fn attest(host_image: &str, dir: &Path, name: &str, doc: &str, key: &str) {
    let pred = dir.join(format!("{name}.json"));
    std::fs::write(&pred, doc).unwrap();
    ok(&[
        "--plain-http",
        "attest",
        "--image",
        host_image,
        "--predicate",
        pred.to_str().unwrap(),
        "--type",
        "openvex",
        "--key",
        dir.join(key).to_str().unwrap(),
    ]);
}

/// A DSSE envelope over an in-toto statement about `digest`, signed with
/// the PEM private key at `key` by Python `cryptography` (ECDSA P-256,
/// SHA-256), the PAE built per the DSSE spec.
fn python_dsse(key: &Path, digest_hex: &str, predicate: &str) -> Vec<u8> {
    let script = r#"
import base64, json, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
key = serialization.load_pem_private_key(open(sys.argv[1], 'rb').read(), password=None)
statement = {"_type": "https://in-toto.io/Statement/v1",
             "subject": [{"name": "app", "digest": {"sha256": sys.argv[2]}}],
             "predicateType": "https://openvex.dev/ns/v0.2.0",
             "predicate": json.loads(sys.argv[3])}
payload = json.dumps(statement).encode()
ptype = b"application/vnd.in-toto+json"
pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(payload), payload)
sig = key.sign(pae, ec.ECDSA(hashes.SHA256()))
print(json.dumps({"payloadType": ptype.decode(), "payload": base64.b64encode(payload).decode(),
                  "signatures": [{"keyid": "", "sig": base64.b64encode(sig).decode()}]}))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, key.to_str().unwrap(), digest_hex, predicate])
        .output()
        .unwrap();
    assert!(out.status.success(), "python: {}", text(&out.stderr));
    out.stdout
}

async fn push_plain(
    repo: &stella_oci::registry::Repository,
    subject: &Descriptor,
    media_type: &str,
    bytes: Vec<u8>,
) {
    let spec = ArtifactSpec {
        artifact_type: media_type.to_string(),
        layers: vec![LayerSource::Bytes {
            bytes,
            media_type: media_type.to_string(),
            title: None,
        }],
        annotations: BTreeMap::new(),
    };
    push_referrer(repo, subject, &spec, &NoProgress)
        .await
        .unwrap();
}

fn query(db: &Path, product: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "vex",
        "query",
        "--db",
        db.to_str().unwrap(),
        "--product",
        product,
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    serde_json::from_str(&ok(&args)).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_stores_exactly_the_trusted_documents_about_the_image() {
    let reg = DistributionRegistry::start_plain().unwrap();
    let host = reg.host_port();
    let repo = stella_testkit::distribution::plain_repository(&host, "vex/app").unwrap();
    let subject = push_image(&repo, "vex", "v1").await;
    let other = push_image(&repo, "other", "v2").await;
    let image = format!("{host}/vex/app:v1");
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    for name in ["k", "untrusted"] {
        ok(&[
            "key",
            "generate",
            "--algorithm",
            "ecdsa-p256",
            "--output-key",
            p(&format!("{name}.key")).to_str().unwrap(),
            "--output-pub",
            p(&format!("{name}.pub")).to_str().unwrap(),
        ]);
    }
    let na = r#","justification":"vulnerable_code_not_present""#;
    attest(
        &image,
        dir.path(),
        "trusted",
        &vex_doc("https://v/1", 1, "CVE-2024-1", "not_affected", na),
        "k.key",
    );
    attest(
        &image,
        dir.path(),
        "untrusted",
        &vex_doc("https://v/2", 1, "CVE-2024-2", "fixed", ""),
        "untrusted.key",
    );
    // A trusted attestation on the other image is not this image's.
    attest(
        &format!("{host}/vex/app:v2"),
        dir.path(),
        "elsewhere",
        &vex_doc("https://v/3", 1, "CVE-2024-3", "fixed", ""),
        "k.key",
    );
    let dsse = python_dsse(
        &p("k.key"),
        other.digest.hex(),
        &vex_doc("https://v/4", 1, "CVE-2024-4", "fixed", ""),
    );
    push_plain(
        &repo,
        &subject,
        "application/vnd.dsse.envelope.v1+json",
        dsse.clone(),
    )
    .await;
    // The same independent DSSE, but about this image: trusted.
    let dsse_ok = python_dsse(
        &p("k.key"),
        subject.digest.hex(),
        &vex_doc(
            "https://v/5",
            1,
            "CVE-2024-5",
            "affected",
            r#","action_statement":"upgrade""#,
        ),
    );
    push_plain(
        &repo,
        &subject,
        "application/vnd.dsse.envelope.v1+json",
        dsse_ok,
    )
    .await;
    push_plain(
        &repo,
        &subject,
        "application/openvex+json",
        vex_doc("https://v/6", 1, "CVE-2024-6", "fixed", "").into_bytes(),
    )
    .await;

    let db = p("vex.db");
    let key_pub = p("k.pub").to_str().unwrap().to_string();
    let db_path = db.to_str().unwrap().to_string();
    let run = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec![
            "--plain-http",
            "vex",
            "ingest",
            "--image",
            &image,
            "--key",
            &key_pub,
            "--db",
            &db_path,
            "--output",
            "json",
        ];
        args.extend_from_slice(extra);
        serde_json::from_str(&ok(&args)).unwrap()
    };
    let first = run(&[]);
    let total = &first["total"];
    assert_eq!(total["inserted"], 2, "{first:#}");
    assert_eq!(total["statements"], 2);
    // The untrusted key, the DSSE about the other digest, the unsigned one.
    assert_eq!(total["rejected"], 3, "{first:#}");
    let product = format!("sha256:{}", subject.digest.hex());
    let rows = query(&db, &product, &[]);
    let mut vulns: Vec<String> = rows["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            i["statement"]["vulnerability"]["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    vulns.sort();
    assert_eq!(vulns, ["CVE-2024-1", "CVE-2024-5"]);
    for item in rows["items"].as_array().unwrap() {
        let issuer = item["issuer"].as_str().unwrap();
        assert!(
            issuer.starts_with("key sha256:"),
            "issuer is the verified key, not the author: {issuer}"
        );
        assert!(item["signed"].as_bool().unwrap());
    }
    // Idempotent.
    let again = run(&[]);
    assert_eq!(again["total"]["inserted"], 0);
    assert_eq!(again["total"]["unchanged"], 2, "{again:#}");
    // Unsigned documents only when allowed, marked unsigned.
    let unsigned = run(&["--allow-unsigned"]);
    assert_eq!(unsigned["total"]["inserted"], 1, "{unsigned:#}");
    let rows = query(&db, &product, &["--vulnerability", "cve-2024-6"]);
    assert_eq!(rows["items"][0]["issuer"], "unsigned:Claimed Author");
    assert_eq!(rows["items"][0]["signed"], false);
    // A higher version supersedes.
    attest(
        &image,
        dir.path(),
        "v2",
        &vex_doc(
            "https://v/1",
            2,
            "CVE-2024-1",
            "affected",
            r#","action_statement":"patch""#,
        ),
        "k.key",
    );
    let later = run(&[]);
    assert_eq!(later["total"]["superseded"], 1, "{later:#}");
    let c = query(
        &db,
        &format!(
            "pkg:oci/app@sha256%3A{}?repository_url={host}/vex",
            subject.digest.hex()
        ),
        &["--vulnerability", "CVE-2024-1", "--consensus"],
    );
    assert_eq!(c["items"][0]["status"], "affected", "{c:#}");
    assert_eq!(c["items"][0]["contributions"].as_array().unwrap().len(), 1);
    assert_eq!(c["items"][0]["contributions"][0]["documentVersion"], 2);
}

/// 10,000 referrers on one image in a real registry (distribution 2.8, so
/// the `sha256-<hex>` fallback index holds all 10,000 descriptors, about
/// 2.6 MB): `stella vex ingest` reads the index once, reports the referrer
/// cap (1,000 per image), fetches none of the 10,000 referrer manifests,
/// stores nothing, and ends in bounded time.
#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_referrers_in_a_real_registry_hit_the_cap_and_store_nothing() {
    use futures_util::StreamExt;
    use stella_oci::store::{BlobSource, ContentWrite};
    use stella_types::media_types::{EMPTY_JSON, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST};
    use stella_types::{ImageIndex, ImageManifest};
    const REFERRERS: usize = 10_000;
    const OPENVEX: &str = "application/openvex+json";

    let reg = DistributionRegistry::start_plain().unwrap();
    let host = reg.host_port();
    let repo = stella_testkit::distribution::plain_repository(&host, "vex/crowded").unwrap();
    let subject = push_image(&repo, "crowded", "v1").await;
    let empty = Descriptor::for_bytes(OCI_EMPTY, EMPTY_JSON);
    repo.push_blob(&empty, BlobSource::Bytes(EMPTY_JSON), &NoProgress)
        .await
        .unwrap();
    let doc = vex_doc("https://v/crowd", 1, "CVE-2024-1", "fixed", "").into_bytes();
    let layer = Descriptor::for_bytes(OPENVEX, &doc);
    repo.push_blob(&layer, BlobSource::Bytes(&doc), &NoProgress)
        .await
        .unwrap();
    // 10,000 distinct referrer manifests (one annotation apart), 16 PUTs
    // at a time, then the fallback index written once.
    let pushed: Vec<Descriptor> = futures_util::stream::iter(0..REFERRERS)
        .map(|i| {
            let (repo, empty, layer, subject) = (&repo, &empty, &layer, &subject);
            async move {
                let m = ImageManifest {
                    schema_version: 2,
                    media_type: Some(OCI_MANIFEST.into()),
                    artifact_type: Some(OPENVEX.into()),
                    config: empty.clone(),
                    layers: vec![layer.clone()],
                    subject: Some(subject.clone()),
                    annotations: BTreeMap::from([("n".to_string(), i.to_string())]),
                };
                let mut d = repo
                    .push_manifest(OCI_MANIFEST, &m.to_json_bytes(), None)
                    .await
                    .unwrap();
                d.artifact_type = Some(OPENVEX.into());
                d
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let index = ImageIndex {
        schema_version: 2,
        media_type: Some(OCI_INDEX.into()),
        artifact_type: None,
        manifests: pushed,
        subject: None,
        annotations: BTreeMap::new(),
    };
    let fallback_tag = format!("sha256-{}", subject.digest.hex());
    repo.push_manifest(OCI_INDEX, &index.to_json_bytes(), Some(&fallback_tag))
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    ok(&[
        "key",
        "generate",
        "--algorithm",
        "ecdsa-p256",
        "--output-key",
        p("k.key").to_str().unwrap(),
        "--output-pub",
        p("k.pub").to_str().unwrap(),
    ]);
    let before = reg.access_log_lines().len();
    let started = std::time::Instant::now();
    let image = format!("{host}/vex/crowded:v1");
    let out: serde_json::Value = serde_json::from_str(&ok(&[
        "--plain-http",
        "vex",
        "ingest",
        "--image",
        &image,
        "--key",
        p("k.pub").to_str().unwrap(),
        "--db",
        p("vex.db").to_str().unwrap(),
        "--output",
        "json",
    ]))
    .unwrap();
    let took = started.elapsed();
    println!("ingest of the crowded image took {took:?}: {out}");
    let caps = out.to_string();
    assert!(
        caps.contains("10000 referrers") && caps.contains("over the cap of 1000"),
        "{out:#}"
    );
    assert_eq!(out["total"]["inserted"], 0, "{out:#}");
    assert_eq!(
        query(&p("vex.db"), &subject.digest.to_string(), &[])["items"],
        serde_json::json!([]),
        "{out:#}"
    );
    let referrer_gets = reg.access_log_lines()[before..]
        .iter()
        .filter(|l| {
            l.contains("\"GET /v2/vex/crowded/manifests/sha256:")
                && !l.contains(subject.digest.hex())
        })
        .count();
    assert_eq!(referrer_gets, 0, "referrer manifests were fetched");
    assert!(
        took < std::time::Duration::from_secs(60),
        "ingest took {took:?}"
    );
}
