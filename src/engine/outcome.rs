//! The engine's effect vocabulary: the [`WriteOp`]s that make a decision durable.
//!
//! The engine returns them; the store commits them (guards first, group commit, see
//! `store::batch`); the audit log reads the committed `Audit` ops. The SQL of each op lives in the
//! store, not here: this file only says what must change.

use crate::model::{AuditRecord, Challenge, PinState, TokenId, UserId};

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
