//! Plain data records shared by the store, the engine and the admin surfaces.
//!
//! These types carry no behaviour that touches I/O: the store maps database rows to them and the
//! engine reads them to make decisions. Times are Unix seconds (`i64`). Secrets appear here only
//! in protected form: seeds encrypted (`seed_enc`), PINs as keyed hashes (`pin_hash`).

use serde::{Deserialize, Serialize};

/// Database identifier of a user.
pub type UserId = i64;
/// Database identifier of a token.
pub type TokenId = i64;

/// How a token is used: with a PIN in front of the tokencode, or alone (SPEC P-1, P-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// Hardware-style token: passcode = PIN + tokencode.
    Pin,
    /// Authenticator-app token: passcode = tokencode alone.
    App,
}

impl TokenKind {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Pin => "pin",
            TokenKind::App => "app",
        }
    }
    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pin" => Some(TokenKind::Pin),
            "app" => Some(TokenKind::App),
            _ => None,
        }
    }
}

/// HMAC hash function of an OTP token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HashAlgorithm {
    /// HMAC-SHA-1 (RFC 4226 default).
    Sha1,
    /// HMAC-SHA-256 (RFC 6238).
    Sha256,
    /// HMAC-SHA-512 (RFC 6238).
    Sha512,
}

impl HashAlgorithm {
    /// The stored spelling (also the `algorithm=` spelling of otpauth URIs, lower-cased).
    pub fn as_str(self) -> &'static str {
        match self {
            HashAlgorithm::Sha1 => "sha1",
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha512 => "sha512",
        }
    }
    /// Parses `sha1`/`SHA1`/`sha-1` and the like.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().replace('-', "").as_str() {
            "sha1" => Some(HashAlgorithm::Sha1),
            "sha256" => Some(HashAlgorithm::Sha256),
            "sha512" => Some(HashAlgorithm::Sha512),
            _ => None,
        }
    }
}

/// Time-based (with its step in seconds) or counter-based token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum OtpMode {
    /// RFC 6238 TOTP with a step of `period` seconds (30 or 60).
    Totp {
        /// Step length in seconds.
        period: u32,
    },
    /// RFC 4226 HOTP.
    Hotp,
}

/// PIN state of a token (SPEC PIN-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PinState {
    /// A PIN is set (or the token is an app token, which has none).
    Set,
    /// New PIN mode: the next login with the tokencode alone sets a PIN.
    NewPinRequired,
}

impl PinState {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PinState::Set => "set",
            PinState::NewPinRequired => "new_pin",
        }
    }
    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "set" => Some(PinState::Set),
            "new_pin" => Some(PinState::NewPinRequired),
            _ => None,
        }
    }
}

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Database id.
    pub id: UserId,
    /// Normalised login name (unique).
    pub name: String,
    /// Security domain name (policies come from the config's `[domains.<name>]`).
    pub domain: String,
    /// Locked by lockout policy or by an admin (SPEC L-1, L-3).
    pub locked: bool,
    /// When the lock was set (for automatic unlock after a duration).
    pub locked_at: Option<i64>,
    /// Consecutive failed authentications in the current window (SPEC L-1, L-2).
    pub fail_count: u32,
    /// Start of the current failure window.
    pub fail_window_start: i64,
    /// RADIUS reply profile name, overriding the client's.
    pub profile: Option<String>,
    /// Creation time.
    pub created_at: i64,
}

/// A token as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// Database id.
    pub id: TokenId,
    /// Serial number (unique).
    pub serial: String,
    /// Owner, when assigned.
    pub user_id: Option<UserId>,
    /// PIN token or app token.
    pub kind: TokenKind,
    /// HMAC algorithm.
    pub algorithm: HashAlgorithm,
    /// Code length: 6 or 8.
    pub digits: u8,
    /// TOTP (with step) or HOTP.
    pub mode: OtpMode,
    /// Seed encrypted under the master key (AEAD, nonce included).
    #[serde(skip)]
    pub seed_enc: Vec<u8>,
    /// Token expiry; an expired token never authenticates.
    pub expires_at: Option<i64>,
    /// Keyed hash of the PIN (`otp::Pepper::hash` format), if set.
    #[serde(skip)]
    pub pin_hash: Option<String>,
    /// PIN state.
    pub pin_state: PinState,
    /// Learned clock drift in steps (TOTP, SPEC D-1); unused for HOTP.
    pub drift: i64,
    /// Last accepted TOTP step or HOTP counter; -1 when none (SPEC R-1).
    pub last_step: i64,
    /// Incorrect passcodes since the last success (SPEC N-1).
    pub bad_count: u32,
    /// Disabled tokens never authenticate.
    pub enabled: bool,
    /// Creation time.
    pub created_at: i64,
}

