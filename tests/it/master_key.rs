//! The master key check and `key rotate` (issue 17) with the real binary on a real database:
//! SQLite always, and PostgreSQL too when `TEST_DATABASE_URL` is set (each test then runs once
//! per backend). A key file that is not the database's key, or a missing key file for a database
//! with data, refuses to start and to run admin verbs, naming the file; only a fresh database
//! gets a new key. After a rotation every credential still logs in through RADIUS under the new
//! key file and the old one opens nothing.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sqlx::{AnyConnection, Connection, Executor};
use tokengate::admin::IssueOptions;
use tokengate::config::Config;
use tokengate::keys;
use tokengate::model::EmergencyKind;
use tokengate::radius::Code;
use tokengate::store::Store;

use crate::common::*;
use crate::multi_instance::{drop_pg, fresh_pg_url};

const SEED_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"; // "12345678901234567890"

/// Offline codes allowed (for the rotation test), and a TOTP window wide enough that a code
/// computed just before a step boundary still counts.
const EXTRA: &str = "[domain.default.offline]\nallowed = true\nemergency_codes = true\n\
                     [domain.default.token]\ntotp_window = 3\ntotp_wide_window = 6\n";

/// One backend to run a test on: a directory with the config (and, under `data/`, the key file
/// and on SQLite the database).
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    /// The PostgreSQL database to drop at the end.
    pg: Option<String>,
}

impl Setup {
    fn key(&self) -> PathBuf {
        self.dir.path().join("data/master.key")
    }

    fn url(&self) -> String {
        Config::load(&self.config).unwrap().database_url
    }

    fn name(&self) -> &'static str {
        if self.pg.is_some() {
            "postgres"
        } else {
            "sqlite"
        }
    }

    /// A second instance's directory on the same database, with no key file yet.
    fn other_instance(&self) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), Some(&self.url()), EXTRA);
        (dir, config)
    }

    async fn cleanup(self) {
        if let Some(name) = &self.pg {
            drop_pg(name).await;
        }
    }
}

/// A fresh SQLite setup, and a fresh PostgreSQL one when `TEST_DATABASE_URL` is set.
async fn setups() -> Vec<Setup> {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), None, EXTRA);
    let mut out = vec![Setup {
        dir,
        config,
        pg: None,
    }];
    if let Some((url, name)) = fresh_pg_url().await {
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), Some(&url), EXTRA);
        out.push(Setup {
            dir,
            config,
            pg: Some(name),
        });
    }
    out
}

/// Writes `bytes` as the key file at `path` (mode 0600, replacing any file there).
fn write_key(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}

/// Runs `tokengate serve` on `config`, expects it to exit with an error within 30 s and returns
/// its stderr.
fn serve_refused(config: &Path) -> String {
    let mut child = DaemonChild(spawn_daemon(config, &[]));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "serve started instead of refusing"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!status.success(), "serve exited 0: {err}");
    err
}

/// Sends SIGTERM and waits for a clean exit. `serve` installs its SIGTERM handler just after it
/// logs its listeners, which is when `start_daemon` returns: give it a moment first, or the
/// signal's default action ends it.
fn stop(mut daemon: DaemonChild) {
    std::thread::sleep(Duration::from_millis(300));
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    assert!(daemon.wait().unwrap().success());
}

/// Runs one SQL statement on the database at `url` (test set-up only).
async fn exec(url: &str, sql: &str) {
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(url).await.unwrap();
    conn.execute(sql).await.unwrap();
    conn.close().await.unwrap();
}

/// The check value the database records, if any.
async fn recorded_check(url: &str) -> Option<String> {
    let store = Store::open(url).await.unwrap();
    let check = store.key_check().await.unwrap().map(|c| c.check_value);
    store.close().await;
    check
}

fn step_now() -> i64 {
    tokengate::otp::totp_step(tokengate::clock::unix_now(), 30)
}

/// A user with a PIN token (RFC seed, PIN `pin`) through the CLI.
fn cli_user_with_token(config: &Path, user: &str, pin: &str) {
    let (ok, _, err) = cli(config, &["user", "add", user]);
    assert!(ok, "{err}");
    let serial = format!("S-{user}");
    let (ok, _, err) = cli(
        config,
        &[
            "token",
            "add",
            "--user",
            user,
            "--pin",
            pin,
            "--serial",
            &serial,
            "--seed-base32",
            SEED_B32,
        ],
    );
    assert!(ok, "{err}");
}

