//! Typed access to protobuf-JSON documents held as `serde_json::Value`, with
//! a clear error naming the field when it is missing, null or mistyped.
//! `null` is treated as absent (protojson may emit it for unset fields).
//! Protobuf has no presence for scalars: an absent or null `int64`/`uint64`
//! is 0 ([`int64_or_zero`]); `bytes` are base64 in either alphabet, padding
//! optional, line breaks ignored ([`decode_bytes`], as Go protojson reads them).

use std::borrow::Cow;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Value};

use crate::error::SigstoreError;

const PADDING_OPTIONAL: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, PADDING_OPTIONAL);
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, PADDING_OPTIONAL);

/// Decodes a protobuf-JSON `bytes` value: standard or URL-safe alphabet
/// (not mixed), padding optional, CR/LF ignored.
pub fn decode_bytes(field: &str, s: &str) -> Result<Vec<u8>, SigstoreError> {
    let text: Cow<'_, str> = if s.contains(['\n', '\r']) {
        Cow::Owned(s.chars().filter(|c| *c != '\n' && *c != '\r').collect())
    } else {
        Cow::Borrowed(s)
    };
    let engine = if text.contains(['-', '_']) {
        &URL_SAFE_LENIENT
    } else {
        &STANDARD_LENIENT
    };
    engine
        .decode(text.as_bytes())
        .map_err(|_| SigstoreError::unusable(format!("{field}: invalid base64")))
}

pub type Obj = Map<String, Value>;

fn bad(path: &str, what: &str) -> SigstoreError {
    SigstoreError::unusable(format!("{path}: {what}"))
}

pub fn as_obj<'a>(v: &'a Value, path: &str) -> Result<&'a Obj, SigstoreError> {
    v.as_object()
        .ok_or_else(|| bad(path, "must be a JSON object"))
}

/// The field, or None when absent or null.
pub fn get<'a>(o: &'a Obj, k: &str) -> Option<&'a Value> {
    o.get(k).filter(|v| !v.is_null())
}

pub fn opt_obj<'a>(o: &'a Obj, k: &str, path: &str) -> Result<Option<&'a Obj>, SigstoreError> {
    get(o, k)
        .map(|v| as_obj(v, &format!("{path}.{k}")))
        .transpose()
}

pub fn req_obj<'a>(o: &'a Obj, k: &str, path: &str) -> Result<&'a Obj, SigstoreError> {
    opt_obj(o, k, path)?.ok_or_else(|| bad(&format!("{path}.{k}"), "is required"))
}

pub fn opt_str<'a>(o: &'a Obj, k: &str, path: &str) -> Result<Option<&'a str>, SigstoreError> {
    match get(o, k) {
        None => Ok(None),
        Some(v) => v
            .as_str()
            .map(Some)
            .ok_or_else(|| bad(&format!("{path}.{k}"), "must be a string")),
    }
}

pub fn req_str<'a>(o: &'a Obj, k: &str, path: &str) -> Result<&'a str, SigstoreError> {
    opt_str(o, k, path)?.ok_or_else(|| bad(&format!("{path}.{k}"), "is required"))
}

pub fn opt_array<'a>(o: &'a Obj, k: &str, path: &str) -> Result<&'a [Value], SigstoreError> {
    match get(o, k) {
        None => Ok(&[]),
        Some(v) => v
            .as_array()
            .map(|a| a.as_slice())
            .ok_or_else(|| bad(&format!("{path}.{k}"), "must be an array")),
    }
}

/// A protobuf int64 (JSON string or number).
pub fn opt_i64(o: &Obj, k: &str, path: &str) -> Result<Option<i64>, SigstoreError> {
    let p = format!("{path}.{k}");
    match get(o, k) {
        None => Ok(None),
        Some(Value::String(s)) => s
            .parse::<i64>()
            .map(Some)
            .map_err(|_| bad(&p, "must be an integer")),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| bad(&p, "must be an integer")),
        Some(_) => Err(bad(&p, "must be an integer")),
    }
}

/// A protobuf `int64`: absent or null means 0 (proto3 JSON omits zero values).
pub fn int64_or_zero(o: &Obj, k: &str, path: &str) -> Result<i64, SigstoreError> {
    Ok(opt_i64(o, k, path)?.unwrap_or(0))
}

pub fn opt_bytes(o: &Obj, k: &str, path: &str) -> Result<Option<Vec<u8>>, SigstoreError> {
    let p = format!("{path}.{k}");
    opt_str(o, k, path)?
        .map(|s| decode_bytes(&p, s))
        .transpose()
}

pub fn req_bytes(o: &Obj, k: &str, path: &str) -> Result<Vec<u8>, SigstoreError> {
    opt_bytes(o, k, path)?.ok_or_else(|| bad(&format!("{path}.{k}"), "is required"))
}
