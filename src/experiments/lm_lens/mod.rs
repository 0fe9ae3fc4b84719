//! How good is the paper's lens? Its approximations of `K` against the exact kernel on
//! the tiny LM (App. C.2, Fig. 8; Fig. 7's premise).
//!
//! Each [`Signal`] trains from its start (SFT signals from the base model, DPO from the
//! SFT checkpoint) for `epochs` passes over the training prompts. After every update, on
//! the first `probes_per_family` probes of every sequence family, the observer takes the
//! [`LensPoint`] ([`crate::lens`] for the formulas): the paper's LBK from the actual
//! change, the LBK of the first-order change (at most `η²‖K‖²_F`), SignDelta twice (over
//! the vocabulary, as the paper's equation writes it, and on the probed response, as the
//! authors' code measures it) and the exact `‖K‖²_F`, each a mean over the family's probes. It also accumulates, per family and
//! response position, the change of `log π` of the response's tokens that the full, the
//! last-layer and the frozen kernel predict, and the actual one. At every epoch's end, on
//! each family's first probe, it holds the last-layer kernel against the full one
//! ([`LastLayerPoint`]): their sizes and the rank correlation of their entries.

use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use nalgebra::DMatrix;

mod claims;
mod tables;

use crate::Rng64;
use crate::error::{Error, Result};
use crate::experiments::lm_measures::{LensPoint, lens_points, stacked_residuals};
use crate::experiments::lm_world::{
    Checkpoint, LmConfig, SEEDS, Signal, check_scaled_rates, checkpoint, per_seed, seeds_key,
};
use crate::experiments::{Claim, Experiment, Key, Range, Table, Valid};
use crate::language::{ANSWER_LEN, Family};
use crate::lens::Gap;
use crate::lm::{Sequence, TinyLm};
use crate::stats::spearman;
use crate::trainer::{Observer, StepEvent, Trainer};

/// The world, how long and how fast each signal trains, and how many probes it is
/// measured on.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// The language-model world.
    #[serde(flatten)]
    pub world: LmConfig,
    /// Passes over the training prompts that each signal trains for.
    pub epochs: usize,
    /// Learning rates of the signals, relative to the world's SFT and DPO rates.
    pub eta_scale: f64,
    /// Probes of every family the lens is measured on, after every update.
    pub probes_per_family: usize,
    /// How many seeds one run covers: `seed, seed + 1, …` ([`seeds_key`]).
    pub seeds: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            world: LmConfig::default(),
            epochs: 4,
            eta_scale: 0.2,
            probes_per_family: 2,
            seeds: SEEDS,
        }
    }
}

impl Config {
    /// About how many multiply-adds the lens takes: per update of every signal and seed,
    /// two kernels (the current and the frozen) between every measured probe's `4V`
    /// outputs and the update's up to `8V`. Each entry costs a sum over the hidden layer
    /// (`2h`) and the embedding product (`2W·d`), plus the slot pairs' column sums spread
    /// over the `V` entries of a row (`W²·d / V`) and a fixed cost
    /// ([`entk_lm_structured`](crate::lm::kernel::entk_lm_structured)).
    pub fn lens_work(&self) -> f64 {
        let sizes = self.world.language;
        let v = sizes.vocab() as f64;
        let (w, d, h) = (
            self.world.model.window as f64,
            self.world.model.embed as f64,
            self.world.model.hidden as f64,
        );
        let train = sizes.train_entities() as f64;
        let updates = 6.0 * self.epochs as f64 * train * self.seeds as f64;
        let probes = 10.0 * (self.probes_per_family as f64).min(train);
        let per_entry = 2.0 * h + 2.0 * w * d + w * w * d / v + ENTRY_COST;
        updates * probes * 2.0 * (4.0 * v) * (8.0 * v) * per_entry
    }
}

/// The most lens work a run may take ([`Config::lens_work`]): about 15 s for the whole
/// run, training included, on a 2-core machine. Measured there (`/usr/bin/time`, one
/// process per run): the defaults (work 4.1e11) take 5.7 s and `seeds = 17` (1.4e12)
/// 18.3 s, so a run takes about 1.4e-11 s per unit of work, pre-training and SFT included,
/// since they grow with the seeds as the lens does. A slower machine takes longer in
/// proportion.
pub const MAX_LENS_WORK: f64 = 1.1e12;

