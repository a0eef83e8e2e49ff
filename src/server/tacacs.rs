//! The TACACS+ front end over plain TCP (RFC 8907) and TLS 1.3 (RFC 9887): listeners, client
//! lookup, framing, key rollover (plain) or clear bodies (TLS), and rendering engine decisions
//! as authentication REPLYs.
//!
//! Per connection (one task, bounded by `max_connections`): known client by source address
//! (otherwise close and count) → read the 12-byte header → check the body cap → read exactly
//! the body → de-obfuscate with the client's keys in order (a clear body is refused) → feed the
//! sans-IO [`Connection`] → act on the [`Event`]. ASCII login and PAP go to
//! [`AuthService::authenticate`] exactly like RADIUS; a `Decision::Challenge` becomes a GETPASS
//! whose answer is sent back with the kept State, so Next Tokencode and New PIN rounds work here
//! unchanged. Authorization answers from `[tacacs.authorization.*]`; accounting records are
//! stored in the audit log before SUCCESS is sent. Every closed connection is counted with a
//! reason in [`TacacsStats`]. Cancellation is only observed while waiting for input, so a
//! request being decided is still answered during shutdown. On the TLS listener any client
//! whose address matches is looked up (its certificate is the credential), the TLS 1.3
//! handshake then verifies the client certificate (rustls `ServerConfig` built at config load),
//! and bodies must be clear (obfuscated ones are refused inside TLS).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, EnablePolicy, Tacacs as TacacsConfig};
use crate::engine::{ChapResponse, Decision, Reason};
use crate::metrics::{ClientMetrics, Metrics, Protocol};
use crate::model::AuditRecord;
use crate::stats::{Stats, TacacsStats};
use crate::store::Store;
use crate::tacacs::{
    deobfuscate_with_keys, AcctFlags, AcctReply, AcctStatus, Answer, Args, AuthorResponse,
    AuthorStatus, Body, Connection, ConnectionError, ConnectionLimits, Credential, Event, Header,
    Obfuscation, SessionError, SessionLimits, HEADER_LEN, MAX_BODY_LEN,
};
use crate::tacacs::{policy, AuthenService, AuthenType, StartInfo, Verdict};

use super::service::AuthService;

/// Prompt of the GETUSER reply.
const USER_PROMPT: &[u8] = b"Username: ";
/// Prompt of the first GETPASS reply.
const PASS_PROMPT: &[u8] = b"Passcode: ";
/// server_msg of every failed CHAP login.
const CHAP_FAIL: &str =
    "Access denied. CHAP works only with tokens without a PIN (tokencode alone); use PAP or ASCII login for PIN + tokencode.";
/// Largest reply we encode (prompts and authorization arguments are bounded by config).
const REPLY_BUF: usize = 16 * 1024;

/// One client that speaks TACACS+ (has at least one key).
struct TacClient {
    name: String,
    net: ipnet::IpNet,
    keys: Vec<Vec<u8>>,
    metrics: Arc<ClientMetrics>,
}

/// Shared state of the TACACS+ front end.
pub struct Tacacs {
    /// Swapped whole by a reload; read once per connection (a connection keeps the keys it was
    /// accepted with).
    clients: arc_swap::ArcSwap<Vec<Arc<TacClient>>>,
    auth: Arc<AuthService>,
    store: Store,
    stats: Arc<Stats>,
    limits: ConnectionLimits,
    idle: Duration,
    connections: Arc<Semaphore>,
    enable_policy: EnablePolicy,
}

/// Why a connection ended (a bounded label for [`TacacsStats::closed`]).
type CloseReason = &'static str;

impl Tacacs {
    /// Builds the front end from the validated `[tacacs]` section and the clients with keys.
    pub fn new(
        config: Arc<Config>,
        tacacs: &TacacsConfig,
        auth: Arc<AuthService>,
        store: Store,
        stats: Arc<Stats>,
        metrics: &Metrics,
    ) -> Tacacs {
        Tacacs {
            clients: arc_swap::ArcSwap::from_pointee(Self::clients(&config, metrics)),
            auth,
            store,
            stats,
            limits: ConnectionLimits {
                max_sessions: tacacs.max_sessions_per_connection,
                allow_single_connect: true,
                session: SessionLimits {
                    max_rounds: tacacs.max_rounds,
                },
            },
            idle: tacacs.idle_timeout,
            connections: Arc::new(Semaphore::new(tacacs.max_connections)),
            enable_policy: tacacs.enable.policy,
        }
    }

