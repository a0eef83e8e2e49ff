//! Passcode tests (SPEC P-1, P-2, P-5): splitting PIN and tokencode, several tokens, tokens
//! that are disabled or expired.

use super::*;
use crate::policy::PinCharset;

#[test]
fn p1_pin_plus_current_code_accepts_and_advances_the_guard() {
    let mut w = World::new();
    let o = w.login(&format!("1234{}", code_at(t_now())), NOW);
    assert!(is_accept(&o), "{o:?}");
    assert!(has_guard_first(&o));
    assert!(
        matches!(o.ops[0], WriteOp::AdvanceStep { token_id: 10, step, drift: 0 } if step == t_now())
    );
    assert_eq!(w.p.tokens[0].token.last_step, t_now());
    assert!(
        matches!(o.ops.last(), Some(WriteOp::Audit(a)) if a.result == "accept" && a.method == "token")
    );
}

#[test]
fn p1_alphanumeric_pin_is_split_from_the_right() {
    let mut w = World::new();
    w.policies.pin.charset = PinCharset::Alphanumeric;
    let h = w.pepper.hash(&mut w.rng, b"ab12cd");
    w.p.tokens[0].token.pin_hash = Some(h);
    assert!(is_accept(
        &w.login(&format!("ab12cd{}", code_at(t_now())), NOW)
    ));
}

#[test]
fn p1_wrong_pin_or_code_or_short_passcode_rejects() {
    let mut w = World::new();
    for pc in [
        format!("9999{}", code_at(t_now())),
        "1234000000".to_string(),
        code_at(t_now()),
        "".to_string(),
    ] {
        let o = w.login(&pc, NOW);
        assert_eq!(o.decision, Decision::Reject, "{pc}");
        assert_eq!(o.reason, Reason::BadPasscode);
    }
}

#[test]
fn p2_app_token_takes_the_code_alone() {
    let mut w = World::new();
    w.p.tokens = vec![live(11, TokenKind::App, None, OtpMode::Totp { period: 30 })];
    assert_eq!(
        w.login(&format!("1234{}", code_at(t_now())), NOW).decision,
        Decision::Reject
    );
    assert!(is_accept(&w.login(&code_at(t_now() + 1), NOW)));
}

#[test]
fn p5_second_token_is_tried_and_only_it_advances() {
    let mut w = World::new();
    let other_seed = b"another-seed-0123456".to_vec();
    let mut t2 = live(12, TokenKind::App, None, OtpMode::Totp { period: 30 });
    t2.seed = Zeroizing::new(other_seed.clone());
    w.p.tokens.push(t2);
    let code2 = otp::Code::new(
        otp::hotp(&other_seed, t_now() as u64, 6, HashAlgorithm::Sha1),
        6,
    );
    let o = w.login(code2.as_str(), NOW);
    assert!(is_accept(&o));
    assert!(matches!(
        o.ops[0],
        WriteOp::AdvanceStep { token_id: 12, .. }
    ));
    assert_eq!(w.p.tokens[0].token.last_step, -1);
}

#[test]
fn expired_or_disabled_tokens_never_authenticate() {
    let mut w = World::new();
    w.p.tokens[0].token.expires_at = Some(NOW);
    assert_eq!(
        w.login(&format!("1234{}", code_at(t_now())), NOW).decision,
        Decision::Reject
    );
    let mut w = World::new();
    w.p.tokens[0].token.enabled = false;
    assert_eq!(
        w.login(&format!("1234{}", code_at(t_now())), NOW).decision,
        Decision::Reject
    );
}
