//! Image references: a registry reference (`host[:port]/repo[:tag][@digest]`)
//! or a local OCI image layout in skopeo's transport syntax
//! (`oci:<dir>[:<tag>]` or `oci:<dir>@<digest>`).
//!
//! Parsing only; resolving a tag to a digest is the job of a store.

use std::fmt;
use std::path::PathBuf;

use crate::digest::Digest;

/// Why a string is not a usable reference.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReferenceError {
    #[error("reference is empty")]
    Empty,
    #[error(
        "reference {0:?} names no repository (expected host[:port]/repo[:tag][@digest] or oci:<dir>[:tag])"
    )]
    NoRepository(String),
    #[error(
        "reference {reference:?} has an invalid repository name {name:?} (lowercase letters, digits and . _ - / only)"
    )]
    BadRepository { reference: String, name: String },
    #[error("reference {reference:?} has an invalid tag {tag:?}")]
    BadTag { reference: String, tag: String },
    #[error("reference {reference:?} has an invalid digest: {reason}")]
    BadDigest { reference: String, reason: String },
    #[error("reference {0:?} needs a digest (…@sha256:<hex>)")]
    DigestRequired(String),
}

/// A reference to content in a registry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RegistryReference {
    /// `host[:port]`, with Docker Hub normalised to `docker.io`.
    pub registry: String,
    /// Repository path, e.g. `library/alpine`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

/// A reference into a local OCI image layout directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LayoutReference {
    pub dir: PathBuf,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

/// Where an image (or artifact) lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    Registry(RegistryReference),
    Layout(LayoutReference),
}

/// A tag per the distribution spec: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && b.first()
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// Whether `name` is a repository path as the distribution spec allows
/// it (lowercase path components joined by `/`, at most 255 bytes).
pub fn valid_repository(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split('/').all(|part| {
            !part.is_empty()
                && part.bytes().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
                })
                && part
                    .as_bytes()
                    .first()
                    .is_some_and(|c| c.is_ascii_alphanumeric())
                && part
                    .as_bytes()
                    .last()
                    .is_some_and(|c| c.is_ascii_alphanumeric())
        })
}

fn split_digest(s: &str, whole: &str) -> Result<(String, Option<Digest>), ReferenceError> {
    match s.split_once('@') {
        Some((rest, d)) => {
            let digest = Digest::parse(d).map_err(|e| ReferenceError::BadDigest {
                reference: whole.to_string(),
                reason: e.to_string(),
            })?;
            Ok((rest.to_string(), Some(digest)))
        }
        None => Ok((s.to_string(), None)),
    }
}

