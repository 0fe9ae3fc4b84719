//! The output directory's lock: one run writes into a directory at a time, and taking the
//! lock removes the temporary files a killed run left behind.

use std::fs;
use std::path::{Path, PathBuf};

use super::{LOCK_FILE, dir_of, ensure_dir, is_temporary, resolve, written_in_place};
use crate::error::{Error, Result};

/// Locks the directory of every output that will be written through a temporary file
/// (a regular file or a new name; not a device or a FIFO), each once.
///
/// # Errors
/// As [`DirLock::acquire`].
pub fn lock_output_dirs(outputs: &[&Path]) -> Result<Vec<DirLock>> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for out in outputs {
        if written_in_place(out) {
            continue;
        }
        let target = resolve(out)?;
        let dir = dir_of(&target);
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs.iter().map(|d| DirLock::acquire(d)).collect()
}

/// An advisory lock on an output directory, held while a run writes there. Taking it
/// removes the temporary files ([`TEMP_PREFIX`](super::TEMP_PREFIX)) a killed run left behind.
#[derive(Debug)]
pub struct DirLock {
    _file: fs::File,
}

impl DirLock {
    /// Locks `dir` (creating it), or fails at once if another run holds it.
    ///
    /// # Errors
    /// If the directory cannot be created, or another run is writing there.
    pub fn acquire(dir: &Path) -> Result<Self> {
        ensure_dir(dir)?;
        use std::os::unix::fs::OpenOptionsExt;
        let path = dir.join(LOCK_FILE);
        // O_NOFOLLOW and O_NONBLOCK (Linux): a symbolic link there is refused rather than
        // followed out of the directory, and a FIFO does not block; only a regular file
        // is taken.
        const NOFOLLOW_NONBLOCK: i32 = 0o400000 | 0o4000;
        let not_ours = || {
            Error::InvalidArgument(format!(
                "{} is not a regular file the tool made; remove it and try again",
                crate::error::quote(&path.display().to_string())
            ))
        };
        if fs::symlink_metadata(&path).is_ok_and(|m| !m.is_file()) {
            return Err(not_ours());
        }
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .custom_flags(NOFOLLOW_NONBLOCK)
            .open(&path)
            .map_err(|e| Error::io("open the lock file", &path, e))?;
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            return Err(not_ours());
        }
        file.try_lock().map_err(|_| {
            Error::InvalidArgument(format!(
                "another ldyn run is writing to {}; try again when it has finished",
                crate::error::quote(&dir.display().to_string())
            ))
        })?;
        if let Ok(entries) = fs::read_dir(dir) {
            for entry in entries.flatten() {
                let regular = entry.file_type().is_ok_and(|t| t.is_file());
                if regular && is_temporary(&entry.file_name().to_string_lossy()) {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        Ok(DirLock { _file: file })
    }
}
