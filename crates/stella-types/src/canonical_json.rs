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
///
/// Serialises straight into the output (no intermediate `Value`): each
/// object's members are written as they come and reordered in place when the
/// object ends. The bytes are the same as
/// `canonicalize(&serde_json::to_value(value)?)`, including for a key written
/// twice (the last value wins) and for non-finite floats (`null`).
pub fn to_canonical_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonicalJsonError> {
    to_canonical_vec_with_capacity(value, INITIAL_CAPACITY)
}

/// [`to_canonical_vec`] into an output buffer of `capacity` bytes to start
/// with: a caller that expects megabytes saves the buffer's regrowth (each
/// doubling copies everything written so far). The bytes do not depend on
/// `capacity`.
pub fn to_canonical_vec_with_capacity<T: Serialize + ?Sized>(
    value: &T,
    capacity: usize,
) -> Result<Vec<u8>, CanonicalJsonError> {
    let mut out = Vec::with_capacity(capacity);
    append_canonical(&mut out, value)?;
    Ok(out)
}

/// Appends the canonical bytes of `value` to `out` (a caller reusing one
/// buffer, or building a document from canonical parts). What `out` held
/// before is left as it was; after an error `out` may end in a partial value.
pub fn append_canonical<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
) -> Result<(), CanonicalJsonError> {
    let mut state = StreamState {
        out: std::mem::take(out),
        ..StreamState::default()
    };
    let formatter = CanonicalFormatter { state: &mut state };
    let mut serializer = serde_json::Serializer::with_formatter(std::io::sink(), formatter);
    let result = value.serialize(&mut serializer);
    *out = state.out;
    result?;
    Ok(())
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
    cmp_utf16_bytes(a.as_bytes(), b.as_bytes())
}

/// [`cmp_utf16`] on UTF-8 bytes.
fn cmp_utf16_bytes(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
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

/// Output and open objects of one streaming serialisation.
#[derive(Default)]
struct StreamState {
    out: Vec<u8>,
    objects: Vec<OpenObject>,
    /// Inside an object key: its unescaped text is collected too.
    in_key: bool,
    /// Finished objects' emptied buffers, reused by the next objects (a
    /// report has thousands of small objects; this saves two allocations
    /// and frees per object).
    spare: Vec<OpenObject>,
}

/// An object being written: where its members start in the output, and each
/// member's unescaped key (in `keys`) and written bytes (`key:value`).
#[derive(Default)]
struct OpenObject {
    start: usize,
    keys: Vec<u8>,
    members: Vec<Member>,
    key_start: usize,
    member_start: usize,
}

struct Member {
    key: std::ops::Range<usize>,
    bytes: std::ops::Range<usize>,
}

/// A `serde_json` formatter writing canonical JSON into its own buffer (the
/// serializer's writer is a sink). Strings and numbers use the same writers
/// as [`canonicalize`]; objects are sorted when they end.
struct CanonicalFormatter<'a> {
    state: &'a mut StreamState,
}

impl CanonicalFormatter<'_> {
    fn write_raw(&mut self, bytes: &[u8]) {
        self.state.out.extend_from_slice(bytes);
        if self.state.in_key
            && let Some(object) = self.state.objects.last_mut()
        {
            object.keys.extend_from_slice(bytes);
        }
    }

    fn write_integer(&mut self, n: impl std::fmt::Display) -> std::io::Result<()> {
        use std::io::Write as _;
        let start = self.state.out.len();
        write!(self.state.out, "{n}")?;
        if self.state.in_key {
            let written = self.state.out.get(start..).unwrap_or_default().to_vec();
            if let Some(object) = self.state.objects.last_mut() {
                object.keys.extend_from_slice(&written);
            }
        }
        Ok(())
    }

    /// ECMAScript form for values; map keys that are floats keep
    /// `serde_json`'s own spelling, as `serde_json::to_value` gives them.
    fn write_float(&mut self, f: f64) -> std::io::Result<()> {
        if self.state.in_key {
            let mut text = Vec::new();
            serde_json::ser::Formatter::write_f64(
                &mut serde_json::ser::CompactFormatter,
                &mut text,
                f,
            )?;
            self.write_raw(&text);
            return Ok(());
        }
        let text = format_es6(f).map_err(std::io::Error::other)?;
        self.write_raw(text.as_bytes());
        Ok(())
    }
}

