//! Predicate type aliases accepted by `--type` and their published URIs.
//! Any other value containing `:` is taken as a URI as is.

/// Stella's own verdict predicate (see docs/attestations.md).
pub const VERDICT_V1: &str = "https://stella.dev/attestation/verdict/v1";

/// (alias, URI) pairs, sorted by alias.
pub const ALIASES: &[(&str, &str)] = &[
    ("cyclonedx", "https://cyclonedx.org/bom"),
    ("openvex", "https://openvex.dev/ns"),
    ("slsaprovenance", "https://slsa.dev/provenance/v1"),
    ("spdx", "https://spdx.dev/Document"),
    ("verdict", VERDICT_V1),
    ("vuln", "https://in-toto.io/attestation/vulns/v0.1"),
];

/// Why a `--type` value is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown predicate type alias {0:?} (aliases: cyclonedx, openvex, slsaprovenance, spdx, verdict, vuln; or give a URI)"
)]
pub struct UnknownPredicateType(pub String);

/// Resolves an alias (case-insensitive) or accepts a URI.
pub fn resolve(value: &str) -> Result<String, UnknownPredicateType> {
    let v = value.trim();
    if let Some((_, uri)) = ALIASES.iter().find(|(a, _)| a.eq_ignore_ascii_case(v)) {
        return Ok((*uri).to_string());
    }
    if v.contains(':') && !v.chars().any(char::is_whitespace) {
        return Ok(v.to_string());
    }
    Err(UnknownPredicateType(value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_uris() {
        assert_eq!(
            resolve("SPDX").ok().as_deref(),
            Some("https://spdx.dev/Document")
        );
        assert_eq!(
            resolve("vuln").ok().as_deref(),
            Some("https://in-toto.io/attestation/vulns/v0.1")
        );
        assert_eq!(
            resolve("https://x.example/p").ok().as_deref(),
            Some("https://x.example/p")
        );
        assert!(resolve("nonsense").is_err());
    }
}
