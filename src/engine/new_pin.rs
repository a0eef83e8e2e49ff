//! New PIN mode (SPEC PIN-1..PIN-3): the policy check of a user-chosen PIN (length, character
//! set, forbidden list), entering the mode once the tokencode alone was accepted (a system-
//! generated PIN when the policy says so, PIN-2), the answers to its challenges (new PIN,
//! confirmation, then PIN + the next tokencode) and their prompts.

use rand::{CryptoRng, RngCore};

use crate::model::{Challenge, ChallengeKind, PinState};
use crate::otp;
use crate::policy::{PinCharset, PinPolicy};

use super::challenge::{challenge, Ask};
use super::outcome::Builder;
use super::passcode::{decide_on_verdicts, judge, TokenVerdict};
use super::{AuthRequest, Ctx, Decision, Method, Outcome, Principal, Reason, WriteOp};

/// Checks a candidate PIN; the error is a short reason suitable for the prompt.
pub fn check_pin_policy(policy: &PinPolicy, pin: &[u8]) -> Result<(), &'static str> {
    if pin.len() < policy.min_length {
        return Err("too short");
    }
    if pin.len() > policy.max_length {
        return Err("too long");
    }
    match policy.charset {
        PinCharset::Numeric if !pin.iter().all(u8::is_ascii_digit) => {
            return Err("use digits only")
        }
        PinCharset::Alphanumeric if !pin.iter().all(u8::is_ascii_alphanumeric) => {
            return Err("use letters and digits only")
        }
        _ => {}
    }
    // Compare against every forbidden PIN, without stopping early.
    let mut forbidden = false;
    for f in &policy.forbidden {
        forbidden |= otp::ct_eq(f.as_bytes(), pin);
    }
    if forbidden {
        return Err("that PIN is not allowed");
    }
    Ok(())
}

/// PIN-1: the tokencode alone was accepted for token `idx` in New PIN mode; ask for a new PIN,
/// or (PIN-2) assign one, show it once and ask for PIN + the next tokencode.
pub(super) fn start_new_pin<R: RngCore + CryptoRng>(
    ctx: &Ctx<'_>,
    p: &mut Principal,
    idx: usize,
    mut out: Builder<'_>,
    rng: &mut R,
) -> Outcome {
    let Some(token_id) = p.tokens.get(idx).map(|lt| lt.token.id) else {
        return out.finish(Decision::Reject, Method::Token, Reason::BadPasscode);
    };
    if ctx.policies.pin.system_generated {
        // PIN-2: assign a PIN and show it once.
        let pin = loop {
            let len = ctx
                .policies
                .pin
                .min_length
                .max(4)
                .min(ctx.policies.pin.max_length);
            let candidate =
                crate::otp::generate_code(rng, ctx.policies.pin.charset.generator(), len);
            if check_pin_policy(&ctx.policies.pin, candidate.as_bytes()).is_ok() {
                break candidate;
            }
        };
        set_pin(ctx, &mut out, p, idx, pin.as_bytes(), rng);
        let prompt = ctx.prompts.new_pin_generated.replace("{pin}", &pin);
        return challenge(
            ctx,
            out,
            p,
            Ask {
                token_id: Some(token_id),
                kind: ChallengeKind::NewPinPasscode,
                data: String::new(),
                prompt,
            },
            rng,
        );
    }
    let prompt = pin_prompt(ctx, &ctx.prompts.new_pin, "");
    challenge(
        ctx,
        out,
        p,
        Ask {
            token_id: Some(token_id),
            kind: ChallengeKind::NewPin,
            data: String::new(),
            prompt,
        },
        rng,
    )
}

/// Stores the keyed hash of token `idx`'s new PIN (in the cached state and as a write).
fn set_pin<R: RngCore + CryptoRng>(
    ctx: &Ctx<'_>,
    out: &mut Builder<'_>,
    p: &mut Principal,
    idx: usize,
    pin: &[u8],
    rng: &mut R,
) {
    if let Some(lt) = p.tokens.get_mut(idx) {
        let hash = ctx.pepper.hash(rng, pin);
        lt.token.pin_hash = Some(hash.clone());
        lt.token.pin_state = PinState::Set;
        out.op(WriteOp::SetPin {
            token_id: lt.token.id,
            pin_hash: hash,
            pin_state: PinState::Set,
        });
    }
}

