//! Rejected input and encoder limits: every malformed header or body maps to its
//! [`DecodeError`], and every oversize or inconsistent value to its [`EncodeError`].

use super::*;

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
