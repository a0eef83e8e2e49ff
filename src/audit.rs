//! The audit log around the `audit` table: structured log lines, export and retention.
//!
//! Records are written by others: authentications and TACACS+ accounting as
//! [`WriteOp::Audit`] in the group-commit writer's batches, admin actions through
//! [`Store::insert_audit`]. This module owns what happens to them afterwards:
//!
//! - [`emit`] / [`emit_committed`]: every record that reached the database is also logged as one
//!   `tracing` event with target [`TARGET`] and a field per column, after its transaction
//!   committed (a group whose guard failed wrote no record and logs none). Filtering the target
//!   out (`RUST_LOG=info,tokengate::audit=off`) makes the check cost a relaxed atomic load.
//! - [`export`]: streams records between two instants as JSON lines or CSV (RFC 4180 quoting),
//!   page by page, so memory stays bounded whatever the table holds.
//! - [`prune`] and [`retention_loop`]: delete records older than `[audit] retention_days`, in
//!   bounded batches so no single transaction holds the database for long.
//!
//! It must not write audit records on the packet path itself (that stays batched) nor log
//! anything but the record's columns (never passcodes or keys: records hold none).

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::clock::{format_utc, Clock};
use crate::model::AuditRecord;
use crate::store::{AuditCursor, Store, StoreError, WriteOp};

/// The `tracing` target of audit log lines.
pub const TARGET: &str = "tokengate::audit";

/// Records fetched per export query.
const EXPORT_PAGE: i64 = 1_000;

/// How often the gateway applies the retention.
const RETENTION_EVERY: Duration = Duration::from_secs(3_600);

/// Logs one audit record (call after it is durable).
pub fn emit(r: &AuditRecord) {
    tracing::info!(
        target: TARGET,
        at = r.at,
        actor = r.actor.as_deref(),
        user = %r.user_name,
        client = r.client.as_deref(),
        protocol = %r.protocol,
        method = %r.method,
        result = %r.result,
        reason = %r.reason,
        "audit"
    );
}

/// Logs the audit records of the groups whose result is `true` (committed with all their ops).
/// Called by the writer once a batch has committed and its submitters have been answered.
pub fn emit_committed(groups: &[Vec<WriteOp>], committed: &[bool]) {
    if !tracing::enabled!(target: TARGET, tracing::Level::INFO) {
        return;
    }
    for (group, ok) in groups.iter().zip(committed) {
        if !ok {
            continue;
        }
        for op in group {
            if let WriteOp::Audit(r) = op {
                emit(r);
            }
        }
    }
}

/// Export file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
    /// RFC 4180 CSV with a header line.
    Csv,
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading the database failed.
    #[error("reading the audit log: {0}")]
    Store(#[from] StoreError),
    /// Writing the output failed.
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
}

/// One exported record (JSON lines); CSV has the same columns in this order.
#[derive(Serialize)]
struct Line<'a> {
    time: String,
    at: i64,
    actor: Option<&'a str>,
    user: &'a str,
    client: Option<&'a str>,
    protocol: &'a str,
    method: &'a str,
    result: &'a str,
    reason: &'a str,
}

const CSV_HEADER: &str = "time,at,actor,user,client,protocol,method,result,reason\r\n";

/// Writes the records with `since <= at < until` to `out` in time order; returns how many.
pub async fn export<W: Write>(
    store: &Store,
    since: i64,
    until: i64,
    format: ExportFormat,
    out: &mut W,
) -> Result<u64, ExportError> {
    if format == ExportFormat::Csv {
        out.write_all(CSV_HEADER.as_bytes())?;
    }
    let mut cursor = AuditCursor::start(since);
    let mut count = 0u64;
    loop {
        let page = store.audit_page(cursor, until, EXPORT_PAGE).await?;
        for (_, r) in &page {
            let line = Line {
                time: format_utc(r.at),
                at: r.at,
                actor: r.actor.as_deref(),
                user: &r.user_name,
                client: r.client.as_deref(),
                protocol: &r.protocol,
                method: &r.method,
                result: &r.result,
                reason: &r.reason,
            };
            match format {
                ExportFormat::Jsonl => {
                    serde_json::to_writer(&mut *out, &line).map_err(std::io::Error::from)?;
                    out.write_all(b"\n")?;
                }
                ExportFormat::Csv => write_csv_line(out, &line)?,
            }
            count += 1;
        }
        match page.last() {
            Some((last, _)) if page.len() as i64 == EXPORT_PAGE => cursor = *last,
            _ => break,
        }
    }
    out.flush()?;
    Ok(count)
}

fn write_csv_line<W: Write>(out: &mut W, l: &Line<'_>) -> std::io::Result<()> {
    let at = l.at.to_string();
    let fields = [
        l.time.as_str(),
        &at,
        l.actor.unwrap_or(""),
        l.user,
        l.client.unwrap_or(""),
        l.protocol,
        l.method,
        l.result,
        l.reason,
    ];
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        write_csv_field(out, f)?;
    }
    out.write_all(b"\r\n")
}

/// RFC 4180: a field holding a comma, a double quote, CR or LF is enclosed in double quotes,
/// with its double quotes doubled.
fn write_csv_field<W: Write>(out: &mut W, f: &str) -> std::io::Result<()> {
    if !f.contains([',', '"', '\r', '\n']) {
        return out.write_all(f.as_bytes());
    }
    out.write_all(b"\"")?;
    out.write_all(f.replace('"', "\"\"").as_bytes())?;
    out.write_all(b"\"")
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        let mut out = Vec::new();
        for f in ["plain", "a,b", "say \"hi\"", "two\nlines", "cr\rhere", ""] {
            write_csv_field(&mut out, f).unwrap();
            out.push(b'|');
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "plain|\"a,b\"|\"say \"\"hi\"\"\"|\"two\nlines\"|\"cr\rhere\"||"
        );
    }
}