/// What a pending challenge session waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChallengeKind {
    /// SPEC PIN-1: waiting for the new PIN.
    NewPin,
    /// SPEC PIN-1: waiting for the new PIN again.
    NewPinConfirm,
    /// SPEC PIN-1: PIN set; waiting for PIN + the next tokencode.
    NewPinPasscode,
    /// SPEC N-1: waiting for the next tokencode.
    NextTokencode,
}

impl ChallengeKind {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeKind::NewPin => "new_pin",
            ChallengeKind::NewPinConfirm => "new_pin_confirm",
            ChallengeKind::NewPinPasscode => "new_pin_passcode",
            ChallengeKind::NextTokencode => "next_tokencode",
        }
    }
    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "new_pin" => Some(ChallengeKind::NewPin),
            "new_pin_confirm" => Some(ChallengeKind::NewPinConfirm),
            "new_pin_passcode" => Some(ChallengeKind::NewPinPasscode),
            "next_tokencode" => Some(ChallengeKind::NextTokencode),
            _ => None,
        }
    }
}

/// A challenge session (SPEC §1 "Challenge session"). Single use: consuming it deletes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// The printable State value sent to the client.
    pub state: String,
    /// The user the challenge belongs to.
    pub user_id: UserId,
    /// The token it concerns.
    pub token_id: Option<TokenId>,
    /// What the session waits for.
    pub kind: ChallengeKind,
    /// Kind-specific data (for example the step already seen, or the keyed hash of a new PIN).
    pub data: String,
    /// Creation time.
    pub created_at: i64,
    /// Expiry time; an expired challenge is rejected.
    pub expires_at: i64,
}

/// One audit record: an authentication or an admin action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When it happened.
    pub at: i64,
    /// The acting admin, for admin actions (`cli:<os user>` for the CLI).
    pub actor: Option<String>,
    /// The user concerned (as typed, for unknown users).
    pub user_name: String,
    /// The client (NAS) name, for authentications.
    pub client: Option<String>,
    /// `radius`, `tacacs`, `cli`, `api`.
    pub protocol: String,
    /// `token`, `tft`, `ott`, `fixed_passcode`, … or the admin action's name.
    pub method: String,
    /// `accept`, `reject`, `challenge`, `ok`.
    pub result: String,
    /// Why (for rejects: `bad_passcode`, `replay`, `locked`, `unknown_user`, …).
    pub reason: String,
}

/// Why a token is in emergency access (seed 003: the two lifetimes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmergencyMode {
    /// Temporarily unavailable or misplaced (left at home).
    Unavailable,
    /// Permanently lost or broken.
    Lost,
}

impl EmergencyMode {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EmergencyMode::Unavailable => "unavailable",
            EmergencyMode::Lost => "lost",
        }
    }
    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "unavailable" => Some(EmergencyMode::Unavailable),
            "lost" => Some(EmergencyMode::Lost),
            _ => None,
        }
    }
}

/// Online emergency code kind (SPEC E-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmergencyKind {
    /// Temporary fixed tokencode: one code, reusable until it expires.
    Tft,
    /// A set of one-time tokencodes: each works once.
    Ott,
}

impl EmergencyKind {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EmergencyKind::Tft => "tft",
            EmergencyKind::Ott => "ott",
        }
    }
    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "tft" => Some(EmergencyKind::Tft),
            "ott" => Some(EmergencyKind::Ott),
            _ => None,
        }
    }
}

