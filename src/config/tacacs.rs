//! The `[tacacs]` section: listeners, limits, the enable policy and authorization sets.
//!
//! Parsed with the same strictness as the rest of the file (`deny_unknown_fields`) and validated
//! into [`Tacacs`] at load time, so a bad limit, argument or pattern fails at start-up with the
//! key's dotted path. Reads no files besides those it names; opens no sockets.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use serde::{Deserialize, Serialize};

use super::{resolve, ConfigError};
use crate::tacacs::policy::command_pattern;
use crate::tacacs::AuthorSet;

/// `[tacacs]`: the TACACS+ front end (RFC 8907).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TacacsSection {
    /// TCP addresses to listen on (`127.0.0.1:49`).
    #[serde(default)]
    pub listen: Vec<String>,
    /// TLS 1.3 addresses (RFC 9887, port 300); needs the three `tls_*_file` keys.
    #[serde(default)]
    pub tls_listen: Vec<String>,
    /// PEM server certificate chain (leaf first).
    #[serde(default)]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of the leaf certificate (PKCS#8, PKCS#1 or SEC1).
    #[serde(default)]
    pub tls_key_file: Option<PathBuf>,
    /// PEM CA certificate(s) that client certificates must chain to (required).
    #[serde(default)]
    pub tls_client_ca_file: Option<PathBuf>,
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
    /// Authorization sets by user name; `default` applies to every other known user who is in
    /// no group.
    #[serde(default)]
    pub authorization: BTreeMap<String, TacacsAuthorSection>,
    /// Groups in order: a user's set is the first group that lists them (after their own set).
    #[serde(default)]
    pub group: Vec<TacacsGroupSection>,
}

/// `[[tacacs.group]]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TacacsGroupSection {
    /// Group name (referenced by `tacacs.enable.groups`).
    pub name: String,
    /// User names (as normalised by `server.user_name_case`).
    pub members: Vec<String>,
    /// The group's authorization set.
    #[serde(flatten)]
    pub set: TacacsAuthorSection,
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
    /// Members of these `[[tacacs.group]]`s may enable too.
    #[serde(default)]
    pub groups: Vec<String>,
    /// The highest privilege level an enable may ask for (the START's `priv_lvl`).
    #[serde(default = "default_enable_max_priv_lvl")]
    pub max_priv_lvl: u8,
}

impl Default for EnableSection {
    fn default() -> Self {
        EnableSection {
            policy: default_enable_policy(),
            users: Vec::new(),
            groups: Vec::new(),
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
    /// Attributes (`service=shell`, `priv-lvl=15`; `name*value` for optional ones).
    #[serde(default)]
    pub args: Vec<String>,
    /// Commands allowed: regular expressions over `cmd cmd-arg …`, anchored at both ends.
    #[serde(default)]
    pub permit: Vec<String>,
    /// Commands refused even when a `permit` pattern matches.
    #[serde(default)]
    pub deny: Vec<String>,
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
    /// The TLS listener, when `tls_listen` is set.
    pub tls: Option<TacacsTls>,
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
    /// Authorization sets by user name (or `default`).
    pub authorization: BTreeMap<String, AuthorSet>,
    /// Groups in configuration order.
    pub groups: Vec<TacacsGroup>,
}

/// The TLS listener after validation: addresses and a ready rustls configuration (TLS 1.3
/// only, `ring` provider, client certificates required and verified against the CA file).
#[derive(Clone)]
pub struct TacacsTls {
    /// TLS listen addresses.
    pub listen: Vec<SocketAddr>,
    /// The server configuration.
    pub server: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for TacacsTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TacacsTls")
            .field("listen", &self.listen)
            .finish_non_exhaustive()
    }
}

/// One `[[tacacs.group]]` after validation.
#[derive(Debug, Clone)]
pub struct TacacsGroup {
    /// Name.
    pub name: String,
    /// Members.
    pub members: BTreeSet<String>,
    /// Authorization set.
    pub set: AuthorSet,
}

impl Tacacs {
    /// The set that applies to `user` (normalised): their own, else the first group listing
    /// them, else `default`; `None` = no set (FAIL).
    pub fn author_set(&self, user: &str) -> Option<&AuthorSet> {
        self.authorization
            .get(user)
            .or_else(|| {
                self.groups
                    .iter()
                    .find(|g| g.members.contains(user))
                    .map(|g| &g.set)
            })
            .or_else(|| self.authorization.get("default"))
    }