impl Reference {
    /// Parses a registry or `oci:` layout reference.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if let Some(rest) = s.strip_prefix("oci:") {
            return Self::parse_layout(rest, s).map(Reference::Layout);
        }
        Self::parse_registry(s).map(Reference::Registry)
    }

    fn parse_layout(rest: &str, whole: &str) -> Result<LayoutReference, ReferenceError> {
        let (path_and_tag, digest) = split_digest(rest, whole)?;
        // The tag is what follows the last ':' when that part is a valid tag
        // and the path before it is not empty (so `oci:C:\x` style paths and
        // plain directories still work).
        let (dir, tag) = match path_and_tag.rsplit_once(':') {
            Some((dir, tag)) if !dir.is_empty() && !tag.contains('/') => {
                if !is_valid_tag(tag) {
                    return Err(ReferenceError::BadTag {
                        reference: whole.to_string(),
                        tag: tag.to_string(),
                    });
                }
                (dir.to_string(), Some(tag.to_string()))
            }
            _ => (path_and_tag, None),
        };
        if dir.is_empty() {
            return Err(ReferenceError::NoRepository(whole.to_string()));
        }
        Ok(LayoutReference {
            dir: PathBuf::from(dir),
            tag,
            digest,
        })
    }

    fn parse_registry(s: &str) -> Result<RegistryReference, ReferenceError> {
        let (name_and_tag, digest) = split_digest(s, s)?;
        // A tag follows the last ':' that comes after the last '/'.
        let last_slash = name_and_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_and_tag[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (
                    name_and_tag[..at].to_string(),
                    Some(name_and_tag[at + 1..].to_string()),
                )
            }
            None => (name_and_tag.clone(), None),
        };
        if let Some(t) = &tag
            && !is_valid_tag(t)
        {
            return Err(ReferenceError::BadTag {
                reference: s.to_string(),
                tag: t.clone(),
            });
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => {
                // Docker Hub shorthand, as docker and skopeo resolve it.
                let repo = if name.contains('/') {
                    name.clone()
                } else {
                    format!("library/{name}")
                };
                ("docker.io".to_string(), repo)
            }
        };
        let registry = if registry == "index.docker.io" || registry == "registry-1.docker.io" {
            "docker.io".to_string()
        } else {
            registry
        };
        if repository.is_empty() {
            return Err(ReferenceError::NoRepository(s.to_string()));
        }
        if !valid_repository(&repository) {
            return Err(ReferenceError::BadRepository {
                reference: s.to_string(),
                name: repository,
            });
        }
        Ok(RegistryReference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    pub fn tag(&self) -> Option<&str> {
        match self {
            Reference::Registry(r) => r.tag.as_deref(),
            Reference::Layout(l) => l.tag.as_deref(),
        }
    }

    pub fn digest(&self) -> Option<&Digest> {
        match self {
            Reference::Registry(r) => r.digest.as_ref(),
            Reference::Layout(l) => l.digest.as_ref(),
        }
    }

    /// The same location pinned to `digest` (the tag is kept for display).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        let mut r = self.clone();
        match &mut r {
            Reference::Registry(x) => x.digest = Some(digest),
            Reference::Layout(x) => x.digest = Some(digest),
        }
        r
    }

    /// The same repository or layout with a different tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Reference {
        let mut r = self.clone();
        match &mut r {
            Reference::Registry(x) => {
                x.tag = Some(tag.to_string());
                x.digest = None;
            }
            Reference::Layout(x) => {
                x.tag = Some(tag.to_string());
                x.digest = None;
            }
        }
        r
    }

    /// The digest, or an error saying one is needed.
    pub fn require_digest(&self) -> Result<&Digest, ReferenceError> {
        self.digest()
            .ok_or_else(|| ReferenceError::DigestRequired(self.to_string()))
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (prefix, tag, digest) = match self {
            Reference::Registry(r) => (
                format!("{}/{}", r.registry, r.repository),
                &r.tag,
                &r.digest,
            ),
            Reference::Layout(l) => (format!("oci:{}", l.dir.display()), &l.tag, &l.digest),
        };
        f.write_str(&prefix)?;
        if let Some(t) = tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn reg(s: &str) -> RegistryReference {
        match Reference::parse(s).unwrap() {
            Reference::Registry(r) => r,
            other => panic!("not registry: {other:?}"),
        }
    }

    #[test]
    fn registry_forms() {
        let r = reg("127.0.0.1:5000/app/web:1.0");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "app/web", Some("1.0"))
        );
        let r = reg(&format!("localhost:5000/app@{D}"));
        assert_eq!(r.digest.unwrap().to_string(), D);
        assert_eq!(r.tag, None);
        let r = reg("alpine");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("docker.io", "library/alpine")
        );
        let r = reg("ghcr.io/org/img:tag");
        assert_eq!(r.registry, "ghcr.io");
        assert_eq!(
            Reference::parse(&format!("localhost:5000/a:t@{D}"))
                .unwrap()
                .to_string(),
            format!("localhost:5000/a:t@{D}")
        );
    }

    #[test]
    fn layout_forms() {
        let Reference::Layout(l) = Reference::parse("oci:/tmp/lay:v1").unwrap() else {
            panic!()
        };
        assert_eq!(
            (l.dir, l.tag.as_deref()),
            (PathBuf::from("/tmp/lay"), Some("v1"))
        );
        let Reference::Layout(l) = Reference::parse(&format!("oci:./lay@{D}")).unwrap() else {
            panic!()
        };
        assert_eq!(l.dir, PathBuf::from("./lay"));
        assert!(l.tag.is_none() && l.digest.is_some());
        let Reference::Layout(l) = Reference::parse("oci:lay").unwrap() else {
            panic!()
        };
        assert!(l.tag.is_none());
    }

    #[test]
    fn rejects_bad() {
        assert_eq!(Reference::parse(""), Err(ReferenceError::Empty));
        assert!(matches!(
            Reference::parse("localhost:5000/UP:x"),
            Err(ReferenceError::BadRepository { .. })
        ));
        assert!(matches!(
            Reference::parse("localhost:5000/a:b@sha256:zz"),
            Err(ReferenceError::BadDigest { .. })
        ));
        assert!(matches!(
            Reference::parse("localhost:5000/a:-bad"),
            Err(ReferenceError::BadTag { .. })
        ));
    }
}
