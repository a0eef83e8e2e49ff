//! Emergency access end to end through the RADIUS front end (real sockets, our RADIUS client,
//! radclient for the export test): SPEC §6 (E-1..E-5), §7 (FP-1/2), §8 (O-2..O-4), L-2.
//! Admin changes reach the running gateway through the change feed (`settle`).

use std::time::Duration;

use tokengate::admin::{IssueOptions, IssuedEmergency};
use tokengate::model::{EmergencyKind, EmergencyMode, OtpMode, TokenKind};
use tokengate::radius::Code;

use crate::common::*;

const DAY: i64 = 86_400;

/// Lets the gateway's change-feed poller pick up admin changes (polls every 100 ms in tests).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(350)).await;
}

async fn issue(
    tg: &TestGateway,
    serial: &str,
    kind: EmergencyKind,
    opts: IssueOptions,
) -> IssuedEmergency {
    let r = tg
        .admin()
        .issue_emergency(
            serial,
            IssueOptions {
                kind: Some(kind),
                ..opts
            },
            tg.now(),
        )
        .await
        .unwrap();
    settle().await;
    r
}

fn frozen(tg: &TestGateway) -> i64 {
    let t = tg.now();
    tg.gw().clock.freeze(t);
    t
}

#[tokio::test]
async fn e1_tft_is_reused_until_it_expires_then_rejected() {
    let tg = TestGateway::start().await;
    let t0 = frozen(&tg);
    let serial = tg.pin_user("alice").await;
    let tft = issue(
        &tg,
        &serial,
        EmergencyKind::Tft,
        IssueOptions {
            expires_at: Some(t0 + DAY),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(tft.codes.len(), 1);
    let pc = format!("1234{}", tft.codes[0]);
    let mut c = RadClient::new(tg.addr).await;
    assert_eq!(c.ask("alice", &pc).await.code, Code::AccessAccept);
    assert_eq!(
        c.ask("alice", &pc).await.code,
        Code::AccessAccept,
        "a TFT is reusable"
    );
    tg.gw().clock.freeze(t0 + DAY - 1);
    assert_eq!(c.ask("alice", &pc).await.code, Code::AccessAccept);
    tg.gw().clock.freeze(t0 + DAY);
    assert_eq!(
        c.ask("alice", &pc).await.code,
        Code::AccessReject,
        "expired at the instant"
    );
}

#[tokio::test]
async fn p3_tft_for_an_app_token_works_without_pin_and_fails_with_one() {
    let tg = TestGateway::start().await;
    let serial = tg
        .user_with_token("dave", None, TokenKind::App, OtpMode::Totp { period: 30 })
        .await;
    let tft = issue(&tg, &serial, EmergencyKind::Tft, IssueOptions::default()).await;
    assert!(!tft.with_pin);
    assert_eq!(tft.codes[0].len(), 8, "app tokens use the default format");
    let mut c = RadClient::new(tg.addr).await;
    assert_eq!(
        c.ask("dave", &format!("1234{}", tft.codes[0])).await.code,
        Code::AccessReject
    );
    assert_eq!(c.ask("dave", &tft.codes[0]).await.code, Code::AccessAccept);
}

#[tokio::test]
async fn e1_ott_set_of_five_each_once_reuse_counted_and_no_sixth_login() {
    let tg = TestGateway::start().await;
    let serial = tg.pin_user("alice").await;
    let ott = issue(
        &tg,
        &serial,
        EmergencyKind::Ott,
        IssueOptions {
            count: Some(5),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ott.codes.len(), 5);
    let mut c = RadClient::new(tg.addr).await;
    for code in &ott.codes {
        assert_eq!(
            c.ask("alice", &format!("1234{code}")).await.code,
            Code::AccessAccept,
            "{code}"
        );
    }
    // Reuse is rejected and counts toward lockout.
    assert_eq!(
        c.ask("alice", &format!("1234{}", ott.codes[2])).await.code,
        Code::AccessReject
    );
    let u = tg.admin().show_user("alice").await.unwrap();
    assert_eq!(u.user.fail_count, 1);
    // A sixth login with any of the codes is impossible.
    for code in &ott.codes {
        assert_eq!(
            c.ask("alice", &format!("1234{code}")).await.code,
            Code::AccessReject
        );
    }
    let v = tg
        .admin()
        .emergency_show(&serial, tg.now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((v.total, v.used), (5, 5));
}

#[tokio::test]
async fn e1_issuing_replaces_the_previous_codes_and_needs_an_assigned_token() {
    let tg = TestGateway::start().await;
    let serial = tg.pin_user("alice").await;
    let first = issue(&tg, &serial, EmergencyKind::Tft, IssueOptions::default()).await;
    let second = issue(
        &tg,
        &serial,
        EmergencyKind::Ott,
        IssueOptions {
            count: Some(2),
            ..Default::default()
        },
    )
    .await;
    let mut c = RadClient::new(tg.addr).await;
    assert_eq!(
        c.ask("alice", &format!("1234{}", first.codes[0]))
            .await
            .code,
        Code::AccessReject
    );
    assert_eq!(
        c.ask("alice", &format!("1234{}", second.codes[0]))
            .await
            .code,
        Code::AccessAccept
    );
    tg.admin().assign(&serial, None, tg.now()).await.unwrap();
    assert!(
        tg.admin()
            .emergency_show(&serial, tg.now())
            .await
            .unwrap()
            .is_none(),
        "codes never move with a token to another owner"
    );
    let e = tg
        .admin()
        .issue_emergency(&serial, IssueOptions::default(), tg.now())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not assigned"), "{e}");
}

#[tokio::test]
async fn e2_issuing_past_the_global_maximum_is_refused() {
    let tg = TestGateway::start_with("[domain.default.emergency]\nmax_lifetime_days = 10\n").await;
    let serial = tg.pin_user("alice").await;
    let now = tg.now();
    let e = tg
        .admin()
        .issue_emergency(
            &serial,
            IssueOptions {
                expires_at: Some(now + 11 * DAY),
                ..Default::default()
            },
            now,
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("global maximum"), "{e}");
    assert!(
        tg.admin()
            .emergency_show(&serial, now)
            .await
            .unwrap()
            .is_none(),
        "nothing issued"
    );
    // Exactly at the maximum is allowed.
    tg.admin()
        .issue_emergency(
            &serial,
            IssueOptions {
                expires_at: Some(now + 10 * DAY),
                ..Default::default()
            },
            now,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn e3_numeric_only_policy_yields_eight_digit_codes() {
    let tg =
        TestGateway::start_with("[domain.default.token]\nemergency_code_charset = \"numeric\"\n")
            .await;
    let serial = tg.pin_user("alice").await;
    let ott = issue(
        &tg,
        &serial,
        EmergencyKind::Ott,
        IssueOptions {
            count: Some(20),
            ..Default::default()
        },
    )
    .await;
    for code in &ott.codes {
        assert!(
            code.len() == 8 && code.bytes().all(|b| b.is_ascii_digit()),
            "{code}"
        );
    }
    let mut c = RadClient::new(tg.addr).await;
    assert_eq!(
        c.ask("alice", &format!("1234{}", ott.codes[0])).await.code,
        Code::AccessAccept
    );
}

async fn rule_gateway(rule: &str) -> (TestGateway, String, i64, IssuedEmergency) {
    let tg = TestGateway::start_with(&format!(
        "[domain.default.emergency]\non_token_available = \"{rule}\"\n"
    ))
    .await;
    let t0 = frozen(&tg);
    let serial = tg.pin_user("alice").await;
    let tft = issue(
        &tg,
        &serial,
        EmergencyKind::Tft,
        IssueOptions {
            mode: Some(EmergencyMode::Unavailable),
            expires_at: Some(t0 + DAY),
            ..Default::default()
        },
    )
    .await;
    (tg, serial, t0, tft)
}

#[tokio::test]
async fn e4_deny_rejects_the_real_token_until_expiry() {
    let (tg, _, t0, tft) = rule_gateway("deny").await;
    let mut c = RadClient::new(tg.addr).await;
    assert_eq!(
        c.ask("alice", &format!("1234{}", code(tg.step())))
            .await
            .code,
        Code::AccessReject
    );
    assert_eq!(
        c.ask("alice", &format!("1234{}", tft.codes[0])).await.code,
        Code::AccessAccept
    );
    tg.gw().clock.freeze(t0 + DAY - 1);
    assert_eq!(
        c.ask("alice", &format!("1234{}", code(tg.step())))
            .await
            .code,
        Code::AccessReject
    );
    tg.gw().clock.freeze(t0 + DAY);
    assert_eq!(
        c.ask("alice", &format!("1234{}", tft.codes[0])).await.code,
        Code::AccessReject
    );
    assert_eq!(
        c.ask("alice", &format!("1234{}", code(tg.step())))
            .await
            .code,
        Code::AccessAccept
    );
}

#[tokio::test]
async fn e4_allow_and_disable_first_real_login_deletes_the_codes() {
    let (tg, serial, _, tft) = rule_gateway("allow_and_disable").await;
    let mut c = RadClient::new(tg.addr).await;
    assert_eq!(
        c.ask("alice", &format!("1234{}", tft.codes[0])).await.code,
        Code::AccessAccept
    );
    assert_eq!(
        c.ask("alice", &format!("1234{}", code(tg.step())))
            .await
            .code,
        Code::AccessAccept
    );
    assert_eq!(
        c.ask("alice", &format!("1234{}", tft.codes[0])).await.code,
        Code::AccessReject
    );
    assert!(
        tg.admin()
            .emergency_show(&serial, tg.now())
            .await
            .unwrap()
            .is_none(),
        "codes deleted in the database"
    );
}

#[tokio::test]
async fn e4_allow_after_expiry_rejects_until_the_instant_then_the_token_works_and_codes_stop() {
    let (tg, serial, t0, tft) = rule_gateway("allow_after_expiry").await;
    let mut c = RadClient::new(tg.addr).await;
    tg.gw().clock.freeze(t0 + DAY - 1);
    assert_eq!(
        c.ask("alice", &format!("1234{}", code(tg.step())))
            .await
            .code,
        Code::AccessReject
    );
    assert_eq!(
        c.ask("alice", &format!("1234{}", tft.codes[0])).await.code,
        Code::AccessAccept
    );
    tg.gw().clock.freeze(t0 + DAY);
    assert_eq!(
        c.ask("alice", &format!("1234{}", code(tg.step() + 1)))
            .await
            .code,
        Code::AccessAccept
    );
    assert_eq!(
        c.ask("alice", &format!("1234{}", tft.codes[0])).await.code,
        Code::AccessReject
    );
    assert!(tg
        .admin()
        .emergency_show(&serial, tg.now())
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn fp1_fixed_passcode_alone_is_accepted_with_a_pin_prefix_rejected_and_audited_single_factor()
{
    let tg = TestGateway::start().await;
    tg.pin_user("alice").await;
    let now = tg.now();
    let e = tg
        .admin()
        .set_fixed_passcode("alice", "Fixed2Pass", "Fixed2Pazz", now)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("do not match"), "{e}");
    let e = tg
        .admin()
        .set_fixed_passcode("alice", "short", "short", now)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("8 to 32"), "{e}");
    tg.admin()
        .set_fixed_passcode("alice", "Fixed2Pass", "Fixed2Pass", now)
        .await
        .unwrap();
    settle().await;
    let mut c = RadClient::new(tg.addr).await;
    assert_eq!(c.ask("alice", "Fixed2Pass").await.code, Code::AccessAccept);
    assert_eq!(
        c.ask("alice", "1234Fixed2Pass").await.code,
        Code::AccessReject
    );
    let audit = tg.gw().store.audit_since(0, 1000).await.unwrap();
    assert!(audit.iter().any(|a| a.method == "fixed_passcode"
        && a.result == "accept"
        && a.reason == "single_factor"));
    tg.admin().clear_fixed_passcode("alice", now).await.unwrap();
    settle().await;
    assert_eq!(c.ask("alice", "Fixed2Pass").await.code, Code::AccessReject);
}

const OFFLINE: &str = "[domain.default.offline]\nallowed = true\nemergency_codes = true\n";

#[tokio::test]
async fn o4_offline_tokencode_is_rejected_online_until_flagged_then_accepted_with_pin_and_reset_kills_it(
) {
    let tg = TestGateway::start_with(OFFLINE).await;
    let serial = tg.pin_user("alice").await;
    let now = tg.now();
    let v = tg.admin().offline_code_show(&serial, now).await.unwrap();
    assert!(!v.online && v.expires_at == now + 30 * DAY);
    // Shown again: the same code.
    assert_eq!(
        tg.admin()
            .offline_code_show(&serial, now)
            .await
            .unwrap()
            .code,
        v.code
    );
    settle().await;
    let mut c = RadClient::new(tg.addr).await;
    assert_eq!(
        c.ask("alice", &format!("1234{}", v.code)).await.code,
        Code::AccessReject
    );
    tg.admin()
        .offline_code_online(&serial, true, now)
        .await
        .unwrap();
    settle().await;
    assert_eq!(
        c.ask("alice", &format!("1234{}", v.code)).await.code,
        Code::AccessAccept
    );
    assert_eq!(
        c.ask("alice", &v.code).await.code,
        Code::AccessReject,
        "PIN required"
    );
    let new = tg.admin().offline_code_reset(&serial, now).await.unwrap();
    assert!(new.reset && new.online && new.code != v.code);
    settle().await;
    assert_eq!(
        c.ask("alice", &format!("1234{}", v.code)).await.code,
        Code::AccessReject
    );
    assert_eq!(
        c.ask("alice", &format!("1234{}", new.code)).await.code,
        Code::AccessAccept
    );
    // The per-user offline emergency passcode exists too, and is not valid online.
    let pc = tg
        .admin()
        .offline_passcode("alice", false, now)
        .await
        .unwrap();
    assert_eq!(pc.user.as_deref(), Some("alice"));
    assert_eq!(c.ask("alice", &pc.code).await.code, Code::AccessReject);
}

#[tokio::test]
async fn o2_offline_codes_need_the_domain_policy() {
    let tg = TestGateway::start().await;
    let serial = tg.pin_user("alice").await;
    let e = tg
        .admin()
        .offline_code_show(&serial, tg.now())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("offline policy"), "{e}");
}

#[tokio::test]
async fn l2_mixed_method_failures_add_up_to_a_lock() {
    let tg = TestGateway::start_with(OFFLINE).await;
    let serial = tg.pin_user("alice").await;
    let now = tg.now();
    let ott = issue(
        &tg,
        &serial,
        EmergencyKind::Ott,
        IssueOptions {
            count: Some(1),
            ..Default::default()
        },
    )
    .await;
    tg.admin()
        .set_fixed_passcode("alice", "Fixed2Pass", "Fixed2Pass", now)
        .await
        .unwrap();
    let off = tg
        .admin()
        .offline_code_online(&serial, true, now)
        .await
        .unwrap();
    settle().await;
    let mut c = RadClient::new(tg.addr).await;
    assert_eq!(
        c.ask("alice", &format!("1234{}", ott.codes[0])).await.code,
        Code::AccessAccept
    );
    let wrong_offline = format!(
        "1234{}",
        if off.code.starts_with('A') { "B" } else { "A" }.to_string() + &off.code[1..]
    );
    for attempt in [
        "1234ZZZZ2222".to_string(),      // wrong emergency code
        format!("1234{}", ott.codes[0]), // used OTT
        "Wrong2Fixed".to_string(),       // wrong fixed passcode
        wrong_offline,                   // wrong offline code
        "1234000000".to_string(),        // wrong tokencode
    ] {
        assert_eq!(
            c.ask("alice", &attempt).await.code,
            Code::AccessReject,
            "{attempt}"
        );
    }
    let u = tg.admin().show_user("alice").await.unwrap();
    assert!(u.user.locked, "five failures of five methods lock the user");
    assert_eq!(
        c.ask("alice", "Fixed2Pass").await.code,
        Code::AccessReject,
        "locked"
    );
}

#[tokio::test]
async fn e5_exported_file_matches_the_format_and_its_codes_work_once_each() {
    let tg = TestGateway::start().await;
    let serial = tg.pin_user("alice").await;
    // Issue and export through the CLI binary on the gateway's database.
    let file = tg.dir.path().join("codes.txt");
    let (ok, out, err) = cli(
        &tg.config.path,
        &[
            "emergency",
            "ott",
            &serial,
            "--count",
            "4",
            "--export",
            file.to_str().unwrap(),
        ],
    );
    assert!(ok, "{out}{err}");
    assert!(
        !out.contains(
            &std::fs::read_to_string(&file)
                .unwrap()
                .lines()
                .last()
                .unwrap()
                .to_string()
        ),
        "codes not printed when exported"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let header: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
    assert!(
        header.contains(&format!("# Token serial: {serial}").as_str()),
        "{text}"
    );
    assert!(header.contains(&"# Codes: 4"), "{text}");
    assert!(
        header
            .iter()
            .any(|h| h.starts_with("# Expires: ") && h.ends_with('Z')),
        "{text}"
    );
    assert!(!text.contains("1234"), "never the PIN");
    let codes: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(codes.len(), 4);
    // Exporting to an existing file is refused (shown or exported once).
    let (ok, _, err) = cli(
        &tg.config.path,
        &[
            "emergency",
            "ott",
            &serial,
            "--export",
            file.to_str().unwrap(),
        ],
    );
    assert!(!ok && err.contains("must not exist"), "{err}");
    settle().await;
    let mut c = RadClient::new(tg.addr).await;
    for code in &codes {
        assert!(
            code.len() == 8 && code.bytes().all(|b| b.is_ascii_alphanumeric()),
            "{code}"
        );
        assert_eq!(
            c.ask("alice", &format!("1234{code}")).await.code,
            Code::AccessAccept
        );
        assert_eq!(
            c.ask("alice", &format!("1234{code}")).await.code,
            Code::AccessReject
        );
    }
    let audit = tg.gw().store.audit_since(0, 1000).await.unwrap();
    assert!(audit.iter().any(|a| a.method == "emergency_ott_export"
        && a.actor.as_deref().is_some_and(|x| x.starts_with("cli:"))));
}

#[tokio::test]
async fn mark_lost_issues_with_the_lost_lifetime_and_deny_and_found_clears() {
    let tg = TestGateway::start().await;
    let serial = tg.pin_user("alice").await;
    let (ok, out, err) = cli(&tg.config.path, &["--json", "token", "mark-lost", &serial]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["kind"], "tft");
    assert_eq!(v["mode"], "lost");
    assert_eq!(v["rule"], "deny");
    let exp = v["expires_at"].as_i64().unwrap();
    assert!(
        (exp - tg.now() - 7 * DAY).abs() < 60,
        "lost lifetime is 7 days by default"
    );
    let (ok, _, _) = cli(&tg.config.path, &["token", "found", &serial]);
    assert!(ok);
    assert!(tg
        .admin()
        .emergency_show(&serial, tg.now())
        .await
        .unwrap()
        .is_none());
}
