//! `audit export`: records between two instants as JSON lines or RFC 4180 CSV, read in keyset
//! pages of a bounded size.

use std::io::Write;

use serde::Serialize;

use crate::clock::format_utc;
use crate::store::{AuditCursor, Store, StoreError};

/// Records fetched per export query.
const EXPORT_PAGE: i64 = 1_000;

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
