//! The store's error type: what went wrong, in terms a caller can act on.
//!
//! It owns the mapping from driver errors to structured variants (a unique violation becomes
//! [`StoreError::Conflict`], an undecodable row [`StoreError::Corrupt`]). It must not decide what an
//! error means for an authentication: the engine and the servers do that.

use std::sync::Arc;

use super::Backend;

/// Everything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write (duplicate user name, token serial, challenge state).
    #[error("conflict: {what} already exists")]
    Conflict {
        /// What collided, for example `user "alice"`.
        what: String,
    },
    /// The row the operation names does not exist.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked for, for example `token 42`.
        what: String,
    },
    /// A stored row could not be turned into a record (bad enum spelling, out-of-range number).
    #[error("corrupt row: {what}")]
    Corrupt {
        /// Which table and column, and the offending value.
        what: String,
    },
    /// The record cannot be stored faithfully (for example a TOTP step of 0 seconds, which the
    /// schema reserves for HOTP). Nothing was written.
    #[error("invalid record: {what}")]
    Invalid {
        /// What is wrong with it.
        what: String,
    },
    /// The URL names no database this store supports. Carries only the scheme, never the URL
    /// (a PostgreSQL URL may hold a password).
    #[error("unsupported database URL scheme {scheme:?} (expected sqlite: or postgres://)")]
    UnsupportedUrl {
        /// The part before the first `:`.
        scheme: String,
    },
    /// Applying the migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Any other database or connection error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// An error of the group-commit writer's own SQLite connection (`store::batch::sqlite`).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The group-commit writer could not run this group because the whole batch failed with an
    /// error that is not the group's own (connection lost, pool timed out, writer stopped). The
    /// same error is shared by every group of that batch, hence the `Arc`.
    #[error("batched write failed: {0}")]
    Batch(Arc<StoreError>),
    /// Another process holds the database for something that excludes this operation: a
    /// running gateway (for `key rotate`) or a running rotation (for a starting gateway).
    #[error("in use: {what}")]
    InUse {
        /// Who holds it and what to do.
        what: String,
    },
    /// This process cannot write the database (see `store::access`): `what` names the file,
    /// directory or PostgreSQL database (never with a password), `reason` the statement or
    /// operation that failed and why.
    #[error("{what} is not writable by this process: {reason}")]
    NotWritable {
        /// The file, directory or database.
        what: String,
        /// What failed and why.
        reason: String,
    },
    /// The group-commit writer task has stopped; nothing was written.
    #[error("the store writer has stopped")]
    WriterClosed,
}

impl StoreError {
    /// Maps a driver error, turning unique and foreign-key violations into `Conflict` and
    /// `NotFound` with the caller's description of what was being written.
    pub(crate) fn from_write(err: sqlx::Error, what: impl FnOnce() -> (String, String)) -> Self {
        if let sqlx::Error::Database(db) = &err {
            if db.is_unique_violation() {
                return StoreError::Conflict { what: what().0 };
            }
            if db.is_foreign_key_violation() {
                return StoreError::NotFound { what: what().1 };
            }
        }
        StoreError::Database(err)
    }

    /// True when the error is about the statement that was run (a constraint, a bad value),
    /// false when it is about the connection or the pool. The writer retries a failed batch group
    /// by group only for the former: the latter would fail every retry the same way.
    pub(crate) fn is_statement_error(&self, backend: Backend) -> bool {
        match self {
            StoreError::Conflict { .. }
            | StoreError::NotFound { .. }
            | StoreError::Corrupt { .. } => true,
            StoreError::Database(sqlx::Error::Database(db)) => {
                is_statement_db_error(db.as_ref(), backend)
            }
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                is_statement_sqlite_code(e.extended_code)
            }
            StoreError::Sqlite(e) => matches!(
                e,
                rusqlite::Error::ToSqlConversionFailure(_)
                    | rusqlite::Error::FromSqlConversionFailure(..)
                    | rusqlite::Error::InvalidColumnType(..)
                    | rusqlite::Error::IntegralValueOutOfRange(..)
            ),
            StoreError::Database(e) => matches!(
                e,
                sqlx::Error::ColumnDecode { .. }
                    | sqlx::Error::Decode(_)
                    | sqlx::Error::Encode(_)
                    | sqlx::Error::TypeNotFound { .. }
                    | sqlx::Error::ColumnNotFound(_)
                    | sqlx::Error::ColumnIndexOutOfBounds { .. }
            ),
            _ => false,
        }
    }
}

/// Classifies an error the database reported: constraint, type and syntax errors belong to the
/// statement; busy, locked, I/O, disk-full and shutdown errors do not.
fn is_statement_db_error(db: &dyn sqlx::error::DatabaseError, backend: Backend) -> bool {
    use sqlx::error::ErrorKind;
    if !matches!(db.kind(), ErrorKind::Other) {
        return true;
    }
    let Some(code) = db.code() else {
        return false;
    };
    match backend {
        // SQLSTATE class 22 = data exception, 23 = integrity constraint violation,
        // 42 = syntax error or access rule violation.
        Backend::Postgres => ["22", "23", "42"]
            .iter()
            .any(|class| code.starts_with(class)),
        // SQLite's (extended) result code in decimal.
        Backend::Sqlite => code.parse::<i32>().is_ok_and(is_statement_sqlite_code),
    }
}

/// SQLite's (extended) result code; the primary code is the low byte: 1 = generic error
/// (syntax, missing table), 18 = too big, 19 = constraint (including the STRICT-table datatype
/// check), 20 = type mismatch, 25 = bind index out of range.
fn is_statement_sqlite_code(code: i32) -> bool {
    matches!(code & 0xff, 1 | 18 | 19 | 20 | 25)
}
