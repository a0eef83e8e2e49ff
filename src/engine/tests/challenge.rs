//! Challenge session tests (SPEC N-1, N-2, N-3, §10 step 3): Next Tokencode, and a State that
//! continues only its own unexpired session.

use super::*;
use crate::policy::NtcFailure;

#[test]
fn n1_wide_window_match_asks_for_the_next_tokencode() {
    let mut w = World::new();
    let o = w.login(&format!("1234{}", code_at(t_now() + 3)), NOW);
    let Decision::Challenge {
        state,
        kind,
        prompt,
    } = &o.decision
    else {
        panic!("{o:?}")
    };
    assert_eq!(*kind, ChallengeKind::NextTokencode);
    assert!(state.len() >= 22 && state.bytes().all(|b| b.is_ascii_graphic()));
    assert_eq!(prompt, &w.prompts.next_tokencode);
    assert_eq!(w.p.tokens[0].token.last_step, -1, "nothing accepted yet");
    // N-3: the code just seen does not pass; the next one does and records the drift.
    let mut w2 = World::new();
    let o2 = w2.login(&format!("1234{}", code_at(t_now() + 3)), NOW);
    assert_eq!(
        w2.answer(&o2, &code_at(t_now() + 3), NOW).reason,
        Reason::NextTokencodeFailed
    );
    let ok = w.answer(&o, &code_at(t_now() + 4), NOW);
    assert!(is_accept(&ok));
    assert!(matches!(ok.ops[0], WriteOp::ConsumeChallenge { .. }));
    assert!(matches!(ok.ops[1], WriteOp::AdvanceStep { drift: 4, .. }));
}

#[test]
fn n1_after_more_than_n_bad_passcodes_a_correct_one_is_challenged() {
    let mut w = World::new();
    w.policies.lockout.max_failures = 100;
    for i in 0..4 {
        let o = w.login("1234000000", NOW + i);
        assert_eq!(o.reason, Reason::BadPasscode);
    }
    assert_eq!(w.p.tokens[0].token.bad_count, 4);
    let o = w.login(&format!("1234{}", code_at(t_now())), NOW + 5);
    assert!(matches!(
        o.decision,
        Decision::Challenge {
            kind: ChallengeKind::NextTokencode,
            ..
        }
    ));
    let ok = w.answer(&o, &code_at(t_now() + 1), NOW + 6);
    assert!(is_accept(&ok));
    assert_eq!(
        w.p.tokens[0].token.bad_count, 0,
        "N-3: success resets the counter"
    );
    assert_eq!(w.p.user.fail_count, 0);
}

#[test]
fn n2_wrong_next_tokencode_rejects_and_locks_by_default() {
    let mut w = World::new();
    let o = w.login(&format!("1234{}", code_at(t_now() + 3)), NOW);
    let r = w.answer(&o, "000000", NOW);
    assert_eq!(r.reason, Reason::NextTokencodeFailed);
    assert!(w.p.user.locked);
    let mut w = World::new();
    w.policies.token.ntc_failure = NtcFailure::Reject;
    let o = w.login(&format!("1234{}", code_at(t_now() + 3)), NOW);
    w.answer(&o, "000000", NOW);
    assert!(!w.p.user.locked);
}

#[test]
fn challenge_state_is_single_use_and_bound_to_its_user_and_lifetime() {
    let mut w = World::new();
    let o = w.login(&format!("1234{}", code_at(t_now() + 3)), NOW);
    let ch = inserted_challenge(&o).unwrap();
    assert_eq!(ch.expires_at, NOW + 120);
    // Expired.
    let r = w.auth(
        &code_at(t_now() + 4),
        &StateLookup::Found(ch.clone()),
        NOW + 120,
    );
    assert_eq!(r.reason, Reason::ExpiredState);
    // Another user's session.
    let mut other = ch.clone();
    other.user_id = 99;
    assert_eq!(
        w.auth(&code_at(t_now() + 4), &StateLookup::Found(other), NOW)
            .reason,
        Reason::BadState
    );
    // Unknown State.
    assert_eq!(
        w.auth("whatever", &StateLookup::Unknown, NOW).reason,
        Reason::BadState
    );
}
