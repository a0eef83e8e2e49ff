//! Emergency access (SPEC §6–§8): fixed passcode (FP-1, FP-2), online emergency codes — a TFT
//! or an OTT set — (E-1..E-3, P-3), the offline emergency tokencode used online (O-4), and what
//! the real token does while emergency codes are active (E-4).
//!
//! The checks ([`judge`], [`fixed_passcode_matches`]) report what matched; every stored code of
//! a token is checked, matched or not, so timing does not reveal which code (or whether any)
//! matched. The accepts write their bookkeeping (E-1: the OTT code is consumed, the TFT
//! confirmed; counters reset); a failed emergency code falls through to the real token's
//! decision and is counted there (L-2).

use crate::model::{AvailableRule, EmergencyKind, PinState, TokenKind};
use crate::otp;

use super::lockout::reset_counters;
use super::outcome::Builder;
use super::{Ctx, Decision, LiveToken, Method, Outcome, Principal, Reason, WriteOp};

/// What a token's emergency codes made of a passcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmergencyVerdict {
    /// No emergency code matched (or none is active).
    NoMatch,
    /// A valid, unused code with the right PIN.
    Match {
        /// The code row (consumed by id for OTT).
        code_id: i64,
        /// TFT or OTT.
        kind: EmergencyKind,
    },
    /// The right PIN and an OTT code that was already used (counts as a failure, L-2).
    Used,
    /// The offline emergency tokencode, accepted online (O-4).
    Offline,
}

/// Whether the token takes a PIN in front of emergency codes (P-3).
fn takes_pin(lt: &LiveToken) -> bool {
    lt.token.kind == TokenKind::Pin
        && lt.token.pin_state == PinState::Set
        && lt.token.pin_hash.is_some()
}

/// Splits a passcode into (PIN ok, upper-cased code) for a code of `len` characters, or `None`
/// when the passcode has the wrong shape for this token.
fn split<'p>(
    ctx: &Ctx<'_>,
    lt: &LiveToken,
    passcode: &'p [u8],
    len: usize,
) -> Option<(bool, Vec<u8>)> {
    let (pin_ok, code): (bool, &'p [u8]) = if takes_pin(lt) {
        let at = passcode.len().checked_sub(len).filter(|s| *s > 0)?;
        let (pin, code) = passcode.split_at(at);
        let ok = lt
            .token
            .pin_hash
            .as_deref()
            .is_some_and(|h| ctx.pepper.verify(h, pin));
        (ok, code)
    } else {
        if passcode.len() != len {
            return None;
        }
        (true, passcode)
    };
    Some((pin_ok, code.to_ascii_uppercase()))
}

/// Checks a passcode against the token's active TFT/OTT codes and its offline code (if usable
/// online).
pub fn judge(ctx: &Ctx<'_>, lt: &LiveToken, passcode: &[u8], now: i64) -> EmergencyVerdict {
    let t = &lt.token;
    if !t.enabled || t.expires_at.is_some_and(|e| e <= now) {
        return EmergencyVerdict::NoMatch;
    }
    let (len, _) = ctx.policies.token.emergency_code_format(t.kind);
    let Some((pin_ok, code)) = split(ctx, lt, passcode, len) else {
        return EmergencyVerdict::NoMatch;
    };
    let mut verdict = EmergencyVerdict::NoMatch;
    if let Some(ea) = lt.emergency.as_ref().filter(|ea| ea.active(now)) {
        for c in &ea.codes {
            // Always verify: no early exit.
            let eq = ctx.pepper.verify(&c.code_hash, &code);
            if eq && pin_ok && verdict == EmergencyVerdict::NoMatch {
                verdict = match c.used_at {
                    None => EmergencyVerdict::Match {
                        code_id: c.id,
                        kind: ea.kind,
                    },
                    Some(_) => EmergencyVerdict::Used,
                };
            }
        }
    }
    if let Some(off) = lt
        .offline_code
        .as_ref()
        .filter(|o| o.online && now < o.expires_at)
    {
        let eq = otp::ct_eq(off.code.as_bytes(), &code);
        if eq && pin_ok && !matches!(verdict, EmergencyVerdict::Match { .. }) {
            verdict = EmergencyVerdict::Offline;
        }
    }
    verdict
}

