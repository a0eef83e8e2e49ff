//! Prometheus metrics: every name is declared once here, handles are resolved at start-up, and
//! [`Metrics::render`] produces the text exposition format served at `/metrics`.
//!
//! Two sources feed a scrape. The front ends bump `prometheus` handles held in a per-client
//! [`ClientMetrics`] (requests by protocol, client, result and method; latency per protocol;
//! challenges by kind; lockouts; emergency codes used; late answers to expired challenges): each
//! label combination is resolved once, the first time it occurs, and cached in a `OnceLock`, so
//! the packet path does one atomic load and one relaxed add, never a hash lookup, a lock or an
//! allocation. The atomics other modules already keep ([`Stats`] for drops, duplicates, replays,
//! TACACS+ connections and refused admin API keys; [`WriterStats`] for the group-commit writer;
//! [`crate::stats::AuthCounters`] for the user cache and emergency codes issued) are read and
//! converted only at scrape time.
//!
//! Labels are bounded: protocol, client name (from the config file), result, method, reason and
//! kind come from fixed sets. A user name never becomes a label value. This module must not do
//! I/O; the HTTP listener lives in `server::health`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use prometheus::proto::{self, MetricType};
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};

use crate::engine::{Decision, Method, Outcome, Reason};
use crate::model::ChallengeKind;
use crate::stats::{AtomicHistogram, AuthCounters, Buckets, Stats};
use crate::store::WriterStats;

/// Every metric name, with the `tokengate_` prefix and a unit suffix.
pub mod names {
    /// Counter `{protocol, client, result, method}`: answered authentication requests.
    pub const REQUESTS: &str = "tokengate_requests_total";
    /// Histogram `{protocol}`: time from the request to its answer (decision and commit).
    pub const REQUEST_DURATION: &str = "tokengate_request_duration_seconds";
    /// Counter `{reason}`: RADIUS datagrams dropped without an answer.
    pub const RADIUS_DROPPED: &str = "tokengate_radius_dropped_total";
    /// Counter `{reason}`: the decoder's reason for each malformed RADIUS datagram.
    pub const RADIUS_MALFORMED: &str = "tokengate_radius_malformed_total";
    /// Counter: RADIUS retransmissions answered from the duplicate cache.
    pub const RADIUS_DUPLICATES: &str = "tokengate_radius_duplicates_answered_total";
    /// Counter: Status-Server requests answered.
    pub const RADIUS_STATUS_SERVER: &str = "tokengate_radius_status_server_total";
    /// Counter `{kind}`: challenges sent (Next Tokencode, New PIN steps).
    pub const CHALLENGES: &str = "tokengate_challenges_total";
    /// Counter `{reason}`: challenge sessions that expired (`answered_late` or `abandoned`).
    pub const CHALLENGES_EXPIRED: &str = "tokengate_challenges_expired_total";
    /// Counter: passcodes refused because the code was already used.
    pub const REPLAYS: &str = "tokengate_replays_refused_total";
    /// Counter: users locked by failed attempts (L-1, N-2).
    pub const LOCKOUTS: &str = "tokengate_lockouts_total";
    /// Counter `{kind}`: emergency codes issued through this process's admin API.
    pub const EMERGENCY_ISSUED: &str = "tokengate_emergency_codes_issued_total";
    /// Counter `{kind}`: accepted logins with an emergency code.
    pub const EMERGENCY_USED: &str = "tokengate_emergency_codes_used_total";
    /// Counter `{result}`: user cache lookups (`hit` or `miss`).
    pub const CACHE_LOOKUPS: &str = "tokengate_user_cache_lookups_total";
    /// Histogram: write groups (requests) per database transaction.
    pub const DB_BATCH_SIZE: &str = "tokengate_db_write_batch_groups";
    /// Gauge: write groups queued for the writer.
    pub const DB_QUEUE_DEPTH: &str = "tokengate_db_write_queue_depth";
    /// Histogram: database transaction time, begin to commit.
    pub const DB_COMMIT_DURATION: &str = "tokengate_db_commit_duration_seconds";
    /// Counter: batch transactions that failed.
    pub const DB_FAILED_BATCHES: &str = "tokengate_db_failed_batches_total";
    /// Counter: TACACS+ connections accepted from known clients.
    pub const TACACS_CONNECTIONS: &str = "tokengate_tacacs_connections_total";
    /// Gauge: TACACS+ connections open now.
    pub const TACACS_CONNECTIONS_OPEN: &str = "tokengate_tacacs_connections_open";
    /// Counter `{reason}`: TACACS+ connections closed (or refused) and why.
    pub const TACACS_CLOSED: &str = "tokengate_tacacs_connections_closed_total";
    /// Counter `{kind}`: TACACS+ sessions answered (`authentication`, `authorization`,
    /// `accounting`).
    pub const TACACS_SESSIONS: &str = "tokengate_tacacs_sessions_total";
    /// Counter `{reason}`: admin API requests refused for their API key (`missing`,
    /// `malformed`, `unknown_key`).
    pub const ADMIN_API_AUTH_FAILURES: &str = "tokengate_admin_api_auth_failures_total";
    /// Gauge `{version}`: always 1.
    pub const BUILD_INFO: &str = "tokengate_build_info";
    /// Gauge: process start, Unix seconds.
    pub const START_TIME: &str = "tokengate_start_time_seconds";

