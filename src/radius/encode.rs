//! Writes RADIUS packets into a caller-supplied buffer.
//!
//! This file owns packet assembly: header, attribute framing (plain, split, raw, VSA, hidden
//! User-Password), Message-Authenticator placement (always the FIRST attribute, the
//! BLAST-RADIUS mitigation) and the final Length/Message-Authenticator/Authenticator fill-in.
//! It must not allocate, panic, or pick Request Authenticators itself (randomness is the
//! caller's): every write is bounds-checked and every push is all-or-nothing.

use super::auth::{ClientKey, MAX_PASSWORD_LEN};
use super::{attr, Code, HEADER_LEN, MAX_ATTR_VALUE_LEN, MAX_PACKET_LEN};

/// Why a packet could not be written.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The caller's buffer cannot hold the packet.
    #[error("buffer too small for the packet")]
    BufferTooSmall,
    /// A value does not fit in one attribute (253 octets, 247 in a VSA with format 1,1).
    #[error("attribute value too long")]
    ValueTooLong,
    /// The packet would exceed 4096 octets.
    #[error("packet would exceed 4096 octets")]
    PacketTooLong,
    /// An attribute with type 0, a Length that disagrees with its bytes, or a
    /// Message-Authenticator whose value is not 16 octets.
    #[error("malformed attribute")]
    MalformedAttribute,
    /// A second Message-Authenticator (the encoder may already have reserved one).
    #[error("duplicate Message-Authenticator")]
    DuplicateMessageAuthenticator,
    /// A User-Password that is empty or longer than 128 octets.
    #[error("User-Password must be 1..=128 octets")]
    BadPassword,
    /// User-Password was pushed into a reply, which has no Request Authenticator of its own.
    #[error("User-Password needs a request encoder")]
    NotARequest,
}

/// Offset of the reserved Message-Authenticator value (right after the header and the
/// attribute's type and length octets).
const MA_VALUE_OFFSET: usize = HEADER_LEN + 2;

/// Writes a packet into a caller-supplied buffer (no allocation). Message-Authenticator, when
/// present, is always the FIRST attribute.
#[derive(Debug)]
pub struct Encoder<'b> {
    buf: &'b mut [u8],
    len: usize,
    code: Code,
    /// The Request Authenticator of a request encoder; `None` for replies.
    request_authenticator: Option<[u8; 16]>,
    /// True when the encoder reserved the Message-Authenticator at offset 20.
    reserved_ma: bool,
    /// True once any Message-Authenticator (reserved or pushed raw) is in the packet.
    has_ma: bool,
}

