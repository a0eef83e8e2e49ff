//! Protocol-neutral authentication decisions: `AuthRequest` + state → `Outcome`.
//!
//! The engine applies the rules of SPEC.md (P-*, W-*, D-*, R-*, N-*, PIN-*, L-*) in the evaluation
//! order of §10. It never touches sockets, the database, the clock or the OS random generator: the
//! caller passes the user's cached state (`Principal`), the challenge session if the request
//! carried a State, `now` and an RNG, and gets back a [`Decision`] plus the list of [`WriteOp`]s
//! that make the decision durable. The engine updates the `Principal` it was given to match those
//! writes; the caller commits the writes (guards first) and only then answers, and on a failed
//! guard throws the updated copy away (see `server::auth`).
//!
//! RADIUS and TACACS+ both build an [`AuthRequest`] and render the same [`Decision`].

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod emergency;
mod outcome;
mod pin;
mod verify;

#[cfg(test)]
mod tests;

pub use emergency::EmergencyVerdict;
pub use outcome::WriteOp;
pub use pin::check_pin_policy;
pub use verify::{resync, CodeMatch, ResyncError};

use base64::Engine as _;
use rand::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::model::{
    AuditRecord, AvailableRule, Challenge, ChallengeKind, EmergencyAccess, EmergencyKind,
    FixedPasscode, PinState, Token, TokenKind, User,
};
use crate::otp::{CodeCache, Pepper};
use crate::policy::{NtcFailure, Policies, Prompts};

/// A token with its seed decrypted (held in memory only), its emergency access and its offline
/// emergency tokencode.
#[derive(Clone)]
pub struct LiveToken {
    /// The stored record. Cached tokens carry an empty `seed_enc`: the seed is decrypted once
    /// into `seed`, and no write op takes the whole record back to the store.
    pub token: Token,
    /// The decrypted seed.
    pub seed: Zeroizing<Vec<u8>>,
    /// Online emergency access (TFT or OTT set), if issued.
    pub emergency: Option<EmergencyAccess>,
    /// The offline emergency tokencode, decrypted, if one exists.
    pub offline_code: Option<LiveCode>,
    /// The codes of the token's last checked window, for the next check (shared by clones).
    pub codes: CodeCache,
}

/// A decrypted offline emergency code.
#[derive(Clone)]
pub struct LiveCode {
    /// The code (upper-case).
    pub code: Zeroizing<String>,
    /// Valid while `now < expires_at`.
    pub expires_at: i64,
    /// O-4: also accepted online.
    pub online: bool,
}

impl std::fmt::Debug for LiveToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveToken")
            .field("token", &self.token)
            .field("seed", &"<redacted>")
            .field("emergency", &self.emergency)
            .field(
                "offline_code",
                &self.offline_code.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl LiveToken {
    /// A token without emergency state.
    pub fn new(token: Token, seed: Zeroizing<Vec<u8>>) -> LiveToken {
        LiveToken {
            token,
            seed,
            emergency: None,
            offline_code: None,
            codes: CodeCache::default(),
        }
    }
}

/// A user and the tokens assigned to them: what the engine needs to decide.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user record.
    pub user: User,
    /// Their tokens.
    pub tokens: Vec<LiveToken>,
    /// Their fixed passcode settings (FP-1).
    pub fixed_passcode: Option<FixedPasscode>,
}

/// One authentication attempt, as any front end sees it.
#[derive(Debug, Clone, Copy)]
pub struct AuthRequest<'a> {
    /// The login name as sent (used for audit; lookups use the normalised name).
    pub user_name: &'a str,
    /// The passcode (or the answer to a challenge).
    pub passcode: &'a [u8],
    /// The client (NAS) name.
    pub client: &'a str,
    /// `radius` or `tacacs`.
    pub protocol: &'a str,
    /// A CHAP response instead of a clear passcode (`passcode` is then ignored).
    pub chap: Option<ChapResponse<'a>>,
}

/// A CHAP answer (RFC 1994): the server never sees the passcode, only MD5(id | passcode |
/// challenge). PINs are stored as keyed hashes, so PIN + tokencode candidates cannot be rebuilt:
/// only tokens without a PIN (app tokens, P-2) can be matched.
#[derive(Debug, Clone, Copy)]
pub struct ChapResponse<'a> {
    /// The PPP identifier.
    pub id: u8,
    /// The challenge the device sent.
    pub challenge: &'a [u8],
    /// MD5(id | passcode | challenge).
    pub response: &'a [u8; 16],
}

