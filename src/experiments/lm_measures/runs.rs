//! DPO runs over training: the [`Snapshot`] of every measure at a tracking point, the
//! observer that takes them, the SFT phase a run started from, and the run itself.

use super::answers::{Repeater, greedy_answers, repeater};
use super::families::{FamilyPoint, PositionPoint, Prefix, family_points, position_points};
use crate::error::Result;
use crate::language::{Family, Language, Probe};
use crate::lm::TinyLm;
use crate::model::Model;
use crate::numerics::log_softmax_columns;
use crate::trainer::{Observer, StepEvent};

/// What a DPO run under the update rule took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DpoCounts {
    /// Updates taken: always the number asked for.
    pub updates: usize,
    /// Unusable draws redrawn.
    pub redraws: usize,
}

/// The position of the value token in an answer `[e, COPULA, VALUE, END]`: where `y⁻`'s
/// valley is.
pub const VALUE_POSITION: usize = 2;

/// Every measure at one tracking point of a DPO run.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Updates taken so far.
    pub step: usize,
    /// The probe families.
    pub families: Vec<FamilyPoint>,
    /// The greedy statistics per prefix and position.
    pub positions: Vec<PositionPoint>,
    /// The repeater measures of the greedy answers to every prompt, training and held out.
    pub repeater: Repeater,
    /// Mean entropy of the next-token distribution over the positions of both prefixes.
    pub entropy: f64,
    /// `log π` of every token at `y⁻`'s valley (its value position) on the first probe's
    /// rejected prefix: the distribution the `lm_policy` animation shows.
    pub valley: Vec<f64>,
    /// `y⁻`'s token at that position.
    pub valley_token: usize,
}

impl Snapshot {
    /// Every measure of `model` after `step` updates.
    pub fn measure(
        model: &TinyLm,
        language: &Language,
        probes: &[Probe],
        step: usize,
    ) -> Result<Self> {
        let prompts: Vec<usize> = language
            .train
            .iter()
            .chain(&language.test)
            .copied()
            .collect();
        let answers = greedy_answers(model, language, &prompts)?;
        let positions = position_points(model, probes);
        let entropy = positions.iter().map(|p| p.entropy).sum::<f64>() / positions.len() as f64;
        let rejected = probes[0]
            .responses
            .iter()
            .find(|r| r.0 == Family::Rejected)
            .map(|r| &r.1)
            .expect("every probe has a rejected answer");
        let valley = log_softmax_columns(&model.logits(rejected))
            .column(VALUE_POSITION)
            .iter()
            .copied()
            .collect();
        Ok(Snapshot {
            valley,
            valley_token: rejected.response()[VALUE_POSITION],
            step,
            families: family_points(model, probes, step),
            positions,
            repeater: repeater(language, &prompts, &answers),
            entropy,
        })
    }

    /// The mean log-probability of `family`.
    pub fn family(&self, family: Family) -> f64 {
        self.families
            .iter()
            .find(|p| p.family == family)
            .map_or(f64::NAN, |p| p.log_prob)
    }

    /// The mean log-probability of the families other than chosen, rejected and the
    /// argmax statistics.
    pub fn others(&self) -> f64 {
        let others: Vec<f64> = Family::others().map(|f| self.family(f)).collect();
        others.iter().sum::<f64>() / others.len() as f64
    }

    /// The greedy statistics at `position` of `prefix`.
    pub fn position(&self, prefix: Prefix, position: usize) -> PositionPoint {
        self.positions
            .iter()
            .copied()
            .find(|p| p.prefix == prefix && p.position == position)
            .expect("every prefix and position is measured")
    }
}

/// Takes a [`Snapshot`] at step 0, every `every` updates, and after update `last`.
pub struct SnapshotTracker<'a> {
    language: &'a Language,
    probes: &'a [Probe],
    every: usize,
    last: usize,
    /// The snapshots taken so far.
    pub points: Vec<Snapshot>,
}

impl<'a> SnapshotTracker<'a> {
    /// A tracker of the world's `language` and `probes`, every `every` updates and after
    /// update `last`.
    pub fn new(language: &'a Language, probes: &'a [Probe], every: usize, last: usize) -> Self {
        SnapshotTracker {
            language,
            probes,
            every,
            last,
            points: Vec::new(),
        }
    }
}

impl Observer<TinyLm> for SnapshotTracker<'_> {
    fn start(&mut self, model: &TinyLm) -> Result<()> {
        let point = Snapshot::measure(model, self.language, self.probes, 0)?;
        self.points.push(point);
        Ok(())
    }

    fn step(&mut self, e: &StepEvent<'_, TinyLm>) -> Result<()> {
        let step = e.step + 1;
        if step.is_multiple_of(self.every) || step == self.last {
            let point = Snapshot::measure(e.after, self.language, self.probes, step)?;
            self.points.push(point);
        }
        Ok(())
    }
}

/// The SFT phase before a DPO run: its tracked family points and its budget.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SftPhase {
    /// The families at the tracked SFT steps (and before the first).
    pub points: Vec<FamilyPoint>,
    /// SFT token updates taken: SFT updates × the answer length.
    pub token_updates: usize,
}

impl SftPhase {
    /// The points at the steps that are multiples of `every`.
    pub fn every(&self, every: usize) -> SftPhase {
        SftPhase {
            points: (self.points.iter())
                .filter(|p| p.step.is_multiple_of(every))
                .copied()
                .collect(),
            token_updates: self.token_updates,
        }
    }
}

/// One DPO run on one seed, labelled by what distinguishes it from its siblings (the
/// regime, the loss, the arm).
#[derive(Clone, Debug)]
pub struct DpoRun<L> {
    /// What distinguishes the run.
    pub label: L,
    /// The seed of its world.
    pub seed: u64,
    /// The updates it took and the draws it redrew.
    pub counts: DpoCounts,
    /// The SFT phase its start came from.
    pub sft: SftPhase,
    /// Its tracking points, from the SFT checkpoint (step 0) to the last update.
    pub points: Vec<Snapshot>,
}

impl<L> DpoRun<L> {
    /// The snapshot at the start of DPO.
    pub fn first(&self) -> &Snapshot {
        &self.points[0]
    }

    /// The snapshot after the last update.
    pub fn last(&self) -> &Snapshot {
        &self.points[self.points.len() - 1]
    }

    /// The change of `measure` from the start to the end of DPO.
    pub fn change(&self, measure: impl Fn(&Snapshot) -> f64) -> f64 {
        measure(self.last()) - measure(self.first())
    }

    /// The last tracking point at or before `step`.
    pub fn at(&self, step: usize) -> &Snapshot {
        self.points
            .iter()
            .rev()
            .find(|p| p.step <= step)
            .unwrap_or(self.first())
    }

    /// The change of `measure` from the start of DPO to `step`.
    pub fn change_to(&self, step: usize, measure: impl Fn(&Snapshot) -> f64) -> f64 {
        measure(self.at(step)) - measure(self.first())
    }
}
