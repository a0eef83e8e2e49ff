//! Audit retention: `audit prune` and the gateway's hourly task, deleting records older than
//! `[audit] retention_days` in bounded batches.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::clock::{format_utc, Clock};
use crate::store::{Store, StoreError};

/// How often the gateway applies the retention.
const RETENTION_EVERY: Duration = Duration::from_secs(3_600);

/// Deletes every audit record older than `before`, `batch` rows per transaction; returns how
/// many. Stops early (with what it deleted so far) when `cancel` fires.
pub async fn prune(
    store: &Store,
    before: i64,
    batch: u32,
    cancel: &CancellationToken,
) -> Result<u64, StoreError> {
    let batch = i64::from(batch.max(1));
    let mut total = 0;
    loop {
        let n = store.delete_audit_before(before, batch).await?;
        total += n;
        if n < batch as u64 || cancel.is_cancelled() {
            return Ok(total);
        }
        // Let the group-commit writer in between batches (SQLite has one writer at a time).
        tokio::task::yield_now().await;
    }
}

/// The gateway's retention task: at start and then hourly, deletes records older than
/// `retention_days`, until `cancel` fires.
pub async fn retention_loop(
    store: Store,
    clock: Arc<Clock>,
    retention_days: u32,
    batch: u32,
    cancel: CancellationToken,
) {
    let keep = i64::from(retention_days) * 86_400;
    let mut tick = tokio::time::interval(RETENTION_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let before = clock.now() - keep;
        match prune(&store, before, batch, &cancel).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, before = %format_utc(before), "audit retention"),
            Err(e) => tracing::warn!(error = %e, "audit retention failed"),
        }
    }
}
