//! Fuzz target for the TACACS+ codec and state machines: the input is read as a stream of
//! packets; each is split, de-obfuscated with a fixed key (unless UNENCRYPTED), decoded,
//! re-encoded (which must reproduce the bytes) and decoded again (same fields); decoded client
//! packets then go through one `Connection`, whose events are answered in turn; authorization
//! requests are also decided by `policy::authorize` against a set with command patterns.
//!
//! It owns no logic of its own and must stay deterministic (no clock, no randomness).

#![no_main]

use libfuzzer_sys::fuzz_target;
use tokengate::tacacs::{
    encode_packet, policy, split_packet, AcctReply, AcctStatus, Answer, Args, AuthorResponse,
    AuthorSet, AuthorStatus, Body, Connection, ConnectionLimits, Event, Header, Obfuscation,
    SessionLimits, HEADER_LEN,
};

const KEY: &[u8] = b"testing123";

/// Every answer kind, picked per event by a counter so that all transitions get exercised.
fn answer(n: usize, event: &Event<'_>) -> Answer<'static> {
    const ARGS: &[&[u8]] = &[b"priv-lvl=15", b""];
    match event {
        Event::Authorize(_) => Answer::Author(AuthorResponse {
            status: if n % 2 == 0 {
                AuthorStatus::PassAdd
            } else {
                AuthorStatus::Fail
            },
            args: Args::from_list(ARGS),
            server_msg: b"",
            data: b"",
        }),
        Event::Account(_) => Answer::Acct(AcctReply {
            status: AcctStatus::Success,
            server_msg: b"",
            data: b"",
        }),
        _ => match n % 8 {
            0 => Answer::GetUser {
                prompt: b"Username: ",
            },
            1 | 2 => Answer::GetPass {
                prompt: b"Password: ",
            },
            3 => Answer::GetData {
                prompt: b"Code: ",
                no_echo: false,
            },
            4 => Answer::Restart {
                server_msg: b"",
                data: b"\x02",
            },
            5 => Answer::Pass { server_msg: b"ok" },
            6 => Answer::Fail { server_msg: b"" },
            _ => Answer::Error { server_msg: b"" },
        },
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = ConnectionLimits {
        max_sessions: 4,
        allow_single_connect: true,
        session: SessionLimits { max_rounds: 6 },
    };
    let mut connection = Connection::new(limits);
    let set = AuthorSet {
        args: vec![b"service=shell".to_vec(), b"priv-lvl=7".to_vec()],
        permit: vec![policy::command_pattern("show .*").expect("valid pattern")],
        deny: vec![policy::command_pattern("show run.*").expect("valid pattern")],
    };
    let mut rest = data;
    let mut n = 0usize;
    let mut out = vec![0u8; 70 * 1024];
    while let Ok(header) = Header::decode_prefix(rest) {
        let Some(packet) = rest.get(..HEADER_LEN + header.body_len()) else {
            break;
        };
        rest = &rest[packet.len()..];
        let (header, body) = split_packet(packet).expect("a header-sized prefix splits");
        let mut clear = body.to_vec();
        let obfuscation = if header.is_obfuscated() {
            tokengate::tacacs::deobfuscate(KEY, &header, &mut clear);
            Obfuscation::Key(KEY)
        } else {
            Obfuscation::Clear
        };
        let Ok(decoded) = Body::decode(&header, &clear) else {
            continue;
        };

        // decode → encode → decode.
        let wire = encode_packet(&header, &decoded, obfuscation, &mut out)
            .expect("a decoded body re-encodes");
        assert_eq!(wire, packet);
        let (again_header, again_body) = split_packet(wire).expect("re-encoded packet splits");
        assert_eq!(again_header, header);
        let mut again_clear = again_body.to_vec();
        if again_header.is_obfuscated() {
            tokengate::tacacs::deobfuscate(KEY, &again_header, &mut again_clear);
        }
        assert_eq!(Body::decode(&again_header, &again_clear), Ok(decoded));

        // The state machine, fed whatever the client side says.
        if !decoded.from_client() {
            continue;
        }
        n += 1;
        let chosen = match connection.receive(&header, decoded) {
            Ok(Event::Aborted { .. }) | Err(_) => None,
            Ok(Event::Authorize(r)) => {
                let _ = policy::authorize(&set, &r.args);
                Some(answer(n, &Event::Authorize(r)))
            }
            Ok(event) => Some(answer(n, &event)),
        };
        if let Some(chosen) = chosen {
            if connection
                .answer(header.session_id, &chosen, obfuscation, &mut out)
                .is_err()
            {
                let _ = connection.answer(
                    header.session_id,
                    &Answer::Fail { server_msg: b"" },
                    obfuscation,
                    &mut out,
                );
            }
        }
    }
});
