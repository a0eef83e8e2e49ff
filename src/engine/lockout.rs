//! Lockout (SPEC L-1..L-4): the user's failure count and lock, the token's bad-passcode count
//! (read by N-1), and the decoy work that makes unknown and locked users cost what a wrong
//! passcode costs.
//!
//! L-2, every failed method counts: every reject of a known user, whatever was tried (a token,
//! a TFT or OTT code, the fixed passcode, the offline code, a CHAP response, a bad or expired
//! State, the E-4 `deny` rule, a replay lost at commit), is written by [`failure`]; the wrong
//! next tokencode (N-2) goes through [`lock_step`] directly. Success resets the counts (L-3,
//! [`reset_counters`] and `window::success`).

use crate::model::{Token, User};
use crate::otp::{self, HashAlgorithm, HotpKey, Pepper};

use super::outcome::Builder;
use super::{AuthRequest, Ctx, Decision, Method, Outcome, Principal, Reason, WriteOp};

/// The outcome to commit instead when a guard of `rejected` failed at commit time: another
/// request (or gateway instance) used the code or the State first. Counts as a failure (L-2).
pub fn replay_failure(
    ctx: &Ctx<'_>,
    p: &mut Principal,
    req: &AuthRequest<'_>,
    now: i64,
) -> Outcome {
    let out = Builder::new(req, now);
    failure(ctx, p, out, &[], Reason::ReplayRace, Method::Token, now)
}

/// L-3: whether a locked user stays locked, in which case the L-4 decoy work and writes are
/// done and the caller rejects. When the policy's auto-unlock duration has passed since the lock
/// (L-1), the lock is lifted instead and the request goes on.
pub(super) fn stays_locked(
    ctx: &Ctx<'_>,
    out: &mut Builder<'_>,
    p: &mut Principal,
    req: &AuthRequest<'_>,
    now: i64,
) -> bool {
    let auto = ctx.policies.lockout.auto_unlock_secs;
    match (auto, p.user.locked_at) {
        (Some(d), Some(at)) if at.saturating_add(d) <= now => {
            set_failures(out, &mut p.user, 0, 0, false, None);
            false
        }
        _ => {
            dummy_work(ctx.pepper, req.passcode);
            // L-4: the same writes as an unknown user (whose decoy is a random token): a
            // no-op touch of one token row, then the audit row. Without it a locked user's
            // commit is one row lighter, so it answers sooner than an unknown one.
            if let Some(lt) = p.tokens.first() {
                out.op(WriteOp::TouchToken {
                    token_id: lt.token.id,
                });
            }
            true
        }
    }
}

pub(super) fn set_failures(
    out: &mut Builder<'_>,
    user: &mut User,
    fail_count: u32,
    window_start: i64,
    locked: bool,
    locked_at: Option<i64>,
) {
    user.fail_count = fail_count;
    user.fail_window_start = window_start;
    user.locked = locked;
    user.locked_at = locked_at;
    out.op(WriteOp::SetUserFailures {
        user_id: user.id,
        fail_count,
        fail_window_start: window_start,
        locked,
        locked_at,
    });
}

pub(super) fn set_bad_count(out: &mut Builder<'_>, t: &mut Token, n: u32) {
    if t.bad_count != n {
        t.bad_count = n;
        out.op(WriteOp::SetTokenBadCount {
            token_id: t.id,
            bad_count: n,
        });
    }
}

/// Success without a tokencode step (emergency codes, fixed passcode): reset the counters.
pub(super) fn reset_counters(out: &mut Builder<'_>, p: &mut Principal, idx: Option<usize>) {
    if let Some(lt) = idx.and_then(|i| p.tokens.get_mut(i)) {
        set_bad_count(out, &mut lt.token, 0);
    }
    if p.user.fail_count != 0 || p.user.fail_window_start != 0 {
        set_failures(out, &mut p.user, 0, 0, false, None);
    }
}

/// Failure bookkeeping (L-1, L-2, N-1): bump the implicated tokens' bad counts and the user's
/// failure count, locking at the limit.
pub(super) fn failure(
    ctx: &Ctx<'_>,
    p: &mut Principal,
    mut out: Builder<'_>,
    implicated: &[usize],
    reason: Reason,
    method: Method,
    now: i64,
) -> Outcome {
    for &i in implicated {
        if let Some(lt) = p.tokens.get_mut(i) {
            let n = lt.token.bad_count.saturating_add(1);
            set_bad_count(&mut out, &mut lt.token, n);
        }
    }
    lock_step(ctx, &mut out, &mut p.user, now, false);
    out.finish(Decision::Reject, method, reason)
}

pub(super) fn lock_step(
    ctx: &Ctx<'_>,
    out: &mut Builder<'_>,
    user: &mut User,
    now: i64,
    force_lock: bool,
) {
    let l = &ctx.policies.lockout;
    let (count, start) =
        if user.fail_count == 0 || user.fail_window_start.saturating_add(l.window_secs) <= now {
            (1, now)
        } else {
            (user.fail_count.saturating_add(1), user.fail_window_start)
        };
    let lock = force_lock || user.locked || count >= l.max_failures;
    out.locked_out |= lock && !user.locked;
    let locked_at = if lock {
        user.locked_at.or(Some(now))
    } else {
        None
    };
    set_failures(out, user, count, start, lock, locked_at);
}

const DUMMY_SEED: [u8; 20] = [0x5a; 20];
const DUMMY_HASH: &str = "h1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// Candidates the dummy work compares: the default HOTP window (10 back + 100 ahead).
const DUMMY_WINDOW: u32 = 110;

/// Work equivalent to judging one PIN token of a cached user (every login after the first),
/// for answers that must not be told apart by timing (unknown user, locked user; SPEC L-4): the
/// PIN's keyed hash, keying HMAC and one code (what a window that moved by one counter costs
/// with the token's code cache), and a constant-time compare with each candidate of the default
/// HOTP window (see `window::check_code`).
pub(super) fn dummy_work(pepper: &Pepper, passcode: &[u8]) {
    let split = passcode.len().saturating_sub(6);
    let (pin, code) = passcode.split_at(split);
    let mut acc = pepper.verify(DUMMY_HASH, pin);
    let key = HotpKey::new(&DUMMY_SEED, HashAlgorithm::Sha1);
    let value = key.hotp(0, 6);
    let presented = otp::code_value(code).unwrap_or(u32::MAX);
    for i in 0..DUMMY_WINDOW {
        acc ^= otp::ct_eq_value(value.wrapping_add(i), presented);
    }
    std::hint::black_box(acc);
}
