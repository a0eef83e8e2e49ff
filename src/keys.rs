//! The master key file: read on every start, created (mode 0600, in a directory created 0700)
//! only for a fresh database, and the errors that name it; and [`create_private_dir`], which the
//! data directory is made with too.
//!
//! The master key never goes into the database; seeds are encrypted and PINs hashed with keys
//! derived from it (see `otp::MasterKey`). Losing the file makes every seed unreadable, so the
//! README tells admins to back it up separately from the database. Whether a key may be created
//! or belongs to the database is decided at start-up against the check value the database
//! records (`server::master_key`); this module only reads, creates and locks files, and never
//! overwrites one.
//!
//! Locks: a gateway holds a shared `flock(2)` on its key file while it runs and `key rotate`
//! takes an exclusive one without waiting, so a rotation is refused while a gateway on this host
//! uses the file (and a gateway does not start while a rotation runs).

use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::otp::MasterKey;

/// Why the master key could not be loaded, created or used.
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
    /// The file is missing but the database already holds data under a master key: a new key
    /// would make every seed unreadable and every PIN wrong.
    #[error(
        "master key file {path}: not found, but the database already holds users, tokens or a \
         recorded key check; restore the key file from your backup (a new key would make every \
         seed unreadable)"
    )]
    Missing {
        /// The file.
        path: String,
    },
    /// The file holds another key than the one the database records.
    #[error(
        "master key file {path}: not the key this database was set up with (key check \
         {file_check}…, the database records {db_check}…); start with the database's key file \
         (after `tokengate key rotate`, the new one)"
    )]
    Mismatch {
        /// The file.
        path: String,
        /// The first 8 hex digits of the file's key check value.
        file_check: String,
        /// The first 8 hex digits of the recorded one.
        db_check: String,
    },
    /// The database records no check value yet and the key could not be shown to be its key.
    #[error("master key file {path}: cannot be used with this database: {reason}")]
    Unverified {
        /// The file.
        path: String,
        /// What failed.
        reason: String,
    },
    /// The file is already there (a new key is never written over an existing file).
    #[error("master key file {path}: already exists; choose a path that does not exist")]
    Exists {
        /// The file.
        path: String,
    },
    /// Another process holds the file's lock: a gateway (for `key rotate`) or a rotation (for a
    /// gateway).
    #[error("master key file {path}: in use by {by}")]
    Locked {
        /// The file.
        path: String,
        /// Who holds it, in words.
        by: &'static str,
    },
}

/// Reads the master key; `Ok(None)` when the file does not exist. Refuses a file readable by
/// group or others, and one that holds neither 32 raw bytes nor 64 hex digits.
pub fn load(path: &Path) -> Result<Option<MasterKey>, KeyError> {
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
            parse(&bytes)
                .map(Some)
                .ok_or(KeyError::Malformed { path: p })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(e)),
    }
}

/// Generates a random master key and writes it to `path` (mode 0600, parent directories too),
/// flushed to disk before it returns. Never replaces a file: an existing `path` is
/// [`KeyError::Exists`].
pub fn create(path: &Path) -> Result<MasterKey, KeyError> {
    let key = MasterKey::generate(&mut rand::rngs::OsRng);
    write_new(path, &key)?;
    Ok(key)
}

/// Writes `key` to a file that must not exist yet (mode 0600, raw 32 bytes), then syncs the
/// file and its directory so the key is on disk before anything is encrypted under it.
fn write_new(path: &Path, key: &MasterKey) -> Result<(), KeyError> {
    let p = path.display().to_string();
    let io = |source| KeyError::Io {
        path: p.clone(),
        source,
    };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        create_private_dir(dir).map_err(io)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            KeyError::Exists { path: p.clone() }
        } else {
            io(e)
        }
    })?;
    f.write_all(key.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    if let Some(dir) = dir {
        File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    }
    Ok(())
}

