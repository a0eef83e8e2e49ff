//! HMAC and HKDF primitives shared by the OTP and secret-storage code.
//!
//! This module owns the one place where keyed hashes are computed, so that every caller gets an
//! infallible function instead of a `Result` whose error branch can never be taken. It must stay
//! private to `otp/` and must not grow protocol knowledge: callers decide what is hashed.
//!
//! Why the key is pre-shaped: `Mac::new_from_slice` returns a `Result` although HMAC accepts keys
//! of any length (RFC 2104 §2). We apply RFC 2104's rule ourselves (a key longer than the hash's
//! block is hashed first, then the key is zero-padded to one block) and use the infallible
//! block-sized constructor. The result is bit-for-bit HMAC, checked against `new_from_slice` in
//! the tests below.

use hmac::digest::{Digest, Key, KeyInit};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha512};
use zeroize::Zeroize;

use crate::model::HashAlgorithm;

/// Length of the longest MAC we produce (HMAC-SHA-512).
pub(crate) const MAX_MAC_LEN: usize = 64;

/// An HMAC output of up to [`MAX_MAC_LEN`] bytes, wiped when dropped.
pub(crate) struct MacOutput {
    buf: [u8; MAX_MAC_LEN],
    len: usize,
}

impl MacOutput {
    /// The MAC bytes (20, 32 or 64 of them).
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// The first 32 bytes as an array: the whole of an HMAC-SHA-256 tag.
    pub(crate) fn to_array32(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (dst, src) in out.iter_mut().zip(self.as_bytes()) {
            *dst = *src;
        }
        out
    }
}

impl Drop for MacOutput {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

/// An HMAC-`$digest` instance keyed with `$key` under RFC 2104's key rule (see the module doc).
macro_rules! keyed {
    ($digest:ty, $key:expr) => {{
        let key: &[u8] = $key;
        let mut block = Key::<Hmac<$digest>>::default();
        if key.len() > block.len() {
            let mut hashed = <$digest as Digest>::digest(key);
            for (dst, src) in block.iter_mut().zip(hashed.iter()) {
                *dst = *src;
            }
            hashed.as_mut_slice().zeroize();
        } else {
            for (dst, src) in block.iter_mut().zip(key) {
                *dst = *src;
            }
        }
        let mac = <Hmac<$digest> as KeyInit>::new(&block);
        block.as_mut_slice().zeroize();
        mac
    }};
}

/// Feeds `parts` to a keyed HMAC `$mac` (consumed), writes the tag into `$out` and returns its
/// length.
macro_rules! finish_into {
    ($mac:expr, $parts:expr, $out:expr) => {{
        let mut mac = $mac;
        for part in $parts {
            mac.update(part);
        }
        let mut tag = mac.finalize().into_bytes();
        let out: &mut [u8; MAX_MAC_LEN] = $out;
        let mut len = 0;
        for (dst, src) in out.iter_mut().zip(tag.iter()) {
            *dst = *src;
            len += 1;
        }
        tag.as_mut_slice().zeroize();
        len
    }};
}

/// An HMAC keyed once and used for many messages: the inner and outer hash states after the
/// key block are computed here, so each [`KeyedMac::mac`] costs only the message's compressions
/// (an HOTP window of 7 counters then takes 14 compressions instead of 28).
#[derive(Clone)]
pub(crate) enum KeyedMac {
    /// HMAC-SHA-1.
    Sha1(Hmac<Sha1>),
    /// HMAC-SHA-256.
    Sha256(Hmac<Sha256>),
    /// HMAC-SHA-512.
    Sha512(Hmac<Sha512>),
}

impl KeyedMac {
    /// Keys an HMAC with the given hash (any key length, RFC 2104).
    pub(crate) fn new(alg: HashAlgorithm, key: &[u8]) -> KeyedMac {
        match alg {
            HashAlgorithm::Sha1 => KeyedMac::Sha1(keyed!(Sha1, key)),
            HashAlgorithm::Sha256 => KeyedMac::Sha256(keyed!(Sha256, key)),
            HashAlgorithm::Sha512 => KeyedMac::Sha512(keyed!(Sha512, key)),
        }
    }