    /// Puts the clients (and keys) of a reloaded configuration in force for new connections.
    pub fn reload_clients(&self, config: &Config, metrics: &Metrics) {
        self.clients.store(Arc::new(Self::clients(config, metrics)));
    }

    fn clients(config: &Config, metrics: &Metrics) -> Vec<Arc<TacClient>> {
        // Every client: over plain TCP only those with keys are served; over TLS any client whose
        // address matches (its certificate is the credential, RFC 9887).
        let mut clients: Vec<Arc<TacClient>> = config
            .clients
            .iter()
            .map(|c| {
                Arc::new(TacClient {
                    name: c.name.clone(),
                    net: c.net,
                    keys: c.tacacs_keys.iter().map(|k| k.0.clone()).collect(),
                    metrics: metrics.client(&c.name),
                })
            })
            .collect();
        clients.sort_by_key(|c| std::cmp::Reverse(c.net.prefix_len()));
        clients
    }

    /// The client for a source address: with a TACACS+ key for plain TCP, any for TLS.
    fn find(&self, ip: IpAddr, tls: bool) -> Option<Arc<TacClient>> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.clients
            .load()
            .iter()
            .find(|c| c.net.contains(&ip) && (tls || !c.keys.is_empty()))
            .cloned()
    }

    /// The `[tacacs.enable]` check for `user` as sent (normalised here).
    fn enable_allows(&self, user: &str, priv_lvl: u8) -> bool {
        let name = self.auth.normalize(user);
        self.auth
            .config()
            .tacacs
            .as_ref()
            .is_some_and(|t| t.enable_allows(&name, priv_lvl))
    }

    fn tstats(&self) -> &TacacsStats {
        &self.stats.tacacs
    }

    /// Accepts connections on `listener` until `cancel` fires; each is served on `tracker`.
    /// With `tls`, each connection first completes a TLS 1.3 handshake with a verified client
    /// certificate (RFC 9887); nothing else is read on that port.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<TlsAcceptor>,
        cancel: CancellationToken,
        tracker: TaskTracker,
    ) {
        loop {
            let (stream, src) = tokio::select! {
                _ = cancel.cancelled() => return,
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors and the like: back off a little, keep going.
                        tracing::warn!(error = %e, "TACACS+ accept");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Some(client) = self.find(src.ip(), tls.is_some()) else {
                self.tstats().closed("unknown_client");
                drop(stream);
                continue;
            };
            let Ok(permit) = self.connections.clone().try_acquire_owned() else {
                self.tstats().closed("too_many_connections");
                drop(stream);
                continue;
            };
            self.tstats().connections.fetch_add(1, Ordering::Relaxed);
            let this = self.clone();
            let cancel = cancel.clone();
            let tls = tls.clone();
            tracker.spawn(async move {
                let _permit = permit;
                let reason = match tls {
                    None => this.connection(stream, &client, &cancel, false).await,
                    Some(acceptor) => match this.handshake(&acceptor, stream, &cancel).await {
                        Ok(stream) => this.connection(stream, &client, &cancel, true).await,
                        Err(reason) => reason,
                    },
                };
                tracing::debug!(client = %client.name, reason, "TACACS+ connection closed");
                this.tstats().closed(reason);
            });
        }
    }

    /// The TLS handshake, bounded by the idle timeout; a failure is a counted reason.
    async fn handshake(
        &self,
        acceptor: &TlsAcceptor,
        stream: TcpStream,
        cancel: &CancellationToken,
    ) -> Result<tokio_rustls::server::TlsStream<TcpStream>, CloseReason> {
        tokio::select! {
            _ = cancel.cancelled() => Err("shutdown"),
            r = tokio::time::timeout(self.idle, acceptor.accept(stream)) => match r {
                Err(_) => Err("tls_handshake_timeout"),
                Ok(Ok(s)) => Ok(s),
                Ok(Err(e)) => {
                    let reason = tls_failure(&e);
                    tracing::debug!(error = %e, reason, "TACACS+ TLS handshake failed");
                    Err(reason)
                }
            },
        }
    }

    /// Reads exactly `buf.len()` bytes, or says why not.
    async fn read_exact<S: AsyncRead + Unpin>(
        &self,
        stream: &mut S,
        buf: &mut [u8],
        cancel: &CancellationToken,
        eof: CloseReason,
    ) -> Result<(), CloseReason> {
        tokio::select! {
            _ = cancel.cancelled() => Err("shutdown"),
            r = tokio::time::timeout(self.idle, stream.read_exact(buf)) => match r {
                Err(_) => Err("idle_timeout"),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(eof),
                Ok(Err(_)) => Err("io_error"),
                Ok(Ok(_)) => Ok(()),
            },
        }
    }

    /// Serves one connection; returns why it ended. Inside TLS bodies travel clear (the
    /// UNENCRYPTED flag set) and an obfuscated packet ends the connection (RFC 9887 §4).
    async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        mut stream: S,
        client: &TacClient,
        cancel: &CancellationToken,
        tls: bool,
    ) -> CloseReason {
        let keys: Vec<&[u8]> = client.keys.iter().map(Vec::as_slice).collect();
        let mut conn = Connection::new(self.limits);
        // Challenge State per session (Next Tokencode, New PIN); bounded by the session cap.
        let mut states: HashMap<u32, String> = HashMap::new();
        let mut out = vec![0u8; REPLY_BUF];
        loop {
            let mut head = [0u8; HEADER_LEN];
            if let Err(r) = self
                .read_exact(&mut stream, &mut head, cancel, "client_closed")
                .await
            {
                return r;
            }
            let header = match Header::decode_with_limit(&head, MAX_BODY_LEN) {
                Ok(h) => h,
                Err(e) => return e.reason(),
            };
            if !header.from_client() {
                return "server_seq_no";
            }
            let mut body = vec![0u8; header.body_len()];
            if let Err(r) = self
                .read_exact(&mut stream, &mut body, cancel, "truncated")
                .await
            {
                return r;
            }
            let obfuscation = if tls {
                if header.is_obfuscated() {
                    return "obfuscated_in_tls";
                }
                Obfuscation::Clear
            } else {
                if !header.is_obfuscated() {
                    return "unencrypted_refused";
                }
                let Some(key_index) = deobfuscate_with_keys(&keys, &header, &mut body) else {
                    return "bad_key";
                };
                Obfuscation::Key(keys.get(key_index).copied().unwrap_or_default())
            };
            let decoded = match Body::decode(&header, &body) {
                Ok(b) => b,
                Err(e) => return e.reason(),
            };
            let session_id = header.session_id;
            let plan = match conn.receive(&header, decoded) {
                Ok(event) => plan_of(event, &mut states, session_id, self.enable_policy),
                Err(e) => {
                    tracing::debug!(client = %client.name, error = %e, "TACACS+ packet refused");
                    return e.reason();
                }
            };
            body.fill(0);
            let answer = match plan {
                Plan::Silent => {
                    states.remove(&session_id);
                    continue;
                }
                Plan::Answer(a) => a,
                Plan::Auth {
                    user,
                    mut passcode,
                    enable: Some(priv_lvl),
                    ..
                } if !self.enable_allows(&user, priv_lvl) => {
                    // Not allowed to enable (policy, user list or level): FAIL without a check.
                    passcode.fill(0);
                    tracing::debug!(client = %client.name, priv_lvl, "TACACS+ enable refused by policy");
                    Owned::Fail
                }
                Plan::Auth {
                    user,
                    mut passcode,
                    state,
                    single,
                    ..
                } => {
                    let (mut answer, mut new_state) = self
                        .authenticate(client, &user, &passcode, state.as_deref(), None)
                        .await;
                    passcode.fill(0);
                    if let (true, Owned::GetPass(Some(prompt))) = (single, &mut answer) {
                        // Next Tokencode or New PIN needs another round, which PAP and CHAP
                        // do not have: FAIL, and say why (the user can log in with ASCII).
                        answer = Owned::FailWith(std::mem::take(prompt));
                        new_state = None;
                    }
                    if let Some(st) = new_state {
                        states.insert(session_id, st);
                    }
                    answer
                }
                Plan::Chap {
                    user,
                    id,
                    challenge,
                    response,
                    enable,
                } => {
                    if enable.is_some_and(|lvl| !self.enable_allows(&user, lvl)) {
                        Owned::Fail
                    } else {
                        let chap = ChapResponse {
                            id,
                            challenge: &challenge,
                            response: &response,
                        };
                        // A Next Tokencode challenge becomes FAIL with its prompt (one exchange).
                        match self
                            .authenticate(client, &user, b"", None, Some(chap))
                            .await
                        {
                            (Owned::GetPass(Some(prompt)), _) => Owned::FailWith(prompt),
                            (answer, _) => answer,
                        }
                    }
                }
                Plan::Authorize { user, args } => self.authorize(&user, &args).await,
                Plan::Account {
                    user,
                    flags,
                    detail,
                } => self.account(client, &user, flags, detail).await,
            };
            if !matches!(answer, Owned::GetPass(_) | Owned::GetUser) {
                states.remove(&session_id);
            }
            let written = {
                let args: Vec<&[u8]> = match &answer {
                    Owned::AuthorPass(a) | Owned::AuthorRepl(a) => {
                        a.iter().map(Vec::as_slice).collect()
                    }
                    _ => Vec::new(),
                };
                let config = self.auth.config();
                let wire = answer.as_answer(&config, &args);
                match conn.answer(session_id, &wire, obfuscation, &mut out) {
                    Ok(bytes) => Ok(bytes.len()),
                    Err(ConnectionError::Session {
                        error: SessionError::RoundLimit,
                        ..
                    }) => {
                        // Too many prompts in this session: end it with a FAIL instead.
                        states.remove(&session_id);
                        self.tstats().fails.fetch_add(1, Ordering::Relaxed);
                        let fail = Answer::Fail {
                            server_msg: config.file.prompts.reject.as_bytes(),
                        };
                        conn.answer(session_id, &fail, obfuscation, &mut out)
                            .map(|b| b.len())
                    }
                    Err(e) => Err(e),
                }
            };
            let n = match written {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(client = %client.name, error = %e, "TACACS+ reply not encodable");
                    return "encode";
                }
            };
            match &answer {
                Owned::Pass => self.tstats().passes.fetch_add(1, Ordering::Relaxed),
                Owned::Fail | Owned::FailWith(_) => {
                    self.tstats().fails.fetch_add(1, Ordering::Relaxed)
                }
                Owned::GetPass(Some(_)) => self.tstats().challenges.fetch_add(1, Ordering::Relaxed),
                _ => 0,
            };
            let Some(bytes) = out.get(..n) else {
                return "encode";
            };
            let w = tokio::time::timeout(self.idle, stream.write_all(bytes)).await;
            if !matches!(w, Ok(Ok(()))) {
                return "io_error";
            }
            if conn.should_close() {
                let _ = stream.shutdown().await;
                return "done";
            }
        }
    }

    /// Runs the engine: PASS, FAIL (generic), ERROR when the store fails (the device then
    /// tries its next method), or a GETPASS challenge with the State to keep for the session.
    async fn authenticate(
        &self,
        client: &TacClient,
        user: &str,
        passcode: &[u8],
        state: Option<&str>,
        chap: Option<ChapResponse<'_>>,
    ) -> (Owned, Option<String>) {
        let started = std::time::Instant::now();
        let result = match chap {
            None => {
                self.auth
                    .authenticate(user, passcode, state, &client.name, "tacacs")
                    .await
            }
            Some(c) => {
                self.auth
                    .authenticate_chap(user, c, &client.name, "tacacs")
                    .await
            }
        };
        let result = match result {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, client = %client.name, "TACACS+ authentication failed");
                return (Owned::Error, None);
            }
        };
        let out = &result.outcome;
        client.metrics.record(Protocol::Tacacs, out);
        client.metrics.observe_latency(Protocol::Tacacs, started);
        if matches!(out.reason, Reason::Replay | Reason::ReplayRace) {
            self.stats.replays.fetch_add(1, Ordering::Relaxed);
        }
        match &out.decision {
            Decision::Accept => (Owned::Pass, None),
            // The same text for every CHAP failure, so it tells nothing about the user.
            Decision::Reject if chap.is_some() => (Owned::FailWith(CHAP_FAIL.into()), None),
            Decision::Reject => (Owned::Fail, None),
            Decision::Challenge { state, prompt, .. } => {
                (Owned::GetPass(Some(prompt.clone())), Some(state.clone()))
            }
        }
    }

    /// Authorization: the user's own set, else their first group's, else `default`; FAIL for
    /// unknown users, no set, or a command the set does not permit.
    async fn authorize(&self, user: &str, args: &[Vec<u8>]) -> Owned {
        self.tstats().authorizations.fetch_add(1, Ordering::Relaxed);
        if user.is_empty() {
            return Owned::AuthorFail;
        }
        let name = self.auth.normalize(user);
        match self.store.user_by_name(&name).await {
            Ok(Some(_)) => {}
            Ok(None) => return Owned::AuthorFail,
            Err(e) => {
                tracing::warn!(error = %e, "TACACS+ authorization lookup");
                return Owned::AuthorError;
            }
        }
        let config = self.auth.config();
        let Some(t) = &config.tacacs else {
            return Owned::AuthorFail;
        };
        let Some(set) = t.author_set(&name) else {
            return Owned::AuthorFail;
        };
        let list: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        match policy::authorize(set, &Args::from_list(&list)) {
            Verdict::PassAdd(a) => Owned::AuthorPass(a),
            Verdict::PassRepl(a) => Owned::AuthorRepl(a),
            Verdict::Fail => Owned::AuthorFail,
        }
    }

    /// Accounting: the record is written to the audit log before SUCCESS is sent.
    async fn account(
        &self,
        client: &TacClient,
        user: &str,
        flags: AcctFlags,
        detail: String,
    ) -> Owned {
        let method = match flags {
            AcctFlags::Start => "accounting_start",
            AcctFlags::Stop => "accounting_stop",
            AcctFlags::Watchdog => "accounting_watchdog",
            AcctFlags::WatchdogUpdate => "accounting_update",
        };
        let record = AuditRecord {
            at: self.auth.clock().now(),
            actor: None,
            user_name: user.to_string(),
            client: Some(client.name.clone()),
            protocol: "tacacs".into(),
            method: method.into(),
            result: "ok".into(),
            reason: detail,
        };
        match self.auth.write_audit(record).await {
            Ok(()) => {
                self.tstats().accounting.fetch_add(1, Ordering::Relaxed);
                Owned::AcctSuccess
            }
            Err(e) => {
                tracing::warn!(error = %e, client = %client.name, "TACACS+ accounting not stored");
                Owned::AcctError
            }
        }
    }
}