#[tokio::test]
async fn a_fresh_database_gets_a_new_key_and_records_its_check_value() {
    for s in setups().await {
        let b = s.name();
        assert!(!s.key().exists());
        let (daemon, _) = start_daemon(&s.config);
        stop(daemon);
        let key = keys::load(&s.key()).unwrap().expect("key file created");
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(s.key()).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{b}");
        }
        assert_eq!(
            recorded_check(&s.url()).await,
            Some(key.check_value_hex()),
            "{b}"
        );
        let (ok, out, err) = cli(&s.config, &["key", "check"]);
        assert!(ok, "{b}: {err}");
        assert!(out.contains(&key.check_value_hex()[..8]), "{b}: {out}");
        assert!(out.contains("matches the database"), "{b}: {out}");
        // Starting again reuses the key: same file, same value, a working gateway.
        let (daemon, _) = start_daemon(&s.config);
        stop(daemon);
        assert_eq!(
            keys::load(&s.key()).unwrap().unwrap().as_bytes(),
            key.as_bytes()
        );
        s.cleanup().await;
    }
}

#[tokio::test]
async fn an_instance_with_another_key_refuses_to_start_naming_the_key_file() {
    for s in setups().await {
        let b = s.name();
        cli_user_with_token(&s.config, "alice", "1234");
        let original = std::fs::read(s.key()).unwrap();
        // Same database, another key in the same place.
        write_key(&s.key(), &[0x5a; 32]);
        let err = serve_refused(&s.config);
        let expected = format!(
            "master key file {}: not the key this database was set up with",
            s.key().display()
        );
        assert!(err.contains(&expected), "{b}: {err}");
        assert_eq!(
            err.trim().lines().last().map(|l| l.contains(&expected)),
            Some(true),
            "{b}: one line: {err}"
        );
        // Every admin verb that opens the key refuses the same way, and changes nothing.
        for verb in [&["user", "list"][..], &["migrate"], &["key", "check"]] {
            let (ok, _, err) = cli(&s.config, verb);
            assert!(!ok && err.contains(&expected), "{b}: {verb:?}: {err}");
        }
        let (ok, _, err) = cli(&s.config, &["user", "add", "mallory"]);
        assert!(!ok && err.contains(&expected), "{b}: {err}");

        // A second instance on the same database without the key file: refused, and no key is
        // made for it; with a key of its own: refused too.
        let (other, other_config) = s.other_instance();
        let other_key = other.path().join("data/master.key");
        let err = serve_refused(&other_config);
        assert!(
            err.contains(&format!(
                "master key file {}: not found, but the database already holds",
                other_key.display()
            )),
            "{b}: {err}"
        );
        assert!(!other_key.exists(), "{b}: a new key was created");
        write_key(&other_key, &[0x77; 32]);
        let err = serve_refused(&other_config);
        assert!(
            err.contains(&format!(
                "master key file {}: not the key this database was set up with",
                other_key.display()
            )),
            "{b}: {err}"
        );
        // With a copy of the database's key it starts and serves alice.
        write_key(&other_key, &original);
        let (daemon, addr) = start_daemon(&other_config);
        let mut c = RadClient::new(addr).await;
        let pc = format!("1234{}", code(step_now()));
        assert_eq!(c.ask("alice", &pc).await.code, Code::AccessAccept, "{b}");
        stop(daemon);

        // The original instance with its key back starts again.
        write_key(&s.key(), &original);
        let (ok, out, err) = cli(&s.config, &["user", "list"]);
        assert!(
            ok && out.contains("alice") && !out.contains("mallory"),
            "{b}: {err}"
        );
        s.cleanup().await;
    }
}

