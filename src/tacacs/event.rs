//! What a session raises and what it is answered: [`Event`] (with the START's [`StartInfo`]
//! and the presented [`Credential`]) for the front end to decide, and the front end's
//! [`Answer`], which [`Session::answer`](super::Session::answer) encodes as the next server
//! packet.
//!
//! Plain borrowed data: no state, no I/O. `Debug` redacts credentials and challenge answers so
//! that events can be logged.

use super::body::Redacted;
use super::{
    AcctReply, AcctRequest, AuthenAction, AuthenService, AuthenType, AuthorRequest, AuthorResponse,
    Version,
};

/// What the START said about the login, kept for every later event of the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartInfo<'a> {
    /// LOGIN, CHPASS or SENDAUTH.
    pub action: AuthenAction,
    /// ASCII, PAP, CHAP, …
    pub authen_type: AuthenType,
    /// LOGIN, ENABLE, PPP, … (ENABLE may map to its own policy).
    pub service: AuthenService,
    /// Requested privilege level.
    pub priv_lvl: u8,
    /// Port.
    pub port: &'a [u8],
    /// Remote address.
    pub rem_addr: &'a [u8],
    /// The START's version (minor 1 for PAP/CHAP/MS-CHAP per RFC 8907 §5.4.1).
    pub version: Version,
}

/// The secret the user presented. `Debug` shows only its kind and length.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    /// ASCII (answer to GETPASS) or PAP (START data).
    Password(&'a [u8]),
    /// CHAP: PPP id, challenge and the 16-octet MD5 response.
    Chap {
        /// PPP identifier.
        id: u8,
        /// The challenge the NAS sent.
        challenge: &'a [u8],
        /// MD5(id, secret, challenge).
        response: &'a [u8; 16],
    },
    /// MS-CHAP (v1 or v2): PPP id, challenge and the 49-octet response.
    MsChap {
        /// 1 or 2.
        version: u8,
        /// PPP identifier.
        id: u8,
        /// The challenge.
        challenge: &'a [u8],
        /// The response.
        response: &'a [u8; 49],
    },
}

/// What a session asks the front end to decide. Slices borrow the packet or the session.
/// `Debug` redacts credentials and challenge answers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// ASCII login without a user name: answer [`Answer::GetUser`] (or FAIL).
    NeedUser {
        /// The START.
        start: StartInfo<'a>,
    },
    /// ASCII login with a user name but no password yet: answer [`Answer::GetPass`] (or FAIL).
    NeedPassword {
        /// User name.
        user: &'a [u8],
        /// The START.
        start: StartInfo<'a>,
    },
    /// The credentials are complete: answer PASS, FAIL, or (ASCII) a GETPASS/GETDATA challenge.
    Authenticate {
        /// User name.
        user: &'a [u8],
        /// Password, CHAP or MS-CHAP data.
        credential: Credential<'a>,
        /// The START.
        start: StartInfo<'a>,
    },
    /// The user's answer to a challenge prompt (Next Tokencode, New PIN, on-demand code).
    Continue {
        /// User name.
        user: &'a [u8],
        /// What the user typed.
        answer: &'a [u8],
        /// CONTINUE data field.
        data: &'a [u8],
        /// The START.
        start: StartInfo<'a>,
    },
    /// The client aborted the session (no reply is sent).
    Aborted {
        /// The client's reason (CONTINUE data, or user_msg when data is empty).
        reason: &'a [u8],
    },
    /// An action or authen_type this session does not drive (CHPASS, SENDAUTH, ARAP):
    /// answer FAIL or ERROR.
    Unsupported {
        /// User name from the START.
        user: &'a [u8],
        /// The START.
        start: StartInfo<'a>,
    },
    /// Authorization REQUEST: answer [`Answer::Author`].
    Authorize(AuthorRequest<'a>),
    /// Accounting REQUEST: store it, then answer [`Answer::Acct`].
    Account(AcctRequest<'a>),
}

impl std::fmt::Debug for Credential<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Password(p) => f.debug_tuple("Password").field(&Redacted(p.len())).finish(),
            Credential::Chap { id, challenge, .. } => f
                .debug_struct("Chap")
                .field("id", id)
                .field("challenge", &Redacted(challenge.len()))
                .finish_non_exhaustive(),
            Credential::MsChap {
                version,
                id,
                challenge,
                ..
            } => f
                .debug_struct("MsChap")
                .field("version", version)
                .field("id", id)
                .field("challenge", &Redacted(challenge.len()))
                .finish_non_exhaustive(),
        }
    }
}

impl std::fmt::Debug for Event<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match self {
            Event::NeedUser { start } => f.debug_struct("NeedUser").field("start", start).finish(),
            Event::NeedPassword { user, start } => f
                .debug_struct("NeedPassword")
                .field("user", &text(user))
                .field("start", start)
                .finish(),
            Event::Authenticate {
                user,
                credential,
                start,
            } => f
                .debug_struct("Authenticate")
                .field("user", &text(user))
                .field("credential", credential)
                .field("start", start)
                .finish(),
            Event::Continue {
                user,
                answer,
                data,
                start,
            } => f
                .debug_struct("Continue")
                .field("user", &text(user))
                .field("answer", &Redacted(answer.len()))
                .field("data", &Redacted(data.len()))
                .field("start", start)
                .finish(),
            Event::Aborted { reason } => f
                .debug_struct("Aborted")
                .field("reason", &text(reason))
                .finish(),
            Event::Unsupported { user, start } => f
                .debug_struct("Unsupported")
                .field("user", &text(user))
                .field("start", start)
                .finish(),
            Event::Authorize(r) => f.debug_tuple("Authorize").field(r).finish(),
            Event::Account(r) => f.debug_tuple("Account").field(r).finish(),
        }
    }
}

/// The front end's decision, encoded by [`Session::answer`](super::Session::answer) as the
/// next server packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer<'x> {
    /// Authentication PASS; ends the session.
    Pass {
        /// Message for the user.
        server_msg: &'x [u8],
    },
    /// Authentication FAIL; ends the session.
    Fail {
        /// Message for the user.
        server_msg: &'x [u8],
    },
    /// GETUSER with a prompt (ASCII only).
    GetUser {
        /// E.g. `Username: `.
        prompt: &'x [u8],
    },
    /// GETPASS with NOECHO (ASCII only): the password, or a challenge such as
    /// `Enter next tokencode: `.
    GetPass {
        /// The prompt.
        prompt: &'x [u8],
    },
    /// GETDATA (ASCII only), echoed unless `no_echo`.
    GetData {
        /// The prompt.
        prompt: &'x [u8],
        /// Set NOECHO.
        no_echo: bool,
    },
    /// RESTART: the client starts over with a new START (seq_no 1).
    Restart {
        /// Message for the user.
        server_msg: &'x [u8],
        /// Acceptable authen_types, one octet each (may be empty).
        data: &'x [u8],
    },
    /// Authentication ERROR; ends the session.
    Error {
        /// Message for the user.
        server_msg: &'x [u8],
    },
    /// Authentication FOLLOW; ends the session.
    Follow {
        /// Message for the user.
        server_msg: &'x [u8],
        /// Alternate servers.
        hosts: &'x [u8],
    },
    /// Authorization RESPONSE; ends the session.
    Author(AuthorResponse<'x>),
    /// Accounting REPLY; ends the session.
    Acct(AcctReply<'x>),
}
