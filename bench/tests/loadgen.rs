//! End to end: `tokengate populate` (the real CLI code path) creates a small population, a real
//! gateway serves it on loopback, and the `tg-loadgen` binary logs every user in once with PIN +
//! TOTP and Message-Authenticator: every request must be accepted, none may time out. The
//! library entry point then drives the reject and unknown-user paths. A HOTP population is then
//! reused across three runs that carry the counters in a state file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tokengate::cli::Cli;
use tokengate::config::Config;
use tokengate::server::Gateway;
use tokengate_bench::population::{load_secrets, Population};
use tokengate_bench::{run, Load, Options, Passcodes, Stop};

const SECRET: &str = "testing123";

fn write_config(dir: &Path) -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = format!(
        r#"version = 1
[server]
data_dir = "{data}"
dictionary = "{dict}"

[radius]
listen = ["127.0.0.1:0"]

[[client]]
name = "bench"
address = "127.0.0.1/32"
secret = "{SECRET}"
"#,
        data = dir.join("data").display(),
        dict = repo.join("dictionaries/dictionary").display(),
    );
    let p = dir.join("tokengate.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn populate_then_loadgen_gets_every_request_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    let secrets = dir.path().join("secrets.csv");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // 250 users: 200 accepted logins need 200 distinct users within one TOTP step.
    let cli = Cli::try_parse_from([
        "tokengate",
        "--config",
        cfg.to_str().unwrap(),
        "populate",
        "--users",
        "250",
        "--secrets-out",
        secrets.to_str().unwrap(),
    ])
    .unwrap();
    rt.block_on(tokengate::cli::run(cli)).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secrets).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "secrets file must be private");
    }
    let users = load_secrets(&secrets).unwrap();
    assert_eq!(users.len(), 250);
    assert_eq!(users[0].pin.len(), 6);

    let gw = rt
        .block_on(Gateway::start(Config::load(&cfg).unwrap()))
        .unwrap();
    let addr = gw.radius_addrs()[0];

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tg-loadgen"))
        .args([
            "--server",
            &addr.to_string(),
            "--secret",
            SECRET,
            "--secrets",
            secrets.to_str().unwrap(),
            "--slice",
            "0:200",
            "--requests",
            "200",
            "--concurrency",
            "40",
            "--message-authenticator",
            "--server-pid",
            &std::process::id().to_string(),
            "--json",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tg-loadgen failed: {stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let counts = &report["counts"];
    assert_eq!(counts["sent"], 200, "{stderr}");
    assert_eq!(counts["accept"], 200, "every login accepted: {stderr}");
    assert_eq!(counts["timeouts"], 0, "{stderr}");
    assert_eq!(counts["invalid"], 0, "{stderr}");
    assert!(report["latency"]["p99_us"].as_f64().unwrap() > 0.0);
    assert!(report["server_cpu"]["cpu_s"].is_number());
    assert!(
        stderr.contains("throughput"),
        "human table on stderr: {stderr}"
    );

    // The reject path (wrong codes, users of their own) and unknown users, through the library.
    let population = Arc::new(Population::Otp(users).slice(200, 250));
    let base = Options {
        server: addr,
        secret: SECRET.as_bytes().to_vec(),
        load: Load::Closed { concurrency: 4 },
        stop: Stop::Requests(40),
        workers: 1,
        message_authenticator: true,
        passcodes: Passcodes::Wrong,
        population,
        timeout: Duration::from_secs(2),
        server_pid: None,
        state_file: None,
    };
    let wrong = run(base.clone()).unwrap();
    assert_eq!(wrong.counts.reject, 40, "{}", wrong.table());
    assert_eq!(wrong.counts.timeouts, 0);
    let unknown = run(Options {
        passcodes: Passcodes::Unknown,
        load: Load::Open { rate: 400.0 },
        ..base
    })
    .unwrap();
    assert_eq!(unknown.counts.reject, 40, "{}", unknown.table());
    assert_eq!(unknown.counts.timeouts, 0);

    rt.block_on(gw.shutdown());
}

/// Runs the `tg-loadgen` binary against `addr` and returns its JSON report and stderr.
fn loadgen(addr: std::net::SocketAddr, args: &[&str]) -> (serde_json::Value, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tg-loadgen"))
        .args(["--server", &addr.to_string(), "--secret", SECRET, "--json"])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "tg-loadgen failed: {stderr}");
    (serde_json::from_slice(&out.stdout).unwrap(), stderr)
}

#[test]
fn hotp_population_reused_across_runs_with_state_gets_every_request_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    let secrets = dir.path().join("secrets.csv");
    let state = dir.path().join("state");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cli = Cli::try_parse_from([
        "tokengate",
        "--config",
        cfg.to_str().unwrap(),
        "populate",
        "--users",
        "40",
        "--mode",
        "hotp",
        "--secrets-out",
        secrets.to_str().unwrap(),
    ])
    .unwrap();
    rt.block_on(tokengate::cli::run(cli)).unwrap();
    let users = load_secrets(&secrets).unwrap();
    assert_eq!(users.len(), 40);
    assert!(users
        .iter()
        .all(|u| u.mode == tokengate::model::OtpMode::Hotp));

    let gw = rt
        .block_on(Gateway::start(Config::load(&cfg).unwrap()))
        .unwrap();
    let addr = gw.radius_addrs()[0];
    let (secrets, state) = (secrets.to_str().unwrap(), state.to_str().unwrap());

    // 400 logins of 40 users: each user ten times in one run, with as many requests in flight
    // as there are users (20 on each of two sockets). Only one request per user in flight and
    // consumed counters get them all accepted.
    let (closed, stderr) = loadgen(
        addr,
        &[
            "--secrets",
            secrets,
            "--state",
            state,
            "--requests",
            "400",
            "--concurrency",
            "8",
            "--threads",
            "2",
            "--message-authenticator",
            "--timeout-ms",
            "10000",
        ],
    );
    let c = &closed["counts"];
    assert_eq!(closed["credentials"], "hotp", "{stderr}");
    assert_eq!(
        (c["sent"].as_u64(), c["accept"].as_u64()),
        (Some(400), Some(400)),
        "{stderr}"
    );
    assert_eq!(
        (c["timeouts"].as_u64(), c["invalid"].as_u64()),
        (Some(0), Some(0)),
        "{stderr}"
    );

    // The second run continues each user's counter from the state file: all 400 accepted
    // again (closed loop, 8 in flight).
    let (second, stderr) = loadgen(
        addr,
        &[
            "--secrets",
            secrets,
            "--state",
            state,
            "--requests",
            "400",
            "--concurrency",
            "8",
            "--message-authenticator",
            "--timeout-ms",
            "10000",
        ],
    );
    let c = &second["counts"];
    assert_eq!(
        (c["sent"].as_u64(), c["accept"].as_u64()),
        (Some(400), Some(400)),
        "{stderr}"
    );

    // A third run in open loop. The debug build of the gateway may stall long enough for all
    // 40 users to be in flight: such a request is skipped and counted, never sent for a busy
    // user, and everything sent is accepted.
    let (open, stderr) = loadgen(
        addr,
        &[
            "--secrets",
            secrets,
            "--state",
            state,
            "--requests",
            "200",
            "--rate",
            "200",
            "--message-authenticator",
            "--timeout-ms",
            "10000",
        ],
    );
    let c = &open["counts"];
    let open_sent = c["sent"].as_u64().unwrap();
    assert!(open_sent > 0, "{stderr}");
    assert_eq!(
        c["no_free_user"].as_u64(),
        Some(200 - open_sent),
        "{stderr}"
    );
    assert_eq!(c["accept"].as_u64(), Some(open_sent), "{stderr}");
    assert_eq!(
        (c["reject"].as_u64(), c["timeouts"].as_u64()),
        (Some(0), Some(0)),
        "{stderr}"
    );

    let saved = match tokengate_bench::state::read(Path::new(state)).unwrap() {
        Some(tokengate_bench::state::State::Hotp(m)) => m,
        other => panic!("expected HOTP counters, got {other:?}"),
    };
    assert_eq!(saved.len(), 40);
    assert_eq!(
        saved.values().sum::<u64>(),
        800 + open_sent,
        "one counter per request sent"
    );

    // Without the state the counters start at 0 again: the server sees replays. This is what
    // --state prevents.
    let (fresh, stderr) = loadgen(
        addr,
        &[
            "--secrets",
            secrets,
            "--slice",
            "0:3",
            "--requests",
            "3",
            "--concurrency",
            "1",
            "--message-authenticator",
            "--timeout-ms",
            "10000",
        ],
    );
    assert_eq!(fresh["counts"]["reject"], 3, "{stderr}");
    assert_eq!(fresh["counts"]["accept"], 0, "{stderr}");
    assert!(
        stderr.contains("3 right passcodes were rejected"),
        "the report says so: {stderr}"
    );

    rt.block_on(gw.shutdown());
}
