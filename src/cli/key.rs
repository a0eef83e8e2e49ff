//! `key check` and `key rotate`: the master key file against the database's check value, and
//! the rotation to a new key file.
//!
//! Rotation is arranged so that no key can be lost by accident: the new key is written (new file,
//! mode 0600, synced) before the database changes, the old file is never touched, and the new
//! file is removed again only when the database demonstrably still uses the old key. It refuses
//! while a gateway on this host holds the old key file (and, on PostgreSQL, while any gateway is
//! connected to the database); the re-encryption itself is `admin::rotate_master_key`.

use std::path::Path;

use anyhow::{anyhow, Result};
use serde::Serialize;

use super::output::print;
use super::KeyCmd;
use crate::config::Config;
use crate::keys;
use crate::otp::MasterKey;
use crate::server::open_storage;
use crate::store::Store;

/// Runs a `key` verb.
pub(super) async fn run(config: &Config, cmd: KeyCmd, json: bool) -> Result<()> {
    let (store, current) = open_storage(config).await?;
    let r = match cmd {
        KeyCmd::Check => check(config, &store, &current, json).await,
        KeyCmd::Rotate { new_key_file } => {
            rotate(config, &store, &current, &new_key_file, json).await
        }
    };
    store.close().await;
    r
}

/// The output of `key check`.
#[derive(Debug, Serialize)]
struct CheckOutput {
    key_file: String,
    key_check: String,
    set_at: Option<i64>,
    rotated_at: Option<i64>,
}

/// `key check`: the key file opened the database (else `open_storage` already failed).
async fn check(config: &Config, store: &Store, key: &MasterKey, json: bool) -> Result<()> {
    let recorded = store.key_check().await?;
    let out = CheckOutput {
        key_file: config.master_key_file.display().to_string(),
        key_check: key.check_value_hex(),
        set_at: recorded.as_ref().map(|c| c.set_at),
        rotated_at: recorded.and_then(|c| c.rotated_at),
    };
    print(json, &out, |o| {
        format!(
            "master key file {}: matches the database (key check {}…)",
            o.key_file,
            o.key_check.get(..8).unwrap_or_default()
        )
    })
}

/// The output of `key rotate`.
#[derive(Debug, Serialize)]
struct RotateOutput {
    old_key_file: String,
    new_key_file: String,
    key_check: String,
    seeds: u64,
    offline_codes: u64,
}

/// `key rotate --new-key-file PATH`.
async fn rotate(
    config: &Config,
    store: &Store,
    current: &MasterKey,
    new_path: &Path,
    json: bool,
) -> Result<()> {
    let old_path = &config.master_key_file;
    // Held until the rotation has committed: no gateway on this host may start with the old
    // file meanwhile, and none may be running now.
    let _lock = keys::lock_exclusive(old_path)?;
    let new = keys::create(new_path)?;
    let now = crate::clock::unix_now();
    match crate::admin::rotate_master_key(store, current, new, &super::actor(), now).await {
        Ok((new, done)) => {
            let out = RotateOutput {
                old_key_file: old_path.display().to_string(),
                new_key_file: new_path.display().to_string(),
                key_check: new.check_value_hex(),
                seeds: done.seeds,
                offline_codes: done.offline_codes,
            };
            print(json, &out, |o| {
                format!(
                    "master key rotated: {} seed(s) and {} offline code(s) re-encrypted under {} \
                     (key check {}…); PINs, fixed passcodes and emergency codes keep their hash \
                     key, now sealed under the new key.\n\
                     The old key file {} no longer opens the database.\n\
                     Next: make {} the master_key_file of every instance (for example mv it over \
                     the old file), back it up, then start the gateways.",
                    o.seeds,
                    o.offline_codes,
                    o.new_key_file,
                    o.key_check.get(..8).unwrap_or_default(),
                    o.old_key_file,
                    o.new_key_file,
                )
            })
        }
        Err(e) => {
            // Remove the new key only when the database certainly still uses the old one.
            let unchanged = matches!(
                store.key_check().await,
                Ok(Some(c)) if current.matches_check_value(&c.check_value)
            );
            let what = if unchanged && keys::remove_unused(new_path).is_ok() {
                format!(
                    "the database is unchanged and still opens with {}; {} was removed",
                    old_path.display(),
                    new_path.display()
                )
            } else {
                format!(
                    "{} was kept: check with `tokengate key check` which key the database uses",
                    new_path.display()
                )
            };
            Err(anyhow!("key rotation failed: {e} ({what})"))
        }
    }
}
