//! The progress line of `ldyn run` and `ldyn gallery` on a terminal: the run, and the
//! stages of the thread that reported last ([`learning_dynamics::progress`]), redrawn at
//! most ten times a second and cut to the terminal's width.

use std::io::{IsTerminal, Write};
use std::path::Path;

use learning_dynamics::gallery::Plan;
use learning_dynamics::{Result, progress};

/// Executes `plan`, showing on stderr, if it is a terminal, which run is going and the
/// stage it has reached (pre-training, SFT, DPO regime k/n, update i/N: [`progress`]).
pub(crate) fn run_with_progress(
    plan: &Plan,
    out: &Path,
) -> Result<learning_dynamics::gallery::Report> {
    if !std::io::stderr().is_terminal() {
        return plan.execute(out, &mut |_| {});
    }
    let status = std::sync::Arc::new(std::sync::Mutex::new(Status::default()));
    let watcher = {
        let status = status.clone();
        move |level: usize, message: &str| {
            let mut status = status
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let stages = status
                .stages
                .entry(std::thread::current().id())
                .or_default();
            stages.truncate(level);
            stages.push(message.to_string());
            status.latest = Some(std::thread::current().id());
            // The outer stages always show; the inner ones (updates) ten times a second.
            status.show(level == 0);
        }
    };
    let mut progress = |message: &str| {
        let mut status = status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        status.run = message.to_string();
        status.stages.clear();
        status.show(true);
    };
    let report = progress::watched(watcher, || plan.execute(out, &mut progress));
    let _ = write!(std::io::stderr(), "\r\x1b[K");
    report
}

/// What the progress line shows: the run, and the stages of the thread that reported last.
#[derive(Default)]
struct Status {
    run: String,
    stages: std::collections::HashMap<std::thread::ThreadId, Vec<String>>,
    latest: Option<std::thread::ThreadId>,
    shown: Option<std::time::Instant>,
}

impl Status {
    /// Rewrites the progress line, cut to the terminal's width, if `now` or if it was
    /// last shown over 100 ms ago.
    fn show(&mut self, now: bool) {
        let due = self.shown.is_none_or(|t| t.elapsed().as_millis() >= 100);
        if !(now || due) {
            return;
        }
        self.shown = Some(std::time::Instant::now());
        let mut line = self.run.clone();
        if let Some(stages) = self.latest.and_then(|t| self.stages.get(&t)) {
            stages
                .iter()
                .for_each(|s| line.push_str(&format!(" · {s}")));
        }
        // A pseudo-terminal may report no size at all.
        let width = match ratatui::crossterm::terminal::size() {
            Ok((w, _)) if w >= 20 => usize::from(w),
            _ => 80,
        };
        let line: String = line.chars().take(width.saturating_sub(1)).collect();
        let _ = write!(std::io::stderr(), "\r\x1b[K{line}");
    }
}
