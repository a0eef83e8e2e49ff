//! CPU time from Linux `/proc`: a process's (the server under test) and the calling thread's
//! (the generator's own workers), in seconds. Missing files read as `None`, never a panic.

use std::time::Duration;

/// `AT_CLKTCK` in the auxiliary vector: the unit of `utime`/`stime` in `/proc/*/stat`.
const AT_CLKTCK: u64 = 17;

/// Clock ticks per second of `/proc/*/stat` times (from `/proc/self/auxv`; 100 if unreadable,
/// which is USER_HZ on every mainstream Linux architecture).
pub fn clock_ticks_per_second() -> u64 {
    let Ok(auxv) = std::fs::read("/proc/self/auxv") else {
        return 100;
    };
    let words: Vec<u64> = auxv
        .chunks_exact(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])))
        .collect();
    words
        .chunks_exact(2)
        .find(|kv| kv[0] == AT_CLKTCK)
        .map(|kv| kv[1])
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// utime + stime (in ticks) from the text of a `/proc/*/stat` file.
fn parse_stat_ticks(text: &str) -> Option<u64> {
    // The command name (field 2) may contain spaces and parentheses: fields after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After ')': state (field 3) is index 0, utime (field 14) index 11, stime index 12.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn read_cpu(path: &str) -> Option<Duration> {
    let text = std::fs::read_to_string(path).ok()?;
    let ticks = parse_stat_ticks(&text)?;
    let hz = clock_ticks_per_second();
    Some(Duration::from_nanos(
        ticks.saturating_mul(1_000_000_000) / hz.max(1),
    ))
}

/// User + system CPU time used so far by process `pid` (all its threads).
pub fn process_cpu(pid: u32) -> Option<Duration> {
    read_cpu(&format!("/proc/{pid}/stat"))
}

/// User + system CPU time used so far by this process.
pub fn own_cpu() -> Option<Duration> {
    read_cpu("/proc/self/stat")
}

/// User + system CPU time used so far by the calling thread.
pub fn thread_cpu() -> Option<Duration> {
    read_cpu("/proc/thread-self/stat")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_with_a_tricky_name() {
        let line = "4242 (tg (x) y) S 1 4242 4242 0 -1 4194560 500 0 0 0 1234 56 0 0 20 0 3 0";
        assert_eq!(parse_stat_ticks(line), Some(1290));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn own_process_and_thread_cpu_are_readable() {
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        assert!(own_cpu().is_some());
        assert!(thread_cpu().is_some());
        assert!(process_cpu(std::process::id()).is_some());
        assert!(clock_ticks_per_second() >= 100);
    }
}
