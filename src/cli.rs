//! The `tokengate` command line: `serve`, `check-config`, `migrate` and the admin verbs.
//!
//! Admin verbs open the database and master key named by the config directly (the running
//! daemon picks their changes up through the store's change feed). Every verb prints a human
//! summary, or JSON with `--json`. Errors are returned as `anyhow` with context; `main` prints
//! them and exits non-zero.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;

use crate::admin::{parse_import, Admin, ImportFormat, IssueOptions, IssuedEmergency, TokenSpec};
use crate::clock::format_utc;
use crate::config::Config;
use crate::model::{EmergencyKind, EmergencyMode, HashAlgorithm, OtpMode, TokenKind};
use crate::otp::base32;
use crate::server::{open_storage, Gateway};

/// tokengate: RADIUS authentication gateway for PIN + TOTP/HOTP tokencodes.
#[derive(Debug, Parser)]
#[command(name = "tokengate", version, about)]
pub struct Cli {
    /// Configuration file.
    #[arg(
        short,
        long,
        global = true,
        env = "TOKENGATE_CONFIG",
        default_value = "config/tokengate.toml"
    )]
    pub config: PathBuf,
    /// Machine-readable output.
    #[arg(long, global = true)]
    pub json: bool,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log line format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Top-level verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway until SIGTERM/SIGINT.
    Serve {
        /// Create a demo user `demo` (PIN 8642) with a TOTP token and print how to log in.
        #[arg(long)]
        demo: bool,
    },
    /// Validate the configuration file and exit.
    CheckConfig,
    /// Create or upgrade the database schema and exit.
    Migrate,
    /// Users.
    #[command(subcommand)]
    User(UserCmd),
    /// Tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// PINs.
    #[command(subcommand)]
    Pin(PinCmd),
    /// Admin HTTP API keys.
    #[command(subcommand)]
    ApiKey(ApiKeyCmd),
    /// Online emergency access: temporary fixed tokencodes and one-time tokencode sets.
    #[command(subcommand)]
    Emergency(EmergencyCmd),
    /// Fixed passcodes (single-factor; replace PIN + tokencode).
    #[command(subcommand)]
    FixedPasscode(FixedPasscodeCmd),
    /// Offline emergency tokencodes (per token) and passcodes (per user).
    #[command(subcommand)]
    OfflineCode(OfflineCodeCmd),
    /// The audit log: export it, apply the retention.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Load testing: create N users with a TOTP or HOTP token (and PIN) each, quickly, and write
    /// their secrets for the load generator (`tg-loadgen --secrets FILE`).
    Populate(PopulateArgs),
}

/// `audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Write the records of a time range as JSON lines or CSV (streamed page by page).
    Export {
        /// From: RFC 3339 (2026-12-04T09:30:00Z), a date (UTC midnight) or an age (24h, 7d).
        #[arg(long)]
        since: String,
        /// Until (exclusive), same forms; default: now.
        #[arg(long)]
        until: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = crate::audit::export::ExportFormat::Jsonl)]
        format: crate::audit::export::ExportFormat,
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Delete records older than `[audit] retention_days` (or `--older-than-days`) now.
    Prune {
        /// Overrides the configured retention.
        #[arg(long)]
        older_than_days: Option<u32>,
    },
}

/// `populate` options.
#[derive(Debug, Args)]
pub struct PopulateArgs {
    /// Number of users to create (each with one TOTP or HOTP token, SHA-1, 6 digits).
    #[arg(long)]
    users: usize,
    /// `totp` (time-based) or `hotp` (counter-based, counters start at 0).
    #[arg(long, default_value = "totp")]
    mode: String,
    /// User names are PREFIX0000000, PREFIX0000001, …; serials PREFIX-0000000, …
    #[arg(long, default_value = "bench")]
    prefix: String,
    /// Write the users' secrets (PIN, seed) here: a new file, mode 0600, CSV.
    #[arg(long)]
    secrets_out: PathBuf,
    /// `pin` (PIN + tokencode) or `app` (tokencode alone).
    #[arg(long, default_value = "pin")]
    kind: String,
    /// Security domain of the new users.
    #[arg(long, default_value = "default")]
    domain: String,
    /// TOTP step in seconds (30 or 60; default 30). Not allowed with `--mode hotp`.
    #[arg(long)]
    period: Option<u32>,
}