/// What happens when the real token is used while emergency access is active (SPEC E-4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AvailableRule {
    /// The real token is rejected (a failure); emergency codes work until they expire.
    #[default]
    Deny,
    /// The first successful real-token login deletes the emergency codes.
    AllowAndDisable,
    /// The real token is rejected until the emergency lifetime ends, then works again and the
    /// emergency codes stop.
    AllowAfterExpiry,
}

impl AvailableRule {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AvailableRule::Deny => "deny",
            AvailableRule::AllowAndDisable => "allow_and_disable",
            AvailableRule::AllowAfterExpiry => "allow_after_expiry",
        }
    }
    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "deny" => Some(AvailableRule::Deny),
            "allow_and_disable" => Some(AvailableRule::AllowAndDisable),
            "allow_after_expiry" => Some(AvailableRule::AllowAfterExpiry),
            _ => None,
        }
    }
}

/// One online emergency code (a TFT, or one code of an OTT set), stored as a keyed hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmergencyCode {
    /// Database id (the single-use guard consumes by id).
    pub id: i64,
    /// Keyed hash of the code (`otp::Pepper::hash` of the upper-case code).
    #[serde(skip)]
    pub code_hash: String,
    /// When an OTT code was used; `None` while unused (always `None` for a TFT).
    pub used_at: Option<i64>,
}

/// A token's online emergency access: one TFT or one OTT set, with its expiry (SPEC E-1..E-4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmergencyAccess {
    /// The token it replaces.
    pub token_id: TokenId,
    /// Why (selects the lifetime and the token-becomes-available rule).
    pub mode: EmergencyMode,
    /// TFT or OTT set.
    pub kind: EmergencyKind,
    /// E-4 rule in force for this issue.
    pub rule: AvailableRule,
    /// Codes stop working at this instant (valid while `now < expires_at`).
    pub expires_at: i64,
    /// When it was issued.
    pub issued_at: i64,
    /// The code(s).
    pub codes: Vec<EmergencyCode>,
}

impl EmergencyAccess {
    /// Whether the codes still work at `now`.
    pub fn active(&self, now: i64) -> bool {
        now < self.expires_at
    }
}

/// An offline emergency code (SPEC O-2..O-4): per token (the offline emergency tokencode, used
/// with the PIN) or per user (the offline emergency passcode, replacing the whole passcode).
/// Stored encrypted, not hashed: the admin must be able to read it back and agents download it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineCode {
    /// The token, for an offline emergency tokencode.
    pub token_id: Option<TokenId>,
    /// The user, for an offline emergency passcode.
    pub user_id: Option<UserId>,
    /// The code encrypted under the master key (AEAD, bound to the owner).
    #[serde(skip)]
    pub code_enc: Vec<u8>,
    /// Expiry (valid while `now < expires_at`).
    pub expires_at: i64,
    /// O-3: the agent downloads a new code at the next online authentication.
    pub reset: bool,
    /// O-4: the code is also accepted online (tokencodes only).
    pub online: bool,
    /// When it was generated.
    pub created_at: i64,
}

/// A user's fixed passcode (SPEC FP-1): replaces PIN + tokencode; single-factor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedPasscode {
    /// The user.
    pub user_id: UserId,
    /// "Allow authentication with a fixed passcode".
    pub allowed: bool,
    /// Keyed hash of the passcode.
    #[serde(skip)]
    pub code_hash: Option<String>,
    /// Expiry (valid while `now < expires_at`), if any.
    pub expires_at: Option<i64>,
    /// When it was set.
    pub set_at: i64,
}

/// Everything the engine needs about one user, as loaded from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalRecord {
    /// The user.
    pub user: User,
    /// Their tokens.
    pub tokens: Vec<Token>,
    /// Online emergency access of those tokens (at most one per token).
    pub emergency: Vec<EmergencyAccess>,
    /// Offline emergency codes of the user and of their tokens.
    pub offline: Vec<OfflineCode>,
    /// Their fixed passcode settings, if any.
    pub fixed_passcode: Option<FixedPasscode>,
}
