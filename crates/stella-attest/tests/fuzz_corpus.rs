//! Replays the committed fuzz seed corpora (`fuzz/corpus/<target>/`) through
//! the same harnesses the fuzz targets run (`fuzz/harness/<target>.rs`), so
//! every input a fuzzer was seeded with, and every crash found and fixed, is
//! checked by the normal test suite: no panic, and the harness's own
//! properties hold. Run the fuzzers themselves as `fuzz/README.md` says.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use stella_testkit::fuzz_corpus::{corpus, replay};

#[path = "../../../fuzz/harness/dsse_envelope.rs"]
mod dsse_envelope;

#[test]
fn dsse_envelope_corpus_does_not_panic() {
    replay("dsse_envelope", dsse_envelope::run);
}

/// The seeds signed with the harness's corpus key verify, so the fuzzer
/// starts from inputs that reach the signature-verified paths.
#[test]
fn dsse_envelope_signed_seeds_verify() {
    let signed: Vec<(String, Vec<u8>)> = corpus("dsse_envelope")
        .into_iter()
        .filter(|(name, _)| name.starts_with("bundle-v03-") || name.starts_with("envelope-0"))
        .collect();
    assert!(signed.len() >= 2, "no signed seeds in the corpus");
    for (name, bytes) in signed {
        assert!(
            dsse_envelope::verified(&bytes),
            "seed {name} does not verify"
        );
    }
}
