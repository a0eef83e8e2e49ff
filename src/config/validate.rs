//! Semantic checks of a parsed [`FileConfig`], one function per section, run in file order by
//! [`validate`] into a [`Config`].
//!
//! Each check names the offending key in dotted form (`client[0].secret`) and the first failure
//! stops the load; the order of the checks is part of the behaviour (tests assert which key a bad
//! file is refused for). Reads the dictionary and the secret files a section names.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::file::{
    AdminApiSection, AuditSection, ChallengeSection, ClientSection, DomainSection, FileConfig,
    MetricsSection, ProfileSection, RadiusSection, ServerSection,
};
use super::{
    absolute_sqlite_url, check_api_key_name, default_dictionary, parse_net, parse_sha256_hex,
    resolve, sqlite_url, tacacs, trim_newline, AdminApi, ApiKey, Client, Config, ConfigError,
    Secret, CONFIG_VERSION,
};
use crate::policy::Policies;
use crate::radius::dict::Dictionary;

/// Builds a [`ConfigError`] for the file being validated from a key and a reason.
type ErrFn<'a> = &'a dyn Fn(String, String) -> ConfigError;

/// Validates `file` (read from `path`; relative paths resolve against `base`) into a [`Config`].
pub(super) fn validate(path: &Path, base: &Path, file: FileConfig) -> Result<Config, ConfigError> {
    let file_name = path.display().to_string();
    let err = |key: String, reason: String| ConfigError {
        file: file_name.clone(),
        key,
        reason,
    };
    version(file.version, &err)?;
    let server = server(&file.server, base, &err)?;
    let radius_listen = radius(&file.radius, &err)?;
    audit(&file.audit, &err)?;
    challenge(&file.challenge, &err)?;
    let profiles = profiles(&file.profiles, &server.dictionary, &err)?;
    let clients = clients(&file.clients, &profiles, base, &err)?;
    let domains = domains(&file.domains, &err)?;
    let metrics_listen = metrics(file.metrics.as_ref(), &err)?;
    let admin_api = admin_api(file.admin_api.as_ref(), &err)?;
    let tacacs = match &file.tacacs {
        None => None,
        Some(t) => Some(tacacs::validate(t, base, &err)?),
    };

    Ok(Config {
        path: path.to_path_buf(),
        tacacs,
        data_dir: server.data_dir,
        database_url: server.database_url,
        master_key_file: server.master_key_file,
        dictionary: Arc::new(server.dictionary),
        radius_listen,
        clients,
        profiles,
        domains,
        admin_api,
        metrics_listen,
        file,
    })
}

/// `version`: the only format this build reads.
fn version(version: u32, err: ErrFn) -> Result<(), ConfigError> {
    if version != CONFIG_VERSION {
        return Err(err(
            "version".into(),
            format!("unsupported version {version} (this build reads {CONFIG_VERSION})"),
        ));
    }
    Ok(())
}

/// What `[server]` resolves to.
struct Server {
    data_dir: PathBuf,
    database_url: String,
    master_key_file: PathBuf,
    dictionary: Dictionary,
}

