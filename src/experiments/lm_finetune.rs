//! The paper's Figs. 3, 4 and 9 on [`TinyLm`]: one run of SFT then off-policy DPO in the
//! seeded [`lm_world`](super::lm_world), tracked for every probe family.
//!
//! The base model is SFT-ed on `(ASK e, y⁺)`, then trained by off-policy DPO on
//! `(y⁺, y⁻)` from the SFT checkpoint with the SFT model as the frozen reference. A
//! [`Tracker`] records, for every probe family, the mean teacher-forced `log π(y | χ)`
//! over the probe prompts and the mean `‖A‖²_F` over their response positions. The
//! three figures (`lm_sft`, `lm_dpo`, `lm_peakiness`) read the same run; the SFT and DPO
//! figures draw the median and interquartile band of their curves over `band_seeds` seeds
//! (the seeds' checkpoints are the ones every LM experiment shares); the claims read the
//! first seed alone.

use serde::{Deserialize, Serialize};

use super::lm_measures::{FamilyPoint, Tracker, curve};
use super::lm_world::{
    Checkpoint, Dpo, LmConfig, MAX_DPO_UPDATES, RISE_MARGIN, SEEDS, World, checkpoint, per_seed,
    seeds, train_dpo,
};
use super::{Claim, Experiment, Key, Range, Table, Valid};
use crate::error::Result;
use crate::language::Family;
use crate::lm::{Sequence, TinyLm};
use crate::model::Model;
use crate::numerics::log_softmax_columns;

/// The world, and how often the families are tracked.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// The language-model world.
    #[serde(flatten)]
    pub world: LmConfig,
    /// SGD steps between two tracking points.
    pub track_every: usize,
    /// Seeds the SFT figure's median and interquartile band cover (`seed, seed + 1, …`);
    /// the claims read the first seed alone.
    pub band_seeds: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            world: LmConfig::default(),
            track_every: 4,
            band_seeds: SEEDS,
        }
    }
}

world_settings!(
    Config,
    [
        Key::new(
            "track_every",
            "SGD steps between two tracking points",
            Range::Int(1, MAX_DPO_UPDATES),
        ),
        Key::new(
            "band_seeds",
            "seeds the SFT and DPO figures' median and interquartile band cover, seed, seed + 1, …; the claims read the first alone",
            Range::Int(1, 100),
        ),
    ]
);

/// Tracked curves of one SFT-then-DPO run.
#[derive(Clone, Debug)]
pub struct LmRun {
    /// The seed of the world and of the schedules.
    pub seed: u64,
    /// Tracked during SFT.
    pub sft: Vec<FamilyPoint>,
    /// Tracked during SFT on each seed of the band, `seed` first (its points are `sft`).
    pub sft_seeds: Vec<Vec<FamilyPoint>>,
    /// Tracked during DPO (steps counted from its start).
    pub dpo: Vec<FamilyPoint>,
    /// Tracked during DPO on each seed of the band, `seed` first (its points are `dpo`).
    pub dpo_seeds: Vec<Vec<FamilyPoint>>,
    /// The world the run trained in.
    pub world: World,
    /// The model after SFT (DPO's start and reference).
    pub sft_model: TinyLm,
    /// The model after DPO.
    pub dpo_model: TinyLm,
}

/// SFT then off-policy DPO, tracked (Figs. 3, 4 and 9).
pub struct LmFinetune;

impl Experiment for LmFinetune {
    type Config = Config;
    type Data = LmRun;

    fn run(config: &Valid<Config>, seed: u64) -> Result<LmRun> {
        let (every, band_seeds, config) = (config.track_every, config.band_seeds, &config.world);
        let Checkpoint {
            mut world,
            sft_model,
            sft,
        } = checkpoint(config, seed)?;
        let (dpo, dpo_model) = tracked_dpo(config, &mut world, &sft_model, every)?;
        let sft = sft.every(every).points;
        let (mut sft_seeds, mut dpo_seeds) = (vec![sft.clone()], vec![dpo.clone()]);
        let band = per_seed((seed.wrapping_add(1), band_seeds - 1), |s| {
            let mut start = checkpoint(config, s)?;
            let (dpo, _) = tracked_dpo(config, &mut start.world, &start.sft_model, every)?;
            Ok(vec![(start.sft.every(every).points, dpo)])
        })?;
        for (sft, dpo) in band {
            sft_seeds.push(sft);
            dpo_seeds.push(dpo);
        }
        Ok(LmRun {
            seed,
            sft,
            sft_seeds,
            dpo,
            dpo_seeds,
            world,
            sft_model,
            dpo_model,
        })
    }

