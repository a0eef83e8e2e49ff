//! Row mapping: database rows to the records of [`crate::model`] and back to bindable values.
//!
//! It owns the column lists and every conversion between SQL integers/text and the model's
//! enums, booleans and narrow integers. Decoding never panics: a value that does not fit becomes
//! [`StoreError::Corrupt`] naming the table, the column and the value. It must not run queries.

use std::borrow::Cow;

use sqlx::any::AnyRow;
use sqlx::{Any, Decode, Row, Type};

use super::StoreError;
use crate::model::{
    AuditRecord, AvailableRule, Challenge, ChallengeKind, EmergencyAccess, EmergencyCode,
    EmergencyKind, EmergencyMode, FixedPasscode, HashAlgorithm, OfflineCode, OtpMode, PinState,
    Token, TokenKind, User,
};

/// Columns of `users`, in the order [`user`] reads them.
pub(crate) const USER_COLS: &str =
    "id, name, domain, locked, locked_at, fail_count, fail_window_start, profile, created_at";

/// Columns of `tokens`, in the order [`token`] reads them.
pub(crate) const TOKEN_COLS: &str = "id, serial, user_id, kind, algorithm, digits, period, \
     seed_enc, expires_at, pin_hash, pin_state, drift, last_step, bad_count, enabled, created_at";

/// Columns of `challenges`, in the order [`challenge`] reads them.
pub(crate) const CHALLENGE_COLS: &str =
    "state, user_id, token_id, kind, data, created_at, expires_at";

/// Columns of `audit` (without `id`), in the order [`audit`] reads them.
pub(crate) const AUDIT_COLS: &str =
    "at, actor, user_name, client, protocol, method, result, reason";

/// Columns of `emergency_access` joined (`a`) with its `emergency_codes` (`c`, a `LEFT JOIN`, so
/// the code columns are NULL for an access without codes), in the order [`emergency_accesses`]
/// reads them. Queries using it must order by `a.token_id, c.id`.
pub(crate) const EMERGENCY_JOIN_COLS: &str = "a.token_id, a.mode, a.kind, a.rule, a.expires_at, \
     a.issued_at, c.id AS code_id, c.code_hash, c.used_at";

/// Columns of `emergency_access`, in the order [`emergency_access`] reads them.
pub(crate) const EMERGENCY_ACCESS_COLS: &str = "token_id, mode, kind, rule, expires_at, issued_at";

/// Columns of `emergency_codes` (id renamed `code_id`), in the order [`emergency_code`] reads
/// them.
pub(crate) const EMERGENCY_CODE_COLS: &str = "id AS code_id, code_hash, used_at";

/// Columns of `offline_codes` (without `id`), in the order [`offline_code`] reads them.
pub(crate) const OFFLINE_CODE_COLS: &str =
    "token_id, user_id, code_enc, expires_at, reset, online, created_at";

/// Columns of `fixed_passcodes`, in the order [`fixed_passcode`] reads them.
pub(crate) const FIXED_PASSCODE_COLS: &str = "user_id, allowed, code_hash, expires_at, set_at";

/// Reads one column, turning any decoding failure into `Corrupt`.
pub(crate) fn get<'r, T>(row: &'r AnyRow, table: &str, col: &str) -> Result<T, StoreError>
where
    T: Decode<'r, Any> + Type<Any>,
{
    row.try_get::<T, _>(col).map_err(|e| StoreError::Corrupt {
        what: format!("{table}.{col}: {e}"),
    })
}

fn corrupt(table: &str, col: &str, value: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what: format!("{table}.{col}: unexpected value {value}"),
    }
}

/// A 0/1 integer column as a boolean; anything else is corrupt.
pub(crate) fn get_bool(row: &AnyRow, table: &str, col: &str) -> Result<bool, StoreError> {
    match get::<i64>(row, table, col)? {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(corrupt(table, col, other)),
    }
}

/// An integer column that must fit the narrower type `T`.
fn get_narrow<T: TryFrom<i64>>(row: &AnyRow, table: &str, col: &str) -> Result<T, StoreError> {
    let wide = get::<i64>(row, table, col)?;
    T::try_from(wide).map_err(|_| corrupt(table, col, wide))
}

