//! TOML configuration: parsing, defaults and validation into runtime settings.
//!
//! The file is strict: unknown keys are errors (`deny_unknown_fields`), every error names the file,
//! the key and the reason, and semantic checks (addresses, secrets, profile attributes against the
//! dictionary, policy ranges) run at load time so a bad file fails at start-up, never at the first
//! packet. Secrets are held in [`Secret`], whose `Debug` never shows the value. This module reads
//! files (the config and the secret files it names) but opens no sockets and touches no database.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::model::{AvailableRule, EmergencyKind, TokenKind};
use crate::otp::Charset;
use crate::radius::dict::Dictionary;

mod tacacs;
pub use tacacs::{EnablePolicy, Tacacs, TacacsEnable, TacacsSection, TacacsTls};

/// The only configuration format version this build reads.
pub const CONFIG_VERSION: u32 = 1;

/// A configuration error: which file, which key, why.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {key}: {reason}")]
pub struct ConfigError {
    /// The file being read.
    pub file: String,
    /// Dotted path of the offending key (or `-` when the file itself is the problem).
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

/// A secret value that never appears in `Debug` output or logs.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

// ---------------------------------------------------------------------------------------------
// File format (serde)
// ---------------------------------------------------------------------------------------------

/// The TOML file as written by the admin.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Format version; must be 1.
    pub version: u32,
    /// Process-wide settings.
    #[serde(default)]
    pub server: ServerSection,
    /// RADIUS front end.
    #[serde(default)]
    pub radius: RadiusSection,
    /// Challenge sessions.
    #[serde(default)]
    pub challenge: ChallengeSection,
    /// Prompt texts (SPEC PIN-3).
    #[serde(default)]
    pub prompts: Prompts,
    /// In-memory caches.
    #[serde(default)]
    pub cache: CacheSection,
    /// RADIUS clients (NAS).
    #[serde(default, rename = "client")]
    pub clients: Vec<ClientSection>,
    /// Reply profiles by name.
    #[serde(default, rename = "profile")]
    pub profiles: BTreeMap<String, ProfileSection>,
    /// Security domains by name; `default` always exists.
    #[serde(default, rename = "domain")]
    pub domains: BTreeMap<String, DomainSection>,
    /// The admin HTTP API; absent = no HTTP listener.
    #[serde(default)]
    pub admin_api: Option<AdminApiSection>,
    /// The TACACS+ front end (plain TCP); absent = no TACACS+ listener.
    #[serde(default)]
    pub tacacs: Option<TacacsSection>,
    /// The Prometheus and health endpoint; absent = no metrics listener.
    #[serde(default)]
    pub metrics: Option<MetricsSection>,
    /// The audit log's retention.
    #[serde(default)]
    pub audit: AuditSection,
}

/// `[audit]`: how long the audit log keeps records.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSection {
    /// Records older than this many days are deleted (hourly by the gateway, or by
    /// `tokengate audit prune`); 0 keeps them forever.
    pub retention_days: u32,
    /// Rows deleted per transaction when pruning (1..=100000).
    pub prune_batch: u32,
}

impl Default for AuditSection {
    fn default() -> Self {
        AuditSection {
            retention_days: 0,
            prune_batch: 1_000,
        }
    }
}

/// `[metrics]`: HTTP listener for `/metrics` (Prometheus text format), `/healthz` and `/readyz`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// TCP address to listen on (`127.0.0.1:9812`). No authentication: the metrics hold no
    /// secrets and no user names, but keep the port away from untrusted networks.
    pub listen: String,
}

/// `[admin_api]`: the admin HTTP API (JSON over HTTP, bearer API keys).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AdminApiSection {
    /// TCP address to listen on (`127.0.0.1:8080`; put a TLS proxy in front for remote use).
    pub listen: String,
    /// API keys allowed to call it (`tokengate api-key new NAME` makes one).
    #[serde(default, rename = "key")]
    pub keys: Vec<ApiKeySection>,
}

/// `[[admin_api.key]]`: one API key, stored only as its SHA-256.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySection {
    /// Name of the key's holder; audit records name the acting admin `api:<name>`.
    pub name: String,
    /// SHA-256 of the key, 64 hex digits (the key itself is never stored).
    pub key_sha256: String,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Directory for the SQLite database and the master key (created if missing).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Database URL; default `sqlite://<data_dir>/tokengate.db`. `postgres://…` for PostgreSQL.
    #[serde(default)]
    pub database: Option<String>,
    /// Take the database URL from this environment variable instead (wins over `database`).
    #[serde(default)]
    pub database_env: Option<String>,
    /// Master key file (32 random bytes, mode 0600, created on first start); default `<data_dir>/master.key`.
    #[serde(default)]
    pub master_key_file: Option<PathBuf>,
    /// RADIUS dictionary (FreeRADIUS format); default `dictionaries/dictionary` next to the config's parent directory.
    #[serde(default)]
    pub dictionary: Option<PathBuf>,
    /// How user names are compared: `fold` (case-insensitive, stored lower-case) or `exact`.
    #[serde(default)]
    pub user_name_case: NameCase,
    /// Issuer shown in authenticator apps for `otpauth://` URIs.
    #[serde(default = "default_issuer")]
    pub issuer: String,
    /// Groups per database transaction on the packet path (group commit).
    #[serde(default = "default_write_batch")]
    pub write_batch: usize,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            data_dir: default_data_dir(),
            database: None,
            database_env: None,
            master_key_file: None,
            dictionary: None,
            user_name_case: NameCase::default(),
            issuer: default_issuer(),
            write_batch: default_write_batch(),
        }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}
fn default_issuer() -> String {
    "tokengate".into()
}
fn default_write_batch() -> usize {
    256
}

/// User-name comparison rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NameCase {
    /// Case-insensitive: names are stored and looked up in lower case.
    #[default]
    Fold,
    /// Names are compared byte for byte.
    Exact,
}

impl NameCase {
    /// Normalises a login name under this rule.
    pub fn normalize(self, name: &str) -> String {
        match self {
            NameCase::Fold => name.trim().to_lowercase(),
            NameCase::Exact => name.trim().to_string(),
        }
    }
}

/// `[radius]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RadiusSection {
    /// UDP addresses to listen on (authentication port).
    #[serde(default = "default_radius_listen")]
    pub listen: Vec<String>,
    /// How long a reply is kept for retransmissions (RFC 5080; 5 to 30 s).
    #[serde(default = "default_dup_ttl")]
    pub duplicate_ttl_secs: u64,
    /// Requests processed at once; more are dropped and counted as overload.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Status-Server requests answered per client per second.
    #[serde(default = "default_status_rate")]
    pub status_server_per_second: u32,
    /// After a reload changes a client's secret, how long (seconds) requests signed with the
    /// old one are still answered (under the old one), when their Message-Authenticator
    /// verifies under it; 0 = switch at once.
    #[serde(default = "default_previous_secret_grace")]
    pub previous_secret_grace_secs: u64,
}

