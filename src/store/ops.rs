//! Packet-path writes: the [`WriteOp`] vocabulary and [`Store::apply_batch`], which runs many
//! groups of them in one transaction (group commit).
//!
//! It owns the SQL of each op and the guard rule: a guard op that changes no row fails its group
//! and skips the group's remaining ops. That is how SPEC R-1 holds across gateway instances: the
//! replay check is a compare-and-set in the database (`… WHERE last_step < step`), never only a
//! cached comparison. It must not decide anything else: which ops a request needs is the
//! engine's business. Packet-path ops do not append to the change feed; another instance whose
//! cache is stale learns of it when its own compare-and-set fails.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, Connection, Row};

use super::rows::AUDIT_COLS;
use super::{backend_of, rows, values_list, Backend, Store, StoreError};
use crate::engine::WriteOp;
use crate::model::{AuditRecord, TokenId};

/// A query on the `Any` driver.
type AnyQuery<'q> = Query<'q, Any, AnyArguments<'q>>;

/// Runs one op; returns the number of rows it changed.
async fn run_op(op: &WriteOp, conn: &mut AnyConnection) -> Result<u64, StoreError> {
    let done = match op {
        WriteOp::AdvanceStep {
            token_id,
            step,
            drift,
        } => {
            // `$2` appears twice: SQLite binds `$N` by number, PostgreSQL natively.
            sqlx::query(
                "UPDATE tokens SET last_step = $2, drift = $3 \
                 WHERE id = $1 AND last_step < $2",
            )
            .bind(*token_id)
            .bind(*step)
            .bind(*drift)
            .execute(&mut *conn)
            .await?
        }
        WriteOp::ConsumeChallenge { state } => {
            sqlx::query("DELETE FROM challenges WHERE state = $1")
                .bind(state.as_str())
                .execute(&mut *conn)
                .await?
        }
        WriteOp::ConsumeEmergencyCode { code_id, used_at } => {
            sqlx::query("UPDATE emergency_codes SET used_at = $2 WHERE id = $1 AND used_at IS NULL")
                .bind(*code_id)
                .bind(*used_at)
                .execute(&mut *conn)
                .await?
        }
        WriteOp::ConfirmEmergencyCode { code_id, now } => {
            // A same-value UPDATE: both SQLite and PostgreSQL count the matched row.
            sqlx::query(
                "UPDATE emergency_codes SET used_at = used_at \
                 WHERE id = $1 AND used_at IS NULL AND EXISTS (\
                   SELECT 1 FROM emergency_access a \
                   WHERE a.token_id = emergency_codes.token_id AND a.expires_at > $2)",
            )
            .bind(*code_id)
            .bind(*now)
            .execute(&mut *conn)
            .await?
        }
        WriteOp::ClearEmergency { token_id } => {
            return clear_emergency(conn, *token_id).await;
        }
        WriteOp::TouchToken { token_id } => {
            sqlx::query("UPDATE tokens SET bad_count = bad_count WHERE id = $1")
                .bind(*token_id)
                .execute(&mut *conn)
                .await?
        }
        WriteOp::SetTokenBadCount {
            token_id,
            bad_count,
        } => {
            sqlx::query("UPDATE tokens SET bad_count = $2 WHERE id = $1")
                .bind(*token_id)
                .bind(i64::from(*bad_count))
                .execute(&mut *conn)
                .await?
        }
        WriteOp::SetUserFailures {
            user_id,
            fail_count,
            fail_window_start,
            locked,
            locked_at,
        } => {
            sqlx::query(
                "UPDATE users SET fail_count = $2, fail_window_start = $3, locked = $4, \
                 locked_at = $5 WHERE id = $1",
            )
            .bind(*user_id)
            .bind(i64::from(*fail_count))
            .bind(*fail_window_start)
            .bind(rows::flag(*locked))
            .bind(*locked_at)
            .execute(&mut *conn)
            .await?
        }
        WriteOp::SetPin {
            token_id,
            pin_hash,
            pin_state,
        } => {
            sqlx::query("UPDATE tokens SET pin_hash = $2, pin_state = $3 WHERE id = $1")
                .bind(*token_id)
                .bind(pin_hash.as_str())
                .bind(pin_state.as_str())
                .execute(&mut *conn)
                .await?
        }
        WriteOp::InsertChallenge(c) => sqlx::query(
            "INSERT INTO challenges (state, user_id, token_id, kind, data, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(c.state.as_str())
        .bind(c.user_id)
        .bind(c.token_id)
        .bind(c.kind.as_str())
        .bind(c.data.as_str())
        .bind(c.created_at)
        .bind(c.expires_at)
        .execute(&mut *conn)
        .await
        .map_err(|e| {
            StoreError::from_write(e, || {
                ("challenge state".to_owned(), format!("user {}", c.user_id))
            })
        })?,
        WriteOp::Audit(r) => return insert_audit(conn, r).await,
    };
    Ok(done.rows_affected())
}

/// Binds one audit record's values in [`AUDIT_COLS`] order (single and multi-row inserts).
fn bind_audit<'q>(q: AnyQuery<'q>, r: &'q AuditRecord) -> AnyQuery<'q> {
    let q = bind_audit_text(q.bind(r.at), r.actor.as_deref());
    let q = bind_audit_text(q, Some(&r.user_name));
    let q = bind_audit_text(q, r.client.as_deref())
        .bind(r.protocol.as_str())
        .bind(r.method.as_str())
        .bind(r.result.as_str());
    bind_audit_text(q, Some(&r.reason))
}

/// Binds free audit text through [`rows::audit_text`]: borrowed, unless a NUL is replaced.
fn bind_audit_text<'q>(q: AnyQuery<'q>, s: Option<&'q str>) -> AnyQuery<'q> {
    match s.map(rows::audit_text) {
        None => q.bind(None::<&str>),
        Some(Cow::Borrowed(s)) => q.bind(s),
        Some(Cow::Owned(s)) => q.bind(s),
    }
}

/// Number of values [`bind_audit`] binds per record.
pub(crate) const AUDIT_PARAMS: usize = 8;

/// Inserts one audit record; returns the rows changed (1).
pub(crate) async fn insert_audit(
    conn: &mut AnyConnection,
    r: &AuditRecord,
) -> Result<u64, StoreError> {
    insert_audits(conn, std::slice::from_ref(&r)).await
}

/// Inserts audit records with multi-row `INSERT`s (chunks from [`chunk_sizes`]); returns the
/// rows inserted.
async fn insert_audits(
    conn: &mut AnyConnection,
    records: &[&AuditRecord],
) -> Result<u64, StoreError> {
    let mut done = 0;
    let mut rest = records;
    while !rest.is_empty() {
        let rows = chunk_len(rest.len());
        let (chunk, tail) = rest.split_at(rows);
        rest = tail;
        let mut q = sqlx::query(multi_row_sql(backend_of(conn), Stmt::InsertAudit, rows));
        for r in chunk {
            q = bind_audit(q, r);
        }
        done += q.execute(&mut *conn).await?.rows_affected();
    }
    Ok(done)
}

/// One replay compare-and-set, batched: `(token_id, step, drift)`.
pub(crate) type Advance = (TokenId, i64, i64);

/// Runs many [`WriteOp::AdvanceStep`] guards as multi-row statements
/// (`UPDATE tokens … FROM (VALUES …) … WHERE last_step < step RETURNING id`) and returns the
/// ids of the tokens whose step advanced. Each row is judged on its own, exactly as the
/// one-row statement would judge it (on PostgreSQL the `WHERE` is re-checked against a row
/// another transaction changed meanwhile). Token ids must be distinct.
async fn advance_steps(
    conn: &mut AnyConnection,
    advances: &[Advance],
) -> Result<HashSet<TokenId>, StoreError> {
    let mut advanced = HashSet::with_capacity(advances.len());
    let mut rest = advances;
    while !rest.is_empty() {
        let rows = chunk_len(rest.len());
        let (chunk, tail) = rest.split_at(rows);
        rest = tail;
        let mut q = sqlx::query(multi_row_sql(backend_of(conn), Stmt::AdvanceSteps, rows));
        for (token_id, step, drift) in chunk {
            q = q.bind(*token_id).bind(*step).bind(*drift);
        }
        for row in q.fetch_all(&mut *conn).await? {
            let id: i64 = row.try_get(0).map_err(|e| StoreError::Corrupt {
                what: format!("tokens.id: {e}"),
            })?;
            advanced.insert(id);
        }
    }
    Ok(advanced)
}

/// The statements the group commit runs with many rows at once.
#[derive(Clone, Copy)]
pub(crate) enum Stmt {
    AdvanceSteps,
    InsertAudit,
}

/// Largest number of rows in one multi-row statement (SQLite gets `?` placeholders, so binding
/// stays linear: see [`values_list`]).
const MAX_ROWS_PER_STATEMENT: usize = 64;

/// Rows for the next multi-row statement: the largest power of two up to
/// [`MAX_ROWS_PER_STATEMENT`] that fits `n`. Only seven statement texts per kind exist, so they
/// stay in each connection's prepared-statement cache; a batch of `n` rows takes at most
/// `n / 64 + 6` statements.
pub(crate) fn chunk_len(n: usize) -> usize {
    if n >= MAX_ROWS_PER_STATEMENT {
        MAX_ROWS_PER_STATEMENT
    } else {
        // n >= 1 here; the largest power of two <= n.
        1 << (usize::BITS - 1 - n.max(1).leading_zeros())
    }
}

/// The SQL text of `stmt` for `rows` rows (a power of two up to 64) on `backend`, built once.
pub(crate) fn multi_row_sql(backend: Backend, stmt: Stmt, rows: usize) -> &'static str {
    type Texts = [[String; 7]; 2];
    static TEXTS: OnceLock<[Texts; 2]> = OnceLock::new();
    let texts = TEXTS.get_or_init(|| {
        let for_backend = |backend: Backend| -> Texts {
            let build = |f: &dyn Fn(usize) -> String| std::array::from_fn(|i| f(1 << i));
            [
                build(&|rows| {
                    format!(
                        "UPDATE tokens SET last_step = v.column2, drift = v.column3 \
                         FROM (VALUES {}) AS v \
                         WHERE tokens.id = v.column1 AND tokens.last_step < v.column2 \
                         RETURNING id",
                        values_list(rows, 3, backend)
                    )
                }),
                build(&|rows| {
                    format!(
                        "INSERT INTO audit ({AUDIT_COLS}) VALUES {}",
                        values_list(rows, AUDIT_PARAMS, backend)
                    )
                }),
            ]
        };
        [for_backend(Backend::Sqlite), for_backend(Backend::Postgres)]
    });
    let b = match backend {
        Backend::Sqlite => 0,
        Backend::Postgres => 1,
    };
    let kind = match stmt {
        Stmt::AdvanceSteps => 0,
        Stmt::InsertAudit => 1,
    };
    let i = rows.max(1).trailing_zeros() as usize;
    texts
        .get(b)
        .and_then(|t| t.get(kind))
        .and_then(|t| t.get(i))
        .map(String::as_str)
        .unwrap_or_default()
}

