//! The OpenVEX examples in ../shared/conformance/openvex (upstream spec,
//! vexctl and go-vex files; index.json records the schema and go-vex rule
//! results per file), and order independence of merge and consensus.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;

use stella_vex::{
    Document, IssuedStatement, IssuerTrust, MergeOptions, Status, TrustConfig, consensus, merge,
    parse, purl,
};

fn root() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/conformance/openvex"
    ))
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn index() -> Vec<serde_json::Value> {
    serde_json::from_slice(&read("index.json")).expect("index.json")
}

#[test]
fn every_document_that_passes_the_go_vex_rules_parses_and_the_others_are_refused() {
    let mut accepted = 0;
    let mut refused = 0;
    for entry in index() {
        if entry["kind"] != "OpenVEX document" {
            continue;
        }
        let file = entry["file"].as_str().expect("file");
        let rules_ok = entry["go_vex_statement_rules_ok"].as_bool().expect("rules");
        let statements = entry["statements"].as_u64().expect("statements");
        match parse(&read(file)) {
            Ok(doc) => {
                assert!(rules_ok, "{file} breaks the go-vex rules but was accepted");
                assert_eq!(doc.statements.len() as u64, statements, "{file}");
                let statuses: Vec<&str> = entry["statuses"]
                    .as_array()
                    .expect("statuses")
                    .iter()
                    .filter_map(|s| s.as_str())
                    .collect();
                for s in &doc.statements {
                    assert!(statuses.contains(&s.status.as_str()), "{file}");
                }
                accepted += 1;
            }
            Err(e) => {
                assert!(
                    !rules_ok,
                    "{file} passes the go-vex rules but was refused: {e}"
                );
                refused += 1;
            }
        }
    }
    assert!(accepted >= 20, "only {accepted} accepted");
    assert_eq!(refused, 1, "exactly test.vex.json is refused");
}

#[test]
fn test_vex_json_is_refused_for_its_not_affected_action_statement() {
    let err = parse(&read("examples/vexctl/pkg/ctl/testdata/test.vex.json")).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("$.statements[0]"), "{text}");
}

#[test]
fn go_vex_v020_example_has_its_five_statements_about_the_alpine_digest() {
    let doc = parse(&read("examples/go-vex/pkg/vex/testdata/v0.2.0.json")).expect("parse");
    let names: Vec<&str> = doc
        .statements
        .iter()
        .map(|s| s.vulnerability.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "CVE-2023-1255",
            "CVE-2023-2650",
            "CVE-2023-2975",
            "CVE-2023-3446",
            "CVE-2023-3817"
        ]
    );
    let key = purl::normalize(
        "pkg:oci/alpine@sha256%3A124c7d2707904eea7431fffe91522a01e5a861a624ee31d03372cc1d138a3126",
    );
    let issued = IssuedStatement::from_document("issuer-a", &doc).expect("issued");
    assert!(issued.iter().all(|s| s.is_about_product(&key)));
    // The same image asked about by bare digest and with qualifiers.
    let by_digest =
        purl::normalize("sha256:124c7d2707904eea7431fffe91522a01e5a861a624ee31d03372cc1d138a3126");
    assert_eq!(key, by_digest);
}

#[test]
fn legacy_v001_converts_to_one_fixed_statement_with_two_products_and_version_1() {
    let doc = parse(&read("examples/go-vex/pkg/vex/testdata/v0.0.1.json")).expect("parse");
    assert_eq!(doc.version, 1);
    assert_eq!(doc.statements.len(), 1);
    let s = &doc.statements[0];
    assert_eq!(s.vulnerability.name, "CVE-2023-12345");
    assert_eq!(s.status, Status::Fixed);
    assert_eq!(s.products.len(), 2);
}

fn doc(json: serde_json::Value) -> Document {
    parse(&serde_json::to_vec(&json).expect("json")).expect("valid")
}

fn vex(id: &str, ts: &str, version: u64, statements: serde_json::Value) -> Document {
    doc(serde_json::json!({
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": id,
        "author": "someone",
        "timestamp": ts,
        "version": version,
        "statements": statements
    }))
}

const IMG: &str =
    "pkg:oci/app@sha256%3Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

