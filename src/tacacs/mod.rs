//! Sans-IO TACACS+ codec and per-session state machine (RFC 8907).
//!
//! This module owns the TACACS+ wire format: the 12-byte [`Header`], the MD5 pad
//! obfuscation ([`obfuscate`], [`deobfuscate_with_keys`] for key rollover), zero-copy views and
//! encoders of every body ([`AuthenStart`], [`AuthenReply`], [`AuthenContinue`],
//! [`AuthorRequest`], [`AuthorResponse`], [`AcctRequest`], [`AcctReply`], gathered in [`Body`]),
//! and the protocol-level [`Session`] / [`Connection`] state machines (sequence numbers, what a
//! session waits for, round and session limits). It must not touch sockets, the clock or
//! randomness, and it holds no passcode logic: callers pass bytes and keys in and get bytes,
//! events or typed errors back. Decoding never allocates and never panics on untrusted input;
//! every length is checked before anything is read.

// Untrusted bytes never panic here: unwrap, expect and panic are denied crate-wide
// (Cargo.toml [lints.clippy]); this pure module also denies unchecked indexing.
#![deny(clippy::indexing_slicing)]

/// Declares a one-octet wire enum with `from_u8`, `as_u8` and a decoder that maps unknown
/// octets to the given [`DecodeError`] variant.
macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident, $err:ident { $($(#[$vm:meta])* $var:ident = $val:expr),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $var = $val),+
        }

        impl $name {
            /// Maps a wire octet to a known value; `None` for anything else.
            pub fn from_u8(v: u8) -> Option<$name> {
                match v {
                    $($val => Some($name::$var),)+
                    _ => None,
                }
            }

            /// The wire octet.
            pub fn as_u8(self) -> u8 {
                self as u8
            }

            /// Maps a wire octet to a known value or the matching decode error.
            pub(crate) fn decode(v: u8) -> Result<$name, $crate::tacacs::DecodeError> {
                $name::from_u8(v).ok_or($crate::tacacs::DecodeError::$err(v))
            }
        }
    };
}

mod acct;
mod authen;
mod author;
mod body;
mod connection;
mod event;
mod header;
mod obfuscation;
pub mod policy;
mod session;

#[cfg(test)]
mod tests;

pub use acct::{AcctFlags, AcctReply, AcctRequest, AcctStatus};
pub use authen::{
    AuthenAction, AuthenContinue, AuthenReply, AuthenService, AuthenStart, AuthenStatus,
    AuthenType, CONTINUE_FLAG_ABORT, REPLY_FLAG_NOECHO,
};
pub use author::{AuthenMethod, AuthorRequest, AuthorResponse, AuthorStatus};
pub use body::{encode_packet, split_packet, Args, ArgsIter, Body, Obfuscation};
pub use connection::{Connection, ConnectionError, ConnectionLimits};
pub use event::{Answer, Credential, Event, StartInfo};
pub use header::{
    Header, PacketType, Version, FLAG_SINGLE_CONNECT, FLAG_UNENCRYPTED, HEADER_LEN, MAX_BODY_LEN,
};
pub use obfuscation::{deobfuscate, deobfuscate_with_keys, obfuscate};
pub use policy::{AuthorSet, Verdict};
pub use session::{Session, SessionError, SessionKind, SessionLimits};

