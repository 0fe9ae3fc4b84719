//! `ldyn bench`: release-mode timings of the eNTK engine and the one-step
//! decomposition, with their baselines run in the same process.
//!
//! Machines are noisy, so every timing is the median of several runs and every result
//! is reported as a ratio to a baseline measured in the same command.

use std::time::Instant;

use nalgebra::DVector;
use rand::{RngExt, SeedableRng};

use faer::Par;

use crate::Rng64;
use crate::decomposition::{gradient, one_step};
use crate::error::{Error, Result};
use crate::export::lm_model_json;
use crate::lm::{LmSpec, Sequence, TinyLm, update};
use crate::mlp::kernel::{entk_full, entk_pairwise, executed_flops};
use crate::mlp::{Activation, Mlp, normal};
use crate::model::Model;
use crate::numerics::sequence_log_prob;
use crate::objective::{Batch, CrossEntropy, Objective, PairLoss};
use crate::trainer::Trainer;

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

/// The square GEMM that measures the machine's rate: seeded operands in both libraries.
struct GemmBench {
    a: nalgebra::DMatrix<f64>,
    b: nalgebra::DMatrix<f64>,
    fa: faer::Mat<f64>,
    fb: faer::Mat<f64>,
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
            flops: 2.0 * (n as f64).powi(3),
        }
    }

    fn run(&self, par: Par) {
        let mut c = faer::Mat::<f64>::zeros(GEMM_SIZE, GEMM_SIZE);
        faer::linalg::matmul::matmul(&mut c, faer::Accum::Replace, &self.fa, &self.fb, 1.0, par);
        std::hint::black_box(c);
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
                "--dims needs four whole numbers d,h,V,N >= 1, got '{text}'"
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
            .checked_add(64 << 20)
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

/// Median wall time in seconds of `reps` runs of `f` (after one warm-up run).
pub fn median_seconds(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    median(&mut times)
}

/// The process's peak resident memory in bytes (`VmHWM` on Linux), if known.
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
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
            entk_full(mlp, xs, threads);
        }
    };
    // The peak of one kernel, before repeated runs let the allocator keep freed pages.
    let checksum = entk_full(&mlp, &xs, 2).matrix.sum();
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
            nalgebra_one_thread: gemm.flops / median_seconds(reps, || gemm.run_nalgebra()) / 1e9,
        },
    })
}

/// Median wall times in seconds of `f` and `g`, run alternately `reps` times (after one
/// warm-up run each).
pub fn median_pair(reps: usize, mut f: impl FnMut(), mut g: impl FnMut()) -> (f64, f64) {
    let time = |h: &mut dyn FnMut()| {
        let t = Instant::now();
        h();
        t.elapsed().as_secs_f64()
    };
    f();
    g();
    let (mut a, mut b): (Vec<f64>, Vec<f64>) = (0..reps.max(1))
        .map(|_| (time(&mut f), time(&mut g)))
        .unzip();
    (median(&mut a), median(&mut b))
}

fn median(times: &mut [f64]) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
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

/// The tiny-LM training workloads of `ldyn bench lm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LmWorkload {
    /// The gallery's LM (V = 36, window 4, embedding 8, hidden 64) at its batch size: one
    /// SFT sequence, one DPO pair, each `ASK e` and a 4-token answer.
    Gallery,
    /// V = 256, window 8, embedding 32, hidden 256; 64 SFT sequences and 32 DPO pairs,
    /// each of 16 tokens (a 4-token prompt and a 12-token response).
    Large,
}

impl std::str::FromStr for LmWorkload {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        match name {
            "gallery" => Ok(LmWorkload::Gallery),
            "large" => Ok(LmWorkload::Large),
            _ => Err(Error::Unknown {
                kind: "LM workload",
                name: name.into(),
                expected: "gallery, large".into(),
            }),
        }
    }
}

/// One seeded LM workload: the model, the SFT batch, and the DPO pairs with their frozen
/// reference log-probabilities (the model's own), with DPO's β and the learning rate.
#[derive(Clone, Debug)]
pub struct LmBatch {
    /// The model being trained.
    pub model: TinyLm,
    /// The SFT sequences.
    pub sft: Vec<Sequence>,
    /// The DPO pairs `(χ⁺, χ⁻)`.
    pub pairs: Vec<(Sequence, Sequence)>,
    /// DPO's β.
    pub beta: f64,
    /// The learning rate of both steps.
    pub eta: f64,
}

impl LmWorkload {
    /// The seeded model and batches (seed 0; tokens uniform over the vocabulary but `PAD`).
    pub fn build(self) -> Result<LmBatch> {
        let (spec, sft, pairs, prompt, response) = match self {
            LmWorkload::Gallery => (
                LmSpec {
                    vocab: crate::language::VOCAB,
                    window: 4,
                    embed: 8,
                    hidden: 64,
                },
                1,
                1,
                2,
                4,
            ),
            LmWorkload::Large => (
                LmSpec {
                    vocab: 256,
                    window: 8,
                    embed: 32,
                    hidden: 256,
                },
                64,
                32,
                4,
                12,
            ),
        };
        let mut rng = Rng64::seed_from_u64(0);
        let model = TinyLm::random(spec, &mut rng)?;
        let sequence = |rng: &mut Rng64| {
            let tokens: Vec<usize> = (0..prompt + response)
                .map(|_| rng.random_range(1..spec.vocab))
                .collect();
            Sequence::new(&tokens[..prompt], &tokens[prompt..])
        };
        let sft = (0..sft).map(|_| sequence(&mut rng)).collect();
        let pairs = (0..pairs)
            .map(|_| {
                let plus = sequence(&mut rng);
                let minus = sequence(&mut rng);
                (plus.clone(), Sequence::new(plus.prompt(), minus.response()))
            })
            .collect();
        Ok(LmBatch {
            model,
            sft,
            pairs,
            beta: 0.1,
            eta: 0.01,
        })
    }
}

