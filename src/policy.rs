//! Policy data the engine decides with: the per-domain token, PIN, lockout, emergency, offline
//! and fixed passcode rules ([`Policies`]) and the prompt texts sent to users ([`Prompts`]).
//!
//! Plain serde records with their built-in defaults, as written under `[domain.<name>]` and
//! `[prompts]`. [`crate::config`] parses and range-checks them at load time; this module reads no
//! files and knows nothing of the rest of the configuration.

use serde::{Deserialize, Serialize};

use crate::model::{AvailableRule, EmergencyKind, TokenKind};
use crate::otp::Charset;

/// Policies of one security domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policies {
    /// Token policy.
    pub token: TokenPolicy,
    /// PIN policy.
    pub pin: PinPolicy,
    /// Lockout policy.
    pub lockout: LockoutPolicy,
    /// Emergency access policy.
    pub emergency: EmergencyPolicy,
    /// Offline policy.
    pub offline: OfflinePolicy,
    /// Fixed passcode rules.
    pub fixed_passcode: FixedPasscodePolicy,
}

/// Emergency access policy of a domain (SPEC E-1..E-4; seeds 003, 004).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmergencyPolicy {
    /// Kinds an admin (or self-service) may issue; the first is the default for `mark-lost`.
    pub allowed: Vec<EmergencyKind>,
    /// Codes in an OTT set unless the admin says otherwise.
    pub ott_count: u32,
    /// Lifetime of codes for a permanently lost or broken token, in days.
    pub lifetime_lost_days: u32,
    /// Lifetime of codes for a temporarily unavailable token, in days.
    pub lifetime_unavailable_days: u32,
    /// E-4: what the real token does while codes are active (temporarily unavailable tokens;
    /// a lost token that reappears is always denied).
    pub on_token_available: AvailableRule,
    /// No emergency code may live longer than this many days from issue.
    pub max_lifetime_days: u32,
}

impl Default for EmergencyPolicy {
    fn default() -> Self {
        EmergencyPolicy {
            allowed: vec![EmergencyKind::Tft, EmergencyKind::Ott],
            ott_count: 10,
            lifetime_lost_days: 7,
            lifetime_unavailable_days: 3,
            on_token_available: AvailableRule::Deny,
            max_lifetime_days: 30,
        }
    }
}

/// Offline authentication policy of a domain (SPEC O-1..O-5).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OfflinePolicy {
    /// Offline authentication allowed at all.
    pub allowed: bool,
    /// Days of offline data an agent may download.
    pub days: u32,
    /// Minimum online passcode length before offline data is issued.
    pub min_online_passcode_length: usize,
    /// Offline emergency codes may be downloaded (and so exist).
    pub emergency_codes: bool,
    /// Lifetime of an offline emergency code, in days.
    pub emergency_code_lifetime_days: u32,
}

impl Default for OfflinePolicy {
    fn default() -> Self {
        OfflinePolicy {
            allowed: false,
            days: 14,
            min_online_passcode_length: 0,
            emergency_codes: false,
            emergency_code_lifetime_days: 30,
        }
    }
}

/// Fixed passcode rules of a domain (SPEC FP-1).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FixedPasscodePolicy {
    /// Minimum length.
    pub min_length: usize,
    /// Maximum length.
    pub max_length: usize,
    /// `numeric` or `alphanumeric` (letters and digits).
    pub charset: PinCharset,
    /// Lifetime in days from when it is set (absent = no expiry).
    pub lifetime_days: Option<u32>,
}

impl Default for FixedPasscodePolicy {
    fn default() -> Self {
        FixedPasscodePolicy {
            min_length: 8,
            max_length: 32,
            charset: PinCharset::Alphanumeric,
            lifetime_days: Some(30),
        }
    }
}

/// What a failed next tokencode does (SPEC N-2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NtcFailure {
    /// Reject the attempt only.
    Reject,
    /// Reject and lock the user.
    #[default]
    Lock,
}

/// Emergency code length of the default format (E-3): 8 characters, letters and digits.
pub const DEFAULT_EMERGENCY_CODE_LENGTH: usize = 8;

/// Token policy of a domain (SPEC W-1, W-2, N-1, N-2, D-2).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenPolicy {
    /// Incorrect passcodes tolerated before a correct one needs Next Tokencode (absent = unlimited).
    pub bad_passcode_limit: Option<u32>,
    /// What a wrong next tokencode does.
    pub ntc_failure: NtcFailure,
    /// TOTP steps accepted outright either side of the expected step.
    pub totp_window: u32,
    /// TOTP steps either side within which a match triggers Next Tokencode.
    pub totp_wide_window: u32,
    /// HOTP counters looked ahead and accepted outright.
    pub hotp_window: u32,
    /// HOTP counters looked ahead for a Next Tokencode match.
    pub hotp_wide_window: u32,
    /// Resynchronisation search (TOTP) either side of now, in hours (SPEC D-2).
    pub resync_totp_hours: u32,
    /// Resynchronisation search (HOTP) ahead of the last counter.
    pub resync_hotp_range: u32,
    /// Length of emergency codes for tokens with a PIN (E-3; app tokens use the default 8).
    pub emergency_code_length: usize,
    /// Characters of emergency codes for tokens with a PIN (E-3).
    pub emergency_code_charset: Charset,
}

