//! Authorization decisions (RFC 8907 §6): an attribute set with command patterns, applied to
//! the arguments of an authorization REQUEST.
//!
//! Pure: it takes the request's arguments and a configured [`AuthorSet`] and returns a
//! [`Verdict`]; which set applies to which user (user, group, `default`) is the front end's
//! business. Two kinds of request:
//!
//! - **Command** (`cmd=<name>` with a non-empty name): the command line is the name and its
//!   `cmd-arg`s joined by single spaces (a trailing `<cr>` dropped). A `deny` pattern that
//!   matches wins; otherwise a matching `permit` pattern gives PASS_ADD with no arguments;
//!   otherwise FAIL. Patterns are regular expressions anchored at both ends.
//! - **Service** (`cmd` absent or empty, e.g. an exec shell): the set's `service` must equal the
//!   requested one (when both name one). Each set argument whose name is not in the request is
//!   added; if the request names an attribute with another value (`priv-lvl=15` asked, the set
//!   says `priv-lvl=1`) the answer is PASS_REPL with the request's arguments, the set's values
//!   in their place and the added ones after; otherwise PASS_ADD with the added arguments.

use regex::Regex;

use super::Args;

/// One configured attribute set: arguments plus command patterns.
#[derive(Debug, Clone, Default)]
pub struct AuthorSet {
    /// `name=value` (mandatory) or `name*value` (optional) arguments.
    pub args: Vec<Vec<u8>>,
    /// Commands allowed (anchored regular expressions).
    pub permit: Vec<Regex>,
    /// Commands refused even when permitted (anchored regular expressions).
    pub deny: Vec<Regex>,
}

/// Why a pattern was refused.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PatternError(String);

/// Compiles a command pattern anchored at both ends (`show .*` matches `show version`, not
/// `no show`).
pub fn command_pattern(pattern: &str) -> Result<Regex, PatternError> {
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(1 << 20)
        .build()
        .map_err(|e| PatternError(e.to_string().replace('\n', " ")))
}

/// The answer to an authorization REQUEST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// PASS_ADD: these arguments are added to the request's.
    PassAdd(Vec<Vec<u8>>),
    /// PASS_REPL: these arguments replace the request's.
    PassRepl(Vec<Vec<u8>>),
    /// FAIL: command or service not allowed.
    Fail,
}

/// Splits `name=value` / `name*value` into (name, separator, value).
fn split(arg: &[u8]) -> Option<(&[u8], u8, &[u8])> {
    let at = arg.iter().position(|b| *b == b'=' || *b == b'*')?;
    let (name, rest) = arg.split_at(at);
    let (sep, value) = rest.split_first()?;
    Some((name, *sep, value))
}

/// Decides one request against `set`.
pub fn authorize(set: &AuthorSet, request: &Args<'_>) -> Verdict {
    let mut cmd: Option<&[u8]> = None;
    let mut cmd_args: Vec<&[u8]> = Vec::new();
    let mut service: Option<&[u8]> = None;
    for a in request.iter() {
        match split(a) {
            Some((b"cmd", _, v)) => cmd = Some(v),
            Some((b"cmd-arg", _, v)) => cmd_args.push(v),
            Some((b"service", _, v)) => service = Some(v),
            _ => {}
        }
    }
    let set_service = set
        .args
        .iter()
        .filter_map(|a| split(a))
        .find(|(n, _, _)| *n == b"service")
        .map(|(_, _, v)| v);
    if let (Some(asked), Some(ours)) = (service, set_service) {
        if asked != ours {
            return Verdict::Fail;
        }
    }
    match cmd {
        Some(name) if !name.is_empty() => command(set, name, &cmd_args),
        _ => attributes(set, request),
    }
}

fn command(set: &AuthorSet, name: &[u8], args: &[&[u8]]) -> Verdict {
    let mut line = String::from_utf8_lossy(name).into_owned();
    for a in args {
        if *a == b"<cr>" {
            continue;
        }
        line.push(' ');
        line.push_str(&String::from_utf8_lossy(a));
    }
    if set.deny.iter().any(|r| r.is_match(&line)) {
        return Verdict::Fail;
    }
    if set.permit.iter().any(|r| r.is_match(&line)) {
        return Verdict::PassAdd(Vec::new());
    }
    Verdict::Fail
}

