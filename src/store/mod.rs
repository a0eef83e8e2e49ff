//! Persistent state: users, tokens, challenge sessions, online emergency access and its codes,
//! offline emergency codes, fixed passcodes, the audit log and the change feed, on SQLite or
//! PostgreSQL through one set of runtime-checked `sqlx` queries (SPEC §13 "Storage").
//!
//! The store owns the schema (the `migrations/` folder), the mapping between rows and the records
//! of [`crate::model`], transactions, the replay compare-and-set of SPEC R-1 (a guarded
//! `UPDATE … WHERE last_step < step`, see [`WriteOp::AdvanceStep`]) and the single-use guard of
//! one-time emergency codes (SPEC E-1, [`WriteOp::ConsumeEmergencyCode`]). It makes no policy
//! decisions: it never judges whether a passcode is right, a challenge has expired or a user
//! should be locked. The engine decides, the store persists what it is told, atomically and
//! durably.
//!
//! Every query goes through [`sqlx::AnyPool`], so the SQL is written once for both databases:
//! `$1, $2, …` placeholders, integers everywhere (booleans as 0/1, times as Unix seconds), blobs
//! as `BLOB`/`BYTEA`, `RETURNING` for generated ids. Packet-path writes are batched by
//! [`writer::WriterHandle`] (group commit) into [`Store::apply_batch`]; admin writes are single
//! transactions that also append to the change feed ([`Store::changes_since`]), which running
//! gateways poll to invalidate their in-memory copies of user and token state.
//!
//! Notes on the `Any` driver, which shape the code below: it only carries a URL, so SQLite's
//! pragmas are set per connection in `after_connect`; it re-parses the URL for every connection,
//! so `sqlite::memory:` must use a one-connection pool; it decodes any integer column into any
//! integer type, but PostgreSQL columns are all `BIGINT` anyway and values are bound as `i64`
//! (never `bool`, which PostgreSQL would not compare with an integer column); SQLite binds `$N`
//! by its number, so a placeholder may be repeated or appear out of order.

mod error;
pub(crate) mod fast;
mod ops;
mod pgbatch;
mod rows;
pub mod testing;
pub mod writer;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Executor, Row, Transaction};

pub use crate::config::sqlite_url;
pub use error::StoreError;
pub use writer::{WriterHandle, WriterStats};

use crate::model::{
    AuditRecord, Challenge, EmergencyAccess, EmergencyKind, FixedPasscode, HashAlgorithm,
    OfflineCode, OtpMode, PinState, PrincipalRecord, Token, TokenId, TokenKind, User, UserId,
};
use rows::{
    AUDIT_COLS, CHALLENGE_COLS, EMERGENCY_ACCESS_COLS, EMERGENCY_CODE_COLS, EMERGENCY_JOIN_COLS,
    FIXED_PASSCODE_COLS, OFFLINE_CODE_COLS, TOKEN_COLS, USER_COLS,
};

/// Migrations for SQLite, embedded at build time.
static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");
/// Migrations for PostgreSQL, embedded at build time.
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// The most rows one [`Store::changes_since`] call returns.
pub const CHANGES_PAGE: i64 = 10_000;

/// Page cache of the writer's SQLite connection, in KiB (SQLite's default is 2,000 KiB).
const SQLITE_WRITER_CACHE_KIB: u32 = 65_536;

/// SQLite's lock wait, also set as `PRAGMA busy_timeout`.
const SQLITE_BUSY_TIMEOUT_MS: u64 = 5_000;

/// Which database a [`Store`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file (or an in-memory database in tests).
    Sqlite,
    /// A PostgreSQL server, possibly shared by several gateway instances.
    Postgres,
}

impl Backend {
    /// Recognises the scheme of a database URL.
    pub fn from_url(url: &str) -> Result<Backend, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl {
                scheme: url.split(':').next().unwrap_or_default().to_owned(),
            })
        }
    }

    fn migrator(self) -> &'static Migrator {
        match self {
            Backend::Sqlite => &SQLITE_MIGRATOR,
            Backend::Postgres => &POSTGRES_MIGRATOR,
        }
    }
}

/// Connection-pool settings for [`Store::open_with`].
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Pool size; `None` picks the backend's default (SQLite file: 4, PostgreSQL: 8). An
    /// in-memory SQLite database always uses exactly one connection, since each connection would
    /// otherwise see a database of its own.
    pub max_connections: Option<u32>,
    /// How long to wait for a free pooled connection before failing.
    pub acquire_timeout: Duration,
    /// SQLite files only: run WAL checkpoints on a background task this often instead of in
    /// the connection that happens to commit past the WAL size limit. The gateway sets it so
    /// that no group commit (and so no Accept) waits for a checkpoint; short-lived commands
    /// keep SQLite's automatic checkpoints. See `checkpoint_loop`.
    pub background_checkpoint: Option<Duration>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: None,
            acquire_timeout: Duration::from_secs(10),
            background_checkpoint: None,
        }
    }
}

/// SQLite's automatic checkpoint threshold (WAL pages) while a background checkpointer runs: a
/// safety net far above what the checkpointer lets the WAL reach, so commits almost never run
/// a checkpoint themselves, yet the WAL stays bounded (about 40 MiB) if the checkpointer
/// cannot keep up.
const SQLITE_AUTOCHECKPOINT_WITH_BACKGROUND: u32 = 10_000;

/// A token to create with [`Store::create_token`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    /// Serial number (unique).
    pub serial: String,
    /// Owner, if assigned at creation.
    pub user_id: Option<UserId>,
    /// PIN token or app token.
    pub kind: TokenKind,
    /// HMAC algorithm.
    pub algorithm: HashAlgorithm,
    /// Code length.
    pub digits: u8,
    /// TOTP (step > 0) or HOTP.
    pub mode: OtpMode,
    /// Seed, already encrypted under the master key.
    pub seed_enc: Vec<u8>,
    /// Expiry, if any.
    pub expires_at: Option<i64>,
    /// Keyed hash of the PIN, if one is set.
    pub pin_hash: Option<String>,
    /// Initial PIN state.
    pub pin_state: PinState,
}

/// A user and their first token, for [`Store::create_users_with_tokens`] (bulk provisioning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUserWithToken {
    /// Normalised login name (unique).
    pub name: String,
    /// Security domain.
    pub domain: String,
    /// Reply profile, if any.
    pub profile: Option<String>,
    /// The token; its `user_id` is ignored (the new user owns it).
    pub token: NewToken,
}

