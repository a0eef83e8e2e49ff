//! FreeRADIUS-format dictionary: attribute names, numbers, types, flags, VALUE names and
//! vendors, and the encoding of configured `name = value` pairs into on-wire attributes.
//!
//! It owns the dictionary grammar (`ATTRIBUTE`, `VALUE`, `VENDOR`, `BEGIN-VENDOR`/`END-VENDOR`,
//! `$INCLUDE`, comments) and value parsing by type. Parsing is a pure function over text plus an
//! include-resolver closure ([`Dictionary::parse_str`]); only [`Dictionary::load`] reads files.
//! It runs at configuration time, so it may allocate, but it must never panic on bad input and
//! every error names the file and line. It must not hide passwords or sign packets: encrypted
//! attributes are refused here and handled per packet by the codec.
//!
//! This file holds the model and its lookups; `parse.rs` the grammar and includes, `encode.rs`
//! the values.

use std::collections::{BTreeMap, HashMap};

mod encode;
mod parse;

#[cfg(test)]
mod tests;

/// Data type of an attribute, as named in dictionary files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttrType {
    /// UTF-8 text (`string`).
    String,
    /// Opaque bytes (`octets`).
    Octets,
    /// 32-bit unsigned integer (`integer`, `uint32`).
    Integer,
    /// IPv4 address (`ipaddr`, `ipv4addr`).
    IpAddr,
    /// 32-bit seconds since the Unix epoch (`date`).
    Date,
    /// IPv6 address (`ipv6addr`).
    Ipv6Addr,
    /// IPv6 prefix: reserved octet, prefix length, prefix (`ipv6prefix`, RFC 3162 §2.3).
    Ipv6Prefix,
    /// IPv4 prefix: reserved octet, prefix length, 4 octets (`ipv4prefix`, RFC 6572).
    Ipv4Prefix,
    /// 8-octet interface identifier (`ifid`).
    Ifid,
    /// 64-bit unsigned integer (`integer64`, `uint64`).
    Integer64,
    /// 8-bit unsigned integer (`byte`, `uint8`).
    Byte,
    /// 16-bit unsigned integer (`short`, `uint16`).
    Short,
    /// 32-bit signed integer (`signed`, `int32`).
    Signed,
    /// 6-octet Ethernet address (`ether`).
    Ether,
    /// Ascend binary filter (`abinary`), handled as octets.
    Abinary,
    /// Type-length-value container (`tlv`), handled as octets.
    Tlv,
    /// Vendor-Specific container (`vsa`), handled as octets.
    Vsa,
    /// IPv4 or IPv6 address (`combo-ip`).
    ComboIp,
    /// Extended attribute container (`extended`, RFC 6929), handled as octets.
    Extended,
    /// Long extended attribute container (`long-extended`, RFC 6929), handled as octets.
    LongExtended,
}

impl AttrType {
    /// Parses a dictionary type name (a `[size]` suffix such as `octets[16]` is accepted).
    pub fn from_name(name: &str) -> Option<AttrType> {
        let base = name.split_once('[').map_or(name, |(b, _)| b);
        Some(match base.to_ascii_lowercase().as_str() {
            "string" => AttrType::String,
            "octets" => AttrType::Octets,
            "integer" | "uint32" => AttrType::Integer,
            "ipaddr" | "ipv4addr" => AttrType::IpAddr,
            "date" => AttrType::Date,
            "ipv6addr" => AttrType::Ipv6Addr,
            "ipv6prefix" => AttrType::Ipv6Prefix,
            "ipv4prefix" => AttrType::Ipv4Prefix,
            "ifid" => AttrType::Ifid,
            "integer64" | "uint64" => AttrType::Integer64,
            "byte" | "uint8" => AttrType::Byte,
            "short" | "uint16" => AttrType::Short,
            "signed" | "int32" => AttrType::Signed,
            "ether" => AttrType::Ether,
            "abinary" => AttrType::Abinary,
            "tlv" => AttrType::Tlv,
            "vsa" => AttrType::Vsa,
            "combo-ip" => AttrType::ComboIp,
            "extended" => AttrType::Extended,
            "long-extended" => AttrType::LongExtended,
            _ => return None,
        })
    }

    /// Largest number a VALUE may give this type; `None` when VALUEs make no sense for it.
    fn value_max(self) -> Option<u64> {
        match self {
            AttrType::Byte => Some(u64::from(u8::MAX)),
            AttrType::Short => Some(u64::from(u16::MAX)),
            AttrType::Integer | AttrType::Date => Some(u64::from(u32::MAX)),
            AttrType::Signed => Some(u64::from(u32::MAX)),
            AttrType::Integer64 => Some(u64::MAX),
            _ => None,
        }
    }
}

