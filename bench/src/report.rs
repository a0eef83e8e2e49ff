//! What a run measured, as JSON (for scripts) and as a human table, with the warnings that say
//! when the numbers describe the generator or the machine rather than the server.

use std::time::Duration;

use serde::Serialize;
use tokengate::model::OtpMode;

use crate::generator::{Load, Options, Passcodes};
use crate::histogram::Histogram;
use crate::population::Population;

/// Request and reply counters.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Counts {
    /// Requests sent.
    pub sent: u64,
    /// Access-Accept replies.
    pub accept: u64,
    /// Access-Reject replies.
    pub reject: u64,
    /// Access-Challenge replies.
    pub challenge: u64,
    /// Requests never answered within the timeout.
    pub timeouts: u64,
    /// Replies that failed the authenticator checks or were not Accept/Reject/Challenge.
    pub invalid: u64,
    /// Replies to no outstanding request (late answers after a timeout, duplicates).
    pub stray: u64,
    /// Socket errors (for example ICMP port unreachable: no server listening).
    pub send_errors: u64,
    /// Open loop: requests not sent because all 256 Identifiers of a socket were outstanding.
    pub no_identifier: u64,
    /// HOTP: requests not sent because every user had a request in flight.
    pub no_free_user: u64,
    /// Open loop: the most a send lagged behind its schedule, in nanoseconds.
    pub max_lag_ns: u64,
}

impl Counts {
    /// Adds `other` (max for the lag).
    pub fn add(&mut self, o: &Counts) {
        self.sent += o.sent;
        self.accept += o.accept;
        self.reject += o.reject;
        self.challenge += o.challenge;
        self.timeouts += o.timeouts;
        self.invalid += o.invalid;
        self.stray += o.stray;
        self.send_errors += o.send_errors;
        self.no_identifier += o.no_identifier;
        self.no_free_user += o.no_free_user;
        self.max_lag_ns = self.max_lag_ns.max(o.max_lag_ns);
    }

    /// Requests answered with Accept, Reject or Challenge.
    pub fn answered(&self) -> u64 {
        self.accept + self.reject + self.challenge
    }
}

/// Latency percentiles in microseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest.
    pub max_us: f64,
    /// Mean.
    pub mean_us: f64,
    /// Closed loop: from the actual send; open loop: from the scheduled send time.
    pub measured_from: &'static str,
}

/// CPU use of a process over the run.
#[derive(Clone, Debug, Serialize)]
pub struct Cpu {
    /// User + system CPU seconds.
    pub cpu_s: f64,
    /// CPU seconds per wall second.
    pub cores: f64,
    /// CPU microseconds per answered request.
    pub us_per_request: f64,
}

/// One run's results.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Server address.
    pub server: String,
    /// `closed` or `open`.
    pub load: &'static str,
    /// Closed loop: outstanding requests.
    pub concurrency: Option<usize>,
    /// Open loop: target requests per second.
    pub target_rate: Option<f64>,
    /// Worker sockets.
    pub workers: usize,
    /// Message-Authenticator in requests.
    pub message_authenticator: bool,
    /// `totp`, `hotp` or `pap`.
    pub credentials: &'static str,
    /// `correct`, `wrong` or `unknown`.
    pub passcodes: &'static str,
    /// Users in the population.
    pub users: usize,
    /// Seconds from start to the last reply or timeout.
    pub elapsed_s: f64,
    /// Counters.
    pub counts: Counts,
    /// Answered requests per second over `elapsed_s`.
    pub requests_per_s: f64,
    /// Requests sent per second while sending.
    pub sent_per_s: f64,
    /// Latency of answered requests.
    pub latency: Latency,
    /// The server process (with `--server-pid`).
    pub server_cpu: Option<Cpu>,
    /// This generator process.
    pub generator_cpu: Option<Cpu>,
    /// CPU share of the generator's busiest thread (0..1).
    pub generator_busiest_thread: f64,
    /// Online CPUs of the machine.
    pub machine_cpus: usize,
    /// The generator, not the server, limited the run.
    pub generator_bound: bool,
    /// Everything that makes the numbers less than clean.
    pub warnings: Vec<String>,
}

fn cpu(d: Duration, wall: Duration, answered: u64) -> Cpu {
    Cpu {
        cpu_s: d.as_secs_f64(),
        cores: d.as_secs_f64() / wall.as_secs_f64().max(1e-9),
        us_per_request: d.as_secs_f64() * 1e6 / answered.max(1) as f64,
    }
}

