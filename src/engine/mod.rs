//! Protocol-neutral authentication decisions: `AuthRequest` + state → `Outcome`.
//!
//! Where each rule of SPEC.md is decided:
//!
//! | Rules | File | What it decides |
//! |---|---|---|
//! | §10 steps 3–8 (the order) | `mod.rs` | [`authenticate`]: which family is asked, in what order |
//! | P-1, P-2, P-5, N-1, CHAP | `passcode.rs` | PIN + tokencode split, each token's verdict, the decision on the verdicts (accept, Next Tokencode, New PIN, failure), the tokencode a CHAP response was made from |
//! | W-1, W-2, D-1, D-2, R-1, N-3 | `window.rs` | windows, drift, replay, the next tokencode's check, resync, the accepted code's guard |
//! | N-2, §10 step 3 | `challenge.rs` | challenge sessions: opening, the State checks, the Next Tokencode answer |
//! | PIN-1, PIN-2, PIN-3 | `new_pin.rs` | PIN policy check, New PIN mode, its answers and prompts |
//! | L-1, L-2, L-3, L-4 | `lockout.rs` | failure and bad-passcode counts, locks, auto-unlock, decoy work; [`replay_failure`] |
//! | E-1..E-4, FP-1, FP-2, P-3, P-4, O-4 | `emergency.rs` | TFT and OTT codes, the fixed passcode, the offline code used online, the real token under emergency access |
//! | — | `request.rs` | the inputs: [`AuthRequest`], [`Principal`], [`StateLookup`], [`Ctx`] |
//! | — | `outcome.rs` | the effects: [`Decision`], [`Outcome`], [`Method`], [`Reason`], [`WriteOp`] |
//!
//! Not decided here: §10 steps 1–2 and R-2 (the RADIUS server and its duplicate cache), E-5 and
//! the issuing side of E-1..E-3 (`admin::emergency`), the offline data of O-1..O-3 and O-5.
//!
//! The engine applies these rules in the evaluation order of §10. It never touches sockets, the
//! database, the clock or the OS random generator: the caller passes the user's cached state
//! (`Principal`), the challenge session if the request carried a State, `now` and an RNG, and
//! gets back a [`Decision`] plus the list of [`WriteOp`]s that make the decision durable. The
//! engine updates the `Principal` it was given to match those writes; the caller commits the
//! writes (guards first) and only then answers, and on a failed guard throws the updated copy
//! away (see `server::service`).
//!
//! RADIUS and TACACS+ both build an [`AuthRequest`] and render the same [`Decision`].

// Untrusted bytes never panic here: unwrap, expect and panic are denied crate-wide
// (Cargo.toml [lints.clippy]); this pure module also denies unchecked indexing.
#![deny(clippy::indexing_slicing)]

mod challenge;
mod emergency;
mod lockout;
mod new_pin;
mod outcome;
mod passcode;
mod request;
mod window;

#[cfg(test)]
mod tests;

pub use emergency::EmergencyVerdict;
pub use lockout::replay_failure;
pub use new_pin::check_pin_policy;
pub use outcome::{Decision, Method, Outcome, Reason, WriteOp};
pub use request::{AuthRequest, ChapResponse, Ctx, LiveCode, LiveToken, Principal, StateLookup};
pub use window::{resync, CodeMatch, ResyncError};

use rand::{CryptoRng, RngCore};

use outcome::Builder;
use passcode::TokenVerdict;

/// Decides one request (SPEC §10 steps 3–8 for the non-emergency path).
///
/// `principal` is `None` for unknown users; it is updated in place to match the returned ops.
pub fn authenticate<R: RngCore + CryptoRng>(
    ctx: &Ctx<'_>,
    principal: Option<&mut Principal>,
    state: &StateLookup,
    req: &AuthRequest<'_>,
    now: i64,
    rng: &mut R,
) -> Outcome {
    // CHAP: find the code the response was made from, then judge it like a typed passcode (all
    // window, replay, Next Tokencode and lockout rules apply unchanged).
    let chap_code;
    let resolved;
    let req = match &req.chap {
        None => req,
        Some(chap) => {
            chap_code = passcode::chap_passcode(ctx, principal.as_deref(), chap, now);
            resolved = AuthRequest {
                passcode: &chap_code,
                chap: None,
                ..*req
            };
            &resolved
        }
    };
    let mut out = Builder::new(req, now);
    let Some(p) = principal else {
        // L-4: same work, same answer as a wrong passcode.
        lockout::dummy_work(ctx.pepper, req.passcode);
        return out.finish(Decision::Reject, Method::None, Reason::UnknownUser);
    };
    // Step 4: locked users are rejected, even with a valid passcode (L-3).
    if p.user.locked && lockout::stays_locked(ctx, &mut out, p, req, now) {
        return out.finish(Decision::Reject, Method::None, Reason::Locked);
    }
    // Step 3: a State continues that challenge session only.
    match state {
        StateLookup::None => fresh_login(ctx, p, req, now, rng, out),
        StateLookup::Unknown => {
            lockout::failure(ctx, p, out, &[], Reason::BadState, Method::None, now)
        }
        StateLookup::Found(ch) => challenge::continue_challenge(ctx, p, ch, req, now, rng, out),
    }
}

/// Steps 5–6 (and 8) for a request without State: every method is judged first, then the first
/// that matched decides, in this order: fixed passcode, an emergency code, the offline code, the
/// real tokens.
fn fresh_login<R: RngCore + CryptoRng>(
    ctx: &Ctx<'_>,
    p: &mut Principal,
    req: &AuthRequest<'_>,
    now: i64,
    rng: &mut R,
    out: Builder<'_>,
) -> Outcome {
    // Every method is computed before deciding (timing, and no early accept).
    // Step 5: fixed passcode (P-4, FP-1).
    let fixed = emergency::fixed_passcode_matches(ctx, p, req.passcode, now);
    // Step 6: for each token, emergency codes and the offline code (P-3), then the real token (P-5).
    let em: Vec<EmergencyVerdict> = p
        .tokens
        .iter()
        .map(|lt| emergency::judge(ctx, lt, req.passcode, now))
        .collect();
    let verdicts: Vec<Option<TokenVerdict>> = p
        .tokens
        .iter()
        .map(|lt| passcode::judge(ctx, lt, req.passcode, now))
        .collect();
    if fixed {
        return emergency::accept_fixed_passcode(out, p);
    }
    let em_match = em.iter().enumerate().find_map(|(i, v)| match v {
        EmergencyVerdict::Match { code_id, kind } => Some((i, *code_id, *kind)),
        _ => None,
    });
    if let Some((i, code_id, kind)) = em_match {
        return emergency::accept_code(out, p, i, code_id, kind);
    }
    if let Some(i) = em.iter().position(|v| *v == EmergencyVerdict::Offline) {
        return emergency::accept_offline_code(out, p, i);
    }
    // The real tokens; a used OTT code is the reason if nothing else matched (E-1).
    let used = em.contains(&EmergencyVerdict::Used);
    passcode::decide_on_verdicts(ctx, p, &verdicts, used, now, rng, out)
}
