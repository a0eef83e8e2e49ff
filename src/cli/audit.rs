//! `audit …`: export the audit log of a time range (JSON lines or CSV) and apply the retention.

use anyhow::{bail, Context, Result};

use super::output::print;
use super::{actor, AuditCmd};
use crate::clock::format_utc;
use crate::config::Config;

/// `audit export` and `audit prune`. Both are admin actions and are audited themselves, after
/// the fact (an export does not contain its own record).
pub(super) async fn run(config: &Config, cmd: AuditCmd, json: bool, now: i64) -> Result<()> {
    let store = crate::store::Store::open(&config.database_url)
        .await
        .context("opening the database")?;
    let r = run_on(&store, config, cmd, json, now).await;
    store.close().await;
    r
}

async fn run_on(
    store: &crate::store::Store,
    config: &Config,
    cmd: AuditCmd,
    json: bool,
    now: i64,
) -> Result<()> {
    let record = |method: &str, reason: String| crate::model::AuditRecord {
        at: now,
        actor: Some(actor()),
        user_name: String::new(),
        client: None,
        protocol: "admin".into(),
        method: method.into(),
        result: "ok".into(),
        reason,
    };
    match cmd {
        AuditCmd::Export {
            since,
            until,
            format,
            output,
        } => {
            let since = crate::clock::parse_time(&since, now)
                .map_err(|e| anyhow::anyhow!("--since: {e}"))?;
            let until = match until {
                None => now.saturating_add(1),
                Some(u) => crate::clock::parse_time(&u, now)
                    .map_err(|e| anyhow::anyhow!("--until: {e}"))?,
            };
            if until <= since {
                bail!("--until must be after --since");
            }
            let count = match &output {
                Some(path) => {
                    let mut opts = std::fs::OpenOptions::new();
                    opts.write(true).create(true).truncate(true);
                    #[cfg(unix)]
                    {
                        // A new export is for the admin who made it (umask or not).
                        use std::os::unix::fs::OpenOptionsExt;
                        opts.mode(0o600);
                    }
                    let file = opts
                        .open(path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    let mut w = std::io::BufWriter::new(file);
                    crate::audit::export::export(store, since, until, format, &mut w).await?
                }
                None => {
                    let stdout = std::io::stdout();
                    let mut w = std::io::BufWriter::new(stdout.lock());
                    crate::audit::export::export(store, since, until, format, &mut w).await?
                }
            };
            store
                .insert_audit(&record(
                    "audit_export",
                    format!("{count} records from {}", format_utc(since)),
                ))
                .await?;
            // The records went to standard output: the summary goes to standard error.
            eprintln!("exported {count} audit records");
            Ok(())
        }
        AuditCmd::Prune { older_than_days } => {
            let days = match older_than_days.unwrap_or(config.file.audit.retention_days) {
                0 => bail!(
                    "no retention: set [audit] retention_days in {} or pass --older-than-days",
                    config.path.display()
                ),
                d => d,
            };
            let before = now - i64::from(days) * 86_400;
            let cancel = tokio_util::sync::CancellationToken::new();
            let n = crate::audit::retention::prune(
                store,
                before,
                config.file.audit.prune_batch,
                &cancel,
            )
            .await?;
            store
                .insert_audit(&record(
                    "audit_prune",
                    format!("{n} records before {}", format_utc(before)),
                ))
                .await?;
            print(
                json,
                &serde_json::json!({"deleted": n, "before": format_utc(before)}),
                |_| {
                    format!(
                        "deleted {n} audit records older than {}",
                        format_utc(before)
                    )
                },
            )
        }
    }
}
