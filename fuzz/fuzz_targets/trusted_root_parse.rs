//! Fuzzes trusted_root.json parsing (including X.509 DER): must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = stella_sigstore::TrustedRoot::from_json(data);
    let _ = stella_sigstore::Certificate::from_der(data);
    let _ = stella_sigstore::tsa::parse(data);
});
