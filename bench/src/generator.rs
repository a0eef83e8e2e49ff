//! The load generator proper: std threads with blocking UDP sockets, one socket per worker,
//! requests built with tokengate's sans-IO codec into reused buffers (no allocation per
//! request).
//!
//! Closed loop: each worker keeps its share of `concurrency` requests outstanding and sends a
//! new one as soon as one is answered or times out; latency is measured from the actual send.
//! Open loop: each worker has a sender thread that paces requests at its share of `rate`
//! (whatever the replies do) and a receiver thread; latency is measured from the *scheduled*
//! send time, so a stalled server shows up in the percentiles instead of slowing the sender
//! (no coordinated omission).
//!
//! TOTP users are taken round-robin per TOTP step through [`StepCursor`]: within one step no
//! user is sent twice, so a server with a replay guard accepts every request; when the
//! population is used up within a step the run stops early and says so. HOTP users are taken
//! from a [`HotpPool`]: a user with no request in flight, with its next counter; the user is
//! given back when the request is answered or times out, so the population is reused as fast
//! as the server answers and never runs out. `--state` carries the TOTP cursor or the HOTP
//! counters from one run to the next ([`crate::state`]).

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use tokengate::model::OtpMode;
use tokengate::otp;
use tokengate::radius::{attr, ClientKey, Code, Encoder, Packet, MAX_PACKET_LEN};

use crate::histogram::Histogram;
use crate::hotp::{token_code, HotpPool};
use crate::population::Population;
use crate::procstat;
use crate::report::{Counts, Report};
use crate::state::{self, State};

/// How load is offered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Load {
    /// Keep this many requests outstanding.
    Closed {
        /// Outstanding requests in total (split over the workers).
        concurrency: usize,
    },
    /// Send this many requests per second, whatever the replies do.
    Open {
        /// Requests per second in total.
        rate: f64,
    },
}

/// When a run ends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stop {
    /// After this long (then outstanding requests get up to the timeout to be answered).
    Duration(Duration),
    /// After this many requests have been sent (and answered or timed out).
    Requests(u64),
}

/// Which passcodes are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Passcodes {
    /// Right passcodes (PIN + current TOTP code, PIN + next HOTP code, or the PAP password):
    /// the accept path.
    Correct,
    /// Known users with a wrong passcode (last code digit changed, or a changed password): the
    /// reject path. Note: a real OTP server counts these toward lockout.
    Wrong,
    /// User names that do not exist (`unknown-<name>`): the unknown-user path.
    Unknown,
}

impl Passcodes {
    /// Label for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Passcodes::Correct => "correct",
            Passcodes::Wrong => "wrong",
            Passcodes::Unknown => "unknown",
        }
    }
}

/// Everything a run needs.
#[derive(Clone, Debug)]
pub struct Options {
    /// The RADIUS server (loopback).
    pub server: SocketAddr,
    /// Shared secret.
    pub secret: Vec<u8>,
    /// Closed or open loop.
    pub load: Load,
    /// Duration or request count.
    pub stop: Stop,
    /// Worker sockets (each one thread in closed loop, two in open loop).
    pub workers: usize,
    /// Put a Message-Authenticator (first) in every request.
    pub message_authenticator: bool,
    /// Accept, reject or unknown-user path.
    pub passcodes: Passcodes,
    /// The users.
    pub population: Arc<Population>,
    /// A request unanswered for this long counts as a timeout.
    pub timeout: Duration,
    /// The server's process id, for its CPU time.
    pub server_pid: Option<u32>,
    /// File that carries the TOTP cursor (step, next user) or the HOTP counters from one run
    /// to the next, so that runs within one TOTP step never reuse a user and HOTP runs never
    /// resend a used counter (see [`crate::state`]).
    pub state_file: Option<PathBuf>,
}

/// Hands out TOTP users: index `0..users` once per step, packed as `step << 32 | next` in one
/// atomic.
#[derive(Debug)]
pub struct StepCursor {
    packed: AtomicU64,
    users: u64,
}

impl StepCursor {
    /// A cursor over `users` users, continuing from `(step, next)` of an earlier run.
    pub fn new(users: usize, resume: Option<(i64, u64)>) -> StepCursor {
        let packed = resume.map_or(0, |(s, n)| ((s as u64) << 32) | n.min(u64::from(u32::MAX)));
        StepCursor {
            packed: AtomicU64::new(packed),
            users: users as u64,
        }
    }

