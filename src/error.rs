//! The crate's one error type: every fallible public function returns [`Result`].
//!
//! Bad input from a user (a learning rate, a class index, a file) is an [`Error`] with
//! a message that says what was wrong; the CLI prints it on one line and exits with
//! status 2. Shape mismatches between a model and the data handed to it are also
//! reported here rather than left to panic inside nalgebra.

use std::fmt;
use std::path::{Path, PathBuf};

/// Everything that can go wrong in the crate, with the data needed to explain it.
#[derive(Debug)]
pub enum Error {
    /// A learning rate or step size that is not finite and strictly positive.
    InvalidStep {
        /// The parameter's name.
        name: &'static str,
        /// The value given.
        value: f64,
    },
    /// Fewer than two classes: a softmax over one class has nothing to learn.
    TooFewClasses(usize),
    /// A class index outside `0..classes`.
    ClassOutOfRange {
        /// The class given.
        class: usize,
        /// The number of classes.
        classes: usize,
    },
    /// A logit or input that is NaN or infinite.
    NonFinite(&'static str),
    /// Two things that must have the same size do not.
    ShapeMismatch {
        /// What was measured.
        what: &'static str,
        /// The size it should have.
        expected: usize,
        /// The size it has.
        got: usize,
    },
    /// A name the crate does not know (experiment, model, objective, ...).
    Unknown {
        /// What kind of name (experiment, model...).
        kind: &'static str,
        /// The name given.
        name: String,
        /// The names that are known.
        expected: String,
    },
    /// Any other invalid argument, with an explanation.
    InvalidArgument(String),
    /// A file that could not be read or written.
    Io {
        /// What was being done (`read`, `write`, `create directory`).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A file whose content could not be parsed.
    Parse {
        /// The file (or embedded data) being parsed.
        path: PathBuf,
        /// The 1-based line number (0: the whole file).
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A plot that could not be drawn.
    Plot(String),
    /// The reader of standard output went away (a closed pipe): the command stops
    /// quietly.
    BrokenPipe,
    /// A signal (its number) ended an interactive command after it restored the
    /// terminal; the process exits as the shell reports a signal, `128 + number`.
    Signal(i32),
    /// The caller asked the run to stop ([`crate::progress::request_stop`]: Ctrl-C in
    /// Python); it stopped at a training step and wrote nothing more.
    Interrupted,
    /// Some runs of a sweep failed; each failure is recorded beside the others' results,
    /// and the process exits with status 1.
    RunsFailed {
        /// How many failed.
        failed: usize,
        /// How many ran.
        total: usize,
    },
}

/// `Result` with the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an I/O error with what was being done (`"read"`, `"write"`...) and the path.
    pub fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidStep { name, value } => {
                write!(f, "{name} must be finite and > 0, got {value}")
            }
            Error::TooFewClasses(v) => write!(f, "need at least 2 classes, got {v}"),
            Error::ClassOutOfRange { class, classes } => {
                write!(
                    f,
                    "class {class} is out of range for {classes} classes (0..{classes})"
                )
            }
            Error::NonFinite(what) => write!(f, "{what} must be finite (no NaN or infinity)"),
            Error::ShapeMismatch {
                what,
                expected,
                got,
            } => write!(f, "{what}: expected size {expected}, got {got}"),
            Error::Unknown {
                kind,
                name,
                expected,
            } => write!(
                f,
                "unknown {kind} '{}' (expected one of: {expected})",
                quote(name)
            ),
            Error::InvalidArgument(msg) => f.write_str(msg),
            Error::Io {
                action,
                path,
                source,
            } => write!(
                f,
                "cannot {action} {}: {source}",
                quote(&path.display().to_string())
            ),
            Error::Parse {
                path,
                line,
                message,
            } => write!(
                f,
                "{}:{line}: {message}",
                quote(&path.display().to_string())
            ),
            Error::Plot(msg) => write!(f, "plotting failed: {msg}"),
            Error::BrokenPipe => f.write_str("the output pipe was closed"),
            Error::Signal(number) => write!(f, "ended by signal {number}"),
            Error::Interrupted => f.write_str("interrupted: the run stopped at a training step"),
            Error::RunsFailed { failed, total } => write!(
                f,
                "{failed} of {total} runs failed; each one's error is in sweep_claims.csv"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The default memory budget of one command, in bytes (4 GiB); `--max-memory` raises it.
pub const DEFAULT_MAX_MEMORY: u64 = 4 << 30;

/// Checks, before allocating, that what `flags` ask for fits the budget: `bytes` is the
/// estimate, `None` when it overflows even 128-bit arithmetic.
///
/// # Errors
/// Naming the flags or keys, the estimate and the limit.
pub fn check_memory(flags: &str, bytes: Option<u128>, budget: u64) -> Result<()> {
    match bytes {
        Some(b) if b <= u128::from(budget) => ensure_memory(b, flags),
        Some(b) => Err(Error::InvalidArgument(format!(
            "{flags} would need about {}, above the limit of {} (raise it with --max-memory GIB)",
            size(b as f64),
            size(budget as f64)
        ))),
        None => Err(Error::InvalidArgument(format!(
            "{flags} would need more memory than can be counted"
        ))),
    }
}

/// Checks that `bytes` can be reserved now (address space under a `ulimit -v`, for
/// example) by reserving them and giving them back, so that a run that would not fit
/// is one error line that names `what`, never an abort midway.
///
/// # Errors
/// If the reservation fails.
pub fn ensure_memory(bytes: u128, what: &str) -> Result<()> {
    let mut probe: Vec<u8> = Vec::new();
    let fits = usize::try_from(bytes).is_ok_and(|b| probe.try_reserve_exact(b).is_ok());
    if fits {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "{what} would need about {}, which cannot be allocated now (not enough memory, or a ulimit)",
            size(bytes as f64)
        )))
    }
}

/// A number of bytes as a message shows it: GiB from a thousandth of one, KiB or bytes
/// below, so that a small size never reads as 0.000 GiB.
pub fn size(bytes: f64) -> String {
    const KIB: f64 = 1024.0;
    const GIB: f64 = KIB * KIB * KIB;
    if bytes >= GIB / 1000.0 {
        format!("{:.3} GiB", bytes / GIB)
    } else if bytes >= KIB {
        format!("{:.1} KiB", bytes / KIB)
    } else {
        format!("{bytes:.0} bytes")
    }
}

/// A real number as a message shows it: in scientific notation where plain decimals
/// would hide it (`1e-300`, not `0.000…`), plainly otherwise, and in words where it is
/// not finite (no message prints `inf` or `NaN`).
pub fn number(x: f64) -> String {
    if !x.is_finite() {
        "not a finite number".into()
    } else if x != 0.0 && !(1e-4..1e15).contains(&x.abs()) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// Longest user-given text an error message shows, in characters.
pub const QUOTE_CHARS: usize = 200;

/// Whether a character would change how a message reads rather than show in it: a
/// control character, a line or paragraph separator, a zero-width or byte-order mark, or a
/// bidirectional override or isolate.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}')
        || matches!(c, '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// How a character shows in a message: itself, or escaped if [`hidden`] (`\\n` for a
/// newline, `\\u{202e}` for an override).
fn shown(c: char) -> Vec<char> {
    if c.is_control() {
        c.escape_default().collect()
    } else if hidden(c) {
        c.escape_unicode().collect()
    } else {
        vec![c]
    }
}

/// User-given text as an error shows it: hidden characters escaped (so a message is
/// always one line and reads as written) and cut to [`QUOTE_CHARS`] characters.
pub fn quote(text: &str) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == QUOTE_CHARS {
            out.push('…');
            break;
        }
        out.extend(shown(c));
    }
    out
}

/// Longest error line, in characters: room for two quoted user texts
/// ([`QUOTE_CHARS`] each) and the words around them.
pub const LINE_CHARS: usize = 3 * QUOTE_CHARS;

/// A whole message as one line: control characters escaped, and cut to [`LINE_CHARS`]
/// (the user-given parts of the crate's errors are already [`quote`]d and cut; this
/// bounds the whole line whatever a library put in it).
pub fn quote_line(message: &str) -> String {
    let line: String = message.chars().flat_map(shown).collect();
    match line.char_indices().nth(LINE_CHARS) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line,
    }
}

