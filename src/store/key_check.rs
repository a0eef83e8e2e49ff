//! The master key's check value (`key_check`, one row), what a database holds that a key must
//! open, the gateways' instance lease on PostgreSQL, and the one transaction of `key rotate`
//! that re-encrypts every sealed blob and replaces the check value.
//!
//! The store never sees a key: it keeps the check value and the sealed pepper it is handed, and
//! re-encrypts through a closure its caller supplies. Whether a key file matches, may be adopted
//! or may be created is decided above it (`server::master_key`, `admin::master_key`).

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Connection, Row};

use super::batch;
use super::rows;
use super::{values_list, Backend, Store, StoreError};
use crate::model::{AuditRecord, TokenId, UserId};

/// The recorded check value of the database's master key.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyCheck {
    /// HMAC-SHA-256 of a fixed label under a key derived from the master key, 64 hex digits.
    pub check_value: String,
    /// The pepper key carried over the last rotation, sealed under the current master key;
    /// `None` until a first rotation.
    pub pepper_wrapped: Option<Vec<u8>>,
    /// When the current key was recorded (first start or rotation), Unix seconds.
    pub set_at: i64,
    /// When the key was last rotated.
    pub rotated_at: Option<i64>,
}

impl std::fmt::Debug for KeyCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCheck")
            .field("check_value", &self.check_value)
            .field(
                "pepper_wrapped",
                &self.pepper_wrapped.as_ref().map(|_| ".."),
            )
            .field("set_at", &self.set_at)
            .field("rotated_at", &self.rotated_at)
            .finish()
    }
}

/// Whose secret a sealed blob is: that decides the AEAD associated data it is bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SealedOwner {
    /// A token's seed (`tokens.seed_enc`, bound to the serial).
    TokenSeed {
        /// The token's serial.
        serial: String,
    },
    /// An offline emergency code (`offline_codes.code_enc`), of a token or of a user.
    OfflineCode {
        /// The owning token, for an offline tokencode.
        token_id: Option<TokenId>,
        /// The owning user, for an offline passcode.
        user_id: Option<UserId>,
    },
}

/// One blob encrypted under the master key, as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Whose it is.
    pub owner: SealedOwner,
    /// The AEAD blob.
    pub blob: Vec<u8>,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed")
            .field("owner", &self.owner)
            .field("blob_len", &self.blob.len())
            .finish()
    }
}

/// What [`Store::rekey`] writes besides the re-encrypted blobs.
#[derive(Debug)]
pub struct Rekey<'a> {
    /// The check value the database must still hold (the one the caller verified its current
    /// key against); anything else aborts the rotation.
    pub expected_check: &'a str,
    /// The new key's check value.
    pub new_check: &'a str,
    /// The pepper key sealed under the new key.
    pub pepper_wrapped: &'a [u8],
    /// The audit record of the rotation (its `at` is the rotation's time).
    pub audit: &'a AuditRecord,
}

/// How many blobs [`Store::rekey`] re-encrypted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rekeyed {
    /// Token seeds.
    pub seeds: u64,
    /// Offline emergency codes.
    pub offline_codes: u64,
}

/// A running gateway's shared hold on a PostgreSQL database (a session-level advisory lock on a
/// connection of its own), so `key rotate` can see that gateways are running. Released by
/// [`InstanceLease::release`], or when the process ends and the server closes the session.
#[derive(Debug)]
pub struct InstanceLease {
    conn: Option<AnyConnection>,
}

impl InstanceLease {
    /// Gives the lock up: unlocks it explicitly, then closes the connection. Closing alone is not
    /// enough for whoever comes next: the server ends the session (and frees its locks) some
    /// time after the client's Terminate, so a rotation started right after could still find
    /// the lock held.
    pub async fn release(mut self) {
        if let Some(mut conn) = self.conn.take() {
            let _ = sqlx::query("SELECT pg_advisory_unlock_shared($1)")
                .bind(INSTANCE_LOCK_KEY)
                .execute(&mut conn)
                .await;
            let _ = conn.close().await;
        }
    }
}

/// The advisory lock key of the instance lease and the rotation ("tokengat" in ASCII).
const INSTANCE_LOCK_KEY: i64 = 0x746f_6b65_6e67_6174;

/// Rows fetched per page while re-encrypting.
const REKEY_PAGE: i64 = 1_000;

/// Rows per multi-row `UPDATE` while re-encrypting.
const REKEY_ROWS_PER_STATEMENT: usize = 100;

