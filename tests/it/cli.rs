//! The admin CLI against the real binary and a running daemon: users and tokens created with the
//! CLI log in through radclient; lock, unlock, PIN clear and resync reach the running daemon;
//! bad input is refused with a clear message; SIGTERM stops it cleanly.

use std::time::Duration;

use crate::common::*;

const SEED_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"; // "12345678901234567890"

fn radclient_blocking(addr: std::net::SocketAddr, attrs: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("radclient")
        .args([
            "-x",
            "-r",
            "1",
            "-t",
            "3",
            &addr.to_string(),
            "auth",
            SECRET,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("radclient");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{attrs}, Message-Authenticator = 0x00\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn login(addr: std::net::SocketAddr, user: &str, password: &str) -> String {
    let out = radclient_blocking(
        addr,
        &format!("User-Name = {user}, User-Password = {password}"),
    );
    for kind in ["Access-Accept", "Access-Reject", "Access-Challenge"] {
        if out.contains(&format!("Received {kind}")) {
            return kind.to_string();
        }
    }
    panic!("no reply: {out}")
}

fn now_step() -> i64 {
    tokengate::otp::totp_step(tokengate::clock::unix_now(), 30)
}

#[test]
fn cli_provisioned_user_logs_in_and_admin_changes_reach_the_running_daemon() {
    let dir = tempfile::tempdir().unwrap();
    // A wider automatic window keeps this test independent of where in a 30 s step it runs.
    let cfg = write_config(
        dir.path(),
        None,
        "[domain.default.token]\ntotp_window = 3\ntotp_wide_window = 6\n",
    );

    let (ok, out, _) = cli(&cfg, &["check-config"]);
    assert!(ok && out.contains("OK"), "{out}");

    let (ok, _, err) = cli(&cfg, &["user", "add", "alice"]);
    assert!(ok, "{err}");
    let (ok, _, err) = cli(&cfg, &["user", "add", "ALICE"]);
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = cli(&cfg, &["user", "add", "bob", "--domain", "nowhere"]);
    assert!(!ok && err.contains("unknown security domain"), "{err}");

    let (ok, _, err) = cli(
        &cfg,
        &[
            "token",
            "add",
            "--user",
            "alice",
            "--pin",
            "12",
            "--seed-base32",
            SEED_B32,
        ],
    );
    assert!(!ok && err.contains("PIN refused: too short"), "{err}");
    let (ok, out, err) = cli(
        &cfg,
        &[
            "--json",
            "token",
            "add",
            "--user",
            "alice",
            "--pin",
            "1234",
            "--serial",
            "T1",
            "--seed-base32",
            SEED_B32,
        ],
    );
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let uri = v["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/") && uri.contains(&format!("secret={SEED_B32}")),
        "{uri}"
    );
    assert_eq!(v["token"]["pin_state"], "set");
    assert!(
        v["token"].get("seed_enc").is_none() && v["token"].get("pin_hash").is_none(),
        "{v}"
    );

    let (mut daemon, addr) = start_daemon(&cfg);
    let s = now_step();
    assert_eq!(
        login(addr, "alice", &format!("1234{}", code(s))),
        "Access-Accept"
    );

    // Lock with the CLI while the daemon runs: a valid passcode is refused.
    assert!(cli(&cfg, &["user", "lock", "alice"]).0);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        login(addr, "alice", &format!("1234{}", code(s + 1))),
        "Access-Reject"
    );
    assert!(cli(&cfg, &["user", "unlock", "alice"]).0);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        login(addr, "alice", &format!("1234{}", code(s + 1))),
        "Access-Accept"
    );

    // PIN clear → New PIN mode: the tokencode alone now gets the New PIN challenge.
    assert!(cli(&cfg, &["pin", "clear", "T1"]).0);
    std::thread::sleep(Duration::from_millis(1500));
    let out = radclient_blocking(
        addr,
        &format!("User-Name = alice, User-Password = {}", code(s + 2)),
    );
    assert!(
        out.contains("Received Access-Challenge") && out.contains("new PIN"),
        "{out}"
    );

    // Resync from two consecutive codes far ahead of the clock (D-2).
    let far = now_step() + 100;
    let (ok, out, err) = cli(
        &cfg,
        &[
            "--json",
            "token",
            "resync",
            "T1",
            &code(far),
            &code(far + 1),
        ],
    );
    assert!(ok, "{err}");
    let t: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(t["last_step"], far + 1);
    let (ok, _, err) = cli(&cfg, &["token", "resync", "T1", "000000", "111111"]);
    assert!(!ok && err.contains("not found"), "{err}");

    // Import a CSV; list shows all tokens.
    let csv = dir.path().join("tokens.csv");
    std::fs::write(
        &csv,
        format!("serial,secret,type,kind\nI1,{SEED_B32},totp,app\nI2,{SEED_B32},hotp,app\n"),
    )
    .unwrap();
    let (ok, out, err) = cli(
        &cfg,
        &["token", "import", csv.to_str().unwrap(), "--format", "csv"],
    );
    assert!(ok, "{out}{err}");
    let (ok, out, _) = cli(&cfg, &["--json", "token", "list"]);
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let (ok, out, _) = cli(&cfg, &["--json", "user", "show", "alice"]);
    assert!(ok);
    let u: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(u["tokens"][0]["serial"], "T1");

    // SIGTERM: clean exit, status 0.
    let pid = daemon.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = daemon.wait().unwrap();
    assert!(status.success(), "daemon exit status {status:?}");
}

