//! in-toto attestation Statements (v1, and v0.1 for reading):
//! <https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md>.
//! Parsing validates as the in-toto Go reference (`go/v1/statement.go`,
//! `resource_descriptor.go`) does; building writes canonical JSON. Does not
//! interpret predicates.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stella_types::Digest;
use stella_types::limits::MAX_DSSE_PAYLOAD_BYTES;

/// `_type` of Statement v1.
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
/// `_type` of Statement v0.1 (read only).
pub const STATEMENT_V01: &str = "https://in-toto.io/Statement/v0.1";
/// Most subjects accepted (as sigstore-go).
pub const MAX_SUBJECTS: usize = 1024;
/// Most digests per subject accepted (as sigstore-go).
pub const MAX_DIGESTS_PER_SUBJECT: usize = 32;

/// Validation failures, named after the in-toto Go errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatementError {
    /// Payload is not UTF-8.
    #[error("payload is not UTF-8")]
    NotUtf8,
    /// Payload is not a JSON statement object.
    #[error("payload is not a JSON statement: {0}")]
    NotJson(String),
    /// Payload larger than the cap.
    #[error("statement larger than {MAX_DSSE_PAYLOAD_BYTES} bytes")]
    TooLarge,
    /// ErrInvalidStatementType.
    #[error("unsupported _type {0:?}")]
    InvalidStatementType(String),
    /// ErrSubjectRequired.
    #[error("statement has no subject")]
    SubjectRequired,
    /// Too many subjects or digests.
    #[error("statement has too many subjects or digests")]
    TooManySubjects,
    /// ErrRDRequiredField.
    #[error("a subject has none of name, uri, digest")]
    RdRequiredField,
    /// ErrDigestRequired.
    #[error("a subject has no digest")]
    DigestRequired,
    /// ErrInvalidDigestEncoding.
    #[error("digest {0} is not hex")]
    InvalidDigestEncoding(String),
    /// ErrIncorrectDigestLength.
    #[error("digest {0} has the wrong length")]
    IncorrectDigestLength(String),
    /// ErrPredicateTypeRequired.
    #[error("statement has no predicateType")]
    PredicateTypeRequired,
    /// ErrPredicateRequired.
    #[error("statement has no predicate")]
    PredicateRequired,
}

impl StatementError {
    /// The in-toto Go error name (for conformance tests and JSON reports).
    pub fn kind(&self) -> &'static str {
        match self {
            StatementError::NotUtf8 | StatementError::NotJson(_) | StatementError::TooLarge => {
                "ErrMalformed"
            }
            StatementError::InvalidStatementType(_) => "ErrInvalidStatementType",
            StatementError::SubjectRequired => "ErrSubjectRequired",
            StatementError::TooManySubjects => "ErrTooManySubjects",
            StatementError::RdRequiredField => "ErrRDRequiredField",
            StatementError::DigestRequired => "ErrDigestRequired",
            StatementError::InvalidDigestEncoding(_) => "ErrInvalidDigestEncoding",
            StatementError::IncorrectDigestLength(_) => "ErrIncorrectDigestLength",
            StatementError::PredicateTypeRequired => "ErrPredicateTypeRequired",
            StatementError::PredicateRequired => "ErrPredicateRequired",
        }
    }
}

/// An in-toto ResourceDescriptor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ResourceDescriptor {
    /// name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// uri.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// digest set: algorithm → hex.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digest: BTreeMap<String, String>,
    /// content (base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// downloadLocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_location: Option<String>,
    /// mediaType.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

fn digest_lengths(alg: &str) -> Option<&'static [usize]> {
    Some(match alg {
        "md5" => &[16],
        "sha1" => &[20],
        "sha224" | "sha512_224" | "sha3_224" => &[28],
        "sha256" | "sha512_256" | "sha3_256" | "dirHash" => &[32],
        "sha384" | "sha3_384" => &[48],
        "sha512" | "sha3_512" => &[64],
        "gitBlob" | "gitCommit" | "gitTag" | "gitTree" => &[20, 32],
        _ => return None,
    })
}

