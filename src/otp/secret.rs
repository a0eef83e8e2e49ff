//! Secrets at rest (SPEC §1): the master key, the pepper for keyed hashes, and the seed cipher.
//!
//! This module owns how secrets are protected before they reach the database: token seeds are
//! sealed with AES-256-GCM under a key derived from the master key, and PINs and codes are stored
//! only as salted HMAC-SHA-256 under a pepper derived from the same master key. It also owns the
//! master key's check value (recorded in the database, so an instance with another key refuses to
//! start) and the wrapping of a pepper carried over a key rotation (keyed hashes cannot be
//! re-keyed without their plaintexts, so `key rotate` keeps the pepper, sealed under the new
//! key). It takes the master key's 32 bytes and an RNG as arguments; it must not read key files,
//! the clock or OS randomness, and no type here may print key bytes (every `Debug` is redacted,
//! every key buffer is wiped on drop).

use std::fmt;

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::{CryptoRng, RngCore};
use zeroize::{Zeroize, Zeroizing};

use super::hotp::ct_eq;
use super::mac::{hkdf_sha256_32, hmac_sha256, KeyedMac};
use crate::model::HashAlgorithm;

/// HKDF `info` label of the pepper.
const PEPPER_INFO: &[u8] = b"tokengate/v1/pepper";
/// HKDF `info` label of the seed encryption key.
const SEED_AEAD_INFO: &[u8] = b"tokengate/v1/seed-aead";
/// HKDF `info` label of the key that makes the master key's check value.
const KEY_CHECK_INFO: &[u8] = b"tokengate/v1/key-check";
/// The fixed message whose HMAC is the check value.
const KEY_CHECK_LABEL: &[u8] = b"tokengate master key check";
/// HKDF `info` label of the key that seals a carried-over pepper key.
const PEPPER_WRAP_INFO: &[u8] = b"tokengate/v1/pepper-wrap";
/// AEAD associated data of a sealed pepper key.
const PEPPER_WRAP_AAD: &[u8] = b"tokengate/v1/pepper";

/// Errors of the secret-storage functions.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The encrypted blob is too short or has an unknown version byte.
    #[error("encrypted seed is malformed (truncated or unknown version)")]
    Malformed,
    /// Authentication of the encrypted blob failed: wrong master key, wrong token (AAD) or
    /// tampered data.
    #[error("encrypted seed does not decrypt (wrong master key, wrong token or tampered)")]
    Decrypt,
}

/// The 32-byte master key, kept outside the database.
///
/// Sub-keys are derived from it with HKDF-SHA-256 under distinct `info` labels, so the pepper and
/// the seed key are independent and the master key itself never keys a primitive directly.
///
/// After a `key rotate` the pepper is not derived from this key but carried over from the key
/// before (keyed hashes cannot be recomputed without their plaintexts): the database keeps that
/// pepper key sealed under this one ([`MasterKey::wrap_pepper`]) and start-up opens it with
/// [`MasterKey::with_wrapped_pepper`]. Wiped on drop; `Debug` prints `MasterKey(..)`.
pub struct MasterKey {
    bytes: Zeroizing<[u8; 32]>,
    /// The HMAC key of the pepper when it was carried over a rotation; `None`: derived from
    /// `bytes`.
    carried_pepper: Option<Zeroizing<[u8; 32]>>,
}

impl MasterKey {
    /// Wraps key bytes loaded from the key file (the caller should wipe its own copy).
    pub fn from_bytes(bytes: [u8; 32]) -> MasterKey {
        MasterKey {
            bytes: Zeroizing::new(bytes),
            carried_pepper: None,
        }
    }

    /// Generates a fresh random master key (for `tokengate` key initialisation).
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> MasterKey {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(bytes.as_mut_slice());
        MasterKey {
            bytes,
            carried_pepper: None,
        }
    }

    /// The raw key bytes (to write the key file once; never log them).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// The pepper's HMAC key: the carried-over one, or HKDF-SHA-256(master, info =
    /// "tokengate/v1/pepper").
    fn pepper_key(&self) -> Zeroizing<[u8; 32]> {
        match &self.carried_pepper {
            Some(k) => k.clone(),
            None => hkdf_sha256_32(&[], self.bytes.as_slice(), PEPPER_INFO),
        }
    }

