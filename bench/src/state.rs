//! The `--state FILE` that carries what a run used up over to the next run against the same
//! server: the TOTP cursor (step and next user, so runs within one step never reuse a user), or
//! every HOTP user's next counter (so a later run never sends a counter the server has already
//! accepted).
//!
//! Format (text, one record per line):
//!
//! ```text
//! tg-loadgen state 2
//! totp STEP NEXT
//! ```
//!
//! or
//!
//! ```text
//! tg-loadgen state 2
//! hotp
//! NAME COUNTER
//! NAME COUNTER
//! ```
//!
//! where `NAME` is the user name (it may contain spaces; the counter is after the last one).
//! A file of one line `STEP NEXT` (written before HOTP support) is a TOTP cursor. Files are
//! written to a temporary file in the same folder and renamed over the old one, so a run that
//! is killed never leaves half a file.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};

const MAGIC: &str = "tg-loadgen state 2";

/// What a state file holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// TOTP: the cursor's step and the next user index in it.
    Totp {
        /// TOTP step number.
        step: i64,
        /// Next user index within that step.
        next: u64,
    },
    /// HOTP: each user's next counter, by user name.
    Hotp(HashMap<Box<[u8]>, u64>),
}

/// Reads a state file; `Ok(None)` when it does not exist. A file that exists but cannot be
/// parsed is an error: silently starting HOTP counters from 0 again would make the server
/// reject every request as a replay.
pub fn read(path: &Path) -> Result<Option<State>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    parse(&text)
        .map(Some)
        .with_context(|| format!("{}: not a tg-loadgen state file", path.display()))
}

/// Parses the text of a state file (see the module documentation).
pub fn parse(text: &str) -> Result<State> {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("").trim();
    if first != MAGIC {
        // Before HOTP support: `STEP NEXT` alone.
        let mut it = first.split_whitespace();
        if let (Some(step), Some(next), None) = (it.next(), it.next(), it.next()) {
            return Ok(State::Totp {
                step: step.parse().context("step")?,
                next: next.parse().context("next")?,
            });
        }
        bail!("the first line is neither {MAGIC:?} nor `STEP NEXT`");
    }
    let kind = lines.next().unwrap_or("").trim();
    if let Some(rest) = kind.strip_prefix("totp ") {
        let (step, next) = rest
            .trim()
            .split_once(' ')
            .context("expected `totp STEP NEXT`")?;
        return Ok(State::Totp {
            step: step.trim().parse().context("step")?,
            next: next.trim().parse().context("next")?,
        });
    }
    if kind != "hotp" {
        bail!("line 2 must be `totp STEP NEXT` or `hotp`");
    }
    let mut counters = HashMap::new();
    for (n, line) in lines.enumerate() {
        if line.is_empty() {
            continue;
        }
        let (name, counter) = line
            .rsplit_once(' ')
            .with_context(|| format!("line {}: expected `NAME COUNTER`", n + 3))?;
        let counter: u64 = counter
            .parse()
            .with_context(|| format!("line {}: counter", n + 3))?;
        counters.insert(Box::from(name.as_bytes()), counter);
    }
    Ok(State::Hotp(counters))
}

/// The text of a state file.
pub fn render(state: &State) -> String {
    match state {
        State::Totp { step, next } => format!("{MAGIC}\ntotp {step} {next}\n"),
        State::Hotp(counters) => {
            // Sorted, so that the file is the same for the same counters.
            let mut rows: Vec<(&[u8], u64)> =
                counters.iter().map(|(k, v)| (k.as_ref(), *v)).collect();
            rows.sort_unstable();
            let mut s = String::with_capacity(32 + rows.len() * 24);
            s.push_str(MAGIC);
            s.push_str("\nhotp\n");
            for (name, counter) in rows {
                s.push_str(&String::from_utf8_lossy(name));
                s.push(' ');
                s.push_str(&counter.to_string());
                s.push('\n');
            }
            s
        }
    }
}

/// Writes `state` to `path` atomically: a temporary file next to it, flushed, renamed over it.
pub fn write(path: &Path, state: &State) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file name", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> Result<()> {
        let mut f = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(render(state).as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hotp_state_round_trips_through_a_file_and_replaces_it_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state");
        assert_eq!(read(&p).unwrap(), None, "a missing file is a fresh start");
        let mut m = HashMap::new();
        m.insert(Box::from(&b"bench0000000"[..]), 7u64);
        m.insert(Box::from(&b"name with spaces"[..]), 0);
        m.insert(Box::from(&b"bench0000002"[..]), u64::MAX);
        let s = State::Hotp(m);
        write(&p, &s).unwrap();
        assert_eq!(read(&p).unwrap(), Some(s.clone()));
        // Overwrite with a TOTP cursor: the old content is gone, no temporary file is left.
        let t = State::Totp {
            step: 59_000_000,
            next: 12,
        };
        write(&p, &t).unwrap();
        assert_eq!(read(&p).unwrap(), Some(t));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state")]);
    }

    #[test]
    fn old_cursor_files_parse_as_totp_and_garbage_is_an_error() {
        assert_eq!(
            parse("58000000 41\n").unwrap(),
            State::Totp {
                step: 58_000_000,
                next: 41
            }
        );
        assert!(parse("").is_err());
        assert!(parse("hello\n").is_err());
        assert!(parse("tg-loadgen state 2\nhotp\nalice x\n").is_err());
        assert!(parse("tg-loadgen state 2\nwhat\n").is_err());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state");
        std::fs::write(&p, "not a state\n").unwrap();
        assert!(
            read(&p).is_err(),
            "a corrupt file must not count as a fresh start"
        );
    }
}
