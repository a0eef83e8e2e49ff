//! Log setup for every verb: human or JSON lines on standard error, one line per event whatever
//! the fields hold.
//!
//! Field values carry text from the network and from users (RADIUS User-Name, TACACS+ user and
//! accounting arguments, admin API paths and object names, error messages that quote them).
//! Written raw, a `\n` in a user name would end the line and start a forged one, and an ESC would
//! drive the reader's terminal. So neither format writes a control character as is:
//!
//! - **human**: [`EscapedFields`] formats every field (the message included) of events and spans:
//!   control characters become `\n`, `\r`, `\t`, `\0`, `\x1b`, `\u{85}`, …, as do the Unicode
//!   line separators and bidirectional overrides, and a backslash becomes `\\` so an escape cannot
//!   be faked; a value with a space, `"` or `=` is written in double quotes (`"` inside as `\"`),
//!   so one field can never read as two. Text fields are always quoted, as tracing's default
//!   formatter does. This covers fields added later without anyone having to remember it.
//! - **json**: `serde_json` already escapes C0 controls, quotes and backslashes inside strings;
//!   [`JsonSafeStderr`] also writes DEL, the C1 controls and the characters above as `\u` escapes
//!   (which JSON allows anywhere a string may hold them; outside strings they cannot occur), so a
//!   JSON line shown on a terminal is as inert as a human one and still decodes to what was sent.
//!
//! Escaping happens only while a line is written: the packet path hands over borrowed text and
//! nothing is copied for a name without such characters.

use std::fmt::{self, Write as _};
use std::io;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FormatFields, MakeWriter};

use super::LogFormat;

/// Sets up tracing (human or JSON lines; level from `RUST_LOG`, default info).
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Human => builder
            .with_ansi(std::io::stderr().is_terminal())
            .fmt_fields(EscapedFields)
            .with_writer(std::io::stderr)
            .try_init(),
        LogFormat::Json => builder
            .with_ansi(false)
            .json()
            .with_writer(JsonSafeStderr)
            .try_init(),
    };
}

// ---------------------------------------------------------------------------------------------
// Escaping
// ---------------------------------------------------------------------------------------------

/// Whether `c` is written as an escape: C0 and C1 controls and DEL, the Unicode line and
/// paragraph separators, and the bidirectional formatting characters (which reorder what a
/// terminal or editor shows).
fn is_special(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// A `fmt::Write` that passes text on with specials, backslashes (and, inside quotes, double
/// quotes) escaped. Runs of plain characters are passed on in one piece.
struct Escape<'a, W: fmt::Write + ?Sized> {
    out: &'a mut W,
    quoted: bool,
}

impl<W: fmt::Write + ?Sized> fmt::Write for Escape<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut plain = 0;
        for (i, c) in s.char_indices() {
            let escaped = c == '\\' || (self.quoted && c == '"') || is_special(c);
            if !escaped {
                continue;
            }
            self.out.write_str(s.get(plain..i).unwrap_or_default())?;
            plain = i + c.len_utf8();
            match c {
                '\\' => self.out.write_str("\\\\")?,
                '"' => self.out.write_str("\\\"")?,
                '\n' => self.out.write_str("\\n")?,
                '\r' => self.out.write_str("\\r")?,
                '\t' => self.out.write_str("\\t")?,
                '\0' => self.out.write_str("\\0")?,
                c if c.is_ascii() => write!(self.out, "\\x{:02x}", c as u32)?,
                c => write!(self.out, "\\u{{{:x}}}", c as u32)?,
            }
        }
        self.out.write_str(s.get(plain..).unwrap_or_default())
    }
}

/// A `fmt::Write` that only looks: whether the text needs double quotes to stay one value
/// (it is empty, or holds a space, `"` or `=`).
#[derive(Default)]
struct NeedsQuotes {
    seen: bool,
    quote: bool,
}

impl fmt::Write for NeedsQuotes {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.seen |= !s.is_empty();
        self.quote |= s.chars().any(|c| c == '"' || c == '=' || c.is_whitespace());
        Ok(())
    }
}

impl NeedsQuotes {
    fn of(render: &dyn Fn(&mut dyn fmt::Write) -> fmt::Result) -> bool {
        let mut scan = NeedsQuotes::default();
        // A value that fails to render fails again when it is written.
        let _ = render(&mut scan);
        scan.quote || !scan.seen
    }
}