/// Rows a caller of [`Store::create_users_with_tokens`] should pass per call (one transaction).
pub const BULK_CHUNK: usize = 5_000;

/// Rows per multi-row `INSERT` in bulk provisioning. Far below SQLite's 32,766 and PostgreSQL's
/// 65,535 bind parameters per statement. With `$N` placeholders sqlx's SQLite driver looked
/// each one up with `sqlite3_bind_parameter_name`, so binding grew with the square of the
/// parameter count (at 1,000 rows it took 77 % of `populate`'s CPU); SQLite now gets `?`
/// placeholders ([`values_list`]) and this size is kept because larger ones bought nothing.
const BULK_ROWS_PER_STATEMENT: usize = 100;

/// Handle on the database: a connection pool plus the backend it talks to. Cheap to clone; all
/// clones share the pool.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// A SQLite file store's path and automatic-checkpoint setting, for the writer's own
    /// connection ([`fast::FastWriter`]); `None` for PostgreSQL and in-memory SQLite.
    sqlite_file: Option<Arc<(PathBuf, Option<u32>)>>,
    /// Shared by the background checkpointer and the writer's own connection.
    wal: Arc<WalRestart>,
}

/// How the background checkpointer gets the WAL restarted without stalling the writer.
///
/// A `RESTART` checkpoint takes the write lock for the whole copy and database fsync (measured:
/// 1.3 to 2.2 s under load, with every Accept waiting behind it). When the writer's own
/// connection runs ([`fast::FastWriter`]), the checkpointer instead asks it, through this flag,
/// to run one `PASSIVE` checkpoint between two of its batches: with no writer running
/// concurrently it catches up completely (copying only what was committed since the
/// checkpointer's own pass), and the writer's next transaction starts the WAL over.
#[derive(Debug, Default)]
pub(crate) struct WalRestart {
    /// Own writer connections open now.
    pub(crate) writers: std::sync::atomic::AtomicUsize,
    /// Set by the checkpointer, taken by the writer.
    pub(crate) wanted: std::sync::atomic::AtomicBool,
}

/// Splits a SQLite URL into its normalised form (`mode=rwc` added unless a mode is given) and
/// whether it names an in-memory database.
fn normalise_sqlite_url(url: &str) -> (String, bool) {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (db, params) = match rest.split_once('?') {
        Some((db, params)) => (db, Some(params)),
        None => (rest, None),
    };
    let has_param = |name: &str| {
        params.is_some_and(|p| p.split('&').any(|kv| kv.split('=').next() == Some(name)))
    };
    let memory = db.is_empty()
        || db == ":memory:"
        || params.is_some_and(|p| p.split('&').any(|kv| kv == "mode=memory"));
    if memory || has_param("mode") {
        (url.to_owned(), memory)
    } else if params.is_some() {
        (format!("{url}&mode=rwc"), false)
    } else {
        (format!("{url}?mode=rwc"), false)
    }
}

/// The file a `sqlite:` URL names, percent-decoded as sqlx decodes it; `None` for an
/// in-memory database or a path that does not decode.
fn sqlite_file_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let db = rest.split_once('?').map_or(rest, |(db, _)| db);
    if db.is_empty() || db == ":memory:" {
        return None;
    }
    let bytes = db.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Some(PathBuf::from(String::from_utf8(out).ok()?))
}

