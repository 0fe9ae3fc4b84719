//! The MLP classifier workloads: the full `(N, N, V, V)` eNTK against the GEMM rate and
//! the pair-by-pair baseline, and the one-step decomposition against a plain pass.

use nalgebra::DVector;
use rand::SeedableRng;

use faer::Par;

use super::{BASELINE_REPS, GemmBench, GemmRates, median_pair, median_seconds, peak_memory_bytes};
use crate::Rng64;
use crate::decomposition::one_step;
use crate::error::{Error, Result};
use crate::mlp::kernel::{entk_full, entk_pairwise, executed_flops};
use crate::mlp::{Activation, Mlp, normal};
use crate::model::Model;
use crate::objective::CrossEntropy;

/// A tanh MLP `d → h → h → V` with biases and `N` standard-normal inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Workload {
    /// Input dimension `d`.
    pub inputs: usize,
    /// Width `h` of both hidden layers.
    pub hidden: usize,
    /// Number of classes `V`.
    pub classes: usize,
    /// Number of inputs `N`.
    pub n: usize,
}

impl std::str::FromStr for Workload {
    type Err = Error;

    /// The named workloads of the performance issue: `S`, `M` and `L`.
    fn from_str(name: &str) -> Result<Self> {
        let (inputs, hidden, classes, n) = match name {
            "S" | "s" => (16, 64, 10, 32),
            "M" | "m" => (32, 128, 50, 32),
            "L" | "l" => (64, 256, 100, 64),
            _ => {
                return Err(Error::Unknown {
                    kind: "workload",
                    name: name.into(),
                    expected: "S, M, L".into(),
                });
            }
        };
        Ok(Workload {
            inputs,
            hidden,
            classes,
            n,
        })
    }
}

impl Workload {
    /// The workload of explicit sizes `[d, h, V, N]` (`text` is what the user wrote,
    /// for the error).
    ///
    /// # Errors
    /// Unless there are four whole numbers ≥ 1 with `V ≥ 2`.
    pub fn from_dims(values: &[f64], text: &str) -> Result<Self> {
        let whole: Vec<usize> = values
            .iter()
            .filter(|v| v.fract() == 0.0 && **v >= 1.0)
            .map(|v| *v as usize)
            .collect();
        match whole[..] {
            [inputs, hidden, classes, n] if values.len() == 4 => {
                if classes < 2 {
                    return Err(Error::TooFewClasses(classes));
                }
                Ok(Workload {
                    inputs,
                    hidden,
                    classes,
                    n,
                })
            }
            _ => Err(Error::InvalidArgument(format!(
                "--dims needs four whole numbers d,h,V,N >= 1, got '{}'",
                crate::error::quote(text)
            ))),
        }
    }

    /// The bytes the eNTK bench needs, about: the kernel twice (the batched one and the
    /// pairwise baseline's, `16·(N·V)²`), the stacked factors (`32·N·V·h`), the inputs,
    /// and 64 MiB for the GEMM that measures the machine. `None` on overflow.
    pub fn memory_bytes(&self) -> Option<u128> {
        let nv = (self.n as u128).checked_mul(self.classes as u128)?;
        let h = self.hidden as u128;
        16u128
            .checked_mul(nv.checked_mul(nv)?)?
            .checked_add(32u128.checked_mul(nv)?.checked_mul(h)?)?
            .checked_add(16u128.checked_mul(h.checked_mul(h + self.inputs as u128)?)?)?
            .checked_add(
                8u128
                    .checked_mul(self.n as u128)?
                    .checked_mul(self.inputs as u128)?,
            )?
            .checked_add(crate::mlp::kernel::GEMM_WORKSPACE_BYTES)
    }

    /// The bytes the one-step bench needs for `observed` inputs, about: each observed
    /// input's activations, tangents, logits and decomposition, passed as one batch
    /// (`64·(d + 2h + 4V)` each), and the model's parameters and their copies. `None` on
    /// overflow.
    pub fn one_step_memory_bytes(&self, observed: usize) -> Option<u128> {
        let per_input = (self.inputs as u128)
            .checked_add(2 * self.hidden as u128)?
            .checked_add(4 * self.classes as u128)?
            .checked_mul(64)?;
        let h = self.hidden as u128;
        per_input.checked_mul(observed as u128)?.checked_add(
            64u128.checked_mul(h.checked_mul(h + self.inputs as u128 + self.classes as u128)?)?,
        )
    }

