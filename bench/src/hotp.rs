//! HOTP users for a run: each user's next counter and an in-use flag, so that no two requests
//! for the same user are ever in flight at once (the server serialises each user's requests
//! and would otherwise see counters out of order, and reject the older one as a replay).
//!
//! [`HotpPool::take`] hands out a free user round-robin, skipping users in flight, and
//! consumes its counter; [`HotpPool::release`] gives the user back once its request was
//! answered or timed out. A request that timed out may or may not have been seen by the
//! server; its counter stays consumed either way, which the server's look-ahead window
//! (SPEC W-2, 10 counters by default) tolerates. Unlike TOTP users, HOTP users can be reused
//! as fast as the server answers, so the population never runs out.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use tokengate::otp;

use crate::population::OtpUser;

/// The code `user`'s token shows at `counter` (HOTP) or at TOTP step `counter`: RFC 4226
/// HOTP over the seed with the token's algorithm and digits.
pub fn token_code(user: &OtpUser, counter: u64) -> otp::Code {
    otp::Code::new(
        otp::hotp(&user.seed, counter, user.digits, user.algorithm),
        user.digits,
    )
}

/// Counters and in-use flags of a HOTP population (index = user index).
#[derive(Debug)]
pub struct HotpPool {
    counters: Vec<AtomicU64>,
    busy: Vec<AtomicBool>,
    cursor: AtomicUsize,
}

impl HotpPool {
    /// A pool whose user `i` starts at counter `start[i]`.
    pub fn new(start: impl IntoIterator<Item = u64>) -> HotpPool {
        let counters: Vec<AtomicU64> = start.into_iter().map(AtomicU64::new).collect();
        let busy = counters.iter().map(|_| AtomicBool::new(false)).collect();
        HotpPool {
            counters,
            busy,
            cursor: AtomicUsize::new(0),
        }
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.counters.len()
    }

    /// True when there is nobody.
    pub fn is_empty(&self) -> bool {
        self.counters.is_empty()
    }

    /// Takes a user that has no request in flight and consumes its counter: returns the user
    /// index and the counter to send. The user stays taken until [`HotpPool::release`]. `None`
    /// when no free user was found in one sweep over every user. Each taker sweeps from its
    /// own start on the shared round-robin cursor and moves the cursor past the users it found
    /// in flight, so with more users than requests in flight the first probe almost always
    /// succeeds, and concurrent takers never make each other skip a free user.
    pub fn take(&self) -> Option<(usize, u64)> {
        let n = self.busy.len();
        if n == 0 {
            return None;
        }
        let start = self.cursor.fetch_add(1, Ordering::Relaxed);
        for k in 0..n {
            let i = start.wrapping_add(k) % n;
            if self.busy[i]
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                if k > 0 {
                    self.cursor.fetch_add(k, Ordering::Relaxed);
                }
                return Some((i, self.counters[i].fetch_add(1, Ordering::Relaxed)));
            }
        }
        None
    }

    /// Gives user `i` back after its request was answered or timed out; its next request uses
    /// the next counter.
    pub fn release(&self, i: usize) {
        if let Some(b) = self.busy.get(i) {
            b.store(false, Ordering::Release);
        }
    }

    /// User `i`'s next counter, without taking the user (for wrong passcodes, which the
    /// server does not count as used).
    pub fn peek(&self, i: usize) -> u64 {
        self.counters[i].load(Ordering::Relaxed)
    }

    /// Every user's next counter (for the state file).
    pub fn counters(&self) -> Vec<u64> {
        self.counters
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokengate::model::{HashAlgorithm, OtpMode};

    #[test]
    fn token_code_matches_rfc_4226_appendix_d() {
        let user = OtpUser {
            name: Box::from(&b"rfc"[..]),
            pin: Box::from(&b""[..]),
            seed: Box::from(&b"12345678901234567890"[..]),
            algorithm: HashAlgorithm::Sha1,
            digits: 6,
            mode: OtpMode::Hotp,
        };
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, want) in expected.iter().enumerate() {
            assert_eq!(
                token_code(&user, counter as u64).as_str(),
                *want,
                "{counter}"
            );
        }
    }

    #[test]
    fn a_user_is_never_handed_out_twice_while_in_flight() {
        let pool = HotpPool::new([5, 0, 9]);
        assert_eq!(pool.take(), Some((0, 5)));
        assert_eq!(pool.take(), Some((1, 0)));
        assert_eq!(pool.take(), Some((2, 9)));
        assert_eq!(pool.take(), None, "all three in flight");
        pool.release(1);
        // The cursor moves on; only user 1 is free, and its counter was consumed.
        assert_eq!(pool.take(), Some((1, 1)));
        assert_eq!(pool.take(), None);
        pool.release(0);
        pool.release(2);
        let mut two = [pool.take().unwrap(), pool.take().unwrap()];
        two.sort_unstable();
        assert_eq!(two, [(0, 6), (2, 10)]);
        assert_eq!(pool.peek(1), 2);
        assert_eq!(pool.counters(), vec![7, 2, 11]);
    }

    #[test]
    fn concurrent_takers_never_share_a_user_and_never_reuse_a_counter() {
        use std::collections::HashSet;
        use std::sync::Mutex;
        let users = 8;
        let pool = HotpPool::new(std::iter::repeat_n(0, users));
        let in_flight: Vec<AtomicBool> = (0..users).map(|_| AtomicBool::new(false)).collect();
        let seen = Mutex::new(HashSet::new());
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..5_000 {
                        let Some((i, c)) = pool.take() else { continue };
                        assert!(!in_flight[i].swap(true, Ordering::SeqCst), "user {i} twice");
                        assert!(
                            seen.lock().unwrap().insert((i, c)),
                            "counter {c} of {i} twice"
                        );
                        in_flight[i].store(false, Ordering::SeqCst);
                        pool.release(i);
                    }
                });
            }
        });
        let taken = seen.lock().unwrap().len() as u64;
        assert_eq!(pool.counters().iter().sum::<u64>(), taken);
        // Each user's counters were handed out without gaps.
        for (i, next) in pool.counters().into_iter().enumerate() {
            let s = seen.lock().unwrap();
            assert!((0..next).all(|c| s.contains(&(i, c))));
        }
    }
}
