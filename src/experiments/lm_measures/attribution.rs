//! What made a family move: every update's exact first-order change split by the term
//! of DPO's residual that caused it, accumulated over a run.
//!
//! The decomposition is linear in `G`, so an update on `(χ⁺, χ⁻)` with residuals
//! `[G⁺, G⁻]` changes `log π` on an observed sequence by
//!
//! `−η A_o J_o (J⁺ᵀ G⁺ + J⁻ᵀ G⁻) = chosen term + rejected term (+ anchor term)`,
//!
//! where a loss with an anchor on `y⁺` beyond DPO's pull (RPO's NLL, DPOP's penalty,
//! SLiC's λ term: [`Pairwise::terms`](crate::objective::Pairwise::terms)) has its part
//! of `G⁺` attributed apart, as the anchor term;
//!
//! each computed with one backward pass (`dθ_term = −η J_uᵀ G_term`) and one
//! forward-mode pass over every probe ([`predict`]); no kernel is formed. At the
//! response positions where `y⁺` and `y⁻` share the context and the token (the entity
//! always, the copula when both copulas agree) the two terms act on the same logits with
//! opposite signs and cancel exactly for DPO; such positions are left out of both terms
//! ([`split_terms`], which gives any remainder of the other losses to the term with the
//! larger coefficient). The prediction beside the two terms comes from the actual step
//! `θ_after − θ_before`, not from their sum, so `chosen + rejected = predicted` is a
//! check. The actual change is the run's: `log π` at the end less at the start, which
//! the per-update changes telescope to ([`AttributionTracker::finish`]).
//!
//! Besides the families, the tracker attributes the change of each probe's *fixed*
//! argmax ([`FixedArgmax`]: the model's greedy token at the start of DPO, at every
//! position of the chosen and the rejected prefix). That token does not test squeezing:
//! at `y⁻`'s value position it is, on every default-seed probe, the other synonym of
//! `y⁺`'s value, which the chosen term soon makes the runner-up, so squeezing then
//! rightly lowers it; and the updates on other prompts, half of its total, carry no
//! predicted sign. Squeezing is measured where the theory puts it, at the update's own
//! positions with the current argmax ([`super::squeezing`]).

use nalgebra::{DMatrix, DVector};

use super::families::{FixedArgmax, Prefix};
use crate::decomposition::predict;
use crate::error::{Error, Result};
use crate::language::{ANSWER_LEN, Family, Probe};
use crate::lm::{Sequence, TinyLm};
use crate::model::Model;
use crate::numerics::log_softmax_columns;
use crate::objective::{shared_positions, split_terms, without_anchor};
use crate::trainer::{Observer, StepEvent};

/// The five numbers of one attributed change, each a sum over updates.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Split {
    /// The part DPO's chosen term caused (the pull on `y⁺`).
    pub chosen_term: f64,
    /// The part DPO's rejected term caused (the push on `y⁻`).
    pub rejected_term: f64,
    /// The first-order prediction of the actual step (`A J_o (θ_after − θ_before)`).
    pub predicted: f64,
    /// The actual change.
    pub actual: f64,
    /// The part the anchor on `y⁺` caused (0 for a loss without one).
    pub anchor_term: f64,
}

impl Split {
    /// Its numbers, in slot order: 0 chosen term, 1 rejected term, 2 predicted, 3
    /// actual, 4 anchor term.
    fn values(&self) -> [f64; 5] {
        let s = self;
        [
            s.chosen_term,
            s.rejected_term,
            s.predicted,
            s.actual,
            s.anchor_term,
        ]
    }

    fn add(&mut self, [c, r, p, a, anchor]: [f64; 5], weight: f64) {
        self.chosen_term += c * weight;
        self.rejected_term += r * weight;
        self.predicted += p * weight;
        self.actual += a * weight;
        self.anchor_term += anchor * weight;
    }

