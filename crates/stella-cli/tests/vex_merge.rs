//! `stella vex merge` as the built binary on the OpenVEX examples in
//! ../shared/conformance/openvex: same bytes whatever the argument order,
//! a trust file that decides a conflict, atomic --output-file, exit 2 on an
//! invalid document.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use stella_testkit::cli::Stella;

fn stella() -> Stella {
    Stella::new(env!("CARGO_BIN_EXE_stella"))
}

fn example(rel: &str) -> String {
    format!(
        "{}/../../../shared/conformance/openvex/examples/{rel}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn write_doc(dir: &std::path::Path, name: &str, author: &str, status: &str, extra: &str) -> String {
    let path = dir.join(name);
    let json = format!(
        r#"{{"@context":"https://openvex.dev/ns/v0.2.0","@id":"https://example.com/{name}","author":"{author}",
        "timestamp":"2024-03-01T00:00:00Z","version":1,"statements":[{{"vulnerability":{{"name":"CVE-2024-9"}},
        "products":[{{"@id":"pkg:oci/app@sha256%3A{hex}"}}],"status":"{status}"{extra}}}]}}"#,
        hex = "b".repeat(64)
    );
    std::fs::write(&path, json).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn merge_output_is_the_same_in_any_argument_order_and_a_valid_document() {
    let docs = [
        example("vexctl/examples/openvex/document1.vex.json"),
        example("vexctl/examples/openvex/document2.vex.json"),
        example("vexctl/examples/openvex/demo.vex.json"),
        example("go-vex/pkg/vex/testdata/v0.2.0.json"),
    ];
    let mut args = vec!["vex".to_string(), "merge".to_string()];
    args.extend(docs.iter().cloned());
    let first = stella().ok(&args);
    let mut reversed = vec!["vex".to_string(), "merge".to_string()];
    reversed.extend(docs.iter().rev().cloned());
    assert_eq!(stella().ok(&reversed), first);
    let merged: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(merged["@context"], "https://openvex.dev/ns/v0.2.0");
    // Re-merging the merged document alone is a fixed point for its statements.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("merged.json");
    std::fs::write(&path, &first).unwrap();
    let again: serde_json::Value =
        serde_json::from_str(&stella().ok(&["vex", "merge", path.to_str().unwrap()])).unwrap();
    assert_eq!(again["statements"], merged["statements"]);
}

#[test]
fn trust_file_decides_between_disagreeing_authors() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_doc(
        dir.path(),
        "a.json",
        "Vendor",
        "not_affected",
        r#","justification":"component_not_present""#,
    );
    let b = write_doc(
        dir.path(),
        "b.json",
        "Scanner",
        "affected",
        r#","action_statement":"upgrade""#,
    );
    let out: serde_json::Value =
        serde_json::from_str(&stella().ok(&["vex", "merge", &a, &b])).unwrap();
    assert_eq!(out["statements"][0]["status"], "affected");
    assert!(
        out["statements"][0]["status_notes"]
            .as_str()
            .unwrap()
            .starts_with("conflict: ")
    );
    let trust = dir.path().join("issuers.yaml");
    std::fs::write(&trust, "issuers:\n  - issuer: Vendor\n    weight: 10\n").unwrap();
    let target = dir.path().join("merged.json");
    let summary: serde_json::Value = serde_json::from_str(&stella().ok(&[
        "vex",
        "merge",
        &b,
        &a,
        "--trust",
        trust.to_str().unwrap(),
        "--output-file",
        target.to_str().unwrap(),
        "--output",
        "json",
    ]))
    .unwrap();
    assert_eq!(summary["statements"], 1);
    assert_eq!(summary["conflicts"], 0);
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&target).unwrap()).unwrap();
    assert_eq!(written["statements"][0]["status"], "not_affected");
    assert!(written["statements"][0].get("status_notes").is_none());
}

#[test]
fn invalid_documents_and_trust_files_exit_2() {
    stella().fails(
        &[
            "vex",
            "merge",
            &example("vexctl/pkg/ctl/testdata/test.vex.json"),
        ],
        "invalid OpenVEX document",
    );
    let dir = tempfile::tempdir().unwrap();
    let a = write_doc(dir.path(), "a.json", "Vendor", "not_affected", "");
    stella().fails(&["vex", "merge", &a], "not_affected needs a justification");
    let ok = write_doc(dir.path(), "ok.json", "Vendor", "fixed", "");
    let trust = dir.path().join("t.yaml");
    std::fs::write(&trust, "issuers:\n  - issuer: V\n  - issuer: V\n").unwrap();
    stella().fails(
        &["vex", "merge", &ok, "--trust", trust.to_str().unwrap()],
        "listed twice",
    );
}