/// Stands in for the passcode when no candidate matches a CHAP response: never a valid code,
/// so the attempt is judged (and counted, L-2) like any wrong passcode.
const CHAP_NO_MATCH: &[u8] = b"-";

/// The tokencode of a token without a PIN that answers `chap`, if any (see [`ChapResponse`]).
fn chap_passcode(
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
        let code = verify::find_chap_code(
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

/// The State the request carried, resolved by the caller.
#[derive(Debug, Clone)]
pub enum StateLookup {
    /// No State: a fresh login.
    None,
    /// A State that matches no live session.
    Unknown,
    /// The session it names.
    Found(Challenge),
}

/// How a request was authenticated (audit and metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// PIN + tokencode, or tokencode alone for app tokens.
    Token,
    /// A temporary fixed tokencode (E-1).
    Tft,
    /// A one-time tokencode of a set (E-1).
    Ott,
    /// A fixed passcode (FP-1): single-factor.
    FixedPasscode,
    /// The offline emergency tokencode used online (O-4).
    OfflineCode,
    /// Nothing was verified (unknown user, locked, bad State).
    None,
}

impl Method {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Token => "token",
            Method::Tft => "tft",
            Method::Ott => "ott",
            Method::FixedPasscode => "fixed_passcode",
            Method::OfflineCode => "offline_code",
            Method::None => "none",
        }
    }
}

/// Why a request was rejected (audit and metrics label; never sent to the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Accepted or challenged.
    None,
    /// Wrong PIN or tokencode.
    BadPasscode,
    /// A code already used, or older than one used.
    Replay,
    /// The user is locked (L-3).
    Locked,
    /// No such user (L-4: answered exactly like `BadPasscode`).
    UnknownUser,
    /// State unknown or another user's.
    BadState,
    /// The user's own State, answered after the session's lifetime.
    ExpiredState,
    /// Wrong next tokencode (N-2).
    NextTokencodeFailed,
    /// The replay guard failed at commit: another request or instance used the code first.
    ReplayRace,
    /// A one-time tokencode that was already used (E-1).
    EmergencyCodeUsed,
    /// The real token was presented while emergency access is active and the E-4 rule denies it.
    TokenInEmergency,
    /// Accepted with a single factor (FP-2: fixed passcode accepts are marked as such).
    SingleFactor,
}

impl Reason {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::None => "none",
            Reason::BadPasscode => "bad_passcode",
            Reason::Replay => "replay",
            Reason::Locked => "locked",
            Reason::UnknownUser => "unknown_user",
            Reason::BadState => "bad_state",
            Reason::ExpiredState => "expired_state",
            Reason::NextTokencodeFailed => "next_tokencode_failed",
            Reason::ReplayRace => "replay",
            Reason::EmergencyCodeUsed => "emergency_code_used",
            Reason::TokenInEmergency => "token_in_emergency_access",
            Reason::SingleFactor => "single_factor",
        }
    }
}

/// The answer to the front end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Let the user in.
    Accept,
    /// Keep them out.
    Reject,
    /// Ask for more: send `state` and `prompt`, expect an answer with that State.
    Challenge {
        /// The new State value (printable ASCII).
        state: String,
        /// Text for the user.
        prompt: String,
        /// What is asked.
        kind: ChallengeKind,
    },
}

/// The engine's result: a decision and the writes that make it durable.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// What to answer, once `ops` are committed.
    pub decision: Decision,
    /// Writes, guards first (`AdvanceStep`, `ConsumeChallenge`). If a guard fails, the decision
    /// must not be sent: call [`replay_failure`] instead.
    pub ops: Vec<WriteOp>,
    /// Method (audit/metrics).
    pub method: Method,
    /// Reject reason (audit/metrics).
    pub reason: Reason,
    /// This request locked the user (L-1, N-2); metrics count lockouts from it.
    pub locked_out: bool,
}

