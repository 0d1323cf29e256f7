//! Test-only: launches real registry processes (distribution 2.8), a token server, TLS material, and an in-process spec-following registry with the Referrers API. Never shipped.

#![forbid(unsafe_code)]
