//! DPO runs over training: the [`Snapshot`] of every measure at a tracking point, the
//! observer that takes them, the SFT phase a run started from, and the run itself.

use super::answers::{Repeater, greedy_answers, repeater};
use super::attribution::Attribution;
use super::families::{
    FamilyPoint, FixedArgmax, FixedPoint, PositionPoint, Prefix, family_points, fixed_points,
    position_points, prefix_log_pi, prefix_sequence,
};
use super::squeezing::PositionRecord;
use crate::error::Result;
use crate::language::{Family, Language, Probe};
use crate::lm::{Sequence, TinyLm};
use crate::model::Model;
use crate::numerics::log_softmax_columns;
use crate::objective::Pairwise;
use crate::trainer::{Observer, StepEvent};

/// What a DPO run under the update rule took.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DpoCounts {
    /// Updates taken: the number asked for, unless a pass found no usable pair.
    pub updates: usize,
    /// Unusable draws redrawn.
    pub redraws: usize,
    /// Every update, in order.
    pub records: Vec<UpdateRecord>,
}

/// One update at the moment it was taken: where `y⁺` and `y⁻` sat under the model and
/// the reference, and the loss's two coefficients (`G⁺ = s⁺(π⁺ − e_{y⁺})`,
/// `G⁻ = −s⁻(π⁻ − e_{y⁻})`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UpdateRecord {
    /// `log π(y⁺ | x)`.
    pub chosen_log_prob: f64,
    /// `log π(y⁻ | x)`.
    pub rejected_log_prob: f64,
    /// The reference's `(log π_ref(y⁺ | x), log π_ref(y⁻ | x))`.
    pub reference: (f64, f64),
    /// The lowest `log π` of one of `y⁻`'s tokens: how deep its valley is.
    pub min_token_log_prob: f64,
    /// `s⁺`, the chosen term's coefficient.
    pub chosen_coefficient: f64,
    /// `s⁻`, the rejected term's coefficient.
    pub rejected_coefficient: f64,
}

impl UpdateRecord {
    /// The record of the update `pair` on `[χ⁺, χ⁻]` under `model`, before the step.
    pub fn of(model: &TinyLm, inputs: &[Sequence], pair: &Pairwise) -> Self {
        let token_log_probs = |x: &Sequence| -> Vec<f64> {
            let log_pi = log_softmax_columns(&model.logits(x));
            (x.response().iter().enumerate())
                .map(|(m, &t)| log_pi[(t, m)])
                .collect()
        };
        let (plus, minus) = (token_log_probs(&inputs[0]), token_log_probs(&inputs[1]));
        let (chosen_log_prob, rejected_log_prob) = (plus.iter().sum(), minus.iter().sum());
        let (_, s_plus, s_minus) = pair.strengths(chosen_log_prob, rejected_log_prob);
        UpdateRecord {
            chosen_log_prob,
            rejected_log_prob,
            reference: pair.reference,
            min_token_log_prob: minus.iter().copied().fold(f64::INFINITY, f64::min),
            chosen_coefficient: s_plus,
            rejected_coefficient: s_minus,
        }
    }
}

/// What a TRL user's dashboard shows at one tracking point, over the dataset's training
/// pairs `(y⁺, y⁻)` as its batch means would (TRL's `DPOTrainer` logs): with `r± =
/// β (log π(y±) − log π_ref(y±))`, `rewards/chosen` the mean `r⁺`, `rewards/rejected` the
/// mean `r⁻`, `rewards/margins` their difference ([`Dashboard::margins`]),
/// `rewards/accuracies` the share of pairs with `r⁺ > r⁻`, and `logps/chosen`,
/// `logps/rejected` the mean summed `log π` (TRL's IPO logs their per-token means, the
/// last two fields). `β` is DPO's (the world's), whatever the loss's own parameter; the
/// reference is the model DPO starts from, as in every run here.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Dashboard {
    /// `rewards/chosen`.
    pub rewards_chosen: f64,
    /// `rewards/rejected`.
    pub rewards_rejected: f64,
    /// `rewards/accuracies`.
    pub rewards_accuracies: f64,
    /// `logps/chosen` (summed over the response).
    pub logps_chosen: f64,
    /// `logps/rejected` (summed).
    pub logps_rejected: f64,
    /// `logps/chosen` as TRL's IPO logs it: the per-token mean.
    pub logps_chosen_per_token: f64,
    /// `logps/rejected`, the per-token mean.
    pub logps_rejected_per_token: f64,
}