#[tokio::test]
async fn a_missing_key_file_with_a_populated_database_refuses_to_start_and_makes_no_key() {
    for s in setups().await {
        let b = s.name();
        cli_user_with_token(&s.config, "alice", "1234");
        std::fs::remove_file(s.key()).unwrap();
        let expected = format!(
            "master key file {}: not found, but the database already holds users, tokens or a \
             recorded key check; restore the key file from your backup",
            s.key().display()
        );
        let err = serve_refused(&s.config);
        assert!(err.contains(&expected), "{b}: {err}");
        assert!(!s.key().exists(), "{b}: serve created a new key");
        for verb in [&["user", "list"][..], &["migrate"], &["token", "list"]] {
            let (ok, _, err) = cli(&s.config, verb);
            assert!(!ok && err.contains(&expected), "{b}: {verb:?}: {err}");
            assert!(!s.key().exists(), "{b}: {verb:?} created a new key");
        }
        s.cleanup().await;
    }
    // The recorded check value alone is enough: a database whose users are all gone still
    // belongs to its key.
    for s in setups().await {
        let b = s.name();
        let (ok, _, err) = cli(&s.config, &["migrate"]);
        assert!(ok, "{b}: {err}");
        assert!(
            s.key().exists() && recorded_check(&s.url()).await.is_some(),
            "{b}"
        );
        std::fs::remove_file(s.key()).unwrap();
        let (ok, _, err) = cli(&s.config, &["migrate"]);
        assert!(
            !ok && err.contains("not found, but the database already holds"),
            "{b}: {err}"
        );
        assert!(!s.key().exists(), "{b}");
        s.cleanup().await;
    }
}

#[tokio::test]
async fn a_database_from_before_the_check_adopts_only_the_key_that_decrypts_its_seeds() {
    for s in setups().await {
        let b = s.name();
        cli_user_with_token(&s.config, "alice", "1234");
        let original = std::fs::read(s.key()).unwrap();
        // As the database looked before migration 0003 recorded anything.
        exec(&s.url(), "DELETE FROM key_check").await;
        write_key(&s.key(), &[0x33; 32]);
        let (ok, _, err) = cli(&s.config, &["user", "list"]);
        assert!(!ok, "{b}");
        assert!(
            err.contains(&format!(
                "master key file {}: cannot be used with this database: the seed of token \
                 \"S-alice\" does not decrypt under it",
                s.key().display()
            )),
            "{b}: {err}"
        );
        assert_eq!(
            recorded_check(&s.url()).await,
            None,
            "{b}: a wrong key was recorded"
        );
        let err = serve_refused(&s.config);
        assert!(err.contains("does not decrypt under it"), "{b}: {err}");

        write_key(&s.key(), &original);
        let (daemon, addr) = start_daemon(&s.config);
        let key = keys::load(&s.key()).unwrap().unwrap();
        assert_eq!(
            recorded_check(&s.url()).await,
            Some(key.check_value_hex()),
            "{b}"
        );
        let mut c = RadClient::new(addr).await;
        let pc = format!("1234{}", code(step_now()));
        assert_eq!(c.ask("alice", &pc).await.code, Code::AccessAccept, "{b}");
        stop(daemon);
        s.cleanup().await;
    }
}