/// Read-only context of one decision.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// The user's domain policies.
    pub policies: &'a Policies,
    /// Prompt texts.
    pub prompts: &'a Prompts,
    /// Pepper for PIN hashes.
    pub pepper: &'a Pepper,
    /// Challenge session lifetime, seconds.
    pub challenge_ttl: i64,
}

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
            chap_code = chap_passcode(ctx, principal.as_deref(), chap, now);
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
        verify::dummy_work(ctx.pepper, req.passcode);
        return out.finish(Decision::Reject, Method::None, Reason::UnknownUser);
    };
    // Step 4: locked users are rejected, even with a valid passcode (L-3).
    if p.user.locked {
        let auto = ctx.policies.lockout.auto_unlock_secs;
        match (auto, p.user.locked_at) {
            (Some(d), Some(at)) if at.saturating_add(d) <= now => {
                set_failures(&mut out, &mut p.user, 0, 0, false, None);
            }
            _ => {
                verify::dummy_work(ctx.pepper, req.passcode);
                // L-4: the same writes as an unknown user (whose decoy is a random token): a
                // no-op touch of one token row, then the audit row. Without it a locked user's
                // commit is one row lighter, so it answers sooner than an unknown one.
                if let Some(lt) = p.tokens.first() {
                    out.op(WriteOp::TouchToken {
                        token_id: lt.token.id,
                    });
                }
                return out.finish(Decision::Reject, Method::None, Reason::Locked);
            }
        }
    }
    // Step 3: a State continues that challenge session only.
    match state {
        StateLookup::None => fresh_login(ctx, p, req, now, rng, out),
        StateLookup::Unknown => failure(ctx, p, out, &[], Reason::BadState, Method::None, now),
        StateLookup::Found(ch) => {
            if ch.user_id != p.user.id {
                return failure(ctx, p, out, &[], Reason::BadState, Method::None, now);
            }
            if ch.expires_at <= now {
                return failure(ctx, p, out, &[], Reason::ExpiredState, Method::None, now);
            }
            out.guard(WriteOp::ConsumeChallenge {
                state: ch.state.clone(),
            });
            continue_challenge(ctx, p, ch, req, now, rng, out)
        }
    }
}

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

// ---------------------------------------------------------------------------------------------

/// Collects ops in order (guards first) and the audit record.
struct Builder<'r> {
    guards: Vec<WriteOp>,
    ops: Vec<WriteOp>,
    req: &'r AuthRequest<'r>,
    now: i64,
    locked_out: bool,
}

impl<'r> Builder<'r> {
    fn new(req: &'r AuthRequest<'r>, now: i64) -> Self {
        Builder {
            guards: Vec::with_capacity(2),
            ops: Vec::with_capacity(4),
            req,
            now,
            locked_out: false,
        }
    }
    fn guard(&mut self, op: WriteOp) {
        self.guards.push(op);
    }
    fn op(&mut self, op: WriteOp) {
        self.ops.push(op);
    }
    fn finish(mut self, decision: Decision, method: Method, reason: Reason) -> Outcome {
        let result = match &decision {
            Decision::Accept => "accept",
            Decision::Reject => "reject",
            Decision::Challenge { .. } => "challenge",
        };
        self.ops.push(WriteOp::Audit(AuditRecord {
            at: self.now,
            actor: None,
            user_name: self.req.user_name.to_string(),
            client: Some(self.req.client.to_string()),
            protocol: self.req.protocol.to_string(),
            method: method.as_str().to_string(),
            result: result.to_string(),
            reason: reason.as_str().to_string(),
        }));
        let mut ops = self.guards;
        ops.append(&mut self.ops);
        Outcome {
            decision,
            ops,
            method,
            reason,
            locked_out: self.locked_out,
        }
    }
}

fn set_failures(
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

fn set_bad_count(out: &mut Builder<'_>, t: &mut Token, n: u32) {
    if t.bad_count != n {
        t.bad_count = n;
        out.op(WriteOp::SetTokenBadCount {
            token_id: t.id,
            bad_count: n,
        });
    }
}

/// Success bookkeeping (SPEC §10 step 8): advance the replay guard, reset counters.
fn success(out: &mut Builder<'_>, p: &mut Principal, idx: usize, m: CodeMatch) {
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

/// Failure bookkeeping (L-1, L-2, N-1): bump the implicated tokens' bad counts and the user's
/// failure count, locking at the limit.
fn failure(
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

fn lock_step(ctx: &Ctx<'_>, out: &mut Builder<'_>, user: &mut User, now: i64, force_lock: bool) {
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

fn new_state<R: RngCore + CryptoRng>(rng: &mut R) -> String {
    let mut b = [0u8; 18];
    rng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// What a new challenge session asks for.
struct Ask {
    token_id: Option<i64>,
    kind: ChallengeKind,
    data: String,
    prompt: String,
}

fn challenge<R: RngCore + CryptoRng>(
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

fn pin_prompt(ctx: &Ctx<'_>, template: &str, reason: &str) -> String {
    let pin = &ctx.policies.pin;
    template
        .replace("{min}", &pin.min_length.to_string())
        .replace("{max}", &pin.max_length.to_string())
        .replace("{charset}", pin.charset.describe())
        .replace("{reason}", reason)
}

/// How one token judged the passcode.
#[derive(Debug, Clone, Copy)]
struct TokenVerdict {
    /// The PIN part matched (or the token takes no PIN).
    pin_ok: bool,
    /// The token is in New PIN mode and the passcode was its tokencode alone.
    new_pin_mode: bool,
    code: verify::CodeResult,
}

fn judge(ctx: &Ctx<'_>, lt: &LiveToken, passcode: &[u8], now: i64) -> Option<TokenVerdict> {
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
                code: verify::CodeResult::NoMatch,
            });
        }
        let code = verify::check_code(&ctx.policies.token, lt, passcode, now);
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
            code: verify::CodeResult::NoMatch,
        });
    };
    let (pin, code) = passcode.split_at(split);
    let pin_ok = t
        .pin_hash
        .as_deref()
        .is_some_and(|h| ctx.pepper.verify(h, pin));
    // Compute the code whatever the PIN said, so timing does not reveal the PIN.
    let code = verify::check_code(&ctx.policies.token, lt, code, now);
    Some(TokenVerdict {
        pin_ok,
        new_pin_mode: false,
        code,
    })
}

