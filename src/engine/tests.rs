//! Engine rule tests at fixed instants (no I/O): each test names the SPEC rule it checks.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use rand::rngs::StdRng;
use rand::SeedableRng;
use zeroize::Zeroizing;

use super::*;
use crate::model::{HashAlgorithm, OtpMode, PinState, Token, TokenKind, User};
use crate::otp::{self, MasterKey};
use crate::policy::{PinCharset, Policies, Prompts};

const SEED: &[u8] = b"12345678901234567890";
/// RFC 6238 instant: step T = 0x23523EC; codes T-1, T, T+1 = 731029, 081804, 050471.
const NOW: i64 = 1_111_111_109;

fn code_at(step: i64) -> String {
    otp::Code::new(otp::hotp(SEED, step as u64, 6, HashAlgorithm::Sha1), 6)
        .as_str()
        .to_string()
}

fn t_now() -> i64 {
    otp::totp_step(NOW, 30)
}

struct World {
    pepper: otp::Pepper,
    policies: Policies,
    prompts: Prompts,
    rng: StdRng,
    p: Principal,
}

impl World {
    fn new() -> World {
        let key = MasterKey::from_bytes([9; 32]);
        let pepper = key.pepper();
        let mut rng = StdRng::seed_from_u64(7);
        let pin_hash = pepper.hash(&mut rng, b"1234");
        let p = Principal {
            user: User {
                id: 1,
                name: "alice".into(),
                domain: "default".into(),
                locked: false,
                locked_at: None,
                fail_count: 0,
                fail_window_start: 0,
                profile: None,
                created_at: 0,
            },
            tokens: vec![live(
                10,
                TokenKind::Pin,
                Some(pin_hash),
                OtpMode::Totp { period: 30 },
            )],
            fixed_passcode: None,
        };
        World {
            pepper,
            policies: Policies::default(),
            prompts: Prompts::default(),
            rng,
            p,
        }
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            policies: &self.policies,
            prompts: &self.prompts,
            pepper: &self.pepper,
            challenge_ttl: 120,
        }
    }

    fn auth(&mut self, passcode: &str, state: &StateLookup, now: i64) -> Outcome {
        let policies = self.policies.clone();
        let prompts = self.prompts.clone();
        let pepper = self.pepper.clone();
        let ctx = Ctx {
            policies: &policies,
            prompts: &prompts,
            pepper: &pepper,
            challenge_ttl: 120,
        };
        let req = AuthRequest {
            user_name: "alice",
            passcode: passcode.as_bytes(),
            client: "nas",
            protocol: "radius",
            chap: None,
        };
        authenticate(&ctx, Some(&mut self.p), state, &req, now, &mut self.rng)
    }

    /// A CHAP login whose response was made from `secret`.
    fn chap(&mut self, secret: &str, now: i64) -> Outcome {
        let challenge = b"0123456789abcdef";
        let response = otp::chap_response(7, secret.as_bytes(), challenge);
        let ctx_parts = (
            self.policies.clone(),
            self.prompts.clone(),
            self.pepper.clone(),
        );
        let ctx = Ctx {
            policies: &ctx_parts.0,
            prompts: &ctx_parts.1,
            pepper: &ctx_parts.2,
            challenge_ttl: 120,
        };
        let req = AuthRequest {
            user_name: "alice",
            passcode: b"",
            client: "nas",
            protocol: "tacacs",
            chap: Some(ChapResponse {
                id: 7,
                challenge,
                response: &response,
            }),
        };
        authenticate(
            &ctx,
            Some(&mut self.p),
            &StateLookup::None,
            &req,
            now,
            &mut self.rng,
        )
    }

    fn login(&mut self, passcode: &str, now: i64) -> Outcome {
        self.auth(passcode, &StateLookup::None, now)
    }

    /// Answers a challenge outcome, as the server would after committing it.
    fn answer(&mut self, prev: &Outcome, passcode: &str, now: i64) -> Outcome {
        let ch = inserted_challenge(prev).expect("previous outcome was a challenge");
        self.auth(passcode, &StateLookup::Found(ch), now)
    }
}

