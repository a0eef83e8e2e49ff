//! Counters of what the front ends did and dropped, readable in tests and exported by
//! [`crate::metrics`] at scrape time.
//!
//! Every counter is a plain atomic resolved at compile time: incrementing costs nanoseconds and
//! never allocates. Labels are bounded enums, never user names.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a RADIUS datagram was dropped without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum DropReason {
    /// Source address matches no configured client.
    UnknownClient,
    /// Failed to decode (see `malformed_*` for the decoder's reason).
    Malformed,
    /// Not a code this port answers (only Access-Request and Status-Server).
    UnsupportedCode,
    /// Message-Authenticator present but wrong.
    BadMessageAuthenticator,
    /// Message-Authenticator required (client policy, Status-Server, EAP, Proxy-State) but absent.
    MissingMessageAuthenticator,
    /// A retransmission of a request still being processed.
    DuplicateInFlight,
    /// Too many requests in flight.
    Overload,
    /// Access-Request without User-Name or with a bad User-Password.
    BadRequest,
    /// Status-Server over its rate limit.
    StatusRateLimited,
    /// The database failed; no answer so the NAS retries or fails over.
    StoreError,
}

const DROP_NAMES: [&str; 10] = [
    "unknown_client",
    "malformed",
    "unsupported_code",
    "bad_message_authenticator",
    "missing_message_authenticator",
    "duplicate_in_flight",
    "overload",
    "bad_request",
    "status_rate_limited",
    "store_error",
];

/// Gateway counters.
#[derive(Debug, Default)]
pub struct Stats {
    drops: [AtomicU64; 10],
    malformed: [AtomicU64; 16],
    /// Requests answered Access-Accept.
    pub accepts: AtomicU64,
    /// Requests answered Access-Reject.
    pub rejects: AtomicU64,
    /// Requests answered Access-Challenge.
    pub challenges: AtomicU64,
    /// Retransmissions answered from the duplicate cache.
    pub duplicates_resent: AtomicU64,
    /// Status-Server requests answered.
    pub status_server: AtomicU64,
    /// Rejections because a code was replayed, including commit-time races.
    pub replays: AtomicU64,
    /// The TACACS+ front end.
    pub tacacs: TacacsStats,
    /// The admin HTTP API.
    pub admin_api: AdminApiStats,
}

/// Why an admin API request was refused before any handler ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum ApiAuthFailure {
    /// No `Authorization` header.
    Missing,
    /// An `Authorization` header that is not `Bearer <key>`.
    Malformed,
    /// A bearer key that matches no configured key.
    UnknownKey,
}

impl ApiAuthFailure {
    /// Every reason, in index order.
    pub const ALL: [ApiAuthFailure; 3] = [
        ApiAuthFailure::Missing,
        ApiAuthFailure::Malformed,
        ApiAuthFailure::UnknownKey,
    ];

    /// The label, log and audit spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiAuthFailure::Missing => "missing",
            ApiAuthFailure::Malformed => "malformed",
            ApiAuthFailure::UnknownKey => "unknown_key",
        }
    }
}

/// Counters of the admin HTTP API.
#[derive(Debug, Default)]
pub struct AdminApiStats {
    auth_failures: [AtomicU64; 3],
}

