//! The extend method (the paper's §4.3 and Fig. 5): SFT on the rejected answers too, so
//! that `y⁻` is less of a valley when DPO starts. What it does to `y⁻`'s positions is
//! measured at every update (`lm_extend_squeezing.csv`): the value position mostly stays
//! a valley, a shallower one, where the rejected term still squeezes.
//!
//! Two arms per seed, from the same pre-trained model:
//!
//! * **baseline**: the world's SFT ([`World::sft`](super::lm_world::World::sft));
//! * **extend**: the same SFT with `(x, y⁻)` added for every training prompt
//!   ([`extended`]), for the same number of
//!   SFT token updates (the paper: 8 epochs × 5,000 examples against 4 × 10,000).
//!
//! Both then run the same off-policy DPO (the same pairs in the same order, the same
//! `dpo_updates`), each with its own SFT model as the reference.

use serde::{Deserialize, Serialize};

use super::comparison::{
    Comparison, Contender, Label, Layout, Metric, Training, count, log_prob, median_or_none,
    medians, nats, rejected_median,
};
use super::lm_measures::{Class, ColumnChange, DpoRun, Group, SqueezingRows, squeezing_rows_key};
use super::lm_world::{Dpo, LmConfig, MAX_DPO_UPDATES, SEEDS, extended, seeds_key};
use super::{Claim, Experiment, Key, Range, Table, Valid};
use crate::error::Result;
use crate::language::Family;

/// The world, and how often the families are tracked.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// The language-model world.
    #[serde(flatten)]
    pub world: LmConfig,
    /// SGD steps between two tracking points, in SFT and in DPO.
    pub track_every: usize,
    /// How many seeds one run covers: `seed, seed + 1, …` ([`seeds_key`]).
    pub seeds: u64,
    /// Whether every squeezing record is written, or only the aggregates.
    pub squeezing_rows: SqueezingRows,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            world: LmConfig::default(),
            track_every: 16,
            seeds: SEEDS,
            squeezing_rows: SqueezingRows::Aggregates,
        }
    }
}

world_settings!(
    Config,
    [
        Key::new(
            "track_every",
            "SGD steps between two tracking points, in SFT and in DPO",
            Range::Int(1, MAX_DPO_UPDATES),
        ),
        seeds_key(),
        squeezing_rows_key(),
    ]
);

/// The two arms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arm {
    /// The world's SFT.
    Baseline,
    /// The same SFT with `(x, y⁻)` added, for the same token budget.
    Extend,
}

impl Arm {
    /// Both arms, in figure order.
    pub const ALL: [Arm; 2] = [Arm::Baseline, Arm::Extend];

    /// The arm's id in CSV files and figures.
    pub fn id(self) -> &'static str {
        match self {
            Arm::Baseline => "baseline",
            Arm::Extend => "extend",
        }
    }
}

impl Label for Arm {
    fn id(self) -> &'static str {
        Arm::id(self)
    }
}

/// One arm's SFT phase and DPO run on one seed.
pub type ArmRun = DpoRun<Arm>;

/// Both arms on every seed, seed by seed, baseline then extend.
pub type Extend = Comparison<Arm>;

/// `lm_extend`'s tables and figure.
pub static LAYOUT: Layout = Layout {
    name: "lm_extend",
    column: "arm",
    summary: &[
        Metric::SftTokenUpdates,
        Metric::RejectedAtDpoStart,
        Metric::ChosenChange,
        Metric::OthersChange,
        Metric::ArgmaxRejectedPrefixChange,
        Metric::DegenerateRateAfter,
        Metric::HallucinationRateAfter,
    ],
    sft_phase: true,
    mechanism: false,
    heading: "The extend method: SFT with (x, y⁻) added (same token budget), then the same off-policy DPO",
};

/// The extend method against the baseline.
pub struct LmExtend;

impl Experiment for LmExtend {
    type Config = Config;
    type Data = Extend;

    fn run(config: &Valid<Config>, seed: u64) -> Result<Extend> {
        let world = &config.world;
        let training = Training {
            world,
            seeds: config.seeds,
            track_every: config.track_every,
            squeezing_rows: config.squeezing_rows,
        };
        // Both arms see the same pairs in the same order, each from its own SFT model.
        Extend::train(&LAYOUT, training, seed, |_, seed| {
            let dpo = Dpo::off_policy(world);
            Ok(vec![
                Contender::from_checkpoint(Arm::Baseline, dpo),
                Contender {
                    label: Arm::Extend,
                    dpo,
                    start: Some(extended(world, seed, config.track_every)?),
                },
            ])
        })
    }

