//! `populate`: bulk users with a TOTP or HOTP token each for load tests, a progress bar on
//! stderr, and the secrets file the load generator reads.

use anyhow::{bail, Context, Result};

use super::output::{print, ExportFile};
use super::PopulateArgs;
use crate::admin::Admin;
use crate::model::{OtpMode, TokenKind};

/// `populate`: bulk users for load tests, a progress bar on stderr, the secrets file.
pub(super) async fn run(admin: &Admin<'_>, p: PopulateArgs, json: bool, now: i64) -> Result<()> {
    use std::io::Write;
    let kind = TokenKind::parse(&p.kind).context("--kind must be pin or app")?;
    let mode = match (p.mode.to_ascii_lowercase().as_str(), p.period) {
        ("totp", period) => OtpMode::Totp {
            period: period.unwrap_or(30),
        },
        ("hotp", None) => OtpMode::Hotp,
        ("hotp", Some(_)) => bail!("--period is for TOTP tokens; HOTP tokens have a counter"),
        _ => bail!("--mode must be totp or hotp"),
    };
    let opts = crate::admin::PopulateOptions {
        users: p.users,
        prefix: p.prefix,
        kind,
        domain: p.domain,
        mode,
    };
    // Create the secrets file first: without it the users would be useless to the generator.
    let file = ExportFile::create(&p.secrets_out)?;
    let started = crate::clock::monotonic();
    let mut bar = Progress::new(p.users);
    let result = admin
        .populate(&opts, now, |done| bar.update(done, started.elapsed()))
        .await;
    bar.finish();
    let users = match result {
        Ok(u) => u,
        Err(e) => {
            drop(file.file);
            let _ = std::fs::remove_file(&file.path);
            return Err(e.into());
        }
    };
    let elapsed = started.elapsed();
    let mode_name = match mode {
        OtpMode::Totp { .. } => "totp",
        OtpMode::Hotp => "hotp",
    };
    let mut w = std::io::BufWriter::new(&file.file);
    writeln!(
        w,
        "# tokengate populate: {} users, secrets for load tests only (keep private)",
        users.len()
    )?;
    writeln!(w, "{}", crate::admin::SECRETS_HEADER)?;
    for u in &users {
        writeln!(w, "{}", u.csv_line())?;
    }
    w.flush()?;
    drop(w);
    file.file.sync_all()?;
    let summary = serde_json::json!({
        "users": users.len(),
        "prefix": opts.prefix,
        "kind": kind.as_str(),
        "mode": mode_name,
        "seconds": elapsed.as_secs_f64(),
        "users_per_second": users.len() as f64 / elapsed.as_secs_f64().max(1e-9),
        "secrets_file": file.path.display().to_string(),
    });
    print(json, &summary, |_| {
        format!(
            "created {} users with {} tokens in {:.1} s ({:.0} users/s); secrets in {}",
            users.len(),
            mode_name.to_ascii_uppercase(),
            elapsed.as_secs_f64(),
            users.len() as f64 / elapsed.as_secs_f64().max(1e-9),
            file.path.display()
        )
    })
}

/// A progress bar on stderr: redrawn in place on a terminal, one line per 10 % otherwise.
struct Progress {
    total: usize,
    tty: bool,
    last_decile: usize,
}

impl Progress {
    fn new(total: usize) -> Progress {
        use std::io::IsTerminal;
        Progress {
            total,
            tty: std::io::stderr().is_terminal(),
            last_decile: 0,
        }
    }

    fn update(&mut self, done: usize, elapsed: std::time::Duration) {
        let fraction = done as f64 / self.total.max(1) as f64;
        let rate = done as f64 / elapsed.as_secs_f64().max(1e-9);
        if self.tty {
            let width = 30;
            let filled = ((fraction * width as f64) as usize).min(width);
            eprint!(
                "\rpopulate [{}{}] {done}/{} users  {:.1} s  {rate:.0}/s ",
                "#".repeat(filled),
                ".".repeat(width - filled),
                self.total,
                elapsed.as_secs_f64()
            );
        } else {
            let decile = (fraction * 10.0) as usize;
            if decile > self.last_decile || done == self.total {
                self.last_decile = decile;
                eprintln!(
                    "populate: {done}/{} users ({:.0} %), {:.1} s, {rate:.0}/s",
                    self.total,
                    fraction * 100.0,
                    elapsed.as_secs_f64()
                );
            }
        }
    }

    fn finish(&self) {
        if self.tty {
            eprintln!();
        }
    }
}
