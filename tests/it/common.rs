//! Test harness: a real gateway on loopback with a temporary SQLite database (or the
//! PostgreSQL named by `TEST_DATABASE_URL` where a test asks for it), a RADIUS client built on
//! our encoder, and helpers for users, tokens and current tokencodes.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokengate::admin::{Admin, TokenSpec};
use tokengate::clock::Clock;
use tokengate::config::Config;
use tokengate::model::{HashAlgorithm, OtpMode, TokenKind};
use tokengate::otp;
use tokengate::radius::{attr, ClientKey, Code, Encoder, Packet};
use tokengate::server::Gateway;
use tokio::net::UdpSocket;

/// The RFC 4226 / 6238 SHA-1 seed: tests compute codes from it.
pub const SEED: &[u8] = b"12345678901234567890";
pub const SECRET: &str = "testing123";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Writes a config for a loopback gateway into `dir`. `extra` is appended verbatim.
pub fn write_config(dir: &Path, database: Option<&str>, extra: &str) -> PathBuf {
    let db = database
        .map(|u| format!("database = \"{u}\"\n"))
        .unwrap_or_default();
    let text = format!(
        r#"version = 1
[server]
data_dir = "{data}"
dictionary = "{dict}"
{db}
[radius]
listen = ["127.0.0.1:0"]

[cache]
change_poll_ms = 100

[[client]]
name = "nas"
address = "127.0.0.1/32"
secret = "{SECRET}"
profile = "vpn"

[[client]]
name = "legacy"
address = "127.0.0.2/32"
secret = "legacy-secret"
require_message_authenticator = false

[profile.vpn]
reply = ["Session-Timeout = 3600", "Class = \"gold\""]

[profile.admin]
reply = ["Cisco-AVPair = \"shell:priv-lvl=15\""]

{extra}
"#,
        data = dir.join("data").display(),
        dict = repo().join("dictionaries/dictionary").display(),
    );
    let p = dir.join("tokengate.toml");
    std::fs::write(&p, text).unwrap();
    p
}

pub struct TestGateway {
    pub gw: Option<Gateway>,
    pub addr: SocketAddr,
    pub config: Config,
    pub dir: tempfile::TempDir,
}

impl TestGateway {
    pub async fn start() -> TestGateway {
        Self::start_with("").await
    }

    pub async fn start_with(extra: &str) -> TestGateway {
        let dir = tempfile::tempdir().unwrap();
        let path = write_config(dir.path(), None, extra);
        Self::start_at(dir, &path).await
    }

    pub async fn start_at(dir: tempfile::TempDir, path: &Path) -> TestGateway {
        let config = Config::load(path).unwrap();
        let gw = Gateway::start_with_clock(config.clone(), Arc::new(Clock::system()))
            .await
            .unwrap();
        let addr = gw.radius_addrs()[0];
        TestGateway {
            gw: Some(gw),
            addr,
            config,
            dir,
        }
    }

    pub fn gw(&self) -> &Gateway {
        self.gw.as_ref().unwrap()
    }

    pub fn stat(&self, name: &str) -> u64 {
        self.gw().stats.snapshot()[name]
    }

    pub fn now(&self) -> i64 {
        self.gw().clock.now()
    }

