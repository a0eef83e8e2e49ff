//! The RADIUS duplicate cache (SPEC R-2, RFC 5080 §2.2.2): a retransmission gets the cached
//! reply byte for byte, a duplicate of a request still in flight is dropped.
//!
//! Every Access-Request inserts one entry and nothing is read back unless the NAS
//! retransmits, so the cache is write-heavy and almost never hit. A general-purpose cache pays
//! for what this does not need (per-entry expiry bookkeeping, eviction policy, housekeeping
//! tasks, resizing a lock-free table that churns): with moka it was about 15 % of the server's
//! CPU at peak load. This one is a set of mutex-guarded shards, each holding two generations of
//! a plain `HashMap`: inserts go to the current generation; once it is `ttl` old it becomes the
//! previous one and the old previous is dropped (its allocation reused). So an entry is kept
//! for at least `ttl` and at most `2 × ttl`; when a shard's current generation reaches its share
//! of `max_entries` it rotates early (a flood shortens the window, it does not grow memory).
//! Locks are held for one hash-map operation; the hasher is randomly keyed per process.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Shards: enough that the receive loops (one per core, up to 4) rarely meet on one lock.
const SHARDS: usize = 16;

/// What [`DupCache::claim`] found.
#[derive(Debug)]
pub enum Claim<V> {
    /// No entry: `V` was inserted and is returned (the caller processes the request).
    Fresh(V),
    /// An entry inserted earlier (a retransmission, or a duplicate still in flight).
    Existing(V),
}

/// A two-generation sharded map whose entries live between `ttl` and `2 × ttl`.
pub struct DupCache<K, V> {
    shards: Box<[Mutex<Shard<K, V>>]>,
    hasher: RandomState,
    ttl: Duration,
    per_shard: usize,
}

struct Shard<K, V> {
    current: HashMap<K, V>,
    previous: HashMap<K, V>,
    /// When `current` was started.
    since: Instant,
}

impl<K, V> Shard<K, V> {
    /// Moves to a new generation when the current one is `ttl` old or full; drops both when
    /// even the previous one is past its time.
    fn age(&mut self, now: Instant, ttl: Duration, per_shard: usize) {
        let elapsed = now.saturating_duration_since(self.since);
        if elapsed >= ttl || self.current.len() >= per_shard {
            std::mem::swap(&mut self.current, &mut self.previous);
            self.current.clear();
            if elapsed >= ttl * 2 {
                self.previous.clear();
            }
            self.since = now;
        }
    }
}

impl<K: Hash + Eq, V: Clone> DupCache<K, V> {
    /// A cache keeping entries at least `ttl`, holding at most about `max_entries` in each
    /// generation.
    pub fn new(ttl: Duration, max_entries: usize) -> DupCache<K, V> {
        let now = Instant::now();
        DupCache {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        current: HashMap::new(),
                        previous: HashMap::new(),
                        since: now,
                    })
                })
                .collect(),
            hasher: RandomState::new(),
            ttl,
            per_shard: (max_entries / SHARDS).max(1),
        }
    }

    fn shard(&self, key: &K) -> &Mutex<Shard<K, V>> {
        let i = usize::try_from(self.hasher.hash_one(key) % SHARDS as u64).unwrap_or(0);
        // `i < SHARDS == shards.len()`.
        &self.shards[i]
    }

    /// Looks `key` up; when absent, inserts `make()` and returns it as [`Claim::Fresh`].
    pub fn claim(&self, key: K, now: Instant, make: impl FnOnce() -> V) -> Claim<V> {
        let mut shard = match self.shard(&key).lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        shard.age(now, self.ttl, self.per_shard);
        if let Some(v) = shard.current.get(&key).or_else(|| shard.previous.get(&key)) {
            return Claim::Existing(v.clone());
        }
        let v = make();
        shard.current.insert(key, v.clone());
        Claim::Fresh(v)
    }

    /// Forgets `key` (a request that got no reply may be processed again when retransmitted).
    pub fn remove(&self, key: &K) {
        let mut shard = match self.shard(key).lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if shard.current.remove(key).is_none() {
            shard.previous.remove(key);
        }
    }

    /// Entries held now, both generations (for tests and diagnostics).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| match s.lock() {
                Ok(s) => s.current.len() + s.previous.len(),
                Err(poisoned) => {
                    let s = poisoned.into_inner();
                    s.current.len() + s.previous.len()
                }
            })
            .sum()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh(c: Claim<u32>) -> u32 {
        match c {
            Claim::Fresh(v) => v,
            Claim::Existing(v) => panic!("expected a fresh entry, found {v}"),
        }
    }

    fn existing(c: Claim<u32>) -> u32 {
        match c {
            Claim::Existing(v) => v,
            Claim::Fresh(v) => panic!("expected an existing entry, inserted {v}"),
        }
    }

    #[test]
    fn r2_a_second_claim_within_the_ttl_finds_the_first_value() {
        let c = DupCache::new(Duration::from_secs(10), 1000);
        let t0 = Instant::now();
        assert_eq!(fresh(c.claim("a", t0, || 1)), 1);
        assert_eq!(existing(c.claim("a", t0 + Duration::from_secs(9), || 2)), 1);
        assert_eq!(fresh(c.claim("b", t0, || 3)), 3);
    }

    #[test]
    fn r2_entries_live_at_least_the_ttl_and_at_most_twice_it() {
        let ttl = Duration::from_secs(10);
        let c = DupCache::new(ttl, 1000);
        let t0 = Instant::now();
        fresh(c.claim("k", t0, || 1));
        // Just past one ttl: the generation rotated, the entry is in the previous one.
        assert_eq!(
            existing(c.claim("k", t0 + ttl + Duration::from_millis(1), || 2)),
            1
        );
        // The lookup above did not refresh it: gone one more ttl later.
        assert_eq!(
            fresh(c.claim("k", t0 + ttl * 2 + Duration::from_millis(2), || 3)),
            3
        );
        // A shard untouched for two ttls drops both generations at once.
        let t1 = t0 + ttl * 2 + Duration::from_millis(2);
        assert_eq!(fresh(c.claim("k", t1 + ttl * 2, || 4)), 4);
    }

    #[test]
    fn remove_forgets_the_entry_in_either_generation() {
        let ttl = Duration::from_secs(5);
        let c = DupCache::new(ttl, 1000);
        let t0 = Instant::now();
        fresh(c.claim(1u64, t0, || 1));
        c.remove(&1);
        assert_eq!(fresh(c.claim(1u64, t0, || 2)), 2);
        // Rotated into the previous generation, then removed there.
        let later = t0 + ttl + Duration::from_millis(1);
        fresh(c.claim(99u64, later, || 0));
        c.remove(&1);
        assert_eq!(fresh(c.claim(1u64, later, || 3)), 3);
    }

    #[test]
    fn a_flood_rotates_early_so_memory_stays_bounded() {
        let c = DupCache::new(Duration::from_secs(30), 1600);
        let t0 = Instant::now();
        for i in 0..100_000u32 {
            fresh(c.claim(i, t0, || i));
        }
        // At most two generations of 1600 / 16 per shard.
        assert!(c.len() <= 2 * 1600, "{} entries held", c.len());
        assert!(c.len() >= 1600, "{} entries held", c.len());
        // The most recent ones are still there.
        assert_eq!(existing(c.claim(99_999, t0, || 0)), 99_999);
        assert!(!c.is_empty());
    }
}
