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

/// The layers of ARCHITECTURE.md, top (imports nothing of ours) to bottom (may import anything
/// above). A unit is a top-level module of `src/`, or `audit::log` / `audit::export` /
/// `audit::retention`, which sit on different layers.
const LAYERS: [&[&str]; 11] = [
    &["model", "clock"],
    &["otp", "stats"],
    &["radius", "tacacs", "policy"],
    &["engine"],
    &["config", "keys"],
    &["audit::log"],
    &["store"],
    &["audit::export", "audit::retention"],
    &["admin", "metrics"],
    &["server"],
    &["cli"],
];

/// What each unit may `use crate::…` (the allow-list). Every entry must sit on a layer above the
/// unit (checked), so the list itself cannot hold a loop; an import outside it fails the test
/// the way a crate boundary would fail the build.
const ALLOWED: [(&str, &[&str]); 19] = [
    ("model", &[]),
    ("clock", &[]),
    ("otp", &["model"]),
    ("stats", &["model"]),
    ("radius", &["otp"]),
    ("tacacs", &["otp"]),
    ("policy", &["model", "otp"]),
    ("engine", &["model", "policy", "otp"]),
    ("config", &["model", "otp", "radius", "tacacs", "policy"]),
    ("keys", &["otp"]),
    ("audit::log", &["model", "engine"]),
    (
        "store",
        &["model", "clock", "stats", "engine", "config", "audit::log"],
    ),
    ("audit::export", &["model", "clock", "store"]),
    ("audit::retention", &["model", "clock", "store"]),
    (
        "admin",
        &[
            "model",
            "clock",
            "otp",
            "policy",
            "engine",
            "config",
            "store",
            "audit::log",
        ],
    ),
    ("metrics", &["model", "clock", "stats", "engine", "store"]),
    (
        "server",
        &[
            "model",
            "clock",
            "otp",
            "stats",
            "radius",
            "tacacs",
            "policy",
            "engine",
            "config",
            "keys",
            "audit::log",
            "store",
            "audit::export",
            "audit::retention",
            "admin",
            "metrics",
        ],
    ),
    ("cli", &["*"]),
    ("lib", &["*"]),
];

fn layer_of(unit: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| l.contains(&unit))
        .unwrap_or_else(|| panic!("unit {unit} is on no layer of LAYERS"))
}

/// The unit a file of `src/` belongs to (`None` for `lib.rs` and `main.rs`).
fn unit_of_file(rel: &std::path::Path) -> Option<String> {
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    match parts.as_slice() {
        [single] if single == "lib" || single == "main" => None,
        // audit/mod.rs only declares the three; it counts as the lowest of them.
        [top, sub] if top == "audit" && sub == "mod" => Some("audit::log".to_string()),
        [top, sub, ..] if top == "audit" => Some(format!("audit::{sub}")),
        [top, ..] => Some(top.clone()),
        [] => None,
    }
}

/// Removes `//` comments (doc comments included) and the contents of string literals, so only
/// code is searched.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_str = false;
        let mut prev = ' ';
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if !in_str && c == '/' && chars.peek() == Some(&'/') {
                break;
            }
            if c == '"' && prev != '\\' && prev != '\'' {
                in_str = !in_str;
            } else if !in_str {
                out.push(c);
            }
            prev = c;
        }
        out.push('\n');
    }
    out
}

/// The units a file's code names through `crate::` paths: `crate::store::Store`,
/// `crate::audit::log::emit`, and every branch of `use crate::{model, otp::{self, Pepper}}`.
fn crate_paths(code: &str) -> Vec<String> {
    fn ident(s: &str) -> &str {
        let end = s
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        &s[..end]
    }
    fn unit(path: &str) -> Option<String> {
        let path: String = path.chars().filter(|c| !c.is_whitespace()).collect();
        let first = ident(&path);
        if first.is_empty() || first == "self" {
            return None;
        }
        if first == "audit" {
            let rest = path[first.len()..].strip_prefix("::").unwrap_or("");
            let sub = ident(rest);
            return Some(if sub.is_empty() || sub == "self" {
                "audit".to_string()
            } else {
                format!("audit::{sub}")
            });
        }
        Some(first.to_string())
    }
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `tokengate_crate::` or similar: not our crate root
        }
        let trimmed = rest.trim_start();
        if let Some(group) = trimmed.strip_prefix('{') {
            // Top-level branches of the brace group.
            let mut depth = 0;
            let mut start = 0;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        found.extend(unit(&group[start..j]));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.extend(unit(&group[start..j]));
                        start = j + 1;
                    }
                    _ => {}
                }
            }
        } else {
            found.extend(unit(trimmed));
        }
    }
    found
}

