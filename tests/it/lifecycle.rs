//! Reload and shutdown under load: a client secret changed by `POST /api/v1/reload` while
//! thousands of real RADIUS requests run (none lost, none wrongly answered), an invalid file
//! refused with the old configuration still in force, SIGHUP and SIGTERM against the real
//! `tokengate serve` binary, and after SIGTERM (on SQLite, and on PostgreSQL when
//! `TEST_DATABASE_URL` is set) every accepted request's replay step and audit
//! record found in the reopened database.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokengate::admin::{Admin, TokenSpec};
use tokengate::config::Config;
use tokengate::model::{HashAlgorithm, OtpMode, TokenKind};
use tokengate::radius::{attr, ClientKey, Code, Packet};
use tokengate::server::http::api_key_sha256;

use crate::common::*;

const API_KEY: &str = "tgk_ops-reload-test-key-0123456789abcdefghijkl";
const NEW_SECRET: &str = "rotated-secret-456";

fn api_section() -> String {
    format!(
        "[admin_api]\nlisten = \"127.0.0.1:0\"\n\n[[admin_api.key]]\nname = \"ops\"\nkey_sha256 = \"{}\"\n",
        api_key_sha256(API_KEY)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

/// Rewrites the config file with `edit` applied to its text.
fn edit_config(path: &Path, edit: impl Fn(String) -> String) {
    let text = std::fs::read_to_string(path).unwrap();
    let new = edit(text.clone());
    assert_ne!(text, new, "the edit changed nothing");
    std::fs::write(path, new).unwrap();
}

async fn post_reload(api: SocketAddr) -> (u16, serde_json::Value) {
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("http://{api}/api/v1/reload"))
        .header("Authorization", format!("Bearer {API_KEY}"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// What a worker saw.
#[derive(Default)]
struct Tally {
    sent_old: AtomicUsize,
    sent_old_after_reload: AtomicUsize,
    sent_new: AtomicUsize,
    timeouts: AtomicUsize,
    bad_authenticator: AtomicUsize,
    wrong_answer: AtomicUsize,
    accepts: AtomicUsize,
}

/// Sends `request` (built and signed with `key`) and checks the reply against `key`: `Err` is
/// "timeout" or "bad authenticator".
async fn exchange(
    sock: &tokio::net::UdpSocket,
    server: SocketAddr,
    key: &ClientKey,
    request: &[u8],
) -> Result<(Code, Vec<(u8, Vec<u8>)>), &'static str> {
    let req = Packet::decode(request).unwrap();
    sock.send_to(request, server).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let n = match tokio::time::timeout(left, sock.recv(&mut buf)).await {
            Ok(r) => r.unwrap(),
            Err(_) => return Err("timeout"),
        };
        let Ok(p) = Packet::decode(&buf[..n]) else {
            return Err("bad authenticator");
        };
        if p.identifier() != req.identifier() {
            continue;
        }
        if !key.verify_response_authenticator(&p, req.authenticator())
            || !key.verify_message_authenticator(&p, req.authenticator())
        {
            return Err("bad authenticator");
        }
        return Ok((
            p.code(),
            p.attributes().map(|(t, v)| (t, v.to_vec())).collect(),
        ));
    }
}

/// 3,000 requests from 16 closed-loop workers (each one request outstanding); after a third of
/// them the file gets a new secret (and a new reply profile) and `POST /api/v1/reload` runs.
/// The secret each request is signed with is well defined: the old one until the reload call
/// returned; after it, worker w moves to the new one only after 6·w more requests (a fleet of NAS
/// reconfigured one by one), which the grace period covers. Every request must be answered,
/// signed with the secret it was sent with, with the expected code (Accept for a user's fresh
/// passcode, Reject for unknown users). With `previous_secret_grace_secs = 0` this test loses
/// requests (61 in one run), so it does exercise the switch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_changes_a_client_secret_under_load_with_no_lost_or_wrong_answers() {
    const TOTAL: usize = 3_000;
    const WORKERS: usize = 16;
    const ACCEPT_EVERY: usize = 20;
    let tg = TestGateway::start_with(&api_section()).await;
    let config_path = tg.dir.path().join("tokengate.toml");
    let api = tg.gw().admin_addr().unwrap();
    for k in 0..TOTAL / ACCEPT_EVERY {
        tg.pin_user(&format!("u{k:03}")).await;
    }
    let old_key = ClientKey::new(SECRET.as_bytes());
    let new_key = ClientKey::new(NEW_SECRET.as_bytes());
    let switched = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let tally = Arc::new(Tally::default());
    let clock = tg.gw().clock.clone();
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (switched, next, done, tally, clock) = (
            switched.clone(),
            next.clone(),
            done.clone(),
            tally.clone(),
            clock.clone(),
        );
        let (old_key, new_key) = (old_key.clone(), new_key.clone());
        let mut client = RadClient::new(tg.addr).await;
        workers.push(tokio::spawn(async move {
            // Like a fleet of NAS reconfigured one after another, worker w keeps signing with
            // the old secret for 6·w more requests after the reload returned: those are
            // signed with a secret still valid (within the grace period) and must be answered.
            let lag = 6 * w;
            let mut since_reload = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= TOTAL {
                    return;
                }
                let reloaded = switched.load(Ordering::SeqCst);
                if reloaded {
                    since_reload += 1;
                }
                let is_new = reloaded && since_reload > lag;
                if reloaded && !is_new {
                    tally.sent_old_after_reload.fetch_add(1, Ordering::Relaxed);
                }
                client.key = if is_new {
                    new_key.clone()
                } else {
                    old_key.clone()
                };
                let accept = i % ACCEPT_EVERY == 0;
                let (user, pass) = if accept {
                    let step = tokengate::otp::totp_step(clock.now(), 30);
                    (
                        format!("u{:03}", i / ACCEPT_EVERY),
                        format!("1234{}", code(step)),
                    )
                } else {
                    (format!("nobody{i}"), "1234000000".to_string())
                };
                let request = client.build(&user, &pass, None, &[]);
                if is_new {
                    tally.sent_new.fetch_add(1, Ordering::Relaxed);
                } else {
                    tally.sent_old.fetch_add(1, Ordering::Relaxed);
                }
                match exchange(&client.sock, client.server, &client.key, &request).await {
                    Err("timeout") => {
                        tally.timeouts.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        tally.bad_authenticator.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok((code, attrs)) => {
                        let class = attrs
                            .iter()
                            .find(|(t, _)| *t == attr::CLASS)
                            .map(|(_, v)| v.clone());
                        let right = match (accept, code) {
                            (true, Code::AccessAccept) => {
                                tally.accepts.fetch_add(1, Ordering::Relaxed);
                                // The profile changed with the secret: a request signed with
                                // the new secret arrived after the swap and gets the new
                                // profile; one signed with the old may have arrived on either
                                // side of it.
                                match class.as_deref() {
                                    Some(b"silver") => true,
                                    Some(b"gold") => !is_new,
                                    _ => false,
                                }
                            }
                            (false, Code::AccessReject) => true,
                            _ => false,
                        };
                        if !right {
                            eprintln!("request {i} ({user}): unexpected {code:?} {class:?}");
                            tally.wrong_answer.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let started = Instant::now();
    while done.load(Ordering::Relaxed) < TOTAL / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    edit_config(&config_path, |t| {
        t.replace(
            &format!("secret = \"{SECRET}\""),
            &format!("secret = \"{NEW_SECRET}\""),
        )
        .replace("Class = \\\"gold\\\"", "Class = \\\"silver\\\"")
    });
    let in_flight_at_reload = next.load(Ordering::Relaxed) - done.load(Ordering::Relaxed);
    let (status, report) = post_reload(api).await;
    switched.store(true, Ordering::SeqCst);
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["secrets_changed"], 1, "{report}");
    assert_eq!(report["restart_needed"], serde_json::json!([]), "{report}");
    for w in workers {
        w.await.unwrap();
    }
    let elapsed = started.elapsed();
    let t = &tally;
    eprintln!(
        "reload under load: {TOTAL} requests in {elapsed:?}, {} signed with the old secret ({} of them after the reload), {} with the new, {in_flight_at_reload} in flight at the reload call, {} accepts",
        t.sent_old.load(Ordering::Relaxed),
        t.sent_old_after_reload.load(Ordering::Relaxed),
        t.sent_new.load(Ordering::Relaxed),
        t.accepts.load(Ordering::Relaxed),
    );
    assert_eq!(t.timeouts.load(Ordering::Relaxed), 0, "lost requests");
    assert_eq!(
        t.bad_authenticator.load(Ordering::Relaxed),
        0,
        "replies signed wrongly"
    );
    assert_eq!(t.wrong_answer.load(Ordering::Relaxed), 0, "wrong answers");
    assert_eq!(t.accepts.load(Ordering::Relaxed), TOTAL / ACCEPT_EVERY);
    assert!(t.sent_old.load(Ordering::Relaxed) >= TOTAL / 3);
    assert!(t.sent_new.load(Ordering::Relaxed) > 0);
    assert!(t.sent_old_after_reload.load(Ordering::Relaxed) > 100);
    assert_eq!(tg.stat("drop.bad_message_authenticator"), 0);

    // After the grace period the old secret is refused (dropped and counted).
    tg.gw()
        .clock
        .advance(tg.config.file.radius.previous_secret_grace_secs as i64 + 1);
    let mut old = RadClient::from(tg.addr, "127.0.0.1", SECRET).await;
    old.timeout = Duration::from_millis(300);
    assert!(old.request("nobody", "1234000000", None).await.is_none());
    assert_eq!(tg.stat("drop.bad_message_authenticator"), 1);
    let audit = tg.gw().store.audit_since(0, 100_000).await.unwrap();
    assert!(audit
        .iter()
        .any(|r| r.method == "config_reload" && r.actor.as_deref() == Some("api:ops")));
    tg.shutdown().await;
}

#[tokio::test]
async fn reload_of_an_invalid_file_is_refused_and_the_old_configuration_stays() {
    let tg = TestGateway::start_with(&api_section()).await;
    let path = tg.dir.path().join("tokengate.toml");
    let api = tg.gw().admin_addr().unwrap();
    let good = std::fs::read_to_string(&path).unwrap();
    // A typo'd key (strict config), with a secret change that must not take effect.
    edit_config(&path, |t| {
        t.replace(
            &format!("secret = \"{SECRET}\""),
            &format!("secret = \"{NEW_SECRET}\""),
        )
        .replace("[cache]\n", "[cache]\nmax_userz = 5\n")
    });
    let (status, body) = post_reload(api).await;
    assert_eq!(status, 400, "{body}");
    let msg = body["error"].as_str().unwrap();
    assert!(
        msg.contains("tokengate.toml") && msg.contains("max_userz"),
        "names the file and the key: {msg}"
    );
    // SIGHUP's path refuses it the same way.
    let e = tg.gw().reload().await.unwrap_err();
    assert!(e.key.contains("max_userz"), "{e}");
    let mut c = RadClient::new(tg.addr).await;
    assert_eq!(c.ask("nobody", "1234000000").await.code, Code::AccessReject);
    // An invalid value (not a parse error) is refused too.
    std::fs::write(
        &path,
        good.replace("[cache]\n", "[audit]\nprune_batch = 0\n\n[cache]\n"),
    )
    .unwrap();
    let e = tg.gw().reload().await.unwrap_err();
    assert_eq!(e.key, "audit.prune_batch");
    assert_eq!(c.ask("nobody", "1234000000").await.code, Code::AccessReject);
    // A start-up-only change is reported, not applied; the rest reloads.
    std::fs::write(
        &path,
        good.replace("change_poll_ms = 100", "change_poll_ms = 200")
            .replace("Class = \\\"gold\\\"", "Class = \\\"silver\\\""),
    )
    .unwrap();
    let report = tg.gw().reload().await.unwrap();
    assert_eq!(report.restart_needed, ["cache"]);
    let now = tg.gw().current_config();
    assert_eq!(now.file.cache.change_poll_ms, 100);
    assert_eq!(
        now.profiles["vpn"],
        Config::load(&path).unwrap().profiles["vpn"]
    );
    let audit = tg.gw().store.audit_since(0, 100).await.unwrap();
    let reloads: Vec<&str> = audit
        .iter()
        .filter(|r| r.method == "config_reload")
        .map(|r| r.result.as_str())
        .collect();
    assert_eq!(reloads, ["refused", "refused", "refused", "ok"]);
    tg.shutdown().await;
}

/// The daemon binary with its stderr lines collected.
struct Daemon {
    child: std::process::Child,
    radius: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    fn start(config: &Path) -> Daemon {
        let mut child = spawn_daemon(config, &["--log-format", "json"]);
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut d = Daemon {
            child,
            radius: "0.0.0.0:0".parse().unwrap(),
            lines,
        };
        let line = d.wait_for(|l| l.contains("RADIUS listening"));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        d.radius = v["fields"]["local"].as_str().unwrap().parse().unwrap();
        d
    }

    /// Waits (up to 30 s) for a log line matching `pred`.
    fn wait_for(&self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(l) = self.lines.lock().unwrap().iter().find(|l| pred(l)) {
                return l.clone();
            }
            assert!(Instant::now() < deadline, "no such log line");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    /// Waits for the process to exit (at most 30 s).
    fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("daemon did not exit");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// JSON log lines of the audit target.
    fn audit_lines(&self) -> Vec<serde_json::Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["target"] == tokengate::audit::log::TARGET)
            .collect()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[tokio::test]
async fn sighup_reloads_the_daemon_and_an_invalid_file_keeps_it_running() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), None, "");
    let mut d = Daemon::start(&path);
    let mut old = RadClient::from(d.radius, "127.0.0.1", SECRET).await;
    assert_eq!(
        old.ask("nobody", "1234000000").await.code,
        Code::AccessReject
    );

    edit_config(&path, |t| {
        t.replace(
            &format!("secret = \"{SECRET}\""),
            &format!("secret = \"{NEW_SECRET}\""),
        )
    });
    d.signal("-HUP");
    d.wait_for(|l| l.contains("configuration reloaded"));
    let mut new = RadClient::from(d.radius, "127.0.0.1", NEW_SECRET).await;
    assert_eq!(
        new.ask("nobody", "1234000000").await.code,
        Code::AccessReject
    );
    // Within the grace period the old secret is still answered, signed with the old secret.
    assert_eq!(
        old.ask("nobody", "1234000000").await.code,
        Code::AccessReject
    );

    edit_config(&path, |t| {
        t.replace("[radius]\n", "[radius]\nlisten_typo = 1\n")
    });
    d.signal("-HUP");
    let refused = d.wait_for(|l| l.contains("reload refused"));
    assert!(refused.contains("listen_typo"), "{refused}");
    assert!(d.child.try_wait().unwrap().is_none(), "still running");
    assert_eq!(
        new.ask("nobody", "1234000000").await.code,
        Code::AccessReject
    );

    // Each authentication and the reloads were also logged as structured audit lines.
    d.signal("-TERM");
    assert!(d.wait().success());
    let audit = d.audit_lines();
    let auth = audit
        .iter()
        .find(|v| v["fields"]["user"] == "nobody")
        .expect("an audit line per authentication");
    assert_eq!(auth["fields"]["protocol"], "radius");
    assert_eq!(auth["fields"]["client"], "nas");
    assert_eq!(auth["fields"]["result"], "reject");
    assert_eq!(auth["fields"]["reason"], "unknown_user");
    let reloads: Vec<&str> = audit
        .iter()
        .filter(|v| v["fields"]["method"] == "config_reload")
        .map(|v| v["fields"]["result"].as_str().unwrap())
        .collect();
    assert_eq!(reloads, ["ok", "refused"]);
    assert!(audit.iter().all(|v| !v.to_string().contains("1234000000")));
}

/// Creates `n` users `s000…` with the test seed and PIN 1234 in the database of `path`.
async fn users_in(path: &Path, n: usize) {
    let config = Config::load(path).unwrap();
    let (store, key) = tokengate::server::open_storage(&config).await.unwrap();
    let admin = Admin::new(&store, &config, &key, "test".into());
    let now = tokengate::clock::unix_now();
    for i in 0..n {
        let name = format!("s{i:03}");
        admin.add_user(&name, "default", None, now).await.unwrap();
        admin
            .add_token(
                TokenSpec {
                    serial: Some(format!("S-{name}")),
                    kind: TokenKind::Pin,
                    algorithm: HashAlgorithm::Sha1,
                    digits: 6,
                    mode: OtpMode::Totp { period: 30 },
                    seed: Some(SEED.to_vec()),
                    counter: 0,
                    user: Some(name),
                    pin: Some("1234".into()),
                    expires_at: None,
                },
                now,
            )
            .await
            .unwrap();
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_exits_zero_and_every_accept_is_durable() {
    sigterm_under_load(None).await;
    if let Some((url, name)) = crate::multi_instance::fresh_pg_url().await {
        sigterm_under_load(Some(&url)).await;
        crate::multi_instance::drop_pg(&name).await;
    }
}

/// SIGTERM in the middle of a stream of logins (SQLite, or the PostgreSQL `database`).
async fn sigterm_under_load(database: Option<&str>) {
    const USERS: usize = 240;
    const WORKERS: usize = 16;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), database, "");
    users_in(&path, USERS).await;
    let mut d = Daemon::start(&path);
    let next = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(Mutex::new(Vec::<(String, i64)>::new()));
    let answered = Arc::new(AtomicUsize::new(0));
    let unanswered = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (next, accepted, answered, unanswered) = (
            next.clone(),
            accepted.clone(),
            answered.clone(),
            unanswered.clone(),
        );
        let mut c = RadClient::new(d.radius).await;
        c.timeout = Duration::from_secs(2);
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= USERS {
                    return;
                }
                let user = format!("s{i:03}");
                let step = tokengate::otp::totp_step(tokengate::clock::unix_now(), 30);
                let request = c.build(&user, &format!("1234{}", code(step)), None, &[]);
                match exchange(&c.sock, c.server, &c.key, &request).await {
                    Ok((Code::AccessAccept, _)) => {
                        answered.fetch_add(1, Ordering::Relaxed);
                        accepted.lock().unwrap().push((user, step));
                    }
                    Ok((code, _)) => panic!("{user}: {code:?}"),
                    Err("timeout") => {
                        // After SIGTERM the daemon stops reading: later requests go unanswered,
                        // and this worker stops.
                        unanswered.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    Err(e) => panic!("{user}: {e}"),
                }
            }
        }));
    }
    while answered.load(Ordering::Relaxed) < USERS / 4 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    d.signal("-TERM");
    let status = tokio::task::spawn_blocking(move || {
        let s = d.wait();
        (s, d)
    })
    .await
    .unwrap();
    for w in workers {
        w.await.unwrap();
    }
    let (status, d) = status;
    assert!(status.success(), "exit status {status:?}");
    d.wait_for(|l| l.contains("stopped cleanly"));
    let accepted = accepted.lock().unwrap().clone();
    eprintln!(
        "SIGTERM under load ({}): {} accepted before the stop, {} unanswered after it",
        if database.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        accepted.len(),
        unanswered.load(Ordering::Relaxed)
    );
    assert!(accepted.len() >= USERS / 4);
    assert!(
        unanswered.load(Ordering::Relaxed) > 0,
        "the stop came mid-stream"
    );
    // Reopen the database: every Accept's replay step and audit record are there.
    let config = Config::load(&path).unwrap();
    let store = tokengate::store::Store::open(&config.database_url)
        .await
        .unwrap();
    let audit = store.audit_since(0, 100_000).await.unwrap();
    for (user, step) in &accepted {
        let token = store
            .token_by_serial(&format!("S-{user}"))
            .await
            .unwrap()
            .unwrap();
        assert!(
            token.last_step >= *step,
            "{user}: last_step {} < {step}",
            token.last_step
        );
        assert!(
            audit
                .iter()
                .any(|r| &r.user_name == user && r.result == "accept" && r.protocol == "radius"),
            "{user}: no audit record of its Accept"
        );
    }
    store.close().await;
}

/// Runs the PyPI `tacacs_plus` client (PAP) with `key`; `None` when it could not talk to the
/// server (a wrong key makes the server close the connection).
fn tacacs_pap(addr: SocketAddr, key: &str, user: &str) -> Option<serde_json::Value> {
    let out = std::process::Command::new("python3")
        .arg(repo().join("tests/interop/tacacs_client.py"))
        .args([
            &addr.ip().to_string(),
            &addr.port().to_string(),
            key,
            "authen-pap",
            user,
            "1234000000",
        ])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).unwrap())
}

