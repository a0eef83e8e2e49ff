//! Engine rule tests at fixed instants (no I/O): each test names the SPEC rule it checks. One file
//! per rule family, as in the engine; the shared fixtures (a user with one PIN token, emergency
//! access issued on a token) are here.

// Tests may unwrap and panic (clippy.toml) and index directly.
#![allow(clippy::indexing_slicing)]

mod challenge;
mod chap;
mod emergency;
mod lockout;
mod new_pin;
mod passcode;
mod window;

use rand::rngs::StdRng;
use rand::SeedableRng;
use zeroize::Zeroizing;

use super::*;
use crate::model::{
    AvailableRule, Challenge, ChallengeKind, EmergencyAccess, EmergencyCode, EmergencyKind,
    EmergencyMode, HashAlgorithm, OtpMode, PinState, Token, TokenKind, User,
};
use crate::otp::{self, MasterKey};
use crate::policy::{Policies, Prompts};

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
