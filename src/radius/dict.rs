//! FreeRADIUS-format dictionary: attribute names, numbers, types, flags, VALUE names and
//! vendors, and the encoding of configured `name = value` pairs into on-wire attributes.
//!
//! It owns the dictionary grammar (`ATTRIBUTE`, `VALUE`, `VENDOR`, `BEGIN-VENDOR`/`END-VENDOR`,
//! `$INCLUDE`, comments) and value parsing by type. Parsing is a pure function over text plus an
//! include-resolver closure ([`Dictionary::parse_str`]); only [`Dictionary::load`] reads files.
//! It runs at configuration time, so it may allocate, but it must never panic on bad input and
//! every error names the file and line. It must not hide passwords or sign packets: encrypted
//! attributes are refused here and handled per packet by the codec.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use super::{attr, MAX_ATTR_VALUE_LEN};

/// Deepest `$INCLUDE` nesting accepted (a guard in addition to loop detection).
const MAX_INCLUDE_DEPTH: usize = 32;

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
    /// Reads `path` and every file it `$INCLUDE`s (paths relative to the including file).
    pub fn load(path: &Path) -> Result<Dictionary, DictError> {
        let mut read = |p: &str| -> Result<(String, String), String> {
            let canonical = std::fs::canonicalize(p).map_err(|e| e.to_string())?;
            let text = std::fs::read_to_string(&canonical).map_err(|e| e.to_string())?;
            Ok((canonical.to_string_lossy().into_owned(), text))
        };
        let (name, text) = read(&path.to_string_lossy()).map_err(|reason| DictError {
            file: path.display().to_string(),
            line: 0,
            reason,
        })?;
        Dictionary::parse_str(&name, &text, &mut read)
    }

    /// Parses dictionary `text` named `name`; `include` resolves `$INCLUDE` paths (already joined
    /// with the directory of the including file's name) to `(name, text)`. Pure: no I/O of its own.
    pub fn parse_str(
        name: &str,
        text: &str,
        include: &mut IncludeResolver<'_>,
    ) -> Result<Dictionary, DictError> {
        let mut parser = Parser {
            dict: Dictionary::default(),
            include,
            stack: vec![name.to_owned()],
        };
        parser.parse_file(name, text)?;
        Ok(parser.dict)
    }

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

    /// Full on-wire attribute bytes for `name = value` (VSA wrapping for vendor attributes),
    /// parsing `value` by type: string (optionally in double quotes), octets (`0x` hex, else the
    /// text's bytes), integer/short/byte/integer64/signed (decimal, `0x` hex or a VALUE name),
    /// ipaddr, ipv6addr, ipv6prefix (`2001:db8::/32`), ipv4prefix, date (Unix seconds), ifid
    /// (`a:b:c:d`), ether (`aa:bb:cc:dd:ee:ff`), combo-ip. `Name:N` sets the RFC 2868 tag of a
    /// `has_tag` attribute. Encrypted attributes (`encrypt=N`) are refused: they are hidden per
    /// packet.
    pub fn encode_attribute(&self, name: &str, value: &str) -> Result<Vec<u8>, ValueError> {
        let (base, tag) = split_tag(name);
        let def = self
            .attribute(base)
            .ok_or_else(|| ValueError::UnknownAttribute(name.to_owned()))?;
        let bad = |reason: &str| ValueError::BadValue {
            attribute: def.name.clone(),
            reason: reason.to_owned(),
        };
        if def.encrypt != 0 {
            return Err(bad(
                "encrypted attributes are hidden per packet, not encoded statically",
            ));
        }
        let tag = match tag {
            None => None,
            Some(t) if !def.has_tag => {
                return Err(bad(&format!("tag :{t} on an attribute without has_tag")));
            }
            Some(t) => Some(
                t.parse::<u8>()
                    .ok()
                    .filter(|t| (1..=0x1f).contains(t))
                    .ok_or_else(|| bad("tag must be 1..=31"))?,
            ),
        };
        let mut data = encode_value(def, value.trim()).map_err(|reason| bad(&reason))?;
        if def.has_tag {
            match def.ty {
                // RFC 2868 §3: integer tunnel attributes carry the tag in the first octet.
                AttrType::Integer => {
                    if data.first().copied().unwrap_or(0) != 0 {
                        return Err(bad("tagged integers are limited to 24 bits"));
                    }
                    if let Some(first) = data.first_mut() {
                        *first = tag.unwrap_or(0);
                    }
                }
                _ => {
                    if let Some(t) = tag {
                        data.insert(0, t);
                    }
                }
            }
        }
        self.wrap(def, &data)
    }

    /// Frames `data` as a standard attribute or a Vendor-Specific one.
    fn wrap(&self, def: &AttributeDef, data: &[u8]) -> Result<Vec<u8>, ValueError> {
        let too_long = || ValueError::TooLong(def.name.clone());
        if def.vendor == 0 {
            let ty = u8::try_from(def.number).map_err(|_| too_long())?;
            if data.len() > MAX_ATTR_VALUE_LEN {
                return Err(too_long());
            }
            let mut out = Vec::with_capacity(data.len() + 2);
            out.push(ty);
            out.push(u8::try_from(data.len() + 2).map_err(|_| too_long())?);
            out.extend_from_slice(data);
            return Ok(out);
        }
        let vendor = self
            .vendor_by_id(def.vendor)
            .ok_or_else(|| ValueError::UnknownAttribute(def.name.clone()))?;
        let (tl, ll) = (usize::from(vendor.type_len), usize::from(vendor.length_len));
        let inner_len = tl + ll + data.len();
        let total = 2 + 4 + inner_len;
        let total_u8 = u8::try_from(total).map_err(|_| too_long())?;
        let mut out = Vec::with_capacity(total);
        out.push(attr::VENDOR_SPECIFIC);
        out.push(total_u8);
        out.extend_from_slice(&def.vendor.to_be_bytes());
        let number = def.number.to_be_bytes();
        out.extend_from_slice(number.get(4 - tl..).unwrap_or_default());
        let inner = u16::try_from(inner_len)
            .map_err(|_| too_long())?
            .to_be_bytes();
        out.extend_from_slice(inner.get(2 - ll..).unwrap_or_default());
        out.extend_from_slice(data);
        Ok(out)
    }
}

