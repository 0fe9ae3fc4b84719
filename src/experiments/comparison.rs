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
//! | `NAME_positions.csv` | `LABEL,seed,step,prefix,position,argmax_is_chosen,n_probes,argmax_log_prob,except_argmax_log_prob,fixed_argmax_log_prob,rest_log_prob`: per prefix and position, the probes split by whether the argmax fixed at the start of DPO is `y⁺`'s token, each row a mean over its `n_probes` |
//! | `NAME_repeater.csv` | `LABEL,seed,step,degenerate_rate,repetition_rate,wrong_entity_rate,hallucination_rate,distinct_token_share,mean_entropy` |
//! | `NAME_summary.csv` | `LABEL,metric,value`: the layout's metrics of the first seed's runs |
//! | `NAME_attribution.csv` | `LABEL,seed,family,position,chosen_term,rejected_term,predicted,actual` (with the mechanism): each family's change over the run split by DPO's two terms |
//! | `NAME_squeezing.csv` | `LABEL,seed,position,class,source,n,median_rejected_log_prob,median_argmax,share_argmax_rises,median_runner_up,median_rejected,median_chosen,share_chosen_falls,median_rest,median_entropy,median_rising`: squeezing at `y⁻`'s own positions ([`super::lm_measures::PositionRecord`]), per run, group of positions and classes ([`Group`]) and source of change ([`Source`]), each a median (or share) over the group's per-update instances, in nats per update |
//! | `NAME_squeezing_rows.csv` | `LABEL,seed,update,position,class,rejected_log_prob,source,argmax,runner_up,rejected,chosen,rest,entropy,rising` (with `squeezing_rows = "all"`): every instance |
//! | `NAME_negatives.csv` | `LABEL,seed,update,rejected_log_prob,min_token_log_prob,chosen_coefficient,rejected_coefficient` (with the mechanism): every update's `y⁻` and `s±` |

use super::Table;
use super::lm_measures::{
    AGGREGATE_COLUMNS, ColumnChange, DpoRun, FamilyPoint, Group, ROW_COLUMNS, Snapshot, Source,
    Split, SqueezingRows, UpdateRecord, aggregate, rows as squeezing_rows,
};
use crate::language::{ANSWER_LEN, Family, Sizes};
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
    /// The share of facts the base model answers greedily, before SFT.
    BaseFactAccuracy,
    /// Mean `‖A_m‖²_F` over the sequence families at the start of DPO.
    PeakinessAtDpoStart,
    /// Mean `log π(y⁻)` at the start of DPO.
    RejectedAtDpoStart,
    /// Change of mean `log π(y⁺)` over DPO, in nats.
    ChosenChange,
    /// Change of mean `log π(y⁻)` over DPO.
    RejectedChange,
    /// Change of the mean of the eight other families ([`Snapshot::others`]), all
    /// positions, over DPO.
    OthersChange,
    /// Change of the mean of the seven like-for-like others
    /// ([`Family::like_for_like_others`]) at the three content positions (entity, copula,
    /// value), over DPO.
    OthersChangeContent,
    /// The same at the `END` position.
    OthersChangeEnd,
    /// Change of `log π` of `rejected_rephrase` (`y⁻`'s wrong value in other words).
    RejectedRephraseChange,
    /// Change of `Σ_m log max π_m` on the rejected prefixes over DPO.
    ArgmaxRejectedPrefixChange,
    /// Change of `Σ_m log(1 − max π_m)` on the rejected prefixes over DPO.
    ExceptArgmaxRejectedPrefixChange,
    /// Share of greedy answers to training prompts that are not well-formed, at the
    /// start of DPO.
    DegenerateRateBefore,
    /// The same after DPO.
    DegenerateRateAfter,
    /// Share of greedy answers to training prompts that repeat a token or miss `END`,
    /// after DPO.
    RepetitionRateAfter,
    /// Share of greedy answers to training prompts about another entity, after DPO.
    WrongEntityRateAfter,
    /// Share of greedy answers to held-out prompts about another entity, at the start.
    HallucinationRateBefore,
    /// The same after DPO.
    HallucinationRateAfter,
    /// Mean next-token entropy on both prefixes at the start of DPO, in nats.
    EntropyBefore,
    /// The same after DPO.
    EntropyAfter,
    /// `Σ s⁺` over the updates: how hard the chosen term pulled in total.
    ChosenCoefficientSum,
    /// `Σ s⁻` over the updates: how hard the rejected term pushed in total.
    RejectedCoefficientSum,
}

