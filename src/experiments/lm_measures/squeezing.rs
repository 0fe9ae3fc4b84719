//! Squeezing where the theory puts it: at every update, at each of `y⁻`'s own response
//! positions, with the model before the update, what each of the loss's terms does to
//! the distribution the rejected term pushes on.
//!
//! The paper's squeezing (its §3.3 and App. E) is a statement about one column of
//! logits. A negative gradient on `y⁻` where `y⁻` is not the argmax (a **valley**) frees
//! mass that goes to the **current** argmax, and on a peaky column almost every other
//! token falls, `y⁺`'s included; where `y⁻` *is* the argmax (a **peak**) the same push
//! flattens the column. So the measure is taken at `y⁻`'s positions that it does not
//! share with `y⁺` ([`shared_positions`]: the copula when the copulas differ, the value,
//! `END`), each classed by its argmax at that moment ([`Class`]), and records, for each
//! [`Source`] of change, the change of the argmax, the runner-up, `y⁻`'s and `y⁺`'s
//! tokens, the rest of the mass, the entropy, and how many tokens rise
//! ([`ColumnChange`]).
//!
//! The terms' changes are first-order, along the run's own trajectory: the rejected
//! term's is `A_m J_m (−η J⁻ᵀ G⁻)` with `G⁻` from [`split_terms`](crate::objective::split_terms) (forward mode, from the
//! model before the update), so it includes what `y⁻`'s other positions do to this one
//! through shared parameters. The **toy** is App. E's softmax on this column alone:
//! `Δz = −η G⁻_m = η s⁻ (π − e_{y⁻})` (`K = I`), also to first order (`A Δz`), so it
//! differs from the rejected term only by the network's kernel. To first order the toy's
//! signs do not depend on its scale: a token `i ≠ y⁻` rises iff `π_i > ‖π‖² − π_{y⁻}`.
//!
//! A first-order change `d = Δ log π` of the column gives each measure's differential:
//! `Δ log R = Σ_{i∈R} (π_i / R) d_i` for the rest `R` (every token but the argmax,
//! `y⁻`'s and `y⁺`'s) and `ΔH = −Σ_i π_i (log π_i + 1) d_i`. The actual change is exact:
//! `log R` and `H` after the step less before (by log-sum-exp, never `log(1 − …)`).
//!
//! One concept at 488 lines, kept whole: the record of one position, its classes and
//! sources, the tracker that fills it and the aggregates the tables read are one measure.

use nalgebra::DMatrix;

use super::attribution::term_directions;
use serde::{Deserialize, Serialize};

use crate::decomposition::predict;
use crate::error::{Error, Result};
use crate::experiments::Cell;
use crate::experiments::settings::{Key, Range, Variants};
use crate::lm::{Sequence, TinyLm};
use crate::model::Model;
use crate::numerics::{entropy_from_log, log_softmax_columns, log_sum_exp};
use crate::objective::shared_positions;
use crate::stats::median;
use crate::trainer::{Observer, StepEvent};

/// What the argmax of the column is when `y⁻` is pushed there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// The argmax is `y⁻`'s token (whether or not it is also `y⁺`'s): the push flattens.
    Peak,
    /// The argmax is `y⁺`'s token at that index (read in `y⁻`'s context), not `y⁻`'s.
    Chosen,
    /// The argmax is neither `y⁻`'s nor `y⁺`'s token.
    Third,
}

impl Class {
    /// Every class, in table order.
    pub const ALL: [Class; 3] = [Class::Third, Class::Chosen, Class::Peak];

    /// The class's id in CSV files.
    pub fn id(self) -> &'static str {
        match self {
            Class::Peak => "peak",
            Class::Chosen => "chosen",
            Class::Third => "third",
        }
    }

    /// A valley: `y⁻`'s token is not the argmax.
    pub fn is_valley(self) -> bool {
        self != Class::Peak
    }
}

/// Where a change of the column comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The chosen term's first-order change (the pull on `y⁺`).
    ChosenTerm,
    /// The rejected term's first-order change (the push on `y⁻`).
    RejectedTerm,
    /// The step's first-order prediction, `A J (θ_after − θ_before)`.
    Predicted,
    /// The step's actual change.
    Actual,
    /// App. E's softmax toy on this column: `A (−η G⁻_m)`.
    Toy,
}

impl Source {
    /// Every source, in the order of [`PositionRecord::changes`].
    pub const ALL: [Source; 5] = [
        Source::ChosenTerm,
        Source::RejectedTerm,
        Source::Predicted,
        Source::Actual,
        Source::Toy,
    ];

    /// The source's id in CSV files.
    pub fn id(self) -> &'static str {
        match self {
            Source::ChosenTerm => "chosen_term",
            Source::RejectedTerm => "rejected_term",
            Source::Predicted => "predicted",
            Source::Actual => "actual",
            Source::Toy => "toy",
        }
    }
}