impl Store {
    /// Opens `sqlite://path/to/file.db` (also `sqlite:path`, or `sqlite::memory:` for tests) or
    /// `postgres://…`/`postgresql://…` with default pool settings, and runs the migrations.
    ///
    /// SQLite files are created when missing and run in WAL mode with `synchronous=FULL` (a
    /// committed write survives a process kill and a power loss), a 5 s busy timeout and
    /// foreign keys on.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, &StoreOptions::default()).await
    }

    /// [`Store::open`] with explicit pool settings.
    pub async fn open_with(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let mut sqlite_file = None;
        let wal = Arc::new(WalRestart::default());
        let pool = match backend {
            Backend::Sqlite => {
                let file = sqlite_file_path(url);
                let (url, memory) = normalise_sqlite_url(url);
                let connect = AnyConnectOptions::from_str(&url)?;
                let background = options.background_checkpoint.filter(|_| !memory);
                let autocheckpoint = background.map(|_| SQLITE_AUTOCHECKPOINT_WITH_BACKGROUND);
                if !memory {
                    sqlite_file = file.map(|f| Arc::new((f, autocheckpoint)));
                }
                let mut pool = AnyPoolOptions::new()
                    .acquire_timeout(options.acquire_timeout)
                    .after_connect(move |conn, _meta| {
                        Box::pin(async move { sqlite_pragmas(conn, memory, autocheckpoint).await })
                    });
                pool = if memory {
                    // The Any driver re-parses the URL for every connection, and each parse of
                    // `:memory:` names a new private database: keep exactly one connection alive.
                    pool.max_connections(1)
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None)
                } else {
                    pool.max_connections(options.max_connections.unwrap_or(4))
                };
                pool.connect_with(connect).await?
            }
            Backend::Postgres => {
                let connect = AnyConnectOptions::from_str(url)?;
                AnyPoolOptions::new()
                    .acquire_timeout(options.acquire_timeout)
                    .max_connections(options.max_connections.unwrap_or(8))
                    .connect_with(connect)
                    .await?
            }
        };
        backend.migrator().run(&pool).await?;
        tracing::debug!(?backend, "store opened and migrated");
        if let (Backend::Sqlite, Some(every)) = (backend, options.background_checkpoint) {
            if !normalise_sqlite_url(url).1 {
                tokio::spawn(checkpoint_loop(pool.clone(), every, Arc::clone(&wal)));
            }
        }
        Ok(Store {
            pool,
            backend,
            sqlite_file,
            wal,
        })
    }

    /// The database this store talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes the pool, waiting for checked-out connections to come back. Every clone of this
    /// store is closed with it.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A pooled connection for the group-commit writer to keep (see [`Store::apply_batch_on`]).
    /// On SQLite its page cache is raised to `SQLITE_WRITER_CACHE_KIB`, so the token pages the
    /// replay guards update are found in memory instead of being read back from the file.
    pub async fn writer_connection(&self) -> Result<PoolConnection<Any>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        if self.backend == Backend::Sqlite {
            conn.execute(format!("PRAGMA cache_size = -{SQLITE_WRITER_CACHE_KIB}").as_str())
                .await?;
        }
        Ok(conn)
    }

    /// Whether the group-commit writer may keep a connection of its own: only when the pool has
    /// room for others (an in-memory SQLite store has exactly one connection).
    pub fn writer_keeps_connection(&self) -> bool {
        self.pool.options().get_max_connections() > 1
    }

    /// The group-commit writer's own SQLite connection, without sqlx (see [`fast`]); `None`
    /// when this store is not a SQLite file.
    pub(crate) fn fast_writer(&self) -> Option<Result<fast::FastWriter, StoreError>> {
        let file = self.sqlite_file.as_ref()?;
        Some(fast::FastWriter::open(
            &file.0,
            file.1,
            Arc::clone(&self.wal),
        ))
    }

    /// Whether [`Store::close`] has been called.
    pub fn is_closed(&self) -> bool {
        self.pool.is_closed()
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Begins a transaction that will write. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`), so the busy timeout applies to the whole transaction instead of
    /// failing at its first write with `SQLITE_BUSY` when another connection got there first.
    async fn begin_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Begins an admin transaction: one that appends to the change feed. On PostgreSQL it first
    /// locks `changes` against other writers, so feed entries commit in `seq` order and a poller
    /// that has seen `seq = n` can never later find a smaller `seq` appear. (Without the lock a
    /// transaction that drew `seq = 5` could commit after one that drew 6.) SQLite's single
    /// writer gives the same order for free. Admin writes are rare; readers are not blocked.
    async fn begin_admin(&self) -> Result<Transaction<'static, Any>, StoreError> {
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            tx.execute("LOCK TABLE changes IN EXCLUSIVE MODE").await?;
        }
        Ok(tx)
    }

    // ----- users -------------------------------------------------------------------------

    /// Creates a user; `Conflict` when the name is taken. Appends the new id to the change feed.
    pub async fn create_user(
        &self,
        name: &str,
        domain: &str,
        profile: Option<&str>,
        now: i64,
    ) -> Result<User, StoreError> {
        let mut tx = self.begin_admin().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO users (name, domain, profile, created_at) VALUES ($1, $2, $3, $4) \
             RETURNING {USER_COLS}"
        ))
        .bind(name)
        .bind(domain)
        .bind(profile)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            StoreError::from_write(e, || {
                (format!("user {name:?}"), format!("domain {domain:?}"))
            })
        })?;
        let user = rows::user(&row)?;
        note_change(&mut tx, user.id, now).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// The user with this (normalised) name.
    pub async fn user_by_name(&self, name: &str) -> Result<Option<User>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        user_by_name(&mut conn, name).await
    }

    /// The user with this id.
    pub async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(rows::user)
            .transpose()
    }

    /// All users, ordered by name.
    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        sqlx::query(&format!("SELECT {USER_COLS} FROM users ORDER BY name"))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(rows::user)
            .collect()
    }

    /// Locks (setting `locked_at = now`) or unlocks a user. Unlocking also clears the failure
    /// count, the failure window and `locked_at`. `NotFound` when there is no such user.
    /// Appends the user to the change feed.
    pub async fn set_user_locked(
        &self,
        id: UserId,
        locked: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_admin().await?;
        let done = if locked {
            sqlx::query("UPDATE users SET locked = 1, locked_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?
        } else {
            sqlx::query(
                "UPDATE users SET locked = 0, locked_at = NULL, fail_count = 0, \
                 fail_window_start = 0 WHERE id = $1",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?
        };
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: format!("user {id}"),
            });
        }
        note_change(&mut tx, id, now).await?;
        tx.commit().await?;
        Ok(())
    }

    // ----- tokens ------------------------------------------------------------------------

    /// Creates a token; `Conflict` when the serial is taken, `NotFound` when the owner does not
    /// exist, `Invalid` for a TOTP step of 0. Appends the owner, if any, to the change feed.
    pub async fn create_token(&self, t: &NewToken, now: i64) -> Result<Token, StoreError> {
        let period = rows::period_of(t.mode)?;
        let mut tx = self.begin_admin().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO tokens (serial, user_id, kind, algorithm, digits, period, seed_enc, \
             expires_at, pin_hash, pin_state, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {TOKEN_COLS}"
        ))
        .bind(t.serial.as_str())
        .bind(t.user_id)
        .bind(t.kind.as_str())
        .bind(t.algorithm.as_str())
        .bind(i64::from(t.digits))
        .bind(period)
        .bind(t.seed_enc.as_slice())
        .bind(t.expires_at)
        .bind(t.pin_hash.as_deref())
        .bind(t.pin_state.as_str())
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            StoreError::from_write(e, || {
                (
                    format!("token {:?}", t.serial),
                    format!("user {}", t.user_id.unwrap_or_default()),
                )
            })
        })?;
        let token = rows::token(&row)?;
        if let Some(owner) = token.user_id {
            note_change(&mut tx, owner, now).await?;
        }
        tx.commit().await?;
        Ok(token)
    }

    /// Bulk provisioning: creates every user with its token in ONE transaction, with multi-row
    /// `INSERT`s of up to 100 rows, and appends every new user to the change feed (so a
    /// running gateway that remembered one of the names as unknown forgets that). Meant for
    /// load tests and migrations; pass at most [`BULK_CHUNK`] entries per call to keep each
    /// transaction short. All or nothing: `Conflict` (nothing written) when a name or serial is
    /// taken, also within the batch; `Invalid` for a TOTP step of 0. Returns the users created,
    /// in the order given.
    pub async fn create_users_with_tokens(
        &self,
        batch: &[NewUserWithToken],
        now: i64,
    ) -> Result<Vec<User>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let periods = batch
            .iter()
            .map(|b| rows::period_of(b.token.mode))
            .collect::<Result<Vec<_>, _>>()?;
        let conflict = || {
            (
                format!(
                    "a user name or token serial of the batch starting with {:?}",
                    batch.first().map(|b| b.name.as_str()).unwrap_or_default()
                ),
                "a user of the batch".to_owned(),
            )
        };
        let mut tx = self.begin_admin().await?;
        let mut by_name = std::collections::HashMap::with_capacity(batch.len());
        for chunk in batch.chunks(BULK_ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO users (name, domain, profile, created_at) VALUES {} \
                 RETURNING {USER_COLS}",
                values_list(chunk.len(), 4, self.backend())
            );
            let mut q = sqlx::query(&sql);
            for b in chunk {
                q = q
                    .bind(b.name.as_str())
                    .bind(b.domain.as_str())
                    .bind(b.profile.as_deref())
                    .bind(now);
            }
            // RETURNING gives no row order guarantee on SQLite: match users by name.
            for row in q
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| StoreError::from_write(e, conflict))?
            {
                let user = rows::user(&row)?;
                by_name.insert(user.name.clone(), user);
            }
        }
        let users = batch
            .iter()
            .map(|b| {
                by_name.remove(&b.name).ok_or_else(|| StoreError::Corrupt {
                    what: format!("bulk insert returned no row for user {:?}", b.name),
                })
            })
            .collect::<Result<Vec<User>, _>>()?;
        for (i, chunk) in batch.chunks(BULK_ROWS_PER_STATEMENT).enumerate() {
            let sql = format!(
                "INSERT INTO tokens (serial, user_id, kind, algorithm, digits, period, seed_enc, \
                 expires_at, pin_hash, pin_state, created_at) VALUES {}",
                values_list(chunk.len(), 11, self.backend())
            );
            let mut q = sqlx::query(&sql);
            let first = i * BULK_ROWS_PER_STATEMENT;
            for (j, b) in chunk.iter().enumerate() {
                let t = &b.token;
                q = q
                    .bind(t.serial.as_str())
                    .bind(users[first + j].id)
                    .bind(t.kind.as_str())
                    .bind(t.algorithm.as_str())
                    .bind(i64::from(t.digits))
                    .bind(periods[first + j])
                    .bind(t.seed_enc.as_slice())
                    .bind(t.expires_at)
                    .bind(t.pin_hash.as_deref())
                    .bind(t.pin_state.as_str())
                    .bind(now);
            }
            q.execute(&mut *tx)
                .await
                .map_err(|e| StoreError::from_write(e, conflict))?;
        }
        for chunk in users.chunks(BULK_ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO changes (user_id, at) VALUES {}",
                values_list(chunk.len(), 2, self.backend())
            );
            let mut q = sqlx::query(&sql);
            for u in chunk {
                q = q.bind(u.id).bind(now);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(users)
    }

    /// The token with this serial.
    pub async fn token_by_serial(&self, serial: &str) -> Result<Option<Token>, StoreError> {
        sqlx::query(&format!(
            "SELECT {TOKEN_COLS} FROM tokens WHERE serial = $1"
        ))
        .bind(serial)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(rows::token)
        .transpose()
    }

    /// The tokens assigned to a user, ordered by id.
    pub async fn tokens_of_user(&self, user_id: UserId) -> Result<Vec<Token>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        tokens_of_user(&mut conn, user_id).await
    }

    /// All tokens, ordered by id.
    pub async fn list_tokens(&self) -> Result<Vec<Token>, StoreError> {
        sqlx::query(&format!("SELECT {TOKEN_COLS} FROM tokens ORDER BY id"))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(rows::token)
            .collect()
    }

    /// Assigns a token to a user, or unassigns it with `None`. `NotFound` when the token or the
    /// new owner does not exist. Appends both the old and the new owner to the change feed.
    pub async fn assign_token(
        &self,
        token_id: TokenId,
        user_id: Option<UserId>,
    ) -> Result<(), StoreError> {
        let now = crate::clock::unix_now();
        let mut tx = self.begin_admin().await?;
        // Admin transactions are serialised (see `begin_admin`) and the packet path never
        // changes an owner, so the owner read here is still current when the update runs.
        let old = sqlx::query("SELECT user_id FROM tokens WHERE id = $1")
            .bind(token_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: format!("token {token_id}"),
            })?;
        let old: Option<UserId> = old.try_get("user_id").map_err(|e| StoreError::Corrupt {
            what: format!("tokens.user_id: {e}"),
        })?;
        sqlx::query("UPDATE tokens SET user_id = $2 WHERE id = $1")
            .bind(token_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                StoreError::from_write(e, || {
                    (
                        format!("token {token_id}"),
                        format!("user {}", user_id.unwrap_or_default()),
                    )
                })
            })?;
        if let Some(old) = old {
            note_change(&mut tx, old, now).await?;
        }
        if let Some(new) = user_id.filter(|new| Some(*new) != old) {
            note_change(&mut tx, new, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Admin PIN change or reset: sets the PIN hash (or clears it) and the PIN state.
    /// `NotFound` when there is no such token. Appends the owner to the change feed.
    pub async fn set_pin(
        &self,
        token_id: TokenId,
        pin_hash: Option<&str>,
        state: PinState,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_admin().await?;
        let done = sqlx::query("UPDATE tokens SET pin_hash = $2, pin_state = $3 WHERE id = $1")
            .bind(token_id)
            .bind(pin_hash)
            .bind(state.as_str())
            .execute(&mut *tx)
            .await?;
        finish_token_change(tx, token_id, done.rows_affected()).await
    }

    /// Admin resynchronisation (SPEC D-2): sets the last accepted step or counter and the drift
    /// found, and clears the bad-passcode count. The store sets what it is given, even a step
    /// lower than the stored one: the engine decides whether that is allowed. `NotFound` when
    /// there is no such token. Appends the owner to the change feed.
    pub async fn set_sync(
        &self,
        token_id: TokenId,
        last_step: i64,
        drift: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_admin().await?;
        let done = sqlx::query(
            "UPDATE tokens SET last_step = $2, drift = $3, bad_count = 0 WHERE id = $1",
        )
        .bind(token_id)
        .bind(last_step)
        .bind(drift)
        .execute(&mut *tx)
        .await?;
        finish_token_change(tx, token_id, done.rows_affected()).await
    }

    // ----- emergency access, offline codes, fixed passcodes (SPEC §6–§8) ----------------

    /// Issues online emergency access for a token (SPEC E-1): replaces any previous access of
    /// the token, deleting its codes, and stores this one with its codes, in one transaction.
    /// Returns it as stored, with the code ids filled in (in the order given).
    ///
    /// `Invalid` (nothing written) for an access without codes or a TFT with more than one code
    /// (SPEC E-1: a TFT is one code). `NotFound` when the token does not exist. Whether the token
    /// may get emergency access (assigned, not expired) and the lifetime cap (E-2) are the
    /// caller's to check. Appends the token's owner, if any, to the change feed.
    pub async fn issue_emergency(
        &self,
        access: &EmergencyAccess,
        now: i64,
    ) -> Result<EmergencyAccess, StoreError> {
        let token_id = access.token_id;
        if access.codes.is_empty() {
            return Err(StoreError::Invalid {
                what: format!("emergency access for token {token_id} without codes"),
            });
        }
        if access.kind == EmergencyKind::Tft && access.codes.len() != 1 {
            return Err(StoreError::Invalid {
                what: format!(
                    "TFT for token {token_id} with {} codes (a TFT is one code)",
                    access.codes.len()
                ),
            });
        }
        let what = || {
            (
                format!("emergency access of token {token_id}"),
                format!("token {token_id}"),
            )
        };
        let mut tx = self.begin_admin().await?;
        ops::clear_emergency(&mut tx, token_id).await?;
        let row = sqlx::query(&format!(
            "INSERT INTO emergency_access (token_id, mode, kind, rule, expires_at, issued_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {EMERGENCY_ACCESS_COLS}"
        ))
        .bind(token_id)
        .bind(access.mode.as_str())
        .bind(access.kind.as_str())
        .bind(access.rule.as_str())
        .bind(access.expires_at)
        .bind(access.issued_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| StoreError::from_write(e, what))?;
        let mut stored = rows::emergency_access(&row)?;
        stored.codes.reserve(access.codes.len());
        for code in &access.codes {
            // One statement per code, so the ids come back in the order given; sets are small.
            let row = sqlx::query(&format!(
                "INSERT INTO emergency_codes (token_id, code_hash, used_at) VALUES ($1, $2, $3) \
                 RETURNING {EMERGENCY_CODE_COLS}"
            ))
            .bind(token_id)
            .bind(code.code_hash.as_str())
            .bind(code.used_at)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| StoreError::from_write(e, what))?;
            stored.codes.push(rows::emergency_code(&row)?);
        }
        note_token_change(&mut tx, token_id, now).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// The token's online emergency access with its codes (in id order), expired or not: the
    /// engine checks [`EmergencyAccess::active`]. One statement, so the access and its codes are
    /// read from one snapshot.
    pub async fn emergency_of(
        &self,
        token_id: TokenId,
    ) -> Result<Option<EmergencyAccess>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {EMERGENCY_JOIN_COLS} FROM emergency_access a \
             LEFT JOIN emergency_codes c ON c.token_id = a.token_id \
             WHERE a.token_id = $1 ORDER BY a.token_id, c.id"
        ))
        .bind(token_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows::emergency_accesses(&rows)?.into_iter().next())
    }

    /// Deletes the token's online emergency access and its codes; `true` when there was
    /// something to delete (then the token's owner, if any, is appended to the change feed). An
    /// unknown token is not an error: there is nothing to delete.
    pub async fn clear_emergency(&self, token_id: TokenId, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.begin_admin().await?;
        let deleted = ops::clear_emergency(&mut tx, token_id).await? > 0;
        if deleted {
            note_token_change(&mut tx, token_id, now).await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }

    /// Stores an offline emergency code (SPEC O-2, O-3): the tokencode of `code.token_id` or the
    /// passcode of `code.user_id`, replacing that owner's previous code (every field, including
    /// `created_at`). `Invalid` unless exactly one of the two is set; `NotFound` when the owner
    /// does not exist. Appends the user (or the token's owner, if any) to the change feed.
    pub async fn set_offline_code(&self, code: &OfflineCode, now: i64) -> Result<(), StoreError> {
        // `excluded` names the proposed row in both SQLite and PostgreSQL upserts.
        const UPDATE: &str = "code_enc = excluded.code_enc, expires_at = excluded.expires_at, \
             reset = excluded.reset, online = excluded.online, created_at = excluded.created_at";
        let (sql, owner, what) = match (code.token_id, code.user_id) {
            (Some(token_id), None) => (
                format!(
                    "INSERT INTO offline_codes (token_id, user_id, code_enc, expires_at, reset, \
                     online, created_at) VALUES ($1, NULL, $2, $3, $4, $5, $6) \
                     ON CONFLICT (token_id) DO UPDATE SET {UPDATE}"
                ),
                token_id,
                format!("token {token_id}"),
            ),
            (None, Some(user_id)) => (
                format!(
                    "INSERT INTO offline_codes (token_id, user_id, code_enc, expires_at, reset, \
                     online, created_at) VALUES (NULL, $1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (user_id) DO UPDATE SET {UPDATE}"
                ),
                user_id,
                format!("user {user_id}"),
            ),
            (token_id, user_id) => {
                return Err(StoreError::Invalid {
                    what: format!(
                        "offline code owned by token {token_id:?} and user {user_id:?} \
                         (exactly one must be set)"
                    ),
                })
            }
        };
        let mut tx = self.begin_admin().await?;
        sqlx::query(&sql)
            .bind(owner)
            .bind(code.code_enc.as_slice())
            .bind(code.expires_at)
            .bind(rows::flag(code.reset))
            .bind(rows::flag(code.online))
            .bind(code.created_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::from_write(e, || (format!("offline code of {what}"), what)))?;
        match code.token_id {
            Some(token_id) => note_token_change(&mut tx, token_id, now).await?,
            None => note_change(&mut tx, owner, now).await?,
        }
        tx.commit().await?;
        Ok(())
    }

    /// The offline emergency tokencode of a token, expired or not.
    pub async fn offline_code_of_token(
        &self,
        token_id: TokenId,
    ) -> Result<Option<OfflineCode>, StoreError> {
        sqlx::query(&format!(
            "SELECT {OFFLINE_CODE_COLS} FROM offline_codes WHERE token_id = $1"
        ))
        .bind(token_id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(rows::offline_code)
        .transpose()
    }

    /// The offline emergency passcode of a user, expired or not.
    pub async fn offline_code_of_user(
        &self,
        user_id: UserId,
    ) -> Result<Option<OfflineCode>, StoreError> {
        sqlx::query(&format!(
            "SELECT {OFFLINE_CODE_COLS} FROM offline_codes WHERE user_id = $1"
        ))
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(rows::offline_code)
        .transpose()
    }

    /// Sets whether a token's offline emergency tokencode is also accepted online (SPEC O-4).
    /// `NotFound` when the token has no offline code. Appends the token's owner, if any, to the
    /// change feed.
    pub async fn set_offline_online(
        &self,
        token_id: TokenId,
        online: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_admin().await?;
        let done = sqlx::query("UPDATE offline_codes SET online = $2 WHERE token_id = $1")
            .bind(token_id)
            .bind(rows::flag(online))
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: format!("offline code of token {token_id}"),
            });
        }
        note_token_change(&mut tx, token_id, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores a user's fixed passcode settings (SPEC FP-1), replacing any previous ones.
    /// `NotFound` when the user does not exist. Appends the user to the change feed.
    pub async fn set_fixed_passcode(&self, fp: &FixedPasscode, now: i64) -> Result<(), StoreError> {
        let user_id = fp.user_id;
        let mut tx = self.begin_admin().await?;
        sqlx::query(
            "INSERT INTO fixed_passcodes (user_id, allowed, code_hash, expires_at, set_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id) DO UPDATE SET \
             allowed = excluded.allowed, code_hash = excluded.code_hash, \
             expires_at = excluded.expires_at, set_at = excluded.set_at",
        )
        .bind(user_id)
        .bind(rows::flag(fp.allowed))
        .bind(fp.code_hash.as_deref())
        .bind(fp.expires_at)
        .bind(fp.set_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            StoreError::from_write(e, || {
                (
                    format!("fixed passcode of user {user_id}"),
                    format!("user {user_id}"),
                )
            })
        })?;
        note_change(&mut tx, user_id, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A user's fixed passcode settings, expired or not.
    pub async fn fixed_passcode(
        &self,
        user_id: UserId,
    ) -> Result<Option<FixedPasscode>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        fixed_passcode(&mut conn, user_id).await
    }

    /// Deletes a user's fixed passcode settings; `true` when there were some (then the user is
    /// appended to the change feed).
    pub async fn clear_fixed_passcode(
        &self,
        user_id: UserId,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_admin().await?;
        let done = sqlx::query("DELETE FROM fixed_passcodes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let deleted = done.rows_affected() > 0;
        if deleted {
            note_change(&mut tx, user_id, now).await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }

    // ----- hot-path reads ----------------------------------------------------------------

    /// A user and the tokens assigned to them, or `None` for an unknown name. Two reads on one
    /// connection; an admin change between them is caught by the change feed.
    pub async fn load_principal(
        &self,
        name: &str,
    ) -> Result<Option<(User, Vec<Token>)>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let Some(user) = user_by_name(&mut conn, name).await? else {
            return Ok(None);
        };
        let tokens = tokens_of_user(&mut conn, user.id).await?;
        Ok(Some((user, tokens)))
    }

    /// Everything the engine needs about a user, or `None` for an unknown name: the user, their
    /// tokens (by id), the online emergency access of those tokens (by token id, codes by id),
    /// the offline emergency codes of the user and of those tokens (by id) and the user's fixed
    /// passcode settings. Expired rows are included: the engine judges expiry.
    ///
    /// Reads on one connection, not one snapshot: emergency and offline rows are kept only for
    /// tokens in the returned list, so a token reassigned between the reads never brings
    /// another user's codes along; any admin change between the reads is caught by the change
    /// feed. The user's row comes with whether they have emergency access, offline codes or a
    /// fixed passcode at all, so the usual user (none of these) costs two reads, not five: this
    /// is every first login after a start.
    pub async fn load_principal_record(
        &self,
        name: &str,
    ) -> Result<Option<PrincipalRecord>, StoreError> {
        if !rows::can_exist(name) {
            return Ok(None);
        }
        let mut conn = self.pool.acquire().await?;
        let Some(row) = sqlx::query(&format!(
            "SELECT {USER_COLS}, \
             CASE WHEN EXISTS (SELECT 1 FROM emergency_access a JOIN tokens t \
               ON t.id = a.token_id WHERE t.user_id = users.id) THEN 1 ELSE 0 END \
               AS has_emergency, \
             CASE WHEN EXISTS (SELECT 1 FROM offline_codes o WHERE o.user_id = users.id) \
               OR EXISTS (SELECT 1 FROM offline_codes o JOIN tokens t ON t.id = o.token_id \
               WHERE t.user_id = users.id) THEN 1 ELSE 0 END AS has_offline, \
             CASE WHEN EXISTS (SELECT 1 FROM fixed_passcodes f WHERE f.user_id = users.id) \
               THEN 1 ELSE 0 END AS has_fixed \
             FROM users WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?
        else {
            return Ok(None);
        };
        let user = rows::user(&row)?;
        let has_emergency = rows::get_bool(&row, "users", "has_emergency")?;
        let has_offline = rows::get_bool(&row, "users", "has_offline")?;
        let has_fixed = rows::get_bool(&row, "users", "has_fixed")?;
        let tokens = tokens_of_user(&mut conn, user.id).await?;
        let is_mine = |token_id: TokenId| tokens.iter().any(|t| t.id == token_id);

        let mut emergency = Vec::new();
        if has_emergency {
            let rows = sqlx::query(&format!(
                "SELECT {EMERGENCY_JOIN_COLS} FROM emergency_access a \
                 JOIN tokens t ON t.id = a.token_id \
                 LEFT JOIN emergency_codes c ON c.token_id = a.token_id \
                 WHERE t.user_id = $1 ORDER BY a.token_id, c.id"
            ))
            .bind(user.id)
            .fetch_all(&mut *conn)
            .await?;
            emergency = rows::emergency_accesses(&rows)?;
            emergency.retain(|a| is_mine(a.token_id));
        }

        let mut offline = Vec::new();
        if has_offline {
            offline = sqlx::query(&format!(
                "SELECT {OFFLINE_CODE_COLS} FROM offline_codes \
                 WHERE user_id = $1 OR token_id IN (SELECT id FROM tokens WHERE user_id = $1) \
                 ORDER BY id"
            ))
            .bind(user.id)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(rows::offline_code)
            .collect::<Result<Vec<_>, _>>()?;
            offline.retain(|o| match o.token_id {
                Some(token_id) => is_mine(token_id),
                None => o.user_id == Some(user.id),
            });
        }

        let fixed_passcode = if has_fixed {
            fixed_passcode(&mut conn, user.id).await?
        } else {
            None
        };
        Ok(Some(PrincipalRecord {
            user,
            tokens,
            emergency,
            offline,
            fixed_passcode,
        }))
    }

    /// The challenge session with this State, expired or not: the engine checks `expires_at`.
    pub async fn challenge(&self, state: &str) -> Result<Option<Challenge>, StoreError> {
        if !rows::can_exist(state) {
            return Ok(None);
        }
        sqlx::query(&format!(
            "SELECT {CHALLENGE_COLS} FROM challenges WHERE state = $1"
        ))
        .bind(state)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(rows::challenge)
        .transpose()
    }

    /// Deletes challenge sessions with `expires_at <= now`; returns how many.
    pub async fn purge_expired_challenges(&self, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM challenges WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    // ----- change feed -------------------------------------------------------------------

    /// Change-feed entries after `seq`, ascending, at most [`CHANGES_PAGE`]: `(seq, user id)`.
    /// A user may appear several times. Call again from the last `seq` while a full page comes
    /// back.
    pub async fn changes_since(&self, seq: i64) -> Result<Vec<(i64, UserId)>, StoreError> {
        sqlx::query("SELECT seq, user_id FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(seq)
            .bind(CHANGES_PAGE)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                let seq = row.try_get::<i64, _>("seq");
                let user = row.try_get::<i64, _>("user_id");
                match (seq, user) {
                    (Ok(seq), Ok(user)) => Ok((seq, user)),
                    (Err(e), _) | (_, Err(e)) => Err(StoreError::Corrupt {
                        what: format!("changes: {e}"),
                    }),
                }
            })
            .collect()
    }

    /// The highest token id present, 0 without tokens (the range an unknown user's
    /// [`WriteOp::TouchToken`] picks from).
    pub async fn max_token_id(&self) -> Result<TokenId, StoreError> {
        self.max_of("SELECT MAX(id) AS latest FROM tokens", "tokens.id")
            .await
    }

    /// Runs a `SELECT MAX(…) AS latest` query; 0 when it finds no rows.
    async fn max_of(&self, sql: &'static str, what: &str) -> Result<i64, StoreError> {
        let row = sqlx::query(sql).fetch_one(&self.pool).await?;
        let latest: Option<i64> = row.try_get("latest").map_err(|e| StoreError::Corrupt {
            what: format!("{what}: {e}"),
        })?;
        Ok(latest.unwrap_or(0))
    }

    /// The highest change-feed `seq` present, 0 when the feed is empty. A gateway starting with
    /// a cold cache begins polling from here.
    pub async fn latest_change(&self) -> Result<i64, StoreError> {
        self.max_of("SELECT MAX(seq) AS latest FROM changes", "changes.seq")
            .await
    }

    /// Deletes change-feed entries with `at < at`; returns how many. `seq` numbers are never
    /// reused afterwards (AUTOINCREMENT / identity), so pollers' cursors stay valid.
    pub async fn purge_changes_before(&self, at: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM changes WHERE at < $1")
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    // ----- audit -------------------------------------------------------------------------

    /// Appends one audit record on its own (admin actions). Authentications are audited through
    /// [`WriteOp::Audit`] in the packet-path batch instead.
    pub async fn insert_audit(&self, r: &AuditRecord) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        ops::insert_audit(&mut conn, r).await?;
        crate::audit::log::emit(r);
        Ok(())
    }

    /// One page of the audit log for export: records with `since <= at < until` that come after
    /// `after` in (`at`, id) order, at most `limit`. Pass the last record's cursor to get the next
    /// page; `AuditCursor::start(since)` for the first. Paging by key keeps memory bounded and
    /// holds no read transaction open between pages (SQLite writers are not blocked).
    pub async fn audit_page(
        &self,
        after: AuditCursor,
        until: i64,
        limit: i64,
    ) -> Result<Vec<(AuditCursor, AuditRecord)>, StoreError> {
        sqlx::query(&format!(
            "SELECT id, {AUDIT_COLS} FROM audit \
             WHERE at >= $1 AND at < $2 AND (at > $1 OR id > $3) \
             ORDER BY at, id LIMIT $4"
        ))
        .bind(after.at)
        .bind(until)
        .bind(after.id)
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            let rec = rows::audit(row)?;
            let id: i64 = rows::get(row, "audit", "id")?;
            Ok((AuditCursor { at: rec.at, id }, rec))
        })
        .collect()
    }

    /// Deletes at most `limit` audit records with `at < before` (oldest ids first); returns how
    /// many. Retention calls it in a loop so that no single transaction holds the database for
    /// long.
    pub async fn delete_audit_before(&self, before: i64, limit: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM audit WHERE id IN \
             (SELECT id FROM audit WHERE at < $1 ORDER BY id LIMIT $2)",
        )
        .bind(before)
        .bind(limit.max(0))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Audit records with `at >= since`, in insertion order, at most `limit`.
    pub async fn audit_since(
        &self,
        since: i64,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        sqlx::query(&format!(
            "SELECT {AUDIT_COLS} FROM audit WHERE at >= $1 ORDER BY id LIMIT $2"
        ))
        .bind(since)
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(rows::audit)
        .collect()
    }
}

/// Where an audit export page ends: the (`at`, id) of its last record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditCursor {
    at: i64,
    id: i64,
}

impl AuditCursor {
    /// Before the first record with `at >= since`.
    pub fn start(since: i64) -> AuditCursor {
        AuditCursor {
            at: since,
            id: i64::MIN,
        }
    }
}

/// `($1, $2), ($3, $4), …` on PostgreSQL, `(?, ?), (?, ?), …` on SQLite: the VALUES list of a
/// multi-row statement of `rows` rows of `cols` placeholders each. SQLite gets anonymous
/// placeholders because sqlx's SQLite driver resolves each `$N` with
/// `sqlite3_bind_parameter_name`, a linear scan, which makes binding quadratic in the
/// parameter count; `?` binds in order without a lookup.
pub(crate) fn values_list(rows: usize, cols: usize, backend: Backend) -> String {
    let mut out = String::with_capacity(rows * cols * 6);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..cols {
            if c > 0 {
                out.push_str(", ");
            }
            match backend {
                Backend::Sqlite => out.push('?'),
                Backend::Postgres => {
                    out.push('$');
                    out.push_str(&(r * cols + c + 1).to_string());
                }
            }
        }
        out.push(')');
    }
    out
}

/// The backend of an open connection.
pub(crate) fn backend_of(conn: &AnyConnection) -> Backend {
    if conn.backend_name().eq_ignore_ascii_case("sqlite") {
        Backend::Sqlite
    } else {
        Backend::Postgres
    }
}

/// Appends one change-feed entry inside an admin transaction.
async fn note_change(conn: &mut AnyConnection, user_id: UserId, at: i64) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO changes (user_id, at) VALUES ($1, $2)")
        .bind(user_id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Appends the owner of a token, if it has one, to the change feed inside an admin transaction.
async fn note_token_change(
    conn: &mut AnyConnection,
    token_id: TokenId,
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO changes (user_id, at) \
         SELECT user_id, $2 FROM tokens WHERE id = $1 AND user_id IS NOT NULL",
    )
    .bind(token_id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

async fn fixed_passcode(
    conn: &mut AnyConnection,
    user_id: UserId,
) -> Result<Option<FixedPasscode>, StoreError> {
    sqlx::query(&format!(
        "SELECT {FIXED_PASSCODE_COLS} FROM fixed_passcodes WHERE user_id = $1"
    ))
    .bind(user_id)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(rows::fixed_passcode)
    .transpose()
}

/// Ends an admin update of one token: `NotFound` (rolling back) when no row matched, otherwise
/// appends the token's owner, if any, to the change feed and commits.
async fn finish_token_change(
    mut tx: Transaction<'static, Any>,
    token_id: TokenId,
    rows_affected: u64,
) -> Result<(), StoreError> {
    if rows_affected == 0 {
        return Err(StoreError::NotFound {
            what: format!("token {token_id}"),
        });
    }
    note_token_change(&mut tx, token_id, crate::clock::unix_now()).await?;
    tx.commit().await?;
    Ok(())
}

async fn user_by_name(conn: &mut AnyConnection, name: &str) -> Result<Option<User>, StoreError> {
    if !rows::can_exist(name) {
        return Ok(None);
    }
    sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE name = $1"))
        .bind(name)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(rows::user)
        .transpose()
}

async fn tokens_of_user(
    conn: &mut AnyConnection,
    user_id: UserId,
) -> Result<Vec<Token>, StoreError> {
    sqlx::query(&format!(
        "SELECT {TOKEN_COLS} FROM tokens WHERE user_id = $1 ORDER BY id"
    ))
    .bind(user_id)
    .fetch_all(conn)
    .await?
    .iter()
    .map(rows::token)
    .collect()
}

/// The background WAL checkpointer of a SQLite file store ([`StoreOptions::background_checkpoint`]),
/// until the pool closes.
///
/// Why: with SQLite's default, the connection whose commit grows the WAL past 1,000 pages runs
/// the checkpoint inside that commit: copying the pages into the database file and an fsync
/// (`synchronous=FULL`), while every request of the batch waits for its Accept and the next
/// batches queue behind it. Here a `PASSIVE` checkpoint runs on another pooled connection,
/// concurrently with the writer (it never takes the write lock and never waits for one), so the
/// WAL is copied back in small pieces and SQLite can restart it from the beginning once a
/// checkpoint has caught up. Durability is unchanged: commits still fsync the WAL.
async fn checkpoint_loop(pool: AnyPool, every: Duration, wal: Arc<WalRestart>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = pool.close_event() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = checkpoint_once(&pool, &wal).await {
            if pool.is_closed() {
                return;
            }
            tracing::warn!(error = %e, "background WAL checkpoint failed");
        }
    }
}

/// WAL pages after which the background checkpointer restarts the WAL (about 16 MiB).
const SQLITE_WAL_RESTART_PAGES: i64 = 4_096;

/// One round of the background checkpointer: a `PASSIVE` checkpoint copies what it can without
/// blocking anyone. Under steady writes it never catches up exactly when a new transaction
/// starts, so SQLite would never start the WAL over and it would grow to the automatic
/// threshold. Once the WAL holds [`SQLITE_WAL_RESTART_PAGES`]: when the writer has its own
/// connection, it is asked to finish the job between two batches ([`WalRestart`]); otherwise a
/// `RESTART` checkpoint copies the pages written since the passive one (holding writers back
/// for that) and makes the next writer start the WAL from the beginning.
async fn checkpoint_once(pool: &AnyPool, wal: &WalRestart) -> Result<(), sqlx::Error> {
    use std::sync::atomic::Ordering::Relaxed;
    let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await?;
    let log: i64 = row.try_get(1)?;
    if log >= SQLITE_WAL_RESTART_PAGES {
        if wal.writers.load(Relaxed) > 0 {
            wal.wanted.store(true, Relaxed);
        } else {
            sqlx::query("PRAGMA wal_checkpoint(RESTART)")
                .execute(pool)
                .await?;
        }
    }
    Ok(())
}

/// Connection setup for SQLite, run on every new pooled connection. The busy timeout goes first
/// so the journal-mode switch waits for a lock instead of failing. `autocheckpoint` replaces
/// SQLite's WAL size threshold for automatic checkpoints (pages) when a background checkpointer
/// runs.
async fn sqlite_pragmas(
    conn: &mut AnyConnection,
    memory: bool,
    autocheckpoint: Option<u32>,
) -> Result<(), sqlx::Error> {
    conn.execute(format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}").as_str())
        .await?;
    if !memory {
        // 1 KiB pages instead of 4: the packet path updates one small token row per Accept, at
        // random, and SQLite writes each changed page whole into the WAL (and the checkpoint
        // writes it again into the file), so smaller pages cut both. Measured: 1.3x the peak
        // throughput, 0.75x the CPU per request (bench/README.md). Only takes effect on a new,
        // empty file (before WAL mode and the first table); existing files keep their size.
        conn.execute("PRAGMA page_size = 1024").await?;
        conn.execute("PRAGMA journal_mode = WAL").await?;
    }
    // FULL, not NORMAL: in WAL mode NORMAL may lose the last commits on power loss, and an
    // accepted passcode's step must never be forgotten (SPEC R-1).
    conn.execute("PRAGMA synchronous = FULL").await?;
    conn.execute("PRAGMA foreign_keys = ON").await?;
    if let Some(pages) = autocheckpoint {
        conn.execute(format!("PRAGMA wal_autocheckpoint = {pages}").as_str())
            .await?;
    }
    Ok(())
}
