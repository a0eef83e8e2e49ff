//! The HOTP generator against a fake RADIUS server that checks what a real one cannot show
//! directly: no user ever has two requests in flight, every user's counters arrive in order
//! without repeats, and a request that timed out gives its user back with the counter after it.
//!
//! The fake server holds requests and answers the newest half first (so users answered early
//! come round again while older users are still waiting, up to 20 ms), and never answers the
//! 5th request and every 500th after it: the generator must time it out, release the user and
//! move past its counter while the run goes on (there are only as many users as requests
//! outstanding, so a user never given back stops the run).

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokengate::model::{HashAlgorithm, OtpMode};
use tokengate::radius::{attr, ClientKey, Code, Encoder, Packet, MAX_PACKET_LEN};
use tokengate_bench::hotp::token_code;
use tokengate_bench::population::{OtpUser, Population};
use tokengate_bench::{run, Load, Options, Passcodes, Stop};

const SECRET: &[u8] = b"fake-secret";
const USERS: usize = 12;
const REQUESTS: u64 = 5000;
const TIMEOUT: Duration = Duration::from_secs(1);

/// What the fake server saw.
#[derive(Debug, Default)]
struct Seen {
    requests: u64,
    /// A request for a user who had one outstanding (answered or not yet timed out).
    overlaps: u64,
    /// A passcode that was not PIN + the code of the user's next counter.
    out_of_order: u64,
    dropped: u64,
    /// A user's next request came before the generator's timeout of a dropped one.
    reused_before_timeout: u64,
}

fn users() -> Vec<OtpUser> {
    (0..USERS)
        .map(|i| OtpUser {
            name: format!("user{i:02}").into_bytes().into(),
            pin: format!("{:06}", 100_000 + i).into_bytes().into(),
            seed: (0..20u8)
                .map(|b| b.wrapping_mul(31).wrapping_add(i as u8))
                .collect(),
            algorithm: HashAlgorithm::Sha1,
            digits: 6,
            mode: OtpMode::Hotp,
        })
        .collect()
}

/// A request the fake server has not answered yet.
#[derive(Clone)]
struct Held {
    peer: SocketAddr,
    id: u8,
    auth: [u8; 16],
    name: Vec<u8>,
    at: Instant,
}

