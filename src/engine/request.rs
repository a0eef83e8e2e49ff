//! The engine's inputs: the request ([`AuthRequest`], [`ChapResponse`]), the State it carried
//! ([`StateLookup`]), the user's cached state ([`Principal`], [`LiveToken`], [`LiveCode`]) and the
//! read-only context of one decision ([`Ctx`]).

use zeroize::Zeroizing;

use crate::model::{Challenge, EmergencyAccess, FixedPasscode, Token, User};
use crate::otp::{CodeCache, Pepper};
use crate::policy::{Policies, Prompts};

/// A token with its seed decrypted (held in memory only), its emergency access and its offline
/// emergency tokencode.
#[derive(Clone)]
pub struct LiveToken {
    /// The stored record. Cached tokens carry an empty `seed_enc`: the seed is decrypted once
    /// into `seed`, and no write op takes the whole record back to the store.
    pub token: Token,
    /// The decrypted seed.
    pub seed: Zeroizing<Vec<u8>>,
    /// Online emergency access (TFT or OTT set), if issued.
    pub emergency: Option<EmergencyAccess>,
    /// The offline emergency tokencode, decrypted, if one exists.
    pub offline_code: Option<LiveCode>,
    /// The codes of the token's last checked window, for the next check (shared by clones).
    pub codes: CodeCache,
}

/// A decrypted offline emergency code.
#[derive(Clone)]
pub struct LiveCode {
    /// The code (upper-case).
    pub code: Zeroizing<String>,
    /// Valid while `now < expires_at`.
    pub expires_at: i64,
    /// O-4: also accepted online.
    pub online: bool,
}

impl std::fmt::Debug for LiveToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveToken")
            .field("token", &self.token)
            .field("seed", &"<redacted>")
            .field("emergency", &self.emergency)
            .field(
                "offline_code",
                &self.offline_code.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl LiveToken {
    /// A token without emergency state.
    pub fn new(token: Token, seed: Zeroizing<Vec<u8>>) -> LiveToken {
        LiveToken {
            token,
            seed,
            emergency: None,
            offline_code: None,
            codes: CodeCache::default(),
        }
    }
}

/// A user and the tokens assigned to them: what the engine needs to decide.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user record.
    pub user: User,
    /// Their tokens.
    pub tokens: Vec<LiveToken>,
    /// Their fixed passcode settings (FP-1).
    pub fixed_passcode: Option<FixedPasscode>,
}

/// One authentication attempt, as any front end sees it.
#[derive(Debug, Clone, Copy)]
pub struct AuthRequest<'a> {
    /// The login name as sent (used for audit; lookups use the normalised name).
    pub user_name: &'a str,
    /// The passcode (or the answer to a challenge).
    pub passcode: &'a [u8],
    /// The client (NAS) name.
    pub client: &'a str,
    /// `radius` or `tacacs`.
    pub protocol: &'a str,
    /// A CHAP response instead of a clear passcode (`passcode` is then ignored).
    pub chap: Option<ChapResponse<'a>>,
}

/// A CHAP answer (RFC 1994): the server never sees the passcode, only MD5(id | passcode |
/// challenge). PINs are stored as keyed hashes, so PIN + tokencode candidates cannot be rebuilt:
/// only tokens without a PIN (app tokens, P-2) can be matched.
#[derive(Debug, Clone, Copy)]
pub struct ChapResponse<'a> {
    /// The PPP identifier.
    pub id: u8,
    /// The challenge the device sent.
    pub challenge: &'a [u8],
    /// MD5(id | passcode | challenge).
    pub response: &'a [u8; 16],
}

/// The State the request carried, resolved by the caller.
#[derive(Debug, Clone)]
pub enum StateLookup {
    /// No State: a fresh login.
    None,
    /// A State that matches no live session.
    Unknown,
    /// The session it names.
    Found(Challenge),
}

/// Read-only context of one decision.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// The user's domain policies.
    pub policies: &'a Policies,
    /// Prompt texts.
    pub prompts: &'a Prompts,
    /// Pepper for PIN hashes.
    pub pepper: &'a Pepper,
    /// Challenge session lifetime, seconds.
    pub challenge_ttl: i64,
}
