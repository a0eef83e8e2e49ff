//! Failing loudly instead of running broken (issue 18): a second gateway on a taken listen
//! address, a database this process cannot write (at start-up, in `check-config`, and under a
//! running gateway through `/readyz`), the start-up log lines, and `migrate`'s report. Real
//! processes and real databases: SQLite always, PostgreSQL when `TEST_DATABASE_URL` is set.
//!
//! Making a SQLite file unwritable: as root (where permission bits stop nothing) with
//! `chattr +i`, otherwise with `chmod`. The `-shm` file is never made immutable: SQLite maps it,
//! and a write to an immutable mapping kills the process with SIGBUS.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokengate::radius::Code;

use crate::common::*;
use crate::multi_instance::{drop_pg, fresh_pg_url};

/// A daemon whose stderr lines are collected on a thread.
struct Logged {
    child: DaemonChild,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Logged {
    fn spawn(config: &Path) -> Logged {
        let mut child = spawn_daemon(config, &[]);
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Logged {
            child: DaemonChild(child),
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `needle`; the line.
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!(
            "no log line with {needle:?}; got:\n{}",
            self.seen.join("\n")
        );
    }

    /// The `local=` address of the line containing `needle`.
    fn local(&mut self, needle: &str) -> SocketAddr {
        let line = self.wait_for(needle);
        let i = line.find("local=").unwrap();
        line[i + 6..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }
}

/// Runs `tokengate serve` on `config`, expecting it to exit by itself within 30 s; (success,
/// stderr).
fn serve_until_exit(config: &Path) -> (bool, String) {
    let mut child = DaemonChild(spawn_daemon(config, &[]));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            return (status.success(), err);
        }
        assert!(
            Instant::now() < deadline,
            "serve did not exit: it runs although it should have been refused"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ipv6_loopback() -> bool {
    std::net::UdpSocket::bind("[::1]:0").is_ok()
}

#[test]
fn a_second_gateway_on_a_taken_listen_address_is_refused_and_a_restart_is_not() {
    let v6 = ipv6_loopback();
    let listen = if v6 {
        r#"listen = ["127.0.0.1:0", "[::1]:0"]"#
    } else {
        r#"listen = ["127.0.0.1:0"]"#
    };
    let dir = tempfile::tempdir().unwrap();
    let first = write_config(
        dir.path(),
        None,
        "[tacacs]\nlisten = [\"127.0.0.1:0\"]\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n",
    );
    let text = std::fs::read_to_string(&first).unwrap();
    std::fs::write(&first, fix_radius_listen(&text, listen)).unwrap();
    let mut a = Logged::spawn(&first);
    let radius4 = a.local("RADIUS listening");
    let radius6 = v6.then(|| a.local("RADIUS listening"));
    let tacacs = a.local("TACACS+ listening");
    let metrics = a.local("metrics listening");

    // Each second gateway has its own directory and database: only the address is shared.
    let second = |radius: &str, extra: &str| -> (bool, String) {
        let d = tempfile::tempdir().unwrap();
        let p = write_config(d.path(), None, extra);
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(
            &p,
            fix_radius_listen(&text, &format!("listen = [\"{radius}\"]")),
        )
        .unwrap();
        serve_until_exit(&p)
    };
    let (ok, err) = second(&radius4.to_string(), "");
    assert!(!ok, "second gateway on {radius4} started");
    assert!(
        err.contains(&radius4.to_string()) && err.contains("another process is already serving it"),
        "{err}"
    );
    if let Some(radius6) = radius6 {
        let (ok, err) = second(&radius6.to_string(), "");
        assert!(!ok, "second gateway on {radius6} started");
        assert!(
            err.contains(&radius6.to_string())
                && err.contains("another process is already serving it"),
            "{err}"
        );
    }
    let (ok, err) = second(
        "127.0.0.1:0",
        &format!("[tacacs]\nlisten = [\"{tacacs}\"]\n"),
    );
    assert!(!ok);
    assert!(
        err.contains(&tacacs.to_string())
            && err.contains("TACACS+")
            && err.contains("another process is already serving it"),
        "{err}"
    );
    let (ok, err) = second(
        "127.0.0.1:0",
        &format!("[metrics]\nlisten = \"{metrics}\"\n"),
    );
    assert!(!ok);
    assert!(
        err.contains(&metrics.to_string()) && err.contains("another process is already serving it"),
        "{err}"
    );

    // The first gateway still answers every request (nothing was split off).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for _ in 0..8 {
            let mut c = RadClient::new(radius4).await;
            let r = c.ask("nobody", "123456").await;
            assert_eq!(r.code, Code::AccessReject);
        }
    });

    // Killed outright, it leaves nothing behind: a new gateway takes the same addresses.
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let text = std::fs::read_to_string(&first).unwrap();
    let mut fixed = fix_radius_listen(
        &text,
        &match radius6 {
            Some(r6) => format!("listen = [\"{radius4}\", \"{r6}\"]"),
            None => format!("listen = [\"{radius4}\"]"),
        },
    );
    fixed = fixed.replace(
        "[tacacs]\nlisten = [\"127.0.0.1:0\"]",
        &format!("[tacacs]\nlisten = [\"{tacacs}\"]"),
    );
    std::fs::write(&first, fixed).unwrap();
    let mut again = Logged::spawn(&first);
    assert_eq!(again.local("RADIUS listening"), radius4);
    assert_eq!(again.local("TACACS+ listening"), tacacs);
}

/// Replaces the `listen` line of the `[radius]` section of a config written by
/// [`write_config`] with `line`.
fn fix_radius_listen(text: &str, line: &str) -> String {
    let start = text.find("[radius]\n").unwrap() + "[radius]\n".len();
    let end = start + text[start..].find('\n').unwrap();
    format!("{}{line}{}", &text[..start], &text[end..])
}

/// Whether this process is root (permission bits do not stop its writes).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1)
        == 0
}

