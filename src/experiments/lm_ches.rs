//! Likelihood displacement and CHES (Razin et al., 2024, *Unintentional Unalignment:
//! Likelihood Displacement in Direct Preference Optimization*): which preference pairs
//! make DPO lower the chosen answer's likelihood.
//!
//! For every pair `(x, y⁺, y⁻)` of the off-policy run, the centred hidden-embedding
//! similarity `CHES = ⟨h⁺, h⁻⟩ − ‖h⁺‖²` ([`ches`]) is computed from the SFT model, where
//! `h±` is the last hidden layer summed over the response positions. The prediction:
//! pairs whose `y⁻` looks like `y⁺` to the network (a large CHES) displace `y⁺` the most,
//! so CHES and the change of `log π(y⁺ | x)` over DPO are anti-correlated. This is the
//! eNTK story seen through the last layer: the output layer's share of `K(χ⁺, χ⁻)` is
//! `⟨h⁺, h⁻⟩`.

use serde::{Deserialize, Serialize};

use super::lm_measures::ches;
use super::lm_world::{Dpo, LmConfig, SEEDS, checkpoint, seeds, seeds_key, train_dpo};
use super::{Claim, Experiment, Table, Valid};
use crate::error::Result;
use crate::lm::{Sequence, TinyLm};
use crate::model::Model;
use crate::numerics::sequence_log_prob;
use crate::stats::spearman;

/// The world.
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
        Config {
            world: LmConfig::default(),
            seeds: SEEDS,
        }
    }
}

world_settings!(Config, [seeds_key()]);

/// One preference pair of one seed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PairPoint {
    /// The seed of its world.
    pub seed: u64,
    /// The prompt's entity.
    pub pair: usize,
    /// Its CHES under the SFT model.
    pub ches: f64,
    /// The change of `log π(y⁺ | x)` over off-policy DPO, in nats.
    pub chosen_change: f64,
}

/// Every pair of every seed.
#[derive(Clone, Debug)]
pub struct Displacement {
    /// Seed by seed, pair by pair.
    pub pairs: Vec<PairPoint>,
}

/// CHES against likelihood displacement.
pub struct LmChes;

/// `log π(y⁺ | x)` of every training prompt's chosen answer under `model`.
fn chosen_log_probs(model: &TinyLm, language: &crate::language::Language) -> Vec<f64> {
    language
        .train
        .iter()
        .map(|&j| {
            let y = language.chosen(j);
            sequence_log_prob(&model.logits(&Sequence::new(&language.prompt(j), &y)), &y)
        })
        .collect()
}

impl Experiment for LmChes {
    type Config = Config;
    type Data = Displacement;

    fn run(config: &Valid<Config>, seed: u64) -> Result<Displacement> {
        let world = &config.world;
        let mut pairs = Vec::new();
        for seed in seeds(seed, config.seeds) {
            let start = checkpoint(world, seed)?;
            let language = &start.world.language;
            let mut rng = start.world.rng.clone();
            let (end, _) = train_dpo(
                &Dpo::off_policy(world),
                language,
                (&start.sft_model, &start.sft_model),
                &mut rng,
                &mut [],
            )?;
            let (before, after) = (
                chosen_log_probs(&start.sft_model, language),
                chosen_log_probs(&end, language),
            );
            for (k, &j) in language.train.iter().enumerate() {
                let prompt = language.prompt(j);
                let h = |y: Vec<usize>| {
                    start
                        .sft_model
                        .response_hidden_sum(&Sequence::new(&prompt, &y))
                };
                let (plus, minus) = (h(language.chosen(j)), h(language.rejected(j)));
                pairs.push(PairPoint {
                    seed,
                    pair: j,
                    ches: ches(plus.as_slice(), minus.as_slice()),
                    chosen_change: after[k] - before[k],
                });
            }
        }
        Ok(Displacement { pairs })
    }

    fn claims(data: &Displacement) -> Vec<Claim> {
        data.claims()
    }

    fn tables(data: &Displacement) -> Vec<Table> {
        let rows = data
            .pairs
            .iter()
            .map(|p| crate::cells![p.seed, p.pair, p.ches, p.chosen_change])
            .collect();
        vec![Table::new("lm_ches", "seed,pair,ches,chosen_change", rows)]
    }
}

/// The Spearman correlation a claim needs: −0.3. Over 40 pairs, the correlation of
/// unrelated samples has a standard deviation of about `1/√39 ≈ 0.16`, so −0.3 is about
/// two standard deviations from none.
const RHO_THRESHOLD: f64 = -0.3;

impl Displacement {
    /// Spearman's correlation of CHES with the chosen change over `pairs`.
    pub fn rho(pairs: &[PairPoint]) -> f64 {
        let (c, d): (Vec<f64>, Vec<f64>) = pairs.iter().map(|p| (p.ches, p.chosen_change)).unzip();
        spearman(&c, &d)
    }

    fn claims(&self) -> Vec<Claim> {
        let rho = Self::rho(&self.pairs);
        let mut seeds: Vec<u64> = self.pairs.iter().map(|p| p.seed).collect();
        seeds.dedup();
        let per_seed: Vec<f64> = seeds
            .iter()
            .map(|&s| {
                let of: Vec<PairPoint> =
                    self.pairs.iter().filter(|p| p.seed == s).copied().collect();
                Self::rho(&of)
            })
            .collect();
        let negative = per_seed.iter().filter(|r| **r < 0.0).count();
        let displaced = self.pairs.iter().filter(|p| p.chosen_change < 0.0).count();
        vec![Claim::new(
            "ches_predicts_displacement",
            rho < RHO_THRESHOLD,
            format!(
                "Razin et al.: a larger CHES displaces y⁺ more; measured: Spearman(CHES, Δlog π(y⁺)) = {rho:.2} over {} pairs (threshold {RHO_THRESHOLD}), negative on {negative}/{} seeds ({}); {displaced} pairs lost likelihood",
                self.pairs.len(),
                per_seed.len(),
                per_seed
                    .iter()
                    .map(|r| format!("{r:+.2}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )]
    }
}
