//! CHAP tests: a response is resolved to an app token's code and judged like a typed one
//! (window, N-1, replay, lockout); PIN + tokencode cannot be matched.

use super::*;

#[test]
fn chap_matches_an_app_token_code_in_the_window_once() {
    let mut w = World::new();
    w.p.tokens = vec![live(11, TokenKind::App, None, OtpMode::Totp { period: 30 })];
    let o = w.chap(&code_at(t_now() + 1), NOW);
    assert!(is_accept(&o), "{:?}", o.reason);
    assert_eq!(
        w.p.tokens[0].token.last_step,
        t_now() + 1,
        "R-1 guard advanced"
    );
    assert!(o
        .ops
        .iter()
        .any(|op| matches!(op, WriteOp::AdvanceStep { step, .. } if *step == t_now() + 1)));
    // The same response again is a replay; an earlier code too.
    let o = w.chap(&code_at(t_now() + 1), NOW);
    assert_eq!(
        (o.decision.clone(), o.reason),
        (Decision::Reject, Reason::Replay)
    );
    let o = w.chap(&code_at(t_now()), NOW);
    assert_eq!(o.decision, Decision::Reject);
}

#[test]
fn chap_wide_window_code_asks_for_the_next_tokencode() {
    let mut w = World::new();
    w.p.tokens = vec![live(11, TokenKind::App, None, OtpMode::Totp { period: 30 })];
    let o = w.chap(&code_at(t_now() + 3), NOW);
    assert!(matches!(o.decision, Decision::Challenge { .. }), "N-1");
}

#[test]
fn chap_wrong_response_counts_toward_lockout() {
    let mut w = World::new();
    w.p.tokens = vec![live(11, TokenKind::App, None, OtpMode::Totp { period: 30 })];
    for i in 0..5 {
        let o = w.chap("000000", NOW + i);
        assert_eq!(
            (o.decision.clone(), o.reason),
            (Decision::Reject, Reason::BadPasscode)
        );
    }
    assert!(w.p.user.locked, "L-1 after five CHAP failures");
    let o = w.chap(&code_at(t_now()), NOW);
    assert_eq!((o.decision, o.reason), (Decision::Reject, Reason::Locked));
}

#[test]
fn chap_cannot_match_pin_plus_tokencode() {
    let mut w = World::new();
    // The PIN token: PIN + tokencode cannot be rebuilt from the PIN's keyed hash.
    let o = w.chap(&format!("1234{}", code_at(t_now())), NOW);
    assert_eq!(o.decision, Decision::Reject);
    assert_eq!(w.p.user.fail_count, 1, "counted like a wrong passcode");
    // Alongside an app token, only the app token's code matches.
    w.p.tokens
        .push(live(12, TokenKind::App, None, OtpMode::Totp { period: 30 }));
    assert!(is_accept(&w.chap(&code_at(t_now()), NOW)));
}
