//! Refused admin API keys leave a trace (issue 21): the real `tokengate serve`, with the admin
//! API and the metrics listener on loopback, is sent requests with a wrong, a malformed and no
//! key. Each kind is counted in `tokengate_admin_api_auth_failures_total`; the log gets one WARN
//! line with the source and the reason at once (never the key) and one summary per interval; the
//! audit table gets one record per source and interval with the counts. A flood of 1,000 wrong
//! keys costs a bounded number of lines and records, whose counts add up to the flood.

use std::path::Path;

use serde_json::Value;
use tokengate::server::http::api_key_sha256;

use crate::common::*;
use crate::logging::{start_listening, Daemon};
use crate::metrics::scrape;

const KEY: &str = "tgk_auth-failure-test-key-Vb7Nm3Qx9Tz1Lc5Wd8Hf2Kp";
const WRONG: &str = "tgk_wrong-key-never-logged-Rt6Yu8Io0Pa2Sd4Fg";

/// What the immediate line says.
const REFUSED: &str = "admin API: request refused for its API key";
/// What the per-interval summary says.
const SUMMARY: &str = "admin API: requests refused for their API key in the last";

fn config(dir: &Path) -> std::path::PathBuf {
    let hash: String = api_key_sha256(KEY)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    write_config(
        dir,
        None,
        &format!(
            "[metrics]\nlisten = \"127.0.0.1:0\"\n\n[admin_api]\nlisten = \"127.0.0.1:0\"\n\n\
             [[admin_api.key]]\nname = \"ops\"\nkey_sha256 = \"{hash}\"\n"
        ),
    )
}

/// Starts the daemon; returns it with its admin API and metrics addresses.
fn start(cfg: &Path) -> (Daemon, std::net::SocketAddr, std::net::SocketAddr) {
    let (d, a) = start_listening(cfg, "human", &["admin API listening", "metrics listening"]);
    (d, a[0], a[1])
}

/// `GET /api/v1/users` with `authorization` (none when `None`); returns the status.
async fn get_users(
    http: &reqwest::Client,
    admin: std::net::SocketAddr,
    authorization: Option<&str>,
) -> u16 {
    let mut r = http.get(format!("http://{admin}/api/v1/users"));
    if let Some(a) = authorization {
        r = r.header("Authorization", a);
    }
    r.send().await.unwrap().status().as_u16()
}

fn failures(m: &crate::metrics::Scrape, reason: &str) -> f64 {
    m.get(&format!(
        "tokengate_admin_api_auth_failures_total{{reason=\"{reason}\"}}"
    ))
}

/// The audit records of refused keys, read with `tokengate audit export` (daemon stopped).
fn refused_records(cfg: &Path) -> Vec<Value> {
    let (ok, out, err) = cli(
        cfg,
        &["audit", "export", "--since", "1d", "--format", "jsonl"],
    );
    assert!(ok, "{err}");
    out.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["method"] == "api_key_refused")
        .collect()
}

/// The refusal count a record's reason starts with (`"1000 in 60 s: unknown_key=1000"`).
fn count_of(record: &Value) -> u64 {
    let reason = record["reason"].as_str().unwrap();
    reason.split(' ').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn refused_api_keys_are_logged_counted_and_audited_per_source() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let (daemon, admin, metrics) = start(&cfg);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();

    let before = scrape(metrics).await;
    for reason in ["missing", "malformed", "unknown_key"] {
        assert_eq!(failures(&before, reason), 0.0, "{reason}");
    }
    let wrong = format!("Bearer {WRONG}");
    assert_eq!(get_users(&http, admin, Some(&wrong)).await, 401);
    assert_eq!(get_users(&http, admin, Some(&wrong)).await, 401);
    assert_eq!(get_users(&http, admin, Some(&wrong)).await, 401);
    assert_eq!(get_users(&http, admin, None).await, 401);
    assert_eq!(
        get_users(&http, admin, Some("Basic b3BzOm9wcw==")).await,
        401
    );
    // The right key is no failure.
    assert_eq!(
        get_users(&http, admin, Some(&format!("Bearer {KEY}"))).await,
        200
    );

    let m = scrape(metrics).await;
    assert_eq!(failures(&m, "unknown_key"), 3.0);
    assert_eq!(failures(&m, "missing"), 1.0);
    assert_eq!(failures(&m, "malformed"), 1.0);

    let printed = daemon.stop();
    assert!(!printed.contains(WRONG), "the key was logged:\n{printed}");
    assert!(
        !printed.contains(&WRONG[4..20]),
        "the key was logged:\n{printed}"
    );
    // One line at once: the first refusal, with the source and its reason.
    let lines: Vec<&str> = printed.lines().filter(|l| l.contains(REFUSED)).collect();
    assert_eq!(lines.len(), 1, "{printed}");
    for want in [
        "WARN",
        "source=127.0.0.1",
        "reason=\"unknown_key\"",
        "method=GET",
        "path=\"/api/v1/users\"",
    ] {
        assert!(lines[0].contains(want), "{want} not in {}", lines[0]);
    }
    // One summary (at shutdown here: the interval had not ended) with the other four.
    let summary: Vec<&str> = printed.lines().filter(|l| l.contains(SUMMARY)).collect();
    assert_eq!(summary.len(), 1, "{printed}");
    for want in [
        "source=127.0.0.1",
        "refused=5",
        "not_logged_singly=4",
        "reasons=\"missing=1 malformed=1 unknown_key=3\"",
    ] {
        assert!(summary[0].contains(want), "{want} not in {}", summary[0]);
    }
    // One audit record for the source, with the counts.
    let records = refused_records(&cfg);
    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    assert_eq!(r["client"], "127.0.0.1");
    assert_eq!(r["protocol"], "admin");
    assert_eq!(r["result"], "refused");
    assert_eq!(
        r["reason"], "5 in 60 s: missing=1 malformed=1 unknown_key=3",
        "{r}"
    );
}

#[tokio::test]
async fn a_flood_of_wrong_keys_costs_a_bounded_number_of_log_lines_and_audit_records() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let (daemon, admin, metrics) = start(&cfg);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let started = std::time::Instant::now();
    let wrong = format!("Bearer {WRONG}");
    // 25 at a time (the API answers up to 64 at once).
    for _ in 0..1_000 / 25 {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..25 {
            let (http, wrong) = (http.clone(), wrong.clone());
            set.spawn(async move { get_users(&http, admin, Some(&wrong)).await });
        }
        while let Some(status) = set.join_next().await {
            assert_eq!(status.unwrap(), 401);
        }
    }
    // Reports that may have happened: one per interval begun (the last at shutdown).
    let intervals = 1 + started.elapsed().as_secs() / 60;
    let m = scrape(metrics).await;
    assert_eq!(failures(&m, "unknown_key"), 1_000.0);

    let printed = daemon.stop();
    assert!(!printed.contains(WRONG), "the key was logged");
    let lines = printed
        .lines()
        .filter(|l| l.contains(REFUSED) || l.contains(SUMMARY))
        .count() as u64;
    // The first refusal at once, then at most one summary per interval.
    assert!(
        (2..=1 + intervals).contains(&lines),
        "{lines} lines for 1,000 refusals over {intervals} interval(s)"
    );
    let records = refused_records(&cfg);
    assert!(
        !records.is_empty() && records.len() as u64 <= intervals,
        "{} audit records over {intervals} interval(s): {records:?}",
        records.len()
    );
    assert_eq!(records.iter().map(count_of).sum::<u64>(), 1_000);
}
