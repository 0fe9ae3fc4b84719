//! `ldyn bench`: release-mode timings of the eNTK engine, the one-step decomposition
//! and the tiny LM's training steps, with their baselines run in the same process.
//!
//! Machines are noisy, so every timing is the median of several runs and every result
//! is reported as a ratio to a baseline measured in the same command. This module holds
//! the timing helpers and the machine's GEMM rate; each workload family has its module:
//! [`mlp`] (the full eNTK and the decomposition of an MLP classifier) and [`lm`] (the
//! tiny LM's SFT and DPO steps and its JVP, with a JSON export for peers).

pub mod lm;
pub mod mlp;

use std::time::Instant;

use rand::SeedableRng;

use faer::Par;

pub use lm::{JvpBench, LmBatch, LmBench, LmWorkload, bench_jvp, bench_lm};
pub use mlp::{EntkBench, OneStepBench, Workload, bench_entk, bench_one_step};

use crate::Rng64;
use crate::mlp::normal;

/// The side of the square GEMM that measures the machine's dense f64 rate.
pub const GEMM_SIZE: usize = 1024;

/// The machine's dense f64 matrix-multiply rates, measured in the same run as the
/// kernel they are compared with: `C = A B` for square `A`, `B` of [`GEMM_SIZE`]
/// (`2·n³` flops), in GFLOP/s.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GemmRates {
    /// faer's `matmul` on two threads: the GEMM the kernel uses, on every core.
    pub faer_two_threads: f64,
    /// faer's `matmul` on one thread (what each kernel worker runs).
    pub faer_one_thread: f64,
    /// nalgebra's `gemm` (matrixmultiply), one thread: the crate's other GEMM.
    pub nalgebra_one_thread: f64,
}

/// The square GEMM that measures the machine's rate: seeded operands in both libraries,
/// and faer's product written over one output allocated once, so that the time is the
/// product's alone (a fresh 8 MB output would be faulted in and zeroed on every run).
struct GemmBench {
    a: nalgebra::DMatrix<f64>,
    b: nalgebra::DMatrix<f64>,
    fa: faer::Mat<f64>,
    fb: faer::Mat<f64>,
    out: std::cell::RefCell<faer::Mat<f64>>,
    flops: f64,
}

impl GemmBench {
    fn new() -> Self {
        let n = GEMM_SIZE;
        let mut rng = Rng64::seed_from_u64(2);
        let a = nalgebra::DMatrix::from_fn(n, n, |_, _| normal(&mut rng));
        let b = nalgebra::DMatrix::from_fn(n, n, |_, _| normal(&mut rng));
        let fa = faer::Mat::from_fn(n, n, |i, j| a[(i, j)]);
        let fb = faer::Mat::from_fn(n, n, |i, j| b[(i, j)]);
        GemmBench {
            a,
            b,
            fa,
            fb,
            out: std::cell::RefCell::new(faer::Mat::zeros(n, n)),
            flops: 2.0 * (n as f64).powi(3),
        }
    }

    fn run(&self, par: Par) {
        let mut c = self.out.borrow_mut();
        faer::linalg::matmul::matmul(&mut *c, faer::Accum::Replace, &self.fa, &self.fb, 1.0, par);
        // faer's threads too leave their vector registers dirty; the step timed next runs
        // on them ([`crate::vecmath::clear_upper`]).
        rayon::broadcast(|_| crate::vecmath::clear_upper());
        crate::vecmath::clear_upper();
        std::hint::black_box(&*c);
    }

    fn run_nalgebra(&self) {
        std::hint::black_box(&self.a * &self.b);
    }
}

impl std::fmt::Display for GemmRates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "  dense f64 GEMM {n}×{n}, measured now: faer {:.1} GFLOP/s on 2 threads, {:.1} on 1; nalgebra {:.1} on 1",
            self.faer_two_threads,
            self.faer_one_thread,
            self.nalgebra_one_thread,
            n = GEMM_SIZE
        )
    }
}

/// Median wall time in seconds of `reps` runs of `f` (after one warm-up run).
pub fn median_seconds(reps: usize, mut f: impl FnMut()) -> f64 {
    let [seconds] = medians_in_turn(reps, [&mut f]);
    seconds
}

/// Wall time in seconds of one run of `f`.
fn seconds(f: &mut dyn FnMut()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

/// The process's peak resident memory in bytes (`VmHWM` on Linux), if known.
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// How many times a command measures a baseline (the machine's GEMM rate) at most,
/// whatever `--reps` asks of the kernel: its cost must follow the kernel's, not grow
/// with the repetitions.
pub const BASELINE_REPS: usize = 7;

/// Median wall times in seconds of `f`, run `reps` times, and of the baseline `g`, run
/// between them at most [`BASELINE_REPS`] times, spread evenly (after one warm-up run
/// each), so both see the same load on a noisy machine.
pub fn median_pair(reps: usize, mut f: impl FnMut(), mut g: impl FnMut()) -> (f64, f64) {
    f();
    g();
    let reps = reps.max(1);
    let stride = reps.div_ceil(BASELINE_REPS);
    let (mut a, mut b) = (Vec::with_capacity(reps), Vec::new());
    for k in 0..reps {
        a.push(seconds(&mut f));
        if k % stride == 0 {
            b.push(seconds(&mut g));
        }
    }
    (median(&mut a), median(&mut b))
}

/// Median wall times in seconds of each of `fs`, run in turn (one run of each, `reps`
/// times over, after one untimed run of each), so that all see the same load.
pub fn medians_in_turn<const N: usize>(reps: usize, mut fs: [&mut dyn FnMut(); N]) -> [f64; N] {
    fs.iter_mut().for_each(|f| f());
    let mut times: [Vec<f64>; N] = std::array::from_fn(|_| Vec::with_capacity(reps.max(1)));
    for _ in 0..reps.max(1) {
        for (f, t) in fs.iter_mut().zip(&mut times) {
            t.push(seconds(*f));
        }
    }
    times.map(|mut t| median(&mut t))
}

pub(super) fn median(times: &mut [f64]) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}
