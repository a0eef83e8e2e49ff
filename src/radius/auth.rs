//! Shared-secret cryptography of RADIUS: Message-Authenticator (HMAC-MD5, RFC 3579 §3.2),
//! Request/Response Authenticators (MD5, RFC 2865 §3, RFC 2866 §3), User-Password hide/unhide
//! (RFC 2865 §5.2) and the CHAP response (RFC 1994 / RFC 2865 §5.3).
//!
//! It owns the pre-keyed hash states so that per-packet work never re-derives keys. It must not
//! allocate per packet, log or print the secret, or compare MACs with `==`: every comparison goes
//! through `subtle::ConstantTimeEq`.

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

use super::packet::Packet;

/// Longest User-Password RFC 2865 §5.2 allows (128 octets, hidden in eight 16-octet blocks).
pub const MAX_PASSWORD_LEN: usize = 128;

/// HMAC-MD5 block size: keys are zero-padded (or hashed, when longer) to this length.
const MD5_BLOCK_LEN: usize = 64;

/// Why a User-Password could not be hidden or unhidden.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum PasswordError {
    /// Hidden value not a multiple of 16 in 16..=128 octets, or clear password not 1..=128 octets.
    #[error("User-Password has a bad length")]
    BadLength,
}

/// A client's shared secret with a pre-keyed HMAC-MD5 state (cloned per use, so keying costs
/// nothing per packet).
#[derive(Clone)]
pub struct ClientKey {
    secret: Box<[u8]>,
    /// HMAC-MD5 keyed with the secret (Message-Authenticator).
    hmac: Hmac<Md5>,
    /// MD5 that has already absorbed the secret (User-Password hiding: MD5(S + RA)).
    md5_secret: Md5,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientKey(..)")
    }
}

impl ClientKey {
    /// Keys the hash states with `secret`.
    pub fn new(secret: &[u8]) -> ClientKey {
        // HMAC pads short keys with zeros and hashes long ones (RFC 2104 §2); doing it here lets
        // us use the infallible fixed-size constructor instead of unwrapping `new_from_slice`.
        let mut block = [0u8; MD5_BLOCK_LEN];
        if secret.len() > MD5_BLOCK_LEN {
            let digest: [u8; 16] = Md5::digest(secret).into();
            for (dst, src) in block.iter_mut().zip(digest) {
                *dst = src;
            }
        } else {
            for (dst, src) in block.iter_mut().zip(secret) {
                *dst = *src;
            }
        }
        let hmac = <Hmac<Md5> as KeyInit>::new(&block.into());
        let mut md5_secret = Md5::new();
        md5_secret.update(secret);
        ClientKey {
            secret: secret.into(),
            hmac,
            md5_secret,
        }
    }

    /// The raw shared secret.
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// HMAC-MD5 over the packet with the MA value zeroed and `authenticator` in the authenticator
    /// field (for requests pass the packet's own authenticator; for replies, the request's; for
    /// Accounting/CoA/Disconnect requests, 16 zero octets). Constant time. false if no MA.
    pub fn verify_message_authenticator(
        &self,
        packet: &Packet<'_>,
        authenticator: &[u8; 16],
    ) -> bool {
        let (Some(offset), Some(received)) = (
            packet.message_authenticator_offset(),
            packet.message_authenticator(),
        ) else {
            return false;
        };
        let computed = self.message_authenticator_parts(packet.as_bytes(), authenticator, offset);
        computed.ct_eq(received).into()
    }

    /// HMAC-MD5 of `packet` with `authenticator` substituted into the authenticator field and the
    /// 16 octets at `ma_offset` treated as zero. `packet` must hold at least the 20-octet header.
    pub(crate) fn message_authenticator_parts(
        &self,
        packet: &[u8],
        authenticator: &[u8; 16],
        ma_offset: usize,
    ) -> [u8; 16] {
        let mut mac = self.hmac.clone();
        mac.update(packet.get(..4).unwrap_or_default());
        mac.update(authenticator);
        mac.update(packet.get(super::HEADER_LEN..ma_offset).unwrap_or_default());
        mac.update(&[0u8; 16]);
        mac.update(
            packet
                .get(ma_offset.saturating_add(16)..)
                .unwrap_or_default(),
        );
        mac.finalize().into_bytes().into()
    }

