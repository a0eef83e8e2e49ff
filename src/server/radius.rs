//! The RADIUS front end: UDP sockets, client lookup, Message-Authenticator policy, the duplicate
//! cache, Status-Server, and rendering engine decisions as Access-Accept/Reject/Challenge.
//!
//! Order per datagram (SPEC §10 steps 1–2): known client → decode → Message-Authenticator (verified
//! when present; required by client policy, for Status-Server, EAP-Message and, for exempt clients,
//! Proxy-State) → duplicate cache (RFC 5080: same source address and port, Identifier and Request
//! Authenticator get the same bytes; one still in flight is dropped) → in-flight limit → engine
//! (on the receive loop when the user is cached and idle, else on a task) → group commit → reply
//! with Message-Authenticator first, sent from the commit's completion (`ReplyTo`). Every drop
//! is counted with its reason; no input panics.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use subtle::ConstantTimeEq;
use tokio::net::UdpSocket;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::engine::{Decision, Reason};
use crate::metrics::{ClientMetrics, Metrics, Protocol};
use crate::radius::{attr, ClientKey, Code, DecodeError, Encoder, Packet, MAX_PACKET_LEN};
use crate::stats::{DropReason, Stats};

use super::dupcache::{Claim, DupCache};
use super::service::{AuthDone, AuthError, AuthResult, AuthService};

/// Receive buffer asked for each RADIUS socket: room for a few thousand datagrams, so a short
/// pause of the receive loop (a slow commit) does not make the kernel drop requests. Linux caps
/// it at `net.core.rmem_max` unless the process may override that.
const RECV_BUFFER_BYTES: usize = 4 << 20;

/// Binds the RADIUS sockets of one listen address: one per available core (at most 4), all on
/// the same port with `SO_REUSEPORT`, so the kernel spreads clients over several receive loops
/// (it keeps each client's address and port on one socket, so its retransmissions meet the same
/// loop). The first socket fixes the port when `addr` asks for port 0. Each socket gets a
/// `RECV_BUFFER_BYTES` receive buffer (best effort). The gateway claims the address first
/// ([`super::listen::claim_udp`]): `SO_REUSEPORT` alone would let another process join the port.
pub fn bind_sockets(addr: SocketAddr) -> std::io::Result<Vec<UdpSocket>> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut sockets = Vec::with_capacity(cores.min(4));
    let mut bound = addr;
    for _ in 0..cores.clamp(1, 4) {
        let sock = socket2::Socket::new(
            socket2::Domain::for_address(bound),
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )?;
        sock.set_reuse_port(true)?;
        // Best effort: a smaller buffer still works.
        let _ = sock.set_recv_buffer_size(RECV_BUFFER_BYTES);
        sock.set_nonblocking(true)?;
        sock.bind(&bound.into())?;
        if bound.port() == 0 {
            bound = sock
                .local_addr()?
                .as_socket()
                .ok_or_else(|| std::io::Error::other("bound socket has no IP address"))?;
        }
        sockets.push(UdpSocket::from_std(sock.into())?);
    }
    Ok(sockets)
}

/// One configured client, ready for the packet path.
pub struct ClientEntry {
    /// Name (logs, audit).
    pub name: String,
    net: ipnet::IpNet,
    key: ClientKey,
    /// After a reload changed this client's secret: the old one, accepted until `previous_until`
    /// (Unix seconds) for requests whose Message-Authenticator verifies under it, so requests
    /// already on the wire at the switch are answered rather than dropped.
    previous: Option<(ClientKey, i64)>,
    /// The configuration this entry was built from (reply profiles, the reject prompt): a
    /// request is answered under the configuration in force when it arrived.
    config: Arc<Config>,
    require_message_authenticator: bool,
    profile: Option<Arc<Vec<Vec<u8>>>>,
    metrics: Arc<ClientMetrics>,
    status_second: AtomicU64,
    status_count: AtomicU32,
}

impl ClientEntry {
    /// The key that verified the request: the current one, or the previous one (`previous`).
    fn key_for(&self, previous: bool) -> &ClientKey {
        match (&self.previous, previous) {
            (Some((key, _)), true) => key,
            _ => &self.key,
        }
    }

    /// Whether the previous secret is still accepted at `now` and verifies this request.
    fn previous_verifies(&self, pkt: &Packet<'_>, now: i64) -> bool {
        match &self.previous {
            Some((key, until)) if now <= *until => {
                key.verify_message_authenticator(pkt, pkt.authenticator())
            }
            _ => false,
        }
    }
}

