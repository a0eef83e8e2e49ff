//! The master key file: created with mode 0600 (in a directory created 0700) on first start, read
//! on every start; and [`create_private_dir`], which the data directory is made with too.
//!
//! The master key never goes into the database; seeds are encrypted and PINs hashed with keys
//! derived from it (see `otp::MasterKey`). Losing the file makes every seed unreadable, so the
//! README tells admins to back it up separately from the database.

use std::io::Write;
use std::path::Path;

use crate::otp::MasterKey;

/// Why the master key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading, creating or writing the file failed.
    #[error("master key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file exists but does not hold 32 bytes (raw) or 64 hex digits.
    #[error("master key file {path}: must hold 32 raw bytes or 64 hex digits")]
    Malformed {
        /// The file.
        path: String,
    },
    /// The file is readable by group or others.
    #[error("master key file {path}: mode {mode:o} is too open; run chmod 600 {path}")]
    TooOpen {
        /// The file.
        path: String,
        /// Its mode bits.
        mode: u32,
    },
}

/// Loads the master key, creating it (random, 0600, parent directories too) when absent.
pub fn load_or_create(path: &Path) -> Result<MasterKey, KeyError> {
    let p = path.display().to_string();
    let io = |source| KeyError::Io {
        path: p.clone(),
        source,
    };
    match std::fs::read(path) {
        Ok(bytes) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(KeyError::TooOpen { path: p, mode });
                }
            }
            parse(&bytes).ok_or(KeyError::Malformed { path: p })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                create_private_dir(dir).map_err(io)?;
            }
            let key = MasterKey::generate(&mut rand::rngs::OsRng);
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(path).map_err(io)?;
            f.write_all(key.as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
            Ok(key)
        }
        Err(e) => Err(io(e)),
    }
}

/// Creates `dir` and any missing parents with mode 0700 (what exists already keeps its mode).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

fn parse(bytes: &[u8]) -> Option<MasterKey> {
    if let Ok(raw) = <[u8; 32]>::try_from(bytes) {
        return Some(MasterKey::from_bytes(raw));
    }
    let text = std::str::from_utf8(bytes).ok()?.trim();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(MasterKey::from_bytes(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_with_0600_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/master.key");
        let k1 = load_or_create(&p).unwrap();
        let k2 = load_or_create(&p).unwrap();
        assert_eq!(k1.as_bytes(), k2.as_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn open_or_malformed_files_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::write(&p, [7u8; 32]).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(load_or_create(&p), Err(KeyError::TooOpen { .. })));
        std::fs::write(&p, [7u8; 31]).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            load_or_create(&p),
            Err(KeyError::Malformed { .. })
        ));
        std::fs::write(&p, "ab".repeat(32)).unwrap();
        assert_eq!(load_or_create(&p).unwrap().as_bytes(), &[0xab; 32]);
    }
}
