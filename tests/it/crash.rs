//! Crash safety: SIGKILL right after an Access-Accept must not let that code work again (R-1:
//! the Accept is sent only after the write that consumed the code is durable).

use std::time::{Duration, Instant};

use tokengate::radius::Code;

use crate::common::*;

#[tokio::test]
async fn sigkill_after_accept_does_not_let_the_code_work_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), None, "");
    // Provision through the library on the same database, then stop.
    let tg = TestGateway::start_at(dir, &path).await;
    tg.pin_user("alice").await;
    let dir = tg.shutdown().await;

    let (mut child, addr) = start_daemon(&path);
    let mut c = RadClient::new(addr).await;
    let s = otp_step();
    let started = Instant::now();
    let r = c.ask("alice", &format!("1234{}", code(s))).await;
    assert_eq!(r.code, Code::AccessAccept);
    child.kill().unwrap(); // SIGKILL, immediately after the Accept arrived
    child.wait().unwrap();

    let (mut child, addr) = start_daemon(&path);
    let mut c = RadClient::new(addr).await;
    let again = c.ask("alice", &format!("1234{}", code(s))).await;
    assert_eq!(
        again.code,
        Code::AccessReject,
        "code worked twice after a crash"
    );
    // An older code inside the window is refused too; a newer one still works.
    assert_eq!(
        c.ask("alice", &format!("1234{}", code(s - 1))).await.code,
        Code::AccessReject
    );
    assert_eq!(
        c.ask("alice", &format!("1234{}", code(s + 1))).await.code,
        Code::AccessAccept
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    child.kill().unwrap();
    child.wait().unwrap();
    drop(dir);
}

fn otp_step() -> i64 {
    tokengate::otp::totp_step(tokengate::clock::unix_now(), 30)
}
