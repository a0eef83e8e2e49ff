//! Authentication bodies (RFC 8907 §5): START, REPLY and CONTINUE, with their enums.
//!
//! This file owns the zero-copy views (every length checked against the body, exact fit) and
//! the encoders of both sides: REPLY for the server, START and CONTINUE for clients (tests and
//! the load generator). It must not allocate, panic, or decide anything about a session.

use super::body::{decode_priv_lvl, encode_priv_lvl, exact_fields, len16, len8, Redacted, Writer};
use super::{DecodeError, EncodeError};

/// REPLY flag: the client should not echo the user's answer (passwords, tokencodes).
pub const REPLY_FLAG_NOECHO: u8 = 0x01;

/// CONTINUE flag: the client aborts the session.
pub const CONTINUE_FLAG_ABORT: u8 = 0x01;

wire_enum! {
    /// The START action (RFC 8907 §5.1).
    AuthenAction, UnknownAction {
        /// TAC_PLUS_AUTHEN_LOGIN.
        Login = 0x01,
        /// TAC_PLUS_AUTHEN_CHPASS.
        ChPass = 0x02,
        /// TAC_PLUS_AUTHEN_SENDAUTH.
        SendAuth = 0x04,
    }
}

wire_enum! {
    /// authen_type (RFC 8907 §5.1; NOT_SET only in authorization and accounting).
    AuthenType, UnknownAuthenType {
        /// TAC_PLUS_AUTHEN_TYPE_NOT_SET (authorization/accounting only).
        NotSet = 0x00,
        /// TAC_PLUS_AUTHEN_TYPE_ASCII: prompts and answers.
        Ascii = 0x01,
        /// TAC_PLUS_AUTHEN_TYPE_PAP: the password in the START data.
        Pap = 0x02,
        /// TAC_PLUS_AUTHEN_TYPE_CHAP: id, challenge and response in the START data.
        Chap = 0x03,
        /// TAC_PLUS_AUTHEN_TYPE_ARAP (deprecated, decoded for completeness).
        Arap = 0x04,
        /// TAC_PLUS_AUTHEN_TYPE_MSCHAP.
        MsChap = 0x05,
        /// TAC_PLUS_AUTHEN_TYPE_MSCHAPV2.
        MsChapV2 = 0x06,
    }
}

impl AuthenType {
    /// The minor version RFC 8907 §5.4.1 expects on an authentication START of this type
    /// (1 for PAP, CHAP and MS-CHAP login, 0 otherwise). Enforcing it is server policy.
    pub fn expected_minor_version(self) -> u8 {
        match self {
            AuthenType::Pap | AuthenType::Chap | AuthenType::MsChap | AuthenType::MsChapV2 => 1,
            _ => 0,
        }
    }
}

wire_enum! {
    /// authen_service: what the user is authenticating for (RFC 8907 §5.1).
    AuthenService, UnknownService {
        /// TAC_PLUS_AUTHEN_SVC_NONE.
        None = 0x00,
        /// TAC_PLUS_AUTHEN_SVC_LOGIN.
        Login = 0x01,
        /// TAC_PLUS_AUTHEN_SVC_ENABLE.
        Enable = 0x02,
        /// TAC_PLUS_AUTHEN_SVC_PPP.
        Ppp = 0x03,
        /// TAC_PLUS_AUTHEN_SVC_ARAP (deprecated).
        Arap = 0x04,
        /// TAC_PLUS_AUTHEN_SVC_PT.
        Pt = 0x05,
        /// TAC_PLUS_AUTHEN_SVC_RCMD.
        Rcmd = 0x06,
        /// TAC_PLUS_AUTHEN_SVC_X25.
        X25 = 0x07,
        /// TAC_PLUS_AUTHEN_SVC_NASI.
        Nasi = 0x08,
        /// TAC_PLUS_AUTHEN_SVC_FWPROXY.
        FwProxy = 0x09,
    }
}