/// Options shared by the emergency issue verbs.
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// Token serial.
    serial: String,
    /// The token is permanently lost or broken (default: temporarily unavailable).
    #[arg(long)]
    lost: bool,
    /// Expiry: YYYY-MM-DD (UTC midnight) or Unix seconds (default: the policy's lifetime).
    #[arg(long)]
    expires: Option<String>,
}

/// `emergency …`
#[derive(Debug, Subcommand)]
pub enum EmergencyCmd {
    /// Issue a temporary fixed tokencode (reusable until it expires); replaces any previous codes.
    Tft(IssueArgs),
    /// Issue a set of one-time tokencodes; replaces any previous codes.
    Ott {
        /// Common options.
        #[command(flatten)]
        issue: IssueArgs,
        /// Codes in the set (default from policy).
        #[arg(long)]
        count: Option<u32>,
        /// Write the codes to this new file (mode 0600) instead of printing them.
        #[arg(long)]
        export: Option<PathBuf>,
    },
    /// Show a token's emergency access (never the codes).
    Show {
        /// Token serial.
        serial: String,
    },
    /// Delete a token's emergency codes.
    Clear {
        /// Token serial.
        serial: String,
    },
}

/// `fixed-passcode …`
#[derive(Debug, Subcommand)]
pub enum FixedPasscodeCmd {
    /// Allow and set a fixed passcode; it is read twice from standard input unless given.
    Set {
        /// Login name.
        user: String,
        /// The passcode (avoid on shared machines: it lands in shell history).
        #[arg(long)]
        passcode: Option<String>,
        /// The passcode again.
        #[arg(long)]
        confirm: Option<String>,
    },
    /// Remove the fixed passcode and the permission.
    Clear {
        /// Login name.
        user: String,
    },
}

/// `offline-code …`
#[derive(Debug, Subcommand)]
pub enum OfflineCodeCmd {
    /// Show the offline emergency tokencode of a token, or (`--user`) the offline emergency passcode of a user.
    Show {
        /// Token serial.
        #[arg(required_unless_present = "user")]
        serial: Option<String>,
        /// Login name (offline emergency passcode).
        #[arg(long, conflicts_with = "serial")]
        user: Option<String>,
    },
    /// Issue a new code; the agent downloads it at the user's next online login.
    Reset {
        /// Token serial.
        #[arg(required_unless_present = "user")]
        serial: Option<String>,
        /// Login name (offline emergency passcode).
        #[arg(long, conflicts_with = "serial")]
        user: Option<String>,
    },
    /// Accept the offline emergency tokencode online too (`on`) or not (`off`).
    Online {
        /// Token serial.
        serial: String,
        /// on or off.
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
}

/// `api-key …`
#[derive(Debug, Subcommand)]
pub enum ApiKeyCmd {
    /// Generate a key: prints it once and the `[[admin_api.key]]` lines (with its SHA-256) to
    /// paste into the config. Needs no config file or database.
    New {
        /// Name of the key's holder (audit records show `api:NAME`).
        name: String,
    },
}

/// `user …`
#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Create a user.
    Add {
        /// Login name.
        name: String,
        /// Security domain.
        #[arg(long, default_value = "default")]
        domain: String,
        /// RADIUS reply profile.
        #[arg(long)]
        profile: Option<String>,
    },
    /// Show a user and their tokens.
    Show {
        /// Login name.
        name: String,
    },
    /// List users.
    List,
    /// Lock a user.
    Lock {
        /// Login name.
        name: String,
    },
    /// Unlock a user and clear the failure count.
    Unlock {
        /// Login name.
        name: String,
    },
}