impl<'b> Encoder<'b> {
    fn start(
        buf: &'b mut [u8],
        code: Code,
        identifier: u8,
        authenticator: &[u8; 16],
        message_authenticator: bool,
    ) -> Result<Encoder<'b>, EncodeError> {
        let header = buf
            .get_mut(..HEADER_LEN)
            .ok_or(EncodeError::BufferTooSmall)?;
        header.fill(0);
        if let [c, id, _, _, auth @ ..] = header {
            *c = code.as_u8();
            *id = identifier;
            auth.copy_from_slice(authenticator);
        }
        let mut encoder = Encoder {
            buf,
            len: HEADER_LEN,
            code,
            request_authenticator: None,
            reserved_ma: false,
            has_ma: false,
        };
        if message_authenticator {
            encoder.push(attr::MESSAGE_AUTHENTICATOR, &[0u8; 16])?;
            encoder.reserved_ma = true;
        }
        Ok(encoder)
    }

    /// Server side: Accept/Reject/Challenge (or Status-Server answer) to a request. Always
    /// reserves Message-Authenticator first.
    pub fn reply(
        buf: &'b mut [u8],
        code: Code,
        identifier: u8,
    ) -> Result<Encoder<'b>, EncodeError> {
        Encoder::start(buf, code, identifier, &[0u8; 16], true)
    }

    /// Client side (tests, load generator): a request with the given Request Authenticator; MA
    /// first when `message_authenticator`. For Accounting-Request, CoA-Request and
    /// Disconnect-Request the authenticator is computed by [`Encoder::finish_request`] instead
    /// and `authenticator` only serves to hide a User-Password (which those packets never carry).
    pub fn request(
        buf: &'b mut [u8],
        code: Code,
        identifier: u8,
        authenticator: &[u8; 16],
        message_authenticator: bool,
    ) -> Result<Encoder<'b>, EncodeError> {
        let mut encoder =
            Encoder::start(buf, code, identifier, authenticator, message_authenticator)?;
        encoder.request_authenticator = Some(*authenticator);
        Ok(encoder)
    }

    /// Octets written so far (header included).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when only the header has been written.
    pub fn is_empty(&self) -> bool {
        self.len == HEADER_LEN
    }

    /// Reserves `n` octets at the end of the packet, checking both limits.
    fn reserve(&mut self, n: usize) -> Result<&mut [u8], EncodeError> {
        let end = self.len.checked_add(n).ok_or(EncodeError::PacketTooLong)?;
        if end > MAX_PACKET_LEN {
            return Err(EncodeError::PacketTooLong);
        }
        let start = self.len;
        let slot = self
            .buf
            .get_mut(start..end)
            .ok_or(EncodeError::BufferTooSmall)?;
        self.len = end;
        Ok(slot)
    }

    /// Checks the Message-Authenticator rules for an attribute of `attr_type` and `value_len`.
    fn check_ma(&mut self, attr_type: u8, value_len: usize) -> Result<(), EncodeError> {
        if attr_type == attr::MESSAGE_AUTHENTICATOR {
            if value_len != 16 {
                return Err(EncodeError::MalformedAttribute);
            }
            if self.has_ma {
                return Err(EncodeError::DuplicateMessageAuthenticator);
            }
        }
        Ok(())
    }

    /// Appends one attribute; `value` <= 253 bytes.
    pub fn push(&mut self, attr_type: u8, value: &[u8]) -> Result<(), EncodeError> {
        if attr_type == 0 {
            return Err(EncodeError::MalformedAttribute);
        }
        let len = u8::try_from(value.len() + 2)
            .ok()
            .filter(|_| value.len() <= MAX_ATTR_VALUE_LEN)
            .ok_or(EncodeError::ValueTooLong)?;
        self.check_ma(attr_type, value.len())?;
        let slot = self.reserve(usize::from(len))?;
        if let [t, l, rest @ ..] = slot {
            *t = attr_type;
            *l = len;
            rest.copy_from_slice(value);
        }
        if attr_type == attr::MESSAGE_AUTHENTICATOR {
            self.has_ma = true;
        }
        Ok(())
    }

    /// Appends a long value (Reply-Message, EAP-Message, …) split over as many attributes of
    /// `attr_type` as needed, 253 octets each (RFC 2865 §5.18, RFC 3579 §3.1). An empty value
    /// yields one empty attribute. All or nothing: on error nothing is written.
    pub fn push_split(&mut self, attr_type: u8, value: &[u8]) -> Result<(), EncodeError> {
        if attr_type == 0 || attr_type == attr::MESSAGE_AUTHENTICATOR {
            return Err(EncodeError::MalformedAttribute);
        }
        let chunks = value.len().div_ceil(MAX_ATTR_VALUE_LEN).max(1);
        let total = value.len() + 2 * chunks;
        let end = self
            .len
            .checked_add(total)
            .ok_or(EncodeError::PacketTooLong)?;
        if end > MAX_PACKET_LEN {
            return Err(EncodeError::PacketTooLong);
        }
        if end > self.buf.len() {
            return Err(EncodeError::BufferTooSmall);
        }
        if value.is_empty() {
            return self.push(attr_type, value);
        }
        for chunk in value.chunks(MAX_ATTR_VALUE_LEN) {
            self.push(attr_type, chunk)?;
        }
        Ok(())
    }

    /// Appends an already-encoded attribute (e.g. from the dictionary, or a VSA), written
    /// verbatim after checking its framing: type != 0 and its Length octet equal to its size.
    /// A raw Message-Authenticator is copied as is (not recomputed by the finish methods).
    pub fn push_raw(&mut self, encoded_attribute: &[u8]) -> Result<(), EncodeError> {
        let [ty, len, ..] = *encoded_attribute else {
            return Err(EncodeError::MalformedAttribute);
        };
        if ty == 0 || usize::from(len) != encoded_attribute.len() || len < 2 {
            return Err(EncodeError::MalformedAttribute);
        }
        self.check_ma(ty, encoded_attribute.len() - 2)?;
        self.reserve(encoded_attribute.len())?
            .copy_from_slice(encoded_attribute);
        if ty == attr::MESSAGE_AUTHENTICATOR {
            self.has_ma = true;
        }
        Ok(())
    }

    /// Appends a Vendor-Specific attribute in the RFC 2865 §5.26 recommended format
    /// (vendor type and vendor length one octet each); `value` <= 247 bytes.
    pub fn push_vsa(
        &mut self,
        vendor_id: u32,
        vendor_type: u8,
        value: &[u8],
    ) -> Result<(), EncodeError> {
        if value.len() > MAX_ATTR_VALUE_LEN - 6 {
            return Err(EncodeError::ValueTooLong);
        }
        let total = value.len() + 8;
        let slot = self.reserve(total)?;
        if let [t, l, v0, v1, v2, v3, vt, vl, rest @ ..] = slot {
            *t = attr::VENDOR_SPECIFIC;
            *l = u8::try_from(total).unwrap_or(u8::MAX);
            [*v0, *v1, *v2, *v3] = vendor_id.to_be_bytes();
            *vt = vendor_type;
            *vl = u8::try_from(value.len() + 2).unwrap_or(u8::MAX);
            rest.copy_from_slice(value);
        }
        Ok(())
    }

    /// Client side: hides `password` with the key and this request's Request Authenticator
    /// (RFC 2865 §5.2) and appends it as User-Password.
    pub fn push_user_password(
        &mut self,
        key: &ClientKey,
        password: &[u8],
    ) -> Result<(), EncodeError> {
        let authenticator = self.request_authenticator.ok_or(EncodeError::NotARequest)?;
        if password.is_empty() || password.len() > MAX_PASSWORD_LEN {
            return Err(EncodeError::BadPassword);
        }
        let mut hidden = [0u8; MAX_PASSWORD_LEN];
        let hidden = key
            .hide_password(&authenticator, password, &mut hidden)
            .map_err(|_| EncodeError::BadPassword)?;
        self.push(attr::USER_PASSWORD, hidden)
    }

    /// Writes the Length field and returns the packet so far.
    fn set_length(&mut self) -> Result<(), EncodeError> {
        let len = u16::try_from(self.len).map_err(|_| EncodeError::PacketTooLong)?;
        self.buf
            .get_mut(2..4)
            .ok_or(EncodeError::BufferTooSmall)?
            .copy_from_slice(&len.to_be_bytes());
        Ok(())
    }

    /// Writes `value` into the authenticator field.
    fn set_authenticator(&mut self, value: &[u8; 16]) -> Result<(), EncodeError> {
        self.buf
            .get_mut(4..HEADER_LEN)
            .ok_or(EncodeError::BufferTooSmall)?
            .copy_from_slice(value);
        Ok(())
    }

    /// Computes the reserved Message-Authenticator with `authenticator` in the authenticator
    /// field and writes it.
    fn sign_message_authenticator(
        &mut self,
        key: &ClientKey,
        authenticator: &[u8; 16],
    ) -> Result<(), EncodeError> {
        if !self.reserved_ma {
            return Ok(());
        }
        let packet = self
            .buf
            .get(..self.len)
            .ok_or(EncodeError::BufferTooSmall)?;
        let mac = key.message_authenticator_parts(packet, authenticator, MA_VALUE_OFFSET);
        self.buf
            .get_mut(MA_VALUE_OFFSET..MA_VALUE_OFFSET + 16)
            .ok_or(EncodeError::BufferTooSmall)?
            .copy_from_slice(&mac);
        Ok(())
    }

    /// Sets Length, computes MA over the packet with `request_authenticator` in the
    /// authenticator field, then the Response Authenticator.
    pub fn finish_reply(
        mut self,
        key: &ClientKey,
        request_authenticator: &[u8; 16],
    ) -> Result<&'b [u8], EncodeError> {
        self.set_length()?;
        self.sign_message_authenticator(key, request_authenticator)?;
        let packet = self
            .buf
            .get(..self.len)
            .ok_or(EncodeError::BufferTooSmall)?;
        let response = key.packet_digest(packet, request_authenticator);
        self.set_authenticator(&response)?;
        let Encoder { buf, len, .. } = self;
        let buf: &'b [u8] = buf;
        buf.get(..len).ok_or(EncodeError::BufferTooSmall)
    }

    /// Client side: sets Length and computes MA (Access-Request / Status-Server: over the
    /// packet with its own Request Authenticator). For Accounting-Request, CoA-Request and
    /// Disconnect-Request the MA is computed with a zero authenticator field and then the
    /// Request Authenticator = MD5(packet | secret) is written (RFC 2866 §3, RFC 5176 §2.3).
    pub fn finish_request(mut self, key: &ClientKey) -> Result<&'b [u8], EncodeError> {
        self.set_length()?;
        if self.code.has_computed_request_authenticator() {
            let zero = [0u8; 16];
            self.set_authenticator(&zero)?;
            self.sign_message_authenticator(key, &zero)?;
            let packet = self
                .buf
                .get(..self.len)
                .ok_or(EncodeError::BufferTooSmall)?;
            let request = key.packet_digest(packet, &zero);
            self.set_authenticator(&request)?;
        } else {
            let own = self.request_authenticator.unwrap_or_default();
            self.sign_message_authenticator(key, &own)?;
        }
        let Encoder { buf, len, .. } = self;
        let buf: &'b [u8] = buf;
        buf.get(..len).ok_or(EncodeError::BufferTooSmall)
    }

    /// Sets Length only, leaving the authenticator field and any Message-Authenticator as they
    /// are (re-encoding already-signed attributes, fuzzing, tests).
    pub fn finish_unsigned(mut self) -> Result<&'b [u8], EncodeError> {
        self.set_length()?;
        let Encoder { buf, len, .. } = self;
        let buf: &'b [u8] = buf;
        buf.get(..len).ok_or(EncodeError::BufferTooSmall)
    }
}
