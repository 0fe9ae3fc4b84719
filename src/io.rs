//! Files in and out: every output is written whole or not at all, and every input
//! error names the file and line.
//!
//! Outputs are first written to a hidden temporary file next to the target and then
//! renamed over it, so a crash or a full disk never leaves a half-written CSV or PNG.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The hidden temporary sibling of `path` that [`write_atomic`] writes first. The
/// extension is kept (plotters picks the image format from it).
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{}.{}.tmp.{name}", std::process::id(), unique()))
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

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

/// Runs `write` on a temporary path next to `path`, then renames it to `path`. On any
/// error the temporary file is removed and `path` is left untouched.
pub fn commit_file(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    ensure_parent(path)?;
    let tmp = temp_path(path);
    let result =
        write(&tmp).and_then(|()| fs::rename(&tmp, path).map_err(|e| Error::io("write", path, e)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes `contents` to `path` atomically (see [`commit_file`]).
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    commit_file(path, |tmp| {
        fs::write(tmp, contents).map_err(|e| Error::io("write", path, e))
    })
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

/// Parses a comma-separated list of numbers such as `2.0,1,-3e2`.
pub fn parse_number_list(list: &str) -> Result<Vec<f64>> {
    list.split(',')
        .enumerate()
        .map(|(i, s)| {
            s.trim().parse::<f64>().map_err(|_| {
                Error::InvalidArgument(format!(
                    "item {} of the list, '{}', is not a number",
                    i + 1,
                    s.trim()
                ))
            })
        })
        .collect()
}

/// Reads numbers from a file: a JSON array (`[1.0, 2.5]`) or one number per line
/// (blank lines are skipped). Errors name the file and the offending line.
pub fn read_numbers(path: &Path) -> Result<Vec<f64>> {
    let text = fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    let parse_err = |line: usize, message: String| Error::Parse {
        path: path.to_path_buf(),
        line,
        message,
    };
    if text.trim_start().starts_with('[') {
        let values: Vec<f64> = serde_json::from_str(&text)
            .map_err(|e| parse_err(e.line(), format!("expected a JSON array of numbers: {e}")))?;
        return Ok(values);
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            l.trim()
                .parse::<f64>()
                .map_err(|_| parse_err(i + 1, format!("'{}' is not a number", l.trim())))
        })
        .collect()
}

/// Numbers given on the command line: a comma list (`2,1,0.5`), or else the path of a
/// file holding them (see [`read_numbers`]).
pub fn load_numbers(arg: &str) -> Result<Vec<f64>> {
    parse_number_list(arg).or_else(|list_err| {
        let path = Path::new(arg);
        if path.exists() || !arg.contains(',') {
            read_numbers(path)
        } else {
            Err(list_err)
        }
    })
}