    /// MD5(Code | Identifier | Length | `authenticator` | Attributes | Secret): the Response
    /// Authenticator (with the Request Authenticator) or the Accounting/CoA Request
    /// Authenticator (with 16 zero octets).
    pub(crate) fn packet_digest(&self, packet: &[u8], authenticator: &[u8; 16]) -> [u8; 16] {
        let mut md5 = Md5::new();
        md5.update(packet.get(..4).unwrap_or_default());
        md5.update(authenticator);
        md5.update(packet.get(super::HEADER_LEN..).unwrap_or_default());
        md5.update(&self.secret);
        md5.finalize().into()
    }

    /// Client side: checks a reply's Response Authenticator =
    /// MD5(Code|Id|Length|RequestAuth|Attrs|Secret). Constant time.
    pub fn verify_response_authenticator(
        &self,
        reply: &Packet<'_>,
        request_authenticator: &[u8; 16],
    ) -> bool {
        let computed = self.packet_digest(reply.as_bytes(), request_authenticator);
        computed.ct_eq(reply.authenticator()).into()
    }

    /// Server side: checks the Request Authenticator of an Accounting-Request, CoA-Request or
    /// Disconnect-Request (MD5 over the packet with a zero authenticator field and the secret,
    /// RFC 2866 §3, RFC 5176 §2.3). Constant time.
    pub fn verify_request_authenticator(&self, request: &Packet<'_>) -> bool {
        let computed = self.packet_digest(request.as_bytes(), &[0u8; 16]);
        computed.ct_eq(request.authenticator()).into()
    }

    /// RFC 2865 §5.2. `hidden` must be a multiple of 16, 16..=128 bytes; returns the password
    /// with trailing NULs stripped.
    pub fn unhide_password<'o>(
        &self,
        request_authenticator: &[u8; 16],
        hidden: &[u8],
        out: &'o mut [u8; 128],
    ) -> Result<&'o [u8], PasswordError> {
        if hidden.is_empty() || hidden.len() > MAX_PASSWORD_LEN || hidden.len() % 16 != 0 {
            return Err(PasswordError::BadLength);
        }
        // b(i) = MD5(S + c(i-1)) with c(0) = RA; p(i) = c(i) xor b(i).
        let mut previous: &[u8] = request_authenticator;
        for (cipher, plain) in hidden.chunks_exact(16).zip(out.chunks_exact_mut(16)) {
            let mut md5 = self.md5_secret.clone();
            md5.update(previous);
            let pad: [u8; 16] = md5.finalize().into();
            for ((p, c), b) in plain.iter_mut().zip(cipher).zip(pad) {
                *p = c ^ b;
            }
            previous = cipher;
        }
        let clear = out.get(..hidden.len()).unwrap_or_default();
        let len = clear.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        Ok(clear.get(..len).unwrap_or_default())
    }

    /// RFC 2865 §5.2: 1..=128 bytes in, NUL-padded to a multiple of 16, hidden with the secret
    /// and `request_authenticator`.
    pub fn hide_password<'o>(
        &self,
        request_authenticator: &[u8; 16],
        password: &[u8],
        out: &'o mut [u8; 128],
    ) -> Result<&'o [u8], PasswordError> {
        if password.is_empty() || password.len() > MAX_PASSWORD_LEN {
            return Err(PasswordError::BadLength);
        }
        let hidden_len = password.len().div_ceil(16) * 16;
        let hidden = out.get_mut(..hidden_len).ok_or(PasswordError::BadLength)?;
        hidden.fill(0);
        for (dst, src) in hidden.iter_mut().zip(password) {
            *dst = *src;
        }
        let mut previous = *request_authenticator;
        for block in hidden.chunks_exact_mut(16) {
            let mut md5 = self.md5_secret.clone();
            md5.update(previous);
            let pad: [u8; 16] = md5.finalize().into();
            for (c, b) in block.iter_mut().zip(pad) {
                *c ^= b;
            }
            for (p, c) in previous.iter_mut().zip(block.iter()) {
                *p = *c;
            }
        }
        Ok(hidden)
    }
}

/// RFC 1994/2865 CHAP: MD5(id | password | challenge) (shared with TACACS+, so it lives in `otp`).
pub use crate::otp::chap_response;
