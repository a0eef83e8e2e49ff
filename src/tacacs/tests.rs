//! Known-answer tests from VECTORS.md §3 and §6 (key `testing123`), key rollover, the session
//! and connection state machines, and a deterministic 200k-mutation no-panic test.
//!
//! This file owns the TACACS+ unit tests only; it must not reach the network or the clock.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;

/// Parses whitespace-separated hex octets.
fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| b.is_ascii_hexdigit())
        .map(|b| (b as char).to_digit(16).unwrap() as u8)
        .collect();
    assert!(digits.len() % 2 == 0, "odd hex: {s}");
    digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
}

const KEY: &[u8] = b"testing123";

const AUTHEN_START: &str = "c1 01 01 00 b7 0f c8 0e 00 00 00 22 79 d2 9a 66 67 fe fe 87 04 af 61 7e cb 79 20 bb ca 61 cf 8b 25 ab 70 9e 68 af 9f d5 ae de c5 5d 5e 73";
const AUTHEN_REPLY_PASS: &str = "c1 01 02 00 b7 0f c8 0e 00 00 00 06 39 51 39 56 ef f4";
const AUTHOR_REQUEST: &str = "c0 02 01 00 e1 66 78 e6 00 00 00 35 4b c5 ea 62 13 cc ca a6 6a 03 3c 8e 3f c0 5a aa 46 da 12 cd ee 48 62 69 67 9a b8 b4 db 70 98 30 b7 fc f6 93 09 d4 3f 2c a9 58 9e 3c 6a 0e d5 50 20 e6 a5 39 46";
const AUTHOR_REPLY: &str =
    "c0 02 02 00 e1 66 78 e6 00 00 00 13 02 59 f9 90 38 81 e1 bb 9d a6 13 93 fc 86 7e 4a 14 1c 24";
const ACCT_REQUEST: &str = "c0 03 01 00 07 9b 35 d9 00 00 00 5b 7c 8a 99 d6 88 f9 32 3c ec 34 6d 23 89 71 72 dd 89 46 75 df 9c 00 a5 96 28 05 fc 57 88 02 0c 11 a3 60 9a 05 8b 71 6d 27 ca 83 b0 ab 2f 00 27 c8 da 58 d3 1a f1 3f 07 17 8d f6 35 c5 7b e2 07 be 29 86 d4 93 16 99 04 01 ef 03 6c 1c 2b ad 3a fb 5b 11 06 61 dc d9 09 1d 6a 08 1e";
const ACCT_REPLY: &str = "c0 03 02 00 07 9b 35 d9 00 00 00 05 49 d8 e5 4a 73";
const CLEAR_GETPASS: &str =
    "c1 01 02 01 00 00 13 88 00 00 00 0f 05 01 00 09 00 00 50 61 73 73 77 6f 72 64 3a";
const CLEAR_GETDATA: &str =
    "c1 01 02 01 00 00 0b b8 00 00 00 12 03 01 00 0c 00 00 45 6e 74 65 72 20 74 6f 6b 65 6e 3a";
const CLEAR_CONTINUE_ABORT: &str =
    "c0 01 03 01 00 00 16 2e 00 00 00 0c 00 07 00 00 01 61 62 6f 72 74 65 64";
const OTP_GETPASS: &str = "c0 01 04 00 12 34 56 78 00 00 00 1c 59 c5 8c 95 e0 51 1a ea ed 59 3a 31 f6 a3 ce b5 bf 5e 12 00 0c 76 68 da 93 97 b6 e1";
const OTP_CONTINUE: &str = "c0 01 05 00 12 34 56 78 00 00 00 0b dd 59 fb 37 07 43 e7 26 3b 83 c7";

pub(crate) fn vectors() -> Vec<(&'static str, Vec<u8>)> {
    [
        ("authen_start_pap", AUTHEN_START),
        ("authen_reply_pass", AUTHEN_REPLY_PASS),
        ("author_request", AUTHOR_REQUEST),
        ("author_reply_pass_add", AUTHOR_REPLY),
        ("acct_request_start", ACCT_REQUEST),
        ("acct_reply_success", ACCT_REPLY),
        ("clear_getpass", CLEAR_GETPASS),
        ("clear_getdata", CLEAR_GETDATA),
        ("clear_continue_abort", CLEAR_CONTINUE_ABORT),
        ("otp_getpass", OTP_GETPASS),
        ("otp_continue", OTP_CONTINUE),
    ]
    .into_iter()
    .map(|(name, h)| (name, hex(h)))
    .collect()
}

/// Splits a packet and returns its header and clear body (de-obfuscated with `testing123`).
fn open(wire: &[u8]) -> (Header, Vec<u8>) {
    let (header, body) = split_packet(wire).unwrap();
    let mut body = body.to_vec();
    if header.is_obfuscated() {
        deobfuscate(KEY, &header, &mut body);
    }
    (header, body)
}

fn obf(header: &Header) -> Obfuscation<'static> {
    if header.is_obfuscated() {
        Obfuscation::Key(KEY)
    } else {
        Obfuscation::Clear
    }
}

/// Decodes, re-encodes and compares with the wire bytes.
fn decode_and_reencode(wire: &[u8], check: impl FnOnce(&Header, Body<'_>)) {
    let (header, clear) = open(wire);
    let body = Body::decode(&header, &clear).unwrap();
    check(&header, body);
    let mut buf = vec![0u8; wire.len() + 64];
    let out = encode_packet(&header, &body, obf(&header), &mut buf).unwrap();
    assert_eq!(out, wire, "re-encoding differs");
}

fn args<'a>(a: &Args<'a>) -> Vec<&'a [u8]> {
    a.iter().collect()
}

#[test]
fn tacacs_authen_start_vector() {
    decode_and_reencode(&hex(AUTHEN_START), |h, body| {
        assert_eq!(h.version, Version::One);
        assert_eq!(h.packet_type, PacketType::Authentication);
        assert_eq!(
            (h.seq_no, h.flags, h.session_id, h.length),
            (1, 0, 0xb70f_c80e, 0x22)
        );
        let Body::AuthenStart(s) = body else {
            panic!("{body:?}")
        };
        assert_eq!(s.action, AuthenAction::Login);
        assert_eq!(s.priv_lvl, 0);
        assert_eq!(s.authen_type, AuthenType::Pap);
        // The octet is 03: PPP (the capture's "LOGIN" is the action).
        assert_eq!(s.service, AuthenService::Ppp);
        assert_eq!(s.user, b"bob");
        assert_eq!(s.port, b"tapioca/0");
        assert_eq!(s.rem_addr, b"localhost");
        assert_eq!(s.data, b"hello");
        assert_eq!(s.authen_type.expected_minor_version(), 1);
    });
    let (_, clear) = open(&hex(AUTHEN_START));
    assert_eq!(
        clear,
        hex("01 00 02 03 03 09 09 05 62 6f 62 74 61 70 69 6f 63 61 2f 30 6c 6f 63 61 6c 68 6f 73 74 68 65 6c 6c 6f")
    );
}

#[test]
fn tacacs_authen_reply_pass_vector() {
    decode_and_reencode(&hex(AUTHEN_REPLY_PASS), |h, body| {
        assert_eq!((h.seq_no, h.session_id), (2, 0xb70f_c80e));
        let Body::AuthenReply(r) = body else {
            panic!("{body:?}")
        };
        assert_eq!(r.status, AuthenStatus::Pass);
        assert!(!r.no_echo());
        assert!(r.server_msg.is_empty() && r.data.is_empty());
    });
}

