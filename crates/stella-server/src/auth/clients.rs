//! An in-process cache of client rows (tenant, revoked or not), so a
//! request with a cached token does not read the `clients` table each time.
//!
//! Revocation stays bounded: the database keeps a generation counter that
//! every change to `clients` bumps in the same transaction (migration
//! 0009). The cache reads that counter at most once per `recheck` interval
//! and forgets every row when it has moved. So a revoke, made by any
//! process on the same database, is seen by every server within `recheck`
//! plus one read of the counter. A row read before a counter change can
//! never be stored after it: each row is tagged with the cache epoch it
//! was read under and is dropped if the epoch moved meanwhile.
//!
//! This module holds no secrets (no hashes) and does not read the database
//! itself; [`super::Authority`] drives it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a request needs to know about its token's client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientStatus {
    pub tenant: String,
    pub active: bool,
}

/// Past this many cached clients the cache is emptied (it only saves work).
const CAPACITY: usize = 10_000;

struct State {
    generation: Option<i64>,
    checked_at: Option<Instant>,
    /// Bumped whenever the rows are forgotten.
    epoch: u64,
    clients: HashMap<String, ClientStatus>,
}

pub struct ClientCache {
    recheck: Duration,
    state: Mutex<State>,
}

impl ClientCache {
    /// A cache that trusts a generation read for `recheck`; zero turns
    /// caching off (every lookup misses).
    pub fn new(recheck: Duration) -> Self {
        Self {
            recheck,
            state: Mutex::new(State {
                generation: None,
                checked_at: None,
                epoch: 0,
                clients: HashMap::new(),
            }),
        }
    }

    pub fn enabled(&self) -> bool {
        !self.recheck.is_zero()
    }

    /// Whether the generation counter must be read before trusting rows.
    pub fn needs_recheck(&self, now: Instant) -> bool {
        let Ok(state) = self.state.lock() else {
            return true;
        };
        match state.checked_at {
            Some(at) => now.saturating_duration_since(at) >= self.recheck,
            None => true,
        }
    }

    /// Records the counter read at `now`; forgets every row if it moved.
    pub fn observe_generation(&self, generation: i64, now: Instant) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if state.generation != Some(generation) {
            state.generation = Some(generation);
            state.clients.clear();
            state.epoch = state.epoch.wrapping_add(1);
        }
        state.checked_at = Some(now);
    }

    /// The cached row and, on a miss, the epoch to tag a fresh read with.
    pub fn get(&self, client_id: &str) -> Result<ClientStatus, u64> {
        let Ok(state) = self.state.lock() else {
            return Err(u64::MAX);
        };
        match state.clients.get(client_id) {
            Some(status) if self.enabled() => Ok(status.clone()),
            _ => Err(state.epoch),
        }
    }

    /// Stores a row read under `epoch`, unless the rows were forgotten
    /// since (then the read may predate a revoke).
    pub fn insert(&self, client_id: &str, status: ClientStatus, epoch: u64) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if !self.enabled() || state.epoch != epoch {
            return;
        }
        if state.clients.len() >= CAPACITY {
            state.clients.clear();
        }
        state.clients.insert(client_id.to_string(), status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn active(tenant: &str) -> ClientStatus {
        ClientStatus {
            tenant: tenant.into(),
            active: true,
        }
    }

    #[test]
    fn rows_are_served_until_the_generation_moves() {
        let cache = ClientCache::new(Duration::from_millis(250));
        let t0 = Instant::now();
        assert!(cache.needs_recheck(t0));
        cache.observe_generation(7, t0);
        assert!(!cache.needs_recheck(t0 + Duration::from_millis(100)));
        assert!(cache.needs_recheck(t0 + Duration::from_millis(250)));
        let epoch = cache.get("c").unwrap_err();
        cache.insert("c", active("t"), epoch);
        assert_eq!(cache.get("c"), Ok(active("t")));
        cache.observe_generation(7, t0 + Duration::from_millis(300));
        assert_eq!(
            cache.get("c"),
            Ok(active("t")),
            "same generation keeps rows"
        );
        cache.observe_generation(8, t0 + Duration::from_millis(600));
        assert!(cache.get("c").is_err(), "a new generation forgets rows");
    }

    #[test]
    fn a_row_read_before_a_generation_change_is_not_stored_after_it() {
        let cache = ClientCache::new(Duration::from_millis(250));
        let t0 = Instant::now();
        cache.observe_generation(1, t0);
        let epoch = cache.get("c").unwrap_err();
        // A revoke lands and another request sees the new generation
        // before this (now stale) read is stored.
        cache.observe_generation(2, t0 + Duration::from_millis(300));
        cache.insert("c", active("t"), epoch);
        assert!(cache.get("c").is_err());
    }

    #[test]
    fn zero_interval_never_serves_from_the_cache() {
        let cache = ClientCache::new(Duration::ZERO);
        let t0 = Instant::now();
        cache.observe_generation(1, t0);
        assert!(cache.needs_recheck(t0));
        let epoch = cache.get("c").unwrap_err();
        cache.insert("c", active("t"), epoch);
        assert!(cache.get("c").is_err());
    }
}
