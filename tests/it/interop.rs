//! Interop with RADIUS clients nobody here wrote: FreeRADIUS `radclient` and Python `pyrad`.
//! Both must be installed (`.ci/run` installs them); a missing tool fails the test.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use tokengate::model::{OtpMode, TokenKind};

use crate::common::*;

async fn radclient(addr: std::net::SocketAddr, attrs: &str) -> String {
    let mut child = Command::new("radclient")
        .args([
            "-x",
            "-r",
            "1",
            "-t",
            "3",
            &addr.to_string(),
            "auth",
            SECRET,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("radclient not installed (apt-get install freeradius-utils)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{attrs}, Message-Authenticator = 0x00\n").as_bytes())
        .await
        .unwrap();
    let out = child.wait_with_output().await.unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn radclient_state(out: &str) -> String {
    out.lines()
        .find_map(|l| l.trim().strip_prefix("State = "))
        .expect("State in radclient output")
        .trim()
        .to_string()
}

#[tokio::test]
async fn radclient_pin_totp_accept_replay_reject_and_next_tokencode() {
    let tg = TestGateway::start().await;
    tg.pin_user("alice").await;
    let s = tg.step();
    let out = radclient(
        tg.addr,
        &format!("User-Name = alice, User-Password = 1234{}", code(s)),
    )
    .await;
    assert!(out.contains("Received Access-Accept"), "{out}");
    assert!(out.contains("Session-Timeout = 3600"), "{out}");
    let out = radclient(
        tg.addr,
        &format!("User-Name = alice, User-Password = 1234{}", code(s)),
    )
    .await;
    assert!(
        out.contains("Received Access-Reject"),
        "replay must be rejected: {out}"
    );
    // Next Tokencode through radclient: State comes back as hex and is echoed.
    let out = radclient(
        tg.addr,
        &format!("User-Name = alice, User-Password = 1234{}", code(s + 3)),
    )
    .await;
    assert!(out.contains("Received Access-Challenge"), "{out}");
    let state = radclient_state(&out);
    let out = radclient(
        tg.addr,
        &format!(
            "User-Name = alice, User-Password = {}, State = {state}",
            code(s + 4)
        ),
    )
    .await;
    assert!(out.contains("Received Access-Accept"), "{out}");
}

fn pyrad(
    addr: std::net::SocketAddr,
    user: &str,
    password: &str,
    state: Option<&str>,
) -> serde_json::Value {
    let script = repo().join("tests/interop/pyrad_client.py");
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(script)
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .arg(SECRET)
        .arg(user)
        .arg(password);
    if let Some(s) = state {
        cmd.arg(s);
    }
    let out = cmd.output().expect("python3");
    assert!(
        out.status.success(),
        "pyrad client failed (pip install pyrad): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn pyrad_async(
    addr: std::net::SocketAddr,
    user: &str,
    password: &str,
    state: Option<&str>,
) -> serde_json::Value {
    let (u, p, s) = (
        user.to_string(),
        password.to_string(),
        state.map(str::to_string),
    );
    tokio::task::spawn_blocking(move || pyrad(addr, &u, &p, s.as_deref()))
        .await
        .unwrap()
}

#[tokio::test]
async fn pyrad_accept_reject_and_new_pin_round_trip() {
    let tg = TestGateway::start().await;
    tg.pin_user("alice").await;
    tg.user_with_token("carol", None, TokenKind::Pin, OtpMode::Totp { period: 30 })
        .await;
    let s = tg.step();
    let r = pyrad_async(tg.addr, "alice", &format!("1234{}", code(s)), None).await;
    assert_eq!(r["code"], 2, "{r}");
    assert_eq!(r["ma_first"], true, "{r}");
    assert_eq!(r["class"], "gold", "{r}");
    assert_eq!(r["session_timeout"], 3600, "{r}");
    let r = pyrad_async(tg.addr, "alice", "1234000000", None).await;
    assert_eq!(r["code"], 3, "{r}");
    // New PIN over Access-Challenge.
    let r = pyrad_async(tg.addr, "carol", &code(s), None).await;
    assert_eq!(r["code"], 11, "{r}");
    let st = r["state"].as_str().unwrap().to_string();
    let r = pyrad_async(tg.addr, "carol", "8642", Some(&st)).await;
    assert_eq!(r["code"], 11, "{r}");
    let st = r["state"].as_str().unwrap().to_string();
    let r = pyrad_async(tg.addr, "carol", "8642", Some(&st)).await;
    assert_eq!(r["code"], 11, "{r}");
    assert!(
        r["reply_message"]
            .as_str()
            .unwrap()
            .contains("PIN accepted"),
        "{r}"
    );
    let st = r["state"].as_str().unwrap().to_string();
    let r = pyrad_async(tg.addr, "carol", &format!("8642{}", code(s + 1)), Some(&st)).await;
    assert_eq!(r["code"], 2, "{r}");
}

#[tokio::test]
async fn emergency_codes_through_radclient_and_pyrad() {
    use tokengate::admin::IssueOptions;
    use tokengate::model::EmergencyKind;
    let tg = TestGateway::start().await;
    let alice = tg.pin_user("alice").await;
    let dave = tg
        .user_with_token("dave", None, TokenKind::App, OtpMode::Totp { period: 30 })
        .await;
    let now = tg.now();
    let a = tg.admin();
    let tft = a
        .issue_emergency(
            &alice,
            IssueOptions {
                kind: Some(EmergencyKind::Tft),
                ..Default::default()
            },
            now,
        )
        .await
        .unwrap();
    let ott = a
        .issue_emergency(
            &dave,
            IssueOptions {
                kind: Some(EmergencyKind::Ott),
                count: Some(2),
                ..Default::default()
            },
            now,
        )
        .await
        .unwrap();
    a.set_fixed_passcode("alice", "Fixed2Pass", "Fixed2Pass", now)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(350)).await;
    // radclient: TFT with PIN (twice: reusable), fixed passcode alone.
    for _ in 0..2 {
        let out = radclient(
            tg.addr,
            &format!("User-Name = alice, User-Password = 1234{}", tft.codes[0]),
        )
        .await;
        assert!(out.contains("Received Access-Accept"), "{out}");
    }
    let out = radclient(tg.addr, "User-Name = alice, User-Password = Fixed2Pass").await;
    assert!(out.contains("Received Access-Accept"), "{out}");
    // pyrad: OTT for an app token, alone; once.
    let r = pyrad_async(tg.addr, "dave", &ott.codes[0], None).await;
    assert_eq!(r["code"], 2, "{r}");
    let r = pyrad_async(tg.addr, "dave", &ott.codes[0], None).await;
    assert_eq!(r["code"], 3, "{r}");
    let r = pyrad_async(tg.addr, "dave", &ott.codes[1], None).await;
    assert_eq!(r["code"], 2, "{r}");
}
