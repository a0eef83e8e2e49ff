//! HOTP (RFC 4226) and TOTP (RFC 6238) code computation and constant-time code matching.
//!
//! This module owns the arithmetic of one-time passwords: HMAC over a counter, dynamic
//! truncation, reduction to `digits` decimal digits, the TOTP step number, and the search of a
//! window of candidate steps for a presented code. It must not read the clock, know about windows
//! or drift policy, or remember accepted steps: the engine passes the time and the candidates in,
//! and applies replay and drift rules (SPEC W-1, W-2, D-1, R-1) to what comes back.

use std::fmt;

use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use super::mac::{hmac, KeyedMac};
use crate::model::HashAlgorithm;

/// Fewest digits a code may have (RFC 4226 §5.3 requires at least six).
pub const MIN_DIGITS: u8 = 6;
/// Most digits a code may have (SPEC: tokens have 6 or 8 digits).
pub const MAX_DIGITS: u8 = 8;

/// Brings a digit count into `MIN_DIGITS..=MAX_DIGITS`.
///
/// Configuration and import code reject other values; this clamp only keeps the functions here
/// total, so a bad value can never panic or produce an over-long code.
pub fn clamp_digits(digits: u8) -> u8 {
    digits.clamp(MIN_DIGITS, MAX_DIGITS)
}

/// 10^digits for a clamped digit count.
fn modulus(digits: u8) -> u32 {
    10u32.pow(u32::from(clamp_digits(digits)))
}

/// RFC 4226 §5.3 dynamic truncation: a 31-bit number taken at the offset named by the low
/// nibble of the MAC's last byte.
fn dynamic_truncate(mac: &[u8]) -> u32 {
    let offset = mac.last().map_or(0, |b| usize::from(b & 0x0f));
    // Every MAC here is at least 20 bytes and offset + 3 <= 18, so all four reads succeed; the
    // `get` keeps this total without an unchecked index.
    let mut word = [0u8; 4];
    for (i, byte) in word.iter_mut().enumerate() {
        *byte = mac.get(offset + i).copied().unwrap_or(0);
    }
    u32::from_be_bytes(word) & 0x7fff_ffff
}

/// The truncated 31-bit value of RFC 4226 (the "Decimal" column of Appendix D), before the
/// reduction modulo 10^digits.
fn hotp_truncated(key: &[u8], counter: u64, alg: HashAlgorithm) -> u32 {
    let mac = hmac(alg, key, &[&counter.to_be_bytes()]);
    dynamic_truncate(mac.as_bytes())
}

/// RFC 4226 HOTP value for `counter`, already reduced modulo 10^digits.
///
/// `digits` is clamped into `6..=8` (see [`clamp_digits`]); format the value with [`Code::new`]
/// to get the zero-padded string a token displays. RFC 6238 TOTP is this function applied to
/// [`totp_step`].
pub fn hotp(key: &[u8], counter: u64, digits: u8, alg: HashAlgorithm) -> u32 {
    hotp_truncated(key, counter, alg) % modulus(digits)
}

/// A token's seed keyed into HMAC once, for computing the codes of many counters (a window
/// search): the same values as [`hotp`], without re-deriving the HMAC key state per counter.
/// `Debug` never shows the key.
#[derive(Clone)]
pub struct HotpKey {
    mac: KeyedMac,
}

impl HotpKey {
    /// Keys HMAC-`alg` with `seed`.
    pub fn new(seed: &[u8], alg: HashAlgorithm) -> HotpKey {
        HotpKey {
            mac: KeyedMac::new(alg, seed),
        }
    }

    /// RFC 4226 HOTP value for `counter`, reduced modulo 10^digits (as [`hotp`]).
    pub fn hotp(&self, counter: u64, digits: u8) -> u32 {
        let mac = self.mac.mac(&[&counter.to_be_bytes()]);
        dynamic_truncate(mac.as_bytes()) % modulus(digits)
    }
}

