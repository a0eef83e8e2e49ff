//! The one place that reads the OS clock, and every civil-time helper.
//!
//! Everything else receives `now` as a parameter; durations and deadlines that never become a
//! wall time use [`monotonic`]. The civil-time helpers live here too, so there is one of each:
//! [`format_utc`] (what logs, exports and the CLI print), [`parse_date`] (a date or Unix seconds,
//! for expiries), [`parse_time`] (`--since`/`--until`: also RFC 3339 times and ages) and the
//! proleptic Gregorian arithmetic under them ([`days_from_civil`], [`days_in_month`]). Tests that run a whole gateway can shift the
//! clock (`Clock::advance`) or stop it at an instant (`Clock::freeze`) to cross expiry and lockout
//! boundaries exactly, without sleeping.

// The one module allowed to read the OS clocks (clippy.toml disallows them elsewhere).
#![allow(clippy::disallowed_methods)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

const NOT_FROZEN: i64 = i64::MIN;

/// Wall clock in Unix seconds, with an adjustable offset or a frozen instant for tests.
#[derive(Debug)]
pub struct Clock {
    offset: AtomicI64,
    frozen: AtomicI64,
}

impl Default for Clock {
    fn default() -> Self {
        Clock {
            offset: AtomicI64::new(0),
            frozen: AtomicI64::new(NOT_FROZEN),
        }
    }
}

impl Clock {
    /// The system clock, no offset.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// Current Unix time in seconds (the frozen instant, or the OS time plus the test offset).
    pub fn now(&self) -> i64 {
        match self.frozen.load(Ordering::Relaxed) {
            NOT_FROZEN => unix_now() + self.offset.load(Ordering::Relaxed),
            t => t,
        }
    }

    /// Moves this clock forward (or back) by `secs` (tests). A frozen clock stays frozen.
    pub fn advance(&self, secs: i64) {
        if self.frozen.load(Ordering::Relaxed) != NOT_FROZEN {
            self.frozen.fetch_add(secs, Ordering::Relaxed);
        } else {
            self.offset.fetch_add(secs, Ordering::Relaxed);
        }
    }

    /// Stops the clock at `t` (tests).
    pub fn freeze(&self, t: i64) {
        self.frozen.store(t, Ordering::Relaxed);
    }
}

/// The OS wall clock in Unix seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The OS wall clock in Unix seconds with the fraction (the process start time metric).
pub fn unix_now_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The OS monotonic clock: for measuring durations and setting deadlines, never for wall time.
pub fn monotonic() -> Instant {
    Instant::now()
}

/// Seconds in a civil day.
pub const DAY: i64 = 86_400;

/// Days from 1970-01-01 to the proleptic Gregorian date `y-m-d` (H. Hinnant's days-from-civil
/// algorithm). The caller checks that the date exists.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses a `--since`/`--until` argument into Unix seconds: an RFC 3339 time
/// (`2026-12-04T09:30:00Z`, `2026-12-04T10:30:00.5+01:00`), a date (`2026-12-04`, UTC midnight),
/// or an age before `now` (`90s`, `15m`, `24h`, `7d`, `2w`).
pub fn parse_time(s: &str, now: i64) -> Result<i64, String> {
    let s = s.trim();
    if let Some(age) = parse_age(s) {
        return age
            .and_then(|a| now.checked_sub(a))
            .ok_or_else(|| format!("{s:?}: duration too large"));
    }
    parse_rfc3339(s).ok_or_else(|| {
        format!("{s:?} is not an RFC 3339 time (2026-12-04T09:30:00Z), a date (2026-12-04) or a duration (24h, 7d)")
    })
}

/// `Some(Some(seconds))` for `<digits><unit>`, `Some(None)` on overflow, `None` if not an age.
fn parse_age(s: &str) -> Option<Option<i64>> {
    let unit = match s.chars().last()? {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return None,
    };
    let digits = s.get(..s.len() - 1)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse::<i64>().ok().and_then(|n| n.checked_mul(unit)))
}

