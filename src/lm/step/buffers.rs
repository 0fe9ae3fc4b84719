//! The step's building blocks: column-major views, single-threaded faer products, the
//! two-way split onto rayon's pool, and the pool of reused buffers (with stale contents)
//! that keeps a step from zeroing or faulting in fresh memory.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

/// `data` as a column-major `rows × cols` matrix.
pub(super) fn view(data: &[f64], rows: usize, cols: usize) -> MatRef<'_, f64> {
    MatRef::from_column_major_slice(data, rows, cols)
}

/// `dst (+)= a b`, single-threaded: `dst` is column-major `a.nrows() × b.ncols()`.
pub(super) fn product(dst: &mut [f64], add: bool, a: MatRef<'_, f64>, b: MatRef<'_, f64>) {
    let dst = MatMut::from_column_major_slice_mut(dst, a.nrows(), b.ncols());
    let accum = if add { Accum::Add } else { Accum::Replace };
    matmul(dst, accum, a, b, 1.0, Par::Seq);
    crate::vecmath::clear_upper();
}

/// `bias` added to every column of `a b` (`a.nrows() × b.ncols()`), in a pooled buffer:
/// the bias first, then the product accumulated onto it.
pub(super) fn affine(bias: &[f64], a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Vec<f64> {
    let mut out = take(a.nrows() * b.ncols());
    for col in out.chunks_exact_mut(a.nrows()) {
        col.copy_from_slice(bias);
    }
    product(&mut out, true, a, b);
    out
}

/// `d ← σ'(h) ⊙ d` with `σ' = 1 − a²` read off the activations `a = tanh h`.
pub(super) fn tanh_derivative(d: &mut [f64], a: &[f64]) {
    d.iter_mut().zip(a).for_each(|(x, a)| *x *= 1.0 - a * a);
}

/// Runs `f` on every item, on rayon's pool when there are several, in order.
pub(super) fn in_parallel<I: Sync, T: Send>(
    items: &[I],
    f: impl Fn(&I) -> T + Sync + Send,
) -> Vec<T> {
    use rayon::prelude::*;
    if items.len() > 1 {
        items.par_iter().map(f).collect()
    } else {
        items.iter().map(f).collect()
    }
}

/// The large buffers that steps have finished with, for the next step ([`take`]).
static POOL: std::sync::Mutex<Vec<Vec<f64>>> = std::sync::Mutex::new(Vec::new());

/// The most buffers [`POOL`] keeps: about three steps' worth, whatever the threads.
const POOL_BUFFERS: usize = 32;

/// A buffer of `len` values from the pool (the smallest that holds `len`, else a fresh
/// one), **with stale contents**: its users overwrite every entry before they read one.
/// A step takes its tables, activations and logits from here and [`recycle`]s them, so
/// that it neither zeroes nor faults in fresh memory.
pub(super) fn take(len: usize) -> Vec<f64> {
    let reused = {
        let mut pool = POOL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let fits = (0..pool.len())
            .filter(|&i| pool[i].capacity() >= len)
            .min_by_key(|&i| pool[i].capacity());
        fits.map(|i| pool.swap_remove(i))
    };
    match reused {
        Some(mut buffer) => {
            // Growing within the capacity writes the new tail once; shrinking writes nothing.
            buffer.resize(len, 0.0);
            buffer
        }
        None => vec![0.0; len],
    }
}

/// Gives `buffers` back to the pool ([`take`]), up to [`POOL_BUFFERS`] (empty ones are
/// dropped: they would only take a place).
pub(super) fn recycle(buffers: impl IntoIterator<Item = Vec<f64>>) {
    let mut pool = POOL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for buffer in buffers {
        if pool.len() < POOL_BUFFERS && buffer.capacity() > 0 {
            pool.push(buffer);
        }
    }
}
