//! Zero-copy, validated view of one received RADIUS datagram.
//!
//! This file owns structural validation: header, Length, Code, every attribute header and the
//! Message-Authenticator shape rules. It must not allocate, panic, or check any cryptography
//! (that is [`super::ClientKey`]'s job); once [`Packet::decode`] succeeds, reading the packet
//! cannot fail.

use super::{attr, Code, HEADER_LEN, MAX_PACKET_LEN};

/// Why a datagram was rejected by [`Packet::decode`].
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The datagram is shorter than the 20-octet header.
    #[error("datagram shorter than the RADIUS header")]
    TooShort,
    /// The Code octet is not one this codec knows.
    #[error("unknown RADIUS code {0}")]
    UnknownCode(u8),
    /// The Length field is below 20.
    #[error("Length field below 20")]
    LengthBelowMinimum,
    /// The Length field is above 4096.
    #[error("Length field above 4096")]
    LengthAboveMaximum,
    /// The Length field is larger than the datagram received.
    #[error("Length field exceeds the datagram")]
    LengthExceedsDatagram,
    /// A single octet is left where an attribute header (two octets) should be.
    #[error("attribute header overflows the packet")]
    AttributeHeaderOverflow,
    /// An attribute has type 0.
    #[error("attribute type 0")]
    AttributeTypeZero,
    /// An attribute Length is below 2.
    #[error("attribute length below 2")]
    AttributeLengthTooSmall,
    /// An attribute Length runs past the end of the packet.
    #[error("attribute overflows the packet")]
    AttributeOverflow,
    /// A Message-Authenticator attribute is not exactly 18 octets long.
    #[error("Message-Authenticator length is not 18")]
    MessageAuthenticatorLength,
    /// More than one Message-Authenticator attribute.
    #[error("more than one Message-Authenticator")]
    DuplicateMessageAuthenticator,
    /// A Status-Server (RFC 5997 §3) or a packet carrying EAP-Message (RFC 3579 §3.2) without a
    /// Message-Authenticator; both RFCs require such packets to be discarded.
    #[error("Message-Authenticator required but missing")]
    MessageAuthenticatorRequired,
}

impl DecodeError {
    /// Stable snake_case label for drop counters (bounded cardinality).
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::TooShort => "too_short",
            DecodeError::UnknownCode(_) => "unknown_code",
            DecodeError::LengthBelowMinimum => "length_below_minimum",
            DecodeError::LengthAboveMaximum => "length_above_maximum",
            DecodeError::LengthExceedsDatagram => "length_exceeds_datagram",
            DecodeError::AttributeHeaderOverflow => "attribute_header_overflow",
            DecodeError::AttributeTypeZero => "attribute_type_zero",
            DecodeError::AttributeLengthTooSmall => "attribute_length_too_small",
            DecodeError::AttributeOverflow => "attribute_overflow",
            DecodeError::MessageAuthenticatorLength => "message_authenticator_length",
            DecodeError::DuplicateMessageAuthenticator => "duplicate_message_authenticator",
            DecodeError::MessageAuthenticatorRequired => "message_authenticator_required",
        }
    }
}

/// Zero-copy validated view of one packet.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    /// Exactly Length octets.
    bytes: &'a [u8],
    code: Code,
    authenticator: &'a [u8; 16],
    /// Offset of the Message-Authenticator *value* within `bytes`, and the value itself.
    message_authenticator: Option<(usize, &'a [u8; 16])>,
}

