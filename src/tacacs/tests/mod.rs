//! TACACS+ unit tests, one file per area: known-answer vectors ([`vectors`]), rejected input
//! and encoder limits ([`negative`]), the session state machine ([`session`]), the connection
//! demultiplexer ([`connection`]) and the deterministic mutation test ([`mutation`]).
//!
//! This file holds what they share once: the VECTORS.md §3 and §6 packets (key `testing123`),
//! packet openers and a test client. The tests must not reach the network or the clock.

// Tests may unwrap and panic (clippy.toml) and index directly.
#![allow(clippy::indexing_slicing)]

use super::*;

mod connection;
mod mutation;
mod negative;
mod session;
mod vectors;

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
