//! The per-session state machine: ASCII login with an OTP challenge replaying the derived
//! vectors, PAP/CHAP/MS-CHAP and unsupported actions, sequence-number errors and the wrap, the
//! round limit and RESTART, authorization and accounting, and redacted `Debug` output.

use super::*;

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
