//! Emergency access tests (SPEC §6–§8: E-1, E-4, P-3, FP-1, O-4): TFT and OTT codes, the real
//! token under each E-4 rule, the fixed passcode, the offline code used online.

use super::*;
use crate::model::FixedPasscode;

#[test]
fn e1_tft_with_pin_is_reusable_until_its_expiry_instant() {
    let mut w = World::new();
    issue(
        &mut w,
        0,
        EmergencyKind::Tft,
        AvailableRule::Deny,
        &["TFT2CODE"],
    );
    for t in [NOW, NOW + 60, EXPIRES - 1] {
        let o = w.login("1234TFT2CODE", t);
        assert!(is_accept(&o), "at {t}: {o:?}");
        assert_eq!(o.method, Method::Tft);
    }
    // Codes are typed case-insensitively.
    assert!(is_accept(&w.login("1234tft2code", NOW)));
    assert_eq!(w.login("1234TFT2CODE", EXPIRES).decision, Decision::Reject);
    assert_eq!(
        w.login("9999TFT2CODE", NOW).decision,
        Decision::Reject,
        "wrong PIN"
    );
    assert_eq!(
        w.login("TFT2CODE", NOW).decision,
        Decision::Reject,
        "P-3: PIN required"
    );
}

#[test]
fn p3_tft_for_an_app_token_works_without_pin_and_fails_with_one() {
    let mut w = World::new();
    w.p.tokens = vec![live(11, TokenKind::App, None, OtpMode::Totp { period: 30 })];
    issue(
        &mut w,
        0,
        EmergencyKind::Tft,
        AvailableRule::Deny,
        &["APPCODE7"],
    );
    assert!(is_accept(&w.login("APPCODE7", NOW)));
    assert_eq!(w.login("1234APPCODE7", NOW).decision, Decision::Reject);
}

#[test]
fn e1_ott_codes_work_once_each_and_reuse_counts_as_a_failure() {
    let mut w = World::new();
    let codes = ["OTTA2222", "OTTB3333", "OTTC4444"];
    issue(&mut w, 0, EmergencyKind::Ott, AvailableRule::Deny, &codes);
    for (i, c) in codes.iter().enumerate() {
        let o = w.login(&format!("1234{c}"), NOW);
        assert!(is_accept(&o));
        assert_eq!(o.method, Method::Ott);
        assert!(
            matches!(o.ops[0], WriteOp::ConsumeEmergencyCode { code_id, used_at: NOW } if code_id == 100 + i as i64)
        );
    }
    let o = w.login("1234OTTA2222", NOW);
    assert_eq!(o.decision, Decision::Reject);
    assert_eq!(o.reason, Reason::EmergencyCodeUsed);
    assert_eq!(w.p.user.fail_count, 1);
}

#[test]
fn e4_deny_rejects_the_real_token_and_counts_it() {
    let mut w = World::new();
    issue(
        &mut w,
        0,
        EmergencyKind::Tft,
        AvailableRule::Deny,
        &["TFT2CODE"],
    );
    let o = w.login(&format!("1234{}", code_at(t_now())), NOW);
    assert_eq!(o.reason, Reason::TokenInEmergency);
    assert_eq!(w.p.user.fail_count, 1);
    assert!(is_accept(&w.login("1234TFT2CODE", NOW)), "codes still work");
}

#[test]
fn e4_allow_and_disable_accepts_the_real_token_and_deletes_the_codes() {
    let mut w = World::new();
    issue(
        &mut w,
        0,
        EmergencyKind::Tft,
        AvailableRule::AllowAndDisable,
        &["TFT2CODE"],
    );
    let o = w.login(&format!("1234{}", code_at(t_now())), NOW);
    assert!(is_accept(&o));
    assert!(o
        .ops
        .iter()
        .any(|op| matches!(op, WriteOp::ClearEmergency { token_id: 10 })));
    assert!(w.p.tokens[0].emergency.is_none());
    assert_eq!(w.login("1234TFT2CODE", NOW).decision, Decision::Reject);
}

#[test]
fn e4_allow_after_expiry_rejects_until_the_expiry_instant_then_accepts_and_stops_the_codes() {
    let mut w = World::new();
    issue(
        &mut w,
        0,
        EmergencyKind::Tft,
        AvailableRule::AllowAfterExpiry,
        &["TFT2CODE"],
    );
    let before = EXPIRES - 1;
    let o = w.login(
        &format!("1234{}", code_at(otp::totp_step(before, 30))),
        before,
    );
    assert_eq!(o.reason, Reason::TokenInEmergency);
    let o = w.login(
        &format!("1234{}", code_at(otp::totp_step(EXPIRES, 30) + 1)),
        EXPIRES,
    );
    assert!(is_accept(&o), "{o:?}");
    assert!(o
        .ops
        .iter()
        .any(|op| matches!(op, WriteOp::ClearEmergency { .. })));
    assert_eq!(w.login("1234TFT2CODE", EXPIRES).decision, Decision::Reject);
}

#[test]
fn fp1_fixed_passcode_replaces_the_whole_passcode_and_is_marked_single_factor() {
    let mut w = World::new();
    let hash = w.pepper.hash(&mut w.rng, b"Fixed2Pass");
    w.p.fixed_passcode = Some(FixedPasscode {
        user_id: 1,
        allowed: true,
        code_hash: Some(hash),
        expires_at: Some(EXPIRES),
        set_at: NOW,
    });
    let o = w.login("Fixed2Pass", NOW);
    assert!(is_accept(&o));
    assert_eq!(o.method, Method::FixedPasscode);
    assert!(
        matches!(o.ops.last(), Some(WriteOp::Audit(a)) if a.method == "fixed_passcode" && a.reason == "single_factor")
    );
    assert_eq!(
        w.login("1234Fixed2Pass", NOW).decision,
        Decision::Reject,
        "no PIN in front"
    );
    assert_eq!(
        w.login("Fixed2Pass", EXPIRES).decision,
        Decision::Reject,
        "expired"
    );
    w.p.fixed_passcode.as_mut().unwrap().allowed = false;
    assert_eq!(
        w.login("Fixed2Pass", NOW).decision,
        Decision::Reject,
        "not allowed"
    );
}

#[test]
fn o4_offline_tokencode_works_online_only_when_flagged_and_with_the_pin() {
    let mut w = World::new();
    w.p.tokens[0].offline_code = Some(LiveCode {
        code: Zeroizing::new("OFFL1NE2".into()),
        expires_at: EXPIRES,
        online: false,
    });
    assert_eq!(w.login("1234OFFL1NE2", NOW).decision, Decision::Reject);
    w.p.tokens[0].offline_code.as_mut().unwrap().online = true;
    let o = w.login("1234OFFL1NE2", NOW);
    assert!(is_accept(&o));
    assert_eq!(o.method, Method::OfflineCode);
    assert_eq!(
        w.login("OFFL1NE2", NOW).decision,
        Decision::Reject,
        "PIN required"
    );
    assert_eq!(
        w.login("1234OFFL1NE2", EXPIRES).decision,
        Decision::Reject,
        "expired"
    );
}