impl Dashboard {
    /// `rewards/margins`: `rewards/chosen − rewards/rejected`.
    pub fn margins(&self) -> f64 {
        self.rewards_chosen - self.rewards_rejected
    }

    /// The dashboard of `model` on the dataset's `pairs`, whose reference
    /// log-probabilities are `reference`, with rewards at `beta`.
    pub fn of(
        model: &TinyLm,
        pairs: &[(Sequence, Sequence)],
        reference: &[(f64, f64)],
        beta: f64,
    ) -> Self {
        let log_probs = sequence_log_probs(model, pairs);
        let n = pairs.len().max(1) as f64;
        let mut d = Dashboard::default();
        for (((plus, minus), (lp_plus, lp_minus)), (ref_plus, ref_minus)) in
            pairs.iter().zip(&log_probs).zip(reference)
        {
            let (r_plus, r_minus) = (beta * (lp_plus - ref_plus), beta * (lp_minus - ref_minus));
            d.rewards_chosen += r_plus / n;
            d.rewards_rejected += r_minus / n;
            d.rewards_accuracies += f64::from(u8::from(r_plus > r_minus)) / n;
            d.logps_chosen += lp_plus / n;
            d.logps_rejected += lp_minus / n;
            d.logps_chosen_per_token += lp_plus / plus.response().len() as f64 / n;
            d.logps_rejected_per_token += lp_minus / minus.response().len() as f64 / n;
        }
        d
    }
}

/// `(log π(y⁺), log π(y⁻))` of every pair under `model`, summed over each response.
pub fn sequence_log_probs(model: &TinyLm, pairs: &[(Sequence, Sequence)]) -> Vec<(f64, f64)> {
    let flat: Vec<Sequence> = (pairs.iter())
        .flat_map(|(p, m)| [p.clone(), m.clone()])
        .collect();
    let logits = model.logits_batch(&flat);
    let lp = |k: usize| crate::numerics::sequence_log_prob(&logits[k], flat[k].response());
    (0..pairs.len())
        .map(|i| (lp(2 * i), lp(2 * i + 1)))
        .collect()
}

/// The dataset's training pairs of `language`: `(χ⁺, χ⁻)` for every training entity.
pub fn dataset_pairs(language: &Language) -> Vec<(Sequence, Sequence)> {
    (language.train.iter())
        .map(|&j| {
            let prompt = language.prompt(j);
            (
                Sequence::new(&prompt, &language.chosen(j)),
                Sequence::new(&prompt, &language.rejected(j)),
            )
        })
        .collect()
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
    /// The same, split by whether the fixed argmax is `y⁺`'s token, with the fixed
    /// argmax's own log-probability and the mass off it and `y⁺`.
    pub fixed: Vec<FixedPoint>,
    /// The repeater measures of the greedy answers to every prompt, training and held out.
    pub repeater: Repeater,
    /// Mean entropy of the next-token distribution over the positions of both prefixes.
    pub entropy: f64,
    /// `log π` of every token at `y⁻`'s valley (its value position) on the rejected prefix
    /// of the [`valley_probe`]: the distribution the `lm_policy` animation shows.
    pub valley: Vec<f64>,
    /// `y⁻`'s token at that position.
    pub valley_token: usize,
    /// The entity of that probe.
    pub valley_entity: usize,
    /// `y⁻`'s copula there, the last token of the valley's context.
    pub valley_copula: usize,
    /// What a TRL user's dashboard shows ([`Dashboard`]).
    pub dashboard: Dashboard,
}

