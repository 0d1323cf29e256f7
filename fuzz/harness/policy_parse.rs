//! Harness: the `verify image` policy parser (`stella_verify::policy`) on
//! arbitrary YAML/JSON text, with an alias resolver that knows two names.
//! Checks the parser's own contract: a policy comes back exactly when the
//! diagnostics report success, and the counts match the issue list.
//!
//! Shared by `fuzz/fuzz_targets/policy_parse.rs` and the corpus replay test
//! in `crates/stella-verify/tests/fuzz_corpus.rs`.

use stella_verify::policy::Policy;

fn alias(name: &str) -> Option<String> {
    match name {
        "slsaprovenance" => Some("https://slsa.dev/provenance/v1".to_string()),
        "openvex" => Some("https://openvex.dev/ns".to_string()),
        _ => None,
    }
}

/// Runs one input; must never panic or hang.
pub fn run(data: &[u8]) {
    let (policy, diagnostics) = Policy::parse(data, &alias);
    assert_eq!(
        policy.is_some(),
        diagnostics.success,
        "a policy is returned exactly when parsing succeeded"
    );
    assert_eq!(
        diagnostics.error_count + diagnostics.warning_count,
        diagnostics.issues.len(),
        "issue counts match the issue list"
    );
    if diagnostics.success {
        assert_eq!(diagnostics.error_count, 0, "success with errors");
    }
}