#[test]
fn tacacs_author_vectors() {
    decode_and_reencode(&hex(AUTHOR_REQUEST), |h, body| {
        assert_eq!(
            (h.version, h.seq_no, h.session_id),
            (Version::Default, 1, 0xe166_78e6)
        );
        let Body::AuthorRequest(r) = body else {
            panic!("{body:?}")
        };
        assert_eq!(r.authen_method, AuthenMethod::TacacsPlus);
        assert_eq!(r.priv_lvl, 0);
        assert_eq!(r.authen_type, AuthenType::Pap);
        assert_eq!(r.service, AuthenService::Ppp);
        assert_eq!(
            (r.user, r.port, r.rem_addr),
            (&b"bob"[..], &b"tapioca/0"[..], &b"localhost"[..])
        );
        assert_eq!(args(&r.args), vec![&b"service=ppp"[..], b"protocol=ip"]);
        assert_eq!(r.args.find(b"service"), Some(&b"ppp"[..]));
        assert_eq!(r.args.find(b"serv"), None);
    });
    decode_and_reencode(&hex(AUTHOR_REPLY), |h, body| {
        assert_eq!(h.seq_no, 2);
        let Body::AuthorResponse(r) = body else {
            panic!("{body:?}")
        };
        assert_eq!(r.status, AuthorStatus::PassAdd);
        assert_eq!(args(&r.args), vec![&b"addr=1.2.3.4"[..]]);
        assert!(r.server_msg.is_empty() && r.data.is_empty());
    });
}

#[test]
fn tacacs_acct_vectors_with_zero_length_argument() {
    decode_and_reencode(&hex(ACCT_REQUEST), |h, body| {
        assert_eq!((h.seq_no, h.session_id, h.length), (1, 0x079b_35d9, 0x5b));
        let Body::AcctRequest(r) = body else {
            panic!("{body:?}")
        };
        assert_eq!(r.flags, AcctFlags::Start);
        assert_eq!(r.authen_method, AuthenMethod::TacacsPlus);
        assert_eq!(r.authen_type, AuthenType::Pap);
        assert_eq!(r.service, AuthenService::Ppp);
        assert_eq!(
            (r.user, r.port, r.rem_addr),
            (&b"bob"[..], &b"tapioca/0"[..], &b"localhost"[..])
        );
        assert_eq!(
            args(&r.args),
            vec![
                &b""[..],
                b"start_time=1596565644",
                b"task_id=17558",
                b"service=ppp",
                b"protocol=ip"
            ]
        );
        assert_eq!(r.args.len(), 5);
    });
    decode_and_reencode(&hex(ACCT_REPLY), |h, body| {
        assert_eq!(h.seq_no, 2);
        assert_eq!(
            body,
            Body::AcctReply(AcctReply {
                status: AcctStatus::Success,
                server_msg: b"",
                data: b""
            })
        );
    });
}

