//! Replays the committed fuzz seed corpora (`fuzz/corpus/<target>/`) through
//! the same harnesses the fuzz targets run (`fuzz/harness/<target>.rs`), so
//! every input a fuzzer was seeded with, and every crash found and fixed, is
//! checked by the normal test suite: no panic, and the harness's own
//! properties hold. Run the fuzzers themselves as `fuzz/README.md` says.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use stella_testkit::fuzz_corpus::replay;

#[path = "../../../fuzz/harness/pem_keys.rs"]
mod pem_keys;

#[test]
fn pem_keys_corpus_does_not_panic() {
    replay("pem_keys", pem_keys::run);
}
