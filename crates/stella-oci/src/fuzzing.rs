//! Entry points for the fuzz targets in `fuzz/` and the corpus replay test:
//! thin public wrappers around the crate-private parsers of registry
//! responses. Not a stable API (hidden from the docs); nothing here does
//! I/O.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

/// The `rel="next"` target of a `Link` header.
pub fn link_next(header: &str) -> Option<String> {
    crate::registry::referrers::next_link(header)
}

/// The wait a `Retry-After` header value asks for (`None` when the value
/// is not a valid header value or not a delay).
pub fn retry_after(value: &str) -> Option<Duration> {
    let value = HeaderValue::from_str(value).ok()?;
    let mut headers = HeaderMap::new();
    headers.insert(RETRY_AFTER, value);
    crate::registry::client::retry_after(&headers)
}

/// The error codes and the one-line summary of an OCI error body.
pub fn error_body(bytes: &[u8]) -> (Vec<String>, Option<String>) {
    (
        crate::registry::client::error_codes(bytes),
        crate::registry::client::summarize_error_body(bytes),
    )
}