#[test]
fn tacacs_unobfuscated_encode_vectors() {
    // Built from fields, not decoded: the encoders must produce the FreeRADIUS bytes.
    let cases: [(&str, Header, Body<'_>); 3] = [
        (
            CLEAR_GETPASS,
            Header::new(Version::One, PacketType::Authentication, 2, 0, 5000),
            Body::AuthenReply(AuthenReply {
                status: AuthenStatus::GetPass,
                flags: REPLY_FLAG_NOECHO,
                server_msg: b"Password:",
                data: b"",
            }),
        ),
        (
            CLEAR_GETDATA,
            Header::new(Version::One, PacketType::Authentication, 2, 0, 3000),
            Body::AuthenReply(AuthenReply {
                status: AuthenStatus::GetData,
                flags: REPLY_FLAG_NOECHO,
                server_msg: b"Enter token:",
                data: b"",
            }),
        ),
        (
            CLEAR_CONTINUE_ABORT,
            Header::new(Version::Default, PacketType::Authentication, 3, 0, 0x162e),
            Body::AuthenContinue(AuthenContinue {
                user_msg: b"aborted",
                data: b"",
                flags: CONTINUE_FLAG_ABORT,
            }),
        ),
    ];
    for (wire, header, body) in cases {
        let mut buf = [0u8; 64];
        let out = encode_packet(&header, &body, Obfuscation::Clear, &mut buf).unwrap();
        assert_eq!(out, hex(wire));
        decode_and_reencode(&hex(wire), |h, decoded| {
            assert!(!h.is_obfuscated());
            assert_eq!(decoded, body);
        });
    }
}

#[test]
fn tacacs_otp_challenge_vectors_encode_and_decode() {
    let header = Header::new(
        Version::Default,
        PacketType::Authentication,
        4,
        0,
        0x1234_5678,
    );
    let body = Body::AuthenReply(AuthenReply {
        status: AuthenStatus::GetPass,
        flags: REPLY_FLAG_NOECHO,
        server_msg: b"Enter next tokencode: ",
        data: b"",
    });
    let mut buf = [0u8; 128];
    let out = encode_packet(&header, &body, Obfuscation::Key(KEY), &mut buf).unwrap();
    assert_eq!(out, hex(OTP_GETPASS));

    let header = Header::new(
        Version::Default,
        PacketType::Authentication,
        5,
        0,
        0x1234_5678,
    );
    let body = Body::AuthenContinue(AuthenContinue {
        user_msg: b"287082",
        data: b"",
        flags: 0,
    });
    let out = encode_packet(&header, &body, Obfuscation::Key(KEY), &mut buf).unwrap();
    assert_eq!(out, hex(OTP_CONTINUE));
    decode_and_reencode(&hex(OTP_CONTINUE), |_, decoded| assert_eq!(decoded, body));
}

#[test]
fn tacacs_key_rollover_picks_the_right_key() {
    let keys: [&[u8]; 2] = [b"wrong", KEY];
    for (name, wire) in vectors() {
        let (header, body) = split_packet(&wire).unwrap();
        let mut body = body.to_vec();
        let original = body.clone();
        if !header.is_obfuscated() {
            assert_eq!(
                deobfuscate_with_keys(&keys, &header, &mut body),
                None,
                "{name}"
            );
            assert_eq!(body, original);
            continue;
        }
        assert_eq!(
            deobfuscate_with_keys(&keys, &header, &mut body),
            Some(1),
            "{name}"
        );
        assert!(Body::decode(&header, &body).is_ok());
        // The right key alone, first in the list.
        let mut again = original.clone();
        assert_eq!(
            deobfuscate_with_keys(&[KEY, b"wrong"], &header, &mut again),
            Some(0)
        );
        assert_eq!(again, body);
        // No fitting key: the body is left as it came.
        let mut untouched = original.clone();
        assert_eq!(
            deobfuscate_with_keys(&[b"wrong", b"other"], &header, &mut untouched),
            None,
            "{name}"
        );
        assert_eq!(untouched, original);
    }
}

fn packet(header: [u8; 12], body: &[u8]) -> Vec<u8> {
    let mut p = header.to_vec();
    p.extend_from_slice(body);
    p
}

/// A clear packet of `ty` and `seq` with `body`.
fn clear(ty: u8, seq: u8, body: &[u8]) -> Vec<u8> {
    let len = (body.len() as u32).to_be_bytes();
    packet(
        [
            0xc0, ty, seq, 0x01, 0, 0, 0, 1, len[0], len[1], len[2], len[3],
        ],
        body,
    )
}

fn decode_clear(wire: &[u8]) -> Result<(), DecodeError> {
    let (header, body) = split_packet(wire)?;
    Body::decode(&header, body).map(|_| ())
}

#[test]
fn tacacs_negative_vectors() {
    let good = hex(AUTHEN_REPLY_PASS);
    // Shorter than the header.
    for n in [0, 5, 11] {
        assert_eq!(split_packet(&good[..n]).unwrap_err(), DecodeError::TooShort);
        assert_eq!(
            Header::decode_prefix(&good[..n]).unwrap_err().reason(),
            "too_short"
        );
    }
    // Versions.
    for v in [0x00, 0xc2, 0xd0] {
        let mut p = good.clone();
        p[0] = v;
        assert_eq!(
            split_packet(&p).unwrap_err(),
            DecodeError::UnsupportedVersion(v)
        );
    }
    // Types.
    for t in [0, 4, 255] {
        let mut p = good.clone();
        p[1] = t;
        assert_eq!(split_packet(&p).unwrap_err(), DecodeError::UnknownType(t));
    }
    // Length >= 2^24, and just above the 64 KiB cap; rejected from the header alone.
    for len in [1u32 << 24, u32::MAX, MAX_BODY_LEN + 1] {
        let mut head = [0u8; 12];
        head.copy_from_slice(&good[..12]);
        head[8..].copy_from_slice(&len.to_be_bytes());
        assert_eq!(
            Header::decode(&head).unwrap_err(),
            DecodeError::BodyTooLarge(len)
        );
    }
    let mut head = [0u8; 12];
    head.copy_from_slice(&good[..12]);
    head[8..].copy_from_slice(&MAX_BODY_LEN.to_be_bytes());
    assert!(Header::decode(&head).is_ok());
    assert_eq!(
        Header::decode_with_limit(&head, 4096).unwrap_err().reason(),
        "body_too_large"
    );
    // Body length differs from the header's, both ways.
    assert_eq!(
        split_packet(&good[..good.len() - 1]).unwrap_err(),
        DecodeError::LengthMismatch
    );
    let mut longer = good.clone();
    longer.push(0);
    assert_eq!(
        split_packet(&longer).unwrap_err(),
        DecodeError::LengthMismatch
    );
    let (header, body) = split_packet(&good).unwrap();
    assert_eq!(
        Body::decode(&header, &body[1..]).unwrap_err(),
        DecodeError::LengthMismatch
    );

    // Per-type fixed headers too short (clear bodies one octet short of the fixed part).
    for (ty, seq, fixed) in [
        (1, 1, 8),
        (1, 2, 6),
        (1, 3, 5),
        (2, 1, 8),
        (2, 2, 6),
        (3, 1, 9),
        (3, 2, 5),
    ] {
        for n in 0..fixed {
            assert_eq!(
                decode_clear(&clear(ty, seq, &vec![0u8; n])),
                Err(DecodeError::HeaderTooSmall),
                "type {ty} seq {seq} len {n}"
            );
        }
    }

    // Argument count or length overflowing the body.
    // Author REQUEST: arg_cnt 5 with no length octets.
    let req = [0x06, 0, 0x02, 0x03, 0, 0, 0, 5];
    assert_eq!(
        decode_clear(&clear(2, 1, &req)),
        Err(DecodeError::ArgumentOverflow)
    );
    // One argument of 0xff octets, 3 present.
    let req = [0x06, 0, 0x02, 0x03, 0, 0, 0, 1, 0xff, b'a', b'=', b'b'];
    assert_eq!(
        decode_clear(&clear(2, 1, &req)),
        Err(DecodeError::ArgumentOverflow)
    );
    // Author RESPONSE: arg_cnt 2, lengths 1 and 200.
    let resp = [0x01, 2, 0, 0, 0, 0, 1, 200, b'x'];
    assert_eq!(
        decode_clear(&clear(2, 2, &resp)),
        Err(DecodeError::ArgumentOverflow)
    );
    // Acct REQUEST: arg_cnt 255 in a tiny body.
    let acct = [0x02, 0x06, 0, 0x02, 0x03, 0, 0, 0, 255, 1, 2];
    assert_eq!(
        decode_clear(&clear(3, 1, &acct)),
        Err(DecodeError::ArgumentOverflow)
    );
    // Field lengths overflowing, and not filling, the body.
    let start = [0x01, 0, 0x02, 0x01, 3, 0, 0, 0, b'b', b'o'];
    assert_eq!(
        decode_clear(&clear(1, 1, &start)),
        Err(DecodeError::LengthOverflow)
    );
    let start = [0x01, 0, 0x02, 0x01, 1, 0, 0, 0, b'b', b'o'];
    assert_eq!(
        decode_clear(&clear(1, 1, &start)),
        Err(DecodeError::TrailingBytes)
    );
    let reply = [0x01, 0, 0xff, 0xff, 0, 0];
    assert_eq!(
        decode_clear(&clear(1, 2, &reply)),
        Err(DecodeError::LengthOverflow)
    );
    let cont = [0, 0, 0, 1, 0];
    assert_eq!(
        decode_clear(&clear(1, 3, &cont)),
        Err(DecodeError::LengthOverflow)
    );
    let acct_reply = [0, 0, 0, 0, 1, b'x'];
    assert_eq!(
        decode_clear(&clear(3, 2, &acct_reply)),
        Err(DecodeError::TrailingBytes)
    );
    let req = [0x06, 0, 0x02, 0x03, 0, 0, 0, 1, 1, b'a', b'b'];
    assert_eq!(
        decode_clear(&clear(2, 1, &req)),
        Err(DecodeError::TrailingBytes)
    );
    let req = [0x06, 0, 0x02, 0x03, 9, 0, 0, 1, 1, b'a'];
    assert_eq!(
        decode_clear(&clear(2, 1, &req)),
        Err(DecodeError::LengthOverflow)
    );

    // Unknown enum values and ranges.
    let cases: [(u8, u8, &[u8], DecodeError); 10] = [
        (
            1,
            1,
            &[0x03, 0, 1, 1, 0, 0, 0, 0],
            DecodeError::UnknownAction(3),
        ),
        (
            1,
            1,
            &[0x01, 0, 0, 1, 0, 0, 0, 0],
            DecodeError::UnknownAuthenType(0),
        ),
        (
            1,
            1,
            &[0x01, 0, 7, 1, 0, 0, 0, 0],
            DecodeError::UnknownAuthenType(7),
        ),
        (
            1,
            1,
            &[0x01, 0, 1, 10, 0, 0, 0, 0],
            DecodeError::UnknownService(10),
        ),
        (
            1,
            1,
            &[0x01, 16, 1, 1, 0, 0, 0, 0],
            DecodeError::InvalidPrivLvl(16),
        ),
        (1, 2, &[0x08, 0, 0, 0, 0, 0], DecodeError::UnknownStatus(8)),
        (
            2,
            1,
            &[0x07, 0, 0, 1, 0, 0, 0, 0],
            DecodeError::UnknownAuthenMethod(7),
        ),
        (2, 2, &[0x03, 0, 0, 0, 0, 0], DecodeError::UnknownStatus(3)),
        (
            3,
            1,
            &[0x06, 6, 0, 0, 1, 0, 0, 0, 0],
            DecodeError::InvalidAcctFlags(6),
        ),
        (3, 2, &[0, 0, 0, 0, 3], DecodeError::UnknownStatus(3)),
    ];
    for (ty, seq, body, err) in cases {
        assert_eq!(
            decode_clear(&clear(ty, seq, body)),
            Err(err),
            "{ty}/{seq} {body:02x?}"
        );
    }
    // Every reason label is distinct and snake_case.
    let all = [
        DecodeError::TooShort,
        DecodeError::UnsupportedVersion(0),
        DecodeError::UnknownType(0),
        DecodeError::BodyTooLarge(0),
        DecodeError::LengthMismatch,
        DecodeError::HeaderTooSmall,
        DecodeError::LengthOverflow,
        DecodeError::ArgumentOverflow,
        DecodeError::TrailingBytes,
        DecodeError::UnknownAction(0),
        DecodeError::UnknownAuthenType(0),
        DecodeError::UnknownService(0),
        DecodeError::UnknownAuthenMethod(0),
        DecodeError::UnknownStatus(0),
        DecodeError::InvalidPrivLvl(0),
        DecodeError::InvalidAcctFlags(0),
    ];
    let labels: std::collections::HashSet<_> = all.iter().map(|e| e.reason()).collect();
    assert_eq!(labels.len(), all.len());
    assert!(labels
        .iter()
        .all(|l| l.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
}

#[test]
fn tacacs_encoder_limits() {
    let mut buf = [0u8; 64];
    let header = Header::new(Version::Default, PacketType::Authentication, 2, 0, 1);
    let long = vec![b'x'; 100];
    let body = Body::AuthenReply(AuthenReply {
        status: AuthenStatus::Fail,
        flags: 0,
        server_msg: &long,
        data: b"",
    });
    assert_eq!(
        encode_packet(&header, &body, Obfuscation::Clear, &mut buf),
        Err(EncodeError::BufferTooSmall)
    );
    assert_eq!(
        encode_packet(&header, &body, Obfuscation::Clear, &mut buf[..5]),
        Err(EncodeError::BufferTooSmall)
    );
    let author = Header::new(Version::Default, PacketType::Authorization, 2, 0, 1);
    assert_eq!(
        encode_packet(&author, &body, Obfuscation::Clear, &mut buf),
        Err(EncodeError::TypeMismatch)
    );

    let mut big = vec![0u8; 200_000];
    let huge = vec![b'x'; 70_000];
    let body = Body::AuthenReply(AuthenReply {
        status: AuthenStatus::Fail,
        flags: 0,
        server_msg: &huge,
        data: b"",
    });
    assert_eq!(
        encode_packet(&header, &body, Obfuscation::Clear, &mut big),
        Err(EncodeError::FieldTooLong)
    );
    let msg = vec![b'x'; 65_535];
    let body = Body::AuthenReply(AuthenReply {
        status: AuthenStatus::Fail,
        flags: 0,
        server_msg: &msg,
        data: &msg,
    });
    assert_eq!(
        encode_packet(&header, &body, Obfuscation::Clear, &mut big),
        Err(EncodeError::BodyTooLarge)
    );

    let user = vec![b'u'; 256];
    let start = AuthenStart {
        action: AuthenAction::Login,
        priv_lvl: 1,
        authen_type: AuthenType::Ascii,
        service: AuthenService::Login,
        user: &user,
        port: b"",
        rem_addr: b"",
        data: b"",
    };
    assert_eq!(start.encode(&mut big), Err(EncodeError::FieldTooLong));
    assert_eq!(
        AuthenStart {
            user: b"u",
            priv_lvl: 16,
            ..start
        }
        .encode(&mut big),
        Err(EncodeError::InvalidValue)
    );
    assert_eq!(
        AuthenStart {
            user: b"u",
            authen_type: AuthenType::NotSet,
            ..start
        }
        .encode(&mut big),
        Err(EncodeError::InvalidValue)
    );

    let arg = vec![b'a'; 256];
    let list: [&[u8]; 1] = [&arg];
    let resp = AuthorResponse {
        status: AuthorStatus::PassAdd,
        args: Args::from_list(&list),
        server_msg: b"",
        data: b"",
    };
    assert_eq!(resp.encode(&mut big), Err(EncodeError::ArgumentTooLong));
    let many: Vec<&[u8]> = vec![b"a=b"; 256];
    let resp = AuthorResponse {
        args: Args::from_list(&many),
        ..resp
    };
    assert_eq!(resp.encode(&mut big), Err(EncodeError::ArgumentTooLong));
    let labels: std::collections::HashSet<_> = [
        EncodeError::BufferTooSmall,
        EncodeError::FieldTooLong,
        EncodeError::ArgumentTooLong,
        EncodeError::BodyTooLarge,
        EncodeError::TypeMismatch,
        EncodeError::InvalidValue,
    ]
    .iter()
    .map(|e| e.reason())
    .collect();
    assert_eq!(labels.len(), 6);
}

#[test]
fn tacacs_client_encoders_round_trip() {
    let list: [&[u8]; 3] = [b"service=shell", b"cmd*", b""];
    let bodies = [
        Body::AuthenStart(AuthenStart {
            action: AuthenAction::Login,
            priv_lvl: 15,
            authen_type: AuthenType::Chap,
            service: AuthenService::Enable,
            user: b"alice",
            port: b"tty1",
            rem_addr: b"10.0.0.1",
            data: &[7; 33],
        }),
        Body::AuthorRequest(AuthorRequest {
            authen_method: AuthenMethod::TacacsPlus,
            priv_lvl: 1,
            authen_type: AuthenType::NotSet,
            service: AuthenService::Login,
            user: b"alice",
            port: b"",
            rem_addr: b"",
            args: Args::from_list(&list),
        }),
        Body::AcctRequest(AcctRequest {
            flags: AcctFlags::WatchdogUpdate,
            authen_method: AuthenMethod::None,
            priv_lvl: 0,
            authen_type: AuthenType::Ascii,
            service: AuthenService::Pt,
            user: b"",
            port: b"p",
            rem_addr: b"r",
            args: Args::from_list(&list),
        }),
        Body::AuthorResponse(AuthorResponse {
            status: AuthorStatus::PassRepl,
            args: Args::from_list(&list),
            server_msg: b"hi",
            data: b"log",
        }),
        Body::AcctReply(AcctReply {
            status: AcctStatus::Error,
            server_msg: b"m",
            data: b"d",
        }),
    ];
    for (i, body) in bodies.iter().enumerate() {
        let seq = if body.from_client() { 1 } else { 2 };
        let header = Header::new(
            Version::Default,
            body.packet_type(),
            seq,
            FLAG_SINGLE_CONNECT,
            0xdead_beef,
        );
        let mut buf = [0u8; 512];
        let wire = encode_packet(&header, body, Obfuscation::Key(KEY), &mut buf)
            .unwrap()
            .to_vec();
        let (h, clear) = open(&wire);
        assert!(h.single_connect() && h.is_obfuscated());
        assert_eq!(Body::decode(&h, &clear).unwrap(), *body, "body {i}");
    }
}

// ---------------------------------------------------------------------------------------------
// Session and connection state machines.

/// A client: encodes its packets with the right header and decodes the server's replies.
struct Client {
    session_id: u32,
    version: Version,
    flags: u8,
}

impl Client {
    fn send(&self, seq: u8, body: &Body<'_>) -> Vec<u8> {
        let header = Header::new(
            self.version,
            body.packet_type(),
            seq,
            self.flags,
            self.session_id,
        );
        let mut buf = vec![0u8; 1024];
        encode_packet(&header, body, Obfuscation::Key(KEY), &mut buf)
            .unwrap()
            .to_vec()
    }
}

fn ascii_start<'a>(user: &'a [u8]) -> Body<'a> {
    Body::AuthenStart(AuthenStart {
        action: AuthenAction::Login,
        priv_lvl: 1,
        authen_type: AuthenType::Ascii,
        service: AuthenService::Login,
        user,
        port: b"tty0",
        rem_addr: b"192.0.2.1",
        data: b"",
    })
}

fn cont(answer: &[u8]) -> Body<'_> {
    Body::AuthenContinue(AuthenContinue {
        user_msg: answer,
        data: b"",
        flags: 0,
    })
}