wire_enum! {
    /// REPLY status (RFC 8907 §5.2).
    AuthenStatus, UnknownStatus {
        /// TAC_PLUS_AUTHEN_STATUS_PASS.
        Pass = 0x01,
        /// TAC_PLUS_AUTHEN_STATUS_FAIL.
        Fail = 0x02,
        /// TAC_PLUS_AUTHEN_STATUS_GETDATA.
        GetData = 0x03,
        /// TAC_PLUS_AUTHEN_STATUS_GETUSER.
        GetUser = 0x04,
        /// TAC_PLUS_AUTHEN_STATUS_GETPASS.
        GetPass = 0x05,
        /// TAC_PLUS_AUTHEN_STATUS_RESTART.
        Restart = 0x06,
        /// TAC_PLUS_AUTHEN_STATUS_ERROR.
        Error = 0x07,
        /// TAC_PLUS_AUTHEN_STATUS_FOLLOW.
        Follow = 0x21,
    }
}

/// Authentication START (client, seq_no 1).
/// `Debug` shows `data` (a PAP password or CHAP data) as its length only.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AuthenStart<'a> {
    /// LOGIN, CHPASS or SENDAUTH.
    pub action: AuthenAction,
    /// Privilege level, 0..=15.
    pub priv_lvl: u8,
    /// ASCII, PAP, CHAP, … (never NOT_SET).
    pub authen_type: AuthenType,
    /// LOGIN, ENABLE, PPP, …
    pub service: AuthenService,
    /// User name (may be empty: ASCII login then asks for it).
    pub user: &'a [u8],
    /// Port (e.g. `tty0`).
    pub port: &'a [u8],
    /// Remote address of the user.
    pub rem_addr: &'a [u8],
    /// PAP password, CHAP id + challenge + response, … (empty for ASCII).
    pub data: &'a [u8],
}

impl<'a> AuthenStart<'a> {
    /// Fixed part: action, priv_lvl, authen_type, authen_service and four lengths.
    pub const FIXED_LEN: usize = 8;

    /// Decodes a clear body.
    pub fn decode(body: &'a [u8]) -> Result<AuthenStart<'a>, DecodeError> {
        let (fixed, rest) = body
            .split_first_chunk::<8>()
            .ok_or(DecodeError::HeaderTooSmall)?;
        let [action, priv_lvl, authen_type, service, user_len, port_len, rem_len, data_len] =
            *fixed;
        let action = AuthenAction::decode(action)?;
        let priv_lvl = decode_priv_lvl(priv_lvl)?;
        let authen_type = match AuthenType::decode(authen_type)? {
            AuthenType::NotSet => return Err(DecodeError::UnknownAuthenType(0)),
            t => t,
        };
        let service = AuthenService::decode(service)?;
        let [user, port, rem_addr, data] = exact_fields(
            rest,
            [user_len, port_len, rem_len, data_len].map(usize::from),
        )?;
        Ok(AuthenStart {
            action,
            priv_lvl,
            authen_type,
            service,
            user,
            port,
            rem_addr,
            data,
        })
    }

    /// Writes the clear body into `out`; returns its length.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        if self.authen_type == AuthenType::NotSet {
            return Err(EncodeError::InvalidValue);
        }
        let mut w = Writer::new(out);
        w.put(&[
            self.action.as_u8(),
            encode_priv_lvl(self.priv_lvl)?,
            self.authen_type.as_u8(),
            self.service.as_u8(),
            len8(self.user)?,
            len8(self.port)?,
            len8(self.rem_addr)?,
            len8(self.data)?,
        ])?;
        for field in [self.user, self.port, self.rem_addr, self.data] {
            w.put(field)?;
        }
        Ok(w.finish())
    }
}

/// Authentication REPLY (server, even seq_no).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthenReply<'a> {
    /// PASS, FAIL, GETDATA, GETUSER, GETPASS, RESTART, ERROR or FOLLOW.
    pub status: AuthenStatus,
    /// Raw flags ([`REPLY_FLAG_NOECHO`]).
    pub flags: u8,
    /// Message or prompt shown to the user.
    pub server_msg: &'a [u8],
    /// Data for the client (FOLLOW hosts, RESTART's acceptable types, …).
    pub data: &'a [u8],
}