    /// The MAC of the concatenation of `parts` under this key.
    pub(crate) fn mac(&self, parts: &[&[u8]]) -> MacOutput {
        let mut out = MacOutput {
            buf: [0; MAX_MAC_LEN],
            len: 0,
        };
        out.len = match self {
            KeyedMac::Sha1(m) => finish_into!(m.clone(), parts, &mut out.buf),
            KeyedMac::Sha256(m) => finish_into!(m.clone(), parts, &mut out.buf),
            KeyedMac::Sha512(m) => finish_into!(m.clone(), parts, &mut out.buf),
        };
        out
    }
}

/// HMAC with the given hash over the concatenation of `parts`.
pub(crate) fn hmac(alg: HashAlgorithm, key: &[u8], parts: &[&[u8]]) -> MacOutput {
    KeyedMac::new(alg, key).mac(parts)
}

/// HMAC-SHA-256 over the concatenation of `parts`, as a fixed array.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    hmac(HashAlgorithm::Sha256, key, parts).to_array32()
}

/// HKDF-SHA-256 (RFC 5869) producing exactly one 32-byte block of output key material.
///
/// With L = HashLen, HKDF-Expand is a single HMAC: T(1) = HMAC(PRK, info || 0x01). An empty
/// `salt` means "no salt", which RFC 5869 defines as HashLen zero bytes; HMAC's zero padding makes
/// the two identical. The result equals the first 32 bytes of the `hkdf` crate's output (tested).
pub(crate) fn hkdf_sha256_32(salt: &[u8], ikm: &[u8], info: &[u8]) -> zeroize::Zeroizing<[u8; 32]> {
    let prk = zeroize::Zeroizing::new(hmac_sha256(salt, &[ikm]));
    zeroize::Zeroizing::new(hmac_sha256(prk.as_slice(), &[info, &[1u8]]))
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn reference(alg: HashAlgorithm, key: &[u8], msg: &[u8]) -> Vec<u8> {
        match alg {
            HashAlgorithm::Sha1 => {
                let mut m = <Hmac<Sha1> as Mac>::new_from_slice(key).unwrap();
                m.update(msg);
                m.finalize().into_bytes().to_vec()
            }
            HashAlgorithm::Sha256 => {
                let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
                m.update(msg);
                m.finalize().into_bytes().to_vec()
            }
            HashAlgorithm::Sha512 => {
                let mut m = <Hmac<Sha512> as Mac>::new_from_slice(key).unwrap();
                m.update(msg);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    #[test]
    fn matches_hmac_crate_for_every_key_length() {
        // Covers empty keys, keys shorter than, equal to and longer than each block (64 / 128).
        for alg in [
            HashAlgorithm::Sha1,
            HashAlgorithm::Sha256,
            HashAlgorithm::Sha512,
        ] {
            for len in [0usize, 1, 20, 32, 63, 64, 65, 127, 128, 129, 200, 300] {
                let key: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
                let got = hmac(alg, &key, &[b"counter", b"", b"\x00\x01"]);
                assert_eq!(
                    got.as_bytes(),
                    reference(alg, &key, b"counter\x00\x01").as_slice(),
                    "{alg:?} key len {len}"
                );
            }
        }
    }

    #[test]
    fn rfc2202_hmac_sha1_case_1() {
        let mac = hmac(HashAlgorithm::Sha1, &[0x0b; 20], &[b"Hi There"]);
        assert_eq!(
            hex(mac.as_bytes()),
            "b617318655057264e28bc0b6fb378c8ef146be00"
        );
    }

    #[test]
    fn hkdf_matches_rfc5869_case_1_and_the_hkdf_crate() {
        // RFC 5869 A.1: the first 32 bytes of OKM are T(1).
        let ikm = [0x0bu8; 22];
        let salt: Vec<u8> = (0x00..=0x0c).collect();
        let info: Vec<u8> = (0xf0..=0xf9).collect();
        let okm = hkdf_sha256_32(&salt, &ikm, &info);
        assert_eq!(
            hex(okm.as_slice()),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
        );

        // No salt, as MasterKey uses it.
        let ikm = [0x42u8; 32];
        let mut expected = [0u8; 32];
        hkdf::Hkdf::<Sha256>::new(None, &ikm)
            .expand(b"tokengate/v1/pepper", &mut expected)
            .unwrap();
        assert_eq!(
            hkdf_sha256_32(&[], &ikm, b"tokengate/v1/pepper").as_slice(),
            &expected
        );
    }

    pub(crate) fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