    /// The user index to use at `step`, and the step to compute the code for; `None` when
    /// every user was used in this step already.
    pub fn take(&self, step: i64) -> Option<(usize, i64)> {
        let step = (step as u64) & 0xffff_ffff;
        let mut cur = self.packed.load(Ordering::Relaxed);
        loop {
            let (s, next) = (cur >> 32, cur & 0xffff_ffff);
            // Another thread may already have moved to a later step: follow it.
            let (s, next) = if step > s { (step, 0) } else { (s, next) };
            if next >= self.users {
                return None;
            }
            let new = (s << 32) | (next + 1);
            match self
                .packed
                .compare_exchange_weak(cur, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Some((next as usize, s as i64)),
                Err(actual) => cur = actual,
            }
        }
    }

    /// `(step, next)` to resume from.
    pub fn position(&self) -> (i64, u64) {
        let p = self.packed.load(Ordering::Relaxed);
        ((p >> 32) as i64, p & 0xffff_ffff)
    }
}

/// State shared by every worker of a run.
struct Shared {
    opts: Options,
    key: ClientKey,
    cursor: StepCursor,
    /// TOTP step of the population (TOTP only).
    period: u32,
    /// The counters and in-use flags of a HOTP population.
    hotp: Option<HotpPool>,
    round_robin: AtomicU64,
    /// Requests still allowed (for [`Stop::Requests`]).
    budget: AtomicI64,
    stop: AtomicBool,
    exhausted: AtomicBool,
    start: Instant,
    deadline: Option<Instant>,
}

impl Shared {
    fn may_send(&self) -> bool {
        !self.stop.load(Ordering::Relaxed) && self.deadline.is_none_or(|d| Instant::now() < d)
    }

    /// Takes one request from the budget.
    fn take_budget(&self) -> bool {
        if self.budget.fetch_sub(1, Ordering::Relaxed) <= 0 {
            self.stop.store(true, Ordering::Relaxed);
            return false;
        }
        true
    }

