//! Fuzz target for the RADIUS codec: decode → re-encode every attribute → decode again and
//! compare; unhide any User-Password with a fixed key; run the authenticator checks.
//!
//! It owns no logic of its own and must stay deterministic (no clock, no randomness).

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tokengate::radius::{attr, ClientKey, Encoder, Packet, MAX_PACKET_LEN};

fn key() -> &'static ClientKey {
    static KEY: OnceLock<ClientKey> = OnceLock::new();
    KEY.get_or_init(|| ClientKey::new(b"xyzzy5461"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::decode(data) else {
        return;
    };
    assert!(packet.as_bytes().len() <= data.len());

    // Re-encode every attribute verbatim; the result must be the same packet.
    let mut buf = [0u8; MAX_PACKET_LEN];
    let mut encoder = Encoder::request(
        &mut buf,
        packet.code(),
        packet.identifier(),
        packet.authenticator(),
        false,
    )
    .expect("a 4096-octet buffer holds the header");
    for (attr_type, value) in packet.attributes() {
        let mut raw = [0u8; 255];
        raw[0] = attr_type;
        raw[1] = u8::try_from(value.len() + 2).expect("attribute length fits a u8");
        raw[2..2 + value.len()].copy_from_slice(value);
        encoder
            .push_raw(&raw[..2 + value.len()])
            .expect("a decoded attribute re-encodes");
    }
    let out = encoder.finish_unsigned().expect("the same size as the input");
    assert_eq!(out, packet.as_bytes());
    let again = Packet::decode(out).expect("a re-encoded packet decodes");
    assert_eq!(again.code(), packet.code());
    assert_eq!(again.identifier(), packet.identifier());
    assert!(again.attributes().eq(packet.attributes()));
    assert_eq!(again.message_authenticator(), packet.message_authenticator());

    // Cryptographic checks must never panic, whatever the bytes.
    let key = key();
    if let Some(hidden) = packet.first(attr::USER_PASSWORD) {
        let mut clear = [0u8; 128];
        if let Ok(password) = key.unhide_password(packet.authenticator(), hidden, &mut clear) {
            assert!(password.len() <= hidden.len());
        }
    }
    let _ = key.verify_message_authenticator(&packet, packet.authenticator());
    let _ = key.verify_response_authenticator(&packet, &[0u8; 16]);
});