impl LmBatch {
    /// The SFT update: cross-entropy on every sequence's response.
    pub fn sft_update(&self) -> (Vec<Sequence>, Batch) {
        let parts = self
            .sft
            .iter()
            .map(|x| Box::new(CrossEntropy::sequence(x.response())) as Box<dyn Objective>)
            .collect();
        (self.sft.clone(), Batch(parts))
    }

    /// The DPO update: every pair, with the model itself as the frozen reference.
    pub fn dpo_update(&self) -> (Vec<Sequence>, Batch) {
        let mut inputs = Vec::new();
        let parts = self
            .pairs
            .iter()
            .map(|(plus, minus)| {
                let pair = (plus.response().to_vec(), minus.response().to_vec());
                let (chi, objective) =
                    update::pair(&self.model, plus.prompt(), pair, PairLoss::Dpo, self.beta);
                inputs.extend(chi);
                Box::new(objective) as Box<dyn Objective>
            })
            .collect();
        (inputs, Batch(parts))
    }

    /// The workload as JSON, for a peer implementation to time on the same numbers: the
    /// model ([`lm_model_json`]), the SFT sequences, the DPO pairs, β and η, and what the
    /// crate computes for them (each sequence's `log π(y | χ)`, and each step's loss and
    /// flat parameter gradient), to check against before timing.
    ///
    /// # Errors
    /// If a gradient cannot be computed (never for a built workload).
    pub fn to_json(&self) -> Result<serde_json::Value> {
        use serde_json::json;
        let sequence = |x: &Sequence| json!({"tokens": x.tokens, "prompt_len": x.prompt_len});
        let step = |(inputs, objective): (Vec<Sequence>, Batch)| -> Result<serde_json::Value> {
            let g = gradient(&self.model, &inputs, &objective)?;
            Ok(json!({"loss": g.loss, "grad": g.grad.as_slice()}))
        };
        let log_probs: Vec<f64> = self
            .sft
            .iter()
            .map(|x| sequence_log_prob(&self.model.logits(x), x.response()))
            .collect();
        Ok(json!({
            "model": lm_model_json(&self.model),
            "sft": self.sft.iter().map(sequence).collect::<Vec<_>>(),
            "pairs": self.pairs.iter().map(|(a, b)| json!({"chosen": sequence(a), "rejected": sequence(b)})).collect::<Vec<_>>(),
            "beta": self.beta,
            "eta": self.eta,
            "check": {
                "sft_log_probs": log_probs,
                "sft": step(self.sft_update())?,
                "dpo": step(self.dpo_update())?,
            },
        }))
    }

    /// Scored tokens per step: response positions of the SFT batch and of the DPO pairs.
    pub fn tokens(&self) -> (usize, usize) {
        let count = |xs: &mut dyn Iterator<Item = &Sequence>| xs.map(|x| x.response().len()).sum();
        (
            count(&mut self.sft.iter()),
            count(&mut self.pairs.iter().flat_map(|(a, b)| [a, b])),
        )
    }
}

/// Timings of one SFT step and one DPO step (gradient and SGD update) on an LM workload.
#[derive(Clone, Debug)]
pub struct LmBench {
    /// The workload timed.
    pub workload: LmWorkload,
    /// Median seconds of one SFT step.
    pub sft_seconds: f64,
    /// Median seconds of one DPO step.
    pub dpo_seconds: f64,
    /// Scored tokens per SFT step and per DPO step.
    pub tokens: (usize, usize),
}

/// Times one SFT and one DPO step of `workload` (gradient and SGD update), each on its
/// own trainer started from the workload's model.
pub fn bench_lm(workload: LmWorkload, reps: usize) -> Result<LmBench> {
    let batch = workload.build()?;
    let time_step = |(inputs, objective): (Vec<Sequence>, Batch)| -> Result<f64> {
        let mut trainer = Trainer::new(batch.model.clone(), batch.eta)?;
        trainer.step(&inputs, &objective, &mut [])?;
        Ok(median_seconds(reps, || {
            let step = trainer.step(&inputs, &objective, &mut []);
            step.expect("the same step succeeded before timing");
        }))
    };
    Ok(LmBench {
        workload,
        sft_seconds: time_step(batch.sft_update())?,
        dpo_seconds: time_step(batch.dpo_update())?,
        tokens: batch.tokens(),
    })
}

impl std::fmt::Display for LmBench {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "tiny LM, workload {:?}", self.workload)?;
        for (name, seconds, tokens) in [
            ("SFT", self.sft_seconds, self.tokens.0),
            ("DPO", self.dpo_seconds, self.tokens.1),
        ] {
            writeln!(
                f,
                "  {name} step: {:9.3} ms  {:>5} scored tokens  {:10.0} tokens/s",
                seconds * 1e3,
                tokens,
                tokens as f64 / seconds
            )?;
        }
        Ok(())
    }
}
