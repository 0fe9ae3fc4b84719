//! Reading what the user gives: input files (only a regular file of bounded size, opened
//! without blocking) and lists of numbers, inline or in a file, with errors that name
//! the file and line.

use std::fs;
use std::path::Path;

use crate::error::{Error, Result};

/// The largest input file read: 64 MiB.
pub const MAX_INPUT_BYTES: u64 = 64 << 20;

/// The text of the input file `path` (`what` names it in errors): a regular file of at
/// most [`MAX_INPUT_BYTES`], in UTF-8.
///
/// # Errors
/// If `path` cannot be read, is not a regular file (a FIFO, a device, a socket, a
/// directory), is larger than the limit, or is not UTF-8.
pub fn read_input(path: &Path, what: &str) -> Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let refuse = |why: String| {
        Error::InvalidArgument(format!(
            "{what} {}: {why}",
            crate::error::quote(&path.display().to_string())
        ))
    };
    let regular = |meta: &fs::Metadata| -> Result<()> {
        if !meta.is_file() {
            return Err(refuse(
                "not a regular file (a FIFO, device, socket or directory); give a file".into(),
            ));
        }
        if meta.len() > MAX_INPUT_BYTES {
            return Err(refuse(format!(
                "{} bytes, more than the {} MiB an input may hold",
                meta.len(),
                MAX_INPUT_BYTES >> 20
            )));
        }
        Ok(())
    };
    regular(&fs::metadata(path).map_err(|e| Error::io("read", path, e))?)?;
    // O_NONBLOCK: if the path became a FIFO after the check, opening does not wait for a
    // writer; the check below then refuses it.
    const NONBLOCK: i32 = 0o4000;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(NONBLOCK)
        .open(path)
        .map_err(|e| Error::io("read", path, e))?;
    regular(&file.metadata().map_err(|e| Error::io("read", path, e))?)?;
    let mut bytes = Vec::new();
    file.take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("read", path, e))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(refuse(format!(
            "grew past the {} MiB an input may hold while it was read",
            MAX_INPUT_BYTES >> 20
        )));
    }
    String::from_utf8(bytes).map_err(|_| refuse("not UTF-8 text".into()))
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
                    crate::error::quote(s.trim())
                ))
            })
        })
        .collect()
}

/// Reads numbers from a file: a JSON array (`[1.0, 2.5]`) or one number per line
/// (blank lines are skipped). Errors name the file and the offending line.
pub fn read_numbers(path: &Path) -> Result<Vec<f64>> {
    let text = read_input(path, "the numbers file")?;
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
    let count = text.lines().filter(|l| !l.trim().is_empty()).count();
    let mut values = Vec::new();
    values
        .try_reserve_exact(count)
        .map_err(|_| parse_err(0, format!("{count} numbers cannot be held in memory now")))?;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let value = line.parse::<f64>().map_err(|_| {
            parse_err(
                i + 1,
                format!("'{}' is not a number", crate::error::quote(line)),
            )
        })?;
        values.push(value);
    }
    Ok(values)
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
