//! What the LM experiments measure: the probe families' log-probabilities and
//! peakiness, the greedy statistics per prefix and position, the repeater, and the
//! [`Snapshot`] of all of them that DPO runs record over training ([`DpoRun`]).

use crate::Rng64;
use crate::error::Result;
use crate::language::{ANSWER_LEN, Answer, END, Family, Greedy, Language, Probe};
use crate::lm::{Sequence, TinyLm};
use crate::model::Model;
use crate::numerics::{adaptation_fro_sq, log_softmax_columns, log_sum_exp};
use crate::trainer::{Observer, StepEvent};
use rand::SeedableRng;

/// What a DPO run under the update rule took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DpoCounts {
    /// Updates taken: always the number asked for.
    pub updates: usize,
    /// Unusable draws redrawn.
    pub redraws: usize,
}

/// Mean statistics of one family at one tracking point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FamilyPoint {
    /// Training step (0 = before the first step).
    pub step: usize,
    /// The family.
    pub family: Family,
    /// Mean over probes of `log π(y | χ)` (for the argmax families: `Σ_m log max π_m`,
    /// and `Σ_m log(1 − max π_m)` for the except-argmax ones, on their prefixes).
    pub log_prob: f64,
    /// Mean over probes and positions of `‖A_m‖²_F = V − 2 + V‖π_m‖²`.
    pub a_fro_sq: f64,
}

/// The family's statistic from one column of log-probabilities at a response position
/// whose token is `token`.
fn position_log_prob(family: Family, log_pi: &[f64], token: usize) -> f64 {
    match family.greedy() {
        Some(greedy) => greedy_log_prob(greedy, log_pi),
        None => log_pi[token],
    }
}

/// `log max π` or `log(1 − max π)` of one column of log-probabilities.
fn greedy_log_prob(greedy: Greedy, log_pi: &[f64]) -> f64 {
    let best = log_pi
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |b| b.0);
    match greedy {
        Greedy::Argmax => log_pi[best],
        Greedy::ExceptArgmax => {
            let rest: Vec<f64> = log_pi
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != best)
                .map(|(_, v)| *v)
                .collect();
            log_sum_exp(&rest)
        }
    }
}

/// The statistics of every family for `model`, at `step`.
pub fn family_points(model: &TinyLm, probes: &[Probe], step: usize) -> Vec<FamilyPoint> {
    let n = probes.len() as f64;
    let mut points: Vec<FamilyPoint> = Family::ALL
        .iter()
        .map(|&family| FamilyPoint {
            step,
            family,
            log_prob: 0.0,
            a_fro_sq: 0.0,
        })
        .collect();
    for probe in probes {
        let seqs: Vec<Sequence> = probe.responses.iter().map(|r| r.1.clone()).collect();
        let logits = model.logits_batch(&seqs);
        for ((point, (family, seq)), z) in points.iter_mut().zip(&probe.responses).zip(&logits) {
            let log_pi = log_softmax_columns(z);
            let lp: f64 = log_pi
                .column_iter()
                .zip(seq.response())
                .map(|(c, &t)| position_log_prob(*family, c.as_slice(), t))
                .sum();
            let a = log_pi
                .column_iter()
                .map(|c| adaptation_fro_sq(c.map(f64::exp).as_view()))
                .sum::<f64>()
                / log_pi.ncols() as f64;
            point.log_prob += lp / n;
            point.a_fro_sq += a / n;
        }
    }
    points
}

/// Which answer's prefixes a per-position statistic is read on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefix {
    /// The prefixes of `y⁺`.
    Chosen,
    /// The prefixes of `y⁻`, where its valley is.
    Rejected,
}

impl Prefix {
    /// Both prefixes, in CSV order.
    pub const ALL: [Prefix; 2] = [Prefix::Chosen, Prefix::Rejected];

    /// The prefix's id in CSV files.
    pub fn id(self) -> &'static str {
        match self {
            Prefix::Chosen => "chosen",
            Prefix::Rejected => "rejected",
        }
    }

    fn family(self) -> Family {
        match self {
            Prefix::Chosen => Family::Chosen,
            Prefix::Rejected => Family::Rejected,
        }
    }
}

/// The next-token distribution at one response position of one prefix, averaged over
/// the probe prompts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PositionPoint {
    /// The answer whose prefix conditions the distribution.
    pub prefix: Prefix,
    /// The response position `m` (0: the entity, 1: the copula, 2: the value, 3: `END`).
    pub position: usize,
    /// Mean `log max π_m`.
    pub argmax: f64,
    /// Mean `log(1 − max π_m)`.
    pub except_argmax: f64,
    /// Mean entropy `−Σ π_m log π_m`, in nats.
    pub entropy: f64,
}

