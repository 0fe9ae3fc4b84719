//! The paper's Figure 1 and Appendix C.1 (Figure 7) on real handwritten digits.
//!
//! A tanh MLP `64 → hidden → 10` is trained by SGD (one image per step) on a stratified
//! 75% of the embedded UCI digits. Observers record, at every step, the predicted
//! (`−η A K G`) and actual `Δ log π` on a probe set of held-out images, split by the
//! class of the update example (Figure 1c); at checkpoints the class-pair means of
//! `‖K(x_o, x_u)‖_F` over the probe set (Figure 7); and the mean `π` per true class
//! on the held-out images early in training and at the end (Figure 1d). Figure 1b is
//! one step on a "4" taken from the early checkpoint, observed on another 4, on the
//! image of another class with the largest `‖K‖_F` and on the one with the smallest.
//!
//! This module holds the configuration and the run; `observers` what is recorded while
//! training, `claims` the figure's claims, and `tables` the CSV files.

use nalgebra::{DMatrix, DVector};
use rand::SeedableRng;
use rand::seq::SliceRandom;

use serde::{Deserialize, Serialize};

mod claims;
mod observers;
mod tables;

use observers::{Checkpoint, EntkObserver, InfluenceObserver};
pub use tables::{ACCUMULATED_HEADER, ENTK_HEADER, HEATMAP_HEADER, ONE_STEP_HEADER, PIXELS_HEADER};

use super::{Claim, Experiment, Key, Range, Settings, Table, Valid};
use crate::Rng64;
use crate::decomposition::{Observation, one_step};
use crate::digits::{CLASSES, Digits};
use crate::error::{Error, Result};
use crate::mlp::kernel::entk_layerwise;
use crate::mlp::{Activation, Mlp};
use crate::model::Model;
use crate::numerics::softmax_columns;
use crate::objective::CrossEntropy;
use crate::trainer::{Observer, Trainer};

/// The gallery's seed.
pub const DEFAULT_SEED: u64 = 2025;

/// The class whose update example Figure 1(b) follows.
pub const UPDATE_CLASS: usize = 4;

/// Sizes and schedule of one run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Width of the hidden layer.
    pub hidden: usize,
    /// Training learning rate.
    pub eta: f64,
    /// Passes over the training split.
    pub epochs: usize,
    /// Held-out probe images per class (Figure 1c and the eNTK track).
    pub probes_per_class: usize,
    /// Steps between eNTK checkpoints.
    pub entk_every: usize,
    /// The step of the "early" heatmap and of Figure 1(b)'s model.
    pub early_step: usize,
    /// Learning rate of Figure 1(b)'s single step.
    pub one_step_eta: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            hidden: 32,
            eta: 0.05,
            epochs: 4,
            probes_per_class: 10,
            entk_every: 250,
            early_step: 150,
            one_step_eta: 0.05,
        }
    }
}

/// The upper ends of the keys whose cost grows with their value, derived from the time
/// they imply: each, with the other keys at their defaults, takes about half a minute a
/// seed on one core of a laptop (measured: 50 epochs 17 s, hidden 1024 31 s; hidden 4096
/// took 130 s).
pub const MAX_HIDDEN: i64 = 1024;
/// See [`MAX_HIDDEN`].
pub const MAX_EPOCHS: i64 = 50;

impl Settings for Config {
    const MEMORY_KEYS: &'static str = "hidden and probes_per_class";

    /// The probes' full eNTK (`8·(N·V)²`, with `N = 10·probes_per_class` probes and
    /// `V = 10` classes), its stacked factors and GEMM buffers (`32·N·V·h`), the model and
    /// its copies in a step (`64·(64 + 10)·h`), and the packing workspace faer's GEMM
    /// keeps on each of the kernel's two threads (up to 64 MiB: the allocation that
    /// aborted a run under `ulimit -v` before this estimate existed).
    fn memory_bytes(&self) -> Option<u128> {
        let nv = (self.probes_per_class as u128).checked_mul(100)?;
        let h = self.hidden as u128;
        8u128
            .checked_mul(nv.checked_mul(nv)?)?
            .checked_add(32u128.checked_mul(nv)?.checked_mul(h)?)?
            .checked_add(64 * 74 * h)?
            .checked_add(2 * crate::mlp::kernel::GEMM_WORKSPACE_BYTES)
    }

