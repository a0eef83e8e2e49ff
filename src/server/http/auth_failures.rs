//! Requests refused for their API key: counted, logged and audited, in bulk per source.
//!
//! A wrong, malformed or missing bearer key is someone probing the API or a script with a stale
//! key; both must be visible. Every refusal bumps `tokengate_admin_api_auth_failures_total`
//! (by reason, [`AdminApiStats`](crate::stats::AdminApiStats)). A flood must not flood the log
//! or the audit table, so the rest goes by source address and report interval
//! ([`REPORT_EVERY`]):
//!
//! - the first refusal from a source that had none in the previous interval is logged at once
//!   (WARN: source, reason, method and path; never the key);
//! - at the end of each interval, a source with refusals not yet logged gets one summary line
//!   with its counts, and every source that had refusals gets one audit record with its counts
//!   (all written as one group through the group-commit writer);
//! - a steady flood from one address therefore costs one line and one audit record per interval.
//!
//! The table holds at most [`MAX_SOURCES`] addresses per interval; refusals from further
//! addresses are counted together as `other-sources`. The address is the TCP peer's: behind a
//! reverse proxy it is the proxy's. What was refused is decided by the bearer extractor
//! ([`super::keys`]); this module only keeps the tallies and reports them.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::model::AuditRecord;
use crate::stats::ApiAuthFailure;

use super::{ApiState, LOG_TARGET};

/// How often the tallies are reported (summary lines and audit records) and reset.
pub const REPORT_EVERY: Duration = Duration::from_secs(60);

/// Source addresses tallied one by one per interval; the rest are counted together.
pub const MAX_SOURCES: usize = 1_024;

/// Longest request path logged (bytes, cut at a character boundary).
const MAX_LOGGED_PATH: usize = 256;

/// Where refused requests came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Source {
    /// The TCP peer's address.
    Ip(IpAddr),
    /// No peer address was known (a router served without connection info).
    Unknown,
    /// Every address beyond [`MAX_SOURCES`] in one interval.
    Others,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Ip(ip) => ip.fmt(f),
            Source::Unknown => f.write_str("unknown"),
            Source::Others => f.write_str("other-sources"),
        }
    }
}

/// One source's refusals in the current interval.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tally {
    /// By [`ApiAuthFailure`] index.
    pub(super) counts: [u64; 3],
    /// Whether one of them was logged when it happened.
    pub(super) logged: bool,
}

impl Tally {
    /// All refusals.
    pub(super) fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// `missing=1 unknown_key=998`: the reasons that occurred, with their counts.
    fn by_reason(&self) -> String {
        let mut out = String::new();
        for (why, n) in ApiAuthFailure::ALL.iter().zip(self.counts) {
            if n > 0 {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(&format!("{}={n}", why.as_str()));
            }
        }
        out
    }
}

#[derive(Debug, Default)]
struct Window {
    current: HashMap<Source, Tally>,
    /// The sources of the previous interval (their first refusal now is not news).
    previous: HashSet<Source>,
}

/// The per-source tallies of the current interval.
#[derive(Debug, Default)]
pub(super) struct AuthFailures {
    window: Mutex<Window>,
}

impl AuthFailures {
    /// Counts a refusal from `source`; `true` when it is to be logged now (the first of this
    /// interval from a source that had none in the previous one).
    pub(super) fn record(&self, source: Option<IpAddr>, why: ApiAuthFailure) -> bool {
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let mut key = source.map_or(Source::Unknown, Source::Ip);
        if !w.current.contains_key(&key) && w.current.len() >= MAX_SOURCES {
            key = Source::Others;
        }
        let news = !w.previous.contains(&key);
        let tally = w.current.entry(key).or_default();
        if let Some(c) = tally.counts.get_mut(why as usize) {
            *c = c.saturating_add(1);
        }
        let log = news && !tally.logged;
        tally.logged |= log;
        log
    }

    /// Ends the interval: returns its tallies (ordered by source) and starts an empty one.
    pub(super) fn take(&self) -> Vec<(Source, Tally)> {
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let current = std::mem::take(&mut w.current);
        w.previous = current.keys().copied().collect();
        drop(w);
        let mut out: Vec<(Source, Tally)> = current.into_iter().collect();
        out.sort_by_key(|(s, _)| match s {
            Source::Ip(ip) => (0, Some(*ip)),
            Source::Unknown => (1, None),
            Source::Others => (2, None),
        });
        out
    }
}