/// The changes of one column's measures under one [`Source`], in nats (`rising` counts).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ColumnChange {
    /// `Δ log π` of the current argmax.
    pub argmax: f64,
    /// `Δ log π` of the runner-up (the second most likely token).
    pub runner_up: f64,
    /// `Δ log π` of `y⁻`'s token.
    pub rejected: f64,
    /// `Δ log π` of `y⁺`'s token at this index, where it has one other than `y⁻`'s.
    pub chosen: Option<f64>,
    /// `Δ log R`, `R` the mass of every token but the argmax, `y⁻`'s and `y⁺`'s.
    pub rest: f64,
    /// `ΔH`, the entropy's change.
    pub entropy: f64,
    /// How many tokens' `log π` rise.
    pub rising: usize,
}

/// One column before the update: its `log π` and the tokens the measures name.
struct Column {
    log_pi: Vec<f64>,
    argmax: usize,
    runner_up: usize,
    rejected: usize,
    chosen: Option<usize>,
    /// Whether each token is in the rest.
    in_rest: Vec<bool>,
    /// `log R` before the update.
    log_rest: f64,
}

impl Column {
    fn new(log_pi: Vec<f64>, rejected: usize, chosen: Option<usize>) -> Self {
        let mut order: Vec<usize> = (0..log_pi.len()).collect();
        // Most likely first; ties to the lower token, as `argmax` does.
        order.sort_by(|&a, &b| log_pi[b].total_cmp(&log_pi[a]).then(a.cmp(&b)));
        let (argmax, runner_up) = (order[0], order[1]);
        let chosen = chosen.filter(|&t| t != rejected);
        let in_rest: Vec<bool> = (0..log_pi.len())
            .map(|i| i != argmax && i != rejected && Some(i) != chosen)
            .collect();
        let log_rest = log_sum_exp(&rest_of(&log_pi, &in_rest));
        Column {
            log_pi,
            argmax,
            runner_up,
            rejected,
            chosen,
            in_rest,
            log_rest,
        }
    }

    fn class(&self, chosen_token: Option<usize>) -> Class {
        if self.argmax == self.rejected {
            Class::Peak
        } else if Some(self.argmax) == chosen_token {
            Class::Chosen
        } else {
            Class::Third
        }
    }

    /// The named tokens' changes and the rising count of a change `d`.
    fn tokens(&self, d: &[f64], rest: f64, entropy: f64) -> ColumnChange {
        ColumnChange {
            argmax: d[self.argmax],
            runner_up: d[self.runner_up],
            rejected: d[self.rejected],
            chosen: self.chosen.map(|t| d[t]),
            rest,
            entropy,
            rising: d.iter().filter(|&&v| v > 0.0).count(),
        }
    }

    /// The first-order change of every measure under `d = Δ log π` (the module docs).
    fn first_order(&self, d: &[f64]) -> ColumnChange {
        let (mut rest, mut entropy) = (0.0, 0.0);
        for (i, (&lp, &di)) in self.log_pi.iter().zip(d).enumerate() {
            if self.in_rest[i] {
                rest += (lp - self.log_rest).exp() * di;
            }
            if lp.is_finite() {
                entropy -= lp.exp() * (lp + 1.0) * di;
            }
        }
        self.tokens(d, rest, entropy)
    }

    /// The exact change of every measure from this column to `after` (`log π` after).
    fn exact(&self, after: &[f64]) -> ColumnChange {
        let d: Vec<f64> = after.iter().zip(&self.log_pi).map(|(a, b)| a - b).collect();
        let rest = log_sum_exp(&rest_of(after, &self.in_rest)) - self.log_rest;
        let entropy = entropy_from_log(after) - entropy_from_log(&self.log_pi);
        self.tokens(&d, rest, entropy)
    }
}

fn rest_of(log_pi: &[f64], in_rest: &[bool]) -> Vec<f64> {
    (log_pi.iter().zip(in_rest))
        .filter(|(_, keep)| **keep)
        .map(|(&lp, _)| lp)
        .collect()
}

/// What one update did at one of `y⁻`'s own positions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PositionRecord {
    /// The update, from 1.
    pub update: usize,
    /// The response position `m` (1 copula, 2 value, 3 `END` in a well-formed answer).
    pub position: usize,
    /// What the argmax was, before the update.
    pub class: Class,
    /// `log π(y⁻_m)` before the update: how deep the valley is.
    pub rejected_log_prob: f64,
    /// The column's change by source, in [`Source::ALL`] order.
    pub changes: [ColumnChange; 5],
}

impl PositionRecord {
    /// The change under `source`.
    pub fn change(&self, source: Source) -> &ColumnChange {
        &self.changes[source as usize]
    }
}

