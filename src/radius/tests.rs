//! Known-answer tests from VECTORS.md §1, §2, §5 and §6, plus a deterministic mutation test.
//!
//! This file owns the codec's unit tests only; it must not reach the network or the clock.

// Tests may unwrap and panic (clippy.toml) and index directly.
#![allow(clippy::indexing_slicing)]

use super::*;

const SECRET: &[u8] = b"xyzzy5461";

/// Parses whitespace-separated hex octets.
pub(crate) fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| b.is_ascii_hexdigit())
        .map(|b| (b as char).to_digit(16).unwrap() as u8)
        .collect();
    assert!(digits.len() % 2 == 0, "odd hex: {s}");
    digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
}

fn arr16(s: &str) -> [u8; 16] {
    hex(s).try_into().unwrap()
}

// RFC 2865 §7.1
const RFC_7_1_REQUEST: &str = "01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb
98 f4 22 7a 01 06 6e 65 6d 6f 02 12 0d be 70 8d
93 d4 13 ce 31 96 e4 3f 78 2a 0a ee 04 06 c0 a8
01 10 05 06 00 00 00 03";
const RFC_7_1_ACCEPT: &str = "02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf
9b 55 e0 b2 06 06 00 00 00 01 0f 06 00 00 00 00
0e 06 c0 a8 01 03";
// RFC 2865 §7.2
const RFC_7_2_REQUEST: &str = "01 01 00 47 2a ee 86 f0 8d 0d 55 96 9c a5 97 8e
0d 33 67 a2 01 08 66 6c 6f 70 73 79 03 13 16 e9
75 57 c3 16 18 58 95 f2 93 ff 63 44 07 72 75 04
06 c0 a8 01 10 05 06 00 00 00 14 06 06 00 00 00
02 07 06 00 00 00 01";
const RFC_7_2_ACCEPT: &str = "02 01 00 38 15 ef bc 7d ab 26 cf a3 dc 34 d9 c0
3c 86 01 a4 06 06 00 00 00 02 07 06 00 00 00 01
08 06 ff ff ff fe 0a 06 00 00 00 02 0d 06 00 00
00 01 0c 06 00 00 05 dc";
// RFC 2865 §7.3
const RFC_7_3_REQUEST: &str = "01 02 00 39 f3 a4 7a 1f 6a 6d 76 71 0b 94 7a b9
30 41 a0 39 01 07 6d 6f 70 73 79 02 12 33 65 75
73 77 82 89 b5 70 88 5e 15 08 48 25 c5 04 06 c0
a8 01 10 05 06 00 00 00 07";
const RFC_7_3_CHALLENGE: &str = "0b 02 00 4e 36 f3 c8 76 4a e8 c7 11 57 40 3c 0c
71 ff 9c 45 12 30 43 68 61 6c 6c 65 6e 67 65 20
33 32 37 36 39 34 33 30 2e 20 20 45 6e 74 65 72
20 72 65 73 70 6f 6e 73 65 20 61 74 20 70 72 6f
6d 70 74 2e 18 0a 33 32 37 36 39 34 33 30";
/// 7.3(b) as printed in the RFC (State header `18 10`, an erratum).
const RFC_7_3B_PRINTED: &str = "01 03 00 43 b1 22 55 6d 42 8a 13 d0 d6 25 38 07
c4 57 ec f0 01 07 6d 6f 70 73 79 02 12 69 2c 1f
20 5f c0 81 b9 19 b9 51 95 f5 61 a5 81 04 06 c0
a8 01 10 05 06 00 00 00 07 18 10 33 32 37 36 39
34 33 30";
const RFC_7_3_REJECT: &str = "03 03 00 14 a4 2f 4f ca 45 91 6c 4e 09 c8 34 0f 9e 74 6a a0";