    /// Every name above (the dashboard and alert tests check references against a live scrape).
    pub const ALL: &[&str] = &[
        REQUESTS,
        REQUEST_DURATION,
        RADIUS_DROPPED,
        RADIUS_MALFORMED,
        RADIUS_DUPLICATES,
        RADIUS_STATUS_SERVER,
        CHALLENGES,
        CHALLENGES_EXPIRED,
        REPLAYS,
        LOCKOUTS,
        EMERGENCY_ISSUED,
        EMERGENCY_USED,
        CACHE_LOOKUPS,
        DB_BATCH_SIZE,
        DB_QUEUE_DEPTH,
        DB_COMMIT_DURATION,
        DB_FAILED_BATCHES,
        TACACS_CONNECTIONS,
        TACACS_CONNECTIONS_OPEN,
        TACACS_CLOSED,
        TACACS_SESSIONS,
        ADMIN_API_AUTH_FAILURES,
        BUILD_INFO,
        START_TIME,
    ];
}

/// Request latency buckets in seconds: 50 µs … 1 s.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0,
];

/// The front end a request came through (`protocol` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// RADIUS over UDP.
    Radius,
    /// TACACS+ over TCP.
    Tacacs,
}

impl Protocol {
    const ALL: [Protocol; 2] = [Protocol::Radius, Protocol::Tacacs];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Radius => "radius",
            Protocol::Tacacs => "tacacs",
        }
    }
}

const RESULTS: [&str; 3] = ["accept", "reject", "challenge"];
const METHODS: [Method; 6] = [
    Method::Token,
    Method::Tft,
    Method::Ott,
    Method::FixedPasscode,
    Method::OfflineCode,
    Method::None,
];
const CHALLENGE_KINDS: [ChallengeKind; 4] = [
    ChallengeKind::NewPin,
    ChallengeKind::NewPinConfirm,
    ChallengeKind::NewPinPasscode,
    ChallengeKind::NextTokencode,
];

fn method_index(m: Method) -> usize {
    METHODS
        .iter()
        .position(|x| *x == m)
        .unwrap_or(METHODS.len() - 1)
}

/// Handles shared by every client.
struct Shared {
    requests: IntCounterVec,
    latency: [Histogram; 2],
    challenges: [IntCounter; 4],
    expired_late: IntCounter,
    lockouts: IntCounter,
    /// tft, ott, offline_code.
    emergency_used: [IntCounter; 3],
}

/// One client's request counters, resolved lazily per (protocol, result, method) and then
/// reused: what the packet path holds in its client entry.
pub struct ClientMetrics {
    name: String,
    shared: Arc<Shared>,
    requests: [[[OnceLock<IntCounter>; 6]; 3]; 2],
}