/// The records of update number `update` on `[χ⁺, χ⁻]` with residuals `residuals`
/// (`[G⁺, G⁻]` at `before`), learning rate `eta`, which took `before` to `after`: one per
/// position of `y⁻` that it does not share with `y⁺`.
///
/// # Errors
/// If a logit of `after` on `χ⁻` is not finite.
pub fn measure_update(
    update: usize,
    (before, after): (&TinyLm, &TinyLm),
    pair: &[Sequence],
    residuals: &[DMatrix<f64>],
    eta: f64,
) -> Result<Vec<PositionRecord>> {
    let (plus, minus) = (&pair[0], &pair[1]);
    let shared = shared_positions(plus.response(), minus.response());
    // The anchor stays in the chosen term here: the squeezing table's sources are DPO's
    // two terms as the loss applies them at y⁻'s positions.
    let (terms, directions) = term_directions((before, after), pair, (residuals, None), eta);
    let [_, g_rejected] = terms;
    let (log_pi, moved) = predict(before, std::slice::from_ref(minus), &directions);
    let z_after = after.logits(minus);
    if !z_after.iter().all(|v| v.is_finite()) {
        return Err(Error::NonFinite("logits"));
    }
    let lp_after = log_softmax_columns(&z_after);
    let column = |m: &DMatrix<f64>, at: usize| m.column(at).iter().copied().collect::<Vec<f64>>();
    let records = (0..minus.response().len())
        .filter(|&m| !shared.get(m).copied().unwrap_or(false))
        .map(|m| {
            let chosen_token = plus.response().get(m).copied();
            let rejected = minus.response()[m];
            let c = Column::new(column(&log_pi[0], m), rejected, chosen_token);
            // App. E's toy: Δz = −η G⁻_m on this column alone, to first order (A Δz).
            let dz: Vec<f64> = g_rejected[1].column(m).iter().map(|g| -eta * g).collect();
            let mean: f64 = (c.log_pi.iter().zip(&dz)).map(|(lp, v)| lp.exp() * v).sum();
            let toy: Vec<f64> = dz.iter().map(|v| v - mean).collect();
            PositionRecord {
                update,
                position: m,
                class: c.class(chosen_token),
                rejected_log_prob: c.log_pi[rejected],
                changes: [
                    c.first_order(&column(&moved[0][0], m)),
                    c.first_order(&column(&moved[1][0], m)),
                    c.first_order(&column(&moved[2][0], m)),
                    c.exact(&column(&lp_after, m)),
                    c.first_order(&toy),
                ],
            }
        })
        .collect();
    Ok(records)
}

/// Records every update's [`PositionRecord`]s of a preference run.
#[derive(Default)]
pub struct SqueezingTracker {
    /// Every update's records, in order.
    pub records: Vec<PositionRecord>,
}

impl Observer<TinyLm> for SqueezingTracker {
    fn step(&mut self, e: &StepEvent<'_, TinyLm>) -> Result<()> {
        if e.update.len() == 2 {
            let records = measure_update(
                e.step + 1,
                (e.before, e.after),
                e.update,
                e.residuals,
                e.eta,
            )?;
            self.records.extend(records);
        }
        Ok(())
    }
}

/// Which positions and classes a group of records pools.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Group {
    /// The positions, as written in the `position` column (`2`, or `2-3`).
    pub positions: &'static str,
    /// The classes, as written in the `class` column (`third`, or `valley`).
    pub class: &'static str,
}

impl Group {
    /// The valleys at the value and `END` positions (classes `chosen` and `third`).
    pub const VALLEY: Group = Group {
        positions: "2-3",
        class: "valley",
    };
    /// The valleys at the value position alone.
    pub const VALUE_VALLEY: Group = Group {
        positions: "2",
        class: "valley",
    };
    /// The `third` class at the value position: neither `y⁺`'s nor `y⁻`'s token is the
    /// argmax.
    pub const THIRD: Group = Group {
        positions: "2",
        class: "third",
    };
    /// The `chosen` class at the value position.
    pub const CHOSEN: Group = Group {
        positions: "2",
        class: "chosen",
    };
    /// The peaks at the copula and value positions.
    pub const PEAK: Group = Group {
        positions: "1-2",
        class: "peak",
    };

    /// Every group the aggregate table holds: each position with each class, then the
    /// pooled [`Group::VALLEY`], [`Group::VALUE_VALLEY`] and [`Group::PEAK`].
    pub fn all(records: &[PositionRecord]) -> Vec<Group> {
        const POSITIONS: [&str; 3] = ["1", "2", "3"];
        let mut groups: Vec<Group> = POSITIONS
            .iter()
            .flat_map(|&positions| {
                Class::ALL.iter().map(move |c| Group {
                    positions,
                    class: c.id(),
                })
            })
            .filter(|g| records.iter().any(|r| g.holds(r)))
            .collect();
        groups.extend([Group::VALLEY, Group::VALUE_VALLEY, Group::PEAK]);
        groups
    }

