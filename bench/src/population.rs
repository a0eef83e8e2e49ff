//! The users a run logs in as: OTP users from the secrets file `tokengate populate` writes
//! (PIN + the current TOTP code, or PIN + the next HOTP code), or plain PAP users (for servers
//! without OTP, such as FreeRADIUS with a `users` file).
//!
//! It owns parsing both file formats into compact records; it does not compute codes (see
//! [`crate::generator`]).

use std::path::Path;

use anyhow::{bail, Context, Result};
use tokengate::model::{HashAlgorithm, OtpMode};
use tokengate::otp::base32;

/// A user with a TOTP or HOTP token, from a secrets file.
#[derive(Clone, Debug)]
pub struct OtpUser {
    /// Login name.
    pub name: Box<[u8]>,
    /// PIN (empty for app tokens).
    pub pin: Box<[u8]>,
    /// Token seed.
    pub seed: Box<[u8]>,
    /// HMAC algorithm.
    pub algorithm: HashAlgorithm,
    /// Code length.
    pub digits: u8,
    /// TOTP with its step, or HOTP (the generator keeps the counters).
    pub mode: OtpMode,
}

/// A user with a fixed password (PAP).
#[derive(Clone, Debug)]
pub struct PlainUser {
    /// Login name.
    pub name: Box<[u8]>,
    /// Cleartext password.
    pub password: Box<[u8]>,
}

/// Everyone a run may log in as.
#[derive(Clone, Debug)]
pub enum Population {
    /// PIN + TOTP or PIN + HOTP users (all of one mode, see [`load_secrets`]).
    Otp(Vec<OtpUser>),
    /// PAP users.
    Plain(Vec<PlainUser>),
}

impl Population {
    /// Number of users.
    pub fn len(&self) -> usize {
        match self {
            Population::Otp(u) => u.len(),
            Population::Plain(u) => u.len(),
        }
    }

    /// True when there is nobody.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps only users `start..end` (clamped), e.g. to give reject runs users of their own.
    pub fn slice(self, start: usize, end: usize) -> Population {
        fn cut<T>(mut v: Vec<T>, start: usize, end: usize) -> Vec<T> {
            let end = end.min(v.len());
            let start = start.min(end);
            v.truncate(end);
            v.drain(..start);
            v
        }
        match self {
            Population::Otp(u) => Population::Otp(cut(u, start, end)),
            Population::Plain(u) => Population::Plain(cut(u, start, end)),
        }
    }
}

/// Reads a secrets file written by `tokengate populate --secrets-out` (CSV with the header
/// `user,pin,seed_base32,kind,algorithm,digits,period,mode`; `#` lines are comments). `mode` is
/// `totp` or `hotp` (period 0); files from before HOTP support have 7 columns and are TOTP.
/// Every user must have the same mode, and TOTP users the same period.
pub fn load_secrets(path: &Path) -> Result<Vec<OtpUser>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut users = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("user,") {
            continue;
        }
        let at = || format!("{}:{}", path.display(), n + 1);
        users.push(parse_secrets_line(line).with_context(at)?);
    }
    if let Some(first) = users.first() {
        if users.iter().any(|u| u.mode != first.mode) {
            bail!(
                "{}: every token must be of one mode (all HOTP, or all TOTP with the same period)",
                path.display()
            );
        }
    }
    Ok(users)
}

/// One data line of a secrets file: 7 fields (TOTP) or 8 (the last one `totp` or `hotp`).
pub fn parse_secrets_line(line: &str) -> Result<OtpUser> {
    let f: Vec<&str> = line.split(',').collect();
    let (name, pin, seed, kind, algorithm, digits, period, mode) = match f.as_slice() {
        [a, b, c, d, e, g, h] => (a, b, c, d, e, g, h, "totp"),
        [a, b, c, d, e, g, h, m] => (a, b, c, d, e, g, h, *m),
        _ => bail!("expected 7 or 8 comma-separated fields, found {}", f.len()),
    };
    let seed = base32::decode(seed).map_err(|e| anyhow::anyhow!("seed: {e}"))?;
    let algorithm = HashAlgorithm::parse(algorithm).context("algorithm")?;
    let digits: u8 = digits.parse().context("digits")?;
    if !(6..=8).contains(&digits) {
        bail!("digits must be 6 to 8, not {digits}");
    }
    let period: u32 = period.parse().context("period")?;
    let mode = match mode.trim() {
        "totp" if period == 0 => bail!("a TOTP token needs a period (0 is HOTP's)"),
        "totp" => OtpMode::Totp { period },
        "hotp" => OtpMode::Hotp,
        other => bail!("mode must be totp or hotp, not {other:?}"),
    };
    let pin = if *kind == "app" { "" } else { pin };
    Ok(OtpUser {
        name: name.as_bytes().into(),
        pin: pin.as_bytes().into(),
        seed: seed.into(),
        algorithm,
        digits,
        mode,
    })
}