    /// Adds `value` to the number of `slot` (see [`Split::values`]).
    fn add_to(&mut self, slot: usize, value: f64) {
        let mut values = [0.0; 5];
        values[slot] = value;
        self.add(values, 1.0);
    }

    /// The mean of several splits (zero for none).
    pub fn mean(splits: &[Split]) -> Split {
        let mut mean = Split::default();
        let n = splits.len().max(1) as f64;
        for s in splits {
            mean.add(s.values(), 1.0 / n);
        }
        mean
    }

    /// The sum of several splits.
    pub fn total<'a>(splits: impl IntoIterator<Item = &'a Split>) -> Split {
        let mut total = Split::default();
        for s in splits {
            total.add(s.values(), 1.0);
        }
        total
    }
}

/// The attributed change of one sequence family's `log π(y_m)` at one response
/// position, the mean over the probes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FamilyCell {
    /// The family.
    pub family: Family,
    /// The response position `m`.
    pub position: usize,
    /// The change, by term.
    pub split: Split,
}

/// The attributed change of the fixed argmax's `log π` at one position of one prefix,
/// the mean over the probes whose fixed argmax is (or is not) `y⁺`'s token.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FixedCell {
    /// The prefix.
    pub prefix: Prefix,
    /// The response position `m`.
    pub position: usize,
    /// Whether the fixed argmax is `y⁺`'s token on these probes.
    pub argmax_is_chosen: bool,
    /// How many probes the mean is over.
    pub n_probes: usize,
    /// The change, by term.
    pub split: Split,
}

/// A run's attribution: every cell accumulated over its updates.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Attribution {
    /// Every sequence family at every position, families in [`Family::sequences`] order.
    pub families: Vec<FamilyCell>,
    /// The fixed argmax, per prefix, position and whether it is `y⁺`'s token (only the
    /// groups with probes).
    pub fixed: Vec<FixedCell>,
    /// How far the accumulated prediction is from the actual change so far, at every
    /// tracking point and after the last update.
    pub errors: Vec<FirstOrderError>,
}

/// The accumulated first-order prediction against the actual change after `step`
/// updates, over the family cells (every sequence family at every response position):
/// the rms of `actual − predicted`, the spread (standard deviation) of the actual
/// changes, and their ratio, the error-to-signal ratio. Each update leaves an `O(η²)`
/// error on every probe, which accrues over all the updates, while a probe's signal
/// comes mostly from its own prompt's updates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FirstOrderError {
    /// Updates taken.
    pub step: usize,
    /// `rms(actual − predicted)` over the cells, in nats.
    pub rms_error: f64,
    /// The standard deviation of the actual changes over the cells, in nats.
    pub spread: f64,
}

impl FirstOrderError {
    /// `rms_error / spread` (0 when nothing moved).
    pub fn ratio(&self) -> f64 {
        match self.spread > 0.0 {
            true => self.rms_error / self.spread,
            false => 0.0,
        }
    }

    /// The error of the family `cells` whose actual changes so far are `actual`.
    fn of(step: usize, cells: &[FamilyCell], actual: &[f64]) -> Self {
        let n = cells.len().max(1) as f64;
        let mean = actual.iter().sum::<f64>() / n;
        let squares = |f: &dyn Fn(usize) -> f64| (0..cells.len()).map(f).sum::<f64>() / n;
        FirstOrderError {
            step,
            rms_error: squares(&|i| (actual[i] - cells[i].split.predicted).powi(2)).sqrt(),
            spread: squares(&|i| (actual[i] - mean).powi(2)).sqrt(),
        }
    }
}

impl Attribution {
    /// The split of `family` summed over `positions`.
    pub fn family(&self, family: Family, positions: impl Fn(usize) -> bool) -> Split {
        Split::total(
            self.families
                .iter()
                .filter(|c| c.family == family && positions(c.position))
                .map(|c| &c.split),
        )
    }
}

/// `−η Σ_i J(x_i)ᵀ G_i`: the parameter move of residuals `g` on `update`.
fn step_of(model: &TinyLm, update: &[Sequence], g: &[DMatrix<f64>], eta: f64) -> DVector<f64> {
    model.backprop_batch(update, g) * -eta
}

