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
//! - [`parse_time`]: the `--since`/`--until` arguments (RFC 3339, a date, or an age like `24h`).
//!
//! It must not write audit records on the packet path itself (that stays batched) nor log
//! anything but the record's columns (never passcodes or keys: records hold none).

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::admin::format_utc;
use crate::clock::Clock;
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

/// Parses a `--since`/`--until` argument into Unix seconds: an RFC 3339 time
/// (`2026-12-04T09:30:00Z`, `2026-12-04T10:30:00.5+01:00`), a date (`2026-12-04`, UTC midnight),
/// or an age before `now` (`90s`, `15m`, `24h`, `7d`, `2w`).
pub fn parse_time(s: &str, now: i64) -> Result<i64, String> {
    let s = s.trim();
    if let Some(age) = parse_age(s) {
        return age
            .and_then(|a| now.checked_sub(a))
            .ok_or_else(|| format!("{s:?}: duration too large"));
    }
    parse_rfc3339(s).ok_or_else(|| {
        format!("{s:?} is not an RFC 3339 time (2026-12-04T09:30:00Z), a date (2026-12-04) or a duration (24h, 7d)")
    })
}

/// `Some(Some(seconds))` for `<digits><unit>`, `Some(None)` on overflow, `None` if not an age.
fn parse_age(s: &str) -> Option<Option<i64>> {
    let unit = match s.chars().last()? {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return None,
    };
    let digits = s.get(..s.len() - 1)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse::<i64>().ok().and_then(|n| n.checked_mul(unit)))
}

fn number(s: &str, digits: usize) -> Option<i64> {
    if s.len() != digits || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_rfc3339(s: &str) -> Option<i64> {
    let date = s.get(..10)?;
    let (y, m, d) = (
        number(date.get(0..4)?, 4)?,
        number(date.get(5..7)?, 2)?,
        number(date.get(8..10)?, 2)?,
    );
    if date.get(4..5)? != "-" || date.get(7..8)? != "-" || !(1..=12).contains(&m) {
        return None;
    }
    if !(1..=days_in_month(y, m)).contains(&d) {
        return None;
    }
    let midnight = crate::clock::days_from_civil(y, m, d) * 86_400;
    let rest = s.get(10..)?;
    if rest.is_empty() {
        return Some(midnight);
    }
    let sep = rest.get(..1)?;
    if !matches!(sep, "T" | "t" | " ") {
        return None;
    }
    let time = rest.get(1..)?;
    let (h, mi, sec) = (
        number(time.get(0..2)?, 2)?,
        number(time.get(3..5)?, 2)?,
        number(time.get(6..8)?, 2)?,
    );
    if time.get(2..3)? != ":" || time.get(5..6)? != ":" || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut zone = time.get(8..)?;
    if let Some(frac) = zone.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        // Fractions of a second are dropped: the log keeps whole seconds.
        zone = frac.get(n..)?;
    }
    let offset = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = match zone.get(..1)? {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            let (oh, om) = (number(zone.get(1..3)?, 2)?, number(zone.get(4..6)?, 2)?);
            if zone.len() != 6 || zone.get(3..4)? != ":" || oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 3_600 + om * 60)
        }
    };
    Some(midnight + h * 3_600 + mi * 60 + sec.min(59) - offset)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
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
    fn times_parse_as_rfc3339_dates_and_ages() {
        let now = 1_800_000_000;
        assert_eq!(parse_time("1970-01-01T00:00:00Z", now), Ok(0));
        assert_eq!(parse_time("2026-12-04T09:30:00Z", now), Ok(1_796_376_600));
        assert_eq!(
            parse_time("2026-12-04T10:30:00.250+01:00", now),
            Ok(1_796_376_600)
        );
        assert_eq!(
            parse_time("2026-12-04t04:30:00-05:00", now),
            Ok(1_796_376_600)
        );
        assert_eq!(parse_time("2026-12-04", now), Ok(1_796_342_400));
        assert_eq!(parse_time("2024-02-29", now), Ok(1_709_164_800));
        assert_eq!(parse_time("24h", now), Ok(now - 86_400));
        assert_eq!(parse_time("90s", now), Ok(now - 90));
        assert_eq!(parse_time("15m", now), Ok(now - 900));
        assert_eq!(parse_time("7d", now), Ok(now - 7 * 86_400));
        assert_eq!(parse_time("2w", now), Ok(now - 14 * 86_400));
        for bad in [
            "",
            "h",
            "-5h",
            "5x",
            "yesterday",
            "2026-13-01",
            "2025-02-29",
            "2026-12-04T25:00:00Z",
            "2026-12-04T09:30:00",
            "2026-12-04T09:30:00+0100",
            "2026-12-04T09:30:00.Z",
            "99999999999999999999h",
        ] {
            assert!(parse_time(bad, now).is_err(), "{bad:?} should be refused");
        }
    }

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
