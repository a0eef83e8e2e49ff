//! ARCHITECTURE.md invariant: the codec, OTP and engine modules never touch sockets, the
//! database, the clock or OS randomness: they take bytes, `now` and an RNG as arguments.

use crate::common::repo;

const PURE: [&str; 4] = ["src/radius", "src/tacacs", "src/otp", "src/engine"];
const FORBIDDEN: [&str; 9] = [
    "tokio::net",
    "std::net::UdpSocket",
    "std::net::TcpStream",
    "sqlx",
    "SystemTime::now",
    "Instant::now",
    "OsRng",
    "thread_rng",
    "crate::store::Store",
];

fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn pure_modules_do_no_io_and_read_no_clock() {
    let mut files = Vec::new();
    for d in PURE {
        rust_files(&repo().join(d), &mut files);
    }
    assert!(
        files.len() >= 10,
        "expected the pure modules' files, found {files:?}"
    );
    let mut bad = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in FORBIDDEN {
                if code.contains(word) {
                    bad.push(format!("{}:{}: {word}", f.display(), n + 1));
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "I/O, clock or OS randomness in a pure module:\n{}",
        bad.join("\n")
    );
}
