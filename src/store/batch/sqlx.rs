//! The general path of the batch, over sqlx: one transaction; the leading replay guards as
//! multi-row compare-and-sets; then each group op by op ([`run_group`], and [`run_op`], which
//! holds the SQL of each op); and the audit records of the groups that succeeded as multi-row
//! inserts at the end. It runs any batch on either database; the other executors take the common
//! batches faster and must answer as this path does (see [`super`] for the guard rule).

use std::borrow::Cow;
use std::collections::HashSet;

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, Connection, Row};

use super::{
    batchable_advances, chunk_len, multi_row_sql, needs_savepoint, remaining_ops, Advance, Stmt,
};
use crate::engine::WriteOp;
use crate::model::{AuditRecord, TokenId};
use crate::store::emergency::clear_emergency;
use crate::store::{backend_of, rows, Backend, Store, StoreError};

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
///
/// [`AUDIT_COLS`]: crate::store::rows::AUDIT_COLS
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
    /// The general path of [`Store::apply_batch_on`]: one transaction, statement by statement,
    /// for any batch (on PostgreSQL, the batches [`super::postgres`] does not take).
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
