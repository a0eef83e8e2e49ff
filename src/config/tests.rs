//! Unit tests of loading and validation: defaults, error keys and messages, secrets, profiles.

use super::*;
use crate::policy::EmergencyPolicy;

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
