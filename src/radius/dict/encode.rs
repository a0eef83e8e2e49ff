//! Encoding of configured `name = value` pairs into on-wire attributes
//! ([`Dictionary::encode_attribute`]): value parsing by attribute type, RFC 2868 tags and
//! Vendor-Specific framing. Encrypted attributes are refused here (hidden per packet).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::parse::parse_number;
use super::{AttrType, AttributeDef, Dictionary, ValueError};
use crate::radius::{attr, MAX_ATTR_VALUE_LEN};

impl Dictionary {
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
