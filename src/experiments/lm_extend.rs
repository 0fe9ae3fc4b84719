//! The extend method (the paper's §4.3 and Fig. 5): SFT on the rejected answers too, so
//! that `y⁻` is no longer a valley when DPO starts, and squeezing has less to work with.
//!
//! Two arms per seed, from the same pre-trained model:
//!
//! * **baseline**: the world's SFT ([`World::sft`](super::lm_world::World::sft));
//! * **extend**: the same SFT with `(x, y⁻)` added for every training prompt
//!   ([`World::sft_extended`](super::lm_world::World::sft_extended)), for the same number of
//!   SFT token updates (the paper: 8 epochs × 5,000 examples against 4 × 10,000).
//!
//! Both then run the same off-policy DPO (the same pairs in the same order, the same
//! `dpo_updates`), each with its own SFT model as the reference.

use serde::{Deserialize, Serialize};

use super::lm_measures::{DpoRun, FamilyPoint, Snapshot, Tracker};
use super::lm_world::{Dpo, LmConfig, checkpoint, pretrained, seeds, tracked_dpo};
use super::{Claim, Experiment, Key, Range, Settings, Table};
use crate::error::Result;
use crate::language::{ANSWER_LEN, Family};
use crate::stats::median;

/// The world, and how often the families are tracked.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// The language-model world.
    #[serde(flatten)]
    pub world: LmConfig,
    /// SGD steps between two tracking points, in SFT and in DPO.
    pub track_every: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            world: LmConfig::default(),
            track_every: 16,
        }
    }
}