impl ClientMetrics {
    /// Counts one answered request and what it implies (challenge kind, lockout, emergency code
    /// use, a late answer to an expired challenge).
    pub fn record(&self, protocol: Protocol, out: &Outcome) {
        let s = &self.shared;
        let result = match &out.decision {
            Decision::Accept => 0,
            Decision::Reject => 1,
            Decision::Challenge { kind, .. } => {
                if let Some(c) = CHALLENGE_KINDS
                    .iter()
                    .position(|k| k == kind)
                    .and_then(|i| s.challenges.get(i))
                {
                    c.inc();
                }
                2
            }
        };
        let method = method_index(out.method);
        let slot = self
            .requests
            .get(protocol as usize)
            .and_then(|p| p.get(result))
            .and_then(|r| r.get(method));
        if let Some(slot) = slot {
            slot.get_or_init(|| {
                s.requests.with_label_values(&[
                    protocol.as_str(),
                    self.name.as_str(),
                    RESULTS.get(result).copied().unwrap_or("reject"),
                    out.method.as_str(),
                ])
            })
            .inc();
        }
        if out.locked_out {
            s.lockouts.inc();
        }
        if out.reason == Reason::ExpiredState {
            s.expired_late.inc();
        }
        if out.decision == Decision::Accept {
            let used = match out.method {
                Method::Tft => s.emergency_used.first(),
                Method::Ott => s.emergency_used.get(1),
                Method::OfflineCode => s.emergency_used.get(2),
                _ => None,
            };
            if let Some(c) = used {
                c.inc();
            }
        }
    }

    /// Observes the time since `started` in the protocol's latency histogram.
    pub fn observe_latency(&self, protocol: Protocol, started: Instant) {
        if let Some(h) = self.shared.latency.get(protocol as usize) {
            h.observe(started.elapsed().as_secs_f64());
        }
    }
}

/// The registry, the shared handles and the per-client handles of one gateway.
pub struct Metrics {
    registry: Registry,
    shared: Arc<Shared>,
    clients: Mutex<HashMap<String, Arc<ClientMetrics>>>,
    stats: Arc<Stats>,
    writer: Arc<WriterStats>,
    auth: Arc<AuthCounters>,
    started_unix: f64,
}

/// A metric could not be registered (a programming error: duplicate or invalid name).
#[derive(Debug, thiserror::Error)]
#[error("metrics registry: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

impl Metrics {
    /// Registers every handle and remembers the atomics to export at scrape time.
    pub fn new(
        stats: Arc<Stats>,
        writer: Arc<WriterStats>,
        auth: Arc<AuthCounters>,
    ) -> Result<Metrics, MetricsError> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(names::REQUESTS, "Authentication requests answered, by protocol, client (as named in the config), result and method."),
            &["protocol", "client", "result", "method"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        let latency_vec = prometheus::HistogramVec::new(
            HistogramOpts::new(
                names::REQUEST_DURATION,
                "Time from receiving an authentication request to having its answer (decision and database commit).",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["protocol"],
        )?;
        registry.register(Box::new(latency_vec.clone()))?;
        let latency = Protocol::ALL.map(|p| latency_vec.with_label_values(&[p.as_str()]));
        let challenges_vec = IntCounterVec::new(
            Opts::new(names::CHALLENGES, "Challenges sent, by what they ask for."),
            &["kind"],
        )?;
        registry.register(Box::new(challenges_vec.clone()))?;
        let challenges = CHALLENGE_KINDS.map(|k| challenges_vec.with_label_values(&[k.as_str()]));
        let expired_vec = IntCounterVec::new(
            Opts::new(
                names::CHALLENGES_EXPIRED,
                "Challenge sessions that expired: answered after their lifetime (answered_late) or never answered and purged (abandoned).",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(expired_vec.clone()))?;
        let expired_late = expired_vec.with_label_values(&["answered_late"]);
        let lockouts = IntCounter::new(
            names::LOCKOUTS,
            "Users locked by consecutive failures or a failed next tokencode.",
        )?;
        registry.register(Box::new(lockouts.clone()))?;
        let used_vec = IntCounterVec::new(
            Opts::new(
                names::EMERGENCY_USED,
                "Logins accepted with an emergency code, by kind.",
            ),
            &["kind"],
        )?;
        registry.register(Box::new(used_vec.clone()))?;
        let emergency_used =
            ["tft", "ott", "offline_code"].map(|k| used_vec.with_label_values(&[k]));
        let started_unix = crate::clock::unix_now_f64();
        Ok(Metrics {
            registry,
            shared: Arc::new(Shared {
                requests,
                latency,
                challenges,
                expired_late,
                lockouts,
                emergency_used,
            }),
            clients: Mutex::new(HashMap::new()),
            stats,
            writer,
            auth,
            started_unix,
        })
    }

    /// The handles of the client named `name` (created on first call; called when the client
    /// table is built, never per packet).
    pub fn client(&self, name: &str) -> Arc<ClientMetrics> {
        let mut m = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(name.to_string())
            .or_insert_with(|| {
                Arc::new(ClientMetrics {
                    name: name.to_string(),
                    shared: self.shared.clone(),
                    requests: Default::default(),
                })
            })
            .clone()
    }

    /// All metrics in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut families = self.registry.gather();
        self.scrape_atomics(&mut families);
        // The encoder refuses a family without samples (TACACS+ close reasons before the first
        // close); leave such a family out rather than cut the scrape short.
        families.retain(|f| !f.get_metric().is_empty());
        families.sort_by(|a, b| a.name().cmp(b.name()));
        let mut out = String::with_capacity(16 * 1024);
        if let Err(e) = prometheus::TextEncoder::new().encode_utf8(&families, &mut out) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        out
    }

    /// The content type of [`Metrics::render`]'s output.
    pub fn content_type() -> &'static str {
        prometheus::TEXT_FORMAT
    }

