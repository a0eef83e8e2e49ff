//! Shared body plumbing: bounds-checked field splitting, the zero-copy argument list
//! ([`Args`]), the [`Body`] enum that picks the body kind from the header, and the
//! packet-level [`split_packet`] / [`encode_packet`].
//!
//! It owns the exact-fit rule (the sum of every length field equals the body) and the caps on
//! what an encoder may write. It must not allocate, panic, or choose sequence numbers (that is
//! [`super::Session`]'s job).

use super::header::{FLAG_UNENCRYPTED, HEADER_LEN, MAX_BODY_LEN};
use super::obfuscation::obfuscate;
use super::{
    AcctReply, AcctRequest, AuthenContinue, AuthenReply, AuthenStart, AuthorRequest,
    AuthorResponse, DecodeError, EncodeError, Header, PacketType,
};

/// Highest privilege level (RFC 8907 §5.1: 0..=15).
pub(crate) const MAX_PRIV_LVL: u8 = 15;

/// Checks a privilege level read from the wire.
pub(crate) fn decode_priv_lvl(v: u8) -> Result<u8, DecodeError> {
    if v > MAX_PRIV_LVL {
        return Err(DecodeError::InvalidPrivLvl(v));
    }
    Ok(v)
}

/// Splits `rest` into `K` fields of the given lengths, in order; `overflow` when they do not
/// fit. Returns the fields and what is left.
pub(crate) fn split_fields<'a, const K: usize>(
    mut rest: &'a [u8],
    lens: [usize; K],
    overflow: DecodeError,
) -> Result<([&'a [u8]; K], &'a [u8]), DecodeError> {
    let mut out: [&'a [u8]; K] = [&[]; K];
    for (slot, len) in out.iter_mut().zip(lens) {
        let (field, tail) = rest.split_at_checked(len).ok_or(overflow)?;
        *slot = field;
        rest = tail;
    }
    Ok((out, rest))
}

/// Splits `rest` into `K` fields that must fill it exactly (no arguments follow).
pub(crate) fn exact_fields<const K: usize>(
    rest: &[u8],
    lens: [usize; K],
) -> Result<[&[u8]; K], DecodeError> {
    let (fields, tail) = split_fields(rest, lens, DecodeError::LengthOverflow)?;
    if !tail.is_empty() {
        return Err(DecodeError::TrailingBytes);
    }
    Ok(fields)
}

/// Reads an argument list: `arg_cnt` length octets at the start of `lens_and_rest`, then the
/// `K` fields, then the arguments, all of which must fill the body exactly.
pub(crate) fn fields_and_args<'a, const K: usize>(
    lens_and_rest: &'a [u8],
    arg_cnt: u8,
    lens: [usize; K],
) -> Result<([&'a [u8]; K], Args<'a>), DecodeError> {
    let (arg_lens, rest) = lens_and_rest
        .split_at_checked(usize::from(arg_cnt))
        .ok_or(DecodeError::ArgumentOverflow)?;
    let (fields, args) = split_fields(rest, lens, DecodeError::LengthOverflow)?;
    let total: usize = arg_lens.iter().map(|&l| usize::from(l)).sum();
    if total > args.len() {
        return Err(DecodeError::ArgumentOverflow);
    }
    if total < args.len() {
        return Err(DecodeError::TrailingBytes);
    }
    Ok((
        fields,
        Args(ArgsRepr::Wire {
            lens: arg_lens,
            data: args,
        }),
    ))
}

/// Stands in for a secret (a password, a tokencode, CHAP data) in `Debug` output: only its
/// length is shown, so that logging a packet or an event never leaks a credential.
pub(crate) struct Redacted(pub(crate) usize);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} octets redacted>", self.0)
    }
}

/// Bounds-checked writer into a caller's buffer.
pub(crate) struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> Writer<'b> {
    pub(crate) fn new(buf: &'b mut [u8]) -> Writer<'b> {
        Writer { buf, len: 0 }
    }

    /// Appends `bytes`, keeping the body under [`MAX_BODY_LEN`].
    pub(crate) fn put(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        let end = self
            .len
            .checked_add(bytes.len())
            .ok_or(EncodeError::BodyTooLarge)?;
        if end > MAX_BODY_LEN as usize {
            return Err(EncodeError::BodyTooLarge);
        }
        self.buf
            .get_mut(self.len..end)
            .ok_or(EncodeError::BufferTooSmall)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    pub(crate) fn u8(&mut self, v: u8) -> Result<(), EncodeError> {
        self.put(&[v])
    }

    pub(crate) fn u16(&mut self, v: u16) -> Result<(), EncodeError> {
        self.put(&v.to_be_bytes())
    }

    /// Octets written.
    pub(crate) fn finish(self) -> usize {
        self.len
    }
}

/// Length of a field with a one-octet length.
pub(crate) fn len8(field: &[u8]) -> Result<u8, EncodeError> {
    u8::try_from(field.len()).map_err(|_| EncodeError::FieldTooLong)
}

/// Length of a field with a two-octet length.
pub(crate) fn len16(field: &[u8]) -> Result<u16, EncodeError> {
    u16::try_from(field.len()).map_err(|_| EncodeError::FieldTooLong)
}

/// Checks a privilege level before writing it.
pub(crate) fn encode_priv_lvl(v: u8) -> Result<u8, EncodeError> {
    if v > MAX_PRIV_LVL {
        return Err(EncodeError::InvalidValue);
    }
    Ok(v)
}

/// The argument list of an authorization or accounting packet (`attribute=value` or
/// `attribute*value` octet strings), either a view of a decoded body or a caller's list to
/// encode. Both iterate the same way and compare equal when their arguments do.
#[derive(Clone, Copy, Debug)]
pub struct Args<'a>(ArgsRepr<'a>);

