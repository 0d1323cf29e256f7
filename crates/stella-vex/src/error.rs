//! Typed errors of the OpenVEX library.

/// Why a document was refused. `path` is a JSON path into the document
/// (`$.statements[2].justification`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VexError {
    #[error("document is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("not an OpenVEX document: {0}")]
    Malformed(String),
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("trust configuration: {0}")]
    Trust(String),
    #[error("cannot encode canonical JSON: {0}")]
    Encode(String),
}

impl VexError {
    pub(crate) fn invalid(path: impl Into<String>, message: impl Into<String>) -> VexError {
        VexError::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }
}