    /// The claims read the first seed alone, so a rerun trains no band.
    fn rerun(config: &Valid<Config>, seed: u64) -> Result<LmRun> {
        let alone = Config {
            band_seeds: 1,
            ..**config
        };
        Self::run(&Valid::new(alone)?, seed)
    }

    fn claims(data: &LmRun) -> Vec<Claim> {
        let mut claims = data.sft_claims();
        claims.extend(data.dpo_claims());
        claims.extend(data.peakiness_claims());
        claims
    }

    fn tables(data: &LmRun) -> Vec<Table> {
        let curves = |points: &[FamilyPoint]| {
            points
                .iter()
                .map(|p| crate::cells![p.step, p.family.id(), p.log_prob])
                .collect()
        };
        let peakiness = [("sft", &data.sft), ("dpo", &data.dpo)]
            .into_iter()
            .flat_map(|(phase, points)| {
                points.iter().map(move |p| {
                    crate::cells![phase, p.step, p.family.id(), p.a_fro_sq, p.log_prob]
                })
            })
            .collect();
        let (end_sft, end_dpo) = data.end_log_probs();
        let ends = vec![
            crate::cells!["sft", "chosen", end_sft.0],
            crate::cells!["sft", "rejected", end_sft.1],
            crate::cells!["dpo", "chosen", end_dpo.0],
            crate::cells!["dpo", "rejected", end_dpo.1],
        ];
        let band = |runs: &[Vec<FamilyPoint>]| {
            (runs.iter().zip(seeds(data.seed, runs.len() as u64)))
                .flat_map(|(points, seed)| {
                    points
                        .iter()
                        .map(move |p| crate::cells![seed, p.step, p.family.id(), p.log_prob])
                })
                .collect()
        };
        vec![
            Table::new("lm_sft", CURVES_HEADER, curves(&data.sft)),
            Table::new("lm_sft_seeds", SEED_CURVES_HEADER, band(&data.sft_seeds)),
            Table::new("lm_dpo", CURVES_HEADER, curves(&data.dpo)),
            Table::new("lm_dpo_seeds", SEED_CURVES_HEADER, band(&data.dpo_seeds)),
            Table::new("lm_peakiness", PEAKINESS_HEADER, peakiness),
            Table::new("lm_dpo_end", "model,answer,mean_log_prob_end", ends),
        ]
    }
}

/// Off-policy DPO from `sft_model` (also its reference) in `world`, tracked every
/// `every` updates: the points and the model after DPO.
fn tracked_dpo(
    config: &LmConfig,
    world: &mut World,
    sft_model: &TinyLm,
    every: usize,
) -> Result<(Vec<FamilyPoint>, TinyLm)> {
    let mut track = Tracker::new(&world.probes, every);
    let (model, counts) = train_dpo(
        &Dpo::off_policy(config),
        &world.language,
        (sft_model, sft_model),
        &mut world.rng,
        &mut [&mut track],
    )?;
    track.finish(&model, counts.updates);
    Ok((track.points, model))
}

/// The CSV header of `lm_sft.csv` and `lm_dpo.csv`.
pub const CURVES_HEADER: &str = "step,family,mean_log_prob";
/// The CSV header of `lm_sft_seeds.csv` and `lm_dpo_seeds.csv`: the SFT and the DPO
/// curves of every seed of the band.
pub const SEED_CURVES_HEADER: &str = "seed,step,family,mean_log_prob";
/// The CSV header of `lm_peakiness.csv`.
pub const PEAKINESS_HEADER: &str = "phase,step,family,mean_a_fro_sq,mean_log_prob";