impl Store {
    /// The recorded check value, `None` before the first start of a key-checking gateway.
    pub async fn key_check(&self) -> Result<Option<KeyCheck>, StoreError> {
        let row = sqlx::query(
            "SELECT check_value, pepper_wrapped, set_at, rotated_at FROM key_check WHERE id = 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(KeyCheck {
                check_value: rows::get(&row, "key_check", "check_value")?,
                pepper_wrapped: rows::get(&row, "key_check", "pepper_wrapped")?,
                set_at: rows::get(&row, "key_check", "set_at")?,
                rotated_at: rows::get(&row, "key_check", "rotated_at")?,
            })
        })
        .transpose()
    }

    /// Records the check value unless one is recorded already; true when this call recorded it.
    /// Two instances starting at once both call it; exactly one wins, and the other reads the
    /// winner's value back with [`Store::key_check`].
    pub async fn record_key_check(&self, check_value: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO key_check (id, check_value, set_at) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(check_value)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether the database holds any user or token (every other secret-bearing row belongs
    /// to one). A missing key file must then not be replaced by a new key.
    pub async fn holds_users_or_tokens(&self) -> Result<bool, StoreError> {
        for sql in [
            "SELECT id FROM users LIMIT 1",
            "SELECT id FROM tokens LIMIT 1",
        ] {
            if sqlx::query(sql).fetch_optional(&self.pool).await?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether any fixed passcode hash is stored (a keyed hash that a key can only be tested
    /// against with its plaintext).
    pub async fn holds_fixed_passcode_hashes(&self) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("SELECT user_id FROM fixed_passcodes WHERE code_hash IS NOT NULL LIMIT 1")
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    /// Up to `limit` sealed blobs to test a key against: token seeds first, then offline codes,
    /// each in id order.
    pub async fn sealed_sample(&self, limit: i64) -> Result<Vec<Sealed>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut out = token_seeds_after(&mut conn, 0, limit).await?;
        let rest = limit.saturating_sub(i64::try_from(out.len()).unwrap_or(i64::MAX));
        if rest > 0 {
            out.extend(offline_codes_after(&mut conn, 0, rest).await?);
        }
        Ok(out.into_iter().map(|(_, s)| s).collect())
    }

    /// Takes a running gateway's [`InstanceLease`] (PostgreSQL; `None` on SQLite, where the key
    /// file's lock does the job). Fails with [`StoreError::InUse`] while a rotation runs.
    pub async fn instance_lease(&self) -> Result<Option<InstanceLease>, StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        // Detached: the session (and its lock) must outlive any pool recycling, and the pool
        // opens a replacement connection.
        let mut conn = self.pool.acquire().await?.detach();
        let got = advisory(
            &mut conn,
            "SELECT (CASE WHEN pg_try_advisory_lock_shared($1) THEN 1 ELSE 0 END)::BIGINT",
        )
        .await?;
        if !got {
            let _ = conn.close().await;
            return Err(StoreError::InUse {
                what: "a `tokengate key rotate` is running on this database; start again once it \
                       has finished, with the new key file"
                    .into(),
            });
        }
        Ok(Some(InstanceLease { conn: Some(conn) }))
    }

    /// `key rotate`'s transaction: checks that the database still records `plan.expected_check`
    /// (and, on PostgreSQL, that no gateway holds an [`InstanceLease`]), re-encrypts every token
    /// seed and offline code with `reseal` (blob under the old key → blob under the new one; an
    /// `Err` aborts with [`StoreError::Invalid`] and changes nothing), records the new check value
    /// and sealed pepper, and writes the audit record. All of it commits together or not at all.
    pub async fn rekey(
        &self,
        plan: &Rekey<'_>,
        mut reseal: impl FnMut(&Sealed) -> Result<Vec<u8>, String>,
    ) -> Result<Rekeyed, StoreError> {
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            let got = advisory(
                &mut tx,
                "SELECT (CASE WHEN pg_try_advisory_xact_lock($1) THEN 1 ELSE 0 END)::BIGINT",
            )
            .await?;
            if !got {
                return Err(StoreError::InUse {
                    what: "a gateway is running on this database (it holds the instance lock); \
                           stop every gateway before rotating the key"
                        .into(),
                });
            }
            // No admin write may slip a row in under the old key while the pages are read.
            sqlx::query("LOCK TABLE key_check, tokens, offline_codes IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
        }
        let current: Option<String> = sqlx::query("SELECT check_value FROM key_check WHERE id = 1")
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| rows::get(&row, "key_check", "check_value"))
            .transpose()?;
        if current.as_deref() != Some(plan.expected_check) {
            return Err(StoreError::Invalid {
                what: "the database's key check value changed since the key was checked (another \
                       rotation?); nothing was changed"
                    .into(),
            });
        }

        let mut done = Rekeyed::default();
        let mut after = 0;
        loop {
            let page = token_seeds_after(&mut tx, after, REKEY_PAGE).await?;
            let Some(last) = page.last().map(|(id, _)| *id) else {
                break;
            };
            after = last;
            let updates = resealed(&page, &mut reseal)?;
            done.seeds += update_blobs(&mut tx, "tokens", "seed_enc", &updates).await?;
        }
        after = 0;
        loop {
            let page = offline_codes_after(&mut tx, after, REKEY_PAGE).await?;
            let Some(last) = page.last().map(|(id, _)| *id) else {
                break;
            };
            after = last;
            let updates = resealed(&page, &mut reseal)?;
            done.offline_codes +=
                update_blobs(&mut tx, "offline_codes", "code_enc", &updates).await?;
        }

        let changed = sqlx::query(
            "UPDATE key_check SET check_value = $1, pepper_wrapped = $2, set_at = $3, \
             rotated_at = $3 WHERE id = 1 AND check_value = $4",
        )
        .bind(plan.new_check)
        .bind(plan.pepper_wrapped)
        .bind(plan.audit.at)
        .bind(plan.expected_check)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed != 1 {
            return Err(StoreError::Invalid {
                what: "the key check row vanished during the rotation; nothing was changed".into(),
            });
        }
        batch::insert_audit(&mut tx, plan.audit).await?;
        tx.commit().await?;
        crate::audit::log::emit(plan.audit);
        Ok(done)
    }
}

/// Runs an advisory-lock query that answers 1 (taken) or 0.
async fn advisory(conn: &mut AnyConnection, sql: &'static str) -> Result<bool, StoreError> {
    let row = sqlx::query(sql)
        .bind(INSTANCE_LOCK_KEY)
        .fetch_one(&mut *conn)
        .await?;
    let got: i64 = row.try_get(0).map_err(|e| StoreError::Corrupt {
        what: format!("advisory lock answer: {e}"),
    })?;
    Ok(got == 1)
}

/// Token seeds with `id > after`, at most `limit`, in id order.
async fn token_seeds_after(
    conn: &mut AnyConnection,
    after: i64,
    limit: i64,
) -> Result<Vec<(i64, Sealed)>, StoreError> {
    sqlx::query("SELECT id, serial, seed_enc FROM tokens WHERE id > $1 ORDER BY id LIMIT $2")
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row: &AnyRow| {
            let id: i64 = rows::get(row, "tokens", "id")?;
            Ok((
                id,
                Sealed {
                    owner: SealedOwner::TokenSeed {
                        serial: rows::get(row, "tokens", "serial")?,
                    },
                    blob: rows::get(row, "tokens", "seed_enc")?,
                },
            ))
        })
        .collect()
}

