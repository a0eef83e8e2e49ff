//! Write access: whether this process can write the database, checked with writes rather than
//! guessed from permission bits.
//!
//! A database the service user cannot write (the usual result of root running the CLI first on
//! a systemd host) used to let the gateway start and then drop every request: SQLite opens a
//! file it may not write read-only without a word, and the first write fails. The gateway
//! (start-up), `check-config` and `/readyz` (while the writer's batches fail) therefore ask:
//!
//! - SQLite, before opening ([`check_sqlite_files`]): the directory takes a new file (SQLite
//!   creates `-wal`, `-shm` and journals there), and an existing database file opens
//!   read-write and takes the write lock (`BEGIN IMMEDIATE`, rolled back); a failure names the
//!   file and shows owner, mode and this process's uid.
//! - Both backends, on an open store ([`Store::check_writable`]): one transaction runs a
//!   statement per kind of write the packet path makes, each matching no row (`UPDATE … WHERE
//!   1 = 0`, `INSERT … SELECT … WHERE 1 = 0`, `DELETE … WHERE 1 = 0`). PostgreSQL checks the
//!   privileges and a read-only transaction on each; the transaction is rolled back. On SQLite
//!   the transaction also rewrites `user_version` with its own value and commits, since a
//!   rolled-back SQLite transaction never touches the file: only a commit meets a full disk,
//!   an I/O error or an immutable file.
//!
//! It changes nothing durable (a SQLite commit of an unchanged header aside) and must not run
//! on the packet path.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::{AnyConnection, Connection, Executor};

use super::{normalise_sqlite_url, sqlite_file_path, Backend, Store, StoreError};

/// One statement per kind of write the packet path makes (`store::batch`), each matching no
/// row, with what it proves.
const PROBES: [(&str, &str); 7] = [
    (
        "UPDATE tokens",
        "UPDATE tokens SET last_step = last_step, bad_count = bad_count WHERE 1 = 0",
    ),
    (
        "UPDATE users",
        "UPDATE users SET fail_count = fail_count WHERE 1 = 0",
    ),
    (
        "UPDATE emergency_codes",
        "UPDATE emergency_codes SET used_at = used_at WHERE 1 = 0",
    ),
    (
        "INSERT INTO challenges",
        "INSERT INTO challenges (state) SELECT '' WHERE 1 = 0",
    ),
    (
        "DELETE FROM challenges",
        "DELETE FROM challenges WHERE 1 = 0",
    ),
    (
        "INSERT INTO audit",
        "INSERT INTO audit (at) SELECT 0 WHERE 1 = 0",
    ),
    (
        "DELETE FROM emergency_access",
        "DELETE FROM emergency_access WHERE 1 = 0",
    ),
];

/// How long `check-config` waits for PostgreSQL before giving up on the write check.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What [`check_existing`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// The database exists and this process can write it.
    Writable,
    /// Nothing to check yet: the SQLite file or the schema does not exist (it will be created).
    NotCreated,
    /// The database could not be reached; write access was not checked.
    Unreachable(String),
}

/// A description of a PostgreSQL URL without its password: `PostgreSQL database "db" as user
/// "u"`.
fn describe_postgres(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split_once('?').map_or(rest, |(r, _)| r);
    let (authority, db) = rest.split_once('/').unwrap_or((rest, ""));
    let user = authority
        .rsplit_once('@')
        .map(|(creds, _)| creds.split_once(':').map_or(creds, |(u, _)| u))
        .unwrap_or("");
    match (db.is_empty(), user.is_empty()) {
        (false, false) => format!("PostgreSQL database \"{db}\" as user \"{user}\""),
        (false, true) => format!("PostgreSQL database \"{db}\""),
        _ => "PostgreSQL database".to_owned(),
    }
}

/// The database a URL names, in words and without a password: the SQLite file's path or
/// [`describe_postgres`].
pub(super) fn describe(url: &str) -> String {
    match (Backend::from_url(url), sqlite_file(url)) {
        (_, Some(file)) => file.display().to_string(),
        (Ok(Backend::Postgres), _) => describe_postgres(url),
        _ => "in-memory SQLite database".to_owned(),
    }
}

/// Owner, mode and this process's uid, to explain why `path` is not writable (best effort).
fn ownership(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let me = std::fs::metadata("/proc/self")
        .map(|m| format!("; this process runs as uid {}", m.uid()))
        .unwrap_or_default();
    match std::fs::metadata(path) {
        Ok(m) => format!(
            " ({} is owned by uid {}, mode {:o}{me})",
            path.display(),
            m.uid(),
            m.mode() & 0o7777
        ),
        Err(_) => String::new(),
    }
}

fn not_writable(what: String, reason: String) -> StoreError {
    StoreError::NotWritable { what, reason }
}

/// The SQLite file a URL names; `None` for PostgreSQL and in-memory databases.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    if Backend::from_url(url).ok()? != Backend::Sqlite || normalise_sqlite_url(url).1 {
        return None;
    }
    sqlite_file_path(url)
}

