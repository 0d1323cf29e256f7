//! Crypto provider: key loading (PEM, PKCS#8, SPKI), signing and verification behind one provider struct with an aws-lc-rs default backend.

#![forbid(unsafe_code)]