/// Rewrites the members of a finished object in UTF-16 key order. A key
/// written twice keeps its last value, as in a `serde_json::Map`.
fn close_object(out: &mut Vec<u8>, object: &OpenObject) {
    let key = |m: &Member| object.keys.get(m.key.clone()).unwrap_or_default();
    let in_order = object.members.windows(2).all(|w| match w {
        [a, b] => cmp_utf16_bytes(key(a), key(b)).is_lt(),
        _ => true,
    });
    if !in_order {
        let mut members: Vec<&Member> = object.members.iter().collect();
        // Stable, so of equal keys the last written stays last.
        members.sort_by(|a, b| cmp_utf16_bytes(key(a), key(b)));
        let mut kept: Vec<&Member> = Vec::with_capacity(members.len());
        for member in members {
            match kept.last_mut() {
                Some(last) if key(last) == key(member) => *last = member,
                _ => kept.push(member),
            }
        }
        let written = out.split_off(object.start);
        for (i, member) in kept.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let range = member.bytes.start - object.start..member.bytes.end - object.start;
            out.extend_from_slice(written.get(range).unwrap_or_default());
        }
    }
    out.push(b'}');
}

fn out_of_range() -> std::io::Error {
    std::io::Error::other("number out of range")
}

impl serde_json::ser::Formatter for CanonicalFormatter<'_> {
    fn write_null<W: ?Sized + std::io::Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.write_raw(b"null");
        Ok(())
    }
    fn write_bool<W: ?Sized + std::io::Write>(
        &mut self,
        _: &mut W,
        b: bool,
    ) -> std::io::Result<()> {
        self.write_raw(if b { b"true" } else { b"false" });
        Ok(())
    }
    fn write_i8<W: ?Sized + std::io::Write>(&mut self, _: &mut W, n: i8) -> std::io::Result<()> {
        self.write_integer(n)
    }
    fn write_i16<W: ?Sized + std::io::Write>(&mut self, _: &mut W, n: i16) -> std::io::Result<()> {
        self.write_integer(n)
    }
    fn write_i32<W: ?Sized + std::io::Write>(&mut self, _: &mut W, n: i32) -> std::io::Result<()> {
        self.write_integer(n)
    }
    fn write_i64<W: ?Sized + std::io::Write>(&mut self, _: &mut W, n: i64) -> std::io::Result<()> {
        self.write_integer(n)
    }
    fn write_i128<W: ?Sized + std::io::Write>(
        &mut self,
        _: &mut W,
        n: i128,
    ) -> std::io::Result<()> {
        // Like `serde_json::Value`, which holds 64-bit integers only.
        if i64::try_from(n).is_ok() || u64::try_from(n).is_ok() {
            self.write_integer(n)
        } else {
            Err(out_of_range())
        }
    }
    fn write_u8<W: ?Sized + std::io::Write>(&mut self, _: &mut W, n: u8) -> std::io::Result<()> {
        self.write_integer(n)
    }
    fn write_u16<W: ?Sized + std::io::Write>(&mut self, _: &mut W, n: u16) -> std::io::Result<()> {
        self.write_integer(n)
    }
    fn write_u32<W: ?Sized + std::io::Write>(&mut self, _: &mut W, n: u32) -> std::io::Result<()> {
        self.write_integer(n)
    }
    fn write_u64<W: ?Sized + std::io::Write>(&mut self, _: &mut W, n: u64) -> std::io::Result<()> {
        self.write_integer(n)
    }
    fn write_u128<W: ?Sized + std::io::Write>(
        &mut self,
        _: &mut W,
        n: u128,
    ) -> std::io::Result<()> {
        if u64::try_from(n).is_ok() {
            self.write_integer(n)
        } else {
            Err(out_of_range())
        }
    }
    fn write_f32<W: ?Sized + std::io::Write>(&mut self, _: &mut W, f: f32) -> std::io::Result<()> {
        if self.state.in_key {
            let mut text = Vec::new();
            serde_json::ser::Formatter::write_f32(
                &mut serde_json::ser::CompactFormatter,
                &mut text,
                f,
            )?;
            self.write_raw(&text);
            return Ok(());
        }
        self.write_float(f64::from(f))
    }
    fn write_f64<W: ?Sized + std::io::Write>(&mut self, _: &mut W, f: f64) -> std::io::Result<()> {
        self.write_float(f)
    }
    fn write_number_str<W: ?Sized + std::io::Write>(
        &mut self,
        _: &mut W,
        s: &str,
    ) -> std::io::Result<()> {
        self.write_raw(s.as_bytes());
        Ok(())
    }
    fn begin_string<W: ?Sized + std::io::Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.state.out.push(b'"');
        Ok(())
    }
    fn end_string<W: ?Sized + std::io::Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.state.out.push(b'"');
        Ok(())
    }
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        _: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        // serde_json hands over runs without characters that need escaping.
        self.write_raw(fragment.as_bytes());
        Ok(())
    }
    fn write_char_escape<W: ?Sized + std::io::Write>(
        &mut self,
        _: &mut W,
        escape: serde_json::ser::CharEscape,
    ) -> std::io::Result<()> {
        use serde_json::ser::CharEscape;
        let byte = match escape {
            CharEscape::Quote => b'"',
            CharEscape::ReverseSolidus => b'\\',
            CharEscape::Solidus => b'/',
            CharEscape::Backspace => 0x08,
            CharEscape::FormFeed => 0x0C,
            CharEscape::LineFeed => b'\n',
            CharEscape::CarriageReturn => b'\r',
            CharEscape::Tab => b'\t',
            CharEscape::AsciiControl(c) => c,
        };
        match escape_for(byte) {
            Some(escaped) => self.state.out.extend_from_slice(escaped),
            None => self.state.out.push(byte),
        }
        if self.state.in_key
            && let Some(object) = self.state.objects.last_mut()
        {
            object.keys.push(byte);
        }
        Ok(())
    }
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.state.out.push(b'[');
        Ok(())
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.state.out.push(b']');
        Ok(())
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        _: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if !first {
            self.state.out.push(b',');
        }
        Ok(())
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        Ok(())
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.state.out.push(b'{');
        let mut object = self.state.spare.pop().unwrap_or_default();
        object.start = self.state.out.len();
        self.state.objects.push(object);
        Ok(())
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        let mut object = self
            .state
            .objects
            .pop()
            .ok_or_else(|| std::io::Error::other("unbalanced object"))?;
        close_object(&mut self.state.out, &object);
        object.keys.clear();
        object.members.clear();
        self.state.spare.push(object);
        Ok(())
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        _: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if !first {
            self.state.out.push(b',');
        }
        let member_start = self.state.out.len();
        if let Some(object) = self.state.objects.last_mut() {
            object.member_start = member_start;
            object.key_start = object.keys.len();
        }
        self.state.in_key = true;
        Ok(())
    }
    fn end_object_key<W: ?Sized + std::io::Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.state.in_key = false;
        Ok(())
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.state.out.push(b':');
        Ok(())
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        let end = self.state.out.len();
        if let Some(object) = self.state.objects.last_mut() {
            object.members.push(Member {
                key: object.key_start..object.keys.len(),
                bytes: object.member_start..end,
            });
        }
        Ok(())
    }
    fn write_raw_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        _: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        // A `RawValue` is parsed and canonicalized like any other value.
        let value: Value = serde_json::from_str(fragment)?;
        let bytes = canonicalize(&value).map_err(std::io::Error::other)?;
        self.write_raw(&bytes);
        Ok(())
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