impl Snapshot {
    /// Every measure of `model` after `step` updates, with the fixed argmax of every
    /// probe's prefixes `fixed`.
    pub fn measure(
        model: &TinyLm,
        language: &Language,
        (probes, fixed): (&[Probe], &[FixedArgmax]),
        step: usize,
    ) -> Result<Self> {
        let (train, test) = (&language.train, &language.test);
        let train_answers = greedy_answers(model, language, train)?;
        let test_answers = greedy_answers(model, language, test)?;
        let prefixes = prefix_log_pi(model, probes);
        let positions = position_points(&prefixes);
        let entropy = positions.iter().map(|p| p.entropy).sum::<f64>() / positions.len() as f64;
        let probe = valley_probe(probes);
        let rejected = prefix_sequence(probe, Prefix::Rejected);
        let valley = log_softmax_columns(&model.logits(rejected))
            .column(VALUE_POSITION)
            .iter()
            .copied()
            .collect();
        Ok(Snapshot {
            valley,
            valley_token: rejected.response()[VALUE_POSITION],
            valley_entity: probe.entity,
            valley_copula: rejected.response()[1],
            step,
            families: family_points(model, probes, step),
            positions,
            fixed: fixed_points(probes, &prefixes, fixed),
            repeater: repeater(language, (train, &train_answers), (test, &test_answers)),
            entropy,
            dashboard: Dashboard::default(),
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

    /// The mean log-probability of the seven like-for-like others
    /// ([`Family::like_for_like_others`]).
    pub fn like_for_like_others(&self) -> f64 {
        let others: Vec<f64> = Family::like_for_like_others()
            .map(|f| self.family(f))
            .collect();
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

/// The probe whose valley the animation shows: the first whose `y⁻` context at the value
/// position is not `y⁺`'s (the copulas differ), so the distribution there is conditioned
/// on `y⁻` alone; the first probe if every copula agrees.
pub fn valley_probe(probes: &[Probe]) -> &Probe {
    let copula = |p: &Probe, prefix| prefix_sequence(p, prefix).response()[1];
    probes
        .iter()
        .find(|p| copula(p, Prefix::Chosen) != copula(p, Prefix::Rejected))
        .unwrap_or(&probes[0])
}

/// Takes a [`Snapshot`] at step 0, every `every` updates, and after update `last`
/// (or after the last update taken, [`SnapshotTracker::finish`]), with the dashboard's
/// rewards at `beta` against the model at step 0, the reference.
pub struct SnapshotTracker<'a> {
    language: &'a Language,
    probes: &'a [Probe],
    fixed: Vec<FixedArgmax>,
    every: usize,
    last: usize,
    beta: f64,
    pairs: Vec<(Sequence, Sequence)>,
    reference: Vec<(f64, f64)>,
    /// The snapshots taken so far.
    pub points: Vec<Snapshot>,
}

impl<'a> SnapshotTracker<'a> {
    /// A tracker of the world's `language` and `probes`, whose argmax fixed at the start
    /// is `fixed` ([`fixed_argmax`](super::fixed_argmax)), every `every` updates and after
    /// update `last`.
    pub fn new(
        language: &'a Language,
        (probes, fixed): (&'a [Probe], Vec<FixedArgmax>),
        (every, last): (usize, usize),
        beta: f64,
    ) -> Self {
        SnapshotTracker {
            language,
            probes,
            fixed,
            every,
            last,
            beta,
            pairs: dataset_pairs(language),
            reference: Vec::new(),
            points: Vec::new(),
        }
    }

    fn take(&mut self, model: &TinyLm, step: usize) -> Result<()> {
        let observed = (self.probes, self.fixed.as_slice());
        let point = Snapshot::measure(model, self.language, observed, step)?;
        let dashboard = Dashboard::of(model, &self.pairs, &self.reference, self.beta);
        self.points.push(Snapshot { dashboard, ..point });
        Ok(())
    }

    /// Takes the last snapshot of a run that ended after `updates` updates, short of
    /// `last`, unless it is taken already.
    ///
    /// # Errors
    /// If a greedy answer cannot be decoded.
    pub fn finish(&mut self, model: &TinyLm, updates: usize) -> Result<()> {
        if self.points.last().is_some_and(|p| p.step == updates) {
            return Ok(());
        }
        self.take(model, updates)
    }
}

impl Observer<TinyLm> for SnapshotTracker<'_> {
    fn start(&mut self, model: &TinyLm) -> Result<()> {
        self.reference = sequence_log_probs(model, &self.pairs);
        self.take(model, 0)
    }

    fn step(&mut self, e: &StepEvent<'_, TinyLm>) -> Result<()> {
        let step = e.step + 1;
        if step.is_multiple_of(self.every) || step == self.last {
            self.take(e.after, step)?;
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
    /// The share of all entities whose fact the base model, before SFT, answers
    /// greedily ([`fact_accuracy`](super::fact_accuracy)).
    pub base_fact_accuracy: f64,
}

impl SftPhase {
    /// The points at the steps that are multiples of `every`, and the last step.
    pub fn every(&self, every: usize) -> SftPhase {
        let last = self.points.last().map_or(0, |p| p.step);
        SftPhase {
            points: (self.points.iter())
                .filter(|p| p.step.is_multiple_of(every) || p.step == last)
                .copied()
                .collect(),
            token_updates: self.token_updates,
            base_fact_accuracy: self.base_fact_accuracy,
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
    /// What made every family move, by term, over the whole run.
    pub attribution: Attribution,
    /// Squeezing at `y⁻`'s own positions, at every update.
    pub squeezing: Vec<PositionRecord>,
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
