//! Window tests (SPEC W-1, W-2, D-1, D-2, R-1): the TOTP and HOTP windows, drift, replay,
//! resync, and the token's code cache.

use super::*;
use crate::engine::window::{check_code, CodeResult};

#[test]
fn w1_window_accepts_one_step_either_side_and_d1_records_drift() {
    for (delta, drift) in [(-1, -1), (1, 1)] {
        let mut w = World::new();
        let o = w.login(&format!("1234{}", code_at(t_now() + delta)), NOW);
        assert!(is_accept(&o), "delta {delta}");
        assert_eq!(w.p.tokens[0].token.drift, drift);
    }
}

#[test]
fn d1_window_recentres_on_the_learned_drift() {
    let mut w = World::new();
    w.p.tokens[0].token.drift = 3;
    // Step now+4 is inside ±1 of the learned centre (now+3): accepted outright.
    assert!(is_accept(
        &w.login(&format!("1234{}", code_at(t_now() + 4)), NOW)
    ));
    assert_eq!(w.p.tokens[0].token.drift, 4);
}

#[test]
fn r1_same_code_twice_is_a_replay() {
    let mut w = World::new();
    let pc = format!("1234{}", code_at(t_now()));
    assert!(is_accept(&w.login(&pc, NOW)));
    let o = w.login(&pc, NOW + 5);
    assert_eq!(o.decision, Decision::Reject);
    assert_eq!(o.reason, Reason::Replay);
}

#[test]
fn r1_older_code_after_newer_success_is_rejected() {
    let mut w = World::new();
    assert!(is_accept(
        &w.login(&format!("1234{}", code_at(t_now() + 1)), NOW)
    ));
    let o = w.login(&format!("1234{}", code_at(t_now())), NOW);
    assert_eq!(o.reason, Reason::Replay);
}

#[test]
fn w2_hotp_looks_ahead_ten_counters() {
    let mut w = World::new();
    let h = w.p.tokens[0].token.pin_hash.clone();
    w.p.tokens = vec![live(13, TokenKind::Pin, h, OtpMode::Hotp)];
    // Counters 0..=9 are inside the look-ahead; 9 accepted, then 5 is a replay, 10 accepted.
    assert!(is_accept(&w.login(&format!("1234{}", code_at(9)), NOW)));
    assert_eq!(
        w.login(&format!("1234{}", code_at(5)), NOW).reason,
        Reason::Replay
    );
    assert!(is_accept(&w.login(&format!("1234{}", code_at(10)), NOW)));
    // 40 ahead: beyond the look-ahead but inside the wide window → Next Tokencode.
    let o = w.login(&format!("1234{}", code_at(51)), NOW);
    assert!(matches!(
        o.decision,
        Decision::Challenge {
            kind: ChallengeKind::NextTokencode,
            ..
        }
    ));
    let o = w.answer(&o, &code_at(52), NOW);
    assert!(is_accept(&o), "{o:?}");
    assert_eq!(w.p.tokens[0].token.last_step, 52);
}

#[test]
fn d2_resync_finds_two_consecutive_codes() {
    let w = World::new();
    let lt = &w.p.tokens[0];
    let far = t_now() + 600; // five hours ahead
    let m = resync(
        &w.policies.token,
        lt,
        code_at(far).as_bytes(),
        code_at(far + 1).as_bytes(),
        NOW,
    )
    .unwrap();
    assert_eq!(m.step, far + 1);
    assert_eq!(m.drift, 601);
    assert_eq!(
        resync(
            &w.policies.token,
            lt,
            code_at(far).as_bytes(),
            code_at(far + 2).as_bytes(),
            NOW
        ),
        Err(ResyncError::NotFound)
    );
    assert_eq!(
        resync(&w.policies.token, lt, b"12", b"34", NOW),
        Err(ResyncError::BadFormat)
    );
}

/// W-1/W-2 with the token's code cache: a HOTP check keeps its window's codes, a copy of the
/// token (the engine decides on one) shares them, and the next check after an accept only
/// adds the codes the window moved by. A code of the wrong shape computes nothing.
#[test]
fn w1_hotp_checks_keep_the_window_codes_for_the_next_check() {
    let policy = crate::policy::TokenPolicy::default();
    let lt = live(1, TokenKind::Pin, None, OtpMode::Hotp);
    let code = |c: u64| otp::Code::new(otp::hotp(SEED, c, 6, HashAlgorithm::Sha1), 6);
    let wide = i64::from(policy.hotp_wide_window);
    assert!(matches!(
        check_code(&policy, &lt, b"12345", 0),
        CodeResult::NoMatch
    ));
    assert_eq!(lt.codes.len(), 0, "a malformed code computed codes");
    let got = check_code(&policy, &lt, code(0).as_bytes(), 0);
    assert!(
        matches!(got, CodeResult::Narrow(m) if m.step == 0),
        "{got:?}"
    );
    // Counters 0 ..= next + wide - 1 (no look-back below 0).
    assert_eq!(lt.codes.len() as i64, wide);
    let mut copy = lt.clone();
    copy.token.last_step = 0;
    let got = check_code(&policy, &copy, code(1).as_bytes(), 0);
    assert!(
        matches!(got, CodeResult::Narrow(m) if m.step == 1),
        "{got:?}"
    );
    assert_eq!(
        lt.codes.len() as i64,
        wide + 1,
        "the copy did not share the codes"
    );
    // The replayed code is still told apart from a wrong one, from the kept codes.
    copy.token.last_step = 1;
    assert!(matches!(
        check_code(&policy, &copy, code(1).as_bytes(), 0),
        CodeResult::Replay
    ));
    assert!(matches!(
        check_code(&policy, &copy, code(500).as_bytes(), 0),
        CodeResult::NoMatch
    ));
}