/// Feeds `wire` to the session; returns the event (owned copy as Debug text) or the error.
fn feed<'s>(session: &'s mut Session, wire: &'s mut [u8]) -> Result<Event<'s>, SessionError> {
    let (header, _) = split_packet(wire).unwrap();
    let body_bytes = &mut wire[HEADER_LEN..];
    deobfuscate(KEY, &header, body_bytes);
    let body = Body::decode(&header, body_bytes).unwrap();
    session.receive(&header, body)
}

fn reply_of(wire: &[u8]) -> (Header, AuthenStatus, Vec<u8>, bool) {
    let (header, clear) = open(wire);
    let Body::AuthenReply(r) = Body::decode(&header, &clear).unwrap() else {
        panic!()
    };
    (header, r.status, r.server_msg.to_vec(), r.no_echo())
}

#[test]
fn tacacs_session_ascii_login_with_otp_challenge_matches_vectors() {
    let client = Client {
        session_id: 0x1234_5678,
        version: Version::Default,
        flags: 0,
    };
    let mut s = Session::new(0x1234_5678, SessionLimits::default());
    let mut buf = [0u8; 256];

    // START with no user: GETUSER.
    let mut p = client.send(1, &ascii_start(b""));
    let ev = feed(&mut s, &mut p).unwrap();
    assert!(
        matches!(ev, Event::NeedUser { start } if start.port == b"tty0" && start.service == AuthenService::Login)
    );
    assert_eq!(
        s.answer(
            &Answer::Pass { server_msg: b"" },
            Obfuscation::Key(KEY),
            &mut [0u8; 4]
        )
        .unwrap_err(),
        SessionError::Encode(EncodeError::BufferTooSmall)
    );
    assert_eq!(
        s.answer(
            &Answer::GetPass { prompt: b"x" },
            Obfuscation::Key(KEY),
            &mut buf
        )
        .unwrap_err(),
        SessionError::AnswerNotAllowed
    );
    let out = s
        .answer(
            &Answer::GetUser {
                prompt: b"Username: ",
            },
            Obfuscation::Key(KEY),
            &mut buf,
        )
        .unwrap();
    let (h, status, msg, _) = reply_of(out);
    assert_eq!(
        (h.seq_no, status, msg.as_slice()),
        (2, AuthenStatus::GetUser, &b"Username: "[..])
    );

    // User: GETPASS.
    let mut p = client.send(3, &cont(b"bob"));
    let ev = feed(&mut s, &mut p).unwrap();
    assert!(matches!(ev, Event::NeedPassword { user: b"bob", .. }));
    s.answer(
        &Answer::GetPass {
            prompt: b"Password: ",
        },
        Obfuscation::Key(KEY),
        &mut buf,
    )
    .unwrap();

    // Password: Authenticate; the engine asks for the next tokencode.
    let mut p = client.send(5, &cont(b"1234287081"));
    let ev = feed(&mut s, &mut p).unwrap();
    let Event::Authenticate {
        user,
        credential,
        start,
    } = ev
    else {
        panic!("{ev:?}")
    };
    assert_eq!(user, b"bob");
    assert_eq!(credential, Credential::Password(b"1234287081"));
    assert_eq!(start.rem_addr, b"192.0.2.1");
    assert_eq!(start.authen_type, AuthenType::Ascii);
    assert_eq!(s.rounds(), 2);
    let out = s
        .answer(
            &Answer::GetPass {
                prompt: b"Enter next tokencode: ",
            },
            Obfuscation::Key(KEY),
            &mut buf,
        )
        .unwrap();
    let (h, status, _, no_echo) = reply_of(out);
    assert_eq!(
        (h.seq_no, status, no_echo),
        (6, AuthenStatus::GetPass, true)
    );

    // A second session replays the derived vectors exactly: START seq 1 with user, GETPASS,
    // password, then GETPASS "Enter next tokencode: " at seq 4 and the CONTINUE at seq 5.
    let mut s = Session::new(0x1234_5678, SessionLimits::default());
    let mut p = client.send(1, &ascii_start(b"bob"));
    assert!(matches!(
        feed(&mut s, &mut p).unwrap(),
        Event::NeedPassword { user: b"bob", .. }
    ));
    s.answer(
        &Answer::GetPass {
            prompt: b"Password: ",
        },
        Obfuscation::Key(KEY),
        &mut buf,
    )
    .unwrap();
    let mut p = client.send(3, &cont(b"1234"));
    assert!(matches!(
        feed(&mut s, &mut p).unwrap(),
        Event::Authenticate { .. }
    ));
    let out = s
        .answer(
            &Answer::GetPass {
                prompt: b"Enter next tokencode: ",
            },
            Obfuscation::Key(KEY),
            &mut buf,
        )
        .unwrap();
    assert_eq!(out, hex(OTP_GETPASS));
    let mut p = hex(OTP_CONTINUE);
    let ev = feed(&mut s, &mut p).unwrap();
    assert!(
        matches!(
            ev,
            Event::Continue {
                user: b"bob",
                answer: b"287082",
                data: b"",
                ..
            }
        ),
        "{ev:?}"
    );
    let out = s
        .answer(
            &Answer::Pass {
                server_msg: b"Welcome",
            },
            Obfuscation::Key(KEY),
            &mut buf,
        )
        .unwrap();
    let (h, status, msg, _) = reply_of(out);
    assert_eq!(
        (h.seq_no, status, msg.as_slice()),
        (6, AuthenStatus::Pass, &b"Welcome"[..])
    );
    assert!(s.is_done());
    let mut p = client.send(7, &cont(b"more"));
    assert_eq!(feed(&mut s, &mut p).unwrap_err(), SessionError::Finished);
}

