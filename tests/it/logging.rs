//! Logs never carry secrets (issue 6): the real `tokengate` binary, in human and in JSON log
//! format at debug level, provisions users with the CLI, serves RADIUS logins (right and wrong
//! passcodes, a New PIN round), a TACACS+ PAP login and admin API calls (a right and a wrong API
//! key, an emergency code issued and used); then every secret is searched for in what the
//! daemon printed and in the CLI's log output.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokengate::radius::Code;
use tokengate::server::http::api_key_sha256;

use crate::common::*;

const SEED_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"; // "12345678901234567890"
const SEED_HEX: &str = "3132333435363738393031323334353637383930";
pub(crate) const API_KEY: &str = "tgk_logging-test-key-Zq8Wv2Lm4Np6Rt0Xy3Bc5Df7";
const WRONG_API_KEY: &str = "tgk_not-a-configured-key-Hj4Kl6Mn8Pq0Rs2Tu";
const PIN: &str = "Qz7Kp2Wm";
const NEW_PIN: &str = "Hv3Rt9Lx";

pub(crate) fn config(dir: &Path) -> std::path::PathBuf {
    let hash: String = api_key_sha256(API_KEY)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let tacacs = crate::tacacs_e2e::TACACS;
    write_config(
        dir,
        None,
        &format!(
            "[domain.default.pin]\ncharset = \"alphanumeric\"\nmax_length = 8\n\n\
             [admin_api]\nlisten = \"127.0.0.1:0\"\n[[admin_api.key]]\nname = \"ops\"\n\
             key_sha256 = \"{hash}\"\n{tacacs}"
        ),
    )
}

/// Runs the CLI at debug level; returns its log output (stderr). Stdout is where the CLI shows
/// what it must show once (an `otpauth://` URI), so only the logs are checked.
pub(crate) fn cli_logged(cfg: &Path, format: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tokengate"))
        .args(["--config", cfg.to_str().unwrap(), "--log-format", format])
        .args(args)
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "tokengate {args:?}: {stderr}");
    stderr
}

/// `token add` with the RFC seed, and a PIN when given (else the token starts in New PIN mode).
fn add_token(cfg: &Path, format: &str, user: &str, serial: &str, pin: Option<&str>) -> String {
    let mut args = vec![
        "token",
        "add",
        "--user",
        user,
        "--serial",
        serial,
        "--seed-base32",
        SEED_B32,
    ];
    if let Some(p) = pin {
        args.extend(["--pin", p]);
    }
    cli_logged(cfg, format, &args)
}

pub(crate) struct Daemon {
    child: Child,
    output: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// The `127.0.0.1:port` in a listening line of either format.
fn listen_addr(line: &str) -> Option<SocketAddr> {
    let i = line.find("127.0.0.1:")?;
    let rest = &line[i..];
    let end = rest
        .char_indices()
        .skip("127.0.0.1:".len())
        .find(|(_, c)| !c.is_ascii_digit())
        .map_or(rest.len(), |(j, _)| j);
    rest[..end].parse().ok()
}

/// Starts `tokengate --log-format FORMAT serve` at debug level; returns it once the RADIUS,
/// TACACS+ and admin API listeners are logged, with their addresses.
pub(crate) fn start(cfg: &Path, format: &str) -> (Daemon, SocketAddr, SocketAddr, SocketAddr) {
    let (d, a) = start_listening(
        cfg,
        format,
        &[
            "RADIUS listening",
            "TACACS+ listening",
            "admin API listening",
        ],
    );
    (d, a[0], a[1], a[2])
}

/// Starts `tokengate --log-format FORMAT serve` at debug level; returns it once a line with each
/// of `wanted` (`"admin API listening"`, …) is logged, with the addresses those lines name.
pub(crate) fn start_listening(
    cfg: &Path,
    format: &str,
    wanted: &[&str],
) -> (Daemon, Vec<SocketAddr>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tokengate"))
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "--log-format",
            format,
            "serve",
        ])
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let mut readers = Vec::new();
    let out: Box<dyn std::io::Read + Send> = Box::new(child.stdout.take().unwrap());
    let err: Box<dyn std::io::Read + Send> = Box::new(child.stderr.take().unwrap());
    for stream in [out, err] {
        let output = output.clone();
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let mut o = output.lock().unwrap();
                o.push_str(&line);
                o.push('\n');
                let _ = tx.send(line);
            }
        }));
    }
    let mut found: Vec<Option<SocketAddr>> = vec![None; wanted.len()];
    while found.iter().any(Option::is_none) {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("daemon output so far:\n{}", output.lock().unwrap()));
        if let Some(i) = wanted.iter().position(|w| line.contains(w)) {
            found[i] = listen_addr(&line);
        }
    }
    let d = Daemon {
        child,
        output,
        readers,
    };
    (d, found.into_iter().map(Option::unwrap).collect())
}

