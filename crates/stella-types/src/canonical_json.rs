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
    canonicalize(&v)
}

/// Canonical bytes of a JSON value.
pub fn canonicalize(value: &Value) -> Result<Vec<u8>, CanonicalJsonError> {
    let mut out = Vec::with_capacity(INITIAL_CAPACITY);
    write_value(value, &mut out)?;
    Ok(out)
}

/// Starting size of the output buffer; it grows by doubling from there.
const INITIAL_CAPACITY: usize = 1024;

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
            let mut members: Vec<(&String, &Value)> = m.iter().collect();
            members.sort_unstable_by(|(a, _), (b, _)| cmp_utf16(a, b));
            out.push(b'{');
            for (i, (k, val)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write_value(val, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// Orders two strings by their UTF-16 code units without transcoding.
///
/// UTF-8 byte order is code point order, and code point order equals UTF-16
/// code unit order except between a supplementary character (U+10000 and
/// up: surrogates D800..DBFF, UTF-8 lead byte F0..F4) and a BMP character in
/// U+E000..U+FFFF (lead byte EE or EF), where UTF-16 puts the supplementary
/// character first. The first differing byte decides: when it is a
/// continuation byte both characters share a lead byte, so they are of the
/// same kind and byte order holds.
fn cmp_utf16(a: &str, b: &str) -> std::cmp::Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    match a.iter().zip(b).find(|(x, y)| x != y) {
        None => a.len().cmp(&b.len()),
        Some((&x, &y)) => {
            let upper_bmp = |c: u8| c == 0xEE || c == 0xEF;
            if (upper_bmp(x) && y >= 0xF0) || (x >= 0xF0 && upper_bmp(y)) {
                y.cmp(&x)
            } else {
                x.cmp(&y)
            }
        }
    }
}

/// The escape for a byte that must not appear raw in a JSON string, if any.
fn escape_for(byte: u8) -> Option<&'static [u8]> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    static CONTROL: [[u8; 6]; 32] = {
        let mut table = [[0u8; 6]; 32];
        let mut i = 0;
        while i < 32 {
            table[i] = [b'\\', b'u', b'0', b'0', HEX[i >> 4], HEX[i & 0xF]];
            i += 1;
        }
        table
    };
    match byte {
        b'"' => Some(b"\\\""),
        b'\\' => Some(b"\\\\"),
        0x08 => Some(b"\\b"),
        0x0C => Some(b"\\f"),
        b'\n' => Some(b"\\n"),
        b'\r' => Some(b"\\r"),
        b'\t' => Some(b"\\t"),
        c if c < 0x20 => CONTROL.get(usize::from(c)).map(|e| e.as_slice()),
        _ => None,
    }
}

/// Writes a JSON string, copying runs of bytes that need no escape whole.
/// Only `"`, `\` and C0 controls are escaped (all ASCII, so a run never
/// splits a UTF-8 sequence).
fn write_string(s: &str, out: &mut Vec<u8>) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut run_start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        if let Some(escape) = escape_for(byte) {
            out.extend_from_slice(bytes.get(run_start..i).unwrap_or_default());
            out.extend_from_slice(escape);
            run_start = i + 1;
        }
    }
    out.extend_from_slice(bytes.get(run_start..).unwrap_or_default());
    out.push(b'"');
}

