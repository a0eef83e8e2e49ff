//! Per-connection demultiplexer (RFC 8907 §4.3), sans-IO.
//!
//! [`Connection`] routes the interleaved sessions of one connection to their [`Session`]s by
//! session_id, negotiates single-connection mode and caps the number of live sessions.
//!
//! It must not check passcodes, read the clock or do I/O, and keeps one bounded vector of
//! sessions (no allocation per packet).

use super::body::Obfuscation;
use super::event::{Answer, Event};
use super::session::{Session, SessionError, SessionLimits};
use super::{Body, Header};

/// Limits of one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most sessions alive at once on a single-connection connection.
    pub max_sessions: usize,
    /// Whether the server agrees to single-connection mode when a client asks for it.
    pub allow_single_connect: bool,
    /// Per-session limits.
    pub session: SessionLimits,
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits {
            max_sessions: 16,
            allow_single_connect: true,
            session: SessionLimits::default(),
        }
    }
}

/// Why a connection rejected a packet.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionError {
    /// A new session would exceed [`ConnectionLimits::max_sessions`].
    #[error("too many sessions on the connection")]
    TooManySessions,
    /// A packet with seq_no > 1 for a session this connection does not know.
    #[error("packet for unknown session {0:#010x}")]
    UnknownSession(u32),
    /// A second session on a connection that is not in single-connection mode.
    #[error("connection not in single-connection mode")]
    NotMultiplexed,
    /// The session rejected the packet or the answer.
    #[error("session {session_id:#010x}: {error}")]
    Session {
        /// The session.
        session_id: u32,
        /// Why.
        error: SessionError,
    },
}

impl ConnectionError {
    /// Stable snake_case label for counters.
    pub fn reason(&self) -> &'static str {
        match self {
            ConnectionError::TooManySessions => "too_many_sessions",
            ConnectionError::UnknownSession(_) => "unknown_session",
            ConnectionError::NotMultiplexed => "not_multiplexed",
            ConnectionError::Session { error, .. } => error.reason(),
        }
    }
}

/// The sessions of one TCP (or TLS) connection, server side.
///
/// The first packet decides the mode: with SINGLE_CONNECT set (and allowed) the connection
/// carries up to `max_sessions` interleaved sessions and every reply echoes the flag
/// (RFC 8907 §4.3); otherwise it carries one session, after which [`Connection::should_close`]
/// turns true.
#[derive(Debug)]
pub struct Connection {
    limits: ConnectionLimits,
    sessions: Vec<Session>,
    single_connect: Option<bool>,
    finished: u64,
}

impl Connection {
    /// A new connection with no session yet.
    pub fn new(limits: ConnectionLimits) -> Connection {
        Connection {
            limits,
            sessions: Vec::new(),
            single_connect: None,
            finished: 0,
        }
    }

    /// `Some(true)` once single-connection mode is agreed, `Some(false)` once refused, `None`
    /// before the first packet.
    pub fn single_connect(&self) -> Option<bool> {
        self.single_connect
    }

    /// Live sessions.
    pub fn active_sessions(&self) -> usize {
        self.sessions.iter().filter(|s| !s.is_done()).count()
    }

    /// Sessions finished so far.
    pub fn finished_sessions(&self) -> u64 {
        self.finished + self.sessions.iter().filter(|s| s.is_done()).count() as u64
    }

    /// True when the connection has served its one session (not single-connection mode).
    pub fn should_close(&self) -> bool {
        self.single_connect == Some(false)
            && self.active_sessions() == 0
            && self.finished_sessions() > 0
    }

    /// Drops finished sessions.
    fn purge(&mut self) {
        let before = self.sessions.len();
        self.sessions.retain(|s| !s.is_done());
        self.finished += (before - self.sessions.len()) as u64;
    }

    /// Routes one decoded client packet to its session (creating it on seq_no 1).
    pub fn receive<'a>(
        &'a mut self,
        header: &Header,
        body: Body<'a>,
    ) -> Result<Event<'a>, ConnectionError> {
        self.purge();
        let session_id = header.session_id;
        let index = match self
            .sessions
            .iter()
            .position(|s| s.session_id() == session_id)
        {
            Some(index) => index,
            None => {
                if header.seq_no != 1 {
                    return Err(ConnectionError::UnknownSession(session_id));
                }
                let single = *self
                    .single_connect
                    .get_or_insert(header.single_connect() && self.limits.allow_single_connect);
                if !single && (self.finished > 0 || !self.sessions.is_empty()) {
                    return Err(ConnectionError::NotMultiplexed);
                }
                if self.sessions.len() >= self.limits.max_sessions.max(1) {
                    return Err(ConnectionError::TooManySessions);
                }
                let mut session = Session::new(session_id, self.limits.session);
                session.set_single_connect(single);
                self.sessions.push(session);
                self.sessions.len() - 1
            }
        };
        let session = self
            .sessions
            .get_mut(index)
            .ok_or(ConnectionError::UnknownSession(session_id))?;
        session
            .receive(header, body)
            .map_err(|error| ConnectionError::Session { session_id, error })
    }

    /// Encodes the answer of session `session_id` (see [`Session::answer`]).
    pub fn answer<'b>(
        &mut self,
        session_id: u32,
        answer: &Answer<'_>,
        obfuscation: Obfuscation<'_>,
        buf: &'b mut [u8],
    ) -> Result<&'b [u8], ConnectionError> {
        let session = self
            .sessions
            .iter_mut()
            .find(|s| s.session_id() == session_id && !s.is_done())
            .ok_or(ConnectionError::UnknownSession(session_id))?;
        session
            .answer(answer, obfuscation, buf)
            .map_err(|error| ConnectionError::Session { session_id, error })
    }

    /// The session `session_id`, if live.
    pub fn session(&self, session_id: u32) -> Option<&Session> {
        self.sessions
            .iter()
            .find(|s| s.session_id() == session_id && !s.is_done())
    }
}