// RFC 5997 §6
const RFC5997_6_1_STATUS: &str = "0c da 00 26 8a 54 f4 68 6f b3 94 c5 28 66 e3 02
18 5d 06 23 50 12 5a 66 5e 2e 1e 84 11 f3 e2 43
82 20 97 c8 4f a3";
const RFC5997_6_1_ACCEPT: &str = "02 da 00 14 ef 0d 55 2a 4b f2 d6 93 ec 2b 6f e8 b5 41 1d 66";
const RFC5997_6_2_STATUS: &str = "0c b3 00 26 92 5f 6b 66 dd 5f ed 57 1f cb 1d b7
ad 38 82 60 50 12 e8 d6 ea bd a9 10 87 5c d9 1f
da de 26 36 78 58";
const RFC5997_6_2_ACCT_RESPONSE: &str =
    "05 b3 00 14 0f 6f 92 14 5f 10 7e 2f 50 4e 86 0a 48 60 66 9c";
const RFC5997_6_3_STATUS: &str = "0c 47 00 2c bf 58 de 56 ae 40 8a d3 b7 0c 85 13
f9 b0 3f be 04 06 c0 00 02 10 50 12 85 2d 6f ec
61 e7 ed 74 b8 e3 2d ac 2f 2a 5f b2";
const RFC5997_6_3_ACCEPT: &str = "02 47 00 34 46 f4 3e 62 fd 03 54 42 4c bb eb fd
6d 21 4e 06 12 20 52 41 44 49 55 53 20 53 65 72
76 65 72 20 75 70 20 32 20 64 61 79 73 2c 20 31
38 3a 34 30";

// VECTORS §5(c)
const ACCEPT_MA_FIRST: &str = "02 00 00 2c 0e 28 e1 3b b2 ff 91 88 f2 b2 3e 44 12 c2 c6 c2 50 12 38 5b 89 9f 61 a9 e7 c8 02 bb 35 46 c1 0a 2a 8b 06 06 00 00 00 01";

/// 7.3(b) with the erratum corrected (`18 0a`).
fn rfc_7_3b_corrected() -> Vec<u8> {
    let mut p = hex(RFC_7_3B_PRINTED);
    let pos = p.len() - 10;
    assert_eq!(&p[pos..pos + 2], &[0x18, 0x10]);
    p[pos + 1] = 0x0a;
    p
}

/// Every valid vector packet, for decode and mutation tests (and the fuzz corpus).
pub(crate) fn valid_vectors() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("rfc2865_7_1_request", hex(RFC_7_1_REQUEST)),
        ("rfc2865_7_1_accept", hex(RFC_7_1_ACCEPT)),
        ("rfc2865_7_2_request", hex(RFC_7_2_REQUEST)),
        ("rfc2865_7_2_accept", hex(RFC_7_2_ACCEPT)),
        ("rfc2865_7_3_request", hex(RFC_7_3_REQUEST)),
        ("rfc2865_7_3_challenge", hex(RFC_7_3_CHALLENGE)),
        ("rfc2865_7_3b_request", rfc_7_3b_corrected()),
        ("rfc2865_7_3_reject", hex(RFC_7_3_REJECT)),
        ("rfc5997_6_1_status", hex(RFC5997_6_1_STATUS)),
        ("rfc5997_6_1_accept", hex(RFC5997_6_1_ACCEPT)),
        ("rfc5997_6_2_status", hex(RFC5997_6_2_STATUS)),
        ("rfc5997_6_2_acct_response", hex(RFC5997_6_2_ACCT_RESPONSE)),
        ("rfc5997_6_3_status", hex(RFC5997_6_3_STATUS)),
        ("rfc5997_6_3_accept", hex(RFC5997_6_3_ACCEPT)),
        ("accept_ma_first", hex(ACCEPT_MA_FIRST)),
    ]
}

fn key() -> ClientKey {
    ClientKey::new(SECRET)
}

#[test]
fn every_vector_decodes() {
    for (name, bytes) in valid_vectors() {
        let p = Packet::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(p.as_bytes().len(), bytes.len(), "{name}");
        assert_eq!(p.as_bytes(), &bytes[..]);
    }
}