impl Metric {
    /// The metrics every DPO-run summary holds (`lm_policy`, `lm_losses`), in CSV order.
    pub const DPO: &'static [Metric] = &[
        Metric::Updates,
        Metric::Redraws,
        Metric::BaseFactAccuracy,
        Metric::ChosenChange,
        Metric::RejectedChange,
        Metric::OthersChange,
        Metric::OthersChangeContent,
        Metric::OthersChangeEnd,
        Metric::RejectedRephraseChange,
        Metric::ArgmaxRejectedPrefixChange,
        Metric::DegenerateRateBefore,
        Metric::DegenerateRateAfter,
        Metric::RepetitionRateAfter,
        Metric::WrongEntityRateAfter,
        Metric::HallucinationRateBefore,
        Metric::HallucinationRateAfter,
        Metric::EntropyBefore,
        Metric::EntropyAfter,
        Metric::ChosenCoefficientSum,
        Metric::RejectedCoefficientSum,
    ];

    /// The metric's id in CSV files.
    pub fn id(self) -> &'static str {
        match self {
            Metric::Updates => "updates",
            Metric::Redraws => "redraws",
            Metric::SftTokenUpdates => "sft_token_updates",
            Metric::BaseFactAccuracy => "base_fact_accuracy",
            Metric::PeakinessAtDpoStart => "peakiness_at_dpo_start",
            Metric::RejectedAtDpoStart => "rejected_at_dpo_start",
            Metric::ChosenChange => "chosen_change",
            Metric::RejectedChange => "rejected_change",
            Metric::OthersChange => "others_change",
            Metric::OthersChangeContent => "others_change_content",
            Metric::OthersChangeEnd => "others_change_end",
            Metric::RejectedRephraseChange => "rejected_rephrase_change",
            Metric::ArgmaxRejectedPrefixChange => "argmax_rejected_prefix_change",
            Metric::ExceptArgmaxRejectedPrefixChange => "except_argmax_rejected_prefix_change",
            Metric::DegenerateRateBefore => "degenerate_rate_before",
            Metric::DegenerateRateAfter => "degenerate_rate_after",
            Metric::RepetitionRateAfter => "repetition_rate_after",
            Metric::WrongEntityRateAfter => "wrong_entity_rate_after",
            Metric::HallucinationRateBefore => "hallucination_rate_before",
            Metric::HallucinationRateAfter => "hallucination_rate_after",
            Metric::EntropyBefore => "entropy_before",
            Metric::EntropyAfter => "entropy_after",
            Metric::ChosenCoefficientSum => "chosen_coefficient_sum",
            Metric::RejectedCoefficientSum => "rejected_coefficient_sum",
        }
    }

    /// The metric's value for `run`.
    pub fn of<L>(self, run: &DpoRun<L>) -> f64 {
        let family = |f| move |p: &Snapshot| p.family(f);
        let coefficients = |s: fn(&UpdateRecord) -> f64| run.counts.records.iter().map(s).sum();
        match self {
            Metric::Updates => run.counts.updates as f64,
            Metric::Redraws => run.counts.redraws as f64,
            Metric::SftTokenUpdates => run.sft.token_updates as f64,
            Metric::BaseFactAccuracy => run.sft.base_fact_accuracy,
            Metric::PeakinessAtDpoStart => peakiness(&run.first().families),
            Metric::RejectedAtDpoStart => run.first().family(Family::Rejected),
            Metric::ChosenChange => run.change(family(Family::Chosen)),
            Metric::RejectedChange => run.change(family(Family::Rejected)),
            Metric::OthersChange => run.change(Snapshot::others),
            Metric::OthersChangeContent => others_actual(run, |m| m != END_POSITION),
            Metric::OthersChangeEnd => others_actual(run, |m| m == END_POSITION),
            Metric::RejectedRephraseChange => run.change(family(Family::RejectedRephrase)),
            Metric::ArgmaxRejectedPrefixChange => run.change(family(Family::ArgmaxRejectedPrefix)),
            Metric::ExceptArgmaxRejectedPrefixChange => {
                run.change(family(Family::ExceptArgmaxRejectedPrefix))
            }
            Metric::DegenerateRateBefore => run.first().repeater.degenerate_rate,
            Metric::DegenerateRateAfter => run.last().repeater.degenerate_rate,
            Metric::RepetitionRateAfter => run.last().repeater.repetition_rate,
            Metric::WrongEntityRateAfter => run.last().repeater.wrong_entity_rate,
            Metric::HallucinationRateBefore => run.first().repeater.hallucination_rate,
            Metric::HallucinationRateAfter => run.last().repeater.hallucination_rate,
            Metric::EntropyBefore => run.first().entropy,
            Metric::EntropyAfter => run.last().entropy,
            Metric::ChosenCoefficientSum => coefficients(|r| r.chosen_coefficient),
            Metric::RejectedCoefficientSum => coefficients(|r| r.rejected_coefficient),
        }
    }
}