#[test]
fn spec_rules_refuse_bad_statements_with_their_path() {
    let base = |statement: serde_json::Value| {
        serde_json::json!({
            "@context": "https://openvex.dev/ns/v0.2.0", "@id": "x", "author": "a",
            "timestamp": "2024-01-01T00:00:00Z", "version": 1, "statements": [statement]
        })
    };
    let cases = [
        (
            serde_json::json!({"vulnerability": {"name": "CVE-1"}, "products": [{"@id": IMG}], "status": "not_affected"}),
            "$.statements[0].justification",
        ),
        (
            serde_json::json!({"vulnerability": {"name": "CVE-1"}, "products": [{"@id": IMG}], "status": "affected"}),
            "$.statements[0].action_statement",
        ),
        (
            serde_json::json!({"vulnerability": {"name": "CVE-1"}, "products": [{"@id": IMG}], "status": "maybe"}),
            "$.statements[0].status",
        ),
        (
            serde_json::json!({"vulnerability": {"name": "CVE-1"}, "status": "fixed"}),
            "$.statements[0].products",
        ),
        (
            serde_json::json!({"vulnerability": {"name": "CVE-1"}, "products": [{"@id": IMG}], "status": "not_affected", "justification": "because"}),
            "$.statements[0].justification",
        ),
    ];
    for (statement, path) in cases {
        let bytes = serde_json::to_vec(&base(statement.clone())).expect("json");
        let err = parse(&bytes).unwrap_err();
        assert!(err.to_string().starts_with(path), "{statement}: {err}");
    }
    assert!(parse(b"{not json").is_err());
    // An impact statement alone is enough for not_affected.
    let ok = base(
        serde_json::json!({"vulnerability": {"name": "CVE-1"}, "products": [{"@id": IMG}],
        "status": "not_affected", "impact_statement": "not reachable"}),
    );
    assert!(parse(&serde_json::to_vec(&ok).expect("json")).is_ok());
}

fn sample_inputs() -> Vec<(String, Document)> {
    let a1 = vex(
        "doc-a",
        "2024-01-01T00:00:00Z",
        1,
        serde_json::json!([
            {"vulnerability": {"name": "CVE-2024-1"}, "products": [{"@id": IMG}], "status": "under_investigation"},
            {"vulnerability": {"name": "CVE-2024-2"}, "products": [{"@id": IMG}], "status": "fixed"}
        ]),
    );
    let a2 = vex(
        "doc-a",
        "2024-02-01T00:00:00-05:00",
        2,
        serde_json::json!([
            {"vulnerability": {"name": "CVE-2024-1"}, "products": [{"@id": IMG, "subcomponents": [{"@id": "pkg:apk/wolfi/openssl@3"}]}],
             "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"}
        ]),
    );
    let b = vex(
        "doc-b",
        "2024-01-15T00:00:00Z",
        1,
        serde_json::json!([
            {"vulnerability": {"name": "CVE-2024-1", "aliases": ["GHSA-xxxx"]},
             "products": [{"@id": "pkg:oci/app@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa?repository_url=reg.example/app&tag=1"}],
             "status": "affected", "action_statement": "upgrade"},
            {"vulnerability": {"name": "CVE-2024-2"}, "products": [{"@id": IMG}], "status": "fixed"}
        ]),
    );
    vec![
        ("issuer-a".to_string(), a1.clone()),
        ("issuer-a".to_string(), a2),
        ("issuer-b".to_string(), b),
        // The same document delivered twice.
        ("issuer-a".to_string(), a1),
    ]
}

#[test]
fn effective_statement_per_issuer_is_the_latest_and_equal_issuers_conflict() {
    let mut issued = Vec::new();
    for (issuer, d) in sample_inputs() {
        issued.extend(IssuedStatement::from_document(&issuer, &d).expect("issued"));
    }
    let c = consensus::consensus(&issued, IMG, "CVE-2024-1", &TrustConfig::default())
        .expect("consensus");
    assert!(c.conflict, "{c:?}");
    assert_eq!(c.status, Status::Affected);
    let a = c
        .contributions
        .iter()
        .find(|x| x.issuer == "issuer-a")
        .expect("a");
    assert_eq!(
        a.status,
        Status::NotAffected,
        "the newer document wins for issuer a"
    );
    assert_eq!(a.document_version, 2);
    assert_eq!(c.contributions.len(), 2);
    // Asked about by alias and by the subcomponent.
    assert!(consensus::consensus(&issued, IMG, "ghsa-XXXX", &TrustConfig::default()).is_some());
    let sub = consensus::consensus(
        &issued,
        "pkg:apk/wolfi/openssl@3",
        "CVE-2024-1",
        &TrustConfig::default(),
    )
    .expect("subcomponent");
    assert_eq!(sub.status, Status::NotAffected);
    // A trust configuration that ranks issuer a first decides without conflict.
    let trust = TrustConfig {
        issuers: vec![
            IssuerTrust {
                issuer: "issuer-a".into(),
                weight: None,
            },
            IssuerTrust {
                issuer: "issuer-b".into(),
                weight: None,
            },
        ],
        default_weight: 0,
    };
    let c = consensus::consensus(&issued, IMG, "CVE-2024-1", &trust).expect("consensus");
    assert!(!c.conflict);
    assert_eq!(c.status, Status::NotAffected);
    assert!(c.rationale.contains("overridden"), "{}", c.rationale);
    // Untrusted issuers contribute nothing.
    let only_c = TrustConfig {
        issuers: vec![IssuerTrust {
            issuer: "issuer-c".into(),
            weight: Some(5),
        }],
        default_weight: 0,
    };
    assert!(consensus::consensus(&issued, IMG, "CVE-2024-1", &only_c).is_none());
}

