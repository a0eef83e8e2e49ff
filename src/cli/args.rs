//! The clap grammar of the `tokengate` command line: global options, the verbs and their
//! arguments. What each verb does lives in the family's own file next to this one.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::admin::ImportFormat;

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
    /// The master key: check the key file against the database, rotate the key.
    #[command(subcommand)]
    Key(KeyCmd),
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
    pub(super) users: usize,
    /// `totp` (time-based) or `hotp` (counter-based, counters start at 0).
    #[arg(long, default_value = "totp")]
    pub(super) mode: String,
    /// User names are PREFIX0000000, PREFIX0000001, …; serials PREFIX-0000000, …
    #[arg(long, default_value = "bench")]
    pub(super) prefix: String,
    /// Write the users' secrets (PIN, seed) here: a new file, mode 0600, CSV.
    #[arg(long)]
    pub(super) secrets_out: PathBuf,
    /// `pin` (PIN + tokencode) or `app` (tokencode alone).
    #[arg(long, default_value = "pin")]
    pub(super) kind: String,
    /// Security domain of the new users.
    #[arg(long, default_value = "default")]
    pub(super) domain: String,
    /// TOTP step in seconds (30 or 60; default 30). Not allowed with `--mode hotp`.
    #[arg(long)]
    pub(super) period: Option<u32>,
}

/// Options shared by the emergency issue verbs.
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// Token serial.
    pub(super) serial: String,
    /// The token is permanently lost or broken (default: temporarily unavailable).
    #[arg(long)]
    pub(super) lost: bool,
    /// Expiry: YYYY-MM-DD (UTC midnight) or Unix seconds (default: the policy's lifetime).
    #[arg(long)]
    pub(super) expires: Option<String>,
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

/// `key …`
#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// Check the master key file against the check value the database records (recording it on
    /// a database that has none yet, as every start does) and print the value's first digits.
    Check,
    /// Re-encrypt every token seed and offline code under a new master key, written first to
    /// NEW_KEY_FILE (a path that does not exist yet; mode 0600), in one transaction. Afterwards
    /// only the new key file opens the database. Stop every gateway first.
    Rotate {
        /// Where to write the new key (must not exist).
        #[arg(long)]
        new_key_file: PathBuf,
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
    pub(super) serial: Option<String>,
    /// Assign to this user.
    #[arg(long)]
    pub(super) user: Option<String>,
    /// `pin` (PIN + tokencode) or `app` (tokencode alone).
    #[arg(long, default_value = "pin")]
    pub(super) kind: String,
    /// Counter-based (HOTP) instead of time-based (TOTP).
    #[arg(long)]
    pub(super) hotp: bool,
    /// sha1, sha256 or sha512.
    #[arg(long, default_value = "sha1")]
    pub(super) algorithm: String,
    /// 6 or 8.
    #[arg(long, default_value_t = 6)]
    pub(super) digits: u8,
    /// TOTP step in seconds (30 or 60).
    #[arg(long, default_value_t = 30)]
    pub(super) period: u32,
    /// HOTP: first counter value.
    #[arg(long, default_value_t = 0)]
    pub(super) counter: u64,
    /// Seed in base32 (generated when neither seed option is given).
    #[arg(long, conflicts_with = "seed_hex")]
    pub(super) seed_base32: Option<String>,
    /// Seed in hex.
    #[arg(long)]
    pub(super) seed_hex: Option<String>,
    /// Initial PIN (PIN tokens); without it the token starts in New PIN mode.
    #[arg(long)]
    pub(super) pin: Option<String>,
    /// Expiry: YYYY-MM-DD (UTC midnight) or Unix seconds.
    #[arg(long)]
    pub(super) expires: Option<String>,
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