#[test]
fn bad_config_fails_with_file_key_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        None,
        "[radius]\nlisten = [\"127.0.0.1:0\"]\nretries = 3\n",
    );
    let (ok, _, err) = cli(&cfg, &["check-config"]);
    assert!(!ok);
    // The duplicate [radius] table is reported by the TOML parser with its key.
    assert!(err.contains("tokengate.toml"), "{err}");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "version = 1\n[radius]\nlisten = [\"127.0.0.1:0\"]\nretries = 3\n",
    )
    .unwrap();
    let (ok, _, err) = cli(&bad, &["check-config"]);
    assert!(!ok);
    assert!(
        err.contains("bad.toml") && err.contains("radius.retries") && err.contains("unknown field"),
        "{err}"
    );
    let (ok, _, err) = cli(&bad, &["serve"]);
    assert!(!ok && err.contains("radius.retries"), "{err}");
}

/// README quick start: `serve --demo` on the shipped example config, found by its default
/// relative path, then the login the banner describes (radclient, PIN + `token code`).
#[test]
fn readme_demo_quick_start_works_with_the_shipped_config() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    std::fs::create_dir_all(dir.path().join("dictionaries")).unwrap();
    for e in std::fs::read_dir(repo().join("dictionaries")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(
            &p,
            dir.path().join("dictionaries").join(p.file_name().unwrap()),
        )
        .unwrap();
    }
    // The shipped config as is, except the port: tests listen on a port the OS picks.
    let shipped = std::fs::read_to_string(repo().join("config/tokengate.toml")).unwrap();
    assert!(shipped.contains("listen = [\"127.0.0.1:1812\"]"));
    std::fs::write(
        dir.path().join("config/tokengate.toml"),
        shipped.replace(
            "listen = [\"127.0.0.1:1812\"]",
            "listen = [\"127.0.0.1:0\"]",
        ),
    )
    .unwrap();
    let mut daemon = DaemonChild(
        std::process::Command::new(env!("CARGO_BIN_EXE_tokengate"))
            .args(["serve", "--demo"])
            .current_dir(dir.path())
            .env_remove("TOKENGATE_CONFIG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = daemon.stdout.take().unwrap();
    let stderr = daemon.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx2.send(l);
        }
    });
    let mut addr = None;
    let mut banner = String::new();
    while addr.is_none() || !banner.contains("=====\n") || !banner.contains("remove it") {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("daemon output so far:\n{banner}"));
        if let Some(i) = line.find("local=") {
            addr = Some(line[i + 6..].split_whitespace().next().unwrap().to_string());
        }
        banner.push_str(&line);
        banner.push('\n');
    }
    assert!(banner.contains("Demo user 'demo', PIN 8642"), "{banner}");
    assert!(banner.contains("otpauth://totp/"), "{banner}");
    assert!(
        dir.path().join("data/tokengate.db").exists(),
        "database under ./data"
    );
    assert!(dir.path().join("data/master.key").exists());
    let code_out = std::process::Command::new(env!("CARGO_BIN_EXE_tokengate"))
        .args(["token", "code", "DEMO-0001"])
        .current_dir(dir.path())
        .env_remove("TOKENGATE_CONFIG")
        .output()
        .unwrap();
    assert!(
        code_out.status.success(),
        "{}",
        String::from_utf8_lossy(&code_out.stderr)
    );
    let code = String::from_utf8_lossy(&code_out.stdout).trim().to_string();
    let addr: std::net::SocketAddr = addr.unwrap().parse().unwrap();
    let out = radclient_blocking(
        addr,
        &format!("User-Name = demo, User-Password = 8642{code}"),
    );
    assert!(out.contains("Received Access-Accept"), "{out}");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    assert!(daemon.wait().unwrap().success());
}

