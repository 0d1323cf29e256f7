//! StellaBundle: deterministic writer and safe streaming reader for the offline evidence bundle (tar of an OCI layout plus manifest and checksums).

#![forbid(unsafe_code)]
