//! The deployment files, checked without Docker or a running systemd: everything the
//! Dockerfile COPYs from the build context exists, the files it puts into the runtime image form
//! a configuration that `tokengate check-config` accepts, and the systemd unit passes
//! `systemd-analyze verify` with no warning (Debian package `systemd`).

use std::path::Path;

use crate::common::*;

struct Copy {
    stage: usize,
    sources: Vec<String>,
    dest: String,
}

/// The Dockerfile's instructions, continuation lines joined, comments dropped.
fn instructions() -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || t.is_empty() {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(part) => {
                cur.push_str(part);
                cur.push(' ');
            }
            None => {
                cur.push_str(t);
                out.push(std::mem::take(&mut cur));
            }
        }
    }
    out
}

fn copies(instructions: &[String]) -> Vec<Copy> {
    let mut stage = 0;
    let mut out = Vec::new();
    for i in instructions {
        let words: Vec<&str> = i.split_whitespace().collect();
        match words.first().copied() {
            Some("FROM") => stage += 1,
            Some("COPY") if !words.iter().any(|w| w.starts_with("--from")) => {
                let args = &words[1..];
                out.push(Copy {
                    stage,
                    sources: args[..args.len() - 1]
                        .iter()
                        .map(|s| s.to_string())
                        .collect(),
                    dest: args[args.len() - 1].to_string(),
                });
            }
            _ => {}
        }
    }
    out
}

#[test]
fn dockerfile_copies_exist_and_the_image_config_passes_check_config() {
    let ins = instructions();
    let copies = copies(&ins);
    let stages = ins.iter().filter(|i| i.starts_with("FROM ")).count();
    assert_eq!(stages, 2, "multi-stage: builder and runtime");
    for c in &copies {
        for s in &c.sources {
            assert!(
                repo().join(s).exists(),
                "Dockerfile COPYs {s}, which does not exist"
            );
        }
    }
    // The builder gets what the build reads: manifests, sources, every workspace member, and the
    // files `include_str!` and `sqlx::migrate!` embed.
    let built: Vec<&str> = copies
        .iter()
        .filter(|c| c.stage == 1)
        .flat_map(|c| c.sources.iter().map(String::as_str))
        .collect();
    for need in [
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "src",
        "migrations",
        "docs",
        "bench",
    ] {
        assert!(built.contains(&need), "the builder stage must COPY {need}");
    }
    let has = |prefix: &str, what: &str| {
        assert!(
            ins.iter()
                .any(|i| i.starts_with(prefix) && i.contains(what)),
            "Dockerfile needs {prefix}… {what}"
        )
    };
    has("USER", "tokengate");
    has("VOLUME", "/var/lib/tokengate");
    has("EXPOSE", "1812/udp");
    has("EXPOSE", "49/tcp");
    has("ENV", "TOKENGATE_CONFIG=/etc/tokengate/tokengate.toml");

    // Lay the runtime stage's files out under a scratch root, as the image has them.
    let root = tempfile::tempdir().unwrap();
    for c in copies.iter().filter(|c| c.stage == 2) {
        let dest = root.path().join(c.dest.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        for s in &c.sources {
            let ok = std::process::Command::new("cp")
                .arg("-r")
                .arg(repo().join(s))
                .arg(&dest)
                .status()
                .unwrap()
                .success();
            assert!(ok);
        }
    }
    let config = root.path().join("etc/tokengate/tokengate.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tokengate"))
        .arg("--config")
        .arg(&config)
        .args(["--json", "check-config"])
        .env("TOKENGATE_NAS_SECRET", "a-secret-from-the-environment")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the image's configuration fails check-config: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        summary["radius_listen"],
        serde_json::json!(["0.0.0.0:1812"])
    );
    // Without the secret in the environment the image refuses to start, naming the key.
    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_tokengate"))
        .arg("--config")
        .arg(&config)
        .arg("check-config")
        .env_remove("TOKENGATE_NAS_SECRET")
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("secret_env"));
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("data_dir = \"/var/lib/tokengate\""));
}

/// Runs `systemd-analyze verify` on `unit`; returns whether it passed and its messages about
/// that unit. verify also loads the units it is ordered against or wanted by (the machine's
/// multi-user.target and whatever that pulls in), whose own complaints are not ours: only lines
/// naming our file count.
fn systemd_analyze_verify(unit: &Path) -> (bool, String) {
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", "--recursive-errors=one"])
        .arg(unit)
        .output()
        .expect("systemd-analyze (Debian package systemd; scripts/test.sh installs it)");
    let name = unit.file_name().unwrap().to_str().unwrap();
    let ours: Vec<&str> = std::str::from_utf8(&out.stderr)
        .unwrap()
        .lines()
        .filter(|l| l.contains(name))
        .collect();
    (out.status.success(), ours.join("\n"))
}

#[test]
fn systemd_unit_is_hardened_and_passes_systemd_analyze_verify() {
    let text = std::fs::read_to_string(repo().join("deploy/systemd/tokengate.service")).unwrap();
    for line in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "ReadWritePaths=/var/lib/tokengate",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "KillSignal=SIGTERM",
        "User=tokengate",
    ] {
        assert!(text.lines().any(|l| l == line), "unit lacks {line}");
    }
    // verify checks that ExecStart's binary exists: point it at the one just built.
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("tokengate.service");
    std::fs::write(
        &unit,
        text.replace("/usr/local/bin/tokengate", env!("CARGO_BIN_EXE_tokengate")),
    )
    .unwrap();
    let (ok, warnings) = systemd_analyze_verify(&unit);
    assert!(ok && warnings.trim().is_empty(), "{warnings}");
    // The check has teeth: a misspelt key is reported.
    std::fs::write(
        &unit,
        std::fs::read_to_string(&unit)
            .unwrap()
            .replace("ProtectHome=yes", "ProtectHomme=yes"),
    )
    .unwrap();
    let (_, warnings) = systemd_analyze_verify(&unit);
    assert!(warnings.contains("ProtectHomme"), "{warnings}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_healthcheck_command_passes_against_a_live_gateway_only() {
    let ins = instructions();
    let health = ins
        .iter()
        .find(|i| i.starts_with("HEALTHCHECK"))
        .expect("the Dockerfile has a HEALTHCHECK");
    let cmd: Vec<String> = serde_json::from_str(&health[health.find("CMD").unwrap() + 3..])
        .expect("HEALTHCHECK CMD in exec (JSON) form");
    let image_config =
        std::fs::read_to_string(repo().join("deploy/docker/tokengate.toml")).unwrap();
    assert!(image_config.contains("[metrics]\nlisten = \"0.0.0.0:9812\""));
    let tg = TestGateway::start_with("[metrics]\nlisten = \"127.0.0.1:0\"\n").await;
    let port = tg.gw().metrics_addr().unwrap().port();
    // Blocking is fine here: the gateway runs on the runtime's other worker.
    let run = |port: u16| {
        let args: Vec<String> = cmd
            .iter()
            .map(|a| a.replace("9812", &port.to_string()))
            .collect();
        std::process::Command::new(&args[0])
            .args(&args[1..])
            .status()
            .unwrap()
            .success()
    };
    assert!(run(port), "healthy gateway");
    tg.shutdown().await;
    assert!(!run(port), "nothing listening: unhealthy");
}
