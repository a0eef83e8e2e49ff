//! End-to-end RADIUS flows through real UDP sockets against an in-process gateway (SQLite).
//! Each test names the SPEC rule it exercises.

use std::time::Duration;

use tokengate::model::{OtpMode, TokenKind};
use tokengate::radius::{attr, Code, Encoder};

use crate::common::*;

#[tokio::test]
async fn p1_pin_and_current_totp_code_is_accepted_with_profile_attributes() {
    let tg = TestGateway::start().await;
    tg.pin_user("alice").await;
    let mut c = RadClient::new(tg.addr).await;
    let r = c.ask("alice", &format!("1234{}", code(tg.step()))).await;
    assert_eq!(r.code, Code::AccessAccept);
    // Profile "vpn" of client "nas": Session-Timeout 3600, Class "gold".
    assert_eq!(
        r.first(attr::SESSION_TIMEOUT),
        Some(&3600u32.to_be_bytes()[..])
    );
    assert_eq!(r.first(attr::CLASS), Some(&b"gold"[..]));
    assert_eq!(tg.stat("accepts"), 1);
}

#[tokio::test]
async fn user_names_are_case_insensitive_by_default() {
    let tg = TestGateway::start().await;
    tg.pin_user("Bob").await;
    let mut c = RadClient::new(tg.addr).await;
    assert_eq!(
        c.ask("BOB", &format!("1234{}", code(tg.step()))).await.code,
        Code::AccessAccept
    );
}

