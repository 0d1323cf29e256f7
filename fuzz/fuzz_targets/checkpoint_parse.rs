//! Fuzzes signed-note and checkpoint parsing, vkey parsing and the Merkle
//! proof verifiers: must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stella_tlog::{Checkpoint, Note, Vkey};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(n) = Note::parse(s) {
            let _ = Checkpoint::parse_body(&n.text);
        }
        let _ = Checkpoint::parse_body(s);
        let _ = Vkey::parse(s);
    }
    if data.len() >= 16 {
        let (head, rest) = data.split_at(16);
        let idx = u64::from_le_bytes(head[..8].try_into().unwrap_or([0; 8]));
        let size = u64::from_le_bytes(head[8..16].try_into().unwrap_or([0; 8]));
        let hashes: Vec<&[u8]> = rest.chunks(32).collect();
        if let Some((leaf, proof)) = hashes.split_first() {
            let _ = stella_tlog::verify_inclusion(idx, size, leaf, proof, leaf);
            let _ = stella_tlog::verify_consistency(idx, size, proof, leaf, leaf);
        }
    }
});
