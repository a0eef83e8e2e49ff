//! Admin operations on users and tokens, shared by the CLI and the HTTP admin API
//! (`server::http`): users, tokens, PINs, resync, import, emergency access, fixed passcodes,
//! offline codes and OTT export (`emergency.rs`), bulk population for load tests
//! (`populate.rs`), and `key rotate`'s re-encryption under a new master key (`master_key.rs`).
//!
//! Each operation validates its input (clear errors, nothing changed on bad input), does the
//! protected-form conversions (seed → AEAD blob, PIN → keyed hash) and writes an audit record
//! naming the acting admin. Plaintext seeds leave this module only once, as the `otpauth://` URI
//! returned when a token is created.

mod emergency;
mod import;
mod master_key;
mod populate;

pub use emergency::{
    offline_token_aad, offline_user_aad, ott_export_text, EmergencyView, FixedPasscodeView,
    IssueOptions, IssuedEmergency, OfflineView,
};
pub use import::{parse_import, ImportFormat, ImportedToken};
pub use master_key::{describe_sealed, rotate_master_key, sealed_aad};
pub use populate::{PopulateOptions, PopulatedUser, SECRETS_HEADER};

use serde::Serialize;

use crate::config::Config;
use crate::engine::{self, LiveToken};
use crate::model::{AuditRecord, HashAlgorithm, OtpMode, PinState, Token, TokenKind, User};
use crate::otp::{self, uri::OtpauthUri, MasterKey, Pepper, SeedCipher};
use crate::store::{NewToken, Store, StoreError};

/// Why an admin operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Bad input; nothing was changed.
    #[error("{0}")]
    Invalid(String),
    /// The named object does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// It already exists.
    #[error("{0} already exists")]
    Conflict(String),
    /// The database failed.
    #[error("database: {0}")]
    Store(StoreError),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { what } => AdminError::Conflict(what),
            StoreError::NotFound { what } => AdminError::NotFound(what),
            other => AdminError::Store(other),
        }
    }
}

/// Parameters of a new token.
#[derive(Debug, Clone)]
pub struct TokenSpec {
    /// Serial; generated when absent.
    pub serial: Option<String>,
    /// PIN token or app token.
    pub kind: TokenKind,
    /// HMAC algorithm.
    pub algorithm: HashAlgorithm,
    /// 6 or 8.
    pub digits: u8,
    /// TOTP with its step, or HOTP.
    pub mode: OtpMode,
    /// Seed; generated when absent.
    pub seed: Option<Vec<u8>>,
    /// HOTP: the first counter the token will show (default 0).
    pub counter: u64,
    /// Owner.
    pub user: Option<String>,
    /// Initial PIN (PIN tokens); without one a PIN token starts in New PIN mode.
    pub pin: Option<String>,
    /// Expiry (Unix seconds).
    pub expires_at: Option<i64>,
}

impl Default for TokenSpec {
    fn default() -> Self {
        TokenSpec {
            serial: None,
            kind: TokenKind::Pin,
            algorithm: HashAlgorithm::Sha1,
            digits: 6,
            mode: OtpMode::Totp { period: 30 },
            seed: None,
            counter: 0,
            user: None,
            pin: None,
            expires_at: None,
        }
    }
}

/// A created token and the one-time view of its seed.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedToken {
    /// The stored token.
    pub token: Token,
    /// The `otpauth://` URI (contains the seed: show once).
    pub otpauth_uri: String,
}

/// A user with their tokens, for `user show`.
#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    /// The user.
    pub user: User,
    /// Their tokens.
    pub tokens: Vec<Token>,
}

/// Admin operations bound to a store, the master key and the config.
pub struct Admin<'a> {
    /// The store.
    pub store: &'a Store,
    /// The validated config.
    pub config: &'a Config,
    /// Acting admin for audit records (`cli:<login>`, `api:<key name>`).
    pub actor: String,
    pepper: Pepper,
    cipher: SeedCipher,
}

