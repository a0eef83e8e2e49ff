//! `token …` and `pin …`: create, import, assign, resynchronise, show and list tokens, mark them
//! lost, unavailable or found, and set or clear their PINs; the one-line human view of a token.

use anyhow::{bail, Context, Result};

use super::emergency::mark;
use super::output::print;
use super::{PinCmd, TokenAdd, TokenCmd};
use crate::admin::{parse_import, Admin, TokenSpec};
use crate::model::{EmergencyMode, HashAlgorithm, OtpMode, TokenKind};
use crate::otp::base32;

/// Runs a `token` verb.
pub(super) async fn run(admin: &Admin<'_>, cmd: TokenCmd, json: bool, now: i64) -> Result<()> {
    match cmd {
        TokenCmd::Add(a) => {
            let spec = token_spec(a)?;
            let created = admin.add_token(spec, now).await?;
            print(json, &created, |c| {
                format!(
                    "created token {}\notpauth URI (shown once; contains the seed):\n{}",
                    token_line(&c.token),
                    c.otpauth_uri
                )
            })
        }
        TokenCmd::Import {
            file,
            format,
            kind,
            assign,
        } => {
            let kind = TokenKind::parse(&kind).context("--kind must be pin or app")?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let records = parse_import(&text, format, kind, assign)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let results = admin.import(records, now).await;
            let mut failed = 0;
            let rows: Vec<serde_json::Value> = results
                .iter()
                .map(|(line, r)| match r {
                    Ok(c) => {
                        serde_json::json!({"line": line, "serial": c.token.serial, "ok": true})
                    }
                    Err(e) => {
                        failed += 1;
                        serde_json::json!({"line": line, "ok": false, "error": e.to_string()})
                    }
                })
                .collect();
            print(json, &rows, |rows| {
                rows.iter()
                    .map(|r| match r["ok"].as_bool() {
                        Some(true) => format!(
                            "line {}: imported {}",
                            r["line"],
                            r["serial"].as_str().unwrap_or("")
                        ),
                        _ => format!(
                            "line {}: FAILED: {}",
                            r["line"],
                            r["error"].as_str().unwrap_or("")
                        ),
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
            if failed > 0 {
                bail!("{failed} of {} records failed", results.len());
            }
            Ok(())
        }
        TokenCmd::Assign { serial, user } => {
            let t = admin.assign(&serial, Some(&user), now).await?;
            print(json, &t, |t| format!("assigned {} to {user}", t.serial))
        }
        TokenCmd::Unassign { serial } => {
            let t = admin.assign(&serial, None, now).await?;
            print(json, &t, |t| format!("unassigned {}", t.serial))
        }
        TokenCmd::Resync {
            serial,
            code1,
            code2,
        } => {
            let t = admin.resync(&serial, &code1, &code2, now).await?;
            print(json, &t, |t| {
                format!("resynchronised {} (drift {} steps)", t.serial, t.drift)
            })
        }
        TokenCmd::Show { serial } => {
            let t = admin
                .store
                .token_by_serial(&serial)
                .await?
                .with_context(|| format!("token {serial:?} not found"))?;
            print(json, &t, token_line)
        }
        TokenCmd::List => {
            let ts = admin.store.list_tokens().await?;
            print(json, &ts, |ts| {
                ts.iter().map(token_line).collect::<Vec<_>>().join("\n")
            })
        }
        TokenCmd::MarkLost {
            serial,
            kind,
            export,
        } => mark(admin, json, &serial, kind, export, EmergencyMode::Lost, now).await,
        TokenCmd::MarkUnavailable {
            serial,
            kind,
            export,
        } => {
            mark(
                admin,
                json,
                &serial,
                kind,
                export,
                EmergencyMode::Unavailable,
                now,
            )
            .await
        }
        TokenCmd::Found { serial } => {
            let cleared = admin.emergency_clear(&serial, now).await?;
            print(
                json,
                &serde_json::json!({"serial": serial, "cleared": cleared}),
                |_| format!("{serial} found: emergency codes deleted"),
            )
        }
        TokenCmd::Code { serial } => {
            let code = admin.current_code(&serial, now).await?;
            print(
                json,
                &serde_json::json!({"serial": serial, "code": code}),
                |_| code.clone(),
            )
        }
    }
}

/// Runs a `pin` verb.
pub(super) async fn run_pin(admin: &Admin<'_>, cmd: PinCmd, json: bool, now: i64) -> Result<()> {
    match cmd {
        PinCmd::Clear { serial } => {
            let t = admin.clear_pin(&serial, now).await?;
            print(json, &t, |t| {
                format!("PIN cleared on {}: New PIN mode at next login", t.serial)
            })
        }
        PinCmd::Set { serial, pin } => {
            let t = admin.set_pin(&serial, &pin, now).await?;
            print(json, &t, |t| format!("PIN set on {}", t.serial))
        }
    }
}

/// A token on one line, as `token show`, `token list` and `user show` print it.
pub(super) fn token_line(t: &crate::model::Token) -> String {
    let mode = match t.mode {
        OtpMode::Totp { period } => format!("totp/{period}s"),
        OtpMode::Hotp => "hotp".into(),
    };
    format!(
        "{}  {} {} {}-digit {}  pin={}  owner={}  last_step={}  drift={}  bad={}",
        t.serial,
        t.kind.as_str(),
        mode,
        t.digits,
        t.algorithm.as_str(),
        t.pin_state.as_str(),
        t.user_id
            .map(|i| i.to_string())
            .unwrap_or_else(|| "-".into()),
        t.last_step,
        t.drift,
        t.bad_count
    )
}

/// The token a `token add` describes: options checked and parsed, the seed decoded.
fn token_spec(a: TokenAdd) -> Result<TokenSpec> {
    let kind = TokenKind::parse(&a.kind).context("--kind must be pin or app")?;
    let algorithm =
        HashAlgorithm::parse(&a.algorithm).context("--algorithm must be sha1, sha256 or sha512")?;
    let seed = match (&a.seed_base32, &a.seed_hex) {
        (Some(b), _) => Some(base32::decode(b).map_err(|e| anyhow::anyhow!("--seed-base32: {e}"))?),
        (None, Some(h)) => Some(decode_hex(h)?),
        (None, None) => None,
    };
    Ok(TokenSpec {
        serial: a.serial,
        kind,
        algorithm,
        digits: a.digits,
        mode: if a.hotp {
            OtpMode::Hotp
        } else {
            OtpMode::Totp { period: a.period }
        },
        seed,
        counter: a.counter,
        user: a.user,
        pin: a.pin,
        expires_at: a
            .expires
            .as_deref()
            .map(|s| crate::clock::parse_date(s).map_err(anyhow::Error::msg))
            .transpose()?,
    })
}

/// A seed given in hex (`--seed-hex`).
fn decode_hex(s: &str) -> Result<Vec<u8>> {
    let s = s.trim();
    if s.len() % 2 != 0 {
        bail!("hex seed has an odd number of digits");
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).context("hex seed has a non-hex digit"))
        .collect()
}
