//! Lenient base64 for protobuf-JSON `bytes` fields: standard or URL-safe
//! alphabet, padding optional, CR/LF ignored (as Go protojson accepts).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

use crate::error::SigstoreError;

pub fn decode(field: &str, s: &str) -> Result<Vec<u8>, SigstoreError> {
    let cleaned: String = s
        .chars()
        .filter(|c| *c != '\n' && *c != '\r')
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    let trimmed = cleaned.trim_end_matches('=');
    if cleaned.len() - trimmed.len() > 2 {
        return Err(SigstoreError::unusable(format!("{field}: invalid base64")));
    }
    STANDARD_NO_PAD
        .decode(trimmed)
        .map_err(|_| SigstoreError::unusable(format!("{field}: invalid base64")))
}

pub fn encode(b: &[u8]) -> String {
    STANDARD.encode(b)
}
