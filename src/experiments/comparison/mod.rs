//! DPO runs compared label by label over seeds (regimes in `lm_policy`, losses in
//! `lm_losses`, arms in `lm_extend` and `lm_remedies`): the typed summary [`Metric`]s, and the one
//! [`Comparison`] type that owns every table its figure draws and the per-seed counting
//! its claims share.
//!
//! A comparison's tables, for the stem `NAME` and the label column `LABEL` of its
//! [`Layout`]:
//!
//! | file | columns |
//! |---|---|
//! | `NAME.csv` | `LABEL,seed,step,family,mean_log_prob` (with `phase` after `seed` when the SFT phase is tracked) |
//! | `NAME_positions.csv` | `LABEL,seed,step,prefix,position,argmax_is_chosen,n_probes,argmax_log_prob,except_argmax_log_prob,fixed_argmax_log_prob,rest_log_prob`: per prefix and position, the probes split by whether the argmax fixed at the start of DPO is `y⁺`'s token, each row a mean over its `n_probes` |
//! | `NAME_repeater.csv` | `LABEL,seed,step,degenerate_rate,repetition_rate,wrong_entity_rate,hallucination_rate,distinct_token_share,mean_entropy` |
//! | `NAME_summary.csv` | `LABEL,metric,value`: the layout's metrics of the first seed's runs |
//! | `NAME_attribution.csv` | `LABEL,seed,family,position,chosen_term,rejected_term,predicted,actual,anchor_term` (with the mechanism): each family's change over the run split by DPO's two terms and, for a loss with one, the anchor on `y⁺` (SLiC's λ term) |
//! | `NAME_squeezing.csv` | `LABEL,seed,position,class,source,n,median_rejected_log_prob,median_argmax,share_argmax_rises,median_runner_up,median_rejected,median_chosen,share_chosen_falls,median_rest,median_entropy,median_rising`: squeezing at `y⁻`'s own positions ([`super::lm_measures::PositionRecord`]), per run, group of positions and classes ([`Group`]) and source of change ([`Source`]), each a median (or share) over the group's per-update instances, in nats per update |
//! | `NAME_squeezing_rows.csv` | `LABEL,seed,update,position,class,rejected_log_prob,source,argmax,runner_up,rejected,chosen,rest,entropy,rising` (with `squeezing_rows = "all"`): every instance |
//! | `NAME_negatives.csv` | `LABEL,seed,update,rejected_log_prob,min_token_log_prob,chosen_coefficient,rejected_coefficient,chosen_log_prob,rewards_chosen,rewards_rejected` (with the mechanism): every update's `y⁻`, `s±`, and the pair it trained as TRL logs it (`r± = β(log π − log π_ref)`) |
//! | `NAME_dashboard.csv` | `LABEL,seed,step,rewards_chosen,rewards_rejected,rewards_margins,rewards_accuracies,logps_chosen,logps_rejected,logps_chosen_per_token,logps_rejected_per_token`: TRL's logged metrics at every tracking point, over the dataset's training pairs ([`Dashboard`](crate::experiments::lm_measures::Dashboard)) |

//!
//! This module holds the comparison and the per-seed counting; `metric.rs` the summary
//! metrics, `tables.rs` the tables, `train.rs` the loop that trains every contender of
//! every seed ([`Comparison::train`]).

mod metric;
mod tables;
mod train;

pub use metric::{END_POSITION, Metric, others_split};
pub use train::{Contender, Training};

pub use crate::experiments::{Tally, count};

use crate::experiments::lm_measures::{ColumnChange, DpoRun, Group, Source, SqueezingRows};
use crate::language::Sizes;
use crate::stats::median;

/// What distinguishes the runs of a comparison: a regime, a loss, an arm.
pub trait Label: Copy + PartialEq {
    /// The label's id in CSV files and legends.
    fn id(self) -> &'static str;

    /// Whether its runs are drawn in the figure (all are in the tables): `false` for a
    /// control whose scale would hide the others, as `lm_policy`'s ablations.
    fn drawn(self) -> bool {
        true
    }
}

/// What a comparison writes and draws: its file stem, its label column, its summary
/// metrics, whether the SFT phase is part of its curves, and its figure's heading.
#[derive(Debug)]
pub struct Layout {
    /// The stem of its tables and figure (`lm_policy`).
    pub name: &'static str,
    /// The label's column in its tables (`regime`).
    pub column: &'static str,
    /// The metrics of its summary table, in order.
    pub summary: &'static [Metric],
    /// Whether the curves table holds the SFT phase too (a `phase` column, `sft`/`dpo`).
    pub sft_phase: bool,
    /// Whether it writes the mechanism's tables: the attribution by term and every
    /// update's negative and coefficients.
    pub mechanism: bool,
    /// What the figure shows; `{updates}` stands for the DPO updates.
    pub heading: &'static str,
}

