//! Predicate type URIs for in-toto attestations and the short aliases users
//! type on the command line and in policies (`--type cyclonedx`).
//!
//! The URIs are the ones each predicate's spec publishes (in-toto
//! attestation `spec/predicates/*.md`, SLSA, OpenVEX); `verdict` is Stella's
//! own predicate for signed verification reports (documented in
//! `docs/policy.md`). Any other URI is accepted as is.

pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
pub const CYCLONEDX: &str = "https://cyclonedx.org/bom";
pub const SPDX: &str = "https://spdx.dev/Document";
pub const OPENVEX: &str = "https://openvex.dev/ns";
pub const VULNS: &str = "https://in-toto.io/attestation/vulns/v0.2";
pub const STELLA_VERDICT: &str = "https://stella.dev/attestation/verdict/v1";

/// `(alias, predicate type URI)`, sorted by alias.
pub const ALIASES: &[(&str, &str)] = &[
    ("cyclonedx", CYCLONEDX),
    ("openvex", OPENVEX),
    ("slsaprovenance", SLSA_PROVENANCE_V1),
    ("spdx", SPDX),
    ("verdict", STELLA_VERDICT),
    ("vuln", VULNS),
];

/// The URI an alias stands for, or `None` when `name` is not an alias.
pub fn resolve_alias(name: &str) -> Option<&'static str> {
    ALIASES
        .iter()
        .find(|(a, _)| *a == name)
        .map(|(_, uri)| *uri)
}

/// The URI for an alias, or the input unchanged.
pub fn resolve(name: &str) -> String {
    resolve_alias(name).map_or_else(|| name.to_string(), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_resolve_and_uris_pass_through() {
        assert_eq!(resolve("slsaprovenance"), SLSA_PROVENANCE_V1);
        assert_eq!(resolve("https://example.com/x"), "https://example.com/x");
        assert!(ALIASES.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
