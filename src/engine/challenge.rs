//! Challenge sessions (SPEC §10 step 3, N-2, N-3): opening one (a fresh State value, the
//! session row and the Challenge decision), continuing one (a State continues only its own,
//! unexpired session, consumed once), and the answer to a Next Tokencode challenge. The New PIN
//! answers are judged in `new_pin.rs`.

use base64::Engine as _;
use rand::{CryptoRng, RngCore};

use crate::model::{Challenge, ChallengeKind};
use crate::policy::NtcFailure;

use super::lockout::{failure, lock_step, set_bad_count};
use super::new_pin::{answer_confirm, answer_new_pin, answer_pin_passcode};
use super::outcome::Builder;
use super::window::{self, success};
use super::{AuthRequest, Ctx, Decision, Method, Outcome, Principal, Reason, WriteOp};

fn new_state<R: RngCore + CryptoRng>(rng: &mut R) -> String {
    let mut b = [0u8; 18];
    rng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// What a new challenge session asks for.
pub(super) struct Ask {
    pub(super) token_id: Option<i64>,
    pub(super) kind: ChallengeKind,
    pub(super) data: String,
    pub(super) prompt: String,
}

/// Opens a challenge session: stores it under a fresh State and answers with a Challenge.
pub(super) fn challenge<R: RngCore + CryptoRng>(
    ctx: &Ctx<'_>,
    mut out: Builder<'_>,
    p: &Principal,
    ask: Ask,
    rng: &mut R,
) -> Outcome {
    let Ask {
        token_id,
        kind,
        data,
        prompt,
    } = ask;
    let state = new_state(rng);
    out.op(WriteOp::InsertChallenge(Challenge {
        state: state.clone(),
        user_id: p.user.id,
        token_id,
        kind,
        data,
        created_at: out.now,
        expires_at: out.now.saturating_add(ctx.challenge_ttl),
    }));
    out.finish(
        Decision::Challenge {
            state,
            prompt,
            kind,
        },
        Method::Token,
        Reason::None,
    )
}

/// Step 3: a State continues its session only: another user's session or an expired one is a
/// counted failure; otherwise the session is consumed (a guard: single use) and the answer is
/// judged by what it asked for.
pub(super) fn continue_challenge<R: RngCore + CryptoRng>(
    ctx: &Ctx<'_>,
    p: &mut Principal,
    ch: &Challenge,
    req: &AuthRequest<'_>,
    now: i64,
    rng: &mut R,
    mut out: Builder<'_>,
) -> Outcome {
    if ch.user_id != p.user.id {
        return failure(ctx, p, out, &[], Reason::BadState, Method::None, now);
    }
    if ch.expires_at <= now {
        return failure(ctx, p, out, &[], Reason::ExpiredState, Method::None, now);
    }
    out.guard(WriteOp::ConsumeChallenge {
        state: ch.state.clone(),
    });
    let Some(idx) = p
        .tokens
        .iter()
        .position(|lt| Some(lt.token.id) == ch.token_id)
    else {
        return failure(ctx, p, out, &[], Reason::BadState, Method::None, now);
    };
    match ch.kind {
        ChallengeKind::NextTokencode => answer_next_tokencode(ctx, p, ch, idx, req, now, out),
        ChallengeKind::NewPin => answer_new_pin(ctx, p, ch, req, rng, out),
        ChallengeKind::NewPinConfirm => answer_confirm(ctx, p, ch, idx, req, rng, out),
        ChallengeKind::NewPinPasscode => answer_pin_passcode(ctx, p, idx, req, now, rng, out),
    }
}

/// The answer to a Next Tokencode challenge on token `idx`: a code strictly after the one seen
/// (N-3) accepts; anything else rejects, with the `ntc_failure` policy's lock by default (N-2).
fn answer_next_tokencode(
    ctx: &Ctx<'_>,
    p: &mut Principal,
    ch: &Challenge,
    idx: usize,
    req: &AuthRequest<'_>,
    now: i64,
    out: Builder<'_>,
) -> Outcome {
    let seen: i64 = ch.data.parse().unwrap_or(i64::MAX);
    let m = p
        .tokens
        .get(idx)
        .and_then(|lt| window::check_next(lt, req.passcode, seen, now));
    match m {
        Some(m) => {
            let mut out = out;
            success(&mut out, p, idx, m);
            out.finish(Decision::Accept, Method::Token, Reason::None)
        }
        None => {
            // N-2: one chance.
            let mut out = out;
            if let Some(lt) = p.tokens.get_mut(idx) {
                let n = lt.token.bad_count.saturating_add(1);
                set_bad_count(&mut out, &mut lt.token, n);
            }
            let lock = ctx.policies.token.ntc_failure == NtcFailure::Lock;
            lock_step(ctx, &mut out, &mut p.user, now, lock);
            out.finish(Decision::Reject, Method::Token, Reason::NextTokencodeFailed)
        }
    }
}