fn number(s: &str, digits: usize) -> Option<i64> {
    if s.len() != digits || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// An RFC 3339 time (`2026-12-04T09:30:00Z`, fraction dropped, any offset) or a date alone
/// (`2026-12-04`, UTC midnight); `None` for anything else, including days a month does not have.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let date = s.get(..10)?;
    let (y, m, d) = (
        number(date.get(0..4)?, 4)?,
        number(date.get(5..7)?, 2)?,
        number(date.get(8..10)?, 2)?,
    );
    if date.get(4..5)? != "-" || date.get(7..8)? != "-" || !(1..=12).contains(&m) {
        return None;
    }
    if !(1..=days_in_month(y, m)).contains(&d) {
        return None;
    }
    let midnight = days_from_civil(y, m, d) * 86_400;
    let rest = s.get(10..)?;
    if rest.is_empty() {
        return Some(midnight);
    }
    let sep = rest.get(..1)?;
    if !matches!(sep, "T" | "t" | " ") {
        return None;
    }
    let time = rest.get(1..)?;
    let (h, mi, sec) = (
        number(time.get(0..2)?, 2)?,
        number(time.get(3..5)?, 2)?,
        number(time.get(6..8)?, 2)?,
    );
    if time.get(2..3)? != ":" || time.get(5..6)? != ":" || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut zone = time.get(8..)?;
    if let Some(frac) = zone.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        // Fractions of a second are dropped: the log keeps whole seconds.
        zone = frac.get(n..)?;
    }
    let offset = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = match zone.get(..1)? {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            let (oh, om) = (number(zone.get(1..3)?, 2)?, number(zone.get(4..6)?, 2)?);
            if zone.len() != 6 || zone.get(3..4)? != ":" || oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 3_600 + om * 60)
        }
    };
    Some(midnight + h * 3_600 + mi * 60 + sec.min(59) - offset)
}

/// Days in month `m` (1–12) of year `y`, proleptic Gregorian.
pub fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses an expiry argument into Unix seconds: Unix seconds, a date (`2026-12-04`, UTC
/// midnight) or an RFC 3339 time. A date that does not exist (`2026-02-31`) is refused.
pub fn parse_date(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    parse_rfc3339(s).ok_or_else(|| {
        format!("{s:?} is not a valid date (YYYY-MM-DD), RFC 3339 time or Unix seconds")
    })
}

/// `YYYY-MM-DDTHH:MM:SSZ` for Unix seconds (civil-from-days, proleptic Gregorian).
pub fn format_utc(t: i64) -> String {
    let days = t.div_euclid(DAY);
    let secs = t.rem_euclid(DAY);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frozen_clock_moves_only_when_told() {
        let c = Clock::system();
        c.freeze(1_000);
        assert_eq!(c.now(), 1_000);
        c.advance(5);
        assert_eq!(c.now(), 1_005);
        let d = Clock::system();
        d.advance(3600);
        assert!(d.now() >= unix_now() + 3599);
    }

    #[test]
    fn times_parse_as_rfc3339_dates_and_ages() {
        let now = 1_800_000_000;
        assert_eq!(parse_time("1970-01-01T00:00:00Z", now), Ok(0));
        assert_eq!(parse_time("2026-12-04T09:30:00Z", now), Ok(1_796_376_600));
        assert_eq!(
            parse_time("2026-12-04T10:30:00.250+01:00", now),
            Ok(1_796_376_600)
        );
        assert_eq!(
            parse_time("2026-12-04t04:30:00-05:00", now),
            Ok(1_796_376_600)
        );
        assert_eq!(parse_time("2026-12-04", now), Ok(1_796_342_400));
        assert_eq!(parse_time("2024-02-29", now), Ok(1_709_164_800));
        assert_eq!(parse_time("24h", now), Ok(now - 86_400));
        assert_eq!(parse_time("90s", now), Ok(now - 90));
        assert_eq!(parse_time("15m", now), Ok(now - 900));
        assert_eq!(parse_time("7d", now), Ok(now - 7 * 86_400));
        assert_eq!(parse_time("2w", now), Ok(now - 14 * 86_400));
        for bad in [
            "",
            "h",
            "-5h",
            "5x",
            "yesterday",
            "2026-13-01",
            "2025-02-29",
            "2026-12-04T25:00:00Z",
            "2026-12-04T09:30:00",
            "2026-12-04T09:30:00+0100",
            "2026-12-04T09:30:00.Z",
            "99999999999999999999h",
        ] {
            assert!(parse_time(bad, now).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_868_800 + 3661), "2000-03-01T01:01:01Z");
        assert_eq!(format_utc(1_795_305_600), "2026-11-22T00:00:00Z");
    }

    #[test]
    fn dates_parse_and_days_that_do_not_exist_are_refused() {
        assert_eq!(parse_date("1970-01-01"), Ok(0));
        assert_eq!(parse_date("2000-03-01"), Ok(951_868_800));
        assert_eq!(parse_date("2026-11-22"), Ok(1_795_305_600));
        assert_eq!(parse_date("1234567890"), Ok(1_234_567_890));
        assert_eq!(parse_date("2024-02-29"), Ok(1_709_164_800));
        assert_eq!(parse_date("2026-12-04T09:30:00Z"), Ok(1_796_376_600));
        for bad in [
            "2026-13-01",
            "tomorrow",
            "2026-02-31",
            "2025-02-29",
            "2026-04-31",
            "",
        ] {
            assert!(parse_date(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
