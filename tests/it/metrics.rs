//! The monitoring listener end to end: real RADIUS traffic from our client, then a real HTTP
//! scrape of `/metrics`, `/healthz` and `/readyz` (issue 6). Each counter is checked against the
//! exact traffic sent, and the scrape is checked for user names and passcodes.

use std::collections::BTreeMap;
use std::time::Duration;

use tokengate::model::{OtpMode, TokenKind};
use tokengate::radius::Code;
use tokengate::server::http::api_key_sha256;

use crate::common::*;

const KEY: &str = "tgk_metrics-test-key-0123456789abcdefghijklm";

fn extra() -> String {
    let hash: String = api_key_sha256(KEY)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "[metrics]\nlisten = \"127.0.0.1:0\"\n\n[admin_api]\nlisten = \"127.0.0.1:0\"\n\n\
         [[admin_api.key]]\nname = \"ops\"\nkey_sha256 = \"{hash}\"\n"
    )
}

/// A scrape: the raw text and every sample by `name{labels}` as rendered.
pub struct Scrape {
    pub text: String,
    pub samples: BTreeMap<String, f64>,
}

impl Scrape {
    /// The sample `series` (`name` or `name{a="b",…}` exactly as the encoder writes it); 0 when
    /// absent (a series created on first use).
    pub fn get(&self, series: &str) -> f64 {
        self.samples.get(series).copied().unwrap_or(0.0)
    }

    /// Sum of every sample of `name` whose labels include all of `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(k, _)| {
                let (n, rest) = k.split_once('{').unwrap_or((k.as_str(), ""));
                n == name
                    && labels
                        .iter()
                        .all(|(l, v)| rest.contains(&format!("{l}=\"{v}\"")))
            })
            .map(|(_, v)| *v)
            .sum()
    }
}