    /// Whether `user` (normalised) may try an enable to `priv_lvl` at all.
    pub fn enable_allows(&self, user: &str, priv_lvl: u8) -> bool {
        let e = &self.enable;
        let listed = (e.users.is_empty() && e.groups.is_empty())
            || e.users.contains(user)
            || self
                .groups
                .iter()
                .any(|g| e.groups.contains(&g.name) && g.members.contains(user));
        e.policy == EnablePolicy::Token && priv_lvl <= e.max_priv_lvl && listed
    }
}

/// The enable policy after validation.
#[derive(Debug, Clone)]
pub struct TacacsEnable {
    /// Token or deny.
    pub policy: EnablePolicy,
    /// Users allowed to enable (with `groups` empty too: all).
    pub users: BTreeSet<String>,
    /// Groups whose members may enable.
    pub groups: BTreeSet<String>,
    /// Highest privilege level an enable may ask for.
    pub max_priv_lvl: u8,
}

/// Validates `[tacacs]`; `err` builds an error naming the file.
pub(super) fn validate(
    t: &TacacsSection,
    base: &Path,
    err: &dyn Fn(String, String) -> ConfigError,
) -> Result<Tacacs, ConfigError> {
    let listen = addresses("tacacs.listen", &t.listen, err)?;
    let tls_listen = addresses("tacacs.tls_listen", &t.tls_listen, err)?;
    if listen.is_empty() && tls_listen.is_empty() {
        return Err(err(
            "tacacs.listen".into(),
            "give at least one address in listen or tls_listen (or remove [tacacs])".into(),
        ));
    }
    let tls = if tls_listen.is_empty() {
        for (key, v) in [
            ("tls_cert_file", &t.tls_cert_file),
            ("tls_key_file", &t.tls_key_file),
            ("tls_client_ca_file", &t.tls_client_ca_file),
        ] {
            if v.is_some() {
                return Err(err(
                    format!("tacacs.{key}"),
                    "set without tls_listen (nothing would use it)".into(),
                ));
            }
        }
        None
    } else {
        Some(TacacsTls {
            listen: tls_listen,
            server: tls_server(t, base, err)?,
        })
    };
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
    let mut authorization = BTreeMap::new();
    for (name, set) in &t.authorization {
        let key = format!("tacacs.authorization.{name}");
        authorization.insert(name.clone(), validate_set(&key, set, err)?);
    }
    let mut groups: Vec<TacacsGroup> = Vec::new();
    for (i, g) in t.group.iter().enumerate() {
        let key = format!("tacacs.group[{i}]");
        if g.name.is_empty() || groups.iter().any(|o| o.name == g.name) {
            return Err(err(
                format!("{key}.name"),
                format!("{:?}: group names must be non-empty and unique", g.name),
            ));
        }
        let mut members = BTreeSet::new();
        for (j, m) in g.members.iter().enumerate() {
            if m.is_empty() {
                return Err(err(format!("{key}.members[{j}]"), "empty user name".into()));
            }
            members.insert(m.clone());
        }
        groups.push(TacacsGroup {
            name: g.name.clone(),
            members,
            set: validate_set(&key, &g.set, err)?,
        });
    }
    let mut enable_groups = BTreeSet::new();
    for (i, g) in t.enable.groups.iter().enumerate() {
        if !groups.iter().any(|o| &o.name == g) {
            return Err(err(
                format!("tacacs.enable.groups[{i}]"),
                format!("{g:?} is not the name of a [[tacacs.group]]"),
            ));
        }
        enable_groups.insert(g.clone());
    }
    let enable = TacacsEnable {
        policy: t.enable.policy,
        users,
        groups: enable_groups,
        max_priv_lvl: t.enable.max_priv_lvl,
    };
    Ok(Tacacs {
        tls,
        authorization,
        groups,
        enable,
        listen,
        max_connections: t.max_connections,
        idle_timeout: std::time::Duration::from_secs(t.idle_timeout_secs),
        max_sessions_per_connection: t.max_sessions_per_connection,
        max_rounds: t.max_rounds,
    })
}

fn addresses(
    key: &str,
    list: &[String],
    err: &dyn Fn(String, String) -> ConfigError,
) -> Result<Vec<SocketAddr>, ConfigError> {
    list.iter()
        .enumerate()
        .map(|(i, l)| {
            l.parse()
                .map_err(|e| err(format!("{key}[{i}]"), format!("{l:?} is not ip:port: {e}")))
        })
        .collect()
}

/// Builds the RFC 9887 server configuration: TLS 1.3 only, `ring`, client certificates
/// required and verified against `tls_client_ca_file`; every file problem names its key.
fn tls_server(
    t: &TacacsSection,
    base: &Path,
    err: &dyn Fn(String, String) -> ConfigError,
) -> Result<Arc<rustls::ServerConfig>, ConfigError> {
    let file = |key: &str, v: &Option<PathBuf>| {
        v.as_ref()
            .map(|p| resolve(base, p))
            .ok_or_else(|| err(format!("tacacs.{key}"), "required with tls_listen".into()))
    };
    let certs = |key: &str, path: &Path| {
        let key = format!("tacacs.{key}");
        let list = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| err(key.clone(), format!("{}: {e}", path.display())))?;
        if list.is_empty() {
            return Err(err(
                key,
                format!("{}: no PEM CERTIFICATE in the file", path.display()),
            ));
        }
        Ok(list)
    };
    let cert_path = file("tls_cert_file", &t.tls_cert_file)?;
    let key_path = file("tls_key_file", &t.tls_key_file)?;
    let ca_path = file("tls_client_ca_file", &t.tls_client_ca_file)?;
    let chain = certs("tls_cert_file", &cert_path)?;
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| {
        err(
            "tacacs.tls_key_file".into(),
            format!("{}: {e}", key_path.display()),
        )
    })?;
    let mut roots = rustls::RootCertStore::empty();
    for c in certs("tls_client_ca_file", &ca_path)? {
        roots.add(c).map_err(|e| {
            err(
                "tacacs.tls_client_ca_file".into(),
                format!("{}: {e}", ca_path.display()),
            )
        })?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| {
        err(
            "tacacs.tls_client_ca_file".into(),
            format!("{}: {e}", ca_path.display()),
        )
    })?;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| err("tacacs.tls_listen".into(), e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| {
            err(
                "tacacs.tls_key_file".into(),
                format!(
                    "{} does not fit {}: {e}",
                    key_path.display(),
                    cert_path.display()
                ),
            )
        })?;
    Ok(Arc::new(config))
}

