//! Counters of what the front ends did and dropped, readable in tests (Prometheus comes later).
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
        m
    }
}