/// The [`PositionPoint`]s of `model` on the chosen and the rejected prefixes of `probes`.
pub fn position_points(model: &TinyLm, probes: &[Probe]) -> Vec<PositionPoint> {
    let n = probes.len() as f64;
    let mut points: Vec<PositionPoint> = Prefix::ALL
        .iter()
        .flat_map(|&prefix| {
            (0..ANSWER_LEN).map(move |position| PositionPoint {
                prefix,
                position,
                argmax: 0.0,
                except_argmax: 0.0,
                entropy: 0.0,
            })
        })
        .collect();
    for probe in probes {
        for (k, prefix) in Prefix::ALL.into_iter().enumerate() {
            let seq = probe
                .responses
                .iter()
                .find(|r| r.0 == prefix.family())
                .map(|r| &r.1)
                .expect("every probe has a chosen and a rejected answer");
            let log_pi = log_softmax_columns(&model.logits(seq));
            for (point, column) in points[k * ANSWER_LEN..]
                .iter_mut()
                .zip(log_pi.column_iter())
            {
                let column = column.as_slice();
                point.argmax += greedy_log_prob(Greedy::Argmax, column) / n;
                point.except_argmax += greedy_log_prob(Greedy::ExceptArgmax, column) / n;
                point.entropy -= column.iter().map(|l| l.exp() * l).sum::<f64>() / n;
            }
        }
    }
    points
}

/// Records [`family_points`] at step 0 and every `every` steps.
pub struct Tracker<'a> {
    probes: &'a [Probe],
    every: usize,
    /// The points recorded so far.
    pub points: Vec<FamilyPoint>,
}

impl<'a> Tracker<'a> {
    /// A tracker of `probes` every `every` steps.
    pub fn new(probes: &'a [Probe], every: usize) -> Self {
        Tracker {
            probes,
            every,
            points: Vec::new(),
        }
    }
}

impl Observer<TinyLm> for Tracker<'_> {
    fn start(&mut self, model: &TinyLm) -> Result<()> {
        self.points.extend(family_points(model, self.probes, 0));
        Ok(())
    }

    fn step(&mut self, e: &StepEvent<'_, TinyLm>) -> Result<()> {
        if (e.step + 1).is_multiple_of(self.every) {
            self.points
                .extend(family_points(e.after, self.probes, e.step + 1));
        }
        Ok(())
    }
}

/// The curve of one family: `(step, mean log π)`.
pub fn curve(points: &[FamilyPoint], family: Family) -> Vec<(f64, f64)> {
    points
        .iter()
        .filter(|p| p.family == family)
        .map(|p| (p.step as f64, p.log_prob))
        .collect()
}

/// Greedy answers to the prompts of `entities`: generated to `END` or to twice the
/// answer length, whichever comes first.
///
/// # Errors
/// Never for a model of the language's vocabulary.
pub fn greedy_answers(
    model: &TinyLm,
    language: &Language,
    entities: &[usize],
) -> Result<Vec<Vec<usize>>> {
    let mut unused = Rng64::seed_from_u64(0);
    entities
        .iter()
        .map(|&j| {
            model.complete(
                &language.prompt(j),
                Some(END),
                2 * ANSWER_LEN,
                None,
                &mut unused,
            )
        })
        .collect()
}

/// The repeater measures of a set of answers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Repeater {
    /// The share of answers that are not sentences of the answer grammar.
    pub malformed_rate: f64,
    /// Distinct tokens over all tokens, across the answers.
    pub distinct_token_share: f64,
}

/// The repeater measures of `answers`, the answers to the prompts of `entities`.
pub fn repeater(language: &Language, entities: &[usize], answers: &[Vec<usize>]) -> Repeater {
    let malformed = entities
        .iter()
        .zip(answers)
        .filter(|(j, a)| language.judge(**j, a) == Answer::Malformed)
        .count();
    let tokens: Vec<usize> = answers.iter().flatten().copied().collect();
    let mut distinct = tokens.clone();
    distinct.sort_unstable();
    distinct.dedup();
    Repeater {
        malformed_rate: malformed as f64 / answers.len().max(1) as f64,
        distinct_token_share: distinct.len() as f64 / tokens.len().max(1) as f64,
    }
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

/// The centred hidden-embedding similarity of a preference pair (Razin et al., 2024),
/// `CHES = ⟨h⁺, h⁻⟩ − ‖h⁺‖²`, from the response representations `h±`
/// ([`TinyLm::response_hidden_sum`]). A large CHES means `y⁻` looks like `y⁺` to the
/// network, and predicts that DPO displaces `y⁺`'s likelihood the most.
pub fn ches(h_plus: &[f64], h_minus: &[f64]) -> f64 {
    h_plus.iter().zip(h_minus).map(|(p, m)| p * m - p * p).sum()
}
