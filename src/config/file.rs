//! The configuration file as written by the admin: the serde sections of [`FileConfig`] with
//! their built-in defaults, before any semantic check (see `validate.rs` for those).
//!
//! Every section is strict (`deny_unknown_fields`). The `[domain.<name>]` policies and
//! `[prompts]` are the plain records of [`crate::policy`]; `[tacacs]` lives in `tacacs.rs`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::tacacs::TacacsSection;
use crate::policy::{
    EmergencyPolicy, FixedPasscodePolicy, LockoutPolicy, OfflinePolicy, PinPolicy, Prompts,
    TokenPolicy,
};

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