/// Checks one authorization set: its arguments and its command patterns.
fn validate_set(
    key: &str,
    set: &TacacsAuthorSection,
    err: &dyn Fn(String, String) -> ConfigError,
) -> Result<AuthorSet, ConfigError> {
    let patterns = |field: &str, list: &[String]| {
        list.iter()
            .enumerate()
            .map(|(i, p)| {
                command_pattern(p)
                    .map_err(|e| err(format!("{key}.{field}[{i}]"), format!("{p:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(AuthorSet {
        args: validate_args(&format!("{key}.args"), &set.args, err)?,
        permit: patterns("permit", &set.permit)?,
        deny: patterns("deny", &set.deny)?,
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
        let t = c.tacacs.unwrap();
        assert_eq!(t.enable.policy, EnablePolicy::Token);
        assert!(t.enable_allows("anyone", 15));
    }

    #[test]
    fn enable_policy_users_and_level_are_enforced() {
        let c = load_text(&format!(
            "{MINIMAL}[tacacs]\nlisten = [\"127.0.0.1:0\"]\n\
             [tacacs.enable]\nusers = [\"alice\"]\nmax_priv_lvl = 7\n"
        ))
        .unwrap();
        let t = c.tacacs.unwrap();
        assert!(t.enable_allows("alice", 7));
        assert!(!t.enable_allows("alice", 8), "above max_priv_lvl");
        assert!(!t.enable_allows("bob", 1), "not listed");
        let c = load_text(&format!(
            "{MINIMAL}[tacacs]\nlisten = [\"127.0.0.1:0\"]\n[tacacs.enable]\npolicy = \"deny\"\n"
        ))
        .unwrap();
        assert!(!c.tacacs.unwrap().enable_allows("alice", 1));
    }

    const GROUPS: &str = "[tacacs]\nlisten = [\"127.0.0.1:0\"]\n\
        [tacacs.enable]\ngroups = [\"ops\"]\n\
        [tacacs.authorization.carol]\nargs = [\"service=shell\", \"priv-lvl=3\"]\n\
        [tacacs.authorization.default]\nargs = [\"service=shell\", \"priv-lvl=1\"]\n\
        [[tacacs.group]]\nname = \"ops\"\nmembers = [\"alice\", \"carol\"]\n\
        args = [\"service=shell\", \"priv-lvl=15\"]\npermit = [\"show .*\"]\ndeny = [\"show secret\"]\n\
        [[tacacs.group]]\nname = \"helpdesk\"\nmembers = [\"alice\", \"dave\"]\n\
        args = [\"service=shell\", \"priv-lvl=5\"]\n";

    #[test]
    fn author_set_is_the_user_then_the_first_group_then_default() {
        let t = load_text(&format!("{MINIMAL}{GROUPS}"))
            .unwrap()
            .tacacs
            .unwrap();
        let lvl = |u: &str| t.author_set(u).map(|s| s.args[1].clone());
        assert_eq!(lvl("carol").unwrap(), b"priv-lvl=3", "own set wins");
        assert_eq!(lvl("alice").unwrap(), b"priv-lvl=15", "first group");
        assert_eq!(lvl("dave").unwrap(), b"priv-lvl=5");
        assert_eq!(lvl("erin").unwrap(), b"priv-lvl=1", "default");
        assert_eq!(t.author_set("alice").unwrap().deny.len(), 1);
        assert!(t.enable_allows("alice", 15) && t.enable_allows("carol", 15));
        assert!(!t.enable_allows("dave", 15), "helpdesk may not enable");
    }

    #[test]
    fn group_and_pattern_errors_name_the_key() {
        for (from, to, key) in [
            (
                "permit = [\"show .*\"]",
                "permit = [\"show (\"]",
                "tacacs.group[0].permit[0]",
            ),
            (
                "deny = [\"show secret\"]",
                "deny = [\"[z-a]\"]",
                "tacacs.group[0].deny[0]",
            ),
            (
                "name = \"helpdesk\"",
                "name = \"ops\"",
                "tacacs.group[1].name",
            ),
            (
                "groups = [\"ops\"]",
                "groups = [\"nope\"]",
                "tacacs.enable.groups[0]",
            ),
            (
                "members = [\"alice\", \"dave\"]",
                "members = [\"\"]",
                "tacacs.group[1].members[0]",
            ),
            (
                "priv-lvl=3",
                "priv-lvl",
                "tacacs.authorization.carol.args[1]",
            ),
        ] {
            let e = load_text(&format!("{MINIMAL}{}", GROUPS.replace(from, to))).unwrap_err();
            assert_eq!(e.key, key, "{e}");
        }
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

    /// A CA-signed server certificate and key, a second key, and the CA, as PEM files.
    fn tls_files(dir: &Path) -> [String; 4] {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        let mut out = Vec::new();
        for (name, text) in [
            ("cert.pem", cert.pem()),
            ("key.pem", key.serialize_pem()),
            ("other.pem", other.serialize_pem()),
            ("ca.pem", ca.pem()),
        ] {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            out.push(p.display().to_string());
        }
        out.try_into().unwrap()
    }

    #[test]
    fn tls_listener_builds_a_tls13_config_with_required_client_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let [cert, key, _, ca] = tls_files(dir.path());
        let c = load_text(&format!(
            "{MINIMAL}[tacacs]\ntls_listen = [\"127.0.0.1:300\"]\ntls_cert_file = \"{cert}\"\n\
             tls_key_file = \"{key}\"\ntls_client_ca_file = \"{ca}\"\n"
        ))
        .unwrap();
        let t = c.tacacs.unwrap();
        assert!(t.listen.is_empty(), "TLS only");
        let tls = t.tls.unwrap();
        assert_eq!(tls.listen[0].port(), 300);
    }

    #[test]
    fn tls_errors_name_the_key_file_and_reason() {
        let dir = tempfile::tempdir().unwrap();
        let [cert, key, other, ca] = tls_files(dir.path());
        let missing = dir.path().join("missing.pem").display().to_string();
        let text = |cert: &str, key: &str, ca: &str| {
            format!(
                "{MINIMAL}[tacacs]\ntls_listen = [\"127.0.0.1:300\"]\ntls_cert_file = \"{cert}\"\n\
                 tls_key_file = \"{key}\"\ntls_client_ca_file = \"{ca}\"\n"
            )
        };
        let cases = [
            (
                text(&missing, &key, &ca),
                "tacacs.tls_cert_file",
                "missing.pem",
            ),
            (
                text(&key, &key, &ca),
                "tacacs.tls_cert_file",
                "no PEM CERTIFICATE",
            ),
            (
                text(&cert, &missing, &ca),
                "tacacs.tls_key_file",
                "missing.pem",
            ),
            (
                text(&cert, &other, &ca),
                "tacacs.tls_key_file",
                "does not fit",
            ),
            (
                text(&cert, &key, &missing),
                "tacacs.tls_client_ca_file",
                "missing.pem",
            ),
            (
                format!("{MINIMAL}[tacacs]\ntls_listen = [\"127.0.0.1:300\"]\n"),
                "tacacs.tls_cert_file",
                "required",
            ),
            (
                format!(
                    "{MINIMAL}[tacacs]\nlisten = [\"127.0.0.1:49\"]\ntls_cert_file = \"{cert}\"\n"
                ),
                "tacacs.tls_cert_file",
                "without tls_listen",
            ),
            (
                format!("{MINIMAL}[tacacs]\ntls_listen = [\"nope\"]\n"),
                "tacacs.tls_listen[0]",
                "ip:port",
            ),
        ];
        for (text, key, reason) in cases {
            let e = load_text(&text).unwrap_err();
            assert_eq!(e.key, key, "{e}");
            assert!(e.reason.contains(reason), "{e}");
            assert!(e.file.ends_with("t.toml"), "{e}");
        }
    }
}
