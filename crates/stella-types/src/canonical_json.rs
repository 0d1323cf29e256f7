//! Canonical JSON (RFC 8785, the JSON Canonicalization Scheme) for anything
//! Stella signs or compares byte for byte: object members sorted by UTF-16
//! code units, no insignificant whitespace, minimal string escaping, and
//! ECMAScript number formatting.

use serde::Serialize;
use serde_json::Value;

/// Why a value cannot be canonicalized.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CanonicalJsonError {
    #[error("value cannot be represented as JSON: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error("number {0} cannot be represented canonically (not finite)")]
    NonFinite(String),
}

/// Canonical bytes of any serializable value.
pub fn to_canonical_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonicalJsonError> {
    let v = serde_json::to_value(value)?;
    let mut out = Vec::new();
    write_value(&v, &mut out)?;
    Ok(out)
}

/// Canonical bytes of a JSON value.
pub fn canonicalize(value: &Value) -> Result<Vec<u8>, CanonicalJsonError> {
    let mut out = Vec::new();
    write_value(value, &mut out)?;
    Ok(out)
}

fn write_value(v: &Value, out: &mut Vec<u8>) -> Result<(), CanonicalJsonError> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => write_number(n, out)?,
        Value::String(s) => write_string(s, out),
        Value::Array(a) => {
            out.push(b'[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push(b'{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                if let Some(val) = m.get(*k) {
                    write_value(val, out)?;
                }
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

fn write_number(n: &serde_json::Number, out: &mut Vec<u8>) -> Result<(), CanonicalJsonError> {
    if let Some(i) = n.as_i64() {
        out.extend_from_slice(i.to_string().as_bytes());
        return Ok(());
    }
    if let Some(u) = n.as_u64() {
        out.extend_from_slice(u.to_string().as_bytes());
        return Ok(());
    }
    let f = n
        .as_f64()
        .ok_or_else(|| CanonicalJsonError::NonFinite(n.to_string()))?;
    out.extend_from_slice(format_es6(f)?.as_bytes());
    Ok(())
}

/// ECMAScript `Number.prototype.toString` for a finite double.
fn format_es6(f: f64) -> Result<String, CanonicalJsonError> {
    if !f.is_finite() {
        return Err(CanonicalJsonError::NonFinite(f.to_string()));
    }
    if f == 0.0 {
        return Ok("0".to_string());
    }
    let sign = if f < 0.0 { "-" } else { "" };
    // Shortest round-trip digits and exponent from Rust's formatter.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let k = digits.len() as i32;
    let n = exp + 1; // position of the decimal point relative to digits
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = n - 1;
        let esign = if e < 0 { "-" } else { "+" };
        if k == 1 {
            format!("{digits}e{esign}{}", e.abs())
        } else {
            format!("{}.{}e{esign}{}", &digits[..1], &digits[1..], e.abs())
        }
    };
    Ok(format!("{sign}{body}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_and_compacts() {
        let v =
            json!({"b": [1, "x", null], "a": {"d": true, "c": 1.5}, "\u{20ac}": 0, "\r": "\u{1}"});
        let s = String::from_utf8(canonicalize(&v).unwrap()).unwrap();
        assert_eq!(
            s,
            "{\"\\r\":\"\\u0001\",\"a\":{\"c\":1.5,\"d\":true},\"b\":[1,\"x\",null],\"\u{20ac}\":0}"
        );
    }

    #[test]
    fn es6_numbers() {
        // Values from RFC 8785 appendix B.
        let cases = [
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (0.000001, "0.000001"),
            (1e-7, "1e-7"),
            (333333333.3333333, "333333333.3333333"),
            (-5e-324, "-5e-324"),
            (4.35, "4.35"),
            (0.1, "0.1"),
        ];
        for (f, want) in cases {
            assert_eq!(format_es6(f).unwrap(), want, "{f}");
        }
    }

    #[test]
    fn utf16_key_order() {
        // U+1F600 (surrogates D83D..) sorts before U+FB01 in UTF-16 order.
        let v = json!({"\u{fb01}": 1, "\u{1f600}": 2});
        let s = String::from_utf8(canonicalize(&v).unwrap()).unwrap();
        assert!(s.find('\u{1f600}').unwrap() < s.find('\u{fb01}').unwrap());
    }
}