impl fmt::Debug for HotpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HotpKey(..)")
    }
}

/// RFC 6238 step number: floor(unix / period), with T0 = 0.
///
/// Times before the epoch give step 0 and a `period` of 0 is treated as 1 second, so the function
/// is total; configuration validates periods (30 or 60) before they get here.
pub fn totp_step(unix: i64, period: u32) -> i64 {
    if unix <= 0 {
        return 0;
    }
    unix / i64::from(period.max(1))
}

/// RFC 6238 TOTP value at `unix` seconds: [`hotp`] of [`totp_step`].
pub fn totp(key: &[u8], unix: i64, period: u32, digits: u8, alg: HashAlgorithm) -> u32 {
    // totp_step never returns a negative number, so the conversion cannot fail.
    let step = u64::try_from(totp_step(unix, period)).unwrap_or(0);
    hotp(key, step, digits, alg)
}

/// A formatted tokencode: `digits` zero-padded ASCII digits, stored inline (no allocation).
///
/// `Debug` shows only the length, so a code never ends up in a log by accident; use
/// `Display` or [`Code::as_str`] where the digits are meant to be shown.
#[derive(Clone, Copy)]
pub struct Code {
    buf: [u8; MAX_DIGITS as usize],
    len: u8,
}

impl Code {
    /// Formats `value` modulo 10^digits as `digits` ASCII digits with leading zeros.
    ///
    /// `digits` is clamped into `6..=8` (see [`clamp_digits`]).
    pub fn new(value: u32, digits: u8) -> Code {
        let len = clamp_digits(digits);
        let mut rest = value % modulus(len);
        let mut buf = [b'0'; MAX_DIGITS as usize];
        for slot in buf.iter_mut().take(usize::from(len)).rev() {
            // `rest % 10` is below 10, so the narrowing is exact.
            *slot = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        Code { buf, len }
    }

    /// The digits as ASCII bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// The digits as a string slice.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever written, so this is always valid UTF-8.
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    /// Number of digits.
    pub fn digits(&self) -> u8 {
        self.len
    }

    /// Constant-time comparison with a presented code (the length may leak, the digits do not).
    pub fn matches(&self, presented: &[u8]) -> bool {
        ct_eq(self.as_bytes(), presented)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Code({} digits)", self.len)
    }
}

/// Constant-time equality of two byte strings.
///
/// Runs in time that depends only on the lengths; strings of different lengths are unequal.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}

/// The number a presented tokencode spells: `Some` when it is 1 to 9 ASCII digits. A code of the
/// token's length then equals `Code::new(value, digits)` exactly when its number equals `value`
/// (values are reduced modulo 10^digits), so a window can be matched on numbers with
/// [`ct_eq_value`] instead of formatting each candidate.
pub fn code_value(code: &[u8]) -> Option<u32> {
    if code.is_empty() || code.len() > 9 || !code.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        code.iter()
            .fold(0u32, |n, d| n * 10 + u32::from(d.wrapping_sub(b'0'))),
    )
}

/// Constant-time equality of two code values.
pub fn ct_eq_value(a: u32, b: u32) -> bool {
    bool::from(a.ct_eq(&b))
}

/// The CHAP response (RFC 1994 §4.1, used by RADIUS and TACACS+): MD5(id | secret | challenge).
pub fn chap_response(chap_id: u8, secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    use md5::{Digest, Md5};
    let mut md5 = Md5::new();
    md5.update([chap_id]);
    md5.update(secret);
    md5.update(challenge);
    md5.finalize().into()
}