#[test]
fn merge_and_consensus_bytes_do_not_depend_on_input_order() {
    let inputs = sample_inputs();
    let reference = merge(&inputs, &TrustConfig::default(), &MergeOptions::default())
        .expect("merge")
        .expect("some");
    let ref_bytes = reference.to_canonical_json().expect("json");
    // The merge result is itself a valid document with one statement per pair.
    let reparsed = parse(&ref_bytes).expect("merged document is valid");
    // Two pairs: both products name the same image digest.
    assert_eq!(
        reparsed.statements.len(),
        2,
        "{}",
        String::from_utf8_lossy(&ref_bytes)
    );
    let first = &reparsed.statements[0];
    assert_eq!(first.vulnerability.name, "CVE-2024-1");
    assert_eq!(first.status, Status::Affected);
    assert!(
        first
            .status_notes
            .as_deref()
            .is_some_and(|n| n.starts_with("conflict: "))
    );
    let mut issued = Vec::new();
    for (issuer, d) in &inputs {
        issued.extend(IssuedStatement::from_document(issuer, d).expect("issued"));
    }
    let ref_consensus =
        serde_json::to_vec(&stella_vex::consensus_all(&issued, &TrustConfig::default()))
            .expect("json");
    let mut rng = fastrand::Rng::with_seed(13);
    for _ in 0..50 {
        let mut shuffled = inputs.clone();
        rng.shuffle(&mut shuffled);
        let merged = merge(&shuffled, &TrustConfig::default(), &MergeOptions::default())
            .expect("merge")
            .expect("some");
        assert_eq!(merged.to_canonical_json().expect("json"), ref_bytes);
        let mut s = issued.clone();
        rng.shuffle(&mut s);
        let c = serde_json::to_vec(&stella_vex::consensus_all(&s, &TrustConfig::default()))
            .expect("json");
        assert_eq!(c, ref_consensus);
    }
}

#[test]
fn merging_the_vexctl_examples_gives_a_valid_document_without_duplicates() {
    let files = [
        "examples/vexctl/examples/openvex/document1.vex.json",
        "examples/vexctl/examples/openvex/document2.vex.json",
        "examples/vexctl/examples/openvex/demo.vex.json",
        "examples/go-vex/pkg/vex/testdata/v0.2.0.json",
    ];
    let docs: Vec<(String, Document)> = files
        .iter()
        .map(|f| {
            let d = parse(&read(f)).expect(f);
            (d.author.clone(), d)
        })
        .collect();
    let merged = merge(&docs, &TrustConfig::default(), &MergeOptions::default())
        .expect("merge")
        .expect("some");
    let bytes = merged.to_canonical_json().expect("json");
    let again = parse(&bytes).expect("valid");
    let mut digests: Vec<String> = again
        .statements
        .iter()
        .map(|s| s.digest().expect("d"))
        .collect();
    let n = digests.len();
    digests.sort();
    digests.dedup();
    assert_eq!(digests.len(), n, "duplicate statements");
    let mut pairs: Vec<(String, String)> = again
        .statements
        .iter()
        .map(|s| {
            (
                purl::primary_key(&s.products[0].component),
                s.vulnerability.name.clone(),
            )
        })
        .collect();
    pairs.sort();
    pairs.dedup();
    assert_eq!(pairs.len(), n, "one statement per pair");
}