/// Removes a key file this process created a moment ago and that turned out unused (another
/// instance initialised the database first, or a rotation did not commit).
pub fn remove_unused(path: &Path) -> Result<(), KeyError> {
    std::fs::remove_file(path).map_err(|source| KeyError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// A lock on a key file, released when dropped (the file is closed).
#[derive(Debug)]
pub struct KeyFileLock {
    _file: File,
}

/// Takes a shared lock on the key file without waiting (a running gateway holds one). Fails
/// with [`KeyError::Locked`] while a `key rotate` holds the exclusive lock.
pub fn lock_shared(path: &Path) -> Result<KeyFileLock, KeyError> {
    lock(path, true)
}

/// Takes the exclusive lock on the key file without waiting (`key rotate`). Fails with
/// [`KeyError::Locked`] while any gateway on this host runs with this file.
pub fn lock_exclusive(path: &Path) -> Result<KeyFileLock, KeyError> {
    lock(path, false)
}

fn lock(path: &Path, shared: bool) -> Result<KeyFileLock, KeyError> {
    let p = path.display().to_string();
    let file = File::open(path).map_err(|source| KeyError::Io {
        path: p.clone(),
        source,
    })?;
    let op = if shared {
        rustix::fs::FlockOperation::NonBlockingLockShared
    } else {
        rustix::fs::FlockOperation::NonBlockingLockExclusive
    };
    match rustix::fs::flock(&file, op) {
        Ok(()) => Ok(KeyFileLock { _file: file }),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Err(KeyError::Locked {
            path: p,
            by: if shared {
                "a running `tokengate key rotate`; start again once it has finished, with the new key file"
            } else {
                "a running gateway on this host; stop every gateway before rotating the key"
            },
        }),
        Err(e) => Err(KeyError::Io {
            path: p,
            source: e.into(),
        }),
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
    fn created_once_with_0600_then_read_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/master.key");
        assert!(load(&p).unwrap().is_none(), "a missing file is not created");
        assert!(!p.exists());
        let k1 = create(&p).unwrap();
        let k2 = load(&p).unwrap().unwrap();
        assert_eq!(k1.as_bytes(), k2.as_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert!(matches!(create(&p), Err(KeyError::Exists { .. })));
        assert_eq!(load(&p).unwrap().unwrap().as_bytes(), k1.as_bytes());
        remove_unused(&p).unwrap();
        assert!(load(&p).unwrap().is_none());
    }

    #[test]
    fn open_or_malformed_files_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::write(&p, [7u8; 32]).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(load(&p), Err(KeyError::TooOpen { .. })));
        std::fs::write(&p, [7u8; 31]).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(load(&p), Err(KeyError::Malformed { .. })));
        std::fs::write(&p, "ab".repeat(32)).unwrap();
        assert_eq!(load(&p).unwrap().unwrap().as_bytes(), &[0xab; 32]);
    }

    #[test]
    fn a_gateway_lock_keeps_a_rotation_out_and_the_other_way_round() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("master.key");
        create(&p).unwrap();
        let g1 = lock_shared(&p).unwrap();
        let g2 = lock_shared(&p).unwrap();
        let refused = lock_exclusive(&p).unwrap_err();
        assert!(matches!(refused, KeyError::Locked { .. }));
        assert!(
            refused.to_string().contains("stop every gateway"),
            "{refused}"
        );
        drop((g1, g2));
        let rotation = lock_exclusive(&p).unwrap();
        let refused = lock_shared(&p).unwrap_err();
        assert!(refused.to_string().contains("key rotate"), "{refused}");
        drop(rotation);
        lock_shared(&p).unwrap();
    }

    #[test]
    fn errors_name_the_file_and_say_what_to_do() {
        let missing = KeyError::Missing {
            path: "/etc/tg/master.key".into(),
        };
        let text = missing.to_string();
        assert!(text.starts_with("master key file /etc/tg/master.key: not found"));
        assert!(text.contains("restore the key file from your backup"));
        let mismatch = KeyError::Mismatch {
            path: "/etc/tg/master.key".into(),
            file_check: "0123abcd".into(),
            db_check: "89ef4567".into(),
        };
        let text = mismatch.to_string();
        assert!(text.contains("/etc/tg/master.key: not the key this database was set up with"));
        assert!(text.contains("0123abcd") && text.contains("89ef4567"));
        assert!(!text.contains('\n'));
    }
}