/// Splits `Tunnel-Type:1` into the name and tag text.
fn split_tag(name: &str) -> (&str, Option<&str>) {
    match name.rsplit_once(':') {
        Some((base, tag)) if !tag.is_empty() && tag.bytes().all(|b| b.is_ascii_digit()) => {
            (base, Some(tag))
        }
        _ => (name, None),
    }
}

/// Parses an unsigned number: decimal or `0x` hex.
fn parse_number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Removes surrounding double quotes and resolves `\"`, `\\`, `\n`, `\t` escapes.
fn unquote(s: &str) -> Result<String, String> {
    let Some(inner) = s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return Ok(s.to_owned());
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(c @ ('\\' | '"' | '\'')) => out.push(c),
            _ => return Err("bad escape in quoted string".to_owned()),
        }
    }
    Ok(out)
}

/// Decodes `0x…` hex.
fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .ok_or("expected 0x hex")?;
    if digits.len() % 2 != 0 {
        return Err("odd number of hex digits".to_owned());
    }
    digits
        .as_bytes()
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| "bad hex digit".to_owned())
        })
        .collect()
}

/// Parses `count` hex groups of `group_bytes` octets each, separated by `:` (or `-`).
fn parse_groups(s: &str, count: usize, group_bytes: usize) -> Result<Vec<u8>, String> {
    let groups: Vec<&str> = s.split([':', '-']).collect();
    if groups.len() != count {
        return Err(format!("expected {count} groups"));
    }
    let mut out = Vec::with_capacity(count * group_bytes);
    for g in groups {
        if g.is_empty() || g.len() > group_bytes * 2 {
            return Err("bad group".to_owned());
        }
        let v = u64::from_str_radix(g, 16).map_err(|_| "bad hex digit".to_owned())?;
        let bytes = v.to_be_bytes();
        out.extend_from_slice(bytes.get(8 - group_bytes..).unwrap_or_default());
    }
    Ok(out)
}