#[test]
fn tacacs_session_pap_chap_and_unsupported() {
    let mut buf = [0u8; 256];
    // The PAP vector from the capture.
    let mut s = Session::new(0xb70f_c80e, SessionLimits::default());
    let mut p = hex(AUTHEN_START);
    let ev = feed(&mut s, &mut p).unwrap();
    let Event::Authenticate {
        user,
        credential,
        start,
    } = ev
    else {
        panic!("{ev:?}")
    };
    assert_eq!(
        (user, credential),
        (&b"bob"[..], Credential::Password(b"hello"))
    );
    assert_eq!(
        (start.version, start.service),
        (Version::One, AuthenService::Ppp)
    );
    assert_eq!(
        s.answer(
            &Answer::GetPass { prompt: b"no" },
            Obfuscation::Key(KEY),
            &mut buf
        )
        .unwrap_err(),
        SessionError::AnswerNotAllowed
    );
    let out = s
        .answer(
            &Answer::Pass { server_msg: b"" },
            Obfuscation::Key(KEY),
            &mut buf,
        )
        .unwrap();
    assert_eq!(out, hex(AUTHEN_REPLY_PASS));

    // CHAP: id, challenge, response.
    let client = Client {
        session_id: 9,
        version: Version::One,
        flags: 0,
    };
    let mut data = vec![0x2a];
    data.extend_from_slice(&[1u8; 16]);
    data.extend_from_slice(&[2u8; 16]);
    let chap = |data: &'static [u8]| {
        Body::AuthenStart(AuthenStart {
            action: AuthenAction::Login,
            priv_lvl: 1,
            authen_type: AuthenType::Chap,
            service: AuthenService::Ppp,
            user: b"carol",
            port: b"",
            rem_addr: b"",
            data,
        })
    };
    let data: &'static [u8] = Box::leak(data.into_boxed_slice());
    let mut s = Session::new(9, SessionLimits::default());
    let mut p = client.send(1, &chap(data));
    let ev = feed(&mut s, &mut p).unwrap();
    assert!(
        matches!(ev, Event::Authenticate { credential: Credential::Chap { id: 0x2a, challenge, response }, .. } if challenge == [1u8; 16] && response == &[2u8; 16])
    );
    // CHAP data too short is a protocol error that ends the session.
    let mut s = Session::new(9, SessionLimits::default());
    let mut p = client.send(1, &chap(&[1u8; 17]));
    assert_eq!(feed(&mut s, &mut p).unwrap_err(), SessionError::BadChapData);
    assert!(s.is_done());
    // MS-CHAPv2.
    let mut ms = vec![5u8];
    ms.extend_from_slice(&[3u8; 16]);
    ms.extend_from_slice(&[4u8; 49]);
    let ms: &'static [u8] = Box::leak(ms.into_boxed_slice());
    let mut s = Session::new(9, SessionLimits::default());
    let body = match chap(ms) {
        Body::AuthenStart(st) => Body::AuthenStart(AuthenStart {
            authen_type: AuthenType::MsChapV2,
            ..st
        }),
        _ => unreachable!(),
    };
    let mut p = client.send(1, &body);
    assert!(matches!(
        feed(&mut s, &mut p).unwrap(),
        Event::Authenticate {
            credential: Credential::MsChap {
                version: 2,
                id: 5,
                ..
            },
            ..
        }
    ));

    // CHPASS is not driven: only FAIL/ERROR-like answers.
    let mut s = Session::new(9, SessionLimits::default());
    let body = match ascii_start(b"dave") {
        Body::AuthenStart(st) => Body::AuthenStart(AuthenStart {
            action: AuthenAction::ChPass,
            ..st
        }),
        _ => unreachable!(),
    };
    let mut p = client.send(1, &body);
    assert!(matches!(
        feed(&mut s, &mut p).unwrap(),
        Event::Unsupported { user: b"dave", .. }
    ));
    assert_eq!(
        s.answer(
            &Answer::GetPass { prompt: b"" },
            Obfuscation::Key(KEY),
            &mut buf
        )
        .unwrap_err(),
        SessionError::AnswerNotAllowed
    );
    let out = s
        .answer(
            &Answer::Error {
                server_msg: b"unsupported",
            },
            Obfuscation::Clear,
            &mut buf,
        )
        .unwrap();
    let (h, status, _, _) = reply_of(out);
    assert_eq!(
        (h.seq_no, h.version, status),
        (2, Version::One, AuthenStatus::Error)
    );
    assert!(!h.is_obfuscated());
}

