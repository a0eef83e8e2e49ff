//! The `[tacacs]` section: listeners, limits, the enable policy and authorization sets.
//!
//! Parsed with the same strictness as the rest of the file (`deny_unknown_fields`) and validated
//! into [`Tacacs`] at load time, so a bad limit, argument or pattern fails at start-up with the
//! key's dotted path. Reads no files besides those it names; opens no sockets.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[tacacs]`: the TACACS+ front end (RFC 8907).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TacacsSection {
    /// TCP addresses to listen on (`127.0.0.1:49`).
    pub listen: Vec<String>,
    /// Connections served at once; more are closed at once and counted.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A connection that sends nothing for this long is closed and counted.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_secs: u64,
    /// Sessions alive at once on one single-connection connection.
    #[serde(default = "default_max_sessions")]
    pub max_sessions_per_connection: usize,
    /// Prompts (GETUSER, GETPASS) the server may send in one session.
    #[serde(default = "default_max_rounds")]
    pub max_rounds: u8,
    /// `service=enable` logins (RFC 8907 §5.4.2.8, `enable` on a device).
    #[serde(default)]
    pub enable: EnableSection,
    /// Authorization attribute sets by user name; `default` applies to every other known user.
    #[serde(default)]
    pub authorization: BTreeMap<String, TacacsAuthorSection>,
}

/// `[tacacs.enable]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnableSection {
    /// `token` (PIN + a fresh tokencode, like a login) or `deny` (every enable fails).
    #[serde(default = "default_enable_policy")]
    pub policy: EnablePolicy,
    /// Only these users may enable (empty = every user who can log in).
    #[serde(default)]
    pub users: Vec<String>,
    /// The highest privilege level an enable may ask for (the START's `priv_lvl`).
    #[serde(default = "default_enable_max_priv_lvl")]
    pub max_priv_lvl: u8,
}

impl Default for EnableSection {
    fn default() -> Self {
        EnableSection {
            policy: default_enable_policy(),
            users: Vec::new(),
            max_priv_lvl: default_enable_max_priv_lvl(),
        }
    }
}

/// What an enable request is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EnablePolicy {
    /// The same PIN + tokencode as a login (a fresh one: the replay guard applies).
    Token,
    /// Refused outright.
    Deny,
}

/// `[tacacs.authorization.<user or default>]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TacacsAuthorSection {
    /// Arguments answered with PASS_ADD (`service=shell`, `priv-lvl=15`).
    pub args: Vec<String>,
}

fn default_max_connections() -> usize {
    1024
}
fn default_idle_timeout() -> u64 {
    60
}
fn default_max_sessions() -> usize {
    16
}
fn default_max_rounds() -> u8 {
    8
}
fn default_enable_policy() -> EnablePolicy {
    EnablePolicy::Token
}
fn default_enable_max_priv_lvl() -> u8 {
    15
}

/// The TACACS+ front end after validation.
#[derive(Debug, Clone)]
pub struct Tacacs {
    /// TCP listen addresses.
    pub listen: Vec<SocketAddr>,
    /// Connections served at once.
    pub max_connections: usize,
    /// Idle timeout of a connection.
    pub idle_timeout: std::time::Duration,
    /// Sessions alive at once on one connection.
    pub max_sessions_per_connection: usize,
    /// Prompts per session.
    pub max_rounds: u8,
    /// The enable policy.
    pub enable: TacacsEnable,
    /// Authorization arguments by user name (or `default`).
    pub authorization: BTreeMap<String, Vec<Vec<u8>>>,
}

/// The enable policy after validation.
#[derive(Debug, Clone)]
pub struct TacacsEnable {
    /// Token or deny.
    pub policy: EnablePolicy,
    /// Users allowed to enable (empty = all).
    pub users: BTreeSet<String>,
    /// Highest privilege level an enable may ask for.
    pub max_priv_lvl: u8,
}

impl TacacsEnable {
    /// Whether `user` (normalised) may try an enable to `priv_lvl` at all.
    pub fn allows(&self, user: &str, priv_lvl: u8) -> bool {
        self.policy == EnablePolicy::Token
            && priv_lvl <= self.max_priv_lvl
            && (self.users.is_empty() || self.users.contains(user))
    }
}

