//! Micro-benchmarks of the per-request CPU work (issue 5, item 4), measured with divan:
//! RADIUS decode + Message-Authenticator check + User-Password unhide, reply encoding with
//! Message-Authenticator first, the TOTP window search, and the engine's decision for an accept,
//! a wrong passcode and an unknown user (the L-4 timing-parity paths), and a HOTP accept with the
//! token's code cache warm (every login after the first) and cold (the first).
//!
//! Run: `cargo bench -p tokengate-bench --bench hot_path`. Everything here is pure computation on
//! prepared inputs (no sockets, no database), so the figures are the floor under the end-to-end
//! numbers of `tg-loadgen`; compare paths with each other in one run rather than across machines.

use std::hint::black_box;

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokengate::engine::{authenticate, AuthRequest, Ctx, LiveToken, Principal, StateLookup};
use tokengate::model::{HashAlgorithm, OtpMode, PinState, Token, TokenKind, User};
use tokengate::otp::{self, MasterKey};
use tokengate::policy::{Policies, Prompts};
use tokengate::radius::{attr, ClientKey, Code, Encoder, Packet};
use zeroize::Zeroizing;

fn main() {
    divan::main();
}

const SECRET: &[u8] = b"testing123";
const SEED: &[u8] = b"12345678901234567890";
/// RFC 6238's instant 1111111109: step 0x23523EC.
const NOW: i64 = 1_111_111_109;
const PIN: &str = "4821";

/// An Access-Request as a NAS sends it: Message-Authenticator first, User-Name, hidden
/// User-Password (PIN + 6 digits), NAS-IP-Address.
fn access_request(key: &ClientKey) -> Vec<u8> {
    let mut buf = [0u8; 4096];
    let authenticator = [0x5a; 16];
    let mut e =
        Encoder::request(&mut buf, Code::AccessRequest, 7, &authenticator, true).expect("encoder");
    e.push(attr::USER_NAME, b"bench0000042").expect("user");
    e.push_user_password(key, format!("{PIN}081804").as_bytes())
        .expect("password");
    e.push(4, &[127, 0, 0, 1]).expect("nas-ip");
    e.finish_request(key).expect("finish").to_vec()
}

/// What the server does with a datagram before the engine: decode, verify the
/// Message-Authenticator, unhide the password.
#[divan::bench]
fn radius_decode_verify_unhide(bencher: divan::Bencher) {
    let key = ClientKey::new(SECRET);
    let datagram = access_request(&key);
    bencher.bench_local(|| {
        let packet = Packet::decode(black_box(&datagram)).expect("decode");
        assert!(key.verify_message_authenticator(&packet, packet.authenticator()));
        let hidden = packet.first(attr::USER_PASSWORD).expect("password");
        let mut out = [0u8; 128];
        let clear = key
            .unhide_password(packet.authenticator(), hidden, &mut out)
            .expect("unhide");
        black_box(clear.len());
    });
}

/// An Access-Accept with a Reply-Message, Message-Authenticator first, into a stack buffer.
#[divan::bench]
fn radius_encode_accept(bencher: divan::Bencher) {
    let key = ClientKey::new(SECRET);
    let request_authenticator = [0x5a; 16];
    bencher.bench_local(|| {
        let mut buf = [0u8; 4096];
        let mut e = Encoder::reply(&mut buf, Code::AccessAccept, 7).expect("encoder");
        e.push(attr::REPLY_MESSAGE, b"Welcome")
            .expect("reply-message");
        let out = e
            .finish_reply(&key, black_box(&request_authenticator))
            .expect("finish");
        black_box(out.len());
    });
}

/// The constant-time TOTP window search (`otp::find_match`): the seed keyed into HMAC once,
/// every candidate step computed and compared, no early exit — the per-candidate work of the
/// engine's window check (default window: 3 steps either side).
#[divan::bench(args = [1, 3, 10])]
fn otp_window_search(bencher: divan::Bencher, half_window: i64) {
    let step = otp::totp_step(NOW, 30);
    let code = otp::Code::new(otp::hotp(SEED, step as u64, 6, HashAlgorithm::Sha1), 6);
    bencher.bench_local(|| {
        let found = otp::find_match(
            black_box(SEED),
            HashAlgorithm::Sha1,
            6,
            code.as_bytes(),
            step - half_window..=step + half_window,
        );
        black_box(found);
    });
}

