//! MD5 pad obfuscation of TACACS+ bodies (RFC 8907 §4.5) and key rollover.
//!
//! This file owns the pad: `MD5(session_id, key, version, seq_no)`, then
//! `MD5(session_id, key, version, seq_no, previous hash)` for each further 16 octets, XORed
//! over the body in place (the same operation hides and reveals). It must not allocate, log or
//! print keys, or decide policy about the UNENCRYPTED flag (the caller does: RFC 8907 says a
//! server with a key should refuse clear bodies).
//!
//! Key rollover: a client may be configured with several keys (the new one and the old one
//! during a change). [`deobfuscate_with_keys`] tries them in order and keeps the first whose
//! de-obfuscated body parses as the packet type the header implies, with every length field
//! exactly fitting the body and every enum octet known. With a wrong key the body is MD5 noise,
//! so that heuristic accepts a wrong key only by accident: at least two length octets and an
//! enum or flags octet must agree with the body's size and the registry, roughly one chance in
//! 2^16 or far less per wrong key. A wrong pick is still harmless for authentication: the
//! credentials read from it are noise and fail verification, never pass.

use md5::{Digest, Md5};

use super::{Body, Header};

/// XORs the MD5 pad for `key` and `header` over `body` in place.
fn apply_pad(key: &[u8], header: &Header, body: &mut [u8]) {
    let session_id = header.session_id.to_be_bytes();
    let tail = [header.version.as_u8(), header.seq_no];
    let mut previous: Option<[u8; 16]> = None;
    for chunk in body.chunks_mut(16) {
        let mut md5 = Md5::new();
        md5.update(session_id);
        md5.update(key);
        md5.update(tail);
        if let Some(prev) = previous {
            md5.update(prev);
        }
        let pad: [u8; 16] = md5.finalize().into();
        for (b, p) in chunk.iter_mut().zip(pad) {
            *b ^= p;
        }
        previous = Some(pad);
    }
}

/// Obfuscates `body` in place with `key` (the body of a packet with `header`).
pub fn obfuscate(key: &[u8], header: &Header, body: &mut [u8]) {
    apply_pad(key, header, body);
}

/// Reveals an obfuscated `body` in place with `key` (the same XOR as [`obfuscate`]).
pub fn deobfuscate(key: &[u8], header: &Header, body: &mut [u8]) {
    apply_pad(key, header, body);
}

/// Key rollover: tries `keys` in order on the obfuscated `body` and returns the index of the
/// first key whose result parses as the body `header` announces ([`Body::decode`]: lengths
/// that exactly fit, known enum values), leaving `body` de-obfuscated with it. When no key
/// fits, `body` is left as it came and `None` is returned. A header with the UNENCRYPTED flag
/// also yields `None` and leaves `body` alone: there is no key to pick, and whether a clear
/// body is acceptable is the caller's policy.
pub fn deobfuscate_with_keys(keys: &[&[u8]], header: &Header, body: &mut [u8]) -> Option<usize> {
    if !header.is_obfuscated() {
        return None;
    }
    for (index, key) in keys.iter().enumerate() {
        apply_pad(key, header, body);
        if Body::decode(header, body).is_ok() {
            return Some(index);
        }
        // Undo: the pad is its own inverse.
        apply_pad(key, header, body);
    }
    None
}