#[test]
fn rfc2865_request_fields_and_passwords() {
    let k = key();
    let mut out = [0u8; 128];
    let cases = [
        (hex(RFC_7_1_REQUEST), &b"nemo"[..], &b"arctangent"[..], 0u8),
        (hex(RFC_7_3_REQUEST), b"mopsy", b"challenge", 2),
        (rfc_7_3b_corrected(), b"mopsy", b"99101462", 3),
    ];
    for (bytes, user, password, id) in cases {
        let p = Packet::decode(&bytes).unwrap();
        assert_eq!(p.code(), Code::AccessRequest);
        assert_eq!(p.identifier(), id);
        assert_eq!(p.first(attr::USER_NAME), Some(user));
        assert_eq!(p.first(attr::NAS_IP_ADDRESS), Some(&[192, 168, 1, 16][..]));
        let hidden = p.first(attr::USER_PASSWORD).unwrap();
        let clear = k
            .unhide_password(p.authenticator(), hidden, &mut out)
            .unwrap();
        assert_eq!(clear, password);
    }
    let b = rfc_7_3b_corrected();
    assert_eq!(
        Packet::decode(&b).unwrap().first(attr::STATE),
        Some(&b"32769430"[..])
    );
}

#[test]
fn rfc2865_response_authenticators_verify() {
    let k = key();
    let pairs = [
        (hex(RFC_7_1_REQUEST), hex(RFC_7_1_ACCEPT)),
        (hex(RFC_7_2_REQUEST), hex(RFC_7_2_ACCEPT)),
        (hex(RFC_7_3_REQUEST), hex(RFC_7_3_CHALLENGE)),
        (rfc_7_3b_corrected(), hex(RFC_7_3_REJECT)),
        (hex(RFC5997_6_1_STATUS), hex(RFC5997_6_1_ACCEPT)),
        (hex(RFC5997_6_2_STATUS), hex(RFC5997_6_2_ACCT_RESPONSE)),
        (hex(RFC5997_6_3_STATUS), hex(RFC5997_6_3_ACCEPT)),
        (hex(RFC_7_1_REQUEST), hex(ACCEPT_MA_FIRST)),
    ];
    for (req, rep) in &pairs {
        let req = Packet::decode(req).unwrap();
        let rep = Packet::decode(rep).unwrap();
        assert_eq!(req.identifier(), rep.identifier());
        assert!(k.verify_response_authenticator(&rep, req.authenticator()));
        // Wrong secret and wrong request authenticator fail.
        assert!(
            !ClientKey::new(b"xyzzy5462").verify_response_authenticator(&rep, req.authenticator())
        );
        assert!(!k.verify_response_authenticator(&rep, &[0u8; 16]));
    }
}

#[test]
fn rfc5997_accounting_response_erratum() {
    // As printed (code 02) the authenticator does not verify; with code 05 it does.
    let req = hex(RFC5997_6_2_STATUS);
    let req = Packet::decode(&req).unwrap();
    let mut printed = hex(RFC5997_6_2_ACCT_RESPONSE);
    printed[0] = 0x02;
    let printed = Packet::decode(&printed).unwrap();
    assert!(!key().verify_response_authenticator(&printed, req.authenticator()));
}

#[test]
fn chap_vector_verifies() {
    let bytes = hex(RFC_7_2_REQUEST);
    let p = Packet::decode(&bytes).unwrap();
    assert_eq!(p.first(attr::USER_NAME), Some(&b"flopsy"[..]));
    assert_eq!(p.first(attr::CHAP_CHALLENGE), None);
    let chap = p.first(attr::CHAP_PASSWORD).unwrap();
    assert_eq!(chap.len(), 17);
    assert_eq!(chap[0], 22);
    let expected = chap_response(chap[0], b"arctangent", p.authenticator());
    assert_eq!(&chap[1..], &expected);
    assert_ne!(
        &chap[1..],
        &chap_response(chap[0], b"arctangenT", p.authenticator())
    );
}