/// A text column holding an enum spelling.
fn get_enum<T>(
    row: &AnyRow,
    table: &str,
    col: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T, StoreError> {
    let text = get::<String>(row, table, col)?;
    parse(&text).ok_or_else(|| corrupt(table, col, format!("{text:?}")))
}

/// Maps a `users` row selected with [`USER_COLS`].
pub(crate) fn user(row: &AnyRow) -> Result<User, StoreError> {
    const T: &str = "users";
    Ok(User {
        id: get(row, T, "id")?,
        name: get(row, T, "name")?,
        domain: get(row, T, "domain")?,
        locked: get_bool(row, T, "locked")?,
        locked_at: get(row, T, "locked_at")?,
        fail_count: get_narrow(row, T, "fail_count")?,
        fail_window_start: get(row, T, "fail_window_start")?,
        profile: get(row, T, "profile")?,
        created_at: get(row, T, "created_at")?,
    })
}

/// Maps a `tokens` row selected with [`TOKEN_COLS`].
pub(crate) fn token(row: &AnyRow) -> Result<Token, StoreError> {
    const T: &str = "tokens";
    let period: i64 = get(row, T, "period")?;
    let mode = match period {
        0 => OtpMode::Hotp,
        p => OtpMode::Totp {
            period: u32::try_from(p).map_err(|_| corrupt(T, "period", p))?,
        },
    };
    Ok(Token {
        id: get(row, T, "id")?,
        serial: get(row, T, "serial")?,
        user_id: get(row, T, "user_id")?,
        kind: get_enum(row, T, "kind", TokenKind::parse)?,
        algorithm: get_enum(row, T, "algorithm", HashAlgorithm::parse)?,
        digits: get_narrow(row, T, "digits")?,
        mode,
        seed_enc: get(row, T, "seed_enc")?,
        expires_at: get(row, T, "expires_at")?,
        pin_hash: get(row, T, "pin_hash")?,
        pin_state: get_enum(row, T, "pin_state", PinState::parse)?,
        drift: get(row, T, "drift")?,
        last_step: get(row, T, "last_step")?,
        bad_count: get_narrow(row, T, "bad_count")?,
        enabled: get_bool(row, T, "enabled")?,
        created_at: get(row, T, "created_at")?,
    })
}

/// Maps a `challenges` row selected with [`CHALLENGE_COLS`].
pub(crate) fn challenge(row: &AnyRow) -> Result<Challenge, StoreError> {
    const T: &str = "challenges";
    Ok(Challenge {
        state: get(row, T, "state")?,
        user_id: get(row, T, "user_id")?,
        token_id: get(row, T, "token_id")?,
        kind: get_enum(row, T, "kind", ChallengeKind::parse)?,
        data: get(row, T, "data")?,
        created_at: get(row, T, "created_at")?,
        expires_at: get(row, T, "expires_at")?,
    })
}

/// Maps an `audit` row selected with [`AUDIT_COLS`].
pub(crate) fn audit(row: &AnyRow) -> Result<AuditRecord, StoreError> {
    const T: &str = "audit";
    Ok(AuditRecord {
        at: get(row, T, "at")?,
        actor: get(row, T, "actor")?,
        user_name: get(row, T, "user_name")?,
        client: get(row, T, "client")?,
        protocol: get(row, T, "protocol")?,
        method: get(row, T, "method")?,
        result: get(row, T, "result")?,
        reason: get(row, T, "reason")?,
    })
}

/// Maps an `emergency_access` row selected with [`EMERGENCY_ACCESS_COLS`] (or the access part of
/// [`EMERGENCY_JOIN_COLS`]), without its codes.
pub(crate) fn emergency_access(row: &AnyRow) -> Result<EmergencyAccess, StoreError> {
    const T: &str = "emergency_access";
    Ok(EmergencyAccess {
        token_id: get(row, T, "token_id")?,
        mode: get_enum(row, T, "mode", EmergencyMode::parse)?,
        kind: get_enum(row, T, "kind", EmergencyKind::parse)?,
        rule: get_enum(row, T, "rule", AvailableRule::parse)?,
        expires_at: get(row, T, "expires_at")?,
        issued_at: get(row, T, "issued_at")?,
        codes: Vec::new(),
    })
}

/// Maps an `emergency_codes` row selected with [`EMERGENCY_CODE_COLS`] (or the code part of
/// [`EMERGENCY_JOIN_COLS`]).
pub(crate) fn emergency_code(row: &AnyRow) -> Result<EmergencyCode, StoreError> {
    const T: &str = "emergency_codes";
    Ok(EmergencyCode {
        id: get(row, T, "code_id")?,
        code_hash: get(row, T, "code_hash")?,
        used_at: get(row, T, "used_at")?,
    })
}

/// Maps the rows of a query selecting [`EMERGENCY_JOIN_COLS`] ordered by `a.token_id, c.id`:
/// one [`EmergencyAccess`] per token, its codes in id order. An access row without codes (NULL
/// code columns) yields an access with no codes.
pub(crate) fn emergency_accesses(rows: &[AnyRow]) -> Result<Vec<EmergencyAccess>, StoreError> {
    let mut out: Vec<EmergencyAccess> = Vec::new();
    for row in rows {
        let token_id: i64 = get(row, "emergency_access", "token_id")?;
        if !matches!(out.last(), Some(last) if last.token_id == token_id) {
            out.push(emergency_access(row)?);
        }
        let code_id: Option<i64> = get(row, "emergency_codes", "code_id")?;
        if code_id.is_some() {
            let code = emergency_code(row)?;
            if let Some(access) = out.last_mut() {
                access.codes.push(code);
            }
        }
    }
    Ok(out)
}

/// Maps an `offline_codes` row selected with [`OFFLINE_CODE_COLS`]. A row owned by both a token
/// and a user, or by neither, is corrupt (the schema's CHECK should make that impossible).
pub(crate) fn offline_code(row: &AnyRow) -> Result<OfflineCode, StoreError> {
    const T: &str = "offline_codes";
    let token_id: Option<i64> = get(row, T, "token_id")?;
    let user_id: Option<i64> = get(row, T, "user_id")?;
    if token_id.is_some() == user_id.is_some() {
        return Err(corrupt(
            T,
            "token_id/user_id",
            format!("{token_id:?}/{user_id:?} (exactly one must be set)"),
        ));
    }
    Ok(OfflineCode {
        token_id,
        user_id,
        code_enc: get(row, T, "code_enc")?,
        expires_at: get(row, T, "expires_at")?,
        reset: get_bool(row, T, "reset")?,
        online: get_bool(row, T, "online")?,
        created_at: get(row, T, "created_at")?,
    })
}

/// Maps a `fixed_passcodes` row selected with [`FIXED_PASSCODE_COLS`].
pub(crate) fn fixed_passcode(row: &AnyRow) -> Result<FixedPasscode, StoreError> {
    const T: &str = "fixed_passcodes";
    Ok(FixedPasscode {
        user_id: get(row, T, "user_id")?,
        allowed: get_bool(row, T, "allowed")?,
        code_hash: get(row, T, "code_hash")?,
        expires_at: get(row, T, "expires_at")?,
        set_at: get(row, T, "set_at")?,
    })
}

/// The `period` column for a mode: the TOTP step, or 0 for HOTP. A TOTP step of 0 cannot be
/// stored (it would read back as HOTP).
pub(crate) fn period_of(mode: OtpMode) -> Result<i64, StoreError> {
    match mode {
        OtpMode::Hotp => Ok(0),
        OtpMode::Totp { period: 0 } => Err(StoreError::Invalid {
            what: "TOTP step of 0 seconds".to_owned(),
        }),
        OtpMode::Totp { period } => Ok(i64::from(period)),
    }
}

/// A boolean as the 0/1 integer the schema stores.
pub(crate) fn flag(b: bool) -> i64 {
    i64::from(b)
}

/// Text as the audit log stores it. PostgreSQL cannot hold a NUL character in a text column
/// (the statement would fail, and with it the request's answer), so a NUL that a NAS sent in a
/// user name or an accounting attribute becomes U+FFFD, on both databases alike.
pub(crate) fn audit_text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// Whether a user name or State looked up for a request can exist at all: none holds a NUL
/// (admin input refuses control characters, States are generated), and PostgreSQL would fail
/// the lookup instead of finding nothing.
pub(crate) fn can_exist(key: &str) -> bool {
    !key.contains('\0')
}
