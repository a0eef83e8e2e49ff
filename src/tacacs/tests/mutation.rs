//! Robustness: a deterministic 200k-mutation test (no panic, exact re-encoding, sessions fed
//! whatever decodes) and the writer of the fuzz seed corpus.

use super::*;

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
