//! `ldyn`: the command-line front door. Declarations and dispatch only: every closed set
//! of names is parsed by the library's `FromStr` types, every computation is a library
//! call. Every error ends with a one-line message on stderr and exit status 2; a closed
//! output pipe ends the command quietly with status 141; nothing panics on a failing
//! stream.
//!
//! `commands` declares the arguments (clap), `handlers` dispatches each command to the
//! library, `progress_line` draws the run's progress on a terminal; this file holds the
//! exit statuses and standard output's checks.

mod commands;
mod handlers;
mod progress_line;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use learning_dynamics::error::quote;
use learning_dynamics::{Error, Result};
use mimalloc::MiMalloc;

use commands::Cli;
use handlers::execute;

/// mimalloc keeps freed pages for reuse, so the large matrices a training step allocates
/// do not fault in fresh pages on every step (glibc returns them to the system).
#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// The exit status of a command stopped by a closed output pipe (128 + SIGPIPE).
const BROKEN_PIPE: u8 = 141;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_exit(&e),
    };
    let budget = match memory_budget(cli.max_memory) {
        Ok(b) => b,
        Err(e) => return fail(&e.to_string()),
    };
    match execute(cli.command, budget) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::BrokenPipe) => ExitCode::from(BROKEN_PIPE),
        Err(Error::Signal(number)) => ExitCode::from(128u8.saturating_add(number as u8)),
        Err(e @ Error::RunsFailed { .. }) => {
            fail(&e.to_string());
            ExitCode::from(1)
        }
        Err(e) => fail(&e.to_string()),
    }
}

/// Prints `error: message` as one line on stderr (a failing stderr is ignored: the
/// status still says it) and returns exit status 2.
fn fail(message: &str) -> ExitCode {
    let line = learning_dynamics::error::quote_line(message);
    let _ = writeln!(std::io::stderr(), "error: {line}");
    ExitCode::from(2)
}

/// Help and version go to stdout with status 0; every other clap error (including a
/// missing subcommand, which clap answers with the help text) is one `error:` line that
/// names what is wrong, with the usage, and status 2.
fn clap_exit(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => match emit(&e.render().to_string()) {
            Err(Error::BrokenPipe) => ExitCode::from(BROKEN_PIPE),
            Err(err) => fail(&err.to_string()),
            Ok(()) => ExitCode::SUCCESS,
        },
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let usage = e.render().to_string();
            let usage = usage
                .lines()
                .find(|l| l.starts_with("Usage:"))
                .unwrap_or("Usage: ldyn <COMMAND>");
            fail(&format!("a command is required; {usage} (see ldyn --help)"))
        }
        _ => {
            let text = e.render().to_string();
            let words: Vec<&str> = text
                .lines()
                .map(str::trim)
                // clap's "tip:" repeats the user's text: the line says it once.
                .filter(|l| {
                    !l.is_empty()
                        && !l.starts_with("For more information")
                        && !l.starts_with("tip:")
                })
                .collect();
            // Values clap quotes ('…') are user text: each is shown cut and escaped.
            let line = words.join(" ");
            let shown: Vec<String> = line
                .split('\'')
                .enumerate()
                .map(|(i, part)| {
                    if i % 2 == 1 {
                        quote(part)
                    } else {
                        part.to_string()
                    }
                })
                .collect();
            fail(shown.join("'").trim_start_matches("error: "))
        }
    }
}

/// Writes `text` to stdout; a closed pipe is [`Error::BrokenPipe`], any other failure an
/// error that names standard output.
fn emit(text: &str) -> Result<()> {
    if let Some(why) = stdout::unusable() {
        return Err(Error::InvalidArgument(format!(
            "standard output {why}: nothing can be printed"
        )));
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => Error::BrokenPipe,
            _ => Error::io("write", Path::new("standard output"), e),
        })
}

/// Whether standard output can be written, told apart from what Rust's runtime does to
/// it: a closed fd 1 is replaced by `/dev/null` before `main`, and writes to an fd open
/// only for reading fail with `EBADF`, which Rust's stdout takes for success. Both would
/// lose every line silently. A `/dev/null` the parent opened on purpose (`> /dev/null`,
/// `1<> /dev/null`, Python's `subprocess.DEVNULL`) is a usable stdout.
mod stdout {
    #[cfg(target_os = "linux")]
    mod probe {
        use std::sync::atomic::{AtomicBool, Ordering};

        static CLOSED_AT_START: AtomicBool = AtomicBool::new(false);

        unsafe extern "C" {
            fn fcntl(fd: i32, cmd: i32, ...) -> i32;
        }
        const F_GETFD: i32 = 1;
        const F_GETFL: i32 = 3;
        const O_ACCMODE: i32 = 0o3;
        const O_RDONLY: i32 = 0;

        /// Runs before `main`, so before the runtime replaces a closed fd 1.
        extern "C" fn at_start() {
            // SAFETY: F_GETFD on fd 1 reads its flags and touches no memory.
            if unsafe { fcntl(1, F_GETFD) } == -1 {
                CLOSED_AT_START.store(true, Ordering::Relaxed);
            }
        }

        #[used]
        #[unsafe(link_section = ".init_array")]
        static AT_START: extern "C" fn() = at_start;

        pub fn closed_at_start() -> bool {
            CLOSED_AT_START.load(Ordering::Relaxed)
        }

        pub fn read_only() -> bool {
            // SAFETY: F_GETFL on fd 1 reads its status flags and touches no memory.
            let flags = unsafe { fcntl(1, F_GETFL) };
            flags != -1 && flags & O_ACCMODE == O_RDONLY
        }
    }

    /// Why standard output cannot be written (`None`: it can, as far as can be told
    /// before writing; elsewhere than Linux, always `None`).
    pub fn unusable() -> Option<&'static str> {
        #[cfg(target_os = "linux")]
        {
            if probe::closed_at_start() {
                return Some("is closed");
            }
            if probe::read_only() {
                return Some("is open only for reading");
            }
        }
        None
    }
}

/// `--max-memory` in bytes.
fn memory_budget(gib: f64) -> Result<u64> {
    if gib.is_finite() && gib > 0.0 && gib <= 1e9 {
        Ok((gib * (1u64 << 30) as f64) as u64)
    } else {
        Err(Error::InvalidArgument(format!(
            "--max-memory must be a number of GiB in (0, 1e9], got {gib}"
        )))
    }
}