/// `(start, peak, end)` of a family's curve.
fn shape(points: &[FamilyPoint], family: Family) -> (f64, f64, f64) {
    let c = curve(points, family);
    let peak = c.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    (c[0].1, peak, c[c.len() - 1].1)
}

/// The change of a family's curve from its first to its last point.
fn change(points: &[FamilyPoint], family: Family) -> f64 {
    let (start, _, end) = shape(points, family);
    end - start
}

/// `‖A‖²_F` of a family at the first or the last tracking point.
fn a_fro_sq(points: &[FamilyPoint], family: Family, last: bool) -> f64 {
    let mut c = points.iter().filter(|p| p.family == family);
    let point = if last { c.next_back() } else { c.next() };
    point.map_or(f64::NAN, |p| p.a_fro_sq)
}

impl LmRun {
    /// Fig. 3's claims on the SFT curves.
    pub fn sft_claims(&self) -> Vec<Claim> {
        let change = |f| change(&self.sft, f);
        let bell = |f: Family| {
            let (start, peak, end) = shape(&self.sft, f);
            (
                peak - start > 0.05 && peak - end > 0.05,
                format!("{} {start:.2} → peak {peak:.2} → {end:.2}", f.id()),
            )
        };
        let (b1, t1) = bell(Family::ChosenRephrase);
        let (b2, t2) = bell(Family::RejectedRephrase);
        let (other, test) = (change(Family::OtherPrompt), change(Family::TestPrompt));
        let (shuffled, random) = (change(Family::ShuffledChosen), change(Family::RandomTokens));
        vec![
            Claim::new(
                "sft_chosen_rises",
                change(Family::Chosen) > 0.0,
                format!("SFT: chosen rises ({:+.2} nats)", change(Family::Chosen)),
            ),
            Claim::new(
                "sft_rephrases_bell",
                b1 && b2,
                format!("SFT: rephrases rise then fall: {t1}; {t2}"),
            ),
            Claim::new(
                "sft_hallucination",
                other > test,
                format!(
                    "SFT: another training prompt's answer {} a held-out prompt's ({other:+.2} vs {test:+.2} nats): the hallucination mechanism",
                    match (other > 0.0, test > 0.0) {
                        (true, true) => "rises more than",
                        (false, false) => "falls less than",
                        (true, false) => "rises, unlike",
                        (false, true) => "falls, unlike",
                    }
                ),
            ),
            Claim::new(
                "sft_non_language_falls",
                shuffled < 0.0 && random < 0.0,
                format!("SFT: shuffled and random tokens fall ({shuffled:+.2}, {random:+.2})"),
            ),
            Claim::new(
                "sft_argmax_rises",
                change(Family::Argmax) > 0.0,
                format!(
                    "SFT: the greedy argmax rises ({:+.2})",
                    change(Family::Argmax)
                ),
            ),
        ]
    }

    /// Mean over the training prompts of `log π` of the last response token (`END`) of
    /// the chosen and the rejected answers, after SFT and after DPO.
    pub fn end_log_probs(&self) -> ((f64, f64), (f64, f64)) {
        let lang = &self.world.language;
        let mean_end = |model: &TinyLm| {
            let last = |y: Vec<usize>, j: usize| {
                let chi = Sequence::new(&lang.prompt(j), &y);
                log_softmax_columns(&model.logits(&chi))[(y[y.len() - 1], y.len() - 1)]
            };
            let n = lang.train.len() as f64;
            let (c, r) = lang.train.iter().fold((0.0, 0.0), |(c, r), &j| {
                (c + last(lang.chosen(j), j), r + last(lang.rejected(j), j))
            });
            (c / n, r / n)
        };
        (mean_end(&self.sft_model), mean_end(&self.dpo_model))
    }