#[derive(Clone, Copy, Debug)]
enum ArgsRepr<'a> {
    /// Validated by decode: `data.len()` is the sum of `lens`.
    Wire {
        lens: &'a [u8],
        data: &'a [u8],
    },
    List(&'a [&'a [u8]]),
}

impl<'a> Args<'a> {
    /// Arguments to encode.
    pub fn from_list(list: &'a [&'a [u8]]) -> Args<'a> {
        Args(ArgsRepr::List(list))
    }

    /// No arguments.
    pub fn empty() -> Args<'a> {
        Args(ArgsRepr::List(&[]))
    }

    /// Number of arguments.
    pub fn len(&self) -> usize {
        match self.0 {
            ArgsRepr::Wire { lens, .. } => lens.len(),
            ArgsRepr::List(list) => list.len(),
        }
    }

    /// True when there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Iterates the arguments in wire order (a zero-length argument is yielded as `b""`).
    pub fn iter(&self) -> ArgsIter<'a> {
        match self.0 {
            ArgsRepr::Wire { lens, data } => ArgsIter(IterRepr::Wire { lens, data }),
            ArgsRepr::List(list) => ArgsIter(IterRepr::List(list.iter())),
        }
    }

    /// The first argument named `name` (`name=value` mandatory or `name*value` optional):
    /// returns the value.
    pub fn find(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.iter().find_map(|arg| {
            let rest = arg.strip_prefix(name)?;
            match rest.split_first() {
                Some((b'=' | b'*', value)) => Some(value),
                _ => None,
            }
        })
    }

    /// Argument count octet and per-argument length octets, checked.
    fn check(&self) -> Result<u8, EncodeError> {
        for arg in self.iter() {
            u8::try_from(arg.len()).map_err(|_| EncodeError::ArgumentTooLong)?;
        }
        u8::try_from(self.len()).map_err(|_| EncodeError::ArgumentTooLong)
    }

    /// Writes the argument count. Callers then write the fixed fields, the length octets
    /// ([`Args::write_lens`]) and, after the strings, the values ([`Args::write_values`]).
    pub(crate) fn count(&self) -> Result<u8, EncodeError> {
        self.check()
    }

    pub(crate) fn write_lens(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        for arg in self.iter() {
            w.u8(u8::try_from(arg.len()).map_err(|_| EncodeError::ArgumentTooLong)?)?;
        }
        Ok(())
    }

    pub(crate) fn write_values(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        for arg in self.iter() {
            w.put(arg)?;
        }
        Ok(())
    }
}

impl PartialEq for Args<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Args<'_> {}

impl<'a> IntoIterator for Args<'a> {
    type Item = &'a [u8];
    type IntoIter = ArgsIter<'a>;

    fn into_iter(self) -> ArgsIter<'a> {
        self.iter()
    }
}

/// Iterator over [`Args`].
#[derive(Clone, Debug)]
pub struct ArgsIter<'a>(IterRepr<'a>);

#[derive(Clone, Debug)]
enum IterRepr<'a> {
    Wire { lens: &'a [u8], data: &'a [u8] },
    List(std::slice::Iter<'a, &'a [u8]>),
}

impl<'a> Iterator for ArgsIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        match &mut self.0 {
            IterRepr::Wire { lens, data } => {
                let (&len, rest_lens) = lens.split_first()?;
                // Decode checked that the lengths fit; a short tail simply ends iteration.
                let (arg, rest) = data.split_at_checked(usize::from(len))?;
                *lens = rest_lens;
                *data = rest;
                Some(arg)
            }
            IterRepr::List(it) => it.next().copied(),
        }
    }
}

