//! Transparency-log proofs: RFC 6962/9162 Merkle inclusion and consistency, C2SP signed-note checkpoints. Pure functions, no I/O.

#![forbid(unsafe_code)]
