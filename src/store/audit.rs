//! The audit log's table: one record at a time for admin actions, pages for export, bounded
//! deletion for retention. Authentications are audited by the packet-path batch instead
//! (`WriteOp::Audit`); what to record and when to delete is `crate::audit`'s business.

use super::batch;
use super::rows::{self, AUDIT_COLS};
use super::{Store, StoreError};
use crate::model::AuditRecord;

impl Store {
    /// Appends one audit record on its own (admin actions). Authentications are audited through
    /// [`WriteOp::Audit`](crate::engine::WriteOp::Audit) in the packet-path batch instead.
    pub async fn insert_audit(&self, r: &AuditRecord) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        batch::insert_audit(&mut conn, r).await?;
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
