//! The TACACS+ front end end to end: a real gateway on loopback, our codec's client-side encoders
//! over a real TCP socket (multi-round logins, interleaved sessions, bad keys), and the PyPI
//! `tacacs_plus` client for interop (ASCII, PAP, authorization, accounting).

use std::net::SocketAddr;
use std::time::Duration;

use tokengate::admin::IssueOptions;
use tokengate::model::{EmergencyKind, OtpMode, TokenKind};
use tokengate::tacacs::{
    deobfuscate, encode_packet, AcctFlags, AcctReply, AcctRequest, Args, AuthenAction,
    AuthenContinue, AuthenMethod, AuthenService, AuthenStart, AuthenStatus, AuthenType, Body,
    Header, Obfuscation, Version, FLAG_SINGLE_CONNECT, HEADER_LEN,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::common::*;

const KEY: &str = "tackey";

pub(crate) const TACACS: &str = r#"
[tacacs]
listen = ["127.0.0.1:0"]
idle_timeout_secs = 2

[tacacs.authorization.default]
args = ["service=shell", "priv-lvl=1"]

[tacacs.authorization.alice]
args = ["service=shell", "priv-lvl=15"]

[[tacacs.group]]
name = "netops"
members = ["carol", "alice"]
args = ["service=shell", "priv-lvl=7", "idletime*30"]
permit = ["show .*", "ping [0-9.]+"]
deny = ["show running-config.*"]

[[client]]
name = "switch"
address = "127.0.0.1/32"
secret = "radius-unused"
tacacs_keys = ["old-key", "tackey"]
"#;

async fn gateway() -> (TestGateway, SocketAddr) {
    let tg = TestGateway::start_with(TACACS).await;
    let addr = tg.gw().tacacs_addrs()[0];
    (tg, addr)
}

/// A TACACS+ client over one TCP connection, built on our codec's encoders.
struct Tac {
    stream: TcpStream,
    key: Vec<u8>,
    flags: u8,
}

impl Tac {
    async fn connect(addr: SocketAddr) -> Tac {
        Tac {
            stream: TcpStream::connect(addr).await.unwrap(),
            key: KEY.as_bytes().to_vec(),
            flags: 0,
        }
    }

    async fn send(&mut self, session_id: u32, seq: u8, version: Version, body: &Body<'_>) {
        let header = Header::new(version, body.packet_type(), seq, self.flags, session_id);
        let mut buf = vec![0u8; 4096];
        let wire = encode_packet(&header, body, Obfuscation::Key(&self.key), &mut buf).unwrap();
        self.stream.write_all(wire).await.unwrap();
    }

    /// Reads one packet; `None` when the server closed the connection.
    async fn recv(&mut self) -> Option<(Header, Vec<u8>)> {
        let mut head = [0u8; HEADER_LEN];
        let r = tokio::time::timeout(Duration::from_secs(10), self.stream.read_exact(&mut head))
            .await
            .expect("reply in time");
        r.ok()?;
        let header = Header::decode(&head).unwrap();
        let mut body = vec![0u8; header.body_len()];
        self.stream.read_exact(&mut body).await.unwrap();
        deobfuscate(&self.key, &header, &mut body);
        Some((header, body))
    }

    async fn reply(&mut self) -> (Header, AuthenStatus, String) {
        let (header, body) = self.recv().await.expect("a reply, not a close");
        let Body::AuthenReply(r) = Body::decode(&header, &body).unwrap() else {
            panic!("not an authentication REPLY")
        };
        (
            header,
            r.status,
            String::from_utf8_lossy(r.server_msg).into_owned(),
        )
    }

    async fn start(&mut self, sid: u32, authen_type: AuthenType, user: &str, data: &str) {
        self.start_as(sid, AuthenService::Login, 1, authen_type, user, data)
            .await;
    }

    async fn start_as(
        &mut self,
        sid: u32,
        service: AuthenService,
        priv_lvl: u8,
        authen_type: AuthenType,
        user: &str,
        data: &str,
    ) {
        let version = if authen_type == AuthenType::Ascii {
            Version::Default
        } else {
            Version::One
        };
        let body = Body::AuthenStart(AuthenStart {
            action: AuthenAction::Login,
            priv_lvl,
            authen_type,
            service,
            user: user.as_bytes(),
            port: b"tty0",
            rem_addr: b"192.0.2.1",
            data: data.as_bytes(),
        });
        self.send(sid, 1, version, &body).await;
    }

    async fn cont(&mut self, sid: u32, seq: u8, answer: &str) {
        let body = Body::AuthenContinue(AuthenContinue {
            user_msg: answer.as_bytes(),
            data: b"",
            flags: 0,
        });
        self.send(sid, seq, Version::Default, &body).await;
    }

    /// Whether the server closed the connection (EOF) without answering.
    async fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut b)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

/// ASCII login on a fresh connection: START with the user, GETPASS, CONTINUE with the passcode.
async fn ascii(addr: SocketAddr, user: &str, passcode: &str) -> (AuthenStatus, String) {
    let mut c = Tac::connect(addr).await;
    c.start(7, AuthenType::Ascii, user, "").await;
    let (_, status, _) = c.reply().await;
    assert_eq!(status, AuthenStatus::GetPass);
    c.cont(7, 3, passcode).await;
    let (_, status, msg) = c.reply().await;
    (status, msg)
}

pub(crate) async fn pap(addr: SocketAddr, user: &str, passcode: &str) -> AuthenStatus {
    let mut c = Tac::connect(addr).await;
    c.start(9, AuthenType::Pap, user, passcode).await;
    c.reply().await.1
}

/// One accounting START for `user` with `args` on a fresh connection; returns the reply status.
pub(crate) async fn accounting(
    addr: SocketAddr,
    user: &str,
    args: &[&[u8]],
) -> tokengate::tacacs::AcctStatus {
    let mut c = Tac::connect(addr).await;
    let acct = Body::AcctRequest(AcctRequest {
        flags: AcctFlags::Start,
        authen_method: AuthenMethod::TacacsPlus,
        priv_lvl: 1,
        authen_type: AuthenType::Ascii,
        service: AuthenService::Login,
        user: user.as_bytes(),
        port: b"tty0",
        rem_addr: b"192.0.2.1",
        args: Args::from_list(args),
    });
    c.send(11, 1, Version::Default, &acct).await;
    let (h, body) = c.recv().await.expect("an accounting REPLY");
    match Body::decode(&h, &body).unwrap() {
        Body::AcctReply(AcctReply { status, .. }) => status,
        _ => panic!("not an accounting REPLY"),
    }
}

/// Waits until a close reason has been counted (the server counts after closing).
pub async fn closed_count(tg: &TestGateway, reason: &str, want: u64) -> u64 {
    for _ in 0..100 {
        let n = tg.gw().stats.tacacs.closed_count(reason);
        if n >= want {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tg.gw().stats.tacacs.closed_count(reason)
}

#[tokio::test]
async fn tacacs_ascii_login_with_getuser_getpass_then_wrong_and_replayed_passcodes_fail() {
    let (tg, addr) = gateway().await;
    tg.pin_user("alice").await;
    let pc = format!("1234{}", code(tg.step()));

    let mut c = Tac::connect(addr).await;
    c.start(1, AuthenType::Ascii, "", "").await;
    let (h, status, msg) = c.reply().await;
    assert_eq!((h.seq_no, status), (2, AuthenStatus::GetUser));
    assert!(msg.contains("Username"), "{msg}");
    c.cont(1, 3, "alice").await;
    let (_, status, msg) = c.reply().await;
    assert_eq!(status, AuthenStatus::GetPass);
    assert!(msg.contains("Passcode"), "{msg}");
    c.cont(1, 5, &pc).await;
    let (h, status, _) = c.reply().await;
    assert_eq!((h.seq_no, status), (6, AuthenStatus::Pass));
    assert!(
        c.closed().await,
        "one session per connection without single-connect"
    );

    let (status, msg) = ascii(addr, "alice", "1234000000").await;
    assert_eq!(status, AuthenStatus::Fail);
    assert_eq!(msg, tg.config.file.prompts.reject, "generic message");
    assert_eq!(
        ascii(addr, "alice", &pc).await.0,
        AuthenStatus::Fail,
        "replay"
    );
    assert_eq!(ascii(addr, "nobody", &pc).await.0, AuthenStatus::Fail);
    assert_eq!(
        tg.gw()
            .stats
            .tacacs
            .passes
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert!(tg.stat("replays") >= 1);
    assert!(closed_count(&tg, "done", 4).await >= 4);
    let audit = tg.gw().store.audit_since(0, 100).await.unwrap();
    assert!(audit
        .iter()
        .any(|r| r.protocol == "tacacs" && r.result == "accept"));
}

#[tokio::test]
async fn tacacs_pap_login_passes_once_and_lockout_after_five_failures() {
    let (tg, addr) = gateway().await;
    tg.pin_user("alice").await;
    tg.pin_user("bob").await;
    let pc = format!("1234{}", code(tg.step()));
    assert_eq!(pap(addr, "alice", &pc).await, AuthenStatus::Pass);
    assert_eq!(pap(addr, "alice", &pc).await, AuthenStatus::Fail, "replay");

    for i in 0..5 {
        assert_eq!(
            pap(addr, "bob", &format!("12340000{i:02}")).await,
            AuthenStatus::Fail
        );
    }
    assert_eq!(pap(addr, "bob", &pc).await, AuthenStatus::Fail, "locked");
    assert!(tg.admin().show_user("bob").await.unwrap().user.locked);
}

#[tokio::test]
async fn tacacs_next_tokencode_round_through_getpass() {
    let (tg, addr) = gateway().await;
    tg.pin_user("alice").await;
    let s = tg.step();
    let mut c = Tac::connect(addr).await;
    c.start(5, AuthenType::Ascii, "alice", "").await;
    assert_eq!(c.reply().await.1, AuthenStatus::GetPass);
    c.cont(5, 3, &format!("1234{}", code(s + 3))).await;
    let (_, status, msg) = c.reply().await;
    assert_eq!(status, AuthenStatus::GetPass);
    assert!(msg.contains("tokencode"), "{msg}");
    c.cont(5, 5, &code(s + 4)).await;
    assert_eq!(c.reply().await.1, AuthenStatus::Pass);
    assert_eq!(
        tg.gw()
            .stats
            .tacacs
            .challenges
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn tacacs_pap_cannot_answer_a_next_tokencode_challenge_so_it_fails_with_the_prompt() {
    let (tg, addr) = gateway().await;
    tg.pin_user("alice").await;
    let s = tg.step();
    let mut c = Tac::connect(addr).await;
    c.start(9, AuthenType::Pap, "alice", &format!("1234{}", code(s + 3)))
        .await;
    let (_, status, msg) = c.reply().await;
    assert_eq!(status, AuthenStatus::Fail);
    assert!(msg.contains("tokencode"), "says why: {msg}");
    assert_eq!(closed_count(&tg, "encode", 0).await, 0);
}

#[tokio::test]
async fn tacacs_wrong_next_tokencode_fails_and_locks() {
    let (tg, addr) = gateway().await;
    tg.pin_user("alice").await;
    let s = tg.step();
    let mut c = Tac::connect(addr).await;
    c.start(5, AuthenType::Ascii, "alice", "").await;
    c.reply().await;
    c.cont(5, 3, &format!("1234{}", code(s + 3))).await;
    assert_eq!(c.reply().await.1, AuthenStatus::GetPass);
    c.cont(5, 5, "000000").await;
    assert_eq!(c.reply().await.1, AuthenStatus::Fail);
    assert!(tg.admin().show_user("alice").await.unwrap().user.locked);
}

#[tokio::test]
async fn tacacs_new_pin_rounds_through_getpass() {
    let (tg, addr) = gateway().await;
    tg.user_with_token("carol", None, TokenKind::Pin, OtpMode::Totp { period: 30 })
        .await;
    let s = tg.step();
    let mut c = Tac::connect(addr).await;
    c.start(11, AuthenType::Ascii, "carol", "").await;
    assert_eq!(c.reply().await.1, AuthenStatus::GetPass);
    c.cont(11, 3, &code(s)).await;
    let (_, status, msg) = c.reply().await;
    assert_eq!(status, AuthenStatus::GetPass);
    assert!(msg.contains("new PIN"), "{msg}");
    c.cont(11, 5, "5678").await;
    let (_, _, msg) = c.reply().await;
    assert!(msg.contains("Re-enter"), "{msg}");
    c.cont(11, 7, "5678").await;
    let (_, status, msg) = c.reply().await;
    assert_eq!(status, AuthenStatus::GetPass);
    assert!(msg.contains("PIN accepted"), "{msg}");
    c.cont(11, 9, &format!("5678{}", code(s + 1))).await;
    assert_eq!(c.reply().await.1, AuthenStatus::Pass);
    assert_eq!(
        pap(addr, "carol", &format!("5678{}", code(s + 2))).await,
        AuthenStatus::Pass
    );
}

/// `enable` as a device sends it: ASCII START with service=enable, GETPASS, the passcode.
async fn enable(addr: SocketAddr, user: &str, priv_lvl: u8, passcode: &str) -> AuthenStatus {
    let mut c = Tac::connect(addr).await;
    c.start_as(
        21,
        AuthenService::Enable,
        priv_lvl,
        AuthenType::Ascii,
        user,
        "",
    )
    .await;
    let (_, status, _) = c.reply().await;
    if status != AuthenStatus::GetPass {
        return status;
    }
    c.cont(21, 3, passcode).await;
    c.reply().await.1
}

#[tokio::test]
async fn tacacs_enable_asks_for_a_fresh_passcode_and_follows_the_user_list_and_level() {
    let tg = TestGateway::start_with(&format!(
        "{TACACS}\n[tacacs.enable]\nusers = [\"alice\"]\nmax_priv_lvl = 14\n"
    ))
    .await;
    let addr = tg.gw().tacacs_addrs()[0];
    tg.pin_user("alice").await;
    tg.pin_user("bob").await;
    let s = tg.step();
    assert_eq!(
        pap(addr, "alice", &format!("1234{}", code(s))).await,
        AuthenStatus::Pass
    );
    assert_eq!(
        enable(addr, "alice", 14, &format!("1234{}", code(s))).await,
        AuthenStatus::Fail,
        "the login's tokencode cannot be replayed for enable"
    );
    assert_eq!(
        enable(addr, "alice", 14, &format!("1234{}", code(s + 1))).await,
        AuthenStatus::Pass
    );
    assert_eq!(
        enable(addr, "alice", 14, "1234000000").await,
        AuthenStatus::Fail,
        "wrong passcode"
    );
    assert_eq!(
        enable(addr, "alice", 15, &format!("1234{}", code(s + 2))).await,
        AuthenStatus::Fail,
        "above max_priv_lvl"
    );
    assert_eq!(
        enable(addr, "bob", 14, &format!("1234{}", code(s + 1))).await,
        AuthenStatus::Fail,
        "bob is not in enable.users"
    );
    // Refused by policy before the engine ran: bob's tokencode was not consumed.
    assert_eq!(
        pap(addr, "bob", &format!("1234{}", code(s + 1))).await,
        AuthenStatus::Pass
    );
}

#[tokio::test]
async fn tacacs_enable_policy_deny_refuses_without_asking() {
    let tg =
        TestGateway::start_with(&format!("{TACACS}\n[tacacs.enable]\npolicy = \"deny\"\n")).await;
    let addr = tg.gw().tacacs_addrs()[0];
    tg.pin_user("alice").await;
    let pc = format!("1234{}", code(tg.step()));
    assert_eq!(enable(addr, "alice", 15, &pc).await, AuthenStatus::Fail);
    let mut c = Tac::connect(addr).await;
    c.start_as(22, AuthenService::Enable, 15, AuthenType::Pap, "alice", &pc)
        .await;
    assert_eq!(c.reply().await.1, AuthenStatus::Fail, "PAP enable too");
    // A login still works with the same passcode.
    assert_eq!(ascii(addr, "alice", &pc).await.0, AuthenStatus::Pass);
}

#[tokio::test]
async fn tacacs_emergency_tft_login() {
    let (tg, addr) = gateway().await;
    let serial = tg.pin_user("alice").await;
    let tft = tg
        .admin()
        .issue_emergency(
            &serial,
            IssueOptions {
                kind: Some(EmergencyKind::Tft),
                ..Default::default()
            },
            tg.now(),
        )
        .await
        .unwrap();
    // Let the change feed reach the running gateway.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let pc = format!("1234{}", tft.codes[0]);
    assert_eq!(ascii(addr, "alice", &pc).await.0, AuthenStatus::Pass);
    assert_eq!(
        pap(addr, "alice", &pc).await,
        AuthenStatus::Pass,
        "a TFT is reusable"
    );
}

#[tokio::test]
async fn tacacs_unknown_client_is_closed_and_counted() {
    let (tg, addr) = gateway().await;
    // 127.0.0.2 is the RADIUS client "legacy", which has no TACACS+ key.
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let stream = sock.connect(addr).await.unwrap();
    let mut c = Tac {
        stream,
        key: KEY.as_bytes().to_vec(),
        flags: 0,
    };
    c.start(1, AuthenType::Pap, "alice", "x").await;
    assert!(c.closed().await);
    assert_eq!(closed_count(&tg, "unknown_client", 1).await, 1);
    assert_eq!(tg.stat("tacacs.closed.unknown_client"), 1);
}

#[tokio::test]
async fn tacacs_wrong_key_and_clear_bodies_are_refused_and_counted() {
    let (tg, addr) = gateway().await;
    tg.pin_user("alice").await;
    let mut c = Tac::connect(addr).await;
    c.key = b"wrong".to_vec();
    c.start(1, AuthenType::Pap, "alice", "12340000").await;
    assert!(c.closed().await);
    assert_eq!(closed_count(&tg, "bad_key", 1).await, 1);

    // A clear body (UNENCRYPTED flag) is refused when the client has a key.
    let mut c = Tac::connect(addr).await;
    let body = Body::AuthenStart(AuthenStart {
        action: AuthenAction::Login,
        priv_lvl: 1,
        authen_type: AuthenType::Pap,
        service: AuthenService::Login,
        user: b"alice",
        port: b"",
        rem_addr: b"",
        data: b"12340000",
    });
    let header = Header::new(Version::One, body.packet_type(), 1, 0, 1);
    let mut buf = vec![0u8; 256];
    let wire = encode_packet(&header, &body, Obfuscation::Clear, &mut buf).unwrap();
    c.stream.write_all(wire).await.unwrap();
    assert!(c.closed().await);
    assert_eq!(closed_count(&tg, "unencrypted_refused", 1).await, 1);

    // The old key of the rollover list still works.
    let mut c = Tac::connect(addr).await;
    c.key = b"old-key".to_vec();
    let pc = format!("1234{}", code(tg.step()));
    c.start(2, AuthenType::Pap, "alice", &pc).await;
    assert_eq!(c.reply().await.1, AuthenStatus::Pass);

    // A body length above the cap is refused before any body is read.
    let mut c = Tac::connect(addr).await;
    let mut head = Header::new(Version::Default, body.packet_type(), 1, 0, 3).encode();
    head[8..12].copy_from_slice(&(1u32 << 20).to_be_bytes());
    c.stream.write_all(&head).await.unwrap();
    assert!(c.closed().await);
    assert_eq!(closed_count(&tg, "body_too_large", 1).await, 1);
}

#[tokio::test]
async fn tacacs_idle_connection_is_closed_and_counted() {
    let (tg, addr) = gateway().await;
    let mut c = Tac::connect(addr).await;
    assert!(c.closed().await, "idle_timeout_secs = 2");
    assert_eq!(closed_count(&tg, "idle_timeout", 1).await, 1);
}

#[tokio::test]
async fn tacacs_interleaved_sessions_on_one_single_connect_connection() {
    let (tg, addr) = gateway().await;
    tg.pin_user("alice").await;
    tg.pin_user("bob").await;
    let s = tg.step();
    let mut c = Tac::connect(addr).await;
    c.flags = FLAG_SINGLE_CONNECT;
    c.start(100, AuthenType::Ascii, "alice", "").await;
    let (h, status, _) = c.reply().await;
    assert_eq!((h.session_id, status), (100, AuthenStatus::GetPass));
    assert!(h.single_connect(), "the server agrees to single-connect");
    c.start(200, AuthenType::Ascii, "bob", "").await;
    let (h, status, _) = c.reply().await;
    assert_eq!((h.session_id, status), (200, AuthenStatus::GetPass));
    c.start(300, AuthenType::Pap, "alice", "1234000000").await;
    let (h, status, _) = c.reply().await;
    assert_eq!((h.session_id, status), (300, AuthenStatus::Fail));
    c.cont(200, 3, &format!("1234{}", code(s))).await;
    let (h, status, _) = c.reply().await;
    assert_eq!((h.session_id, status), (200, AuthenStatus::Pass));
    // Alice's next tokencode round interleaved with bob's next session.
    c.cont(100, 3, &format!("1234{}", code(s + 3))).await;
    let (h, status, _) = c.reply().await;
    assert_eq!((h.session_id, status), (100, AuthenStatus::GetPass));
    c.start(400, AuthenType::Pap, "bob", "1234000000").await;
    let (h, status, _) = c.reply().await;
    assert_eq!((h.session_id, status), (400, AuthenStatus::Fail));
    c.cont(100, 5, &code(s + 4)).await;
    let (h, status, _) = c.reply().await;
    assert_eq!((h.session_id, status), (100, AuthenStatus::Pass));

    // Accounting on the same connection: stored, then SUCCESS.
    let args: [&[u8]; 2] = [b"task_id=42", b"service=shell"];
    let acct = Body::AcctRequest(AcctRequest {
        flags: AcctFlags::Start,
        authen_method: AuthenMethod::TacacsPlus,
        priv_lvl: 15,
        authen_type: AuthenType::Ascii,
        service: AuthenService::Login,
        user: b"alice",
        port: b"tty0",
        rem_addr: b"192.0.2.1",
        args: Args::from_list(&args),
    });
    c.send(500, 1, Version::Default, &acct).await;
    let (h, body) = c.recv().await.unwrap();
    let Body::AcctReply(AcctReply { status, .. }) = Body::decode(&h, &body).unwrap() else {
        panic!("not an accounting REPLY")
    };
    assert_eq!(status, tokengate::tacacs::AcctStatus::Success);
    let audit = tg.gw().store.audit_since(0, 100).await.unwrap();
    assert!(audit
        .iter()
        .any(|r| r.method == "accounting_start" && r.reason.contains("task_id=42")));
}

/// Runs `tests/interop/tacacs_client.py` (the PyPI `tacacs_plus` client).
async fn py(addr: SocketAddr, args: &[&str]) -> serde_json::Value {
    py_script("tacacs_client.py", addr, args).await
}

/// Runs a script of `tests/interop/` with HOST PORT KEY and `args`; parses its JSON output.
async fn py_script(name: &str, addr: SocketAddr, args: &[&str]) -> serde_json::Value {
    let script = repo().join("tests/interop").join(name);
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(script)
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .arg(KEY)
        .args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("python3"))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "tacacs_plus client failed (pip install tacacs_plus): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn tacacs_interop_python_client_ascii_pap_authorization_accounting() {
    let (tg, addr) = gateway().await;
    tg.pin_user("alice").await;
    tg.pin_user("bob").await;
    let s = tg.step();
    let r = py(
        addr,
        &["authen-ascii", "alice", &format!("1234{}", code(s))],
    )
    .await;
    assert_eq!(r["valid"], true, "{r}");
    let r = py(
        addr,
        &["authen-ascii", "alice", &format!("1234{}", code(s))],
    )
    .await;
    assert_eq!(r["valid"], false, "replay: {r}");
    let r = py(addr, &["authen-pap", "bob", &format!("1234{}", code(s))]).await;
    assert_eq!(r["valid"], true, "{r}");
    let r = py(addr, &["authen-pap", "bob", "1234000000"]).await;
    assert_eq!(r["valid"], false, "{r}");

    let r = py(addr, &["author", "alice", "service=shell", "cmd="]).await;
    assert_eq!(r["valid"], true, "{r}");
    let args: Vec<String> = serde_json::from_value(r["args"].clone()).unwrap();
    assert!(args.contains(&"priv-lvl=15".to_string()), "{args:?}");
    let r = py(addr, &["author", "bob", "service=shell", "cmd="]).await;
    let args: Vec<String> = serde_json::from_value(r["args"].clone()).unwrap();
    assert!(args.contains(&"priv-lvl=1".to_string()), "{args:?}");
    let r = py(addr, &["author", "nobody", "service=shell", "cmd="]).await;
    assert_eq!(r["valid"], false, "unknown user: {r}");

    let r = py(addr, &["acct-start", "alice", "task_id=7", "service=shell"]).await;
    assert_eq!(r["valid"], true, "{r}");
    let r = py(
        addr,
        &[
            "acct-stop",
            "alice",
            "task_id=7",
            "service=shell",
            "elapsed_time=5",
        ],
    )
    .await;
    assert_eq!(r["valid"], true, "{r}");
    let audit = tg.gw().store.audit_since(0, 100).await.unwrap();
    let acct: Vec<_> = audit
        .iter()
        .filter(|r| r.protocol == "tacacs" && r.method.starts_with("accounting_"))
        .map(|r| r.method.as_str())
        .collect();
    assert_eq!(acct, ["accounting_start", "accounting_stop"]);
}

#[tokio::test]
async fn tacacs_interop_chap_with_an_app_token_window_replay_lockout_and_clear_failures() {
    let (tg, addr) = gateway().await;
    let app = OtpMode::Totp { period: 30 };
    tg.user_with_token("dave", None, TokenKind::App, app).await;
    tg.user_with_token("erin", None, TokenKind::App, app).await;
    tg.user_with_token("frank", None, TokenKind::App, app).await;
    tg.pin_user("alice").await;
    let s = tg.step();
    let chap = |user: &'static str, secret: String| async move {
        py(addr, &["authen-chap", user, &secret]).await
    };
    let r = chap("dave", code(s)).await;
    assert_eq!(r["valid"], true, "{r}");
    let r = chap("dave", code(s)).await;
    assert_eq!(r["valid"], false, "replay: {r}");
    assert!(r["server_msg"].as_str().unwrap().contains("CHAP"), "{r}");
    let r = chap("dave", code(s + 1)).await;
    assert_eq!(r["valid"], true, "next step, inside the window: {r}");

    // A code only in the wide window needs Next Tokencode, which CHAP cannot ask: FAIL with
    // the prompt.
    let r = chap("erin", code(s + 3)).await;
    assert_eq!(r["valid"], false, "{r}");
    assert!(
        r["server_msg"].as_str().unwrap().contains("tokencode"),
        "{r}"
    );

    // PIN + tokencode cannot be checked through CHAP: FAIL with a clear message.
    let r = chap("alice", format!("1234{}", code(s))).await;
    assert_eq!(r["valid"], false, "{r}");
    assert!(
        r["server_msg"].as_str().unwrap().contains("without a PIN"),
        "{r}"
    );
    // Unknown users get the same text.
    let r = chap("nobody", code(s)).await;
    assert!(r["server_msg"].as_str().unwrap().contains("without a PIN"));

    // Lockout: five wrong CHAP responses lock frank; then the right code fails too.
    for _ in 0..5 {
        assert_eq!(chap("frank", "000000".into()).await["valid"], false);
    }
    assert_eq!(chap("frank", code(s)).await["valid"], false, "locked");
    assert!(tg.admin().show_user("frank").await.unwrap().user.locked);
}

/// Authentication status octets (RFC 8907 §5.2).
const PASS: u64 = 0x01;
const FAIL: u64 = 0x02;
const GETPASS: u64 = 0x05;

/// (status, server_msg) of each reply of `tests/interop/tacacs_rounds.py rounds`.
async fn py_rounds(addr: SocketAddr, user: &str, answers: &[String]) -> Vec<(u64, String)> {
    let mut args = vec!["rounds", user];
    args.extend(answers.iter().map(String::as_str));
    let r = py_script("tacacs_rounds.py", addr, &args).await;
    r["replies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["status"].as_u64().unwrap(),
                x["server_msg"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn tacacs_interop_next_tokencode_and_new_pin_rounds_through_getpass() {
    let (tg, addr) = gateway().await;
    tg.pin_user("alice").await;
    tg.user_with_token("carol", None, TokenKind::Pin, OtpMode::Totp { period: 30 })
        .await;
    let s = tg.step();
    // Next Tokencode: a code in the wide window, then the next one.
    let r = py_rounds(
        addr,
        "alice",
        &[format!("1234{}", code(s + 3)), code(s + 4)],
    )
    .await;
    let st: Vec<u64> = r.iter().map(|x| x.0).collect();
    assert_eq!(st, [GETPASS, GETPASS, PASS], "{r:?}");
    assert!(r[1].1.contains("tokencode"), "{r:?}");
    // New PIN: tokencode alone, new PIN twice, then PIN + the next tokencode.
    let r = py_rounds(
        addr,
        "carol",
        &[
            code(s),
            "5678".into(),
            "5678".into(),
            format!("5678{}", code(s + 1)),
        ],
    )
    .await;
    let st: Vec<u64> = r.iter().map(|x| x.0).collect();
    assert_eq!(st, [GETPASS, GETPASS, GETPASS, GETPASS, PASS], "{r:?}");
    assert!(r[1].1.contains("new PIN"), "{r:?}");
    assert!(r[2].1.contains("Re-enter"), "{r:?}");
    assert!(r[3].1.contains("PIN accepted"), "{r:?}");
    // The new PIN works for a plain login with the high-level client.
    let r = py(
        addr,
        &["authen-pap", "carol", &format!("5678{}", code(s + 2))],
    )
    .await;
    assert_eq!(r["valid"], true, "{r}");
}

#[tokio::test]
async fn tacacs_interop_lockout_and_emergency_tft_and_ott_logins() {
    let (tg, addr) = gateway().await;
    tg.pin_user("bob").await;
    let s = tg.step();
    for i in 0..5 {
        let r = py(addr, &["authen-ascii", "bob", &format!("12340000{i:02}")]).await;
        assert_eq!(r["valid"], false, "wrong passcode: {r}");
    }
    let r = py(addr, &["authen-pap", "bob", &format!("1234{}", code(s))]).await;
    assert_eq!(r["valid"], false, "locked: {r}");
    assert!(tg.admin().show_user("bob").await.unwrap().user.locked);

    let tft_serial = tg.pin_user("alice").await;
    let ott_serial = tg.pin_user("dora").await;
    let issue = |serial: String, kind, count| {
        let tg = &tg;
        async move {
            tg.admin()
                .issue_emergency(
                    &serial,
                    IssueOptions {
                        kind: Some(kind),
                        count,
                        ..Default::default()
                    },
                    tg.now(),
                )
                .await
                .unwrap()
        }
    };
    let tft = issue(tft_serial, EmergencyKind::Tft, None).await;
    let ott = issue(ott_serial, EmergencyKind::Ott, Some(2)).await;
    // Let the change feed reach the running gateway.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let tft_pc = format!("1234{}", tft.codes[0]);
    for op in ["authen-ascii", "authen-pap", "authen-ascii"] {
        let r = py(addr, &[op, "alice", &tft_pc]).await;
        assert_eq!(r["valid"], true, "a TFT is reusable: {r}");
    }
    let ott_pc = format!("1234{}", ott.codes[0]);
    let r = py(addr, &["authen-pap", "dora", &ott_pc]).await;
    assert_eq!(r["valid"], true, "{r}");
    let r = py(addr, &["authen-ascii", "dora", &ott_pc]).await;
    assert_eq!(r["valid"], false, "an OTT code works once: {r}");
    let r = py(
        addr,
        &["authen-ascii", "dora", &format!("1234{}", ott.codes[1])],
    )
    .await;
    assert_eq!(r["valid"], true, "{r}");
}

#[tokio::test]
async fn tacacs_interop_several_sessions_over_one_single_connect_connection() {
    let (tg, addr) = gateway().await;
    tg.pin_user("alice").await;
    tg.pin_user("bob").await;
    tg.pin_user("carol").await;
    let s = tg.step();
    let pairs = [
        format!("alice:1234{}", code(s)),
        "bob:1234000000".to_string(),
        format!("carol:1234{}", code(s)),
    ];
    let mut args = vec!["single-connect"];
    args.extend(pairs.iter().map(String::as_str));
    let r = py_script("tacacs_rounds.py", addr, &args).await;
    let replies: Vec<(u64, u64)> = r["replies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["session"].as_u64().unwrap(),
                x["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        replies,
        [(0x5000, PASS), (0x5001, FAIL), (0x5002, PASS)],
        "{r}"
    );
    assert_eq!(
        r["closed"], false,
        "single-connect keeps the connection open: {r}"
    );
    assert_eq!(
        tg.gw()
            .stats
            .tacacs
            .connections
            .load(std::sync::atomic::Ordering::Relaxed),
        1,
        "one connection"
    );
}

/// Authorization status octets (RFC 8907 §6.2).
const PASS_ADD: u64 = 0x01;
const PASS_REPL: u64 = 0x02;
const AUTHOR_FAIL: u64 = 0x10;

#[tokio::test]
async fn tacacs_interop_group_sets_with_command_patterns_pass_add_repl_and_fail() {
    let (tg, addr) = gateway().await;
    tg.pin_user("alice").await;
    tg.pin_user("carol").await;
    let author = |user: &'static str, args: &'static [&'static str]| async move {
        let mut a = vec!["author", user];
        a.extend_from_slice(args);
        let r = py(addr, &a).await;
        let args: Vec<String> = serde_json::from_value(r["args"].clone()).unwrap();
        (r["status"].as_u64().unwrap(), args)
    };
    // carol is in the group: its attributes are added to an exec request…
    let (status, args) = author("carol", &["service=shell", "cmd="]).await;
    assert_eq!(status, PASS_ADD, "{args:?}");
    assert_eq!(args, ["priv-lvl=7", "idletime*30"]);
    // …and replace a higher level the device asked for.
    let (status, args) = author("carol", &["service=shell", "cmd=", "priv-lvl=15"]).await;
    assert_eq!(status, PASS_REPL, "{args:?}");
    assert!(args.contains(&"priv-lvl=7".to_string()), "{args:?}");
    assert!(!args.contains(&"priv-lvl=15".to_string()), "{args:?}");
    // Another service than the set's: FAIL.
    let (status, _) = author("carol", &["service=ppp", "protocol=ip"]).await;
    assert_eq!(status, AUTHOR_FAIL);
    // Commands: permitted, denied by a deny pattern, not permitted.
    let cmd = |user: &'static str, c: &'static [&'static str]| author(user, c);
    let (status, args) = cmd(
        "carol",
        &[
            "service=shell",
            "cmd=show",
            "cmd-arg=version",
            "cmd-arg=<cr>",
        ],
    )
    .await;
    assert_eq!((status, args.len()), (PASS_ADD, 0));
    let (status, _) = cmd(
        "carol",
        &[
            "service=shell",
            "cmd=show",
            "cmd-arg=running-config",
            "cmd-arg=<cr>",
        ],
    )
    .await;
    assert_eq!(status, AUTHOR_FAIL, "deny pattern");
    let (status, _) = cmd("carol", &["service=shell", "cmd=reload", "cmd-arg=<cr>"]).await;
    assert_eq!(status, AUTHOR_FAIL, "not permitted");
    let (status, _) = cmd(
        "carol",
        &[
            "service=shell",
            "cmd=ping",
            "cmd-arg=192.0.2.1",
            "cmd-arg=<cr>",
        ],
    )
    .await;
    assert_eq!(status, PASS_ADD);
    // alice's own set overrides the group: priv-lvl 15, and no command is permitted.
    let (status, args) = author("alice", &["service=shell", "cmd="]).await;
    assert_eq!(status, PASS_ADD);
    assert_eq!(args, ["priv-lvl=15"]);
    let (status, _) = cmd("alice", &["service=shell", "cmd=show", "cmd-arg=version"]).await;
    assert_eq!(status, AUTHOR_FAIL);
    let (status, _) = cmd("nobody", &["service=shell", "cmd=show", "cmd-arg=version"]).await;
    assert_eq!(status, AUTHOR_FAIL, "unknown user");
}

#[tokio::test]
async fn tacacs_connections_over_the_limit_are_closed_and_counted() {
    let tg =
        TestGateway::start_with(&TACACS.replace("idle_timeout_secs = 2", "max_connections = 1"))
            .await;
    let addr = tg.gw().tacacs_addrs()[0];
    tg.pin_user("alice").await;
    let mut first = Tac::connect(addr).await;
    first.flags = FLAG_SINGLE_CONNECT;
    first.start(1, AuthenType::Ascii, "alice", "").await;
    assert_eq!(first.reply().await.1, AuthenStatus::GetPass);
    let mut second = Tac::connect(addr).await;
    assert!(second.closed().await);
    assert_eq!(closed_count(&tg, "too_many_connections", 1).await, 1);
    // The first connection is still served.
    first.cont(1, 3, &format!("1234{}", code(tg.step()))).await;
    assert_eq!(first.reply().await.1, AuthenStatus::Pass);
}

#[tokio::test]
async fn tacacs_shutdown_closes_idle_connections_and_counts_them() {
    let (tg, addr) = gateway().await;
    let mut c = Tac::connect(addr).await;
    // Make sure the connection task is running before shutting down.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stats = tg.gw().stats.clone();
    tokio::time::timeout(Duration::from_secs(5), tg.shutdown())
        .await
        .expect("shutdown does not wait for idle connections");
    assert!(c.closed().await);
    assert_eq!(stats.tacacs.closed_count("shutdown"), 1);
}

#[tokio::test]
async fn tacacs_protocol_errors_close_the_connection_with_a_counted_reason() {
    let (tg, addr) = gateway().await;
    // A CONTINUE for a session that was never started.
    let mut c = Tac::connect(addr).await;
    c.cont(77, 3, "whatever").await;
    assert!(c.closed().await);
    assert_eq!(closed_count(&tg, "unknown_session", 1).await, 1);
    // An unknown version octet.
    let mut c = Tac::connect(addr).await;
    c.stream
        .write_all(&[0xd0, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0])
        .await
        .unwrap();
    assert!(c.closed().await);
    assert_eq!(closed_count(&tg, "unsupported_version", 1).await, 1);
    // A header followed by less body than announced, then EOF.
    let mut c = Tac::connect(addr).await;
    c.stream
        .write_all(&[0xc0, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 40, 1, 2, 3])
        .await
        .unwrap();
    c.stream.shutdown().await.unwrap();
    assert!(c.closed().await);
    assert_eq!(closed_count(&tg, "truncated", 1).await, 1);
    // The gateway still serves.
    tg.pin_user("alice").await;
    assert_eq!(
        pap(addr, "alice", &format!("1234{}", code(tg.step()))).await,
        AuthenStatus::Pass
    );
}
