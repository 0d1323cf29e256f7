//! Replays the committed fuzz seed corpora (`fuzz/corpus/<target>/`) through
//! the same harnesses the fuzz targets run (`fuzz/harness/<target>.rs`), so
//! every input a fuzzer was seeded with, and every crash found and fixed, is
//! checked by the normal test suite: no panic, and the harness's own
//! properties hold. Run the fuzzers themselves as `fuzz/README.md` says.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

#[path = "../../../fuzz/harness/policy_parse.rs"]
mod policy_parse;

/// The seed files of one target, sorted; panics when there are none (a
/// missing corpus must not pass as "nothing panicked").
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus {} is empty", dir.display());
    files
}

/// Runs every seed of `target`; a panic names the seed file.
fn replay(target: &str, run: fn(&[u8])) {
    for (name, bytes) in corpus(target) {
        let outcome = std::panic::catch_unwind(|| run(&bytes));
        assert!(outcome.is_ok(), "{target}: seed {name} panicked");
    }
}

#[test]
fn policy_parse_corpus_does_not_panic() {
    replay("policy_parse", policy_parse::run);
}