impl Default for RadiusSection {
    fn default() -> Self {
        RadiusSection {
            listen: default_radius_listen(),
            duplicate_ttl_secs: default_dup_ttl(),
            max_in_flight: default_max_in_flight(),
            status_server_per_second: default_status_rate(),
            previous_secret_grace_secs: default_previous_secret_grace(),
        }
    }
}

fn default_previous_secret_grace() -> u64 {
    30
}
fn default_radius_listen() -> Vec<String> {
    vec!["127.0.0.1:1812".into()]
}
fn default_dup_ttl() -> u64 {
    10
}
fn default_max_in_flight() -> usize {
    4096
}
fn default_status_rate() -> u32 {
    10
}

/// `[challenge]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeSection {
    /// Lifetime of a challenge session (State) in seconds.
    #[serde(default = "default_challenge_ttl")]
    pub ttl_secs: u64,
}

impl Default for ChallengeSection {
    fn default() -> Self {
        ChallengeSection {
            ttl_secs: default_challenge_ttl(),
        }
    }
}

fn default_challenge_ttl() -> u64 {
    120
}

/// `[prompts]`: every text sent to users (SPEC PIN-3). `{min}`, `{max}`, `{charset}`, `{reason}`
/// and `{pin}` are replaced where they make sense.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Prompts {
    /// N-1: asking for the next tokencode.
    pub next_tokencode: String,
    /// PIN-1: asking for a new PIN.
    pub new_pin: String,
    /// PIN-1: asking for the new PIN again.
    pub new_pin_confirm: String,
    /// PIN-1: the confirmation did not match; asking again.
    pub new_pin_mismatch: String,
    /// PIN-1: the PIN breaks the policy (`{reason}`); asking again.
    pub new_pin_rejected: String,
    /// PIN-1: PIN set; asking for PIN + next tokencode.
    pub new_pin_accepted: String,
    /// PIN-2: a system-generated PIN (`{pin}`) was assigned.
    pub new_pin_generated: String,
    /// Sent in Access-Reject (kept generic: never says why).
    pub reject: String,
}

impl Default for Prompts {
    fn default() -> Self {
        Prompts {
            next_tokencode: "Wait for the tokencode to change, then enter the new tokencode:".into(),
            new_pin: "Enter a new PIN of {min} to {max} {charset}:".into(),
            new_pin_confirm: "Re-enter the new PIN:".into(),
            new_pin_mismatch: "The PINs did not match. Enter a new PIN of {min} to {max} {charset}:"
                .into(),
            new_pin_rejected: "PIN rejected: {reason}. Enter a new PIN of {min} to {max} {charset}:"
                .into(),
            new_pin_accepted:
                "PIN accepted. Wait for the tokencode to change, then enter your PIN followed by the new tokencode:"
                    .into(),
            new_pin_generated:
                "Your new PIN is {pin}. Wait for the tokencode to change, then enter your PIN followed by the new tokencode:"
                    .into(),
            reject: "Access denied".into(),
        }
    }
}

/// `[cache]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSection {
    /// Users (with their tokens) held in memory.
    pub max_users: u64,
    /// How often (ms) to poll the change feed for admin changes made elsewhere (CLI, other instances).
    pub change_poll_ms: u64,
    /// How long an unknown user name is remembered as unknown (seconds).
    pub negative_ttl_secs: u64,
}

impl Default for CacheSection {
    fn default() -> Self {
        CacheSection {
            max_users: 2_000_000,
            change_poll_ms: 1000,
            negative_ttl_secs: 30,
        }
    }
}

/// `[[client]]`: one NAS or a prefix of them.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSection {
    /// Name used in logs, metrics and audit.
    pub name: String,
    /// Source address or prefix (`10.0.0.1`, `10.0.0.0/24`, `::1`).
    pub address: String,
    /// Shared secret inline (prefer `secret_file` or `secret_env`).
    #[serde(default)]
    pub secret: Option<String>,
    /// File holding the shared secret (trailing newline removed).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Environment variable holding the shared secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// Require Message-Authenticator in Access-Request (BLAST-RADIUS defence); default true.
    #[serde(default = "default_true")]
    pub require_message_authenticator: bool,
    /// Reply profile for users without their own.
    #[serde(default)]
    pub profile: Option<String>,
    /// TACACS+ keys, tried in order (key rollover); empty = not a TACACS+ client.
    #[serde(default)]
    pub tacacs_keys: Vec<String>,
    /// File holding one TACACS+ key per line (added after `tacacs_keys`).
    #[serde(default)]
    pub tacacs_key_file: Option<PathBuf>,
    /// Environment variable holding a TACACS+ key (added after `tacacs_keys`).
    #[serde(default)]
    pub tacacs_key_env: Option<String>,
}

fn default_true() -> bool {
    true
}

/// `[profile.<name>]`: reply attributes on Access-Accept.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileSection {
    /// Attributes as `"Name = value"` strings, by dictionary name (repeat a name to send it twice).
    #[serde(default)]
    pub reply: Vec<String>,
}

/// `[domain.<name>]`: policies of a security domain. Missing sections take the built-in defaults.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DomainSection {
    /// Token policy.
    #[serde(default)]
    pub token: TokenPolicy,
    /// PIN rules.
    #[serde(default)]
    pub pin: PinPolicy,
    /// Lockout policy.
    #[serde(default)]
    pub lockout: LockoutPolicy,
    /// Online emergency access policy (SPEC E-1..E-4).
    #[serde(default)]
    pub emergency: EmergencyPolicy,
    /// Offline authentication policy (SPEC O-1..O-5).
    #[serde(default)]
    pub offline: OfflinePolicy,
    /// Fixed passcode rules (SPEC FP-1).
    #[serde(default)]
    pub fixed_passcode: FixedPasscodePolicy,
}

/// Emergency access policy of a domain (SPEC E-1..E-4; seeds 003, 004).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmergencyPolicy {
    /// Kinds an admin (or self-service) may issue; the first is the default for `mark-lost`.
    pub allowed: Vec<EmergencyKind>,
    /// Codes in an OTT set unless the admin says otherwise.
    pub ott_count: u32,
    /// Lifetime of codes for a permanently lost or broken token, in days.
    pub lifetime_lost_days: u32,
    /// Lifetime of codes for a temporarily unavailable token, in days.
    pub lifetime_unavailable_days: u32,
    /// E-4: what the real token does while codes are active (temporarily unavailable tokens;
    /// a lost token that reappears is always denied).
    pub on_token_available: AvailableRule,
    /// No emergency code may live longer than this many days from issue.
    pub max_lifetime_days: u32,
}

