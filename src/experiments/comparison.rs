//! DPO runs compared label by label over seeds (regimes in `lm_policy`, losses in
//! `lm_losses`, arms in `lm_extend`): the typed summary [`Metric`]s, and the one
//! [`Comparison`] type that owns every table its figure draws and the per-seed counting
//! its claims share.
//!
//! A comparison's tables, for the stem `NAME` and the label column `LABEL` of its
//! [`Layout`]:
//!
//! | file | columns |
//! |---|---|
//! | `NAME.csv` | `LABEL,seed,step,family,mean_log_prob` (with `phase` after `seed` when the SFT phase is tracked) |
//! | `NAME_positions.csv` | `LABEL,seed,step,prefix,position,argmax_log_prob,except_argmax_log_prob` |
//! | `NAME_repeater.csv` | `LABEL,seed,step,malformed_rate,distinct_token_share,mean_entropy` |
//! | `NAME_summary.csv` | `LABEL,metric,value`: the layout's metrics of the first seed's runs |

use super::Table;
use super::lm_measures::{DpoRun, FamilyPoint, Snapshot};
use crate::language::Family;
use crate::stats::median;

/// A summary number of one DPO run; its [`id`](Metric::id) is the CSV contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Updates taken.
    Updates,
    /// Unusable on-policy draws redrawn.
    Redraws,
    /// SFT token updates before DPO.
    SftTokenUpdates,
    /// Mean `‖A_m‖²_F` over the sequence families at the start of DPO.
    PeakinessAtDpoStart,
    /// Mean `log π(y⁻)` at the start of DPO.
    RejectedAtDpoStart,
    /// Change of mean `log π(y⁺)` over DPO, in nats.
    ChosenChange,
    /// Change of mean `log π(y⁻)` over DPO.
    RejectedChange,
    /// Change of the mean of the other families ([`Snapshot::others`]) over DPO.
    OthersChange,
    /// Change of `Σ_m log max π_m` on the rejected prefixes over DPO.
    ArgmaxRejectedPrefixChange,
    /// Change of `Σ_m log(1 − max π_m)` on the rejected prefixes over DPO.
    ExceptArgmaxRejectedPrefixChange,
    /// Share of malformed greedy answers at the start of DPO.
    MalformedRateBefore,
    /// Share of malformed greedy answers after DPO.
    MalformedRateAfter,
    /// Mean next-token entropy on both prefixes at the start of DPO, in nats.
    EntropyBefore,
    /// The same after DPO.
    EntropyAfter,
}

impl Metric {
    /// The metrics every DPO-run summary holds (`lm_policy`, `lm_losses`), in CSV order.
    pub const DPO: &'static [Metric] = &[
        Metric::Updates,
        Metric::Redraws,
        Metric::ChosenChange,
        Metric::RejectedChange,
        Metric::OthersChange,
        Metric::ArgmaxRejectedPrefixChange,
        Metric::MalformedRateBefore,
        Metric::MalformedRateAfter,
        Metric::EntropyBefore,
        Metric::EntropyAfter,
    ];

    /// The metric's id in CSV files.
    pub fn id(self) -> &'static str {
        match self {
            Metric::Updates => "updates",
            Metric::Redraws => "redraws",
            Metric::SftTokenUpdates => "sft_token_updates",
            Metric::PeakinessAtDpoStart => "peakiness_at_dpo_start",
            Metric::RejectedAtDpoStart => "rejected_at_dpo_start",
            Metric::ChosenChange => "chosen_change",
            Metric::RejectedChange => "rejected_change",
            Metric::OthersChange => "others_change",
            Metric::ArgmaxRejectedPrefixChange => "argmax_rejected_prefix_change",
            Metric::ExceptArgmaxRejectedPrefixChange => "except_argmax_rejected_prefix_change",
            Metric::MalformedRateBefore => "malformed_rate_before",
            Metric::MalformedRateAfter => "malformed_rate_after",
            Metric::EntropyBefore => "entropy_before",
            Metric::EntropyAfter => "entropy_after",
        }
    }

    /// The metric's value for `run`.
    pub fn of<L>(self, run: &DpoRun<L>) -> f64 {
        let family = |f| move |p: &Snapshot| p.family(f);
        match self {
            Metric::Updates => run.counts.updates as f64,
            Metric::Redraws => run.counts.redraws as f64,
            Metric::SftTokenUpdates => run.sft.token_updates as f64,
            Metric::PeakinessAtDpoStart => peakiness(&run.first().families),
            Metric::RejectedAtDpoStart => run.first().family(Family::Rejected),
            Metric::ChosenChange => run.change(family(Family::Chosen)),
            Metric::RejectedChange => run.change(family(Family::Rejected)),
            Metric::OthersChange => run.change(Snapshot::others),
            Metric::ArgmaxRejectedPrefixChange => run.change(family(Family::ArgmaxRejectedPrefix)),
            Metric::ExceptArgmaxRejectedPrefixChange => {
                run.change(family(Family::ExceptArgmaxRejectedPrefix))
            }
            Metric::MalformedRateBefore => run.first().repeater.malformed_rate,
            Metric::MalformedRateAfter => run.last().repeater.malformed_rate,
            Metric::EntropyBefore => run.first().entropy,
            Metric::EntropyAfter => run.last().entropy,
        }
    }
}

