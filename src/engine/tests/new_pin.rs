//! New PIN tests (SPEC PIN-1, PIN-2): the round trip, system-generated PINs, the PIN policy.

use super::*;

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