impl Default for EmergencyPolicy {
    fn default() -> Self {
        EmergencyPolicy {
            allowed: vec![EmergencyKind::Tft, EmergencyKind::Ott],
            ott_count: 10,
            lifetime_lost_days: 7,
            lifetime_unavailable_days: 3,
            on_token_available: AvailableRule::Deny,
            max_lifetime_days: 30,
        }
    }
}

/// Offline authentication policy of a domain (SPEC O-1..O-5).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OfflinePolicy {
    /// Offline authentication allowed at all.
    pub allowed: bool,
    /// Days of offline data an agent may download.
    pub days: u32,
    /// Minimum online passcode length before offline data is issued.
    pub min_online_passcode_length: usize,
    /// Offline emergency codes may be downloaded (and so exist).
    pub emergency_codes: bool,
    /// Lifetime of an offline emergency code, in days.
    pub emergency_code_lifetime_days: u32,
}

impl Default for OfflinePolicy {
    fn default() -> Self {
        OfflinePolicy {
            allowed: false,
            days: 14,
            min_online_passcode_length: 0,
            emergency_codes: false,
            emergency_code_lifetime_days: 30,
        }
    }
}

/// Fixed passcode rules of a domain (SPEC FP-1).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FixedPasscodePolicy {
    /// Minimum length.
    pub min_length: usize,
    /// Maximum length.
    pub max_length: usize,
    /// `numeric` or `alphanumeric` (letters and digits).
    pub charset: PinCharset,
    /// Lifetime in days from when it is set (absent = no expiry).
    pub lifetime_days: Option<u32>,
}

impl Default for FixedPasscodePolicy {
    fn default() -> Self {
        FixedPasscodePolicy {
            min_length: 8,
            max_length: 32,
            charset: PinCharset::Alphanumeric,
            lifetime_days: Some(30),
        }
    }
}

/// What a failed next tokencode does (SPEC N-2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NtcFailure {
    /// Reject the attempt only.
    Reject,
    /// Reject and lock the user.
    #[default]
    Lock,
}

/// Emergency code length of the default format (E-3): 8 characters, letters and digits.
pub const DEFAULT_EMERGENCY_CODE_LENGTH: usize = 8;

/// Token policy of a domain (SPEC W-1, W-2, N-1, N-2, D-2).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenPolicy {
    /// Incorrect passcodes tolerated before a correct one needs Next Tokencode (absent = unlimited).
    pub bad_passcode_limit: Option<u32>,
    /// What a wrong next tokencode does.
    pub ntc_failure: NtcFailure,
    /// TOTP steps accepted outright either side of the expected step.
    pub totp_window: u32,
    /// TOTP steps either side within which a match triggers Next Tokencode.
    pub totp_wide_window: u32,
    /// HOTP counters looked ahead and accepted outright.
    pub hotp_window: u32,
    /// HOTP counters looked ahead for a Next Tokencode match.
    pub hotp_wide_window: u32,
    /// Resynchronisation search (TOTP) either side of now, in hours (SPEC D-2).
    pub resync_totp_hours: u32,
    /// Resynchronisation search (HOTP) ahead of the last counter.
    pub resync_hotp_range: u32,
    /// Length of emergency codes for tokens with a PIN (E-3; app tokens use the default 8).
    pub emergency_code_length: usize,
    /// Characters of emergency codes for tokens with a PIN (E-3).
    pub emergency_code_charset: Charset,
}

impl Default for TokenPolicy {
    fn default() -> Self {
        TokenPolicy {
            bad_passcode_limit: Some(3),
            ntc_failure: NtcFailure::Lock,
            totp_window: 1,
            totp_wide_window: 3,
            hotp_window: 10,
            hotp_wide_window: 100,
            resync_totp_hours: 12,
            resync_hotp_range: 10_000,
            emergency_code_length: DEFAULT_EMERGENCY_CODE_LENGTH,
            emergency_code_charset: Charset::Alphanumeric,
        }
    }
}

impl TokenPolicy {
    /// E-3: emergency code length and characters for a token of `kind`: the policy's format
    /// for PIN tokens, the default format (8 letters and digits) for app tokens.
    pub fn emergency_code_format(&self, kind: TokenKind) -> (usize, Charset) {
        match kind {
            TokenKind::App => (DEFAULT_EMERGENCY_CODE_LENGTH, Charset::Alphanumeric),
            TokenKind::Pin => (self.emergency_code_length, self.emergency_code_charset),
        }
    }
}

/// PIN rules of a domain (SPEC PIN-1, PIN-2).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PinPolicy {
    /// Minimum PIN length.
    pub min_length: usize,
    /// Maximum PIN length.
    pub max_length: usize,
    /// `numeric` or `alphanumeric`.
    pub charset: PinCharset,
    /// PINs that are never accepted.
    pub forbidden: Vec<String>,
    /// PIN-2: over RADIUS/TACACS+, assign a system-generated PIN instead of asking the user.
    pub system_generated: bool,
}

impl Default for PinPolicy {
    fn default() -> Self {
        PinPolicy {
            min_length: 4,
            max_length: 8,
            charset: PinCharset::Numeric,
            forbidden: vec![],
            system_generated: false,
        }
    }
}

/// Characters allowed in a PIN.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PinCharset {
    /// Digits only.
    #[default]
    Numeric,
    /// ASCII letters and digits.
    Alphanumeric,
}

impl PinCharset {
    /// The words used in prompts.
    pub fn describe(self) -> &'static str {
        match self {
            PinCharset::Numeric => "digits",
            PinCharset::Alphanumeric => "letters or digits",
        }
    }
    /// The code-generation charset for system-generated PINs.
    pub fn generator(self) -> Charset {
        match self {
            PinCharset::Numeric => Charset::Numeric,
            PinCharset::Alphanumeric => Charset::Alphanumeric,
        }
    }
}

/// Lockout policy (SPEC L-1).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutPolicy {
    /// Consecutive failures that lock the user.
    pub max_failures: u32,
    /// Window in seconds within which failures add up.
    pub window_secs: i64,
    /// Unlock automatically after this many seconds (absent = only an admin unlocks).
    pub auto_unlock_secs: Option<i64>,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            max_failures: 5,
            window_secs: 86_400,
            auto_unlock_secs: None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Validated runtime settings
// ---------------------------------------------------------------------------------------------

/// A RADIUS client after validation.
#[derive(Debug, Clone)]
pub struct Client {
    /// Name for logs/metrics/audit.
    pub name: String,
    /// Source prefix.
    pub net: IpNet,
    /// Shared secret.
    pub secret: Secret,
    /// Message-Authenticator required.
    pub require_message_authenticator: bool,
    /// Default reply profile.
    pub profile: Option<String>,
    /// TACACS+ keys in the order they are tried (empty = not a TACACS+ client).
    pub tacacs_keys: Vec<Secret>,
}

