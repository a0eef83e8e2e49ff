//! The one place that reads the OS clock.
//!
//! Everything else receives `now` as a parameter. Tests that run a whole gateway can shift the
//! clock (`Clock::advance`) or stop it at an instant (`Clock::freeze`) to cross expiry and lockout
//! boundaries exactly, without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const NOT_FROZEN: i64 = i64::MIN;

/// Wall clock in Unix seconds, with an adjustable offset or a frozen instant for tests.
#[derive(Debug)]
pub struct Clock {
    offset: AtomicI64,
    frozen: AtomicI64,
}

impl Default for Clock {
    fn default() -> Self {
        Clock {
            offset: AtomicI64::new(0),
            frozen: AtomicI64::new(NOT_FROZEN),
        }
    }
}

impl Clock {
    /// The system clock, no offset.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// Current Unix time in seconds (the frozen instant, or the OS time plus the test offset).
    pub fn now(&self) -> i64 {
        match self.frozen.load(Ordering::Relaxed) {
            NOT_FROZEN => unix_now() + self.offset.load(Ordering::Relaxed),
            t => t,
        }
    }

    /// Moves this clock forward (or back) by `secs` (tests). A frozen clock stays frozen.
    pub fn advance(&self, secs: i64) {
        if self.frozen.load(Ordering::Relaxed) != NOT_FROZEN {
            self.frozen.fetch_add(secs, Ordering::Relaxed);
        } else {
            self.offset.fetch_add(secs, Ordering::Relaxed);
        }
    }

    /// Stops the clock at `t` (tests).
    pub fn freeze(&self, t: i64) {
        self.frozen.store(t, Ordering::Relaxed);
    }
}

/// The OS wall clock in Unix seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Days from 1970-01-01 to the proleptic Gregorian date `y-m-d` (H. Hinnant's days-from-civil
/// algorithm). The caller checks that the date exists.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frozen_clock_moves_only_when_told() {
        let c = Clock::system();
        c.freeze(1_000);
        assert_eq!(c.now(), 1_000);
        c.advance(5);
        assert_eq!(c.now(), 1_005);
        let d = Clock::system();
        d.advance(3600);
        assert!(d.now() >= unix_now() + 3599);
    }
}