fn attributes(set: &AuthorSet, request: &Args<'_>) -> Verdict {
    let mut added = Vec::new();
    let mut replace = false;
    for ours in &set.args {
        let Some((name, _, value)) = split(ours) else {
            continue;
        };
        let asked = request
            .iter()
            .filter_map(split)
            .find(|(n, _, _)| *n == name)
            .map(|(_, _, v)| v);
        match asked {
            None => added.push(ours.clone()),
            Some(v) if v == value => {}
            Some(_) => replace = true,
        }
    }
    if !replace {
        return Verdict::PassAdd(added);
    }
    let mut all: Vec<Vec<u8>> = request
        .iter()
        .map(|a| {
            let name = split(a).map(|(n, _, _)| n);
            set.args
                .iter()
                .find(|o| name.is_some() && split(o).map(|(n, _, _)| n) == name)
                .cloned()
                .unwrap_or_else(|| a.to_vec())
        })
        .collect();
    all.extend(added);
    if all.len() > 255 {
        // A REPLY carries at most 255 arguments.
        return Verdict::Fail;
    }
    Verdict::PassRepl(all)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    fn set(args: &[&str], permit: &[&str], deny: &[&str]) -> AuthorSet {
        AuthorSet {
            args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
            permit: permit.iter().map(|p| command_pattern(p).unwrap()).collect(),
            deny: deny.iter().map(|p| command_pattern(p).unwrap()).collect(),
        }
    }

    fn ask(s: &AuthorSet, args: &[&str]) -> Verdict {
        let list: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        authorize(s, &Args::from_list(&list))
    }

    fn v(args: &[&str]) -> Vec<Vec<u8>> {
        args.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    #[test]
    fn exec_adds_missing_attributes() {
        let s = set(&["service=shell", "priv-lvl=15", "idletime*30"], &[], &[]);
        assert_eq!(
            ask(&s, &["service=shell", "cmd="]),
            Verdict::PassAdd(v(&["priv-lvl=15", "idletime*30"]))
        );
        assert_eq!(
            ask(&s, &["service=shell", "cmd=", "priv-lvl=15"]),
            Verdict::PassAdd(v(&["idletime*30"]))
        );
    }

    #[test]
    fn exec_asking_for_another_value_is_replaced() {
        let s = set(&["service=shell", "priv-lvl=1"], &[], &[]);
        assert_eq!(
            ask(&s, &["service=shell", "cmd=", "priv-lvl=15", "autocmd*x"]),
            Verdict::PassRepl(v(&["service=shell", "cmd=", "priv-lvl=1", "autocmd*x"]))
        );
    }

    #[test]
    fn another_service_fails() {
        let s = set(&["service=shell", "priv-lvl=1"], &[".*"], &[]);
        assert_eq!(ask(&s, &["service=ppp", "protocol=ip"]), Verdict::Fail);
        assert_eq!(ask(&s, &["service=ppp", "cmd=show"]), Verdict::Fail);
    }

    #[test]
    fn commands_deny_wins_then_permit_then_fail() {
        let s = set(
            &["service=shell"],
            &["show .*", "configure terminal", "ping [0-9.]+"],
            &["show running-config.*"],
        );
        let cmd = |c: &[&str]| {
            let mut a = vec!["service=shell".to_string(), format!("cmd={}", c[0])];
            a.extend(c[1..].iter().map(|x| format!("cmd-arg={x}")));
            a.push("cmd-arg=<cr>".into());
            let r: Vec<&str> = a.iter().map(String::as_str).collect();
            ask(&s, &r)
        };
        assert_eq!(cmd(&["show", "version"]), Verdict::PassAdd(vec![]));
        assert_eq!(cmd(&["show", "running-config"]), Verdict::Fail, "denied");
        assert_eq!(cmd(&["configure", "terminal"]), Verdict::PassAdd(vec![]));
        assert_eq!(
            cmd(&["configure", "terminal", "now"]),
            Verdict::Fail,
            "anchored at the end"
        );
        assert_eq!(
            cmd(&["no", "show", "x"]),
            Verdict::Fail,
            "anchored at the start"
        );
        assert_eq!(cmd(&["ping", "192.0.2.1"]), Verdict::PassAdd(vec![]));
        assert_eq!(cmd(&["reload"]), Verdict::Fail, "not permitted");
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert!(command_pattern("show (").is_err());
        assert!(command_pattern("[z-a]").is_err());
    }
}
