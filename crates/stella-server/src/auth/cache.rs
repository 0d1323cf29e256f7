//! A bounded cache of our own access tokens whose ES256 signature,
//! issuer and audience have already been checked, so a repeat request
//! skips the signature verification. Entries are keyed by the SHA-256 of
//! the token (the token itself is never stored), live until the token's
//! `exp`, and are dropped as soon as their signing key is no longer
//! published. This module does not check the client: revocation is
//! checked by the caller on every request, cached or not.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// The verified claims kept for a cached token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedToken {
    pub kid: String,
    pub exp: i64,
    pub sub: String,
    pub tenant: String,
    pub scope: String,
}

/// Verified tokens by SHA-256 of the token, at most `capacity` of them.
pub struct TokenCache {
    capacity: usize,
    entries: Mutex<HashMap<[u8; 32], VerifiedToken>>,
}

fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The cached claims of `token` if it has not expired at `now` and its
    /// key id passes `key_published`; a stale entry is removed.
    pub fn get(
        &self,
        token: &str,
        now: i64,
        key_published: impl Fn(&str) -> bool,
    ) -> Option<VerifiedToken> {
        let k = key(token);
        let mut entries = self.entries.lock().ok()?;
        let hit = entries.get(&k)?;
        if hit.exp > now && key_published(&hit.kid) {
            return Some(hit.clone());
        }
        entries.remove(&k);
        None
    }

    /// Remembers a verified token. When full, expired entries go first;
    /// if none has expired the whole cache is emptied (it only saves work).
    pub fn insert(&self, token: &str, verified: VerifiedToken, now: i64) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= self.capacity {
            entries.retain(|_, v| v.exp > now);
        }
        if entries.len() >= self.capacity {
            entries.clear();
        }
        if self.capacity > 0 {
            entries.insert(key(token), verified);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(kid: &str, exp: i64) -> VerifiedToken {
        VerifiedToken {
            kid: kid.into(),
            exp,
            sub: "c".into(),
            tenant: "t".into(),
            scope: "vex.read".into(),
        }
    }

    #[test]
    fn hit_until_exp_then_gone() {
        let cache = TokenCache::new(4);
        cache.insert("tok", token("k1", 100), 10);
        assert_eq!(cache.get("tok", 99, |_| true), Some(token("k1", 100)));
        assert_eq!(cache.get("other", 99, |_| true), None);
        assert_eq!(cache.get("tok", 100, |_| true), None);
        assert_eq!(cache.len(), 0, "an expired entry is removed");
    }

    #[test]
    fn entry_is_dropped_when_its_key_is_no_longer_published() {
        let cache = TokenCache::new(4);
        cache.insert("tok", token("k1", 100), 10);
        assert_eq!(cache.get("tok", 50, |kid| kid == "k2"), None);
        assert_eq!(cache.get("tok", 50, |_| true), None, "it stays dropped");
    }

    #[test]
    fn size_is_bounded_and_expired_entries_are_evicted_first() {
        let cache = TokenCache::new(3);
        cache.insert("a", token("k", 20), 10);
        cache.insert("b", token("k", 100), 10);
        cache.insert("c", token("k", 100), 10);
        cache.insert("d", token("k", 100), 30);
        assert_eq!(cache.len(), 3);
        assert!(cache.get("a", 30, |_| true).is_none());
        assert!(cache.get("b", 30, |_| true).is_some());
        assert!(cache.get("d", 30, |_| true).is_some());
        for i in 0..10 {
            cache.insert(&format!("x{i}"), token("k", 100), 30);
        }
        assert!(cache.len() <= 3);
    }

    #[test]
    fn keys_are_digests_not_tokens() {
        let cache = TokenCache::new(2);
        let secret = "eyJhbGciOiJFUzI1NiJ9.secret-token-body.sig";
        cache.insert(secret, token("k", 100), 10);
        let entries = cache.entries.lock().unwrap();
        let stored: Vec<_> = entries.keys().copied().collect();
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        assert_eq!(stored, vec![digest]);
        let dump = format!("{:?}", *entries);
        assert!(!dump.contains("secret-token-body"));
    }
}