/// FP-1: the user's fixed passcode, when allowed and not expired, replaces the whole passcode
/// (no PIN in front).
pub fn fixed_passcode_matches(ctx: &Ctx<'_>, p: &Principal, passcode: &[u8], now: i64) -> bool {
    let Some(fp) = &p.fixed_passcode else {
        return false;
    };
    let Some(hash) = fp.code_hash.as_deref() else {
        return false;
    };
    let ok = ctx.pepper.verify(hash, passcode);
    ok && fp.allowed && fp.expires_at.is_none_or(|e| now < e)
}

/// FP-1 accept: no counter of a token moves, the user's failures reset, and the accept is marked
/// single-factor (FP-2).
pub(super) fn accept_fixed_passcode(mut out: Builder<'_>, p: &mut Principal) -> Outcome {
    reset_counters(&mut out, p, None);
    out.finish(
        Decision::Accept,
        Method::FixedPasscode,
        Reason::SingleFactor,
    )
}

/// E-1 accept of token `i`'s TFT or OTT code `code_id`: a TFT must still exist (guard), an OTT
/// code is consumed (guard) and marked used in the cached state; counters reset.
pub(super) fn accept_code(
    mut out: Builder<'_>,
    p: &mut Principal,
    i: usize,
    code_id: i64,
    kind: EmergencyKind,
) -> Outcome {
    let method = match kind {
        EmergencyKind::Tft => {
            // Reusable, but it must still exist in the database: another instance may have
            // cleared or replaced it since this one cached it.
            out.guard(WriteOp::ConfirmEmergencyCode {
                code_id,
                now: out.now,
            });
            Method::Tft
        }
        EmergencyKind::Ott => {
            // E-1: each OTT code works once, across restarts and instances.
            out.guard(WriteOp::ConsumeEmergencyCode {
                code_id,
                used_at: out.now,
            });
            let codes = p
                .tokens
                .get_mut(i)
                .and_then(|lt| lt.emergency.as_mut())
                .map(|ea| ea.codes.iter_mut());
            for c in codes.into_iter().flatten() {
                if c.id == code_id {
                    c.used_at = Some(out.now);
                }
            }
            Method::Ott
        }
    };
    reset_counters(&mut out, p, Some(i));
    out.finish(Decision::Accept, method, Reason::None)
}

/// O-4 accept of token `i`'s offline emergency tokencode: counters reset.
pub(super) fn accept_offline_code(mut out: Builder<'_>, p: &mut Principal, i: usize) -> Outcome {
    reset_counters(&mut out, p, Some(i));
    out.finish(Decision::Accept, Method::OfflineCode, Reason::None)
}

/// E-4: whether the real token `lt`, whose code just matched, may be accepted while it has
/// online emergency access. While the access is active, `deny` and `allow_after_expiry` refuse
/// it (the caller counts the failure, L-2) and `allow_and_disable` lets it in and deletes the
/// codes; once the access has expired, the real token works again and the stale codes are
/// deleted. A token without emergency access is allowed and nothing is written.
pub(super) fn real_token_allowed(out: &mut Builder<'_>, lt: &mut LiveToken, now: i64) -> bool {
    if let Some(ea) = &lt.emergency {
        let clear = if ea.active(now) {
            match ea.rule {
                AvailableRule::Deny | AvailableRule::AllowAfterExpiry => return false,
                AvailableRule::AllowAndDisable => true,
            }
        } else {
            // Expired: the real token works again and the stale codes go.
            true
        };
        if clear {
            out.op(WriteOp::ClearEmergency {
                token_id: lt.token.id,
            });
            lt.emergency = None;
        }
    }
    true
}