    fn keys() -> Vec<Key> {
        vec![
            Key::new(
                "hidden",
                "width of the tanh MLP's hidden layer",
                Range::Int(1, MAX_HIDDEN),
            ),
            Key::new(
                "eta",
                "SGD learning rate of training",
                Range::positive(10.0),
            ),
            Key::new(
                "epochs",
                "passes over the training split",
                Range::Int(1, MAX_EPOCHS),
            ),
            Key::new(
                "probes_per_class",
                "held-out probe images per class (influence and eNTK track; at least 2, so that a class's mean eNTK over distinct images of it is defined)",
                Range::Int(2, 50),
            ),
            Key::new(
                "entk_every",
                "SGD steps between eNTK checkpoints",
                Range::Int(1, 1_000_000),
            ),
            Key::new(
                "early_step",
                "step of the early heatmap and of the one-step figure's model",
                Range::Int(1, 1_000_000),
            ),
            Key::new(
                "one_step_eta",
                "learning rate of the one-step figure",
                Range::positive(10.0),
            ),
        ]
    }
}

/// One observed image of Figure 1(b).
#[derive(Clone, Debug)]
pub struct ObservedImage {
    /// `same class`, `similar` or `dissimilar`.
    pub kind: &'static str,
    /// The 64 pixels.
    pub image: DVector<f64>,
    /// Its true class.
    pub label: usize,
    /// `‖K(x_o, x_u)‖_F`.
    pub k_fro: f64,
    /// The decomposition of the step on this image (`V × 1` matrices).
    pub observation: Observation,
}

/// Figure 1(b): one step on an update image of [`UPDATE_CLASS`].
#[derive(Clone, Debug)]
pub struct OneStepFigure {
    /// The 64 pixels of `x_u`.
    pub update_image: DVector<f64>,
    /// The step's learning rate.
    pub eta: f64,
    /// `π(x_u)` before and after the step.
    pub update_pi: (Vec<f64>, Vec<f64>),
    /// Same class, most similar, least similar.
    pub observed: Vec<ObservedImage>,
}

/// Everything one run measured.
#[derive(Clone, Debug)]
pub struct DigitsResult {
    /// The configuration run.
    pub config: Config,
    /// The seed of the split, the initialisation and the schedule.
    pub seed: u64,
    /// SGD steps taken.
    pub steps: usize,
    /// Figure 1(b).
    pub one_step: OneStepFigure,
    /// Accumulated predicted `Δ log π`, `[u][o][k]` flattened as `(u·10 + o)·10 + k`:
    /// learning class `u` moved the log-probability of class `k` on probe images of
    /// class `o` (mean over those images, summed over steps).
    pub accumulated_predicted: Vec<f64>,
    /// The same for the actual change.
    pub accumulated_actual: Vec<f64>,
    /// Mean `π` per true class on held-out images: early and final (rows = true class).
    pub heatmap_early: DMatrix<f64>,
    /// The same after the last step.
    pub heatmap_final: DMatrix<f64>,
    /// `(step, 10 × 10 matrix of mean ‖K(x_o, x_u)‖_F)`, rows `u`, columns `o`.
    pub entk: Vec<(usize, DMatrix<f64>)>,
    /// Accuracy of the final model on the held-out images.
    pub test_accuracy: f64,
}

/// Mean `π` per true class (rows) over `images`.
pub fn mean_pi_heatmap(model: &Mlp, images: &[DVector<f64>], labels: &[usize]) -> DMatrix<f64> {
    let mut sum = DMatrix::zeros(CLASSES, CLASSES);
    let mut count = [0.0; CLASSES];
    for (x, &y) in images.iter().zip(labels) {
        let pi = softmax_columns(&model.logits(x));
        let mut row = sum.row_mut(y);
        row += pi.transpose();
        count[y] += 1.0;
    }
    for (y, c) in count.iter().enumerate() {
        sum.row_mut(y).unscale_mut(f64::max(*c, 1.0));
    }
    sum
}

