//! Off-policy vs on-policy DPO on [`TinyLm`](crate::lm::TinyLm) (the paper's §4 and App. E): three DPO
//! regimes and two ablations from the same SFT checkpoint, with the same probes and the
//! same number of updates, on five seeds.
//!
//! The world is the human one ([`Style::Human`](crate::language::Style::Human)): SFT learns an answer distribution with
//! synonyms at 0.5, so `y⁺` is one likely answer rather than the model's mode, and `y⁻`'s
//! wrong value is a valley. The regimes differ only in where the pair comes from
//! ([`Regime`]): the fixed dataset (off-policy), the model's own sample as `y⁻` (SPIN), or
//! two samples ranked by correctness (online); the ablations take off-policy's pairs with
//! one of DPO's two terms alone. [`train_dpo`](super::lm_world::train_dpo) gives each
//! `dpo_updates` updates (fewer, recorded, if a pass finds no usable pair).
//!
//! The theory predicts that a negative gradient on a valley (off-policy `y⁻`) squeezes
//! mass into the current argmax of the distribution it acts on, taking `y⁺`'s token down
//! with the rest, and greedy decoding degenerates (the repeater); on a peak the same push
//! flattens instead. The claims test the mechanism where the theory puts it: squeezing is
//! measured at every update at `y⁻`'s own positions, with the model before the update, by
//! class of position ([`PositionRecord`](super::lm_measures::PositionRecord)); every
//! family's change is split, to first order along the run, into the chosen and the rejected
//! term ([`Attribution`](super::lm_measures::Attribution)) and checked against the
//! ablations; every update records where `y⁻` sat and its coefficients; and the repeater is
//! counted apart from hallucination.

mod claims;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::experiments::comparison::{Comparison, Contender, Label, Layout, Metric, Training};
use crate::experiments::lm_measures::{DpoRun, SqueezingRows, squeezing_rows_key};
use crate::experiments::lm_world::{Dpo, LmConfig, MAX_DPO_UPDATES, Regime, SEEDS, seeds_key};
use crate::experiments::{Claim, Experiment, Key, Range, Table, Valid};

/// One regime's DPO run on one seed.
pub type RegimeRun = DpoRun<Regime>;

/// The world, the update rule's redraw limit, and how often the measures are tracked.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// The language-model world.
    #[serde(flatten)]
    pub world: LmConfig,
    /// Unusable on-policy draws redrawn per prompt before it is passed over.
    pub max_redraws: usize,
    /// DPO updates between two tracking points.
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
            max_redraws: 20,
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
            "max_redraws",
            "unusable on-policy draws redrawn per prompt before it is passed over",
            Range::Int(0, 10_000),
        ),
        Key::new(
            "track_every",
            "DPO updates between two tracking points",
            Range::Int(1, MAX_DPO_UPDATES),
        ),
        seeds_key(),
        squeezing_rows_key(),
    ]
);

/// Every regime on every seed of a run, regime by regime in [`Regime::ALL`] order.
pub type Policy = Comparison<Regime>;

impl Label for Regime {
    fn id(self) -> &'static str {
        Regime::id(self)
    }

    /// The ablations are the attribution's causal check, in the tables and claims; the
    /// figure draws the three regimes they would dwarf.
    fn drawn(self) -> bool {
        self.only().is_none()
    }
}

/// `lm_policy`'s tables and figure.
pub static LAYOUT: Layout = Layout {
    name: "lm_policy",
    column: "regime",
    summary: Metric::DPO,
    sft_phase: false,
    mechanism: true,
    heading: "Off-policy vs on-policy DPO from one SFT checkpoint, {updates} updates each",
};

/// Off-policy, SPIN and online DPO from one SFT checkpoint per seed.
pub struct LmPolicy;

impl Experiment for LmPolicy {
    type Config = Config;
    type Data = Policy;

    fn run(config: &Valid<Config>, seed: u64) -> Result<Policy> {
        let world = &config.world;
        let training = Training {
            world,
            seeds: config.seeds,
            track_every: config.track_every,
            squeezing_rows: config.squeezing_rows,
        };
        Policy::train(&LAYOUT, training, seed, |_, _| {
            let dpo = |regime| Dpo {
                regime,
                max_redraws: config.max_redraws,
                ..Dpo::off_policy(world)
            };
            Ok((Regime::ALL.into_iter())
                .map(|regime| Contender::from_checkpoint(regime, dpo(regime)))
                .collect())
        })
    }

    fn claims(data: &Policy) -> Vec<Claim> {
        use claims::*;
        vec![
            prediction_claim(data),
            others_claim(data),
            others_content_claim(data),
            rejected_term_claim(data),
            valley_claim(data),
            squeezing_lowers_chosen_claim(data),
            deep_valley_claim(data),
            peak_claim(data),
            equal_push_claim(data),
            degenerate_claim(data),
            hallucination_claim(data),
            chosen_claim(data),
            rise_and_fall_claim(data),
            spin_claim(data),
            updates_claim(data),
        ]
    }

    fn tables(data: &Policy) -> Vec<Table> {
        let mut tables = data.tables();
        tables.insert(1, frames(data));
        tables
    }
}

/// `lm_policy_frames.csv` (`regime,step,token,log_prob`): the animation's distribution
/// at `y⁻`'s valley on the first probe's rejected prefix, for the first seed.
fn frames(data: &Policy) -> Table {
    let rows =
        [Regime::OffPolicy, Regime::Online]
            .into_iter()
            .flat_map(|regime| data.of(regime).filter(|r| r.seed == data.seed))
            .flat_map(|run| {
                run.points.iter().flat_map(move |point| {
                    point.valley.iter().enumerate().map(move |(token, lp)| {
                        crate::cells![run.label.id(), point.step, token, *lp]
                    })
                })
            })
            .collect();
    Table::new("lm_policy_frames", "regime,step,token,log_prob", rows)
}