impl Drop for Daemon {
    /// A failed assertion must not leave the daemon running.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Daemon {
    /// SIGTERM, wait for a clean exit, and return everything it printed.
    pub(crate) fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "daemon exit: {status}");
        for r in std::mem::take(&mut self.readers) {
            r.join().unwrap();
        }
        let o = self.output.lock().unwrap();
        o.clone()
    }
}

/// Whether `code` (digits) appears as a word of its own, not inside a longer number or a
/// timestamp's fraction.
fn has_code(text: &str, code: &str) -> bool {
    text.match_indices(code).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + code.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '.')
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

async fn exercise(format: &str) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let mut logs = String::new();
    logs += &cli_logged(&cfg, format, &["user", "add", "alice"]);
    logs += &add_token(&cfg, format, "alice", "T1", Some(PIN));
    logs += &cli_logged(&cfg, format, &["user", "add", "carol"]);
    logs += &add_token(&cfg, format, "carol", "T2", None);

    let (daemon, radius, tacacs, admin) = start(&cfg, format);
    let s = otp_step_now();
    let mut c = RadClient::new(radius).await;
    assert_eq!(
        c.ask("alice", &format!("{PIN}{}", code(s))).await.code,
        Code::AccessAccept
    );
    assert_eq!(
        c.ask("alice", &format!("{PIN}000000")).await.code,
        Code::AccessReject
    );
    assert_eq!(
        c.ask("alice", &format!("Wr0ngPin{}", code(s + 1)))
            .await
            .code,
        Code::AccessReject
    );
    // New PIN (PIN-1): tokencode alone → new PIN → again → PIN + next tokencode.
    let ch = c.ask("carol", &code(s)).await;
    assert_eq!(ch.code, Code::AccessChallenge, "{}", ch.message());
    let ch = c.answer("carol", NEW_PIN, &ch).await;
    assert_eq!(ch.code, Code::AccessChallenge, "{}", ch.message());
    let ch = c.answer("carol", NEW_PIN, &ch).await;
    assert_eq!(ch.code, Code::AccessChallenge, "{}", ch.message());
    assert_eq!(
        c.answer("carol", &format!("{NEW_PIN}{}", code(s + 1)), &ch)
            .await
            .code,
        Code::AccessAccept
    );
    // TACACS+ PAP with the client's key.
    let status = crate::tacacs_e2e::pap(tacacs, "alice", &format!("{PIN}{}", code(s + 1))).await;
    assert_eq!(format!("{status:?}"), "Pass");
    // The admin API: a wrong key, then an emergency code issued and used.
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let denied = http
        .get(format!("http://{admin}/api/v1/users/alice"))
        .bearer_auth(WRONG_API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status().as_u16(), 401);
    let tft = issue_tft_via_api(admin, API_KEY, "T1").await;
    assert_eq!(
        c.ask("alice", &format!("{PIN}{tft}")).await.code,
        Code::AccessAccept
    );
    logs += &cli_logged(&cfg, format, &["user", "show", "alice"]);
    let printed = daemon.stop();
    assert!(printed.contains("RADIUS listening"), "{printed}");

    for (what, text) in [("daemon", &printed), ("CLI logs", &logs)] {
        for secret in [
            SECRET,
            "legacy-secret",
            "radius-unused",
            "tackey",
            "old-key",
            PIN,
            NEW_PIN,
            "Wr0ngPin",
            API_KEY,
            WRONG_API_KEY,
            &API_KEY[4..16],
            SEED_B32,
            SEED_HEX,
            "12345678901234567890",
            &tft,
        ] {
            assert!(
                !text.contains(secret),
                "{format} {what} output contains {secret:?}:\n{text}"
            );
        }
        for step in [s, s + 1] {
            assert!(
                !has_code(text, &code(step)),
                "{format} {what} output contains the tokencode {}:\n{text}",
                code(step)
            );
        }
    }
    // The format asked for: JSON objects, one per line, or plain text lines.
    for line in printed.lines().filter(|l| !l.trim().is_empty()) {
        let parsed = serde_json::from_str::<serde_json::Value>(line);
        match format {
            "json" => assert!(parsed.is_ok(), "not a JSON log line: {line}"),
            _ => assert!(parsed.is_err(), "JSON in human format: {line}"),
        }
    }
}

/// The current TOTP step by the OS clock (the daemon runs on it).
fn otp_step_now() -> i64 {
    tokengate::otp::totp_step(tokengate::clock::unix_now(), 30)
}

#[tokio::test]
async fn no_secret_in_the_logs_in_human_format() {
    exercise("human").await;
}

#[tokio::test]
async fn no_secret_in_the_logs_in_json_format() {
    exercise("json").await;
}