/// Reads PAP users: one per line, either `name password` (whitespace-separated) or a
/// FreeRADIUS `users` file entry `name Cleartext-Password := "password"`. `#` lines, blank
/// lines and indented reply-attribute lines are skipped.
pub fn load_users_file(path: &Path) -> Result<Vec<PlainUser>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut users = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty()
            || line.trim_start().starts_with('#')
            || line.starts_with([' ', '\t'])
        {
            continue;
        }
        let (name, rest) = line.split_once(char::is_whitespace).with_context(|| {
            format!(
                "{}:{}: expected a name and a password",
                path.display(),
                n + 1
            )
        })?;
        let rest = rest.trim();
        let password = match rest.split_once(":=") {
            Some((attr, value)) if attr.trim() == "Cleartext-Password" => {
                let v = value.trim();
                let v = v.split(',').next().unwrap_or(v).trim();
                v.trim_matches('"').to_string()
            }
            Some(_) => bail!(
                "{}:{}: only Cleartext-Password entries are understood",
                path.display(),
                n + 1
            ),
            None => rest.to_string(),
        };
        if password.is_empty() || password.len() > 128 {
            bail!(
                "{}:{}: password must be 1 to 128 bytes",
                path.display(),
                n + 1
            );
        }
        users.push(PlainUser {
            name: name.trim_matches('"').as_bytes().into(),
            password: password.as_bytes().into(),
        });
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_users_file_formats_and_secrets_parse() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("users");
        std::fs::write(
            &p,
            "# comment\nalice secret1\nbob Cleartext-Password := \"pw 2\"\n\tReply-Message = \"x\"\n",
        )
        .unwrap();
        let u = load_users_file(&p).unwrap();
        assert_eq!(u.len(), 2);
        assert_eq!(&*u[0].password, b"secret1");
        assert_eq!(&*u[1].name, b"bob");
        assert_eq!(&*u[1].password, b"pw 2");

        let s = dir.path().join("secrets");
        std::fs::write(
            &s,
            "# x\nuser,pin,seed_base32,kind,algorithm,digits,period\n\
             bench0000000,482913,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,pin,sha1,6,30\n\
             bench0000001,,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,app,sha256,8,30\n",
        )
        .unwrap();
        let o = load_secrets(&s).unwrap();
        assert_eq!(o.len(), 2);
        assert_eq!(&*o[0].seed, b"12345678901234567890");
        assert_eq!(o[1].digits, 8);
        assert!(o[1].pin.is_empty());
        let sliced = Population::Otp(o).slice(1, 10);
        assert_eq!(sliced.len(), 1);
    }

    #[test]
    fn secrets_lines_of_7_columns_are_totp_and_of_8_columns_carry_the_mode() {
        let seed = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        let old = parse_secrets_line(&format!("u1,123456,{seed},pin,sha1,6,60")).unwrap();
        assert_eq!(old.mode, OtpMode::Totp { period: 60 });
        assert_eq!(&*old.pin, b"123456");
        let totp = parse_secrets_line(&format!("u2,123456,{seed},pin,sha256,8,30,totp")).unwrap();
        assert_eq!(totp.mode, OtpMode::Totp { period: 30 });
        assert_eq!((totp.algorithm, totp.digits), (HashAlgorithm::Sha256, 8));
        let hotp = parse_secrets_line(&format!("u3,654321,{seed},pin,sha1,6,0,hotp")).unwrap();
        assert_eq!(hotp.mode, OtpMode::Hotp);
        assert_eq!(&*hotp.name, b"u3");
        assert_eq!(&*hotp.seed, b"12345678901234567890");
        let app = parse_secrets_line(&format!("u4,999999,{seed},app,sha1,6,0,hotp")).unwrap();
        assert!(app.pin.is_empty(), "app tokens have no PIN");

        for bad in [
            format!("u,1,{seed},pin,sha1,6,0"), // 7 columns: TOTP needs a period
            format!("u,1,{seed},pin,sha1,6,30,totp,x"), // 9 columns
            format!("u,1,{seed},pin,sha1,6,30,motp"), // unknown mode
            format!("u,1,{seed},pin,md5,6,30,totp"), // unknown algorithm
            format!("u,1,{seed},pin,sha1,9,0,hotp"), // digits
            "u,1,not base32!,pin,sha1,6,0,hotp".into(), // seed
        ] {
            assert!(parse_secrets_line(&bad).is_err(), "{bad}");
        }

        // A file mixing modes is refused; a file of 8-column HOTP lines loads.
        let dir = tempfile::tempdir().unwrap();
        let mixed = dir.path().join("mixed");
        std::fs::write(
            &mixed,
            format!("u1,1,{seed},pin,sha1,6,30\nu2,2,{seed},pin,sha1,6,0,hotp\n"),
        )
        .unwrap();
        let err = load_secrets(&mixed).unwrap_err().to_string();
        assert!(err.contains("one mode"), "{err}");
        let h = dir.path().join("hotp");
        std::fs::write(
            &h,
            format!(
                "# x\nuser,pin,seed_base32,kind,algorithm,digits,period,mode\n\
                 u1,1,{seed},pin,sha1,6,0,hotp\nu2,2,{seed},pin,sha1,6,0,hotp\n"
            ),
        )
        .unwrap();
        let users = load_secrets(&h).unwrap();
        assert_eq!(users.len(), 2);
        assert!(users.iter().all(|u| u.mode == OtpMode::Hotp));
        let err = load_secrets(&dir.path().join("absent")).unwrap_err();
        assert!(err.to_string().contains("cannot read"));
    }
}
