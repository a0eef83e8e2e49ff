//! What a login loads: a user with their tokens ([`Store::load_principal`]), or everything the
//! engine needs about them, emergency rows included ([`Store::load_principal_record`]). These
//! are the reads of every first login after a start; the change feed catches an admin change
//! that lands between their statements.

use super::emergency::fixed_passcode;
use super::rows::{self, EMERGENCY_JOIN_COLS, OFFLINE_CODE_COLS, USER_COLS};
use super::tokens::tokens_of_user;
use super::users::user_by_name;
use super::{Store, StoreError};
use crate::model::{PrincipalRecord, Token, TokenId, User};

impl Store {
    /// A user and the tokens assigned to them, or `None` for an unknown name. Two reads on one
    /// connection; an admin change between them is caught by the change feed.
    pub async fn load_principal(
        &self,
        name: &str,
    ) -> Result<Option<(User, Vec<Token>)>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let Some(user) = user_by_name(&mut conn, name).await? else {
            return Ok(None);
        };
        let tokens = tokens_of_user(&mut conn, user.id).await?;
        Ok(Some((user, tokens)))
    }

    /// Everything the engine needs about a user, or `None` for an unknown name: the user, their
    /// tokens (by id), the online emergency access of those tokens (by token id, codes by id),
    /// the offline emergency codes of the user and of those tokens (by id) and the user's fixed
    /// passcode settings. Expired rows are included: the engine judges expiry.
    ///
    /// Reads on one connection, not one snapshot: emergency and offline rows are kept only for
    /// tokens in the returned list, so a token reassigned between the reads never brings
    /// another user's codes along; any admin change between the reads is caught by the change
    /// feed. The user's row comes with whether they have emergency access, offline codes or a
    /// fixed passcode at all, so the usual user (none of these) costs two reads, not five: this
    /// is every first login after a start.
    pub async fn load_principal_record(
        &self,
        name: &str,
    ) -> Result<Option<PrincipalRecord>, StoreError> {
        if !rows::can_exist(name) {
            return Ok(None);
        }
        let mut conn = self.pool.acquire().await?;
        let Some(row) = sqlx::query(&format!(
            "SELECT {USER_COLS}, \
             CASE WHEN EXISTS (SELECT 1 FROM emergency_access a JOIN tokens t \
               ON t.id = a.token_id WHERE t.user_id = users.id) THEN 1 ELSE 0 END \
               AS has_emergency, \
             CASE WHEN EXISTS (SELECT 1 FROM offline_codes o WHERE o.user_id = users.id) \
               OR EXISTS (SELECT 1 FROM offline_codes o JOIN tokens t ON t.id = o.token_id \
               WHERE t.user_id = users.id) THEN 1 ELSE 0 END AS has_offline, \
             CASE WHEN EXISTS (SELECT 1 FROM fixed_passcodes f WHERE f.user_id = users.id) \
               THEN 1 ELSE 0 END AS has_fixed \
             FROM users WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?
        else {
            return Ok(None);
        };
        let user = rows::user(&row)?;
        let has_emergency = rows::get_bool(&row, "users", "has_emergency")?;
        let has_offline = rows::get_bool(&row, "users", "has_offline")?;
        let has_fixed = rows::get_bool(&row, "users", "has_fixed")?;
        let tokens = tokens_of_user(&mut conn, user.id).await?;
        let is_mine = |token_id: TokenId| tokens.iter().any(|t| t.id == token_id);

        let mut emergency = Vec::new();
        if has_emergency {
            let rows = sqlx::query(&format!(
                "SELECT {EMERGENCY_JOIN_COLS} FROM emergency_access a \
                 JOIN tokens t ON t.id = a.token_id \
                 LEFT JOIN emergency_codes c ON c.token_id = a.token_id \
                 WHERE t.user_id = $1 ORDER BY a.token_id, c.id"
            ))
            .bind(user.id)
            .fetch_all(&mut *conn)
            .await?;
            emergency = rows::emergency_accesses(&rows)?;
            emergency.retain(|a| is_mine(a.token_id));
        }

        let mut offline = Vec::new();
        if has_offline {
            offline = sqlx::query(&format!(
                "SELECT {OFFLINE_CODE_COLS} FROM offline_codes \
                 WHERE user_id = $1 OR token_id IN (SELECT id FROM tokens WHERE user_id = $1) \
                 ORDER BY id"
            ))
            .bind(user.id)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(rows::offline_code)
            .collect::<Result<Vec<_>, _>>()?;
            offline.retain(|o| match o.token_id {
                Some(token_id) => is_mine(token_id),
                None => o.user_id == Some(user.id),
            });
        }

        let fixed_passcode = if has_fixed {
            fixed_passcode(&mut conn, user.id).await?
        } else {
            None
        };
        Ok(Some(PrincipalRecord {
            user,
            tokens,
            emergency,
            offline,
            fixed_passcode,
        }))
    }
}