/// Appends `s` as a canonical JSON string, quotes included: only `"`, `\`
/// and C0 controls are escaped (`\b \t \n \f \r` short, the others
/// `\u00xx`). For a caller writing a document of known shape straight as
/// canonical JSON (members in canonical order) instead of through serde.
pub fn append_canonical_str(out: &mut Vec<u8>, s: &str) {
    write_string(s, out);
}

/// Writes a JSON string, copying runs of bytes that need no escape whole.
/// Only `"`, `\` and C0 controls are escaped (all ASCII, so a run never
/// splits a UTF-8 sequence).
fn write_string(s: &str, out: &mut Vec<u8>) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // Most strings need no escape: one pass without early exit (which the
    // compiler turns into wide compares) says so, then one copy.
    let needs_escape = bytes.iter().fold(false, |any, &b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if !needs_escape {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
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
            let slow = reference::canonicalize(&v).unwrap();
            let fast = canonicalize(&v).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&fast),
                String::from_utf8_lossy(&slow),
                "round {round}: {v}"
            );
            let streamed = to_canonical_vec(&v).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&streamed),
                String::from_utf8_lossy(&slow),
                "streamed, round {round}: {v}"
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
            let slow = reference::canonicalize(&v).unwrap();
            assert_eq!(canonicalize(&v).unwrap(), slow, "{v}");
            assert_eq!(to_canonical_vec(&v).unwrap(), slow, "streamed {v}");
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

    /// Shapes a `Value` never shows the streaming writer: typed map keys
    /// (integers, booleans, floats, chars), `f32`, unit and newtype enum
    /// variants, flattened structs, byte slices, non-finite floats (null).
    #[test]
    fn streamed_serde_shapes_match_value_path() {
        use std::collections::BTreeMap;
        #[derive(Serialize)]
        enum Kind {
            Unit,
            Newtype(u8),
            Struct { z: i8, a: f32 },
        }
        #[derive(Serialize)]
        struct Inner {
            zeta: u16,
            alpha: Option<&'static str>,
        }
        #[derive(Serialize)]
        struct Outer {
            #[serde(flatten)]
            inner: Inner,
            beta: Vec<Kind>,
            #[serde(with = "serde_bytes_as_seq")]
            bytes: Vec<u8>,
            ints: BTreeMap<i64, bool>,
            bools: BTreeMap<bool, ()>,
            floats: Vec<(String, f64)>,
            chars: BTreeMap<char, u128>,
            small: f32,
            nan: f64,
        }
        mod serde_bytes_as_seq {
            pub fn serialize<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(b)
            }
        }
        let outer = Outer {
            inner: Inner {
                zeta: 7,
                alpha: None,
            },
            beta: vec![Kind::Unit, Kind::Newtype(3), Kind::Struct { z: -1, a: 0.1 }],
            bytes: vec![0, 34, 255],
            ints: [(-10, true), (2, false), (10, true)].into_iter().collect(),
            bools: [(true, ()), (false, ())].into_iter().collect(),
            floats: vec![("\u{1f600}".into(), 1e21), ("\u{e000}".into(), -0.0)],
            chars: [
                ('\u{e000}', 1),
                ('\u{10000}', u128::from(u64::MAX)),
                ('"', 0),
            ]
            .into_iter()
            .collect(),
            small: 3.4028235e38,
            nan: f64::NAN,
        };
        let via_value = serde_json::to_value(&outer).unwrap();
        assert_eq!(
            String::from_utf8(to_canonical_vec(&outer).unwrap()).unwrap(),
            String::from_utf8(reference::canonicalize(&via_value).unwrap()).unwrap()
        );
        struct FloatKeys;
        impl Serialize for FloatKeys {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut map = s.serialize_map(Some(3))?;
                map.serialize_entry(&1.0f64, &1.0f64)?;
                map.serialize_entry(&0.5f32, &1e21f64)?;
                map.serialize_entry(&-0.0f64, &0.1f32)?;
                map.end()
            }
        }
        let via_value = serde_json::to_value(FloatKeys).unwrap();
        assert_eq!(
            String::from_utf8(to_canonical_vec(&FloatKeys).unwrap()).unwrap(),
            String::from_utf8(reference::canonicalize(&via_value).unwrap()).unwrap()
        );
    }

    #[test]
    fn streamed_duplicate_keys_keep_the_last_like_value_path() {
        struct Twice;
        impl Serialize for Twice {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut map = s.serialize_map(None)?;
                map.serialize_entry("b", &1)?;
                map.serialize_entry("a", &2)?;
                map.serialize_entry("b", &3)?;
                map.serialize_entry("c", &[4])?;
                map.serialize_entry("c", &5)?;
                map.end()
            }
        }
        let via_value = serde_json::to_value(Twice).unwrap();
        let want = reference::canonicalize(&via_value).unwrap();
        assert_eq!(want, br#"{"a":2,"b":3,"c":5}"#);
        assert_eq!(to_canonical_vec(&Twice).unwrap(), want);
    }

    #[test]
    fn streamed_errors_like_value_path() {
        assert!(serde_json::to_value(u128::MAX).is_err());
        assert!(to_canonical_vec(&u128::MAX).is_err());
        assert!(to_canonical_vec(&i128::MIN).is_err());
        assert_eq!(to_canonical_vec(&(-5i128)).unwrap(), b"-5");
    }
}
