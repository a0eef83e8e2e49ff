//! Admin operations for emergency access (SPEC §6–§8): issue a TFT or an OTT set (E-1..E-3),
//! show and clear them, mark a token lost / unavailable / found, the OTT export file (E-5), fixed
//! passcodes (FP-1) and offline emergency codes (O-2..O-4).
//!
//! Plaintext online codes leave this module once, in the value returned at issue; only keyed
//! hashes are stored. Offline codes are stored encrypted (the admin must be able to read them
//! back and agents download them), bound to their owner by the AEAD's associated data.

use serde::Serialize;

use crate::clock::format_utc;
use crate::model::{
    AvailableRule, EmergencyAccess, EmergencyCode, EmergencyKind, EmergencyMode, FixedPasscode,
    OfflineCode, Token, TokenKind, User,
};
use crate::otp::{self, Charset};
use crate::policy::DEFAULT_EMERGENCY_CODE_LENGTH;

use super::{Admin, AdminError};

const DAY: i64 = 86_400;

/// Emergency access just issued: the only time its codes are shown.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedEmergency {
    /// Token serial.
    pub serial: String,
    /// TFT or OTT.
    pub kind: EmergencyKind,
    /// Why.
    pub mode: EmergencyMode,
    /// E-4 rule in force.
    pub rule: AvailableRule,
    /// Codes stop working at this instant (Unix seconds).
    pub expires_at: i64,
    /// The codes in clear (one for a TFT).
    pub codes: Vec<String>,
    /// Whether the user types their PIN in front of a code (P-3).
    pub with_pin: bool,
}

/// What an admin may see of a token's emergency access (never the codes).
#[derive(Debug, Clone, Serialize)]
pub struct EmergencyView {
    /// Token serial.
    pub serial: String,
    /// TFT or OTT.
    pub kind: EmergencyKind,
    /// Why.
    pub mode: EmergencyMode,
    /// E-4 rule.
    pub rule: AvailableRule,
    /// Issued at.
    pub issued_at: i64,
    /// Expires at.
    pub expires_at: i64,
    /// Whether the codes still work now.
    pub active: bool,
    /// Codes in the set.
    pub total: usize,
    /// OTT codes already used.
    pub used: usize,
}

/// An offline emergency code as the admin sees it (O-3: the code and its expiry).
#[derive(Debug, Clone, Serialize)]
pub struct OfflineView {
    /// Token serial (for an offline emergency tokencode).
    pub serial: Option<String>,
    /// User (for an offline emergency passcode).
    pub user: Option<String>,
    /// The code.
    pub code: String,
    /// Expires at.
    pub expires_at: i64,
    /// O-3: a new code waits for the agent's next download.
    pub reset: bool,
    /// O-4: accepted online too.
    pub online: bool,
}

/// A fixed passcode's settings (never the passcode).
#[derive(Debug, Clone, Serialize)]
pub struct FixedPasscodeView {
    /// User.
    pub user: String,
    /// Allowed.
    pub allowed: bool,
    /// Expires at.
    pub expires_at: Option<i64>,
}

/// Options of an emergency issue.
#[derive(Debug, Clone, Default)]
pub struct IssueOptions {
    /// TFT or OTT; default: the policy's first allowed kind.
    pub kind: Option<EmergencyKind>,
    /// Lost or temporarily unavailable (default unavailable).
    pub mode: Option<EmergencyMode>,
    /// OTT set size; default from policy.
    pub count: Option<u32>,
    /// Explicit expiry (Unix seconds); default from the mode's lifetime.
    pub expires_at: Option<i64>,
}

/// AEAD associated data binding an offline tokencode to its token.
pub fn offline_token_aad(token_id: i64) -> Vec<u8> {
    format!("offline:token:{token_id}").into_bytes()
}

/// AEAD associated data binding an offline passcode to its user.
pub fn offline_user_aad(user_id: i64) -> Vec<u8> {
    format!("offline:user:{user_id}").into_bytes()
}