    /// Fig. 4's claims on the DPO curves.
    pub fn dpo_claims(&self) -> Vec<Claim> {
        let change = |f| change(&self.dpo, f);
        let (c0, cpeak, cend) = shape(&self.dpo, Family::Chosen);
        let steepest_fall = Family::sequences()
            .min_by(|a, b| change(*a).total_cmp(&change(*b)))
            .unwrap_or(Family::Chosen);
        let others: Vec<Family> = Family::others().collect();
        let falling = others.iter().filter(|f| change(**f) < 0.0).count();
        let (end_sft, end_dpo) = self.end_log_probs();
        let chosen_change = cend - c0;
        let end_change = end_dpo.0 - end_sft.0;
        vec![
            Claim::new(
                "dpo_chosen_rise_and_fall",
                cpeak - c0 > RISE_MARGIN && cpeak - cend > RISE_MARGIN,
                format!(
                    "DPO: chosen rises, then falls, each by over {RISE_MARGIN} nats ({c0:.2} → peak {cpeak:.2} → {cend:.2})"
                ),
            ),
            Claim::new(
                "dpo_rejected_falls_fastest",
                steepest_fall == Family::Rejected,
                format!(
                    "DPO: rejected falls fastest ({:+.2}; steepest fall: {})",
                    change(Family::Rejected),
                    steepest_fall.id()
                ),
            ),
            Claim::new(
                "dpo_argmax_rises_rejected_prefix",
                change(Family::ArgmaxRejectedPrefix) > 0.0,
                format!(
                    "DPO: the greedy argmax rises on the rejected prefixes, where y⁻'s valley is ({:+.2}); on the chosen prefixes it changes by {:+.2}",
                    change(Family::ArgmaxRejectedPrefix),
                    change(Family::Argmax),
                ),
            ),
            Claim::new(
                "dpo_others_fall",
                falling * 4 >= others.len() * 3,
                format!(
                    "DPO: the other families fall, {falling}/{} of them",
                    others.len()
                ),
            ),
            Claim::new(
                "dpo_end",
                end_dpo.1 < end_sft.1 - 1.0 && end_change < -RISE_MARGIN,
                format!(
                    "DPO: the rejected answer's END, a peak in its own context (log π {:.2}), is pushed to {:.2}; the chosen answer's END follows by over {RISE_MARGIN} nats ({:.2} → {:.2}), {} of chosen's change ({chosen_change:+.2})",
                    end_sft.1,
                    end_dpo.1,
                    end_sft.0,
                    end_dpo.0,
                    share(end_change, chosen_change)
                ),
            ),
        ]
    }

    /// Fig. 9's claims: peakiness during SFT, argmax vs except_argmax in SFT and DPO.
    pub fn peakiness_claims(&self) -> Vec<Claim> {
        let rising = Family::sequences()
            .filter(|&f| a_fro_sq(&self.sft, f, true) > a_fro_sq(&self.sft, f, false))
            .count();
        let families = Family::sequences().count();
        let (sft, dpo) = (
            change(&self.sft, Family::ExceptArgmax),
            change(&self.dpo, Family::ExceptArgmax),
        );
        let dpo_rejected = change(&self.dpo, Family::ExceptArgmaxRejectedPrefix);
        vec![
            Claim::new(
                "sft_peakier",
                rising == families,
                format!(
                    "SFT: ‖A‖²_F grows for {rising}/{families} families (the model gets peakier)"
                ),
            ),
            Claim::new(
                "except_argmax_falls",
                sft < 0.0 && dpo < 0.0 && dpo_rejected < 0.0,
                format!(
                    "the mass off the argmax falls: on the chosen prefixes in SFT ({sft:+.2}) and DPO ({dpo:+.2}), and on the rejected prefixes in DPO ({dpo_rejected:+.2}); the argmax changes by {:+.2}, {:+.2} and {:+.2}",
                    change(&self.sft, Family::Argmax),
                    change(&self.dpo, Family::Argmax),
                    change(&self.dpo, Family::ArgmaxRejectedPrefix),
                ),
            ),
        ]
    }
}

/// `part` as a percentage of `whole`, or "an undefined share" when `whole` is too small
/// for the ratio to mean anything (no DPO update, or none that moved chosen).
fn share(part: f64, whole: f64) -> String {
    let ratio = 100.0 * part / whole;
    if whole.abs() < 1e-9 || !ratio.is_finite() {
        "an undefined share (chosen did not move)".into()
    } else {
        format!("{ratio:.0}%")
    }
}