/// Clients by prefix, most specific first.
pub struct Clients {
    entries: Vec<Arc<ClientEntry>>,
}

impl Clients {
    /// Builds the table from the validated config.
    pub fn from_config(config: &Arc<Config>, metrics: &Metrics) -> Clients {
        Self::reloaded(config, metrics, None, 0)
    }

    /// Builds the table from a reloaded config; a client (by name) whose secret changed keeps
    /// its old key from `old` until `grace_until`.
    fn reloaded(
        config: &Arc<Config>,
        metrics: &Metrics,
        old: Option<&Clients>,
        grace_until: i64,
    ) -> Clients {
        let previous = |c: &crate::config::Client| {
            let o = old?.entries.iter().find(|e| e.name == c.name)?;
            let was = o.config.clients.iter().find(|x| x.name == c.name)?;
            if bool::from(was.secret.0.ct_eq(&c.secret.0)) {
                return None;
            }
            Some((o.key.clone(), grace_until))
        };
        let mut entries: Vec<Arc<ClientEntry>> = config
            .clients
            .iter()
            .map(|c| {
                Arc::new(ClientEntry {
                    name: c.name.clone(),
                    net: c.net,
                    key: ClientKey::new(&c.secret.0),
                    previous: previous(c),
                    config: config.clone(),
                    require_message_authenticator: c.require_message_authenticator,
                    profile: c
                        .profile
                        .as_ref()
                        .and_then(|p| config.profiles.get(p))
                        .map(|a| Arc::new(a.clone())),
                    metrics: metrics.client(&c.name),
                    status_second: AtomicU64::new(0),
                    status_count: AtomicU32::new(0),
                })
            })
            .collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.net.prefix_len()));
        Clients { entries }
    }

    /// The most specific client containing `ip` (IPv4-mapped IPv6 sources match IPv4 prefixes).
    pub fn find(&self, ip: IpAddr) -> Option<&Arc<ClientEntry>> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.entries.iter().find(|e| e.net.contains(&ip))
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct DupKey {
    src: SocketAddr,
    identifier: u8,
    authenticator: [u8; 16],
}

type DupSlot = Arc<OnceLock<Vec<u8>>>;

/// Shared state of the RADIUS front end.
pub struct Radius {
    /// Swapped whole by a reload; loaded once per datagram.
    clients: ArcSwap<Clients>,
    auth: Arc<AuthService>,
    stats: Arc<Stats>,
    dup: DupCache<DupKey, DupSlot>,
    in_flight: Arc<Semaphore>,
    status_per_second: u32,
    previous_secret_grace: i64,
}

impl Radius {
    /// Builds the front end.
    pub fn new(
        config: Arc<Config>,
        auth: Arc<AuthService>,
        stats: Arc<Stats>,
        metrics: &Metrics,
    ) -> Radius {
        let r = &config.file.radius;
        Radius {
            clients: ArcSwap::from_pointee(Clients::from_config(&config, metrics)),
            auth,
            stats,
            dup: DupCache::new(Duration::from_secs(r.duplicate_ttl_secs), 1_000_000),
            in_flight: Arc::new(Semaphore::new(r.max_in_flight)),
            status_per_second: r.status_server_per_second,
            previous_secret_grace: i64::try_from(r.previous_secret_grace_secs).unwrap_or(0),
        }
    }

    /// Puts the clients of a reloaded configuration in force (requests already received finish
    /// with the entry they were received with). Returns how many secrets changed.
    pub fn reload_clients(&self, config: &Arc<Config>, metrics: &Metrics) -> usize {
        // No grace: the previous key is kept but never verifies.
        let until = match self.previous_secret_grace {
            0 => i64::MIN,
            g => self.auth.clock().now() + g,
        };
        let table = Clients::reloaded(config, metrics, Some(&self.clients.load()), until);
        let changed = table
            .entries
            .iter()
            .filter(|e| e.previous.is_some())
            .count();
        self.clients.store(Arc::new(table));
        changed
    }

