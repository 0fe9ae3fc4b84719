//! The explorer in the terminal: raw mode and the alternate screen, the key loop, and
//! the signals and hang-ups that end it, with the terminal restored on every exit.

use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};

use super::{Action, Explorer, draw};
use crate::error::{Error, Result};

/// Runs the explorer on `logits` in the terminal until `q`, `Esc` or Ctrl-C, and
/// restores the terminal on every exit, an error included.
///
/// # Errors
/// If stdout is not a terminal (the error suggests `ldyn squeeze`), the logits are not
/// valid, or the terminal fails.
pub fn run(logits: Vec<f64>) -> Result<()> {
    require_terminal()?;
    let mut explorer = Explorer::new(logits)?;
    // SIGTERM, SIGHUP, SIGQUIT and SIGINT end the loop, which then restores the terminal
    // (raw mode off, the main screen back) before the process ends.
    let signal = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for number in [SIGTERM, SIGHUP, SIGQUIT, SIGINT] {
        signal_hook::flag::register_usize(number, signal.clone(), number as usize)
            .map_err(|e| Error::InvalidArgument(format!("cannot watch signal {number}: {e}")))?;
    }
    let mut terminal = ratatui::try_init()
        .map_err(|e| Error::InvalidArgument(format!("the terminal cannot be set up: {e}")))?;
    watch_the_terminal(signal.clone());
    let result = key_loop(&mut terminal, &mut explorer, &signal);
    ratatui::restore();
    match result.map_err(|e| Error::InvalidArgument(format!("terminal: {e}")))? {
        0 => Ok(()),
        number => Err(Error::Signal(number as i32)),
    }
}

/// Ends the process from a thread of its own when the terminal hangs up (status 129, as
/// SIGHUP), or when a watched signal is not answered by the key loop within a second
/// (128 + its number). Once its terminal is gone, the terminal library's read returns end
/// of file at once and retries without returning to the key loop, which would spin at
/// full CPU for ever.
fn watch_the_terminal(signal: std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    std::thread::spawn(move || {
        let mut unanswered = 0;
        loop {
            std::thread::sleep(std::time::Duration::from_millis(100));
            if terminal_hung_up() {
                std::process::exit(128 + SIGHUP);
            }
            let number = signal.load(std::sync::atomic::Ordering::Relaxed);
            unanswered = if number == 0 { 0 } else { unanswered + 1 };
            if unanswered > 10 {
                std::process::exit(128 + number as i32);
            }
        }
    });
}

/// Whether the terminal the explorer draws on (stdout) has hung up: its window closed,
/// its tmux session killed, its ssh connection dropped. (Linux and other Unix: `poll`
/// reports `POLLHUP` on the terminal's fd.)
fn terminal_hung_up() -> bool {
    #[repr(C)]
    struct PollFd {
        fd: i32,
        events: i16,
        revents: i16,
    }
    unsafe extern "C" {
        fn poll(fds: *mut PollFd, n: u64, timeout: i32) -> i32;
    }
    const POLLHUP: i16 = 0x10;
    const POLLNVAL: i16 = 0x20;
    let mut fd = PollFd {
        fd: 1,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no timeout; poll writes only its revents.
    let ready = unsafe { poll(&mut fd, 1, 0) };
    ready > 0 && fd.revents & (POLLHUP | POLLNVAL) != 0
}

/// Refuses to start without a terminal on stdout, before anything is read.
///
/// # Errors
/// If stdout is not a terminal.
pub fn require_terminal() -> Result<()> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return Err(Error::InvalidArgument(
            "ldyn explore needs a terminal; without one, `ldyn squeeze` takes one step and prints it".into(),
        ));
    }
    Ok(())
}

/// The keys until one quits (returns 0) or a watched signal arrives (returns its
/// number); the signal flag is looked at every 100 ms.
fn key_loop(
    terminal: &mut ratatui::DefaultTerminal,
    explorer: &mut Explorer,
    signal: &std::sync::atomic::AtomicUsize,
) -> std::io::Result<usize> {
    use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
    use std::sync::atomic::Ordering;
    loop {
        // Whatever woke the loop, a watched signal ends it.
        let number = signal.load(Ordering::Relaxed);
        if number != 0 {
            return Ok(number);
        }
        terminal.draw(|frame| draw(frame, explorer))?;
        while !event::poll(std::time::Duration::from_millis(100))? {
            let number = signal.load(Ordering::Relaxed);
            if number != 0 {
                return Ok(number);
            }
        }
        let Event::Key(key) = event::read()? else {
            continue;
        };
        if key.kind != KeyEventKind::Press {
            continue;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let action = match key.code {
            KeyCode::Char('q') | KeyCode::Esc => return Ok(0),
            KeyCode::Char('c') if ctrl => return Ok(0),
            KeyCode::Left | KeyCode::Char('h') => Action::Left,
            KeyCode::Right | KeyCode::Char('l') => Action::Right,
            KeyCode::Char('p') => Action::Positive,
            KeyCode::Char('n') => Action::Negative,
            KeyCode::Char('c') => Action::MarkChosen,
            KeyCode::Char('r') => Action::MarkRejected,
            KeyCode::Char('s') => Action::Sft,
            KeyCode::Char('d') => Action::Dpo,
            KeyCode::Char('+') | KeyCode::Char('=') => Action::Larger,
            KeyCode::Char('-') => Action::Smaller,
            KeyCode::Char('0') => Action::Reset,
            KeyCode::Char('?') => Action::Help,
            _ => continue,
        };
        explorer.apply(action);
    }
}
