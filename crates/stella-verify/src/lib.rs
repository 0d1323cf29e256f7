//! Evidence verification against a policy: typed, deterministic reports. No network.

#![forbid(unsafe_code)]