    /// Admin operations on the gateway's own store.
    pub fn admin(&self) -> Admin<'_> {
        Admin::new(
            &self.gw().store,
            &self.config,
            self.gw().master_key(),
            "test".into(),
        )
    }

    /// Creates `name` with a PIN token (RFC seed, TOTP 30 s, 6 digits) and PIN `pin`.
    pub async fn user_with_token(
        &self,
        name: &str,
        pin: Option<&str>,
        kind: TokenKind,
        mode: OtpMode,
    ) -> String {
        let serial = format!("S-{name}");
        let now = self.now();
        let a = self.admin();
        a.add_user(name, "default", None, now).await.unwrap();
        a.add_token(
            TokenSpec {
                serial: Some(serial.clone()),
                kind,
                algorithm: HashAlgorithm::Sha1,
                digits: 6,
                mode,
                seed: Some(SEED.to_vec()),
                counter: 0,
                user: Some(name.to_string()),
                pin: pin.map(str::to_string),
                expires_at: None,
            },
            now,
        )
        .await
        .unwrap();
        serial
    }

    pub async fn pin_user(&self, name: &str) -> String {
        self.user_with_token(
            name,
            Some("1234"),
            TokenKind::Pin,
            OtpMode::Totp { period: 30 },
        )
        .await
    }

    /// The current TOTP step of the gateway's clock.
    pub fn step(&self) -> i64 {
        otp::totp_step(self.now(), 30)
    }

    pub async fn shutdown(mut self) -> tempfile::TempDir {
        self.gw.take().unwrap().shutdown().await;
        self.dir
    }
}

/// The 6-digit code of the test seed at `step`.
pub fn code(step: i64) -> String {
    otp::Code::new(otp::hotp(SEED, step as u64, 6, HashAlgorithm::Sha1), 6)
        .as_str()
        .to_string()
}

/// A decoded, verified reply.
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: Code,
    pub raw: Vec<u8>,
    pub attrs: Vec<(u8, Vec<u8>)>,
}

impl Reply {
    pub fn first(&self, t: u8) -> Option<&[u8]> {
        self.attrs
            .iter()
            .find(|(a, _)| *a == t)
            .map(|(_, v)| v.as_slice())
    }
    pub fn state(&self) -> Vec<u8> {
        self.first(attr::STATE)
            .expect("challenge has a State")
            .to_vec()
    }
    pub fn message(&self) -> String {
        String::from_utf8_lossy(self.first(attr::REPLY_MESSAGE).unwrap_or_default()).into_owned()
    }
}

/// A RADIUS client on its own UDP socket.
pub struct RadClient {
    pub sock: UdpSocket,
    pub server: SocketAddr,
    pub key: ClientKey,
    pub id: u8,
    pub message_authenticator: bool,
    pub timeout: Duration,
}

impl RadClient {
    pub async fn new(server: SocketAddr) -> RadClient {
        Self::from(server, "127.0.0.1", SECRET).await
    }

    pub async fn from(server: SocketAddr, local_ip: &str, secret: &str) -> RadClient {
        let sock = UdpSocket::bind(format!("{local_ip}:0")).await.unwrap();
        RadClient {
            sock,
            server,
            key: ClientKey::new(secret.as_bytes()),
            id: 0,
            message_authenticator: true,
            timeout: Duration::from_secs(3),
        }
    }

    /// Builds an Access-Request (fresh Identifier and random Request Authenticator).
    pub fn build(
        &mut self,
        user: &str,
        password: &str,
        state: Option<&[u8]>,
        extra: &[(u8, &[u8])],
    ) -> Vec<u8> {
        self.id = self.id.wrapping_add(1);
        let auth: [u8; 16] = rand::random();
        let mut buf = vec![0u8; 4096];
        let mut e = Encoder::request(
            &mut buf,
            Code::AccessRequest,
            self.id,
            &auth,
            self.message_authenticator,
        )
        .unwrap();
        e.push(attr::USER_NAME, user.as_bytes()).unwrap();
        e.push_user_password(&self.key, password.as_bytes())
            .unwrap();
        if let Some(s) = state {
            e.push(attr::STATE, s).unwrap();
        }
        for (t, v) in extra {
            e.push(*t, v).unwrap();
        }
        e.finish_request(&self.key).unwrap().to_vec()
    }

    /// Sends raw bytes and waits for a reply (None on timeout). Checks the reply's
    /// authenticators and that Message-Authenticator is present and first.
    pub async fn send_raw(&self, request: &[u8]) -> Option<Reply> {
        self.sock.send_to(request, self.server).await.unwrap();
        self.recv_for(request).await
    }