#[test]
fn chap_derived_vector() {
    // VECTORS §5(a).
    let challenge = hex("000102030405060708090a0b0c0d0e0f");
    assert_eq!(
        chap_response(0x2a, b"1234081804", &challenge),
        arr16("64424787c6eb4c5e2a668dd5b41b6881")
    );
}

#[test]
fn erratum_7_3b_printed_form_rejected() {
    assert_eq!(
        Packet::decode(&hex(RFC_7_3B_PRINTED)).unwrap_err(),
        DecodeError::AttributeOverflow
    );
    assert!(Packet::decode(&rfc_7_3b_corrected()).is_ok());
}

#[test]
fn rfc5997_message_authenticators_verify() {
    let k = key();
    for (s, ma) in [
        (RFC5997_6_1_STATUS, "5a665e2e1e8411f3e243822097c84fa3"),
        (RFC5997_6_2_STATUS, "e8d6eabda910875cd91fdade26367858"),
        (RFC5997_6_3_STATUS, "852d6fec61e7ed74b8e32dac2f2a5fb2"),
    ] {
        let bytes = hex(s);
        let p = Packet::decode(&bytes).unwrap();
        assert_eq!(p.code(), Code::StatusServer);
        assert_eq!(p.message_authenticator(), Some(&arr16(ma)));
        assert!(k.verify_message_authenticator(&p, p.authenticator()));
        assert!(!k.verify_message_authenticator(&p, &[0u8; 16]));
        assert!(!ClientKey::new(b"other").verify_message_authenticator(&p, p.authenticator()));
        // A flipped attribute octet breaks the MA.
        let mut tampered = bytes.clone();
        *tampered.last_mut().unwrap() ^= 1;
        let t = Packet::decode(&tampered).unwrap();
        assert!(!k.verify_message_authenticator(&t, t.authenticator()));
    }
    // No MA: false.
    let bytes = hex(RFC_7_1_REQUEST);
    let p = Packet::decode(&bytes).unwrap();
    assert!(!k.verify_message_authenticator(&p, p.authenticator()));
}

#[test]
fn accept_with_ma_first_is_byte_exact() {
    let k = key();
    let req_bytes = hex(RFC_7_1_REQUEST);
    let req = Packet::decode(&req_bytes).unwrap();
    let mut buf = [0u8; MAX_PACKET_LEN];
    let mut enc = Encoder::reply(&mut buf, Code::AccessAccept, req.identifier()).unwrap();
    enc.push(attr::SERVICE_TYPE, &1u32.to_be_bytes()).unwrap();
    let out = enc.finish_reply(&k, req.authenticator()).unwrap();
    assert_eq!(out, &hex(ACCEPT_MA_FIRST)[..]);
    let rep = Packet::decode(out).unwrap();
    assert_eq!(
        rep.message_authenticator(),
        Some(&arr16("385b899f61a9e7c802bb3546c10a2a8b"))
    );
    assert!(k.verify_message_authenticator(&rep, req.authenticator()));
    assert!(k.verify_response_authenticator(&rep, req.authenticator()));
}

#[test]
fn rfc_replies_reencode_without_ma() {
    // The RFC replies carry no MA; re-encoding their attributes with a request-style encoder
    // and signing like a reply reproduces them byte for byte.
    let k = key();
    for (req, rep) in [
        (RFC_7_1_REQUEST, RFC_7_1_ACCEPT),
        (RFC_7_2_REQUEST, RFC_7_2_ACCEPT),
        (RFC_7_3_REQUEST, RFC_7_3_CHALLENGE),
        (RFC5997_6_3_STATUS, RFC5997_6_3_ACCEPT),
    ] {
        let (req, rep) = (hex(req), hex(rep));
        let reqp = Packet::decode(&req).unwrap();
        let repp = Packet::decode(&rep).unwrap();
        let mut buf = [0u8; 512];
        let mut enc =
            Encoder::request(&mut buf, repp.code(), repp.identifier(), &[0; 16], false).unwrap();
        for (ty, value) in repp.attributes() {
            enc.push(ty, value).unwrap();
        }
        let out = enc.finish_reply(&k, reqp.authenticator()).unwrap();
        assert_eq!(out, &rep[..]);
    }
}

