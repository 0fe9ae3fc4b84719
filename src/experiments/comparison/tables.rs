//! Every table a comparison's figure draws (see the module docs of
//! [`comparison`](super)).

use super::{Comparison, Label};
use crate::experiments::lm_measures::{
    AGGREGATE_COLUMNS, Group, ROW_COLUMNS, Source, Split, SqueezingRows, aggregate,
    rows as squeezing_rows,
};
use crate::experiments::{Cell, Table};
use crate::language::{ANSWER_LEN, Family};

impl<L: Label> Comparison<L> {
    /// Every table the comparison's figure draws: the curves, the greedy statistics per
    /// position, the repeater, the first seed's summary, and with the mechanism the
    /// attribution and the updates (see the module docs).
    pub fn tables(&self) -> Vec<Table> {
        let (layout, column) = (self.layout, self.layout.column);
        let (mut curves, mut positions, mut repeaters) = (Vec::new(), Vec::new(), Vec::new());
        // With the SFT phase, each DPO row names its phase too.
        let dpo = layout.sft_phase.then_some("dpo");
        for run in &self.runs {
            let (label, seed) = (run.label.id(), run.seed);
            if layout.sft_phase {
                curves.extend(run.sft.points.iter().map(|f| {
                    let (step, family) = (f.step, f.family.id());
                    crate::cells![label, seed, "sft", step, family, f.log_prob]
                }));
            }
            for point in &run.points {
                let step = point.step;
                curves.extend(point.families.iter().map(|f| {
                    let family = f.family.id();
                    let mut row = crate::cells![label, seed];
                    row.extend(dpo.map(Cell::from));
                    row.extend(crate::cells![step, family, f.log_prob]);
                    row
                }));
                positions.extend(point.fixed.iter().map(|p| {
                    let (prefix, m, chosen, n) =
                        (p.prefix.id(), p.position, p.argmax_is_chosen, p.n_probes);
                    let (argmax, rest) = (p.argmax, p.except_argmax);
                    crate::cells![
                        label,
                        seed,
                        step,
                        prefix,
                        m,
                        chosen,
                        n,
                        argmax,
                        rest,
                        p.fixed_argmax,
                        p.rest
                    ]
                }));
                let r = point.repeater;
                repeaters.push(crate::cells![
                    label,
                    seed,
                    step,
                    r.degenerate_rate,
                    r.repetition_rate,
                    r.wrong_entity_rate,
                    r.hallucination_rate,
                    r.distinct_token_share,
                    point.entropy
                ]);
            }
        }
        let summary = self
            .first_seed()
            .flat_map(|run| {
                let label = run.label.id();
                let rows = layout.summary.iter();
                rows.map(move |m| crate::cells![label, m.id(), m.of(run)])
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
            tables.push(self.first_order_table());
        }
        tables.push(self.squeezing_table());
        tables.push(self.dashboard_table());
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
                    let mut row =
                        crate::cells![label, seed, group.positions, group.class, source.id()];
                    row.extend(aggregate(&records, source));
                    rows.push(row);
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
                    .map(move |row| {
                        let mut cells = crate::cells![label, seed];
                        cells.extend(row);
                        cells
                    })
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
                rows.push(crate::cells![
                    label,
                    seed,
                    family,
                    position,
                    s.chosen_term,
                    s.rejected_term,
                    s.predicted,
                    s.actual,
                    s.anchor_term
                ]);
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
                "{},seed,family,position,chosen_term,rejected_term,predicted,actual,anchor_term",
                self.layout.column
            ),
            rows,
        )
    }

    /// `NAME_first_order.csv`: at every tracking point of every run, the accumulated
    /// first-order prediction against the actual change over the family cells
    /// ([`FirstOrderError`](crate::experiments::lm_measures::FirstOrderError)).
    fn first_order_table(&self) -> Table {
        let rows = (self.runs.iter())
            .flat_map(|run| {
                let (label, seed) = (run.label.id(), run.seed);
                (run.attribution.errors.iter()).map(move |e| {
                    crate::cells![label, seed, e.step, e.rms_error, e.spread, e.ratio()]
                })
            })
            .collect();
        Table::new(
            format!("{}_first_order", self.layout.name),
            format!(
                "{},seed,step,rms_error,spread_actual,error_to_signal",
                self.layout.column
            ),
            rows,
        )
    }

    /// `NAME_dashboard.csv`: TRL's logged metrics at every tracking point of every run
    /// ([`Dashboard`](crate::experiments::lm_measures::Dashboard)).
    fn dashboard_table(&self) -> Table {
        let rows = (self.runs.iter())
            .flat_map(|run| {
                let (label, seed) = (run.label.id(), run.seed);
                run.points.iter().map(move |p| {
                    let d = p.dashboard;
                    crate::cells![
                        label,
                        seed,
                        p.step,
                        d.rewards_chosen,
                        d.rewards_rejected,
                        d.margins(),
                        d.rewards_accuracies,
                        d.logps_chosen,
                        d.logps_rejected,
                        d.logps_chosen_per_token,
                        d.logps_rejected_per_token
                    ]
                })
            })
            .collect();
        Table::new(
            format!("{}_dashboard", self.layout.name),
            format!(
                "{},seed,step,rewards_chosen,rewards_rejected,rewards_margins,rewards_accuracies,logps_chosen,logps_rejected,logps_chosen_per_token,logps_rejected_per_token",
                self.layout.column
            ),
            rows,
        )
    }

    /// `NAME_negatives.csv`: every update of every run, where `y⁻` sat under the model
    /// when it was taken, the loss's two coefficients, and the pair's rewards as TRL
    /// logs them (`β (log π − log π_ref)`).
    fn negatives_table(&self) -> Table {
        let rows = self
            .runs
            .iter()
            .flat_map(|run| {
                let (label, seed) = (run.label.id(), run.seed);
                run.counts.records.iter().enumerate().map(move |(k, r)| {
                    let reward = |lp: f64, reference: f64| self.reward_beta * (lp - reference);
                    crate::cells![
                        label,
                        seed,
                        k + 1,
                        r.rejected_log_prob,
                        r.min_token_log_prob,
                        r.chosen_coefficient,
                        r.rejected_coefficient,
                        r.chosen_log_prob,
                        reward(r.chosen_log_prob, r.reference.0),
                        reward(r.rejected_log_prob, r.reference.1)
                    ]
                })
            })
            .collect();
        Table::new(
            format!("{}_negatives", self.layout.name),
            format!(
                "{},seed,update,rejected_log_prob,min_token_log_prob,chosen_coefficient,rejected_coefficient,chosen_log_prob,rewards_chosen,rewards_rejected",
                self.layout.column
            ),
            rows,
        )
    }
}
