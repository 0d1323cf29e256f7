//! Resolving what users type for `--type`: an alias from the one table in
//! [`stella_types::predicate_types`] (matched case-insensitively), or a URI
//! taken as is. Unknown bare words are an error rather than a silent URI.
//! The table itself is not here.

use stella_types::predicate_types::ALIASES;

/// Stella's own verdict predicate (see docs/attestations.md).
pub const VERDICT_V1: &str = stella_types::predicate_types::STELLA_VERDICT;

/// Why a `--type` value is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown predicate type alias {0:?} (aliases: {list}; or give a URI)", list = alias_list())]
pub struct UnknownPredicateType(pub String);

fn alias_list() -> String {
    ALIASES
        .iter()
        .map(|(a, _)| *a)
        .collect::<Vec<_>>()
        .join(", ")
}

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
            Some("https://in-toto.io/attestation/vulns/v0.2")
        );
        assert_eq!(
            resolve("https://x.example/p").ok().as_deref(),
            Some("https://x.example/p")
        );
        let e = resolve("nonsense").err().map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("cyclonedx, openvex")),
            "{e:?}"
        );
    }
}
