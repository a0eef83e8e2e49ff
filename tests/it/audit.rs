//! The audit log end to end: records written by real RADIUS and TACACS+ (PyPI `tacacs_plus`)
//! logins and by admin actions come back from `tokengate audit export` in JSON lines and CSV
//! (read back with Python's `csv` module), `--since/--until` select by time, and the retention
//! (the gateway's background task and `tokengate audit prune`) deletes only old rows. Runs on
//! SQLite and, when `TEST_DATABASE_URL` is set, on PostgreSQL too.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use tokengate::engine::WriteOp;
use tokengate::model::AuditRecord;
use tokengate::radius::Code;
use tokengate::store::Store;

use crate::common::*;
use crate::multi_instance::{drop_pg, fresh_pg_url};

const TACACS: &str = r#"
[tacacs]
listen = ["127.0.0.1:0"]

[[client]]
name = "switch"
address = "127.0.0.1/32"
secret = "radius-unused"
tacacs_keys = ["tackey"]
"#;

/// A user name that needs every kind of CSV quoting.
const ODD_NAME: &str = "o'neil, \"bob\"\nsecond line";

/// Runs `body` once on a gateway over SQLite and once over a fresh PostgreSQL database when
/// `TEST_DATABASE_URL` is set.
async fn on_each_backend<F, Fut>(extra: &str, body: F)
where
    F: Fn(TestGateway, std::path::PathBuf) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), None, extra);
    body(TestGateway::start_at(dir, &path).await, path).await;
    if let Some((url, name)) = fresh_pg_url().await {
        let dir = tempfile::tempdir().unwrap();
        let path = write_config(dir.path(), Some(&url), extra);
        body(TestGateway::start_at(dir, &path).await, path).await;
        drop_pg(&name).await;
    }
}

fn export(config: &Path, args: &[&str]) -> String {
    let out = config.with_file_name(format!("export-{}", rand::random::<u32>()));
    let mut all = vec!["audit", "export", "--output", out.to_str().unwrap()];
    all.extend_from_slice(args);
    let (ok, _, err) = cli(config, &all);
    assert!(ok, "audit export failed: {err}");
    std::fs::read_to_string(out).unwrap()
}

fn jsonl(text: &str) -> Vec<BTreeMap<String, serde_json::Value>> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