    fn nanos(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Gives back the HOTP user a request held, once it was answered or timed out.
    fn release(&self, held: Option<usize>) {
        if let (Some(pool), Some(i)) = (&self.hotp, held) {
            pool.release(i);
        }
    }
}

/// What [`Builder::build`] did.
enum Built {
    /// Wrote a request of `len` bytes with Request Authenticator `auth`; `held` is the HOTP
    /// user it took, to give back when it is answered or times out.
    Request {
        len: usize,
        auth: [u8; 16],
        held: Option<usize>,
    },
    /// TOTP: every user was used in this step already.
    Exhausted,
    /// HOTP: every user has a request in flight.
    NoFreeUser,
}

/// Per-thread request writer: RNG for Request Authenticators and the passcode scratch space.
struct Builder {
    rng: u64,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Builder {
    fn new(seed: u64) -> Builder {
        Builder {
            rng: seed ^ 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// splitmix64: Request Authenticators need to be unique, not secret, in a load test.
    fn next_u64(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Writes the next Access-Request with Identifier `id` into `buf`.
    fn build(&mut self, sh: &Shared, id: u8, buf: &mut [u8]) -> Result<Built> {
        let mut auth = [0u8; 16];
        auth[..8].copy_from_slice(&self.next_u64().to_ne_bytes());
        auth[8..].copy_from_slice(&self.next_u64().to_ne_bytes());
        let mut name = [0u8; 300];
        let mut pass = [0u8; 160];
        let (name_len, pass_len);
        let mut held = None;
        let prefix: &[u8] = if sh.opts.passcodes == Passcodes::Unknown {
            b"unknown-"
        } else {
            b""
        };
        match &*sh.opts.population {
            Population::Otp(users) => {
                let correct = sh.opts.passcodes == Passcodes::Correct;
                let (i, counter) = match &sh.hotp {
                    Some(pool) if correct => match pool.take() {
                        Some((i, c)) => {
                            held = Some(i);
                            (i, c)
                        }
                        None => return Ok(Built::NoFreeUser),
                    },
                    Some(pool) => {
                        let i =
                            sh.round_robin.fetch_add(1, Ordering::Relaxed) as usize % users.len();
                        (i, pool.peek(i))
                    }
                    None => {
                        let now_step = otp::totp_step(unix_now(), sh.period);
                        let (i, step) = if correct {
                            match sh.cursor.take(now_step) {
                                Some(x) => x,
                                None => return Ok(Built::Exhausted),
                            }
                        } else {
                            let i = sh.round_robin.fetch_add(1, Ordering::Relaxed) as usize
                                % users.len();
                            (i, now_step)
                        };
                        (i, step.max(0) as u64)
                    }
                };
                let u = &users[i];
                name_len = concat(&mut name, &[prefix, &u.name]);
                let mut code = token_code(u, counter);
                if sh.opts.passcodes == Passcodes::Wrong {
                    // The last digit changed: the right shape, not this counter's code.
                    let value: u32 = code.as_str().parse().unwrap_or(0);
                    code = otp::Code::new(value - value % 10 + (value + 1) % 10, u.digits);
                }
                pass_len = concat(&mut pass, &[&u.pin, code.as_bytes()]);
            }
            Population::Plain(users) => {
                let i = sh.round_robin.fetch_add(1, Ordering::Relaxed) as usize % users.len();
                let u = &users[i];
                name_len = concat(&mut name, &[prefix, &u.name]);
                let suffix: &[u8] = if sh.opts.passcodes == Passcodes::Wrong {
                    b"x"
                } else {
                    b""
                };
                pass_len = concat(&mut pass, &[&u.password, suffix]);
            }
        }
        let mut e = Encoder::request(
            buf,
            Code::AccessRequest,
            id,
            &auth,
            sh.opts.message_authenticator,
        )?;
        e.push(attr::USER_NAME, &name[..name_len])?;
        e.push_user_password(&sh.key, &pass[..pass_len.min(128)])?;
        e.push(attr::NAS_IP_ADDRESS, &[127, 0, 0, 1])?;
        let len = match e.finish_request(&sh.key) {
            Ok(p) => p.len(),
            Err(err) => {
                sh.release(held);
                return Err(err.into());
            }
        };
        Ok(Built::Request { len, auth, held })
    }
}

/// Copies `parts` one after another into `out`, truncating at its end; returns the length.
fn concat(out: &mut [u8], parts: &[&[u8]]) -> usize {
    let mut n = 0;
    for p in parts {
        let take = p.len().min(out.len() - n);
        out[n..n + take].copy_from_slice(&p[..take]);
        n += take;
    }
    n
}

/// What a reply said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Accept,
    Reject,
    Challenge,
    Invalid,
}

/// Checks a reply against the request's authenticator (Response Authenticator always,
/// Message-Authenticator when present).
fn classify(key: &ClientKey, reply: &[u8], request_auth: &[u8; 16]) -> Answer {
    let Ok(p) = Packet::decode(reply) else {
        return Answer::Invalid;
    };
    if !key.verify_response_authenticator(&p, request_auth) {
        return Answer::Invalid;
    }
    if p.message_authenticator().is_some() && !key.verify_message_authenticator(&p, request_auth) {
        return Answer::Invalid;
    }
    match p.code() {
        Code::AccessAccept => Answer::Accept,
        Code::AccessReject => Answer::Reject,
        Code::AccessChallenge => Answer::Challenge,
        _ => Answer::Invalid,
    }
}

/// What one worker measured.
#[derive(Debug, Default)]
struct WorkerResult {
    counts: Counts,
    latency: Histogram,
    /// CPU share of the busiest thread of this worker (0..1), over its own lifetime.
    thread_share: f64,
    /// Nanoseconds since start of the last reply or timeout.
    last_event_ns: u64,
    /// Nanoseconds since start when this worker stopped sending.
    send_end_ns: u64,
}

impl WorkerResult {
    fn count(&mut self, a: Answer) {
        match a {
            Answer::Accept => self.counts.accept += 1,
            Answer::Reject => self.counts.reject += 1,
            Answer::Challenge => self.counts.challenge += 1,
            Answer::Invalid => self.counts.invalid += 1,
        }
    }
}

fn socket_for(server: SocketAddr) -> Result<UdpSocket> {
    let local = if server.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    };
    let sock = UdpSocket::bind(local).context("bind a UDP socket")?;
    sock.connect(server).context("connect the UDP socket")?;
    sock.set_read_timeout(Some(Duration::from_millis(5)))?;
    Ok(sock)
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock
            | std::io::ErrorKind::TimedOut
            | std::io::ErrorKind::Interrupted
    )
}

/// Measures the CPU share of the calling thread between construction and `share()`.
struct ThreadClock {
    cpu: Option<Duration>,
    wall: Instant,
}

impl ThreadClock {
    fn start() -> ThreadClock {
        ThreadClock {
            cpu: procstat::thread_cpu(),
            wall: Instant::now(),
        }
    }

