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

use nalgebra::{DMatrix, DVector};
use rand::SeedableRng;
use rand::seq::SliceRandom;

use serde::{Deserialize, Serialize};

use super::{Claim, Experiment, Key, Range, Settings, Table, Valid};
use crate::Rng64;
use crate::decomposition::{Observation, observe, one_step};
use crate::digits::{CLASSES, Digits};
use crate::error::Result;
use crate::mlp::kernel::{entk_full, entk_layerwise};
use crate::mlp::{Activation, Mlp};
use crate::model::Model;
use crate::numerics::softmax_columns;
use crate::objective::CrossEntropy;
use crate::stats::{pearson, spearman};
use crate::trainer::{Observer, StepEvent, Trainer};

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

impl Settings for Config {
    fn keys() -> Vec<Key> {
        vec![
            Key::new(
                "hidden",
                "width of the tanh MLP's hidden layer",
                Range::Int(1, 4096),
            ),
            Key::new(
                "eta",
                "SGD learning rate of training",
                Range::positive(10.0),
            ),
            Key::new(
                "epochs",
                "passes over the training split",
                Range::Int(1, 100),
            ),
            Key::new(
                "probes_per_class",
                "held-out probe images per class (influence and eNTK track)",
                Range::Int(1, 50),
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

/// Accumulates per-step predicted and actual changes on the probes by update class.
struct InfluenceObserver<'a> {
    probes: &'a [DVector<f64>],
    probe_labels: &'a [usize],
    update_labels: &'a [usize],
    predicted: Vec<f64>,
    actual: Vec<f64>,
}

impl Observer<Mlp> for InfluenceObserver<'_> {
    fn step(&mut self, e: &StepEvent<'_, Mlp>) -> Result<()> {
        let u = self.update_labels[e.step];
        let per_class = self.probes.len() as f64 / CLASSES as f64;
        for (o, obs) in self
            .probe_labels
            .iter()
            .zip(observe(e.before, e.after, self.probes)?)
        {
            let base = (u * CLASSES + o) * CLASSES;
            for k in 0..CLASSES {
                self.predicted[base + k] += obs.predicted[k] / per_class;
                self.actual[base + k] += obs.actual[k] / per_class;
            }
        }
        Ok(())
    }
}

/// Class-pair means of `‖K‖_F` over distinct probe images, every `every` steps.
struct EntkObserver<'a> {
    probes: &'a [DVector<f64>],
    probe_labels: &'a [usize],
    every: usize,
    track: Vec<(usize, DMatrix<f64>)>,
}

impl EntkObserver<'_> {
    fn record(&mut self, step: usize, model: &Mlp) {
        let kernel = entk_full(model, self.probes, 2);
        let mut sum = DMatrix::zeros(CLASSES, CLASSES);
        let mut count = DMatrix::<f64>::zeros(CLASSES, CLASSES);
        for (i, &ci) in self.probe_labels.iter().enumerate() {
            for (j, &cj) in self
                .probe_labels
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
            {
                sum[(ci, cj)] += kernel.block(i, j).norm();
                count[(ci, cj)] += 1.0;
            }
        }
        self.track.push((step, sum.component_div(&count)));
    }
}

impl Observer<Mlp> for EntkObserver<'_> {
    fn start(&mut self, model: &Mlp) -> Result<()> {
        self.record(0, model);
        Ok(())
    }

    fn step(&mut self, e: &StepEvent<'_, Mlp>) -> Result<()> {
        if (e.step + 1).is_multiple_of(self.every) {
            self.record(e.step + 1, e.after);
        }
        Ok(())
    }
}

/// Keeps a copy of the model after step `at`.
struct Checkpoint {
    at: usize,
    model: Option<Mlp>,
}

impl Observer<Mlp> for Checkpoint {
    fn step(&mut self, e: &StepEvent<'_, Mlp>) -> Result<()> {
        if e.step + 1 == self.at {
            self.model = Some(e.after.clone());
        }
        Ok(())
    }
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
        entk.record(trainer.steps(), &trainer.model);
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

/// Off-diagonal entries of a 10 × 10 matrix, row by row, with their `(row, column)`.
fn off_diagonal(m: &DMatrix<f64>) -> Vec<((usize, usize), f64)> {
    (0..CLASSES)
        .flat_map(|r| {
            (0..CLASSES)
                .filter(move |&c| c != r)
                .map(move |c| ((r, c), m[(r, c)]))
        })
        .collect()
}

/// The `n` cells with the largest values, as `(row, column, value)`.
fn largest(mut cells: Vec<((usize, usize), f64)>, n: usize) -> Vec<(usize, usize, f64)> {
    cells.sort_by(|a, b| b.1.total_cmp(&a.1));
    cells
        .into_iter()
        .take(n)
        .map(|((r, c), v)| (r, c, v))
        .collect()
}

impl DigitsResult {
    /// Correlation between the accumulated predicted and actual changes (all 1000 cells).
    pub fn accumulated_correlation(&self) -> f64 {
        pearson(&self.accumulated_predicted, &self.accumulated_actual)
    }

