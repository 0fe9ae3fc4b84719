//! Files in and out: every output is written whole or not at all, nothing but the named
//! outputs (and the tool's own temporary and lock files) is touched, and every input
//! error names the file and line.
//!
//! How a target is written ([`write_atomic`]):
//! * a regular file that already holds exactly these bytes is left alone, keeping its
//!   modification time (so regenerating an unchanged figure triggers no rebuild);
//! * a regular file, or a name that does not exist yet, is written to a temporary file
//!   in the same directory (opened with `O_EXCL` under a random name with the prefix
//!   [`TEMP_PREFIX`]), flushed and synced, then renamed over the target, which keeps its
//!   permissions;
//! * a symbolic link is followed and its target replaced, the link itself kept;
//! * anything else (a device such as `/dev/null`, a FIFO) is written to directly and
//!   never replaced.
//!
//! [`check_outputs`] refuses, before anything is written, an output that is a
//! directory, two outputs that are the same file, or an output that is one of the
//! command's inputs. A run into an output directory holds [`DirLock`], which also removes
//! the temporary files a killed run left behind.
//!
//! Every input file (a configuration, logits) is read with [`read_input`]: only a regular
//! file, at most [`MAX_INPUT_BYTES`], checked before reading and opened without
//! blocking, so a FIFO, a device such as `/dev/zero` or a directory is refused with one
//! line instead of blocking or filling memory.

//!
//! This module writes outputs; `input.rs` reads input files and number lists, `lock.rs`
//! holds the output directory's lock.

mod input;
mod lock;

pub use input::{MAX_INPUT_BYTES, load_numbers, parse_number_list, read_input, read_numbers};
pub use lock::{DirLock, lock_output_dirs};

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The prefix of the tool's temporary files.
pub const TEMP_PREFIX: &str = ".ldyn-tmp-";

/// The suffix of the tool's temporary files, after [`TEMP_PREFIX`] and
/// [`TEMP_RANDOM`] random characters.
pub const TEMP_SUFFIX: &str = ".part";

/// How many random characters a temporary file's name holds.
pub const TEMP_RANDOM: usize = 12;

/// Whether `name` is one of the tool's temporary files: exactly [`TEMP_PREFIX`], then
/// [`TEMP_RANDOM`] letters and digits, then [`TEMP_SUFFIX`]. Only such files are removed
/// as leftovers, so a user's file that merely starts with the prefix is never touched.
pub fn is_temporary(name: &str) -> bool {
    name.strip_prefix(TEMP_PREFIX)
        .and_then(|rest| rest.strip_suffix(TEMP_SUFFIX))
        .is_some_and(|random| {
            random.len() == TEMP_RANDOM && random.chars().all(|c| c.is_ascii_alphanumeric())
        })
}

/// The name of the lock file a run takes in its output directory.
pub const LOCK_FILE: &str = ".ldyn.lock";

/// Creates `dir` and its parents, with a clear error if that is impossible.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))
}

/// Creates the parent directory of `path` if needed.
fn ensure_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => ensure_dir(parent),
        _ => Ok(()),
    }
}

/// Where writing `path` lands: the final target of a symbolic link (the link is kept),
/// or `path` itself.
/// The standard output or error stream that `path` names (`/dev/stdout`, `/dev/fd/1`,
/// `/proc/self/fd/1`, and the same for 2), if it names one.
fn standard_stream(path: &Path) -> Option<Box<dyn Write>> {
    let name = path.to_str()?;
    let fd = ["/dev/std", "/dev/fd/", "/proc/self/fd/"]
        .iter()
        .find_map(|prefix| name.strip_prefix(prefix))?;
    match fd {
        "out" | "1" => Some(Box::new(std::io::stdout())),
        "err" | "2" => Some(Box::new(std::io::stderr())),
        _ => None,
    }
}

/// Whether `path` is written in place, with no lock and no temporary file: a standard
/// stream, or an existing target that is not a regular file (a device, a FIFO).
fn written_in_place(path: &Path) -> bool {
    standard_stream(path).is_some() || fs::metadata(path).is_ok_and(|m| !m.is_file())
}

fn resolve(path: &Path) -> Result<PathBuf> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            let target = fs::read_link(path).map_err(|e| Error::io("read link", path, e))?;
            let target = match path.parent() {
                Some(parent) if target.is_relative() => parent.join(target),
                _ => target,
            };
            resolve(&target)
        }
        _ => Ok(path.to_path_buf()),
    }
}

/// The directory a file lives in (`.` for a bare name).
fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// What a path names, after links: an existing file (device and inode), or a new name
/// in a canonical directory. Two paths name the same file when their identities agree.
#[derive(Debug, PartialEq, Eq)]
enum Identity {
    Existing(u64, u64),
    New(PathBuf),
}

fn identity(path: &Path) -> Option<Identity> {
    use std::os::unix::fs::MetadataExt;
    let target = resolve(path).ok()?;
    if let Ok(meta) = fs::metadata(&target) {
        return Some(Identity::Existing(meta.dev(), meta.ino()));
    }
    let dir = fs::canonicalize(dir_of(&target)).unwrap_or_default();
    Some(Identity::New(dir.join(target.file_name()?)))
}