/// `token add` options.
#[derive(Debug, Args)]
pub struct TokenAdd {
    /// Serial (generated when absent).
    #[arg(long)]
    serial: Option<String>,
    /// Assign to this user.
    #[arg(long)]
    user: Option<String>,
    /// `pin` (PIN + tokencode) or `app` (tokencode alone).
    #[arg(long, default_value = "pin")]
    kind: String,
    /// Counter-based (HOTP) instead of time-based (TOTP).
    #[arg(long)]
    hotp: bool,
    /// sha1, sha256 or sha512.
    #[arg(long, default_value = "sha1")]
    algorithm: String,
    /// 6 or 8.
    #[arg(long, default_value_t = 6)]
    digits: u8,
    /// TOTP step in seconds (30 or 60).
    #[arg(long, default_value_t = 30)]
    period: u32,
    /// HOTP: first counter value.
    #[arg(long, default_value_t = 0)]
    counter: u64,
    /// Seed in base32 (generated when neither seed option is given).
    #[arg(long, conflicts_with = "seed_hex")]
    seed_base32: Option<String>,
    /// Seed in hex.
    #[arg(long)]
    seed_hex: Option<String>,
    /// Initial PIN (PIN tokens); without it the token starts in New PIN mode.
    #[arg(long)]
    pin: Option<String>,
    /// Expiry: YYYY-MM-DD (UTC midnight) or Unix seconds.
    #[arg(long)]
    expires: Option<String>,
}

/// `token …`
#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Create a token; prints its otpauth:// URI once.
    Add(TokenAdd),
    /// Import tokens from a file of otpauth:// URIs or CSV.
    Import {
        /// The file.
        file: PathBuf,
        /// File format.
        #[arg(long, value_enum, default_value_t = ImportFormat::Uri)]
        format: ImportFormat,
        /// Kind for records that do not say (`pin` or `app`).
        #[arg(long, default_value = "app")]
        kind: String,
        /// URI files: assign each token to the user named by the URI's account label.
        #[arg(long)]
        assign: bool,
    },
    /// Assign a token to a user.
    Assign {
        /// Token serial.
        serial: String,
        /// Login name.
        user: String,
    },
    /// Take a token away from its user.
    Unassign {
        /// Token serial.
        serial: String,
    },
    /// Resynchronise a token from two consecutive tokencodes.
    Resync {
        /// Token serial.
        serial: String,
        /// First tokencode.
        code1: String,
        /// The next tokencode.
        code2: String,
    },
    /// Show a token.
    Show {
        /// Token serial.
        serial: String,
    },
    /// List tokens.
    List,
    /// Print the code a token shows now (demo and testing aid).
    Code {
        /// Token serial.
        serial: String,
    },
    /// The token is permanently lost or broken: issue emergency codes with the "lost" lifetime.
    MarkLost {
        /// Token serial.
        serial: String,
        /// tft or ott (default: the policy's first allowed kind).
        #[arg(long)]
        kind: Option<String>,
        /// OTT: write the codes to this new file instead of printing them.
        #[arg(long)]
        export: Option<PathBuf>,
    },
    /// The token is temporarily unavailable: issue emergency codes with the "unavailable" lifetime.
    MarkUnavailable {
        /// Token serial.
        serial: String,
        /// tft or ott (default: the policy's first allowed kind).
        #[arg(long)]
        kind: Option<String>,
        /// OTT: write the codes to this new file instead of printing them.
        #[arg(long)]
        export: Option<PathBuf>,
    },
    /// The token is back: delete its emergency codes.
    Found {
        /// Token serial.
        serial: String,
    },
}

/// `pin …`
#[derive(Debug, Subcommand)]
pub enum PinCmd {
    /// Clear a token's PIN: New PIN mode at the next login.
    Clear {
        /// Token serial.
        serial: String,
    },
    /// Set a token's PIN.
    Set {
        /// Token serial.
        serial: String,
        /// The PIN.
        pin: String,
    },
}

fn print<T: Serialize>(json: bool, value: &T, human: impl FnOnce(&T) -> String) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        println!("{}", human(value));
    }
    Ok(())
}

fn actor() -> String {
    let login = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{login}")
}

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

/// The output of `api-key new`: the key (shown once) and the config lines holding its hash.
#[derive(Debug, Serialize)]
struct ApiKeyOutput {
    name: String,
    key: String,
    key_sha256: String,
    toml: String,
}

