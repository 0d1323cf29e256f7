//! Fuzz target `bundle_read`: the harness in `fuzz/harness/bundle_read.rs` (shared with
//! the corpus replay test of the owning crate). Must never panic or hang.
#![no_main]

#[path = "../harness/bundle_read.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
