//! Log lines cannot be forged (issue 21): the real `tokengate` binary, in human and in JSON log
//! format at debug level, is sent user names holding `\n`, `\r\n`, ESC sequences, NUL, C1
//! controls and Unicode separators (each followed by text that reads like an audit line of its
//! own) through RADIUS, TACACS+ (authentication and accounting) and the admin HTTP API. Then:
//! no raw control character reaches the output, no line starts where a forged one would, every
//! audit line is one line with each field once, and its user field decodes to exactly the name
//! that was sent.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use tokengate::radius::Code;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;
use crate::logging::{config, start, API_KEY};

/// Every name starts with this (and nothing else in the output has it).
const MARK: &str = "m4llory";

/// What a forged human audit line would start with.
const FORGED_HUMAN: &str = "2030-01-01t00:00:00.000000z";
/// What a forged JSON audit line would start with.
const FORGED_JSON: &str = "{\"timestamp\":\"2030";

/// The names sent (lower case: the default `user_name_case = "fold"` would lower them; no
/// leading or trailing white space, which is trimmed).
fn evil_names() -> Vec<String> {
    vec![
        format!(
            "{MARK}\n{FORGED_HUMAN}  info tokengate::audit: audit at=1 user=alice client=\"nas\" \
             protocol=radius method=token result=accept reason=none"
        ),
        format!(
            "{MARK}\r\n{FORGED_JSON}-01-01t00:00:00z\",\"level\":\"info\",\"fields\":\
             {{\"message\":\"audit\",\"user\":\"alice\",\"result\":\"accept\"}},\
             \"target\":\"tokengate::audit\"}}"
        ),
        format!("{MARK}\x1b[31m red\x1b[0m result=accept"),
        format!("{MARK}\0nul"),
        format!("{MARK}\rcarriage return"),
        format!("{MARK}\u{9b}2j\u{85}nel\u{2028}ls\u{202e}rlo\u{7f}"),
    ]
}

/// A request target with raw C1 controls, a line separator and a right-to-left override.
const EVIL_PATH: &str = "/api/v1/users/m4llory\u{9b}2j\u{85}\u{2028}\u{202e}x";

/// The accounting argument sent with the first name (it lands in the audit record's reason).
const EVIL_ARG: &str = "task_id=7\n2030-01-01t00:00:00.000000z  info forged result=accept";