#[test]
fn populate_creates_users_that_log_in_with_the_secrets_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), None, "");
    let secrets = dir.path().join("secrets.csv");
    let secrets_arg = secrets.to_str().unwrap();

    let (ok, _, err) = cli(
        &cfg,
        &[
            "populate",
            "--users",
            "30",
            "--kind",
            "watch",
            "--secrets-out",
            secrets_arg,
        ],
    );
    assert!(!ok && err.contains("--kind must be pin or app"), "{err}");
    assert!(!secrets.exists());

    let (ok, out, err) = cli(
        &cfg,
        &[
            "--json",
            "populate",
            "--users",
            "30",
            "--prefix",
            "lt",
            "--secrets-out",
            secrets_arg,
        ],
    );
    assert!(ok, "{err}");
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["users"], 30);
    assert!(err.contains("30/30 users"), "progress on stderr: {err}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secrets).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The secrets file must not be overwritten by a second run (and nothing is created then).
    let (ok, _, err) = cli(
        &cfg,
        &[
            "populate",
            "--users",
            "1",
            "--prefix",
            "other",
            "--secrets-out",
            secrets_arg,
        ],
    );
    assert!(!ok && err.contains("must not exist"), "{err}");
    let (ok, out, _) = cli(&cfg, &["user", "show", "lt0000029"]);
    assert!(ok && out.contains("LT-0000029"), "{out}");

    let text = std::fs::read_to_string(&secrets).unwrap();
    let rows: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("user,"))
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 30);

    let (mut daemon, addr) = start_daemon(&cfg);
    let step = now_step();
    for row in rows.iter().take(3) {
        let [user, pin, seed, kind, alg, digits, period, mode] = row.as_slice() else {
            panic!("bad row {row:?}");
        };
        assert_eq!(
            (*kind, *alg, *digits, *period, *mode),
            ("pin", "sha1", "6", "30", "totp")
        );
        let seed = tokengate::otp::base32::decode(seed).unwrap();
        let value =
            tokengate::otp::hotp(&seed, step as u64, 6, tokengate::model::HashAlgorithm::Sha1);
        let code = tokengate::otp::Code::new(value, 6);
        assert_eq!(
            login(addr, user, &format!("{pin}{code}")),
            "Access-Accept",
            "{user}"
        );
    }
    daemon.kill().unwrap();
    daemon.wait().unwrap();
}

#[test]
fn populate_hotp_creates_counter_tokens_that_accept_codes_in_counter_order() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), None, "");
    let secrets = dir.path().join("secrets.csv");
    let secrets_arg = secrets.to_str().unwrap();
    for (args, want) in [
        (vec!["--mode", "motp"], "--mode must be totp or hotp"),
        (
            vec!["--mode", "hotp", "--period", "30"],
            "--period is for TOTP",
        ),
    ] {
        let mut all = vec!["populate", "--users", "3", "--secrets-out", secrets_arg];
        all.extend(args);
        let (ok, _, err) = cli(&cfg, &all);
        assert!(!ok && err.contains(want), "{err}");
        assert!(!secrets.exists());
    }
    let (ok, out, err) = cli(
        &cfg,
        &[
            "--json",
            "populate",
            "--users",
            "4",
            "--mode",
            "hotp",
            "--prefix",
            "ht",
            "--secrets-out",
            secrets_arg,
        ],
    );
    assert!(ok, "{err}");
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (summary["users"].as_u64(), summary["mode"].as_str()),
        (Some(4), Some("hotp"))
    );
    let text = std::fs::read_to_string(&secrets).unwrap();
    assert!(text.contains("user,pin,seed_base32,kind,algorithm,digits,period,mode\n"));
    let rows: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("user,"))
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 4);
    let (ok, out, _) = cli(&cfg, &["--json", "token", "show", "HT-0000003"]);
    assert!(ok && out.contains("hotp"), "{out}");

    let (mut daemon, addr) = start_daemon(&cfg);
    let [user, pin, seed, kind, alg, digits, period, mode] = rows[0].as_slice() else {
        panic!("bad row {:?}", rows[0]);
    };
    assert_eq!(
        (*kind, *alg, *digits, *period, *mode),
        ("pin", "sha1", "6", "0", "hotp")
    );
    let seed = tokengate::otp::base32::decode(seed).unwrap();
    let code = |counter: u64| {
        let v = tokengate::otp::hotp(&seed, counter, 6, tokengate::model::HashAlgorithm::Sha1);
        format!("{pin}{}", tokengate::otp::Code::new(v, 6))
    };
    // Counters start at 0; a used counter is a replay; skipped counters are tolerated.
    assert_eq!(login(addr, user, &code(0)), "Access-Accept");
    assert_eq!(login(addr, user, &code(1)), "Access-Accept");
    assert_eq!(login(addr, user, &code(1)), "Access-Reject");
    assert_eq!(login(addr, user, &code(4)), "Access-Accept");
    daemon.kill().unwrap();
    daemon.wait().unwrap();
}