fn write_number(n: &serde_json::Number, out: &mut Vec<u8>) -> Result<(), CanonicalJsonError> {
    use std::io::Write as _;
    // Writing into a Vec cannot fail.
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
        return Ok(());
    }
    if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
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

    /// The writer as it was before the fast paths (keys sorted by transcoding
    /// to UTF-16, strings written char by char): the new one must produce
    /// the same bytes.
    mod reference {
        use super::super::{CanonicalJsonError, write_number};
        use serde_json::Value;

        pub fn canonicalize(v: &Value) -> Result<Vec<u8>, CanonicalJsonError> {
            let mut out = Vec::new();
            write_value(v, &mut out)?;
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
                        write_value(&m[k.as_str()], out)?;
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
    }

    /// Small deterministic generator (xorshift64*), so failures reproduce.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        /// Strings mixing the characters where the fast paths could go
        /// wrong: escapes, all C0 controls, DEL, non-ASCII of every UTF-8
        /// length, U+D7FF, U+E000..U+FFFF against supplementary characters.
        fn string(&mut self) -> String {
            const TRICKY: &[char] = &[
                'a',
                'b',
                'z',
                'A',
                '0',
                ' ',
                '"',
                '\\',
                '/',
                '\u{7f}',
                '\u{80}',
                '\u{e9}',
                '\u{7ff}',
                '\u{800}',
                '\u{20ac}',
                '\u{d7ff}',
                '\u{e000}',
                '\u{efff}',
                '\u{f000}',
                '\u{fb01}',
                '\u{fffd}',
                '\u{ffff}',
                '\u{10000}',
                '\u{1f600}',
                '\u{1f601}',
                '\u{10ffff}',
            ];
            let len = self.below(6);
            (0..len)
                .map(|_| {
                    if self.below(4) == 0 {
                        char::from_u32(self.below(0x20) as u32).unwrap_or('x')
                    } else {
                        TRICKY[self.below(TRICKY.len() as u64) as usize]
                    }
                })
                .collect()
        }

        fn number(&mut self) -> Value {
            const FLOATS: &[f64] = &[
                0.0,
                -0.0,
                1e21,
                1e20,
                1e-7,
                0.000001,
                4.35,
                -5e-324,
                1.7976931348623157e308,
                333333333.3333333,
                0.1,
                -1.5,
                123456789012345680000.0,
            ];
            match self.below(4) {
                0 => json!(self.next()),
                1 => json!(self.next() as i64),
                2 => json!(FLOATS[self.below(FLOATS.len() as u64) as usize]),
                _ => json!(self.below(1000) as i64 - 500),
            }
        }

        fn value(&mut self, depth: u32) -> Value {
            let pick = if depth == 0 {
                self.below(4)
            } else {
                self.below(6)
            };
            match pick {
                0 => Value::Null,
                1 => Value::Bool(self.below(2) == 0),
                2 => self.number(),
                3 => Value::String(self.string()),
                4 => (0..self.below(5)).map(|_| self.value(depth - 1)).collect(),
                _ => Value::Object(
                    (0..self.below(8))
                        .map(|_| (self.string(), self.value(depth - 1)))
                        .collect(),
                ),
            }
        }
    }

    #[test]
    fn same_bytes_as_reference_on_generated_values() {
        let mut generator = Gen(0x5eed_1234_abcd_ef01);
        for round in 0..3000 {
            let v = generator.value(4);
            let fast = canonicalize(&v).unwrap();
            let slow = reference::canonicalize(&v).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&fast),
                String::from_utf8_lossy(&slow),
                "round {round}: {v}"
            );
        }
    }

    #[test]
    fn same_bytes_as_reference_on_tricky_values() {
        let cases = [
            json!({"\u{e000}": 1, "\u{10000}": 2, "\u{ffff}": 3, "\u{d7ff}": 4, "\u{1f600}": 5}),
            json!({"a\u{efff}": 1, "a\u{10ffff}": 2, "a": 3, "a\u{0}": 4, "": 5}),
            json!({"\u{1f600}x": 1, "\u{1f601}": 2, "\u{1f600}": 3}),
            json!([
                "\u{0}\u{1}\u{1f}\u{7f}",
                "q\"b\\s/",
                "\u{8}\u{c}\n\r\t",
                "tail\""
            ]),
            json!([
                -0.0,
                0.0,
                1e21,
                1e-7,
                u64::MAX,
                i64::MIN,
                9007199254740993u64,
                1.5e300
            ]),
            json!({"z": {"y": [{"b": 1, "a": [{}, []]}]}, "\u{20ac}": "\u{20ac}"}),
        ];
        for v in cases {
            assert_eq!(
                canonicalize(&v).unwrap(),
                reference::canonicalize(&v).unwrap(),
                "{v}"
            );
        }
    }

    #[test]
    fn utf16_comparison_matches_transcoding() {
        let mut generator = Gen(0x0dd5_eed5);
        for _ in 0..20_000 {
            let (a, b) = (generator.string(), generator.string());
            assert_eq!(
                cmp_utf16(&a, &b),
                a.encode_utf16().cmp(b.encode_utf16()),
                "{a:?} vs {b:?}"
            );
        }
    }

    #[test]
    fn serializable_value_matches_its_json_value() {
        #[derive(Serialize)]
        struct Verdict<'a> {
            id: &'a str,
            score: f64,
            tags: Vec<&'a str>,
        }
        let verdict = Verdict {
            id: "CVE-2026-0001\u{1f600}",
            score: -0.0,
            tags: vec!["\u{e000}", "\u{10000}", "ctl\u{2}"],
        };
        let via_value = serde_json::to_value(&verdict).unwrap();
        assert_eq!(
            to_canonical_vec(&verdict).unwrap(),
            reference::canonicalize(&via_value).unwrap()
        );
    }
}