fn live(id: i64, kind: TokenKind, pin_hash: Option<String>, mode: OtpMode) -> LiveToken {
    LiveToken {
        token: Token {
            id,
            serial: format!("T{id}"),
            user_id: Some(1),
            kind,
            algorithm: HashAlgorithm::Sha1,
            digits: 6,
            mode,
            seed_enc: vec![],
            expires_at: None,
            pin_state: if kind == TokenKind::Pin && pin_hash.is_none() {
                PinState::NewPinRequired
            } else {
                PinState::Set
            },
            pin_hash,
            drift: 0,
            last_step: -1,
            bad_count: 0,
            enabled: true,
            created_at: 0,
        },
        seed: Zeroizing::new(SEED.to_vec()),
        emergency: None,
        offline_code: None,
        codes: crate::otp::CodeCache::default(),
    }
}

fn inserted_challenge(o: &Outcome) -> Option<Challenge> {
    o.ops.iter().find_map(|op| match op {
        WriteOp::InsertChallenge(c) => Some(c.clone()),
        _ => None,
    })
}

fn has_guard_first(o: &Outcome) -> bool {
    // Guards, when present, precede every other op.
    let first_non_guard = o
        .ops
        .iter()
        .position(|op| {
            !matches!(
                op,
                WriteOp::AdvanceStep { .. } | WriteOp::ConsumeChallenge { .. }
            )
        })
        .unwrap_or(o.ops.len());
    o.ops[first_non_guard..].iter().all(|op| {
        !matches!(
            op,
            WriteOp::AdvanceStep { .. } | WriteOp::ConsumeChallenge { .. }
        )
    })
}

fn is_accept(o: &Outcome) -> bool {
    o.decision == Decision::Accept
}

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

#[test]
fn pin1_new_pin_round_trip() {
    let mut w = World::new();
    w.p.tokens = vec![live(20, TokenKind::Pin, None, OtpMode::Totp { period: 30 })];
    // Tokencode alone → "enter a new PIN".
    let o = w.login(&code_at(t_now()), NOW);
    assert!(
        matches!(
            o.decision,
            Decision::Challenge {
                kind: ChallengeKind::NewPin,
                ..
            }
        ),
        "{o:?}"
    );
    assert!(
        matches!(o.ops[0], WriteOp::AdvanceStep { .. }),
        "the tokencode is consumed"
    );
    // A PIN breaking the policy is refused with the reason in the prompt.
    let bad = w.answer(&o, "12", NOW + 1);
    let Decision::Challenge { prompt, kind, .. } = &bad.decision else {
        panic!()
    };
    assert_eq!(*kind, ChallengeKind::NewPin);
    assert!(prompt.contains("too short"), "{prompt}");
    // Good PIN → confirm; the session stores only a keyed hash.
    let c = w.answer(&bad, "5678", NOW + 2);
    assert!(matches!(
        c.decision,
        Decision::Challenge {
            kind: ChallengeKind::NewPinConfirm,
            ..
        }
    ));
    let ch = inserted_challenge(&c).unwrap();
    assert!(!ch.data.contains("5678") && ch.data.starts_with("h1$"));
    // Mismatch restarts.
    let mm = w.answer(&c, "5679", NOW + 3);
    assert!(matches!(
        mm.decision,
        Decision::Challenge {
            kind: ChallengeKind::NewPin,
            ..
        }
    ));
    let c = w.answer(&mm, "5678", NOW + 4);
    let set = w.answer(&c, "5678", NOW + 5);
    let Decision::Challenge { kind, prompt, .. } = &set.decision else {
        panic!()
    };
    assert_eq!(*kind, ChallengeKind::NewPinPasscode);
    assert_eq!(prompt, &w.prompts.new_pin_accepted);
    assert!(set.ops.iter().any(|op| matches!(
        op,
        WriteOp::SetPin {
            pin_state: PinState::Set,
            ..
        }
    )));
    // The old code does not pass; PIN + the next code does.
    assert_eq!(
        w.answer(&set, &format!("5678{}", code_at(t_now())), NOW + 6)
            .reason,
        Reason::Replay
    );
    let set2 = {
        // Replays consumed the session; redo the last step from a fresh session copy.
        set.clone()
    };
    let ok = w.answer(&set2, &format!("5678{}", code_at(t_now() + 1)), NOW + 30);
    assert!(is_accept(&ok), "{ok:?}");
}

