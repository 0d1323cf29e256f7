//! Fuzz target `registry_responses`: the harness in `fuzz/harness/registry_responses.rs` (shared with
//! the corpus replay test of the owning crate). Must never panic or hang.
#![no_main]

#[path = "../harness/registry_responses.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