#[tokio::test]
async fn key_rotate_keeps_every_credential_working_and_the_old_key_opens_nothing() {
    for s in setups().await {
        let b = s.name();
        // Provisioned in-process on the same database: a PIN token, a fixed passcode, a TFT, an
        // OTT set and an offline tokencode flagged for online use.
        let tg = TestGateway::start_at(tempfile::tempdir().unwrap(), &s.config).await;
        let now = tg.now();
        tg.pin_user("alice").await;
        tg.pin_user("bob").await;
        tg.admin()
            .set_fixed_passcode("bob", "Fixed2Pass", "Fixed2Pass", now)
            .await
            .unwrap();
        let carol = tg.pin_user("carol").await;
        let tft = tg
            .admin()
            .issue_emergency(
                &carol,
                IssueOptions {
                    kind: Some(EmergencyKind::Tft),
                    ..Default::default()
                },
                now,
            )
            .await
            .unwrap();
        let dave = tg.pin_user("dave").await;
        let ott = tg
            .admin()
            .issue_emergency(
                &dave,
                IssueOptions {
                    kind: Some(EmergencyKind::Ott),
                    count: Some(3),
                    ..Default::default()
                },
                now,
            )
            .await
            .unwrap();
        let erin = tg.pin_user("erin").await;
        let offline = tg.admin().offline_code_show(&erin, now).await.unwrap();
        tg.admin()
            .offline_code_online(&erin, true, now)
            .await
            .unwrap();
        let passcode = tg
            .admin()
            .offline_passcode("erin", false, now)
            .await
            .unwrap();
        let old_key = std::fs::read(s.key()).unwrap();
        let new_key = s.dir.path().join("new.key");

        // While a gateway runs with the key file, the rotation is refused before anything is
        // written.
        let (ok, _, err) = cli(
            &s.config,
            &["key", "rotate", "--new-key-file", new_key.to_str().unwrap()],
        );
        assert!(!ok, "{b}: rotated under a running gateway");
        assert!(
            err.contains(&format!(
                "master key file {}: in use by a running gateway on this host",
                s.key().display()
            )),
            "{b}: {err}"
        );
        assert!(!new_key.exists(), "{b}");
        if s.pg.is_some() {
            // On PostgreSQL a gateway elsewhere (another key file path) is seen too.
            let (other, other_config) = s.other_instance();
            write_key(&other.path().join("data/master.key"), &old_key);
            let (ok, _, err) = cli(
                &other_config,
                &["key", "rotate", "--new-key-file", new_key.to_str().unwrap()],
            );
            assert!(!ok, "{b}");
            assert!(
                err.contains("a gateway is running on this database")
                    && err.contains("was removed"),
                "{b}: {err}"
            );
            assert!(!new_key.exists(), "{b}: the unused new key was left behind");
        }
        tg.shutdown().await;

        let (ok, out, err) = cli(
            &s.config,
            &[
                "--json",
                "key",
                "rotate",
                "--new-key-file",
                new_key.to_str().unwrap(),
            ],
        );
        assert!(ok, "{b}: {err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["seeds"], 5, "{b}: {v}");
        assert_eq!(v["offline_codes"], 2, "{b}: {v}");
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&new_key).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{b}");
        }
        assert_eq!(
            std::fs::read(s.key()).unwrap(),
            old_key,
            "{b}: old file untouched"
        );
        let new = keys::load(&new_key).unwrap().unwrap();
        assert_eq!(v["key_check"], new.check_value_hex(), "{b}");
        assert_eq!(
            recorded_check(&s.url()).await,
            Some(new.check_value_hex()),
            "{b}"
        );

        // The old key file opens nothing: refused at start, and its seed key no longer decrypts.
        let err = serve_refused(&s.config);
        assert!(
            err.contains("not the key this database was set up with"),
            "{b}: {err}"
        );
        let store = Store::open(&s.url()).await.unwrap();
        let t = store.token_by_serial("S-alice").await.unwrap().unwrap();
        let old = keys::load(&s.key()).unwrap().unwrap();
        assert!(
            old.seed_cipher().decrypt(&t.seed_enc, b"S-alice").is_err(),
            "{b}"
        );
        assert_eq!(
            new.seed_cipher()
                .decrypt(&t.seed_enc, b"S-alice")
                .unwrap()
                .as_slice(),
            SEED,
            "{b}"
        );
        let audit = store.audit_since(0, 1000).await.unwrap();
        let rotation = audit
            .iter()
            .find(|a| a.method == "key_rotate")
            .expect("the rotation is audited");
        assert!(
            rotation.result == "ok" && rotation.actor.as_deref().unwrap_or("").starts_with("cli:"),
            "{b}: {rotation:?}"
        );
        store.close().await;

        // Installed as the master key file, the new key serves every credential.
        std::fs::rename(&new_key, s.key()).unwrap();
        let (daemon, addr) = start_daemon(&s.config);
        let mut c = RadClient::new(addr).await;
        let step = step_now();
        assert_eq!(
            c.ask("alice", &format!("1234{}", code(step))).await.code,
            Code::AccessAccept,
            "{b}: PIN + TOTP"
        );
        assert_eq!(
            c.ask("alice", &format!("9999{}", code(step + 1)))
                .await
                .code,
            Code::AccessReject,
            "{b}: a wrong PIN still fails"
        );
        assert_eq!(
            c.ask("bob", "Fixed2Pass").await.code,
            Code::AccessAccept,
            "{b}: fixed passcode"
        );
        assert_eq!(
            c.ask("carol", &format!("1234{}", tft.codes[0])).await.code,
            Code::AccessAccept,
            "{b}: TFT"
        );
        assert_eq!(
            c.ask("dave", &format!("1234{}", ott.codes[1])).await.code,
            Code::AccessAccept,
            "{b}: OTT"
        );
        assert_eq!(
            c.ask("erin", &format!("1234{}", offline.code)).await.code,
            Code::AccessAccept,
            "{b}: offline tokencode"
        );
        // New secrets made after the rotation: a seed under the new key, a PIN under the kept
        // pepper.
        cli_user_with_token(&s.config, "gina", "2468");
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(
            c.ask("gina", &format!("2468{}", code(step_now())))
                .await
                .code,
            Code::AccessAccept,
            "{b}: token added after the rotation"
        );
        // The offline codes read back the same under the new key (token- and user-bound).
        let (ok, out, err) = cli(&s.config, &["--json", "offline-code", "show", &erin]);
        assert!(ok && out.contains(&offline.code), "{b}: {err} {out}");
        let (ok, out, err) = cli(
            &s.config,
            &["--json", "offline-code", "show", "--user", "erin"],
        );
        assert!(ok && out.contains(&passcode.code), "{b}: {err} {out}");
        stop(daemon);
        s.cleanup().await;
    }
}