    /// Spearman correlation of the 90 off-diagonal class-pair eNTK norms between the
    /// first checkpoint after `early_step` and the final one.
    pub fn entk_ranking_correlation(&self) -> f64 {
        let early = self
            .entk
            .iter()
            .find(|(s, _)| *s >= self.config.early_step)
            .unwrap_or(&self.entk[0]);
        let last = self.entk.last().expect("at least one checkpoint");
        let values = |m: &DMatrix<f64>| {
            off_diagonal(m)
                .into_iter()
                .map(|(_, v)| v)
                .collect::<Vec<_>>()
        };
        spearman(&values(&early.1), &values(&last.1))
    }

    /// Spearman correlation between the final off-diagonal eNTK norms and the final
    /// off-diagonal heatmap cells (both symmetrised over the pair).
    pub fn entk_heatmap_correlation(&self) -> f64 {
        let k = &self.entk.last().expect("at least one checkpoint").1;
        let sym = |m: &DMatrix<f64>| (m + m.transpose()).scale(0.5);
        let (ks, hs) = (sym(k), sym(&self.heatmap_final));
        let upper = |m: &DMatrix<f64>| {
            off_diagonal(m)
                .into_iter()
                .filter(|((r, c), _)| r < c)
                .map(|(_, v)| v)
                .collect::<Vec<_>>()
        };
        spearman(&upper(&ks), &upper(&hs))
    }

    /// The `n` largest off-diagonal cells of the final heatmap, `(true, predicted, mean π)`.
    pub fn top_confusions(&self, n: usize) -> Vec<(usize, usize, f64)> {
        largest(off_diagonal(&self.heatmap_final), n)
    }

    /// The `n` class pairs `u < o` with the largest final mean eNTK norm.
    pub fn top_entk_pairs(&self, n: usize) -> Vec<(usize, usize, f64)> {
        let k = &self.entk.last().expect("at least one checkpoint").1;
        largest(
            off_diagonal(k)
                .into_iter()
                .filter(|((r, c), _)| r < c)
                .collect(),
            n,
        )
    }

