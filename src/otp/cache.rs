//! A token's codes for a run of consecutive counters (TOTP steps), kept between checks.
//!
//! A check computes the code of every counter in its window, matched or not (timing parity).
//! From one check to the next the window moves by the counters used, usually one: keeping the
//! run of codes turns the next check's ~110 HMACs (the default HOTP window) into one. The run
//! is a pure function of the seed, hash, digit count and counters; it remembers which seed it
//! belongs to and starts over when asked for another one, so a stale run can never answer. Code
//! values are wiped when dropped or discarded, like the seed they come from.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use zeroize::{Zeroize, Zeroizing};

use super::hotp::{ct_eq, HotpKey};
use crate::model::HashAlgorithm;

/// Longest window kept: a larger one (`hotp_wide_window` may be up to 10,000) is computed afresh
/// each time rather than held in memory per user.
pub const MAX_CACHED_CODES: u64 = 1_024;

/// Shared between a token's clones (the engine decides on a copy of the cached user): cloning
/// is one reference count, and whichever copy is kept finds the run its check left.
#[derive(Clone, Default)]
pub struct CodeCache(Arc<Mutex<Option<Run>>>);

impl std::fmt::Debug for CodeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeCache(..)")
    }
}

/// Codes for `first .. first + values.len()` under one seed, hash and digit count.
struct Run {
    seed: Zeroizing<Vec<u8>>,
    alg: HashAlgorithm,
    digits: u8,
    key: HotpKey,
    first: u64,
    values: VecDeque<u32>,
}

impl Drop for Run {
    fn drop(&mut self) {
        wipe_front(&mut self.values, usize::MAX);
    }
}

/// Removes (and zeroes) up to `n` values from the front.
fn wipe_front(values: &mut VecDeque<u32>, n: usize) {
    for _ in 0..n {
        match values.pop_front() {
            Some(mut v) => v.zeroize(),
            None => return,
        }
    }
}

impl Run {
    fn new(seed: &[u8], alg: HashAlgorithm, digits: u8, first: u64) -> Run {
        Run {
            seed: Zeroizing::new(seed.to_vec()),
            alg,
            digits,
            key: HotpKey::new(seed, alg),
            first,
            values: VecDeque::new(),
        }
    }

    fn belongs_to(&self, seed: &[u8], alg: HashAlgorithm, digits: u8) -> bool {
        self.alg == alg && self.digits == digits && ct_eq(&self.seed, seed)
    }

    /// Makes the run start at `first` and hold exactly `len` values.
    fn cover(&mut self, first: u64, len: u64) {
        let end = self.first.saturating_add(self.values.len() as u64);
        if first < self.first || first >= end {
            wipe_front(&mut self.values, usize::MAX);
            self.first = first;
        } else {
            wipe_front(
                &mut self.values,
                usize::try_from(first - self.first).unwrap_or(0),
            );
            self.first = first;
        }
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        while self.values.len() > len {
            if let Some(mut v) = self.values.pop_back() {
                v.zeroize();
            }
        }
        while self.values.len() < len {
            let counter = self.first.saturating_add(self.values.len() as u64);
            self.values.push_back(self.key.hotp(counter, self.digits));
        }
    }
}

impl CodeCache {
    /// Calls `f(counter, value)` for every counter in `first..=last`, in order, with the token's
    /// HOTP value (as [`HotpKey::hotp`]) for that counter: from the run where it has it, computed
    /// (and kept) where not. Windows longer than [`MAX_CACHED_CODES`] are computed without
    /// being kept.
    pub fn for_each(
        &self,
        seed: &[u8],
        alg: HashAlgorithm,
        digits: u8,
        first: u64,
        last: u64,
        mut f: impl FnMut(u64, u32),
    ) {
        if last < first {
            return;
        }
        let len = last - first + 1;
        if len > MAX_CACHED_CODES {
            let key = HotpKey::new(seed, alg);
            for counter in first..=last {
                f(counter, key.hotp(counter, digits));
            }
            return;
        }
        // A panic while the lock was held leaves at worst a short run; the values in it are
        // still right for their counters.
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let run = match slot.as_mut() {
            Some(run) if run.belongs_to(seed, alg, digits) => run,
            _ => slot.insert(Run::new(seed, alg, digits, first)),
        };
        run.cover(first, len);
        for (counter, value) in (first..=last).zip(run.values.iter()) {
            f(counter, *value);
        }
    }