    /// The pepper for keyed hashes: HKDF-SHA-256(master, info = "tokengate/v1/pepper"), or the
    /// pepper carried over a rotation.
    pub fn pepper(&self) -> Pepper {
        let key = self.pepper_key();
        Pepper {
            keyed: KeyedMac::new(HashAlgorithm::Sha256, key.as_slice()),
        }
    }

    /// The seed cipher: key = HKDF-SHA-256(master, info = "tokengate/v1/seed-aead").
    pub fn seed_cipher(&self) -> SeedCipher {
        SeedCipher {
            key: hkdf_sha256_32(&[], self.bytes.as_slice(), SEED_AEAD_INFO),
        }
    }

    /// The check value the database records: HMAC-SHA-256(HKDF-SHA-256(master, info =
    /// "tokengate/v1/key-check"), "tokengate master key check"). It tells keys apart without
    /// revealing anything about them (a PRF output of a fixed message).
    pub fn check_value(&self) -> [u8; 32] {
        let key = hkdf_sha256_32(&[], self.bytes.as_slice(), KEY_CHECK_INFO);
        hmac_sha256(key.as_slice(), &[KEY_CHECK_LABEL])
    }

    /// [`MasterKey::check_value`] as 64 lower-case hex digits (the stored form).
    pub fn check_value_hex(&self) -> String {
        hex(&self.check_value())
    }

    /// Whether `stored` (64 hex digits, either case) is this key's check value; the bytes are
    /// compared in constant time. A malformed `stored` is `false`.
    pub fn matches_check_value(&self, stored: &str) -> bool {
        match unhex32(stored) {
            Some(bytes) => ct_eq(&self.check_value(), &bytes),
            None => false,
        }
    }

    /// Whether the pepper was carried over a rotation (see [`MasterKey::with_wrapped_pepper`]).
    pub fn carries_pepper(&self) -> bool {
        self.carried_pepper.is_some()
    }

    /// This key with its pepper taken from `previous` (the key being rotated away from), so
    /// every keyed hash made under `previous` still verifies.
    pub fn carry_pepper_from(mut self, previous: &MasterKey) -> MasterKey {
        self.carried_pepper = Some(previous.pepper_key());
        self
    }

    /// The pepper key sealed under this master key (AES-256-GCM, key = HKDF-SHA-256(master,
    /// info = "tokengate/v1/pepper-wrap"), a fresh nonce), for the database to keep after a
    /// rotation.
    pub fn wrap_pepper(&self, rng: &mut (impl RngCore + CryptoRng)) -> Vec<u8> {
        let key = self.pepper_key();
        self.pepper_wrap_cipher()
            .encrypt(rng, key.as_slice(), PEPPER_WRAP_AAD)
    }

    /// This key with the pepper that [`MasterKey::wrap_pepper`] sealed under it. A blob sealed
    /// under another key, or tampered with, is an error.
    pub fn with_wrapped_pepper(mut self, wrapped: &[u8]) -> Result<MasterKey, CryptoError> {
        let plain = self
            .pepper_wrap_cipher()
            .decrypt(wrapped, PEPPER_WRAP_AAD)?;
        let key = <[u8; 32]>::try_from(plain.as_slice()).map_err(|_| CryptoError::Malformed)?;
        self.carried_pepper = Some(Zeroizing::new(key));
        Ok(self)
    }

    fn pepper_wrap_cipher(&self) -> SeedCipher {
        SeedCipher {
            key: hkdf_sha256_32(&[], self.bytes.as_slice(), PEPPER_WRAP_INFO),
        }
    }
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            out.push(char::from(
                DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0'),
            ));
        }
    }
    out
}