/// An answer that owns its data, so the borrow of the connection ends before any `.await`.
enum Owned {
    GetUser,
    /// `None`: the first password prompt; `Some`: a challenge prompt from the engine.
    GetPass(Option<String>),
    Pass,
    Fail,
    /// FAIL with a specific server_msg (a challenge a single-exchange login cannot answer).
    FailWith(String),
    Error,
    AuthorPass(Vec<Vec<u8>>),
    AuthorRepl(Vec<Vec<u8>>),
    AuthorFail,
    AuthorError,
    AcctSuccess,
    AcctError,
}

impl Owned {
    fn as_answer<'x>(&'x self, config: &'x Config, args: &'x [&'x [u8]]) -> Answer<'x> {
        let author = |status, args| {
            Answer::Author(AuthorResponse {
                status,
                args,
                server_msg: b"",
                data: b"",
            })
        };
        let acct = |status| {
            Answer::Acct(AcctReply {
                status,
                server_msg: b"",
                data: b"",
            })
        };
        match self {
            Owned::GetUser => Answer::GetUser {
                prompt: USER_PROMPT,
            },
            Owned::GetPass(None) => Answer::GetPass {
                prompt: PASS_PROMPT,
            },
            Owned::GetPass(Some(p)) => Answer::GetPass {
                prompt: p.as_bytes(),
            },
            Owned::Pass => Answer::Pass { server_msg: b"" },
            // Generic: never says why.
            Owned::Fail => Answer::Fail {
                server_msg: config.file.prompts.reject.as_bytes(),
            },
            Owned::FailWith(msg) => Answer::Fail {
                server_msg: msg.as_bytes(),
            },
            Owned::Error => Answer::Error {
                server_msg: b"temporarily unavailable",
            },
            Owned::AuthorPass(_) => author(AuthorStatus::PassAdd, Args::from_list(args)),
            Owned::AuthorRepl(_) => author(AuthorStatus::PassRepl, Args::from_list(args)),
            Owned::AuthorFail => author(AuthorStatus::Fail, Args::empty()),
            Owned::AuthorError => author(AuthorStatus::Error, Args::empty()),
            Owned::AcctSuccess => acct(AcctStatus::Success),
            Owned::AcctError => acct(AcctStatus::Error),
        }
    }
}

/// What to do with one event, with everything copied out of the packet.
enum Plan {
    Silent,
    Answer(Owned),
    Auth {
        user: String,
        passcode: Vec<u8>,
        state: Option<String>,
        /// `Some(priv_lvl)` for `service=enable`.
        enable: Option<u8>,
        /// PAP/CHAP: one exchange, so a challenge cannot be asked (it becomes a FAIL).
        single: bool,
    },
    /// CHAP (single exchange).
    Chap {
        user: String,
        id: u8,
        challenge: Vec<u8>,
        response: [u8; 16],
        /// `Some(priv_lvl)` for `service=enable`.
        enable: Option<u8>,
    },
    Authorize {
        user: String,
        args: Vec<Vec<u8>>,
    },
    Account {
        user: String,
        flags: AcctFlags,
        detail: String,
    },
}

/// User names travel as UTF-8 (like RADIUS User-Name); anything else cannot match a user.
fn user_of(user: &[u8]) -> Option<String> {
    std::str::from_utf8(user)
        .ok()
        .filter(|u| !u.is_empty())
        .map(str::to_string)
}

/// `Some(priv_lvl)` when the session is an enable (`service=enable`).
fn enable_of(start: &StartInfo<'_>) -> Option<u8> {
    (start.service == AuthenService::Enable).then_some(start.priv_lvl)
}

fn plan_of(
    event: Event<'_>,
    states: &mut HashMap<u32, String>,
    session_id: u32,
    enable: EnablePolicy,
) -> Plan {
    match event {
        // `policy = "deny"`: refuse an enable before asking for anything.
        Event::NeedUser { start } | Event::NeedPassword { start, .. }
            if enable_of(&start).is_some() && enable == EnablePolicy::Deny =>
        {
            Plan::Answer(Owned::Fail)
        }
        Event::NeedUser { .. } => Plan::Answer(Owned::GetUser),
        Event::NeedPassword { .. } => Plan::Answer(Owned::GetPass(None)),
        Event::Authenticate {
            user,
            credential: Credential::Password(p),
            start,
        } => match user_of(user) {
            Some(user) => Plan::Auth {
                user,
                passcode: p.to_vec(),
                state: None,
                enable: enable_of(&start),
                single: start.authen_type != AuthenType::Ascii,
            },
            None => Plan::Answer(Owned::Fail),
        },
        Event::Authenticate {
            user,
            credential:
                Credential::Chap {
                    id,
                    challenge,
                    response,
                },
            start,
        } => match user_of(user) {
            Some(user) => Plan::Chap {
                user,
                id,
                challenge: challenge.to_vec(),
                response: *response,
                enable: enable_of(&start),
            },
            None => Plan::Answer(Owned::FailWith(CHAP_FAIL.into())),
        },
        // MS-CHAP hashes the password with MD4 of its UTF-16 form: no tokencode can be matched
        // against the few candidates as cheaply, and no device needs it for logins.
        Event::Authenticate { .. } => Plan::Answer(Owned::Fail),
        Event::Continue {
            user,
            answer,
            start,
            ..
        } => match (user_of(user), states.remove(&session_id)) {
            (Some(user), Some(state)) => Plan::Auth {
                user,
                passcode: answer.to_vec(),
                state: Some(state),
                enable: enable_of(&start),
                single: false,
            },
            _ => Plan::Answer(Owned::Fail),
        },
        Event::Aborted { .. } => Plan::Silent,
        Event::Unsupported { .. } => Plan::Answer(Owned::Fail),
        Event::Authorize(r) => Plan::Authorize {
            user: user_of(r.user).unwrap_or_default(),
            args: r.args.iter().map(<[u8]>::to_vec).collect(),
        },
        Event::Account(r) => {
            // Keep what identifies the record; bounded (the codec caps each argument at 255).
            let mut detail = String::new();
            for a in r.args.iter() {
                let a = String::from_utf8_lossy(a);
                if [
                    "task_id=",
                    "start_time=",
                    "stop_time=",
                    "elapsed_time=",
                    "service=",
                ]
                .iter()
                .any(|p| a.starts_with(p))
                {
                    if !detail.is_empty() {
                        detail.push(' ');
                    }
                    detail.push_str(&a);
                }
            }
            Plan::Account {
                user: String::from_utf8_lossy(r.user).into_owned(),
                flags: r.flags,
                detail,
            }
        }
    }
}

/// A bounded label for a failed TLS handshake.
fn tls_failure(e: &std::io::Error) -> CloseReason {
    use rustls::Error as E;
    match e.get_ref().and_then(|x| x.downcast_ref::<rustls::Error>()) {
        Some(E::NoCertificatesPresented) => "tls_no_client_certificate",
        Some(E::InvalidCertificate(_)) => "tls_bad_client_certificate",
        Some(E::InvalidMessage(_)) => "tls_not_tls",
        Some(E::PeerIncompatible(_)) => "tls_incompatible",
        Some(E::AlertReceived(_)) => "tls_alert_received",
        Some(_) => "tls_handshake_failed",
        None if e.kind() == std::io::ErrorKind::UnexpectedEof => "tls_client_closed",
        None => "tls_io_error",
    }
}