/// The fixed cost of a kernel entry in [`Config::lens_work`], in multiply-adds.
const ENTRY_COST: f64 = 64.0;

world_settings!(
    Config,
    [
        Key::new(
            "epochs",
            "passes over the training prompts per signal (at most 16: the lens costs two kernels per probe and update, about 1.2 s an epoch at the defaults)",
            Range::Int(1, 16),
        ),
        Key::new(
            "eta_scale",
            "learning rate of each signal relative to the world's SFT or DPO rate",
            Range::positive(10.0),
        ),
        Key::new(
            "probes_per_family",
            "probes of every family measured after every update (at most the training prompts)",
            Range::Int(1, 94),
        ),
        seeds_key(),
    ]
);

/// Which kernel predicts the accumulated change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// The exact eNTK of the current model.
    Full,
    /// The output layer's share alone, features frozen.
    LastLayer,
    /// The exact eNTK of the model the signal started from.
    Frozen,
}

impl Kernel {
    /// The three kernels, in CSV order.
    pub const ALL: [Kernel; 3] = [Kernel::Full, Kernel::LastLayer, Kernel::Frozen];

    /// The id in CSV files.
    pub fn id(self) -> &'static str {
        match self {
            Kernel::Full => "full",
            Kernel::LastLayer => "last_layer",
            Kernel::Frozen => "frozen",
        }
    }
}

/// The lens on one family after one update: means over its probes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepLens {
    /// Updates taken.
    pub step: usize,
    /// The observed family.
    pub family: Family,
    /// LBK of the actual change.
    pub lbk: f64,
    /// LBK of the first-order change.
    pub lbk_first_order: f64,
    /// SignDelta over the vocabulary, as the paper's equation writes it.
    pub sign_delta_vocabulary: f64,
    /// SignDelta on the response, `Δ log π(y | χ)` summed over its tokens, as the
    /// authors' code measures it: whether the probed response rose.
    pub sign_delta_response: f64,
    /// Exact `‖K‖²_F`.
    pub kernel_norm_sq: f64,
    /// The bound's gap in its three factors, each the mean over the family's probes of
    /// its `log10` (so they still sum to the mean gap); `None` if no probe has one.
    pub gap: Option<Gap>,
}

/// A family's change of `log π(y | χ)` accumulated from the start to `step`, as a kernel
/// predicts it and as it happened (means over the family's probes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KernelPoint {
    /// Updates taken.
    pub step: usize,
    /// The kernel.
    pub kernel: Kernel,
    /// The observed family.
    pub family: Family,
    /// The accumulated prediction.
    pub predicted: f64,
    /// The accumulated actual change.
    pub actual: f64,
}

/// The last-layer kernel against the full one on a family's first probe, at an epoch's
/// end.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LastLayerPoint {
    /// Updates taken.
    pub step: usize,
    /// The observed family.
    pub family: Family,
    /// `‖K‖²_F` of the full kernel.
    pub kernel_norm_sq: f64,
    /// `‖K‖²_F` of the last-layer kernel.
    pub last_layer_norm_sq: f64,
    /// The Spearman correlation of the two kernels' entries.
    pub entry_spearman: f64,
    /// The same over the entries where the last-layer kernel can be nonzero: a token
    /// against itself ([`token_diagonal`]).
    pub diagonal_spearman: f64,
}

impl LastLayerPoint {
    /// The two kernels of `point`, after `step` updates.
    fn new(step: usize, family: Family, point: &LensPoint, vocab: usize) -> Self {
        let (full, last) = (&point.kernel, &point.last_layer_kernel);
        LastLayerPoint {
            step,
            family,
            kernel_norm_sq: full.norm_squared(),
            last_layer_norm_sq: last.norm_squared(),
            entry_spearman: spearman(full.as_slice(), last.as_slice()),
            diagonal_spearman: spearman(&token_diagonal(full, vocab), &token_diagonal(last, vocab)),
        }
    }
}

/// The entries `K[(m·V + v, l·V + v)]` of a kernel between positions `m` and `l`: each
/// token against itself, the only entries of the last-layer kernel
/// `(h_m · h'_l + 1) I_V` that are not zero.
pub fn token_diagonal(kernel: &DMatrix<f64>, vocab: usize) -> Vec<f64> {
    let (rows, columns) = (kernel.nrows() / vocab, kernel.ncols() / vocab);
    (0..rows)
        .flat_map(|m| (0..columns).flat_map(move |l| (0..vocab).map(move |v| (m, l, v))))
        .map(|(m, l, v)| kernel[(m * vocab + v, l * vocab + v)])
        .collect()
}

