//! Per-session state machine (RFC 8907 §4.1, §5.4), sans-IO.
//!
//! [`Session`] owns one session_id: the expected sequence number (client odd, server even,
//! starting at 1; a wrong or wrapping number ends the session), what the session waits for
//! (a START or REQUEST, the user after GETUSER, the password after GETPASS, an answer to a
//! challenge prompt), a round limit on prompts, and the encoding of the front end's
//! [`Answer`]s with the right header. It turns decoded packets into [`Event`]s: for ASCII login
//! it collects the user and password over CONTINUEs before raising
//! [`Event::Authenticate`], exactly as PAP, CHAP and MS-CHAP do from their single START.
//! Interleaving several sessions on one connection is [`Connection`](super::Connection)'s job.
//!
//! It must not check passcodes, read the clock, do I/O or allocate per packet: decisions are
//! the engine's, carried in by answers. Protocol errors from [`Session::receive`] end the
//! session; whether to send an ERROR reply or close the connection is the server's choice.

use super::body::{encode_packet, Obfuscation};
use super::event::{Answer, Credential, Event, StartInfo};
use super::{
    AuthenAction, AuthenReply, AuthenService, AuthenStatus, AuthenType, Body, EncodeError, Header,
    PacketType, Version, FLAG_SINGLE_CONNECT, REPLY_FLAG_NOECHO,
};

/// Limits of one session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    /// Most prompts (GETUSER, GETPASS, GETDATA, RESTART) the server may send in one session.
    pub max_rounds: u8,
}

impl Default for SessionLimits {
    fn default() -> SessionLimits {
        SessionLimits { max_rounds: 8 }
    }
}

/// Which exchange a session carries (from its first packet's type).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SessionKind {
    /// START, then REPLY/CONTINUE rounds.
    Authentication,
    /// One REQUEST, one RESPONSE.
    Authorization,
    /// One REQUEST, one REPLY.
    Accounting,
}

impl SessionKind {
    fn of(packet_type: PacketType) -> SessionKind {
        match packet_type {
            PacketType::Authentication => SessionKind::Authentication,
            PacketType::Authorization => SessionKind::Authorization,
            PacketType::Accounting => SessionKind::Accounting,
        }
    }

    fn packet_type(self) -> PacketType {
        match self {
            SessionKind::Authentication => PacketType::Authentication,
            SessionKind::Authorization => PacketType::Authorization,
            SessionKind::Accounting => PacketType::Accounting,
        }
    }
}

/// Why a session rejected a packet or an answer.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// The packet belongs to another session_id.
    #[error("packet for session {got:#010x}, not {expected:#010x}")]
    WrongSession {
        /// This session's id.
        expected: u32,
        /// The packet's.
        got: u32,
    },
    /// The packet type differs from the session's first packet.
    #[error("packet type differs from the session's")]
    WrongPacketType,
    /// The sequence number is not the next one expected.
    #[error("sequence number {got}, expected {expected}")]
    UnexpectedSeqNo {
        /// The next client sequence number.
        expected: u8,
        /// The packet's.
        got: u8,
    },
    /// Sequence number 255: the server's reply would wrap, so the session ends (RFC 8907 §4.1).
    #[error("sequence number would wrap")]
    SeqNoWrapped,
    /// The version differs from the one the session started with.
    #[error("version changed within the session")]
    VersionChanged,
    /// A body the session does not expect now (a reply from the client, a CONTINUE where a
    /// START belongs, …).
    #[error("unexpected packet for the session state")]
    UnexpectedBody,
    /// The client sent a packet while the server still owed it an answer.
    #[error("packet received while an answer is pending")]
    AnswerPending,
    /// The session is over.
    #[error("session finished")]
    Finished,
    /// [`Session::answer`] called when no answer is due, or with an answer of the wrong kind
    /// (a prompt in a PAP session, an accounting reply to an authentication, …).
    #[error("answer not allowed now")]
    AnswerNotAllowed,
    /// Another prompt would exceed [`SessionLimits::max_rounds`]; answer FAIL instead.
    #[error("too many prompt rounds")]
    RoundLimit,
    /// A user name longer than 255 octets in answer to GETUSER.
    #[error("user name too long")]
    UserTooLong,
    /// CHAP or MS-CHAP data too short for id, challenge and response.
    #[error("malformed CHAP data")]
    BadChapData,
    /// The answer could not be encoded (the session state is unchanged).
    #[error("encode: {0}")]
    Encode(EncodeError),
}