#[tokio::test]
async fn wrong_code_wrong_pin_and_unknown_user_are_rejected_alike() {
    let tg = TestGateway::start().await;
    tg.pin_user("alice").await;
    let mut c = RadClient::new(tg.addr).await;
    let wrong_code = c.ask("alice", "1234000000").await;
    let wrong_pin = c.ask("alice", &format!("9999{}", code(tg.step()))).await;
    let unknown = c.ask("mallory", &format!("1234{}", code(tg.step()))).await;
    for r in [&wrong_code, &wrong_pin, &unknown] {
        assert_eq!(r.code, Code::AccessReject);
    }
    // L-4: same attributes, same message for an unknown user as for a wrong passcode.
    let shape = |r: &Reply| {
        r.attrs
            .iter()
            .map(|(t, v)| {
                (
                    *t,
                    if *t == attr::MESSAGE_AUTHENTICATOR {
                        vec![]
                    } else {
                        v.clone()
                    },
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(shape(&wrong_code), shape(&unknown));
    assert_eq!(shape(&wrong_pin), shape(&unknown));
}

#[tokio::test]
async fn r1_replayed_code_and_older_in_window_code_are_rejected() {
    let tg = TestGateway::start().await;
    tg.pin_user("alice").await;
    let mut c = RadClient::new(tg.addr).await;
    let s = tg.step();
    assert_eq!(
        c.ask("alice", &format!("1234{}", code(s))).await.code,
        Code::AccessAccept
    );
    // The same code again, in a new request: a replay.
    assert_eq!(
        c.ask("alice", &format!("1234{}", code(s))).await.code,
        Code::AccessReject
    );
    // A newer code succeeds; then the older-but-in-window one is refused.
    assert_eq!(
        c.ask("alice", &format!("1234{}", code(s + 1))).await.code,
        Code::AccessAccept
    );
    assert_eq!(
        c.ask("alice", &format!("1234{}", code(s))).await.code,
        Code::AccessReject
    );
    assert_eq!(tg.stat("replays"), 2);
}

#[tokio::test]
async fn r2_retransmission_gets_the_identical_reply_and_is_not_verified_again() {
    let tg = TestGateway::start().await;
    // Several users, each retransmitted the moment its reply arrives: the tightest a NAS can
    // be, and the race a reply sent before its cache slot was filled used to lose (the
    // retransmission was dropped as still in flight).
    const USERS: usize = 20;
    for i in 0..USERS {
        tg.pin_user(&format!("user{i}")).await;
    }
    let mut c = RadClient::new(tg.addr).await;
    for i in 0..USERS {
        let req = c.build(
            &format!("user{i}"),
            &format!("1234{}", code(tg.step())),
            None,
            &[],
        );
        let first = c.send_raw(&req).await.expect("a reply");
        assert_eq!(first.code, Code::AccessAccept, "user{i}");
        // Verifying again would have answered Reject (code already used): the cache answers.
        let again = c
            .send_raw(&req)
            .await
            .expect("the retransmission is answered");
        assert_eq!(again.raw, first.raw, "user{i}");
    }
    assert_eq!(tg.stat("duplicates_resent"), USERS as u64);
    assert_eq!(tg.stat("accepts"), USERS as u64);
}

#[tokio::test]
async fn l3_locked_user_is_rejected_with_a_valid_passcode_until_unlocked() {
    let tg = TestGateway::start().await;
    tg.pin_user("alice").await;
    let now = tg.now();
    tg.admin().set_locked("alice", true, now).await.unwrap();
    // The running gateway learns of the CLI's change through the change feed.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut c = RadClient::new(tg.addr).await;
    let s = tg.step();
    assert_eq!(
        c.ask("alice", &format!("1234{}", code(s))).await.code,
        Code::AccessReject
    );
    tg.admin().set_locked("alice", false, now).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        c.ask("alice", &format!("1234{}", code(s))).await.code,
        Code::AccessAccept
    );
}

#[tokio::test]
async fn l1_five_failures_lock_the_user() {
    let tg = TestGateway::start().await;
    tg.pin_user("alice").await;
    let mut c = RadClient::new(tg.addr).await;
    for i in 0..5 {
        assert_eq!(
            c.ask("alice", &format!("12340000{i:02}")).await.code,
            Code::AccessReject
        );
    }
    assert_eq!(
        c.ask("alice", &format!("1234{}", code(tg.step())))
            .await
            .code,
        Code::AccessReject
    );
    let u = tg.admin().show_user("alice").await.unwrap();
    assert!(u.user.locked);
    assert_eq!(u.user.fail_count, 5);
}

#[tokio::test]
async fn l3_after_five_failures_an_admin_unlock_lets_the_next_correct_passcode_in() {
    // Issue 18: the failures that locked the user also raised the token's bad-passcode count
    // past N-1's limit, and an unlock that left it there answered the next correct passcode
    // with a Next Tokencode challenge instead of an Accept.
    let tg = TestGateway::start().await;
    tg.pin_user("alice").await;
    let mut c = RadClient::new(tg.addr).await;
    for i in 0..5 {
        assert_eq!(
            c.ask("alice", &format!("12340000{i:02}")).await.code,
            Code::AccessReject
        );
    }
    assert!(tg.admin().show_user("alice").await.unwrap().user.locked);
    tg.admin()
        .set_locked("alice", false, tg.now())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        c.ask("alice", &format!("1234{}", code(tg.step())))
            .await
            .code,
        Code::AccessAccept
    );
}

#[tokio::test]
async fn n1_next_tokencode_round_trip_after_a_wide_window_match() {
    let tg = TestGateway::start().await;
    tg.pin_user("alice").await;
    let mut c = RadClient::new(tg.addr).await;
    let s = tg.step();
    let ch = c.ask("alice", &format!("1234{}", code(s + 3))).await;
    assert_eq!(ch.code, Code::AccessChallenge);
    assert!(ch.message().contains("tokencode"), "{}", ch.message());
    let state = ch.state();
    assert!(
        state.len() >= 22 && state.iter().all(|b| b.is_ascii_graphic()),
        "printable State"
    );
    let ok = c.answer("alice", &code(s + 4), &ch).await;
    assert_eq!(ok.code, Code::AccessAccept);
    // The State is single use.
    assert_eq!(
        c.answer("alice", &code(s + 5), &ch).await.code,
        Code::AccessReject
    );
    assert_eq!(tg.stat("challenges"), 1);
}

#[tokio::test]
async fn n2_wrong_next_tokencode_rejects_and_locks() {
    let tg = TestGateway::start().await;
    tg.pin_user("alice").await;
    let mut c = RadClient::new(tg.addr).await;
    let s = tg.step();
    let ch = c.ask("alice", &format!("1234{}", code(s + 3))).await;
    assert_eq!(
        c.answer("alice", "000000", &ch).await.code,
        Code::AccessReject
    );
    assert!(tg.admin().show_user("alice").await.unwrap().user.locked);
}

#[tokio::test]
async fn pin1_new_pin_round_trip() {
    let tg = TestGateway::start().await;
    tg.user_with_token("carol", None, TokenKind::Pin, OtpMode::Totp { period: 30 })
        .await;
    let mut c = RadClient::new(tg.addr).await;
    let s = tg.step();
    let ch1 = c.ask("carol", &code(s)).await;
    assert_eq!(ch1.code, Code::AccessChallenge);
    assert!(ch1.message().contains("new PIN"), "{}", ch1.message());
    let bad = c.answer("carol", "12a", &ch1).await;
    assert_eq!(bad.code, Code::AccessChallenge);
    assert!(bad.message().contains("PIN rejected"), "{}", bad.message());
    let ch2 = c.answer("carol", "5678", &bad).await;
    assert!(ch2.message().contains("Re-enter"), "{}", ch2.message());
    let ch3 = c.answer("carol", "5678", &ch2).await;
    assert_eq!(ch3.code, Code::AccessChallenge);
    assert!(ch3.message().contains("PIN accepted"), "{}", ch3.message());
    let ok = c
        .answer("carol", &format!("5678{}", code(s + 1)), &ch3)
        .await;
    assert_eq!(ok.code, Code::AccessAccept);
    // From now on the PIN is required.
    assert_eq!(
        c.ask("carol", &format!("5678{}", code(s + 2))).await.code,
        Code::AccessAccept
    );
}

#[tokio::test]
async fn p2_app_token_and_hotp_token_log_in() {
    let tg = TestGateway::start().await;
    tg.user_with_token("dave", None, TokenKind::App, OtpMode::Totp { period: 30 })
        .await;
    tg.user_with_token("erin", Some("4321"), TokenKind::Pin, OtpMode::Hotp)
        .await;
    let mut c = RadClient::new(tg.addr).await;
    assert_eq!(
        c.ask("dave", &code(tg.step())).await.code,
        Code::AccessAccept
    );
    assert_eq!(
        c.ask("erin", &format!("4321{}", code(0))).await.code,
        Code::AccessAccept
    );
    assert_eq!(
        c.ask("erin", &format!("4321{}", code(3))).await.code,
        Code::AccessAccept
    );
    assert_eq!(
        c.ask("erin", &format!("4321{}", code(2))).await.code,
        Code::AccessReject
    );
}

#[tokio::test]
async fn unknown_client_gets_no_reply_and_is_counted() {
    let tg = TestGateway::start().await;
    tg.pin_user("alice").await;
    let mut c = RadClient::from(tg.addr, "127.0.0.3", SECRET).await;
    c.timeout = Duration::from_millis(500);
    assert!(c
        .request("alice", &format!("1234{}", code(tg.step())), None)
        .await
        .is_none());
    assert_eq!(tg.stat("drop.unknown_client"), 1);
}

#[tokio::test]
async fn bad_or_missing_message_authenticator_gets_no_reply() {
    let tg = TestGateway::start().await;
    tg.pin_user("alice").await;
    // Wrong secret → the Message-Authenticator does not verify.
    let mut wrong = RadClient::from(tg.addr, "127.0.0.1", "not-the-secret").await;
    wrong.timeout = Duration::from_millis(500);
    assert!(wrong.request("alice", "1234000000", None).await.is_none());
    assert_eq!(tg.stat("drop.bad_message_authenticator"), 1);
    // Missing, where the client requires it.
    let mut bare = RadClient::new(tg.addr).await;
    bare.message_authenticator = false;
    bare.timeout = Duration::from_millis(500);
    assert!(bare.request("alice", "1234000000", None).await.is_none());
    assert_eq!(tg.stat("drop.missing_message_authenticator"), 1);
}

#[tokio::test]
async fn exempt_client_without_message_authenticator_is_answered_with_one_but_not_with_proxy_state()
{
    let tg = TestGateway::start().await;
    tg.pin_user("alice").await;
    let mut c = RadClient::from(tg.addr, "127.0.0.2", "legacy-secret").await;
    c.message_authenticator = false;
    // Replies are still signed (RadClient checks MA first and valid).
    assert_eq!(
        c.ask("alice", &format!("1234{}", code(tg.step())))
            .await
            .code,
        Code::AccessAccept
    );
    // BLAST-RADIUS: Proxy-State without Message-Authenticator is refused even for exempt clients.
    c.timeout = Duration::from_millis(500);
    let req = c.build("alice", "1234000000", None, &[(attr::PROXY_STATE, b"ps")]);
    assert!(c.send_raw(&req).await.is_none());
    assert_eq!(tg.stat("drop.missing_message_authenticator"), 1);
}

#[tokio::test]
async fn proxy_state_is_echoed_in_order() {
    let tg = TestGateway::start().await;
    tg.pin_user("alice").await;
    let mut c = RadClient::new(tg.addr).await;
    let req = c.build(
        "alice",
        "1234000000",
        None,
        &[(attr::PROXY_STATE, b"one"), (attr::PROXY_STATE, b"two")],
    );
    let r = c.send_raw(&req).await.unwrap();
    let ps: Vec<&[u8]> = r
        .attrs
        .iter()
        .filter(|(t, _)| *t == attr::PROXY_STATE)
        .map(|(_, v)| v.as_slice())
        .collect();
    assert_eq!(ps, vec![&b"one"[..], &b"two"[..]]);
}

#[tokio::test]
async fn status_server_is_answered_and_requires_message_authenticator() {
    let tg = TestGateway::start().await;
    let c = RadClient::new(tg.addr).await;
    let auth: [u8; 16] = rand::random();
    let mut buf = vec![0u8; 256];
    let e = Encoder::request(&mut buf, Code::StatusServer, 7, &auth, true).unwrap();
    let req = e.finish_request(&c.key).unwrap().to_vec();
    let r = c.send_raw(&req).await.unwrap();
    assert_eq!(r.code, Code::AccessAccept);
    let mut buf = vec![0u8; 256];
    let e = Encoder::request(&mut buf, Code::StatusServer, 8, &auth, false).unwrap();
    let req = e.finish_request(&c.key).unwrap().to_vec();
    // Our own decoder refuses to build a view of this packet, so send and listen raw.
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(&req, tg.addr).await.unwrap();
    let mut buf = [0u8; 512];
    let got = tokio::time::timeout(Duration::from_millis(500), sock.recv(&mut buf)).await;
    assert!(
        got.is_err(),
        "Status-Server without Message-Authenticator must get no reply"
    );
    assert_eq!(tg.stat("status_server"), 1);
    assert_eq!(tg.stat("drop.missing_message_authenticator"), 1);
}

#[tokio::test]
async fn malformed_datagrams_are_dropped_counted_and_harmless() {
    let tg = TestGateway::start().await;
    tg.pin_user("alice").await;
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut junk: Vec<Vec<u8>> = vec![
        vec![1, 0, 0, 19],                                    // shorter than a header
        [&[1u8, 0, 0, 100][..], &[0u8; 16]].concat(),         // Length beyond the datagram
        [&[1u8, 0, 0, 21][..], &[0u8; 16], &[0xff]].concat(), // attribute header overflow
        [&[0x35u8, 0, 0, 20][..], &[0u8; 16]].concat(),       // unknown code
    ];
    // Random garbage.
    for i in 0..200u32 {
        let n = (i as usize * 7) % 300 + 1;
        junk.push((0..n).map(|j| (j as u32 * 31 + i * 17) as u8).collect());
    }
    for j in &junk {
        sock.send_to(j, tg.addr).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        tg.stat("drop.malformed") >= 4,
        "{:?}",
        tg.gw().stats.snapshot()
    );
    assert!(tg.stat("malformed.too_short") >= 1);
    assert!(tg.stat("malformed.length_exceeds_datagram") >= 1);
    assert!(tg.stat("malformed.attribute_header_overflow") >= 1);
    assert!(tg.stat("malformed.unknown_code") >= 1);
    // Still serving.
    let mut c = RadClient::new(tg.addr).await;
    assert_eq!(
        c.ask("alice", &format!("1234{}", code(tg.step())))
            .await
            .code,
        Code::AccessAccept
    );
}

#[tokio::test]
async fn user_profile_wins_over_client_profile() {
    let tg = TestGateway::start().await;
    let now = tg.now();
    let a = tg.admin();
    a.add_user("root", "default", Some("admin"), now)
        .await
        .unwrap();
    a.add_token(
        tokengate::admin::TokenSpec {
            serial: Some("R1".into()),
            user: Some("root".into()),
            kind: TokenKind::App,
            seed: Some(SEED.to_vec()),
            ..Default::default()
        },
        now,
    )
    .await
    .unwrap();
    let mut c = RadClient::new(tg.addr).await;
    let r = c.ask("root", &code(tg.step())).await;
    assert_eq!(r.code, Code::AccessAccept);
    let vsa = r.first(attr::VENDOR_SPECIFIC).expect("Cisco-AVPair VSA");
    assert_eq!(&vsa[..4], &9u32.to_be_bytes());
    assert!(vsa.ends_with(b"shell:priv-lvl=15"));
    assert!(r.first(attr::SESSION_TIMEOUT).is_none());
}

#[tokio::test]
async fn graceful_shutdown_answers_in_flight_requests_and_keeps_their_writes() {
    let tg = TestGateway::start().await;
    tg.pin_user("alice").await;
    let mut c = RadClient::new(tg.addr).await;
    let s = tg.step();
    let req = c.build("alice", &format!("1234{}", code(s)), None, &[]);
    c.sock.send_to(&req, tg.addr).await.unwrap();
    // Give the datagram time to be read, then shut down while (or after) it is processed.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let path = tg.config.path.clone();
    let dir = tg.shutdown().await;
    let r = c
        .recv_for(&req)
        .await
        .expect("in-flight request answered before exit");
    assert_eq!(r.code, Code::AccessAccept);
    // Restart on the same database: the code stays used.
    let tg = TestGateway::start_at(dir, &path).await;
    let mut c = RadClient::new(tg.addr).await;
    assert_eq!(
        c.ask("alice", &format!("1234{}", code(s))).await.code,
        Code::AccessReject
    );
}