#[test]
fn tacacs_session_sequence_errors() {
    let client = Client {
        session_id: 7,
        version: Version::Default,
        flags: 0,
    };
    let mut buf = [0u8; 256];

    // First packet must be seq 1.
    let mut s = Session::new(7, SessionLimits::default());
    let mut p = client.send(3, &cont(b"x"));
    assert_eq!(
        feed(&mut s, &mut p).unwrap_err(),
        SessionError::UnexpectedSeqNo {
            expected: 1,
            got: 3
        }
    );
    assert!(s.is_done());

    // A repeated seq number after a prompt.
    let mut s = Session::new(7, SessionLimits::default());
    let mut p = client.send(1, &ascii_start(b"bob"));
    feed(&mut s, &mut p).unwrap();
    // A packet while the answer is pending.
    let mut q = client.send(3, &cont(b"pw"));
    let mut s2 = s.clone();
    assert_eq!(
        feed(&mut s2, &mut q).unwrap_err(),
        SessionError::AnswerPending
    );
    s.answer(
        &Answer::GetPass {
            prompt: b"Password: ",
        },
        Obfuscation::Key(KEY),
        &mut buf,
    )
    .unwrap();
    let mut q = client.send(5, &cont(b"pw"));
    assert_eq!(
        feed(&mut s, &mut q).unwrap_err(),
        SessionError::UnexpectedSeqNo {
            expected: 3,
            got: 5
        }
    );
    assert_eq!(
        s.answer(
            &Answer::Pass { server_msg: b"" },
            Obfuscation::Clear,
            &mut buf
        )
        .unwrap_err(),
        SessionError::AnswerNotAllowed
    );

    // Wrong session, version change, wrong type.
    let mut s = Session::new(8, SessionLimits::default());
    let mut p = client.send(1, &ascii_start(b"bob"));
    assert_eq!(
        feed(&mut s, &mut p).unwrap_err(),
        SessionError::WrongSession {
            expected: 8,
            got: 7
        }
    );
    let mut s = Session::new(7, SessionLimits::default());
    let mut p = client.send(1, &ascii_start(b"bob"));
    feed(&mut s, &mut p).unwrap();
    s.answer(
        &Answer::GetPass {
            prompt: b"Password: ",
        },
        Obfuscation::Key(KEY),
        &mut buf,
    )
    .unwrap();
    let v1 = Client {
        version: Version::One,
        ..client
    };
    let mut q = v1.send(3, &cont(b"pw"));
    assert_eq!(
        feed(&mut s.clone(), &mut q).unwrap_err(),
        SessionError::VersionChanged
    );
    let acct = Body::AcctReply(AcctReply {
        status: AcctStatus::Success,
        server_msg: b"",
        data: b"",
    });
    let mut q = client.send(2, &acct);
    assert_eq!(
        feed(&mut s.clone(), &mut q).unwrap_err(),
        SessionError::WrongPacketType
    );
    // A server-side body (even seq) from the client.
    let reply = Body::AuthenReply(AuthenReply {
        status: AuthenStatus::Pass,
        flags: 0,
        server_msg: b"",
        data: b"",
    });
    let mut q = client.send(3, &reply);
    let (h, _) = split_packet(&q).unwrap();
    deobfuscate(KEY, &h, &mut q[HEADER_LEN..]);
    // Decoded as a CONTINUE (odd seq) it is 6 octets of REPLY: a length error, not a panic.
    assert!(Body::decode(&h, &q[HEADER_LEN..]).is_err());
    assert_eq!(
        s.clone().receive(&h, reply).unwrap_err(),
        SessionError::UnexpectedBody
    );
    // An abort ends the session without a reply.
    let abort = Body::AuthenContinue(AuthenContinue {
        user_msg: b"",
        data: b"bye",
        flags: CONTINUE_FLAG_ABORT,
    });
    let mut q = client.send(3, &abort);
    assert_eq!(
        feed(&mut s, &mut q).unwrap(),
        Event::Aborted { reason: b"bye" }
    );
    assert!(s.is_done());

    // Sequence numbers up to the wrap: 253 is the last client number that can be answered.
    let mut s = Session::new(7, SessionLimits { max_rounds: 255 });
    let mut p = client.send(1, &ascii_start(b"bob"));
    feed(&mut s, &mut p).unwrap();
    s.answer(
        &Answer::GetPass {
            prompt: b"Password: ",
        },
        Obfuscation::Key(KEY),
        &mut buf,
    )
    .unwrap();
    let mut seq = 3u8;
    loop {
        let mut q = client.send(seq, &cont(b"x"));
        match feed(&mut s, &mut q) {
            Ok(_) => {}
            Err(e) => {
                assert_eq!((seq, e), (255, SessionError::SeqNoWrapped));
                break;
            }
        }
        let out = s
            .answer(
                &Answer::GetData {
                    prompt: b"again",
                    no_echo: false,
                },
                Obfuscation::Key(KEY),
                &mut buf,
            )
            .unwrap();
        assert_eq!(out[2], seq + 1);
        seq += 2;
    }
    assert!(s.is_done());
}

#[test]
fn tacacs_session_round_limit_and_restart() {
    let client = Client {
        session_id: 11,
        version: Version::Default,
        flags: 0,
    };
    let mut buf = [0u8; 256];
    let mut s = Session::new(11, SessionLimits { max_rounds: 3 });
    let mut p = client.send(1, &ascii_start(b""));
    feed(&mut s, &mut p).unwrap();
    s.answer(
        &Answer::GetUser {
            prompt: b"Username: ",
        },
        Obfuscation::Key(KEY),
        &mut buf,
    )
    .unwrap();
    // An empty user name asks again.
    let mut p = client.send(3, &cont(b""));
    assert!(matches!(
        feed(&mut s, &mut p).unwrap(),
        Event::NeedUser { .. }
    ));
    s.answer(
        &Answer::GetUser {
            prompt: b"Username: ",
        },
        Obfuscation::Key(KEY),
        &mut buf,
    )
    .unwrap();
    let mut p = client.send(5, &cont(b"eve"));
    assert!(matches!(
        feed(&mut s, &mut p).unwrap(),
        Event::NeedPassword { user: b"eve", .. }
    ));
    s.answer(
        &Answer::GetData {
            prompt: b"Password: ",
            no_echo: true,
        },
        Obfuscation::Key(KEY),
        &mut buf,
    )
    .unwrap();
    let mut p = client.send(7, &cont(b"pw"));
    assert!(matches!(
        feed(&mut s, &mut p).unwrap(),
        Event::Authenticate {
            user: b"eve",
            credential: Credential::Password(b"pw"),
            ..
        }
    ));
    // Three prompts sent: a fourth is refused, the session stays answerable.
    assert_eq!(
        s.answer(
            &Answer::GetPass { prompt: b"next" },
            Obfuscation::Key(KEY),
            &mut buf
        )
        .unwrap_err(),
        SessionError::RoundLimit
    );
    assert_eq!(SessionError::RoundLimit.reason(), "round_limit");
    let out = s
        .answer(
            &Answer::Fail { server_msg: b"" },
            Obfuscation::Key(KEY),
            &mut buf,
        )
        .unwrap();
    assert_eq!(reply_of(out).1, AuthenStatus::Fail);

    // RESTART: the client begins again at seq 1 on the same session.
    let mut s = Session::new(11, SessionLimits::default());
    let mut p = client.send(1, &ascii_start(b"bob"));
    feed(&mut s, &mut p).unwrap();
    let out = s
        .answer(
            &Answer::Restart {
                server_msg: b"",
                data: &[AuthenType::Pap.as_u8()],
            },
            Obfuscation::Key(KEY),
            &mut buf,
        )
        .unwrap();
    assert_eq!(reply_of(out).1, AuthenStatus::Restart);
    let pap = Body::AuthenStart(AuthenStart {
        action: AuthenAction::Login,
        priv_lvl: 1,
        authen_type: AuthenType::Pap,
        service: AuthenService::Login,
        user: b"bob",
        port: b"",
        rem_addr: b"",
        data: b"pw",
    });
    let pap_client = Client {
        version: Version::One,
        ..client
    };
    let mut p = pap_client.send(1, &pap);
    let ev = feed(&mut s, &mut p).unwrap();
    assert!(
        matches!(ev, Event::Authenticate { credential: Credential::Password(b"pw"), start, .. } if start.version == Version::One)
    );
    let out = s
        .answer(
            &Answer::Follow {
                server_msg: b"",
                hosts: b"192.0.2.9",
            },
            Obfuscation::Key(KEY),
            &mut buf,
        )
        .unwrap();
    let (h, status, _, _) = reply_of(out);
    assert_eq!(
        (h.seq_no, h.version, status),
        (2, Version::One, AuthenStatus::Follow)
    );
}

