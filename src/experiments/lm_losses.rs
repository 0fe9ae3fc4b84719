//! Every pairwise loss trained (the paper's §3.3 and Fig. 2, in training): DPO, IPO,
//! SLiC and SPPO (hard), each off-policy from the same SFT checkpoint, on the same pairs
//! for the same number of updates, on five seeds.
//!
//! The crate's residual table ([`crate::objective::Pairwise`]) predicts how long each
//! loss pushes `y⁻` down, so how long it squeezes at `y⁻`'s valleys and how far the other
//! families fall. DPO pushes `y⁻` down with `s = β σ(−β m)`, which decays only slowly
//! as the margin `m` grows. IPO's push turns around at the target margin `1/(2τ)`.
//! SLiC's push-apart stops once `log π(y⁺) − log π(y⁻)` exceeds `δ`, leaving only its SFT
//! term. SPPO's coefficient on `y⁻` changes sign once `r⁻ < −η_s/2`. So DPO's squeezing
//! should last longest and the other families fall furthest under it; the bounded losses
//! squeeze while they push. Both are measured (`lm_losses_squeezing.csv`, as in
//! `lm_policy`).

use serde::{Deserialize, Serialize};

use super::comparison::{
    Comparison, Contender, Label, Layout, Metric, Training, count, median_or_none, medians, nats,
    rejected_median,
};
use super::lm_measures::{ColumnChange, DpoRun, Group, Source, SqueezingRows, squeezing_rows_key};
use super::lm_world::{
    Bounded, Dpo, LmConfig, MAX_DPO_UPDATES, SEEDS, check_eta, matched_eta, seeds_key,
};
use super::{Claim, Experiment, Key, Range, Table, Valid};
use crate::error::Result;
use crate::objective::PairLoss;

/// The world, each loss's hyperparameters, and how often the measures are tracked.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// The language-model world (DPO's β is its `beta`).
    #[serde(flatten)]
    pub world: LmConfig,
    /// IPO's and SLiC's hyperparameters.
    #[serde(flatten)]
    pub bounded: Bounded,
    /// SPPO's η_s: it pulls `r⁺` towards `η_s/2` and `r⁻` towards `−η_s/2`.
    pub sppo_eta: f64,
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
            bounded: Bounded::default(),
            // TRL's sppo_hard uses η_s = 1/β, with its default β = 0.1.
            sppo_eta: 10.0,
            track_every: 16,
            seeds: SEEDS,
            squeezing_rows: SqueezingRows::Aggregates,
        }
    }
}

