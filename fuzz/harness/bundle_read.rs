//! Harness: the StellaBundle streaming reader and integrity verifier
//! (`stella_bundle::verify_bundle`) on arbitrary bytes. The first byte says
//! how the rest reaches the reader: as is (so the reader's own compression
//! detection sees it), or gzip- or zstd-compressed first (so the fuzzer's
//! bytes are the tar inside a well-formed compressed stream).
//!
//! Shared by `fuzz/fuzz_targets/bundle_read.rs` and the corpus replay test
//! in `crates/stella-bundle/tests/fuzz_corpus.rs`.

use std::io::{Cursor, Write};

use stella_bundle::{ReadLimits, VerifyOptions, verify_bundle};

/// Runs one input; must never panic or hang.
pub fn run(data: &[u8]) {
    let _ = verified(data);
}

/// Runs one input and says whether the bundle verified (integrity only);
/// the replay test uses this to check that the seeds are real bundles.
pub fn verified(data: &[u8]) -> bool {
    let Some((&mode, rest)) = data.split_first() else {
        return false;
    };
    let Some(bytes) = wrap(mode, rest) else {
        return false;
    };
    let opts = VerifyOptions {
        integrity_only: true,
        limits: ReadLimits {
            // Small enough that no input makes an iteration slow.
            max_total_bytes: 64 << 20,
            ..ReadLimits::default()
        },
        ..VerifyOptions::default()
    };
    match verify_bundle(Cursor::new(bytes), &opts) {
        Ok(report) => {
            assert!(
                !report.verified || report.failures.is_empty(),
                "a verified bundle with failures: {:?}",
                report.failures
            );
            report.verified
        }
        Err(_) => false,
    }
}

fn wrap(mode: u8, rest: &[u8]) -> Option<Vec<u8>> {
    match mode % 3 {
        0 => Some(rest.to_vec()),
        1 => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(rest).ok()?;
            gz.finish().ok()
        }
        _ => zstd::stream::encode_all(rest, 1).ok(),
    }
}