impl Default for TokenPolicy {
    fn default() -> Self {
        TokenPolicy {
            bad_passcode_limit: Some(3),
            ntc_failure: NtcFailure::Lock,
            totp_window: 1,
            totp_wide_window: 3,
            hotp_window: 10,
            hotp_wide_window: 100,
            resync_totp_hours: 12,
            resync_hotp_range: 10_000,
            emergency_code_length: DEFAULT_EMERGENCY_CODE_LENGTH,
            emergency_code_charset: Charset::Alphanumeric,
        }
    }
}

impl TokenPolicy {
    /// E-3: emergency code length and characters for a token of `kind`: the policy's format
    /// for PIN tokens, the default format (8 letters and digits) for app tokens.
    pub fn emergency_code_format(&self, kind: TokenKind) -> (usize, Charset) {
        match kind {
            TokenKind::App => (DEFAULT_EMERGENCY_CODE_LENGTH, Charset::Alphanumeric),
            TokenKind::Pin => (self.emergency_code_length, self.emergency_code_charset),
        }
    }
}

/// PIN rules of a domain (SPEC PIN-1, PIN-2).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PinPolicy {
    /// Minimum PIN length.
    pub min_length: usize,
    /// Maximum PIN length.
    pub max_length: usize,
    /// `numeric` or `alphanumeric`.
    pub charset: PinCharset,
    /// PINs that are never accepted.
    pub forbidden: Vec<String>,
    /// PIN-2: over RADIUS/TACACS+, assign a system-generated PIN instead of asking the user.
    pub system_generated: bool,
}

impl Default for PinPolicy {
    fn default() -> Self {
        PinPolicy {
            min_length: 4,
            max_length: 8,
            charset: PinCharset::Numeric,
            forbidden: vec![],
            system_generated: false,
        }
    }
}

/// Characters allowed in a PIN.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PinCharset {
    /// Digits only.
    #[default]
    Numeric,
    /// ASCII letters and digits.
    Alphanumeric,
}

impl PinCharset {
    /// The words used in prompts.
    pub fn describe(self) -> &'static str {
        match self {
            PinCharset::Numeric => "digits",
            PinCharset::Alphanumeric => "letters or digits",
        }
    }
    /// The code-generation charset for system-generated PINs.
    pub fn generator(self) -> Charset {
        match self {
            PinCharset::Numeric => Charset::Numeric,
            PinCharset::Alphanumeric => Charset::Alphanumeric,
        }
    }
}

/// Lockout policy (SPEC L-1).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutPolicy {
    /// Consecutive failures that lock the user.
    pub max_failures: u32,
    /// Window in seconds within which failures add up.
    pub window_secs: i64,
    /// Unlock automatically after this many seconds (absent = only an admin unlocks).
    pub auto_unlock_secs: Option<i64>,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            max_failures: 5,
            window_secs: 86_400,
            auto_unlock_secs: None,
        }
    }
}

/// `[prompts]`: every text sent to users (SPEC PIN-3). `{min}`, `{max}`, `{charset}`, `{reason}`
/// and `{pin}` are replaced where they make sense.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Prompts {
    /// N-1: asking for the next tokencode.
    pub next_tokencode: String,
    /// PIN-1: asking for a new PIN.
    pub new_pin: String,
    /// PIN-1: asking for the new PIN again.
    pub new_pin_confirm: String,
    /// PIN-1: the confirmation did not match; asking again.
    pub new_pin_mismatch: String,
    /// PIN-1: the PIN breaks the policy (`{reason}`); asking again.
    pub new_pin_rejected: String,
    /// PIN-1: PIN set; asking for PIN + next tokencode.
    pub new_pin_accepted: String,
    /// PIN-2: a system-generated PIN (`{pin}`) was assigned.
    pub new_pin_generated: String,
    /// Sent in Access-Reject (kept generic: never says why).
    pub reject: String,
}

impl Default for Prompts {
    fn default() -> Self {
        Prompts {
            next_tokencode: "Wait for the tokencode to change, then enter the new tokencode:".into(),
            new_pin: "Enter a new PIN of {min} to {max} {charset}:".into(),
            new_pin_confirm: "Re-enter the new PIN:".into(),
            new_pin_mismatch: "The PINs did not match. Enter a new PIN of {min} to {max} {charset}:"
                .into(),
            new_pin_rejected: "PIN rejected: {reason}. Enter a new PIN of {min} to {max} {charset}:"
                .into(),
            new_pin_accepted:
                "PIN accepted. Wait for the tokencode to change, then enter your PIN followed by the new tokencode:"
                    .into(),
            new_pin_generated:
                "Your new PIN is {pin}. Wait for the tokencode to change, then enter your PIN followed by the new tokencode:"
                    .into(),
            reject: "Access denied".into(),
        }
    }
}
