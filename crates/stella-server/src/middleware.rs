//! Request middleware, outermost first:
//! [`observe`] gives each request its trace id (from a W3C `traceparent`
//! or fresh), turns any bare 4xx/5xx into a problem document, logs one line
//! (trace id, method, route, status, latency; never headers or query) and
//! records metrics; a request whose head is over [`MAX_HEADER_BYTES`] or
//! [`MAX_HEADER_COUNT`] is answered 431 there, before anything else runs
//! (hyper's own, larger buffer limit answers a bare 431 beyond
//! [`HYPER_MAX_BUF`]). [`rate_limit`] applies the per-token limit and sets the
//! quota headers on every response.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, PROBLEM_CONTENT_TYPE, TRACE_ID};
use crate::ratelimit::{Decision, RateLimiter};
use crate::state::AppState;

/// Largest request head (header names and values, plus 4 bytes a field)
/// served; larger is 431 with a problem body.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Most header fields served.
pub const MAX_HEADER_COUNT: usize = 100;
/// hyper's read buffer (and so request-head) limit, and its header-field
/// array size: above these hyper answers 431 itself, without a body.
pub const HYPER_MAX_BUF: usize = 256 * 1024;
pub const HYPER_MAX_HEADERS: usize = 1024;

/// A problem when the request head is over the limits.
fn oversized_head(headers: &HeaderMap) -> Option<ApiError> {
    let bytes: usize = headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    if headers.len() > MAX_HEADER_COUNT {
        return Some(ApiError::HeadersTooLarge(format!(
            "{} header fields; at most {MAX_HEADER_COUNT} are accepted",
            headers.len()
        )));
    }
    (bytes > MAX_HEADER_BYTES).then(|| {
        ApiError::HeadersTooLarge(format!(
            "the request headers are {bytes} bytes; at most {MAX_HEADER_BYTES} are accepted"
        ))
    })
}

/// The trace id of a valid `traceparent` (version 00), if any.
fn trace_id_from(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("traceparent")?.to_str().ok()?;
    let mut parts = value.trim().split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    };
    let valid = version == "00"
        && parts.next().is_none()
        && hex(trace, 32)
        && hex(parent, 16)
        && hex(flags, 2)
        && trace.bytes().any(|b| b != b'0')
        && parent.bytes().any(|b| b != b'0');
    valid.then(|| trace.to_string())
}

fn fresh_trace_id() -> String {
    let mut bytes = [0u8; 16];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        bytes = uuid::Uuid::new_v4().into_bytes();
    }
    hex::encode(bytes)
}

pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let trace_id = trace_id_from(request.headers()).unwrap_or_else(fresh_trace_id);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "<unmatched>".into());
    let method = request.method().as_str().to_string();
    let oversized = oversized_head(request.headers());
    let response = TRACE_ID
        .scope(trace_id.clone(), async move {
            if let Some(problem) = oversized {
                let mut response = problem.into_response();
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                return response;
            }
            let response = next.run(request).await;
            as_problem(response)
        })
        .await;
    let mut response = response;
    if (response.status().is_client_error() || response.status().is_server_error())
        && matches!(method.as_str(), "POST" | "PUT" | "PATCH")
    {
        // The request body may be unread (e.g. 413 as soon as the cap
        // passed); tell the client this connection will not be reused.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    state
        .metrics
        .observe(&route, &method, status, elapsed.as_secs_f64());
    tracing::info!(
        target: "stella::access",
        trace_id = %trace_id,
        method = %method,
        route = %route,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
    );
    response
}

/// Replaces the body of an error response that is not already a problem.
fn as_problem(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            // The console's HTML error pages already show the problem.
            v.as_bytes().starts_with(PROBLEM_CONTENT_TYPE.as_bytes())
                || v.as_bytes().starts_with(b"text/html")
        });
    if is_problem {
        return response;
    }
    let detail = status.canonical_reason().unwrap_or("error").to_lowercase();
    let (parts, _) = response.into_parts();
    let mut problem = ApiError::Status(status, detail).into_response();
    // Keep headers such as Allow on a 405.
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            problem.headers_mut().insert(name.clone(), value.clone());
        }
    }
    problem
}

fn limiter_key(request: &Request) -> [u8; 32] {
    if let Some(auth) = request.headers().get(header::AUTHORIZATION) {
        let mut material = b"token:".to_vec();
        material.extend_from_slice(auth.as_bytes());
        return RateLimiter::key(&material);
    }
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    RateLimiter::key(format!("peer:{peer}").as_bytes())
}

fn quota_headers(headers: &mut HeaderMap, d: Decision) {
    if let Ok(v) = HeaderValue::from_str(&d.remaining.to_string()) {
        headers.insert("x-stella-quota-remaining", v);
    }
    let reset = i64::try_from(d.reset_at)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        });
    if let Some(v) = reset.and_then(|r| HeaderValue::from_str(&r).ok()) {
        headers.insert("x-stella-reset", v);
    }
}

pub async fn rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let now = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0);
    let decision = state.limiter.check(limiter_key(&request), now);
    let mut response = if decision.allowed {
        next.run(request).await
    } else {
        ApiError::RateLimited {
            retry_after: decision.reset_at.saturating_sub(now).max(1),
        }
        .into_response()
    };
    quota_headers(response.headers_mut(), decision);
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn traceparent_is_honoured_only_when_valid() {
        let mut h = HeaderMap::new();
        h.insert(
            "traceparent",
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        assert_eq!(
            trace_id_from(&h).unwrap(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "zz",
        ] {
            h.insert("traceparent", HeaderValue::from_static(bad));
            assert!(trace_id_from(&h).is_none(), "{bad}");
        }
        assert_eq!(fresh_trace_id().len(), 32);
    }

    #[test]
    fn oversized_heads_are_refused() {
        let mut h = HeaderMap::new();
        h.insert("x-a", HeaderValue::from_static("b"));
        assert!(oversized_head(&h).is_none());
        let big = "v".repeat(MAX_HEADER_BYTES);
        h.insert("x-big", HeaderValue::from_str(&big).unwrap());
        let e = oversized_head(&h).unwrap();
        assert_eq!(e.status().as_u16(), 431);
        let mut many = HeaderMap::new();
        for i in 0..=MAX_HEADER_COUNT {
            many.insert(
                axum::http::HeaderName::from_bytes(format!("x-{i}").as_bytes()).unwrap(),
                HeaderValue::from_static("1"),
            );
        }
        assert!(oversized_head(&many).is_some());
    }
}
