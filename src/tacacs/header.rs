//! The 12-octet TACACS+ packet header (RFC 8907 §4.1).
//!
//! This file owns header decoding and encoding: version (0xc0 / 0xc1 only), packet type
//! (1..=3), seq_no, flags, session_id and the body length, capped at [`MAX_BODY_LEN`] (or a
//! caller's lower cap) *before* the caller allocates or reads the body. It must not interpret
//! the body, the sequence rules (that is [`super::Session`]'s job) or touch any I/O.

use super::DecodeError;

/// Length of the fixed header.
pub const HEADER_LEN: usize = 12;

/// Default cap on the body length (64 KiB, the FreeRADIUS limit). A server may pass a lower one
/// to [`Header::decode_with_limit`]; a longer length field is rejected before any body byte is
/// read or any buffer is sized from it.
pub const MAX_BODY_LEN: u32 = 64 * 1024;

/// Header flag: the body is not obfuscated (RFC 8907 §4.5; test use only).
pub const FLAG_UNENCRYPTED: u8 = 0x01;

/// Header flag: single-connection mode, several sessions on one connection (RFC 8907 §4.3).
pub const FLAG_SINGLE_CONNECT: u8 = 0x04;

/// The version octet: major 0xc with minor 0 (default) or 1 (PAP/CHAP/MS-CHAP login).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// 0xc0, TAC_PLUS_MINOR_VER_DEFAULT.
    Default = 0xc0,
    /// 0xc1, TAC_PLUS_MINOR_VER_ONE.
    One = 0xc1,
}

impl Version {
    /// Maps a wire octet to a version; `None` for anything but 0xc0 and 0xc1.
    pub fn from_u8(v: u8) -> Option<Version> {
        match v {
            0xc0 => Some(Version::Default),
            0xc1 => Some(Version::One),
            _ => None,
        }
    }

    /// The wire octet.
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

/// The packet type octet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// TAC_PLUS_AUTHEN.
    Authentication = 1,
    /// TAC_PLUS_AUTHOR.
    Authorization = 2,
    /// TAC_PLUS_ACCT.
    Accounting = 3,
}

impl PacketType {
    /// Maps a wire octet to a type; `None` for anything but 1..=3.
    pub fn from_u8(v: u8) -> Option<PacketType> {
        match v {
            1 => Some(PacketType::Authentication),
            2 => Some(PacketType::Authorization),
            3 => Some(PacketType::Accounting),
            _ => None,
        }
    }

    /// The wire octet.
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

/// A decoded header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// Major/minor version.
    pub version: Version,
    /// Authentication, authorization or accounting.
    pub packet_type: PacketType,
    /// Sequence number: odd from the client, even from the server, starting at 1.
    pub seq_no: u8,
    /// Raw flags octet ([`FLAG_UNENCRYPTED`], [`FLAG_SINGLE_CONNECT`]); unknown bits are kept
    /// so that a packet re-encodes byte for byte.
    pub flags: u8,
    /// Session identifier chosen by the client.
    pub session_id: u32,
    /// Body length (already checked against the cap).
    pub length: u32,
}

impl Header {
    /// A header to encode; `length` is filled in by [`super::encode_packet`].
    pub fn new(
        version: Version,
        packet_type: PacketType,
        seq_no: u8,
        flags: u8,
        session_id: u32,
    ) -> Header {
        Header {
            version,
            packet_type,
            seq_no,
            flags,
            session_id,
            length: 0,
        }
    }

    /// Decodes a header with the default [`MAX_BODY_LEN`] cap.
    pub fn decode(bytes: &[u8; HEADER_LEN]) -> Result<Header, DecodeError> {
        Header::decode_with_limit(bytes, MAX_BODY_LEN)
    }

    /// Decodes a header, rejecting body lengths above `max_body_len` (which is itself clamped
    /// to [`MAX_BODY_LEN`]). Checks version, then type, then the length cap.
    pub fn decode_with_limit(
        bytes: &[u8; HEADER_LEN],
        max_body_len: u32,
    ) -> Result<Header, DecodeError> {
        let [version, ty, seq_no, flags, s0, s1, s2, s3, l0, l1, l2, l3] = *bytes;
        let version = Version::from_u8(version).ok_or(DecodeError::UnsupportedVersion(version))?;
        let packet_type = PacketType::from_u8(ty).ok_or(DecodeError::UnknownType(ty))?;
        let length = u32::from_be_bytes([l0, l1, l2, l3]);
        if length > max_body_len.min(MAX_BODY_LEN) {
            return Err(DecodeError::BodyTooLarge(length));
        }
        Ok(Header {
            version,
            packet_type,
            seq_no,
            flags,
            session_id: u32::from_be_bytes([s0, s1, s2, s3]),
            length,
        })
    }

    /// Decodes the header at the start of `bytes` (which may hold more: the body, or the next
    /// packet on a stream).
    pub fn decode_prefix(bytes: &[u8]) -> Result<Header, DecodeError> {
        let (head, _) = bytes
            .split_first_chunk::<HEADER_LEN>()
            .ok_or(DecodeError::TooShort)?;
        Header::decode(head)
    }

    /// The 12 wire octets.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let [s0, s1, s2, s3] = self.session_id.to_be_bytes();
        let [l0, l1, l2, l3] = self.length.to_be_bytes();
        [
            self.version.as_u8(),
            self.packet_type.as_u8(),
            self.seq_no,
            self.flags,
            s0,
            s1,
            s2,
            s3,
            l0,
            l1,
            l2,
            l3,
        ]
    }

    /// Body length as a `usize` (at most [`MAX_BODY_LEN`], so always exact).
    pub fn body_len(&self) -> usize {
        usize::try_from(self.length).unwrap_or(usize::MAX)
    }

    /// True when the UNENCRYPTED flag is clear, i.e. the body is MD5-pad obfuscated.
    pub fn is_obfuscated(&self) -> bool {
        self.flags & FLAG_UNENCRYPTED == 0
    }

    /// True when the SINGLE_CONNECT flag is set.
    pub fn single_connect(&self) -> bool {
        self.flags & FLAG_SINGLE_CONNECT != 0
    }

    /// True for packets the client sends (odd sequence numbers).
    pub fn from_client(&self) -> bool {
        self.seq_no % 2 == 1
    }
}