#[test]
fn encoder_7_3_challenge_with_split_reply_message() {
    let k = key();
    let req = hex(RFC_7_3_REQUEST);
    let req = Packet::decode(&req).unwrap();
    let mut buf = [0u8; 1024];
    let mut enc = Encoder::reply(&mut buf, Code::AccessChallenge, 2).unwrap();
    let long = vec![b'x'; 600];
    enc.push_split(attr::REPLY_MESSAGE, &long).unwrap();
    enc.push(attr::STATE, b"32769430").unwrap();
    let out = enc.finish_reply(&k, req.authenticator()).unwrap();
    let p = Packet::decode(out).unwrap();
    let attrs: Vec<_> = p.attributes().collect();
    assert_eq!(attrs[0].0, attr::MESSAGE_AUTHENTICATOR);
    let lens: Vec<_> = attrs[1..4].iter().map(|(t, v)| (*t, v.len())).collect();
    assert_eq!(lens, vec![(18, 253), (18, 253), (18, 94)]);
    assert_eq!(p.first(attr::STATE), Some(&b"32769430"[..]));
    assert!(k.verify_message_authenticator(&p, req.authenticator()));
    assert!(k.verify_response_authenticator(&p, req.authenticator()));
}

#[test]
fn encoder_limits() {
    let mut small = [0u8; 19];
    assert_eq!(
        Encoder::request(&mut small, Code::AccessRequest, 0, &[0; 16], false).unwrap_err(),
        EncodeError::BufferTooSmall
    );
    let mut small = [0u8; 30];
    assert_eq!(
        Encoder::reply(&mut small, Code::AccessAccept, 0).unwrap_err(),
        EncodeError::BufferTooSmall
    );
    let mut buf = [0u8; 8192];
    let mut enc = Encoder::reply(&mut buf, Code::AccessAccept, 0).unwrap();
    assert_eq!(
        enc.push(1, &[0; 254]).unwrap_err(),
        EncodeError::ValueTooLong
    );
    enc.push(1, &[0; 253]).unwrap();
    assert_eq!(
        enc.push(0, b"x").unwrap_err(),
        EncodeError::MalformedAttribute
    );
    assert_eq!(
        enc.push(attr::MESSAGE_AUTHENTICATOR, &[0; 16]).unwrap_err(),
        EncodeError::DuplicateMessageAuthenticator
    );
    assert_eq!(
        enc.push_raw(&[1, 3]).unwrap_err(),
        EncodeError::MalformedAttribute
    );
    assert_eq!(
        enc.push_raw(&[1]).unwrap_err(),
        EncodeError::MalformedAttribute
    );
    assert_eq!(
        enc.push_vsa(9, 1, &[0; 248]).unwrap_err(),
        EncodeError::ValueTooLong
    );
    let k = key();
    assert_eq!(
        enc.push_user_password(&k, b"pw").unwrap_err(),
        EncodeError::NotARequest
    );
    // Split across the 4096 limit is all-or-nothing.
    let before = enc.len();
    assert_eq!(
        enc.push_split(18, &[b'a'; 5000]).unwrap_err(),
        EncodeError::PacketTooLong
    );
    assert_eq!(enc.len(), before);
    while enc.push(18, &[b'a'; 253]).is_ok() {}
    assert!(enc.len() <= MAX_PACKET_LEN);
    let out = enc.finish_reply(&k, &[7; 16]).unwrap();
    assert!(Packet::decode(out).is_ok());
}

