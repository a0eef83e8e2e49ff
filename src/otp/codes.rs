//! Random generation of typed codes (emergency tokencodes, OTT sets, on-demand codes) and seeds.
//!
//! This module owns the character sets and the unbiased sampling of codes from them, and the
//! generation of raw token seeds. It takes the RNG as an argument and must not obtain randomness
//! itself; it knows nothing about policies (lengths and character classes come from the caller)
//! and never stores a code: callers hash codes with [`super::Pepper`] before they reach the store.

use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::model::HashAlgorithm;

/// Digits.
const NUMERIC: &[u8] = b"0123456789";
/// Upper-case letters without `I` and `O` (they read as `1` and `0`).
const ALPHABETIC: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
/// Digits and upper-case letters without the look-alikes `0`, `O`, `1` and `I`.
const ALPHANUMERIC: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";

/// Character set of a generated code.
///
/// Letters are upper case and the sets leave out characters that are easily misread when a code
/// is read aloud or copied from paper: [`Charset::Alphabetic`] has no `I` or `O` (24 letters) and
/// [`Charset::Alphanumeric`] has no `0`, `O`, `1` or `I` (32 symbols, 5 bits each). Users may type
/// codes in lower case; compare after [`normalize_code`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Charset {
    /// `0`–`9`.
    Numeric,
    /// `A`–`Z` without `I` and `O`.
    Alphabetic,
    /// `2`–`9` and `A`–`Z` without `I` and `O`.
    Alphanumeric,
}

impl Charset {
    /// The symbols of this set, in ascending ASCII order.
    pub fn alphabet(self) -> &'static [u8] {
        match self {
            Charset::Numeric => NUMERIC,
            Charset::Alphabetic => ALPHABETIC,
            Charset::Alphanumeric => ALPHANUMERIC,
        }
    }

    /// Whether `byte` is a symbol of this set.
    pub fn contains(self, byte: u8) -> bool {
        self.alphabet().contains(&byte)
    }
}

/// A uniformly random code of `len` symbols from `charset`.
///
/// Each symbol comes from one random byte by rejection sampling: bytes at or above the largest
/// multiple of the alphabet size are thrown away, so every symbol is exactly equally likely (no
/// modulo bias). The caller's policy decides `len`.
pub fn generate_code(rng: &mut (impl RngCore + CryptoRng), charset: Charset, len: usize) -> String {
    let alphabet = charset.alphabet();
    let size = alphabet.len();
    // Bytes below `limit` map evenly onto the alphabet; the alphabets have 10, 24 or 32 symbols.
    let limit = 256 - 256 % size;
    let mut code = String::with_capacity(len);
    let mut pool = [0u8; 64];
    let mut produced = 0;
    while produced < len {
        rng.fill_bytes(&mut pool);
        for &byte in &pool {
            if produced == len {
                break;
            }
            let byte = usize::from(byte);
            if byte >= limit {
                continue;
            }
            if let Some(&symbol) = alphabet.get(byte % size) {
                code.push(char::from(symbol));
                produced += 1;
            }
        }
    }
    pool.zeroize();
    code
}