/// Integer value: decimal, hex or VALUE name, bounded by `max`.
fn parse_integer(def: &AttributeDef, value: &str, max: u64) -> Result<u64, String> {
    let v = match parse_number(value) {
        Some(v) => v,
        None => def
            .value(unquote(value)?.as_str())
            .ok_or_else(|| format!("not a number or VALUE name: {value}"))?,
    };
    if v > max {
        return Err(format!("{v} out of range"));
    }
    Ok(v)
}

/// Parses `addr/len` and returns the prefix length and address.
fn split_prefix(value: &str, max_len: u8) -> Result<(&str, u8), String> {
    let (addr, len) = value.split_once('/').ok_or("expected address/length")?;
    let len: u8 = len.parse().map_err(|_| "bad prefix length".to_owned())?;
    if len > max_len {
        return Err("prefix length too large".to_owned());
    }
    Ok((addr, len))
}

/// Zeroes the bits past `len` in `bytes`.
fn mask(bytes: &mut [u8], len: u8) {
    for (i, b) in bytes.iter_mut().enumerate() {
        let start = i * 8;
        let keep = usize::from(len).saturating_sub(start).min(8);
        *b &= !(0xffu8.checked_shr(keep as u32).unwrap_or(0));
    }
}

/// Encodes `value` by the attribute's type (without the attribute header).
fn encode_value(def: &AttributeDef, value: &str) -> Result<Vec<u8>, String> {
    Ok(match def.ty {
        AttrType::String => unquote(value)?.into_bytes(),
        AttrType::Octets
        | AttrType::Abinary
        | AttrType::Tlv
        | AttrType::Vsa
        | AttrType::Extended
        | AttrType::LongExtended => {
            if value.starts_with("0x") || value.starts_with("0X") {
                parse_hex(value)?
            } else {
                unquote(value)?.into_bytes()
            }
        }
        AttrType::Byte => vec![parse_integer(def, value, u64::from(u8::MAX))? as u8],
        AttrType::Short => (parse_integer(def, value, u64::from(u16::MAX))? as u16)
            .to_be_bytes()
            .to_vec(),
        AttrType::Integer | AttrType::Date => (parse_integer(def, value, u64::from(u32::MAX))?
            as u32)
            .to_be_bytes()
            .to_vec(),
        AttrType::Integer64 => parse_integer(def, value, u64::MAX)?.to_be_bytes().to_vec(),
        AttrType::Signed => {
            let v = match value.parse::<i32>() {
                Ok(v) => v,
                Err(_) => i32::try_from(parse_integer(def, value, i32::MAX as u64)?)
                    .map_err(|_| "out of range".to_owned())?,
            };
            v.to_be_bytes().to_vec()
        }
        AttrType::IpAddr => value
            .parse::<Ipv4Addr>()
            .map_err(|_| "not an IPv4 address".to_owned())?
            .octets()
            .to_vec(),
        AttrType::Ipv6Addr => value
            .parse::<Ipv6Addr>()
            .map_err(|_| "not an IPv6 address".to_owned())?
            .octets()
            .to_vec(),
        AttrType::ComboIp => match value
            .parse::<IpAddr>()
            .map_err(|_| "not an IP address".to_owned())?
        {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        },
        AttrType::Ipv6Prefix => {
            // RFC 3162 §2.3: reserved, prefix length, then only the octets the prefix covers.
            let (addr, len) = split_prefix(value, 128)?;
            let mut octets = addr
                .parse::<Ipv6Addr>()
                .map_err(|_| "not an IPv6 prefix".to_owned())?
                .octets();
            mask(&mut octets, len);
            let used = usize::from(len).div_ceil(8);
            let mut out = vec![0, len];
            out.extend_from_slice(octets.get(..used).unwrap_or_default());
            out
        }
        AttrType::Ipv4Prefix => {
            // RFC 6572 §3.2: reserved, prefix length, four address octets.
            let (addr, len) = split_prefix(value, 32)?;
            let mut octets = addr
                .parse::<Ipv4Addr>()
                .map_err(|_| "not an IPv4 prefix".to_owned())?
                .octets();
            mask(&mut octets, len);
            let mut out = vec![0, len];
            out.extend_from_slice(&octets);
            out
        }
        AttrType::Ifid => parse_groups(value, 4, 2)?,
        AttrType::Ether => parse_groups(value, 6, 1)?,
    })
}

