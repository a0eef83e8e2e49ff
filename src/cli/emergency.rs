//! Emergency access for a user without their token: `emergency …` (temporary fixed tokencodes
//! and one-time tokencode sets, shown once or exported to a file), `fixed-passcode …` and
//! `offline-code …`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use super::output::{print, ExportFile};
use super::{EmergencyCmd, FixedPasscodeCmd, IssueArgs, OfflineCodeCmd};
use crate::admin::{Admin, IssueOptions, IssuedEmergency};
use crate::clock::format_utc;
use crate::model::{EmergencyKind, EmergencyMode};

/// Runs an `emergency` verb.
pub(super) async fn run(admin: &Admin<'_>, cmd: EmergencyCmd, json: bool, now: i64) -> Result<()> {
    match cmd {
        EmergencyCmd::Tft(a) => {
            let opts = issue_options(&a, Some(EmergencyKind::Tft), None)?;
            let issued = admin.issue_emergency(&a.serial, opts, now).await;
            deliver(admin, json, issued, None, now).await
        }
        EmergencyCmd::Ott {
            issue,
            count,
            export,
        } => {
            let opts = issue_options(&issue, Some(EmergencyKind::Ott), count)?;
            // Create the export file before issuing: a failure must not replace the codes.
            let file = export.as_deref().map(ExportFile::create).transpose()?;
            let issued = admin.issue_emergency(&issue.serial, opts, now).await;
            deliver(admin, json, issued, file, now).await
        }
        EmergencyCmd::Show { serial } => {
            let v = admin.emergency_show(&serial, now).await?;
            print(json, &v, |v| match v {
                None => format!("{serial}: no emergency access"),
                Some(v) => format!(
                    "{}: {} ({}) {} code(s), {} used, rule {}, expires {}{}",
                    v.serial,
                    v.kind.as_str().to_uppercase(),
                    v.mode.as_str(),
                    v.total,
                    v.used,
                    v.rule.as_str(),
                    format_utc(v.expires_at),
                    if v.active { "" } else { " (expired)" }
                ),
            })
        }
        EmergencyCmd::Clear { serial } => {
            let cleared = admin.emergency_clear(&serial, now).await?;
            print(
                json,
                &serde_json::json!({"serial": serial, "cleared": cleared}),
                |_| {
                    if cleared {
                        format!("emergency codes of {serial} deleted")
                    } else {
                        format!("{serial} had no emergency codes")
                    }
                },
            )
        }
    }
}

/// Runs a `fixed-passcode` verb.
pub(super) async fn run_fixed_passcode(
    admin: &Admin<'_>,
    cmd: FixedPasscodeCmd,
    json: bool,
    now: i64,
) -> Result<()> {
    match cmd {
        FixedPasscodeCmd::Set {
            user,
            passcode,
            confirm,
        } => {
            let (p, c) = match (passcode, confirm) {
                (Some(p), Some(c)) => (p, c),
                (None, None) => {
                    let mut lines = std::io::stdin().lines();
                    let p = lines.next().transpose()?.unwrap_or_default();
                    let c = lines.next().transpose()?.unwrap_or_default();
                    (p, c)
                }
                _ => bail!("give both --passcode and --confirm, or neither (read from stdin)"),
            };
            let v = admin
                .set_fixed_passcode(&user, p.trim_end(), c.trim_end(), now)
                .await?;
            print(json, &v, |v| {
                format!(
                    "fixed passcode set for {} (single-factor), expires {}",
                    v.user,
                    v.expires_at
                        .map(format_utc)
                        .unwrap_or_else(|| "never".into())
                )
            })
        }
        FixedPasscodeCmd::Clear { user } => {
            let r = admin.clear_fixed_passcode(&user, now).await?;
            print(
                json,
                &serde_json::json!({"user": user, "cleared": r}),
                |_| format!("fixed passcode of {user} removed"),
            )
        }
    }
}