/// Why bytes were rejected by [`Header::decode`], [`split_packet`] or [`Body::decode`].
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer than 12 octets where a header was expected.
    #[error("shorter than the 12-octet TACACS+ header")]
    TooShort,
    /// The version octet is neither 0xc0 nor 0xc1.
    #[error("unsupported TACACS+ version {0:#04x}")]
    UnsupportedVersion(u8),
    /// The type octet is not 1 (authentication), 2 (authorization) or 3 (accounting).
    #[error("unknown TACACS+ packet type {0}")]
    UnknownType(u8),
    /// The header's body length is above the configured cap (64 KiB by default).
    #[error("body length {0} above the limit")]
    BodyTooLarge(u32),
    /// The body received is not exactly as long as the header's length field says.
    #[error("body length differs from the header length")]
    LengthMismatch,
    /// The body is shorter than the fixed fields of its packet type.
    #[error("body shorter than its fixed fields")]
    HeaderTooSmall,
    /// The field lengths add up to more than the body.
    #[error("field lengths overflow the body")]
    LengthOverflow,
    /// The argument count or argument lengths run past the body.
    #[error("argument count or length overflows the body")]
    ArgumentOverflow,
    /// The field (and argument) lengths add up to less than the body: no exact fit.
    #[error("trailing bytes after the last field")]
    TrailingBytes,
    /// An authentication action outside RFC 8907 §5.1.
    #[error("unknown authentication action {0}")]
    UnknownAction(u8),
    /// An authen_type outside RFC 8907 §5.1 (or NOT_SET in an authentication START).
    #[error("unknown authen_type {0}")]
    UnknownAuthenType(u8),
    /// An authen_service outside RFC 8907 §5.1.
    #[error("unknown authen_service {0}")]
    UnknownService(u8),
    /// An authen_method outside RFC 8907 §6.1.
    #[error("unknown authen_method {0}")]
    UnknownAuthenMethod(u8),
    /// A reply status outside RFC 8907 §5.2, §6.2 or §7.3.
    #[error("unknown status {0}")]
    UnknownStatus(u8),
    /// A privilege level above 15.
    #[error("privilege level {0} above 15")]
    InvalidPrivLvl(u8),
    /// Accounting flags other than START, STOP, WATCHDOG or WATCHDOG|START (RFC 8907 §7.2).
    #[error("invalid accounting flags {0:#04x}")]
    InvalidAcctFlags(u8),
}

impl DecodeError {
    /// Stable snake_case label for drop counters (bounded cardinality).
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::TooShort => "too_short",
            DecodeError::UnsupportedVersion(_) => "unsupported_version",
            DecodeError::UnknownType(_) => "unknown_type",
            DecodeError::BodyTooLarge(_) => "body_too_large",
            DecodeError::LengthMismatch => "length_mismatch",
            DecodeError::HeaderTooSmall => "header_too_small",
            DecodeError::LengthOverflow => "length_overflow",
            DecodeError::ArgumentOverflow => "argument_overflow",
            DecodeError::TrailingBytes => "trailing_bytes",
            DecodeError::UnknownAction(_) => "unknown_action",
            DecodeError::UnknownAuthenType(_) => "unknown_authen_type",
            DecodeError::UnknownService(_) => "unknown_service",
            DecodeError::UnknownAuthenMethod(_) => "unknown_authen_method",
            DecodeError::UnknownStatus(_) => "unknown_status",
            DecodeError::InvalidPrivLvl(_) => "invalid_priv_lvl",
            DecodeError::InvalidAcctFlags(_) => "invalid_acct_flags",
        }
    }
}

/// Why a packet could not be written by [`encode_packet`] or a body encoder.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The caller's buffer cannot hold the packet.
    #[error("buffer too small for the packet")]
    BufferTooSmall,
    /// A field is longer than its length field can say (255 or 65535 octets).
    #[error("field too long for its length field")]
    FieldTooLong,
    /// More than 255 arguments, or one argument longer than 255 octets.
    #[error("too many or too long arguments")]
    ArgumentTooLong,
    /// The body would exceed [`MAX_BODY_LEN`].
    #[error("body above the limit")]
    BodyTooLarge,
    /// The header's packet type does not match the body's.
    #[error("header type does not match the body")]
    TypeMismatch,
    /// A privilege level above 15 or accounting flags RFC 8907 does not allow.
    #[error("field value not allowed on the wire")]
    InvalidValue,
}

impl EncodeError {
    /// Stable snake_case label for counters and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            EncodeError::BufferTooSmall => "buffer_too_small",
            EncodeError::FieldTooLong => "field_too_long",
            EncodeError::ArgumentTooLong => "argument_too_long",
            EncodeError::BodyTooLarge => "body_too_large",
            EncodeError::TypeMismatch => "type_mismatch",
            EncodeError::InvalidValue => "invalid_value",
        }
    }
}