fn accuracy(model: &Mlp, images: &[DVector<f64>], labels: &[usize]) -> f64 {
    let correct = images
        .iter()
        .zip(labels)
        .filter(|&(x, &y)| model.logits(x).column(0).argmax().0 == y)
        .count();
    correct as f64 / images.len() as f64
}

/// Checks that the keys that must fall inside the run do, for a run of `steps` steps:
/// `early_step` before the last step, and an eNTK checkpoint at or after it that is not
/// the last one (else Fig. 7's stability would compare the last checkpoint with itself).
///
/// # Errors
/// Naming the keys and the run's length.
fn check_fits(config: &Config, steps: usize) -> Result<()> {
    let (early, every) = (config.early_step, config.entk_every);
    let run = format!("the run's {steps} steps ({} epochs)", config.epochs);
    if early >= steps {
        return Err(Error::InvalidArgument(format!(
            "early_step = {early} is not before the end of {run}"
        )));
    }
    if early.div_ceil(every) * every >= steps {
        return Err(Error::InvalidArgument(format!(
            "entk_every = {every} leaves no eNTK checkpoint between early_step = {early} and the end of {run}; lower one of them"
        )));
    }
    Ok(())
}

/// Figure 1(b) on `model`: the first training image of [`UPDATE_CLASS`] is learned for
/// one step; it is observed on the first held-out image of the same class and on the
/// held-out images of other classes with the largest and smallest `‖K(x_o, x_u)‖_F`.
fn one_step_figure(
    model: &Mlp,
    x_u: &DVector<f64>,
    test: &[(DVector<f64>, usize)],
    eta: f64,
) -> Result<OneStepFigure> {
    let k_fro = |x: &DVector<f64>| entk_layerwise(model, x, x_u).norm();
    let same = test
        .iter()
        .find(|(_, y)| *y == UPDATE_CLASS)
        .expect("a held-out image of every class");
    let others: Vec<(f64, &(DVector<f64>, usize))> = test
        .iter()
        .filter(|(_, y)| *y != UPDATE_CLASS)
        .map(|t| (k_fro(&t.0), t))
        .collect();
    let similar = others
        .iter()
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .expect("other classes");
    let dissimilar = others
        .iter()
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .expect("other classes");
    let chosen = [
        ("same class", same),
        ("similar", similar.1),
        ("dissimilar", dissimilar.1),
    ];
    let mut inputs: Vec<DVector<f64>> = chosen.iter().map(|c| c.1.0.clone()).collect();
    inputs.push(x_u.clone());
    let step = one_step(
        model,
        std::slice::from_ref(x_u),
        &CrossEntropy::positive(UPDATE_CLASS),
        &inputs,
        eta,
    )?;
    let own = &step.observed[3];
    let pi = |lp: &DMatrix<f64>| lp.iter().map(|v| v.exp()).collect::<Vec<_>>();
    let observed = chosen
        .iter()
        .zip(&step.observed)
        .map(|((kind, (image, label)), obs)| ObservedImage {
            kind,
            image: image.clone(),
            label: *label,
            k_fro: k_fro(image),
            observation: obs.clone(),
        })
        .collect();
    Ok(OneStepFigure {
        update_image: x_u.clone(),
        eta,
        update_pi: (pi(&own.log_pi), pi(&(&own.log_pi + &own.actual))),
        observed,
    })
}

/// Figure 1 b–d and Figure 7 on the UCI digits.
pub struct DigitsExperiment;

impl Experiment for DigitsExperiment {
    type Config = Config;
    type Data = DigitsResult;

    fn run(config: &Valid<Config>, seed: u64) -> Result<DigitsResult> {
        run(**config, seed)
    }

    fn claims(data: &DigitsResult) -> Vec<Claim> {
        data.claims()
    }

