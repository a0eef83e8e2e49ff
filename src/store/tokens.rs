//! Tokens: creating them one at a time or in bulk with their users (provisioning), reading
//! them, and the admin changes of one token: assignment, PIN, resynchronisation. Each admin
//! change appends the token's owner to the change feed.

use sqlx::{Any, AnyConnection, Row, Transaction};

use super::changes::{note_change, note_token_change};
use super::rows::{self, TOKEN_COLS, USER_COLS};
use super::{values_list, Store, StoreError};
use crate::model::{HashAlgorithm, OtpMode, PinState, Token, TokenId, TokenKind, User, UserId};

/// A token to create with [`Store::create_token`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    /// Serial number (unique).
    pub serial: String,
    /// Owner, if assigned at creation.
    pub user_id: Option<UserId>,
    /// PIN token or app token.
    pub kind: TokenKind,
    /// HMAC algorithm.
    pub algorithm: HashAlgorithm,
    /// Code length.
    pub digits: u8,
    /// TOTP (step > 0) or HOTP.
    pub mode: OtpMode,
    /// Seed, already encrypted under the master key.
    pub seed_enc: Vec<u8>,
    /// Expiry, if any.
    pub expires_at: Option<i64>,
    /// Keyed hash of the PIN, if one is set.
    pub pin_hash: Option<String>,
    /// Initial PIN state.
    pub pin_state: PinState,
}

/// A user and their first token, for [`Store::create_users_with_tokens`] (bulk provisioning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUserWithToken {
    /// Normalised login name (unique).
    pub name: String,
    /// Security domain.
    pub domain: String,
    /// Reply profile, if any.
    pub profile: Option<String>,
    /// The token; its `user_id` is ignored (the new user owns it).
    pub token: NewToken,
}

/// Rows a caller of [`Store::create_users_with_tokens`] should pass per call (one transaction).
pub const BULK_CHUNK: usize = 5_000;

/// Rows per multi-row `INSERT` in bulk provisioning. Far below SQLite's 32,766 and PostgreSQL's
/// 65,535 bind parameters per statement. With `$N` placeholders sqlx's SQLite driver looked
/// each one up with `sqlite3_bind_parameter_name`, so binding grew with the square of the
/// parameter count (at 1,000 rows it took 77 % of `populate`'s CPU); SQLite now gets `?`
/// placeholders ([`values_list`]) and this size is kept because larger ones bought nothing.
const BULK_ROWS_PER_STATEMENT: usize = 100;