/// The E-5 export file: a header naming serial, count and expiry (never the PIN), then one code
/// per line.
pub fn ott_export_text(issued: &IssuedEmergency) -> String {
    let mut s = String::new();
    s.push_str("# tokengate one-time tokencodes\n");
    s.push_str(&format!("# Token serial: {}\n", issued.serial));
    s.push_str(&format!("# Codes: {}\n", issued.codes.len()));
    s.push_str(&format!("# Expires: {}\n", format_utc(issued.expires_at)));
    if issued.with_pin {
        s.push_str("# Each code works once. Enter your PIN followed by one code.\n");
    } else {
        s.push_str("# Each code works once. Enter one code as your passcode.\n");
    }
    for c in &issued.codes {
        s.push_str(c);
        s.push('\n');
    }
    s
}

impl Admin<'_> {
    async fn owner_of(&self, t: &Token) -> Result<User, AdminError> {
        let id = t.user_id.ok_or_else(|| {
            AdminError::Invalid(format!("token {} is not assigned to a user", t.serial))
        })?;
        self.store
            .user_by_id(id)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("owner of token {}", t.serial)))
    }

    /// E-1..E-3: issues a TFT or an OTT set for an assigned, unexpired token, replacing any
    /// previous one. Refuses a lifetime past the domain's global maximum.
    pub async fn issue_emergency(
        &self,
        serial: &str,
        opts: IssueOptions,
        now: i64,
    ) -> Result<IssuedEmergency, AdminError> {
        let t = self.token(serial).await?;
        let owner = self.owner_of(&t).await?;
        if t.expires_at.is_some_and(|e| e <= now) {
            return Err(AdminError::Invalid(format!("token {serial} has expired")));
        }
        let policy = &self.config.policies(&owner.domain).emergency;
        let kind = match opts.kind {
            Some(k) => k,
            None => *policy.allowed.first().ok_or_else(|| {
                AdminError::Invalid(format!(
                    "emergency access is not allowed in domain {:?}",
                    owner.domain
                ))
            })?,
        };
        if !policy.allowed.contains(&kind) {
            return Err(AdminError::Invalid(format!(
                "{} is not allowed by the emergency access policy of domain {:?}",
                kind.as_str().to_uppercase(),
                owner.domain
            )));
        }
        let mode = opts.mode.unwrap_or(EmergencyMode::Unavailable);
        let max = now + i64::from(policy.max_lifetime_days) * DAY;
        let expires_at = match opts.expires_at {
            Some(e) => e,
            None => {
                let days = match mode {
                    EmergencyMode::Lost => policy.lifetime_lost_days,
                    EmergencyMode::Unavailable => policy.lifetime_unavailable_days,
                };
                now + i64::from(days) * DAY
            }
        };
        if expires_at <= now {
            return Err(AdminError::Invalid(
                "the expiry must be in the future".into(),
            ));
        }
        if expires_at > max {
            return Err(AdminError::Invalid(format!(
                "expiry {} is past the global maximum lifetime of {} days ({})",
                format_utc(expires_at),
                policy.max_lifetime_days,
                format_utc(max)
            )));
        }
        let count = match kind {
            EmergencyKind::Tft => 1,
            EmergencyKind::Ott => opts.count.unwrap_or(policy.ott_count),
        };
        if !(1..=100).contains(&count) {
            return Err(AdminError::Invalid(
                "an OTT set holds 1 to 100 codes".into(),
            ));
        }
        let (len, charset) = self.code_format(&owner, t.kind);
        let mut rng = rand::rngs::OsRng;
        let mut codes = Vec::with_capacity(count as usize);
        while codes.len() < count as usize {
            let c = otp::generate_code(&mut rng, charset, len);
            if !codes.contains(&c) {
                codes.push(c);
            }
        }
        let rule = match mode {
            // A permanently lost token that reappears is not trusted.
            EmergencyMode::Lost => AvailableRule::Deny,
            EmergencyMode::Unavailable => policy.on_token_available,
        };
        let access = EmergencyAccess {
            token_id: t.id,
            mode,
            kind,
            rule,
            expires_at,
            issued_at: now,
            codes: codes
                .iter()
                .map(|c| EmergencyCode {
                    id: 0,
                    code_hash: self.pepper.hash(&mut rng, c.as_bytes()),
                    used_at: None,
                })
                .collect(),
        };
        self.store.issue_emergency(&access, now).await?;
        self.audit(
            &owner.name,
            &format!("emergency_{}_issue", kind.as_str()),
            now,
        )
        .await?;
        Ok(IssuedEmergency {
            serial: t.serial.clone(),
            kind,
            mode,
            rule,
            expires_at,
            codes,
            with_pin: t.kind == TokenKind::Pin,
        })
    }

    /// E-3: the token policy's format for PIN tokens; the default format for app tokens.
    fn code_format(&self, owner: &User, kind: TokenKind) -> (usize, Charset) {
        self.config
            .policies(&owner.domain)
            .token
            .emergency_code_format(kind)
    }

    /// Records an OTT export (E-5: generation and export are audit events) and returns the text.
    pub async fn export_ott(
        &self,
        issued: &IssuedEmergency,
        now: i64,
    ) -> Result<String, AdminError> {
        if issued.kind != EmergencyKind::Ott {
            return Err(AdminError::Invalid("only OTT sets are exported".into()));
        }
        let t = self.token(&issued.serial).await?;
        let owner = self.owner_of(&t).await?;
        self.audit(&owner.name, "emergency_ott_export", now).await?;
        Ok(ott_export_text(issued))
    }

    /// The token's emergency access, without codes.
    pub async fn emergency_show(
        &self,
        serial: &str,
        now: i64,
    ) -> Result<Option<EmergencyView>, AdminError> {
        let t = self.token(serial).await?;
        Ok(self
            .store
            .emergency_of(t.id)
            .await?
            .map(|ea| EmergencyView {
                serial: t.serial.clone(),
                kind: ea.kind,
                mode: ea.mode,
                rule: ea.rule,
                issued_at: ea.issued_at,
                expires_at: ea.expires_at,
                active: ea.active(now),
                total: ea.codes.len(),
                used: ea.codes.iter().filter(|c| c.used_at.is_some()).count(),
            }))
    }

    /// Deletes the token's emergency access (also `token found`).
    pub async fn emergency_clear(&self, serial: &str, now: i64) -> Result<bool, AdminError> {
        let t = self.token(serial).await?;
        let cleared = self.store.clear_emergency(t.id, now).await?;
        let owner = self.owner_name(&t).await?;
        self.audit(&owner, "emergency_clear", now).await?;
        Ok(cleared)
    }

    /// FP-1: sets (and allows) a user's fixed passcode; entered twice, the two must match; format
    /// and lifetime from the domain's policy.
    pub async fn set_fixed_passcode(
        &self,
        user: &str,
        passcode: &str,
        confirm: &str,
        now: i64,
    ) -> Result<FixedPasscodeView, AdminError> {
        let u = self.user(user).await?;
        if !otp::ct_eq(passcode.as_bytes(), confirm.as_bytes()) {
            return Err(AdminError::Invalid(
                "the fixed passcode and its confirmation do not match".into(),
            ));
        }
        let pol = &self.config.policies(&u.domain).fixed_passcode;
        let n = passcode.chars().count();
        if n < pol.min_length || n > pol.max_length {
            return Err(AdminError::Invalid(format!(
                "a fixed passcode has {} to {} characters",
                pol.min_length, pol.max_length
            )));
        }
        let ok = match pol.charset {
            crate::policy::PinCharset::Numeric => passcode.bytes().all(|b| b.is_ascii_digit()),
            crate::policy::PinCharset::Alphanumeric => {
                passcode.bytes().all(|b| b.is_ascii_alphanumeric())
            }
        };
        if !ok {
            return Err(AdminError::Invalid(format!(
                "a fixed passcode uses {} only",
                pol.charset.describe()
            )));
        }
        let expires_at = pol.lifetime_days.map(|d| now + i64::from(d) * DAY);
        let fp = FixedPasscode {
            user_id: u.id,
            allowed: true,
            code_hash: Some(
                self.pepper
                    .hash(&mut rand::rngs::OsRng, passcode.as_bytes()),
            ),
            expires_at,
            set_at: now,
        };
        self.store.set_fixed_passcode(&fp, now).await?;
        self.audit(&u.name, "fixed_passcode_set", now).await?;
        Ok(FixedPasscodeView {
            user: u.name,
            allowed: true,
            expires_at,
        })
    }

    /// Removes a user's fixed passcode (and the permission).
    pub async fn clear_fixed_passcode(&self, user: &str, now: i64) -> Result<bool, AdminError> {
        let u = self.user(user).await?;
        let r = self.store.clear_fixed_passcode(u.id, now).await?;
        self.audit(&u.name, "fixed_passcode_clear", now).await?;
        Ok(r)
    }

    fn offline_allowed(&self, owner: &User) -> Result<u32, AdminError> {
        let pol = &self.config.policies(&owner.domain).offline;
        if !(pol.allowed && pol.emergency_codes) {
            return Err(AdminError::Invalid(format!(
                "the offline policy of domain {:?} does not allow offline emergency codes",
                owner.domain
            )));
        }
        Ok(pol.emergency_code_lifetime_days)
    }

    fn offline_view(
        &self,
        c: &OfflineCode,
        serial: Option<String>,
        user: Option<String>,
        aad: &[u8],
    ) -> Result<OfflineView, AdminError> {
        let code = self.cipher.decrypt(&c.code_enc, aad).map_err(|_| {
            AdminError::Invalid("offline code does not decrypt under this master key".into())
        })?;
        Ok(OfflineView {
            serial,
            user,
            code: String::from_utf8_lossy(&code).into_owned(),
            expires_at: c.expires_at,
            reset: c.reset,
            online: c.online,
        })
    }

    /// Generates, encrypts (bound to its owner by `aad`) and stores a new offline code.
    #[allow(clippy::too_many_arguments)]
    async fn store_new_offline_code(
        &self,
        owner: (Option<i64>, Option<i64>),
        (len, charset): (usize, Charset),
        aad: &[u8],
        days: u32,
        reset: bool,
        online: bool,
        now: i64,
    ) -> Result<OfflineCode, AdminError> {
        let mut rng = rand::rngs::OsRng;
        let code = otp::generate_code(&mut rng, charset, len);
        let oc = OfflineCode {
            token_id: owner.0,
            user_id: owner.1,
            code_enc: self.cipher.encrypt(&mut rng, code.as_bytes(), aad),
            expires_at: now + i64::from(days) * DAY,
            reset,
            online,
            created_at: now,
        };
        self.store.set_offline_code(&oc, now).await?;
        Ok(oc)
    }

    async fn new_offline_token_code(
        &self,
        t: &Token,
        owner: &User,
        online: bool,
        reset: bool,
        now: i64,
    ) -> Result<OfflineView, AdminError> {
        let days = self.offline_allowed(owner)?;
        let aad = offline_token_aad(t.id);
        let format = self.code_format(owner, t.kind);
        let oc = self
            .store_new_offline_code((Some(t.id), None), format, &aad, days, reset, online, now)
            .await?;
        self.offline_view(&oc, Some(t.serial.clone()), None, &aad)
    }

    /// O-2/O-3: the token's offline emergency tokencode and its expiry (generated when the
    /// policy allows it and none is current).
    pub async fn offline_code_show(
        &self,
        serial: &str,
        now: i64,
    ) -> Result<OfflineView, AdminError> {
        let t = self.token(serial).await?;
        let owner = self.owner_of(&t).await?;
        self.offline_allowed(&owner)?;
        let view = match self.store.offline_code_of_token(t.id).await? {
            Some(c) if now < c.expires_at => {
                self.offline_view(&c, Some(t.serial.clone()), None, &offline_token_aad(t.id))?
            }
            old => {
                let online = old.map(|c| c.online).unwrap_or(false);
                self.new_offline_token_code(&t, &owner, online, false, now)
                    .await?
            }
        };
        self.audit(&owner.name, "offline_code_show", now).await?;
        Ok(view)
    }

    /// O-3: issues a new offline emergency tokencode; the old one stops working.
    pub async fn offline_code_reset(
        &self,
        serial: &str,
        now: i64,
    ) -> Result<OfflineView, AdminError> {
        let t = self.token(serial).await?;
        let owner = self.owner_of(&t).await?;
        let online = self
            .store
            .offline_code_of_token(t.id)
            .await?
            .map(|c| c.online)
            .unwrap_or(false);
        let v = self
            .new_offline_token_code(&t, &owner, online, true, now)
            .await?;
        self.audit(&owner.name, "offline_code_reset", now).await?;
        Ok(v)
    }

    /// O-4: whether the offline emergency tokencode is also accepted online.
    pub async fn offline_code_online(
        &self,
        serial: &str,
        online: bool,
        now: i64,
    ) -> Result<OfflineView, AdminError> {
        let v = self.offline_code_show(serial, now).await?;
        let t = self.token(serial).await?;
        self.store.set_offline_online(t.id, online, now).await?;
        let owner = self.owner_of(&t).await?;
        self.audit(
            &owner.name,
            if online {
                "offline_code_online_on"
            } else {
                "offline_code_online_off"
            },
            now,
        )
        .await?;
        Ok(OfflineView { online, ..v })
    }

    /// O-2/O-3: the user's offline emergency passcode (replaces PIN + tokencode offline);
    /// `reset` issues a new one.
    pub async fn offline_passcode(
        &self,
        user: &str,
        reset: bool,
        now: i64,
    ) -> Result<OfflineView, AdminError> {
        let u = self.user(user).await?;
        let days = self.offline_allowed(&u)?;
        let aad = offline_user_aad(u.id);
        let current = self.store.offline_code_of_user(u.id).await?;
        let view = match current {
            Some(c) if !reset && now < c.expires_at => {
                self.offline_view(&c, None, Some(u.name.clone()), &aad)?
            }
            _ => {
                // It replaces the whole passcode: at least as long as a fixed passcode.
                let pol = &self.config.policies(&u.domain).fixed_passcode;
                let len = pol.min_length.max(DEFAULT_EMERGENCY_CODE_LENGTH);
                let oc = self
                    .store_new_offline_code(
                        (None, Some(u.id)),
                        (len, Charset::Alphanumeric),
                        &aad,
                        days,
                        reset,
                        false,
                        now,
                    )
                    .await?;
                self.offline_view(&oc, None, Some(u.name.clone()), &aad)?
            }
        };
        self.audit(
            &u.name,
            if reset {
                "offline_passcode_reset"
            } else {
                "offline_passcode_show"
            },
            now,
        )
        .await?;
        Ok(view)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e5_export_has_header_and_one_code_per_line_never_a_pin() {
        let issued = IssuedEmergency {
            serial: "S-1".into(),
            kind: EmergencyKind::Ott,
            mode: EmergencyMode::Unavailable,
            rule: AvailableRule::Deny,
            expires_at: 1_795_305_600,
            codes: vec!["ABCD2345".into(), "EFGH6789".into()],
            with_pin: true,
        };
        let text = ott_export_text(&issued);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "# Token serial: S-1");
        assert_eq!(lines[2], "# Codes: 2");
        assert_eq!(lines[3], "# Expires: 2026-11-22T00:00:00Z");
        let codes: Vec<&str> = lines
            .iter()
            .filter(|l| !l.starts_with('#'))
            .copied()
            .collect();
        assert_eq!(codes, vec!["ABCD2345", "EFGH6789"]);
    }
}
