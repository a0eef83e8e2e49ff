//! The real token's passcode (SPEC P-1, P-2, P-5, N-1): splitting PIN and tokencode, each
//! token's verdict on a fresh login, the decision on those verdicts (accept, Next Tokencode,
//! New PIN or a counted failure), and the tokencode a CHAP response was made from.

use rand::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::model::{ChallengeKind, PinState, TokenKind};

use super::challenge::{challenge, Ask};
use super::lockout::failure;
use super::new_pin::start_new_pin;
use super::outcome::Builder;
use super::window::{self, success, CodeResult};
use super::{
    emergency, ChapResponse, Ctx, Decision, LiveToken, Method, Outcome, Principal, Reason,
};

/// Stands in for the passcode when no candidate matches a CHAP response: never a valid code,
/// so the attempt is judged (and counted, L-2) like any wrong passcode.
const CHAP_NO_MATCH: &[u8] = b"-";

/// The tokencode of a token without a PIN that answers `chap`, if any (see [`ChapResponse`]).
pub(super) fn chap_passcode(
    ctx: &Ctx<'_>,
    principal: Option<&Principal>,
    chap: &ChapResponse<'_>,
    now: i64,
) -> Zeroizing<Vec<u8>> {
    let mut found: Option<Zeroizing<Vec<u8>>> = None;
    for lt in principal.map(|p| p.tokens.as_slice()).unwrap_or_default() {
        if lt.token.kind != TokenKind::App {
            continue;
        }
        let code = window::find_chap_code(
            &ctx.policies.token,
            lt,
            chap.id,
            chap.challenge,
            chap.response,
            now,
        );
        if let (None, Some(c)) = (&found, code) {
            found = Some(Zeroizing::new(c.as_bytes().to_vec()));
        }
    }
    found.unwrap_or_else(|| Zeroizing::new(CHAP_NO_MATCH.to_vec()))
}

/// How one token judged the passcode.
#[derive(Debug, Clone, Copy)]
pub(super) struct TokenVerdict {
    /// The PIN part matched (or the token takes no PIN).
    pin_ok: bool,
    /// The token is in New PIN mode and the passcode was its tokencode alone.
    new_pin_mode: bool,
    code: CodeResult,
}

/// One token's verdict on a fresh login's passcode (P-1, P-2; PIN-1: the tokencode alone while
/// in New PIN mode), or `None` for a disabled or expired token.
pub(super) fn judge(
    ctx: &Ctx<'_>,
    lt: &LiveToken,
    passcode: &[u8],
    now: i64,
) -> Option<TokenVerdict> {
    let t = &lt.token;
    if !t.enabled || t.expires_at.is_some_and(|e| e <= now) {
        return None;
    }
    let digits = usize::from(t.digits);
    let needs_new_pin = t.kind == TokenKind::Pin
        && (t.pin_state == PinState::NewPinRequired || t.pin_hash.is_none());
    if t.kind == TokenKind::App || needs_new_pin {
        // P-2 (and PIN-1: tokencode alone while in New PIN mode).
        if passcode.len() != digits {
            return Some(TokenVerdict {
                pin_ok: false,
                new_pin_mode: false,
                code: CodeResult::NoMatch,
            });
        }
        let code = window::check_code(&ctx.policies.token, lt, passcode, now);
        return Some(TokenVerdict {
            pin_ok: true,
            new_pin_mode: needs_new_pin,
            code,
        });
    }
    // P-1: the tokencode is the last `digits` characters; the PIN is the rest (never split on
    // the first digit: PINs may be alphanumeric).
    let Some(split) = passcode.len().checked_sub(digits).filter(|s| *s > 0) else {
        return Some(TokenVerdict {
            pin_ok: false,
            new_pin_mode: false,
            code: CodeResult::NoMatch,
        });
    };
    let (pin, code) = passcode.split_at(split);
    let pin_ok = t
        .pin_hash
        .as_deref()
        .is_some_and(|h| ctx.pepper.verify(h, pin));
    // Compute the code whatever the PIN said, so timing does not reveal the PIN.
    let code = window::check_code(&ctx.policies.token, lt, code, now);
    Some(TokenVerdict {
        pin_ok,
        new_pin_mode: false,
        code,
    })
}

/// Decides on the tokens' verdicts (P-5: the first token whose PIN and code both match): the
/// E-4 rule for that token, N-1 (wide window or too many bad passcodes: ask for the next
/// tokencode), New PIN mode (PIN-1) or an accept; without a match, a failure that names the
/// tokens it implicates (replay, used emergency code or bad passcode).
pub(super) fn decide_on_verdicts<R: RngCore + CryptoRng>(
    ctx: &Ctx<'_>,
    p: &mut Principal,
    verdicts: &[Option<TokenVerdict>],
    used_emergency_code: bool,
    now: i64,
    rng: &mut R,
    mut out: Builder<'_>,
) -> Outcome {
    let matched = verdicts.iter().enumerate().find_map(|(i, v)| match v {
        Some(v) if v.pin_ok => match v.code {
            CodeResult::Narrow(m) => Some((i, m, false, v.new_pin_mode)),
            CodeResult::Wide(m) => Some((i, m, true, v.new_pin_mode)),
            _ => None,
        },
        _ => None,
    });
    if let Some((i, m, wide, new_pin_mode)) = matched {
        let (token_id, bad_count) = match p.tokens.get(i) {
            Some(lt) => (lt.token.id, lt.token.bad_count),
            None => return out.finish(Decision::Reject, Method::Token, Reason::BadPasscode),
        };
        // E-4: the real token while emergency access exists.
        if let Some(lt) = p.tokens.get_mut(i) {
            if !emergency::real_token_allowed(&mut out, lt, now) {
                let implicated = [i];
                return failure(
                    ctx,
                    p,
                    out,
                    &implicated,
                    Reason::TokenInEmergency,
                    Method::Token,
                    now,
                );
            }
        }
        let over_limit = ctx
            .policies
            .token
            .bad_passcode_limit
            .is_some_and(|n| bad_count > n);
        if wide || over_limit {
            // N-1: correct code, but prove possession with the next one.
            return challenge(
                ctx,
                out,
                p,
                Ask {
                    token_id: Some(token_id),
                    kind: ChallengeKind::NextTokencode,
                    data: m.step.to_string(),
                    prompt: ctx.prompts.next_tokencode.clone(),
                },
                rng,
            );
        }
        if new_pin_mode {
            // PIN-1: the tokencode is consumed now; the PIN comes next.
            success(&mut out, p, i, m);
            return start_new_pin(ctx, p, i, out, rng);
        }
        success(&mut out, p, i, m);
        return out.finish(Decision::Accept, Method::Token, Reason::None);
    }
    // No full match. Replay when a PIN-valid token recognised an already-used code.
    let replay = verdicts
        .iter()
        .flatten()
        .any(|v| v.pin_ok && matches!(v.code, CodeResult::Replay));
    let pin_matched: Vec<usize> = verdicts
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.filter(|v| v.pin_ok).map(|_| i))
        .collect();
    let implicated: Vec<usize> = if pin_matched.is_empty() {
        verdicts
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|_| i))
            .collect()
    } else {
        pin_matched
    };
    let reason = if replay {
        Reason::Replay
    } else if used_emergency_code {
        Reason::EmergencyCodeUsed
    } else {
        Reason::BadPasscode
    };
    failure(ctx, p, out, &implicated, reason, Method::Token, now)
}
