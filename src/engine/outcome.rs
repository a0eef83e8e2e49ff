//! The engine's effect vocabulary: the [`Outcome`] of a request, that is the [`Decision`] to
//! answer, its audit and metrics labels ([`Method`], [`Reason`]) and the [`WriteOp`]s that make it
//! durable, and the `Builder` every rule family collects its ops into.
//!
//! The engine returns the ops; the store commits them (guards first, group commit, see
//! `store::batch`); the audit log reads the committed `Audit` ops. The SQL of each op lives in the
//! store, not here: this file only says what must change.

use crate::model::{AuditRecord, Challenge, ChallengeKind, PinState, TokenId, UserId};

use super::AuthRequest;

/// One write on the packet path. Groups of ops are applied by `Store::apply_batch` (usually
/// through `WriterHandle::submit`).
///
/// **Put guards first.** A guard ([`WriteOp::AdvanceStep`], [`WriteOp::ConsumeChallenge`],
/// [`WriteOp::ConsumeEmergencyCode`]) that changes no row fails the group, and the group's later
/// ops are skipped. Ops *before* a failed guard would otherwise already have been written; so
/// that a group is still all-or-nothing, a group with a guard after a non-guard op is wrapped in
/// a savepoint and rolled back to it, which costs two extra statements. Groups written
/// guards-first never pay that.
///
/// A non-guard op that matches no row (its user or token was deleted meanwhile) changes nothing
/// and does not fail its group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Guard (SPEC R-1 replay compare-and-set):
    /// `UPDATE tokens SET last_step = step, drift = drift WHERE id = token_id AND last_step < step`.
    /// Fails when the token has already accepted this step or a later one (or does not exist).
    AdvanceStep {
        /// The token.
        token_id: TokenId,
        /// The TOTP step or HOTP counter just accepted.
        step: i64,
        /// The drift (in steps) at which the code matched (SPEC D-1).
        drift: i64,
    },
    /// Guard: deletes the challenge session with this State. Single use: fails when the row is
    /// already gone (consumed by a concurrent request or purged).
    ConsumeChallenge {
        /// The State value.
        state: String,
    },
    /// Guard (SPEC E-1, one-time tokencodes work once, across restarts and instances):
    /// `UPDATE emergency_codes SET used_at = <used_at> WHERE id = code_id AND used_at IS NULL`.
    /// Fails when the code was already used (by a concurrent request or another instance), or is
    /// gone (its set was replaced or cleared). Code ids are never reused, so an id read from a
    /// stale cache can never consume a code of a newer set.
    ConsumeEmergencyCode {
        /// The [`crate::model::EmergencyCode`] id.
        code_id: i64,
        /// When it was used.
        used_at: i64,
    },
    /// Guard (SPEC E-1, TFT use): the code still exists, is unused and its access has not
    /// expired at `now`. A TFT is not consumed, but another instance may have cleared or
    /// replaced it (E-4) while this one still had it cached: then the guard fails.
    ConfirmEmergencyCode {
        /// The [`crate::model::EmergencyCode`] id.
        code_id: i64,
        /// The time of use.
        now: i64,
    },
    /// Deletes a token's online emergency access and its codes (SPEC E-4 `allow_and_disable`
    /// after a real-token login, `allow_after_expiry` once the lifetime has ended). Not a guard:
    /// nothing to delete is not a failure.
    ClearEmergency {
        /// The token.
        token_id: TokenId,
    },
    /// Rewrites a token row without changing it (`SET bad_count = bad_count`): the write an
    /// unknown user's request makes so that it costs the database what a wrong passcode's
    /// failure bookkeeping costs (a scattered row page to log and flush), not just an audit
    /// row (SPEC L-4: same answer, same time). Not a guard; a missing row changes nothing.
    TouchToken {
        /// Any token.
        token_id: TokenId,
    },
    /// Sets a token's bad-passcode count (SPEC N-1).
    SetTokenBadCount {
        /// The token.
        token_id: TokenId,
        /// The new count.
        bad_count: u32,
    },
    /// Sets a user's lockout bookkeeping (SPEC L-1, L-2).
    SetUserFailures {
        /// The user.
        user_id: UserId,
        /// Failures in the current window.
        fail_count: u32,
        /// Start of the current window.
        fail_window_start: i64,
        /// Whether the user is now locked.
        locked: bool,
        /// When the lock was set, if locked.
        locked_at: Option<i64>,
    },
    /// Sets a token's PIN (New PIN mode completing, SPEC PIN-1).
    SetPin {
        /// The token.
        token_id: TokenId,
        /// Keyed hash of the new PIN.
        pin_hash: String,
        /// The new PIN state.
        pin_state: PinState,
    },
    /// Stores a new challenge session. A State that already exists is a `Conflict` error.
    InsertChallenge(Challenge),
    /// Appends an audit record.
    Audit(AuditRecord),
}

impl WriteOp {
    /// True for the ops whose "no row changed" fails their group.
    pub fn is_guard(&self) -> bool {
        matches!(
            self,
            WriteOp::AdvanceStep { .. }
                | WriteOp::ConsumeChallenge { .. }
                | WriteOp::ConsumeEmergencyCode { .. }
                | WriteOp::ConfirmEmergencyCode { .. }
        )
    }
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
    /// must not be sent: call [`replay_failure`](super::replay_failure) instead.
    pub ops: Vec<WriteOp>,
    /// Method (audit/metrics).
    pub method: Method,
    /// Reject reason (audit/metrics).
    pub reason: Reason,
    /// This request locked the user (L-1, N-2); metrics count lockouts from it.
    pub locked_out: bool,
}

/// Collects ops in order (guards first) and the audit record.
pub(super) struct Builder<'r> {
    guards: Vec<WriteOp>,
    ops: Vec<WriteOp>,
    req: &'r AuthRequest<'r>,
    pub(super) now: i64,
    pub(super) locked_out: bool,
}

impl<'r> Builder<'r> {
    pub(super) fn new(req: &'r AuthRequest<'r>, now: i64) -> Self {
        Builder {
            guards: Vec::with_capacity(2),
            ops: Vec::with_capacity(4),
            req,
            now,
            locked_out: false,
        }
    }
    pub(super) fn guard(&mut self, op: WriteOp) {
        self.guards.push(op);
    }
    pub(super) fn op(&mut self, op: WriteOp) {
        self.ops.push(op);
    }
    pub(super) fn finish(mut self, decision: Decision, method: Method, reason: Reason) -> Outcome {
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