/// The relative errors of the frozen kernel's accumulated prediction that are reported.
pub const FROZEN_THRESHOLDS: [f64; 3] = [0.10, 0.25, 0.50];

/// One signal trained on one seed.
#[derive(Clone, Debug)]
pub struct SignalRun {
    /// The signal.
    pub signal: Signal,
    /// The seed of its world.
    pub seed: u64,
    /// Its learning rate.
    pub eta: f64,
    /// Updates per epoch: the training prompts.
    pub epoch: usize,
    /// The lens after every update, family by family.
    pub steps: Vec<StepLens>,
    /// The accumulated predictions at the end of every epoch.
    pub kernels: Vec<KernelPoint>,
    /// The last-layer kernel against the full one at the end of every epoch.
    pub last_layer: Vec<LastLayerPoint>,
    /// Per [`FROZEN_THRESHOLDS`] entry, the first update after which the frozen kernel's
    /// accumulated prediction is that far from the exact one (`None`: never).
    pub frozen_exceeds: [Option<usize>; 3],
}

/// Every signal on every seed of a run.
#[derive(Clone, Debug)]
pub struct Lens {
    /// Seed by seed, signal by signal.
    pub runs: Vec<SignalRun>,
}

/// The accumulated per-position changes of one family: `[full, last layer, frozen,
/// actual][position]`.
type Accumulated = [[f64; ANSWER_LEN]; 4];

/// The mean of each factor of `gaps`, `None` for none.
fn mean_gap(gaps: impl Iterator<Item = Gap>) -> Option<Gap> {
    let gaps: Vec<Gap> = gaps.collect();
    let n = gaps.len() as f64;
    let mean = |f: fn(&Gap) -> f64| gaps.iter().map(f).sum::<f64>() / n;
    (!gaps.is_empty()).then(|| Gap {
        kernel: mean(|g| g.kernel),
        adaptation: mean(|g| g.adaptation),
        misalignment: mean(|g| g.misalignment),
    })
}

/// Records the lens after every update.
struct LensObserver<'a> {
    start: &'a TinyLm,
    families: Vec<(Family, Vec<Sequence>)>,
    run: SignalRun,
    accumulated: Vec<Accumulated>,
}

/// Where the actual change sits in an [`Accumulated`], after the [`Kernel::ALL`]
/// predictions.
const ACTUAL: usize = 3;

impl LensObserver<'_> {
    /// `‖frozen − exact‖ / ‖exact‖` over every family and position, once `‖exact‖`
    /// exceeds 1e-3 nats.
    fn frozen_error(&self) -> Option<f64> {
        let (mut exact, mut apart) = (0.0, 0.0);
        for a in &self.accumulated {
            for (e, f) in a[0].iter().zip(&a[2]) {
                exact += e * e;
                apart += (f - e) * (f - e);
            }
        }
        (exact.sqrt() > 1e-3).then(|| (apart / exact).sqrt())
    }

    /// The lens of one step on every family, and the accumulated changes.
    fn observe(&mut self, e: &StepEvent<'_, TinyLm>, g: &DMatrix<f64>) {
        let models = (self.start, e.before, e.after);
        for ((family, seqs), acc) in self.families.iter().zip(&mut self.accumulated) {
            let points: Vec<(LensPoint, &Sequence)> = lens_points(models, e.update, g, e.eta, seqs)
                .into_iter()
                .zip(seqs)
                .collect();
            let n = points.len() as f64;
            let mean = |f: fn(&LensPoint) -> f64| points.iter().map(|(p, _)| f(p)).sum::<f64>() / n;
            self.run.steps.push(StepLens {
                step: e.step + 1,
                family: *family,
                lbk: mean(|p| p.lbk),
                lbk_first_order: mean(|p| p.lbk_first_order),
                sign_delta_vocabulary: mean(|p| p.sign_delta_vocabulary),
                sign_delta_response: mean(|p| p.sign_delta_response),
                kernel_norm_sq: mean(|p| p.kernel.norm_squared()),
                gap: mean_gap(points.iter().filter_map(|(p, _)| p.gap)),
            });
            if (e.step + 1).is_multiple_of(self.run.epoch) {
                let vocab = e.before.spec().vocab;
                let point = LastLayerPoint::new(e.step + 1, *family, &points[0].0, vocab);
                self.run.last_layer.push(point);
            }
            for (p, o) in &points {
                let changes = [&p.first_order, &p.last_layer, &p.frozen, &p.actual];
                for (kind, change) in changes.into_iter().enumerate() {
                    for (m, &t) in o.response().iter().enumerate() {
                        acc[kind][m] += change[(t, m)] / n;
                    }
                }
            }
        }
    }
}