/// A decoded body. Which kind it is follows from the header: the packet type, and the
/// direction given by the sequence number (odd from the client, even from the server; an
/// authentication packet with seq_no 1 is a START, later odd ones are CONTINUEs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body<'a> {
    /// Authentication START (client, seq_no 1).
    AuthenStart(AuthenStart<'a>),
    /// Authentication REPLY (server).
    AuthenReply(AuthenReply<'a>),
    /// Authentication CONTINUE (client, odd seq_no > 1).
    AuthenContinue(AuthenContinue<'a>),
    /// Authorization REQUEST (client).
    AuthorRequest(AuthorRequest<'a>),
    /// Authorization RESPONSE (server).
    AuthorResponse(AuthorResponse<'a>),
    /// Accounting REQUEST (client).
    AcctRequest(AcctRequest<'a>),
    /// Accounting REPLY (server).
    AcctReply(AcctReply<'a>),
}

impl<'a> Body<'a> {
    /// Decodes a clear (already de-obfuscated) body of a packet with `header`. The body must be
    /// exactly `header.length` octets and its own length fields must fill it exactly.
    pub fn decode(header: &Header, body: &'a [u8]) -> Result<Body<'a>, DecodeError> {
        if body.len() != header.body_len() {
            return Err(DecodeError::LengthMismatch);
        }
        let client = header.from_client();
        Ok(match header.packet_type {
            PacketType::Authentication if header.seq_no == 1 => {
                Body::AuthenStart(AuthenStart::decode(body)?)
            }
            PacketType::Authentication if client => {
                Body::AuthenContinue(AuthenContinue::decode(body)?)
            }
            PacketType::Authentication => Body::AuthenReply(AuthenReply::decode(body)?),
            PacketType::Authorization if client => {
                Body::AuthorRequest(AuthorRequest::decode(body)?)
            }
            PacketType::Authorization => Body::AuthorResponse(AuthorResponse::decode(body)?),
            PacketType::Accounting if client => Body::AcctRequest(AcctRequest::decode(body)?),
            PacketType::Accounting => Body::AcctReply(AcctReply::decode(body)?),
        })
    }

    /// The packet type this body belongs to.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Body::AuthenStart(_) | Body::AuthenReply(_) | Body::AuthenContinue(_) => {
                PacketType::Authentication
            }
            Body::AuthorRequest(_) | Body::AuthorResponse(_) => PacketType::Authorization,
            Body::AcctRequest(_) | Body::AcctReply(_) => PacketType::Accounting,
        }
    }

    /// True for the bodies a client sends.
    pub fn from_client(&self) -> bool {
        matches!(
            self,
            Body::AuthenStart(_)
                | Body::AuthenContinue(_)
                | Body::AuthorRequest(_)
                | Body::AcctRequest(_)
        )
    }

    /// Writes the clear body into `out`; returns its length.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        match self {
            Body::AuthenStart(b) => b.encode(out),
            Body::AuthenReply(b) => b.encode(out),
            Body::AuthenContinue(b) => b.encode(out),
            Body::AuthorRequest(b) => b.encode(out),
            Body::AuthorResponse(b) => b.encode(out),
            Body::AcctRequest(b) => b.encode(out),
            Body::AcctReply(b) => b.encode(out),
        }
    }
}

/// How [`encode_packet`] protects the body.
#[derive(Clone, Copy)]
pub enum Obfuscation<'k> {
    /// MD5 pad with this key; the UNENCRYPTED flag is cleared.
    Key(&'k [u8]),
    /// No obfuscation; the UNENCRYPTED flag is set (tests, TLS per RFC 9887).
    Clear,
}

impl std::fmt::Debug for Obfuscation<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Obfuscation::Key(_) => f.write_str("Key(..)"),
            Obfuscation::Clear => f.write_str("Clear"),
        }
    }
}

/// Splits a whole packet (exactly header + body, as in tests, fuzzing or a datagram-like
/// buffer) into its decoded header and the still-obfuscated body. The body length is capped
/// before the body is looked at, and must match the bytes present exactly.
pub fn split_packet(bytes: &[u8]) -> Result<(Header, &[u8]), DecodeError> {
    let (head, body) = bytes
        .split_first_chunk::<HEADER_LEN>()
        .ok_or(DecodeError::TooShort)?;
    let header = Header::decode(head)?;
    if body.len() != header.body_len() {
        return Err(DecodeError::LengthMismatch);
    }
    Ok((header, body))
}

/// Writes a whole packet into `buf`: `header` (its `length` is replaced by the body's, and the
/// UNENCRYPTED flag is set or cleared to match `obfuscation`), then `body`, obfuscated with the
/// key if one is given. Returns the packet. The header's type must match the body's.
pub fn encode_packet<'b>(
    header: &Header,
    body: &Body<'_>,
    obfuscation: Obfuscation<'_>,
    buf: &'b mut [u8],
) -> Result<&'b [u8], EncodeError> {
    if header.packet_type != body.packet_type() {
        return Err(EncodeError::TypeMismatch);
    }
    let (head, rest) = buf
        .split_first_chunk_mut::<HEADER_LEN>()
        .ok_or(EncodeError::BufferTooSmall)?;
    let body_len = body.encode(rest)?;
    let mut header = *header;
    header.length = u32::try_from(body_len).map_err(|_| EncodeError::BodyTooLarge)?;
    match obfuscation {
        Obfuscation::Key(key) => {
            header.flags &= !FLAG_UNENCRYPTED;
            let body_bytes = rest
                .get_mut(..body_len)
                .ok_or(EncodeError::BufferTooSmall)?;
            obfuscate(key, &header, body_bytes);
        }
        Obfuscation::Clear => header.flags |= FLAG_UNENCRYPTED,
    }
    *head = header.encode();
    let total = HEADER_LEN + body_len;
    let buf: &'b [u8] = buf;
    buf.get(..total).ok_or(EncodeError::BufferTooSmall)
}
