//! Fuzzes the whole verifier on arbitrary bundles against the public-good
//! trusted root (read once from the conformance data): must never panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use stella_sigstore::{
    Artifact, Bundle, IdentityPolicy, Matcher, Policy, TrustedRoot, Verifier, VerifierConfig,
};

fn verifier() -> &'static Option<Verifier> {
    static V: OnceLock<Option<Verifier>> = OnceLock::new();
    V.get_or_init(|| {
        let p = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/conformance/sigstore/trusted_root/production.json"
        );
        let root = TrustedRoot::from_json(&std::fs::read(p).ok()?).ok()?;
        Some(Verifier::new(root, VerifierConfig::default()))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some(v) = verifier() else { return };
    if let Ok(b) = Bundle::parse(data) {
        let policy = Policy::Identity(IdentityPolicy {
            identity: Matcher::Exact("x".into()),
            issuer: Matcher::Exact("y".into()),
        });
        let _ = v.verify(&b, Artifact::Bytes(b"hello"), &policy);
    }
});
