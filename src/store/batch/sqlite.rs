//! The SQLite group commit without sqlx: the writer's own `rusqlite` connection, used on the
//! writer's thread for the batches the packet path makes.
//!
//! Why: sqlx runs every SQLite connection on a worker thread of its own, and each statement is a
//! round trip to it (begin, the replay compare-and-set, the audit insert, commit: four per batch,
//! each a cross-thread wake-up and a wake-up back). Profiles at peak load showed those hand-offs,
//! not SQLite, as most of a commit's time. Here the statements run on the calling thread.
//!
//! What it runs must be exactly what [`Store::apply_batch_on`](crate::store::Store::apply_batch_on)
//! runs: the same multi-row statements (shared texts from [`super`]), the same guard rule,
//! the same savepoints, the same results. It takes the batches whose ops are all plain updates,
//! deletes and audit rows ([`FastWriter::supports`]); a batch with anything else (a new
//! challenge, whose duplicate State must become a `Conflict`, a new PIN, clearing emergency
//! access) goes through sqlx as before. Durability is the same: WAL, `synchronous=FULL`, and the
//! connection opens the file the pool uses, so both see one database.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{params_from_iter, Connection, OpenFlags, Transaction, TransactionBehavior};

use super::{
    batchable_advances, chunk_len, multi_row_sql, needs_savepoint, remaining_ops, Advance, Stmt,
    AUDIT_PARAMS,
};
use crate::engine::WriteOp;
use crate::model::{AuditRecord, TokenId};
use crate::store::checkpoint::WalRestart;
use crate::store::{rows, Backend, StoreError, SQLITE_BUSY_TIMEOUT_MS, SQLITE_WRITER_CACHE_KIB};

/// The writer's own connection to a SQLite file.
pub(crate) struct FastWriter {
    conn: Connection,
    wal: Arc<WalRestart>,
}

impl Drop for FastWriter {
    fn drop(&mut self) {
        self.wal.writers.fetch_sub(1, Relaxed);
    }
}

impl std::fmt::Debug for FastWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastWriter").finish_non_exhaustive()
    }
}

impl FastWriter {
    /// Opens `path` (created and migrated by the pool already) with the pool's settings:
    /// busy timeout, `synchronous=FULL`, foreign keys, the automatic-checkpoint threshold, and
    /// the writer's larger page cache.
    pub(crate) fn open(
        path: &Path,
        autocheckpoint: Option<u32>,
        wal: Arc<WalRestart>,
    ) -> Result<FastWriter, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_millis(SQLITE_BUSY_TIMEOUT_MS))?;
        // WAL is a property of the file (set by the pool); FULL because an accepted passcode's
        // step must survive a power loss (SPEC R-1).
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        if let Some(pages) = autocheckpoint {
            conn.pragma_update(None, "wal_autocheckpoint", pages)?;
        }
        conn.pragma_update(None, "cache_size", -i64::from(SQLITE_WRITER_CACHE_KIB))?;
        conn.set_prepared_statement_cache_capacity(64);
        wal.writers.fetch_add(1, Relaxed);
        Ok(FastWriter { conn, wal })
    }

    /// Whether every op of the batch is one this connection runs (see the module doc).
    pub(crate) fn supports(groups: &[Vec<WriteOp>]) -> bool {
        groups.iter().flatten().all(|op| {
            !matches!(
                op,
                WriteOp::InsertChallenge(_)
                    | WriteOp::SetPin { .. }
                    | WriteOp::ClearEmergency { .. }
            )
        })
    }

    /// [`Store::apply_batch`](crate::store::Store::apply_batch) for a supported batch: one
    /// `BEGIN IMMEDIATE` transaction, committed durably before this returns `Ok`.
    pub(crate) fn apply_batch(&mut self, groups: &[Vec<WriteOp>]) -> Result<Vec<bool>, StoreError> {
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        if self.wal.wanted.swap(false, Relaxed) {
            self.finish_checkpoint();
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let leads = batchable_advances(groups);
        let batched: Vec<Advance> = leads.iter().flatten().copied().collect();
        let advanced = advance_steps(&tx, &batched)?;
        let mut audits = Vec::with_capacity(groups.len());
        let mut results = Vec::with_capacity(groups.len());
        for (group, lead) in groups.iter().zip(&leads) {
            let Some(ops) = remaining_ops(group, lead, &advanced) else {
                results.push(false);
                continue;
            };
            results.push(run_group(&tx, ops, &mut audits)?);
        }
        insert_audits(&tx, &audits)?;
        tx.commit()?;
        Ok(results)
    }
}