/// Searches candidate TOTP steps or HOTP counters for the one whose code equals `code`.
///
/// The code is computed and compared for **every** candidate, with no early exit, so the time
/// taken depends only on the number of candidates, not on whether or where a match was found.
/// Returns the first matching candidate in iteration order. Negative candidates never match and
/// are skipped (the engine may compute `step - 1` near zero; a skipped candidate is not secret).
/// A `code` of the wrong length matches nothing.
pub fn find_match(
    key: &[u8],
    alg: HashAlgorithm,
    digits: u8,
    code: &[u8],
    candidates: impl IntoIterator<Item = i64>,
) -> Option<i64> {
    let key = HotpKey::new(key, alg);
    let mut found = Choice::from(0u8);
    let mut matched: i64 = 0;
    for candidate in candidates {
        let Ok(counter) = u64::try_from(candidate) else {
            continue;
        };
        let expected = Code::new(key.hotp(counter, digits), digits);
        let hit = expected.as_bytes().ct_eq(code) & !found;
        matched = i64::conditional_select(&matched, &candidate, hit);
        found |= hit;
    }
    bool::from(found).then_some(matched)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    const SEED_SHA1: &[u8] = b"12345678901234567890";
    const SEED_SHA256: &[u8] = b"12345678901234567890123456789012";
    const SEED_SHA512: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

    #[test]
    fn code_values_match_exactly_when_the_formatted_codes_do() {
        assert_eq!(code_value(b"000000"), Some(0));
        assert_eq!(code_value(b"755224"), Some(755_224));
        assert_eq!(code_value(b"99999999"), Some(99_999_999));
        for bad in [&b""[..], b"12a456", b"-12345", b"1234567890", b" 123456"] {
            assert_eq!(code_value(bad), None, "{bad:?}");
        }
        for value in [0u32, 7, 59_224, 755_224, 999_999] {
            let code = Code::new(value, 6);
            assert_eq!(code_value(code.as_bytes()), Some(value));
            for other in [0u32, 7, 59_224, 755_224, 999_999] {
                assert_eq!(
                    ct_eq_value(value, other),
                    code.matches(Code::new(other, 6).as_bytes())
                );
            }
        }
    }

    #[test]
    fn rfc4226_appendix_d() {
        // (count, truncated decimal, HOTP 6 digits)
        let table: [(u64, u32, &str); 10] = [
            (0, 1284755224, "755224"),
            (1, 1094287082, "287082"),
            (2, 137359152, "359152"),
            (3, 1726969429, "969429"),
            (4, 1640338314, "338314"),
            (5, 868254676, "254676"),
            (6, 1918287922, "287922"),
            (7, 82162583, "162583"),
            (8, 673399871, "399871"),
            (9, 645520489, "520489"),
        ];
        for (count, decimal, code) in table {
            assert_eq!(
                hotp_truncated(SEED_SHA1, count, HashAlgorithm::Sha1),
                decimal,
                "count {count}"
            );
            let value = hotp(SEED_SHA1, count, 6, HashAlgorithm::Sha1);
            assert_eq!(Code::new(value, 6).as_str(), code, "count {count}");
        }
    }

    #[test]
    fn hotp_key_gives_the_same_codes_as_hotp_for_every_algorithm_and_key_length() {
        let long_key = [0x42u8; 200]; // longer than every block: hashed first (RFC 2104)
        for (seed, alg) in [
            (SEED_SHA1, HashAlgorithm::Sha1),
            (SEED_SHA256, HashAlgorithm::Sha256),
            (SEED_SHA512, HashAlgorithm::Sha512),
            (&long_key[..], HashAlgorithm::Sha1),
            (&long_key[..], HashAlgorithm::Sha512),
        ] {
            let key = HotpKey::new(seed, alg);
            for counter in [0u64, 1, 9, 1_000_000, u64::MAX] {
                for digits in [6, 8] {
                    assert_eq!(
                        key.hotp(counter, digits),
                        hotp(seed, counter, digits, alg),
                        "{alg:?} counter {counter}"
                    );
                }
            }
        }
        // RFC 4226 Appendix D through the keyed form too.
        let key = HotpKey::new(SEED_SHA1, HashAlgorithm::Sha1);
        assert_eq!(Code::new(key.hotp(0, 6), 6).as_str(), "755224");
        assert_eq!(Code::new(key.hotp(9, 6), 6).as_str(), "520489");
        assert_eq!(format!("{key:?}"), "HotpKey(..)");
    }

    #[test]
    fn rfc4226_truncation_example() {
        // RFC 4226 §5.4: the worked example of dynamic truncation.
        let mac = [
            0x1f, 0x86, 0x98, 0x69, 0x0e, 0x02, 0xca, 0x16, 0x61, 0x85, 0x50, 0xef, 0x7f, 0x19,
            0xda, 0x8e, 0x94, 0x5b, 0x55, 0x5a,
        ];
        assert_eq!(dynamic_truncate(&mac), 0x50ef7f19);
        assert_eq!(Code::new(dynamic_truncate(&mac), 6).as_str(), "872921");
    }

    /// RFC 6238 Appendix B: (time, step, SHA1, SHA256, SHA512), 8 digits.
    const RFC6238: [(i64, i64, &str, &str, &str); 6] = [
        (59, 0x1, "94287082", "46119246", "90693936"),
        (1111111109, 0x23523EC, "07081804", "68084774", "25091201"),
        (1111111111, 0x23523ED, "14050471", "67062674", "99943326"),
        (1234567890, 0x273EF07, "89005924", "91819424", "93441116"),
        (2000000000, 0x3F940AA, "69279037", "90698825", "38618901"),
        (20000000000, 0x27BC86AA, "65353130", "77737706", "47863826"),
    ];

    fn algs() -> [(HashAlgorithm, &'static [u8]); 3] {
        [
            (HashAlgorithm::Sha1, SEED_SHA1),
            (HashAlgorithm::Sha256, SEED_SHA256),
            (HashAlgorithm::Sha512, SEED_SHA512),
        ]
    }

    #[test]
    fn rfc6238_appendix_b_all_18() {
        for (time, step, c1, c256, c512) in RFC6238 {
            assert_eq!(totp_step(time, 30), step, "t={time}");
            for ((alg, seed), expected) in algs().into_iter().zip([c1, c256, c512]) {
                let code = Code::new(totp(seed, time, 30, 8, alg), 8);
                assert_eq!(code.as_str(), expected, "t={time} {alg:?}");
                assert_eq!(code.to_string(), expected);
            }
        }
    }

    #[test]
    fn seed_trap_20_byte_seed_gives_a_different_sha256_code() {
        // VECTORS.md §4: the RFC prose suggests the 20-byte seed everywhere; it gives 32247374.
        let code = Code::new(totp(SEED_SHA1, 59, 30, 8, HashAlgorithm::Sha256), 8);
        assert_eq!(code.as_str(), "32247374");
    }

    #[test]
    fn six_digit_forms() {
        let sha1 = HashAlgorithm::Sha1;
        assert_eq!(
            Code::new(totp(SEED_SHA1, 59, 30, 6, sha1), 6).as_str(),
            "287082"
        );
        let t = totp_step(1111111109, 30);
        let got: Vec<String> = [t - 1, t, t + 1]
            .iter()
            .map(|&s| Code::new(hotp(SEED_SHA1, s as u64, 6, sha1), 6).to_string())
            .collect();
        assert_eq!(got, ["731029", "081804", "050471"]);
        // Six-digit codes are the low six digits of the eight-digit code.
        for (time, _, c1, _, _) in RFC6238 {
            let six = Code::new(totp(SEED_SHA1, time, 30, 6, sha1), 6);
            assert_eq!(six.as_str(), &c1[2..]);
        }
    }

    #[test]
    fn find_match_returns_the_matching_step() {
        for (time, step, c1, c256, c512) in RFC6238 {
            for ((alg, seed), code) in algs().into_iter().zip([c1, c256, c512]) {
                let window = (step - 2)..=(step + 2);
                assert_eq!(
                    find_match(seed, alg, 8, code.as_bytes(), window),
                    Some(step),
                    "t={time} {alg:?}"
                );
            }
        }
        let t = totp_step(1111111109, 30);
        let sha1 = HashAlgorithm::Sha1;
        let window = [t - 1, t, t + 1];
        assert_eq!(
            find_match(SEED_SHA1, sha1, 6, b"731029", window),
            Some(t - 1)
        );
        assert_eq!(find_match(SEED_SHA1, sha1, 6, b"081804", window), Some(t));
        assert_eq!(
            find_match(SEED_SHA1, sha1, 6, b"050471", window),
            Some(t + 1)
        );
    }

    #[test]
    fn find_match_rejects_wrong_codes() {
        let t = totp_step(1111111109, 30);
        let sha1 = HashAlgorithm::Sha1;
        let window = [t - 1, t, t + 1];
        assert_eq!(find_match(SEED_SHA1, sha1, 6, b"081805", window), None);
        assert_eq!(find_match(SEED_SHA1, sha1, 6, b"", window), None);
        // Right digits, wrong length: the 8-digit form against a 6-digit token.
        assert_eq!(find_match(SEED_SHA1, sha1, 6, b"07081804", window), None);
        assert_eq!(find_match(SEED_SHA1, sha1, 6, b"081804", []), None);
        // Wrong key.
        assert_eq!(find_match(SEED_SHA256, sha1, 6, b"081804", window), None);
    }

    #[test]
    fn find_match_skips_negative_candidates() {
        let sha1 = HashAlgorithm::Sha1;
        // Counter 0 is 755224; -1 must not be treated as u64::MAX or as 0.
        assert_eq!(
            find_match(SEED_SHA1, sha1, 6, b"755224", [-3, -2, -1, 0, 1]),
            Some(0)
        );
        assert_eq!(
            find_match(SEED_SHA1, sha1, 6, b"755224", [i64::MIN, -1]),
            None
        );
        let wrapped = Code::new(hotp(SEED_SHA1, u64::MAX, 6, sha1), 6);
        assert_eq!(
            find_match(SEED_SHA1, sha1, 6, wrapped.as_bytes(), [-1]),
            None
        );
    }

    #[test]
    fn find_match_returns_the_first_of_several() {
        // With a repeated candidate the first in iteration order wins.
        let sha1 = HashAlgorithm::Sha1;
        assert_eq!(
            find_match(SEED_SHA1, sha1, 6, b"287082", [5, 1, 7, 1]),
            Some(1)
        );
    }

    #[test]
    fn totp_step_edges() {
        assert_eq!(totp_step(0, 30), 0);
        assert_eq!(totp_step(29, 30), 0);
        assert_eq!(totp_step(30, 30), 1);
        assert_eq!(totp_step(-1, 30), 0);
        assert_eq!(totp_step(i64::MIN, 30), 0);
        assert_eq!(totp_step(119, 60), 1);
        assert_eq!(totp_step(100, 0), 100);
        assert_eq!(totp_step(i64::MAX, 1), i64::MAX);
    }

    #[test]
    fn code_formatting_and_clamping() {
        assert_eq!(Code::new(0, 6).as_str(), "000000");
        assert_eq!(Code::new(42, 8).as_str(), "00000042");
        assert_eq!(Code::new(1234567890, 6).as_str(), "567890");
        assert_eq!(Code::new(u32::MAX, 8).as_str(), "94967295");
        // Out-of-range digit counts are clamped, never panic.
        assert_eq!(Code::new(1234567, 0).as_str(), "234567");
        assert_eq!(Code::new(123456789, 255).as_str(), "23456789");
        assert_eq!(Code::new(5, 7).digits(), 7);
        assert_eq!(hotp(SEED_SHA1, 0, 200, HashAlgorithm::Sha1), 84755224);
        assert_eq!(format!("{:?}", Code::new(123456, 6)), "Code(6 digits)");
        assert!(Code::new(81804, 6).matches(b"081804"));
        assert!(!Code::new(81804, 6).matches(b"81804"));
    }

    #[test]
    fn ct_eq_basics() {
        assert!(ct_eq(b"", b""));
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
    }
}