/// Deletes a token's emergency access; its codes go with it (`ON DELETE CASCADE` from
/// `emergency_codes` to `emergency_access`, in the same statement). Returns the access rows
/// deleted (0 or 1). Shared by [`WriteOp::ClearEmergency`], [`Store::clear_emergency`] and
/// [`Store::issue_emergency`].
///
/// One statement on purpose: deleting the codes and then the access in two statements could,
/// on PostgreSQL, interleave with a concurrent issue and delete the new access but not its
/// codes, or the new codes but not their access.
pub(crate) async fn clear_emergency(
    conn: &mut AnyConnection,
    token_id: TokenId,
) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM emergency_access WHERE token_id = $1")
        .bind(token_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// True when a guard follows a non-guard op, so a failing guard would leave earlier writes
/// behind unless the group runs inside a savepoint.
pub(crate) fn needs_savepoint(group: &[WriteOp]) -> bool {
    let first_non_guard = group.iter().position(|op| !op.is_guard());
    match first_non_guard {
        Some(i) => group.iter().skip(i).any(WriteOp::is_guard),
        None => false,
    }
}

/// The leading [`WriteOp::AdvanceStep`] of each group that can join the batch's multi-row
/// compare-and-set: the group's first op, its only guard, and the only `AdvanceStep` of its token
/// in the whole batch (so running it before the other groups' ops cannot change any answer).
/// Other groups run op by op.
pub(crate) fn batchable_advances(groups: &[Vec<WriteOp>]) -> Vec<Option<Advance>> {
    let mut per_token: HashMap<TokenId, u32> = HashMap::new();
    for op in groups.iter().flatten() {
        if let WriteOp::AdvanceStep { token_id, .. } = op {
            *per_token.entry(*token_id).or_default() += 1;
        }
    }
    groups
        .iter()
        .map(|group| match group.split_first() {
            Some((
                WriteOp::AdvanceStep {
                    token_id,
                    step,
                    drift,
                },
                rest,
            )) if !rest.iter().any(WriteOp::is_guard)
                && per_token.get(token_id).copied() == Some(1) =>
            {
                Some((*token_id, *step, *drift))
            }
            _ => None,
        })
        .collect()
}

/// What of `group` is still to run once the batch's multi-row replay guard has run: all of it
/// when its lead was not batched, the rest when its lead advanced, `None` (the group failed)
/// when it did not. Shared with `store::fast` so both writers judge groups alike.
pub(crate) fn remaining_ops<'g>(
    group: &'g [WriteOp],
    lead: &Option<Advance>,
    advanced: &HashSet<TokenId>,
) -> Option<&'g [WriteOp]> {
    match lead {
        None => Some(group),
        Some((token_id, _, _)) if advanced.contains(token_id) => {
            Some(group.get(1..).unwrap_or_default())
        }
        Some(_) => None,
    }
}