/// Makes files or directories unwritable for this process until dropped: `chattr +i` as root,
/// `chmod a-w` otherwise.
struct ReadOnly {
    paths: Vec<PathBuf>,
    modes: Vec<u32>,
    root: bool,
}

impl ReadOnly {
    /// `None` (with a loud message) only when root and `chattr` does not work here.
    fn make(paths: &[PathBuf]) -> Option<ReadOnly> {
        use std::os::unix::fs::PermissionsExt;
        let root = is_root();
        let mut modes = Vec::new();
        for p in paths {
            let meta = std::fs::metadata(p).unwrap();
            modes.push(meta.permissions().mode());
            if root {
                let ok = Command::new("chattr")
                    .arg("+i")
                    .arg(p)
                    .status()
                    .is_ok_and(|s| s.success());
                if !ok {
                    eprintln!(
                        "!!!!!!!! SKIPPED: running as root and `chattr +i {}` failed: cannot make \
                         a file unwritable for root here !!!!!!!!",
                        p.display()
                    );
                    // Undo what was already made immutable.
                    drop(ReadOnly {
                        paths: paths.to_vec(),
                        modes,
                        root,
                    });
                    return None;
                }
            } else {
                let mut perm = meta.permissions();
                perm.set_mode(perm.mode() & !0o222);
                std::fs::set_permissions(p, perm).unwrap();
            }
        }
        Some(ReadOnly {
            paths: paths.to_vec(),
            modes,
            root,
        })
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        for (i, p) in self.paths.iter().enumerate() {
            if self.root {
                let _ = Command::new("chattr").arg("-i").arg(p).status();
            } else if let Some(mode) = self.modes.get(i) {
                let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(*mode));
            }
        }
    }
}

#[test]
fn an_unwritable_sqlite_database_is_refused_at_start_and_by_check_config() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), None, "");
    let (ok, out, err) = cli(&cfg, &["migrate"]);
    assert!(ok, "{err}");
    assert!(out.contains("applied"), "{out}");
    let data = dir.path().join("data");
    let db = data.join("tokengate.db");
    assert!(db.exists());

    // The file (root ran the CLI first and owns it).
    {
        let Some(_ro) = ReadOnly::make(std::slice::from_ref(&db)) else {
            return;
        };
        let (ok, out, err) = cli(&cfg, &["check-config"]);
        assert!(!ok, "check-config passed an unwritable database: {out}");
        assert!(
            err.contains(&db.display().to_string()) && err.contains("not writable"),
            "{err}"
        );
        let (ok, err) = serve_until_exit(&cfg);
        assert!(!ok);
        assert!(
            err.contains(&db.display().to_string()) && err.contains("not writable"),
            "{err}"
        );
        assert!(!err.contains("RADIUS listening"), "{err}");
    }
    // The directory (SQLite creates -wal, -shm and journals there).
    {
        let Some(_ro) = ReadOnly::make(std::slice::from_ref(&data)) else {
            return;
        };
        let (ok, _, err) = cli(&cfg, &["check-config"]);
        assert!(!ok);
        assert!(
            err.contains(&format!("directory {}", data.display())) && err.contains("-wal"),
            "{err}"
        );
        let (ok, err) = serve_until_exit(&cfg);
        assert!(!ok);
        assert!(
            err.contains(&format!("directory {}", data.display())),
            "{err}"
        );
    }
    // Writable again: both pass.
    let (ok, out, err) = cli(&cfg, &["check-config"]);
    assert!(ok && out.contains("database writable"), "{out}{err}");
}

