//! A bounded cache of parsed scanner reports, for a service that reports
//! on the same images again and again.
//!
//! [`collect`](crate::gather::collect) asks a [`ParsedReports`] (when it is
//! given one) before it fetches and parses a scanner-report referrer, and
//! hands it what it parsed. The key is the referrer's manifest digest (and
//! how the document is read: a vulns attestation's statement or a plain
//! JSON document, so an entry is reused only for the same reading): the
//! registry client checks every manifest and blob it fetches against its
//! digest, and the manifest names the digests of its layers, so the same
//! key always stands for the same bytes and the same parse. What is cached
//! is the parse of the document only; the engine still lists and verifies
//! the image's referrers on every report (so a deleted or re-signed report
//! is seen), and whether the report is about this image is checked on
//! every use.
//!
//! [`ScannerCache`] is the shared store: entries keyed by (tenant, reading,
//! digest), bounded by a count and by an estimate of their memory, least
//! recently used evicted first. [`ScannerCache::for_tenant`] is the view one request
//! uses; it can only see and add its own tenant's entries, so one tenant's
//! entry never serves another (whose registry credentials may not even
//! reach that report).
//!
//! One cache must serve one set of [`Limits`](crate::findings::Limits):
//! an entry records a parse under the limits it was parsed with.
//!
//! Not here: fetching, verification, VEX, judging.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use stella_types::Digest;

use crate::findings::{Finding, ScannerReport};

/// What parsing a referrer's document gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A scanner report.
    Report(Arc<ScannerReport>),
    /// Plain JSON that is no scanner report (skipped by the report).
    NotAReport,
}

impl Parsed {
    /// An estimate of the memory the entry holds, in bytes.
    pub fn weight(&self) -> u64 {
        match self {
            Parsed::NotAReport => ENTRY_OVERHEAD,
            Parsed::Report(r) => ENTRY_OVERHEAD.saturating_add(report_weight(r)),
        }
    }
}

/// Map slots, key and bookkeeping of one entry, roughly.
const ENTRY_OVERHEAD: u64 = 256;

fn report_weight(r: &ScannerReport) -> u64 {
    let subjects = r.subjects.len() * std::mem::size_of::<Digest>();
    let findings: usize = r.findings.iter().map(finding_weight).sum();
    u64::try_from(subjects.saturating_add(findings)).unwrap_or(u64::MAX)
}

fn finding_weight(f: &Finding) -> usize {
    std::mem::size_of::<Finding>()
        + f.purl.len()
        + f.vulnerability.len()
        + f.aliases
            .iter()
            .map(|a| a.len() + std::mem::size_of::<String>())
            .sum::<usize>()
        + f.fixed_version.as_ref().map_or(0, String::len)
}

/// The hook [`collect`](crate::gather::collect) uses: parsed documents by
/// the referrer manifest digest they came from and how the document was
/// read (`kind`: the statement of a vulns attestation, or a plain JSON
/// document), so a parse is only reused for the same reading.
pub trait ParsedReports: Send + Sync {
    fn get(&self, digest: &Digest, kind: &'static str) -> Option<Parsed>;
    fn put(&self, digest: &Digest, kind: &'static str, parsed: Parsed);
}

/// The cache's size bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheBounds {
    /// Most entries (0 disables the cache).
    pub max_entries: usize,
    /// Most estimated bytes over all entries; an entry over it alone is
    /// not cached.
    pub max_bytes: u64,
}

/// Counters since start, and the current size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
    pub entries: usize,
    pub bytes: u64,
}

