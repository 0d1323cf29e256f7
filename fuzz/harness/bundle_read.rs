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
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Some(bytes) = wrap(mode, rest) else {
        return;
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
    if let Ok(report) = verify_bundle(Cursor::new(bytes), &opts) {
        // A report that passes must name the subject it vouches for.
        let _ = report.has_failure("integrity");
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
