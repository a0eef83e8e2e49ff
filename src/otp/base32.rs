//! RFC 4648 base32 (the standard alphabet `A`–`Z`, `2`–`7`), as used for otpauth secrets.
//!
//! This module owns the text form of seeds that people and authenticator apps exchange. Encoding
//! is canonical (upper case, no padding); decoding is forgiving about how people type secrets
//! (any case, spaces, `-` separators, trailing `=` padding) and strict about everything else. It
//! must never panic on input, and it allocates at most one output buffer sized from the input.

/// Why a base32 string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Base32Error {
    /// A character outside the alphabet (the character itself is not reported: it may be part
    /// of a secret).
    #[error("invalid base32 character at position {position}")]
    InvalidCharacter {
        /// Byte offset in the input.
        position: usize,
    },
    /// A symbol count that cannot encode a whole number of bytes (1, 3 or 6 modulo 8).
    #[error("invalid base32 length: {symbols} symbols do not encode whole bytes")]
    InvalidLength {
        /// Number of alphabet symbols in the input.
        symbols: usize,
    },
}

/// The symbol for a 5-bit value.
fn symbol(value: u32) -> char {
    let value = (value & 0x1f) as u8;
    if value < 26 {
        char::from(b'A' + value)
    } else {
        char::from(b'2' + (value - 26))
    }
}

/// The 5-bit value of a symbol, in either case.
fn value(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a')),
        b'2'..=b'7' => Some(u32::from(c - b'2') + 26),
        _ => None,
    }
}

/// Encodes `data` as upper-case RFC 4648 base32 without `=` padding.
pub fn encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    for &byte in data {
        acc = (acc << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(symbol(acc >> bits));
        }
        // Keep only the bits not yet written, so the accumulator never exceeds 12 bits.
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(symbol(acc << (5 - bits)));
    }
    out
}

/// Decodes RFC 4648 base32.
///
/// Accepts upper or lower case, ignores spaces and `-` anywhere and `=` padding at the end. Bits
/// left over after the last whole byte are ignored (RFC 4648 §3.5 lets decoders accept them), so
/// `decode` is a left inverse of [`encode`], and `encode(decode(s))` is the canonical form of `s`.
pub fn decode(s: &str) -> Result<Vec<u8>, Base32Error> {
    let trimmed = s.trim_end_matches(['=', ' ']);
    let mut out = Vec::with_capacity(trimmed.len() * 5 / 8);
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    let mut symbols: usize = 0;
    for (position, &c) in trimmed.as_bytes().iter().enumerate() {
        if c == b' ' || c == b'-' {
            continue;
        }
        let Some(v) = value(c) else {
            return Err(Base32Error::InvalidCharacter { position });
        };
        symbols += 1;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            // The shifted value is below 256: `acc` keeps at most `bits + 8` significant bits.
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // 1, 3 or 6 symbols in the last group leave 5 or more unused bits: not a valid encoding.
    if bits >= 5 {
        return Err(Base32Error::InvalidLength { symbols });
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// RFC 4648 §10, with the padding removed.
    const VECTORS: [(&str, &str); 7] = [
        ("", ""),
        ("f", "MY"),
        ("fo", "MZXQ"),
        ("foo", "MZXW6"),
        ("foob", "MZXW6YQ"),
        ("fooba", "MZXW6YTB"),
        ("foobar", "MZXW6YTBOI"),
    ];

    #[test]
    fn rfc4648_vectors() {
        for (plain, encoded) in VECTORS {
            assert_eq!(encode(plain.as_bytes()), encoded);
            assert_eq!(decode(encoded).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn rfc4648_padded_and_relaxed_forms() {
        let padded = [
            ("f", "MY======"),
            ("fo", "MZXQ===="),
            ("foo", "MZXW6==="),
            ("foob", "MZXW6YQ="),
            ("foobar", "MZXW6YTBOI======"),
        ];
        for (plain, encoded) in padded {
            assert_eq!(decode(encoded).unwrap(), plain.as_bytes());
        }
        assert_eq!(decode("mzxw6ytboi").unwrap(), b"foobar");
        assert_eq!(decode("MZXW 6YTB-OI").unwrap(), b"foobar");
        assert_eq!(decode("  MZXW6YTBOI  ").unwrap(), b"foobar");
        assert_eq!(decode("MZXW6YTBOI== ").unwrap(), b"foobar");
    }

    #[test]
    fn decode_errors() {
        assert_eq!(
            decode("MZXW1"),
            Err(Base32Error::InvalidCharacter { position: 4 })
        );
        assert_eq!(
            decode("MZXW8"),
            Err(Base32Error::InvalidCharacter { position: 4 })
        );
        assert_eq!(
            decode("MY=Y"),
            Err(Base32Error::InvalidCharacter { position: 2 })
        );
        assert!(decode("MZ\u{e9}X").is_err());
        assert!(decode("MZ\tXQ").is_err());
        assert!(decode("M0").is_err());
        for bad in ["M", "MZX", "MZXW6Y", "MZXW6YTBO"] {
            assert!(
                matches!(decode(bad), Err(Base32Error::InvalidLength { .. })),
                "{bad}"
            );
        }
        assert_eq!(
            decode("MZX").unwrap_err().to_string(),
            "invalid base32 length: 3 symbols do not encode whole bytes"
        );
        assert_eq!(
            decode("MZXW1").unwrap_err().to_string(),
            "invalid base32 character at position 4"
        );
    }

    #[test]
    fn round_trips_every_length() {
        for len in 0..70usize {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let text = encode(&data);
            assert_eq!(decode(&text).unwrap(), data);
            assert_eq!(text, text.to_ascii_uppercase());
            assert!(!text.contains('='));
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(decode(&encode(&all)).unwrap(), all);
    }

    #[test]
    fn non_canonical_trailing_bits_are_accepted() {
        // "MY" is canonical for "f"; "M3" sets unused low bits and decodes to the same byte.
        assert_eq!(decode("M3").unwrap(), b"f");
        assert_eq!(encode(&decode("M3").unwrap()), "MY");
    }
}