    fn scrape_atomics(&self, f: &mut Vec<proto::MetricFamily>) {
        let st = &self.stats;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
        f.push(family(
            names::RADIUS_DROPPED,
            "RADIUS datagrams dropped without an answer, by reason.",
            MetricType::COUNTER,
            st.drop_counts()
                .map(|(r, v)| counter(&[("reason", r)], v as f64))
                .collect(),
        ));
        f.push(family(
            names::RADIUS_MALFORMED,
            "Malformed RADIUS datagrams by the decoder's reason (also counted as dropped, reason malformed).",
            MetricType::COUNTER,
            st.malformed_counts()
                .map(|(r, v)| counter(&[("reason", r)], v as f64))
                .collect(),
        ));
        f.push(family(
            names::RADIUS_DUPLICATES,
            "RADIUS retransmissions answered from the duplicate cache without verifying again.",
            MetricType::COUNTER,
            vec![counter(&[], load(&st.duplicates_resent))],
        ));
        f.push(family(
            names::RADIUS_STATUS_SERVER,
            "RADIUS Status-Server requests answered.",
            MetricType::COUNTER,
            vec![counter(&[], load(&st.status_server))],
        ));
        f.push(family(
            names::REPLAYS,
            "Passcodes refused because the tokencode or emergency code was already used.",
            MetricType::COUNTER,
            vec![counter(&[], load(&st.replays))],
        ));
        let t = &st.tacacs;
        let closed = t.closed_counts();
        let opened = t.connections.load(Ordering::Relaxed);
        // Refusals (unknown client, connection cap) are closed without having been counted open.
        let closed_after_open: u64 = closed
            .iter()
            .filter(|(r, _)| !matches!(*r, "unknown_client" | "too_many_connections"))
            .map(|(_, v)| *v)
            .sum();
        f.push(family(
            names::TACACS_CONNECTIONS,
            "TACACS+ connections accepted from known clients.",
            MetricType::COUNTER,
            vec![counter(&[], opened as f64)],
        ));
        f.push(family(
            names::TACACS_CONNECTIONS_OPEN,
            "TACACS+ connections open now.",
            MetricType::GAUGE,
            vec![gauge(&[], opened.saturating_sub(closed_after_open) as f64)],
        ));
        f.push(family(
            names::TACACS_CLOSED,
            "TACACS+ connections closed or refused, by reason.",
            MetricType::COUNTER,
            closed
                .iter()
                .map(|(r, v)| counter(&[("reason", r)], *v as f64))
                .collect(),
        ));
        f.push(family(
            names::TACACS_SESSIONS,
            "TACACS+ sessions answered, by kind.",
            MetricType::COUNTER,
            vec![
                counter(
                    &[("kind", "authentication")],
                    load(&t.passes) + load(&t.fails),
                ),
                counter(&[("kind", "authorization")], load(&t.authorizations)),
                counter(&[("kind", "accounting")], load(&t.accounting)),
            ],
        ));
        f.push(family(
            names::ADMIN_API_AUTH_FAILURES,
            "Admin API requests refused for their API key, by reason (missing, malformed, unknown_key).",
            MetricType::COUNTER,
            st.admin_api
                .auth_failure_counts()
                .map(|(r, v)| counter(&[("reason", r)], v as f64))
                .collect(),
        ));
        let w = &self.writer;
        f.push(family(
            names::DB_BATCH_SIZE,
            "Write groups (one per request) committed per database transaction.",
            MetricType::HISTOGRAM,
            vec![histogram(&w.batch_size)],
        ));
        f.push(family(
            names::DB_COMMIT_DURATION,
            "Database batch transaction time, begin to commit (fsync included).",
            MetricType::HISTOGRAM,
            vec![histogram(&w.commit_latency)],
        ));
        f.push(family(
            names::DB_QUEUE_DEPTH,
            "Write groups waiting for the group-commit writer.",
            MetricType::GAUGE,
            vec![gauge(
                &[],
                w.queue_depth.load(Ordering::Relaxed).max(0) as f64,
            )],
        ));
        f.push(family(
            names::DB_FAILED_BATCHES,
            "Database batch transactions that failed.",
            MetricType::COUNTER,
            vec![counter(&[], load(&w.failed_batches))],
        ));
        let a = &self.auth;
        f.push(family(
            names::CACHE_LOOKUPS,
            "User cache lookups on the authentication path: hit (cached user or remembered unknown name) or miss (database read).",
            MetricType::COUNTER,
            vec![
                counter(&[("result", "hit")], load(&a.cache_hits)),
                counter(&[("result", "miss")], load(&a.cache_misses)),
            ],
        ));
        f.push(family(
            names::EMERGENCY_ISSUED,
            "Emergency codes issued through this process's admin API, by kind (CLI issues are in the audit log).",
            MetricType::COUNTER,
            vec![
                counter(&[("kind", "tft")], load(&a.tft_issued)),
                counter(&[("kind", "ott")], load(&a.ott_issued)),
            ],
        ));
        // The abandoned sessions join the registered `answered_late` series of the same family.
        let purged = counter(&[("reason", "abandoned")], load(&a.challenges_purged));
        match f.iter_mut().find(|m| m.name() == names::CHALLENGES_EXPIRED) {
            Some(fam) => fam.mut_metric().push(purged),
            None => f.push(family(
                names::CHALLENGES_EXPIRED,
                "Challenge sessions that expired.",
                MetricType::COUNTER,
                vec![purged],
            )),
        }
        f.push(family(
            names::BUILD_INFO,
            "Build information; the value is always 1.",
            MetricType::GAUGE,
            vec![gauge(&[("version", env!("CARGO_PKG_VERSION"))], 1.0)],
        ));
        f.push(family(
            names::START_TIME,
            "Process start time, Unix seconds.",
            MetricType::GAUGE,
            vec![gauge(&[], self.started_unix)],
        ));
    }
}