impl FastWriter {
    /// The checkpointer asked for it ([`WalRestart`]): copies what its last pass left, with no
    /// commit running meanwhile, so the next transaction can start the WAL over. A failure only
    /// delays that; it is logged, not returned.
    fn finish_checkpoint(&mut self) {
        let started = crate::clock::monotonic();
        let done = self
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            });
        match done {
            Ok((busy, log, copied)) => tracing::debug!(
                busy,
                log,
                copied,
                micros = started.elapsed().as_micros() as u64,
                "store writer: WAL checkpoint between batches"
            ),
            Err(e) => tracing::warn!(error = %e, "store writer: WAL checkpoint failed"),
        }
    }
}

/// The multi-row replay compare-and-set; returns the tokens whose step advanced.
fn advance_steps(
    tx: &Transaction<'_>,
    advances: &[Advance],
) -> Result<HashSet<TokenId>, StoreError> {
    let mut advanced = HashSet::with_capacity(advances.len());
    let mut rest = advances;
    while !rest.is_empty() {
        let rows = chunk_len(rest.len());
        let (chunk, tail) = rest.split_at(rows);
        rest = tail;
        let mut stmt =
            tx.prepare_cached(multi_row_sql(Backend::Sqlite, Stmt::AdvanceSteps, rows))?;
        let params = chunk
            .iter()
            .flat_map(|(id, step, drift)| [*id, *step, *drift]);
        let mut found = stmt.query(params_from_iter(params))?;
        while let Some(row) = found.next()? {
            advanced.insert(row.get::<_, i64>(0)?);
        }
    }
    Ok(advanced)
}

/// Multi-row audit inserts, in order.
fn insert_audits(tx: &Transaction<'_>, records: &[&AuditRecord]) -> Result<(), StoreError> {
    let mut rest = records;
    while !rest.is_empty() {
        let rows = chunk_len(rest.len());
        let (chunk, tail) = rest.split_at(rows);
        rest = tail;
        let mut stmt =
            tx.prepare_cached(multi_row_sql(Backend::Sqlite, Stmt::InsertAudit, rows))?;
        stmt.execute(params_from_iter(chunk.iter().flat_map(|r| audit_values(r))))?;
    }
    Ok(())
}

/// One audit record's values in `AUDIT_COLS` order (as `sqlx::bind_audit` binds them),
/// borrowed: no copy of the record's strings (unless [`rows::audit_text`] must replace a NUL).
fn audit_values(r: &AuditRecord) -> [ToSqlOutput<'_>; AUDIT_PARAMS] {
    fn text(s: &str) -> ToSqlOutput<'_> {
        match rows::audit_text(s) {
            std::borrow::Cow::Borrowed(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            std::borrow::Cow::Owned(s) => ToSqlOutput::Owned(rusqlite::types::Value::Text(s)),
        }
    }
    fn opt(s: &Option<String>) -> ToSqlOutput<'_> {
        s.as_deref()
            .map_or(ToSqlOutput::Borrowed(ValueRef::Null), text)
    }
    [
        ToSqlOutput::Borrowed(ValueRef::Integer(r.at)),
        opt(&r.actor),
        text(&r.user_name),
        opt(&r.client),
        text(&r.protocol),
        text(&r.method),
        text(&r.result),
        text(&r.reason),
    ]
}