#[tokio::test]
async fn a_failed_rotation_changes_nothing_and_keeps_no_stray_key() {
    for s in setups().await {
        let b = s.name();
        cli_user_with_token(&s.config, "alice", "1234");
        cli_user_with_token(&s.config, "bob", "1234");
        let before = recorded_check(&s.url()).await;
        let new_key = s.dir.path().join("new.key");

        // An existing file is never written over.
        std::fs::write(&new_key, "keep me").unwrap();
        let (ok, _, err) = cli(
            &s.config,
            &["key", "rotate", "--new-key-file", new_key.to_str().unwrap()],
        );
        assert!(!ok && err.contains("already exists"), "{b}: {err}");
        assert_eq!(std::fs::read_to_string(&new_key).unwrap(), "keep me");
        std::fs::remove_file(&new_key).unwrap();

        // A seed that does not decrypt under the current key stops the rotation after the
        // first one was already re-encrypted in the transaction: it all rolls back.
        exec(
            &s.url(),
            "UPDATE tokens SET seed_enc = (SELECT seed_enc FROM tokens WHERE serial = 'S-alice') \
             WHERE serial = 'S-bob'",
        )
        .await;
        let (ok, _, err) = cli(
            &s.config,
            &["key", "rotate", "--new-key-file", new_key.to_str().unwrap()],
        );
        assert!(!ok, "{b}");
        assert!(
            err.contains(
                "the seed of token \"S-bob\" does not decrypt under the current master key"
            ),
            "{b}: {err}"
        );
        assert!(err.contains("the database is unchanged"), "{b}: {err}");
        assert!(!new_key.exists(), "{b}: the unused new key was kept");
        assert_eq!(recorded_check(&s.url()).await, before, "{b}");
        let (daemon, addr) = start_daemon(&s.config);
        let mut c = RadClient::new(addr).await;
        assert_eq!(
            c.ask("alice", &format!("1234{}", code(step_now())))
                .await
                .code,
            Code::AccessAccept,
            "{b}: alice's seed is still under the old key"
        );
        stop(daemon);
        s.cleanup().await;
    }
}

#[tokio::test]
async fn two_instances_initialising_one_empty_database_at_once_end_with_one_key() {
    use tokengate::server::master_key::unlock;
    for s in setups().await {
        let b = s.name();
        std::fs::create_dir_all(s.dir.path().join("data")).unwrap();
        let store = Store::open(&s.url()).await.unwrap();
        let other = tempfile::tempdir().unwrap();
        let paths = [s.key(), other.path().join("master.key")];
        // Interleaved on one task: both find an empty database and make a key; one records it.
        let (ra, rb) = tokio::join!(unlock(&store, &paths[0], 1), unlock(&store, &paths[1], 1));
        let (winner, loser, err) = match (ra, rb) {
            (Ok(_), Err(e)) => (&paths[0], &paths[1], e.to_string()),
            (Err(e), Ok(_)) => (&paths[1], &paths[0], e.to_string()),
            (a, b2) => panic!("{b}: exactly one may win: {a:?} / {b2:?}"),
        };
        assert!(
            err.contains(&format!("master key file {}: not", loser.display())),
            "{b}: {err}"
        );
        assert!(!loser.exists(), "{b}: the losing key file was left behind");
        let key = keys::load(winner).unwrap().unwrap();
        assert_eq!(
            store.key_check().await.unwrap().map(|c| c.check_value),
            Some(key.check_value_hex()),
            "{b}"
        );
        store.close().await;
        s.cleanup().await;
    }
}
