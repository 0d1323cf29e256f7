//! A TUF mirror: its normalised base URL, where its metadata and targets
//! live, and the short name of its cache directory. Does no I/O.
//!
//! `http://` is accepted: TUF metadata is signed and versioned, so the
//! transport needs no integrity of its own. URLs with credentials, a query
//! or a fragment are refused (they would end up in the cache and in output).

use stella_types::digest::Digest;
use url::Url;

use crate::error::TrustError;

/// The Sigstore public-good TUF repository.
pub const PUBLIC_GOOD_MIRROR: &str = "https://tuf-repo-cdn.sigstore.dev";

/// The target that holds the sigstore trusted root.
pub const TRUSTED_ROOT_TARGET: &str = "trusted_root.json";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// Always ends with `/`.
    base: Url,
}

impl Mirror {
    /// Parses a mirror URL (`https://`, `http://` or `file://`).
    pub fn parse(input: &str) -> Result<Mirror, TrustError> {
        let bad = |reason: &str| TrustError::BadMirror {
            url: input.to_string(),
            reason: reason.to_string(),
        };
        let mut url = Url::parse(input).map_err(|e| bad(&e.to_string()))?;
        if !matches!(url.scheme(), "https" | "http" | "file") {
            return Err(bad(
                "only https://, http:// and file:// mirrors are supported",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            // Never echo the secret back.
            let _ = url.set_username("");
            let _ = url.set_password(None);
            return Err(TrustError::BadMirror {
                url: url.to_string(),
                reason: "credentials in the URL are not accepted".into(),
            });
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("a query or fragment is not accepted"));
        }
        if url.scheme() != "file" && url.host_str().is_none_or(str::is_empty) {
            return Err(bad("no host"));
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(Mirror { base: url })
    }

    /// The Sigstore public-good instance.
    #[allow(clippy::expect_used)] // a constant, checked by a unit test
    pub fn public_good() -> Mirror {
        Mirror::parse(PUBLIC_GOOD_MIRROR).expect("the public-good mirror URL is valid")
    }

    pub fn is_public_good(&self) -> bool {
        self.as_str() == PUBLIC_GOOD_MIRROR
    }

    /// The URL as users write it (no trailing slash).
    pub fn as_str(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// Where `root.json`, `timestamp.json` etc. are fetched from.
    pub fn metadata_url(&self) -> Url {
        self.base.clone()
    }

    /// Where targets are fetched from (`<mirror>/targets/`).
    pub fn targets_url(&self) -> Result<Url, TrustError> {
        self.base
            .join("targets/")
            .map_err(|e| TrustError::BadMirror {
                url: self.as_str().to_string(),
                reason: e.to_string(),
            })
    }

    /// Name of this mirror's cache directory: 16 hex digits of the SHA-256
    /// of the normalised URL.
    pub fn cache_key(&self) -> String {
        let digest = Digest::sha256_of(self.as_str().as_bytes());
        digest.hex().chars().take(16).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn normalises_trailing_slash_and_keys_alike() {
        let a = Mirror::parse("https://tuf.example/repo").unwrap();
        let b = Mirror::parse("https://tuf.example/repo/").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "https://tuf.example/repo");
        assert_eq!(a.cache_key(), b.cache_key());
        assert_eq!(a.cache_key().len(), 16);
        assert_eq!(
            a.targets_url().unwrap().as_str(),
            "https://tuf.example/repo/targets/"
        );
    }

    #[test]
    fn public_good_is_recognised() {
        assert!(Mirror::public_good().is_public_good());
        assert!(
            Mirror::parse("https://tuf-repo-cdn.sigstore.dev/")
                .unwrap()
                .is_public_good()
        );
        assert!(
            !Mirror::parse("http://127.0.0.1:1/")
                .unwrap()
                .is_public_good()
        );
    }

    #[test]
    fn refuses_credentials_queries_and_other_schemes() {
        for bad in [
            "https://user:pw@tuf.example/",
            "https://tuf.example/?a=b",
            "https://tuf.example/#x",
            "ftp://tuf.example/",
            "not a url",
        ] {
            let e = Mirror::parse(bad).unwrap_err();
            assert!(matches!(e, TrustError::BadMirror { .. }), "{bad}: {e}");
            assert!(!e.to_string().contains("pw@"), "{e}");
        }
    }
}
