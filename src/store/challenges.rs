//! Challenge sessions (the State of a login that takes more than one round): reading one and
//! purging the expired ones. The packet path creates and consumes them with batch ops.

use super::rows::{self, CHALLENGE_COLS};
use super::{Store, StoreError};
use crate::model::Challenge;

impl Store {
    /// The challenge session with this State, expired or not: the engine checks `expires_at`.
    pub async fn challenge(&self, state: &str) -> Result<Option<Challenge>, StoreError> {
        if !rows::can_exist(state) {
            return Ok(None);
        }
        sqlx::query(&format!(
            "SELECT {CHALLENGE_COLS} FROM challenges WHERE state = $1"
        ))
        .bind(state)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(rows::challenge)
        .transpose()
    }

    /// Deletes challenge sessions with `expires_at <= now`; returns how many.
    pub async fn purge_expired_challenges(&self, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM challenges WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