fn family(
    name: &str,
    help: &str,
    t: MetricType,
    metrics: Vec<proto::Metric>,
) -> proto::MetricFamily {
    let mut f = proto::MetricFamily::default();
    f.set_name(name.to_string());
    f.set_help(help.to_string());
    f.set_field_type(t);
    f.set_metric(metrics);
    f
}

fn labelled(labels: &[(&str, &str)]) -> proto::Metric {
    let pairs = labels
        .iter()
        .map(|(k, v)| {
            let mut l = proto::LabelPair::default();
            l.set_name((*k).to_string());
            l.set_value((*v).to_string());
            l
        })
        .collect();
    proto::Metric::from_label(pairs)
}

fn counter(labels: &[(&str, &str)], v: f64) -> proto::Metric {
    let mut m = labelled(labels);
    let mut c = proto::Counter::default();
    c.set_value(v);
    m.set_counter(c);
    m
}

fn gauge(labels: &[(&str, &str)], v: f64) -> proto::Metric {
    let mut m = labelled(labels);
    let mut g = proto::Gauge::default();
    g.set_value(v);
    m.set_gauge(g);
    m
}

fn histogram<B: Buckets>(h: &AtomicHistogram<B>) -> proto::Metric {
    let (buckets, count, sum) = h.snapshot();
    let mut m = labelled(&[]);
    let mut p = proto::Histogram::default();
    p.set_sample_count(count);
    p.set_sample_sum(sum);
    p.set_bucket(
        buckets
            .into_iter()
            .map(|(upper, cumulative)| {
                let mut b = proto::Bucket::default();
                b.set_upper_bound(upper);
                b.set_cumulative_count(cumulative);
                b
            })
            .collect(),
    );
    m.set_histogram(p);
    m
}