#[test]
fn encoder_vsa_and_request() {
    let k = key();
    let ra = arr16("0f403f9473978057bd83d5cb98f4227a");
    let mut buf = [0u8; 256];
    let mut enc = Encoder::request(&mut buf, Code::AccessRequest, 9, &ra, true).unwrap();
    enc.push(attr::USER_NAME, b"nemo").unwrap();
    enc.push_user_password(&k, b"arctangent").unwrap();
    enc.push_vsa(9, 1, b"shell:priv-lvl=15").unwrap();
    let out = enc.finish_request(&k).unwrap();
    let p = Packet::decode(out).unwrap();
    assert_eq!(p.authenticator(), &ra);
    assert!(k.verify_message_authenticator(&p, &ra));
    let mut pw = [0u8; 128];
    let clear = k
        .unhide_password(&ra, p.first(attr::USER_PASSWORD).unwrap(), &mut pw)
        .unwrap();
    assert_eq!(clear, b"arctangent");
    let vsa = p.first(attr::VENDOR_SPECIFIC).unwrap();
    assert_eq!(&vsa[..6], &[0, 0, 0, 9, 1, 19]);
    assert_eq!(&vsa[6..], b"shell:priv-lvl=15");
    // Identical to RFC 7.1's password ciphertext (same secret, RA, password).
    let rfc = hex(RFC_7_1_REQUEST);
    let rfc = Packet::decode(&rfc).unwrap();
    assert_eq!(p.first(attr::USER_PASSWORD), rfc.first(attr::USER_PASSWORD));
}

#[test]
fn accounting_request_authenticator() {
    let k = key();
    let mut buf = [0u8; 256];
    let mut enc = Encoder::request(&mut buf, Code::AccountingRequest, 1, &[9; 16], true).unwrap();
    enc.push(40, &1u32.to_be_bytes()).unwrap();
    let out = enc.finish_request(&k).unwrap();
    let p = Packet::decode(out).unwrap();
    assert!(k.verify_request_authenticator(&p));
    assert!(k.verify_message_authenticator(&p, &[0; 16]));
    assert!(!ClientKey::new(b"x").verify_request_authenticator(&p));
}

#[test]
fn multi_block_hide_vector() {
    // VECTORS §5(b).
    let k = key();
    let ra = arr16("0f403f9473978057bd83d5cb98f4227a");
    let mut out = [0u8; 128];
    let hidden = k
        .hide_password(&ra, b"correct horse battery staple", &mut out)
        .unwrap()
        .to_vec();
    assert_eq!(
        hidden,
        hex("0fa3618b97d9008b378d964c1d0a688ff81cf1b33b8febbd4ef4b93620a86e24")
    );
    let mut out = [0u8; 128];
    assert_eq!(
        k.unhide_password(&ra, &hidden, &mut out).unwrap(),
        b"correct horse battery staple"
    );
}

#[test]
fn hide_unhide_round_trip_and_limits() {
    let k = ClientKey::new(b"a much longer shared secret than usual, longer than one md5 block!!");
    let ra = arr16("00112233445566778899aabbccddeeff");
    for len in 1..=128usize {
        let password: Vec<u8> = (0..len).map(|i| b'!' + (i % 90) as u8).collect();
        let mut out = [0u8; 128];
        let hidden = k.hide_password(&ra, &password, &mut out).unwrap().to_vec();
        assert_eq!(hidden.len(), len.div_ceil(16) * 16);
        let mut clear = [0u8; 128];
        assert_eq!(
            k.unhide_password(&ra, &hidden, &mut clear).unwrap(),
            &password[..]
        );
    }
    let mut out = [0u8; 128];
    assert_eq!(
        k.hide_password(&ra, &[b'a'; 129], &mut out).unwrap_err(),
        PasswordError::BadLength
    );
    assert_eq!(
        k.hide_password(&ra, b"", &mut out).unwrap_err(),
        PasswordError::BadLength
    );
    for bad in [0usize, 15, 17, 144] {
        assert_eq!(
            k.unhide_password(&ra, &vec![1u8; bad], &mut out)
                .unwrap_err(),
            PasswordError::BadLength,
            "{bad}"
        );
    }
}