/// A vendor (`VENDOR name number [format=t,l]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VendorDef {
    /// Vendor name as written in the dictionary.
    pub name: String,
    /// IANA Private Enterprise Number.
    pub id: u32,
    /// Octets of the vendor type field (1, 2 or 4; RFC 2865 recommends 1).
    pub type_len: u8,
    /// Octets of the vendor length field (0, 1 or 2; RFC 2865 recommends 1).
    pub length_len: u8,
}

/// One attribute definition (`ATTRIBUTE name number type [flags]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttributeDef {
    /// Attribute name as written in the dictionary.
    pub name: String,
    /// Vendor number; 0 for standard attributes.
    pub vendor: u32,
    /// Attribute (or vendor type) number.
    pub number: u32,
    /// Data type.
    pub ty: AttrType,
    /// `encrypt=N`: 0 none, 1 User-Password style, 2 Tunnel-Password style, 3 Ascend style.
    pub encrypt: u8,
    /// `has_tag`: carries an RFC 2868 tag.
    pub has_tag: bool,
    /// `concat`: long values are split over several attributes (EAP-Message style).
    pub concat: bool,
    /// Any other flags, kept verbatim.
    pub other_flags: Vec<String>,
    /// VALUE names for this attribute.
    pub values: BTreeMap<String, u64>,
}

impl AttributeDef {
    /// Number for a VALUE name (case-insensitive).
    pub fn value(&self, name: &str) -> Option<u64> {
        self.values.get(name).copied().or_else(|| {
            self.values
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        })
    }

    /// First VALUE name for a number (for logs).
    pub fn value_name(&self, number: u64) -> Option<&str> {
        self.values
            .iter()
            .find(|(_, v)| **v == number)
            .map(|(k, _)| k.as_str())
    }
}

/// A dictionary error, with the file and line it comes from.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {reason}")]
pub struct DictError {
    /// File name (as given to the loader or returned by the include resolver).
    pub file: String,
    /// 1-based line; 0 when the file itself could not be read.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// Why a `name = value` pair could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    /// No attribute of that name in the dictionary.
    #[error("unknown attribute {0}")]
    UnknownAttribute(String),
    /// The value does not parse for the attribute's type.
    #[error("bad value for {attribute}: {reason}")]
    BadValue {
        /// Attribute name.
        attribute: String,
        /// What is wrong.
        reason: String,
    },
    /// The encoded value does not fit in one attribute.
    #[error("value too long for {0}")]
    TooLong(String),
}

/// A loaded dictionary: attributes by name and by (vendor, number), and vendors.
#[derive(Clone, Debug, Default)]
pub struct Dictionary {
    attrs: Vec<AttributeDef>,
    by_name: HashMap<String, usize>,
    by_number: HashMap<(u32, u32), usize>,
    vendors: Vec<VendorDef>,
    vendor_by_name: HashMap<String, usize>,
}

/// Include resolver for [`Dictionary::parse_str`]: takes a path (already joined with the
/// including file's directory) and returns `(name, text)`; `name` identifies the file for loop
/// detection, error messages and resolving its own includes. `Err` carries a reason.
pub type IncludeResolver<'a> = dyn FnMut(&str) -> Result<(String, String), String> + 'a;

impl Dictionary {
    /// Attribute by name (case-insensitive).
    pub fn attribute(&self, name: &str) -> Option<&AttributeDef> {
        self.by_name
            .get(&name.to_ascii_lowercase())
            .and_then(|&i| self.attrs.get(i))
    }

    /// Attribute by vendor (0 = standard) and number.
    pub fn by_number(&self, vendor: u32, number: u32) -> Option<&AttributeDef> {
        self.by_number
            .get(&(vendor, number))
            .and_then(|&i| self.attrs.get(i))
    }

    /// Vendor by name (case-insensitive).
    pub fn vendor(&self, name: &str) -> Option<&VendorDef> {
        self.vendor_by_name
            .get(&name.to_ascii_lowercase())
            .and_then(|&i| self.vendors.get(i))
    }

    /// Vendor by IANA number.
    pub fn vendor_by_id(&self, id: u32) -> Option<&VendorDef> {
        self.vendors.iter().find(|v| v.id == id)
    }

    /// Number of attribute definitions.
    pub fn len(&self) -> usize {
        self.attrs.len()
    }

    /// True when no attribute is defined.
    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty()
    }
}