/// The mean `‖A_m‖²_F` of the sequence families among `families`.
fn peakiness(families: &[FamilyPoint]) -> f64 {
    let sequences: Vec<f64> = families
        .iter()
        .filter(|f| f.family.is_sequence())
        .map(|f| f.a_fro_sq)
        .collect();
    sequences.iter().sum::<f64>() / sequences.len() as f64
}

/// What distinguishes the runs of a comparison: a regime, a loss, an arm.
pub trait Label: Copy + PartialEq {
    /// The label's id in CSV files and legends.
    fn id(self) -> &'static str;
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
    /// Seed by seed, label by label.
    pub runs: Vec<DpoRun<L>>,
}

/// How many of `items` satisfy `test`, and whether that is all of them but at most one
/// (and at least one): the rule by which a per-seed claim holds.
pub fn count<T>(items: &[T], test: impl Fn(&T) -> bool) -> Tally {
    let k = items.iter().filter(|p| test(p)).count();
    Tally {
        k,
        n: items.len(),
        holds: k + 1 >= items.len() && k > 0,
    }
}

/// The outcome of [`count`]: it holds on `k` of `n` seeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tally {
    /// Seeds on which the test held.
    pub k: usize,
    /// Seeds counted.
    pub n: usize,
    /// Whether the claim holds: on all but at most one seed, and on one at least.
    pub holds: bool,
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
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

    /// Every table the comparison's figure draws: the curves, the greedy statistics per
    /// position, the repeater, and the first seed's summary (see the module docs).
    pub fn tables(&self) -> Vec<Table> {
        let (layout, column) = (self.layout, self.layout.column);
        let (mut curves, mut positions, mut repeaters) = (Vec::new(), Vec::new(), Vec::new());
        // With the SFT phase, each DPO row names its phase too.
        let dpo = if layout.sft_phase { "dpo," } else { "" };
        for run in &self.runs {
            let (label, seed) = (run.label.id(), run.seed);
            if layout.sft_phase {
                curves.extend(run.sft.points.iter().map(|f| {
                    let (step, family) = (f.step, f.family.id());
                    format!("{label},{seed},sft,{step},{family},{}", f.log_prob)
                }));
            }
            for point in &run.points {
                let step = point.step;
                curves.extend(point.families.iter().map(|f| {
                    let family = f.family.id();
                    format!("{label},{seed},{dpo}{step},{family},{}", f.log_prob)
                }));
                positions.extend(point.positions.iter().map(|p| {
                    let (prefix, m) = (p.prefix.id(), p.position);
                    let (argmax, rest) = (p.argmax, p.except_argmax);
                    format!("{label},{seed},{step},{prefix},{m},{argmax},{rest}")
                }));
                let r = point.repeater;
                let (malformed, distinct) = (r.malformed_rate, r.distinct_token_share);
                let entropy = point.entropy;
                repeaters.push(format!(
                    "{label},{seed},{step},{malformed},{distinct},{entropy}"
                ));
            }
        }
        let summary = self
            .first_seed()
            .flat_map(|run| {
                let label = run.label.id();
                let rows = layout.summary.iter();
                rows.map(move |m| format!("{label},{},{}", m.id(), m.of(run)))
            })
            .collect();
        let phase = if layout.sft_phase { "phase," } else { "" };
        let name = layout.name;
        vec![
            Table::new(
                name,
                format!("{column},seed,{phase}step,family,mean_log_prob"),
                curves,
            ),
            Table::new(
                format!("{name}_positions"),
                format!(
                    "{column},seed,step,prefix,position,argmax_log_prob,except_argmax_log_prob"
                ),
                positions,
            ),
            Table::new(
                format!("{name}_repeater"),
                format!("{column},seed,step,malformed_rate,distinct_token_share,mean_entropy"),
                repeaters,
            ),
            Table::new(
                format!("{name}_summary"),
                format!("{column},metric,value"),
                summary,
            ),
        ]
    }
}