/// GETs `http://addr/path`: (status, body).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = http
        .get(format!("http://{addr}{path}"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

pub fn parse(text: &str) -> Scrape {
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample line has a value");
        samples.insert(
            series.to_string(),
            value.parse::<f64>().expect("numeric value"),
        );
    }
    Scrape {
        text: text.to_string(),
        samples,
    }
}

pub async fn scrape(addr: std::net::SocketAddr) -> Scrape {
    let (status, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200);
    parse(&body)
}

fn req(result: &str, method: &str) -> String {
    format!(
        "tokengate_requests_total{{client=\"nas\",method=\"{method}\",protocol=\"radius\",result=\"{result}\"}}"
    )
}

#[tokio::test]
async fn radius_traffic_moves_the_counters_it_should_and_no_user_name_is_scraped() {
    let tg = TestGateway::start_with(&extra()).await;
    let maddr = tg.gw().metrics_addr().expect("[metrics] is configured");
    let t0 = tg.now();
    tg.gw().clock.freeze(t0);
    let s = tg.step();
    tg.pin_user("alice").await;
    tg.pin_user("bob").await;
    tg.pin_user("dave").await;
    let carol_serial = tg.pin_user("carol").await;
    tg.user_with_token("frank", None, TokenKind::Pin, OtpMode::Totp { period: 30 })
        .await;

    let before = scrape(maddr).await;
    assert_eq!(before.get(&req("accept", "token")), 0.0);
    assert_eq!(
        before.get(&format!(
            "tokengate_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        )),
        1.0,
        "build info"
    );

    let mut c = RadClient::new(tg.addr).await;
    // Accept, then its retransmission (answered from the cache), then a replay (new request).
    let pc = format!("1234{}", code(s));
    let first = c.build("alice", &pc, None, &[]);
    assert_eq!(c.send_raw(&first).await.unwrap().code, Code::AccessAccept);
    assert_eq!(c.send_raw(&first).await.unwrap().code, Code::AccessAccept);
    assert_eq!(c.ask("alice", &pc).await.code, Code::AccessReject);
    // A plain wrong passcode and an unknown user: both rejects.
    assert_eq!(c.ask("alice", "1234000000").await.code, Code::AccessReject);
    assert_eq!(c.ask("nobody", "1234000000").await.code, Code::AccessReject);
    // Five failures lock bob (one lockout, however many rejects follow).
    for i in 0..6 {
        assert_eq!(
            c.ask("bob", &format!("12340000{i:02}")).await.code,
            Code::AccessReject
        );
    }
    // Next Tokencode: a challenge, answered.
    let ch = c.ask("dave", &format!("1234{}", code(s + 3))).await;
    assert_eq!(ch.code, Code::AccessChallenge);
    assert_eq!(
        c.answer("dave", &code(s + 4), &ch).await.code,
        Code::AccessAccept
    );
    // New PIN: a challenge answered after the session's lifetime.
    let np = c.ask("frank", &code(s)).await;
    assert_eq!(np.code, Code::AccessChallenge);
    tg.gw().clock.freeze(t0 + 121);
    assert_eq!(
        c.answer("frank", "246810", &np).await.code,
        Code::AccessReject
    );
    tg.gw().clock.freeze(t0);
    // An emergency code issued through the admin API, then used.
    let tft = issue_tft_via_api(tg.gw().admin_addr().unwrap(), KEY, &carol_serial).await;
    assert_eq!(
        c.ask("carol", &format!("1234{tft}")).await.code,
        Code::AccessAccept
    );
    let answered = 1 + 1 + 1 + 1 + 6 + 2 + 2 + 1;

    // Drops: unknown client, wrong secret (bad Message-Authenticator), missing
    // Message-Authenticator, malformed.
    let mut stranger = RadClient::from(tg.addr, "127.0.0.3", SECRET).await;
    stranger.timeout = Duration::from_millis(300);
    assert!(stranger.request("alice", &pc, None).await.is_none());
    let mut wrong = RadClient::from(tg.addr, "127.0.0.1", "not-the-secret").await;
    wrong.timeout = Duration::from_millis(300);
    assert!(wrong.request("alice", &pc, None).await.is_none());
    let mut bare = RadClient::new(tg.addr).await;
    bare.message_authenticator = false;
    bare.timeout = Duration::from_millis(300);
    assert!(bare.request("alice", &pc, None).await.is_none());
    let junk = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    junk.send_to(&[1, 0, 0, 19], tg.addr).await.unwrap();
    junk.send_to(&[1, 0, 0, 19, 7], tg.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let m = scrape(maddr).await;
    assert_eq!(m.get(&req("accept", "token")), 2.0, "alice and dave");
    assert_eq!(m.get(&req("accept", "tft")), 1.0);
    assert_eq!(m.get(&req("challenge", "token")), 2.0);
    assert_eq!(
        m.sum("tokengate_requests_total", &[("result", "reject")]),
        (1 + 1 + 1 + 6 + 1) as f64
    );
    assert_eq!(
        m.sum("tokengate_requests_total", &[("protocol", "radius")]),
        answered as f64,
        "every answered request, the retransmission excluded"
    );
    assert_eq!(
        m.get("tokengate_request_duration_seconds_count{protocol=\"radius\"}"),
        answered as f64,
        "one latency observation per answered request"
    );
    assert_eq!(
        m.get("tokengate_request_duration_seconds_bucket{protocol=\"radius\",le=\"1\"}"),
        answered as f64
    );
    assert!(m.samples.contains_key(
        "tokengate_request_duration_seconds_bucket{protocol=\"radius\",le=\"0.00005\"}"
    ));
    assert_eq!(m.get("tokengate_radius_duplicates_answered_total"), 1.0);
    assert_eq!(m.get("tokengate_replays_refused_total"), 1.0);
    assert_eq!(m.get("tokengate_lockouts_total"), 1.0);
    assert_eq!(
        m.get("tokengate_challenges_total{kind=\"next_tokencode\"}"),
        1.0
    );
    assert_eq!(m.get("tokengate_challenges_total{kind=\"new_pin\"}"), 1.0);
    assert_eq!(
        m.get("tokengate_challenges_expired_total{reason=\"answered_late\"}"),
        1.0
    );
    assert_eq!(
        m.get("tokengate_emergency_codes_issued_total{kind=\"tft\"}"),
        1.0
    );
    assert_eq!(
        m.get("tokengate_emergency_codes_used_total{kind=\"tft\"}"),
        1.0
    );
    assert_eq!(
        m.get("tokengate_emergency_codes_used_total{kind=\"ott\"}"),
        0.0
    );
    for (reason, n) in [
        ("unknown_client", 1.0),
        ("bad_message_authenticator", 1.0),
        ("missing_message_authenticator", 1.0),
        ("malformed", 2.0),
        ("overload", 0.0),
    ] {
        assert_eq!(
            m.get(&format!(
                "tokengate_radius_dropped_total{{reason=\"{reason}\"}}"
            )),
            n,
            "{reason}"
        );
    }
    assert_eq!(
        m.get("tokengate_radius_malformed_total{reason=\"too_short\"}"),
        2.0
    );
    // The user cache: one lookup per answered request; at least one miss per user loaded
    // (the change feed may evict a user again after the admin changes above), and hits for
    // users seen again.
    let hits = m.get("tokengate_user_cache_lookups_total{result=\"hit\"}");
    let misses = m.get("tokengate_user_cache_lookups_total{result=\"miss\"}");
    assert_eq!(hits + misses, answered as f64);
    assert!(misses >= 6.0 && hits >= 1.0, "hits {hits}, misses {misses}");
    // The group-commit writer committed every answer's writes.
    assert!(m.get("tokengate_db_write_batch_groups_count") >= 1.0);
    assert!(m.get("tokengate_db_write_batch_groups_sum") >= answered as f64);
    assert_eq!(
        m.get("tokengate_db_commit_duration_seconds_count"),
        m.get("tokengate_db_write_batch_groups_count")
    );
    assert_eq!(m.get("tokengate_db_write_queue_depth"), 0.0);

    // Bounded labels: no user name, passcode or code anywhere in the scrape.
    for secret in [
        "alice", "bob", "carol", "dave", "frank", "nobody", &pc, &tft, SECRET,
    ] {
        assert!(!m.text.contains(secret), "{secret:?} appears in the scrape");
    }
    let _ = tg.shutdown().await;
}

#[tokio::test]
async fn healthz_and_readyz_answer_and_readyz_fails_when_the_database_is_gone() {
    let tg = TestGateway::start_with(&extra()).await;
    let maddr = tg.gw().metrics_addr().unwrap();
    assert_eq!(http_get(maddr, "/healthz").await, (200, "ok\n".into()));
    assert_eq!(http_get(maddr, "/readyz").await, (200, "ready\n".into()));
    // Content type of the scrape.
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = http
        .get(format!("http://{maddr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "text/plain; version=0.0.4"
    );
    // Close the database pool under the running gateway: readiness must fail, health not.
    tg.gw().store.close().await;
    let (status, body) = http_get(maddr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("database"), "{body}");
    assert_eq!(http_get(maddr, "/healthz").await.0, 200);
}

#[tokio::test]
async fn a_metrics_listener_address_in_use_fails_the_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        None,
        &format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let config = tokengate::config::Config::load(&path).unwrap();
    let err = match tokengate::server::Gateway::start(config).await {
        Ok(_) => panic!("started on a taken port"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
}

/// Runs `promtool` with `args` in `dir`, feeding `stdin`; fails the test (never skips) when
/// promtool is not installed.
fn promtool(dir: &std::path::Path, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "promtool is required ({e}): apt-get install --no-install-recommends prometheus \
                 (scripts/test.sh does it)"
            )
        });
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A gateway that has answered an accept, a reject and an unknown user, so the per-client
/// series exist; returns it with a scrape.
async fn busy_gateway() -> (TestGateway, Scrape) {
    let tg = TestGateway::start_with(&extra()).await;
    tg.pin_user("alice").await;
    let mut c = RadClient::new(tg.addr).await;
    let passcode = format!("1234{}", code(tg.step()));
    assert_eq!(c.ask("alice", &passcode).await.code, Code::AccessAccept);
    assert_eq!(c.ask("alice", "1234000000").await.code, Code::AccessReject);
    assert_eq!(c.ask("nobody", "1234000000").await.code, Code::AccessReject);
    let m = scrape(tg.gw().metrics_addr().unwrap()).await;
    (tg, m)
}

#[tokio::test]
async fn promtool_accepts_the_alert_rules_their_unit_tests_and_a_live_scrape() {
    let rules = repo().join("deploy/prometheus");
    let (ok, out) = promtool(&rules, &["check", "rules", "alerts.yml"], None);
    assert!(ok, "promtool check rules:\n{out}");
    let (ok, out) = promtool(&rules, &["test", "rules", "alerts_test.yml"], None);
    assert!(ok, "promtool test rules:\n{out}");
    let (tg, m) = busy_gateway().await;
    let (ok, out) = promtool(&rules, &["check", "metrics"], Some(&m.text));
    assert!(
        ok,
        "promtool check metrics:\n{out}\n--- scrape ---\n{}",
        m.text
    );
    assert!(out.trim().is_empty(), "promtool lint findings:\n{out}");
    let _ = tg.shutdown().await;
}

/// Metric names (families) referenced in `text`: every `tokengate_…` token, with a histogram's
/// `_bucket`/`_sum`/`_count` series mapped to its family.
fn referenced(text: &str, histograms: &[String]) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(off) = text[i..].find("tokengate_") {
        let start = i + off;
        let preceded = start > 0
            && (bytes[start - 1].is_ascii_alphanumeric()
                || bytes[start - 1] == b'_'
                || bytes[start - 1] == b'-');
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        if !preceded {
            let mut name = text[start..end].to_string();
            for suffix in ["_bucket", "_sum", "_count"] {
                if let Some(base) = name.strip_suffix(suffix) {
                    if histograms.iter().any(|h| h == base) {
                        name = base.to_string();
                    }
                }
            }
            names.insert(name);
        }
        i = end;
    }
    names
}

#[tokio::test]
async fn every_metric_in_the_dashboard_and_alert_rules_exists_in_a_live_scrape() {
    let (tg, m) = busy_gateway().await;
    let mut families = Vec::new();
    let mut histograms = Vec::new();
    for line in m.text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            families.push(name.to_string());
            if kind == "histogram" {
                histograms.push(name.to_string());
            }
        }
    }
    // Every declared name is served (TACACS+ close reasons appear with the first close).
    for name in tokengate::metrics::names::ALL {
        if *name != tokengate::metrics::names::TACACS_CLOSED {
            assert!(
                families.iter().any(|f| f == name),
                "{name} not in the scrape"
            );
        }
    }
    let dashboard = std::fs::read_to_string(repo().join("deploy/grafana/tokengate.json")).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).expect("dashboard is JSON");
    let panels = parsed["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10);
    let alerts = std::fs::read_to_string(repo().join("deploy/prometheus/alerts.yml")).unwrap();
    for (file, text, at_least) in [("dashboard", &dashboard, 15), ("alerts", &alerts, 6)] {
        let names = referenced(text, &histograms);
        assert!(names.len() >= at_least, "{file}: only {names:?} referenced");
        for n in &names {
            assert!(
                families.iter().any(|f| f == n),
                "{file} uses {n}, which the gateway does not export"
            );
        }
    }
    let _ = tg.shutdown().await;
}

#[test]
fn every_metric_name_is_documented_in_the_readme() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    for name in tokengate::metrics::names::ALL {
        assert!(
            readme.contains(&format!("`{name}`")),
            "{name} is not in the README's metric table"
        );
    }
}