/// Canonical form of a typed code before comparison: ASCII letters upper-cased, spaces and `-`
/// removed (codes may be printed in groups such as `ABCD-EFGH`).
pub fn normalize_code(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| *c != ' ' && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The usual seed length for an algorithm: its HMAC output size (20, 32 or 64 bytes), as in
/// RFC 6238 Appendix B and RFC 4226's recommendation of at least 160 bits.
pub fn default_seed_len(alg: HashAlgorithm) -> usize {
    match alg {
        HashAlgorithm::Sha1 => 20,
        HashAlgorithm::Sha256 => 32,
        HashAlgorithm::Sha512 => 64,
    }
}

/// `len` random seed bytes.
///
/// The plain `Vec` is the caller's to protect: encrypt it with [`super::SeedCipher`] for the
/// store, show it once (for example through [`super::uri::OtpauthUri`], which wipes its copy on
/// drop), and wipe or drop it promptly.
pub fn random_seed(rng: &mut (impl RngCore + CryptoRng), len: usize) -> Vec<u8> {
    let mut seed = vec![0u8; len];
    rng.fill_bytes(&mut seed);
    seed
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    const ALL: [Charset; 3] = [Charset::Numeric, Charset::Alphabetic, Charset::Alphanumeric];

    #[test]
    fn alphabets_are_as_documented() {
        assert_eq!(NUMERIC.len(), 10);
        assert_eq!(ALPHABETIC.len(), 24);
        assert_eq!(ALPHANUMERIC.len(), 32);
        for charset in ALL {
            let alphabet = charset.alphabet();
            assert!(
                alphabet.windows(2).all(|w| w[0] < w[1]),
                "{charset:?} sorted, unique"
            );
            for c in alphabet {
                assert!(c.is_ascii_digit() || c.is_ascii_uppercase());
            }
        }
        for c in b"IO" {
            assert!(!Charset::Alphabetic.contains(*c));
        }
        for c in b"01IO" {
            assert!(!Charset::Alphanumeric.contains(*c));
        }
    }

    #[test]
    fn length_and_charset_respected() {
        let mut rng = StdRng::seed_from_u64(11);
        for charset in ALL {
            for len in [0usize, 1, 6, 8, 63, 64, 65, 200] {
                let code = generate_code(&mut rng, charset, len);
                assert_eq!(code.len(), len);
                assert!(
                    code.bytes().all(|b| charset.contains(b)),
                    "{charset:?}: {code}"
                );
            }
        }
        let numeric = generate_code(&mut rng, Charset::Numeric, 8);
        assert!(numeric.bytes().all(|b| b.is_ascii_digit()));
    }

    #[test]
    fn roughly_uniform_per_position() {
        // 100k codes per charset; a chi-square statistic per character position. With `df`
        // degrees of freedom the statistic has mean df and sd sqrt(2 df); the bound below is
        // about eight standard deviations, so with a fixed seed it cannot flake, yet a modulo
        // bias (26 vs 25 in 256 for the numeric set) would push the statistic to about 45.
        const DRAWS: usize = 100_000;
        const LEN: usize = 8;
        let mut rng = StdRng::seed_from_u64(12);
        for charset in ALL {
            let alphabet = charset.alphabet();
            let size = alphabet.len();
            let mut counts = vec![[0u32; 32]; LEN];
            for _ in 0..DRAWS {
                let code = generate_code(&mut rng, charset, LEN);
                for (pos, b) in code.bytes().enumerate() {
                    let idx = alphabet.iter().position(|&c| c == b).unwrap();
                    counts[pos][idx] += 1;
                }
            }
            let expected = DRAWS as f64 / size as f64;
            let df = (size - 1) as f64;
            let bound = df + 8.0 * (2.0 * df).sqrt();
            for (pos, row) in counts.iter().enumerate() {
                let chi2: f64 = row[..size]
                    .iter()
                    .map(|&n| (f64::from(n) - expected).powi(2) / expected)
                    .sum();
                assert!(
                    chi2 < bound,
                    "{charset:?} pos {pos}: chi2 {chi2} >= {bound}"
                );
            }
        }
    }

    #[test]
    fn normalize() {
        assert_eq!(normalize_code("abcd-efgh"), "ABCDEFGH");
        assert_eq!(normalize_code(" 12 34 "), "1234");
        assert_eq!(normalize_code(""), "");
    }

    #[test]
    fn seeds() {
        let mut rng = StdRng::seed_from_u64(13);
        assert_eq!(default_seed_len(HashAlgorithm::Sha1), 20);
        assert_eq!(default_seed_len(HashAlgorithm::Sha256), 32);
        assert_eq!(default_seed_len(HashAlgorithm::Sha512), 64);
        let a = random_seed(&mut rng, 20);
        let b = random_seed(&mut rng, 20);
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
        assert!(random_seed(&mut rng, 0).is_empty());
    }

    #[test]
    fn charset_serde_names() {
        // The config spells charsets in snake_case; serde's own value deserializer checks the
        // names without pulling in a format crate.
        use serde::de::value::{Error, StrDeserializer};
        use serde::de::IntoDeserializer;
        for (name, charset) in [
            ("numeric", Charset::Numeric),
            ("alphabetic", Charset::Alphabetic),
            ("alphanumeric", Charset::Alphanumeric),
        ] {
            let de: StrDeserializer<'_, Error> = name.into_deserializer();
            assert_eq!(Charset::deserialize(de).unwrap(), charset);
        }
    }
}