fn api_key_command(cmd: ApiKeyCmd, json: bool) -> Result<()> {
    match cmd {
        ApiKeyCmd::New { name } => {
            crate::config::check_api_key_name(&name).map_err(|why| anyhow::anyhow!(why))?;
            let k = crate::server::http::new_api_key(&mut rand::rngs::OsRng);
            let toml = format!(
                "[[admin_api.key]]\nname = \"{name}\"\nkey_sha256 = \"{}\"\n",
                k.sha256_hex
            );
            let out = ApiKeyOutput {
                name,
                key: k.key,
                key_sha256: k.sha256_hex,
                toml,
            };
            print(json, &out, |o| {
                format!(
                    "API key for {:?} (shown once; the config keeps only its SHA-256):\n\n  {}\n\n\
                     Add these lines to the config file (with an [admin_api] listen address) and \
                     restart:\n\n{}",
                    o.name,
                    o.key,
                    o.toml.trim_end()
                )
            })
        }
    }
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> Result<()> {
    let command = match cli.command {
        // Needs no config: the key is made before the file that will hold its hash exists.
        Command::ApiKey(cmd) => return api_key_command(cmd, cli.json),
        other => other,
    };
    let config = Config::load(&cli.config)?;
    let now = crate::clock::unix_now();
    match command {
        Command::CheckConfig => {
            let summary = serde_json::json!({
                "file": cli.config.display().to_string(),
                "database": redact_url(&config.database_url),
                "radius_listen": config.radius_listen.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                "clients": config.clients.iter().map(|c| &c.name).collect::<Vec<_>>(),
                "profiles": config.profiles.keys().collect::<Vec<_>>(),
                "domains": config.domains.keys().collect::<Vec<_>>(),
                "dictionary_attributes": config.dictionary.len(),
                "admin_api": config.admin_api.as_ref().map(|a| serde_json::json!({
                    "listen": a.listen.to_string(),
                    "keys": a.keys.iter().map(|k| &k.name).collect::<Vec<_>>(),
                })),
            });
            print(cli.json, &summary, |_| {
                format!(
                    "{}: OK ({} clients, {} profiles, {} domains)",
                    cli.config.display(),
                    config.clients.len(),
                    config.profiles.len(),
                    config.domains.len()
                )
            })
        }
        Command::Migrate => {
            let (store, _) = open_storage(&config).await?;
            store.close().await;
            print(cli.json, &serde_json::json!({"migrated": true}), |_| {
                "database schema is up to date".into()
            })
        }
        Command::Serve { demo } => serve(config, demo, cli.json).await,
        Command::Audit(cmd) => audit_command(&config, cmd, cli.json, now).await,
        cmd => {
            let (store, key) = open_storage(&config).await?;
            let admin = Admin::new(&store, &config, &key, actor());
            let r = admin_command(&admin, cmd, cli.json, now).await;
            store.close().await;
            r
        }
    }
}

fn redact_url(url: &str) -> String {
    // postgres://user:password@host/db → postgres://user:***@host/db
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((u, _)) => format!("{}{u}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

async fn admin_command(admin: &Admin<'_>, cmd: Command, json: bool, now: i64) -> Result<()> {
    match cmd {
        Command::User(u) => match u {
            UserCmd::Add {
                name,
                domain,
                profile,
            } => {
                let user = admin
                    .add_user(&name, &domain, profile.as_deref(), now)
                    .await?;
                print(json, &user, |u| {
                    format!("created user {} in domain {}", u.name, u.domain)
                })
            }
            UserCmd::Show { name } => {
                let v = admin.show_user(&name).await?;
                print(json, &v, |v| {
                    let mut s = format!(
                        "user {}  domain={}  locked={}  failures={}  profile={}",
                        v.user.name,
                        v.user.domain,
                        v.user.locked,
                        v.user.fail_count,
                        v.user.profile.as_deref().unwrap_or("-")
                    );
                    for t in &v.tokens {
                        s.push_str(&format!("\n  token {}", token_line(t)));
                    }
                    s
                })
            }
            UserCmd::List => {
                let users = admin.store.list_users().await?;
                print(json, &users, |us| {
                    us.iter()
                        .map(|u| {
                            format!(
                                "{}\t{}\t{}",
                                u.name,
                                u.domain,
                                if u.locked { "locked" } else { "active" }
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                })
            }
            UserCmd::Lock { name } => {
                let u = admin.set_locked(&name, true, now).await?;
                print(json, &u, |u| format!("locked {}", u.name))
            }
            UserCmd::Unlock { name } => {
                let u = admin.set_locked(&name, false, now).await?;
                print(json, &u, |u| format!("unlocked {}", u.name))
            }
        },
        Command::Token(t) => {
            match t {
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
                        Ok(c) => serde_json::json!({"line": line, "serial": c.token.serial, "ok": true}),
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
        Command::Pin(p) => match p {
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
        },
        Command::Emergency(e) => match e {
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
        },
        Command::FixedPasscode(f) => match f {
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
        },
        Command::OfflineCode(o) => {
            let v = match o {
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
                _ => bail!("give a token serial or --user"),
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
        Command::Populate(p) => populate(admin, p, json, now).await,
        Command::Serve { .. }
        | Command::CheckConfig
        | Command::Migrate
        | Command::ApiKey(_)
        | Command::Audit(_) => {
            unreachable!()
        }
    }
}

/// `audit export` and `audit prune`. Both are admin actions and are audited themselves, after
/// the fact (an export does not contain its own record).
async fn audit_command(config: &Config, cmd: AuditCmd, json: bool, now: i64) -> Result<()> {
    let store = crate::store::Store::open(&config.database_url)
        .await
        .context("opening the database")?;
    let r = audit_command_on(&store, config, cmd, json, now).await;
    store.close().await;
    r
}

async fn audit_command_on(
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
                    let file = std::fs::File::create(path)
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

/// `populate`: bulk users for load tests, a progress bar on stderr, the secrets file.
async fn populate(admin: &Admin<'_>, p: PopulateArgs, json: bool, now: i64) -> Result<()> {
    use std::io::Write;
    let kind = TokenKind::parse(&p.kind).context("--kind must be pin or app")?;
    let mode = match (p.mode.to_ascii_lowercase().as_str(), p.period) {
        ("totp", period) => OtpMode::Totp {
            period: period.unwrap_or(30),
        },
        ("hotp", None) => OtpMode::Hotp,
        ("hotp", Some(_)) => bail!("--period is for TOTP tokens; HOTP tokens have a counter"),
        _ => bail!("--mode must be totp or hotp"),
    };
    let opts = crate::admin::PopulateOptions {
        users: p.users,
        prefix: p.prefix,
        kind,
        domain: p.domain,
        mode,
    };
    // Create the secrets file first: without it the users would be useless to the generator.
    let file = ExportFile::create(&p.secrets_out)?;
    let started = crate::clock::monotonic();
    let mut bar = Progress::new(p.users);
    let result = admin
        .populate(&opts, now, |done| bar.update(done, started.elapsed()))
        .await;
    bar.finish();
    let users = match result {
        Ok(u) => u,
        Err(e) => {
            drop(file.file);
            let _ = std::fs::remove_file(&file.path);
            return Err(e.into());
        }
    };
    let elapsed = started.elapsed();
    let mode_name = match mode {
        OtpMode::Totp { .. } => "totp",
        OtpMode::Hotp => "hotp",
    };
    let mut w = std::io::BufWriter::new(&file.file);
    writeln!(
        w,
        "# tokengate populate: {} users, secrets for load tests only (keep private)",
        users.len()
    )?;
    writeln!(w, "{}", crate::admin::SECRETS_HEADER)?;
    for u in &users {
        writeln!(w, "{}", u.csv_line())?;
    }
    w.flush()?;
    drop(w);
    file.file.sync_all()?;
    let summary = serde_json::json!({
        "users": users.len(),
        "prefix": opts.prefix,
        "kind": kind.as_str(),
        "mode": mode_name,
        "seconds": elapsed.as_secs_f64(),
        "users_per_second": users.len() as f64 / elapsed.as_secs_f64().max(1e-9),
        "secrets_file": file.path.display().to_string(),
    });
    print(json, &summary, |_| {
        format!(
            "created {} users with {} tokens in {:.1} s ({:.0} users/s); secrets in {}",
            users.len(),
            mode_name.to_ascii_uppercase(),
            elapsed.as_secs_f64(),
            users.len() as f64 / elapsed.as_secs_f64().max(1e-9),
            file.path.display()
        )
    })
}

/// A progress bar on stderr: redrawn in place on a terminal, one line per 10 % otherwise.
struct Progress {
    total: usize,
    tty: bool,
    last_decile: usize,
}

impl Progress {
    fn new(total: usize) -> Progress {
        use std::io::IsTerminal;
        Progress {
            total,
            tty: std::io::stderr().is_terminal(),
            last_decile: 0,
        }
    }

    fn update(&mut self, done: usize, elapsed: std::time::Duration) {
        let fraction = done as f64 / self.total.max(1) as f64;
        let rate = done as f64 / elapsed.as_secs_f64().max(1e-9);
        if self.tty {
            let width = 30;
            let filled = ((fraction * width as f64) as usize).min(width);
            eprint!(
                "\rpopulate [{}{}] {done}/{} users  {:.1} s  {rate:.0}/s ",
                "#".repeat(filled),
                ".".repeat(width - filled),
                self.total,
                elapsed.as_secs_f64()
            );
        } else {
            let decile = (fraction * 10.0) as usize;
            if decile > self.last_decile || done == self.total {
                self.last_decile = decile;
                eprintln!(
                    "populate: {done}/{} users ({:.0} %), {:.1} s, {rate:.0}/s",
                    self.total,
                    fraction * 100.0,
                    elapsed.as_secs_f64()
                );
            }
        }
    }

    fn finish(&self) {
        if self.tty {
            eprintln!();
        }
    }
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

async fn mark(
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

/// An E-5 export file, created (new, mode 0600) before the codes are issued and removed again
/// if issuing fails.
struct ExportFile {
    path: PathBuf,
    file: std::fs::File,
}

impl ExportFile {
    fn create(path: &std::path::Path) -> Result<ExportFile> {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts
            .open(path)
            .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
        Ok(ExportFile {
            path: path.to_path_buf(),
            file,
        })
    }
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

fn token_line(t: &crate::model::Token) -> String {
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

const DEMO_USER: &str = "demo";
const DEMO_SERIAL: &str = "DEMO-0001";
const DEMO_PIN: &str = "8642";

async fn ensure_demo(config: &Config) -> Result<Option<String>> {
    let (store, key) = open_storage(config).await?;
    let admin = Admin::new(&store, config, &key, "cli:demo".into());
    let now = crate::clock::unix_now();
    let mut uri = None;
    if store.user_by_name(DEMO_USER).await?.is_none() {
        admin.add_user(DEMO_USER, "default", None, now).await?;
    }
    if store.token_by_serial(DEMO_SERIAL).await?.is_none() {
        let c = admin
            .add_token(
                TokenSpec {
                    serial: Some(DEMO_SERIAL.into()),
                    user: Some(DEMO_USER.into()),
                    pin: Some(DEMO_PIN.into()),
                    ..TokenSpec::default()
                },
                now,
            )
            .await?;
        uri = Some(c.otpauth_uri);
    }
    store.close().await;
    Ok(uri)
}

async fn serve(config: Config, demo: bool, _json: bool) -> Result<()> {
    let demo_uri = if demo {
        Some(ensure_demo(&config).await?)
    } else {
        None
    };
    let cfg_path = config.path.clone();
    // Installed before the listeners start: an early SIGHUP must not kill the daemon.
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("installing the SIGHUP handler")?;
    let gw = Gateway::start(config).await?;
    if let Some(uri) = demo_uri {
        let addr = gw
            .radius_addrs()
            .first()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let secret = gw
            .config
            .clients
            .first()
            .map(|c| String::from_utf8_lossy(&c.secret.0).into_owned())
            .unwrap_or_default();
        println!("==================== DEMO MODE ====================");
        println!("Demo user '{DEMO_USER}', PIN {DEMO_PIN}, TOTP token {DEMO_SERIAL} (SHA-1, 6 digits, 30 s).");
        if let Some(uri) = uri {
            println!("Add it to an authenticator app with this URI (shown once):\n  {uri}");
        }
        println!("Log in through RADIUS (passcode = PIN + current tokencode):");
        let exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "tokengate".into());
        println!(
            "  echo \"User-Name = {DEMO_USER}, User-Password = {DEMO_PIN}$({exe} -c {} token code {DEMO_SERIAL}), Message-Authenticator = 0x00\" | radclient -x {addr} auth {secret}",
            cfg_path.display()
        );
        println!("The demo user is for trying tokengate out: remove it before production use.");
        println!("===================================================");
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    loop {
        tokio::select! {
            _ = term.recv() => {
                tracing::info!("SIGTERM: shutting down");
                break;
            }
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("SIGINT: shutting down");
                break;
            }
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading the configuration");
                // Success and failure are both logged (and audited) by the reload itself.
                let _ = gw.reload().await;
            }
        }
    }
    gw.shutdown().await;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Sets up tracing (human or JSON lines; level from `RUST_LOG`, default info).
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_are_redacted() {
        assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("sqlite://data/x.db"), "sqlite://data/x.db");
    }
}