fn fake_server(sock: UdpSocket, users: Vec<OtpUser>, stop: Arc<AtomicBool>) -> Seen {
    let key = ClientKey::new(SECRET);
    let by_name: HashMap<Vec<u8>, OtpUser> =
        users.into_iter().map(|u| (u.name.to_vec(), u)).collect();
    let mut next: HashMap<Vec<u8>, u64> = HashMap::new();
    let mut outstanding: HashSet<Vec<u8>> = HashSet::new();
    let mut dropped_at: HashMap<Vec<u8>, Instant> = HashMap::new();
    let mut held: Vec<Held> = Vec::new();
    let mut seen = Seen::default();
    let mut buf = [0u8; MAX_PACKET_LEN];
    let mut out = [0u8; MAX_PACKET_LEN];
    sock.set_read_timeout(Some(Duration::from_millis(2)))
        .unwrap();
    // Answers the newest `n` held requests, newest first, and any held for 20 ms (so that no
    // request waits until the generator's timeout).
    let mut answer = |held: &mut Vec<Held>, outstanding: &mut HashSet<Vec<u8>>, n: usize| {
        let keep = held.len() - n;
        let mut now = held.split_off(keep);
        now.reverse();
        held.retain(|h| {
            let old = h.at.elapsed() > Duration::from_millis(20);
            if old {
                now.push(h.clone());
            }
            !old
        });
        for Held {
            peer,
            id,
            auth,
            name,
            ..
        } in now
        {
            outstanding.remove(&name);
            let e = Encoder::reply(&mut out, Code::AccessAccept, id).unwrap();
            let reply = e.finish_reply(&key, &auth).unwrap();
            sock.send_to(reply, peer).unwrap();
        }
    };
    while !stop.load(Ordering::Relaxed) {
        let (n, peer) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(_) => {
                // Idle: answer everything held.
                let n = held.len();
                answer(&mut held, &mut outstanding, n);
                continue;
            }
        };
        let p = Packet::decode(&buf[..n]).unwrap();
        let name = p.first(attr::USER_NAME).unwrap().to_vec();
        let mut clear = [0u8; 128];
        let password = key
            .unhide_password(
                p.authenticator(),
                p.first(attr::USER_PASSWORD).unwrap(),
                &mut clear,
            )
            .unwrap();
        seen.requests += 1;
        if !outstanding.insert(name.clone()) {
            seen.overlaps += 1;
        }
        if let Some(at) = dropped_at.remove(&name) {
            // The generator times out from its send, before this server's receive (by more
            // than a few milliseconds when the machine is busy): only a reuse well before the
            // timeout is a bug.
            if at.elapsed() < TIMEOUT / 2 {
                seen.reused_before_timeout += 1;
            }
        }
        let user = &by_name[&name];
        let counter = next.entry(name.clone()).or_insert(0);
        let want = [&user.pin[..], token_code(user, *counter).as_bytes()].concat();
        if password != want.as_slice() {
            seen.out_of_order += 1;
        }
        *counter += 1;
        if seen.requests % 500 == 5 {
            // Lost: never answered. The server did see the counter.
            seen.dropped += 1;
            outstanding.remove(&name);
            dropped_at.insert(name, Instant::now());
            continue;
        }
        held.push(Held {
            peer,
            id: p.identifier(),
            auth: *p.authenticator(),
            name,
            at: Instant::now(),
        });
        if held.len() >= USERS - 2 {
            let half = held.len() / 2;
            answer(&mut held, &mut outstanding, half);
        }
    }
    seen
}

#[test]
fn hotp_users_are_never_in_flight_twice_and_timeouts_move_past_the_counter() {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let server = {
        let stop = stop.clone();
        std::thread::spawn(move || fake_server(sock, users(), stop))
    };
    let report = run(Options {
        server: addr,
        secret: SECRET.to_vec(),
        load: Load::Closed { concurrency: USERS },
        stop: Stop::Requests(REQUESTS),
        workers: 2,
        message_authenticator: false,
        passcodes: Passcodes::Correct,
        population: Arc::new(Population::Otp(users())),
        timeout: TIMEOUT,
        server_pid: None,
        state_file: None,
    })
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    let seen = server.join().unwrap();

    assert_eq!(seen.requests, REQUESTS, "{seen:?}\n{}", report.table());
    assert_eq!(
        seen.overlaps, 0,
        "two requests of one user in flight: {seen:?}"
    );
    assert_eq!(seen.out_of_order, 0, "counters out of order: {seen:?}");
    assert_eq!(seen.reused_before_timeout, 0, "{seen:?}");
    assert_eq!(seen.dropped, REQUESTS / 500);
    let c = &report.counts;
    assert_eq!(c.timeouts, seen.dropped, "{}", report.table());
    assert_eq!(c.accept, REQUESTS - seen.dropped, "{}", report.table());
    assert_eq!(c.no_free_user, 0);
}

#[test]
fn hotp_needs_at_least_as_many_users_as_requests_outstanding() {
    let err = run(Options {
        server: "127.0.0.1:9".parse().unwrap(),
        secret: SECRET.to_vec(),
        load: Load::Closed {
            concurrency: USERS + 1,
        },
        stop: Stop::Requests(1),
        workers: 1,
        message_authenticator: false,
        passcodes: Passcodes::Correct,
        population: Arc::new(Population::Otp(users())),
        timeout: TIMEOUT,
        server_pid: None,
        state_file: None,
    })
    .unwrap_err();
    assert!(err.to_string().contains("HOTP"), "{err}");
}
