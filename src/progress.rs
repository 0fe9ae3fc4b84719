//! How far a long run has got, for a person watching a terminal: the training loops
//! report their stage (pre-training, SFT, DPO regime k/n, update i/N) with [`stage`], and
//! whoever installed a watcher with [`watched`] sees it. Without a watcher nothing is
//! formatted, so the loops pay one uncontended lock read per report; the command line
//! installs one only when stderr is a terminal, and a sweep never does (it has its own
//! bar).
//!
//! A caller that runs the library on another thread (the Python package, whose user may
//! press Ctrl-C) asks a run to stop with [`request_stop`]: every training step passes a
//! [`checkpoint`], which then fails with [`Error::Interrupted`], so the run unwinds
//! through its `Result`s like any other error and writes nothing more.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{PoisonError, RwLock};

use crate::error::{Error, Result};

/// What a watcher receives: the level of the stage (0 the outermost, such as a seed's
/// DPO regime; 1 within it, such as its update) and its description.
type Watcher = Box<dyn Fn(usize, &str) + Send + Sync>;

static WATCHER: RwLock<Option<Watcher>> = RwLock::new(None);

/// Reports the stage at `level`; `message` is called only when someone watches.
pub fn stage(level: usize, message: impl FnOnce() -> String) {
    let watcher = WATCHER.read().unwrap_or_else(PoisonError::into_inner);
    if let Some(watch) = watcher.as_ref() {
        watch(level, &message());
    }
}

/// Runs `f` with `watcher` receiving every [`stage`] reported meanwhile (from any
/// thread), and removes it afterwards, also when `f` panics.
pub fn watched<R>(
    watcher: impl Fn(usize, &str) + Send + Sync + 'static,
    f: impl FnOnce() -> R,
) -> R {
    struct Removed;
    impl Drop for Removed {
        fn drop(&mut self) {
            *WATCHER.write().unwrap_or_else(PoisonError::into_inner) = None;
        }
    }
    *WATCHER.write().unwrap_or_else(PoisonError::into_inner) = Some(Box::new(watcher));
    let _removed = Removed;
    f()
}

static STOP: AtomicBool = AtomicBool::new(false);

/// Asks every run in the process to stop at its next [`checkpoint`].
pub fn request_stop() {
    STOP.store(true, Ordering::Relaxed);
}

/// Fails with [`Error::Interrupted`] if a stop was requested: the point where a long loop
/// (every training step) may stop.
///
/// # Errors
/// [`Error::Interrupted`] after [`request_stop`], until [`stoppable`] ends.
pub fn checkpoint() -> Result<()> {
    match STOP.load(Ordering::Relaxed) {
        true => Err(Error::Interrupted),
        false => Ok(()),
    }
}

/// Runs `f`, which [`request_stop`] may stop at its next [`checkpoint`]; afterwards (also
/// when `f` panics) the request is cleared, so the next run starts afresh.
pub fn stoppable<R>(f: impl FnOnce() -> R) -> R {
    struct Cleared;
    impl Drop for Cleared {
        fn drop(&mut self) {
            STOP.store(false, Ordering::Relaxed);
        }
    }
    let _cleared = Cleared;
    f()
}
