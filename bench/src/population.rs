//! The users a run logs in as: OTP users from the secrets file `tokengate populate` writes
//! (PIN + current TOTP code), or plain PAP users (for servers without OTP, such as FreeRADIUS
//! with a `users` file).
//!
//! It owns parsing both file formats into compact records; it does not compute codes (see
//! [`crate::generator`]).

use std::path::Path;

use anyhow::{bail, Context, Result};
use tokengate::model::HashAlgorithm;
use tokengate::otp::base32;

/// A user with a TOTP token, from a secrets file.
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
    /// TOTP step in seconds.
    pub period: u32,
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
    /// PIN + TOTP users.
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
/// `user,pin,seed_base32,kind,algorithm,digits,period`; `#` lines are comments). Every user
/// must have the same TOTP period.
pub fn load_secrets(path: &Path) -> Result<Vec<OtpUser>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut users = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("user,") {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        let [name, pin, seed, kind, algorithm, digits, period] = f.as_slice() else {
            bail!(
                "{}:{}: expected 7 comma-separated fields",
                path.display(),
                n + 1
            );
        };
        let at = || format!("{}:{}", path.display(), n + 1);
        let seed = base32::decode(seed).map_err(|e| anyhow::anyhow!("{}: seed: {e}", at()))?;
        let algorithm =
            HashAlgorithm::parse(algorithm).with_context(|| format!("{}: algorithm", at()))?;
        let digits: u8 = digits
            .parse()
            .with_context(|| format!("{}: digits", at()))?;
        let period: u32 = period
            .parse()
            .with_context(|| format!("{}: period", at()))?;
        if period == 0 {
            bail!("{}: HOTP tokens are not supported (period 0)", at());
        }
        let pin = if *kind == "app" { "" } else { pin };
        users.push(OtpUser {
            name: name.as_bytes().into(),
            pin: pin.as_bytes().into(),
            seed: seed.into(),
            algorithm,
            digits,
            period,
        });
    }
    if let Some(first) = users.first() {
        if users.iter().any(|u| u.period != first.period) {
            bail!(
                "{}: every token must have the same TOTP period",
                path.display()
            );
        }
    }
    Ok(users)
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
}