type Key = (String, &'static str, Digest);

struct Slot {
    parsed: Parsed,
    weight: u64,
    used: u64,
}

#[derive(Default)]
struct Lru {
    slots: HashMap<Key, Slot>,
    /// Last use → key; the first entry is the least recently used.
    order: BTreeMap<u64, Key>,
    clock: u64,
    bytes: u64,
}

impl Lru {
    fn touch(&mut self, key: &Key) -> Option<Parsed> {
        self.clock += 1;
        let now = self.clock;
        let slot = self.slots.get_mut(key)?;
        self.order.remove(&slot.used);
        slot.used = now;
        self.order.insert(now, key.clone());
        Some(slot.parsed.clone())
    }

    fn remove(&mut self, key: &Key) {
        if let Some(slot) = self.slots.remove(key) {
            self.order.remove(&slot.used);
            self.bytes = self.bytes.saturating_sub(slot.weight);
        }
    }

    fn evict_oldest(&mut self) -> bool {
        let Some((_, key)) = self.order.pop_first() else {
            return false;
        };
        if let Some(slot) = self.slots.remove(&key) {
            self.bytes = self.bytes.saturating_sub(slot.weight);
        }
        true
    }
}

/// Parsed scanner reports of all tenants, bounded, least recently used
/// evicted first.
pub struct ScannerCache {
    bounds: CacheBounds,
    lru: Mutex<Lru>,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

impl ScannerCache {
    pub fn new(bounds: CacheBounds) -> Self {
        ScannerCache {
            bounds,
            lru: Mutex::new(Lru::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    pub fn bounds(&self) -> CacheBounds {
        self.bounds
    }

    /// The view of one tenant's entries.
    pub fn for_tenant<'a>(&'a self, tenant: &str) -> TenantCache<'a> {
        TenantCache {
            cache: self,
            tenant: tenant.to_string(),
        }
    }

    pub fn stats(&self) -> CacheStats {
        let lru = self.lock();
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            entries: lru.slots.len(),
            bytes: lru.bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Lru> {
        // A panic elsewhere while holding the lock leaves a consistent map
        // (every mutation completes before it can unwind); keep using it.
        self.lru
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn get(&self, key: &Key) -> Option<Parsed> {
        let found = self.lock().touch(key);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    fn put(&self, key: Key, parsed: Parsed) {
        let weight = parsed.weight();
        if self.bounds.max_entries == 0 || weight > self.bounds.max_bytes {
            return;
        }
        let mut lru = self.lock();
        lru.remove(&key);
        let mut evicted = 0;
        while lru.slots.len() >= self.bounds.max_entries
            || lru.bytes.saturating_add(weight) > self.bounds.max_bytes
        {
            if !lru.evict_oldest() {
                break;
            }
            evicted += 1;
        }
        lru.clock += 1;
        let used = lru.clock;
        lru.order.insert(used, key.clone());
        lru.bytes = lru.bytes.saturating_add(weight);
        lru.slots.insert(
            key,
            Slot {
                parsed,
                weight,
                used,
            },
        );
        drop(lru);
        self.evictions.fetch_add(evicted, Ordering::Relaxed);
    }
}

/// One tenant's view of a [`ScannerCache`].
pub struct TenantCache<'a> {
    cache: &'a ScannerCache,
    tenant: String,
}

impl ParsedReports for TenantCache<'_> {
    fn get(&self, digest: &Digest, kind: &'static str) -> Option<Parsed> {
        self.cache.get(&(self.tenant.clone(), kind, digest.clone()))
    }

    fn put(&self, digest: &Digest, kind: &'static str, parsed: Parsed) {
        self.cache
            .put((self.tenant.clone(), kind, digest.clone()), parsed);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::findings::ReportFormat;

    const K: &str = "json";

    fn digest(n: u8) -> Digest {
        Digest::sha256_of(&[n])
    }

    fn report(n: u8, findings: usize) -> Parsed {
        let finding = Finding {
            purl: format!("pkg:npm/p{n}@1.0.0"),
            vulnerability: format!("CVE-2026-{n:04}"),
            aliases: Vec::new(),
            severity: stella_verify::policy::FindingSeverity::High,
            fixed_version: None,
            published: None,
            source: digest(n),
        };
        Parsed::Report(Arc::new(ScannerReport {
            format: ReportFormat::Trivy,
            digest: digest(n),
            subjects: Vec::new(),
            findings: vec![finding; findings],
        }))
    }

    fn bounds(max_entries: usize, max_bytes: u64) -> CacheBounds {
        CacheBounds {
            max_entries,
            max_bytes,
        }
    }

    #[test]
    fn second_lookup_hits_and_tenants_do_not_share() {
        let cache = ScannerCache::new(bounds(8, 1 << 20));
        let a = cache.for_tenant("a");
        let b = cache.for_tenant("b");
        assert_eq!(a.get(&digest(1), K), None);
        a.put(&digest(1), K, report(1, 3));
        assert_eq!(a.get(&digest(1), K), Some(report(1, 3)));
        assert_eq!(
            b.get(&digest(1), K),
            None,
            "tenant b must not see a's entry"
        );
        assert_eq!(a.get(&digest(1), "vulns"), None, "another reading");
        let s = cache.stats();
        assert_eq!((s.hits, s.misses, s.entries), (1, 3, 1));
    }

    #[test]
    fn entry_bound_evicts_least_recently_used() {
        let cache = ScannerCache::new(bounds(2, 1 << 20));
        let t = cache.for_tenant("t");
        t.put(&digest(1), K, Parsed::NotAReport);
        t.put(&digest(2), K, Parsed::NotAReport);
        assert!(t.get(&digest(1), K).is_some(), "1 is now the most recent");
        t.put(&digest(3), K, Parsed::NotAReport);
        assert!(t.get(&digest(2), K).is_none(), "2 was least recently used");
        assert!(t.get(&digest(1), K).is_some());
        assert!(t.get(&digest(3), K).is_some());
        let s = cache.stats();
        assert_eq!((s.entries, s.evictions), (2, 1));
    }

    #[test]
    fn byte_bound_is_respected() {
        let one = report(1, 100).weight();
        let cache = ScannerCache::new(bounds(100, one * 2 + one / 2));
        let t = cache.for_tenant("t");
        for n in 1..=5 {
            t.put(&digest(n), K, report(n, 100));
            assert!(cache.stats().bytes <= one * 2 + one / 2);
        }
        let s = cache.stats();
        assert_eq!((s.entries, s.evictions), (2, 3));
        assert!(t.get(&digest(5), K).is_some() && t.get(&digest(4), K).is_some());
        // Bigger than the whole bound: not cached, nothing evicted for it.
        t.put(&digest(9), K, report(9, 1000));
        assert!(t.get(&digest(9), K).is_none());
        assert_eq!(cache.stats().entries, 2);
    }

    #[test]
    fn zero_entries_disables() {
        let cache = ScannerCache::new(bounds(0, 1 << 20));
        let t = cache.for_tenant("t");
        t.put(&digest(1), K, Parsed::NotAReport);
        assert!(t.get(&digest(1), K).is_none());
        assert_eq!(cache.stats().entries, 0);
    }
}