/// DPO's two terms of a pairwise update on `pair = [χ⁺, χ⁻]` with residuals `[G⁺, G⁻]`
/// and the `anchor`'s part of them, if any (at `before`), and learning rate `eta`, which
/// took `before` to `after`: the two terms' residuals ([`without_anchor`]) and the
/// parameter moves of the chosen term, the rejected term, the actual step and, with an
/// anchor, the anchor term.
pub fn term_directions(
    (before, after): (&TinyLm, &TinyLm),
    pair: &[Sequence],
    (residuals, anchor): (&[DMatrix<f64>], Option<&[DMatrix<f64>]>),
    eta: f64,
) -> ([Vec<DMatrix<f64>>; 2], Vec<DVector<f64>>) {
    let (plus, minus) = (&pair[0], &pair[1]);
    let shared = shared_positions(plus.response(), minus.response());
    let terms = match anchor {
        Some(anchor) => without_anchor(residuals, anchor, &shared, plus.response()),
        None => split_terms(residuals, &shared, plus.response()),
    };
    let mut directions = vec![
        step_of(before, pair, &terms[0], eta),
        step_of(before, pair, &terms[1], eta),
        after.params() - before.params(),
    ];
    directions.extend(anchor.map(|a| step_of(before, pair, a, eta)));
    (terms, directions)
}

/// Accumulates a run's [`Attribution`] at every update, and its [`FirstOrderError`]
/// every `every` updates.
pub struct AttributionTracker<'a> {
    probes: &'a [Probe],
    every: usize,
    /// Every probe's sequence families, probe by probe.
    observed: Vec<Sequence>,
    fixed: Vec<FixedArgmax>,
    /// `log π` of every observed sequence at the start.
    start: Vec<DMatrix<f64>>,
    /// The attribution so far (the actual change is added by
    /// [`AttributionTracker::finish`]).
    pub attribution: Attribution,
}

impl<'a> AttributionTracker<'a> {
    /// A tracker of `probes` whose argmax fixed at the start is `fixed` ([`fixed_argmax`](super::fixed_argmax)),
    /// which measures its first-order error every `every` updates.
    pub fn new(probes: &'a [Probe], fixed: Vec<FixedArgmax>, every: usize) -> Self {
        let observed = probes
            .iter()
            .flat_map(|p| p.responses.iter().filter(|r| r.0.is_sequence()))
            .map(|r| r.1.clone())
            .collect();
        let families = Family::sequences()
            .flat_map(|family| {
                (0..ANSWER_LEN).map(move |position| FamilyCell {
                    family,
                    position,
                    split: Split::default(),
                })
            })
            .collect();
        AttributionTracker {
            probes,
            every: every.max(1),
            observed,
            fixed,
            start: Vec::new(),
            attribution: Attribution {
                families,
                ..Attribution::default()
            },
        }
    }

    /// Adds to the cells' number `slots[k]` (see [`Split`]) the changes `changes[k]` of
    /// every observed sequence (probe by probe, in [`Family::sequences`] order).
    fn accumulate(&mut self, slots: &[usize], changes: &[Vec<DMatrix<f64>>]) {
        let families: Vec<Family> = Family::sequences().collect();
        let n = self.probes.len() as f64;
        for (&slot, change) in slots.iter().zip(changes) {
            for (i, (seq, d)) in self.observed.iter().zip(change).enumerate() {
                let row = i % families.len();
                for (m, &token) in seq.response().iter().enumerate() {
                    let cell = &mut self.attribution.families[row * ANSWER_LEN + m];
                    cell.split.add_to(slot, d[(token, m)] / n);
                }
            }
            for cell in &mut self.attribution.fixed {
                let k = cell.prefix as usize;
                let family = families.iter().position(|&f| f == cell.prefix.family());
                let (m, weight) = (cell.position, 1.0 / cell.n_probes as f64);
                for (p, fixed) in self.fixed.iter().enumerate() {
                    if fixed.is_chosen[k][m] == cell.argmax_is_chosen {
                        let d = &change[p * families.len() + family.unwrap_or(0)];
                        cell.split.add_to(slot, d[(fixed.tokens[k][m], m)] * weight);
                    }
                }
            }
        }
    }

