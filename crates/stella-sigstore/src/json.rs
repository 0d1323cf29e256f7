//! Typed access to protobuf-JSON documents held as `serde_json::Value`, with
//! a clear error naming the field when it is missing, null or mistyped.
//! `null` is treated as absent (protojson may emit it for unset fields).

use serde_json::{Map, Value};

use crate::b64;
use crate::error::SigstoreError;

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

pub fn req_i64(o: &Obj, k: &str, path: &str) -> Result<i64, SigstoreError> {
    opt_i64(o, k, path)?.ok_or_else(|| bad(&format!("{path}.{k}"), "is required"))
}

pub fn opt_bytes(o: &Obj, k: &str, path: &str) -> Result<Option<Vec<u8>>, SigstoreError> {
    let p = format!("{path}.{k}");
    opt_str(o, k, path)?.map(|s| b64::decode(&p, s)).transpose()
}

pub fn req_bytes(o: &Obj, k: &str, path: &str) -> Result<Vec<u8>, SigstoreError> {
    opt_bytes(o, k, path)?.ok_or_else(|| bad(&format!("{path}.{k}"), "is required"))
}