/// Runs an `offline-code` verb: every verb prints the code it shows, resets or switches.
pub(super) async fn run_offline_code(
    admin: &Admin<'_>,
    cmd: OfflineCodeCmd,
    json: bool,
    now: i64,
) -> Result<()> {
    let v = match cmd {
        OfflineCodeCmd::Show {
            serial: Some(s), ..
        } => admin.offline_code_show(&s, now).await?,
        OfflineCodeCmd::Show { user: Some(u), .. } => {
            admin.offline_passcode(&u, false, now).await?
        }
        OfflineCodeCmd::Reset {
            serial: Some(s), ..
        } => admin.offline_code_reset(&s, now).await?,
        OfflineCodeCmd::Reset { user: Some(u), .. } => {
            admin.offline_passcode(&u, true, now).await?
        }
        OfflineCodeCmd::Online { serial, state } => {
            admin
                .offline_code_online(&serial, state == "on", now)
                .await?
        }
        OfflineCodeCmd::Show {
            serial: None,
            user: None,
        }
        | OfflineCodeCmd::Reset {
            serial: None,
            user: None,
        } => bail!("give a token serial or --user"),
    };
    print(json, &v, |v| {
        format!(
            "{} {}: {}  expires {}{}{}",
            if v.user.is_some() {
                "offline emergency passcode of"
            } else {
                "offline emergency tokencode of"
            },
            v.serial.as_deref().or(v.user.as_deref()).unwrap_or(""),
            v.code,
            format_utc(v.expires_at),
            if v.reset {
                "  (reset: agent downloads it at next online login)"
            } else {
                ""
            },
            if v.online {
                "  (also valid online)"
            } else {
                ""
            },
        )
    })
}

fn issue_options(
    a: &IssueArgs,
    kind: Option<EmergencyKind>,
    count: Option<u32>,
) -> Result<IssueOptions> {
    Ok(IssueOptions {
        kind,
        mode: Some(if a.lost {
            EmergencyMode::Lost
        } else {
            EmergencyMode::Unavailable
        }),
        count,
        expires_at: a
            .expires
            .as_deref()
            .map(|s| crate::clock::parse_date(s).map_err(anyhow::Error::msg))
            .transpose()?,
    })
}

pub(super) async fn mark(
    admin: &Admin<'_>,
    json: bool,
    serial: &str,
    kind: Option<String>,
    export: Option<PathBuf>,
    mode: EmergencyMode,
    now: i64,
) -> Result<()> {
    let kind = kind
        .map(|k| EmergencyKind::parse(&k.to_ascii_lowercase()).context("--kind must be tft or ott"))
        .transpose()?;
    let opts = IssueOptions {
        kind,
        mode: Some(mode),
        count: None,
        expires_at: None,
    };
    let file = export.as_deref().map(ExportFile::create).transpose()?;
    let issued = admin.issue_emergency(serial, opts, now).await;
    deliver(admin, json, issued, file, now).await
}

/// Shows freshly issued codes once: printed, or written to the export file (E-5).
async fn deliver(
    admin: &Admin<'_>,
    json: bool,
    issued: Result<IssuedEmergency, crate::admin::AdminError>,
    export: Option<ExportFile>,
    now: i64,
) -> Result<()> {
    let issued = match issued {
        Ok(i) => i,
        Err(e) => {
            if let Some(f) = export {
                drop(f.file);
                let _ = std::fs::remove_file(&f.path);
            }
            return Err(e.into());
        }
    };
    let issued = &issued;
    if let Some(mut f) = export {
        let text = admin.export_ott(issued, now).await?;
        std::io::Write::write_all(&mut f.file, text.as_bytes())?;
        f.file.sync_all()?;
        let path = f.path;
        let summary = serde_json::json!({
            "serial": issued.serial, "kind": issued.kind, "count": issued.codes.len(),
            "expires_at": issued.expires_at, "exported_to": path.display().to_string(),
        });
        return print(json, &summary, |_| {
            format!(
                "{} one-time tokencodes for {} written to {} (expire {})",
                issued.codes.len(),
                issued.serial,
                path.display(),
                format_utc(issued.expires_at)
            )
        });
    }
    print(json, issued, |i| {
        let mut s = format!(
            "{} for {} ({}), expires {}; rule if the token shows up: {}\n{}",
            if i.kind == EmergencyKind::Tft {
                "Temporary fixed tokencode"
            } else {
                "One-time tokencodes"
            },
            i.serial,
            i.mode.as_str(),
            format_utc(i.expires_at),
            i.rule.as_str(),
            if i.with_pin {
                "The user enters their PIN followed by a code. Shown once:"
            } else {
                "The user enters a code alone. Shown once:"
            }
        );
        for c in &i.codes {
            s.push_str("\n  ");
            s.push_str(c);
        }
        s
    })
}