/// The response position of `END` in an answer `[e, COPULA, VALUE, END]`.
pub const END_POSITION: usize = ANSWER_LEN - 1;

/// The mean over the like-for-like others of the attributed split of their change at
/// the `positions` kept.
pub fn others_split<L>(run: &DpoRun<L>, positions: impl Fn(usize) -> bool + Copy) -> Split {
    let families: Vec<Family> = Family::like_for_like_others().collect();
    let splits: Vec<Split> = (families.iter())
        .map(|&f| run.attribution.family(f, positions))
        .collect();
    Split::mean(&splits)
}

/// The actual change of the like-for-like others at the `positions` kept.
fn others_actual<L>(run: &DpoRun<L>, positions: impl Fn(usize) -> bool + Copy) -> f64 {
    others_split(run, positions).actual
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

    /// Every table the comparison's figure draws: the curves, the greedy statistics per
    /// position, the repeater, the first seed's summary, and with the mechanism the
    /// attribution and the updates (see the module docs).
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
                positions.extend(point.fixed.iter().map(|p| {
                    let (prefix, m, chosen, n) =
                        (p.prefix.id(), p.position, p.argmax_is_chosen, p.n_probes);
                    let (argmax, rest) = (p.argmax, p.except_argmax);
                    format!(
                        "{label},{seed},{step},{prefix},{m},{chosen},{n},{argmax},{rest},{},{}",
                        p.fixed_argmax, p.rest
                    )
                }));
                let r = point.repeater;
                repeaters.push(format!(
                    "{label},{seed},{step},{},{},{},{},{},{}",
                    r.degenerate_rate,
                    r.repetition_rate,
                    r.wrong_entity_rate,
                    r.hallucination_rate,
                    r.distinct_token_share,
                    point.entropy
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
        let mut tables = vec![
            Table::new(
                name,
                format!("{column},seed,{phase}step,family,mean_log_prob"),
                curves,
            ),
            Table::new(
                format!("{name}_positions"),
                format!(
                    "{column},seed,step,prefix,position,argmax_is_chosen,n_probes,argmax_log_prob,except_argmax_log_prob,fixed_argmax_log_prob,rest_log_prob"
                ),
                positions,
            ),
            Table::new(
                format!("{name}_repeater"),
                format!(
                    "{column},seed,step,degenerate_rate,repetition_rate,wrong_entity_rate,hallucination_rate,distinct_token_share,mean_entropy"
                ),
                repeaters,
            ),
            Table::new(
                format!("{name}_summary"),
                format!("{column},metric,value"),
                summary,
            ),
        ];
        if layout.mechanism {
            tables.push(self.attribution_table());
            tables.push(self.negatives_table());
        }
        tables.push(self.squeezing_table());
        if self.squeezing_rows == SqueezingRows::All {
            tables.push(self.squeezing_rows_table());
        }
        tables
    }

    /// `NAME_squeezing.csv`: per run, [`Group`] and [`Source`], the aggregates of the
    /// squeezing records at `y⁻`'s own positions ([`AGGREGATE_COLUMNS`]).
    fn squeezing_table(&self) -> Table {
        let mut rows = Vec::new();
        for run in &self.runs {
            let (label, seed) = (run.label.id(), run.seed);
            for group in Group::all(&run.squeezing) {
                let records = group.of(&run.squeezing);
                if records.is_empty() {
                    continue;
                }
                for source in Source::ALL {
                    rows.push(format!(
                        "{label},{seed},{},{},{},{}",
                        group.positions,
                        group.class,
                        source.id(),
                        aggregate(&records, source)
                    ));
                }
            }
        }
        Table::new(
            format!("{}_squeezing", self.layout.name),
            format!(
                "{},seed,position,class,source,{AGGREGATE_COLUMNS}",
                self.layout.column
            ),
            rows,
        )
    }

    /// `NAME_squeezing_rows.csv`: every squeezing record of every run, one row per
    /// source ([`ROW_COLUMNS`]).
    fn squeezing_rows_table(&self) -> Table {
        let rows = (self.runs.iter())
            .flat_map(|run| {
                let (label, seed) = (run.label.id(), run.seed);
                (run.squeezing.iter())
                    .flat_map(squeezing_rows)
                    .map(move |row| format!("{label},{seed},{row}"))
            })
            .collect();
        Table::new(
            format!("{}_squeezing_rows", self.layout.name),
            format!("{},seed,{ROW_COLUMNS}", self.layout.column),
            rows,
        )
    }

    /// `NAME_attribution.csv`: every run's attributed change of every sequence family per
    /// response position and summed (`all`); of the fixed argmax at every position of
    /// each prefix, on the probes where it is not `y⁺`'s token
    /// (`fixed_argmax_chosen_prefix`, `fixed_argmax_rejected_prefix`), which does not
    /// test squeezing ([`super::lm_measures::Attribution`]; squeezing is
    /// `NAME_squeezing.csv`).
    fn attribution_table(&self) -> Table {
        let mut rows = Vec::new();
        for run in &self.runs {
            let (label, seed) = (run.label.id(), run.seed);
            let mut row = |family: &str, position: &str, s: Split| {
                rows.push(format!(
                    "{label},{seed},{family},{position},{},{},{},{}",
                    s.chosen_term, s.rejected_term, s.predicted, s.actual
                ));
            };
            for family in Family::sequences() {
                for m in 0..ANSWER_LEN {
                    row(
                        family.id(),
                        &m.to_string(),
                        run.attribution.family(family, |p| p == m),
                    );
                }
                row(family.id(), "all", run.attribution.family(family, |_| true));
            }
            for cell in run.attribution.fixed.iter().filter(|c| !c.argmax_is_chosen) {
                let family = format!("fixed_argmax_{}_prefix", cell.prefix.id());
                row(&family, &cell.position.to_string(), cell.split);
            }
        }
        Table::new(
            format!("{}_attribution", self.layout.name),
            format!(
                "{},seed,family,position,chosen_term,rejected_term,predicted,actual",
                self.layout.column
            ),
            rows,
        )
    }

    /// `NAME_negatives.csv`: every update of every run, where `y⁻` sat under the model
    /// when it was taken and the loss's two coefficients.
    fn negatives_table(&self) -> Table {
        let rows = self
            .runs
            .iter()
            .flat_map(|run| {
                let (label, seed) = (run.label.id(), run.seed);
                run.counts.records.iter().enumerate().map(move |(k, r)| {
                    format!(
                        "{label},{seed},{},{},{},{},{}",
                        k + 1,
                        r.rejected_log_prob,
                        r.min_token_log_prob,
                        r.chosen_coefficient,
                        r.rejected_coefficient
                    )
                })
            })
            .collect();
        Table::new(
            format!("{}_negatives", self.layout.name),
            format!(
                "{},seed,update,rejected_log_prob,min_token_log_prob,chosen_coefficient,rejected_coefficient",
                self.layout.column
            ),
            rows,
        )
    }
}