/// Offline codes with `id > after`, at most `limit`, in id order.
async fn offline_codes_after(
    conn: &mut AnyConnection,
    after: i64,
    limit: i64,
) -> Result<Vec<(i64, Sealed)>, StoreError> {
    sqlx::query(
        "SELECT id, token_id, user_id, code_enc FROM offline_codes WHERE id > $1 \
         ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|row: &AnyRow| {
        let id: i64 = rows::get(row, "offline_codes", "id")?;
        Ok((
            id,
            Sealed {
                owner: SealedOwner::OfflineCode {
                    token_id: rows::get(row, "offline_codes", "token_id")?,
                    user_id: rows::get(row, "offline_codes", "user_id")?,
                },
                blob: rows::get(row, "offline_codes", "code_enc")?,
            },
        ))
    })
    .collect()
}

/// The page's blobs re-encrypted by `reseal`, with their row ids; the first refusal aborts.
fn resealed(
    page: &[(i64, Sealed)],
    reseal: &mut impl FnMut(&Sealed) -> Result<Vec<u8>, String>,
) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
    page.iter()
        .map(|(id, sealed)| {
            reseal(sealed)
                .map(|blob| (*id, blob))
                .map_err(|what| StoreError::Invalid { what })
        })
        .collect()
}

/// Writes new blobs into `table.column` by row id, many rows per statement; returns how many
/// rows changed.
async fn update_blobs(
    conn: &mut AnyConnection,
    table: &'static str,
    column: &'static str,
    updates: &[(i64, Vec<u8>)],
) -> Result<u64, StoreError> {
    let backend = super::backend_of(conn);
    let mut changed = 0;
    for chunk in updates.chunks(REKEY_ROWS_PER_STATEMENT) {
        let sql = format!(
            "UPDATE {table} SET {column} = v.column2 FROM (VALUES {}) AS v \
             WHERE {table}.id = v.column1",
            values_list(chunk.len(), 2, backend)
        );
        let mut q = sqlx::query(&sql);
        for (id, blob) in chunk {
            q = q.bind(*id).bind(blob.as_slice());
        }
        changed += q.execute(&mut *conn).await?.rows_affected();
    }
    Ok(changed)
}