/// A PIN prompt (PIN-3) with the policy's `{min}`, `{max}`, `{charset}` and the refusal
/// `{reason}` filled in.
fn pin_prompt(ctx: &Ctx<'_>, template: &str, reason: &str) -> String {
    let pin = &ctx.policies.pin;
    template
        .replace("{min}", &pin.min_length.to_string())
        .replace("{max}", &pin.max_length.to_string())
        .replace("{charset}", pin.charset.describe())
        .replace("{reason}", reason)
}

/// PIN-1, answer to "enter a new PIN": a PIN breaking the policy is asked again with the reason
/// in the prompt; a good one is asked to be confirmed (the session keeps only its keyed hash).
pub(super) fn answer_new_pin<R: RngCore + CryptoRng>(
    ctx: &Ctx<'_>,
    p: &mut Principal,
    ch: &Challenge,
    req: &AuthRequest<'_>,
    rng: &mut R,
    out: Builder<'_>,
) -> Outcome {
    let token_id = ch.token_id;
    match check_pin_policy(&ctx.policies.pin, req.passcode) {
        Err(why) => {
            let prompt = pin_prompt(ctx, &ctx.prompts.new_pin_rejected, why);
            challenge(
                ctx,
                out,
                p,
                Ask {
                    token_id,
                    kind: ChallengeKind::NewPin,
                    data: String::new(),
                    prompt,
                },
                rng,
            )
        }
        Ok(()) => {
            // Keep only a keyed hash of the candidate PIN in the session.
            let data = ctx.pepper.hash(rng, req.passcode);
            let prompt = pin_prompt(ctx, &ctx.prompts.new_pin_confirm, "");
            challenge(
                ctx,
                out,
                p,
                Ask {
                    token_id,
                    kind: ChallengeKind::NewPinConfirm,
                    data,
                    prompt,
                },
                rng,
            )
        }
    }
}

/// PIN-1, answer to "re-enter the PIN" for token `idx`: a match sets the PIN and asks for PIN +
/// the next tokencode; a mismatch restarts the PIN entry.
pub(super) fn answer_confirm<R: RngCore + CryptoRng>(
    ctx: &Ctx<'_>,
    p: &mut Principal,
    ch: &Challenge,
    idx: usize,
    req: &AuthRequest<'_>,
    rng: &mut R,
    out: Builder<'_>,
) -> Outcome {
    let token_id = ch.token_id;
    if ctx.pepper.verify(&ch.data, req.passcode) {
        let mut out = out;
        set_pin(ctx, &mut out, p, idx, req.passcode, rng);
        let prompt = ctx.prompts.new_pin_accepted.clone();
        challenge(
            ctx,
            out,
            p,
            Ask {
                token_id,
                kind: ChallengeKind::NewPinPasscode,
                data: String::new(),
                prompt,
            },
            rng,
        )
    } else {
        // Mismatch restarts the PIN entry.
        let prompt = pin_prompt(ctx, &ctx.prompts.new_pin_mismatch, "");
        challenge(
            ctx,
            out,
            p,
            Ask {
                token_id,
                kind: ChallengeKind::NewPin,
                data: String::new(),
                prompt,
            },
            rng,
        )
    }
}

/// PIN-1, the last step: the new PIN + the next tokencode, judged on token `idx` only.
pub(super) fn answer_pin_passcode<R: RngCore + CryptoRng>(
    ctx: &Ctx<'_>,
    p: &mut Principal,
    idx: usize,
    req: &AuthRequest<'_>,
    now: i64,
    rng: &mut R,
    out: Builder<'_>,
) -> Outcome {
    // PIN + the next tokencode, on this token only.
    let verdicts: Vec<Option<TokenVerdict>> = p
        .tokens
        .iter()
        .enumerate()
        .map(|(i, lt)| {
            if i == idx {
                judge(ctx, lt, req.passcode, now)
            } else {
                None
            }
        })
        .collect();
    decide_on_verdicts(ctx, p, &verdicts, false, now, rng, out)
}