    pub async fn recv_for(&self, request: &[u8]) -> Option<Reply> {
        let req = Packet::decode(request).unwrap();
        let mut buf = vec![0u8; 4096];
        loop {
            let n = match tokio::time::timeout(self.timeout, self.sock.recv(&mut buf)).await {
                Ok(r) => r.unwrap(),
                Err(_) => return None,
            };
            let p = Packet::decode(&buf[..n]).expect("server sent a malformed packet");
            if p.identifier() != req.identifier() {
                continue; // a late answer to an earlier request
            }
            assert!(
                self.key
                    .verify_response_authenticator(&p, req.authenticator()),
                "bad Response Authenticator"
            );
            let attrs: Vec<(u8, Vec<u8>)> = p.attributes().map(|(t, v)| (t, v.to_vec())).collect();
            assert_eq!(
                attrs.first().map(|a| a.0),
                Some(attr::MESSAGE_AUTHENTICATOR),
                "Message-Authenticator must be the first attribute"
            );
            assert!(
                self.key
                    .verify_message_authenticator(&p, req.authenticator()),
                "bad Message-Authenticator in reply"
            );
            return Some(Reply {
                code: p.code(),
                raw: buf[..n].to_vec(),
                attrs,
            });
        }
    }

    pub async fn request(
        &mut self,
        user: &str,
        password: &str,
        state: Option<&[u8]>,
    ) -> Option<Reply> {
        let r = self.build(user, password, state, &[]);
        self.send_raw(&r).await
    }

    /// Sends and expects an answer.
    pub async fn ask(&mut self, user: &str, password: &str) -> Reply {
        self.request(user, password, None).await.expect("no reply")
    }

    pub async fn answer(&mut self, user: &str, password: &str, challenge: &Reply) -> Reply {
        let s = challenge.state();
        self.request(user, password, Some(&s))
            .await
            .expect("no reply")
    }
}

/// Spawns `tokengate [global_args] serve` on `config` at log level info, stderr piped.
pub fn spawn_daemon(config: &Path, global_args: &[&str]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_tokengate"))
        .args(["--config", config.to_str().unwrap()])
        .args(global_args)
        .arg("serve")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// A daemon process that a failed assertion cannot leave running: dropped while still alive, it
/// is killed and reaped. Derefs to the `Child` for `id`, `wait` and `kill`.
pub struct DaemonChild(pub std::process::Child);

impl std::ops::Deref for DaemonChild {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for DaemonChild {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for DaemonChild {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts the `tokengate serve` binary on `config`; returns it and its RADIUS address (read
/// from its log).
pub fn start_daemon(config: &Path) -> (DaemonChild, SocketAddr) {
    use std::io::{BufRead, BufReader};
    let mut child = spawn_daemon(config, &[]);
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(i) = line.find("local=") {
                let addr = line[i + 6..].split_whitespace().next().unwrap().to_string();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("daemon did not report its RADIUS address");
    (DaemonChild(child), addr.parse().unwrap())
}

/// Runs the `tokengate` CLI with `--config`; returns (success, stdout, stderr).
pub fn cli(config: &Path, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tokengate"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Issues a TFT for `serial` through the admin API at `admin` with bearer `key`; returns the
/// code.
pub async fn issue_tft_via_api(admin: SocketAddr, key: &str, serial: &str) -> String {
    let issued: serde_json::Value = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("http://{admin}/api/v1/tokens/{serial}/emergency"))
        .bearer_auth(key)
        .json(&serde_json::json!({"kind": "tft"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    issued["codes"][0]
        .as_str()
        .unwrap_or_else(|| panic!("no TFT in {issued}"))
        .to_string()
}

/// The user names of the RADIUS audit rows, in the order they were written.
pub async fn radius_audit_names(store: &tokengate::store::Store) -> Vec<String> {
    store
        .audit_since(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.protocol == "radius")
        .map(|r| r.user_name)
        .collect()
}