#[test]
fn tacacs_session_authorization_and_accounting_vectors() {
    let mut buf = [0u8; 256];
    let mut s = Session::new(0xe166_78e6, SessionLimits::default());
    let mut p = hex(AUTHOR_REQUEST);
    let Event::Authorize(req) = feed(&mut s, &mut p).unwrap() else {
        panic!()
    };
    assert_eq!(req.args.find(b"protocol"), Some(&b"ip"[..]));
    assert_eq!(s.kind(), Some(SessionKind::Authorization));
    assert_eq!(
        s.answer(
            &Answer::Pass { server_msg: b"" },
            Obfuscation::Key(KEY),
            &mut buf
        )
        .unwrap_err(),
        SessionError::AnswerNotAllowed
    );
    let list: [&[u8]; 1] = [b"addr=1.2.3.4"];
    let answer = Answer::Author(AuthorResponse {
        status: AuthorStatus::PassAdd,
        args: Args::from_list(&list),
        server_msg: b"",
        data: b"",
    });
    assert_eq!(
        s.answer(&answer, Obfuscation::Key(KEY), &mut buf).unwrap(),
        hex(AUTHOR_REPLY)
    );
    assert!(s.is_done());

    let mut s = Session::new(0x079b_35d9, SessionLimits::default());
    let mut p = hex(ACCT_REQUEST);
    let Event::Account(req) = feed(&mut s, &mut p).unwrap() else {
        panic!()
    };
    assert_eq!(req.flags, AcctFlags::Start);
    assert_eq!(req.args.find(b"task_id"), Some(&b"17558"[..]));
    let answer = Answer::Acct(AcctReply {
        status: AcctStatus::Success,
        server_msg: b"",
        data: b"",
    });
    assert_eq!(
        s.answer(&answer, Obfuscation::Key(KEY), &mut buf).unwrap(),
        hex(ACCT_REPLY)
    );
}

/// Decodes `wire` (de-obfuscating into `scratch`) and feeds it to the connection.
fn conn_feed<'c>(
    conn: &'c mut Connection,
    wire: &[u8],
    scratch: &'c mut Vec<u8>,
) -> Result<Event<'c>, ConnectionError> {
    let (header, body) = split_packet(wire).unwrap();
    *scratch = body.to_vec();
    deobfuscate(KEY, &header, scratch);
    let body = Body::decode(&header, scratch).unwrap();
    conn.receive(&header, body)
}

#[test]
fn tacacs_connection_interleaved_sessions() {
    let limits = ConnectionLimits {
        max_sessions: 2,
        ..ConnectionLimits::default()
    };
    let mut conn = Connection::new(limits);
    let a = Client {
        session_id: 0xa,
        version: Version::Default,
        flags: FLAG_SINGLE_CONNECT,
    };
    let b = Client {
        session_id: 0xb,
        ..a
    };
    let c = Client {
        session_id: 0xc,
        ..a
    };
    let mut buf = [0u8; 256];
    let mut scratch = Vec::new();

    assert!(matches!(
        conn_feed(&mut conn, &a.send(1, &ascii_start(b"alice")), &mut scratch).unwrap(),
        Event::NeedPassword { user: b"alice", .. }
    ));
    assert_eq!(conn.single_connect(), Some(true));
    assert!(matches!(
        conn_feed(&mut conn, &b.send(1, &ascii_start(b"bob")), &mut scratch).unwrap(),
        Event::NeedPassword { user: b"bob", .. }
    ));
    assert_eq!(conn.active_sessions(), 2);
    // The cap.
    assert_eq!(
        conn_feed(&mut conn, &c.send(1, &ascii_start(b"carol")), &mut scratch).unwrap_err(),
        ConnectionError::TooManySessions
    );
    // Unknown session mid-stream.
    assert_eq!(
        conn_feed(&mut conn, &c.send(3, &cont(b"x")), &mut scratch)
            .unwrap_err()
            .reason(),
        "unknown_session"
    );

    // Answers interleave; replies echo SINGLE_CONNECT.
    let out = conn
        .answer(
            0xb,
            &Answer::GetPass {
                prompt: b"Password: ",
            },
            Obfuscation::Key(KEY),
            &mut buf,
        )
        .unwrap();
    let (h, _, _, _) = reply_of(out);
    assert_eq!((h.session_id, h.seq_no, h.single_connect()), (0xb, 2, true));
    conn.answer(
        0xa,
        &Answer::GetPass {
            prompt: b"Password: ",
        },
        Obfuscation::Key(KEY),
        &mut buf,
    )
    .unwrap();
    assert!(matches!(
        conn_feed(&mut conn, &b.send(3, &cont(b"pw-b")), &mut scratch).unwrap(),
        Event::Authenticate {
            user: b"bob",
            credential: Credential::Password(b"pw-b"),
            ..
        }
    ));
    assert!(matches!(
        conn_feed(&mut conn, &a.send(3, &cont(b"pw-a")), &mut scratch).unwrap(),
        Event::Authenticate {
            user: b"alice",
            credential: Credential::Password(b"pw-a"),
            ..
        }
    ));
    conn.answer(
        0xa,
        &Answer::Pass { server_msg: b"" },
        Obfuscation::Key(KEY),
        &mut buf,
    )
    .unwrap();
    assert_eq!(conn.active_sessions(), 1);
    // A finished session frees its slot.
    assert!(matches!(
        conn_feed(&mut conn, &c.send(1, &ascii_start(b"carol")), &mut scratch).unwrap(),
        Event::NeedPassword { user: b"carol", .. }
    ));
    // A protocol error ends only its own session.
    let err = conn_feed(&mut conn, &b.send(7, &cont(b"x")), &mut scratch).unwrap_err();
    assert_eq!(
        err,
        ConnectionError::Session {
            session_id: 0xb,
            error: SessionError::AnswerPending
        }
    );
    assert!(conn.session(0xb).is_none());
    assert!(conn.session(0xc).is_some_and(|s| s.answer_due()));
    assert_eq!(
        conn.answer(
            0xb,
            &Answer::Fail { server_msg: b"" },
            Obfuscation::Key(KEY),
            &mut buf
        )
        .unwrap_err(),
        ConnectionError::UnknownSession(0xb)
    );
    assert!(!conn.should_close());
    assert_eq!(conn.finished_sessions(), 2);
}

#[test]
fn tacacs_connection_without_single_connect() {
    let mut conn = Connection::new(ConnectionLimits::default());
    let a = Client {
        session_id: 1,
        version: Version::Default,
        flags: 0,
    };
    let b = Client { session_id: 2, ..a };
    let mut buf = [0u8; 256];
    let mut scratch = Vec::new();
    conn_feed(&mut conn, &a.send(1, &ascii_start(b"alice")), &mut scratch).unwrap();
    assert_eq!(conn.single_connect(), Some(false));
    assert_eq!(
        conn_feed(&mut conn, &b.send(1, &ascii_start(b"bob")), &mut scratch).unwrap_err(),
        ConnectionError::NotMultiplexed
    );
    let out = conn
        .answer(
            1,
            &Answer::Fail { server_msg: b"" },
            Obfuscation::Key(KEY),
            &mut buf,
        )
        .unwrap();
    assert!(!reply_of(out).0.single_connect());
    assert!(conn.should_close());

    // A server that refuses single-connection mode never echoes the flag.
    let limits = ConnectionLimits {
        allow_single_connect: false,
        ..ConnectionLimits::default()
    };
    let mut conn = Connection::new(limits);
    let a = Client {
        flags: FLAG_SINGLE_CONNECT,
        ..a
    };
    conn_feed(&mut conn, &a.send(1, &ascii_start(b"alice")), &mut scratch).unwrap();
    assert_eq!(conn.single_connect(), Some(false));
    let out = conn
        .answer(
            1,
            &Answer::Fail { server_msg: b"" },
            Obfuscation::Key(KEY),
            &mut buf,
        )
        .unwrap();
    assert!(!reply_of(out).0.single_connect());
}