/// Parser state shared across included files.
struct Parser<'i, 'r> {
    dict: Dictionary,
    include: &'i mut IncludeResolver<'r>,
    /// Names of the files being parsed, outermost first (include loop detection).
    stack: Vec<String>,
}

impl Parser<'_, '_> {
    fn parse_file(&mut self, file: &str, text: &str) -> Result<(), DictError> {
        // BEGIN-VENDOR blocks do not span files.
        let mut block: Option<(u32, String)> = None;
        let mut last_line = 0;
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            last_line = line;
            let err = |reason: String| DictError {
                file: file.to_owned(),
                line,
                reason,
            };
            let content = raw.split_once('#').map_or(raw, |(c, _)| c);
            let tokens: Vec<&str> = content.split_whitespace().collect();
            match tokens.as_slice() {
                [] => {}
                [kw @ ("$INCLUDE" | "$INCLUDE-"), path] => {
                    self.include_file(file, path, *kw == "$INCLUDE-")
                        .map_err(|e| match e {
                            IncludeError::Here(reason) => err(reason),
                            IncludeError::Nested(inner) => inner,
                        })?;
                }
                ["ATTRIBUTE", name, number, ty, rest @ ..] => {
                    let vendor = block.as_ref().map_or(0, |(v, _)| *v);
                    self.attribute(name, number, ty, rest, vendor)
                        .map_err(err)?;
                }
                ["VALUE", attribute, name, number] => {
                    self.value(attribute, name, number).map_err(err)?;
                }
                ["VENDOR", name, number, rest @ ..] => {
                    self.vendor(name, number, rest).map_err(err)?;
                }
                ["BEGIN-VENDOR", name] => {
                    if let Some((_, open)) = &block {
                        return Err(err(format!(
                            "BEGIN-VENDOR {name} inside BEGIN-VENDOR {open}"
                        )));
                    }
                    let vendor = self
                        .dict
                        .vendor(name)
                        .ok_or_else(|| err(format!("BEGIN-VENDOR for unknown vendor {name}")))?;
                    block = Some((vendor.id, vendor.name.clone()));
                }
                ["END-VENDOR", name] => match &block {
                    Some((_, open)) if open.eq_ignore_ascii_case(name) => block = None,
                    Some((_, open)) => {
                        return Err(err(format!("END-VENDOR {name} closes BEGIN-VENDOR {open}")))
                    }
                    None => return Err(err(format!("END-VENDOR {name} without BEGIN-VENDOR"))),
                },
                [keyword, ..] => {
                    return Err(err(format!("unknown or malformed statement {keyword}")));
                }
            }
        }
        if let Some((_, open)) = block {
            return Err(DictError {
                file: file.to_owned(),
                line: last_line,
                reason: format!("BEGIN-VENDOR {open} without END-VENDOR"),
            });
        }
        Ok(())
    }

    fn include_file(&mut self, file: &str, path: &str, optional: bool) -> Result<(), IncludeError> {
        let joined = if Path::new(path).is_absolute() {
            path.to_owned()
        } else {
            Path::new(file)
                .parent()
                .map_or_else(|| Path::new(path).to_path_buf(), |dir| dir.join(path))
                .to_string_lossy()
                .into_owned()
        };
        let (name, text) = match (self.include)(&joined) {
            Ok(found) => found,
            Err(_) if optional => return Ok(()),
            Err(e) => return Err(IncludeError::Here(format!("cannot include {joined}: {e}"))),
        };
        if self.stack.contains(&name) {
            let chain = self.stack.join(" -> ");
            return Err(IncludeError::Here(format!(
                "include loop: {chain} -> {name}"
            )));
        }
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            return Err(IncludeError::Here("includes nested too deeply".to_owned()));
        }
        self.stack.push(name.clone());
        let result = self.parse_file(&name, &text);
        self.stack.pop();
        result.map_err(IncludeError::Nested)
    }

    fn vendor(&mut self, name: &str, number: &str, rest: &[&str]) -> Result<(), String> {
        let id = parse_number(number)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("bad vendor number {number}"))?;
        let (type_len, length_len) = match rest {
            [] => (1, 1),
            [format] => {
                let spec = format
                    .strip_prefix("format=")
                    .ok_or_else(|| format!("unknown vendor option {format}"))?;
                match spec.split_once(',') {
                    Some(("1", "1")) => (1, 1),
                    Some(("1", "0")) => (1, 0),
                    Some(("2", "1")) => (2, 1),
                    Some(("2", "2")) => (2, 2),
                    Some(("2", "0")) => (2, 0),
                    Some(("4", "0")) => (4, 0),
                    _ => return Err(format!("unsupported vendor format {spec}")),
                }
            }
            _ => return Err("too many fields in VENDOR".to_owned()),
        };
        let key = name.to_ascii_lowercase();
        if let Some(existing) = self
            .dict
            .vendor_by_name
            .get(&key)
            .and_then(|&i| self.dict.vendors.get(i))
        {
            if existing.id != id {
                return Err(format!("vendor {name} already defined as {}", existing.id));
            }
            return Ok(());
        }
        self.dict
            .vendor_by_name
            .insert(key, self.dict.vendors.len());
        self.dict.vendors.push(VendorDef {
            name: name.to_owned(),
            id,
            type_len,
            length_len,
        });
        Ok(())
    }

    fn attribute(
        &mut self,
        name: &str,
        number: &str,
        ty: &str,
        rest: &[&str],
        block_vendor: u32,
    ) -> Result<(), String> {
        let ty = AttrType::from_name(ty).ok_or_else(|| format!("unknown type {ty}"))?;
        let number = parse_number(number)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("bad attribute number {number}"))?;
        let mut def = AttributeDef {
            name: name.to_owned(),
            vendor: block_vendor,
            number,
            ty,
            encrypt: 0,
            has_tag: false,
            concat: false,
            other_flags: Vec::new(),
            values: BTreeMap::new(),
        };
        match rest {
            [] => {}
            [flags] => {
                for flag in flags.split(',') {
                    match flag.split_once('=') {
                        Some(("encrypt", n)) => {
                            def.encrypt = n
                                .parse()
                                .ok()
                                .filter(|n| *n <= 3)
                                .ok_or_else(|| format!("bad encrypt={n}"))?;
                        }
                        None if flag == "has_tag" => def.has_tag = true,
                        None if flag == "concat" => def.concat = true,
                        // Old format: the vendor name as the fifth field.
                        None if self.dict.vendor(flag).is_some()
                            && flags.split(',').count() == 1 =>
                        {
                            def.vendor = self.dict.vendor(flag).map_or(0, |v| v.id);
                        }
                        _ if flag.is_empty() => return Err("empty flag".to_owned()),
                        _ => def.other_flags.push(flag.to_owned()),
                    }
                }
            }
            _ => return Err("too many fields in ATTRIBUTE".to_owned()),
        }
        let max = if def.vendor == 0 {
            255
        } else {
            let vendor = self
                .dict
                .vendor_by_id(def.vendor)
                .ok_or_else(|| format!("unknown vendor {}", def.vendor))?;
            match vendor.type_len {
                1 => 255,
                2 => 65535,
                _ => u32::MAX,
            }
        };
        if number > max || (def.vendor == 0 && number == 0) {
            return Err(format!("attribute number {number} out of range"));
        }
        let key = name.to_ascii_lowercase();
        if let Some(existing) = self
            .dict
            .by_name
            .get(&key)
            .and_then(|&i| self.dict.attrs.get(i))
        {
            if (existing.vendor, existing.number, existing.ty) == (def.vendor, def.number, def.ty) {
                return Ok(());
            }
            return Err(format!("attribute {name} already defined differently"));
        }
        let index = self.dict.attrs.len();
        self.dict.by_name.insert(key, index);
        // The first name for a number wins when decoding; later ones are aliases.
        self.dict
            .by_number
            .entry((def.vendor, def.number))
            .or_insert(index);
        self.dict.attrs.push(def);
        Ok(())
    }

    fn value(&mut self, attribute: &str, name: &str, number: &str) -> Result<(), String> {
        let index = *self
            .dict
            .by_name
            .get(&attribute.to_ascii_lowercase())
            .ok_or_else(|| format!("VALUE for unknown attribute {attribute}"))?;
        let def = self
            .dict
            .attrs
            .get_mut(index)
            .ok_or_else(|| format!("VALUE for unknown attribute {attribute}"))?;
        let max = def
            .ty
            .value_max()
            .ok_or_else(|| format!("VALUE for {attribute}, which is not an integer type"))?;
        let v = parse_number(number)
            .filter(|v| *v <= max)
            .ok_or_else(|| format!("bad VALUE number {number}"))?;
        def.values.insert(name.to_owned(), v);
        Ok(())
    }
}