    /// Reads datagrams from `sock` until `cancel` fires; work is spawned on `tracker`.
    pub async fn serve(
        self: Arc<Self>,
        sock: Arc<UdpSocket>,
        cancel: CancellationToken,
        tracker: TaskTracker,
    ) {
        let mut buf = vec![0u8; MAX_PACKET_LEN + 1];
        loop {
            let (n, src) = tokio::select! {
                _ = cancel.cancelled() => return,
                r = sock.recv_from(&mut buf) => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // ICMP errors from earlier sends surface here on some systems; keep going.
                        tracing::debug!(error = %e, "recv_from");
                        continue;
                    }
                },
            };
            let datagram = buf.get(..n).unwrap_or_default();
            self.clone().on_datagram(datagram, src, &sock, &tracker);
        }
    }

    fn on_datagram(
        self: Arc<Self>,
        datagram: &[u8],
        src: SocketAddr,
        sock: &Arc<UdpSocket>,
        tracker: &TaskTracker,
    ) {
        let Some(client) = self.clients.load().find(src.ip()).cloned() else {
            self.stats.dropped(DropReason::UnknownClient);
            return;
        };
        let pkt = match Packet::decode(datagram) {
            Ok(p) => p,
            Err(DecodeError::MessageAuthenticatorRequired) => {
                // Status-Server or EAP-Message without Message-Authenticator.
                self.stats.dropped(DropReason::MissingMessageAuthenticator);
                return;
            }
            Err(e) => {
                self.stats.malformed(e.reason());
                return;
            }
        };
        let code = pkt.code();
        if code != Code::AccessRequest && code != Code::StatusServer {
            self.stats.dropped(DropReason::UnsupportedCode);
            return;
        }
        // Whether the request verified only under the client's previous secret (after a reload).
        let mut previous = false;
        match pkt.message_authenticator() {
            Some(_) => {
                if !client
                    .key
                    .verify_message_authenticator(&pkt, pkt.authenticator())
                {
                    previous = client.previous_verifies(&pkt, self.auth.clock().now());
                    if !previous {
                        self.stats.dropped(DropReason::BadMessageAuthenticator);
                        return;
                    }
                }
            }
            None => {
                let required = code == Code::StatusServer
                    || client.require_message_authenticator
                    || pkt.first(attr::EAP_MESSAGE).is_some()
                    || pkt.first(attr::PROXY_STATE).is_some();
                if required {
                    self.stats.dropped(DropReason::MissingMessageAuthenticator);
                    return;
                }
            }
        }
        if code == Code::StatusServer {
            self.status_server(&client, previous, &pkt, src, sock);
            return;
        }
        // retransmissions get the cached bytes and are not verified again.
        let key = DupKey {
            src,
            identifier: pkt.identifier(),
            authenticator: *pkt.authenticator(),
        };
        let started = Instant::now();
        let slot = match self
            .dup
            .claim(key.clone(), started, || Arc::new(OnceLock::new()))
        {
            Claim::Fresh(slot) => slot,
            Claim::Existing(slot) => {
                match slot.get() {
                    Some(reply) => {
                        self.stats.duplicates_resent.fetch_add(1, Ordering::Relaxed);
                        let _ = sock.try_send_to(reply, src);
                    }
                    None => self.stats.dropped(DropReason::DuplicateInFlight),
                }
                return;
            }
        };
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            self.stats.dropped(DropReason::Overload);
            self.dup.remove(&key);
            return;
        };
        let reply_to = ReplyTo {
            radius: Arc::clone(&self),
            client,
            previous,
            request: Arc::from(datagram),
            src,
            sock: Arc::clone(sock),
            slot,
            key,
            started,
            tracker: tracker.clone(),
            _permit: permit,
        };
        reply_to.start();
    }

    fn status_server(
        &self,
        client: &ClientEntry,
        previous: bool,
        pkt: &Packet<'_>,
        src: SocketAddr,
        sock: &UdpSocket,
    ) {
        let second = u64::try_from(self.auth.clock().now()).unwrap_or(0);
        if client.status_second.swap(second, Ordering::Relaxed) != second {
            client.status_count.store(0, Ordering::Relaxed);
        }
        if client.status_count.fetch_add(1, Ordering::Relaxed) >= self.status_per_second {
            self.stats.dropped(DropReason::StatusRateLimited);
            return;
        }
        let mut buf = [0u8; 256];
        let Ok(mut enc) = Encoder::reply(&mut buf, Code::AccessAccept, pkt.identifier()) else {
            return;
        };
        let _ = enc.push(attr::REPLY_MESSAGE, b"tokengate up");
        if let Ok(reply) = enc.finish_reply(client.key_for(previous), pkt.authenticator()) {
            self.stats.status_server.fetch_add(1, Ordering::Relaxed);
            let _ = sock.try_send_to(reply, src);
        }
    }

    /// Encodes the reply to a decided Access-Request (Message-Authenticator first). `None` =
    /// drop (the reply would not fit).
    fn render(
        &self,
        client: &ClientEntry,
        previous: bool,
        pkt: &Packet<'_>,
        result: &AuthResult,
    ) -> Option<Vec<u8>> {
        let out = &result.outcome;
        client.metrics.record(Protocol::Radius, out);
        if matches!(out.reason, Reason::Replay | Reason::ReplayRace) {
            self.stats.replays.fetch_add(1, Ordering::Relaxed);
        }
        // On the stack: the reply is copied out once, at its real length, for the send and the
        // duplicate cache.
        let mut buf = [0u8; MAX_PACKET_LEN];
        let code = match out.decision {
            Decision::Accept => Code::AccessAccept,
            Decision::Reject => Code::AccessReject,
            Decision::Challenge { .. } => Code::AccessChallenge,
        };
        let mut enc = Encoder::reply(&mut buf, code, pkt.identifier()).ok()?;
        let r = (|| {
            match &out.decision {
                Decision::Accept => {
                    self.stats.accepts.fetch_add(1, Ordering::Relaxed);
                    let profile = result
                        .user_profile
                        .as_ref()
                        .and_then(|p| client.config.profiles.get(p))
                        .or(client.profile.as_deref());
                    for a in profile.into_iter().flatten() {
                        enc.push_raw(a)?;
                    }
                }
                Decision::Reject => {
                    self.stats.rejects.fetch_add(1, Ordering::Relaxed);
                    enc.push_split(
                        attr::REPLY_MESSAGE,
                        client.config.file.prompts.reject.as_bytes(),
                    )?;
                }
                Decision::Challenge { state, prompt, .. } => {
                    self.stats.challenges.fetch_add(1, Ordering::Relaxed);
                    enc.push(attr::STATE, state.as_bytes())?;
                    enc.push_split(attr::REPLY_MESSAGE, prompt.as_bytes())?;
                    // Prompt = No-Echo: the answer is a PIN or a tokencode.
                    enc.push(attr::PROMPT, &0u32.to_be_bytes())?;
                }
            }
            // Proxy-State is echoed in order (RFC 2865 §5.33).
            for (t, v) in pkt.attributes() {
                if t == attr::PROXY_STATE {
                    enc.push(attr::PROXY_STATE, v)?;
                }
            }
            Ok::<(), crate::radius::EncodeError>(())
        })();
        if r.is_err() {
            tracing::warn!(client = %client.name, "reply did not fit in a RADIUS packet; dropped");
            return None;
        }
        enc.finish_reply(client.key_for(previous), pkt.authenticator())
            .ok()
            .map(<[u8]>::to_vec)
    }
}

