//! The OpenVEX adapter over `stella-vex`: documents bare and inside an
//! in-toto statement, purl matching with and without qualifiers, image
//! products, wildcard products, unreadable documents from trusted and
//! untrusted signers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};
use stella_report::gather::VexDocument;
use stella_report::openvex::OpenVexLookup;
use stella_report::vex::{VexLookup, VexStatus};
use stella_types::Digest;

fn image() -> Digest {
    Digest::sha256_of(b"openvex image")
}

fn doc(statements: Value) -> Value {
    json!({"@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://example.com/vex/1",
           "author": "Example PSIRT", "timestamp": "2026-11-01T00:00:00Z", "version": 1,
           "statements": statements})
}

fn vexdoc(n: u8, v: &Value, signers: &[&str]) -> VexDocument {
    VexDocument {
        digest: Digest::sha256_of(&[n]),
        bytes: serde_json::to_vec(v).unwrap(),
        signers: signers.iter().map(|s| s.to_string()).collect(),
    }
}

fn trusted() -> Vec<String> {
    vec!["vendor".into()]
}

#[test]
fn statements_match_purls_images_and_aliases() {
    let bare = doc(json!([
        {"vulnerability": {"name": "CVE-2024-1", "aliases": ["GHSA-aaaa-bbbb-cccc"]},
         "products": [{"@id": "pkg:deb/debian/curl@7.0"}], "status": "fixed"},
        {"vulnerability": {"name": "CVE-2024-2"}, "products": [{"@id": "*"}],
         "status": "not_affected", "justification": "component_not_present"}
    ]));
    // In a statement, a statement without products is about the subject (the image).
    let attested = json!({"_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "img", "digest": {"sha256": image().hex()}}],
        "predicateType": "https://openvex.dev/ns/v0.2.0",
        "predicate": doc(json!([{"vulnerability": {"name": "CVE-2024-3"}, "status": "under_investigation"}]))});
    let (lookup, skipped) = OpenVexLookup::from_documents(
        &[
            vexdoc(1, &bare, &["vendor"]),
            vexdoc(2, &attested, &["vendor"]),
        ],
        &image(),
        &trusted(),
    )
    .unwrap();
    assert!(skipped.is_empty());
    assert_eq!(lookup.len(), 3);
    // By alias, and with the finding's purl qualifiers ignored.
    let s = lookup.statements(
        &image(),
        "pkg:deb/debian/curl@7.0?arch=amd64",
        &["GHSA-aaaa-bbbb-cccc".into()],
    );
    assert_eq!(s.len(), 1);
    assert_eq!(
        (s[0].status, s[0].signers.clone()),
        (VexStatus::Fixed, vec!["vendor".to_string()])
    );
    assert_eq!(s[0].issuer.as_deref(), Some("Example PSIRT"));
    // Another version of the package is another product.
    assert!(
        lookup
            .statements(&image(), "pkg:deb/debian/curl@7.1", &["CVE-2024-1".into()])
            .is_empty()
    );
    // A wildcard product matches nothing.
    assert!(
        lookup
            .statements(&image(), "pkg:npm/anything@1", &["CVE-2024-2".into()])
            .is_empty()
    );
    // The subject-cascaded statement is about the image, so every package in it.
    let s = lookup.statements(&image(), "pkg:npm/x@1", &["CVE-2024-3".into()]);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].status, VexStatus::UnderInvestigation);
    assert!(
        lookup
            .statements(
                &Digest::sha256_of(b"other"),
                "pkg:npm/x@1",
                &["CVE-2024-3".into()]
            )
            .is_empty()
    );
}

#[test]
fn unreadable_documents() {
    let bad = json!({"@context": "https://openvex.dev/ns/v0.2.0", "statements": [{"status": "sometimes"}]});
    // From an untrusted signer: skipped and reported.
    let (lookup, skipped) =
        OpenVexLookup::from_documents(&[vexdoc(1, &bad, &["stranger"])], &image(), &trusted())
            .unwrap();
    assert!(lookup.is_empty());
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].digest, Digest::sha256_of(&[1]));
    // From a trusted signer: an error, never silently dropped.
    let e = OpenVexLookup::from_documents(&[vexdoc(2, &bad, &["vendor"])], &image(), &trusted())
        .unwrap_err();
    assert_eq!(e.digest, Digest::sha256_of(&[2]));
}
