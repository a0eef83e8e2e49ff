//! Bulk provisioning for load tests: `tokengate populate` creates N users, each with one TOTP or
//! HOTP token (and, for PIN tokens, a PIN), and hands back their secrets for the load generator.
//!
//! It owns the naming scheme (`<prefix><index>` users, `<PREFIX>-<index>` serials), the random
//! PINs (checked against the domain's PIN policy) and seeds, and the protected forms (keyed PIN
//! hash, seed AEAD) computed off any packet path. Rows are written through
//! [`Store::create_users_with_tokens`] in chunks of [`BULK_CHUNK`], one transaction each. It
//! must not be used for real users: the secrets it returns are meant for a benchmark file.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Admin, AdminError};
use crate::engine;
use crate::model::{AuditRecord, HashAlgorithm, OtpMode, PinState, TokenKind};
use crate::otp;
use crate::store::{NewToken, NewUserWithToken, BULK_CHUNK};

/// What `populate` creates.
#[derive(Debug, Clone)]
pub struct PopulateOptions {
    /// Number of users (each with one token).
    pub users: usize,
    /// User names are `<prefix><index>` with the index zero-padded to 7 digits.
    pub prefix: String,
    /// PIN tokens (PIN + tokencode) or app tokens (tokencode alone).
    pub kind: TokenKind,
    /// Security domain of the new users.
    pub domain: String,
    /// TOTP with its step (30 or 60 s), or HOTP (counter starting at 0).
    pub mode: OtpMode,
}

/// The secrets of one populated user, as the load generator needs them.
#[derive(Debug, Clone)]
pub struct PopulatedUser {
    /// Login name.
    pub name: String,
    /// The PIN (empty for app tokens).
    pub pin: String,
    /// The seed in base32.
    pub seed_base32: String,
    /// Token kind.
    pub kind: TokenKind,
    /// HMAC algorithm.
    pub algorithm: HashAlgorithm,
    /// Code length.
    pub digits: u8,
    /// TOTP with its step, or HOTP (counter starting at 0).
    pub mode: OtpMode,
}

/// Header line of the secrets file (CSV). `period` is the TOTP step, 0 for HOTP; `mode` is
/// `totp` or `hotp` (files written before HOTP support have no `mode` column: TOTP).
pub const SECRETS_HEADER: &str = "user,pin,seed_base32,kind,algorithm,digits,period,mode";

impl PopulatedUser {
    /// One CSV line of the secrets file (names, PINs and base32 contain no commas).
    pub fn csv_line(&self) -> String {
        format!(
            "{},{},{},{},{},{},{},{}",
            self.name,
            self.pin,
            self.seed_base32,
            self.kind.as_str(),
            self.algorithm.as_str(),
            self.digits,
            match self.mode {
                OtpMode::Totp { period } => period,
                OtpMode::Hotp => 0,
            },
            match self.mode {
                OtpMode::Totp { .. } => "totp",
                OtpMode::Hotp => "hotp",
            }
        )
    }
}

/// A random numeric PIN of `len` digits.
fn random_pin(rng: &mut StdRng, len: usize) -> String {
    (0..len)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

impl Admin<'_> {
    /// Creates `opts.users` users with one TOTP or HOTP token each (SHA-1, 6 digits; HOTP
    /// counters start at 0, the store's default for a new token), in transactions
    /// of [`BULK_CHUNK`] users; calls `progress(done)` after each. Returns the secrets, in user
    /// order. Writes one audit record for the whole run. A name or serial that is already taken
    /// fails its chunk (earlier chunks stay).
    pub async fn populate(
        &self,
        opts: &PopulateOptions,
        now: i64,
        mut progress: impl FnMut(usize),
    ) -> Result<Vec<PopulatedUser>, AdminError> {
        if !self.config.domains.contains_key(&opts.domain) {
            return Err(AdminError::Invalid(format!(
                "unknown security domain {:?}",
                opts.domain
            )));
        }
        if let OtpMode::Totp { period } = opts.mode {
            if period != 30 && period != 60 {
                return Err(AdminError::Invalid(
                    "period must be 30 or 60 seconds".into(),
                ));
            }
        }
        let prefix = self.norm(&opts.prefix);
        if prefix.is_empty() || prefix.len() > 200 || prefix.chars().any(|c| c.is_control()) {
            return Err(AdminError::Invalid(
                "prefix must be 1 to 200 characters without control characters".into(),
            ));
        }
        let pin_policy = &self.config.policies(&opts.domain).pin;
        let pin_len = 6usize.clamp(pin_policy.min_length, pin_policy.max_length.max(1));
        let algorithm = HashAlgorithm::Sha1;
        let digits = 6;
        let serial_prefix = prefix.to_ascii_uppercase();
        // One CSPRNG seeded from the OS: seeds, salts and nonces without a syscall each.
        let mut rng = StdRng::from_rng(rand::rngs::OsRng)
            .map_err(|e| AdminError::Invalid(format!("no OS randomness: {e}")))?;
        let mut out = Vec::with_capacity(opts.users);
        let mut done = 0;
        while done < opts.users {
            let end = (done + BULK_CHUNK).min(opts.users);
            let mut batch = Vec::with_capacity(end - done);
            for i in done..end {
                let name = format!("{prefix}{i:07}");
                let serial = format!("{serial_prefix}-{i:07}");
                let seed = otp::random_seed(&mut rng, otp::default_seed_len(algorithm));
                let pin = match opts.kind {
                    TokenKind::App => String::new(),
                    TokenKind::Pin => {
                        let mut tries = 0;
                        loop {
                            let pin = random_pin(&mut rng, pin_len);
                            if engine::check_pin_policy(pin_policy, pin.as_bytes()).is_ok() {
                                break pin;
                            }
                            tries += 1;
                            if tries > 100 {
                                return Err(AdminError::Invalid(
                                    "the domain's PIN policy refuses every random numeric PIN"
                                        .into(),
                                ));
                            }
                        }
                    }
                };
                let pin_hash =
                    (!pin.is_empty()).then(|| self.pepper.hash(&mut rng, pin.as_bytes()));
                let seed_enc = self.cipher.encrypt(&mut rng, &seed, serial.as_bytes());
                out.push(PopulatedUser {
                    name: name.clone(),
                    pin,
                    seed_base32: otp::base32::encode(&seed),
                    kind: opts.kind,
                    algorithm,
                    digits,
                    mode: opts.mode,
                });
                batch.push(NewUserWithToken {
                    name,
                    domain: opts.domain.clone(),
                    profile: None,
                    token: NewToken {
                        serial,
                        user_id: None,
                        kind: opts.kind,
                        algorithm,
                        digits,
                        mode: opts.mode,
                        seed_enc,
                        expires_at: None,
                        pin_hash,
                        pin_state: PinState::Set,
                    },
                });
            }
            self.store.create_users_with_tokens(&batch, now).await?;
            done = end;
            progress(done);
        }
        self.store
            .insert_audit(&AuditRecord {
                at: now,
                actor: Some(self.actor.clone()),
                user_name: format!("{prefix}*"),
                client: None,
                protocol: "admin".into(),
                method: "populate".into(),
                result: "ok".into(),
                reason: format!("{} users", opts.users),
            })
            .await?;
        Ok(out)
    }
}
