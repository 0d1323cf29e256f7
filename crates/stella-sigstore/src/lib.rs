//! Offline verification of sigstore bundles (v0.1-v0.3) against a trusted_root.json: certificates, SCTs, Rekor entries, timestamps, identity policy.

#![forbid(unsafe_code)]