/// The admin HTTP API after validation.
#[derive(Debug, Clone)]
pub struct AdminApi {
    /// Address to bind (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Accepted keys, in file order.
    pub keys: Vec<ApiKey>,
}

/// One accepted API key.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Holder name (audit actor `api:<name>`).
    pub name: String,
    /// SHA-256 of the key.
    pub sha256: [u8; 32],
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("name", &self.name)
            .field("sha256", &"<redacted>")
            .finish()
    }
}

/// Checks an API key name: 1 to 64 characters from `A-Z a-z 0-9 . _ -` (it appears in audit
/// records and log lines as `api:<name>`, so it must not carry spaces or control characters).
pub fn check_api_key_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(format!(
            "{name:?} is not a key name: use 1 to 64 letters, digits, '.', '_' or '-'"
        ));
    }
    Ok(())
}

fn parse_sha256_hex(s: &str) -> Result<[u8; 32], String> {
    if s.len() != 64 {
        return Err(format!(
            "must be 64 hex digits (a SHA-256), found {} characters",
            s.chars().count()
        ));
    }
    if let Some(pos) = s.bytes().position(|b| !b.is_ascii_hexdigit()) {
        return Err(format!("character {} is not hex", pos + 1));
    }
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        let hex = std::str::from_utf8(pair).map_err(|_| "not hex".to_string())?;
        *slot = u8::from_str_radix(hex, 16).map_err(|_| format!("{hex:?} is not hex"))?;
    }
    Ok(out)
}

/// Policies of one security domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policies {
    /// Token policy.
    pub token: TokenPolicy,
    /// PIN policy.
    pub pin: PinPolicy,
    /// Lockout policy.
    pub lockout: LockoutPolicy,
    /// Emergency access policy.
    pub emergency: EmergencyPolicy,
    /// Offline policy.
    pub offline: OfflinePolicy,
    /// Fixed passcode rules.
    pub fixed_passcode: FixedPasscodePolicy,
}

