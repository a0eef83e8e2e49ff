//! Tokencode verification against a token's window, drift and replay guard (SPEC W-1, W-2, D-1,
//! D-2, R-1, N-3), resynchronisation (D-2), and what an accepted tokencode writes: the new replay
//! guard and drift ([`success`]).
//!
//! Every check compares the code of every candidate in its range, matched or not, so the time a
//! check takes does not depend on whether or where the code matched. The codes come from the
//! token's [`otp::CodeCache`]: a window that moved by one counter since the last check costs one
//! HMAC, not one per candidate (bench/README.md: 1.5x the peak with HOTP tokens). Pure: `now`
//! is a parameter.

use crate::model::OtpMode;
use crate::otp::{self, Code, HotpKey};
use crate::policy::TokenPolicy;

use super::lockout::{set_bad_count, set_failures};
use super::outcome::Builder;
use super::{LiveToken, Principal, WriteOp};

/// Where a code matched: the step (TOTP) or counter (HOTP), and the drift to remember.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeMatch {
    /// Matched TOTP step or HOTP counter.
    pub step: i64,
    /// TOTP: matched step minus the server's current step (D-1). HOTP: 0.
    pub drift: i64,
}

/// The verdict on a tokencode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeResult {
    /// Not this token's code anywhere in the window.
    NoMatch,
    /// A code that was valid but is not newer than the last accepted one.
    Replay,
    /// Inside the automatic window (W-1/W-2): accept.
    Narrow(CodeMatch),
    /// Only in the wide window: Next Tokencode (N-1).
    Wide(CodeMatch),
}

fn code_eq(key: &HotpKey, digits: u8, step: i64, code: &[u8]) -> bool {
    match u64::try_from(step) {
        Ok(c) => otp::ct_eq(Code::new(key.hotp(c, digits), digits).as_bytes(), code),
        Err(_) => false,
    }
}

fn is_code_shaped(code: &[u8], digits: u8) -> bool {
    code.len() == usize::from(digits) && code.iter().all(u8::is_ascii_digit)
}

/// The steps (counters) a check looks at: `first..=last`, of which `narrow_lo..=narrow_hi` are
/// accepted outright; `s_now` is the server's TOTP step.
struct Window {
    first: i64,
    last: i64,
    narrow_lo: i64,
    narrow_hi: i64,
    s_now: Option<i64>,
}

fn window(policy: &TokenPolicy, lt: &LiveToken, now: i64) -> Window {
    let t = &lt.token;
    match t.mode {
        OtpMode::Totp { period } => {
            let s_now = otp::totp_step(now, period);
            let center = s_now.saturating_add(t.drift);
            let w = i64::from(policy.totp_window);
            let wide = i64::from(policy.totp_wide_window);
            Window {
                first: center.saturating_sub(wide),
                last: center.saturating_add(wide),
                narrow_lo: center.saturating_sub(w),
                narrow_hi: center.saturating_add(w),
                s_now: Some(s_now),
            }
        }
        OtpMode::Hotp => {
            let next = t.last_step.saturating_add(1);
            let w = i64::from(policy.hotp_window.max(1));
            let wide = i64::from(policy.hotp_wide_window.max(policy.hotp_window).max(1));
            // Look back a few counters too, only to tell a replay from a wrong code.
            Window {
                first: next.saturating_sub(w).max(0),
                last: next.saturating_add(wide - 1),
                narrow_lo: next,
                narrow_hi: next.saturating_add(w - 1),
                s_now: None,
            }
        }
    }
}

/// Calls `f(step, value)` with the token's code value for every step of the window, in order,
/// through the token's [`otp::CodeCache`] (one HMAC per step the window moved, not one per step).
/// Negative steps have no code and are skipped.
fn for_each_code(lt: &LiveToken, w: &Window, mut f: impl FnMut(i64, u32)) {
    let (Ok(first), Ok(last)) = (u64::try_from(w.first.max(0)), u64::try_from(w.last)) else {
        return;
    };
    let t = &lt.token;
    lt.codes.for_each(
        &lt.seed,
        t.algorithm,
        t.digits,
        first,
        last,
        |counter, value| {
            f(i64::try_from(counter).unwrap_or(i64::MAX), value);
        },
    );
}

/// CHAP (RFC 1994): the tokencode of `lt` whose `MD5(id | code | challenge)` is `response`,
/// searched over the same window as [`check_code`] (replayed steps included, so a replay is
/// still told apart). The caller then judges that code like a typed one. Every candidate is
/// computed and compared (constant time, no early exit).
pub fn find_chap_code(
    policy: &TokenPolicy,
    lt: &LiveToken,
    chap_id: u8,
    challenge: &[u8],
    response: &[u8; 16],
    now: i64,
) -> Option<Code> {
    let t = &lt.token;
    let w = window(policy, lt, now);
    let mut found = None;
    for_each_code(lt, &w, |_, value| {
        let code = Code::new(value, t.digits);
        let r = otp::chap_response(chap_id, code.as_bytes(), challenge);
        if otp::ct_eq(&r, response) && found.is_none() {
            found = Some(code);
        }
    });
    found
}