impl SessionError {
    /// Stable snake_case label for counters.
    pub fn reason(&self) -> &'static str {
        match self {
            SessionError::WrongSession { .. } => "wrong_session",
            SessionError::WrongPacketType => "wrong_packet_type",
            SessionError::UnexpectedSeqNo { .. } => "unexpected_seq_no",
            SessionError::SeqNoWrapped => "seq_no_wrapped",
            SessionError::VersionChanged => "version_changed",
            SessionError::UnexpectedBody => "unexpected_body",
            SessionError::AnswerPending => "answer_pending",
            SessionError::Finished => "finished",
            SessionError::AnswerNotAllowed => "answer_not_allowed",
            SessionError::RoundLimit => "round_limit",
            SessionError::UserTooLong => "user_too_long",
            SessionError::BadChapData => "bad_chap_data",
            SessionError::Encode(_) => "encode",
        }
    }
}

/// A field of up to 255 octets kept inline (no allocation).
#[derive(Clone, Copy)]
struct Field {
    len: u8,
    bytes: [u8; 255],
}

impl Field {
    const EMPTY: Field = Field {
        len: 0,
        bytes: [0; 255],
    };

    fn set(&mut self, value: &[u8]) -> Result<(), SessionError> {
        let len = u8::try_from(value.len()).map_err(|_| SessionError::UserTooLong)?;
        let dst = self
            .bytes
            .get_mut(..value.len())
            .ok_or(SessionError::UserTooLong)?;
        dst.copy_from_slice(value);
        self.len = len;
        Ok(())
    }

    fn get(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }
}

/// The START fields the session keeps.
#[derive(Clone, Copy)]
struct Start {
    action: AuthenAction,
    authen_type: AuthenType,
    service: AuthenService,
    priv_lvl: u8,
    version: Version,
}

/// Which event is waiting for an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    NeedUser,
    NeedPassword,
    Authenticate,
    Continue,
    Unsupported,
    Authorize,
    Account,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting for the first packet (seq_no 1), also after RESTART.
    Idle,
    /// An event was raised; [`Session::answer`] is due.
    Answer(Pending),
    /// GETUSER sent; the next CONTINUE carries the user name.
    AwaitUser,
    /// GETPASS/GETDATA sent before authentication; the next CONTINUE carries the password.
    AwaitPassword,
    /// A challenge prompt sent after authentication; the next CONTINUE is its answer.
    AwaitChallenge,
    /// Over: a final answer, an abort or a protocol error.
    Done,
}

/// One TACACS+ session (one session_id), server side.
#[derive(Clone)]
pub struct Session {
    session_id: u32,
    kind: Option<SessionKind>,
    limits: SessionLimits,
    single_connect: bool,
    state: State,
    /// The next sequence number the client must use.
    expected_seq: u8,
    /// The sequence number of the server's next packet.
    reply_seq: u8,
    version: Version,
    rounds: u8,
    start: Option<Start>,
    user: Field,
    port: Field,
    rem_addr: Field,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No user names or ports in logs by accident.
        f.debug_struct("Session")
            .field("session_id", &self.session_id)
            .field("kind", &self.kind)
            .field("state", &self.state)
            .field("expected_seq", &self.expected_seq)
            .field("rounds", &self.rounds)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A fresh session waiting for its first packet (seq_no 1).
    pub fn new(session_id: u32, limits: SessionLimits) -> Session {
        Session {
            session_id,
            kind: None,
            limits,
            single_connect: false,
            state: State::Idle,
            expected_seq: 1,
            reply_seq: 2,
            version: Version::Default,
            rounds: 0,
            start: None,
            user: Field::EMPTY,
            port: Field::EMPTY,
            rem_addr: Field::EMPTY,
        }
    }

    /// Sets SINGLE_CONNECT on every reply (the connection agreed to single-connection mode).
    pub fn set_single_connect(&mut self, on: bool) {
        self.single_connect = on;
    }