    /// Checks that every size is at least 1 and the memory estimate fits `budget` bytes.
    ///
    /// # Errors
    /// Naming the sizes, or the estimate and the limit.
    pub fn check(&self, budget: u64) -> Result<()> {
        if self.n == 0 || self.inputs == 0 || self.hidden == 0 {
            return Err(Error::InvalidArgument(
                "workload sizes must be at least 1".into(),
            ));
        }
        crate::error::check_memory(
            "the workload's sizes (--dims d,h,V,N)",
            self.memory_bytes(),
            budget,
        )
    }

    /// The seeded model and inputs (seed 0).
    pub fn build(&self) -> Result<(Mlp, Vec<DVector<f64>>)> {
        self.check(u64::MAX)?;
        let mut rng = Rng64::seed_from_u64(0);
        let sizes = [self.inputs, self.hidden, self.hidden, self.classes];
        let mlp = Mlp::random(&sizes, Activation::Tanh, true, &mut rng)?;
        let xs = (0..self.n)
            .map(|_| DVector::from_fn(self.inputs, |_, _| normal(&mut rng)))
            .collect();
        Ok((mlp, xs))
    }

    /// Flops of the full layer-wise kernel, `2·N²·V²·(h₁ + h₂)`: what a kernel that
    /// ignored symmetry would execute.
    pub fn full_flops(&self) -> f64 {
        2.0 * (self.n * self.n * self.classes * self.classes) as f64 * (2 * self.hidden) as f64
    }
}

/// Timings of the full eNTK on one workload.
#[derive(Clone, Debug)]
pub struct EntkBench {
    /// The sizes timed.
    pub workload: Workload,
    /// Number of parameters `P` of the MLP.
    pub params: usize,
    /// Median seconds of [`entk_full`] with 2 threads.
    pub seconds: f64,
    /// Median seconds of [`entk_full`] with 1 thread.
    pub seconds_one_thread: f64,
    /// Median seconds of the pair-by-pair baseline [`entk_pairwise`].
    pub baseline_seconds: f64,
    /// Peak resident memory of the process after its first kernel (2 threads).
    pub peak_bytes: Option<u64>,
    /// Sum of all kernel entries (compare with the peers' checksum on the same weights).
    pub checksum: f64,
    /// The flops the kernel's products execute ([`executed_flops`]).
    pub executed_flops: f64,
    /// The machine's GEMM rates, measured in the same run.
    pub gemm: GemmRates,
}

/// Times the full kernel (2 threads, then 1) and the pairwise baseline on `workload`.
/// The kernel runs alternate with the GEMM runs that measure the machine's rate, so both
/// medians see the same load on a noisy machine.
pub fn bench_entk(workload: Workload, reps: usize) -> Result<EntkBench> {
    let (mlp, xs) = workload.build()?;
    let kernel = |threads| {
        let (mlp, xs) = (&mlp, &xs);
        move || {
            // The first call below has shown that the kernel fits.
            std::hint::black_box(entk_full(mlp, xs, threads).ok());
        }
    };
    // The peak of one kernel, before repeated runs let the allocator keep freed pages.
    let checksum = entk_full(&mlp, &xs, 2)?.matrix.sum();
    let peak_bytes = peak_memory_bytes();
    let gemm = GemmBench::new();
    let (seconds, gemm_two) = median_pair(reps, kernel(2), || gemm.run(Par::rayon(2)));
    let (seconds_one_thread, gemm_one) = median_pair(reps, kernel(1), || gemm.run(Par::Seq));
    let baseline_seconds = median_seconds(reps.min(3), || {
        entk_pairwise(&mlp, &xs);
    });
    Ok(EntkBench {
        workload,
        params: mlp.num_params(),
        seconds,
        seconds_one_thread,
        baseline_seconds,
        peak_bytes,
        checksum,
        executed_flops: executed_flops(&mlp, workload.n),
        gemm: GemmRates {
            faer_two_threads: gemm.flops / gemm_two / 1e9,
            faer_one_thread: gemm.flops / gemm_one / 1e9,
            nalgebra_one_thread: gemm.flops
                / median_seconds(reps.min(BASELINE_REPS), || gemm.run_nalgebra())
                / 1e9,
        },
    })
}

