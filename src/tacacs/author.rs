//! Authorization bodies (RFC 8907 §6): REQUEST and RESPONSE, and the authen_method enum
//! shared with accounting.
//!
//! This file owns the zero-copy views (argument count, argument lengths and field lengths
//! checked to fill the body exactly) and both encoders (RESPONSE for the server, REQUEST for
//! clients). It must not allocate, panic, or interpret arguments (policy does that).

use super::body::{decode_priv_lvl, encode_priv_lvl, fields_and_args, len16, len8, Args, Writer};
use super::{AuthenService, AuthenType, DecodeError, EncodeError};

wire_enum! {
    /// How the user was authenticated (RFC 8907 §6.1).
    AuthenMethod, UnknownAuthenMethod {
        /// TAC_PLUS_AUTHEN_METH_NOT_SET.
        NotSet = 0x00,
        /// TAC_PLUS_AUTHEN_METH_NONE.
        None = 0x01,
        /// TAC_PLUS_AUTHEN_METH_KRB5.
        Krb5 = 0x02,
        /// TAC_PLUS_AUTHEN_METH_LINE.
        Line = 0x03,
        /// TAC_PLUS_AUTHEN_METH_ENABLE.
        Enable = 0x04,
        /// TAC_PLUS_AUTHEN_METH_LOCAL.
        Local = 0x05,
        /// TAC_PLUS_AUTHEN_METH_TACACSPLUS.
        TacacsPlus = 0x06,
        /// TAC_PLUS_AUTHEN_METH_GUEST.
        Guest = 0x08,
        /// TAC_PLUS_AUTHEN_METH_RADIUS.
        Radius = 0x10,
        /// TAC_PLUS_AUTHEN_METH_KRB4.
        Krb4 = 0x11,
        /// TAC_PLUS_AUTHEN_METH_RCMD.
        Rcmd = 0x20,
    }
}

wire_enum! {
    /// Authorization RESPONSE status (RFC 8907 §6.2).
    AuthorStatus, UnknownStatus {
        /// TAC_PLUS_AUTHOR_STATUS_PASS_ADD: add the returned arguments to the request's.
        PassAdd = 0x01,
        /// TAC_PLUS_AUTHOR_STATUS_PASS_REPL: replace the request's arguments.
        PassRepl = 0x02,
        /// TAC_PLUS_AUTHOR_STATUS_FAIL.
        Fail = 0x10,
        /// TAC_PLUS_AUTHOR_STATUS_ERROR.
        Error = 0x11,
        /// TAC_PLUS_AUTHOR_STATUS_FOLLOW.
        Follow = 0x21,
    }
}

/// Authorization REQUEST (client).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthorRequest<'a> {
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
    /// `service=shell`, `cmd=show`, … (may contain zero-length arguments).
    pub args: Args<'a>,
}

impl<'a> AuthorRequest<'a> {
    /// Fixed part before the argument lengths: method, priv_lvl, type, service, three lengths,
    /// arg_cnt.
    pub const FIXED_LEN: usize = 8;

    /// Decodes a clear body.
    pub fn decode(body: &'a [u8]) -> Result<AuthorRequest<'a>, DecodeError> {
        let (fixed, rest) = body
            .split_first_chunk::<8>()
            .ok_or(DecodeError::HeaderTooSmall)?;
        let [method, priv_lvl, authen_type, service, user_len, port_len, rem_len, arg_cnt] = *fixed;
        let authen_method = AuthenMethod::decode(method)?;
        let priv_lvl = decode_priv_lvl(priv_lvl)?;
        let authen_type = AuthenType::decode(authen_type)?;
        let service = AuthenService::decode(service)?;
        let ([user, port, rem_addr], args) = fields_and_args(
            rest,
            arg_cnt,
            [user_len, port_len, rem_len].map(usize::from),
        )?;
        Ok(AuthorRequest {
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

/// Authorization RESPONSE (server).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthorResponse<'a> {
    /// PASS_ADD, PASS_REPL, FAIL, ERROR or FOLLOW.
    pub status: AuthorStatus,
    /// Arguments to add or replace (e.g. `priv-lvl=15`).
    pub args: Args<'a>,
    /// Message for the user.
    pub server_msg: &'a [u8],
    /// Message for the administrator (logs).
    pub data: &'a [u8],
}

impl<'a> AuthorResponse<'a> {
    /// Fixed part before the argument lengths: status, arg_cnt, server_msg_len (2),
    /// data_len (2).
    pub const FIXED_LEN: usize = 6;

    /// Decodes a clear body.
    pub fn decode(body: &'a [u8]) -> Result<AuthorResponse<'a>, DecodeError> {
        let (fixed, rest) = body
            .split_first_chunk::<6>()
            .ok_or(DecodeError::HeaderTooSmall)?;
        let [status, arg_cnt, m0, m1, d0, d1] = *fixed;
        let status = AuthorStatus::decode(status)?;
        let lens = [u16::from_be_bytes([m0, m1]), u16::from_be_bytes([d0, d1])];
        let ([server_msg, data], args) = fields_and_args(rest, arg_cnt, lens.map(usize::from))?;
        Ok(AuthorResponse {
            status,
            args,
            server_msg,
            data,
        })
    }

    /// Writes the clear body into `out`; returns its length.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out);
        w.u8(self.status.as_u8())?;
        w.u8(self.args.count()?)?;
        w.u16(len16(self.server_msg)?)?;
        w.u16(len16(self.data)?)?;
        self.args.write_lens(&mut w)?;
        w.put(self.server_msg)?;
        w.put(self.data)?;
        self.args.write_values(&mut w)?;
        Ok(w.finish())
    }
}
