//! TOML configuration: parsing, defaults and validation into runtime settings.
//!
//! The file is strict: unknown keys are errors (`deny_unknown_fields`), every error names the file,
//! the key and the reason, and semantic checks (addresses, secrets, profile attributes against the
//! dictionary, policy ranges) run at load time so a bad file fails at start-up, never at the first
//! packet. Secrets are held in [`Secret`], whose `Debug` never shows the value. This module reads
//! files (the config and the secret files it names) but opens no sockets and touches no database.
//!
//! Layout: this file holds the validated runtime settings ([`Config`], [`Client`], [`AdminApi`])
//! and the path helpers; `file.rs` the serde sections of [`FileConfig`] and their defaults;
//! `validate.rs` the checks, one function per section; `tacacs.rs` the `[tacacs]` section. The
//! per-domain policies themselves are plain data in [`crate::policy`].

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipnet::IpNet;

use crate::policy::Policies;
use crate::radius::dict::Dictionary;

mod file;
mod tacacs;
mod validate;
pub use file::{
    AdminApiSection, ApiKeySection, AuditSection, CacheSection, ChallengeSection, ClientSection,
    DomainSection, FileConfig, MetricsSection, NameCase, ProfileSection, RadiusSection,
    ServerSection,
};
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
        validate::validate(path, base, file)
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
    let built = sqlite_url(&abs);
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

/// Builds a `sqlite://` URL for a file path, percent-encoding the characters a URL would
/// otherwise take for syntax. The file is created when missing.
pub fn sqlite_url(path: &Path) -> String {
    let mut out = String::from("sqlite://");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3F"),
            '#' => out.push_str("%23"),
            ' ' => out.push_str("%20"),
            c => out.push(c),
        }
    }
    out.push_str("?mode=rwc");
    out
}

/// The database URL with its password (if any) replaced by `***`, for logs and command output:
/// the user-info password (`postgres://user:password@host/db`) and a `password=` query
/// parameter (`postgres://host/db?user=u&password=p`).
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    // The user info ends at the last `@` of the authority (a password may hold a raw `@`).
    let authority = base.find("://").map(|s| {
        let end = base
            .get(s + 3..)
            .and_then(|rest| rest.find('/'))
            .map_or(base.len(), |i| s + 3 + i);
        (s + 3, end)
    });
    let at = authority.and_then(|(start, end)| {
        let found = base.get(start..end)?.rfind('@')?;
        Some((start, start + found))
    });
    let mut out = match at {
        Some((start, at)) => {
            let creds = base.get(start..at).unwrap_or_default();
            match creds.split_once(':') {
                Some((user, _)) => format!(
                    "{}{user}:***{}",
                    base.get(..start).unwrap_or_default(),
                    base.get(at..).unwrap_or_default()
                ),
                None => base.to_owned(),
            }
        }
        None => base.to_owned(),
    };
    if let Some(query) = query {
        out.push('?');
        let params: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect();
        out.push_str(&params.join("&"));
    }
    out
}

#[cfg(test)]
mod tests;
