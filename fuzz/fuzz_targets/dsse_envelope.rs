//! Fuzz target `dsse_envelope`: the harness in `fuzz/harness/dsse_envelope.rs` (shared with
//! the corpus replay test of the owning crate). Must never panic or hang.
#![no_main]

#[path = "../harness/dsse_envelope.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
