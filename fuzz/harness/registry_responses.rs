//! Harness: what a registry sends back that Stella parses: the
//! `WWW-Authenticate` challenge, the `Link` header of a referrers page, a
//! `Retry-After` value, an OCI error body, and a referrers index (the
//! Referrers API response and the tag-schema fallback index). The first
//! byte picks which.
//!
//! Shared by `fuzz/fuzz_targets/registry_responses.rs` and the corpus
//! replay test in `crates/stella-oci/tests/fuzz_corpus.rs`.

use stella_oci::fuzzing;
use stella_oci::registry::auth::{Challenge, parse_challenge};
use stella_oci::registry::referrers::normalize_entries;
use stella_types::ImageIndex;

/// Runs one input; must never panic or hang.
pub fn run(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match selector % 5 {
        0 => {
            if let Some(Challenge::Basic) = parse_challenge(&text) {
                assert!(
                    text.trim().to_ascii_lowercase().starts_with("basic"),
                    "a Basic challenge from a header that does not say so"
                );
            }
        }
        1 => {
            if let Some(next) = fuzzing::link_next(&text) {
                assert!(text.contains(&next), "link target not in the header");
            }
        }
        2 => {
            let _ = fuzzing::retry_after(&text);
        }
        3 => {
            let (codes, summary) = fuzzing::error_body(rest);
            if !codes.is_empty() {
                assert!(summary.is_some(), "codes without a summary");
            }
        }
        _ => {
            if let Ok(index) = serde_json::from_slice::<ImageIndex>(rest) {
                let count = index.manifests.len();
                let normalized = normalize_entries(index.manifests);
                assert!(normalized.len() <= count, "normalising added entries");
                assert_eq!(
                    normalize_entries(normalized.clone()),
                    normalized,
                    "normalising is idempotent"
                );
            }
        }
    }
}
