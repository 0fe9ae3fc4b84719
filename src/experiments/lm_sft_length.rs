//! Longer SFT before DPO (the paper's App. D): SFT for 1, 2, 4, 8 and 16 epochs, then the
//! same off-policy DPO, on five seeds.
//!
//! The paper says that a longer SFT makes squeezing stronger: SFT makes the model peakier
//! (a larger `‖A‖²_F`), and a negative gradient on a valley of a peakier distribution
//! squeezes more mass into its argmax. This experiment measures the peakiness at the
//! start of DPO, and what DPO then does to chosen, to the other families and to the mass
//! off the argmax on the rejected prefixes.

use serde::{Deserialize, Serialize};

use super::comparison::Metric;
use super::lm_measures::DpoRun;
use super::lm_world::{
    Dpo, LmConfig, MAX_SFT_EPOCHS, SEEDS, Tracking, WORLD_MEMORY_KEYS, checkpoint, per_seed,
    seeds_key, tracked_dpo, world_keys_with,
};
use super::{Claim, Experiment, Key, Range, Settings, Table, Valid};
use crate::error::Result;
use crate::stats::{median, spearman};

/// The world; its `sft.epochs` is the longest SFT, and the lengths compared are 1, 2,
/// 4, … up to it ([`Config::lengths`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// The language-model world.
    #[serde(flatten)]
    pub world: LmConfig,
    /// How many seeds one run covers: `seed, seed + 1, …` ([`seeds_key`]).
    pub seeds: u64,
}

impl Default for Config {
    fn default() -> Self {
        let mut world = LmConfig::default();
        world.sft.epochs = 16;
        Config {
            world,
            seeds: SEEDS,
        }
    }
}

impl Config {
    /// The SFT lengths compared, in epochs: the powers of two below `sft.epochs`, then
    /// `sft.epochs` itself (1, 2, 4, 8, 16 by default).
    pub fn lengths(&self) -> Vec<usize> {
        let longest = self.world.sft.epochs.max(1);
        let mut lengths: Vec<usize> = (0..usize::BITS)
            .map(|k| 1usize << k)
            .take_while(|&e| e < longest)
            .collect();
        lengths.push(longest);
        lengths
    }
}

impl Settings for Config {
    const MEMORY_KEYS: &'static str = WORLD_MEMORY_KEYS;

    fn memory_bytes(&self) -> Option<u128> {
        self.world.memory_bytes()
    }

    fn check_together(&self) -> Result<()> {
        self.world.language.check()
    }

    fn keys() -> Vec<Key> {
        let mut keys = world_keys_with((
            "the longest SFT, in passes over the training prompts; the lengths compared are 1, 2, 4, … up to it",
            Range::Int(1, MAX_SFT_EPOCHS),
        ));
        keys.push(seeds_key());
        keys
    }
}

/// One SFT length's DPO run on one seed.
pub type LengthRun = DpoRun<usize>;

/// Every SFT length on every seed.
#[derive(Clone, Debug)]
pub struct SftLength {
    /// The SFT lengths compared, in epochs.
    pub lengths: Vec<usize>,
    /// Seed by seed, length by length.
    pub runs: Vec<LengthRun>,
}

/// The metrics of every run, in `lm_sft_length.csv` order.
pub const METRICS: [Metric; 4] = [
    Metric::PeakinessAtDpoStart,
    Metric::ChosenChange,
    Metric::OthersChange,
    Metric::ExceptArgmaxRejectedPrefixChange,
];

/// SFT of every length, then the same DPO.
pub struct LmSftLength;

impl Experiment for LmSftLength {
    type Config = Config;
    type Data = SftLength;

    fn run(config: &Valid<Config>, seed: u64) -> Result<SftLength> {
        let runs = per_seed((seed, config.seeds), |seed| {
            (config.lengths().into_iter())
                .map(|epochs| {
                    let mut world = config.world;
                    world.sft.epochs = epochs;
                    let start = checkpoint(&world, seed)?;
                    // Only the start and the end of DPO are measured.
                    let every = world.dpo_updates.max(1);
                    let dpo = Dpo::off_policy(&world);
                    let from = (&start.sft_model, start.sft.every(every));
                    let tracking = Tracking {
                        every,
                        attribute: false,
                        reward_beta: config.world.beta,
                    };
                    Ok(tracked_dpo((epochs, seed), &start, from, &dpo, tracking)?.1)
                })
                .collect()
        })?;
        Ok(SftLength {
            lengths: config.lengths(),
            runs,
        })
    }

    fn claims(data: &SftLength) -> Vec<Claim> {
        data.claims()
    }

    fn tables(data: &SftLength) -> Vec<Table> {
        let rows = data
            .runs
            .iter()
            .flat_map(|run| {
                METRICS.iter().map(move |metric| {
                    let (id, value) = (metric.id(), metric.of(run));
                    crate::cells![run.label, run.seed, id, value]
                })
            })
            .collect();
        vec![Table::new(
            "lm_sft_length",
            "sft_epochs,seed,metric,value",
            rows,
        )]
    }
}

/// The margin by which the other families must fall further after the longest SFT than
/// after the shortest, on a seed: 1 nat, as in `lm_policy`.
const NATS_MARGIN: f64 = 1.0;

impl SftLength {
    /// The value of `metric` for every run of SFT length `epochs`, one per seed.
    pub fn values(&self, epochs: usize, metric: Metric) -> Vec<f64> {
        self.runs
            .iter()
            .filter(|r| r.label == epochs)
            .map(|r| metric.of(r))
            .collect()
    }

    fn claims(&self) -> Vec<Claim> {
        let lengths = &self.lengths;
        let (short, long) = (lengths[0], lengths[lengths.len() - 1]);
        let names = lengths
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(" / ");
        let medians = |metric| {
            lengths
                .iter()
                .map(|&e| median(&self.values(e, metric)))
                .collect::<Vec<f64>>()
        };
        let epochs: Vec<f64> = lengths.iter().map(|&e| e as f64).collect();
        let list = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:+.2}"))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        let plain = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.2}"))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        let peaky = medians(Metric::PeakinessAtDpoStart);
        let peaky_rho = spearman(&epochs, &peaky);
        let others = medians(Metric::OthersChange);
        let pairs: Vec<(f64, f64)> = self
            .values(short, Metric::OthersChange)
            .into_iter()
            .zip(self.values(long, Metric::OthersChange))
            .collect();
        let k = pairs.iter().filter(|(s, l)| *l < s - NATS_MARGIN).count();
        let rest = medians(Metric::ExceptArgmaxRejectedPrefixChange);
        vec![
            Claim::new(
                "peakier",
                peaky_rho > 0.8,
                format!(
                    "longer SFT makes the model peakier at the start of DPO: median ‖A‖²_F {} after {} epochs (Spearman {peaky_rho:.2})",
                    plain(&peaky),
                    names
                ),
            ),
            Claim::new(
                "others_fall_more",
                k + 1 >= pairs.len(),
                format!(
                    "the paper: longer SFT makes squeezing stronger; measured by its consequence: the other families fall further in DPO after {long} epochs of SFT than after {short}, by over {NATS_MARGIN} nat, on {k}/{} seeds (median change {} nats after {} epochs; mass off the argmax on the rejected prefixes {})",
                    pairs.len(),
                    list(&others),
                    names,
                    list(&rest)
                ),
            ),
        ]
    }
}