    /// Figure 1's claims, checked on this run.
    pub fn claims(&self) -> Vec<Claim> {
        let obs = &self.one_step.observed;
        let gain = |i: usize, k: usize| obs[i].observation.actual[k];
        let change = |i: usize| obs[i].observation.actual.norm();
        let (same, similar, dissimilar) = (0, 1, 2);
        let own = obs[similar].label;
        let r = self.accumulated_correlation();
        let rank = self.entk_ranking_correlation();
        let link = self.entk_heatmap_correlation();
        let fmt = |cells: Vec<(usize, usize, f64)>| {
            cells
                .iter()
                .map(|(a, b, v)| format!("{a}→{b} {v:.3}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        vec![
            Claim {
                id: "same_class_rises",
                holds: gain(same, UPDATE_CLASS) > 0.0,
                text: format!(
                    "one step on a 4 raises log π(4) of another 4 by {:+.3}",
                    gain(same, UPDATE_CLASS)
                ),
            },
            Claim {
                id: "similar_gains_on_update_label",
                holds: gain(similar, UPDATE_CLASS) > 0.0
                    && gain(similar, UPDATE_CLASS) > gain(similar, own),
                text: format!(
                    "the most eNTK-similar other image (a {own}, ‖K‖_F {:.2}) gains on 4 ({:+.3}), not on its own label ({:+.3})",
                    obs[similar].k_fro,
                    gain(similar, UPDATE_CLASS),
                    gain(similar, own)
                ),
            },
            Claim {
                id: "dissimilar_moves_least",
                holds: change(dissimilar) < change(same).min(change(similar)),
                text: format!(
                    "the least similar image (a {}, ‖K‖_F {:.2}) moves least: ‖Δlog π‖ {:.4} vs {:.4} (same class) and {:.4} (similar)",
                    obs[dissimilar].label,
                    obs[dissimilar].k_fro,
                    change(dissimilar),
                    change(same),
                    change(similar)
                ),
            },
            Claim {
                id: "accumulated_prediction",
                holds: r > 0.9,
                text: format!(
                    "accumulated predicted vs actual Δlog π over {} steps: correlation {r:.4}",
                    self.steps
                ),
            },
            Claim {
                id: "entk_ranking_stable",
                holds: rank > 0.7,
                text: format!(
                    "eNTK class-pair ranking, early vs final checkpoint: Spearman {rank:.2}"
                ),
            },
            Claim {
                id: "entk_predicts_confusion",
                holds: link > 0.0,
                text: format!(
                    "pairs with larger eNTK share more probability (Spearman {link:.2}); top eNTK pairs {}; top confusions {}; test accuracy {:.3}",
                    fmt(self.top_entk_pairs(3)),
                    fmt(self.top_confusions(3)),
                    self.test_accuracy
                ),
            },
        ]
    }
}

/// The CSV header of `digits_heatmap.csv`.
pub const HEATMAP_HEADER: &str = "stage,observed_class,predicted_class,mean_prob";
/// The CSV header of `digits_entk.csv`.
pub const ENTK_HEADER: &str = "step,class_u,class_o,mean_k_fro";
/// The CSV header of `digits_one_step.csv`: one row per class of every image of Figure
/// 1(b) (`update`, `same class`, `similar`, `dissimilar`); the Δ columns are empty for
/// the update image.
pub const ONE_STEP_HEADER: &str =
    "image,label,k_fro,class,p_before,p_after,predicted_delta_log_pi,actual_delta_log_pi";
/// The CSV header of `digits_one_step_pixels.csv` (gray level in `[0, 1]`).
pub const PIXELS_HEADER: &str = "image,row,col,value";
/// The CSV header of `digits_accumulated.csv` (Figure 1c: 1000 cells).
pub const ACCUMULATED_HEADER: &str = "update_class,observed_class,class,predicted,actual";

impl DigitsResult {
    fn heatmap_rows(&self) -> Vec<String> {
        let mut rows = Vec::new();
        for (stage, m) in [
            ("early", &self.heatmap_early),
            ("final", &self.heatmap_final),
        ] {
            for (r, c) in (0..CLASSES).flat_map(|r| (0..CLASSES).map(move |c| (r, c))) {
                rows.push(format!("{stage},{r},{c},{}", m[(r, c)]));
            }
        }
        rows
    }

    fn entk_rows(&self) -> Vec<String> {
        self.entk
            .iter()
            .flat_map(|(step, m)| {
                (0..CLASSES).flat_map(move |u| {
                    (0..CLASSES).map(move |o| format!("{step},{u},{o},{}", m[(u, o)]))
                })
            })
            .collect()
    }

    fn one_step_rows(&self) -> Vec<String> {
        let fig = &self.one_step;
        let mut rows: Vec<String> = (0..CLASSES)
            .map(|k| {
                format!(
                    "update,{UPDATE_CLASS},,{k},{},{},,",
                    fig.update_pi.0[k], fig.update_pi.1[k]
                )
            })
            .collect();
        for o in &fig.observed {
            let obs = &o.observation;
            for k in 0..CLASSES {
                rows.push(format!(
                    "{},{},{},{k},{},{},{},{}",
                    o.kind,
                    o.label,
                    o.k_fro,
                    obs.log_pi[k].exp(),
                    (obs.log_pi[k] + obs.actual[k]).exp(),
                    obs.predicted[k],
                    obs.actual[k]
                ));
            }
        }
        rows
    }

    fn pixel_rows(&self) -> Vec<String> {
        let fig = &self.one_step;
        let images = std::iter::once(("update", &fig.update_image))
            .chain(fig.observed.iter().map(|o| (o.kind, &o.image)));
        images
            .flat_map(|(kind, image)| {
                (0..64).map(move |i| format!("{kind},{},{},{}", i / 8, i % 8, image[i]))
            })
            .collect()
    }

    fn accumulated_rows(&self) -> Vec<String> {
        (0..CLASSES.pow(3))
            .map(|i| {
                let (u, o, k) = (i / (CLASSES * CLASSES), i / CLASSES % CLASSES, i % CLASSES);
                format!(
                    "{u},{o},{k},{},{}",
                    self.accumulated_predicted[i], self.accumulated_actual[i]
                )
            })
            .collect()
    }

    fn summary_rows(&self) -> Vec<String> {
        [
            ("steps", self.steps as f64),
            ("early_step", self.config.early_step as f64),
            ("one_step_eta", self.one_step.eta),
            ("test_accuracy", self.test_accuracy),
            ("accumulated_correlation", self.accumulated_correlation()),
            ("entk_ranking_spearman", self.entk_ranking_correlation()),
            ("entk_confusion_spearman", self.entk_heatmap_correlation()),
        ]
        .iter()
        .map(|(metric, value)| format!("{metric},{value}"))
        .collect()
    }
}