/// Parses CSV with Python's `csv` module (an RFC 4180 reader nobody here wrote).
fn python_csv(text: &str) -> Vec<BTreeMap<String, String>> {
    use std::io::Write;
    let mut child = std::process::Command::new("python3")
        .args([
            "-c",
            "import csv, json, sys; print(json.dumps(list(csv.DictReader(sys.stdin))))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

fn tacacs_pap(addr: std::net::SocketAddr, user: &str, passcode: &str) -> serde_json::Value {
    let out = std::process::Command::new("python3")
        .arg(repo().join("tests/interop/tacacs_client.py"))
        .args([
            &addr.ip().to_string(),
            &addr.port().to_string(),
            "tackey",
            "authen-pap",
            user,
            passcode,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tacacs_plus client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn find(
    records: &[BTreeMap<String, serde_json::Value>],
    pred: impl Fn(&BTreeMap<String, serde_json::Value>) -> bool,
) -> &BTreeMap<String, serde_json::Value> {
    records
        .iter()
        .find(|r| pred(r))
        .unwrap_or_else(|| panic!("no such record in {records:#?}"))
}

#[tokio::test]
async fn audit_export_round_trips_radius_tacacs_and_admin_records_in_jsonl_and_csv() {
    on_each_backend(TACACS, |tg, config| async move {
        tg.pin_user("alice").await;
        let step = tg.step();
        let mut rad = RadClient::new(tg.addr).await;
        assert_eq!(
            rad.ask("alice", &format!("1234{}", code(step))).await.code,
            Code::AccessAccept
        );
        assert_eq!(rad.ask(ODD_NAME, "1234000000").await.code, Code::AccessReject);
        let tac = tg.gw().tacacs_addrs()[0];
        let pass = format!("1234{}", code(step + 1));
        let r = tokio::task::spawn_blocking(move || tacacs_pap(tac, "alice", &pass))
            .await
            .unwrap();
        assert_eq!(r["valid"], true, "{r}");
        tg.admin()
            .add_user("carol", "default", None, tg.now())
            .await
            .unwrap();

        let lines = jsonl(&export(&config, &["--since", "1h", "--format", "jsonl"]));
        let accept = find(&lines, |r| r["protocol"] == "radius" && r["user"] == "alice");
        assert_eq!(accept["client"], "nas");
        assert_eq!(accept["method"], "token");
        assert_eq!(accept["result"], "accept");
        assert_eq!(accept["actor"], serde_json::Value::Null);
        let at = accept["at"].as_i64().unwrap();
        assert!((tg.now() - at).abs() < 60);
        assert_eq!(accept["time"], tokengate::clock::format_utc(at));
        let odd = find(&lines, |r| r["user"] == ODD_NAME);
        assert_eq!(odd["protocol"], "radius");
        assert_eq!(odd["result"], "reject");
        assert_eq!(odd["reason"], "unknown_user");
        let tac = find(&lines, |r| r["protocol"] == "tacacs" && r["user"] == "alice");
        assert_eq!(tac["client"], "switch");
        assert_eq!(tac["method"], "token");
        assert_eq!(tac["result"], "accept");
        let admin = find(&lines, |r| r["method"] == "user_add" && r["user"] == "carol");
        assert_eq!(admin["actor"], "test");
        assert_eq!(admin["protocol"], "admin");
        assert_eq!(admin["result"], "ok");

        // CSV holds the same records, field for field, once a real CSV reader has unquoted them.
        let csv_text = export(&config, &["--since", "1h", "--format", "csv"]);
        assert!(csv_text.starts_with("time,at,actor,user,client,protocol,method,result,reason\r\n"));
        let rows = python_csv(&csv_text);
        let as_text: Vec<BTreeMap<String, String>> = lines
            .iter()
            .map(|r| {
                r.iter()
                    .map(|(k, v)| {
                        let s = match v {
                            serde_json::Value::Null => String::new(),
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (k.clone(), s)
                    })
                    .collect()
            })
            .collect();
        // The second export may include the first export's own audit record at the end.
        assert_eq!(rows[..as_text.len()], as_text[..]);
        assert!(rows.iter().any(|r| r["user"] == ODD_NAME));

        // Exporting is itself an audited admin action.
        let again = jsonl(&export(&config, &["--since", "1h"]));
        let exp = find(&again, |r| r["method"] == "audit_export");
        assert_eq!(exp["protocol"], "admin");
        assert!(exp["actor"].as_str().unwrap().starts_with("cli:"));
        tg.shutdown().await;
    })
    .await;
}

fn record(at: i64, user: &str) -> AuditRecord {
    AuditRecord {
        at,
        actor: None,
        user_name: user.into(),
        client: Some("nas".into()),
        protocol: "radius".into(),
        method: "token".into(),
        result: "accept".into(),
        reason: "none".into(),
    }
}

/// Writes the records in one transaction (as the group-commit writer would).
async fn insert_all(store: &Store, records: &[AuditRecord]) {
    let group: Vec<WriteOp> = records.iter().cloned().map(WriteOp::Audit).collect();
    assert_eq!(store.apply_batch(&[group]).await.unwrap(), [true]);
}

fn users(lines: &[BTreeMap<String, serde_json::Value>]) -> Vec<String> {
    lines
        .iter()
        .filter(|r| r["protocol"] == "radius")
        .map(|r| r["user"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn audit_export_since_until_select_by_time_in_every_form() {
    on_each_backend("", |tg, config| async move {
        // 2026-12-01T00:00:00Z and the hours after it; `late` is in the future (now + 1 day).
        let day = 1_796_083_200;
        let now = tg.now();
        insert_all(
            &tg.gw().store,
            &[
                record(day - 1, "before"),
                record(day, "midnight"),
                record(day + 3_600, "one"),
                record(day + 7_200, "two"),
                record(now - 7_000, "recent"),
                record(now + 86_400, "late"),
            ],
        )
        .await;
        let pick = |args: &[&str]| users(&jsonl(&export(&config, args)));
        assert_eq!(
            pick(&[
                "--since",
                "2026-12-01T00:00:00Z",
                "--until",
                "2026-12-01T02:00:00Z"
            ]),
            ["midnight", "one"],
            "since is inclusive, until exclusive"
        );
        assert_eq!(
            pick(&[
                "--since",
                "2026-12-01T00:59:59-01:00",
                "--until",
                "2026-12-02"
            ]),
            ["two"],
            "offsets and bare dates"
        );
        assert_eq!(
            pick(&["--since", "2026-11-30", "--until", "2026-12-01"]),
            ["before"]
        );
        assert_eq!(
            pick(&["--since", "3h"]),
            ["recent"],
            "an age; until defaults to now"
        );
        assert_eq!(pick(&["--since", "2h", "--until", "1h"]), ["recent"]);
        assert!(pick(&["--since", "116m"]).is_empty());
        let (ok, _, err) = cli(&config, &["audit", "export", "--since", "yesterday"]);
        assert!(!ok && err.contains("--since"), "{err}");
        let (ok, _, err) = cli(
            &config,
            &["audit", "export", "--since", "1h", "--until", "2h"],
        );
        assert!(!ok && err.contains("--until"), "{err}");
        tg.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn audit_export_pages_through_more_records_than_one_query_holds() {
    let tg = TestGateway::start().await;
    let now = tg.now();
    // More than two export pages (1,000 each), many sharing one timestamp, so the (at, id)
    // cursor must neither skip nor repeat records with equal times.
    let records: Vec<AuditRecord> = (0..2_500)
        .map(|i| record(now - 100 + i / 300, &format!("u{i:04}")))
        .collect();
    insert_all(&tg.gw().store, &records).await;
    let path = tg.dir.path().join("tokengate.toml");
    let got = users(&jsonl(&export(&path, &["--since", "1h"])));
    let want: Vec<String> = records.iter().map(|r| r.user_name.clone()).collect();
    assert_eq!(got, want);
    tg.shutdown().await;
}

async fn radius_count(store: &Store) -> Vec<String> {
    let mut names = radius_audit_names(store).await;
    names.sort();
    names
}

#[tokio::test]
async fn audit_retention_task_deletes_only_records_older_than_retention_days() {
    on_each_backend(
        "[audit]\nretention_days = 2\nprune_batch = 7\n",
        |tg, _config| async move {
            let now = tg.now();
            let mut records: Vec<AuditRecord> = (0..50)
                .map(|i| record(now - 3 * 86_400 - i, &format!("old{i:02}")))
                .collect();
            records.push(record(now - 2 * 86_400 + 60, "young"));
            records.push(record(now, "today"));
            insert_all(&tg.gw().store, &records).await;
            // The task runs at start and hourly: restart so it sees these rows at once.
            let dir = tg.shutdown().await;
            let path = dir.path().join("tokengate.toml");
            let tg = TestGateway::start_at(dir, &path).await;
            let mut left = Vec::new();
            for _ in 0..100 {
                left = radius_count(&tg.gw().store).await;
                if left.len() == 2 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert_eq!(left, ["today", "young"]);
            tg.shutdown().await;
        },
    )
    .await;
}

#[tokio::test]
async fn audit_prune_command_applies_the_retention_and_is_audited() {
    on_each_backend("", |tg, config| async move {
        let now = tg.now();
        insert_all(
            &tg.gw().store,
            &[
                record(now - 40 * 86_400, "ancient"),
                record(now - 29 * 86_400, "recent"),
            ],
        )
        .await;
        let (ok, _, err) = cli(&config, &["audit", "prune"]);
        assert!(
            !ok && err.contains("retention_days"),
            "no retention set: {err}"
        );
        let (ok, out, err) = cli(&config, &["audit", "prune", "--older-than-days", "30"]);
        assert!(ok, "{err}");
        assert!(out.contains("deleted 1 audit records"), "{out}");
        assert_eq!(radius_count(&tg.gw().store).await, ["recent"]);
        let all = tg.gw().store.audit_since(0, 100).await.unwrap();
        assert!(all
            .iter()
            .any(|r| r.method == "audit_prune" && r.protocol == "admin"));
        tg.shutdown().await;
    })
    .await;
}