impl Report {
    /// Assembles the report and its warnings.
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        opts: &Options,
        counts: Counts,
        latency: &Histogram,
        elapsed: Duration,
        sending: Duration,
        wall: Duration,
        own_cpu: Option<Duration>,
        server_cpu: Option<Duration>,
        busiest: f64,
        mut warnings: Vec<String>,
    ) -> Report {
        let answered = counts.answered();
        let us = |ns: u64| ns as f64 / 1e3;
        let machine_cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let generator_cpu = own_cpu.map(|d| cpu(d, wall, answered));
        let server_cpu = server_cpu.map(|d| cpu(d, wall, answered));
        let sent_per_s = counts.sent as f64 / sending.as_secs_f64().max(1e-9);
        let mut generator_bound = false;
        if busiest >= 0.85 {
            generator_bound = true;
            warnings.push(format!(
                "generator-bound: a generator thread used {:.0} % of a core; the server may be \
                 faster than measured (raise --threads, or give the generator its own cores)",
                busiest * 100.0
            ));
        }
        if let Load::Open { rate } = opts.load {
            if sent_per_s < 0.95 * rate && counts.sent > 0 {
                generator_bound = true;
                warnings.push(format!(
                    "generator-bound: sent {sent_per_s:.0}/s of the {rate:.0}/s asked for"
                ));
            }
            if counts.no_identifier > 0 {
                warnings.push(format!(
                    "{} requests not sent: 256 requests outstanding on a socket (server overloaded \
                     or --threads too low)",
                    counts.no_identifier
                ));
            }
        }
        if counts.no_free_user > 0 {
            warnings.push(format!(
                "{} requests not sent: every HOTP user had a request in flight (populate more \
                 users than requests outstanding)",
                counts.no_free_user
            ));
        }
        if let (Some(g), Some(s)) = (&generator_cpu, &server_cpu) {
            if g.cores + s.cores >= 0.9 * machine_cpus as f64 {
                warnings.push(format!(
                    "machine saturated: server {:.2} + generator {:.2} cores of {machine_cpus}; \
                     they compete for CPU, so throughput is a lower bound",
                    s.cores, g.cores
                ));
            }
        }
        if counts.timeouts > 0 {
            warnings.push(format!("{} requests timed out", counts.timeouts));
        }
        if opts.passcodes == Passcodes::Correct && counts.reject + counts.challenge > 0 {
            warnings.push(format!(
                "{} right passcodes were rejected or challenged (codes used before: a TOTP user \
                 twice in one step, or HOTP counters not carried over with --state?)",
                counts.reject + counts.challenge
            ));
        }
        if counts.invalid > 0 {
            warnings.push(format!(
                "{} replies failed the authenticator checks (wrong secret?)",
                counts.invalid
            ));
        }
        if counts.send_errors > 0 {
            warnings.push(format!(
                "{} socket errors (is the server listening?)",
                counts.send_errors
            ));
        }
        Report {
            server: opts.server.to_string(),
            load: match opts.load {
                Load::Closed { .. } => "closed",
                Load::Open { .. } => "open",
            },
            concurrency: match opts.load {
                Load::Closed { concurrency } => Some(concurrency),
                Load::Open { .. } => None,
            },
            target_rate: match opts.load {
                Load::Open { rate } => Some(rate),
                Load::Closed { .. } => None,
            },
            workers: opts.workers,
            message_authenticator: opts.message_authenticator,
            credentials: match &*opts.population {
                Population::Otp(u) if u.first().is_some_and(|u| u.mode == OtpMode::Hotp) => "hotp",
                Population::Otp(_) => "totp",
                Population::Plain(_) => "pap",
            },
            passcodes: opts.passcodes.as_str(),
            users: opts.population.len(),
            elapsed_s: elapsed.as_secs_f64(),
            requests_per_s: answered as f64 / elapsed.as_secs_f64().max(1e-9),
            sent_per_s,
            latency: Latency {
                p50_us: us(latency.percentile(0.50)),
                p90_us: us(latency.percentile(0.90)),
                p99_us: us(latency.percentile(0.99)),
                p999_us: us(latency.percentile(0.999)),
                max_us: us(latency.max()),
                mean_us: latency.mean() / 1e3,
                measured_from: match opts.load {
                    Load::Closed { .. } => "send",
                    Load::Open { .. } => "schedule",
                },
            },
            server_cpu,
            generator_cpu,
            generator_busiest_thread: busiest,
            machine_cpus,
            generator_bound,
            warnings,
            counts,
        }
    }

    /// A human-readable table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let load = match (self.concurrency, self.target_rate) {
            (Some(c), _) => format!("closed loop, {c} outstanding"),
            (_, Some(r)) => format!("open loop, {r:.0}/s"),
            _ => String::new(),
        };
        s.push_str(&format!(
            "tg-loadgen → {}  ({load}, {} sockets, {} {} passcodes, {} users, MA {})\n",
            self.server,
            self.workers,
            self.credentials,
            self.passcodes,
            self.users,
            if self.message_authenticator {
                "on"
            } else {
                "off"
            }
        ));
        let c = &self.counts;
        s.push_str(&format!(
            "  sent {:>10}   accept {:>10}   reject {:>8}   challenge {:>6}   timeouts {:>6}   invalid {}\n",
            c.sent, c.accept, c.reject, c.challenge, c.timeouts, c.invalid
        ));
        s.push_str(&format!(
            "  throughput {:>10.0} req/s over {:.2} s\n",
            self.requests_per_s, self.elapsed_s
        ));
        let l = &self.latency;
        s.push_str(&format!(
            "  latency µs  p50 {:.0}   p90 {:.0}   p99 {:.0}   p99.9 {:.0}   max {:.0}  (from {})\n",
            l.p50_us, l.p90_us, l.p99_us, l.p999_us, l.max_us, l.measured_from
        ));
        if let Some(sc) = &self.server_cpu {
            s.push_str(&format!(
                "  server CPU     {:.2} s = {:.2} cores, {:.1} µs per request\n",
                sc.cpu_s, sc.cores, sc.us_per_request
            ));
        }
        if let Some(g) = &self.generator_cpu {
            s.push_str(&format!(
                "  generator CPU  {:.2} s = {:.2} cores, {:.1} µs per request (busiest thread {:.0} %)\n",
                g.cpu_s,
                g.cores,
                g.us_per_request,
                self.generator_busiest_thread * 100.0
            ));
        }
        for w in &self.warnings {
            s.push_str(&format!("  WARNING: {w}\n"));
        }
        s
    }
}
