//! Start-up check of the master key file against the database (issue 17): every process that
//! opens the key (`serve`, the admin verbs, `migrate`, `key rotate`) goes through [`unlock`].
//!
//! The database records the key's check value (`key_check`). The rules:
//! - key file present, value recorded: the file's value must match (constant-time compare), or
//!   the process refuses naming the file ([`KeyError::Mismatch`]);
//! - key file present, nothing recorded (a fresh database, or one from before the check): the
//!   value is recorded, but for a database holding data only once the key has decrypted a sample
//!   of its sealed seeds and offline codes, so a wrong key is never adopted;
//! - key file missing, database holding users, tokens or a recorded value: refused
//!   ([`KeyError::Missing`]), never a new key;
//! - key file missing, empty database: a new key is written (0600) and its value recorded.
//!
//! After a rotation the database also holds the pepper sealed under the current key; [`unlock`]
//! opens it, so the returned key hashes exactly as before the rotation. It must not decide
//! anything about authentication, and it never writes over a key file.

use std::path::Path;

use crate::admin::{describe_sealed, sealed_aad};
use crate::keys::{self, KeyError, KeyFileLock};
use crate::otp::MasterKey;
use crate::store::{InstanceLease, KeyCheck, Store};

use super::StartError;

/// How many sealed blobs a key must decrypt before it is adopted by a database that records no
/// check value yet.
const ADOPT_SAMPLE: i64 = 16;

/// The locks a running gateway holds so that `key rotate` can see it: a shared lock on its key
/// file and, on PostgreSQL, the instance lease. Released by [`InstanceGuard::release`] (or when
/// the process ends).
#[derive(Debug)]
pub struct InstanceGuard {
    _key_file: KeyFileLock,
    lease: Option<InstanceLease>,
}

impl InstanceGuard {
    /// Gives both locks up.
    pub async fn release(self) {
        if let Some(lease) = self.lease {
            lease.release().await;
        }
    }
}

/// Checks (or, on a fresh database, creates and records) the master key at `path` against
/// `store`; returns the key, with the pepper carried over a rotation when there was one.
pub async fn unlock(store: &Store, path: &Path, now: i64) -> Result<MasterKey, StartError> {
    let recorded = store.key_check().await?;
    match (keys::load(path)?, recorded) {
        (Some(key), Some(check)) => Ok(matching(key, &check, path)?),
        (Some(key), None) => adopt(store, key, path, now).await,
        (None, Some(_)) => Err(missing(path)),
        (None, None) => {
            if store.holds_users_or_tokens().await? {
                return Err(missing(path));
            }
            let key = keys::create(path)?;
            if store.record_key_check(&key.check_value_hex(), now).await? {
                tracing::info!(file = %path.display(), "new master key created and its check value recorded");
                return Ok(key);
            }
            // Another instance initialised the database at the same moment with a key of its
            // own: ours protects nothing, so it goes, and this instance needs that one's file.
            keys::remove_unused(path)?;
            let check = store.key_check().await?;
            Err(match check {
                Some(check) => mismatch(&key, &check, path),
                None => KeyError::Unverified {
                    path: path.display().to_string(),
                    reason: "the key check value could not be recorded".into(),
                },
            }
            .into())
        }
    }
}

/// Takes a running gateway's locks (key file shared, PostgreSQL lease) and checks once more,
/// under them, that the database still records this key: a rotation that finished between
/// [`unlock`] and here is caught.
pub async fn hold(
    store: &Store,
    path: &Path,
    key: &MasterKey,
) -> Result<InstanceGuard, StartError> {
    let lease = store.instance_lease().await?;
    let key_file = match keys::lock_shared(path) {
        Ok(lock) => lock,
        Err(e) => {
            if let Some(lease) = lease {
                lease.release().await;
            }
            return Err(e.into());
        }
    };
    let guard = InstanceGuard {
        _key_file: key_file,
        lease,
    };
    let still = match store.key_check().await {
        Ok(Some(check)) if key.matches_check_value(&check.check_value) => Ok(()),
        Ok(Some(check)) => Err(mismatch(key, &check, path).into()),
        Ok(None) => Err(KeyError::Unverified {
            path: path.display().to_string(),
            reason: "the database's key check value disappeared".into(),
        }
        .into()),
        Err(e) => Err(StartError::from(e)),
    };
    match still {
        Ok(()) => Ok(guard),
        Err(e) => {
            guard.release().await;
            Err(e)
        }
    }
}

/// The key, if the recorded value is its own (with the carried pepper opened).
fn matching(key: MasterKey, check: &KeyCheck, path: &Path) -> Result<MasterKey, KeyError> {
    if !key.matches_check_value(&check.check_value) {
        return Err(mismatch(&key, check, path));
    }
    match &check.pepper_wrapped {
        None => Ok(key),
        Some(wrapped) => key
            .with_wrapped_pepper(wrapped)
            .map_err(|e| KeyError::Unverified {
                path: path.display().to_string(),
                reason: format!(
                    "the key matches, but the hash key kept by the last rotation \
                     (key_check.pepper_wrapped) does not open under it: {e}"
                ),
            }),
    }
}

/// A key file for a database that records no check value yet: recorded once the key has shown
/// it is the database's key (every sampled sealed blob decrypts), or when there is nothing a key
/// protects yet.
async fn adopt(
    store: &Store,
    key: MasterKey,
    path: &Path,
    now: i64,
) -> Result<MasterKey, StartError> {
    let sample = store.sealed_sample(ADOPT_SAMPLE).await?;
    let cipher = key.seed_cipher();
    for sealed in &sample {
        if cipher.decrypt(&sealed.blob, &sealed_aad(sealed)).is_err() {
            return Err(KeyError::Unverified {
                path: path.display().to_string(),
                reason: format!(
                    "{} does not decrypt under it (wrong key file?); restore the key file this \
                     database's seeds were encrypted with",
                    describe_sealed(sealed)
                ),
            }
            .into());
        }
    }
    if sample.is_empty() && store.holds_fixed_passcode_hashes().await? {
        return Err(KeyError::Unverified {
            path: path.display().to_string(),
            reason: "the database holds fixed passcode hashes but no seed or offline code to test \
                     the key against, so it cannot be recorded as the database's key"
                .into(),
        }
        .into());
    }
    if store.record_key_check(&key.check_value_hex(), now).await? {
        tracing::info!(
            file = %path.display(),
            verified_blobs = sample.len(),
            "master key check value recorded for an existing database"
        );
        return Ok(key);
    }
    // Recorded by another instance meanwhile: it must be this key's value.
    match store.key_check().await? {
        Some(check) => Ok(matching(key, &check, path)?),
        None => Err(KeyError::Unverified {
            path: path.display().to_string(),
            reason: "the key check value could not be recorded".into(),
        }
        .into()),
    }
}

fn missing(path: &Path) -> StartError {
    KeyError::Missing {
        path: path.display().to_string(),
    }
    .into()
}

fn mismatch(key: &MasterKey, check: &KeyCheck, path: &Path) -> KeyError {
    let short = |s: &str| s.chars().take(8).collect::<String>();
    KeyError::Mismatch {
        path: path.display().to_string(),
        file_check: short(&key.check_value_hex()),
        db_check: short(&check.check_value),
    }
}
