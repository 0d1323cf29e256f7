//! Fuzz target `oci_index`: the harness in `fuzz/harness/oci_index.rs` (shared with
//! the corpus replay test of the owning crate). Must never panic or hang.
#![no_main]

#[path = "../harness/oci_index.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