/// Everything the daemon and the CLI need, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// The raw file (for `check-config --json` and reload comparisons).
    pub file: FileConfig,
    /// Data directory (absolute or relative to the working directory).
    pub data_dir: PathBuf,
    /// Database URL.
    pub database_url: String,
    /// Master key file.
    pub master_key_file: PathBuf,
    /// Loaded dictionary.
    pub dictionary: Arc<Dictionary>,
    /// RADIUS listen addresses.
    pub radius_listen: Vec<SocketAddr>,
    /// Clients in file order.
    pub clients: Vec<Client>,
    /// Profiles: name → pre-encoded reply attributes (wire bytes, one attribute each).
    pub profiles: BTreeMap<String, Vec<Vec<u8>>>,
    /// Domains: name → policies (always has `default`).
    pub domains: BTreeMap<String, Policies>,
    /// The admin HTTP API, when configured.
    pub admin_api: Option<AdminApi>,
    /// The TACACS+ front end, when configured.
    pub tacacs: Option<Tacacs>,
    /// The metrics and health listener, when `[metrics]` is configured.
    pub metrics_listen: Option<SocketAddr>,
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file_name = path.display().to_string();
        let err = |key: &str, reason: String| ConfigError {
            file: file_name.clone(),
            key: key.to_string(),
            reason,
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| err("-", format!("cannot read: {e}")))?;
        let file: FileConfig = toml::from_str(&text).map_err(|e| {
            // toml's message names the key and shows the line; keep it on one line.
            let msg = e.message().to_string();
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1))
                .map(|l| format!(" (line {l})"))
                .unwrap_or_default();
            err(&key_of_toml_error(&text, &e), format!("{msg}{line}"))
        })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        Self::validate(path, base, file)
    }

    fn validate(path: &Path, base: &Path, file: FileConfig) -> Result<Config, ConfigError> {
        let file_name = path.display().to_string();
        let err = |key: String, reason: String| ConfigError {
            file: file_name.clone(),
            key,
            reason,
        };
        if file.version != CONFIG_VERSION {
            return Err(err(
                "version".into(),
                format!(
                    "unsupported version {} (this build reads {CONFIG_VERSION})",
                    file.version
                ),
            ));
        }
        let data_dir = resolve(base, &file.server.data_dir);
        let database_url = match (&file.server.database_env, &file.server.database) {
            (Some(var), _) => std::env::var(var).map_err(|_| {
                err(
                    "server.database_env".into(),
                    format!("environment variable {var} is not set"),
                )
            })?,
            (None, Some(url)) => url.clone(),
            (None, None) => crate::store::sqlite_url(&data_dir.join("tokengate.db")),
        };
        // SQLite paths are relative to the config file, like every other path here, and are
        // rebuilt as absolute URLs: in `sqlite://dir/x.db` a URL parser reads `dir` as a host.
        let database_url = absolute_sqlite_url(base, &database_url);
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(err(
                "server.database".into(),
                "must start with sqlite:, postgres:// or postgresql://".into(),
            ));
        }
        let master_key_file = file
            .server
            .master_key_file
            .as_ref()
            .map(|p| resolve(base, p))
            .unwrap_or_else(|| data_dir.join("master.key"));
        let dict_path = file
            .server
            .dictionary
            .as_ref()
            .map(|p| resolve(base, p))
            .unwrap_or_else(|| default_dictionary(base));
        let dictionary = Dictionary::load(&dict_path)
            .map_err(|e| err("server.dictionary".into(), e.to_string()))?;
        if file.server.write_batch == 0 || file.server.write_batch > 10_000 {
            return Err(err("server.write_batch".into(), "must be 1..=10000".into()));
        }

        let mut radius_listen = Vec::new();
        for (i, l) in file.radius.listen.iter().enumerate() {
            let addr: SocketAddr = l.parse().map_err(|e| {
                err(
                    format!("radius.listen[{i}]"),
                    format!("{l:?} is not ip:port: {e}"),
                )
            })?;
            radius_listen.push(addr);
        }
        if !(1..=60).contains(&file.radius.duplicate_ttl_secs) {
            return Err(err(
                "radius.duplicate_ttl_secs".into(),
                "must be 1..=60 (RFC 5080 suggests 5 to 30)".into(),
            ));
        }
        if file.radius.previous_secret_grace_secs > 3600 {
            return Err(err(
                "radius.previous_secret_grace_secs".into(),
                "must be 0..=3600".into(),
            ));
        }
        if file.radius.max_in_flight == 0 {
            return Err(err(
                "radius.max_in_flight".into(),
                "must be at least 1".into(),
            ));
        }
        if !(1..=100_000).contains(&file.audit.prune_batch) {
            return Err(err("audit.prune_batch".into(), "must be 1..=100000".into()));
        }
        if !(10..=3600).contains(&file.challenge.ttl_secs) {
            return Err(err("challenge.ttl_secs".into(), "must be 10..=3600".into()));
        }

        // Profiles: encode every attribute now so a typo fails at start-up.
        let mut profiles = BTreeMap::new();
        for (name, p) in &file.profiles {
            let mut attrs = Vec::new();
            for (i, line) in p.reply.iter().enumerate() {
                let key = format!("profile.{name}.reply[{i}]");
                let (attr, value) = line
                    .split_once('=')
                    .ok_or_else(|| err(key.clone(), format!("{line:?} is not \"Name = value\"")))?;
                let value = value.trim();
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value);
                let bytes = dictionary
                    .encode_attribute(attr.trim(), value)
                    .map_err(|e| err(key.clone(), e.to_string()))?;
                attrs.push(bytes);
            }
            profiles.insert(name.clone(), attrs);
        }

        let mut clients = Vec::new();
        let mut seen_names = std::collections::BTreeSet::new();
        for (i, c) in file.clients.iter().enumerate() {
            let key = |k: &str| format!("client[{i}].{k}");
            if !seen_names.insert(c.name.clone()) {
                return Err(err(
                    key("name"),
                    format!("duplicate client name {:?}", c.name),
                ));
            }
            let net = parse_net(&c.address).ok_or_else(|| {
                err(
                    key("address"),
                    format!("{:?} is not an address or prefix", c.address),
                )
            })?;
            let secret = match (&c.secret, &c.secret_file, &c.secret_env) {
                (Some(s), None, None) => s.as_bytes().to_vec(),
                (None, Some(f), None) => {
                    let p = resolve(base, f);
                    let s = std::fs::read(&p).map_err(|e| {
                        err(
                            key("secret_file"),
                            format!("cannot read {}: {e}", p.display()),
                        )
                    })?;
                    trim_newline(s)
                }
                (None, None, Some(v)) => std::env::var(v)
                    .map_err(|_| {
                        err(
                            key("secret_env"),
                            format!("environment variable {v} is not set"),
                        )
                    })?
                    .into_bytes(),
                (None, None, None) => {
                    return Err(err(
                        key("secret"),
                        "one of secret, secret_file, secret_env is required".into(),
                    ))
                }
                _ => {
                    return Err(err(
                        key("secret"),
                        "give only one of secret, secret_file, secret_env".into(),
                    ))
                }
            };
            if secret.is_empty() {
                return Err(err(key("secret"), "the shared secret is empty".into()));
            }
            if let Some(p) = &c.profile {
                if !profiles.contains_key(p) {
                    return Err(err(key("profile"), format!("no [profile.{p}] section")));
                }
            }
            let mut tacacs_keys = Vec::new();
            for (j, k) in c.tacacs_keys.iter().enumerate() {
                if k.is_empty() {
                    return Err(err(
                        format!("client[{i}].tacacs_keys[{j}]"),
                        "the TACACS+ key is empty".into(),
                    ));
                }
                tacacs_keys.push(Secret(k.as_bytes().to_vec()));
            }
            if let Some(f) = &c.tacacs_key_file {
                let p = resolve(base, f);
                let text = std::fs::read(&p).map_err(|e| {
                    err(
                        key("tacacs_key_file"),
                        format!("cannot read {}: {e}", p.display()),
                    )
                })?;
                let before = tacacs_keys.len();
                for line in text.split(|b| *b == b'\n') {
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    if !line.is_empty() {
                        tacacs_keys.push(Secret(line.to_vec()));
                    }
                }
                if tacacs_keys.len() == before {
                    return Err(err(
                        key("tacacs_key_file"),
                        format!("{} holds no key", p.display()),
                    ));
                }
            }
            if let Some(v) = &c.tacacs_key_env {
                let k = std::env::var(v).map_err(|_| {
                    err(
                        key("tacacs_key_env"),
                        format!("environment variable {v} is not set"),
                    )
                })?;
                if k.is_empty() {
                    return Err(err(
                        key("tacacs_key_env"),
                        format!("environment variable {v} is empty"),
                    ));
                }
                tacacs_keys.push(Secret(k.into_bytes()));
            }
            if tacacs_keys.len() > 8 {
                return Err(err(
                    key("tacacs_keys"),
                    "at most 8 TACACS+ keys (each is tried on every packet)".into(),
                ));
            }
            clients.push(Client {
                name: c.name.clone(),
                net,
                secret: Secret(secret),
                require_message_authenticator: c.require_message_authenticator,
                profile: c.profile.clone(),
                tacacs_keys,
            });
        }

        let mut domains = BTreeMap::new();
        domains.insert("default".to_string(), Policies::default());
        for (name, d) in &file.domains {
            let key = |k: &str| format!("domain.{name}.{k}");
            let t = &d.token;
            if t.totp_wide_window < t.totp_window {
                return Err(err(
                    key("token.totp_wide_window"),
                    "must be >= totp_window".into(),
                ));
            }
            if t.hotp_wide_window < t.hotp_window {
                return Err(err(
                    key("token.hotp_wide_window"),
                    "must be >= hotp_window".into(),
                ));
            }
            if t.totp_wide_window > 100 || t.hotp_wide_window > 10_000 {
                return Err(err(key("token"), "windows are unreasonably large".into()));
            }
            let p = &d.pin;
            if p.min_length < 1 || p.min_length > p.max_length || p.max_length > 32 {
                return Err(err(
                    key("pin.min_length"),
                    "need 1 <= min_length <= max_length <= 32".into(),
                ));
            }
            let l = &d.lockout;
            if l.max_failures == 0 {
                return Err(err(
                    key("lockout.max_failures"),
                    "must be at least 1".into(),
                ));
            }
            if l.window_secs <= 0 {
                return Err(err(key("lockout.window_secs"), "must be positive".into()));
            }
            let e = &d.emergency;
            if e.max_lifetime_days == 0 {
                return Err(err(
                    key("emergency.max_lifetime_days"),
                    "must be at least 1".into(),
                ));
            }
            if e.lifetime_lost_days == 0 || e.lifetime_unavailable_days == 0 {
                return Err(err(
                    key("emergency"),
                    "lifetimes must be at least 1 day".into(),
                ));
            }
            if !(1..=100).contains(&e.ott_count) {
                return Err(err(key("emergency.ott_count"), "must be 1..=100".into()));
            }
            if !(4..=16).contains(&t.emergency_code_length) {
                return Err(err(
                    key("token.emergency_code_length"),
                    "must be 4..=16".into(),
                ));
            }
            let f = &d.fixed_passcode;
            if f.min_length < 4 || f.min_length > f.max_length || f.max_length > 128 {
                return Err(err(
                    key("fixed_passcode.min_length"),
                    "need 4 <= min_length <= max_length <= 128".into(),
                ));
            }
            if d.offline.emergency_code_lifetime_days == 0 {
                return Err(err(
                    key("offline.emergency_code_lifetime_days"),
                    "must be at least 1".into(),
                ));
            }
            domains.insert(
                name.clone(),
                Policies {
                    token: d.token.clone(),
                    pin: d.pin.clone(),
                    lockout: d.lockout.clone(),
                    emergency: d.emergency.clone(),
                    offline: d.offline.clone(),
                    fixed_passcode: d.fixed_passcode.clone(),
                },
            );
        }

        let metrics_listen = match &file.metrics {
            None => None,
            Some(m) => Some(m.listen.parse::<SocketAddr>().map_err(|e| {
                err(
                    "metrics.listen".into(),
                    format!("{:?} is not ip:port: {e}", m.listen),
                )
            })?),
        };

        let admin_api = match &file.admin_api {
            None => None,
            Some(a) => {
                let listen: SocketAddr = a.listen.parse().map_err(|e| {
                    err(
                        "admin_api.listen".into(),
                        format!("{:?} is not ip:port: {e}", a.listen),
                    )
                })?;
                if a.keys.is_empty() {
                    return Err(err(
                        "admin_api.key".into(),
                        "at least one [[admin_api.key]] is required (tokengate api-key new NAME)"
                            .into(),
                    ));
                }
                let mut keys: Vec<ApiKey> = Vec::new();
                for (i, k) in a.keys.iter().enumerate() {
                    let key = |f: &str| format!("admin_api.key[{i}].{f}");
                    check_api_key_name(&k.name).map_err(|why| err(key("name"), why))?;
                    if keys.iter().any(|seen| seen.name == k.name) {
                        return Err(err(key("name"), format!("duplicate key name {:?}", k.name)));
                    }
                    let sha256 = parse_sha256_hex(&k.key_sha256)
                        .map_err(|why| err(key("key_sha256"), why))?;
                    if let Some(seen) = keys.iter().find(|seen| seen.sha256 == sha256) {
                        return Err(err(
                            key("key_sha256"),
                            format!("the same key is already configured as {:?}", seen.name),
                        ));
                    }
                    keys.push(ApiKey {
                        name: k.name.clone(),
                        sha256,
                    });
                }
                Some(AdminApi { listen, keys })
            }
        };

        let tacacs = match &file.tacacs {
            None => None,
            Some(t) => Some(tacacs::validate(t, base, &err)?),
        };

        Ok(Config {
            path: path.to_path_buf(),
            tacacs,
            data_dir,
            database_url,
            master_key_file,
            dictionary: Arc::new(dictionary),
            radius_listen,
            clients,
            profiles,
            domains,
            admin_api,
            metrics_listen,
            file,
        })
    }

    /// Policies of a domain; unknown domains fall back to `default`.
    pub fn policies(&self, domain: &str) -> &Policies {
        self.domains
            .get(domain)
            .or_else(|| self.domains.get("default"))
            .unwrap_or(&DEFAULT_POLICIES)
    }
}

