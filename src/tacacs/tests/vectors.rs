//! Known-answer tests from VECTORS.md §3 and §6: every body decodes to the documented fields
//! and re-encodes to the same bytes, the encoders build the FreeRADIUS clear vectors and the
//! derived OTP challenge, key rollover picks the right key, and the client-side encoders
//! round-trip.

use super::*;

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