/// The runs of an experiment that compares labels, seed by seed.
#[derive(Clone, Debug)]
pub struct Comparison<L> {
    /// Its tables and figure.
    pub layout: &'static Layout,
    /// The first seed; the summary is of this one.
    pub seed: u64,
    /// The updates every run was asked for.
    pub updates: usize,
    /// The language's sizes, which name its tokens.
    pub sizes: Sizes,
    /// Seed by seed, label by label.
    pub runs: Vec<DpoRun<L>>,
    /// Whether the squeezing table of every position of every update is written too.
    pub squeezing_rows: SqueezingRows,
    /// The `β` of the dashboard's rewards (DPO's, the world's).
    pub reward_beta: f64,
}

/// The median over one run's instances of `group` of the rejected term's `measure`
/// (`None` without instances or values).
pub fn rejected_median<L>(
    r: &DpoRun<L>,
    group: Group,
    measure: impl Fn(&ColumnChange) -> Option<f64>,
) -> Option<f64> {
    group.median(&r.squeezing, |p| measure(p.change(Source::RejectedTerm)))
}

/// The median of `values` as `format` writes it, or `none` for no values.
pub fn median_or_none(values: &[f64], format: fn(f64) -> String) -> String {
    match values.is_empty() {
        true => "none".to_string(),
        false => format(median(values)),
    }
}

/// A log-probability in nats, to one decimal.
pub fn log_prob(v: f64) -> String {
    format!("{v:.1}")
}

/// A change in nats per update, as squeezing claims print it.
pub fn nats(v: f64) -> String {
    format!("{v:+.4}")
}

/// A number of tokens, as squeezing claims print it.
pub fn tokens(v: f64) -> String {
    format!("{v:.1}")
}

/// The medians over `pairs` of `measure` of each side.
pub fn medians<R>(pairs: &[(&R, &R)], measure: impl Fn(&R) -> f64) -> (f64, f64) {
    let (a, b): (Vec<f64>, Vec<f64>) = pairs.iter().map(|(a, b)| (measure(a), measure(b))).unzip();
    (median(&a), median(&b))
}

impl<L: Label> Comparison<L> {
    /// The runs labelled `label`, one per seed.
    pub fn of(&self, label: L) -> impl Iterator<Item = &DpoRun<L>> {
        self.runs.iter().filter(move |r| r.label == label)
    }

    /// The labels, in the order of the first seed's runs.
    pub fn labels(&self) -> Vec<L> {
        self.first_seed().map(|r| r.label).collect()
    }

    /// The labels drawn in the figure ([`Label::drawn`]).
    pub fn drawn(&self) -> Vec<L> {
        self.labels().into_iter().filter(|l| l.drawn()).collect()
    }

    /// The first seed's runs.
    pub fn first_seed(&self) -> impl Iterator<Item = &DpoRun<L>> {
        self.runs.iter().filter(|r| r.seed == self.seed)
    }

    /// The runs of `a` and `b` on the same seeds, in pairs.
    pub fn paired(&self, a: L, b: L) -> Vec<(&DpoRun<L>, &DpoRun<L>)> {
        self.of(a).zip(self.of(b)).collect()
    }

    /// The median over seeds of `measure` of the runs of `label`.
    pub fn median(&self, label: L, measure: impl Fn(&DpoRun<L>) -> f64) -> f64 {
        median(&self.of(label).map(measure).collect::<Vec<_>>())
    }

    /// The runs of `label` whose squeezing records have instances of `group`: the seeds
    /// a squeezing claim counts (a seed without instances is not counted).
    pub fn with_instances(&self, label: L, group: Group) -> Vec<&DpoRun<L>> {
        let runs = self.of(label);
        runs.filter(|r| !group.of(&r.squeezing).is_empty())
            .collect()
    }

    /// How many of the seeds of `label` with instances of `group` pass `test`, and the
    /// median over those seeds of the per-seed median of the rejected term's `measure`,
    /// as `format` writes it (`none` without instances).
    pub fn squeezing_tally(
        &self,
        (label, group): (L, Group),
        test: impl Fn(&DpoRun<L>) -> bool,
        (measure, format): (
            impl Fn(&ColumnChange) -> Option<f64> + Copy,
            fn(f64) -> String,
        ),
    ) -> (Tally, String) {
        let runs = self.with_instances(label, group);
        let k = count(&runs, |r| test(r));
        let values: Vec<f64> = (runs.iter())
            .filter_map(|r| rejected_median(r, group, measure))
            .collect();
        (k, median_or_none(&values, format))
    }

    /// Whether every run took the updates it was asked for.
    pub fn all_updates_taken(&self) -> bool {
        self.runs.iter().all(|r| r.counts.updates == self.updates)
    }

    /// The figure's heading: what it shows, over how many seeds from which.
    pub fn heading(&self) -> String {
        let seeds = self.runs.len() / self.labels().len().max(1);
        format!(
            "{}: median and interquartile band over {seeds} seeds (from {})",
            self.layout
                .heading
                .replace("{updates}", &self.updates.to_string()),
            self.seed
        )
    }
}