impl<'a> AuthenReply<'a> {
    /// Fixed part: status, flags, server_msg_len (2), data_len (2).
    pub const FIXED_LEN: usize = 6;

    /// Decodes a clear body.
    pub fn decode(body: &'a [u8]) -> Result<AuthenReply<'a>, DecodeError> {
        let (fixed, rest) = body
            .split_first_chunk::<6>()
            .ok_or(DecodeError::HeaderTooSmall)?;
        let [status, flags, m0, m1, d0, d1] = *fixed;
        let status = AuthenStatus::decode(status)?;
        let lens = [u16::from_be_bytes([m0, m1]), u16::from_be_bytes([d0, d1])];
        let [server_msg, data] = exact_fields(rest, lens.map(usize::from))?;
        Ok(AuthenReply {
            status,
            flags,
            server_msg,
            data,
        })
    }

    /// True when the NOECHO flag is set.
    pub fn no_echo(&self) -> bool {
        self.flags & REPLY_FLAG_NOECHO != 0
    }

    /// Writes the clear body into `out`; returns its length.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out);
        w.u8(self.status.as_u8())?;
        w.u8(self.flags)?;
        w.u16(len16(self.server_msg)?)?;
        w.u16(len16(self.data)?)?;
        w.put(self.server_msg)?;
        w.put(self.data)?;
        Ok(w.finish())
    }
}

/// Authentication CONTINUE (client, odd seq_no > 1).
/// `Debug` shows `user_msg` (a password or tokencode) as its length only.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AuthenContinue<'a> {
    /// The user's answer to the last prompt.
    pub user_msg: &'a [u8],
    /// Extra data (or, with ABORT, a reason).
    pub data: &'a [u8],
    /// Raw flags ([`CONTINUE_FLAG_ABORT`]).
    pub flags: u8,
}

impl<'a> AuthenContinue<'a> {
    /// Fixed part: user_msg_len (2), data_len (2), flags.
    pub const FIXED_LEN: usize = 5;

    /// Decodes a clear body.
    pub fn decode(body: &'a [u8]) -> Result<AuthenContinue<'a>, DecodeError> {
        let (fixed, rest) = body
            .split_first_chunk::<5>()
            .ok_or(DecodeError::HeaderTooSmall)?;
        let [u0, u1, d0, d1, flags] = *fixed;
        let lens = [u16::from_be_bytes([u0, u1]), u16::from_be_bytes([d0, d1])];
        let [user_msg, data] = exact_fields(rest, lens.map(usize::from))?;
        Ok(AuthenContinue {
            user_msg,
            data,
            flags,
        })
    }

    /// True when the client aborts the session.
    pub fn abort(&self) -> bool {
        self.flags & CONTINUE_FLAG_ABORT != 0
    }

    /// Writes the clear body into `out`; returns its length.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out);
        w.u16(len16(self.user_msg)?)?;
        w.u16(len16(self.data)?)?;
        w.u8(self.flags)?;
        w.put(self.user_msg)?;
        w.put(self.data)?;
        Ok(w.finish())
    }
}

impl std::fmt::Debug for AuthenStart<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthenStart")
            .field("action", &self.action)
            .field("priv_lvl", &self.priv_lvl)
            .field("authen_type", &self.authen_type)
            .field("service", &self.service)
            .field("user", &String::from_utf8_lossy(self.user))
            .field("port", &String::from_utf8_lossy(self.port))
            .field("rem_addr", &String::from_utf8_lossy(self.rem_addr))
            .field("data", &Redacted(self.data.len()))
            .finish()
    }
}

impl std::fmt::Debug for AuthenContinue<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthenContinue")
            .field("user_msg", &Redacted(self.user_msg.len()))
            .field("data", &String::from_utf8_lossy(self.data))
            .field("flags", &self.flags)
            .finish()
    }
}