impl ResourceDescriptor {
    /// Validates as in-toto Go `ResourceDescriptor.Validate()`.
    pub fn validate(&self) -> Result<(), StatementError> {
        if self.name.as_deref().unwrap_or("").is_empty()
            && self.uri.as_deref().unwrap_or("").is_empty()
            && self.digest.is_empty()
        {
            return Err(StatementError::RdRequiredField);
        }
        if self.digest.len() > MAX_DIGESTS_PER_SUBJECT {
            return Err(StatementError::TooManySubjects);
        }
        for (alg, value) in &self.digest {
            if let Some(lengths) = digest_lengths(alg) {
                if value.len() % 2 != 0 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(StatementError::InvalidDigestEncoding(format!(
                        "{alg}:{value}"
                    )));
                }
                if !lengths.contains(&(value.len() / 2)) {
                    return Err(StatementError::IncorrectDigestLength(format!(
                        "{alg}:{value}"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// An in-toto Statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// `_type`.
    #[serde(rename = "_type")]
    pub statement_type: String,
    /// Subjects.
    #[serde(default)]
    pub subject: Vec<ResourceDescriptor>,
    /// predicateType.
    #[serde(rename = "predicateType", default)]
    pub predicate_type: String,
    /// predicate (absent or null → `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicate: Option<serde_json::Value>,
}

impl Statement {
    /// A v1 statement about one subject.
    pub fn new_v1(
        subject_name: &str,
        subject_digest: &Digest,
        predicate_type: &str,
        predicate: serde_json::Value,
    ) -> Self {
        let mut digest = BTreeMap::new();
        digest.insert(
            subject_digest.algorithm().as_str().to_string(),
            subject_digest.hex().to_string(),
        );
        Statement {
            statement_type: STATEMENT_V1.to_string(),
            subject: vec![ResourceDescriptor {
                name: Some(subject_name.to_string()),
                digest,
                ..Default::default()
            }],
            predicate_type: predicate_type.to_string(),
            predicate: Some(predicate),
        }
    }

    /// Parses and validates statement bytes (the verified DSSE payload).
    pub fn parse(bytes: &[u8]) -> Result<Self, StatementError> {
        if bytes.len() as u64 > MAX_DSSE_PAYLOAD_BYTES {
            return Err(StatementError::TooLarge);
        }
        let text = std::str::from_utf8(bytes).map_err(|_| StatementError::NotUtf8)?;
        let st: Statement =
            serde_json::from_str(text).map_err(|e| StatementError::NotJson(e.to_string()))?;
        st.validate()?;
        Ok(st)
    }

    /// Validates as in-toto Go `Statement.Validate()` (accepting v1 and v0.1).
    pub fn validate(&self) -> Result<(), StatementError> {
        if self.statement_type != STATEMENT_V1 && self.statement_type != STATEMENT_V01 {
            return Err(StatementError::InvalidStatementType(
                self.statement_type.clone(),
            ));
        }
        if self.subject.is_empty() {
            return Err(StatementError::SubjectRequired);
        }
        if self.subject.len() > MAX_SUBJECTS {
            return Err(StatementError::TooManySubjects);
        }
        for s in &self.subject {
            s.validate()?;
            if s.digest.is_empty() {
                return Err(StatementError::DigestRequired);
            }
        }
        if self.predicate_type.is_empty() {
            return Err(StatementError::PredicateTypeRequired);
        }
        if self.predicate.is_none() {
            return Err(StatementError::PredicateRequired);
        }
        Ok(())
    }

    /// Canonical JSON bytes (what `stella attest` signs).
    pub fn to_canonical_json(&self) -> Result<Vec<u8>, crate::AttestError> {
        stella_types::canonical_json::to_canonical_vec(self)
            .map_err(|e| crate::AttestError::Encode(e.to_string()))
    }

    /// True when some subject names `digest` (same algorithm, hex compared
    /// case-insensitively).
    pub fn has_subject_digest(&self, digest: &Digest) -> bool {
        let alg = digest.algorithm().as_str();
        self.subject.iter().any(|s| {
            s.digest
                .get(alg)
                .is_some_and(|v| v.eq_ignore_ascii_case(digest.hex()))
        })
    }

    /// `alg:hex` of every subject digest (for error messages), sorted.
    pub fn subject_digests(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .subject
            .iter()
            .flat_map(|s| s.digest.iter().map(|(a, h)| format!("{a}:{h}")))
            .collect();
        v.sort();
        v
    }
}