    fn share(&self) -> f64 {
        match (self.cpu, procstat::thread_cpu()) {
            (Some(a), Some(b)) => {
                (b.saturating_sub(a)).as_secs_f64() / self.wall.elapsed().as_secs_f64().max(1e-9)
            }
            _ => 0.0,
        }
    }
}

#[derive(Clone, Copy, Default)]
struct Slot {
    busy: bool,
    sent_ns: u64,
    auth: [u8; 16],
    /// The HOTP user this request holds.
    held: Option<usize>,
}

fn closed_worker(sh: &Shared, index: usize, outstanding: usize) -> Result<WorkerResult> {
    let clock = ThreadClock::start();
    let sock = socket_for(sh.opts.server)?;
    let mut r = WorkerResult::default();
    let mut b = Builder::new(sh.start.elapsed().as_nanos() as u64 ^ (index as u64) << 48);
    let mut slots = [Slot::default(); 256];
    let mut sbuf = [0u8; MAX_PACKET_LEN];
    let mut rbuf = [0u8; MAX_PACKET_LEN];
    let mut active = 0usize;
    let mut sending = true;
    let timeout_ns = sh.opts.timeout.as_nanos() as u64;
    let mut last_scan = 0u64;

    // Sends a request on `id`; false once this worker must stop sending.
    let mut send = |id: u8, slots: &mut [Slot; 256], r: &mut WorkerResult| -> Result<bool> {
        if !sh.may_send() || !sh.take_budget() {
            return Ok(false);
        }
        let (len, auth, held) = match b.build(sh, id, &mut sbuf)? {
            Built::Request { len, auth, held } => (len, auth, held),
            Built::Exhausted => {
                sh.exhausted.store(true, Ordering::Relaxed);
                sh.stop.store(true, Ordering::Relaxed);
                return Ok(false);
            }
            Built::NoFreeUser => {
                // `run` makes sure there are at least as many HOTP users as requests
                // outstanding, and this slot's user was just given back: a free user exists,
                // though other workers may have taken the ones a sweep passed. Sweep again.
                let mut tries = 0;
                loop {
                    std::thread::yield_now();
                    match b.build(sh, id, &mut sbuf)? {
                        Built::Request { len, auth, held } => break (len, auth, held),
                        _ if tries < 100 => tries += 1,
                        _ => {
                            r.counts.no_free_user += 1;
                            sh.stop.store(true, Ordering::Relaxed);
                            return Ok(false);
                        }
                    }
                }
            }
        };
        let now = sh.nanos();
        if sock.send(&sbuf[..len]).is_err() {
            r.counts.send_errors += 1;
        }
        r.counts.sent += 1;
        slots[usize::from(id)] = Slot {
            busy: true,
            sent_ns: now,
            auth,
            held,
        };
        Ok(true)
    };

    for id in 0..outstanding.min(255) {
        if !send(id as u8, &mut slots, &mut r)? {
            sending = false;
            break;
        }
        active += 1;
    }
    while active > 0 {
        if sending && !sh.may_send() {
            sending = false;
            r.send_end_ns = sh.nanos();
        }
        match sock.recv(&mut rbuf) {
            Ok(n) => {
                let now = sh.nanos();
                let id = rbuf.get(1).copied().unwrap_or(0);
                let slot = slots[usize::from(id)];
                if !slot.busy {
                    r.counts.stray += 1;
                    continue;
                }
                let answer = classify(&sh.key, &rbuf[..n], &slot.auth);
                if answer == Answer::Invalid && n >= 20 {
                    // Possibly a late reply to an earlier request on this id.
                    r.counts.invalid += 1;
                    continue;
                }
                r.count(answer);
                r.latency.record(now - slot.sent_ns);
                r.last_event_ns = now;
                slots[usize::from(id)].busy = false;
                sh.release(slot.held);
                active -= 1;
                if sending {
                    if send(id, &mut slots, &mut r)? {
                        active += 1;
                    } else {
                        sending = false;
                        r.send_end_ns = sh.nanos();
                    }
                }
            }
            Err(e) if is_timeout(&e) => {}
            Err(_) => {
                // ICMP port unreachable on a connected socket: the server is not there (yet).
                r.counts.send_errors += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let now = sh.nanos();
        if now - last_scan > 5_000_000 {
            last_scan = now;
            for id in 0..=255u8 {
                let s = slots[usize::from(id)];
                if s.busy && now - s.sent_ns > timeout_ns {
                    r.counts.timeouts += 1;
                    r.last_event_ns = now;
                    slots[usize::from(id)].busy = false;
                    // The server may or may not have used the counter: the next request of
                    // this user sends the one after it, which its look-ahead window accepts.
                    sh.release(s.held);
                    active -= 1;
                    if sending {
                        if send(id, &mut slots, &mut r)? {
                            active += 1;
                        } else {
                            sending = false;
                            r.send_end_ns = sh.nanos();
                        }
                    }
                }
            }
        }
    }
    if r.send_end_ns == 0 {
        r.send_end_ns = sh.nanos();
    }
    r.thread_share = clock.share();
    Ok(r)
}

/// One open-loop slot, shared by a worker's sender and receiver threads.
struct OpenSlot {
    /// Scheduled send time + 1 (0 = free).
    sent: AtomicU64,
    auth_lo: AtomicU64,
    auth_hi: AtomicU64,
    /// The HOTP user the request holds ([`NO_USER`] for none); written before `sent`.
    held: AtomicUsize,
}

const NO_USER: usize = usize::MAX;

impl Default for OpenSlot {
    fn default() -> OpenSlot {
        OpenSlot {
            sent: AtomicU64::new(0),
            auth_lo: AtomicU64::new(0),
            auth_hi: AtomicU64::new(0),
            held: AtomicUsize::new(NO_USER),
        }
    }
}

fn held_user(slot: &OpenSlot) -> Option<usize> {
    Some(slot.held.load(Ordering::Relaxed)).filter(|&u| u != NO_USER)
}

fn open_worker(sh: &Shared, index: usize, rate: f64) -> Result<WorkerResult> {
    let sock = socket_for(sh.opts.server)?;
    let rsock = sock.try_clone()?;
    let slots: Vec<OpenSlot> = (0..256).map(|_| OpenSlot::default()).collect();
    let sender_done = AtomicBool::new(false);
    let interval = 1e9 / rate.max(1e-3);
    let timeout_ns = sh.opts.timeout.as_nanos() as u64;

    std::thread::scope(|s| {
        let receiver = s.spawn(|| -> WorkerResult {
            let clock = ThreadClock::start();
            let mut r = WorkerResult::default();
            let mut rbuf = [0u8; MAX_PACKET_LEN];
            let mut done_at: Option<u64> = None;
            loop {
                match rsock.recv(&mut rbuf) {
                    Ok(n) => {
                        let now = sh.nanos();
                        let id = usize::from(rbuf.get(1).copied().unwrap_or(0));
                        let slot = &slots[id];
                        let sent = slot.sent.load(Ordering::Acquire);
                        if sent == 0 {
                            r.counts.stray += 1;
                            continue;
                        }
                        let mut auth = [0u8; 16];
                        auth[..8]
                            .copy_from_slice(&slot.auth_lo.load(Ordering::Relaxed).to_ne_bytes());
                        auth[8..]
                            .copy_from_slice(&slot.auth_hi.load(Ordering::Relaxed).to_ne_bytes());
                        let answer = classify(&sh.key, &rbuf[..n], &auth);
                        if answer == Answer::Invalid {
                            r.counts.invalid += 1;
                            continue;
                        }
                        // Read before the slot is freed (the sender may reuse it at once).
                        let held = held_user(slot);
                        if slot
                            .sent
                            .compare_exchange(sent, 0, Ordering::AcqRel, Ordering::Relaxed)
                            .is_err()
                        {
                            r.counts.stray += 1;
                            continue;
                        }
                        sh.release(held);
                        r.count(answer);
                        r.latency.record(now.saturating_sub(sent - 1));
                        r.last_event_ns = now;
                    }
                    Err(e) if is_timeout(&e) => {}
                    Err(_) => {
                        r.counts.send_errors += 1;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                if sender_done.load(Ordering::Acquire) {
                    let now = sh.nanos();
                    let since = *done_at.get_or_insert(now);
                    let busy = slots.iter().any(|s| s.sent.load(Ordering::Acquire) != 0);
                    if !busy || now - since > timeout_ns {
                        for s in &slots {
                            let held = held_user(s);
                            if s.sent.swap(0, Ordering::AcqRel) != 0 {
                                sh.release(held);
                                r.counts.timeouts += 1;
                                r.last_event_ns = now;
                            }
                        }
                        break;
                    }
                }
            }
            r.thread_share = clock.share();
            r
        });

        let sender = (|| -> Result<WorkerResult> {
            let clock = ThreadClock::start();
            let mut r = WorkerResult::default();
            let mut b = Builder::new(sh.start.elapsed().as_nanos() as u64 ^ (index as u64) << 48);
            let mut sbuf = [0u8; MAX_PACKET_LEN];
            let mut k: u64 = 0;
            let mut next_id = 0usize;
            let offset = interval * (index as f64) / (sh.opts.workers.max(1) as f64);
            'send: while sh.may_send() {
                let due = (offset + interval * k as f64) as u64;
                let now = sh.nanos();
                if due > now {
                    // Sleep, never spin: on a small machine a spinning pacer takes the CPU the
                    // server under test needs (it cost ~30 µs per request at 10,000/s). The
                    // timer's overshoot (tens of µs) counts in the latency, which is measured
                    // from the scheduled time.
                    std::thread::sleep(Duration::from_nanos(due - now));
                    continue;
                }
                k += 1;
                if !sh.take_budget() {
                    break;
                }
                // A free Identifier, or one whose request has timed out.
                let mut found = None;
                for probe in 0..256 {
                    let id = (next_id + probe) % 256;
                    let sent = slots[id].sent.load(Ordering::Acquire);
                    if sent == 0 {
                        found = Some(id);
                        break;
                    }
                    if now.saturating_sub(sent - 1) > timeout_ns
                        && slots[id]
                            .sent
                            .compare_exchange(sent, 0, Ordering::AcqRel, Ordering::Relaxed)
                            .is_ok()
                    {
                        // Only this thread writes a slot's user: safe to read after freeing it.
                        sh.release(held_user(&slots[id]));
                        r.counts.timeouts += 1;
                        found = Some(id);
                        break;
                    }
                }
                let Some(id) = found else {
                    r.counts.no_identifier += 1;
                    continue 'send;
                };
                next_id = (id + 1) % 256;
                let (len, auth, held) = match b.build(sh, id as u8, &mut sbuf)? {
                    Built::Request { len, auth, held } => (len, auth, held),
                    Built::Exhausted => {
                        sh.exhausted.store(true, Ordering::Relaxed);
                        sh.stop.store(true, Ordering::Relaxed);
                        break;
                    }
                    Built::NoFreeUser => {
                        r.counts.no_free_user += 1;
                        continue 'send;
                    }
                };
                let slot = &slots[id];
                slot.held.store(held.unwrap_or(NO_USER), Ordering::Relaxed);
                slot.auth_lo.store(
                    u64::from_ne_bytes(auth[..8].try_into().unwrap_or_default()),
                    Ordering::Relaxed,
                );
                slot.auth_hi.store(
                    u64::from_ne_bytes(auth[8..].try_into().unwrap_or_default()),
                    Ordering::Relaxed,
                );
                slot.sent.store(due + 1, Ordering::Release);
                if sock.send(&sbuf[..len]).is_err() {
                    r.counts.send_errors += 1;
                }
                r.counts.sent += 1;
                r.counts.max_lag_ns = r.counts.max_lag_ns.max(sh.nanos().saturating_sub(due));
            }
            r.send_end_ns = sh.nanos();
            r.thread_share = clock.share();
            Ok(r)
        })();
        sender_done.store(true, Ordering::Release);
        let recv = receiver
            .join()
            .map_err(|_| anyhow::anyhow!("receiver thread panicked"))?;
        let mut send = sender?;
        send.counts.add(&recv.counts);
        send.latency = recv.latency;
        send.last_event_ns = recv.last_event_ns;
        send.thread_share = send.thread_share.max(recv.thread_share);
        Ok(send)
    })
}

/// The token mode of an OTP population: all HOTP, or all TOTP with one period.
fn otp_mode(pop: &Population) -> Result<Option<OtpMode>> {
    let Population::Otp(users) = pop else {
        return Ok(None);
    };
    let Some(first) = users.first() else {
        return Ok(None);
    };
    if users.iter().any(|u| u.mode != first.mode) {
        bail!("every user must have a token of the same mode (HOTP, or TOTP with one period)");
    }
    Ok(Some(first.mode))
}

/// Runs one measurement and returns its report.
pub fn run(opts: Options) -> Result<Report> {
    if opts.population.is_empty() {
        bail!("no users to log in as");
    }
    if opts.workers == 0 {
        bail!("at least one worker is needed");
    }
    let (per_worker_concurrency, per_worker_rate) = match opts.load {
        Load::Closed { concurrency } => {
            let c = concurrency.div_ceil(opts.workers);
            if c == 0 || c > 255 {
                bail!(
                    "concurrency {concurrency} over {} workers gives {c} per socket; keep it 1..=255 \
                     (raise --threads)",
                    opts.workers
                );
            }
            (c, 0.0)
        }
        Load::Open { rate } => {
            if rate <= 0.0 {
                bail!("--rate must be positive");
            }
            (0, rate / opts.workers as f64)
        }
    };
    let mode = otp_mode(&opts.population)?;
    let correct = opts.passcodes == Passcodes::Correct;
    let totp_period = match mode {
        Some(OtpMode::Totp { period }) => Some(period),
        _ => None,
    };
    let hotp = mode == Some(OtpMode::Hotp);
    // The accept path of an OTP population uses codes up: only then does the state matter.
    let otp_accept = mode.is_some() && correct;
    if hotp && correct {
        let most_in_flight = per_worker_concurrency * opts.workers;
        if opts.population.len() < most_in_flight {
            bail!(
                "HOTP: {} users cannot keep {most_in_flight} requests outstanding (a user has at \
                 most one request in flight); populate more users or lower --concurrency",
                opts.population.len()
            );
        }
    }
    let mut warnings = Vec::new();
    if correct {
        if let (Load::Open { rate }, Some(period), Population::Otp(users)) =
            (opts.load, totp_period, &*opts.population)
        {
            let period = f64::from(period);
            let secs = match opts.stop {
                Stop::Duration(d) => d.as_secs_f64().min(period),
                Stop::Requests(n) => (n as f64 / rate).min(period),
            };
            let needed = (rate * secs).ceil() as usize;
            if needed > users.len() {
                warnings.push(format!(
                    "population too small: {rate:.0}/s for {secs:.0} s needs {needed} users within one \
                     {period:.0} s TOTP step, the file has {}; the run will stop when they are used up \
                     (or use HOTP: populate --mode hotp)",
                    users.len()
                ));
            }
        }
    }
    let saved = match (&opts.state_file, otp_accept) {
        (Some(path), true) => state::read(path)?,
        _ => None,
    };
    let mut resume = None;
    let mut saved_counters = HashMap::new();
    match saved {
        None => {}
        Some(State::Totp { step, next }) if !hotp => resume = Some((step, next)),
        Some(State::Hotp(m)) if hotp => saved_counters = m,
        Some(_) => bail!(
            "{}: the state file is for {} tokens, the population has {} tokens; use another file",
            opts.state_file
                .as_deref()
                .map_or_else(String::new, |p| p.display().to_string()),
            if hotp { "TOTP" } else { "HOTP" },
            if hotp { "HOTP" } else { "TOTP" },
        ),
    }
    let pool = match &*opts.population {
        Population::Otp(users) if hotp => Some(HotpPool::new(
            users
                .iter()
                .map(|u| saved_counters.get(&u.name).copied().unwrap_or(0)),
        )),
        _ => None,
    };
    let start = Instant::now();
    let sh = Shared {
        key: ClientKey::new(&opts.secret),
        cursor: StepCursor::new(opts.population.len(), resume),
        period: totp_period.unwrap_or(30),
        hotp: pool,
        round_robin: AtomicU64::new(0),
        budget: AtomicI64::new(match opts.stop {
            Stop::Requests(n) => i64::try_from(n).unwrap_or(i64::MAX),
            Stop::Duration(_) => i64::MAX,
        }),
        stop: AtomicBool::new(false),
        exhausted: AtomicBool::new(false),
        start,
        deadline: match opts.stop {
            Stop::Duration(d) => Some(start + d),
            Stop::Requests(_) => None,
        },
        opts,
    };
    let own0 = procstat::own_cpu();
    let srv0 = sh.opts.server_pid.and_then(procstat::process_cpu);
    let results: Mutex<Vec<Result<WorkerResult>>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for w in 0..sh.opts.workers {
            let sh = &sh;
            let results = &results;
            s.spawn(move || {
                let r = if per_worker_rate > 0.0 {
                    open_worker(sh, w, per_worker_rate)
                } else {
                    closed_worker(sh, w, per_worker_concurrency)
                };
                if r.is_err() {
                    sh.stop.store(true, Ordering::Relaxed);
                }
                if let Ok(mut v) = results.lock() {
                    v.push(r);
                }
            });
        }
    });
    let wall = start.elapsed();
    let own1 = procstat::own_cpu();
    let srv1 = sh.opts.server_pid.and_then(procstat::process_cpu);

    // Saved before any worker error is reported: the counters sent are used up either way.
    if let (Some(path), true) = (&sh.opts.state_file, otp_accept) {
        let state = match (&sh.hotp, &*sh.opts.population) {
            (Some(pool), Population::Otp(users)) => {
                let mut counters = saved_counters;
                for (u, c) in users.iter().zip(pool.counters()) {
                    if c > 0 {
                        counters.insert(u.name.clone(), c);
                    }
                }
                State::Hotp(counters)
            }
            _ => {
                let (step, next) = sh.cursor.position();
                State::Totp { step, next }
            }
        };
        state::write(path, &state)?;
    }

    let mut counts = Counts::default();
    let mut latency = Histogram::new();
    let mut busiest: f64 = 0.0;
    let mut end_ns = 0u64;
    let mut send_end_ns = 0u64;
    for r in results
        .into_inner()
        .map_err(|_| anyhow::anyhow!("worker result lock poisoned"))?
    {
        let r = r?;
        counts.add(&r.counts);
        latency.merge(&r.latency);
        busiest = busiest.max(r.thread_share);
        end_ns = end_ns.max(r.last_event_ns);
        send_end_ns = send_end_ns.max(r.send_end_ns);
    }
    if sh.exhausted.load(Ordering::Relaxed) {
        warnings.push(format!(
            "population exhausted: all {} users were used in the current TOTP step, so the run \
             stopped early after {:.1} s; populate more users (rate × 30 s), run for less time, \
             or use HOTP (populate --mode hotp)",
            sh.opts.population.len(),
            send_end_ns as f64 / 1e9
        ));
    }
    let elapsed = Duration::from_nanos(end_ns.max(send_end_ns).max(1));
    Ok(Report::build(
        &sh.opts,
        counts,
        &latency,
        elapsed,
        Duration::from_nanos(send_end_ns.max(1)),
        wall,
        own0.zip(own1).map(|(a, b)| b.saturating_sub(a)),
        srv0.zip(srv1).map(|(a, b)| b.saturating_sub(a)),
        busiest,
        warnings,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_cursor_hands_out_each_user_once_per_step_and_resumes() {
        let c = StepCursor::new(3, None);
        assert_eq!(c.take(100), Some((0, 100)));
        assert_eq!(c.take(100), Some((1, 100)));
        assert_eq!(c.take(100), Some((2, 100)));
        assert_eq!(c.take(100), None);
        assert_eq!(c.take(101), Some((0, 101)));
        // A thread that read the clock just before the step changed follows the cursor.
        assert_eq!(c.take(100), Some((1, 101)));
        let resumed = StepCursor::new(3, Some(c.position()));
        assert_eq!(resumed.take(101), Some((2, 101)));
        assert_eq!(resumed.take(101), None);
    }

    #[test]
    fn concat_truncates_at_the_buffer_end() {
        let mut out = [0u8; 5];
        assert_eq!(concat(&mut out, &[b"abc", b"defg"]), 5);
        assert_eq!(&out, b"abcde");
    }
}
