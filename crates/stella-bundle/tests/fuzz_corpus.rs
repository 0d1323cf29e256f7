//! Replays the committed fuzz seed corpora (`fuzz/corpus/<target>/`) through
//! the same harnesses the fuzz targets run (`fuzz/harness/<target>.rs`), so
//! every input a fuzzer was seeded with, and every crash found and fixed, is
//! checked by the normal test suite: no panic, and the harness's own
//! properties hold. Run the fuzzers themselves as `fuzz/README.md` says.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use stella_testkit::fuzz_corpus::{corpus, replay};

#[path = "../../../fuzz/harness/bundle_read.rs"]
mod bundle_read;

#[test]
fn bundle_read_corpus_does_not_panic() {
    replay("bundle_read", bundle_read::run);
}

/// Every committed seed is a real bundle that verifies, so the fuzzer
/// starts from inputs that reach the whole reader.
#[test]
fn bundle_read_seeds_are_bundles_that_verify() {
    for (name, bytes) in corpus("bundle_read") {
        assert!(bundle_read::verified(&bytes), "seed {name} does not verify");
    }
}
