//! `tg-loadgen`: a RADIUS load generator for tokengate and FreeRADIUS. See `bench/README.md`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Parser;
use tokengate_bench::population::{load_secrets, load_users_file, Population};
use tokengate_bench::{run, Load, Options, Passcodes, Stop};

/// Sends Access-Requests to a RADIUS server on loopback and reports throughput, latency and
/// CPU per request.
#[derive(Debug, Parser)]
#[command(name = "tg-loadgen", version)]
struct Args {
    /// RADIUS server address.
    #[arg(long, default_value = "127.0.0.1:1812")]
    server: SocketAddr,
    /// Shared secret.
    #[arg(long, default_value = "testing123")]
    secret: String,
    /// Closed loop: requests kept outstanding (default 64 unless --rate is given).
    #[arg(long, conflicts_with = "rate")]
    concurrency: Option<usize>,
    /// Open loop: requests per second.
    #[arg(long)]
    rate: Option<f64>,
    /// Run for this many seconds (default 10 unless --requests is given).
    #[arg(long, conflicts_with = "requests")]
    duration: Option<f64>,
    /// Stop after this many requests.
    #[arg(long)]
    requests: Option<u64>,
    /// Worker sockets (one thread each; two in open loop).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Add a Message-Authenticator (first attribute) to every request.
    #[arg(long)]
    message_authenticator: bool,
    /// Secrets file from `tokengate populate --secrets-out` (PIN + TOTP or PIN + HOTP
    /// passcodes).
    #[arg(long, conflicts_with_all = ["users_file", "password_file"])]
    secrets: Option<PathBuf>,
    /// PAP users: `name password` lines, or a FreeRADIUS `users` file with Cleartext-Password.
    #[arg(long, conflicts_with = "password_file")]
    users_file: Option<PathBuf>,
    /// Same as --users-file.
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Use only users FIRST..LAST of the file (0-based, end exclusive), e.g. `0:100000`.
    #[arg(long)]
    slice: Option<String>,
    /// Send wrong passcodes (reject path; an OTP server counts them toward lockout).
    #[arg(long, conflicts_with = "unknown")]
    wrong: bool,
    /// Send unknown user names (unknown-user path).
    #[arg(long)]
    unknown: bool,
    /// Request timeout in milliseconds.
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
    /// Server process id: report its CPU time per request.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Keep the TOTP user cursor, or the HOTP counters, here between runs: back-to-back TOTP
    /// runs within one 30 s step never reuse a user, and HOTP runs never resend a counter the
    /// server has used (its replay guard would reject either). Written atomically.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Print the JSON report on stdout (the table goes to stderr).
    #[arg(long)]
    json: bool,
}

fn main() -> Result<()> {
    let a = Args::parse();
    let population = match (
        &a.secrets,
        a.users_file.as_ref().or(a.password_file.as_ref()),
    ) {
        (Some(p), _) => Population::Otp(load_secrets(p)?),
        (None, Some(p)) => Population::Plain(load_users_file(p)?),
        (None, None) => bail!("give --secrets FILE (PIN + TOTP/HOTP) or --users-file FILE (PAP)"),
    };
    let population = match &a.slice {
        None => population,
        Some(s) => {
            let (from, to) = s
                .split_once(':')
                .ok_or_else(|| anyhow::anyhow!("--slice is FIRST:LAST"))?;
            let from: usize = if from.is_empty() { 0 } else { from.parse()? };
            let to: usize = if to.is_empty() {
                usize::MAX
            } else {
                to.parse()?
            };
            population.slice(from, to)
        }
    };
    let load = match (a.rate, a.concurrency) {
        (Some(rate), _) => Load::Open { rate },
        (None, c) => Load::Closed {
            concurrency: c.unwrap_or(64),
        },
    };
    let stop = match (a.requests, a.duration) {
        (Some(n), _) => Stop::Requests(n),
        (None, d) => Stop::Duration(Duration::from_secs_f64(d.unwrap_or(10.0))),
    };
    let passcodes = if a.wrong {
        Passcodes::Wrong
    } else if a.unknown {
        Passcodes::Unknown
    } else {
        Passcodes::Correct
    };
    let report = run(Options {
        server: a.server,
        secret: a.secret.into_bytes(),
        load,
        stop,
        workers: a.threads,
        message_authenticator: a.message_authenticator,
        passcodes,
        population: Arc::new(population),
        timeout: Duration::from_millis(a.timeout_ms),
        server_pid: a.server_pid,
        state_file: a.state,
    })?;
    if a.json {
        eprint!("{}", report.table());
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}