    /// The session id.
    pub fn session_id(&self) -> u32 {
        self.session_id
    }

    /// The session kind, once the first packet arrived.
    pub fn kind(&self) -> Option<SessionKind> {
        self.kind
    }

    /// True once the session is over (final answer sent, aborted, or a protocol error).
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// True when an event was raised and [`Session::answer`] is due.
    pub fn answer_due(&self) -> bool {
        matches!(self.state, State::Answer(_))
    }

    /// Prompts sent so far.
    pub fn rounds(&self) -> u8 {
        self.rounds
    }

    /// Ends the session (e.g. the front end gives up without answering).
    pub fn close(&mut self) {
        self.state = State::Done;
    }

    fn start_info(&self) -> Option<StartInfo<'_>> {
        let start = self.start?;
        Some(StartInfo {
            action: start.action,
            authen_type: start.authen_type,
            service: start.service,
            priv_lvl: start.priv_lvl,
            port: self.port.get(),
            rem_addr: self.rem_addr.get(),
            version: start.version,
        })
    }

    /// Takes one decoded client packet of this session and returns what the front end must
    /// decide. Any error ends the session.
    pub fn receive<'a>(
        &'a mut self,
        header: &Header,
        body: Body<'a>,
    ) -> Result<Event<'a>, SessionError> {
        match self.check_and_advance(header, body) {
            Ok(step) => Ok(self.event(step, body)),
            Err(e) => {
                self.state = State::Done;
                Err(e)
            }
        }
    }

    /// Validates the header and body against the state and moves to the next state.
    fn check_and_advance(&mut self, header: &Header, body: Body<'_>) -> Result<Step, SessionError> {
        match self.state {
            State::Done => return Err(SessionError::Finished),
            State::Answer(_) => return Err(SessionError::AnswerPending),
            _ => {}
        }
        if header.session_id != self.session_id {
            return Err(SessionError::WrongSession {
                expected: self.session_id,
                got: header.session_id,
            });
        }
        let kind = SessionKind::of(header.packet_type);
        if self.kind.is_some_and(|k| k != kind) || body.packet_type() != header.packet_type {
            return Err(SessionError::WrongPacketType);
        }
        if header.seq_no != self.expected_seq {
            return Err(SessionError::UnexpectedSeqNo {
                expected: self.expected_seq,
                got: header.seq_no,
            });
        }
        // The reply needs seq_no + 1; at 255 it would wrap.
        let reply_seq = header
            .seq_no
            .checked_add(1)
            .ok_or(SessionError::SeqNoWrapped)?;
        if self.state != State::Idle && header.version != self.version {
            return Err(SessionError::VersionChanged);
        }
        let step = match (self.state, body) {
            (State::Idle, Body::AuthenStart(start)) => {
                self.user.set(start.user)?;
                self.port.set(start.port)?;
                self.rem_addr.set(start.rem_addr)?;
                self.start = Some(Start {
                    action: start.action,
                    authen_type: start.authen_type,
                    service: start.service,
                    priv_lvl: start.priv_lvl,
                    version: header.version,
                });
                match (start.action, start.authen_type) {
                    (AuthenAction::Login, AuthenType::Ascii) if start.user.is_empty() => {
                        Step::Raise(Pending::NeedUser)
                    }
                    (AuthenAction::Login, AuthenType::Ascii) => Step::Raise(Pending::NeedPassword),
                    (
                        AuthenAction::Login,
                        AuthenType::Pap
                        | AuthenType::Chap
                        | AuthenType::MsChap
                        | AuthenType::MsChapV2,
                    ) => {
                        // Parse CHAP data now so that a malformed one is a protocol error.
                        credential(start.authen_type, start.data)?;
                        Step::Raise(Pending::Authenticate)
                    }
                    _ => Step::Raise(Pending::Unsupported),
                }
            }
            (State::Idle, Body::AuthorRequest(_)) => Step::Raise(Pending::Authorize),
            (State::Idle, Body::AcctRequest(_)) => Step::Raise(Pending::Account),
            (State::AwaitUser, Body::AuthenContinue(c)) if !c.abort() => {
                self.user.set(c.user_msg)?;
                if c.user_msg.is_empty() {
                    Step::Raise(Pending::NeedUser)
                } else {
                    Step::Raise(Pending::NeedPassword)
                }
            }
            (State::AwaitPassword, Body::AuthenContinue(c)) if !c.abort() => {
                Step::Raise(Pending::Authenticate)
            }
            (State::AwaitChallenge, Body::AuthenContinue(c)) if !c.abort() => {
                Step::Raise(Pending::Continue)
            }
            (
                State::AwaitUser | State::AwaitPassword | State::AwaitChallenge,
                Body::AuthenContinue(_),
            ) => Step::Aborted,
            _ => return Err(SessionError::UnexpectedBody),
        };
        self.kind = Some(kind);
        self.version = header.version;
        self.reply_seq = reply_seq;
        self.expected_seq = reply_seq.saturating_add(1);
        self.state = match step {
            Step::Raise(pending) => State::Answer(pending),
            Step::Aborted => State::Done,
        };
        Ok(step)
    }

    /// Builds the event for a validated step (cannot fail: the body kind was checked).
    fn event<'a>(&'a self, step: Step, body: Body<'a>) -> Event<'a> {
        let user = self.user.get();
        let start = self.start_info();
        match (step, body) {
            (Step::Aborted, Body::AuthenContinue(c)) => Event::Aborted {
                reason: if c.data.is_empty() {
                    c.user_msg
                } else {
                    c.data
                },
            },
            (Step::Raise(Pending::Authorize), Body::AuthorRequest(r)) => Event::Authorize(r),
            (Step::Raise(Pending::Account), Body::AcctRequest(r)) => Event::Account(r),
            (Step::Raise(pending), body) => {
                let Some(start) = start else {
                    return Event::Aborted { reason: b"" };
                };
                match (pending, body) {
                    (Pending::NeedUser, _) => Event::NeedUser { start },
                    (Pending::NeedPassword, _) => Event::NeedPassword { user, start },
                    (Pending::Authenticate, Body::AuthenStart(s)) => Event::Authenticate {
                        user,
                        credential: credential(s.authen_type, s.data)
                            .unwrap_or(Credential::Password(b"")),
                        start,
                    },
                    (Pending::Authenticate, Body::AuthenContinue(c)) => Event::Authenticate {
                        user,
                        credential: Credential::Password(c.user_msg),
                        start,
                    },
                    (Pending::Continue, Body::AuthenContinue(c)) => Event::Continue {
                        user,
                        answer: c.user_msg,
                        data: c.data,
                        start,
                    },
                    _ => Event::Unsupported { user, start },
                }
            }
            (Step::Aborted, _) => Event::Aborted { reason: b"" },
        }
    }

    /// Encodes the front end's answer as the next server packet into `buf` (obfuscated with
    /// the key, or clear) and moves the session on. On error nothing changes, so the front end
    /// can answer again (e.g. FAIL after [`SessionError::RoundLimit`]).
    pub fn answer<'b>(
        &mut self,
        answer: &Answer<'_>,
        obfuscation: Obfuscation<'_>,
        buf: &'b mut [u8],
    ) -> Result<&'b [u8], SessionError> {
        let State::Answer(pending) = self.state else {
            return Err(SessionError::AnswerNotAllowed);
        };
        let ascii = self
            .start
            .is_some_and(|s| s.authen_type == AuthenType::Ascii && s.action == AuthenAction::Login);
        let authen = matches!(
            pending,
            Pending::NeedUser
                | Pending::NeedPassword
                | Pending::Authenticate
                | Pending::Continue
                | Pending::Unsupported
        );
        let reply = |status, flags, server_msg, data| {
            Body::AuthenReply(AuthenReply {
                status,
                flags,
                server_msg,
                data,
            })
        };
        let (body, next) = match *answer {
            Answer::Pass { server_msg } if authen => (
                reply(AuthenStatus::Pass, 0, server_msg, &[][..]),
                State::Done,
            ),
            Answer::Fail { server_msg } if authen => (
                reply(AuthenStatus::Fail, 0, server_msg, &[][..]),
                State::Done,
            ),
            Answer::Error { server_msg } if authen => (
                reply(AuthenStatus::Error, 0, server_msg, &[][..]),
                State::Done,
            ),
            Answer::Follow { server_msg, hosts } if authen => (
                reply(AuthenStatus::Follow, 0, server_msg, hosts),
                State::Done,
            ),
            Answer::Restart { server_msg, data } if authen => (
                reply(AuthenStatus::Restart, 0, server_msg, data),
                State::Idle,
            ),
            Answer::GetUser { prompt } if ascii && pending == Pending::NeedUser => (
                reply(AuthenStatus::GetUser, 0, prompt, &[][..]),
                State::AwaitUser,
            ),
            Answer::GetPass { prompt }
            | Answer::GetData {
                prompt,
                no_echo: true,
            } if ascii && pending != Pending::NeedUser => {
                let status = match answer {
                    Answer::GetPass { .. } => AuthenStatus::GetPass,
                    _ => AuthenStatus::GetData,
                };
                (
                    reply(status, REPLY_FLAG_NOECHO, prompt, &[][..]),
                    self.after_prompt(pending)?,
                )
            }
            Answer::GetData {
                prompt,
                no_echo: false,
            } if ascii && pending != Pending::NeedUser => (
                reply(AuthenStatus::GetData, 0, prompt, &[][..]),
                self.after_prompt(pending)?,
            ),
            Answer::Author(r) if pending == Pending::Authorize => {
                (Body::AuthorResponse(r), State::Done)
            }
            Answer::Acct(r) if pending == Pending::Account => (Body::AcctReply(r), State::Done),
            _ => return Err(SessionError::AnswerNotAllowed),
        };
        let prompt = matches!(
            next,
            State::Idle | State::AwaitUser | State::AwaitPassword | State::AwaitChallenge
        );
        if prompt && self.rounds >= self.limits.max_rounds {
            return Err(SessionError::RoundLimit);
        }
        let kind = self.kind.ok_or(SessionError::AnswerNotAllowed)?;
        let flags = if self.single_connect {
            FLAG_SINGLE_CONNECT
        } else {
            0
        };
        let header = Header::new(
            self.version,
            kind.packet_type(),
            self.reply_seq,
            flags,
            self.session_id,
        );
        let packet =
            encode_packet(&header, &body, obfuscation, buf).map_err(SessionError::Encode)?;
        if prompt {
            self.rounds = self.rounds.saturating_add(1);
        }
        self.state = next;
        if next == State::Idle {
            // RESTART: the client begins again with a START at seq_no 1 (RFC 8907 §5.4.3).
            self.expected_seq = 1;
            self.start = None;
        }
        Ok(packet)
    }

    /// The state after a GETPASS/GETDATA prompt for `pending`.
    fn after_prompt(&self, pending: Pending) -> Result<State, SessionError> {
        match pending {
            Pending::NeedPassword => Ok(State::AwaitPassword),
            Pending::Authenticate | Pending::Continue => Ok(State::AwaitChallenge),
            _ => Err(SessionError::AnswerNotAllowed),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Raise(Pending),
    Aborted,
}

/// Reads the credential of a PAP, CHAP or MS-CHAP START (RFC 8907 §5.4.2).
fn credential(authen_type: AuthenType, data: &[u8]) -> Result<Credential<'_>, SessionError> {
    match authen_type {
        AuthenType::Chap => {
            let (&id, rest) = data.split_first().ok_or(SessionError::BadChapData)?;
            let (challenge, response) = rest
                .split_last_chunk::<16>()
                .ok_or(SessionError::BadChapData)?;
            if challenge.is_empty() {
                return Err(SessionError::BadChapData);
            }
            Ok(Credential::Chap {
                id,
                challenge,
                response,
            })
        }
        AuthenType::MsChap | AuthenType::MsChapV2 => {
            let (&id, rest) = data.split_first().ok_or(SessionError::BadChapData)?;
            let (challenge, response) = rest
                .split_last_chunk::<49>()
                .ok_or(SessionError::BadChapData)?;
            if challenge.is_empty() {
                return Err(SessionError::BadChapData);
            }
            Ok(Credential::MsChap {
                version: if authen_type == AuthenType::MsChap {
                    1
                } else {
                    2
                },
                id,
                challenge,
                response,
            })
        }
        _ => Ok(Credential::Password(data)),
    }
}