/// Runs one group's ops in order inside the batch transaction, except audit records, which are
/// pushed to `audits` for one multi-row insert at the end. Returns false when a guard changed no
/// row: the group's later ops are skipped and, when earlier writes exist, rolled back to a
/// savepoint (its audit records are dropped too).
async fn run_group<'g>(
    conn: &mut AnyConnection,
    ops: &'g [WriteOp],
    audits: &mut Vec<&'g AuditRecord>,
) -> Result<bool, StoreError> {
    let savepoint = needs_savepoint(ops);
    if savepoint {
        sqlx::query("SAVEPOINT tokengate_group")
            .execute(&mut *conn)
            .await?;
    }
    let audits_before = audits.len();
    let mut ok = true;
    for op in ops {
        if let WriteOp::Audit(r) = op {
            audits.push(r);
            continue;
        }
        let changed = run_op(op, &mut *conn).await?;
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
            sqlx::query("ROLLBACK TO SAVEPOINT tokengate_group")
                .execute(&mut *conn)
                .await?;
        }
        sqlx::query("RELEASE SAVEPOINT tokengate_group")
            .execute(&mut *conn)
            .await?;
    }
    Ok(ok)
}

impl Store {
    /// The packet-path write: applies many groups in one transaction (group commit) and returns
    /// whether each group succeeded.
    ///
    /// Each group's ops run in order. A guard op (see [`WriteOp::is_guard`]) that changes no row
    /// marks the group failed (`false`) and skips its remaining ops; other groups are unaffected
    /// and commit. Put guards first in each group (a group that does not is still
    /// all-or-nothing, at the price of a savepoint). Any SQL error aborts the whole transaction
    /// and returns `Err`: nothing of the batch is written. `Ok` means the transaction has
    /// committed durably.
    ///
    /// Cost: the statements per batch do not grow with the common groups. Leading replay guards
    /// (`AdvanceStep`, the accept path) run first as multi-row compare-and-sets, and every audit
    /// record of the successful groups is inserted at the end with multi-row `INSERT`s (in group
    /// order); the remaining ops run one statement each. On PostgreSQL the usual batches
    /// (replay guards, failure bookkeeping, audit rows; see [`super::pgbatch`]) are one
    /// statement altogether, a single round trip.
    pub async fn apply_batch(&self, groups: &[Vec<WriteOp>]) -> Result<Vec<bool>, StoreError> {
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.pool.acquire().await?;
        self.apply_batch_on(&mut conn, groups).await
    }

