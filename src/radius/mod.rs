//! Sans-IO RADIUS codec (RFC 2865, 2866, 2869, 3579, 5080, 5176, 5997).
//!
//! This module owns the RADIUS wire format: the zero-copy validated packet view ([`Packet`]),
//! the reply/request writer ([`Encoder`]), the shared-secret cryptography ([`ClientKey`]:
//! Message-Authenticator, Response Authenticator, User-Password hide/unhide, CHAP) and the
//! FreeRADIUS-format dictionary loader ([`dict`]). It must not touch sockets, the clock or
//! randomness: callers pass bytes, Request Authenticators and secrets in and get bytes or
//! typed errors back. Only [`dict::Dictionary::load`] reads files. Decoding and encoding never
//! allocate and never panic on untrusted input.

// Untrusted bytes never panic here: unwrap, expect and panic are denied crate-wide
// (Cargo.toml [lints.clippy]); this pure module also denies unchecked indexing.
#![deny(clippy::indexing_slicing)]

mod auth;
pub mod dict;
mod encode;
mod packet;

#[cfg(test)]
mod tests;

pub use auth::{chap_response, ClientKey, PasswordError, MAX_PASSWORD_LEN};
pub use encode::{EncodeError, Encoder};
pub use packet::{Attributes, DecodeError, Packet};

/// Length of the fixed RADIUS header: Code, Identifier, Length and the 16-octet Authenticator.
pub const HEADER_LEN: usize = 20;

/// Largest packet RADIUS allows (RFC 2865 §3); longer Length fields are rejected.
pub const MAX_PACKET_LEN: usize = 4096;

/// Largest value one attribute can carry (255 minus the type and length octets).
pub const MAX_ATTR_VALUE_LEN: usize = 253;

/// Attribute type numbers from the IANA RADIUS registry that the gateway uses by number.
pub mod attr {
    /// User-Name (RFC 2865 §5.1).
    pub const USER_NAME: u8 = 1;
    /// User-Password, hidden with the shared secret (RFC 2865 §5.2).
    pub const USER_PASSWORD: u8 = 2;
    /// CHAP-Password: CHAP Ident followed by the 16-octet response (RFC 2865 §5.3).
    pub const CHAP_PASSWORD: u8 = 3;
    /// NAS-IP-Address (RFC 2865 §5.4).
    pub const NAS_IP_ADDRESS: u8 = 4;
    /// NAS-Port (RFC 2865 §5.5).
    pub const NAS_PORT: u8 = 5;
    /// Service-Type (RFC 2865 §5.6).
    pub const SERVICE_TYPE: u8 = 6;
    /// Framed-Protocol (RFC 2865 §5.7).
    pub const FRAMED_PROTOCOL: u8 = 7;
    /// Framed-IP-Address (RFC 2865 §5.8).
    pub const FRAMED_IP_ADDRESS: u8 = 8;
    /// Filter-Id (RFC 2865 §5.11).
    pub const FILTER_ID: u8 = 11;
    /// Reply-Message (RFC 2865 §5.18).
    pub const REPLY_MESSAGE: u8 = 18;
    /// State (RFC 2865 §5.24).
    pub const STATE: u8 = 24;
    /// Class (RFC 2865 §5.25).
    pub const CLASS: u8 = 25;
    /// Vendor-Specific (RFC 2865 §5.26).
    pub const VENDOR_SPECIFIC: u8 = 26;
    /// Session-Timeout (RFC 2865 §5.27).
    pub const SESSION_TIMEOUT: u8 = 27;
    /// Idle-Timeout (RFC 2865 §5.28).
    pub const IDLE_TIMEOUT: u8 = 28;
    /// Called-Station-Id (RFC 2865 §5.30).
    pub const CALLED_STATION_ID: u8 = 30;
    /// Calling-Station-Id (RFC 2865 §5.31).
    pub const CALLING_STATION_ID: u8 = 31;
    /// NAS-Identifier (RFC 2865 §5.32).
    pub const NAS_IDENTIFIER: u8 = 32;
    /// Proxy-State (RFC 2865 §5.33).
    pub const PROXY_STATE: u8 = 33;
    /// CHAP-Challenge (RFC 2865 §5.40).
    pub const CHAP_CHALLENGE: u8 = 60;
    /// NAS-Port-Type (RFC 2865 §5.41).
    pub const NAS_PORT_TYPE: u8 = 61;
    /// Prompt (RFC 2869 §5.10).
    pub const PROMPT: u8 = 76;
    /// EAP-Message (RFC 3579 §3.1).
    pub const EAP_MESSAGE: u8 = 79;
    /// Message-Authenticator (RFC 3579 §3.2).
    pub const MESSAGE_AUTHENTICATOR: u8 = 80;
    /// NAS-IPv6-Address (RFC 3162 §2.1).
    pub const NAS_IPV6_ADDRESS: u8 = 95;
}

/// RADIUS packet Code (IANA "Packet Type Codes"); only the codes this codec accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    /// Access-Request (RFC 2865).
    AccessRequest = 1,
    /// Access-Accept (RFC 2865).
    AccessAccept = 2,
    /// Access-Reject (RFC 2865).
    AccessReject = 3,
    /// Accounting-Request (RFC 2866).
    AccountingRequest = 4,
    /// Accounting-Response (RFC 2866).
    AccountingResponse = 5,
    /// Access-Challenge (RFC 2865).
    AccessChallenge = 11,
    /// Status-Server (RFC 5997).
    StatusServer = 12,
    /// Status-Client (RFC 5997, reserved).
    StatusClient = 13,
    /// Disconnect-Request (RFC 5176).
    DisconnectRequest = 40,
    /// Disconnect-ACK (RFC 5176).
    DisconnectAck = 41,
    /// Disconnect-NAK (RFC 5176).
    DisconnectNak = 42,
    /// CoA-Request (RFC 5176).
    CoaRequest = 43,
    /// CoA-ACK (RFC 5176).
    CoaAck = 44,
    /// CoA-NAK (RFC 5176).
    CoaNak = 45,
}

impl Code {
    /// Maps a wire Code octet to a known [`Code`]; `None` for anything else.
    pub fn from_u8(v: u8) -> Option<Code> {
        Some(match v {
            1 => Code::AccessRequest,
            2 => Code::AccessAccept,
            3 => Code::AccessReject,
            4 => Code::AccountingRequest,
            5 => Code::AccountingResponse,
            11 => Code::AccessChallenge,
            12 => Code::StatusServer,
            13 => Code::StatusClient,
            40 => Code::DisconnectRequest,
            41 => Code::DisconnectAck,
            42 => Code::DisconnectNak,
            43 => Code::CoaRequest,
            44 => Code::CoaAck,
            45 => Code::CoaNak,
            _ => return None,
        })
    }

    /// The wire Code octet.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// True for requests whose Request Authenticator is an MD5 over the packet and the secret
    /// (Accounting-Request, Disconnect-Request, CoA-Request: RFC 2866 §3, RFC 5176 §2.3) rather
    /// than a random nonce (Access-Request, Status-Server).
    pub fn has_computed_request_authenticator(self) -> bool {
        matches!(
            self,
            Code::AccountingRequest | Code::DisconnectRequest | Code::CoaRequest
        )
    }
}
