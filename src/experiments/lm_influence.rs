//! The accumulated-influence heatmap (the paper's App. C): which training signal moves
//! which probe family, predicted by the decomposition and compared with the real change.
//!
//! Each [`Signal`] trains for a few epochs with small learning rates (SFT signals from the
//! base model, DPO from the SFT checkpoint); at every step an observer adds, per family,
//! the mean over probes of the predicted `−ηAKG` and of the actual change of
//! `log π(y | χ)`. The small steps keep every step in the first-order regime, so the
//! accumulated prediction can be compared with the accumulated actual change.

use nalgebra::DMatrix;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::lm_world::{
    Checkpoint, LmConfig, MAX_SFT_EPOCHS, Signal, check_scaled_rates, checkpoint,
};
use super::{Claim, Experiment, Key, Range, Table, Valid};
use crate::Rng64;
use crate::decomposition::observe;
use crate::error::Result;
use crate::language::{Family, Probe};
use crate::lm::{Sequence, TinyLm};
use crate::stats::pearson;
use crate::trainer::{Observer, StepEvent, Trainer};

/// The world, and how long and how fast each signal trains.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// The language-model world.
    #[serde(flatten)]
    pub world: LmConfig,
    /// Passes over the training prompts that each signal trains for.
    pub epochs: usize,
    /// Learning rates of the signals, relative to the world's SFT and DPO rates.
    pub eta_scale: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            world: LmConfig::default(),
            epochs: 20,
            eta_scale: 0.2,
        }
    }
}

world_settings!(
    Config,
    [
        Key::new(
            "epochs",
            "passes over the training prompts per signal",
            Range::Int(1, MAX_SFT_EPOCHS),
        ),
        Key::new(
            "eta_scale",
            "learning rate of each signal relative to the world's SFT or DPO rate",
            Range::positive(10.0),
        ),
    ]
);

/// One cell of the heatmap: what `signal` did to `family`, accumulated over its steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cell {
    /// The training signal (column).
    pub signal: Signal,
    /// The observed family (row).
    pub family: Family,
    /// Accumulated predicted mean `Δ log π(y | χ)`.
    pub predicted: f64,
    /// Accumulated actual mean `Δ log π(y | χ)`.
    pub actual: f64,
}

/// Accumulates, per sequence family, the mean over probes of the predicted and actual
/// change of `log π(y | χ)` at every step.
struct InfluenceRecorder<'a> {
    probes: &'a [Probe],
    predicted: Vec<f64>,
    actual: Vec<f64>,
}

impl Observer<TinyLm> for InfluenceRecorder<'_> {
    fn step(&mut self, e: &StepEvent<'_, TinyLm>) -> Result<()> {
        let n = self.probes.len() as f64;
        for probe in self.probes {
            let seqs: Vec<Sequence> = probe
                .responses
                .iter()
                .filter(|r| r.0.is_sequence())
                .map(|r| r.1.clone())
                .collect();
            for (k, (obs, seq)) in observe(e.before, e.after, &seqs)?
                .iter()
                .zip(&seqs)
                .enumerate()
            {
                let pick = |m: &DMatrix<f64>| {
                    seq.response()
                        .iter()
                        .enumerate()
                        .map(|(l, &t)| m[(t, l)])
                        .sum::<f64>()
                };
                self.predicted[k] += pick(&obs.predicted) / n;
                self.actual[k] += pick(&obs.actual) / n;
            }
        }
        Ok(())
    }
}

/// The accumulated-influence table: one [`Cell`] per signal and sequence family.
#[derive(Clone, Debug)]
pub struct Influence {
    /// Signal by signal, family by family.
    pub cells: Vec<Cell>,
}

/// The accumulated-influence heatmap.
pub struct LmInfluence;

impl Experiment for LmInfluence {
    type Config = Config;
    type Data = Influence;

    fn run(config: &Valid<Config>, seed: u64) -> Result<Influence> {
        let world_config = &config.world;
        check_scaled_rates(&config.world, config.eta_scale)?;
        let Checkpoint {
            world, sft_model, ..
        } = checkpoint(world_config, seed)?;
        let language = &world.language;
        let mut cells = Vec::new();
        for signal in Signal::HEATMAP {
            let families = Family::sequences().count();
            let mut recorder = InfluenceRecorder {
                probes: &world.probes,
                predicted: vec![0.0; families],
                actual: vec![0.0; families],
            };
            let (start, eta) = signal.start((&world.base, &sft_model), world_config);
            let mut trainer = Trainer::new(start.clone(), eta * config.eta_scale)?;
            let mut rng = Rng64::seed_from_u64(seed ^ 0x5EED);
            let update = |&j: &usize| signal.update(language, &sft_model, world_config.beta, j);
            trainer.epochs(
                config.epochs,
                &language.train,
                &mut rng,
                update,
                &mut [&mut recorder],
            )?;
            cells.extend(Family::sequences().enumerate().map(|(k, family)| Cell {
                signal,
                family,
                predicted: recorder.predicted[k],
                actual: recorder.actual[k],
            }));
        }
        Ok(Influence { cells })
    }