/// One Access-Request on its way: everything needed to answer it once the decision's writes
/// have committed, wherever that happens (the writer task, usually).
struct ReplyTo {
    radius: Arc<Radius>,
    client: Arc<ClientEntry>,
    /// The request verified only under the client's previous secret.
    previous: bool,
    request: Arc<[u8]>,
    src: SocketAddr,
    sock: Arc<UdpSocket>,
    slot: DupSlot,
    key: DupKey,
    started: Instant,
    /// Where a request that has to wait continues.
    tracker: TaskTracker,
    /// Held until the reply is sent (`[radius] max_in_flight`).
    _permit: OwnedSemaphorePermit,
}

/// The credentials of a decoded Access-Request.
struct Credentials<'a> {
    user: &'a str,
    passcode: &'a [u8],
    state: Option<&'a str>,
}

/// User-Name, the unhidden User-Password and State; `None` (counted as a bad request) when
/// there is nothing to verify.
fn credentials<'a>(
    key: &ClientKey,
    pkt: &Packet<'a>,
    pw: &'a mut [u8; 128],
    stats: &Stats,
) -> Option<Credentials<'a>> {
    let user = pkt
        .first(attr::USER_NAME)
        .and_then(|u| std::str::from_utf8(u).ok())
        .filter(|u| !u.is_empty());
    let (Some(user), Some(hidden)) = (user, pkt.first(attr::USER_PASSWORD)) else {
        // No User-Name, or not PAP (CHAP is not offered yet): nothing we can verify.
        stats.dropped(DropReason::BadRequest);
        return None;
    };
    let Ok(passcode) = key.unhide_password(pkt.authenticator(), hidden, pw) else {
        stats.dropped(DropReason::BadRequest);
        return None;
    };
    let state = match pkt.first(attr::STATE) {
        None => None,
        // A State we could never have issued (not UTF-8) is answered like an unknown one.
        Some(s) => Some(std::str::from_utf8(s).unwrap_or("\u{0}invalid")),
    };
    Some(Credentials {
        user,
        passcode,
        state,
    })
}

