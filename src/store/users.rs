//! Users: creating them, reading and listing them, and the admin lock and unlock. Each admin
//! change appends the user to the change feed. The packet path's failure bookkeeping and
//! lockout are ops of the batch (`WriteOp::SetUserFailures`), not here.

use sqlx::AnyConnection;

use super::changes::note_change;
use super::rows::{self, USER_COLS};
use super::{Store, StoreError};
use crate::model::{User, UserId};

impl Store {
    /// Creates a user; `Conflict` when the name is taken. Appends the new id to the change feed.
    pub async fn create_user(
        &self,
        name: &str,
        domain: &str,
        profile: Option<&str>,
        now: i64,
    ) -> Result<User, StoreError> {
        let mut tx = self.begin_admin().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO users (name, domain, profile, created_at) VALUES ($1, $2, $3, $4) \
             RETURNING {USER_COLS}"
        ))
        .bind(name)
        .bind(domain)
        .bind(profile)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            StoreError::from_write(e, || {
                (format!("user {name:?}"), format!("domain {domain:?}"))
            })
        })?;
        let user = rows::user(&row)?;
        note_change(&mut tx, user.id, now).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// The user with this (normalised) name.
    pub async fn user_by_name(&self, name: &str) -> Result<Option<User>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        user_by_name(&mut conn, name).await
    }

    /// The user with this id.
    pub async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(rows::user)
            .transpose()
    }

    /// All users, ordered by name.
    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        sqlx::query(&format!("SELECT {USER_COLS} FROM users ORDER BY name"))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(rows::user)
            .collect()
    }

    /// Locks (setting `locked_at = now`) or unlocks a user. Unlocking also clears the failure
    /// count, the failure window, `locked_at` and the bad-passcode counts of the user's tokens. `NotFound` when there is no such user.
    /// Appends the user to the change feed.
    pub async fn set_user_locked(
        &self,
        id: UserId,
        locked: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_admin().await?;
        let done = if locked {
            sqlx::query("UPDATE users SET locked = 1, locked_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?
        } else {
            sqlx::query(
                "UPDATE users SET locked = 0, locked_at = NULL, fail_count = 0, \
                 fail_window_start = 0 WHERE id = $1",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?
        };
        if !locked && done.rows_affected() > 0 {
            // The failures that locked the user also counted against its tokens (N-1): left as
            // they were, the first correct passcode after the unlock would be asked for the next
            // tokencode instead of being accepted.
            sqlx::query("UPDATE tokens SET bad_count = 0 WHERE user_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: format!("user {id}"),
            });
        }
        note_change(&mut tx, id, now).await?;
        tx.commit().await?;
        Ok(())
    }
}

pub(super) async fn user_by_name(
    conn: &mut AnyConnection,
    name: &str,
) -> Result<Option<User>, StoreError> {
    if !rows::can_exist(name) {
        return Ok(None);
    }
    sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE name = $1"))
        .bind(name)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(rows::user)
        .transpose()
}
