//! in-toto Statements, DSSE envelopes and sigstore bundles for key- and PKI-signed attestations: build, sign, parse, verify. No network.

#![forbid(unsafe_code)]