impl Observer<TinyLm> for LensObserver<'_> {
    fn step(&mut self, e: &StepEvent<'_, TinyLm>) -> Result<()> {
        let step = e.step + 1;
        // A step whose residuals are zero (an underflowed DPO coefficient) moves nothing
        // and has no LBK: it is left out.
        let g = stacked_residuals(e.update, e.residuals);
        if g.norm_squared() > 0.0 {
            self.observe(e, &g);
        }
        if let Some(error) = self.frozen_error() {
            for (k, &threshold) in FROZEN_THRESHOLDS.iter().enumerate() {
                if error > threshold && self.run.frozen_exceeds[k].is_none() {
                    self.run.frozen_exceeds[k] = Some(step);
                }
            }
        }
        if step.is_multiple_of(self.run.epoch) {
            for (kind, &kernel) in Kernel::ALL.iter().enumerate() {
                for ((family, _), acc) in self.families.iter().zip(&self.accumulated) {
                    self.run.kernels.push(KernelPoint {
                        step,
                        kernel,
                        family: *family,
                        predicted: acc[kind].iter().sum(),
                        actual: acc[ACTUAL].iter().sum(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// The lens of every signal of one seed.
fn signal_runs(config: &Config, seed: u64) -> Result<Vec<SignalRun>> {
    let world = &config.world;
    let Checkpoint {
        world: w,
        sft_model,
        ..
    } = checkpoint(world, seed)?;
    let language = &w.language;
    let k = config.probes_per_family.min(w.probes.len());
    let families: Vec<(Family, Vec<Sequence>)> = Family::sequences()
        .map(|f| {
            let seqs = w.probes[..k]
                .iter()
                .flat_map(|p| p.responses.iter().filter(|r| r.0 == f).map(|r| r.1.clone()))
                .collect();
            (f, seqs)
        })
        .collect();
    let mut runs = Vec::new();
    for signal in Signal::ALL {
        let (start, eta) = signal.start((&w.base, &sft_model), world);
        let eta = eta * config.eta_scale;
        let mut observer = LensObserver {
            start,
            accumulated: vec![[[0.0; ANSWER_LEN]; 4]; families.len()],
            families: families.clone(),
            run: SignalRun {
                signal,
                seed,
                eta,
                epoch: language.train.len(),
                steps: Vec::new(),
                kernels: Vec::new(),
                last_layer: Vec::new(),
                frozen_exceeds: [None; 3],
            },
        };
        let mut trainer = Trainer::new(start.clone(), eta)?;
        let mut rng = Rng64::seed_from_u64(seed ^ 0x5EED);
        let update = |&j: &usize| signal.update(language, &sft_model, world.beta, j);
        trainer.epochs(
            config.epochs,
            &language.train,
            &mut rng,
            update,
            &mut [&mut observer],
        )?;
        runs.push(observer.run);
    }
    Ok(runs)
}

/// The paper's lens against the exact kernel.
pub struct LmLens;

impl Experiment for LmLens {
    type Config = Config;
    type Data = Lens;

    fn run(config: &Valid<Config>, seed: u64) -> Result<Lens> {
        check_scaled_rates(&config.world, config.eta_scale)?;
        let work = config.lens_work();
        if work > MAX_LENS_WORK {
            return Err(Error::InvalidArgument(format!(
                "the lens would take about {work:.1e} multiply-adds, above {MAX_LENS_WORK:.1e} (about 15 s for the whole run on two cores): lower epochs, probes_per_family, seeds, language.entities, language.values, model.window, model.embed or model.hidden"
            )));
        }
        let runs = per_seed((seed, config.seeds), |seed| signal_runs(config, seed))?;
        Ok(Lens { runs })
    }

    fn claims(data: &Lens) -> Vec<Claim> {
        data.claims()
    }

    fn tables(data: &Lens) -> Vec<Table> {
        data.tables()
    }
}