    fn tables(data: &DigitsResult) -> Vec<Table> {
        vec![
            Table::new("digits_heatmap", HEATMAP_HEADER, data.heatmap_rows()),
            Table::new("digits_entk", ENTK_HEADER, data.entk_rows()),
            Table::new("digits_one_step", ONE_STEP_HEADER, data.one_step_rows()),
            Table::new("digits_one_step_pixels", PIXELS_HEADER, data.pixel_rows()),
            Table::new(
                "digits_accumulated",
                ACCUMULATED_HEADER,
                data.accumulated_rows(),
            ),
            Table::new("digits_summary", "metric,value", data.summary_rows()),
        ]
    }
}

fn run(config: Config, seed: u64) -> Result<DigitsResult> {
    let data = Digits::embedded()?;
    let mut rng = Rng64::seed_from_u64(seed);
    let (train, test) = data.stratified_split(0.25, &mut rng);
    let model = Mlp::random(
        &[crate::digits::PIXELS, config.hidden, CLASSES],
        Activation::Tanh,
        true,
        &mut rng,
    )?;
    let labels = &data.labels;
    let probe_idx: Vec<usize> = (0..CLASSES)
        .flat_map(|c| {
            test.iter()
                .copied()
                .filter(move |&i| labels[i] == c)
                .take(config.probes_per_class)
        })
        .collect();
    let probes: Vec<DVector<f64>> = probe_idx.iter().map(|&i| data.images[i].clone()).collect();
    let probe_labels: Vec<usize> = probe_idx.iter().map(|&i| data.labels[i]).collect();
    let mut schedule = Vec::with_capacity(train.len() * config.epochs);
    for _ in 0..config.epochs {
        let mut epoch = train.clone();
        epoch.shuffle(&mut rng);
        schedule.extend(epoch);
    }
    check_fits(&config, schedule.len())?;
    let update_labels: Vec<usize> = schedule.iter().map(|&i| data.labels[i]).collect();

    let mut influence = InfluenceObserver {
        probes: &probes,
        probe_labels: &probe_labels,
        update_labels: &update_labels,
        predicted: vec![0.0; CLASSES.pow(3)],
        actual: vec![0.0; CLASSES.pow(3)],
    };
    let mut entk = EntkObserver {
        probes: &probes,
        probe_labels: &probe_labels,
        every: config.entk_every,
        track: Vec::new(),
    };
    let mut early = Checkpoint {
        at: config.early_step,
        model: None,
    };
    let mut trainer = Trainer::new(model, config.eta)?;
    trainer.start(&mut [&mut entk])?;
    for &i in &schedule {
        let observers: &mut [&mut dyn Observer<Mlp>] = &mut [&mut influence, &mut entk, &mut early];
        trainer.step(
            std::slice::from_ref(&data.images[i]),
            &CrossEntropy::positive(data.labels[i]),
            observers,
        )?;
    }
    if entk.track.last().map(|t| t.0) != Some(trainer.steps()) {
        entk.record(trainer.steps(), &trainer.model)?;
    }
    let early_model = early.model.unwrap_or_else(|| trainer.model.clone());
    let test_images: Vec<DVector<f64>> = test.iter().map(|&i| data.images[i].clone()).collect();
    let test_labels: Vec<usize> = test.iter().map(|&i| data.labels[i]).collect();
    let x_u = train
        .iter()
        .find(|&&i| data.labels[i] == UPDATE_CLASS)
        .map(|&i| data.images[i].clone())
        .expect("a training 4");
    let held_out: Vec<(DVector<f64>, usize)> = test_images
        .iter()
        .cloned()
        .zip(test_labels.iter().copied())
        .collect();
    Ok(DigitsResult {
        config,
        seed,
        steps: trainer.steps(),
        one_step: one_step_figure(&early_model, &x_u, &held_out, config.one_step_eta)?,
        accumulated_predicted: influence.predicted,
        accumulated_actual: influence.actual,
        heatmap_early: mean_pi_heatmap(&early_model, &test_images, &test_labels),
        heatmap_final: mean_pi_heatmap(&trainer.model, &test_images, &test_labels),
        entk: entk.track,
        test_accuracy: accuracy(&trainer.model, &test_images, &test_labels),
    })
}
