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