    /// How many values are kept now (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0
            .lock()
            .map(|s| s.as_ref().map_or(0, |r| r.values.len()))
            .unwrap_or(0)
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::otp::hotp;

    const SEED: &[u8] = b"12345678901234567890";

    fn collect(cache: &CodeCache, seed: &[u8], digits: u8, first: u64, last: u64) -> Vec<u32> {
        let mut out = Vec::new();
        let mut expect_counter = first;
        cache.for_each(seed, HashAlgorithm::Sha1, digits, first, last, |c, v| {
            assert_eq!(c, expect_counter);
            expect_counter += 1;
            out.push(v);
        });
        out
    }

    fn direct(seed: &[u8], digits: u8, first: u64, last: u64) -> Vec<u32> {
        (first..=last)
            .map(|c| hotp(seed, c, digits, HashAlgorithm::Sha1))
            .collect()
    }

    #[test]
    fn rfc4226_values_through_the_cache() {
        // RFC 4226 Appendix D, 6 digits, counters 0..=9.
        let cache = CodeCache::default();
        let want = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        assert_eq!(collect(&cache, SEED, 6, 0, 9), want);
        // Moved by three: served partly from the run, still the RFC's values.
        assert_eq!(collect(&cache, SEED, 6, 3, 9), want[3..]);
        assert_eq!(collect(&cache, SEED, 6, 2, 5), want[2..=5]);
    }

    #[test]
    fn a_moving_window_always_matches_direct_computation() {
        let cache = CodeCache::default();
        let mut first = 0u64;
        for step in [0u64, 1, 1, 0, 5, 200, 3, 0] {
            first += step;
            assert_eq!(
                collect(&cache, SEED, 6, first, first + 109),
                direct(SEED, 6, first, first + 109),
                "window at {first}"
            );
            assert_eq!(cache.len(), 110);
        }
        // Backwards (a TOTP clock step back, a lower drift): computed afresh, still right.
        assert_eq!(collect(&cache, SEED, 6, 10, 30), direct(SEED, 6, 10, 30));
        assert_eq!(cache.len(), 21);
    }

    #[test]
    fn another_seed_or_digit_count_is_never_served_from_the_run() {
        let cache = CodeCache::default();
        let other = b"another seed of 20 b";
        assert_eq!(collect(&cache, SEED, 6, 0, 50), direct(SEED, 6, 0, 50));
        assert_eq!(collect(&cache, other, 6, 1, 50), direct(other, 6, 1, 50));
        assert_eq!(collect(&cache, other, 8, 1, 50), direct(other, 8, 1, 50));
        let sha256 = {
            let mut out = Vec::new();
            cache.for_each(other, HashAlgorithm::Sha256, 8, 1, 5, |_, v| out.push(v));
            out
        };
        let want: Vec<u32> = (1..=5)
            .map(|c| hotp(other, c, 8, HashAlgorithm::Sha256))
            .collect();
        assert_eq!(sha256, want);
    }

    #[test]
    fn clones_share_the_run_and_long_windows_are_not_kept() {
        let cache = CodeCache::default();
        let copy = cache.clone();
        collect(&copy, SEED, 6, 0, 109);
        assert_eq!(cache.len(), 110);
        let long = collect(&cache, SEED, 6, 0, MAX_CACHED_CODES);
        assert_eq!(long.len() as u64, MAX_CACHED_CODES + 1);
        assert_eq!(long[..110], direct(SEED, 6, 0, 109)[..]);
        assert_eq!(cache.len(), 110, "a window over the limit replaced the run");
        assert!(collect(&cache, SEED, 6, 5, 4).is_empty());
    }
}