    /// [`Store::apply_batch`] on a connection the caller holds: the group-commit writer keeps
    /// one for itself, so no batch waits for the pool and, on SQLite, the connection's page
    /// cache stays warm (a connection's cache is dropped whenever another one has written).
    pub async fn apply_batch_on(
        &self,
        conn: &mut AnyConnection,
        groups: &[Vec<WriteOp>],
    ) -> Result<Vec<bool>, StoreError> {
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        if self.backend() == Backend::Postgres {
            if let Some(plan) = super::pgbatch::plan(groups) {
                return super::pgbatch::apply(conn, plan).await;
            }
        }
        self.apply_batch_in_transaction(conn, groups).await
    }

    /// The general path of [`Store::apply_batch_on`]: one transaction, statement by statement,
    /// for any batch (on PostgreSQL, the batches [`super::pgbatch`] does not take).
    pub(crate) async fn apply_batch_in_transaction(
        &self,
        conn: &mut AnyConnection,
        groups: &[Vec<WriteOp>],
    ) -> Result<Vec<bool>, StoreError> {
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = match self.backend() {
            Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => conn.begin().await?,
        };
        let leads = batchable_advances(groups);
        let batched: Vec<Advance> = leads.iter().flatten().copied().collect();
        let advanced = if batched.is_empty() {
            HashSet::new()
        } else {
            advance_steps(&mut tx, &batched).await?
        };
        let mut audits = Vec::with_capacity(groups.len());
        let mut results = Vec::with_capacity(groups.len());
        for (group, lead) in groups.iter().zip(&leads) {
            let Some(ops) = remaining_ops(group, lead, &advanced) else {
                results.push(false);
                continue;
            };
            results.push(run_group(&mut tx, ops, &mut audits).await?);
        }
        insert_audits(&mut tx, &audits).await?;
        tx.commit().await?;
        Ok(results)
    }
}
