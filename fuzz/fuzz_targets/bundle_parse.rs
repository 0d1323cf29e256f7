//! Fuzzes sigstore bundle parsing (JSON → typed bundle): must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = stella_sigstore::Bundle::parse(data);
});