/// Counts, and logs when [`AuthFailures::record`] says so, one refused request.
pub(super) fn refused(
    st: &ApiState,
    source: Option<IpAddr>,
    why: ApiAuthFailure,
    method: &axum::http::Method,
    path: &str,
) {
    st.stats.admin_api.auth_failed(why);
    if st.auth_failures.record(source, why) {
        let source = source.map_or(Source::Unknown, Source::Ip);
        tracing::warn!(
            target: LOG_TARGET,
            %source,
            reason = why.as_str(),
            %method,
            path = cut(path, MAX_LOGGED_PATH),
            "admin API: request refused for its API key (further refusals from this source are \
             counted and summarised)"
        );
    }
}

/// `s` cut to at most `max` bytes at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// Ends the interval: one summary line per source with refusals not yet logged, one audit
/// record per source, written together.
pub(super) async fn report(st: &ApiState) {
    let tallies = st.auth_failures.take();
    if tallies.is_empty() {
        return;
    }
    let now = st.clock.now();
    let secs = REPORT_EVERY.as_secs();
    let mut records = Vec::with_capacity(tallies.len());
    for (source, t) in &tallies {
        let total = t.total();
        let unlogged = total.saturating_sub(u64::from(t.logged));
        let reasons = t.by_reason();
        if unlogged > 0 {
            tracing::warn!(
                target: LOG_TARGET,
                %source,
                refused = total,
                not_logged_singly = unlogged,
                reasons = %reasons,
                "admin API: requests refused for their API key in the last {secs} s"
            );
        }
        records.push(AuditRecord {
            at: now,
            actor: None,
            user_name: String::new(),
            client: Some(source.to_string()),
            protocol: "admin".into(),
            method: "api_key_refused".into(),
            result: "refused".into(),
            reason: format!("{total} in {secs} s: {reasons}"),
        });
    }
    if let Err(e) = st.auth.write_audits(records).await {
        tracing::warn!(
            target: LOG_TARGET,
            error = %e,
            "admin API: refused requests not audited"
        );
    }
}

/// Reports every [`REPORT_EVERY`] until `cancel` fires (the caller reports once more after the
/// listener has stopped, so nothing counted is left out).
pub(super) async fn report_loop(st: Arc<ApiState>, cancel: CancellationToken) {
    let start = tokio::time::Instant::now() + REPORT_EVERY;
    let mut tick = tokio::time::interval_at(start, REPORT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => report(&st).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn a_flood_logs_once_and_is_tallied_by_reason() {
        let f = AuthFailures::default();
        assert!(f.record(ip("192.0.2.1"), ApiAuthFailure::UnknownKey));
        for _ in 0..998 {
            assert!(!f.record(ip("192.0.2.1"), ApiAuthFailure::UnknownKey));
        }
        assert!(!f.record(ip("192.0.2.1"), ApiAuthFailure::Missing));
        // Another source is news of its own.
        assert!(f.record(ip("2001:db8::1"), ApiAuthFailure::Malformed));
        let t = f.take();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].0, Source::Ip("192.0.2.1".parse().unwrap()));
        assert_eq!(t[0].1.counts, [1, 0, 998 + 1]);
        assert_eq!(t[0].1.total(), 1000);
        assert!(t[0].1.logged);
        assert_eq!(t[0].1.by_reason(), "missing=1 unknown_key=999");
        assert_eq!(t[1].1.counts, [0, 1, 0]);
        assert!(f.take().is_empty());
    }

    #[test]
    fn a_source_that_keeps_failing_is_only_summarised_until_it_pauses() {
        let f = AuthFailures::default();
        assert!(f.record(ip("192.0.2.1"), ApiAuthFailure::UnknownKey));
        f.take();
        // Still at it in the next interval: the summary reports it, no line at once.
        assert!(!f.record(ip("192.0.2.1"), ApiAuthFailure::UnknownKey));
        let t = f.take();
        assert!(!t[0].1.logged);
        // Quiet for an interval: news again.
        assert!(f.take().is_empty());
        assert!(f.record(ip("192.0.2.1"), ApiAuthFailure::UnknownKey));
    }

    #[test]
    fn sources_beyond_the_cap_are_counted_together() {
        let f = AuthFailures::default();
        for i in 0..MAX_SOURCES as u32 + 500 {
            let addr = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            f.record(Some(addr), ApiAuthFailure::UnknownKey);
        }
        f.record(None, ApiAuthFailure::Missing);
        let t = f.take();
        assert_eq!(t.len(), MAX_SOURCES + 1);
        let (last, others) = t.last().unwrap();
        assert_eq!(*last, Source::Others);
        assert_eq!(others.counts, [1, 0, 500]);
        assert_eq!(last.to_string(), "other-sources");
    }

    #[test]
    fn long_paths_are_cut_at_a_character_boundary() {
        assert_eq!(cut("/api/v1/users", 256), "/api/v1/users");
        assert_eq!(cut("ééé", 3), "é");
        assert_eq!(cut(&"a".repeat(300), 256).len(), 256);
    }
}