impl EntkBench {
    /// The kernel's executed rate on two threads, in GFLOP/s.
    pub fn gflops(&self) -> f64 {
        self.executed_flops / self.seconds / 1e9
    }

    /// The executed rate as a fraction of faer's two-thread GEMM rate measured in the same run.
    pub fn efficiency(&self) -> f64 {
        self.gflops() / self.gemm.faer_two_threads
    }
}

impl std::fmt::Display for EntkBench {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let w = &self.workload;
        writeln!(
            f,
            "eNTK d={} h={} V={} N={} ({} parameters, kernel {}x{}x{}x{})",
            w.inputs, w.hidden, w.classes, w.n, self.params, w.n, w.n, w.classes, w.classes
        )?;
        writeln!(
            f,
            "  batched, ≤2 threads:{:9.3} ms  {:6.1} GFLOP/s executed = {:.0}% of the measured 2-thread GEMM rate",
            self.seconds * 1e3,
            self.gflops(),
            100.0 * self.efficiency()
        )?;
        let one = self.executed_flops / self.seconds_one_thread / 1e9;
        writeln!(
            f,
            "  batched, 1 thread:  {:9.3} ms  {one:6.1} GFLOP/s executed = {:.0}% of the measured 1-thread GEMM rate",
            self.seconds_one_thread * 1e3,
            100.0 * one / self.gemm.faer_one_thread
        )?;
        writeln!(
            f,
            "  executed: {:.3} GFLOP (lower block triangle; the full kernel would be {:.3})",
            self.executed_flops / 1e9,
            w.full_flops() / 1e9
        )?;
        writeln!(f, "{}", self.gemm)?;
        writeln!(
            f,
            "  pairwise baseline:  {:9.3} ms  (batched is {:.1}x faster)",
            self.baseline_seconds * 1e3,
            self.baseline_seconds / self.seconds
        )?;
        match self.peak_bytes {
            Some(b) => writeln!(f, "  peak memory: {:.1} MiB", b as f64 / (1024.0 * 1024.0))?,
            None => writeln!(f, "  peak memory: unknown on this platform")?,
        }
        write!(f, "  checksum (sum of entries): {:.6e}", self.checksum)
    }
}

/// Timings of the one-step decomposition on many observed inputs.
#[derive(Clone, Debug)]
pub struct OneStepBench {
    /// Number of observed inputs.
    pub observed: usize,
    /// Median seconds of [`one_step`] (prediction via `J_o (J_uᵀ G)` plus the real step).
    pub seconds: f64,
    /// Median seconds of one forward + backward pass over every observed input.
    pub pass_seconds: f64,
}

/// Times [`one_step`] with `observed` inputs of `workload`'s model against one
/// forward/backward pass over the same inputs.
pub fn bench_one_step(workload: Workload, observed: usize, reps: usize) -> Result<OneStepBench> {
    let (mlp, xs) = workload.build()?;
    let mut rng = Rng64::seed_from_u64(1);
    let obs: Vec<DVector<f64>> = (0..observed)
        .map(|_| DVector::from_fn(workload.inputs, |_, _| normal(&mut rng)))
        .collect();
    let ce = CrossEntropy::positive(0);
    let update = std::slice::from_ref(&xs[0]);
    let seconds = median_seconds(reps, || {
        one_step(&mlp, update, &ce, &obs, 0.01).expect("valid workload");
    });
    let g = nalgebra::DMatrix::from_element(workload.classes, 1, 1.0);
    let pass_seconds = median_seconds(reps, || {
        for x in &obs {
            std::hint::black_box(mlp.backprop(x, &g));
        }
    });
    Ok(OneStepBench {
        observed,
        seconds,
        pass_seconds,
    })
}

impl std::fmt::Display for OneStepBench {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "one-step decomposition on {} observed inputs: {:.3} ms = {:.2} forward/backward passes ({:.3} ms each)",
            self.observed,
            self.seconds * 1e3,
            self.seconds / self.pass_seconds,
            self.pass_seconds * 1e3
        )
    }
}