/// Success without a tokencode step (emergency codes, fixed passcode): reset the counters.
fn reset_counters(out: &mut Builder<'_>, p: &mut Principal, idx: Option<usize>) {
    if let Some(lt) = idx.and_then(|i| p.tokens.get_mut(i)) {
        set_bad_count(out, &mut lt.token, 0);
    }
    if p.user.fail_count != 0 || p.user.fail_window_start != 0 {
        set_failures(out, &mut p.user, 0, 0, false, None);
    }
}

fn fresh_login<R: RngCore + CryptoRng>(
    ctx: &Ctx<'_>,
    p: &mut Principal,
    req: &AuthRequest<'_>,
    now: i64,
    rng: &mut R,
    mut out: Builder<'_>,
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
        .map(|lt| judge(ctx, lt, req.passcode, now))
        .collect();
    if fixed {
        reset_counters(&mut out, p, None);
        return out.finish(
            Decision::Accept,
            Method::FixedPasscode,
            Reason::SingleFactor,
        );
    }
    let em_match = em.iter().enumerate().find_map(|(i, v)| match v {
        EmergencyVerdict::Match { code_id, kind } => Some((i, *code_id, *kind)),
        _ => None,
    });
    if let Some((i, code_id, kind)) = em_match {
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
        return out.finish(Decision::Accept, method, Reason::None);
    }
    if let Some(i) = em.iter().position(|v| *v == EmergencyVerdict::Offline) {
        reset_counters(&mut out, p, Some(i));
        return out.finish(Decision::Accept, Method::OfflineCode, Reason::None);
    }
    let used = em.contains(&EmergencyVerdict::Used);
    decide_on_verdicts(ctx, p, &verdicts, used, now, rng, out)
}

fn decide_on_verdicts<R: RngCore + CryptoRng>(
    ctx: &Ctx<'_>,
    p: &mut Principal,
    verdicts: &[Option<TokenVerdict>],
    used_emergency_code: bool,
    now: i64,
    rng: &mut R,
    mut out: Builder<'_>,
) -> Outcome {
    use verify::CodeResult;
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
            if let Some(ea) = &lt.emergency {
                let clear = if ea.active(now) {
                    match ea.rule {
                        AvailableRule::Deny | AvailableRule::AllowAfterExpiry => {
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
                        AvailableRule::AllowAndDisable => true,
                    }
                } else {
                    // Expired: the real token works again and the stale codes go.
                    true
                };
                if clear {
                    out.op(WriteOp::ClearEmergency { token_id });
                    lt.emergency = None;
                }
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

fn start_new_pin<R: RngCore + CryptoRng>(
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

fn continue_challenge<R: RngCore + CryptoRng>(
    ctx: &Ctx<'_>,
    p: &mut Principal,
    ch: &Challenge,
    req: &AuthRequest<'_>,
    now: i64,
    rng: &mut R,
    out: Builder<'_>,
) -> Outcome {
    let Some(idx) = p
        .tokens
        .iter()
        .position(|lt| Some(lt.token.id) == ch.token_id)
    else {
        return failure(ctx, p, out, &[], Reason::BadState, Method::None, now);
    };
    match ch.kind {
        ChallengeKind::NextTokencode => {
            let seen: i64 = ch.data.parse().unwrap_or(i64::MAX);
            let m = p
                .tokens
                .get(idx)
                .and_then(|lt| verify::check_next(lt, req.passcode, seen, now));
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
        ChallengeKind::NewPin => {
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
        ChallengeKind::NewPinConfirm => {
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
        ChallengeKind::NewPinPasscode => {
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
    }
}
