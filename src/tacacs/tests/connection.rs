//! The connection demultiplexer: interleaved sessions in single-connection mode (cap, unknown
//! sessions, a protocol error ending only its own session) and one-session connections.

use super::*;

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
