//! One-time passwords and secrets at rest: HOTP/TOTP, constant-time code matching, keyed hashes
//! of PINs and codes, seed encryption, code and seed generation, base32 and otpauth URIs.
//!
//! Everything here is a pure function of its arguments: time comes in as `unix: i64` seconds and
//! randomness as `&mut (impl RngCore + CryptoRng)`. This module must never touch sockets, the
//! database, the clock, files or OS randomness (loading the master key file happens elsewhere; it
//! only receives the key's 32 bytes), and it makes no policy decisions: windows, drift, replay
//! and lockout belong to the engine. Codes, MACs and hashes are compared in constant time; key
//! material is wiped on drop and never printed by `Debug`.

// Untrusted bytes never panic here: unwrap, expect and panic are denied crate-wide
// (Cargo.toml [lints.clippy]); this pure module also denies unchecked indexing.
#![deny(clippy::indexing_slicing)]
#![warn(missing_docs)]

pub mod base32;
mod cache;
mod codes;
mod hotp;
mod mac;
mod secret;
pub mod uri;

pub use crate::model::HashAlgorithm;
pub use cache::{CodeCache, MAX_CACHED_CODES};
pub use codes::{default_seed_len, generate_code, normalize_code, random_seed, Charset};
pub use hotp::{
    chap_response, clamp_digits, code_value, ct_eq, ct_eq_value, find_match, hotp, totp, totp_step,
    Code, HotpKey, MAX_DIGITS, MIN_DIGITS,
};
pub use secret::{CryptoError, MasterKey, Pepper, SeedCipher};