/// One group's ops in order (audit rows collected for the end), as `sqlx::run_group` does.
fn run_group<'g>(
    tx: &Transaction<'_>,
    ops: &'g [WriteOp],
    audits: &mut Vec<&'g AuditRecord>,
) -> Result<bool, StoreError> {
    let savepoint = needs_savepoint(ops);
    if savepoint {
        tx.execute_batch("SAVEPOINT tokengate_group")?;
    }
    let audits_before = audits.len();
    let mut ok = true;
    for op in ops {
        if let WriteOp::Audit(r) = op {
            audits.push(r);
            continue;
        }
        let changed = run_op(tx, op)?;
        if op.is_guard() && changed == 0 {
            ok = false;
            break;
        }
    }
    if !ok {
        audits.truncate(audits_before);
    }
    if savepoint {
        if !ok {
            tx.execute_batch("ROLLBACK TO SAVEPOINT tokengate_group")?;
        }
        tx.execute_batch("RELEASE SAVEPOINT tokengate_group")?;
    }
    Ok(ok)
}

/// One op; returns the rows it changed. The statements are those of `sqlx::run_op`.
fn run_op(tx: &Transaction<'_>, op: &WriteOp) -> Result<usize, StoreError> {
    let run = |sql: &str, params: &[&dyn rusqlite::ToSql]| -> Result<usize, StoreError> {
        Ok(tx.prepare_cached(sql)?.execute(params)?)
    };
    match op {
        WriteOp::AdvanceStep {
            token_id,
            step,
            drift,
        } => run(
            "UPDATE tokens SET last_step = ?2, drift = ?3 WHERE id = ?1 AND last_step < ?2",
            &[token_id, step, drift],
        ),
        WriteOp::ConsumeChallenge { state } => {
            run("DELETE FROM challenges WHERE state = ?1", &[state])
        }
        WriteOp::ConsumeEmergencyCode { code_id, used_at } => run(
            "UPDATE emergency_codes SET used_at = ?2 WHERE id = ?1 AND used_at IS NULL",
            &[code_id, used_at],
        ),
        WriteOp::ConfirmEmergencyCode { code_id, now } => run(
            "UPDATE emergency_codes SET used_at = used_at \
             WHERE id = ?1 AND used_at IS NULL AND EXISTS (\
               SELECT 1 FROM emergency_access a \
               WHERE a.token_id = emergency_codes.token_id AND a.expires_at > ?2)",
            &[code_id, now],
        ),
        WriteOp::TouchToken { token_id } => run(
            "UPDATE tokens SET bad_count = bad_count WHERE id = ?1",
            &[token_id],
        ),
        WriteOp::SetTokenBadCount {
            token_id,
            bad_count,
        } => run(
            "UPDATE tokens SET bad_count = ?2 WHERE id = ?1",
            &[token_id, &i64::from(*bad_count)],
        ),
        WriteOp::SetUserFailures {
            user_id,
            fail_count,
            fail_window_start,
            locked,
            locked_at,
        } => run(
            "UPDATE users SET fail_count = ?2, fail_window_start = ?3, locked = ?4, \
             locked_at = ?5 WHERE id = ?1",
            &[
                user_id,
                &i64::from(*fail_count),
                fail_window_start,
                &rows::flag(*locked),
                locked_at,
            ],
        ),
        WriteOp::Audit(r) => {
            insert_audits(tx, &[r])?;
            Ok(1)
        }
        // Not in `supports`: the writer sends such batches through sqlx.
        WriteOp::InsertChallenge(_) | WriteOp::SetPin { .. } | WriteOp::ClearEmergency { .. } => {
            Err(StoreError::Invalid {
                what: "op not supported by the writer's own SQLite connection".into(),
            })
        }
    }
}
