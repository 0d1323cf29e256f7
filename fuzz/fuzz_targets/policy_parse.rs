//! Fuzz target `policy_parse`: the harness in `fuzz/harness/policy_parse.rs` (shared with
//! the corpus replay test of the owning crate). Must never panic or hang.
#![no_main]

#[path = "../harness/policy_parse.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
