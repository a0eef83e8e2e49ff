//! Test support: throw-away databases for the conformance suite and for integration tests.
//!
//! Compiled in every build (so `tests/` and other crates' tests can use it) but meant only for
//! tests: it panics when it cannot set a database up. It owns creating and dropping uniquely
//! named databases: a SQLite file in a fresh temporary directory always, and a fresh PostgreSQL
//! database on the server named by `TEST_DATABASE_URL` when that variable is set. Each call makes
//! a new database with a random name, so tests in parallel threads or processes (cargo-nextest)
//! never see each other's rows. It must not touch any database it did not create.

// Test-only harness: a database that cannot be set up is a failed test, so it may panic.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;

use sqlx::{AnyConnection, Connection, Executor};

use super::{sqlite_url, Store, StoreOptions};

/// The environment variable naming a PostgreSQL server for tests, for example
/// `postgres://postgres@127.0.0.1:5432/test`. The database in the URL is only used to connect
/// and issue `CREATE DATABASE`/`DROP DATABASE`.
pub const TEST_DATABASE_URL: &str = "TEST_DATABASE_URL";

/// A database created for one test. Dropping it deletes the database (SQLite: the temporary
/// directory; PostgreSQL: `DROP DATABASE … WITH (FORCE)`, run on a helper thread because `Drop`
/// cannot await). [`TestDb::cleanup`] does the same without the thread.
#[derive(Debug)]
pub struct TestDb {
    url: String,
    kind: Kind,
    armed: bool,
}

#[derive(Debug)]
enum Kind {
    Sqlite { dir: PathBuf },
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    /// The URL of the database, for opening more [`Store`]s on it (a second gateway instance,
    /// a restart).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Deletes the database now. Close every `Store` on it first (PostgreSQL would otherwise
    /// terminate their connections).
    pub async fn cleanup(mut self) {
        self.armed = false;
        match &self.kind {
            Kind::Sqlite { dir } => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Kind::Postgres { admin_url, name } => drop_pg_database(admin_url, name).await,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        match &self.kind {
            Kind::Sqlite { dir } => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Kind::Postgres { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // A thread with its own runtime: this may run inside an async test, where
                // blocking on the test's own runtime would deadlock.
                let worker = std::thread::spawn(move || {
                    if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        rt.block_on(drop_pg_database(&admin_url, &name));
                    }
                });
                let _ = worker.join();
            }
        }
    }
}

/// A random lower-case suffix for database and directory names.
fn unique_suffix() -> String {
    format!("{}_{:016x}", std::process::id(), rand::random::<u64>())
}

/// Options for test stores: small PostgreSQL pools, since many tests run at once against one
/// server.
fn test_options() -> StoreOptions {
    StoreOptions {
        max_connections: Some(4),
        ..StoreOptions::default()
    }
}

/// A store on a fresh SQLite file in a new temporary directory.
///
/// # Panics
/// When the directory or the database cannot be created.
pub async fn fresh_sqlite_store() -> (Store, TestDb) {
    let dir = std::env::temp_dir().join(format!("tokengate-test-{}", unique_suffix()));
    std::fs::create_dir_all(&dir).expect("create temporary directory for the test database");
    let url = sqlite_url(&dir.join("tokengate.db"));
    let db = TestDb {
        url,
        kind: Kind::Sqlite { dir },
        armed: true,
    };
    let store = Store::open_with(&db.url, &test_options())
        .await
        .expect("open test SQLite store");
    (store, db)
}

/// A store on a fresh, uniquely named database on the PostgreSQL server of `server_url`.
///
/// # Panics
/// When the server cannot be reached or the database cannot be created.
pub async fn fresh_postgres_store(server_url: &str) -> (Store, TestDb) {
    sqlx::any::install_default_drivers();
    let name = format!("tokengate_test_{}", unique_suffix());
    let mut admin = AnyConnection::connect(server_url)
        .await
        .expect("connect to TEST_DATABASE_URL");
    admin
        .execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await
        .expect("create test database");
    let _ = admin.close().await;
    let db = TestDb {
        url: with_database(server_url, &name),
        kind: Kind::Postgres {
            admin_url: server_url.to_owned(),
            name,
        },
        armed: true,
    };
    let store = Store::open_with(&db.url, &test_options())
        .await
        .expect("open test PostgreSQL store");
    (store, db)
}

/// A store on a fresh database: PostgreSQL when `TEST_DATABASE_URL` is set, SQLite otherwise.
///
/// # Panics
/// When the database cannot be set up.
pub async fn fresh_store() -> (Store, TestDb) {
    match std::env::var(TEST_DATABASE_URL) {
        Ok(url) if !url.is_empty() => fresh_postgres_store(&url).await,
        _ => fresh_sqlite_store().await,
    }
}

/// Fresh stores on every backend available: SQLite always, then PostgreSQL when
/// `TEST_DATABASE_URL` is set. Conformance tests loop over these so one run covers both.
///
/// # Panics
/// When a database cannot be set up.
pub async fn all_test_stores() -> Vec<(Store, TestDb)> {
    let mut stores = vec![fresh_sqlite_store().await];
    if let Ok(url) = std::env::var(TEST_DATABASE_URL) {
        if !url.is_empty() {
            stores.push(fresh_postgres_store(&url).await);
        }
    }
    stores
}

/// Replaces the database name (the URL path) of a PostgreSQL URL, keeping any query string.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[host_start..]
        .find('/')
        .map_or(base.len(), |i| host_start + i);
    let mut out = format!("{}/{database}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// Drops a test database, terminating connections still open on it. Failures are ignored: the
/// name is unique, so a leftover database only costs disk space.
async fn drop_pg_database(admin_url: &str, name: &str) {
    if let Ok(mut admin) = AnyConnection::connect(admin_url).await {
        let _ = admin
            .execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
            .await;
        let _ = admin.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn with_database_replaces_only_the_path() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/db?sslmode=disable", "x"),
            "postgresql://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
    }
}