/// SQLite files: checks that the database's directory takes a new file and that an existing
/// database file opens read-write and takes the write lock. Does nothing for PostgreSQL or an
/// in-memory database, or when the directory does not exist (opening reports that). Blocking:
/// waits up to SQLite's busy timeout for the write lock.
pub fn check_sqlite_files(url: &str) -> Result<(), StoreError> {
    let Some(file) = sqlite_file(url) else {
        return Ok(());
    };
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if dir.is_dir() {
        // A separate file: opening and closing the database file itself would drop the POSIX
        // locks other SQLite connections of this process hold on it.
        let probe = dir.join(format!(
            ".tokengate-write-probe-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
        {
            Ok(_) => _ = std::fs::remove_file(&probe),
            Err(e) => {
                return Err(not_writable(
                    format!("directory {}", dir.display()),
                    format!(
                        "{e}{}; SQLite creates the database's -wal, -shm and journal files there",
                        ownership(&dir)
                    ),
                ))
            }
        }
    }
    if !file.exists() {
        return Ok(());
    }
    let what = || file.display().to_string();
    let explain = |reason: String| {
        let mut details = ownership(&file);
        for suffix in ["-wal", "-shm"] {
            let mut side = file.clone().into_os_string();
            side.push(suffix);
            let side = PathBuf::from(side);
            if side.exists() {
                details.push_str(&ownership(&side));
            }
        }
        format!("{reason}{details}")
    };
    let conn = rusqlite::Connection::open_with_flags(
        &file,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| not_writable(what(), explain(e.to_string())))?;
    if conn
        .is_readonly(rusqlite::DatabaseName::Main)
        .unwrap_or(false)
    {
        return Err(not_writable(
            what(),
            explain("SQLite could open it only read-only".into()),
        ));
    }
    conn.busy_timeout(Duration::from_millis(super::SQLITE_BUSY_TIMEOUT_MS))
        .and_then(|()| conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;"))
        .map_err(|e| not_writable(what(), explain(e.to_string())))?;
    Ok(())
}

/// Runs [`PROBES`] in one write transaction on `conn`; on SQLite also commits an unchanged
/// `user_version` (see the module doc), on PostgreSQL rolls back.
async fn probe(conn: &mut AnyConnection, backend: Backend) -> Result<(), (&'static str, String)> {
    let begin = match backend {
        Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await,
        Backend::Postgres => conn.begin().await,
    };
    let mut tx = begin.map_err(|e| ("begin a write transaction", e.to_string()))?;
    for (what, sql) in PROBES {
        tx.execute(sql).await.map_err(|e| (what, e.to_string()))?;
    }
    match backend {
        Backend::Sqlite => {
            let (version,): (i64,) = sqlx::query_as("SELECT user_version FROM pragma_user_version")
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| ("read user_version", e.to_string()))?;
            tx.execute(format!("PRAGMA user_version = {version}").as_str())
                .await
                .map_err(|e| ("write user_version", e.to_string()))?;
            tx.commit().await.map_err(|e| ("commit", e.to_string()))?;
        }
        Backend::Postgres => tx
            .rollback()
            .await
            .map_err(|e| ("roll back", e.to_string()))?,
    }
    Ok(())
}

impl Store {
    /// Proves that this process can make the packet path's writes (see the module doc); the
    /// error names the database and the statement that failed.
    pub async fn check_writable(&self) -> Result<(), StoreError> {
        let what = self.label.to_string();
        let mut conn = self.pool.acquire().await?;
        probe(&mut conn, self.backend)
            .await
            .map_err(|(stmt, reason)| not_writable(what, format!("{stmt}: {reason}")))
    }
}

/// `check-config`: whether the database the URL names exists and this process can write it,
/// without creating or migrating anything. SQLite: [`check_sqlite_files`] when the file
/// exists. PostgreSQL: connects (at most 5 s; unreachable is reported, not an error) and, when
/// the schema exists, runs the probe in a rolled-back transaction.
pub async fn check_existing(url: &str) -> Result<Access, StoreError> {
    match Backend::from_url(url)? {
        Backend::Sqlite => {
            let Some(file) = sqlite_file(url) else {
                return Ok(Access::NotCreated);
            };
            let exists = file.exists();
            let owned = url.to_owned();
            tokio::task::spawn_blocking(move || check_sqlite_files(&owned))
                .await
                .map_err(|e| not_writable(file.display().to_string(), e.to_string()))??;
            Ok(if exists {
                Access::Writable
            } else {
                Access::NotCreated
            })
        }
        Backend::Postgres => {
            sqlx::any::install_default_drivers();
            let what = describe_postgres(url);
            let mut conn =
                match tokio::time::timeout(CONNECT_TIMEOUT, AnyConnection::connect(url)).await {
                    Ok(Ok(conn)) => conn,
                    Ok(Err(e)) => return Ok(Access::Unreachable(format!("{what}: {e}"))),
                    Err(_) => {
                        return Ok(Access::Unreachable(format!(
                            "{what}: no answer within {} s",
                            CONNECT_TIMEOUT.as_secs()
                        )))
                    }
                };
            let (tables,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = 'tokens'",
            )
            .fetch_one(&mut conn)
            .await?;
            let result = if tables == 0 {
                Ok(Access::NotCreated)
            } else {
                probe(&mut conn, Backend::Postgres)
                    .await
                    .map(|()| Access::Writable)
                    .map_err(|(stmt, reason)| not_writable(what, format!("{stmt}: {reason}")))
            };
            _ = conn.close().await;
            result
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_descriptions_never_hold_the_password() {
        assert_eq!(
            describe_postgres("postgres://gw:secret@db.example:5432/tokengate?sslmode=require"),
            "PostgreSQL database \"tokengate\" as user \"gw\""
        );
        assert_eq!(
            describe_postgres("postgresql://h/tg"),
            "PostgreSQL database \"tg\""
        );
    }
}
