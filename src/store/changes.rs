//! The change feed: admin transactions append the users they touch ([`note_change`],
//! [`note_token_change`]), and running gateways poll [`Store::changes_since`] to invalidate their
//! in-memory copies of user and token state. Also the table maxima a cold cache starts from.

use sqlx::{AnyConnection, Row};

use super::{Store, StoreError};
use crate::model::{TokenId, UserId};

/// The most rows one [`Store::changes_since`] call returns.
pub const CHANGES_PAGE: i64 = 10_000;

impl Store {
    /// Change-feed entries after `seq`, ascending, at most [`CHANGES_PAGE`]: `(seq, user id)`.
    /// A user may appear several times. Call again from the last `seq` while a full page comes
    /// back.
    pub async fn changes_since(&self, seq: i64) -> Result<Vec<(i64, UserId)>, StoreError> {
        sqlx::query("SELECT seq, user_id FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(seq)
            .bind(CHANGES_PAGE)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                let seq = row.try_get::<i64, _>("seq");
                let user = row.try_get::<i64, _>("user_id");
                match (seq, user) {
                    (Ok(seq), Ok(user)) => Ok((seq, user)),
                    (Err(e), _) | (_, Err(e)) => Err(StoreError::Corrupt {
                        what: format!("changes: {e}"),
                    }),
                }
            })
            .collect()
    }

    /// The highest token id present, 0 without tokens (the range an unknown user's
    /// [`WriteOp::TouchToken`](crate::engine::WriteOp::TouchToken) picks from).
    pub async fn max_token_id(&self) -> Result<TokenId, StoreError> {
        self.max_of("SELECT MAX(id) AS latest FROM tokens", "tokens.id")
            .await
    }

    /// Runs a `SELECT MAX(…) AS latest` query; 0 when it finds no rows.
    async fn max_of(&self, sql: &'static str, what: &str) -> Result<i64, StoreError> {
        let row = sqlx::query(sql).fetch_one(&self.pool).await?;
        let latest: Option<i64> = row.try_get("latest").map_err(|e| StoreError::Corrupt {
            what: format!("{what}: {e}"),
        })?;
        Ok(latest.unwrap_or(0))
    }

    /// The highest change-feed `seq` present, 0 when the feed is empty. A gateway starting with
    /// a cold cache begins polling from here.
    pub async fn latest_change(&self) -> Result<i64, StoreError> {
        self.max_of("SELECT MAX(seq) AS latest FROM changes", "changes.seq")
            .await
    }

    /// Deletes change-feed entries with `at < at`; returns how many. `seq` numbers are never
    /// reused afterwards (AUTOINCREMENT / identity), so pollers' cursors stay valid.
    pub async fn purge_changes_before(&self, at: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM changes WHERE at < $1")
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

/// Appends one change-feed entry inside an admin transaction.
pub(super) async fn note_change(
    conn: &mut AnyConnection,
    user_id: UserId,
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO changes (user_id, at) VALUES ($1, $2)")
        .bind(user_id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Appends the owner of a token, if it has one, to the change feed inside an admin transaction.
pub(super) async fn note_token_change(
    conn: &mut AnyConnection,
    token_id: TokenId,
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO changes (user_id, at) \
         SELECT user_id, $2 FROM tokens WHERE id = $1 AND user_id IS NOT NULL",
    )
    .bind(token_id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}