impl ReplyTo {
    /// Decides the request at once when the user is cached and idle (the reply is sent from the
    /// writer's completion, no task); otherwise continues on a task that waits for what is
    /// missing.
    fn start(self) {
        let request = Arc::clone(&self.request);
        let Ok(pkt) = Packet::decode(&request) else {
            return self.finish(None);
        };
        let client = Arc::clone(&self.client);
        let key = client.key_for(self.previous);
        let mut pw = [0u8; 128];
        let Some(c) = credentials(key, &pkt, &mut pw, &self.radius.stats) else {
            return self.finish(None);
        };
        let radius = Arc::clone(&self.radius);
        let tracker = self.tracker.clone();
        let done: AuthDone = Box::new(move |result| self.finish(Some(result)));
        let waiting =
            radius
                .auth
                .authenticate_now(c.user, c.passcode, c.state, &client.name, "radius", done);
        pw.fill(0);
        if let Err(done) = waiting {
            let previous = key.clone();
            tracker.spawn(async move {
                let mut pw = [0u8; 128];
                let Ok(pkt) = Packet::decode(&request) else {
                    return;
                };
                let Some(c) = credentials(&previous, &pkt, &mut pw, &radius.stats) else {
                    return;
                };
                radius
                    .auth
                    .authenticate_then(
                        c.user,
                        c.passcode,
                        None,
                        c.state,
                        &client.name,
                        "radius",
                        done,
                    )
                    .await;
                pw.fill(0);
            });
        }
    }

    /// Renders and sends the reply (or drops the request), fills the duplicate cache slot.
    fn finish(self, result: Option<Result<AuthResult, AuthError>>) {
        let radius = &self.radius;
        let reply = match result {
            None => None,
            Some(Ok(result)) => Packet::decode(&self.request)
                .ok()
                .and_then(|pkt| radius.render(&self.client, self.previous, &pkt, &result)),
            Some(Err(e)) => {
                tracing::warn!(error = %e, client = %self.client.name, "request dropped");
                radius.stats.dropped(DropReason::StoreError);
                None
            }
        };
        let Some(reply) = reply else {
            radius.dup.remove(&self.key);
            return;
        };
        self.client
            .metrics
            .observe_latency(Protocol::Radius, self.started);
        // the slot is filled before the reply leaves. Filled after, a NAS that retransmits
        // the moment the reply arrives could still find the slot empty and have its
        // retransmission dropped as "in flight".
        let reply = self.slot.get_or_init(|| reply);
        match self.sock.try_send_to(reply, self.src) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                // The socket's send buffer is full: wait for room on a task of its own.
                let sock = Arc::clone(&self.sock);
                let (src, bytes) = (self.src, reply.clone());
                tokio::spawn(async move {
                    if let Err(e) = sock.send_to(&bytes, src).await {
                        tracing::debug!(error = %e, %src, "send_to");
                    }
                });
            }
            Err(e) => tracing::debug!(error = %e, src = %self.src, "send_to"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bind_sockets_shares_one_port_and_every_datagram_reaches_one_socket() {
        let sockets = bind_sockets("127.0.0.1:0".parse().unwrap()).unwrap();
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(sockets.len(), cores.clamp(1, 4));
        let port = sockets[0].local_addr().unwrap().port();
        assert_ne!(port, 0);
        for s in &sockets {
            assert_eq!(s.local_addr().unwrap().port(), port);
        }
        // Datagrams from several client ports each arrive exactly once on some socket.
        let mut sent = Vec::new();
        for i in 0..8u8 {
            let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            client.send_to(&[i], ("127.0.0.1", port)).unwrap();
            sent.push(client);
        }
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while got.len() < 8 && std::time::Instant::now() < deadline {
            for s in &sockets {
                let mut buf = [0u8; 4];
                if let Ok((1, _)) = s.try_recv_from(&mut buf) {
                    got.push(buf[0]);
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        got.sort_unstable();
        assert_eq!(got, (0..8).collect::<Vec<u8>>());
        // A port taken by a socket without SO_REUSEPORT is refused, not shared.
        let plain = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(bind_sockets(plain.local_addr().unwrap()).is_err());
    }
}