#[test]
fn pin2_system_generated_pin_when_enabled() {
    let mut w = World::new();
    w.policies.pin.system_generated = true;
    w.p.tokens = vec![live(21, TokenKind::Pin, None, OtpMode::Totp { period: 30 })];
    let o = w.login(&code_at(t_now()), NOW);
    let Decision::Challenge { kind, prompt, .. } = &o.decision else {
        panic!("{o:?}")
    };
    assert_eq!(*kind, ChallengeKind::NewPinPasscode);
    let pin: String = prompt
        .split("Your new PIN is ")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    assert!(pin.len() >= 4);
    assert!(is_accept(&w.answer(
        &o,
        &format!("{pin}{}", code_at(t_now() + 1)),
        NOW + 30
    )));
}

#[test]
fn pin_policy_rules() {
    let p = crate::policy::PinPolicy {
        forbidden: vec!["0000".into()],
        ..Default::default()
    };
    assert_eq!(check_pin_policy(&p, b"123"), Err("too short"));
    assert_eq!(check_pin_policy(&p, b"123456789"), Err("too long"));
    assert_eq!(check_pin_policy(&p, b"12a4"), Err("use digits only"));
    assert_eq!(
        check_pin_policy(&p, b"0000"),
        Err("that PIN is not allowed")
    );
    assert_eq!(check_pin_policy(&p, b"4821"), Ok(()));
}

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

// ---------------------------------------------------------------------------------------------
// Emergency access (SPEC §6–§8)
// ---------------------------------------------------------------------------------------------

use crate::model::{
    AvailableRule, EmergencyAccess, EmergencyCode, EmergencyKind, EmergencyMode, FixedPasscode,
};

const EXPIRES: i64 = NOW + 3 * 86_400;

fn issue(w: &mut World, idx: usize, kind: EmergencyKind, rule: AvailableRule, codes: &[&str]) {
    let hashed = codes
        .iter()
        .enumerate()
        .map(|(i, c)| EmergencyCode {
            id: 100 + i as i64,
            code_hash: w.pepper.hash(&mut w.rng, c.as_bytes()),
            used_at: None,
        })
        .collect();
    let token_id = w.p.tokens[idx].token.id;
    w.p.tokens[idx].emergency = Some(EmergencyAccess {
        token_id,
        mode: EmergencyMode::Unavailable,
        kind,
        rule,
        expires_at: EXPIRES,
        issued_at: NOW,
        codes: hashed,
    });
}

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
        verify::check_code(&policy, &lt, b"12345", 0),
        verify::CodeResult::NoMatch
    ));
    assert_eq!(lt.codes.len(), 0, "a malformed code computed codes");
    let got = verify::check_code(&policy, &lt, code(0).as_bytes(), 0);
    assert!(
        matches!(got, verify::CodeResult::Narrow(m) if m.step == 0),
        "{got:?}"
    );
    // Counters 0 ..= next + wide - 1 (no look-back below 0).
    assert_eq!(lt.codes.len() as i64, wide);
    let mut copy = lt.clone();
    copy.token.last_step = 0;
    let got = verify::check_code(&policy, &copy, code(1).as_bytes(), 0);
    assert!(
        matches!(got, verify::CodeResult::Narrow(m) if m.step == 1),
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
        verify::check_code(&policy, &copy, code(1).as_bytes(), 0),
        verify::CodeResult::Replay
    ));
    assert!(matches!(
        verify::check_code(&policy, &copy, code(500).as_bytes(), 0),
        verify::CodeResult::NoMatch
    ));
}