/// The error for an output that is a directory.
fn is_a_directory(path: &Path) -> Error {
    Error::InvalidArgument(format!(
        "the output {} is a directory",
        crate::error::quote(&path.display().to_string())
    ))
}

/// Checks a command's outputs before the first is written: none is a directory, no two
/// are the same file, and none is one of `inputs`.
///
/// # Errors
/// Naming the output and what it collides with.
pub fn check_outputs(outputs: &[&Path], inputs: &[&Path]) -> Result<()> {
    for (i, out) in outputs.iter().enumerate() {
        if fs::metadata(out).is_ok_and(|m| m.is_dir()) {
            return Err(is_a_directory(out));
        }
        let id = identity(out);
        let clash = |other: &&&Path| id.is_some() && identity(other) == id;
        if let Some(input) = inputs.iter().find(clash) {
            return Err(Error::InvalidArgument(format!(
                "the output {} is the input {}: refusing to overwrite it",
                crate::error::quote(&out.display().to_string()),
                crate::error::quote(&input.display().to_string())
            )));
        }
        if let Some(other) = outputs[..i].iter().find(clash) {
            return Err(Error::InvalidArgument(format!(
                "two outputs are the same file: {} and {}",
                crate::error::quote(&other.display().to_string()),
                crate::error::quote(&out.display().to_string())
            )));
        }
    }
    Ok(())
}

/// Writes `contents` to `path` whole or not at all (see the module docs for how each
/// kind of target is written).
///
/// # Errors
/// If the directory cannot be created or the file cannot be written.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    if let Some(mut stream) = standard_stream(path) {
        // The process's own stream, whatever it is: a pipe, a terminal, or a file opened
        // for appending (`>>`), which keeps its appending.
        return stream
            .write_all(contents)
            .and_then(|()| stream.flush())
            .map_err(|e| Error::io("write", path, e));
    }
    ensure_parent(path)?;
    let target = resolve(path)?;
    let err = |e| Error::io("write", path, e);
    let existing = fs::metadata(&target).ok();
    if let Some(meta) = &existing {
        if meta.is_dir() {
            return Err(is_a_directory(path));
        }
        // Identical bytes are left alone, so the file keeps its time: regenerating an
        // unchanged figure does not make Cargo rebuild the tutorial that embeds it.
        if meta.is_file()
            && meta.len() == contents.len() as u64
            && fs::read(&target).is_ok_and(|old| old == contents)
        {
            return Ok(());
        }
        if !meta.is_file() {
            // A FIFO's probe stays open until the real open is done: closing the only
            // writer would end its reader, and the real open would wait for another.
            let _probe = match std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type()) {
                true => Some(refuse_a_fifo_nobody_reads(path, &target)?),
                false => None,
            };
            let mut file = fs::OpenOptions::new()
                .write(true)
                .open(&target)
                .map_err(err)?;
            return file
                .write_all(contents)
                .and_then(|()| file.flush())
                .map_err(err);
        }
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .rand_bytes(TEMP_RANDOM)
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir_of(&target))
        .map_err(err)?;
    tmp.write_all(contents).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    let permissions = match existing {
        Some(meta) => meta.permissions(),
        None => std::os::unix::fs::PermissionsExt::from_mode(0o644),
    };
    tmp.as_file().set_permissions(permissions).map_err(err)?;
    tmp.persist(&target).map_err(|e| err(e.error))?;
    Ok(())
}

/// Refuses to write to the FIFO `target` (named `path`) when no process reads it: opening
/// it for writing would wait for a reader for ever. The open that tests it does not wait
/// (`O_NONBLOCK`; `ENXIO` when there is no reader); it returns that open writer, which the
/// caller keeps until its own open has found the reader.
fn refuse_a_fifo_nobody_reads(path: &Path, target: &Path) -> Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    const O_NONBLOCK: i32 = 0o4000;
    const ENXIO: i32 = 6;
    match fs::OpenOptions::new()
        .write(true)
        .custom_flags(O_NONBLOCK)
        .open(target)
    {
        Ok(probe) => Ok(probe),
        Err(e) if e.raw_os_error() == Some(ENXIO) => Err(Error::InvalidArgument(format!(
            "{} is a FIFO that no process reads: start its reader first",
            crate::error::quote(&path.display().to_string())
        ))),
        Err(e) => Err(Error::io("write", path, e)),
    }
}

/// Writes a CSV file: `header`, then one line per row, atomically.
pub fn write_csv(path: &Path, header: &str, rows: impl IntoIterator<Item = String>) -> Result<()> {
    let mut text = String::from(header);
    text.push('\n');
    for row in rows {
        text.push_str(&row);
        text.push('\n');
    }
    write_atomic(path, text.as_bytes())
}

/// Removes `path` if it exists (a file the tool wrote before and is about to replace).
///
/// # Errors
/// If it exists and cannot be removed.
pub fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::io("remove the old file", path, e))
        }
        _ => Ok(()),
    }
}

/// One CSV field: as it is, or quoted with its quotes doubled if it holds a comma, a
/// quote or a line break (RFC 4180).
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Whether two paths name the same file or directory (after links), or the same new name.
pub fn same_file(a: &Path, b: &Path) -> bool {
    let id = identity(a);
    id.is_some() && id == identity(b)
}
