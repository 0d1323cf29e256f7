//! Tolerant PEM (RFC 7468) reader: finds every `-----BEGIN <label>-----` …
//! `-----END <label>-----` block, ignores text around blocks, decodes the base64
//! body (whitespace ignored). Does not handle legacy OpenSSL encrypted PEM
//! headers (`Proc-Type: 4,ENCRYPTED`): those are reported as unsupported.

use crate::CryptoError;
use base64::Engine;

/// One decoded PEM block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemBlock {
    /// The label, e.g. `PUBLIC KEY`, `CERTIFICATE`.
    pub label: String,
    /// The DER bytes.
    pub der: Vec<u8>,
}

/// Largest PEM text parsed (keys and certificate chains are far smaller).
pub const MAX_PEM_BYTES: usize = 4 * 1024 * 1024;

/// Parses every PEM block in `text`, in order.
pub fn parse_all(text: &str) -> Result<Vec<PemBlock>, CryptoError> {
    if text.len() > MAX_PEM_BYTES {
        return Err(CryptoError::MalformedKey(format!(
            "PEM text larger than {MAX_PEM_BYTES} bytes"
        )));
    }
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        let mut closed = false;
        for inner in lines.by_ref() {
            let inner = inner.trim();
            if inner == end {
                closed = true;
                break;
            }
            if inner.contains(':') {
                return Err(CryptoError::UnsupportedAlgorithm(format!(
                    "PEM block {label} has headers (legacy OpenSSL encryption?); convert it to PKCS#8"
                )));
            }
            body.push_str(inner);
        }
        if !closed {
            return Err(CryptoError::MalformedKey(format!(
                "PEM block {label} has no END line"
            )));
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|e| {
                CryptoError::MalformedKey(format!("PEM block {label}: bad base64: {e}"))
            })?;
        blocks.push(PemBlock {
            label: label.to_string(),
            der,
        });
    }
    Ok(blocks)
}

/// Encodes DER as one PEM block with 64-column lines.
pub fn encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    let bytes = b64.as_bytes();
    for chunk in bytes.chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_multiple_blocks() {
        let a = encode("PUBLIC KEY", &[1, 2, 3]);
        let b = encode("CERTIFICATE", &[4u8; 100]);
        let text = format!("junk\n{a}between\n{b}");
        let blocks = parse_all(&text).unwrap_or_default();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].label, "PUBLIC KEY");
        assert_eq!(blocks[1].der, vec![4u8; 100]);
    }

    #[test]
    fn unterminated_and_bad_base64() {
        assert!(parse_all("-----BEGIN X-----\nAAAA\n").is_err());
        assert!(parse_all("-----BEGIN X-----\n!!!!\n-----END X-----\n").is_err());
    }
}
