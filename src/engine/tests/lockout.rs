//! Lockout tests (SPEC L-1..L-4): counting, locking, auto-unlock, unknown and locked users,
//! failures of every method and the replay lost at commit.

use super::*;
use crate::model::FixedPasscode;

#[test]
fn l1_five_failures_within_the_window_lock() {
    let mut w = World::new();
    w.policies.token.bad_passcode_limit = None;
    for i in 0..4 {
        assert!(!w.login("1234000000", NOW + i).locked_out);
        assert!(!w.p.user.locked);
    }
    // The fifth failure locks, and the outcome says so once (metrics count lockouts from it).
    assert!(w.login("1234000000", NOW + 4).locked_out);
    assert!(w.p.user.locked);
    assert_eq!(w.p.user.locked_at, Some(NOW + 4));
    assert!(!w.login("1234000000", NOW + 5).locked_out);
}

#[test]
fn l1_failures_outside_the_window_start_a_new_count() {
    let mut w = World::new();
    for i in 0..4 {
        w.login("1234000000", NOW + i);
    }
    w.login("1234000000", NOW + 86_400 + 10);
    assert!(!w.p.user.locked);
    assert_eq!(w.p.user.fail_count, 1);
}

#[test]
fn l3_locked_user_is_rejected_with_a_valid_passcode_and_l1_auto_unlock() {
    let mut w = World::new();
    w.p.user.locked = true;
    w.p.user.locked_at = Some(NOW - 100);
    let pc = format!("1234{}", code_at(t_now()));
    let o = w.login(&pc, NOW);
    assert_eq!(o.reason, Reason::Locked);
    assert!(!o
        .ops
        .iter()
        .any(|op| matches!(op, WriteOp::AdvanceStep { .. })));
    w.policies.lockout.auto_unlock_secs = Some(60);
    assert!(is_accept(&w.login(&pc, NOW)));
    assert!(!w.p.user.locked);
}

/// L-4: a locked user's reject is written like an unknown user's (whose decoy touch the auth
/// service adds): a no-op touch of one token, then the audit row, so neither commit is lighter.
#[test]
fn l4_locked_user_reject_writes_like_an_unknown_user() {
    let mut w = World::new();
    w.p.user.locked = true;
    w.p.user.locked_at = Some(NOW - 100);
    let o = w.login(&format!("1234{}", code_at(t_now())), NOW);
    assert_eq!(o.reason, Reason::Locked);
    assert!(
        matches!(o.ops.first(), Some(WriteOp::TouchToken { token_id: 10 })),
        "{:?}",
        o.ops
    );
    assert!(matches!(o.ops.last(), Some(WriteOp::Audit(_))));
    assert_eq!(o.ops.len(), 2);
}

#[test]
fn l3_success_resets_the_failure_count() {
    let mut w = World::new();
    w.login("1234000000", NOW);
    w.login("1234000001", NOW);
    assert_eq!(w.p.user.fail_count, 2);
    assert!(is_accept(
        &w.login(&format!("1234{}", code_at(t_now())), NOW)
    ));
    assert_eq!(w.p.user.fail_count, 0);
}

#[test]
fn l4_unknown_user_gets_the_same_decision_as_a_wrong_passcode() {
    let w = World::new();
    let ctx = w.ctx();
    let mut rng = StdRng::seed_from_u64(1);
    let req = AuthRequest {
        user_name: "nobody",
        passcode: b"1234123456",
        client: "nas",
        protocol: "radius",
        chap: None,
    };
    let o = authenticate(&ctx, None, &StateLookup::None, &req, NOW, &mut rng);
    assert_eq!(o.decision, Decision::Reject);
    assert_eq!(o.reason, Reason::UnknownUser);
    assert_eq!(o.ops.len(), 1, "only the audit record");
}

#[test]
fn replay_failure_counts_toward_lockout() {
    let mut w = World::new();
    let ctx_pol = w.policies.clone();
    let prompts = w.prompts.clone();
    let pepper = w.pepper.clone();
    let ctx = Ctx {
        policies: &ctx_pol,
        prompts: &prompts,
        pepper: &pepper,
        challenge_ttl: 120,
    };
    let req = AuthRequest {
        user_name: "alice",
        passcode: b"x",
        client: "nas",
        protocol: "radius",
        chap: None,
    };
    let o = replay_failure(&ctx, &mut w.p, &req, NOW);
    assert_eq!(o.reason, Reason::ReplayRace);
    assert_eq!(w.p.user.fail_count, 1);
}

#[test]
fn l2_failures_of_every_method_add_up_to_a_lock() {
    let mut w = World::new();
    w.policies.token.bad_passcode_limit = None;
    issue(
        &mut w,
        0,
        EmergencyKind::Ott,
        AvailableRule::Deny,
        &["OTTA2222"],
    );
    let hash = w.pepper.hash(&mut w.rng, b"Fixed2Pass");
    w.p.fixed_passcode = Some(FixedPasscode {
        user_id: 1,
        allowed: true,
        code_hash: Some(hash),
        expires_at: None,
        set_at: NOW,
    });
    w.p.tokens[0].offline_code = Some(LiveCode {
        code: Zeroizing::new("OFFL1NE2".into()),
        expires_at: EXPIRES,
        online: true,
    });
    assert!(is_accept(&w.login("1234OTTA2222", NOW)));
    let attempts = [
        "1234WRONGTFT", // wrong emergency code
        "1234OTTA2222", // used OTT
        "Wrong2Fixed",  // wrong fixed passcode
        "1234OFFL1NE3", // wrong offline code
        "1234000000",   // wrong tokencode
    ];
    for (i, a) in attempts.iter().enumerate() {
        assert_eq!(w.login(a, NOW + 1).decision, Decision::Reject, "{a}");
        assert_eq!(w.p.user.fail_count, i as u32 + 1);
    }
    assert!(w.p.user.locked);
    assert_eq!(w.login("Fixed2Pass", NOW + 2).reason, Reason::Locked);
}