/// Checks that a learning rate or step size is finite and strictly positive.
pub fn check_step(name: &'static str, value: f64) -> Result<f64> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(Error::InvalidStep { name, value })
    }
}

/// Checks that `class` indexes one of `classes` (which must be at least 2).
pub fn check_class(class: usize, classes: usize) -> Result<usize> {
    if classes < 2 {
        Err(Error::TooFewClasses(classes))
    } else if class >= classes {
        Err(Error::ClassOutOfRange { class, classes })
    } else {
        Ok(class)
    }
}

/// The value that `name` names among `options` (`(name, value)` pairs), or an error of
/// `kind` that lists every name.
pub fn pick<T: Copy>(kind: &'static str, name: &str, options: &[(&str, T)]) -> Result<T> {
    options
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, value)| *value)
        .ok_or_else(|| Error::Unknown {
            kind,
            name: name.into(),
            expected: options.iter().map(|o| o.0).collect::<Vec<_>>().join(", "),
        })
}

/// A `rows × cols` matrix of zeros whose buffer is reserved fallibly: when the memory
/// is not there (a `ulimit`, a full machine), an error that names `what` and the size,
/// never an abort.
///
/// # Errors
/// If the size overflows or the allocation fails.
pub fn try_zeros(rows: usize, cols: usize, what: &str) -> Result<nalgebra::DMatrix<f64>> {
    let fail = || {
        Error::InvalidArgument(format!(
            "cannot allocate the {what} ({rows} × {cols} numbers, {:.0} MB): not enough memory",
            rows as f64 * cols as f64 * 8.0 / 1e6
        ))
    };
    let len = rows.checked_mul(cols).ok_or_else(fail)?;
    let mut data: Vec<f64> = Vec::new();
    data.try_reserve_exact(len).map_err(|_| fail())?;
    data.resize(len, 0.0);
    Ok(nalgebra::DMatrix::from_vec(rows, cols, data))
}

/// Checks that two sizes agree.
pub fn check_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            what,
            expected,
            got,
        })
    }
}