/// Writes `s` escaped, optionally in double quotes.
fn write_escaped(out: &mut dyn fmt::Write, s: &str, quoted: bool) -> fmt::Result {
    if quoted {
        out.write_char('"')?;
    }
    Escape {
        out: &mut *out,
        quoted,
    }
    .write_str(s)?;
    if quoted {
        out.write_char('"')?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Human format: the field formatter
// ---------------------------------------------------------------------------------------------

/// The human format's field formatter: `name=value` pairs separated by spaces, the message
/// first without a name, every value escaped (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct EscapedFields;

impl<'writer> FormatFields<'writer> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut v = EscapingVisitor {
            writer,
            result: Ok(()),
            padded: false,
        };
        fields.record(&mut v);
        v.result
    }
}

struct EscapingVisitor<'a> {
    writer: Writer<'a>,
    result: fmt::Result,
    /// Whether something was written (the next field needs a space first).
    padded: bool,
}

impl EscapingVisitor<'_> {
    /// Writes the separator and `name=` (nothing but the separator for the message); `false`
    /// when the field is not to be written (an earlier error, or `log.*` metadata that tracing's
    /// `log` bridge records as fields and the line already shows).
    fn start(&mut self, field: &Field) -> bool {
        if self.result.is_err() || field.name().starts_with("log.") {
            return false;
        }
        let name = field.name();
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.result = (|| {
            if self.padded {
                self.writer.write_char(' ')?;
            }
            if name == "message" {
                return Ok(());
            }
            if self.writer.has_ansi_escapes() {
                write!(self.writer, "\x1b[3m{name}\x1b[0m\x1b[2m=\x1b[0m")
            } else {
                write!(self.writer, "{name}=")
            }
        })();
        self.padded = true;
        self.result.is_ok()
    }

    /// Writes a rendered value: escaped, in quotes when it needs them (never for the message).
    fn value(&mut self, field: &Field, render: &dyn Fn(&mut dyn fmt::Write) -> fmt::Result) {
        if !self.start(field) {
            return;
        }
        let quoted = field.name() != "message" && NeedsQuotes::of(render);
        self.result = (|| {
            if quoted {
                self.writer.write_char('"')?;
            }
            render(&mut Escape {
                out: &mut self.writer,
                quoted,
            })?;
            if quoted {
                self.writer.write_char('"')?;
            }
            Ok(())
        })();
    }

    /// Writes a value that never needs escaping (numbers, booleans).
    fn plain(&mut self, field: &Field, value: &dyn fmt::Display) {
        if self.start(field) {
            self.result = write!(self.writer, "{value}");
        }
    }
}