/// Every `crate::` import of a file under `src/` that its unit's allow-list does not grant.
fn layering_violations() -> Vec<String> {
    let src = repo().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut bad = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let unit = unit_of_file(rel).unwrap_or_else(|| "lib".to_string());
        let allowed = ALLOWED
            .iter()
            .find(|(u, _)| *u == unit)
            .unwrap_or_else(|| panic!("{}: unit {unit} has no allow-list", rel.display()))
            .1;
        let code = code_only(&std::fs::read_to_string(f).unwrap());
        for dep in crate_paths(&code) {
            let dep = if dep == "audit" {
                // `crate::audit::…` without a sub-module names the module itself.
                "audit::log".to_string()
            } else {
                dep
            };
            let own = dep == unit;
            if own || allowed.contains(&"*") || allowed.contains(&dep.as_str()) {
                continue;
            }
            bad.push(format!(
                "{}: `crate::{dep}` is not on the allow-list of {unit}",
                rel.display()
            ));
        }
    }
    bad.sort();
    bad.dedup();
    bad
}

#[test]
fn allow_lists_only_point_up_the_layers() {
    for (unit, allowed) in ALLOWED {
        if unit == "lib" {
            continue;
        }
        for dep in allowed.iter().filter(|d| **d != "*") {
            assert!(
                layer_of(dep) < layer_of(unit),
                "{unit} may import {dep}, which is not on a layer above it"
            );
        }
    }
    // Every top-level module of src/ has a layer.
    for e in std::fs::read_dir(repo().join("src")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        let unit = name.trim_end_matches(".rs");
        if unit == "lib" || unit == "main" || unit == "audit" {
            continue;
        }
        layer_of(unit);
    }
}

#[test]
fn modules_import_only_from_the_layers_above_them() {
    let bad = layering_violations();
    assert!(
        bad.is_empty(),
        "imports against the layering of ARCHITECTURE.md (a loop or an upward import):\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_import_scanner_sees_every_form_of_crate_path() {
    let code = code_only(
        "use crate::{model, otp::{self, Pepper}, audit::log::emit};\n\
         use crate::store::Store; // crate::server::x in a comment\n\
         let s = \"crate::cli in a string\";\n\
         crate::audit::export::export(x);\n\
         use crate::{\n    policy::Policies,\n    engine::WriteOp,\n};\n",
    );
    assert_eq!(
        crate_paths(&code),
        [
            "model",
            "otp",
            "audit::log",
            "store",
            "audit::export",
            "policy",
            "engine"
        ]
    );
}

/// The paths named in the second column of ARCHITECTURE.md's "Rule → file" table.
fn rule_table_files() -> Vec<String> {
    let doc = std::fs::read_to_string(repo().join("ARCHITECTURE.md")).unwrap();
    let section = doc
        .split("\n## Rule → file")
        .nth(1)
        .expect("ARCHITECTURE.md has a \"Rule → file\" section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut files = Vec::new();
    for row in section.lines().filter(|l| l.starts_with('|')) {
        let Some(cell) = row.split('|').nth(2) else {
            continue;
        };
        for (i, part) in cell.split('`').enumerate() {
            if i % 2 == 1 && part.starts_with("src/") {
                files.push(part.to_string());
            }
        }
    }
    files
}

#[test]
fn the_rule_table_names_existing_files_and_every_engine_file() {
    let named = rule_table_files();
    assert!(named.len() >= 10, "rule table rows not found: {named:?}");
    for f in &named {
        assert!(
            repo().join(f).is_file(),
            "ARCHITECTURE.md's rule table names {f}, which does not exist"
        );
    }
    let mut engine = Vec::new();
    rust_files(&repo().join("src/engine"), &mut engine);
    for f in engine {
        let rel = f
            .strip_prefix(repo())
            .unwrap()
            .to_string_lossy()
            .to_string();
        if rel.starts_with("src/engine/tests/") {
            continue;
        }
        assert!(
            named.contains(&rel),
            "{rel} decides rules but ARCHITECTURE.md's rule table does not name it"
        );
    }
}

/// Files allowed over the size limit, each with the one job that needs the length (none today).
const LONG_FILES: [(&str, &str); 0] = [];

#[test]
fn no_source_file_is_over_900_lines() {
    let mut files = Vec::new();
    rust_files(&repo().join("src"), &mut files);
    let mut long = Vec::new();
    for f in &files {
        let rel = f
            .strip_prefix(repo())
            .unwrap()
            .to_string_lossy()
            .to_string();
        let lines = std::fs::read_to_string(f).unwrap().lines().count();
        if lines > 900 && !LONG_FILES.iter().any(|(p, _)| *p == rel) {
            long.push(format!("{rel}: {lines} lines"));
        }
    }
    assert!(
        long.is_empty(),
        "split these by job (or name the job that needs the length in LONG_FILES and \
         ARCHITECTURE.md):\n{}",
        long.join("\n")
    );
}