/// `[server]`: the data directory, database URL, master key file, dictionary and write batch.
fn server(s: &ServerSection, base: &Path, err: ErrFn) -> Result<Server, ConfigError> {
    let data_dir = resolve(base, &s.data_dir);
    let database_url = match (&s.database_env, &s.database) {
        (Some(var), _) => std::env::var(var).map_err(|_| {
            err(
                "server.database_env".into(),
                format!("environment variable {var} is not set"),
            )
        })?,
        (None, Some(url)) => url.clone(),
        (None, None) => sqlite_url(&data_dir.join("tokengate.db")),
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
    let master_key_file = s
        .master_key_file
        .as_ref()
        .map(|p| resolve(base, p))
        .unwrap_or_else(|| data_dir.join("master.key"));
    let dict_path = s
        .dictionary
        .as_ref()
        .map(|p| resolve(base, p))
        .unwrap_or_else(|| default_dictionary(base));
    let dictionary =
        Dictionary::load(&dict_path).map_err(|e| err("server.dictionary".into(), e.to_string()))?;
    if s.write_batch == 0 || s.write_batch > 10_000 {
        return Err(err("server.write_batch".into(), "must be 1..=10000".into()));
    }
    Ok(Server {
        data_dir,
        database_url,
        master_key_file,
        dictionary,
    })
}

/// `[radius]`: listen addresses and limits.
fn radius(r: &RadiusSection, err: ErrFn) -> Result<Vec<SocketAddr>, ConfigError> {
    let mut radius_listen = Vec::new();
    for (i, l) in r.listen.iter().enumerate() {
        let addr: SocketAddr = l.parse().map_err(|e| {
            err(
                format!("radius.listen[{i}]"),
                format!("{l:?} is not ip:port: {e}"),
            )
        })?;
        radius_listen.push(addr);
    }
    if !(1..=60).contains(&r.duplicate_ttl_secs) {
        return Err(err(
            "radius.duplicate_ttl_secs".into(),
            "must be 1..=60 (RFC 5080 suggests 5 to 30)".into(),
        ));
    }
    if r.previous_secret_grace_secs > 3600 {
        return Err(err(
            "radius.previous_secret_grace_secs".into(),
            "must be 0..=3600".into(),
        ));
    }
    if r.max_in_flight == 0 {
        return Err(err(
            "radius.max_in_flight".into(),
            "must be at least 1".into(),
        ));
    }
    Ok(radius_listen)
}

/// `[audit]`: the prune batch size.
fn audit(a: &AuditSection, err: ErrFn) -> Result<(), ConfigError> {
    if !(1..=100_000).contains(&a.prune_batch) {
        return Err(err("audit.prune_batch".into(), "must be 1..=100000".into()));
    }
    Ok(())
}

/// `[challenge]`: the session lifetime.
fn challenge(c: &ChallengeSection, err: ErrFn) -> Result<(), ConfigError> {
    if !(10..=3600).contains(&c.ttl_secs) {
        return Err(err("challenge.ttl_secs".into(), "must be 10..=3600".into()));
    }
    Ok(())
}

/// `[profile.<name>]`: encode every attribute now so a typo fails at start-up.
fn profiles(
    sections: &BTreeMap<String, ProfileSection>,
    dictionary: &Dictionary,
    err: ErrFn,
) -> Result<BTreeMap<String, Vec<Vec<u8>>>, ConfigError> {
    let mut profiles = BTreeMap::new();
    for (name, p) in sections {
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
    Ok(profiles)
}

/// `[[client]]`: names unique, addresses, shared secrets, profiles and TACACS+ keys.
fn clients(
    sections: &[ClientSection],
    profiles: &BTreeMap<String, Vec<Vec<u8>>>,
    base: &Path,
    err: ErrFn,
) -> Result<Vec<Client>, ConfigError> {
    let mut clients = Vec::new();
    let mut seen_names = BTreeSet::new();
    for (i, c) in sections.iter().enumerate() {
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
        let secret = shared_secret(c, base, &key, err)?;
        if secret.is_empty() {
            return Err(err(key("secret"), "the shared secret is empty".into()));
        }
        if let Some(p) = &c.profile {
            if !profiles.contains_key(p) {
                return Err(err(key("profile"), format!("no [profile.{p}] section")));
            }
        }
        let tacacs_keys = tacacs_keys(i, c, base, &key, err)?;
        clients.push(Client {
            name: c.name.clone(),
            net,
            secret: Secret(secret),
            require_message_authenticator: c.require_message_authenticator,
            profile: c.profile.clone(),
            tacacs_keys,
        });
    }
    Ok(clients)
}

/// A client's RADIUS shared secret: exactly one of `secret`, `secret_file`, `secret_env`.
fn shared_secret(
    c: &ClientSection,
    base: &Path,
    key: &dyn Fn(&str) -> String,
    err: ErrFn,
) -> Result<Vec<u8>, ConfigError> {
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
    Ok(secret)
}

/// A client's TACACS+ keys in the order they are tried: `tacacs_keys`, then the lines of
/// `tacacs_key_file`, then `tacacs_key_env`; at most 8.
fn tacacs_keys(
    i: usize,
    c: &ClientSection,
    base: &Path,
    key: &dyn Fn(&str) -> String,
    err: ErrFn,
) -> Result<Vec<Secret>, ConfigError> {
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
    Ok(tacacs_keys)
}

/// `[domain.<name>]`: policy ranges; `default` always exists (built-in policies unless given).
fn domains(
    sections: &BTreeMap<String, DomainSection>,
    err: ErrFn,
) -> Result<BTreeMap<String, Policies>, ConfigError> {
    let mut domains = BTreeMap::new();
    domains.insert("default".to_string(), Policies::default());
    for (name, d) in sections {
        domains.insert(name.clone(), domain(name, d, err)?);
    }
    Ok(domains)
}

/// One `[domain.<name>]`: token windows, PIN and fixed passcode lengths, lockout, emergency and
/// offline lifetimes.
fn domain(name: &str, d: &DomainSection, err: ErrFn) -> Result<Policies, ConfigError> {
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
    Ok(Policies {
        token: d.token.clone(),
        pin: d.pin.clone(),
        lockout: d.lockout.clone(),
        emergency: d.emergency.clone(),
        offline: d.offline.clone(),
        fixed_passcode: d.fixed_passcode.clone(),
    })
}

/// `[metrics]`: the listener address, when configured.
fn metrics(m: Option<&MetricsSection>, err: ErrFn) -> Result<Option<SocketAddr>, ConfigError> {
    let Some(m) = m else {
        return Ok(None);
    };
    let listen = m.listen.parse::<SocketAddr>().map_err(|e| {
        err(
            "metrics.listen".into(),
            format!("{:?} is not ip:port: {e}", m.listen),
        )
    })?;
    Ok(Some(listen))
}

/// `[admin_api]`: the listener address and at least one API key (names and hashes unique).
fn admin_api(a: Option<&AdminApiSection>, err: ErrFn) -> Result<Option<AdminApi>, ConfigError> {
    let Some(a) = a else {
        return Ok(None);
    };
    let listen: SocketAddr = a.listen.parse().map_err(|e| {
        err(
            "admin_api.listen".into(),
            format!("{:?} is not ip:port: {e}", a.listen),
        )
    })?;
    if a.keys.is_empty() {
        return Err(err(
            "admin_api.key".into(),
            "at least one [[admin_api.key]] is required (tokengate api-key new NAME)".into(),
        ));
    }
    let mut keys: Vec<ApiKey> = Vec::new();
    for (i, k) in a.keys.iter().enumerate() {
        let key = |f: &str| format!("admin_api.key[{i}].{f}");
        check_api_key_name(&k.name).map_err(|why| err(key("name"), why))?;
        if keys.iter().any(|seen| seen.name == k.name) {
            return Err(err(key("name"), format!("duplicate key name {:?}", k.name)));
        }
        let sha256 = parse_sha256_hex(&k.key_sha256).map_err(|why| err(key("key_sha256"), why))?;
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
    Ok(Some(AdminApi { listen, keys }))
}