impl<'a> Packet<'a> {
    /// Validates header, Length (20..=4096 and <= datagram; bytes after Length are ignored per
    /// RFC 2865 §3), known Code, every attribute header (type != 0, length >= 2, no overflow),
    /// Message-Authenticator length == 18 and at most one of it. Status-Server and packets
    /// with EAP-Message must carry a Message-Authenticator. After this, iteration cannot fail.
    pub fn decode(datagram: &'a [u8]) -> Result<Packet<'a>, DecodeError> {
        let (header, _) = datagram
            .split_first_chunk::<HEADER_LEN>()
            .ok_or(DecodeError::TooShort)?;
        let [code, _identifier, len_hi, len_lo, ref authenticator @ ..] = *header;
        let code = Code::from_u8(code).ok_or(DecodeError::UnknownCode(code))?;
        let length = usize::from(u16::from_be_bytes([len_hi, len_lo]));
        if length < HEADER_LEN {
            return Err(DecodeError::LengthBelowMinimum);
        }
        if length > MAX_PACKET_LEN {
            return Err(DecodeError::LengthAboveMaximum);
        }
        let bytes = datagram
            .get(..length)
            .ok_or(DecodeError::LengthExceedsDatagram)?;

        let mut message_authenticator = None;
        let mut has_eap = false;
        let mut offset = HEADER_LEN;
        let mut rest = bytes.get(HEADER_LEN..).unwrap_or_default();
        while !rest.is_empty() {
            let [ty, len, ..] = *rest else {
                return Err(DecodeError::AttributeHeaderOverflow);
            };
            if ty == 0 {
                return Err(DecodeError::AttributeTypeZero);
            }
            let len = usize::from(len);
            if len < 2 {
                return Err(DecodeError::AttributeLengthTooSmall);
            }
            let (attribute, tail) = rest
                .split_at_checked(len)
                .ok_or(DecodeError::AttributeOverflow)?;
            match ty {
                attr::MESSAGE_AUTHENTICATOR => {
                    let value: &'a [u8; 16] = attribute
                        .get(2..)
                        .and_then(|v| v.try_into().ok())
                        .ok_or(DecodeError::MessageAuthenticatorLength)?;
                    if message_authenticator.is_some() {
                        return Err(DecodeError::DuplicateMessageAuthenticator);
                    }
                    message_authenticator = Some((offset + 2, value));
                }
                attr::EAP_MESSAGE => has_eap = true,
                _ => {}
            }
            offset += len;
            rest = tail;
        }
        if message_authenticator.is_none() && (has_eap || code == Code::StatusServer) {
            return Err(DecodeError::MessageAuthenticatorRequired);
        }
        Ok(Packet {
            bytes,
            code,
            authenticator,
            message_authenticator,
        })
    }

    /// The packet Code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The Identifier octet that pairs requests with replies.
    pub fn identifier(&self) -> u8 {
        self.bytes.get(1).copied().unwrap_or_default()
    }

    /// The 16-octet Authenticator field (a Request or Response Authenticator).
    pub fn authenticator(&self) -> &'a [u8; 16] {
        self.authenticator
    }

    /// The packet, exactly Length octets (trailing datagram padding excluded).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The attribute area: everything after the 20-octet header.
    pub fn attribute_bytes(&self) -> &'a [u8] {
        self.bytes.get(HEADER_LEN..).unwrap_or_default()
    }

    /// Iterates over `(type, value)` of every attribute, in wire order.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes {
            rest: self.attribute_bytes(),
        }
    }

    /// Value of the first attribute of `attr_type`, if any.
    pub fn first(&self, attr_type: u8) -> Option<&'a [u8]> {
        self.attributes()
            .find(|&(ty, _)| ty == attr_type)
            .map(|(_, value)| value)
    }

    /// Number of attributes of `attr_type`.
    pub fn count(&self, attr_type: u8) -> usize {
        self.attributes().filter(|&(ty, _)| ty == attr_type).count()
    }

    /// The Message-Authenticator value, if the packet carries one.
    pub fn message_authenticator(&self) -> Option<&'a [u8; 16]> {
        self.message_authenticator.map(|(_, value)| value)
    }

    /// Offset of the Message-Authenticator value within [`Packet::as_bytes`].
    pub(crate) fn message_authenticator_offset(&self) -> Option<usize> {
        self.message_authenticator.map(|(offset, _)| offset)
    }
}

/// Iterator over the `(type, value)` pairs of a decoded [`Packet`].
#[derive(Clone, Debug)]
pub struct Attributes<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Attributes<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let [ty, len, ..] = *self.rest else {
            return None;
        };
        // Decode validated every header; a malformed one here simply ends iteration.
        let Some((attribute, tail)) = self.rest.split_at_checked(usize::from(len)) else {
            self.rest = &[];
            return None;
        };
        self.rest = tail;
        attribute.get(2..).map(|value| (ty, value))
    }
}