/// A PostgreSQL role that may only read (`SELECT` on every table), dropped with its database.
struct PgRole {
    name: String,
    db: String,
}

impl PgRole {
    async fn admin(sql: &str, database: Option<&str>) {
        use sqlx::Connection;
        let base = std::env::var("TEST_DATABASE_URL").unwrap();
        let url = match database {
            Some(db) => format!("{}/{db}", &base[..base.rfind('/').unwrap()]),
            None => base,
        };
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
        let _ = conn.close().await;
    }

    /// The URL of `db` as this role.
    fn url(&self) -> String {
        let base = std::env::var("TEST_DATABASE_URL").unwrap();
        let rest = &base[base.find("://").unwrap() + 3..];
        let host = &rest[rest.find('@').map_or(0, |i| i + 1)..];
        let host = &host[..host.find('/').unwrap()];
        format!("postgres://{}@{host}/{}", self.name, self.db)
    }

    /// Drops the database and the role now (also done on drop, for a failed test).
    async fn drop_all(mut self) {
        let (db, name) = (std::mem::take(&mut self.db), std::mem::take(&mut self.name));
        cleanup(db, Some(name)).await;
    }
}

impl Drop for PgRole {
    fn drop(&mut self) {
        if !self.db.is_empty() {
            let (db, name) = (std::mem::take(&mut self.db), std::mem::take(&mut self.name));
            cleanup_blocking(db, Some(name));
        }
    }
}

/// Drops the test database `db` and then the role `name`, if any.
async fn cleanup(db: String, name: Option<String>) {
    drop_pg(&db).await;
    if let Some(name) = name.filter(|n| !n.is_empty()) {
        PgRole::admin(&format!("DROP ROLE IF EXISTS {name}"), None).await;
    }
}

/// [`cleanup`] on a thread with a runtime of its own (from `Drop`, maybe inside an async test).
fn cleanup_blocking(db: String, name: Option<String>) {
    let _ = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(cleanup(db, name))
    })
    .join();
}

/// A PostgreSQL test database dropped with this guard (also when the test fails).
struct PgDb(String);

impl Drop for PgDb {
    fn drop(&mut self) {
        cleanup_blocking(std::mem::take(&mut self.0), None);
    }
}

#[tokio::test]
async fn a_postgres_role_that_cannot_write_is_refused_at_start_and_by_check_config() {
    let Some((owner_url, db)) = fresh_pg_url().await else {
        eprintln!("TEST_DATABASE_URL not set: PostgreSQL part skipped");
        return;
    };
    let role = PgRole {
        name: format!("tg_ro_{}", rand::random::<u32>()),
        db,
    };
    let dir = tempfile::tempdir().unwrap();
    let owner_cfg = write_config(dir.path(), Some(&owner_url), "");
    let (ok, out, err) = cli(&owner_cfg, &["migrate"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("applied") && !out.contains("up to date"),
        "{out}"
    );
    PgRole::admin(&format!("CREATE ROLE {} LOGIN", role.name), None).await;
    // CREATE on the schema: sqlx's migrator runs `CREATE TABLE IF NOT EXISTS _sqlx_migrations`
    // even when nothing is pending (PostgreSQL 15 grants it to nobody by default).
    PgRole::admin(
        &format!(
            "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {0}; \
             GRANT CREATE ON SCHEMA public TO {0}",
            role.name
        ),
        Some(&role.db),
    )
    .await;
    let ro_dir = tempfile::tempdir().unwrap();
    let ro_cfg = write_config(ro_dir.path(), Some(&role.url()), "");
    std::fs::create_dir_all(ro_dir.path().join("data")).unwrap();
    // The database records the master key `migrate` made: the gateway needs that key file.
    copy_master_key(dir.path(), ro_dir.path());
    let (ok, out, err) = cli(&ro_cfg, &["check-config"]);
    let (serve_ok, serve_err) = serve_until_exit(&ro_cfg);
    let role_name = role.name.clone();
    role.drop_all().await;
    assert!(!ok, "check-config passed a read-only role: {out}");
    for e in [&err, &serve_err] {
        assert!(
            e.contains("not writable")
                && e.contains("permission denied for table")
                && e.contains(&format!("as user \"{}\"", role_name)),
            "{e}"
        );
    }
    assert!(!serve_ok);
    assert!(!serve_err.contains("RADIUS listening"), "{serve_err}");
}

/// Copies the master key file of the config written in `from` (`data/master.key`) to the same
/// place under `to` (mode kept: 0600), as an operator gives every instance the database's key.
fn copy_master_key(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to.join("data")).unwrap();
    std::fs::copy(from.join("data/master.key"), to.join("data/master.key")).unwrap();
}