/// Validates `[tacacs]`; `err` builds an error naming the file.
pub(super) fn validate(
    t: &TacacsSection,
    _base: &Path,
    err: &dyn Fn(String, String) -> ConfigError,
) -> Result<Tacacs, ConfigError> {
    let mut listen = Vec::new();
    for (i, l) in t.listen.iter().enumerate() {
        let addr: SocketAddr = l.parse().map_err(|e| {
            err(
                format!("tacacs.listen[{i}]"),
                format!("{l:?} is not ip:port: {e}"),
            )
        })?;
        listen.push(addr);
    }
    if listen.is_empty() {
        return Err(err(
            "tacacs.listen".into(),
            "give at least one address (or remove [tacacs])".into(),
        ));
    }
    if !(1..=100_000).contains(&t.max_connections) {
        return Err(err(
            "tacacs.max_connections".into(),
            "must be 1..=100000".into(),
        ));
    }
    if !(1..=3600).contains(&t.idle_timeout_secs) {
        return Err(err(
            "tacacs.idle_timeout_secs".into(),
            "must be 1..=3600".into(),
        ));
    }
    if !(1..=256).contains(&t.max_sessions_per_connection) {
        return Err(err(
            "tacacs.max_sessions_per_connection".into(),
            "must be 1..=256".into(),
        ));
    }
    if !(2..=32).contains(&t.max_rounds) {
        return Err(err(
            "tacacs.max_rounds".into(),
            "must be 2..=32 (a login needs GETUSER and GETPASS)".into(),
        ));
    }
    if t.enable.max_priv_lvl > 15 {
        return Err(err(
            "tacacs.enable.max_priv_lvl".into(),
            "must be 0..=15".into(),
        ));
    }
    let mut users = BTreeSet::new();
    for (i, u) in t.enable.users.iter().enumerate() {
        if u.is_empty() {
            return Err(err(
                format!("tacacs.enable.users[{i}]"),
                "empty user name".into(),
            ));
        }
        users.insert(u.clone());
    }
    let enable = TacacsEnable {
        policy: t.enable.policy,
        users,
        max_priv_lvl: t.enable.max_priv_lvl,
    };
    let mut authorization = BTreeMap::new();
    for (name, set) in &t.authorization {
        let key = format!("tacacs.authorization.{name}.args");
        authorization.insert(name.clone(), validate_args(&key, &set.args, err)?);
    }
    Ok(Tacacs {
        authorization,
        enable,
        listen,
        max_connections: t.max_connections,
        idle_timeout: std::time::Duration::from_secs(t.idle_timeout_secs),
        max_sessions_per_connection: t.max_sessions_per_connection,
        max_rounds: t.max_rounds,
    })
}

/// Checks a list of `name=value` / `name*value` arguments (at most 255, each at most 255 bytes).
fn validate_args(
    key: &str,
    args: &[String],
    err: &dyn Fn(String, String) -> ConfigError,
) -> Result<Vec<Vec<u8>>, ConfigError> {
    if args.len() > 255 {
        return Err(err(key.to_string(), "at most 255 arguments".into()));
    }
    let mut out = Vec::new();
    for (i, a) in args.iter().enumerate() {
        let bad = a.len() > 255 || a.starts_with(['=', '*']) || !a.contains(['=', '*']);
        if bad {
            return Err(err(
                format!("{key}[{i}]"),
                format!("{a:?} is not \"name=value\" or \"name*value\" (at most 255 bytes)"),
            ));
        }
        out.push(a.as_bytes().to_vec());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{load_text, MINIMAL};
    use super::*;

    #[test]
    fn enable_defaults_to_token_for_everyone_up_to_15() {
        let c = load_text(&format!("{MINIMAL}[tacacs]\nlisten = [\"127.0.0.1:0\"]\n")).unwrap();
        let e = c.tacacs.unwrap().enable;
        assert_eq!(e.policy, EnablePolicy::Token);
        assert!(e.allows("anyone", 15));
    }

    #[test]
    fn enable_policy_users_and_level_are_enforced() {
        let c = load_text(&format!(
            "{MINIMAL}[tacacs]\nlisten = [\"127.0.0.1:0\"]\n\
             [tacacs.enable]\nusers = [\"alice\"]\nmax_priv_lvl = 7\n"
        ))
        .unwrap();
        let e = c.tacacs.unwrap().enable;
        assert!(e.allows("alice", 7));
        assert!(!e.allows("alice", 8), "above max_priv_lvl");
        assert!(!e.allows("bob", 1), "not listed");
        let c = load_text(&format!(
            "{MINIMAL}[tacacs]\nlisten = [\"127.0.0.1:0\"]\n[tacacs.enable]\npolicy = \"deny\"\n"
        ))
        .unwrap();
        assert!(!c.tacacs.unwrap().enable.allows("alice", 1));
    }

    #[test]
    fn enable_errors_name_the_key() {
        for (text, key) in [
            (
                "[tacacs.enable]\nmax_priv_lvl = 16\n",
                "tacacs.enable.max_priv_lvl",
            ),
            (
                "[tacacs.enable]\nusers = [\"\"]\n",
                "tacacs.enable.users[0]",
            ),
            (
                "[tacacs.enable]\npolicy = \"maybe\"\n",
                "tacacs.enable.policy",
            ),
        ] {
            let e = load_text(&format!(
                "{MINIMAL}[tacacs]\nlisten = [\"127.0.0.1:0\"]\n{text}"
            ))
            .unwrap_err();
            assert!(e.key.starts_with(key), "{e}");
        }
    }
}
