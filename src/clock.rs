//! The one place that reads the OS clock.
//!
//! Everything else receives `now` as a parameter. Tests that run a whole gateway can shift the
//! clock (`Clock::advance`) to cross expiry and lockout boundaries without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Wall clock in Unix seconds, with an adjustable offset for tests.
#[derive(Debug, Default)]
pub struct Clock {
    offset: AtomicI64,
}

impl Clock {
    /// The system clock, no offset.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// Current Unix time in seconds (plus the test offset).
    pub fn now(&self) -> i64 {
        unix_now() + self.offset.load(Ordering::Relaxed)
    }

    /// Moves this clock forward (or back) by `secs` (tests).
    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::Relaxed);
    }
}

/// The OS wall clock in Unix seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