#[tokio::test]
async fn reload_swaps_tacacs_keys_for_new_connections() {
    let tg = TestGateway::start_with(
        "[tacacs]\nlisten = [\"127.0.0.1:0\"]\n\n[[client]]\nname = \"switch\"\naddress = \"127.0.0.1/32\"\nsecret = \"unused\"\ntacacs_keys = [\"key-one\"]\n",
    )
    .await;
    let addr = tg.gw().tacacs_addrs()[0];
    let path = tg.dir.path().join("tokengate.toml");
    let ask =
        |key: &'static str| tokio::task::spawn_blocking(move || tacacs_pap(addr, key, "nobody"));
    let r = ask("key-one").await.unwrap().expect("key-one works");
    assert_eq!(r["valid"], false, "unknown user: FAIL, {r}");
    assert!(ask("key-two").await.unwrap().is_none());
    edit_config(&path, |t| t.replace("\"key-one\"", "\"key-two\""));
    let report = tg.gw().reload().await.unwrap();
    assert!(report.restart_needed.is_empty(), "{report:?}");
    let r = ask("key-two")
        .await
        .unwrap()
        .expect("key-two works after the reload");
    assert_eq!(r["valid"], false, "{r}");
    assert!(ask("key-one").await.unwrap().is_none(), "key-one is gone");
    tg.shutdown().await;
}

#[tokio::test]
async fn without_a_grace_period_a_reloaded_secret_switches_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), None, "");
    edit_config(&path, |t| {
        t.replace("[radius]\n", "[radius]\nprevious_secret_grace_secs = 0\n")
    });
    let tg = TestGateway::start_at(dir, &path).await;
    edit_config(&path, |t| {
        t.replace(
            &format!("secret = \"{SECRET}\""),
            &format!("secret = \"{NEW_SECRET}\""),
        )
    });
    assert_eq!(tg.gw().reload().await.unwrap().secrets_changed, 1);
    let mut old = RadClient::from(tg.addr, "127.0.0.1", SECRET).await;
    old.timeout = Duration::from_millis(300);
    assert!(old.request("nobody", "1234000000", None).await.is_none());
    assert_eq!(tg.stat("drop.bad_message_authenticator"), 1);
    let mut new = RadClient::from(tg.addr, "127.0.0.1", NEW_SECRET).await;
    assert_eq!(
        new.ask("nobody", "1234000000").await.code,
        Code::AccessReject
    );
    tg.shutdown().await;
}
