//! DSSE pre-authentication encoding (PAE), the one byte string every DSSE
//! signature covers (DSSE v1 protocol, `protocol.md`):
//! `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, where LEN is the
//! ASCII decimal byte length. Only the encoding lives here; parsing,
//! signing and verifying envelopes are in stella-attest, stella-bundle and
//! stella-sigstore, which all call this function.

/// PAE(payload_type, payload).
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload_type.len() + payload.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::pae;

    #[test]
    fn spec_example() {
        // DSSE protocol.md test vector.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn lengths_are_bytes_not_chars() {
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
        assert_eq!(pae("é", b"x"), "DSSEv1 2 é 1 x".as_bytes());
    }
}
