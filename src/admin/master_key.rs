//! `key rotate`: every sealed blob (token seeds, offline emergency codes) re-encrypted under a
//! new master key and the database's key check value replaced, in one transaction, audited.
//!
//! Keyed hashes (PINs, fixed passcodes, TFT/OTT codes, a pending new PIN) cannot be recomputed
//! without their plaintexts, so the rotation keeps their HMAC key, the pepper: the new key
//! carries it over and the database stores it sealed under the new key (see `otp::MasterKey`).
//! Afterwards the new key file opens everything and the old one opens nothing (its check value no
//! longer matches, and the seeds and offline codes no longer decrypt under it). Writing the key
//! file and refusing while gateways run are the caller's part (`cli`); this module must not touch
//! files.

use crate::model::AuditRecord;
use crate::otp::MasterKey;
use crate::store::{Rekey, Rekeyed, Sealed, SealedOwner, Store, StoreError};

use super::{offline_token_aad, offline_user_aad, AdminError};

/// The AEAD associated data a sealed blob is bound to: a seed to its serial, an offline code to
/// its token or user.
pub fn sealed_aad(sealed: &Sealed) -> Vec<u8> {
    match &sealed.owner {
        SealedOwner::TokenSeed { serial } => serial.as_bytes().to_vec(),
        SealedOwner::OfflineCode {
            token_id: Some(id), ..
        } => offline_token_aad(*id),
        SealedOwner::OfflineCode { user_id, .. } => offline_user_aad(user_id.unwrap_or_default()),
    }
}

/// A sealed blob in words, for error messages.
pub fn describe_sealed(sealed: &Sealed) -> String {
    match &sealed.owner {
        SealedOwner::TokenSeed { serial } => format!("the seed of token {serial:?}"),
        SealedOwner::OfflineCode {
            token_id: Some(id), ..
        } => format!("the offline code of token id {id}"),
        SealedOwner::OfflineCode { user_id, .. } => {
            format!(
                "the offline code of user id {}",
                user_id.unwrap_or_default()
            )
        }
    }
}

/// Re-encrypts everything sealed under `current` (the key the database records, as unlocked at
/// start) under `new`, carries the pepper over and records `new`'s check value, in one
/// transaction with an audit record by `actor`. Returns `new` as the database will now unlock it
/// and how many blobs moved. On any error nothing was changed.
pub async fn rotate_master_key(
    store: &Store,
    current: &MasterKey,
    new: MasterKey,
    actor: &str,
    now: i64,
) -> Result<(MasterKey, Rekeyed), AdminError> {
    let recorded = store.key_check().await?.ok_or_else(|| {
        AdminError::Invalid("the database records no master key check value yet".into())
    })?;
    if !current.matches_check_value(&recorded.check_value) {
        return Err(AdminError::Invalid(
            "the current master key is not the one the database records".into(),
        ));
    }
    if new.matches_check_value(&recorded.check_value) {
        return Err(AdminError::Invalid(
            "the new master key is the current one".into(),
        ));
    }
    let new = new.carry_pepper_from(current);
    let pepper_wrapped = new.wrap_pepper(&mut rand::rngs::OsRng);
    let new_check = new.check_value_hex();
    let audit = AuditRecord {
        at: now,
        actor: Some(actor.to_string()),
        user_name: String::new(),
        client: None,
        protocol: "admin".into(),
        method: "key_rotate".into(),
        result: "ok".into(),
        reason: "none".into(),
    };
    let old_cipher = current.seed_cipher();
    let new_cipher = new.seed_cipher();
    let done = store
        .rekey(
            &Rekey {
                expected_check: &recorded.check_value,
                new_check: &new_check,
                pepper_wrapped: &pepper_wrapped,
                audit: &audit,
            },
            |sealed| {
                let aad = sealed_aad(sealed);
                let plain = old_cipher.decrypt(&sealed.blob, &aad).map_err(|_| {
                    format!(
                        "{} does not decrypt under the current master key; nothing was changed \
                         (remove or re-create that entry, then rotate again)",
                        describe_sealed(sealed)
                    )
                })?;
                Ok(new_cipher.encrypt(&mut rand::rngs::OsRng, &plain, &aad))
            },
        )
        .await
        .map_err(|e| match e {
            StoreError::Invalid { what } | StoreError::InUse { what } => AdminError::Invalid(what),
            other => other.into(),
        })?;
    Ok((new, done))
}
