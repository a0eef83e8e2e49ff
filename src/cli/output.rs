//! Output helpers shared by the verbs: the human-or-JSON printer, the database URL with its
//! password hidden, and the new private file that codes and secrets are exported to.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Serialize;

/// Prints `value` as pretty JSON with `--json`, else the human text `human` makes of it.
pub(super) fn print<T: Serialize>(
    json: bool,
    value: &T,
    human: impl FnOnce(&T) -> String,
) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        println!("{}", human(value));
    }
    Ok(())
}

pub(super) use crate::config::redact_url;

/// An E-5 export file, created (new, mode 0600) before the codes are issued and removed again
/// if issuing fails.
pub(super) struct ExportFile {
    pub(super) path: PathBuf,
    pub(super) file: std::fs::File,
}

impl ExportFile {
    pub(super) fn create(path: &std::path::Path) -> Result<ExportFile> {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts
            .open(path)
            .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
        Ok(ExportFile {
            path: path.to_path_buf(),
            file,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_are_redacted() {
        assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("sqlite://data/x.db"), "sqlite://data/x.db");
        assert_eq!(
            redact_url("postgres://u:p@ss@h/db?sslmode=disable&password=pw2"),
            "postgres://u:***@h/db?sslmode=disable&password=***"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact_url("sqlite://data/a:b@c.db"),
            "sqlite://data/a:b@c.db"
        );
    }
}
