//! Data files are private (issue 21): the real `tokengate` binary, started under the most
//! permissive umask (000, as a careless service manager or shell might leave it), creates its
//! data directory 0700 and the database, its `-wal` and `-shm` files and the master key 0600;
//! the CLI's output files (an audit export, a one-time code export, a `populate` secrets file)
//! are 0600 too. The gateway serves a login while the modes are read, so the WAL is in use.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tokengate::radius::Code;

use crate::common::*;

/// `tokengate --config CFG ARGS…` run through `sh` with `umask 000` first.
fn under_umask_000(cfg: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("sh");
    c.args(["-c", "umask 000 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_tokengate"))
        .arg("--config")
        .arg(cfg)
        .args(args)
        .env("RUST_LOG", "info");
    c
}

fn run_cli(cfg: &Path, args: &[&str]) {
    let out = under_umask_000(cfg, args).output().unwrap();
    assert!(
        out.status.success(),
        "tokengate {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn the_gateway_and_the_cli_create_files_only_their_user_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), None, "");
    let data = dir.path().join("data");
    assert!(!data.exists());

    // The daemon creates the data directory, the key and the database.
    let mut child = under_umask_000(&cfg, &["serve"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let daemon = DaemonChild(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(i) = line.find("local=") {
                let addr = line[i + 6..].split_whitespace().next().unwrap().to_string();
                let _ = tx.send(addr);
            }
        }
    });
    let radius = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("daemon did not report its RADIUS address");

    // The CLI opens the same database; then a login the daemon commits (the WAL in use).
    run_cli(&cfg, &["user", "add", "alice"]);
    run_cli(
        &cfg,
        &[
            "token",
            "add",
            "--user",
            "alice",
            "--serial",
            "T1",
            "--seed-base32",
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
            "--pin",
            "4821",
        ],
    );
    let mut c = RadClient::new(radius.parse().unwrap()).await;
    assert_eq!(c.ask("alice", "4821000000").await.code, Code::AccessReject);
    assert_eq!(c.ask("nobody", "4821000000").await.code, Code::AccessReject);

    // Files the CLI writes for the admin.
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
    let path = |name: &str| -> PathBuf { out.join(name) };
    let arg = |p: &PathBuf| p.to_str().unwrap().to_string();
    let (audit, ott, secrets) = (path("audit.jsonl"), path("T1-ott.txt"), path("secrets.csv"));
    run_cli(
        &cfg,
        &["audit", "export", "--since", "1d", "--output", &arg(&audit)],
    );
    run_cli(
        &cfg,
        &[
            "emergency",
            "ott",
            "T1",
            "--count",
            "3",
            "--export",
            &arg(&ott),
        ],
    );
    run_cli(
        &cfg,
        &["populate", "--users", "3", "--secrets-out", &arg(&secrets)],
    );

    // Read while the daemon runs: the WAL and shared-memory files exist now.
    let db = data.join("tokengate.db");
    let mut want = vec![
        (data.clone(), 0o700),
        (db.clone(), 0o600),
        (data.join("tokengate.db-wal"), 0o600),
        (data.join("tokengate.db-shm"), 0o600),
        (data.join("master.key"), 0o600),
    ];
    want.extend([(audit, 0o600), (ott, 0o600), (secrets, 0o600)]);
    let mut wrong = Vec::new();
    for (p, m) in &want {
        let got = mode(p);
        if got != *m {
            wrong.push(format!("{}: {got:o}, want {m:o}", p.display()));
        }
    }
    // Nothing else in the data directory is readable by others either.
    for e in std::fs::read_dir(&data).unwrap() {
        let p = e.unwrap().path();
        if mode(&p) & 0o077 != 0 {
            wrong.push(format!("{}: {:o}", p.display(), mode(&p)));
        }
    }
    assert!(wrong.is_empty(), "too open:\n{}", wrong.join("\n"));
    drop(daemon);
}

#[tokio::test]
async fn the_library_creates_the_data_directory_and_database_private_whatever_the_umask() {
    // In-process (this test binary's umask, typically 022): the directory and database are
    // created with explicit modes, not left to the umask.
    let tg = TestGateway::start().await;
    let data = tg.config.data_dir.clone();
    let mut c = RadClient::new(tg.addr).await;
    assert_eq!(c.ask("nobody", "000000").await.code, Code::AccessReject);
    assert_eq!(format!("{:o}", mode(&data)), "700");
    for f in [
        "tokengate.db",
        "tokengate.db-wal",
        "tokengate.db-shm",
        "master.key",
    ] {
        assert_eq!(format!("{:o}", mode(&data.join(f))), "600", "{f}");
    }
    let _ = tg.shutdown().await;
}

#[test]
fn files_an_older_version_left_open_are_reported_not_changed() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), None, "");
    let data = dir.path().join("data");
    run_cli(&cfg, &["migrate"]);
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let db = data.join("tokengate.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = under_umask_000(&cfg, &["migrate"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("the data directory is open to other users; chmod 700 it"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the database file is open to other users; chmod 600 it"),
        "{stderr}"
    );
    assert!(
        stderr.contains("mode=755") && stderr.contains("mode=644"),
        "{stderr}"
    );
    assert_eq!(format!("{:o}", mode(&data)), "755");
    assert_eq!(format!("{:o}", mode(&db)), "644");
}
