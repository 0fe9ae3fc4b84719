//! The tiny-LM workloads: one SFT step and one DPO step (gradient and SGD update), with
//! the crate's `exp`/`tanh` against libm's; the JVP of `log π` along one and two
//! directions against the faster of the crate's two forward passes, with the products'
//! executed rate and the least a direction can add at the GEMM rate; and the workload as
//! JSON for a peer implementation to time on the same numbers.
//!
//! One concept at 489 lines, kept whole: every workload here times the same model and
//! batch against a baseline run in the same call, and they share its setup.

use nalgebra::DVector;
use rand::{RngExt, SeedableRng};

use faer::Par;

use super::{GemmBench, median_pair, medians_in_turn};
use crate::Rng64;
use crate::decomposition::{gradient, predict};
use crate::error::{Error, Result};
use crate::export::lm_model_json;
use crate::lm::step::{distinct_positions, forward_flops, gradient_flops, tangent_flops};
use crate::lm::{LmSpec, Sequence, TinyLm, update};
use crate::model::Model;
use crate::numerics::{log_softmax_columns, sequence_log_prob};
use crate::objective::{Batch, CrossEntropy, Objective, PairLoss};
use crate::trainer::Trainer;

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
        let workloads = [
            ("gallery", LmWorkload::Gallery),
            ("large", LmWorkload::Large),
        ];
        crate::error::pick("LM workload", name, &workloads)
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
                    vocab: crate::language::Sizes::default().vocab(),
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
                "jvp": jvp_check(&self.model, &self.sft, &self.jvp_direction()?),
            },
        }))
    }

    /// The direction of the JVP bench: the DPO step's parameter change `dθ = −η ∇L`.
    ///
    /// # Errors
    /// If the gradient cannot be computed (never for a built workload).
    pub fn jvp_direction(&self) -> Result<DVector<f64>> {
        self.step_of(self.dpo_update())
    }

    /// The parameter change `dθ = −η ∇L` of one SGD step on `(inputs, objective)`.
    fn step_of(&self, (inputs, objective): (Vec<Sequence>, Batch)) -> Result<DVector<f64>> {
        Ok(gradient(&self.model, &inputs, &objective)?.grad * -self.eta)
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

/// What the JVP bench computes, to check a peer against: per probe sequence, the
/// directional derivative of `log π(y | χ)` along `dθ` (the first-order change's sum
/// over the response's tokens).
fn jvp_check(model: &TinyLm, probes: &[Sequence], dtheta: &DVector<f64>) -> Vec<f64> {
    let (_, changes) = predict(model, probes, std::slice::from_ref(dtheta));
    (changes[0].iter())
        .zip(probes)
        .map(|(change, x)| {
            let response = x.response().iter().enumerate();
            response.map(|(l, &t)| change[(t, l)]).sum()
        })
        .collect()
}

/// The JVP bench: the first-order change `A J dθ` of `log π` on every position of the
/// SFT sequences along the DPO step's direction ([`predict`], the unit the attribution
/// and the lens repeat), against the faster of the crate's two forward passes to `log π`
/// over the same sequences: `predict` along no direction (the JVP's own path: distinct
/// contexts, copies and log-softmax on two threads; the faster on large batches) and
/// `logits_batch` then a log-softmax per sequence (less fixed cost; the faster on small
/// ones); and along two directions at once (the DPO and the SFT step's), which share the
/// forward pass as the attribution's terms do.
#[derive(Clone, Debug)]
pub struct JvpBench {
    /// The workload timed.
    pub workload: LmWorkload,
    /// Median seconds of the JVP.
    pub jvp_seconds: f64,
    /// Median seconds of the JVP along two directions in one call.
    pub two_seconds: f64,
    /// Median seconds of the faster forward pass ([`JvpBench::forwards`]).
    pub forward_seconds: f64,
    /// Median seconds of the two forward passes: `predict` along no direction, and
    /// `logits_batch` then a log-softmax per sequence.
    pub forwards: [f64; 2],
    /// Scored positions of the probes.
    pub positions: usize,
    /// The flops the products of the JVP execute: its forward pass's and each
    /// direction's ([`forward_flops`], [`tangent_flops`], on the probes' distinct
    /// contexts).
    pub flops: (f64, f64),
    /// faer's two-thread GEMM rate in GFLOP/s, measured beside the JVP.
    pub gemm_two_threads: f64,
}

/// Times the JVP along one and along two directions, and the two forward passes, of
/// `workload`, in turn, `reps` times each.
///
/// # Errors
/// If the workload cannot be built.
pub fn bench_jvp(workload: LmWorkload, reps: usize) -> Result<JvpBench> {
    let batch = workload.build()?;
    let directions = [batch.jvp_direction()?, batch.step_of(batch.sft_update())?];
    let (model, probes) = (&batch.model, &batch.sft);
    let jvp = |k: usize| {
        std::hint::black_box(predict(model, probes, &directions[..k]));
    };
    let mut logits_then_softmax = || {
        let logits = model.logits_batch(probes);
        std::hint::black_box(logits.iter().map(log_softmax_columns).count());
    };
    let [jvp_seconds, two_seconds, through_predict, through_logits] = medians_in_turn(
        reps,
        [
            &mut || jvp(1),
            &mut || jvp(2),
            &mut || jvp(0),
            &mut logits_then_softmax,
        ],
    );
    let gemm = GemmBench::new();
    let (_, gemm_seconds) = median_pair(reps, || jvp(1), || gemm.run(Par::rayon(2)));
    let spec = model.spec();
    let distinct = distinct_positions(model, probes);
    Ok(JvpBench {
        workload,
        jvp_seconds,
        two_seconds,
        forward_seconds: through_predict.min(through_logits),
        forwards: [through_predict, through_logits],
        positions: batch.tokens().0,
        flops: (forward_flops(spec, distinct), tangent_flops(spec, distinct)),
        gemm_two_threads: gemm.flops / gemm_seconds / 1e9,
    })
}

impl std::fmt::Display for JvpBench {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "tiny LM, workload {:?}: the first-order change of log π on {} positions along one direction",
            self.workload, self.positions
        )?;
        writeln!(f, "  JVP:          {:9.3} ms", self.jvp_seconds * 1e3)?;
        let [through_predict, through_logits] = self.forwards.map(|s| s * 1e3);
        writeln!(
            f,
            "  forward pass: {:9.3} ms, the faster of predict along no direction ({through_predict:.4} ms) and logits_batch then log-softmax ({through_logits:.4} ms)",
            self.forward_seconds * 1e3
        )?;
        writeln!(
            f,
            "  ratio: the JVP costs {:.2} forward passes",
            self.jvp_seconds / self.forward_seconds
        )?;
        let further = self.two_seconds - self.jvp_seconds;
        writeln!(
            f,
            "  two directions in one call: {:.3} ms; each further direction adds {:.3} ms, {:.2} forward passes",
            self.two_seconds * 1e3,
            further * 1e3,
            further / self.forward_seconds
        )?;
        let (forward, direction) = self.flops;
        let rate = (forward + direction) / self.jvp_seconds / 1e9;
        writeln!(
            f,
            "  the JVP executes {:.2} MFLOP in its products ({:.2} forward, {:.2} the direction's): {rate:.1} GFLOP/s, {:.0}% of the GEMM rate",
            (forward + direction) / 1e6,
            forward / 1e6,
            direction / 1e6,
            100.0 * rate / self.gemm_two_threads
        )?;
        let floor = direction / (self.gemm_two_threads * 1e9);
        writeln!(
            f,
            "  the direction's products alone, at the GEMM rate: {:.3} ms, {:.2} forward passes (the least a direction can add)",
            floor * 1e3,
            floor / self.forward_seconds
        )?;
        writeln!(
            f,
            "  dense f64 GEMM {n}×{n}, measured beside the JVP: faer {:.1} GFLOP/s on 2 threads",
            self.gemm_two_threads,
            n = super::GEMM_SIZE
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
    /// The flops the products of one SFT and one DPO step execute
    /// ([`gradient_flops`]).
    pub flops: (f64, f64),
    /// faer's two-thread GEMM rate in GFLOP/s, measured between the steps: the higher
    /// of the two medians (one beside each step), so the share is not flattered.
    pub gemm_two_threads: f64,
    /// The crate's `exp` and `tanh` against libm's on the SFT step's logits.
    pub activations: ActivationBench,
}

/// The crate's `exp` and `tanh` ([`crate::vecmath`]) against libm's, each applied to a
/// fresh copy of the same values (the time of the copy not counted).
#[derive(Clone, Copy, Debug)]
pub struct ActivationBench {
    /// How many values each call maps.
    pub entries: usize,
    /// The lanes the crate's functions ran in ([`crate::vecmath::lanes`]).
    pub lanes: usize,
    /// Median seconds of `exp`: the crate's, libm's.
    pub exp: [f64; 2],
    /// Median seconds of `tanh`: the crate's, libm's.
    pub tanh: [f64; 2],
}

/// Times the crate's `exp` and `tanh` and libm's on `values`, in turn, `reps` times each.
fn bench_activations(values: &[f64], reps: usize) -> ActivationBench {
    let functions: [fn(&mut [f64]); 4] = [
        crate::vecmath::exp,
        |x| x.iter_mut().for_each(|v| *v = v.exp()),
        crate::vecmath::tanh,
        |x| x.iter_mut().for_each(|v| *v = v.tanh()),
    ];
    let mut buffer = values.to_vec();
    let mut times: [Vec<f64>; 4] = Default::default();
    for _ in 0..reps.max(1) {
        for (f, t) in functions.iter().zip(&mut times) {
            buffer.copy_from_slice(values);
            let start = std::time::Instant::now();
            f(&mut buffer);
            t.push(start.elapsed().as_secs_f64());
            std::hint::black_box(&buffer);
        }
    }
    let [exp, libm_exp, tanh, libm_tanh] = times.map(|mut t| super::median(&mut t));
    ActivationBench {
        entries: values.len(),
        lanes: crate::vecmath::lanes(),
        exp: [exp, libm_exp],
        tanh: [tanh, libm_tanh],
    }
}

/// Times one SFT and one DPO step of `workload` (gradient and SGD update), each on its
/// own trainer started from the workload's model, alternating with the square GEMM
/// that measures the machine's rate, so that both see the same load.
pub fn bench_lm(workload: LmWorkload, reps: usize) -> Result<LmBench> {
    let batch = workload.build()?;
    let gemm = GemmBench::new();
    let mut gemm_seconds = Vec::new();
    let mut time_step = |(inputs, objective): (Vec<Sequence>, Batch)| -> Result<f64> {
        let mut trainer = Trainer::new(batch.model.clone(), batch.eta)?;
        trainer.step(&inputs, &objective, &mut [])?;
        let step = || {
            let step = trainer.step(&inputs, &objective, &mut []);
            step.expect("the same step succeeded before timing");
        };
        let (seconds, gemm) = median_pair(reps, step, || gemm.run(Par::rayon(2)));
        gemm_seconds.push(gemm);
        Ok(seconds)
    };
    let (sft_seconds, dpo_seconds) = (
        time_step(batch.sft_update())?,
        time_step(batch.dpo_update())?,
    );
    let (sft, dpo) = batch.tokens();
    let spec = batch.model.spec();
    gemm_seconds.sort_by(f64::total_cmp);
    let logits: Vec<f64> = (batch.model.logits_batch(&batch.sft).iter())
        .flat_map(|z| z.iter().copied())
        .collect();
    Ok(LmBench {
        workload,
        sft_seconds,
        dpo_seconds,
        tokens: (sft, dpo),
        flops: (gradient_flops(spec, sft), gradient_flops(spec, dpo)),
        gemm_two_threads: gemm.flops / gemm_seconds[0] / 1e9,
        activations: bench_activations(&logits, reps),
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
        for (name, seconds, flops) in [
            ("SFT", self.sft_seconds, self.flops.0),
            ("DPO", self.dpo_seconds, self.flops.1),
        ] {
            let rate = flops / seconds / 1e9;
            writeln!(
                f,
                "  {name} step executes {:.2} MFLOP in its products: {rate:.1} GFLOP/s, {:.0}% of the GEMM rate",
                flops / 1e6,
                100.0 * rate / self.gemm_two_threads
            )?;
        }
        writeln!(
            f,
            "  dense f64 GEMM {n}×{n}, measured between the steps: faer {:.1} GFLOP/s on 2 threads",
            self.gemm_two_threads,
            n = super::GEMM_SIZE
        )?;
        let a = self.activations;
        writeln!(
            f,
            "  exp / tanh on the SFT step's {} logits, in {} lanes: {:.1} / {:.1} µs, {:.1}× / {:.1}× faster than libm",
            a.entries,
            a.lanes,
            a.exp[0] * 1e6,
            a.tanh[0] * 1e6,
            a.exp[1] / a.exp[0],
            a.tanh[1] / a.tanh[0]
        )
    }
}