static DEFAULT_POLICIES: std::sync::LazyLock<Policies> =
    std::sync::LazyLock::new(Policies::default);

fn default_dictionary(base: &Path) -> PathBuf {
    // Config files live in <repo>/config/; the dictionaries beside it in <repo>/dictionaries/.
    let beside = base.join("../dictionaries/dictionary");
    if beside.exists() {
        return beside;
    }
    let here = base.join("dictionaries/dictionary");
    if here.exists() {
        return here;
    }
    PathBuf::from("/usr/share/tokengate/dictionaries/dictionary")
}

/// Resolves `p` against the config file's directory, as an absolute path.
fn resolve(base: &Path, p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    if joined.is_absolute() {
        joined
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(&joined))
            .unwrap_or(joined)
    }
}

/// `sqlite:` URLs with a relative or `..`-containing path become absolute `sqlite:///…` URLs;
/// in-memory and non-SQLite URLs pass through.
fn absolute_sqlite_url(base: &Path, url: &str) -> String {
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return url.to_string();
    };
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, params) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if path.is_empty() || path == ":memory:" {
        return url.to_string();
    }
    let abs = normalize_dots(&resolve(base, Path::new(path)));
    let built = crate::store::sqlite_url(&abs);
    match params {
        // Keep the admin's parameters (for example `mode=ro`) instead of the default mode.
        Some(q) => format!("{}?{q}", built.trim_end_matches("?mode=rwc")),
        None => built,
    }
}

/// Removes `.` and `..` components lexically (the file need not exist yet).
fn normalize_dots(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn trim_newline(mut s: Vec<u8>) -> Vec<u8> {
    while matches!(s.last(), Some(b'\n' | b'\r')) {
        s.pop();
    }
    s
}

/// Parses `10.0.0.1`, `10.0.0.0/24`, `::1`, `2001:db8::/32`.
pub fn parse_net(s: &str) -> Option<IpNet> {
    if let Ok(n) = s.parse::<IpNet>() {
        return Some(n.trunc());
    }
    s.parse::<std::net::IpAddr>().ok().map(IpNet::from)
}

/// Best-effort dotted key path of a TOML error, from the span's position in the text.
fn key_of_toml_error(text: &str, e: &toml::de::Error) -> String {
    let Some(span) = e.span() else {
        return "-".into();
    };
    // Find the last [section] header before the error and the key on the error's line.
    let before = &text[..span.start.min(text.len())];
    let mut section = String::new();
    for line in before.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            section = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
        }
    }
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line = text[line_start..].lines().next().unwrap_or("");
    let key = line.split('=').next().unwrap_or("").trim();
    match (section.is_empty(), key.is_empty() || key.starts_with('[')) {
        (true, true) => "-".into(),
        (true, false) => key.into(),
        (false, true) => section,
        (false, false) => format!("{section}.{key}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_path(p: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
    }

    #[test]
    fn every_shipped_example_parses() {
        let dir = repo_path("config");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().and_then(|e| e.to_str()) == Some("toml") {
                Config::load(&p).unwrap_or_else(|e| panic!("{e}"));
                n += 1;
            }
        }
        assert!(n >= 1, "no example config found in {}", dir.display());
    }

    pub(super) fn load_text(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.toml");
        let text = text.replace(
            "DICT",
            &repo_path("dictionaries/dictionary").display().to_string(),
        );
        std::fs::write(&p, text).unwrap();
        Config::load(&p)
    }

    pub(super) const MINIMAL: &str = r#"