world_settings!(
    Config,
    [Key::new(
        "track_every",
        "SGD steps between two tracking points, in SFT and in DPO",
        Range::Int(1, 100_000),
    )]
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

/// One arm on one seed: its SFT curves and its DPO run.
#[derive(Clone, Debug)]
pub struct ArmRun {
    /// The SFT phase, tracked every `track_every` steps.
    pub sft: Vec<FamilyPoint>,
    /// SFT token updates taken.
    pub sft_token_updates: usize,
    /// The DPO phase.
    pub dpo: DpoRun<Arm>,
}

impl ArmRun {
    /// The summary metrics of the arm, as `(metric, value)`.
    pub fn summary(&self) -> [(&'static str, f64); 6] {
        let dpo = &self.dpo;
        [
            ("sft_token_updates", self.sft_token_updates as f64),
            (
                "rejected_at_dpo_start",
                dpo.first().family(Family::Rejected),
            ),
            ("chosen_change", dpo.change(|p| p.family(Family::Chosen))),
            ("others_change", dpo.change(Snapshot::others)),
            (
                "argmax_rejected_prefix_change",
                dpo.change(|p| p.family(Family::ArgmaxRejectedPrefix)),
            ),
            ("malformed_rate_after", dpo.last().repeater.malformed_rate),
        ]
    }

    /// The value of one summary metric.
    pub fn metric(&self, metric: &str) -> f64 {
        self.summary()
            .into_iter()
            .find(|m| m.0 == metric)
            .map_or(f64::NAN, |m| m.1)
    }
}

/// Both arms on every seed.
#[derive(Clone, Debug)]
pub struct Extend {
    /// The first seed; the summary is of this one.
    pub seed: u64,
    /// Seed by seed, baseline then extend.
    pub runs: Vec<ArmRun>,
}

/// The extend method against the baseline.
pub struct LmExtend;

impl Experiment for LmExtend {
    type Config = Config;
    type Data = Extend;

    fn run(config: &Config, seed: u64) -> Result<Extend> {
        config.validate()?;
        let world = &config.world;
        let every = config.track_every;
        let mut runs = Vec::new();
        for seed in seeds(seed) {
            let baseline = checkpoint(world, seed)?;
            let mut extended = pretrained(world, seed)?;
            let mut sft_track = Tracker::new(&baseline.world.probes, every);
            let extend_model = extended.sft_extended(world, &mut [&mut sft_track])?;
            let sft_updates = world.sft.epochs * baseline.world.language.train.len();
            let arms = [
                (
                    Arm::Baseline,
                    &baseline.sft_model,
                    baseline
                        .sft_points
                        .iter()
                        .filter(|p| p.step.is_multiple_of(every))
                        .copied()
                        .collect(),
                ),
                (Arm::Extend, &extend_model, sft_track.points),
            ];
            for (arm, model, sft) in arms {
                // Both arms see the same pairs in the same order.
                let dpo = Dpo::off_policy(world);
                let (_, dpo) = tracked_dpo((arm, seed), &baseline, model, &dpo, every)?;
                runs.push(ArmRun {
                    sft,
                    sft_token_updates: sft_updates * ANSWER_LEN,
                    dpo,
                });
            }
        }
        Ok(Extend { seed, runs })
    }

    fn claims(data: &Extend) -> Vec<Claim> {
        data.claims()
    }

    fn tables(data: &Extend) -> Vec<Table> {
        let mut curves = Vec::new();
        for run in &data.runs {
            let (arm, seed) = (run.dpo.label.id(), run.dpo.seed);
            curves.extend(run.sft.iter().map(|p| {
                format!(
                    "{arm},{seed},sft,{},{},{}",
                    p.step,
                    p.family.id(),
                    p.log_prob
                )
            }));
            for point in &run.dpo.points {
                curves.extend(point.families.iter().map(|p| {
                    format!(
                        "{arm},{seed},dpo,{},{},{}",
                        point.step,
                        p.family.id(),
                        p.log_prob
                    )
                }));
            }
        }
        let summary = data
            .runs
            .iter()
            .filter(|r| r.dpo.seed == data.seed)
            .flat_map(|run| {
                run.summary()
                    .into_iter()
                    .map(move |(metric, value)| format!("{},{metric},{value}", run.dpo.label.id()))
            })
            .collect();
        vec![
            Table::new(
                "lm_extend",
                "arm,seed,phase,step,family,mean_log_prob",
                curves,
            ),
            Table::new("lm_extend_summary", "arm,metric,value", summary),
        ]
    }
}

/// The margin of the per-seed comparisons, in nats: 1, as in `lm_policy`.
const NATS_MARGIN: f64 = 1.0;

impl Extend {
    /// The runs of `arm`, one per seed.
    pub fn of(&self, arm: Arm) -> impl Iterator<Item = &ArmRun> {
        self.runs.iter().filter(move |r| r.dpo.label == arm)
    }

    /// `(baseline, extend)` of `metric`, seed by seed.
    fn pairs(&self, metric: &str) -> Vec<(f64, f64)> {
        self.of(Arm::Baseline)
            .zip(self.of(Arm::Extend))
            .map(|(b, e)| (b.metric(metric), e.metric(metric)))
            .collect()
    }

    /// The medians over seeds of `metric`, `(baseline, extend)`.
    fn medians(&self, metric: &str) -> (f64, f64) {
        let (b, e): (Vec<f64>, Vec<f64>) = self.pairs(metric).into_iter().unzip();
        (median(&b), median(&e))
    }

    /// `(k, n, median baseline, median extend)` for `metric`, where `k` counts the seeds on
    /// which `better(baseline, extend)` holds.
    fn compare(&self, metric: &str, better: impl Fn(f64, f64) -> bool) -> (usize, usize, f64, f64) {
        let pairs = self.pairs(metric);
        let k = pairs.iter().filter(|(b, e)| better(*b, *e)).count();
        let (b, e) = self.medians(metric);
        (k, pairs.len(), b, e)
    }

    fn claims(&self) -> Vec<Claim> {
        let budgets = self
            .of(Arm::Baseline)
            .zip(self.of(Arm::Extend))
            .all(|(b, e)| b.sft_token_updates == e.sft_token_updates);
        let (k1, n, b1, e1) = self.compare("rejected_at_dpo_start", |b, e| e > b + NATS_MARGIN);
        let (k2, _, b2, e2) = self.compare("others_change", |b, e| e > b + NATS_MARGIN);
        let (k3, _, b3, e3) = self.compare("chosen_change", |b, e| e > b + NATS_MARGIN);
        let (k4, _, b4, e4) = self.compare("malformed_rate_after", |b, e| e < b);
        let (b5, e5) = self.medians("argmax_rejected_prefix_change");
        let chosen_end = |arm| {
            median(
                &self
                    .of(arm)
                    .map(|r| r.dpo.last().family(Family::Chosen))
                    .collect::<Vec<_>>(),
            )
        };
        let (b6, e6) = (chosen_end(Arm::Baseline), chosen_end(Arm::Extend));
        vec![
            Claim::new(
                budgets,
                format!(
                    "both arms take the same SFT token budget on every seed ({} token updates)",
                    self.runs.first().map_or(0, |r| r.sft_token_updates)
                ),
            ),
            Claim::new(
                k1 + 1 >= n,
                format!(
                    "extend: y⁻ starts DPO higher, by over {NATS_MARGIN} nat, on {k1}/{n} seeds (median log π(y⁻) {e1:.2} vs {b1:.2} nats)"
                ),
            ),
            Claim::new(
                k2 + 1 >= n,
                format!(
                    "the paper: extend squeezes less; measured: the other families fall less in DPO after extend, by over {NATS_MARGIN} nat, on {k2}/{n} seeds (median change {e2:+.2} vs {b2:+.2} nats; argmax on the rejected prefixes {e5:+.2} vs {b5:+.2})"
                ),
            ),
            Claim::new(
                k3 + 1 >= n,
                format!(
                    "extend: chosen falls less in DPO, by over {NATS_MARGIN} nat, on {k3}/{n} seeds (median change {e3:+.2} vs {b3:+.2} nats, from the lower start SFT on y⁻ leaves it; it ends at {e6:.2} vs {b6:.2})"
                ),
            ),
            Claim::new(
                k4 + 1 >= n,
                format!(
                    "extend: fewer greedy answers malformed after DPO on {k4}/{n} seeds (median {e4:.2} vs {b4:.2})"
                ),
            ),
        ]
    }
}
