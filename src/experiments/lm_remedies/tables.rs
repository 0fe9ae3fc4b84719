//! Each arm's end state per seed, `lm_remedies_end.csv`: what the claims count and the
//! figure's table shows.

use super::{Remedies, RemedyRun};
use crate::experiments::Table;
use crate::experiments::comparison::{Metric, others_split, rejected_median};
use crate::experiments::lm_measures::{Class, Group, Split};
use crate::language::Family;

/// One run's end state. Changes are over DPO, in nats of `log π` summed over a response.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct End {
    /// The change of `logps/chosen`, the training pairs' mean `log π(y⁺)`.
    pub chosen: f64,
    /// The change of `logps/rejected`.
    pub rejected: f64,
    /// `rewards/margins` at the end (β the world's, for every arm).
    pub margin: f64,
    /// `rewards/accuracies` at the end.
    pub accuracy: f64,
    /// The change of the mean of the other families ([`Metric::OthersChange`]).
    pub others: f64,
    /// The share of greedy answers to training prompts that degenerate, at the end.
    pub degenerate: f64,
    /// The same at the start of DPO.
    pub degenerate_before: f64,
    /// The rejected term's median rise of the current argmax at `y⁻`'s valleys
    /// ([`Group::VALLEY`]), nats per update, if it pushed on a valley.
    pub valley_argmax: Option<f64>,
    /// `Σ s⁻` over the updates: how hard the rejected term pushed in total.
    pub pushed: f64,
    /// The share of the rejected term's pushes at `y⁻`'s valleys where `y⁺`'s token is
    /// the argmax ([`Class::Chosen`]), if it pushed on a valley: where squeezing feeds
    /// `y⁺`.
    pub chosen_argmax_share: Option<f64>,
    /// The chosen family's change split by term (first order, summed over updates).
    pub chosen_split: Split,
    /// The like-for-like other families' change, split the same way
    /// ([`others_split`]).
    pub others_split: Split,
}

impl End {
    /// The end state of `run`.
    pub fn of(run: &RemedyRun) -> Self {
        let dashboard = |f: fn(&crate::experiments::lm_measures::Dashboard) -> f64| {
            (f(&run.last().dashboard), f(&run.first().dashboard))
        };
        let (chosen_end, chosen_start) = dashboard(|d| d.logps_chosen);
        let (rejected_end, rejected_start) = dashboard(|d| d.logps_rejected);
        let argmax = |c: &crate::experiments::lm_measures::ColumnChange| Some(c.argmax);
        End {
            chosen: chosen_end - chosen_start,
            rejected: rejected_end - rejected_start,
            margin: run.last().dashboard.margins(),
            accuracy: run.last().dashboard.rewards_accuracies,
            others: Metric::OthersChange.of(run),
            degenerate: Metric::DegenerateRateAfter.of(run),
            degenerate_before: Metric::DegenerateRateBefore.of(run),
            valley_argmax: rejected_median(run, Group::VALLEY, argmax),
            pushed: Metric::RejectedCoefficientSum.of(run),
            chosen_argmax_share: chosen_argmax_share(run),
            chosen_split: run.attribution.family(Family::Chosen, |_| true),
            others_split: others_split(run, |_| true),
        }
    }

    /// Whether the accumulated first-order prediction of `y⁺`'s change is within 200%
    /// of the actual change (and a tenth of a nat): whether the run's steps stayed near
    /// enough to first order for the attribution by term to mean something. A larger
    /// step than DPO's leaves a larger second-order error (RPO's predictions run up to
    /// twice the actual); a step past stability leaves one of thousands of nats.
    pub fn first_order(&self) -> bool {
        let s = self.chosen_split;
        (s.predicted - s.actual).abs() <= 2.0 * s.actual.abs() + 0.1
    }
}

/// The share of `run`'s records at `y⁻`'s valleys whose argmax is `y⁺`'s token.
fn chosen_argmax_share(run: &RemedyRun) -> Option<f64> {
    let valleys = Group::VALLEY.of(&run.squeezing);
    let chosen = valleys.iter().filter(|p| p.class == Class::Chosen).count();
    (!valleys.is_empty()).then(|| chosen as f64 / valleys.len() as f64)
}

/// `lm_remedies_end.csv`: per arm and seed, the [`End`] state.
pub fn end(data: &Remedies) -> Table {
    let rows = (data.comparison.runs.iter())
        .map(|run| {
            let e = End::of(run);
            let s = e.chosen_split;
            crate::cells![
                run.label.id(),
                run.seed,
                e.chosen,
                e.rejected,
                e.margin,
                e.accuracy,
                e.others,
                e.degenerate,
                e.valley_argmax,
                e.chosen_argmax_share,
                e.pushed,
                s.chosen_term,
                s.rejected_term,
                s.anchor_term,
                s.predicted,
                s.actual,
                e.others_split.rejected_term,
                e.others_split.anchor_term,
                e.others_split.actual
            ]
        })
        .collect();
    Table::new(
        "lm_remedies_end",
        "arm,seed,logps_chosen_change,logps_rejected_change,rewards_margins,rewards_accuracies,others_change,degenerate_rate,valley_argmax_rise,valley_chosen_argmax_share,rejected_coefficient_sum,chosen_by_chosen_term,chosen_by_rejected_term,chosen_by_anchor_term,chosen_predicted,chosen_actual,others_by_rejected_term,others_by_anchor_term,others_actual",
        rows,
    )
}
