//! Accounting bodies (RFC 8907 §7): REQUEST and REPLY, with the flag and status enums.
//!
//! This file owns the zero-copy views (argument count, argument lengths and field lengths
//! checked to fill the body exactly; a zero-length argument is legal) and both encoders (REPLY
//! for the server, REQUEST for clients). It must not allocate, panic, or write records anywhere
//! (the server stores them durably before answering SUCCESS).

use super::body::{
    decode_priv_lvl, encode_priv_lvl, exact_fields, fields_and_args, len16, len8, Args, Writer,
};
use super::{AuthenMethod, AuthenService, AuthenType, DecodeError, EncodeError};

wire_enum! {
    /// The accounting record kind: the flag combinations RFC 8907 §7.2 allows.
    AcctFlags, InvalidAcctFlags {
        /// TAC_PLUS_ACCT_FLAG_START.
        Start = 0x02,
        /// TAC_PLUS_ACCT_FLAG_STOP.
        Stop = 0x04,
        /// TAC_PLUS_ACCT_FLAG_WATCHDOG without START: a keep-alive.
        Watchdog = 0x08,
        /// WATCHDOG with START: an update with fresh data.
        WatchdogUpdate = 0x0a,
    }
}

wire_enum! {
    /// Accounting REPLY status (RFC 8907 §7.3).
    AcctStatus, UnknownStatus {
        /// TAC_PLUS_ACCT_STATUS_SUCCESS: the record is stored.
        Success = 0x01,
        /// TAC_PLUS_ACCT_STATUS_ERROR.
        Error = 0x02,
        /// TAC_PLUS_ACCT_STATUS_FOLLOW.
        Follow = 0x21,
    }
}

/// Accounting REQUEST (client).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcctRequest<'a> {
    /// START, STOP, WATCHDOG or WATCHDOG|START.
    pub flags: AcctFlags,
    /// How the user was authenticated.
    pub authen_method: AuthenMethod,
    /// Privilege level, 0..=15.
    pub priv_lvl: u8,
    /// authen_type (NOT_SET allowed).
    pub authen_type: AuthenType,
    /// authen_service.
    pub service: AuthenService,
    /// User name.
    pub user: &'a [u8],
    /// Port.
    pub port: &'a [u8],
    /// Remote address.
    pub rem_addr: &'a [u8],
    /// `start_time=…`, `task_id=…`, … (may contain zero-length arguments).
    pub args: Args<'a>,
}

impl<'a> AcctRequest<'a> {
    /// Fixed part before the argument lengths: flags, method, priv_lvl, type, service, three
    /// lengths, arg_cnt.
    pub const FIXED_LEN: usize = 9;

    /// Decodes a clear body.
    pub fn decode(body: &'a [u8]) -> Result<AcctRequest<'a>, DecodeError> {
        let (fixed, rest) = body
            .split_first_chunk::<9>()
            .ok_or(DecodeError::HeaderTooSmall)?;
        let [flags, method, priv_lvl, authen_type, service, user_len, port_len, rem_len, arg_cnt] =
            *fixed;
        let flags = AcctFlags::decode(flags)?;
        let authen_method = AuthenMethod::decode(method)?;
        let priv_lvl = decode_priv_lvl(priv_lvl)?;
        let authen_type = AuthenType::decode(authen_type)?;
        let service = AuthenService::decode(service)?;
        let ([user, port, rem_addr], args) = fields_and_args(
            rest,
            arg_cnt,
            [user_len, port_len, rem_len].map(usize::from),
        )?;
        Ok(AcctRequest {
            flags,
            authen_method,
            priv_lvl,
            authen_type,
            service,
            user,
            port,
            rem_addr,
            args,
        })
    }

    /// Writes the clear body into `out`; returns its length.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out);
        w.put(&[
            self.flags.as_u8(),
            self.authen_method.as_u8(),
            encode_priv_lvl(self.priv_lvl)?,
            self.authen_type.as_u8(),
            self.service.as_u8(),
            len8(self.user)?,
            len8(self.port)?,
            len8(self.rem_addr)?,
            self.args.count()?,
        ])?;
        self.args.write_lens(&mut w)?;
        for field in [self.user, self.port, self.rem_addr] {
            w.put(field)?;
        }
        self.args.write_values(&mut w)?;
        Ok(w.finish())
    }
}

/// Accounting REPLY (server).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcctReply<'a> {
    /// SUCCESS, ERROR or FOLLOW.
    pub status: AcctStatus,
    /// Message for the user.
    pub server_msg: &'a [u8],
    /// Message for the administrator.
    pub data: &'a [u8],
}

impl<'a> AcctReply<'a> {
    /// Fixed part: server_msg_len (2), data_len (2), status.
    pub const FIXED_LEN: usize = 5;

    /// Decodes a clear body.
    pub fn decode(body: &'a [u8]) -> Result<AcctReply<'a>, DecodeError> {
        let (fixed, rest) = body
            .split_first_chunk::<5>()
            .ok_or(DecodeError::HeaderTooSmall)?;
        let [m0, m1, d0, d1, status] = *fixed;
        let status = AcctStatus::decode(status)?;
        let lens = [u16::from_be_bytes([m0, m1]), u16::from_be_bytes([d0, d1])];
        let [server_msg, data] = exact_fields(rest, lens.map(usize::from))?;
        Ok(AcctReply {
            status,
            server_msg,
            data,
        })
    }

    /// Writes the clear body into `out`; returns its length.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out);
        w.u16(len16(self.server_msg)?)?;
        w.u16(len16(self.data)?)?;
        w.u8(self.status.as_u8())?;
        w.put(self.server_msg)?;
        w.put(self.data)?;
        Ok(w.finish())
    }
}
