//! `learning_dynamics._core`: the Python binding of the crate, which the package
//! `learning_dynamics` re-exports with its type stubs.
//!
//! The binding owns no science: every function maps onto a crate item and converts at
//! the boundary. This file holds what every function shares: the error mapping (the
//! crate's one-line messages as `ValueError` or `OSError`), the panic guard (a panic is
//! a `RuntimeError`, never an abort), and the long-call driver ([`long`]), which runs the
//! work on its own thread with the GIL released while the calling thread checks Python's
//! signals every 100 ms, so Ctrl-C asks the run to stop at its next training step
//! ([`learning_dynamics::progress::request_stop`]) and raises `KeyboardInterrupt` once
//! it has. [`arrays`] converts the user's arrays and small results; [`models`] holds the
//! models, [`objectives`] the objectives (and `Custom`), [`step`] `one_step` and `squeeze`,
//! [`layout`] a step's arrays in the package's shapes, [`runs`] experiments, sweeps and the
//! rest.

mod arrays;
mod layout;
mod models;
mod objectives;
mod runs;
mod step;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::time::Duration;

use learning_dynamics::Error;
use pyo3::exceptions::{PyKeyboardInterrupt, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

/// The crate's error as the Python exception a user expects, with the same message `ldyn`
/// prints: files are `OSError`, a stop is `KeyboardInterrupt`, everything else (bad
/// input) `ValueError`.
pub(crate) fn to_py(e: Error) -> PyErr {
    let message = e.to_string();
    match e {
        Error::Io { .. } | Error::Plot(_) | Error::BrokenPipe => PyOSError::new_err(message),
        Error::Interrupted | Error::Signal(_) => PyKeyboardInterrupt::new_err(message),
        _ => PyValueError::new_err(message),
    }
}

/// The message of a panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// A panic as Python's `RuntimeError`: a bug of this package, reported, never an abort.
fn panicked(payload: &(dyn std::any::Any + Send)) -> PyErr {
    PyRuntimeError::new_err(format!(
        "internal error (a bug of learning_dynamics, please report it): {}",
        panic_message(payload)
    ))
}

/// Runs `f`, turning a panic into a `RuntimeError`.
pub(crate) fn guard<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| Err(panicked(payload.as_ref())))
}

/// How often a long call looks at Python's signals (Ctrl-C) and calls its progress hook.
const POLL: Duration = Duration::from_millis(100);

/// Runs `work` on a thread of its own with the GIL released; every [`POLL`] the calling
/// thread re-attaches to check Python's signals and to call `tick` (a progress hook). On
/// a signal's exception (`KeyboardInterrupt`) it asks the work to stop, waits until it
/// has, and raises that exception. A panic of the work is a `RuntimeError`.
pub(crate) fn long<T: Send>(
    py: Python<'_>,
    work: impl FnOnce() -> learning_dynamics::Result<T> + Send,
    tick: &mut (dyn FnMut(Python<'_>) -> PyResult<()> + Send),
) -> PyResult<T> {
    let outcome = py.detach(|| {
        learning_dynamics::progress::stoppable(|| {
            std::thread::scope(|scope| {
                let (done, finished) = mpsc::channel();
                let worker = scope.spawn(move || {
                    let result = catch_unwind(AssertUnwindSafe(work));
                    let _ = done.send(());
                    result
                });
                let mut interrupted: Option<PyErr> = None;
                while let Err(mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(POLL) {
                    if interrupted.is_some() {
                        continue;
                    }
                    let polled = Python::attach(|py| py.check_signals().and_then(|()| tick(py)));
                    if let Err(e) = polled {
                        learning_dynamics::progress::request_stop();
                        interrupted = Some(e);
                    }
                }
                let result = worker.join().unwrap_or_else(Err);
                (result, interrupted)
            })
        })
    });
    match outcome {
        (_, Some(interrupted)) => Err(interrupted),
        (Ok(result), None) => {
            let value = result.map_err(to_py)?;
            tick(py)?;
            Ok(value)
        }
        (Err(payload), None) => Err(panicked(payload.as_ref())),
    }
}

/// Panics with `message` inside the package's guard: how the tests check that a panic
/// reaches Python as a `RuntimeError` (and on a long call's thread as well, `long=True`).
#[pyfunction]
#[pyo3(signature = (message, long = false))]
fn _panic(py: Python<'_>, message: String, long: bool) -> PyResult<()> {
    guard(|| match long {
        false => panic!("{message}"),
        true => self::long(
            py,
            move || -> learning_dynamics::Result<()> { panic!("{message}") },
            &mut |_| Ok(()),
        ),
    })
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(_panic, m)?)?;
    models::register(m)?;
    objectives::register(m)?;
    step::register(m)?;
    runs::register(m)?;
    Ok(())
}
