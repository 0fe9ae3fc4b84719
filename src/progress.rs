//! How far a long run has got, for a person watching a terminal: the training loops
//! report their stage (pre-training, SFT, DPO regime k/n, update i/N) with [`stage`], and
//! whoever installed a watcher with [`watched`] sees it. Without a watcher nothing is
//! formatted, so the loops pay one uncontended lock read per report; the command line
//! installs one only when stderr is a terminal, and a sweep never does (it has its own
//! bar).

use std::sync::{PoisonError, RwLock};

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