/// Checks `code` for `lt` at time `now` under `policy`.
pub fn check_code(policy: &TokenPolicy, lt: &LiveToken, code: &[u8], now: i64) -> CodeResult {
    let t = &lt.token;
    let shaped = is_code_shaped(code, t.digits);
    let w = window(policy, lt, now);
    let mut narrow = None;
    let mut wide = None;
    let mut replay = false;
    // Every code of the window is compared, matched or not (no early exit). A code that is not
    // digits of the token's length matches nothing, so none is computed for it.
    // Matched on numbers: a shaped code equals a candidate's formatted code exactly when its
    // number equals the candidate's value.
    if let Some(presented) = otp::code_value(code).filter(|_| shaped) {
        for_each_code(lt, &w, |s, value| {
            if !otp::ct_eq_value(value, presented) {
                return;
            }
            if s <= t.last_step {
                replay = true;
            } else if (w.narrow_lo..=w.narrow_hi).contains(&s) {
                narrow = narrow.or(Some(s));
            } else {
                wide = wide.or(Some(s));
            }
        });
    }
    let mk = |step: i64| CodeMatch {
        step,
        drift: w.s_now.map(|n| step - n).unwrap_or(0),
    };
    match (narrow, wide, replay) {
        (Some(s), _, _) => CodeResult::Narrow(mk(s)),
        (None, Some(s), _) => CodeResult::Wide(mk(s)),
        (None, None, true) => CodeResult::Replay,
        _ => CodeResult::NoMatch,
    }
}

/// N-3: the next tokencode must be strictly later than the one seen (`seen`) and than the last
/// accepted one: we accept the two steps (counters) after `seen`.
pub fn check_next(lt: &LiveToken, code: &[u8], seen: i64, now: i64) -> Option<CodeMatch> {
    let t = &lt.token;
    if !is_code_shaped(code, t.digits) {
        return None;
    }
    let mut found = None;
    let key = HotpKey::new(&lt.seed, t.algorithm);
    for s in [seen.saturating_add(1), seen.saturating_add(2)] {
        let eq = code_eq(&key, t.digits, s, code);
        if eq && s > t.last_step && found.is_none() {
            found = Some(s);
        }
    }
    found.map(|step| CodeMatch {
        step,
        drift: match t.mode {
            OtpMode::Totp { period } => step - otp::totp_step(now, period),
            OtpMode::Hotp => 0,
        },
    })
}

/// Why a resynchronisation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResyncError {
    /// The two codes are not consecutive codes of this token within the search range.
    #[error("the two tokencodes were not found as consecutive codes of this token")]
    NotFound,
    /// The codes are not the token's length or not digits.
    #[error("tokencodes must be exactly the token's number of digits")]
    BadFormat,
}

/// D-2: finds two consecutive codes within ±`resync_totp_hours` (TOTP) or the next
/// `resync_hotp_range` counters (HOTP). Returns the second code's step and the drift to store;
/// both codes count as used.
pub fn resync(
    policy: &TokenPolicy,
    lt: &LiveToken,
    code1: &[u8],
    code2: &[u8],
    now: i64,
) -> Result<CodeMatch, ResyncError> {
    let t = &lt.token;
    if !is_code_shaped(code1, t.digits) || !is_code_shaped(code2, t.digits) {
        return Err(ResyncError::BadFormat);
    }
    let (lo, hi, s_now) = match t.mode {
        OtpMode::Totp { period } => {
            let s_now = otp::totp_step(now, period);
            let span = i64::from(policy.resync_totp_hours) * 3600 / i64::from(period.max(1));
            (s_now - span, s_now + span, Some(s_now))
        }
        OtpMode::Hotp => {
            let next = t.last_step.saturating_add(1).max(0);
            (next, next + i64::from(policy.resync_hotp_range), None)
        }
    };
    let key = HotpKey::new(&lt.seed, t.algorithm);
    let mut s = lo.max(0);
    while s < hi {
        if code_eq(&key, t.digits, s, code1) && code_eq(&key, t.digits, s + 1, code2) {
            let step = s + 1;
            return Ok(CodeMatch {
                step,
                drift: s_now.map(|n| step - n).unwrap_or(0),
            });
        }
        s += 1;
    }
    Err(ResyncError::NotFound)
}

/// Success bookkeeping (SPEC §10 step 8): advance the replay guard, reset counters.
pub(super) fn success(out: &mut Builder<'_>, p: &mut Principal, idx: usize, m: CodeMatch) {
    if let Some(lt) = p.tokens.get_mut(idx) {
        lt.token.last_step = m.step;
        lt.token.drift = m.drift;
        out.guard(WriteOp::AdvanceStep {
            token_id: lt.token.id,
            step: m.step,
            drift: m.drift,
        });
        set_bad_count(out, &mut lt.token, 0);
    }
    if p.user.fail_count != 0 || p.user.fail_window_start != 0 {
        set_failures(out, &mut p.user, 0, 0, false, None);
    }
}
