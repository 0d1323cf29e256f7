//! Per-token rate limiting in fixed one-second windows. The key is a hash
//! of the bearer token (the token itself is never kept), or the peer
//! address for calls without one.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// What the limiter decided for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Requests left in the current window.
    pub remaining: u32,
    /// Unix second at which the window resets.
    pub reset_at: u64,
}

pub struct RateLimiter {
    per_second: u32,
    windows: Mutex<HashMap<[u8; 32], (u64, u32)>>,
}

/// Past this many tracked keys, windows that have ended are dropped.
const PRUNE_AT: usize = 10_000;

impl RateLimiter {
    pub fn new(per_second: u32) -> Self {
        Self {
            per_second,
            windows: Mutex::new(HashMap::new()),
        }
    }

    pub fn key(material: &[u8]) -> [u8; 32] {
        Sha256::digest(material).into()
    }

    /// Counts one request for `key` in the window of unix second `now`.
    pub fn check(&self, key: [u8; 32], now: u64) -> Decision {
        let Ok(mut windows) = self.windows.lock() else {
            return Decision {
                allowed: true,
                remaining: 0,
                reset_at: now + 1,
            };
        };
        if windows.len() > PRUNE_AT {
            windows.retain(|_, (second, _)| *second >= now);
        }
        let entry = windows.entry(key).or_insert((now, 0));
        if entry.0 != now {
            *entry = (now, 0);
        }
        let allowed = entry.1 < self.per_second;
        if allowed {
            entry.1 += 1;
        }
        Decision {
            allowed,
            remaining: self.per_second - entry.1,
            reset_at: now + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_allows_limit_then_refuses_then_resets() {
        let l = RateLimiter::new(3);
        let k = RateLimiter::key(b"t");
        let d: Vec<_> = (0..4).map(|_| l.check(k, 100)).collect();
        assert_eq!(d.iter().filter(|d| d.allowed).count(), 3);
        assert_eq!(d[2].remaining, 0);
        assert!(!d[3].allowed);
        assert!(l.check(RateLimiter::key(b"other"), 100).allowed);
        let next = l.check(k, 101);
        assert!(next.allowed);
        assert_eq!(next.remaining, 2);
        assert_eq!(next.reset_at, 102);
    }
}
