//! Token import files: one `otpauth://` URI per line, or CSV with a header row.
//!
//! CSV columns (header names, any order): `serial` and `secret` (base32) are required;
//! `type` (totp|hotp), `algorithm`, `digits`, `period`, `counter`, `kind` (pin|app), `user` are
//! optional. For URI files the serial is the URI's `serial` parameter or else its account label,
//! and with `assign` the token goes to the user named by the account label.

use crate::model::{HashAlgorithm, OtpMode, TokenKind};
use crate::otp::{base32, uri::OtpauthUri};

use super::TokenSpec;

/// Format of an import file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportFormat {
    /// One otpauth:// URI per line.
    Uri,
    /// CSV with a header row.
    Csv,
}

/// One token to import and the line it came from.
#[derive(Debug, Clone)]
pub struct ImportedToken {
    /// 1-based line number in the file.
    pub line: usize,
    /// What to create.
    pub spec: TokenSpec,
}

/// Parses a whole file; the first bad line fails the import with its line number and nothing
/// is created.
pub fn parse_import(
    text: &str,
    format: ImportFormat,
    kind: TokenKind,
    assign: bool,
) -> Result<Vec<ImportedToken>, String> {
    match format {
        ImportFormat::Uri => parse_uris(text, kind, assign),
        ImportFormat::Csv => parse_csv(text, kind),
    }
}

fn parse_uris(text: &str, kind: TokenKind, assign: bool) -> Result<Vec<ImportedToken>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let u = OtpauthUri::parse(l).map_err(|e| format!("line {}: {e}", i + 1))?;
        let serial = serial_param(l).unwrap_or_else(|| u.account.clone());
        out.push(ImportedToken {
            line: i + 1,
            spec: TokenSpec {
                serial: Some(serial),
                kind,
                algorithm: u.algorithm,
                digits: u.digits,
                mode: if u.hotp {
                    OtpMode::Hotp
                } else {
                    OtpMode::Totp { period: u.period }
                },
                seed: Some(u.secret.clone()),
                counter: u.counter,
                user: assign.then(|| u.account.clone()),
                pin: None,
                expires_at: None,
            },
        });
    }
    Ok(out)
}

fn serial_param(uri: &str) -> Option<String> {
    let q = uri.split_once('?')?.1;
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| k.eq_ignore_ascii_case("serial"))
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

fn parse_csv(text: &str, default_kind: TokenKind) -> Result<Vec<ImportedToken>, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let Some((_, header)) = lines.next() else {
        return Ok(vec![]);
    };
    let cols: Vec<String> = header
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    let known = [
        "serial",
        "secret",
        "type",
        "algorithm",
        "digits",
        "period",
        "counter",
        "kind",
        "user",
    ];
    for c in &cols {
        if !known.contains(&c.as_str()) {
            return Err(format!(
                "line 1: unknown column {c:?} (known: {})",
                known.join(", ")
            ));
        }
    }
    for req in ["serial", "secret"] {
        if !cols.iter().any(|c| c == req) {
            return Err(format!("line 1: missing required column {req:?}"));
        }
    }
    let mut out = Vec::new();
    for (i, line) in lines {
        let n = i + 1;
        if line.contains('"') {
            return Err(format!("line {n}: quoted fields are not supported"));
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != cols.len() {
            return Err(format!(
                "line {n}: {} fields, header has {}",
                fields.len(),
                cols.len()
            ));
        }
        let get = |name: &str| {
            cols.iter()
                .position(|c| c == name)
                .and_then(|p| fields.get(p).copied())
                .filter(|v| !v.is_empty())
        };
        let err = |what: &str| format!("line {n}: {what}");
        let seed = base32::decode(get("secret").unwrap_or_default())
            .map_err(|e| err(&format!("secret: {e}")))?;
        let algorithm = match get("algorithm") {
            Some(a) => {
                HashAlgorithm::parse(a).ok_or_else(|| err(&format!("unknown algorithm {a:?}")))?
            }
            None => HashAlgorithm::Sha1,
        };
        let digits: u8 = match get("digits") {
            Some(d) => d.parse().map_err(|_| err("digits must be 6 or 8"))?,
            None => 6,
        };
        let hotp = match get("type") {
            None | Some("totp") => false,
            Some("hotp") => true,
            Some(t) => return Err(err(&format!("type must be totp or hotp, not {t:?}"))),
        };
        let period: u32 = match get("period") {
            Some(p) => p
                .parse()
                .map_err(|_| err("period must be a number of seconds"))?,
            None => 30,
        };
        let counter: u64 = match get("counter") {
            Some(c) => c.parse().map_err(|_| err("counter must be a number"))?,
            None => 0,
        };
        let kind = match get("kind") {
            Some(k) => TokenKind::parse(k).ok_or_else(|| err("kind must be pin or app"))?,
            None => default_kind,
        };
        out.push(ImportedToken {
            line: n,
            spec: TokenSpec {
                serial: get("serial").map(str::to_string),
                kind,
                algorithm,
                digits,
                mode: if hotp {
                    OtpMode::Hotp
                } else {
                    OtpMode::Totp { period }
                },
                seed: Some(seed),
                counter,
                user: get("user").map(str::to_string),
                pin: None,
                expires_at: None,
            },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_optional_columns() {
        let text = "serial,secret,type,digits,user\nA1,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,hotp,8,alice\nA2,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,,,\n";
        let r = parse_import(text, ImportFormat::Csv, TokenKind::App, false).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].spec.mode, OtpMode::Hotp);
        assert_eq!(r[0].spec.digits, 8);
        assert_eq!(r[0].spec.user.as_deref(), Some("alice"));
        assert_eq!(
            r[0].spec.seed.as_deref(),
            Some(&b"12345678901234567890"[..])
        );
        assert_eq!(r[1].spec.mode, OtpMode::Totp { period: 30 });
        assert_eq!(r[1].spec.kind, TokenKind::App);
        assert_eq!(r[1].line, 3);
    }

    #[test]
    fn csv_errors_name_the_line() {
        let e = parse_import(
            "serial,secret\nA,!!!\n",
            ImportFormat::Csv,
            TokenKind::Pin,
            false,
        )
        .unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        let e =
            parse_import("serial,seed\n", ImportFormat::Csv, TokenKind::Pin, false).unwrap_err();
        assert!(e.contains("unknown column"), "{e}");
        let e = parse_import("serial\nA\n", ImportFormat::Csv, TokenKind::Pin, false).unwrap_err();
        assert!(e.contains("secret"), "{e}");
    }

    #[test]
    fn uri_lines_with_serial_and_assignment() {
        let text = "# comment\notpauth://totp/ACME:bob?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ACME&serial=S-9\notpauth://hotp/carol?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&counter=5\n";
        let r = parse_import(text, ImportFormat::Uri, TokenKind::App, true).unwrap();
        assert_eq!(r[0].spec.serial.as_deref(), Some("S-9"));
        assert_eq!(r[0].spec.user.as_deref(), Some("bob"));
        assert_eq!(r[1].spec.serial.as_deref(), Some("carol"));
        assert_eq!(r[1].spec.counter, 5);
        assert_eq!(r[1].line, 3);
        let e = parse_import(
            "otpauth://totp/x?issuer=a\n",
            ImportFormat::Uri,
            TokenKind::App,
            false,
        )
        .unwrap_err();
        assert!(e.starts_with("line 1:"), "{e}");
    }
}
