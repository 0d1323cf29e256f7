//! Harness: OCI manifest and image index parsing (`stella_types::Manifest`,
//! what `stella-oci` uses for a layout's `index.json`, tag-schema indexes
//! and every fetched manifest), with or without a served media type.
//! Checks "what we write, we can read back": a parsed manifest serialised
//! again parses to the same value.
//!
//! Shared by `fuzz/fuzz_targets/oci_index.rs` and the corpus replay test in
//! `crates/stella-oci/tests/fuzz_corpus.rs`.

use stella_types::media_types::{OCI_INDEX, OCI_MANIFEST};
use stella_types::{Manifest, Reference};

/// Runs one input; must never panic or hang.
pub fn run(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let served = match selector % 4 {
        0 => None,
        1 => Some(OCI_INDEX),
        2 => Some(OCI_MANIFEST),
        _ => Some("application/vnd.docker.distribution.manifest.list.v2+json"),
    };
    if let Ok(manifest) = Manifest::parse(rest, served) {
        check_round_trip(&manifest);
        for child in manifest.children() {
            let _ = child.digest.to_string();
        }
    }
    if let Ok(text) = std::str::from_utf8(rest) {
        let _ = stella_oci::layout::parse_legacy_tag(text);
        let _ = text.parse::<Reference>();
    }
}

fn check_round_trip(manifest: &Manifest) {
    let bytes = match manifest {
        Manifest::Image(m) => m.to_json_bytes(),
        Manifest::Index(i) => i.to_json_bytes(),
    };
    let again = Manifest::parse(&bytes, Some(manifest.media_type()));
    assert!(
        again.as_ref().is_ok_and(|m| m == manifest),
        "manifest round trip: {again:?}\nwrote: {}",
        String::from_utf8_lossy(&bytes)
    );
}