/// Whether `c` may not appear raw in a log (everything the escaping covers except the line end).
fn raw_special(c: char) -> bool {
    let separator_or_bidi = matches!(
        c,
        '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    );
    c != '\n' && (c.is_control() || separator_or_bidi)
}

/// `key=value` pairs of a human line's field part; `value` quoted (`"…"` with `\"` inside) or
/// bare. `None` when the text is not such a list.
fn fields(s: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let key = &rest[..eq];
        if key.is_empty() || key.contains([' ', '"']) {
            return None;
        }
        rest = &rest[eq + 1..];
        let value;
        if let Some(q) = rest.strip_prefix('"') {
            let mut end = None;
            let mut escaped = false;
            for (i, c) in q.char_indices() {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let end = end?;
            value = unescape(&q[..end])?;
            rest = &q[end + 1..];
            if !(rest.is_empty() || rest.starts_with(' ')) {
                return None;
            }
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            value = unescape(&rest[..end])?;
            rest = &rest[end..];
        }
        out.push((key.to_string(), value));
        rest = rest.trim_start();
    }
    Some(out)
}

/// Reverses the human format's escapes: `\\`, `\"`, `\n`, `\r`, `\t`, `\0`, `\xNN`, `\u{…}`.
fn unescape(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            '0' => out.push('\0'),
            'x' => {
                let hex: String = chars.by_ref().take(2).collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
            }
            'u' => {
                if chars.next()? != '{' {
                    return None;
                }
                let hex: String = chars.by_ref().take_while(|c| *c != '}').collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

/// One audit log line: its fields by name.
type Audit = BTreeMap<String, String>;

/// The audit lines of `printed` in `format`, each field once (checked).
fn audit_lines(printed: &str, format: &str) -> Vec<Audit> {
    let mut out = Vec::new();
    for line in printed.lines() {
        if format == "json" {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
            if v["target"] != "tokengate::audit" {
                continue;
            }
            let f = v["fields"].as_object().unwrap();
            out.push(
                f.iter()
                    .map(|(k, v)| {
                        let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                        (k.clone(), v)
                    })
                    .collect(),
            );
        } else if let Some(i) = line.find(" tokengate::audit: audit ") {
            let rest = &line[i + " tokengate::audit: audit ".len()..];
            let pairs =
                fields(rest).unwrap_or_else(|| panic!("audit line that does not parse: {line}"));
            let mut a = Audit::new();
            for (k, v) in pairs {
                assert!(
                    a.insert(k.clone(), v).is_none(),
                    "field {k} twice in {line}"
                );
            }
            out.push(a);
        }
    }
    out
}

/// Percent-encodes everything but unreserved characters (for a path segment).
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Sends `request` (raw bytes) to `addr` and returns the status line.
async fn raw_http(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut reply = Vec::new();
    let _ =
        tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut reply)).await;
    String::from_utf8_lossy(&reply)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

async fn exercise(format: &str) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let (daemon, radius, tacacs, admin) = start(&cfg, format);
    let names = evil_names();

    let mut c = RadClient::new(radius).await;
    for n in &names {
        assert_eq!(c.ask(n, "000000").await.code, Code::AccessReject, "{n:?}");
        let status = crate::tacacs_e2e::pap(tacacs, n, "000000").await;
        assert_eq!(format!("{status:?}"), "Fail", "{n:?}");
    }
    let status =
        crate::tacacs_e2e::accounting(tacacs, &names[0], &[EVIL_ARG.as_bytes(), b"service=shell"])
            .await;
    assert_eq!(format!("{status:?}"), "Success");

    // The admin API: raw UTF-8 controls in a request target with a wrong key (the refusal is
    // logged with its path), then names in paths (percent-encoded, as a client must send them)
    // with the right key and a wrong one.
    let status = raw_http(
        admin,
        format!(
            "GET {EVIL_PATH} HTTP/1.1\r\nHost: x\r\n\
             Authorization: Bearer tgk_wrong\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 401"), "{status}");
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    for n in &names {
        let user = format!("http://{admin}/api/v1/users/{}", pct(n));
        let r = http.get(&user).bearer_auth(API_KEY).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 404, "{n:?}");
        let r = http
            .delete(format!("{user}/fixed-passcode"))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 404, "{n:?}");
        let r = http
            .get(&user)
            .bearer_auth("tgk_wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401, "{n:?}");
    }

    let printed = daemon.stop();
    assert!(printed.contains(MARK), "{printed}");

    // Nothing starts a line of its own, nothing is raw.
    for line in printed.lines() {
        assert!(
            !line.starts_with(FORGED_HUMAN) && !line.starts_with(FORGED_JSON),
            "{format}: a forged line:\n{line}\n--- all ---\n{printed}"
        );
        if format == "json" {
            assert!(
                serde_json::from_str::<serde_json::Value>(line).is_ok(),
                "not a JSON line: {line:?}"
            );
        }
    }

    for (i, c) in printed.char_indices() {
        assert!(
            !raw_special(c),
            "{format}: raw {c:?} at byte {i}:\n{printed}"
        );
    }

    // Each name is logged once per protocol, decoding to exactly what was sent, rejected.
    let audits = audit_lines(&printed, format);
    for a in &audits {
        assert_ne!(a.get("user").map(String::as_str), Some("alice"), "{a:?}");
    }
    let ours: Vec<&Audit> = audits
        .iter()
        .filter(|a| a.get("user").is_some_and(|u| u.contains(MARK)))
        .collect();
    for n in &names {
        for protocol in ["radius", "tacacs"] {
            let found = ours
                .iter()
                .any(|a| a["user"] == *n && a["protocol"] == protocol && a["result"] == "reject");
            assert!(
                found,
                "{format}: no {protocol} reject logged for {n:?}; logged: {ours:#?}"
            );
        }
    }
    assert!(
        ours.iter().any(|a| a["user"] == names[0]
            && a["method"] == "accounting_start"
            && a["reason"].contains(EVIL_ARG)),
        "{format}: accounting record not logged as sent: {ours:#?}"
    );
    for a in &ours {
        assert!(names.contains(&a["user"]), "{format}: {a:?}");
        assert_ne!(a["result"], "accept", "{format}: {a:?}");
    }

    // The refused request's line names the path as sent, escaped.
    let refused: Vec<&str> = printed
        .lines()
        .filter(|l| l.contains("request refused for its API key"))
        .collect();
    assert_eq!(refused.len(), 1, "{format}: {refused:#?}");
    let path = if format == "json" {
        let v: serde_json::Value = serde_json::from_str(refused[0]).unwrap();
        v["fields"]["path"].as_str().unwrap().to_string()
    } else {
        let i = refused[0].find(" path=").unwrap();
        let (_, value) = fields(&refused[0][i..]).unwrap()[0].clone();
        value
    };
    assert_eq!(path, EVIL_PATH, "{format}: {}", refused[0]);
}

#[tokio::test]
async fn forged_log_lines_are_impossible_in_human_format() {
    exercise("human").await;
}

#[tokio::test]
async fn forged_log_lines_are_impossible_in_json_format() {
    exercise("json").await;
}
