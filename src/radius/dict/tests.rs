//! Dictionary unit tests: the shipped dictionary loads and encodes known values, encoding and
//! parse errors (with file and line), and the grammar (vendors, blocks, flags, includes).

// Tests may unwrap and panic (clippy.toml) and index directly.
#![allow(clippy::indexing_slicing)]

use std::path::Path;

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
        1u32, 2, 3, 4, 5, 6, 7, 8, 11, 18, 24, 25, 26, 27, 28, 30, 31, 32, 33, 60, 61, 76, 79, 80,
        95,
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

    let e = Dictionary::parse_str("dir/top", "\n$INCLUDE missing\n", &mut no_include).unwrap_err();
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