#[tokio::test]
async fn tacacs_logins_are_counted_per_client_with_their_latency_and_connections() {
    let tg = TestGateway::start_with(&format!("{}{}", extra(), crate::tacacs_e2e::TACACS)).await;
    let maddr = tg.gw().metrics_addr().unwrap();
    let tacacs = tg.gw().tacacs_addrs()[0];
    tg.pin_user("alice").await;
    let pass = crate::tacacs_e2e::pap(tacacs, "alice", &format!("1234{}", code(tg.step()))).await;
    assert_eq!(format!("{pass:?}"), "Pass");
    let fail = crate::tacacs_e2e::pap(tacacs, "alice", "1234000000").await;
    assert_eq!(format!("{fail:?}"), "Fail");
    let series = |result: &str| {
        format!(
            "tokengate_requests_total{{client=\"switch\",method=\"token\",protocol=\"tacacs\",result=\"{result}\"}}"
        )
    };
    // The server counts a close after the client has seen its reply: wait for both.
    let mut m = scrape(maddr).await;
    for _ in 0..50 {
        if m.get("tokengate_tacacs_connections_open") == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        m = scrape(maddr).await;
    }
    assert_eq!(m.get(&series("accept")), 1.0);
    assert_eq!(m.get(&series("reject")), 1.0);
    assert_eq!(
        m.get("tokengate_request_duration_seconds_count{protocol=\"tacacs\"}"),
        2.0
    );
    assert_eq!(
        m.get("tokengate_request_duration_seconds_count{protocol=\"radius\"}"),
        0.0
    );
    assert_eq!(m.get("tokengate_tacacs_connections_total"), 2.0);
    assert_eq!(m.get("tokengate_tacacs_connections_open"), 0.0);
    assert_eq!(m.sum("tokengate_tacacs_connections_closed_total", &[]), 2.0);
    assert_eq!(
        m.get("tokengate_tacacs_sessions_total{kind=\"authentication\"}"),
        2.0
    );
    assert!(!m.text.contains("alice") && !m.text.contains("tackey"));
    let _ = tg.shutdown().await;
}
