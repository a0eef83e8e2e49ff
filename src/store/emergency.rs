//! Emergency access (SPEC §6–§8) as the admin sets and reads it: online emergency access with
//! its codes (E-1), offline emergency codes (O-2, O-3, O-4) and fixed passcodes (FP-1). Each
//! admin change appends the user concerned to the change feed. The packet path spends and
//! confirms codes with the batch's guard ops instead.

use sqlx::AnyConnection;

use super::changes::{note_change, note_token_change};
use super::rows::{
    self, EMERGENCY_ACCESS_COLS, EMERGENCY_CODE_COLS, EMERGENCY_JOIN_COLS, FIXED_PASSCODE_COLS,
    OFFLINE_CODE_COLS,
};
use super::{Store, StoreError};
use crate::model::{EmergencyAccess, EmergencyKind, FixedPasscode, OfflineCode, TokenId, UserId};

impl Store {
    /// Issues online emergency access for a token (SPEC E-1): replaces any previous access of
    /// the token, deleting its codes, and stores this one with its codes, in one transaction.
    /// Returns it as stored, with the code ids filled in (in the order given).
    ///
    /// `Invalid` (nothing written) for an access without codes or a TFT with more than one code
    /// (SPEC E-1: a TFT is one code). `NotFound` when the token does not exist. Whether the token
    /// may get emergency access (assigned, not expired) and the lifetime cap (E-2) are the
    /// caller's to check. Appends the token's owner, if any, to the change feed.
    pub async fn issue_emergency(
        &self,
        access: &EmergencyAccess,
        now: i64,
    ) -> Result<EmergencyAccess, StoreError> {
        let token_id = access.token_id;
        if access.codes.is_empty() {
            return Err(StoreError::Invalid {
                what: format!("emergency access for token {token_id} without codes"),
            });
        }
        if access.kind == EmergencyKind::Tft && access.codes.len() != 1 {
            return Err(StoreError::Invalid {
                what: format!(
                    "TFT for token {token_id} with {} codes (a TFT is one code)",
                    access.codes.len()
                ),
            });
        }
        let what = || {
            (
                format!("emergency access of token {token_id}"),
                format!("token {token_id}"),
            )
        };
        let mut tx = self.begin_admin().await?;
        clear_emergency(&mut tx, token_id).await?;
        let row = sqlx::query(&format!(
            "INSERT INTO emergency_access (token_id, mode, kind, rule, expires_at, issued_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {EMERGENCY_ACCESS_COLS}"
        ))
        .bind(token_id)
        .bind(access.mode.as_str())
        .bind(access.kind.as_str())
        .bind(access.rule.as_str())
        .bind(access.expires_at)
        .bind(access.issued_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| StoreError::from_write(e, what))?;
        let mut stored = rows::emergency_access(&row)?;
        stored.codes.reserve(access.codes.len());
        for code in &access.codes {
            // One statement per code, so the ids come back in the order given; sets are small.
            let row = sqlx::query(&format!(
                "INSERT INTO emergency_codes (token_id, code_hash, used_at) VALUES ($1, $2, $3) \
                 RETURNING {EMERGENCY_CODE_COLS}"
            ))
            .bind(token_id)
            .bind(code.code_hash.as_str())
            .bind(code.used_at)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| StoreError::from_write(e, what))?;
            stored.codes.push(rows::emergency_code(&row)?);
        }
        note_token_change(&mut tx, token_id, now).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// The token's online emergency access with its codes (in id order), expired or not: the
    /// engine checks [`EmergencyAccess::active`]. One statement, so the access and its codes are
    /// read from one snapshot.
    pub async fn emergency_of(
        &self,
        token_id: TokenId,
    ) -> Result<Option<EmergencyAccess>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {EMERGENCY_JOIN_COLS} FROM emergency_access a \
             LEFT JOIN emergency_codes c ON c.token_id = a.token_id \
             WHERE a.token_id = $1 ORDER BY a.token_id, c.id"
        ))
        .bind(token_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows::emergency_accesses(&rows)?.into_iter().next())
    }

    /// Deletes the token's online emergency access and its codes; `true` when there was
    /// something to delete (then the token's owner, if any, is appended to the change feed). An
    /// unknown token is not an error: there is nothing to delete.
    pub async fn clear_emergency(&self, token_id: TokenId, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.begin_admin().await?;
        let deleted = clear_emergency(&mut tx, token_id).await? > 0;
        if deleted {
            note_token_change(&mut tx, token_id, now).await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }

    /// Stores an offline emergency code (SPEC O-2, O-3): the tokencode of `code.token_id` or the
    /// passcode of `code.user_id`, replacing that owner's previous code (every field, including
    /// `created_at`). `Invalid` unless exactly one of the two is set; `NotFound` when the owner
    /// does not exist. Appends the user (or the token's owner, if any) to the change feed.
    pub async fn set_offline_code(&self, code: &OfflineCode, now: i64) -> Result<(), StoreError> {
        // `excluded` names the proposed row in both SQLite and PostgreSQL upserts.
        const UPDATE: &str = "code_enc = excluded.code_enc, expires_at = excluded.expires_at, \
             reset = excluded.reset, online = excluded.online, created_at = excluded.created_at";
        let (sql, owner, what) = match (code.token_id, code.user_id) {
            (Some(token_id), None) => (
                format!(
                    "INSERT INTO offline_codes (token_id, user_id, code_enc, expires_at, reset, \
                     online, created_at) VALUES ($1, NULL, $2, $3, $4, $5, $6) \
                     ON CONFLICT (token_id) DO UPDATE SET {UPDATE}"
                ),
                token_id,
                format!("token {token_id}"),
            ),
            (None, Some(user_id)) => (
                format!(
                    "INSERT INTO offline_codes (token_id, user_id, code_enc, expires_at, reset, \
                     online, created_at) VALUES (NULL, $1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (user_id) DO UPDATE SET {UPDATE}"
                ),
                user_id,
                format!("user {user_id}"),
            ),
            (token_id, user_id) => {
                return Err(StoreError::Invalid {
                    what: format!(
                        "offline code owned by token {token_id:?} and user {user_id:?} \
                         (exactly one must be set)"
                    ),
                })
            }
        };
        let mut tx = self.begin_admin().await?;
        sqlx::query(&sql)
            .bind(owner)
            .bind(code.code_enc.as_slice())
            .bind(code.expires_at)
            .bind(rows::flag(code.reset))
            .bind(rows::flag(code.online))
            .bind(code.created_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::from_write(e, || (format!("offline code of {what}"), what)))?;
        match code.token_id {
            Some(token_id) => note_token_change(&mut tx, token_id, now).await?,
            None => note_change(&mut tx, owner, now).await?,
        }
        tx.commit().await?;
        Ok(())
    }

    /// The offline emergency tokencode of a token, expired or not.
    pub async fn offline_code_of_token(
        &self,
        token_id: TokenId,
    ) -> Result<Option<OfflineCode>, StoreError> {
        sqlx::query(&format!(
            "SELECT {OFFLINE_CODE_COLS} FROM offline_codes WHERE token_id = $1"
        ))
        .bind(token_id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(rows::offline_code)
        .transpose()
    }

    /// The offline emergency passcode of a user, expired or not.
    pub async fn offline_code_of_user(
        &self,
        user_id: UserId,
    ) -> Result<Option<OfflineCode>, StoreError> {
        sqlx::query(&format!(
            "SELECT {OFFLINE_CODE_COLS} FROM offline_codes WHERE user_id = $1"
        ))
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(rows::offline_code)
        .transpose()
    }

    /// Sets whether a token's offline emergency tokencode is also accepted online (SPEC O-4).
    /// `NotFound` when the token has no offline code. Appends the token's owner, if any, to the
    /// change feed.
    pub async fn set_offline_online(
        &self,
        token_id: TokenId,
        online: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_admin().await?;
        let done = sqlx::query("UPDATE offline_codes SET online = $2 WHERE token_id = $1")
            .bind(token_id)
            .bind(rows::flag(online))
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: format!("offline code of token {token_id}"),
            });
        }
        note_token_change(&mut tx, token_id, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores a user's fixed passcode settings (SPEC FP-1), replacing any previous ones.
    /// `NotFound` when the user does not exist. Appends the user to the change feed.
    pub async fn set_fixed_passcode(&self, fp: &FixedPasscode, now: i64) -> Result<(), StoreError> {
        let user_id = fp.user_id;
        let mut tx = self.begin_admin().await?;
        sqlx::query(
            "INSERT INTO fixed_passcodes (user_id, allowed, code_hash, expires_at, set_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id) DO UPDATE SET \
             allowed = excluded.allowed, code_hash = excluded.code_hash, \
             expires_at = excluded.expires_at, set_at = excluded.set_at",
        )
        .bind(user_id)
        .bind(rows::flag(fp.allowed))
        .bind(fp.code_hash.as_deref())
        .bind(fp.expires_at)
        .bind(fp.set_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            StoreError::from_write(e, || {
                (
                    format!("fixed passcode of user {user_id}"),
                    format!("user {user_id}"),
                )
            })
        })?;
        note_change(&mut tx, user_id, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A user's fixed passcode settings, expired or not.
    pub async fn fixed_passcode(
        &self,
        user_id: UserId,
    ) -> Result<Option<FixedPasscode>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        fixed_passcode(&mut conn, user_id).await
    }

    /// Deletes a user's fixed passcode settings; `true` when there were some (then the user is
    /// appended to the change feed).
    pub async fn clear_fixed_passcode(
        &self,
        user_id: UserId,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_admin().await?;
        let done = sqlx::query("DELETE FROM fixed_passcodes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let deleted = done.rows_affected() > 0;
        if deleted {
            note_change(&mut tx, user_id, now).await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }
}

/// Deletes a token's emergency access; its codes go with it (`ON DELETE CASCADE` from
/// `emergency_codes` to `emergency_access`, in the same statement). Returns the access rows
/// deleted (0 or 1). Shared by [`WriteOp::ClearEmergency`], [`Store::clear_emergency`] and
/// [`Store::issue_emergency`].
///
/// One statement on purpose: deleting the codes and then the access in two statements could,
/// on PostgreSQL, interleave with a concurrent issue and delete the new access but not its
/// codes, or the new codes but not their access.
///
/// [`WriteOp::ClearEmergency`]: crate::engine::WriteOp::ClearEmergency
pub(super) async fn clear_emergency(
    conn: &mut AnyConnection,
    token_id: TokenId,
) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM emergency_access WHERE token_id = $1")
        .bind(token_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

pub(super) async fn fixed_passcode(
    conn: &mut AnyConnection,
    user_id: UserId,
) -> Result<Option<FixedPasscode>, StoreError> {
    sqlx::query(&format!(
        "SELECT {FIXED_PASSCODE_COLS} FROM fixed_passcodes WHERE user_id = $1"
    ))
    .bind(user_id)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(rows::fixed_passcode)
    .transpose()
}