impl Visit for EscapingVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.start(field) {
            let quoted = field.name() != "message";
            self.result = write_escaped(&mut self.writer, value, quoted);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.value(field, &|w: &mut dyn fmt::Write| write!(w, "{value:?}"));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.value(field, &|w: &mut dyn fmt::Write| {
            write!(w, "{value}")?;
            let mut source = value.source();
            while let Some(s) = source {
                write!(w, ": {s}")?;
                source = s.source();
            }
            Ok(())
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.plain(field, &value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.plain(field, &value);
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.plain(field, &value);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.plain(field, &value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.plain(field, &value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.record_debug(field, &value);
    }
}

// ---------------------------------------------------------------------------------------------
// JSON format: the writer
// ---------------------------------------------------------------------------------------------

/// Standard error for the JSON format: each line is passed on as formatted, except that DEL,
/// the C1 controls and the other specials of [`is_special`] that `serde_json` leaves raw are
/// written as `\uXXXX` escapes. In a JSON text those characters can only stand inside strings,
/// where the escape means the same character: the line stays valid JSON and decodes to the
/// same values.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonSafeStderr;

impl<'a> MakeWriter<'a> for JsonSafeStderr {
    type Writer = JsonSafe<io::Stderr>;

    fn make_writer(&'a self) -> Self::Writer {
        JsonSafe(io::stderr())
    }
}

/// An `io::Write` that escapes, in one formatted JSON line per write, the characters
/// [`JsonSafeStderr`] names. Lines without them (nearly all) are written unchanged, uncopied.
#[derive(Debug)]
pub struct JsonSafe<W: io::Write>(pub W);

impl<W: io::Write> io::Write for JsonSafe<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        // tracing-subscriber formats a whole line into one buffer and writes it in one call, so
        // a character is never split between writes; a buffer that is not UTF-8 is passed on.
        let text = match std::str::from_utf8(buf) {
            Ok(t) if t.chars().any(|c| c != '\n' && is_special(c)) => t,
            _ => return self.0.write_all(buf),
        };
        let mut out = String::with_capacity(text.len() + 16);
        for c in text.chars() {
            if c != '\n' && is_special(c) {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            } else {
                out.push(c);
            }
        }
        self.0.write_all(out.as_bytes())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::fmt::format::FmtSpan;

    fn esc(s: &str, quoted: bool) -> String {
        let mut out = String::new();
        write_escaped(&mut out, s, quoted).unwrap();
        out
    }

    #[test]
    fn control_characters_backslashes_and_quotes_are_escaped() {
        assert_eq!(esc("alice", false), "alice");
        assert_eq!(esc("a\nb\rc\td\0e", false), "a\\nb\\rc\\td\\0e");
        assert_eq!(esc("\x1b[31mred", false), "\\x1b[31mred");
        assert_eq!(esc("\x7f\u{85}\u{9b}", false), "\\x7f\\u{85}\\u{9b}");
        assert_eq!(esc("a\u{2028}b\u{202e}c", false), "a\\u{2028}b\\u{202e}c");
        assert_eq!(esc("back\\n", false), "back\\\\n");
        assert_eq!(esc("say \"hi\"", true), "\"say \\\"hi\\\"\"");
        assert_eq!(esc("say \"hi\"", false), "say \"hi\"");
        assert_eq!(esc("naïve ünïcode ✓", false), "naïve ünïcode ✓");
    }

    /// A shared buffer the test subscriber writes into.
    #[derive(Clone, Default)]
    struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buf {
        type Writer = Buf;
        fn make_writer(&'a self) -> Buf {
            self.clone()
        }
    }

    impl Buf {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    const EVIL: &str =
        "eve\nts INFO tokengate::audit: audit user=alice result=accept\r\x1b[2J\0 x=\"y\"\\";

    #[derive(Debug)]
    struct Failure;
    impl fmt::Display for Failure {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("no user \"eve\n\"")
        }
    }
    impl std::error::Error for Failure {}

    fn log_everything() {
        let span = tracing::info_span!("conn", peer = %EVIL);
        let _g = span.enter();
        tracing::info!(
            user = %EVIL,
            text = EVIL,
            debug = ?EVIL,
            error = &Failure as &(dyn std::error::Error + 'static),
            n = 7u64,
            ok = true,
            plain = %"alice",
            empty = %"",
            "message {EVIL}"
        );
    }

    #[test]
    fn human_lines_stay_one_line_and_every_value_is_one_field() {
        let buf = Buf::default();
        let sub = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_span_events(FmtSpan::NONE)
            .fmt_fields(EscapedFields)
            .with_writer(buf.clone())
            .finish();
        tracing::subscriber::with_default(sub, log_everything);
        let text = buf.text();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(!text.contains(['\r', '\x1b', '\0']), "{text:?}");
        let e =
            r#"eve\nts INFO tokengate::audit: audit user=alice result=accept\r\x1b[2J\0 x=\"y\"\\"#;
        assert!(text.contains(&format!("user=\"{e}\"")), "{text}");
        assert!(text.contains(&format!("text=\"{e}\"")), "{text}");
        assert!(text.contains(&format!("conn{{peer=\"{e}\"}}")), "{text}");
        assert!(text.contains(r#"error="no user \"eve\n\"""#), "{text}");
        assert!(
            text.contains(" n=7 ok=true plain=alice empty=\"\""),
            "{text}"
        );
        let unquoted = r#"message eve\nts INFO tokengate::audit: audit user=alice result=accept\r\x1b[2J\0 x="y"\\"#;
        assert!(text.contains(unquoted), "{text}");
    }

    #[test]
    fn json_lines_stay_valid_one_line_json_that_decodes_to_what_was_sent() {
        let buf = Buf::default();
        let writer = buf.clone();
        let sub = tracing_subscriber::fmt()
            .json()
            .with_writer(move || JsonSafe(writer.clone()))
            .finish();
        let odd = format!("{EVIL}\u{7f}\u{85}\u{9b}\u{2028}\u{202e}\u{1F600}");
        tracing::subscriber::with_default(sub, || tracing::info!(user = %odd, "audit"));
        let text = buf.text();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            !text.trim_end().chars().any(is_special),
            "a raw special character: {text:?}"
        );
        assert!(text.contains(r"\u007f\u0085\u009b\u2028\u202e"), "{text}");
        let v: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(v["fields"]["user"], odd.as_str());
    }

    #[test]
    fn plain_json_lines_pass_unchanged() {
        let mut out = JsonSafe(Vec::new());
        io::Write::write_all(&mut out, b"{\"a\":\"caf\xc3\xa9\"}\n").unwrap();
        assert_eq!(out.0, b"{\"a\":\"caf\xc3\xa9\"}\n");
        let mut out = JsonSafe(Vec::new());
        io::Write::write_all(&mut out, b"\xff raw").unwrap();
        assert_eq!(out.0, b"\xff raw");
    }
}