/// GETs `path` on the metrics listener: (status, body).
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Sends wrong passcodes for `user` (each is a write: failure counts and an audit row) until
/// one is answered; its code, or `None` after `tries` unanswered ones.
async fn login_until(gw: &TestGateway, user: &str, tries: u32) -> Option<Code> {
    let mut client = RadClient::new(gw.addr).await;
    client.timeout = Duration::from_secs(2);
    for _ in 0..tries {
        if let Some(r) = client.request(user, "nope", None).await {
            return Some(r.code);
        }
    }
    None
}

/// Before the database breaks: logins answered, ready. The metrics address.
async fn ready_and_answering(gw: &TestGateway) -> SocketAddr {
    let metrics = gw.gw().metrics_addr().unwrap();
    gw.pin_user("carol").await;
    assert_eq!(login_until(gw, "carol", 1).await, Some(Code::AccessReject));
    let (status, body) = get(metrics, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    metrics
}

/// While writes fail: the NAS gets no answer and `/readyz` says 503 and why.
async fn unanswered_and_not_ready(gw: &TestGateway, metrics: SocketAddr, reason: &str) {
    assert_eq!(login_until(gw, "carol", 2).await, None);
    let (status, body) = get(metrics, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("database writes fail") && body.contains(reason),
        "{body}"
    );
}

/// Once writes work again: ready at once (the write probe, before any request succeeded), and
/// logins are answered again.
async fn ready_again(gw: &TestGateway, metrics: SocketAddr) {
    let (status, body) = get(metrics, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert!(login_until(gw, "carol", 5).await.is_some());
}

#[tokio::test]
async fn readyz_is_503_while_sqlite_writes_fail() {
    if !is_root() {
        // chmod does not stop a process that already has the file open; only root can make
        // an open file unwritable (chattr +i). The PostgreSQL variant covers the logic.
        eprintln!(
            "!!!!!!!! SKIPPED: not root, cannot make an open SQLite file unwritable !!!!!!!!"
        );
        return;
    }
    let gw = TestGateway::start_with("[metrics]\nlisten = \"127.0.0.1:0\"\n").await;
    let data = gw.dir.path().join("data");
    let metrics = ready_and_answering(&gw).await;
    let files = [data.join("tokengate.db"), data.join("tokengate.db-wal")];
    let Some(read_only) = ReadOnly::make(&files) else {
        return;
    };
    unanswered_and_not_ready(&gw, metrics, "I/O error").await;
    drop(read_only);
    ready_again(&gw, metrics).await;
    gw.shutdown().await;
}

#[tokio::test]
async fn readyz_is_503_while_postgres_refuses_writes() {
    let Some((owner_url, db)) = fresh_pg_url().await else {
        eprintln!("TEST_DATABASE_URL not set: PostgreSQL part skipped");
        return;
    };
    let role = PgRole {
        name: format!("tg_rw_{}", rand::random::<u32>()),
        db,
    };
    // The schema belongs to the owner; the gateway runs as a role with the rights it needs.
    let owner_dir = tempfile::tempdir().unwrap();
    {
        let cfg = write_config(owner_dir.path(), Some(&owner_url), "");
        let (ok, _, err) = cli(&cfg, &["migrate"]);
        assert!(ok, "{err}");
    }
    PgRole::admin(&format!("CREATE ROLE {} LOGIN", role.name), None).await;
    PgRole::admin(
        &format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {0}; \
             GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {0}; \
             GRANT CREATE ON SCHEMA public TO {0}",
            role.name
        ),
        Some(&role.db),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        Some(&role.url()),
        "[metrics]\nlisten = \"127.0.0.1:0\"\n",
    );
    // The database records the master key `migrate` made: the gateway needs that key file.
    copy_master_key(owner_dir.path(), dir.path());
    let gw = TestGateway::start_at(dir, &path).await;
    let metrics = ready_and_answering(&gw).await;
    let sql = |verb: &str| {
        format!(
            "{verb} UPDATE ON tokens {} {}",
            if verb == "GRANT" { "TO" } else { "FROM" },
            role.name
        )
    };
    PgRole::admin(&sql("REVOKE"), Some(&role.db)).await;
    unanswered_and_not_ready(&gw, metrics, "permission denied for table tokens").await;
    PgRole::admin(&sql("GRANT"), Some(&role.db)).await;
    ready_again(&gw, metrics).await;
    gw.shutdown().await;
    role.drop_all().await;
}

#[test]
fn start_up_logs_name_version_config_database_key_and_every_listener() {
    let dir = tempfile::tempdir().unwrap();
    let pg = std::env::var("TEST_DATABASE_URL").ok();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fresh = pg.as_ref().and_then(|_| rt.block_on(fresh_pg_url()));
    let _drop = fresh.as_ref().map(|(_, name)| PgDb(name.clone()));
    // With PostgreSQL, a password in the URL (trust authentication ignores it) must not show.
    let url = fresh
        .as_ref()
        .map(|(url, _)| url.replacen("://postgres@", "://postgres:hunter2-secret@", 1));
    let cfg = write_config(
        dir.path(),
        url.as_deref(),
        &format!(
            "[tacacs]\nlisten = [\"127.0.0.1:0\"]\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n\n\
         [admin_api]\nlisten = \"127.0.0.1:0\"\n\n[[admin_api.key]]\nname = \"t\"\n\
         key_sha256 = \"{}\"\n",
            "ab".repeat(32)
        ),
    );
    let mut d = Logged::spawn(&cfg);
    let start = d.wait_for("tokengate starting");
    assert!(start.contains(env!("CARGO_PKG_VERSION")), "{start}");
    assert!(start.contains(&cfg.display().to_string()), "{start}");
    let db = d.wait_for("database opened");
    match &url {
        Some(_) => {
            assert!(db.contains("postgres://postgres:***@"), "{db}");
        }
        None => assert!(db.contains("tokengate.db"), "{db}"),
    }
    let key = d.wait_for("master key loaded");
    assert!(key.contains("master.key"), "{key}");
    d.wait_for("RADIUS listening");
    d.wait_for("TACACS+ listening");
    d.wait_for("admin API listening");
    d.wait_for("metrics listening");
    assert!(
        d.seen.iter().all(|l| !l.contains("hunter2-secret")),
        "{}",
        d.seen.join("\n")
    );
    drop(d);
}

#[test]
fn migrate_reports_what_it_applied_and_up_to_date_only_when_nothing_was() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut urls: Vec<(Option<String>, Option<String>)> = vec![(None, None)];
    if let Some((url, name)) = rt.block_on(fresh_pg_url()) {
        urls.push((Some(url), Some(name)));
    }
    for (url, name) in urls {
        let _drop = name.map(PgDb);
        let dir = tempfile::tempdir().unwrap();
        let cfg = write_config(dir.path(), url.as_deref(), "");
        let (ok, out, err) = cli(&cfg, &["migrate"]);
        assert!(ok, "{err}");
        // Every migration the build embeds (the same number on both backends).
        let known = std::fs::read_dir(crate::common::repo().join("migrations/sqlite"))
            .unwrap()
            .count();
        assert!(
            out.contains(&format!("applied {known} migrations")) && !out.contains("up to date"),
            "first migrate: {out}"
        );
        let (ok, out, err) = cli(&cfg, &["migrate"]);
        assert!(ok, "{err}");
        assert!(out.contains("up to date"), "second migrate: {out}");
        let (ok, out, _) = cli(&cfg, &["--json", "migrate"]);
        assert!(ok);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["applied"], 0);
    }
}
