//! Emergency access checks (SPEC §6–§8): fixed passcode (FP-1), online emergency codes — a TFT
//! or an OTT set — (E-1..E-3, P-3), and the offline emergency tokencode used online (O-4).
//!
//! Pure functions over the principal's cached state: they report what matched and leave the
//! decision (E-4, bookkeeping) to the engine. Every stored code of a token is checked, matched or
//! not, so timing does not reveal which code (or whether any) matched.

use crate::model::{EmergencyKind, PinState, TokenKind};
use crate::otp;

use super::{Ctx, LiveToken, Principal};

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