    /// The actual change of `log π` of every observed sequence from the start to `model`.
    ///
    /// # Errors
    /// If a logit of `model` is not finite.
    fn actual(&self, model: &TinyLm) -> Result<Vec<DMatrix<f64>>> {
        let after = model.logits_batch(&self.observed);
        if !after.iter().flatten().all(|v| v.is_finite()) {
            return Err(Error::NonFinite("logits"));
        }
        Ok((after.iter().zip(&self.start))
            .map(|(z, lp)| log_softmax_columns(z) - lp)
            .collect())
    }

    /// The family cells' actual changes `actual` (of every observed sequence), each the
    /// mean over the probes of its response token's change, in cell order.
    fn cell_changes(&self, actual: &[DMatrix<f64>]) -> Vec<f64> {
        let families = Family::sequences().count();
        let n = self.probes.len() as f64;
        let mut cells = vec![0.0; self.attribution.families.len()];
        for (i, (seq, d)) in self.observed.iter().zip(actual).enumerate() {
            for (m, &token) in seq.response().iter().enumerate() {
                cells[(i % families) * ANSWER_LEN + m] += d[(token, m)] / n;
            }
        }
        cells
    }

    /// Records the first-order error after `step` updates, whose actual changes of every
    /// observed sequence are `actual`.
    fn record_error(&mut self, step: usize, actual: &[DMatrix<f64>]) {
        let cells = self.cell_changes(actual);
        let error = FirstOrderError::of(step, &self.attribution.families, &cells);
        self.attribution.errors.push(error);
    }

    /// Adds the actual change over the whole run of `steps` updates, `log π` of `end`
    /// less that of the start (the per-update actual changes telescope to it), and the
    /// first-order error at the end unless it is recorded already.
    ///
    /// # Errors
    /// If a logit of `end` is not finite.
    pub fn finish(&mut self, end: &TinyLm, steps: usize) -> Result<()> {
        let actual = self.actual(end)?;
        if self
            .attribution
            .errors
            .last()
            .is_none_or(|e| e.step != steps)
        {
            self.record_error(steps, &actual);
        }
        self.accumulate(&[3], &[actual]);
        Ok(())
    }
}

impl Observer<TinyLm> for AttributionTracker<'_> {
    fn start(&mut self, model: &TinyLm) -> Result<()> {
        self.start = (model.logits_batch(&self.observed).iter())
            .map(log_softmax_columns)
            .collect();
        for prefix in Prefix::ALL {
            let k = prefix as usize;
            for position in 0..ANSWER_LEN {
                for argmax_is_chosen in [true, false] {
                    let n_probes = (self.fixed.iter())
                        .filter(|f| f.is_chosen[k][position] == argmax_is_chosen)
                        .count();
                    if n_probes > 0 {
                        self.attribution.fixed.push(FixedCell {
                            prefix,
                            position,
                            argmax_is_chosen,
                            n_probes,
                            split: Split::default(),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    fn step(&mut self, e: &StepEvent<'_, TinyLm>) -> Result<()> {
        if e.update.len() != 2 {
            return Ok(());
        }
        let residuals = (e.residuals, e.anchor);
        let (_, directions) = term_directions((e.before, e.after), e.update, residuals, e.eta);
        let (_, changes) = predict(e.before, &self.observed, &directions);
        self.accumulate(&[0, 1, 2, 4][..changes.len()], &changes);
        if (e.step + 1).is_multiple_of(self.every) {
            let actual = self.actual(e.after)?;
            self.record_error(e.step + 1, &actual);
        }
        Ok(())
    }
}