world_settings!(
    Config,
    [
        Bounded::keys(),
        Key::new(
            "sppo_eta",
            "SPPO's η_s: r⁺ is pulled to η_s/2, r⁻ to −η_s/2 (TRL: 1/β = 10)",
            Range::positive(1000.0),
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

impl Config {
    /// Every loss with its hyperparameters, the β its [`Pairwise`](crate::objective::Pairwise) takes (IPO's τ, and
    /// `1/η_s` for SPPO), and its learning rate: DPO's, scaled so that every loss starts
    /// with the same step ([`matched_eta`]).
    pub fn losses(&self) -> Vec<(PairLoss, f64, f64)> {
        [
            (PairLoss::Dpo, self.world.beta),
            self.bounded.ipo(),
            self.bounded.slic(&self.world),
            (PairLoss::SppoHard, 1.0 / self.sppo_eta),
        ]
        .into_iter()
        .map(|(loss, beta)| (loss, beta, matched_eta(&self.world, loss, beta)))
        .collect()
    }
}

/// One loss's run on one seed.
pub type LossRun = DpoRun<PairLoss>;

/// Every loss on every seed of a run, loss by loss (DPO, IPO, SLiC, SPPO).
pub type Losses = Comparison<PairLoss>;

/// `lm_losses`' tables and figure.
pub static LAYOUT: Layout = Layout {
    name: "lm_losses",
    column: "loss",
    summary: Metric::DPO,
    sft_phase: false,
    mechanism: true,
    heading: "Every pairwise loss off-policy from one SFT checkpoint, {updates} updates on the same pairs",
};

impl Label for PairLoss {
    fn id(self) -> &'static str {
        PairLoss::id(self)
    }
}

/// Refuses a configuration whose derived learning rates ([`Config::losses`]) are not
/// numbers or too large to train with ([`check_eta`]), naming the keys that set them.
///
/// # Errors
/// Naming the loss, its rate and the keys.
fn check_learning_rates(config: &Config) -> Result<()> {
    for (loss, _, eta) in config.losses() {
        let own = match loss {
            PairLoss::SppoHard => format!(", sppo_eta = {:e}", config.sppo_eta),
            _ => config.bounded.rate_keys(loss),
        };
        check_eta(&config.world, (loss, eta), &own)?;
    }
    Ok(())
}

/// Every pairwise loss, off-policy, from one SFT checkpoint per seed.
pub struct LmLosses;

impl Experiment for LmLosses {
    type Config = Config;
    type Data = Losses;

    fn run(config: &Valid<Config>, seed: u64) -> Result<Losses> {
        check_learning_rates(config)?;
        let world = &config.world;
        let training = Training {
            world,
            seeds: config.seeds,
            track_every: config.track_every,
            squeezing_rows: config.squeezing_rows,
        };
        // Every loss sees the same pairs in the same order.
        Losses::train(&LAYOUT, training, seed, |_, _| {
            Ok((config.losses().into_iter())
                .map(|(loss, beta, eta)| {
                    let dpo = Dpo {
                        loss,
                        eta,
                        beta,
                        ..Dpo::off_policy(world)
                    };
                    Contender::from_checkpoint(loss, dpo)
                })
                .collect())
        })
    }

    fn claims(data: &Losses) -> Vec<Claim> {
        let labels = data.labels();
        let mut claims: Vec<Claim> = labels[1..]
            .iter()
            .map(|&loss| others_fall_more_claim(data, labels[0], loss))
            .collect();
        claims.push(valley_claim(data));
        claims.push(push_lasts_claim(data));
        claims.push(Claim::new(
            "updates",
            data.all_updates_taken(),
            format!(
                "every loss took exactly {} updates on the same pairs on every seed",
                data.updates
            ),
        ));
        claims
    }

    fn tables(data: &Losses) -> Vec<Table> {
        data.tables()
    }
}

/// Whether a run's rejected term pushed at all (`Σ s⁻ > 0`): SLiC's does not once its
/// hinge is met.
fn pushed(r: &LossRun) -> bool {
    Metric::RejectedCoefficientSum.of(r) > 0.0
}

/// The rejected term's change of the current argmax.
fn argmax(c: &ColumnChange) -> Option<f64> {
    Some(c.argmax)
}

fn valley_claim(data: &Losses) -> Claim {
    let group = Group::VALLEY;
    let rises = |r: &LossRun| rejected_median(r, group, argmax).is_some_and(|v| v > 0.0);
    let mut holds = true;
    let parts: Vec<String> = (data.labels().into_iter())
        .map(|loss| {
            let runs: Vec<&LossRun> = data
                .with_instances(loss, group)
                .into_iter()
                .filter(|r| pushed(r))
                .collect();
            if runs.is_empty() {
                return format!("{loss} never pushed (Σs⁻ = 0 on every seed)");
            }
            let k = count(&runs, |r| rises(r));
            holds &= k.holds;
            let values: Vec<f64> = runs
                .iter()
                .filter_map(|r| rejected_median(r, group, argmax))
                .collect();
            format!("{loss} {k} ({})", median_or_none(&values, nats))
        })
        .collect();
    Claim::new(
        "valley_argmax_rises",
        holds,
        format!(
            "every loss whose rejected term pushes squeezes at y⁻'s valleys: its rejected term raises the current argmax at y⁻'s value and END positions where y⁻'s token is not the argmax (first-order, median over the seed's instances > 0, nats per update), on the seeds where it pushed: {}",
            parts.join(", ")
        ),
    )
}

/// The update by which `r`'s rejected term has done half of its squeezing: the
/// cumulative sum over updates of its change of the argmax at the valleys
/// ([`Group::VALLEY`]) first reaches half its total (`None` if the total is not
/// positive).
fn half_squeezed(r: &LossRun) -> Option<usize> {
    let mut per_update = vec![0.0; r.counts.updates + 1];
    for p in Group::VALLEY.of(&r.squeezing) {
        per_update[p.update] += p.change(Source::RejectedTerm).argmax;
    }
    let total: f64 = per_update.iter().sum();
    let mut so_far = 0.0;
    (total > 0.0).then(|| {
        (per_update.iter().position(|v| {
            so_far += v;
            so_far >= total / 2.0
        }))
        .unwrap_or(r.counts.updates)
    })
}

fn push_lasts_claim(data: &Losses) -> Claim {
    let labels = data.labels();
    let dpo = labels[0];
    let mut holds = true;
    let parts: Vec<String> = labels[1..]
        .iter()
        .map(|&loss| {
            let pairs: Vec<(usize, usize)> = (data.paired(dpo, loss).iter())
                .filter_map(|(d, l)| Some((half_squeezed(d)?, half_squeezed(l)?)))
                .collect();
            if pairs.is_empty() {
                return format!("{loss}: no squeezing to time");
            }
            let k = count(&pairs, |(d, l)| d > l);
            holds &= k.holds;
            let (d, l): (Vec<f64>, Vec<f64>) =
                pairs.iter().map(|&(d, l)| (d as f64, l as f64)).unzip();
            let median = crate::stats::median;
            format!(
                "later than {loss} on {k} seeds (median update {:.0} vs {:.0})",
                median(&d),
                median(&l)
            )
        })
        .collect();
    Claim::new(
        "dpo_squeezes_longest",
        holds,
        format!(
            "DPO's push never stops, the bounded losses' do: half of the rejected term's squeezing (its summed rise of the argmax at y⁻'s valleys) is done by a later update under DPO than under each bounded loss that squeezed, of {} updates: {}",
            data.updates,
            parts.join("; ")
        ),
    )
}

/// The margin by which DPO must lower the other families more than a bounded loss on a
/// seed: 1 nat, as in `lm_policy` (above the seed-to-seed spread measured there).
const NATS_MARGIN: f64 = 1.0;

/// DPO against one bounded `loss`: the other families fall further under DPO. Its id is
/// `others_fall_more_than_LOSS`.
fn others_fall_more_claim(data: &Losses, dpo: PairLoss, loss: PairLoss) -> Claim {
    let pairs = data.paired(dpo, loss);
    let others = |r: &LossRun| Metric::OthersChange.of(r);
    let k = count(&pairs, |(d, r)| others(d) < others(r) - NATS_MARGIN);
    let (d_others, l_others) = medians(&pairs, others);
    let (d_argmax, l_argmax) = medians(&pairs, |r| Metric::ArgmaxRejectedPrefixChange.of(r));
    let (d_degenerate, l_degenerate) = medians(&pairs, |r| Metric::DegenerateRateAfter.of(r));
    let id = match loss {
        PairLoss::Ipo => "others_fall_more_than_ipo",
        PairLoss::Slic { .. } => "others_fall_more_than_slic",
        PairLoss::SppoHard => "others_fall_more_than_sppo_hard",
        PairLoss::Dpo => "others_fall_more_than_dpo",
        PairLoss::Rpo { .. } => "others_fall_more_than_rpo",
        PairLoss::Dpop { .. } => "others_fall_more_than_dpop",
    };
    Claim::counted(
        id,
        k,
        format!(
            "prediction: DPO's push never stops, {loss}'s does, so the other families fall further under DPO; measured: DPO lowers them more than {loss}, by over {NATS_MARGIN} nat, on {k} seeds (median change {d_others:+.2} vs {l_others:+.2} nats; argmax on the rejected prefixes {d_argmax:+.2} vs {l_argmax:+.2}; degenerate answers to training prompts after {d_degenerate:.2} vs {l_degenerate:.2})"
        ),
    )
}
