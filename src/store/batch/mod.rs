//! The packet-path batch: [`Store::apply_batch`] applies many groups of [`WriteOp`]s in one
//! transaction (group commit). This module holds the rule every way of running a batch follows,
//! what they share, and the choice between them.
//!
//! The guard rule: each group's ops run in order, and a guard op ([`WriteOp::is_guard`]) that
//! changes no row fails its group and skips the group's remaining ops; the other groups are
//! unaffected and commit. Guards go first in a group; a group that puts one after a write is
//! still all-or-nothing, at the price of a savepoint ([`needs_savepoint`]). That is how SPEC R-1
//! holds across gateway instances: the replay check is a compare-and-set in the database
//! (`… WHERE last_step < step`), never only a cached comparison, so when two instances present
//! the same step, one changes the row and the other's guard fails. The batch must not decide
//! anything else: which ops a request needs is the engine's business. Packet-path ops do not
//! append to the change feed; another instance whose cache is stale learns of it when its own
//! compare-and-set fails.
//!
//! Three executors, with the same statements and the same results (equivalence tests run the
//! same batches through each):
//! - [`sqlx`]: the general path, over sqlx, for any batch on either database. It holds the SQL
//!   of each op ([`WriteOp::ClearEmergency`] shares its statement with the admin call, in
//!   `store::emergency`).
//! - [`postgres`]: on PostgreSQL, the packet path's usual batches as one statement;
//!   [`Store::apply_batch_on`] uses it whenever [`postgres::plan`] takes the batch.
//! - [`sqlite`]: the group-commit writer's own `rusqlite` connection to a SQLite file
//!   ([`FastWriter`]), which the writer uses for the batches it supports.
//!
//! Shared here: which leading replay guards join the batch's multi-row compare-and-set and what
//! of each group is left to run after it ([`batchable_advances`], [`remaining_ops`]), when a
//! group needs a savepoint, and the multi-row statement texts ([`chunk_len`], [`multi_row_sql`]).

// `pub(super)`: the conformance suite checks which batches `postgres::plan` takes.
pub(super) mod postgres;
mod sqlite;
mod sqlx;

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use ::sqlx::AnyConnection;

pub(crate) use self::sqlite::FastWriter;
pub(super) use self::sqlx::insert_audit;

use super::rows::AUDIT_COLS;
use super::{values_list, Backend, Store, StoreError};
use crate::engine::WriteOp;
use crate::model::TokenId;

/// One replay compare-and-set, batched: `(token_id, step, drift)`.
pub(crate) type Advance = (TokenId, i64, i64);

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

/// Number of values `sqlx::bind_audit` binds per record.
pub(crate) const AUDIT_PARAMS: usize = 8;

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
/// when it did not. Shared by [`sqlx`] and [`sqlite`] so both judge groups alike.
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
    /// (replay guards, failure bookkeeping, audit rows; see `batch::postgres`) are one
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
            if let Some(plan) = postgres::plan(groups) {
                return postgres::apply(conn, plan).await;
            }
        }
        self.apply_batch_in_transaction(conn, groups).await
    }
}