#[test]
fn long_secret_hmac_matches_definition() {
    // Secrets longer than the MD5 block are hashed first (RFC 2104); compare with hmac's own
    // slice constructor.
    use hmac::{Hmac, Mac};
    let secret = [0x5au8; 100];
    let k = ClientKey::new(&secret);
    let mut buf = [0u8; 64];
    let enc = Encoder::request(&mut buf, Code::StatusServer, 1, &[3; 16], true).unwrap();
    let out = enc.finish_request(&k).unwrap().to_vec();
    let mut zeroed = out.clone();
    zeroed[22..38].fill(0);
    let mut mac = <Hmac<md5::Md5> as Mac>::new_from_slice(&secret).unwrap();
    mac.update(&zeroed);
    let expected: [u8; 16] = mac.finalize().into_bytes().into();
    assert_eq!(&out[22..38], &expected);
}

#[test]
fn client_key_debug_hides_secret() {
    assert_eq!(format!("{:?}", key()), "ClientKey(..)");
    assert_eq!(key().secret(), SECRET);
}

fn header(code: u8, len: u16) -> Vec<u8> {
    let mut v = vec![code, 0];
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(&[0xab; 16]);
    v
}

fn with_attrs(code: u8, attrs: &[u8]) -> Vec<u8> {
    let mut v = header(code, (20 + attrs.len()) as u16);
    v.extend_from_slice(attrs);
    v
}

#[test]
fn negative_vectors() {
    use DecodeError::*;
    let mut short = vec![0x01, 0x00, 0x00, 0x13];
    short.extend_from_slice(&[0; 15]);
    let mut cases: Vec<(Vec<u8>, DecodeError)> = vec![(short, TooShort)];
    for code in [0x00u8, 0x35, 0xff] {
        cases.push((header(code, 20), UnknownCode(code)));
    }
    let mut len_too_long = header(1, 0x64);
    len_too_long.truncate(20);
    cases.extend([
        (header(1, 0x13), LengthBelowMinimum),
        (header(1, 4097), LengthAboveMaximum),
        (len_too_long, LengthExceedsDatagram),
        (with_attrs(1, &[0xff]), AttributeHeaderOverflow),
        (with_attrs(1, &[0x00, 0x02]), AttributeTypeZero),
        (with_attrs(1, &[0x01, 0x00]), AttributeLengthTooSmall),
        (with_attrs(1, &[0x01, 0x01]), AttributeLengthTooSmall),
        (with_attrs(1, &[0x01, 0x0a]), AttributeOverflow),
        (
            with_attrs(1, &[0x50, 0x05, 0, 0, 0]),
            MessageAuthenticatorLength,
        ),
        (with_attrs(0x0c, &[]), MessageAuthenticatorRequired),
        (
            with_attrs(0x0c, &[0x04, 0x06, 192, 0, 2, 16]),
            MessageAuthenticatorRequired,
        ),
        (
            with_attrs(1, &[0x4f, 0x04, 0x01, 0x01]),
            MessageAuthenticatorRequired,
        ),
    ]);
    let mut two_ma = vec![0x50, 18];
    two_ma.extend_from_slice(&[0; 16]);
    two_ma.extend_from_slice(&two_ma.clone());
    cases.push((with_attrs(1, &two_ma), DuplicateMessageAuthenticator));
    for (bytes, expected) in cases {
        assert_eq!(
            Packet::decode(&bytes).unwrap_err(),
            expected,
            "{bytes:02x?}"
        );
        assert!(!expected.reason().is_empty());
    }
    assert_eq!(TooShort.reason(), "too_short");
    assert_eq!(UnknownCode(0).reason(), "unknown_code");
    assert_eq!(AttributeOverflow.reason(), "attribute_overflow");
    // Trailing octets after Length are ignored (RFC 2865 §3).
    let mut padded = hex(RFC_7_3_REJECT);
    padded.extend_from_slice(&[0xee; 7]);
    assert_eq!(Packet::decode(&padded).unwrap().as_bytes().len(), 20);
    // EAP-Message with an MA is fine.
    let mut eap = vec![0x4f, 0x04, 0x01, 0x01, 0x50, 18];
    eap.extend_from_slice(&[0; 16]);
    assert!(Packet::decode(&with_attrs(1, &eap)).is_ok());
}