/// An include failure: either at the `$INCLUDE` line itself or inside the included file.
enum IncludeError {
    Here(String),
    Nested(DictError),
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )]

    use super::*;

    fn shipped() -> Dictionary {
        Dictionary::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/dictionaries/dictionary"
        )))
        .unwrap()
    }

    fn files(
        list: &'static [(&'static str, &'static str)],
    ) -> impl FnMut(&str) -> Result<(String, String), String> {
        move |p: &str| {
            list.iter()
                .find(|(n, _)| *n == p)
                .map(|(n, t)| (n.to_string(), t.to_string()))
                .ok_or_else(|| "not found".to_string())
        }
    }

    #[test]
    fn shipped_dictionary_loads() {
        let d = shipped();
        assert!(d.len() > 150, "{}", d.len());
        let rm = d.attribute("reply-message").unwrap();
        assert_eq!((rm.vendor, rm.number, rm.ty), (0, 18, AttrType::String));
        let av = d.attribute("Cisco-AVPair").unwrap();
        assert_eq!((av.vendor, av.number, av.ty), (9, 1, AttrType::String));
        assert_eq!(d.by_number(9, 1).unwrap().name, "Cisco-AVPair");
        let st = d.attribute("Service-Type").unwrap();
        assert_eq!(st.value("Login-User"), Some(1));
        assert_eq!(st.value_name(2), Some("Framed-User"));
        assert_eq!(d.attribute("User-Password").unwrap().encrypt, 1);
        assert!(d.attribute("Tunnel-Type").unwrap().has_tag);
        assert!(d.attribute("EAP-Message").unwrap().concat);
        assert_eq!(d.attribute("Juniper-Local-User-Name").unwrap().vendor, 2636);
        assert_eq!(d.attribute("Fortinet-Group-Name").unwrap().vendor, 12356);
        assert_eq!(d.attribute("PaloAlto-Admin-Role").unwrap().vendor, 25461);
        assert_eq!(
            d.attribute("MS-CHAP2-Response").unwrap().ty,
            AttrType::Octets
        );
        assert_eq!(d.vendor("Microsoft").unwrap().id, 311);
        // Every number constant in `attr` has a dictionary name.
        for n in [
            1u32, 2, 3, 4, 5, 6, 7, 8, 11, 18, 24, 25, 26, 27, 28, 30, 31, 32, 33, 60, 61, 76, 79,
            80, 95,
        ] {
            assert!(d.by_number(0, n).is_some(), "{n}");
        }
    }

    #[test]
    fn shipped_encodings() {
        let d = shipped();
        let cases: &[(&str, &str, &[u8])] = &[
            ("Session-Timeout", "3600", &[27, 6, 0, 0, 0x0e, 0x10]),
            ("Service-Type", "Framed-User", &[6, 6, 0, 0, 0, 2]),
            ("service-type", "login-user", &[6, 6, 0, 0, 0, 1]),
            ("Framed-IP-Address", "10.0.0.1", &[8, 6, 10, 0, 0, 1]),
            (
                "Reply-Message",
                "\"hi \\\"there\\\"\"",
                b"\x12\x0chi \"there\"",
            ),
            ("Class", "0x0102ff", &[25, 5, 1, 2, 0xff]),
            (
                "Framed-IPv6-Prefix",
                "2001:db8::/32",
                &[97, 8, 0, 32, 0x20, 0x01, 0x0d, 0xb8],
            ),
            (
                "Framed-Interface-Id",
                "0:0:0:1",
                &[96, 10, 0, 0, 0, 0, 0, 0, 0, 1],
            ),
            (
                "Event-Timestamp",
                "1700000000",
                &[55, 6, 0x65, 0x53, 0xf1, 0x00],
            ),
            ("Tunnel-Type:1", "VLAN", &[64, 6, 1, 0, 0, 13]),
            (
                "Tunnel-Private-Group-Id:1",
                "100",
                &[81, 6, 1, b'1', b'0', b'0'],
            ),
            ("Tunnel-Private-Group-Id", "100", &[81, 5, b'1', b'0', b'0']),
        ];
        for (name, value, expected) in cases {
            assert_eq!(
                &d.encode_attribute(name, value).unwrap()[..],
                *expected,
                "{name}"
            );
        }
        let mut avpair = vec![26, 25, 0, 0, 0, 9, 1, 19];
        avpair.extend_from_slice(b"shell:priv-lvl=15");
        assert_eq!(
            d.encode_attribute("Cisco-AVPair", "\"shell:priv-lvl=15\"")
                .unwrap(),
            avpair
        );
        assert_eq!(
            d.encode_attribute("Cisco-AVPair", "shell:priv-lvl=15")
                .unwrap(),
            avpair
        );
        let v6 = d
            .encode_attribute("NAS-IPv6-Address", "2001:db8::1")
            .unwrap();
        assert_eq!(v6.len(), 18);
        // The result feeds Encoder::push_raw.
        let mut buf = [0u8; 128];
        let mut enc =
            crate::radius::Encoder::reply(&mut buf, crate::radius::Code::AccessAccept, 0).unwrap();
        enc.push_raw(&avpair).unwrap();
    }

    #[test]
    fn encoding_errors() {
        let d = shipped();
        assert!(matches!(
            d.encode_attribute("No-Such", "1"),
            Err(ValueError::UnknownAttribute(_))
        ));
        for (name, value) in [
            ("Session-Timeout", "soon"),
            ("Session-Timeout", "4294967296"),
            ("Framed-IP-Address", "10.0.0"),
            ("Service-Type", "No-Such-Service"),
            ("User-Password", "secret"),
            ("Tunnel-Password:1", "secret"),
            ("Session-Timeout:1", "5"),
            ("Class", "0x123"),
            ("Framed-IPv6-Prefix", "2001:db8::/129"),
        ] {
            assert!(
                matches!(
                    d.encode_attribute(name, value),
                    Err(ValueError::BadValue { .. })
                ),
                "{name} = {value}"
            );
        }
        let long = "x".repeat(254);
        assert!(matches!(
            d.encode_attribute("Reply-Message", &long),
            Err(ValueError::TooLong(_))
        ));
        assert!(d.encode_attribute("Reply-Message", &long[1..]).is_ok());
        assert!(matches!(
            d.encode_attribute("Cisco-AVPair", &long[6..]),
            Err(ValueError::TooLong(_))
        ));
    }

    #[test]
    fn parse_errors_carry_file_and_line() {
        let mut no_include = |_: &str| -> Result<(String, String), String> { Err("nope".into()) };
        let e = Dictionary::parse_str("top", "# c\n\nATTRIBUTE X 1 strange\n", &mut no_include)
            .unwrap_err();
        assert_eq!((e.file.as_str(), e.line), ("top", 3));
        assert!(e.reason.contains("unknown type"), "{e}");
        assert_eq!(e.to_string(), "top:3: unknown type strange");

        let e =
            Dictionary::parse_str("dir/top", "\n$INCLUDE missing\n", &mut no_include).unwrap_err();
        assert_eq!((e.file.as_str(), e.line), ("dir/top", 2));
        assert!(e.reason.contains("dir/missing"), "{e}");
        // Optional include.
        assert!(Dictionary::parse_str("top", "$INCLUDE- missing\n", &mut no_include).is_ok());

        let e = Dictionary::parse_str(
            "top",
            "ATTRIBUTE A 1 string\nVALUE B x 1\n",
            &mut no_include,
        )
        .unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("unknown attribute B"), "{e}");

        const LOOP: &[(&str, &str)] = &[
            ("d/a", "# a\n$INCLUDE b\n"),
            ("d/b", "ATTRIBUTE B 2 string\n\n$INCLUDE sub/../a\n"),
            ("d/sub/../a", "ignored"),
        ];
        let mut resolve = files(LOOP);
        // Names returned by the resolver identify files; map the alias to the real name.
        let mut canon = move |p: &str| {
            let p = if p == "d/sub/../a" { "d/a" } else { p };
            resolve(p)
        };
        let e = Dictionary::parse_str("d/a", "$INCLUDE b\n", &mut canon).unwrap_err();
        assert_eq!((e.file.as_str(), e.line), ("d/b", 3));
        assert!(e.reason.contains("include loop"), "{e}");
    }

    #[test]
    fn grammar() {
        const FILES: &[(&str, &str)] = &[
            ("d/v", "VENDOR Acme 999\nVENDOR Wide 1000 format=2,2\nBEGIN-VENDOR Acme\nATTRIBUTE Acme-Role 1 string\nATTRIBUTE Acme-Level 2 integer\nVALUE Acme-Level High 9\nEND-VENDOR Acme\nBEGIN-VENDOR Wide\nATTRIBUTE Wide-Thing 300 string\nEND-VENDOR Wide\nATTRIBUTE Acme-Old 3 string Acme\n"),
        ];
        let mut resolve = files(FILES);
        let d = Dictionary::parse_str(
            "d/top",
            "ATTRIBUTE User-Name 1 string # trailing comment\nATTRIBUTE Custom 200 octets[16] concat,array,encrypt=2\n$INCLUDE v\n",
            &mut resolve,
        )
        .unwrap();
        assert_eq!(d.len(), 6);
        // Resolvers may borrow local state.
        let mut calls = Vec::new();
        let mut borrowing = |p: &str| -> Result<(String, String), String> {
            calls.push(p.to_owned());
            Ok((p.to_owned(), String::new()))
        };
        Dictionary::parse_str(
            "x/top",
            "$INCLUDE a
",
            &mut borrowing,
        )
        .unwrap();
        assert_eq!(calls, vec!["x/a".to_string()]);
        let c = d.attribute("custom").unwrap();
        assert_eq!(
            (c.concat, c.encrypt, c.other_flags.clone()),
            (true, 2, vec!["array".to_string()])
        );
        assert_eq!(d.attribute("Acme-Old").unwrap().vendor, 999);
        assert_eq!(
            d.encode_attribute("Acme-Level", "High").unwrap(),
            vec![26, 12, 0, 0, 0x03, 0xe7, 2, 6, 0, 0, 0, 9]
        );
        assert_eq!(
            d.encode_attribute("Wide-Thing", "ab").unwrap(),
            vec![26, 12, 0, 0, 0x03, 0xe8, 0x01, 0x2c, 0, 6, b'a', b'b']
        );
        let mut none = |_: &str| -> Result<(String, String), String> { Err("x".into()) };
        for (text, line) in [
            ("BEGIN-VENDOR Nope\n", 1),
            ("VENDOR A 1\nBEGIN-VENDOR A\n", 2),
            ("VENDOR A 1\nEND-VENDOR A\n", 2),
            ("ATTRIBUTE X 256 string\n", 1),
            ("ATTRIBUTE X 0 string\n", 1),
            ("ATTRIBUTE X 1 string\nATTRIBUTE X 2 string\n", 2),
            ("ATTRIBUTE X 1 string\nVALUE X A 1\n", 2),
            ("ATTRIBUTE X 1 byte\nVALUE X A 256\n", 2),
            ("FROB x\n", 1),
            ("VENDOR A 1 format=3,3\n", 1),
        ] {
            let e = Dictionary::parse_str("t", text, &mut none).unwrap_err();
            assert_eq!(e.line, line, "{text}: {e}");
        }
    }
}