impl Store {
    /// Creates a token; `Conflict` when the serial is taken, `NotFound` when the owner does not
    /// exist, `Invalid` for a TOTP step of 0. Appends the owner, if any, to the change feed.
    pub async fn create_token(&self, t: &NewToken, now: i64) -> Result<Token, StoreError> {
        let period = rows::period_of(t.mode)?;
        let mut tx = self.begin_admin().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO tokens (serial, user_id, kind, algorithm, digits, period, seed_enc, \
             expires_at, pin_hash, pin_state, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {TOKEN_COLS}"
        ))
        .bind(t.serial.as_str())
        .bind(t.user_id)
        .bind(t.kind.as_str())
        .bind(t.algorithm.as_str())
        .bind(i64::from(t.digits))
        .bind(period)
        .bind(t.seed_enc.as_slice())
        .bind(t.expires_at)
        .bind(t.pin_hash.as_deref())
        .bind(t.pin_state.as_str())
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            StoreError::from_write(e, || {
                (
                    format!("token {:?}", t.serial),
                    format!("user {}", t.user_id.unwrap_or_default()),
                )
            })
        })?;
        let token = rows::token(&row)?;
        if let Some(owner) = token.user_id {
            note_change(&mut tx, owner, now).await?;
        }
        tx.commit().await?;
        Ok(token)
    }

    /// Bulk provisioning: creates every user with its token in ONE transaction, with multi-row
    /// `INSERT`s of up to 100 rows, and appends every new user to the change feed (so a
    /// running gateway that remembered one of the names as unknown forgets that). Meant for
    /// load tests and migrations; pass at most [`BULK_CHUNK`] entries per call to keep each
    /// transaction short. All or nothing: `Conflict` (nothing written) when a name or serial is
    /// taken, also within the batch; `Invalid` for a TOTP step of 0. Returns the users created,
    /// in the order given.
    pub async fn create_users_with_tokens(
        &self,
        batch: &[NewUserWithToken],
        now: i64,
    ) -> Result<Vec<User>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let periods = batch
            .iter()
            .map(|b| rows::period_of(b.token.mode))
            .collect::<Result<Vec<_>, _>>()?;
        let conflict = || {
            (
                format!(
                    "a user name or token serial of the batch starting with {:?}",
                    batch.first().map(|b| b.name.as_str()).unwrap_or_default()
                ),
                "a user of the batch".to_owned(),
            )
        };
        let mut tx = self.begin_admin().await?;
        let mut by_name = std::collections::HashMap::with_capacity(batch.len());
        for chunk in batch.chunks(BULK_ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO users (name, domain, profile, created_at) VALUES {} \
                 RETURNING {USER_COLS}",
                values_list(chunk.len(), 4, self.backend())
            );
            let mut q = sqlx::query(&sql);
            for b in chunk {
                q = q
                    .bind(b.name.as_str())
                    .bind(b.domain.as_str())
                    .bind(b.profile.as_deref())
                    .bind(now);
            }
            // RETURNING gives no row order guarantee on SQLite: match users by name.
            for row in q
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| StoreError::from_write(e, conflict))?
            {
                let user = rows::user(&row)?;
                by_name.insert(user.name.clone(), user);
            }
        }
        let users = batch
            .iter()
            .map(|b| {
                by_name.remove(&b.name).ok_or_else(|| StoreError::Corrupt {
                    what: format!("bulk insert returned no row for user {:?}", b.name),
                })
            })
            .collect::<Result<Vec<User>, _>>()?;
        for (i, chunk) in batch.chunks(BULK_ROWS_PER_STATEMENT).enumerate() {
            let sql = format!(
                "INSERT INTO tokens (serial, user_id, kind, algorithm, digits, period, seed_enc, \
                 expires_at, pin_hash, pin_state, created_at) VALUES {}",
                values_list(chunk.len(), 11, self.backend())
            );
            let mut q = sqlx::query(&sql);
            let first = i * BULK_ROWS_PER_STATEMENT;
            for (j, b) in chunk.iter().enumerate() {
                let t = &b.token;
                q = q
                    .bind(t.serial.as_str())
                    .bind(users[first + j].id)
                    .bind(t.kind.as_str())
                    .bind(t.algorithm.as_str())
                    .bind(i64::from(t.digits))
                    .bind(periods[first + j])
                    .bind(t.seed_enc.as_slice())
                    .bind(t.expires_at)
                    .bind(t.pin_hash.as_deref())
                    .bind(t.pin_state.as_str())
                    .bind(now);
            }
            q.execute(&mut *tx)
                .await
                .map_err(|e| StoreError::from_write(e, conflict))?;
        }
        for chunk in users.chunks(BULK_ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO changes (user_id, at) VALUES {}",
                values_list(chunk.len(), 2, self.backend())
            );
            let mut q = sqlx::query(&sql);
            for u in chunk {
                q = q.bind(u.id).bind(now);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(users)
    }

    /// The token with this serial.
    pub async fn token_by_serial(&self, serial: &str) -> Result<Option<Token>, StoreError> {
        sqlx::query(&format!(
            "SELECT {TOKEN_COLS} FROM tokens WHERE serial = $1"
        ))
        .bind(serial)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(rows::token)
        .transpose()
    }

    /// The tokens assigned to a user, ordered by id.
    pub async fn tokens_of_user(&self, user_id: UserId) -> Result<Vec<Token>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        tokens_of_user(&mut conn, user_id).await
    }

    /// All tokens, ordered by id.
    pub async fn list_tokens(&self) -> Result<Vec<Token>, StoreError> {
        sqlx::query(&format!("SELECT {TOKEN_COLS} FROM tokens ORDER BY id"))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(rows::token)
            .collect()
    }

    /// Assigns a token to a user, or unassigns it with `None`. `NotFound` when the token or the
    /// new owner does not exist. Appends both the old and the new owner to the change feed.
    pub async fn assign_token(
        &self,
        token_id: TokenId,
        user_id: Option<UserId>,
    ) -> Result<(), StoreError> {
        let now = crate::clock::unix_now();
        let mut tx = self.begin_admin().await?;
        // Admin transactions are serialised (see `begin_admin`) and the packet path never
        // changes an owner, so the owner read here is still current when the update runs.
        let old = sqlx::query("SELECT user_id FROM tokens WHERE id = $1")
            .bind(token_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: format!("token {token_id}"),
            })?;
        let old: Option<UserId> = old.try_get("user_id").map_err(|e| StoreError::Corrupt {
            what: format!("tokens.user_id: {e}"),
        })?;
        sqlx::query("UPDATE tokens SET user_id = $2 WHERE id = $1")
            .bind(token_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                StoreError::from_write(e, || {
                    (
                        format!("token {token_id}"),
                        format!("user {}", user_id.unwrap_or_default()),
                    )
                })
            })?;
        if let Some(old) = old {
            note_change(&mut tx, old, now).await?;
        }
        if let Some(new) = user_id.filter(|new| Some(*new) != old) {
            note_change(&mut tx, new, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Admin PIN change or reset: sets the PIN hash (or clears it) and the PIN state.
    /// `NotFound` when there is no such token. Appends the owner to the change feed.
    pub async fn set_pin(
        &self,
        token_id: TokenId,
        pin_hash: Option<&str>,
        state: PinState,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_admin().await?;
        let done = sqlx::query("UPDATE tokens SET pin_hash = $2, pin_state = $3 WHERE id = $1")
            .bind(token_id)
            .bind(pin_hash)
            .bind(state.as_str())
            .execute(&mut *tx)
            .await?;
        finish_token_change(tx, token_id, done.rows_affected()).await
    }

    /// Admin resynchronisation (SPEC D-2): sets the last accepted step or counter and the drift
    /// found, and clears the bad-passcode count. The store sets what it is given, even a step
    /// lower than the stored one: the engine decides whether that is allowed. `NotFound` when
    /// there is no such token. Appends the owner to the change feed.
    pub async fn set_sync(
        &self,
        token_id: TokenId,
        last_step: i64,
        drift: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_admin().await?;
        let done = sqlx::query(
            "UPDATE tokens SET last_step = $2, drift = $3, bad_count = 0 WHERE id = $1",
        )
        .bind(token_id)
        .bind(last_step)
        .bind(drift)
        .execute(&mut *tx)
        .await?;
        finish_token_change(tx, token_id, done.rows_affected()).await
    }
}

/// Ends an admin update of one token: `NotFound` (rolling back) when no row matched, otherwise
/// appends the token's owner, if any, to the change feed and commits.
async fn finish_token_change(
    mut tx: Transaction<'static, Any>,
    token_id: TokenId,
    rows_affected: u64,
) -> Result<(), StoreError> {
    if rows_affected == 0 {
        return Err(StoreError::NotFound {
            what: format!("token {token_id}"),
        });
    }
    note_token_change(&mut tx, token_id, crate::clock::unix_now()).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn tokens_of_user(
    conn: &mut AnyConnection,
    user_id: UserId,
) -> Result<Vec<Token>, StoreError> {
    sqlx::query(&format!(
        "SELECT {TOKEN_COLS} FROM tokens WHERE user_id = $1 ORDER BY id"
    ))
    .bind(user_id)
    .fetch_all(conn)
    .await?
    .iter()
    .map(rows::token)
    .collect()
}