#[test]
fn code_round_trip() {
    for v in 0..=255u8 {
        if let Some(c) = Code::from_u8(v) {
            assert_eq!(c.as_u8(), v);
        }
    }
    assert_eq!(Code::from_u8(45), Some(Code::CoaNak));
    assert_eq!(Code::from_u8(6), None);
}

/// xorshift64*: a tiny deterministic PRNG so the mutation test needs no `rand`.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Decode → re-encode every attribute with `push_raw` → decode again: same header, same
/// attributes. Returns whether `bytes` decoded.
pub(crate) fn round_trip(bytes: &[u8]) -> bool {
    let Ok(p) = Packet::decode(bytes) else {
        return false;
    };
    let mut buf = [0u8; MAX_PACKET_LEN];
    let mut enc =
        Encoder::request(&mut buf, p.code(), p.identifier(), p.authenticator(), false).unwrap();
    for (ty, value) in p.attributes() {
        let mut raw = vec![ty, (value.len() + 2) as u8];
        raw.extend_from_slice(value);
        enc.push_raw(&raw).unwrap();
    }
    let out = enc.finish_unsigned().unwrap();
    assert_eq!(out, p.as_bytes());
    let q = Packet::decode(out).unwrap();
    assert_eq!(q.code(), p.code());
    assert!(q.attributes().eq(p.attributes()));
    assert_eq!(q.message_authenticator(), p.message_authenticator());
    // Unhide never panics on whatever User-Password holds.
    if let Some(hidden) = p.first(attr::USER_PASSWORD) {
        let mut out = [0u8; 128];
        let _ = key().unhide_password(p.authenticator(), hidden, &mut out);
    }
    true
}

#[test]
fn mutation_never_panics_and_round_trips() {
    let vectors = valid_vectors();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut decoded = 0usize;
    const ROUNDS: usize = 200_000;
    for _ in 0..ROUNDS {
        let (_, base) = &vectors[rng.below(vectors.len())];
        let mut b = base.clone();
        for _ in 0..=rng.below(3) {
            match rng.below(6) {
                0 => {
                    let i = rng.below(b.len());
                    if let Some(x) = b.get_mut(i) {
                        *x ^= 1 << rng.below(8);
                    }
                }
                1 => {
                    let i = rng.below(b.len());
                    if let Some(x) = b.get_mut(i) {
                        *x = rng.next() as u8;
                    }
                }
                2 => b.truncate(rng.below(b.len() + 1)),
                3 => {
                    // Length field edits: small deltas and wild values.
                    if b.len() >= 4 {
                        let old = u16::from_be_bytes([b[2], b[3]]);
                        let new = if rng.below(2) == 0 {
                            old.wrapping_add(rng.below(9) as u16).wrapping_sub(4)
                        } else {
                            rng.next() as u16
                        };
                        b[2..4].copy_from_slice(&new.to_be_bytes());
                    }
                }
                4 => {
                    // Attribute length octet edits (at or after the header).
                    if b.len() > 21 {
                        let i = 20 + rng.below(b.len() - 20);
                        b[i] = rng.below(40) as u8;
                    }
                }
                _ => {
                    let extra = rng.below(8);
                    for _ in 0..extra {
                        b.push(rng.next() as u8);
                    }
                }
            }
        }
        if round_trip(&b) {
            decoded += 1;
        }
    }
    // The mutations must exercise both paths.
    assert!(decoded > ROUNDS / 20, "only {decoded} decoded");
    assert!(decoded < ROUNDS, "nothing was rejected");
}

/// Writes every vector (valid ones and the 7.3(b) erratum) as binary fuzz seeds into the
/// directory named by `TOKENGATE_WRITE_FUZZ_CORPUS`; does nothing when it is unset.
#[test]
fn write_fuzz_corpus() {
    let Some(dir) = std::env::var_os("TOKENGATE_WRITE_FUZZ_CORPUS") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut all = valid_vectors();
    all.push(("rfc2865_7_3b_printed_erratum", hex(RFC_7_3B_PRINTED)));
    for (name, bytes) in all {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
