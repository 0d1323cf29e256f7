//! Product identity: normalising purls and IRIs into matching keys.
//!
//! - `pkg:oci/<name>@sha256%3A<hex>?repository_url=…&tag=…` is identified by
//!   its digest alone: `oci:sha256:<hex>`, whatever its name, repository or
//!   tag qualifiers. A bare `sha256:<hex>` (an image digest) gives the same
//!   key, so a digest query finds statements about that image.
//! - `pkg:oci` without a digest keeps name and `repository_url` (trailing
//!   `/` dropped, lower case) and `tag`.
//! - Other purls: type lower case, components percent-decoded and
//!   re-encoded the one way, qualifiers sorted with keys in lower case and
//!   empty values dropped; `pypi`, `npm`, `github`, `bitbucket` names in
//!   lower case (case-insensitive by the purl spec).
//! - Anything else (an IRI, a CPE) is trimmed and used as is.
//!
//! Not here: version-range matching or resolving a tag to a digest.

use crate::model::{Component, Product};

/// The matching key of one product identifier.
pub fn normalize(id: &str) -> String {
    let id = id.trim();
    if let Some(hex) = id.strip_prefix("sha256:")
        && is_sha256_hex(hex)
    {
        return format!("oci:sha256:{}", hex.to_ascii_lowercase());
    }
    match id.get(..4) {
        Some(p) if p.eq_ignore_ascii_case("pkg:") => normalize_purl(id.get(4..).unwrap_or("")),
        _ => id.to_string(),
    }
}

/// Every key a component answers to (@id and identifier values).
pub fn component_keys(c: &Component) -> Vec<String> {
    let mut keys: Vec<String> =
        c.id.iter()
            .chain(c.identifiers.values())
            .filter(|s| !s.trim().is_empty())
            .map(|s| normalize(s))
            .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The key that names a component in results: its @id's, else its first
/// identifier's (purl before cpe), else the first hash.
pub fn primary_key(c: &Component) -> String {
    if let Some(id) = c.id.as_deref().filter(|s| !s.trim().is_empty()) {
        return normalize(id);
    }
    for kind in ["purl", "cpe23", "cpe22"] {
        if let Some(v) = c.identifiers.get(kind) {
            return normalize(v);
        }
    }
    if let Some(v) = c.identifiers.values().next() {
        return normalize(v);
    }
    c.hashes
        .iter()
        .next()
        .map(|(alg, h)| format!("hash:{alg}:{}", h.to_ascii_lowercase()))
        .unwrap_or_default()
}

/// Whether `key` (already normalised) names this product or one of its
/// subcomponents.
pub fn product_matches(p: &Product, key: &str) -> bool {
    component_keys(&p.component).iter().any(|k| k == key)
        || p.subcomponents
            .iter()
            .any(|c| component_keys(c).iter().any(|k| k == key))
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes.get(i).copied().unwrap_or(0);
        if b == b'%'
            && let Some(h) = s.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(h, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn encode(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `rest` is the purl after `pkg:`.
fn normalize_purl(rest: &str) -> String {
    let (rest, subpath) = match rest.split_once('#') {
        Some((r, s)) => (r, Some(s.trim_matches('/'))),
        None => (rest, None),
    };
    let (rest, qualifiers) = match rest.split_once('?') {
        Some((r, q)) => (r, q),
        None => (rest, ""),
    };
    let rest = rest.trim_start_matches('/');
    let (path, version) = match rest.rsplit_once('@') {
        Some((p, v)) if !p.is_empty() => (p, Some(decode(v))),
        _ => (rest, None),
    };
    let (ptype, name_path) = path.split_once('/').unwrap_or((path, ""));
    let ptype = ptype.to_ascii_lowercase();
    let mut quals: Vec<(String, String)> = qualifiers
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_ascii_lowercase(), decode(v)))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    quals.sort();
    if ptype == "oci" {
        if let Some(v) = &version
            && let Some(hex) = v.strip_prefix("sha256:")
            && is_sha256_hex(hex)
        {
            return format!("oci:sha256:{}", hex.to_ascii_lowercase());
        }
        for (k, v) in quals.iter_mut() {
            if k == "repository_url" {
                *v = v.trim_end_matches('/').to_ascii_lowercase();
            }
        }
        quals.retain(|(k, _)| k == "repository_url" || k == "tag");
    }
    let lower_name = matches!(
        ptype.as_str(),
        "pypi" | "npm" | "github" | "bitbucket" | "oci"
    );
    let segments: Vec<String> = name_path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let d = decode(s);
            let d = if lower_name {
                d.to_ascii_lowercase()
            } else {
                d
            };
            encode(&d, b"")
        })
        .collect();
    let mut out = format!("pkg:{ptype}/{}", segments.join("/"));
    if let Some(v) = version {
        out.push('@');
        out.push_str(&encode(&v, b":"));
    }
    if !quals.is_empty() {
        let q: Vec<String> = quals
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v, b":/")))
            .collect();
        out.push('?');
        out.push_str(&q.join("&"));
    }
    if let Some(s) = subpath.filter(|s| !s.is_empty()) {
        out.push('#');
        out.push_str(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::normalize;

    const HEX: &str = "124c7d2707904eea7431fffe91522a01e5a861a624ee31d03372cc1d138a3126";

    #[test]
    fn oci_purls_with_and_without_qualifiers_share_the_digest_key() {
        let plain = normalize(&format!("pkg:oci/alpine@sha256%3A{HEX}"));
        let qualified = normalize(&format!(
            "pkg:oci/alpine@sha256%3A{HEX}?repository_url=index.docker.io/library&tag=3.17"
        ));
        let other_name = normalize(&format!(
            "PKG:OCI/mirror-alpine@sha256:{HEX}?arch=amd64&repository_url=registry.local/x"
        ));
        let digest = normalize(&format!("sha256:{HEX}"));
        assert_eq!(plain, format!("oci:sha256:{HEX}"));
        assert_eq!(plain, qualified);
        assert_eq!(plain, other_name);
        assert_eq!(plain, digest);
        assert_ne!(
            plain,
            normalize(&format!(
                "pkg:oci/alpine@sha256%3A{}",
                &HEX.replace('1', "2")
            ))
        );
    }

    #[test]
    fn oci_purl_without_digest_keeps_repository_and_tag() {
        let a = normalize("pkg:oci/Alpine?tag=3.17&repository_url=Index.Docker.io/library/");
        let b =
            normalize("pkg:oci/alpine?repository_url=index.docker.io/library&tag=3.17&arch=arm64");
        assert_eq!(a, b);
        assert_ne!(
            a,
            normalize("pkg:oci/alpine?repository_url=index.docker.io/library&tag=3.18")
        );
    }

    #[test]
    fn other_purls_sort_qualifiers_and_keep_case_sensitive_names() {
        assert_eq!(
            normalize("pkg:apk/wolfi/git@2.39.0-r1?arch=armv7&distro="),
            normalize("pkg:APK/wolfi/git@2.39.0-r1?arch=armv7")
        );
        assert_eq!(
            normalize("pkg:pypi/Django@4.0?b=2&a=1"),
            normalize("pkg:pypi/django@4.0?a=1&b=2")
        );
        assert_ne!(
            normalize("pkg:rpm/fedora/Curl@1"),
            normalize("pkg:rpm/fedora/curl@1")
        );
        assert_eq!(
            normalize("  https://example.com/p "),
            "https://example.com/p"
        );
    }
}