/// A user with one PIN token (SHA-1, 6 digits, TOTP 30 s or HOTP) whose PIN is [`PIN`].
fn principal(pepper: &otp::Pepper, mode: OtpMode) -> Principal {
    let mut rng = StdRng::seed_from_u64(7);
    let pin_hash = pepper.hash(&mut rng, PIN.as_bytes());
    Principal {
        user: User {
            id: 1,
            name: "bench0000042".into(),
            domain: "default".into(),
            locked: false,
            locked_at: None,
            fail_count: 0,
            fail_window_start: 0,
            profile: None,
            created_at: 0,
        },
        tokens: vec![LiveToken {
            token: Token {
                id: 10,
                serial: "BENCH-0000042".into(),
                user_id: Some(1),
                kind: TokenKind::Pin,
                algorithm: HashAlgorithm::Sha1,
                digits: 6,
                mode,
                seed_enc: vec![],
                expires_at: None,
                pin_state: PinState::Set,
                pin_hash: Some(pin_hash),
                drift: 0,
                last_step: -1,
                bad_count: 0,
                enabled: true,
                created_at: 0,
            },
            seed: Zeroizing::new(SEED.to_vec()),
            emergency: None,
            offline_code: None,
            codes: otp::CodeCache::default(),
        }],
        fixed_passcode: None,
    }
}

/// Which engine path a benchmark takes.
#[derive(Debug, Clone, Copy)]
enum Path {
    Accept,
    WrongPasscode,
    UnknownUser,
    /// HOTP accept of counter 0; `warm`: the token's code cache holds the window already (as
    /// on every login after a user's first), else every iteration computes the whole window.
    HotpAccept {
        warm: bool,
    },
}

/// The engine's decision for one request. The principal is cloned outside the timed part
/// (the accept advances its replay step, so each iteration needs a fresh copy).
fn engine(bencher: divan::Bencher, path: Path) {
    let pepper = MasterKey::from_bytes([9; 32]).pepper();
    let policies = Policies::default();
    let prompts = Prompts::default();
    let ctx = Ctx {
        policies: &policies,
        prompts: &prompts,
        pepper: &pepper,
        challenge_ttl: 120,
    };
    let mode = match path {
        Path::HotpAccept { .. } => OtpMode::Hotp,
        _ => OtpMode::Totp { period: 30 },
    };
    let template = principal(&pepper, mode);
    let counter = match path {
        Path::HotpAccept { .. } => 0,
        _ => otp::totp_step(NOW, 30) as u64,
    };
    let right = otp::Code::new(otp::hotp(SEED, counter, 6, HashAlgorithm::Sha1), 6);
    let passcode = match path {
        Path::WrongPasscode => format!("{PIN}000000"),
        _ => format!("{PIN}{}", right.as_str()),
    };
    let mut rng = StdRng::seed_from_u64(11);
    bencher
        .with_inputs(|| {
            // Clones share the token's code cache; a cold run gives each input its own.
            let mut p = template.clone();
            if matches!(path, Path::HotpAccept { warm: false }) {
                for t in &mut p.tokens {
                    t.codes = otp::CodeCache::default();
                }
            }
            p
        })
        .bench_local_refs(|p| {
            let req = AuthRequest {
                user_name: "bench0000042",
                passcode: passcode.as_bytes(),
                client: "nas",
                protocol: "radius",
                chap: None,
            };
            let principal = match path {
                Path::UnknownUser => None,
                _ => Some(p),
            };
            let out = authenticate(&ctx, principal, &StateLookup::None, &req, NOW, &mut rng);
            black_box(out.ops.len());
        });
}

/// PIN + the right tokencode: PIN keyed hash, window search, replay step advanced.
#[divan::bench]
fn engine_accept(bencher: divan::Bencher) {
    engine(bencher, Path::Accept);
}

/// PIN + a wrong tokencode: the same hashing, failure bookkeeping instead of the step.
#[divan::bench]
fn engine_wrong_passcode(bencher: divan::Bencher) {
    engine(bencher, Path::WrongPasscode);
}

/// A user name that does not exist: the engine's dummy work (L-4).
#[divan::bench]
fn engine_unknown_user(bencher: divan::Bencher) {
    engine(bencher, Path::UnknownUser);
}

/// HOTP accept, code cache warm: one check of the 110-counter window from the kept codes.
#[divan::bench]
fn engine_accept_hotp_cached(bencher: divan::Bencher) {
    engine(bencher, Path::HotpAccept { warm: true });
}

/// HOTP accept, code cache cold (a user's first login): every code of the window computed.
#[divan::bench]
fn engine_accept_hotp_first(bencher: divan::Bencher) {
    engine(bencher, Path::HotpAccept { warm: false });
}

/// The per-request copy of a cached user (`server::service` decides on a copy and swaps it in
/// once the writes commit): one PIN token, HOTP code cache shared.
#[divan::bench]
fn principal_clone(bencher: divan::Bencher) {
    let pepper = MasterKey::from_bytes([9; 32]).pepper();
    let template = principal(&pepper, OtpMode::Hotp);
    bencher.bench_local(|| black_box(template.clone()));
}