    /// Whether `record` is in the group.
    pub fn holds(&self, record: &PositionRecord) -> bool {
        let position = match self.positions {
            "1-2" => (1..=2).contains(&record.position),
            "2-3" => (2..=3).contains(&record.position),
            one => one == record.position.to_string(),
        };
        let class = match self.class {
            "valley" => record.class.is_valley(),
            name => name == record.class.id(),
        };
        position && class
    }

    /// The records of the group.
    pub fn of<'a>(&self, records: &'a [PositionRecord]) -> Vec<&'a PositionRecord> {
        records.iter().filter(|r| self.holds(r)).collect()
    }

    /// The median over the group's records of `value` (`None` for an empty group or no
    /// value).
    pub fn median(
        &self,
        records: &[PositionRecord],
        value: impl Fn(&PositionRecord) -> Option<f64>,
    ) -> Option<f64> {
        let values: Vec<f64> = self.of(records).into_iter().filter_map(value).collect();
        (!values.is_empty()).then(|| median(&values))
    }
}

/// The columns of one aggregate row, after the label, seed, positions, class and source.
pub const AGGREGATE_COLUMNS: &str = "n,median_rejected_log_prob,median_argmax,share_argmax_rises,median_runner_up,median_rejected,median_chosen,share_chosen_falls,median_rest,median_entropy,median_rising";

/// One aggregate row's values for the records `group` of one run under `source` (see
/// [`AGGREGATE_COLUMNS`]; `median_chosen` and `share_chosen_falls` are empty where no
/// record has a `y⁺` token other than `y⁻`'s).
pub fn aggregate(group: &[&PositionRecord], source: Source) -> Vec<Cell> {
    let of = |f: &dyn Fn(&ColumnChange) -> f64| -> Vec<f64> {
        group.iter().map(|r| f(r.change(source))).collect()
    };
    let share = |values: &[f64], test: fn(f64) -> bool| {
        values.iter().filter(|&&v| test(v)).count() as f64 / values.len() as f64
    };
    let argmax = of(&|c| c.argmax);
    let chosen: Vec<f64> = group
        .iter()
        .filter_map(|r| r.change(source).chosen)
        .collect();
    let (median_chosen, chosen_falls) = match chosen.is_empty() {
        true => (None, None),
        false => (Some(median(&chosen)), Some(share(&chosen, |v| v < 0.0))),
    };
    let depth: Vec<f64> = group.iter().map(|r| r.rejected_log_prob).collect();
    crate::cells![
        group.len(),
        median(&depth),
        median(&argmax),
        share(&argmax, |v| v > 0.0),
        median(&of(&|c| c.runner_up)),
        median(&of(&|c| c.rejected)),
        median_chosen,
        chosen_falls,
        median(&of(&|c| c.rest)),
        median(&of(&|c| c.entropy)),
        median(&of(&|c| c.rising as f64)),
    ]
}

/// The columns of one full row, after the label and seed.
pub const ROW_COLUMNS: &str = "update,position,class,rejected_log_prob,source,argmax,runner_up,rejected,chosen,rest,entropy,rising";

/// The full rows of one record, one per source (see [`ROW_COLUMNS`]).
pub fn rows(record: &PositionRecord) -> impl Iterator<Item = Vec<Cell>> + '_ {
    Source::ALL.into_iter().map(move |source| {
        let c = record.change(source);
        crate::cells![
            record.update,
            record.position,
            record.class.id(),
            record.rejected_log_prob,
            source.id(),
            c.argmax,
            c.runner_up,
            c.rejected,
            c.chosen,
            c.rest,
            c.entropy,
            c.rising
        ]
    })
}

/// Which squeezing rows a comparison writes: the aggregates (committed), or every
/// position of every update too (`NAME_squeezing_rows.csv`, large).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SqueezingRows {
    /// Only `NAME_squeezing.csv`, the aggregates.
    #[default]
    Aggregates,
    /// Also one row per position, update and source.
    All,
}

impl Variants for SqueezingRows {
    const ALL: &'static [Self] = &[SqueezingRows::Aggregates, SqueezingRows::All];
}

/// The `squeezing_rows` key of the comparisons (`lm_policy`, `lm_losses`, `lm_extend`).
pub fn squeezing_rows_key() -> Key {
    Key::new(
        "squeezing_rows",
        "\"all\" also writes NAME_squeezing_rows.csv, every position of every update (large); \"aggregates\" only NAME_squeezing.csv",
        Range::choice::<SqueezingRows>(),
    )
}