    fn claims(data: &Influence) -> Vec<Claim> {
        data.claims()
    }

    fn tables(data: &Influence) -> Vec<Table> {
        let normalised = data
            .normalised()
            .into_iter()
            .map(|(s, f, v)| crate::cells![s.id(), f.id(), v])
            .collect();
        let cells = data
            .cells
            .iter()
            .map(|c| crate::cells![c.signal.id(), c.family.id(), c.predicted, c.actual])
            .collect();
        vec![
            Table::new("lm_influence", "signal,family,value", normalised),
            Table::new(
                "lm_influence_cells",
                "signal,family,predicted,actual",
                cells,
            ),
        ]
    }
}

impl Influence {
    /// The cells of one signal.
    fn column(&self, signal: Signal) -> impl Iterator<Item = &Cell> {
        self.cells.iter().filter(move |c| c.signal == signal)
    }

    /// Predicted values normalised per signal by the largest magnitude in that column.
    pub fn normalised(&self) -> Vec<(Signal, Family, f64)> {
        self.cells
            .iter()
            .map(|c| {
                let max = self
                    .column(c.signal)
                    .map(|c| c.predicted.abs())
                    .fold(1e-300, f64::max);
                (c.signal, c.family, c.predicted / max)
            })
            .collect()
    }

    /// The predicted value of one cell (0 if absent).
    pub fn get(&self, signal: Signal, family: Family) -> f64 {
        self.column(signal)
            .find(|c| c.family == family)
            .map_or(0.0, |c| c.predicted)
    }

    /// The family a signal raises most, or lowers most (`lowest`).
    fn extreme(&self, signal: Signal, lowest: bool) -> Option<Family> {
        let cmp = |a: &&Cell, b: &&Cell| a.predicted.total_cmp(&b.predicted);
        let cell = if lowest {
            self.column(signal).min_by(cmp)
        } else {
            self.column(signal).max_by(cmp)
        };
        cell.map(|c| c.family)
    }

    /// The claims of the influence heatmap.
    pub fn claims(&self) -> Vec<Claim> {
        let predicted: Vec<f64> = self.cells.iter().map(|c| c.predicted).collect();
        let actual: Vec<f64> = self.cells.iter().map(|c| c.actual).collect();
        let r = pearson(&predicted, &actual);
        let id = |f: Option<Family>| f.map_or("", Family::id);
        let (top_chosen, top_rejected) = (
            self.extreme(Signal::SftChosen, false),
            self.extreme(Signal::SftRejected, false),
        );
        let dpo_min = self.extreme(Signal::Dpo, true);
        let dpo_falling = self
            .column(Signal::Dpo)
            .filter(|c| c.predicted < 0.0)
            .count();
        vec![
            Claim::new(
                "prediction_matches",
                r > 0.9,
                format!("accumulated −ηAKG vs actual Δlog π over all cells: correlation {r:.4}"),
            ),
            Claim::new(
                "sft_raises_itself",
                top_chosen == Some(Family::Chosen) && top_rejected == Some(Family::Rejected),
                format!(
                    "SFT on a response raises that response most (chosen: {}, rejected: {})",
                    id(top_chosen),
                    id(top_rejected)
                ),
            ),
            Claim::new(
                "sft_non_language_falls",
                self.get(Signal::SftChosen, Family::ShuffledChosen) < 0.0
                    && self.get(Signal::SftChosen, Family::RandomTokens) < 0.0,
                format!(
                    "SFT on chosen pushes non-language down: shuffled {:+.2}, random tokens {:+.2} (SFT on the rephrase moves chosen by {:+.2})",
                    self.get(Signal::SftChosen, Family::ShuffledChosen),
                    self.get(Signal::SftChosen, Family::RandomTokens),
                    self.get(Signal::SftChosenRephrase, Family::Chosen)
                ),
            ),
            Claim::new(
                "dpo_rejected_falls_most",
                dpo_min == Some(Family::Rejected)
                    && dpo_falling * 2 > self.column(Signal::Dpo).count(),
                format!(
                    "DPO pushes rejected down most ({}) and lowers {dpo_falling} of the {} families",
                    id(dpo_min),
                    self.column(Signal::Dpo).count()
                ),
            ),
            Claim::new(
                "dpo_raises_chosen",
                self.get(Signal::Dpo, Family::Chosen) > 0.0,
                format!(
                    "DPO raises chosen, the paper's sign for the positive push on y⁺ ({:+.2})",
                    self.get(Signal::Dpo, Family::Chosen)
                ),
            ),
        ]
    }
}