version = 1
[server]
dictionary = "DICT"
[[client]]
name = "nas"
address = "127.0.0.1"
secret = "s3cret"
"#;

    #[test]
    fn minimal_config_gets_defaults() {
        let c = load_text(MINIMAL).unwrap();
        assert_eq!(c.clients.len(), 1);
        assert!(c.clients[0].require_message_authenticator);
        assert_eq!(c.policies("default").lockout.max_failures, 5);
        assert_eq!(c.policies("nonexistent").lockout.window_secs, 86_400);
        assert!(c.database_url.starts_with("sqlite://"));
    }

    #[test]
    fn a_new_domain_gets_the_default_policies_not_another_domains() {
        let c = load_text(&format!(
            "{MINIMAL}\n[domain.default.lockout]\nmax_failures = 9\n[domain.branch.pin]\nmin_length = 6\n"
        ))
        .unwrap();
        let b = c.policies("branch");
        assert_eq!(b.pin.min_length, 6);
        assert_eq!(
            b.lockout.max_failures, 5,
            "built-in default, not the default domain's 9"
        );
        assert_eq!(b.emergency, EmergencyPolicy::default());
        assert_eq!(b.emergency.lifetime_lost_days, 7);
        assert_eq!(b.token.emergency_code_length, 8);
        assert_eq!(c.policies("default").lockout.max_failures, 9);
    }

    #[test]
    fn sqlite_paths_are_relative_to_the_config_file_and_made_absolute() {
        let base = Path::new("/etc/tokengate");
        assert_eq!(
            absolute_sqlite_url(base, "sqlite://../data/x.db"),
            "sqlite:///etc/data/x.db?mode=rwc"
        );
        assert_eq!(
            absolute_sqlite_url(base, "sqlite:db/x.db?mode=ro"),
            "sqlite:///etc/tokengate/db/x.db?mode=ro"
        );
        assert_eq!(
            absolute_sqlite_url(base, "sqlite:///var/lib/tg.db"),
            "sqlite:///var/lib/tg.db?mode=rwc"
        );
        assert_eq!(
            absolute_sqlite_url(base, "sqlite::memory:"),
            "sqlite::memory:"
        );
        assert_eq!(
            absolute_sqlite_url(base, "postgres://h/db"),
            "postgres://h/db"
        );
        // A relative config path still yields absolute locations.
        let rel = resolve(Path::new("config"), Path::new("../data"));
        assert!(rel.is_absolute(), "{}", rel.display());
    }

    #[test]
    fn unknown_key_names_file_key_and_reason() {
        let e = load_text(&format!(
            "{MINIMAL}\n[radius]\nlisten = []\nfrobnicate = 1\n"
        ))
        .unwrap_err();
        let s = e.to_string();
        assert!(s.contains("t.toml"), "{s}");
        assert!(s.contains("radius.frobnicate"), "{s}");
        assert!(s.contains("unknown field"), "{s}");
    }

    #[test]
    fn bad_values_are_refused_with_their_key() {
        let cases = [
            ("version = 2\n", "version"),
            (
                "version = 1\n[server]\ndictionary = \"DICT\"\n[[client]]\nname = \"a\"\naddress = \"nope\"\nsecret = \"x\"\n",
                "client[0].address",
            ),
            (
                "version = 1\n[server]\ndictionary = \"DICT\"\n[[client]]\nname = \"a\"\naddress = \"10.0.0.1\"\n",
                "client[0].secret",
            ),
            (
                "version = 1\n[server]\ndictionary = \"DICT\"\n[profile.p]\nreply = [\"No-Such-Attribute = 1\"]\n",
                "profile.p.reply[0]",
            ),
            (
                "version = 1\n[server]\ndictionary = \"DICT\"\n[profile.p]\nreply = [\"Session-Timeout = soon\"]\n",
                "profile.p.reply[0]",
            ),
            (
                "version = 1\n[server]\ndictionary = \"DICT\"\n[radius]\nlisten = [\"localhost\"]\n",
                "radius.listen[0]",
            ),
            (
                "version = 1\n[server]\ndictionary = \"DICT\"\n[domain.x.pin]\nmin_length = 9\nmax_length = 4\n",
                "domain.x.pin.min_length",
            ),
            (
                "version = 1\n[server]\ndictionary = \"DICT\"\n[domain.x.lockout]\nmax_failures = 0\n",
                "domain.x.lockout.max_failures",
            ),
            (
                "version = 1\n[server]\ndictionary = \"DICT\"\n[domain.x.emergency]\nott_count = 0\n",
                "domain.x.emergency.ott_count",
            ),
            (
                "version = 1\n[server]\ndictionary = \"DICT\"\n[domain.x.emergency]\nallowed = [\"sms\"]\n",
                "domain.x.emergency.allowed",
            ),
        ];
        for (text, key) in cases {
            let e = load_text(text).unwrap_err();
            assert_eq!(e.key, key, "{e}");
        }
    }

    #[test]
    fn tacacs_is_optional_and_parses_limits_keys_and_authorization() {
        let c = load_text(MINIMAL).unwrap();
        assert!(c.tacacs.is_none());
        assert!(c.clients[0].tacacs_keys.is_empty());
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("tac.keys");
        std::fs::write(&keys, "from-file-1\nfrom-file-2\n").unwrap();
        let c = load_text(&format!(
            "{MINIMAL}tacacs_keys = [\"new\", \"old\"]\ntacacs_key_file = \"{}\"\n\
             [tacacs]\nlisten = [\"127.0.0.1:0\"]\nmax_rounds = 4\n\
             [tacacs.authorization.default]\nargs = [\"service=shell\", \"priv-lvl=15\"]\n",
            keys.display()
        ))
        .unwrap();
        let t = c.tacacs.unwrap();
        assert_eq!(t.listen.len(), 1);
        assert_eq!(t.max_rounds, 4);
        assert_eq!(t.max_connections, 1024);
        assert_eq!(t.idle_timeout.as_secs(), 60);
        assert_eq!(t.authorization["default"].args[1], b"priv-lvl=15");
        let k: Vec<&[u8]> = c.clients[0].tacacs_keys.iter().map(|k| &k.0[..]).collect();
        assert_eq!(k, [&b"new"[..], b"old", b"from-file-1", b"from-file-2"]);
        assert!(!format!("{:?}", c.clients[0]).contains("from-file"));
    }

    #[test]
    fn tacacs_errors_name_file_key_and_reason() {
        let cases = [
            ("[tacacs]\nlisten = [\"nope\"]\n", "tacacs.listen[0]"),
            ("[tacacs]\nlisten = []\n", "tacacs.listen"),
            (
                "[tacacs]\nlisten = [\"127.0.0.1:0\"]\nmax_connections = 0\n",
                "tacacs.max_connections",
            ),
            (
                "[tacacs]\nlisten = [\"127.0.0.1:0\"]\nidle_timeout_secs = 0\n",
                "tacacs.idle_timeout_secs",
            ),
            (
                "[tacacs]\nlisten = [\"127.0.0.1:0\"]\nmax_sessions_per_connection = 0\n",
                "tacacs.max_sessions_per_connection",
            ),
            (
                "[tacacs]\nlisten = [\"127.0.0.1:0\"]\nmax_rounds = 1\n",
                "tacacs.max_rounds",
            ),
            (
                "[tacacs]\nlisten = [\"127.0.0.1:0\"]\n[tacacs.authorization.x]\nargs = [\"shell\"]\n",
                "tacacs.authorization.x.args[0]",
            ),
            (
                "[tacacs]\nlisten = [\"127.0.0.1:0\"]\nfrobnicate = 1\n",
                "tacacs.frobnicate",
            ),
            (
                "[[client]]\nname = \"a\"\naddress = \"10.0.0.1\"\nsecret = \"x\"\ntacacs_keys = [\"\"]\n",
                "client[0].tacacs_keys[0]",
            ),
            (
                "[[client]]\nname = \"a\"\naddress = \"10.0.0.1\"\nsecret = \"x\"\ntacacs_key_env = \"TG_NO_SUCH_VAR_FOR_TEST\"\n",
                "client[0].tacacs_key_env",
            ),
        ];
        for (text, key) in cases {
            let e = load_text(&format!(
                "version = 1\n[server]\ndictionary = \"DICT\"\n{text}"
            ))
            .unwrap_err();
            assert_eq!(e.key, key, "{e}");
            assert!(e.file.ends_with("t.toml"), "{e}");
            assert!(!e.reason.is_empty(), "{e}");
        }
    }

    #[test]
    fn secrets_come_from_files_and_are_redacted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("nas.secret"), "from-file\n").unwrap();
        let p = dir.path().join("t.toml");
        std::fs::write(
            &p,
            format!(
                "version = 1\n[server]\ndictionary = \"{}\"\n[[client]]\nname = \"a\"\naddress = \"10.0.0.0/8\"\nsecret_file = \"nas.secret\"\n",
                repo_path("dictionaries/dictionary").display()
            ),
        )
        .unwrap();
        let c = Config::load(&p).unwrap();
        assert_eq!(c.clients[0].secret.0, b"from-file");
        let dbg = format!("{:?}", c.clients);
        assert!(!dbg.contains("from-file"), "{dbg}");
    }

    const HASH_A: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    const HASH_B: &str = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";

    #[test]
    fn metrics_listener_is_optional_strict_and_named_in_errors() {
        assert!(load_text(MINIMAL).unwrap().metrics_listen.is_none());
        let c = load_text(&format!(
            "{MINIMAL}\n[metrics]\nlisten = \"127.0.0.1:9812\"\n"
        ))
        .unwrap();
        assert_eq!(c.metrics_listen, Some("127.0.0.1:9812".parse().unwrap()));
        let e = load_text(&format!("{MINIMAL}\n[metrics]\nlisten = \"localhost\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("metrics.listen") && e.contains("not ip:port"),
            "{e}"
        );
        let e = load_text(&format!(
            "{MINIMAL}\n[metrics]\nlisten = \"127.0.0.1:0\"\npath = \"/m\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("path"), "{e}");
    }

    #[test]
    fn admin_api_is_optional_and_parses_keys() {
        assert!(load_text(MINIMAL).unwrap().admin_api.is_none());
        let c = load_text(&format!(
            "{MINIMAL}\n[admin_api]\nlisten = \"127.0.0.1:0\"\n\
             [[admin_api.key]]\nname = \"helpdesk\"\nkey_sha256 = \"{HASH_A}\"\n\
             [[admin_api.key]]\nname = \"ops-2\"\nkey_sha256 = \"{}\"\n",
            HASH_B.to_uppercase()
        ))
        .unwrap();
        let api = c.admin_api.unwrap();
        assert_eq!(api.listen.to_string(), "127.0.0.1:0");
        assert_eq!(api.keys.len(), 2);
        assert_eq!(api.keys[0].name, "helpdesk");
        assert_eq!(api.keys[0].sha256[0], 0x9f);
        assert_eq!(api.keys[1].sha256[31], 0x52);
        let dbg = format!("{:?}", api.keys);
        assert!(!dbg.contains("9f86"), "{dbg}");
    }

    #[test]
    fn admin_api_errors_name_file_key_and_reason() {
        let key = |name: &str, hash: &str| {
            format!("[[admin_api.key]]\nname = \"{name}\"\nkey_sha256 = \"{hash}\"\n")
        };
        let api = |rest: &str| format!("{MINIMAL}\n[admin_api]\nlisten = \"127.0.0.1:0\"\n{rest}");
        let cases = [
            (
                format!(
                    "{MINIMAL}\n[admin_api]\nlisten = \"localhost\"\n{}",
                    key("a", HASH_A)
                ),
                "admin_api.listen",
                "not ip:port",
            ),
            (api(""), "admin_api.key", "at least one"),
            (
                api(&key("a", &HASH_A[..63])),
                "admin_api.key[0].key_sha256",
                "64 hex digits",
            ),
            (
                api(&key("a", &format!("{HASH_A}00"))),
                "admin_api.key[0].key_sha256",
                "64 hex digits",
            ),
            (
                api(&key("a", &format!("+f{}", &HASH_A[2..]))),
                "admin_api.key[0].key_sha256",
                "not hex",
            ),
            (
                api(&format!("{}{}", key("a", HASH_A), key("a", HASH_B))),
                "admin_api.key[1].name",
                "duplicate key name",
            ),
            (
                api(&format!("{}{}", key("a", HASH_A), key("b", HASH_A))),
                "admin_api.key[1].key_sha256",
                "already configured",
            ),
            (
                api(&key("help desk", HASH_A)),
                "admin_api.key[0].name",
                "not a key name",
            ),
            (
                api(&key("", HASH_A)),
                "admin_api.key[0].name",
                "not a key name",
            ),
            (
                api("[[admin_api.key]]\nname = \"a\"\nkey = \"tgk_x\"\n"),
                "admin_api.key.key",
                "unknown field",
            ),
        ];
        for (text, key, reason) in cases {
            let e = load_text(&text).unwrap_err();
            assert_eq!(e.key, key, "{e}");
            assert!(e.reason.contains(reason), "{e}");
            assert!(e.to_string().starts_with(&e.file), "{e}");
            assert!(e.file.ends_with("t.toml"), "{e}");
        }
    }

    #[test]
    fn profile_attributes_are_pre_encoded() {
        let c = load_text(&format!(
            "{MINIMAL}\n[profile.vpn]\nreply = [\"Session-Timeout = 3600\", \"Class = \\\"gold\\\"\"]\n"
        ))
        .unwrap();
        let p = &c.profiles["vpn"];
        assert_eq!(p[0], vec![27, 6, 0, 0, 0x0e, 0x10]);
        assert_eq!(p[1], b"\x19\x06gold".to_vec());
    }
}
