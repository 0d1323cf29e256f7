//! Replays the committed fuzz seed corpora (`fuzz/corpus/<target>/`) through
//! the same harnesses the fuzz targets run (`fuzz/harness/<target>.rs`), so
//! every input a fuzzer was seeded with, and every crash found and fixed, is
//! checked by the normal test suite: no panic, and the harness's own
//! properties hold. Run the fuzzers themselves as `fuzz/README.md` says.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use stella_testkit::fuzz_corpus::replay;

#[path = "../../../fuzz/harness/oci_index.rs"]
mod oci_index;

#[path = "../../../fuzz/harness/registry_responses.rs"]
mod registry_responses;

#[test]
fn oci_index_corpus_does_not_panic() {
    replay("oci_index", oci_index::run);
}

#[test]
fn registry_responses_corpus_does_not_panic() {
    replay("registry_responses", registry_responses::run);
}