#[test]
fn tacacs_debug_redacts_credentials() {
    let (header, clear) = open(&hex(AUTHEN_START));
    let body = Body::decode(&header, &clear).unwrap();
    let text = format!("{body:?}");
    assert!(text.contains("bob") && !text.contains("hello"), "{text}");
    let cont = AuthenContinue {
        user_msg: b"287082",
        data: b"",
        flags: 0,
    };
    assert!(!format!("{cont:?}").contains("287082"));
    let mut s = Session::new(0xb70f_c80e, SessionLimits::default());
    let mut p = hex(AUTHEN_START);
    let ev = feed(&mut s, &mut p).unwrap();
    let text = format!("{ev:?}");
    let text = format!("{text} {s:?}");
    assert!(
        text.contains("Authenticate") && !text.contains("hello"),
        "{text}"
    );
    assert!(!format!("{:?}", Obfuscation::Key(KEY)).contains("testing"));
}

// ---------------------------------------------------------------------------------------------
// Mutation test.

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

/// Split → de-obfuscate (key `testing123` unless UNENCRYPTED) → decode → re-encode must give the
/// same bytes → decode again gives the same fields; then the body goes through a session.
/// Returns whether `bytes` decoded.
pub(crate) fn round_trip(bytes: &[u8]) -> bool {
    let Ok((header, body)) = split_packet(bytes) else {
        return false;
    };
    let mut clear = body.to_vec();
    if header.is_obfuscated() {
        deobfuscate(KEY, &header, &mut clear);
    }
    let Ok(decoded) = Body::decode(&header, &clear) else {
        return false;
    };
    let mut buf = vec![0u8; bytes.len()];
    let out = encode_packet(&header, &decoded, obf(&header), &mut buf).unwrap();
    assert_eq!(out, bytes);
    let (h2, b2) = split_packet(out).unwrap();
    let mut clear2 = b2.to_vec();
    if h2.is_obfuscated() {
        deobfuscate(KEY, &h2, &mut clear2);
    }
    assert_eq!(h2, header);
    assert_eq!(Body::decode(&h2, &clear2).unwrap(), decoded);
    // The session must never panic either, whatever it is fed.
    let mut session = Session::new(header.session_id, SessionLimits::default());
    if session.receive(&header, decoded).is_ok() {
        let mut out = [0u8; 512];
        let _ = session.answer(
            &Answer::GetPass { prompt: b"p" },
            Obfuscation::Key(KEY),
            &mut out,
        );
        let _ = session.answer(
            &Answer::Fail { server_msg: b"" },
            Obfuscation::Key(KEY),
            &mut out,
        );
    }
    true
}

/// The vectors plus their clear (UNENCRYPTED) forms, so that mutations reach the body parsers.
fn mutation_bases() -> Vec<Vec<u8>> {
    let mut all = Vec::new();
    for (_, wire) in vectors() {
        let (header, clear) = open(&wire);
        if header.is_obfuscated() {
            let mut p = wire[..HEADER_LEN].to_vec();
            p[3] |= FLAG_UNENCRYPTED;
            p.extend_from_slice(&clear);
            all.push(p);
        }
        all.push(wire);
    }
    all
}

#[test]
fn tacacs_mutation_never_panics_and_round_trips() {
    let bases = mutation_bases();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut decoded = 0usize;
    const ROUNDS: usize = 200_000;
    for _ in 0..ROUNDS {
        let mut b = bases[rng.below(bases.len())].clone();
        for _ in 0..=rng.below(3) {
            match rng.below(7) {
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
                    // Header length field edits: small deltas and wild values.
                    if b.len() >= HEADER_LEN {
                        let old = u32::from_be_bytes([b[8], b[9], b[10], b[11]]);
                        let new = if rng.below(2) == 0 {
                            old.wrapping_add(rng.below(9) as u32).wrapping_sub(4)
                        } else {
                            rng.next() as u32
                        };
                        b[8..12].copy_from_slice(&new.to_be_bytes());
                    }
                }
                4 => {
                    // Body length/count octets: small values in the fixed part.
                    if b.len() > HEADER_LEN + 1 {
                        let i = HEADER_LEN + rng.below((b.len() - HEADER_LEN).min(12));
                        b[i] = rng.below(24) as u8;
                    }
                }
                5 => {
                    // Header octets (version, type, seq, flags).
                    if b.len() >= 4 {
                        let i = rng.below(4);
                        b[i] = match i {
                            0 => [0xc0, 0xc1, 0xc2][rng.below(3)],
                            1 => rng.below(5) as u8,
                            2 => rng.below(8) as u8,
                            _ => rng.below(8) as u8,
                        };
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
        // Keep the header's length consistent half of the time so that bodies get parsed.
        if rng.below(2) == 0 && b.len() >= HEADER_LEN {
            let len = (b.len() - HEADER_LEN) as u32;
            b[8..12].copy_from_slice(&len.to_be_bytes());
        }
        if round_trip(&b) {
            decoded += 1;
        }
    }
    // The mutations must exercise both paths.
    assert!(decoded > ROUNDS / 20, "only {decoded} decoded");
    assert!(decoded < ROUNDS, "nothing was rejected");
}

/// Writes every vector as a binary fuzz seed into the directory named by
/// `TOKENGATE_WRITE_FUZZ_CORPUS`; does nothing when it is unset.
#[test]
fn tacacs_write_fuzz_corpus() {
    let Some(dir) = std::env::var_os("TOKENGATE_WRITE_FUZZ_CORPUS") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut all = vectors();
    // Streams of several packets, so that the fuzz target's connection sees whole sessions:
    // an ASCII login ending in the derived OTP CONTINUE, and authorization plus accounting.
    let client = Client {
        session_id: 0x1234_5678,
        version: Version::Default,
        flags: 0,
    };
    let mut ascii = client.send(1, &ascii_start(b"bob"));
    ascii.extend(client.send(3, &cont(b"1234")));
    ascii.extend(hex(OTP_CONTINUE));
    all.push(("stream_ascii_otp_session", ascii));
    let mut both = hex(AUTHOR_REQUEST);
    both.extend(hex(ACCT_REQUEST));
    both.extend(hex(AUTHEN_START));
    all.push(("stream_author_acct_pap", both));
    // Command authorization (the policy's permit/deny patterns) and a CHAP START.
    let cmd: [&[u8]; 4] = [
        b"service=shell",
        b"cmd=show",
        b"cmd-arg=running-config",
        b"cmd-arg=<cr>",
    ];
    let author = Body::AuthorRequest(AuthorRequest {
        authen_method: AuthenMethod::TacacsPlus,
        priv_lvl: 15,
        authen_type: AuthenType::Ascii,
        service: AuthenService::Login,
        user: b"carol",
        port: b"tty0",
        rem_addr: b"192.0.2.1",
        args: Args::from_list(&cmd),
    });
    all.push(("author_command", client.send(1, &author)));
    let mut chap_data = vec![7u8];
    chap_data.extend_from_slice(b"challenge-16byte");
    chap_data.extend_from_slice(&crate::otp::chap_response(
        7,
        b"123456",
        b"challenge-16byte",
    ));
    let chap = Body::AuthenStart(AuthenStart {
        action: AuthenAction::Login,
        priv_lvl: 1,
        authen_type: AuthenType::Chap,
        service: AuthenService::Login,
        user: b"dave",
        port: b"tty0",
        rem_addr: b"192.0.2.1",
        data: &chap_data,
    });
    let chap_client = Client {
        version: Version::One,
        ..client
    };
    all.push(("authen_start_chap", chap_client.send(1, &chap)));
    for (name, bytes) in all {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