    fn claims(data: &Extend) -> Vec<Claim> {
        let pairs = data.paired(Arm::Baseline, Arm::Extend);
        let budget = |r: &ArmRun| r.sft.token_updates;
        let budgets = pairs.iter().all(|(b, e)| budget(b) == budget(e));
        // Whether `better(baseline, extend)` holds of `metric` on a seed, and the medians.
        let compare = |metric: Metric, better: fn(f64, f64) -> bool| {
            let k = count(&pairs, |(b, e)| better(metric.of(b), metric.of(e)));
            let (b, e) = medians(&pairs, |r| metric.of(r));
            (k, b, e)
        };
        let (k1, b1, e1) = compare(Metric::RejectedAtDpoStart, |b, e| e > b + NATS_MARGIN);
        let (k2, b2, e2) = compare(Metric::OthersChange, |b, e| e > b + NATS_MARGIN);
        let (k3, b3, e3) = compare(Metric::ChosenChange, |b, e| e > b + NATS_MARGIN);
        let (k4, b4, e4) = compare(Metric::DegenerateRateAfter, |b, e| e < b);
        let (b5, e5) = medians(&pairs, |r| Metric::ArgmaxRejectedPrefixChange.of(r));
        let (b6, e6) = medians(&pairs, |r| r.last().family(Family::Chosen));
        vec![
            Claim::new(
                "same_budget",
                budgets,
                format!(
                    "both arms take the same SFT token budget on every seed ({} token updates)",
                    data.runs.first().map_or(0, budget)
                ),
            ),
            Claim::counted(
                "rejected_starts_higher",
                k1,
                format!(
                    "extend: y⁻ starts DPO higher, by over {NATS_MARGIN} nat, on {k1} seeds (median log π(y⁻) {e1:.2} vs {b1:.2} nats)"
                ),
            ),
            Claim::counted(
                "others_fall_less",
                k2,
                format!(
                    "the paper: extend squeezes less; measured: the other families fall less in DPO after extend, by over {NATS_MARGIN} nat, on {k2} seeds (median change {e2:+.2} vs {b2:+.2} nats; argmax on the rejected prefixes {e5:+.2} vs {b5:+.2})"
                ),
            ),
            Claim::counted(
                "chosen_falls_less",
                k3,
                format!(
                    "extend: chosen falls less in DPO, by over {NATS_MARGIN} nat, on {k3} seeds (median change {e3:+.2} vs {b3:+.2} nats, from the lower start SFT on y⁻ leaves it; it ends at {e6:.2} vs {b6:.2})"
                ),
            ),
            Claim::counted(
                "fewer_degenerate",
                k4,
                format!(
                    "extend: fewer greedy answers to training prompts degenerate (not well-formed) after DPO on {k4} seeds (median {e4:.2} vs {b4:.2})"
                ),
            ),
            shallower_valleys_claim(data),
            still_squeezes_claim(data),
        ]
    }

    fn tables(data: &Extend) -> Vec<Table> {
        data.tables()
    }
}

/// The median `log π(y⁻)` over a run's instances of `group` when `y⁻` was pushed.
fn depth(r: &ArmRun, group: Group) -> Option<f64> {
    group.median(&r.squeezing, |p| Some(p.rejected_log_prob))
}

/// The share of a run's pushes at `y⁻`'s value position that landed on a peak.
fn peak_share(r: &ArmRun) -> f64 {
    let at_value: Vec<_> = r.squeezing.iter().filter(|p| p.position == 2).collect();
    let peaks = at_value.iter().filter(|p| p.class == Class::Peak).count();
    peaks as f64 / at_value.len().max(1) as f64
}

fn shallower_valleys_claim(data: &Extend) -> Claim {
    let pairs = data.paired(Arm::Baseline, Arm::Extend);
    let deeper = |(b, e): &(&ArmRun, &ArmRun)| match (
        depth(b, Group::VALUE_VALLEY),
        depth(e, Group::VALUE_VALLEY),
    ) {
        (Some(b), Some(e)) => e > b + NATS_MARGIN,
        _ => false,
    };
    let k = count(&pairs, deeper);
    let median_depth = |arm| {
        let values: Vec<f64> = data
            .of(arm)
            .filter_map(|r| depth(r, Group::VALUE_VALLEY))
            .collect();
        median_or_none(&values, log_prob)
    };
    let (b_peaks, e_peaks) = medians(&pairs, peak_share);
    Claim::counted(
        "value_valleys_shallower",
        k,
        format!(
            "what extend does to y⁻'s value position: a median {e_peaks:.2} of DPO's pushes there land on a peak after extend ({b_peaks:.2} after the baseline); the rest land on valleys that are shallower: median log π(y⁻) when pushed higher by over {NATS_MARGIN} nat on {k} seeds ({} vs {} nats)",
            median_depth(Arm::Extend),
            median_depth(Arm::Baseline)
        ),
    )
}

fn still_squeezes_claim(data: &Extend) -> Claim {
    let group = Group::VALLEY;
    let argmax = |c: &ColumnChange| Some(c.argmax);
    let rises = |r: &ArmRun| rejected_median(r, group, argmax).is_some_and(|v| v > 0.0);
    let (extend, e) = data.squeezing_tally((Arm::Extend, group), rises, (argmax, nats));
    let (baseline, b) = data.squeezing_tally((Arm::Baseline, group), rises, (argmax, nats));
    Claim::counted(
        "extend_still_squeezes",
        extend,
        format!(
            "after extend, DPO's rejected term still squeezes at y⁻'s valleys (value and END): it raises the current argmax (first-order, median over the seed's instances > 0) on {extend} seeds (median {e} nats per update; baseline {baseline}, {b})"
        ),
    )
}

/// The margin of the per-seed comparisons, in nats: 1, as in `lm_policy`.
const NATS_MARGIN: f64 = 1.0;