/// 64 hex digits (either case) as 32 bytes; `None` for anything else.
fn unhex32(text: &str) -> Option<[u8; 32]> {
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (b, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let value = |c: u8| char::from(c).to_digit(16);
        let (Some(hi), Some(lo)) = (pair.first().copied(), pair.get(1).copied()) else {
            return None;
        };
        *b = u8::try_from(value(hi)? * 16 + value(lo)?).ok()?;
    }
    Some(out)
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// Version tag of the keyed-hash format.
const HASH_PREFIX: &str = "h1";
/// Salt length of keyed hashes.
const SALT_LEN: usize = 16;
/// Tag length of keyed hashes (HMAC-SHA-256).
const TAG_LEN: usize = 32;
/// Longest stored string `verify` looks at; "h1$" + 22 + "$" + 43 = 69 characters.
const MAX_STORED_LEN: usize = 128;

/// Server-side pepper for keyed hashes of PINs, fixed passcodes and emergency codes.
///
/// Stored form: `h1$<salt>$<tag>` where salt is 16 random bytes, tag is
/// HMAC-SHA-256(pepper, salt || secret), both base64url without padding. A stolen database alone
/// cannot be brute-forced without the pepper, which lives only in memory: only as HMAC's inner
/// and outer hash states after the key block (pre-keyed, so a PIN check costs two SHA-256
/// compressions instead of four); the key itself is wiped once they are made. `Debug` prints
/// `Pepper(..)`.
#[derive(Clone)]
pub struct Pepper {
    keyed: KeyedMac,
}

impl Pepper {
    /// Keyed hash of `secret` with a fresh random salt, in the stored `h1$salt$tag` form.
    pub fn hash(&self, rng: &mut (impl RngCore + CryptoRng), secret: &[u8]) -> String {
        let mut salt = [0u8; SALT_LEN];
        rng.fill_bytes(&mut salt);
        let tag = self.tag(&salt, secret);
        format!(
            "{HASH_PREFIX}${}${}",
            URL_SAFE_NO_PAD.encode(salt),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// Checks `candidate` against a stored keyed hash, comparing tags in constant time.
    ///
    /// A malformed stored string (wrong prefix, field count, base64 or lengths) gives `false`;
    /// this never panics. The time depends on the stored string and the candidate's length only.
    pub fn verify(&self, stored: &str, candidate: &[u8]) -> bool {
        if stored.len() > MAX_STORED_LEN {
            return false;
        }
        let mut fields = stored.split('$');
        let (Some(HASH_PREFIX), Some(salt), Some(tag), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return false;
        };
        // Decoded into fixed buffers (no allocation on the packet path). They are larger than
        // the fields' decoded estimates (18 and 33 bytes); a longer field fails to decode, and
        // one of any other decoded length is refused below.
        let mut salt_buf = [0u8; 24];
        let mut tag_buf = [0u8; 48];
        let (Ok(SALT_LEN), Ok(TAG_LEN)) = (
            URL_SAFE_NO_PAD.decode_slice(salt, &mut salt_buf),
            URL_SAFE_NO_PAD.decode_slice(tag, &mut tag_buf),
        ) else {
            return false;
        };
        let (Some(salt), Some(tag)) = (salt_buf.get(..SALT_LEN), tag_buf.get(..TAG_LEN)) else {
            return false;
        };
        let expected = self.tag(salt, candidate);
        ct_eq(&expected, tag)
    }

    /// HMAC-SHA-256(pepper, salt || secret).
    fn tag(&self, salt: &[u8], secret: &[u8]) -> [u8; TAG_LEN] {
        self.keyed.mac(&[salt, secret]).to_array32()
    }
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pepper(..)")
    }
}

/// Version byte of encrypted seed blobs.
const SEED_BLOB_VERSION: u8 = 1;
/// AES-GCM nonce length.
const NONCE_LEN: usize = 12;
/// AES-GCM tag length.
const GCM_TAG_LEN: usize = 16;
/// Version byte plus nonce.
const SEED_HEADER_LEN: usize = 1 + NONCE_LEN;

/// AES-256-GCM for token seeds at rest.
///
/// Blob layout: version byte `1` || 12-byte random nonce || ciphertext || 16-byte tag. The `aad`
/// binds a seed to its token (the caller passes the serial), so a seed copied onto another token's
/// row does not decrypt. Random 96-bit nonces are safe far beyond the number of seeds a gateway
/// will ever encrypt under one key. Wiped on drop; `Debug` prints `SeedCipher(..)`.
///
/// Only the 32-byte key is kept (and wiped on drop); the AES key schedule is rebuilt per call, so
/// expanded round keys live only for the duration of one call. They are not wiped afterwards
/// unless the `aes-gcm` crate's optional `zeroize` feature is enabled.
#[derive(Clone)]
pub struct SeedCipher {
    key: Zeroizing<[u8; 32]>,
}

impl SeedCipher {
    fn cipher(&self) -> Aes256Gcm {
        let key: &[u8; 32] = &self.key;
        Aes256Gcm::new(key.into())
    }

    /// Encrypts `seed` with a fresh random nonce, binding it to `aad`.
    ///
    /// AES-GCM only refuses plaintexts over 64 GiB, which no seed approaches; if that ever
    /// happened the result would be an empty blob, which [`SeedCipher::decrypt`] rejects as
    /// [`CryptoError::Malformed`] — never a plaintext.
    pub fn encrypt(
        &self,
        rng: &mut (impl RngCore + CryptoRng),
        seed: &[u8],
        aad: &[u8],
    ) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        // Reserve the whole blob up front: the plaintext is encrypted in place and must not be
        // left behind in an abandoned allocation by a reallocation.
        let mut blob = Vec::with_capacity(SEED_HEADER_LEN + seed.len() + GCM_TAG_LEN);
        blob.push(SEED_BLOB_VERSION);
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(seed);
        let sealed = match blob.get_mut(SEED_HEADER_LEN..) {
            Some(body) => self
                .cipher()
                .encrypt_in_place_detached(&Nonce::from(nonce), aad, body),
            None => Err(aes_gcm::Error),
        };
        match sealed {
            Ok(tag) => {
                blob.extend_from_slice(&tag);
                blob
            }
            Err(_) => {
                blob.zeroize();
                Vec::new()
            }
        }
    }

    /// Decrypts a blob made by [`SeedCipher::encrypt`] with the same master key and `aad`.
    ///
    /// A blob shorter than header + tag or with another version byte is
    /// [`CryptoError::Malformed`]; any authentication failure is [`CryptoError::Decrypt`].
    pub fn decrypt(&self, blob: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if blob.len() < SEED_HEADER_LEN + GCM_TAG_LEN {
            return Err(CryptoError::Malformed);
        }
        let (header, rest) = blob.split_at(SEED_HEADER_LEN);
        let (version, nonce) = header.split_at(1);
        if version != [SEED_BLOB_VERSION] {
            return Err(CryptoError::Malformed);
        }
        let (ciphertext, tag) = rest.split_at(rest.len() - GCM_TAG_LEN);
        let nonce = <[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| CryptoError::Malformed)?;
        let tag = <[u8; GCM_TAG_LEN]>::try_from(tag).map_err(|_| CryptoError::Malformed)?;
        let mut plaintext = Zeroizing::new(ciphertext.to_vec());
        self.cipher()
            .decrypt_in_place_detached(
                &Nonce::from(nonce),
                aad,
                plaintext.as_mut_slice(),
                &Tag::from(tag),
            )
            .map_err(|_| CryptoError::Decrypt)?;
        Ok(plaintext)
    }
}

impl fmt::Debug for SeedCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SeedCipher(..)")
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn key(byte: u8) -> MasterKey {
        MasterKey::from_bytes([byte; 32])
    }

    /// The pepper's HMAC key as `MasterKey::pepper` derives it (the pepper keeps only the
    /// pre-keyed states).
    fn pepper_key(master: &MasterKey) -> Zeroizing<[u8; 32]> {
        hkdf_sha256_32(&[], master.as_bytes(), PEPPER_INFO)
    }

    #[test]
    fn debug_never_prints_key_bytes() {
        let master = key(0xab);
        assert_eq!(format!("{master:?}"), "MasterKey(..)");
        assert_eq!(format!("{:?}", master.pepper()), "Pepper(..)");
        assert_eq!(format!("{:?}", master.seed_cipher()), "SeedCipher(..)");
    }

    #[test]
    fn subkeys_are_distinct_and_deterministic() {
        let master = key(7);
        let derived = pepper_key(&master);
        assert_ne!(*derived, *master.seed_cipher().key);
        assert_ne!(derived.as_slice(), master.as_bytes());
        // The pepper is derived, not drawn: another instance from the same master key verifies.
        let mut rng = StdRng::seed_from_u64(9);
        let stored = master.pepper().hash(&mut rng, b"1234");
        assert!(key(7).pepper().verify(&stored, b"1234"));
        assert!(!key(8).pepper().verify(&stored, b"1234"));
    }

    /// The stored tag is HMAC-SHA-256(HKDF(master, "tokengate/v1/pepper"), salt || secret),
    /// computed here with the `hmac` crate directly: the pre-keyed states give the same bytes.
    #[test]
    fn pepper_tag_is_hmac_sha256_of_salt_and_secret() {
        use hmac::{Hmac, Mac};
        let master = key(3);
        let mut rng = StdRng::seed_from_u64(10);
        for secret in [
            &b""[..],
            b"1234",
            b"a much longer secret than one SHA-256 block of 64 bytes, to cross it",
        ] {
            let stored = master.pepper().hash(&mut rng, secret);
            let mut fields = stored.split('$').skip(1);
            let salt = URL_SAFE_NO_PAD.decode(fields.next().unwrap()).unwrap();
            let tag = URL_SAFE_NO_PAD.decode(fields.next().unwrap()).unwrap();
            let derived = pepper_key(&master);
            let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(derived.as_slice()).unwrap();
            mac.update(&salt);
            mac.update(secret);
            assert_eq!(mac.finalize().into_bytes().as_slice(), tag.as_slice());
        }
    }

    #[test]
    fn generate_uses_the_rng() {
        let mut rng = StdRng::seed_from_u64(1);
        let a = MasterKey::generate(&mut rng);
        let b = MasterKey::generate(&mut rng);
        assert_ne!(a.as_bytes(), b.as_bytes());
        assert_ne!(a.as_bytes(), &[0u8; 32]);
    }

    #[test]
    fn pepper_round_trip() {
        let mut rng = StdRng::seed_from_u64(2);
        let pepper = key(1).pepper();
        let stored = pepper.hash(&mut rng, b"1234");
        assert!(stored.starts_with("h1$"));
        assert_eq!(stored.len(), 3 + 22 + 1 + 43);
        assert!(pepper.verify(&stored, b"1234"));
        assert!(!pepper.verify(&stored, b"1235"));
        assert!(!pepper.verify(&stored, b"12345"));
        assert!(!pepper.verify(&stored, b""));
        // An empty secret hashes and verifies like any other.
        let empty = pepper.hash(&mut rng, b"");
        assert!(pepper.verify(&empty, b""));
        assert!(!pepper.verify(&empty, b"0"));
    }

    #[test]
    fn pepper_salts_differ() {
        let mut rng = StdRng::seed_from_u64(3);
        let pepper = key(1).pepper();
        let a = pepper.hash(&mut rng, b"1234");
        let b = pepper.hash(&mut rng, b"1234");
        assert_ne!(a, b);
        assert_ne!(a.split('$').nth(1), b.split('$').nth(1));
        assert!(pepper.verify(&a, b"1234") && pepper.verify(&b, b"1234"));
    }

    #[test]
    fn pepper_other_master_key_fails() {
        let mut rng = StdRng::seed_from_u64(4);
        let stored = key(1).pepper().hash(&mut rng, b"1234");
        assert!(!key(2).pepper().verify(&stored, b"1234"));
    }

    #[test]
    fn pepper_tampered_and_malformed_are_false() {
        let mut rng = StdRng::seed_from_u64(5);
        let pepper = key(1).pepper();
        let stored = pepper.hash(&mut rng, b"1234");
        let (prefix_salt, tag) = stored.rsplit_once('$').unwrap();
        let (_, salt) = prefix_salt.split_once('$').unwrap();

        // Flip one character of the tag, then of the salt (staying within the alphabet).
        let flip = |s: &str, i: usize| -> String {
            let mut b = s.as_bytes().to_vec();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            String::from_utf8(b).unwrap()
        };
        assert!(!pepper.verify(&format!("h1${salt}${}", flip(tag, 0)), b"1234"));
        assert!(!pepper.verify(&format!("h1${}${tag}", flip(salt, 5)), b"1234"));

        let long = "A".repeat(1000);
        let malformed = [
            String::new(),
            "h1".to_string(),
            "h1$".to_string(),
            "h1$$".to_string(),
            format!("h2${salt}${tag}"),
            format!("H1${salt}${tag}"),
            format!("h1${salt}"),
            format!("h1${salt}${tag}$"),
            format!("h1${salt}${tag}$extra"),
            format!("h1${tag}${salt}"),
            format!("h1${salt}${}", &tag[..42]),
            format!("h1${salt}${tag}A"),
            format!("h1${salt}=${tag}"),
            format!("h1${salt}${tag}="),
            format!("h1$!!!!${tag}"),
            format!("h1${salt}${long}"),
            stored.replace('$', ":"),
            "h1$é$é".to_string(),
        ];
        for bad in &malformed {
            assert!(!pepper.verify(bad, b"1234"), "accepted {bad:?}");
        }
        assert!(pepper.verify(&stored, b"1234"));
    }

    #[test]
    fn seed_cipher_round_trip() {
        let mut rng = StdRng::seed_from_u64(6);
        let cipher = key(9).seed_cipher();
        for seed in [&b""[..], b"12345678901234567890", &[0xffu8; 64]] {
            let blob = cipher.encrypt(&mut rng, seed, b"TG0001");
            assert_eq!(blob.len(), 1 + 12 + seed.len() + 16);
            assert_eq!(blob[0], 1);
            assert_eq!(cipher.decrypt(&blob, b"TG0001").unwrap().as_slice(), seed);
        }
        // Fresh nonces: the same seed never gives the same blob twice.
        let a = cipher.encrypt(&mut rng, b"seed", b"TG0001");
        let b = cipher.encrypt(&mut rng, b"seed", b"TG0001");
        assert_ne!(a, b);
    }

    #[test]
    fn seed_cipher_wrong_aad_fails() {
        let mut rng = StdRng::seed_from_u64(7);
        let cipher = key(9).seed_cipher();
        let blob = cipher.encrypt(&mut rng, b"12345678901234567890", b"TG0001");
        assert!(matches!(
            cipher.decrypt(&blob, b"TG0002"),
            Err(CryptoError::Decrypt)
        ));
        assert!(matches!(
            cipher.decrypt(&blob, b""),
            Err(CryptoError::Decrypt)
        ));
    }

    #[test]
    fn seed_cipher_tampering_fails() {
        let mut rng = StdRng::seed_from_u64(8);
        let cipher = key(9).seed_cipher();
        let blob = cipher.encrypt(&mut rng, b"12345678901234567890", b"TG0001");
        // Every byte after the version byte is authenticated (nonce, ciphertext, tag).
        for i in 1..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x01;
            assert!(
                matches!(cipher.decrypt(&bad, b"TG0001"), Err(CryptoError::Decrypt)),
                "byte {i}"
            );
        }
        let mut bad = blob.clone();
        bad[0] = 2;
        assert!(matches!(
            cipher.decrypt(&bad, b"TG0001"),
            Err(CryptoError::Malformed)
        ));
        let mut longer = blob.clone();
        longer.push(0);
        assert!(matches!(
            cipher.decrypt(&longer, b"TG0001"),
            Err(CryptoError::Decrypt)
        ));
    }

    #[test]
    fn seed_cipher_truncated_is_malformed() {
        let mut rng = StdRng::seed_from_u64(9);
        let cipher = key(9).seed_cipher();
        let blob = cipher.encrypt(&mut rng, b"12345678901234567890", b"TG0001");
        for len in 0..(1 + 12 + 16) {
            assert!(
                matches!(
                    cipher.decrypt(&blob[..len], b"TG0001"),
                    Err(CryptoError::Malformed)
                ),
                "len {len}"
            );
        }
        // Cutting into the ciphertext leaves a well-formed but unauthentic blob.
        assert!(matches!(
            cipher.decrypt(&blob[..blob.len() - 1], b"TG0001"),
            Err(CryptoError::Decrypt)
        ));
    }

    #[test]
    fn seed_cipher_other_master_key_fails() {
        let mut rng = StdRng::seed_from_u64(10);
        let blob = key(9).seed_cipher().encrypt(&mut rng, b"seed", b"TG0001");
        assert!(matches!(
            key(10).seed_cipher().decrypt(&blob, b"TG0001"),
            Err(CryptoError::Decrypt)
        ));
        // The pepper and the seed key are independent: a cipher keyed like the pepper fails too.
        let pepper_keyed = SeedCipher {
            key: pepper_key(&key(9)),
        };
        assert!(matches!(
            pepper_keyed.decrypt(&blob, b"TG0001"),
            Err(CryptoError::Decrypt)
        ));
    }

    /// The check value is HMAC-SHA-256(HKDF(master, "tokengate/v1/key-check"), label),
    /// computed here with the `hmac` and `hkdf` crates directly.
    #[test]
    fn check_value_is_hmac_of_the_label_under_a_derived_key() {
        use hmac::{Hmac, Mac};
        let master = key(5);
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(None, master.as_bytes());
        let mut derived = [0u8; 32];
        hk.expand(b"tokengate/v1/key-check", &mut derived).unwrap();
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&derived).unwrap();
        mac.update(b"tokengate master key check");
        let expected = mac.finalize().into_bytes();
        assert_eq!(master.check_value().as_slice(), expected.as_slice());
        let hexed = master.check_value_hex();
        assert_eq!(hexed.len(), 64);
        assert!(hexed
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(
            hexed,
            expected
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        // Not the pepper, not the seed key, not the key itself.
        assert_ne!(master.check_value(), *pepper_key(&master));
        assert_ne!(master.check_value(), *master.seed_cipher().key);
        assert_ne!(&master.check_value(), master.as_bytes());
    }

    #[test]
    fn check_value_tells_keys_apart_and_refuses_malformed_text() {
        let a = key(1);
        let b = key(2);
        assert_ne!(a.check_value(), b.check_value());
        assert!(a.matches_check_value(&a.check_value_hex()));
        assert!(a.matches_check_value(&a.check_value_hex().to_ascii_uppercase()));
        assert!(!a.matches_check_value(&b.check_value_hex()));
        let good = a.check_value_hex();
        for bad in [
            String::new(),
            good[..63].to_string(),
            format!("{good}0"),
            format!("{}g", &good[..63]),
            format!(" {}", &good[..63]),
            "é".repeat(32),
        ] {
            assert!(!a.matches_check_value(&bad), "{bad:?}");
        }
        // Carrying a pepper does not change the check value: it belongs to the key file.
        assert_eq!(key(2).carry_pepper_from(&a).check_value(), b.check_value());
    }

    #[test]
    fn carried_pepper_verifies_old_hashes_and_survives_wrapping() {
        let mut rng = StdRng::seed_from_u64(11);
        let old = key(1);
        let stored = old.pepper().hash(&mut rng, b"1234");
        let new = key(2).carry_pepper_from(&old);
        assert!(new.carries_pepper() && !old.carries_pepper());
        assert!(new.pepper().verify(&stored, b"1234"));
        // The seeds move to the new key: its seed cipher is its own.
        let blob = new.seed_cipher().encrypt(&mut rng, b"seed", b"TG0001");
        assert!(old.seed_cipher().decrypt(&blob, b"TG0001").is_err());
        assert!(key(2).seed_cipher().decrypt(&blob, b"TG0001").is_ok());

        // What the database keeps, opened again at the next start.
        let wrapped = new.wrap_pepper(&mut rng);
        assert!(!wrapped.windows(32).any(|w| w == *pepper_key(&old)));
        let reopened = key(2).with_wrapped_pepper(&wrapped).unwrap();
        assert!(reopened.carries_pepper());
        assert!(reopened.pepper().verify(&stored, b"1234"));
        // Another key cannot open it; nor can anything tampered.
        assert!(matches!(
            key(1).with_wrapped_pepper(&wrapped),
            Err(CryptoError::Decrypt)
        ));
        let mut bad = wrapped.clone();
        bad[20] ^= 1;
        assert!(key(2).with_wrapped_pepper(&bad).is_err());
        // A second rotation carries the same pepper on.
        let third = key(3).carry_pepper_from(&reopened);
        let wrapped3 = third.wrap_pepper(&mut rng);
        let reopened3 = key(3).with_wrapped_pepper(&wrapped3).unwrap();
        assert!(reopened3.pepper().verify(&stored, b"1234"));
        // A sealed value that is not 32 bytes is malformed, not a pepper.
        let short = key(3)
            .pepper_wrap_cipher()
            .encrypt(&mut rng, b"short", PEPPER_WRAP_AAD);
        assert!(matches!(
            key(3).with_wrapped_pepper(&short),
            Err(CryptoError::Malformed)
        ));
    }

    #[test]
    fn error_messages_are_clear() {
        assert!(CryptoError::Malformed.to_string().contains("malformed"));
        assert!(CryptoError::Decrypt
            .to_string()
            .contains("does not decrypt"));
    }
}