impl<'a> Admin<'a> {
    /// Binds the operations.
    pub fn new(store: &'a Store, config: &'a Config, key: &MasterKey, actor: String) -> Self {
        Admin {
            store,
            config,
            actor,
            pepper: key.pepper(),
            cipher: key.seed_cipher(),
        }
    }

    async fn audit(&self, user_name: &str, method: &str, now: i64) -> Result<(), AdminError> {
        self.store
            .insert_audit(&AuditRecord {
                at: now,
                actor: Some(self.actor.clone()),
                user_name: user_name.to_string(),
                client: None,
                protocol: "admin".into(),
                method: method.into(),
                result: "ok".into(),
                reason: "none".into(),
            })
            .await?;
        Ok(())
    }

    fn norm(&self, name: &str) -> String {
        self.config.file.server.user_name_case.normalize(name)
    }

    async fn user(&self, name: &str) -> Result<User, AdminError> {
        let n = self.norm(name);
        self.store
            .user_by_name(&n)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("user {n:?}")))
    }

    async fn token(&self, serial: &str) -> Result<Token, AdminError> {
        self.store
            .token_by_serial(serial)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("token {serial:?}")))
    }

    /// Creates a user in a configured domain.
    pub async fn add_user(
        &self,
        name: &str,
        domain: &str,
        profile: Option<&str>,
        now: i64,
    ) -> Result<User, AdminError> {
        let n = self.norm(name);
        if n.is_empty() || n.len() > 253 || n.chars().any(|c| c.is_control()) {
            return Err(AdminError::Invalid(
                "user name must be 1 to 253 characters without control characters".into(),
            ));
        }
        if !self.config.domains.contains_key(domain) {
            return Err(AdminError::Invalid(format!(
                "unknown security domain {domain:?} (configure [domain.{domain}] first)"
            )));
        }
        if let Some(p) = profile {
            if !self.config.profiles.contains_key(p) {
                return Err(AdminError::Invalid(format!("unknown profile {p:?}")));
            }
        }
        let u = self.store.create_user(&n, domain, profile, now).await?;
        self.audit(&n, "user_add", now).await?;
        Ok(u)
    }

    /// A user and their tokens.
    pub async fn show_user(&self, name: &str) -> Result<UserView, AdminError> {
        let user = self.user(name).await?;
        let tokens = self.store.tokens_of_user(user.id).await?;
        Ok(UserView { user, tokens })
    }

    /// Locks or unlocks a user (unlock also clears the failure count and its tokens'
    /// bad-passcode counts, so the next correct passcode is accepted).
    pub async fn set_locked(&self, name: &str, locked: bool, now: i64) -> Result<User, AdminError> {
        let u = self.user(name).await?;
        self.store.set_user_locked(u.id, locked, now).await?;
        self.audit(
            &u.name,
            if locked { "user_lock" } else { "user_unlock" },
            now,
        )
        .await?;
        self.user(name).await
    }

    /// Creates a token; returns it with its otpauth URI (the only time the seed is shown).
    pub async fn add_token(&self, spec: TokenSpec, now: i64) -> Result<CreatedToken, AdminError> {
        if spec.digits != 6 && spec.digits != 8 {
            return Err(AdminError::Invalid("digits must be 6 or 8".into()));
        }
        if let OtpMode::Totp { period } = spec.mode {
            if period != 30 && period != 60 {
                return Err(AdminError::Invalid(
                    "period must be 30 or 60 seconds".into(),
                ));
            }
        }
        let seed = match spec.seed {
            Some(s) if s.len() < 10 => {
                return Err(AdminError::Invalid(
                    "seed too short: at least 10 bytes (80 bits)".into(),
                ))
            }
            Some(s) => s,
            None => otp::random_seed(
                &mut rand::rngs::OsRng,
                otp::default_seed_len(spec.algorithm),
            ),
        };
        let owner = match &spec.user {
            Some(n) => Some(self.user(n).await?),
            None => None,
        };
        let pin_hash = match (&spec.pin, spec.kind) {
            (Some(_), TokenKind::App) => {
                return Err(AdminError::Invalid("app tokens take no PIN".into()))
            }
            (Some(pin), TokenKind::Pin) => {
                let domain = owner
                    .as_ref()
                    .map(|u| u.domain.as_str())
                    .unwrap_or("default");
                engine::check_pin_policy(&self.config.policies(domain).pin, pin.as_bytes())
                    .map_err(|why| AdminError::Invalid(format!("PIN refused: {why}")))?;
                Some(self.pepper.hash(&mut rand::rngs::OsRng, pin.as_bytes()))
            }
            (None, _) => None,
        };
        let pin_state = if spec.kind == TokenKind::Pin && pin_hash.is_none() {
            PinState::NewPinRequired
        } else {
            PinState::Set
        };
        let serial = match spec.serial {
            Some(s) => {
                let s = s.trim().to_string();
                if s.is_empty() || s.len() > 64 || !s.chars().all(|c| c.is_ascii_graphic()) {
                    return Err(AdminError::Invalid(
                        "serial must be 1 to 64 printable ASCII characters".into(),
                    ));
                }
                s
            }
            None => format!(
                "TG{}",
                otp::generate_code(&mut rand::rngs::OsRng, otp::Charset::Numeric, 10)
            ),
        };
        let seed_enc = self
            .cipher
            .encrypt(&mut rand::rngs::OsRng, &seed, serial.as_bytes());
        let token = self
            .store
            .create_token(
                &NewToken {
                    serial: serial.clone(),
                    user_id: owner.as_ref().map(|u| u.id),
                    kind: spec.kind,
                    algorithm: spec.algorithm,
                    digits: spec.digits,
                    mode: spec.mode,
                    seed_enc,
                    expires_at: spec.expires_at,
                    pin_hash,
                    pin_state,
                },
                now,
            )
            .await?;
        if spec.mode == OtpMode::Hotp && spec.counter > 0 {
            let last = i64::try_from(spec.counter).unwrap_or(i64::MAX) - 1;
            self.store.set_sync(token.id, last, 0).await?;
        }
        let token = self.token(&serial).await?;
        let uri = OtpauthUri {
            hotp: spec.mode == OtpMode::Hotp,
            issuer: Some(self.config.file.server.issuer.clone()),
            account: owner
                .as_ref()
                .map(|u| u.name.clone())
                .unwrap_or_else(|| serial.clone()),
            secret: seed,
            algorithm: spec.algorithm,
            digits: spec.digits,
            period: match spec.mode {
                OtpMode::Totp { period } => period,
                OtpMode::Hotp => 30,
            },
            counter: spec.counter,
        };
        let owner_name = owner.as_ref().map(|u| u.name.as_str()).unwrap_or("");
        self.audit(owner_name, "token_add", now).await?;
        Ok(CreatedToken {
            token,
            otpauth_uri: uri.to_uri(),
        })
    }

    /// Assigns a token to a user, or unassigns it (`user = None`).
    pub async fn assign(
        &self,
        serial: &str,
        user: Option<&str>,
        now: i64,
    ) -> Result<Token, AdminError> {
        let t = self.token(serial).await?;
        let owner = match user {
            Some(n) => Some(self.user(n).await?),
            None => None,
        };
        self.store
            .assign_token(t.id, owner.as_ref().map(|u| u.id))
            .await?;
        if t.user_id != owner.as_ref().map(|u| u.id) {
            // Emergency codes were issued to the previous owner: they never move with the token.
            self.store.clear_emergency(t.id, now).await?;
        }
        let name = owner.as_ref().map(|u| u.name.as_str()).unwrap_or("");
        self.audit(
            name,
            if owner.is_some() {
                "token_assign"
            } else {
                "token_unassign"
            },
            now,
        )
        .await?;
        self.token(serial).await
    }

    /// PIN-1: clears the PIN; the next login with the tokencode alone sets a new one.
    pub async fn clear_pin(&self, serial: &str, now: i64) -> Result<Token, AdminError> {
        let t = self.token(serial).await?;
        if t.kind == TokenKind::App {
            return Err(AdminError::Invalid("app tokens have no PIN".into()));
        }
        self.store
            .set_pin(t.id, None, PinState::NewPinRequired)
            .await?;
        self.audit(&self.owner_name(&t).await?, "pin_clear", now)
            .await?;
        self.token(serial).await
    }

    /// Sets a PIN directly (help desk), checked against the owner's domain policy.
    pub async fn set_pin(&self, serial: &str, pin: &str, now: i64) -> Result<Token, AdminError> {
        let t = self.token(serial).await?;
        if t.kind == TokenKind::App {
            return Err(AdminError::Invalid("app tokens have no PIN".into()));
        }
        let domain = match t.user_id {
            Some(id) => self.store.user_by_id(id).await?.map(|u| u.domain),
            None => None,
        }
        .unwrap_or_else(|| "default".into());
        engine::check_pin_policy(&self.config.policies(&domain).pin, pin.as_bytes())
            .map_err(|why| AdminError::Invalid(format!("PIN refused: {why}")))?;
        let hash = self.pepper.hash(&mut rand::rngs::OsRng, pin.as_bytes());
        self.store.set_pin(t.id, Some(&hash), PinState::Set).await?;
        self.audit(&self.owner_name(&t).await?, "pin_set", now)
            .await?;
        self.token(serial).await
    }

    async fn owner_name(&self, t: &Token) -> Result<String, AdminError> {
        Ok(match t.user_id {
            Some(id) => self
                .store
                .user_by_id(id)
                .await?
                .map(|u| u.name)
                .unwrap_or_default(),
            None => String::new(),
        })
    }

    fn live(&self, t: Token) -> Result<LiveToken, AdminError> {
        let seed = self
            .cipher
            .decrypt(&t.seed_enc, t.serial.as_bytes())
            .map_err(|_| {
                AdminError::Invalid(
                    "the token's seed does not decrypt under this master key".into(),
                )
            })?;
        Ok(LiveToken::new(t, seed))
    }

    /// D-2: resynchronises a token from two consecutive tokencodes.
    pub async fn resync(
        &self,
        serial: &str,
        code1: &str,
        code2: &str,
        now: i64,
    ) -> Result<Token, AdminError> {
        let t = self.token(serial).await?;
        let domain = match t.user_id {
            Some(id) => self.store.user_by_id(id).await?.map(|u| u.domain),
            None => None,
        }
        .unwrap_or_else(|| "default".into());
        let policy = self.config.policies(&domain).token.clone();
        let lt = self.live(t)?;
        let m = engine::resync(&policy, &lt, code1.as_bytes(), code2.as_bytes(), now)
            .map_err(|e| AdminError::Invalid(e.to_string()))?;
        // Never move the replay guard backwards.
        let last = m.step.max(lt.token.last_step);
        self.store.set_sync(lt.token.id, last, m.drift).await?;
        self.audit(&self.owner_name(&lt.token).await?, "token_resync", now)
            .await?;
        self.token(serial).await
    }

    /// The code a software token shows now (demo and test aid; needs the master key).
    pub async fn current_code(&self, serial: &str, now: i64) -> Result<String, AdminError> {
        let t = self.token(serial).await?;
        let lt = self.live(t)?;
        let counter = match lt.token.mode {
            OtpMode::Totp { period } => otp::totp_step(now, period),
            OtpMode::Hotp => lt.token.last_step + 1,
        };
        let value = otp::hotp(
            &lt.seed,
            u64::try_from(counter).unwrap_or(0),
            lt.token.digits,
            lt.token.algorithm,
        );
        Ok(otp::Code::new(value, lt.token.digits).as_str().to_string())
    }

    /// Imports tokens from parsed records; all or nothing per record, reported per line.
    pub async fn import(
        &self,
        records: Vec<ImportedToken>,
        now: i64,
    ) -> Vec<(usize, Result<CreatedToken, AdminError>)> {
        let mut out = Vec::with_capacity(records.len());
        for r in records {
            let line = r.line;
            out.push((line, self.add_token(r.spec, now).await));
        }
        out
    }
}