impl AdminApiStats {
    /// Counts a refused request.
    pub fn auth_failed(&self, why: ApiAuthFailure) {
        if let Some(c) = self.auth_failures.get(why as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Refused requests by reason, for the metrics scrape.
    pub fn auth_failure_counts(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        ApiAuthFailure::ALL
            .iter()
            .zip(&self.auth_failures)
            .map(|(w, c)| (w.as_str(), c.load(Ordering::Relaxed)))
    }
}

/// Counters of the TACACS+ front end. Close reasons are `&'static str` labels from a fixed set
/// (this module's constants and the codec's `reason()` methods), so the map stays bounded.
#[derive(Debug, Default)]
pub struct TacacsStats {
    /// Connections accepted from a known client.
    pub connections: AtomicU64,
    /// Authentications answered PASS.
    pub passes: AtomicU64,
    /// Authentications answered FAIL.
    pub fails: AtomicU64,
    /// GETPASS challenges sent (Next Tokencode, New PIN, …).
    pub challenges: AtomicU64,
    /// Authorization requests answered.
    pub authorizations: AtomicU64,
    /// Accounting records stored and answered SUCCESS.
    pub accounting: AtomicU64,
    closed: std::sync::Mutex<BTreeMap<&'static str, u64>>,
}

impl TacacsStats {
    /// Counts a closed connection with its reason.
    pub fn closed(&self, reason: &'static str) {
        let mut m = self.closed.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry(reason).or_insert(0) += 1;
    }

    /// Closed connections by reason, for the metrics scrape.
    pub fn closed_counts(&self) -> Vec<(&'static str, u64)> {
        let m = self.closed.lock().unwrap_or_else(|e| e.into_inner());
        m.iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// Connections closed so far for `reason` (`unknown_client`, `idle_timeout`, `bad_key`, …).
    pub fn closed_count(&self, reason: &str) -> u64 {
        let m = self.closed.lock().unwrap_or_else(|e| e.into_inner());
        m.get(reason).copied().unwrap_or(0)
    }

    fn snapshot_into(&self, m: &mut BTreeMap<String, u64>) {
        m.insert(
            "tacacs.connections".into(),
            self.connections.load(Ordering::Relaxed),
        );
        m.insert("tacacs.passes".into(), self.passes.load(Ordering::Relaxed));
        m.insert("tacacs.fails".into(), self.fails.load(Ordering::Relaxed));
        m.insert(
            "tacacs.challenges".into(),
            self.challenges.load(Ordering::Relaxed),
        );
        m.insert(
            "tacacs.authorizations".into(),
            self.authorizations.load(Ordering::Relaxed),
        );
        m.insert(
            "tacacs.accounting".into(),
            self.accounting.load(Ordering::Relaxed),
        );
        let closed = self.closed.lock().unwrap_or_else(|e| e.into_inner());
        for (k, v) in closed.iter() {
            m.insert(format!("tacacs.closed.{k}"), *v);
        }
    }
}

/// Decoder reasons we count separately (index into `malformed`).
const MALFORMED_NAMES: [&str; 11] = [
    "too_short",
    "unknown_code",
    "length_below_minimum",
    "length_above_maximum",
    "length_exceeds_datagram",
    "attribute_header_overflow",
    "attribute_type_zero",
    "attribute_length_too_small",
    "attribute_overflow",
    "message_authenticator_length",
    "duplicate_message_authenticator",
];

impl Stats {
    /// Counts a drop.
    pub fn dropped(&self, why: DropReason) {
        if let Some(c) = self.drops.get(why as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a malformed datagram with the decoder's reason label.
    pub fn malformed(&self, reason: &str) {
        self.dropped(DropReason::Malformed);
        let i = MALFORMED_NAMES
            .iter()
            .position(|n| *n == reason)
            .unwrap_or(MALFORMED_NAMES.len());
        if let Some(c) = self.malformed.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Drops so far for one reason.
    pub fn drops(&self, why: DropReason) -> u64 {
        self.drops
            .get(why as usize)
            .map(|c| c.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    /// Drops by reason label, for the metrics scrape.
    pub fn drop_counts(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        DROP_NAMES
            .iter()
            .zip(&self.drops)
            .map(|(n, c)| (*n, c.load(Ordering::Relaxed)))
    }

    /// Malformed datagrams by decoder reason label, for the metrics scrape.
    pub fn malformed_counts(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        MALFORMED_NAMES
            .iter()
            .zip(&self.malformed)
            .map(|(n, c)| (*n, c.load(Ordering::Relaxed)))
    }

    /// All counters by name (`drop.unknown_client`, `malformed.too_short`, `accepts`, …).
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for (i, n) in DROP_NAMES.iter().enumerate() {
            m.insert(format!("drop.{n}"), self.drops[i].load(Ordering::Relaxed));
        }
        for (i, n) in MALFORMED_NAMES.iter().enumerate() {
            m.insert(
                format!("malformed.{n}"),
                self.malformed[i].load(Ordering::Relaxed),
            );
        }
        m.insert("accepts".into(), self.accepts.load(Ordering::Relaxed));
        m.insert("rejects".into(), self.rejects.load(Ordering::Relaxed));
        m.insert("challenges".into(), self.challenges.load(Ordering::Relaxed));
        m.insert(
            "duplicates_resent".into(),
            self.duplicates_resent.load(Ordering::Relaxed),
        );
        m.insert(
            "status_server".into(),
            self.status_server.load(Ordering::Relaxed),
        );
        m.insert("replays".into(), self.replays.load(Ordering::Relaxed));
        self.tacacs.snapshot_into(&mut m);
        for (why, n) in self.admin_api.auth_failure_counts() {
            m.insert(format!("admin_api.auth_failures.{why}"), n);
        }
        m
    }
}

/// Upper bounds of an [`AtomicHistogram`]'s buckets, in the unit it observes.
pub trait Buckets {
    /// Inclusive upper bounds, ascending; at most 23 (one more bucket catches the rest).
    const UPPER: &'static [u64];
    /// Multiply by this to get the exported unit (for example 1e-9 for nanoseconds → seconds).
    const SCALE: f64;
}

/// Commit latency buckets: 50 µs … 1 s, in nanoseconds.
#[derive(Debug)]
pub struct CommitNanos;

impl Buckets for CommitNanos {
    const UPPER: &'static [u64] = &[
        50_000,
        100_000,
        250_000,
        500_000,
        1_000_000,
        2_500_000,
        5_000_000,
        10_000_000,
        25_000_000,
        50_000_000,
        100_000_000,
        250_000_000,
        500_000_000,
        1_000_000_000,
    ];
    const SCALE: f64 = 1e-9;
}

/// Batch size buckets: groups (requests) per transaction.
#[derive(Debug)]
pub struct BatchGroups;

impl Buckets for BatchGroups {
    const UPPER: &'static [u64] = &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
    const SCALE: f64 = 1.0;
}

/// A fixed-bucket histogram of plain atomics: `observe` is a short scan and two relaxed adds, no
/// lock and no allocation, so the store and server modules can record without depending on the
/// Prometheus crate. `metrics` exports it as a Prometheus histogram at scrape time.
#[derive(Debug)]
pub struct AtomicHistogram<B> {
    counts: [AtomicU64; 24],
    sum: AtomicU64,
    _bounds: std::marker::PhantomData<fn() -> B>,
}

impl<B> Default for AtomicHistogram<B> {
    fn default() -> Self {
        AtomicHistogram {
            counts: Default::default(),
            sum: AtomicU64::new(0),
            _bounds: std::marker::PhantomData,
        }
    }
}

impl<B: Buckets> AtomicHistogram<B> {
    /// Records one value.
    pub fn observe(&self, v: u64) {
        let i = B::UPPER
            .iter()
            .position(|&u| v <= u)
            .unwrap_or(B::UPPER.len());
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.sum.fetch_add(v, Ordering::Relaxed);
    }

    /// `(upper bound, cumulative count)` per bucket in the exported unit, then the total count
    /// and the sum in the exported unit.
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let mut cumulative = 0u64;
        let mut buckets = Vec::with_capacity(B::UPPER.len());
        for (i, upper) in B::UPPER.iter().enumerate() {
            cumulative += self.counts.get(i).map_or(0, |c| c.load(Ordering::Relaxed));
            buckets.push((*upper as f64 * B::SCALE, cumulative));
        }
        let rest = self
            .counts
            .get(B::UPPER.len())
            .map_or(0, |c| c.load(Ordering::Relaxed));
        let sum = self.sum.load(Ordering::Relaxed) as f64 * B::SCALE;
        (buckets, cumulative + rest, sum)
    }
}

/// Counters of the authentication service that only it can see (cache use, emergency codes
/// issued through the admin API of this process).
#[derive(Debug, Default)]
pub struct AuthCounters {
    /// Lookups answered from the user cache (including remembered unknown users).
    pub cache_hits: AtomicU64,
    /// Lookups that went to the database.
    pub cache_misses: AtomicU64,
    /// Temporary fixed tokencodes issued.
    pub tft_issued: AtomicU64,
    /// One-time tokencode sets issued.
    pub ott_issued: AtomicU64,
    /// Expired challenge sessions removed by the purge loop (never answered in time).
    pub challenges_purged: AtomicU64,
}

impl AuthCounters {
    /// Counts one issue of emergency codes (a TFT or an OTT set).
    pub fn emergency_issued(&self, kind: crate::model::EmergencyKind) {
        let c = match kind {
            crate::model::EmergencyKind::Tft => &self.tft_issued,
            crate::model::EmergencyKind::Ott => &self.ott_issued,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_histogram_buckets_are_inclusive_cumulative_and_catch_overflow() {
        let h: AtomicHistogram<CommitNanos> = AtomicHistogram::default();
        for v in [0, 50_000, 50_001, 1_000_000_000, 5_000_000_000] {
            h.observe(v);
        }
        let (buckets, count, sum) = h.snapshot();
        assert_eq!(buckets.len(), CommitNanos::UPPER.len());
        assert_eq!(
            buckets[0],
            (0.000_05, 2),
            "50 µs is inside the first bucket"
        );
        assert_eq!(buckets[1].1, 3);
        assert_eq!(
            buckets.last().map(|b| b.1),
            Some(4),
            "1 s is inside the last"
        );
        assert_eq!(count, 5, "the 5 s value only in the count (+Inf)");
        assert!((sum - 6.000_100_001).abs() < 1e-9, "{sum}");
    }
}
