//! The language-model experiments (the paper's Figs. 3, 4, 8 and 9) on [`TinyLm`] and
//! the synthetic language of [`crate::language`].
//!
//! One seeded world: a base model pre-trained on the corpus, then SFT on the
//! instruction pairs `(ASK e, y⁺)`, then off-policy DPO on `(y⁺, y⁻)` from the SFT
//! checkpoint with the SFT model as the frozen reference. A tracking observer records,
//! for every probe family, the mean teacher-forced `log π(y | χ)` over the probe
//! prompts and the mean `‖A‖²_F` over their response positions.

use nalgebra::DMatrix;
use rand::SeedableRng;
use rand::seq::SliceRandom;

use super::{Claim, Report, with_robustness};
use crate::Rng64;
use crate::decomposition::observe;
use crate::error::Result;
use crate::language::{FAMILIES, Language, Probe, VOCAB};
use crate::lm::{LmSpec, Sequence, TinyLm, sequence_log_prob};
use crate::model::Model;
use crate::numerics::{adaptation_fro_sq, log_softmax_columns, log_sum_exp};
use crate::objective::{CrossEntropy, Objective, PairLoss, Pairwise};
use crate::stats::pearson;
use crate::trainer::{Observer, StepEvent, Trainer};

/// The gallery's seed (the authors' code uses 1024).
pub const DEFAULT_SEED: u64 = 1024;
/// Seeds over which the gallery reports how robust each claim is.
pub const ROBUSTNESS_SEEDS: u64 = 5;

/// Sizes and schedules.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LmConfig {
    /// Sizes of the model.
    pub spec: LmSpec,
    /// SGD steps on corpus sentences.
    pub pretrain_steps: usize,
    /// Learning rate of pre-training.
    pub pretrain_eta: f64,
    /// Passes of SFT over the training prompts.
    pub sft_epochs: usize,
    /// Learning rate of SFT.
    pub sft_eta: f64,
    /// Passes of DPO over the training prompts.
    pub dpo_epochs: usize,
    /// Learning rate of DPO.
    pub dpo_eta: f64,
    /// DPO's β (the authors use 0.1).
    pub beta: f64,
    /// Steps between two tracking points.
    pub track_every: usize,
}

impl LmConfig {
    /// The gallery's configuration.
    pub fn full() -> Self {
        LmConfig {
            spec: LmSpec {
                vocab: VOCAB,
                window: 4,
                embed: 8,
                hidden: 64,
            },
            pretrain_steps: 6000,
            pretrain_eta: 0.05,
            sft_epochs: 4,
            sft_eta: 0.05,
            dpo_epochs: 60,
            dpo_eta: 0.5,
            beta: 0.1,
            track_every: 4,
        }
    }

    /// A fast configuration for tests.
    pub fn fast() -> Self {
        LmConfig {
            pretrain_steps: 3000,
            sft_epochs: 20,
            dpo_epochs: 30,
            track_every: 8,
            ..Self::full()
        }
    }
}

/// A seeded language, its probes, and the pre-trained base model.
#[derive(Clone, Debug)]
pub struct World {
    /// The facts and the train/test split.
    pub language: Language,
    /// The probe families of every training prompt.
    pub probes: Vec<Probe>,
    /// The pre-trained model.
    pub base: TinyLm,
    rng: Rng64,
}

/// Draws the language and pre-trains the base model on its corpus.
pub fn pretrain(config: &LmConfig, seed: u64) -> Result<World> {
    let mut rng = Rng64::seed_from_u64(seed);
    let language = Language::random(&mut rng);
    let probes = language.probes(&mut rng);
    let mut trainer = Trainer::new(TinyLm::random(config.spec, &mut rng)?, config.pretrain_eta)?;
    for _ in 0..config.pretrain_steps {
        let sentence = language.corpus_sentence(&mut rng);
        let objective = CrossEntropy::sequence(sentence.response());
        trainer.step(std::slice::from_ref(&sentence), &objective, &mut [])?;
    }
    Ok(World {
        language,
        probes,
        base: trainer.model,
        rng,
    })
}

/// Mean statistics of one family at one tracking point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FamilyPoint {
    /// Training step (0 = before the first step).
    pub step: usize,
    /// One of [`FAMILIES`].
    pub family: &'static str,
    /// Mean over probes of `log π(y | χ)` (for `argmax`: `Σ_m log max π_m`; for
    /// `except_argmax`: `Σ_m log(1 − max π_m)`, both on the chosen prefixes).
    pub log_prob: f64,
    /// Mean over probes and positions of `‖A_m‖²_F = V − 2 + V‖π_m‖²`.
    pub a_fro_sq: f64,
}

/// The statistics of every family for `model`, at `step`.
pub fn family_points(model: &TinyLm, probes: &[Probe], step: usize) -> Vec<FamilyPoint> {
    let n = probes.len() as f64;
    let mut points: Vec<FamilyPoint> = FAMILIES
        .iter()
        .map(|&family| FamilyPoint {
            step,
            family,
            log_prob: 0.0,
            a_fro_sq: 0.0,
        })
        .collect();
    for probe in probes {
        for (point, (family, seq)) in points.iter_mut().zip(&probe.responses) {
            let log_pi = log_softmax_columns(&model.logits(seq));
            let per_position = |f: &dyn Fn(&[f64], usize) -> f64| -> f64 {
                log_pi
                    .column_iter()
                    .enumerate()
                    .map(|(l, c)| f(c.as_slice(), l))
                    .sum()
            };
            let lp = match *family {
                "argmax" => {
                    per_position(&|c, _| c.iter().copied().fold(f64::NEG_INFINITY, f64::max))
                }
                "except_argmax" => per_position(&|c, _| {
                    let best = c
                        .iter()
                        .enumerate()
                        .max_by(|a, b| a.1.total_cmp(b.1))
                        .map_or(0, |b| b.0);
                    let rest: Vec<f64> = c
                        .iter()
                        .enumerate()
                        .filter(|&(i, _)| i != best)
                        .map(|(_, v)| *v)
                        .collect();
                    log_sum_exp(&rest)
                }),
                _ => per_position(&|c, l| c[seq.response()[l]]),
            };
            let a = log_pi
                .column_iter()
                .map(|c| adaptation_fro_sq(c.map(f64::exp).as_view()))
                .sum::<f64>()
                / log_pi.ncols() as f64;
            point.log_prob += lp / n;
            point.a_fro_sq += a / n;
        }
    }
    points
}

/// Records [`family_points`] at step 0 and every `every` steps.
struct Tracker<'a> {
    probes: &'a [Probe],
    every: usize,
    offset: usize,
    points: Vec<FamilyPoint>,
}

impl Observer<TinyLm> for Tracker<'_> {
    fn start(&mut self, model: &TinyLm) -> Result<()> {
        self.points
            .extend(family_points(model, self.probes, self.offset));
        Ok(())
    }

    fn step(&mut self, e: &StepEvent<'_, TinyLm>) -> Result<()> {
        if (e.step + 1).is_multiple_of(self.every) {
            self.points.extend(family_points(
                e.after,
                self.probes,
                self.offset + e.step + 1,
            ));
        }
        Ok(())
    }
}

/// Builds the update of one step from a training entity: its inputs and objective.
type Update<'a> = dyn Fn(usize) -> (Vec<Sequence>, Box<dyn Objective>) + 'a;

/// Trains `model` for `epochs` passes over the training entities (shuffled by `rng`),
/// one update per step built by `update(j)`, with `observers`.
fn train(
    model: TinyLm,
    eta: f64,
    epochs: usize,
    entities: &[usize],
    rng: &mut Rng64,
    update: &Update<'_>,
    observers: &mut [&mut dyn Observer<TinyLm>],
) -> Result<TinyLm> {
    let mut trainer = Trainer::new(model, eta)?;
    trainer.start(observers)?;
    for _ in 0..epochs {
        let mut order = entities.to_vec();
        order.shuffle(rng);
        for j in order {
            let (inputs, objective) = update(j);
            trainer.step(&inputs, objective.as_ref(), observers)?;
        }
    }
    Ok(trainer.model)
}

/// SFT on `(ASK e, response(e))` for every training entity.
fn sft_update(
    language: &Language,
    response: fn(&Language, usize) -> Vec<usize>,
) -> impl Fn(usize) -> (Vec<Sequence>, Box<dyn Objective>) + '_ {
    move |j| {
        let y = response(language, j);
        (
            vec![Sequence::new(&language.prompt(j), &y)],
            Box::new(CrossEntropy::sequence(&y)) as Box<dyn Objective>,
        )
    }
}

/// Off-policy DPO on `(y⁺, y⁻)` with `reference` frozen.
fn dpo_update<'a>(
    language: &'a Language,
    reference: &'a TinyLm,
    beta: f64,
) -> impl Fn(usize) -> (Vec<Sequence>, Box<dyn Objective>) + 'a {
    move |j| {
        let (plus, minus) = (language.chosen(j), language.rejected(j));
        let chi_plus = Sequence::new(&language.prompt(j), &plus);
        let chi_minus = Sequence::new(&language.prompt(j), &minus);
        let reference = (
            sequence_log_prob(&reference.logits(&chi_plus), &plus),
            sequence_log_prob(&reference.logits(&chi_minus), &minus),
        );
        let objective = Pairwise {
            loss: PairLoss::Dpo,
            beta,
            chosen: plus,
            rejected: minus,
            reference,
        };
        (
            vec![chi_plus, chi_minus],
            Box::new(objective) as Box<dyn Objective>,
        )
    }
}

/// Tracked curves of one SFT-then-DPO run.
#[derive(Clone, Debug)]
pub struct LmRun {
    /// The seed of the world and of the schedules.
    pub seed: u64,
    /// Tracked during SFT.
    pub sft: Vec<FamilyPoint>,
    /// Tracked during DPO (steps counted from its start).
    pub dpo: Vec<FamilyPoint>,
    /// The world the run trained in.
    pub world: World,
    /// The model after SFT (DPO's start and reference).
    pub sft_model: TinyLm,
    /// The model after DPO.
    pub dpo_model: TinyLm,
}

/// Pre-training, SFT and DPO with tracking (DPO steps are numbered from 0).
pub fn run(config: &LmConfig, seed: u64) -> Result<LmRun> {
    let mut world = pretrain(config, seed)?;
    let train_entities = world.language.train.clone();
    let mut sft_track = Tracker {
        probes: &world.probes,
        every: config.track_every,
        offset: 0,
        points: Vec::new(),
    };
    let sft_model = train(
        world.base.clone(),
        config.sft_eta,
        config.sft_epochs,
        &train_entities,
        &mut world.rng,
        &sft_update(&world.language, Language::chosen),
        &mut [&mut sft_track],
    )?;
    let mut dpo_track = Tracker {
        probes: &world.probes,
        every: config.track_every,
        offset: 0,
        points: Vec::new(),
    };
    let dpo_model = train(
        sft_model.clone(),
        config.dpo_eta,
        config.dpo_epochs,
        &train_entities,
        &mut world.rng,
        &dpo_update(&world.language, &sft_model, config.beta),
        &mut [&mut dpo_track],
    )?;
    let (sft, dpo) = (sft_track.points, dpo_track.points);
    Ok(LmRun {
        seed,
        sft,
        dpo,
        world,
        sft_model,
        dpo_model,
    })
}

/// The curve of one family: `(step, mean log π)`.
pub fn curve(points: &[FamilyPoint], family: &str) -> Vec<(f64, f64)> {
    points
        .iter()
        .filter(|p| p.family == family)
        .map(|p| (p.step as f64, p.log_prob))
        .collect()
}

/// `(start, peak, end)` of a family's curve.
fn shape(points: &[FamilyPoint], family: &str) -> (f64, f64, f64) {
    let c = curve(points, family);
    let peak = c.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    (c[0].1, peak, c[c.len() - 1].1)
}

/// The families that are sequences (not argmax statistics).
fn sequence_families() -> impl Iterator<Item = &'static str> {
    FAMILIES.iter().copied().filter(|f| !f.contains("argmax"))
}

impl LmRun {
    /// Fig. 3's claims on the SFT curves.
    pub fn sft_claims(&self) -> Vec<Claim> {
        let s = |f| shape(&self.sft, f);
        let change = |f| s(f).2 - s(f).0;
        let bell = |f| {
            let (start, peak, end) = s(f);
            (
                peak - start > 0.05 && peak - end > 0.05,
                format!("{f} {start:.2} → peak {peak:.2} → {end:.2}"),
            )
        };
        let (b1, t1) = bell("chosen_rephrase");
        let (b2, t2) = bell("rejected_rephrase");
        vec![
            Claim {
                holds: change("chosen") > 0.0,
                text: format!("SFT: chosen rises ({:+.2} nats)", change("chosen")),
            },
            Claim {
                holds: b1 && b2,
                text: format!("SFT: rephrases rise then fall: {t1}; {t2}"),
            },
            Claim {
                holds: change("other_prompt") > change("test_prompt"),
                text: format!(
                    "SFT: another training prompt's answer rises more than a held-out prompt's ({:+.2} vs {:+.2}): the hallucination mechanism",
                    change("other_prompt"),
                    change("test_prompt")
                ),
            },
            Claim {
                holds: change("shuffled_chosen") < 0.0 && change("random_tokens") < 0.0,
                text: format!(
                    "SFT: shuffled and random tokens fall ({:+.2}, {:+.2})",
                    change("shuffled_chosen"),
                    change("random_tokens")
                ),
            },
            Claim {
                holds: change("argmax") > 0.0,
                text: format!("SFT: the greedy argmax rises ({:+.2})", change("argmax")),
            },
        ]
    }

    /// Mean over the training prompts of `log π` of the last response token (`END`) of
    /// the chosen and the rejected answers under `model`.
    fn end_log_probs(&self, model: &TinyLm) -> (f64, f64) {
        let lang = &self.world.language;
        let last = |y: Vec<usize>, j: usize| {
            let chi = Sequence::new(&lang.prompt(j), &y);
            log_softmax_columns(&model.logits(&chi))[(y[y.len() - 1], y.len() - 1)]
        };
        let n = lang.train.len() as f64;
        let (c, r) = lang.train.iter().fold((0.0, 0.0), |(c, r), &j| {
            (c + last(lang.chosen(j), j), r + last(lang.rejected(j), j))
        });
        (c / n, r / n)
    }

    /// Fig. 4's claims on the DPO curves.
    pub fn dpo_claims(&self) -> Vec<Claim> {
        let s = |f| shape(&self.dpo, f);
        let change = |f| s(f).2 - s(f).0;
        let (c0, cpeak, cend) = s("chosen");
        let steepest_fall = sequence_families()
            .min_by(|a, b| change(a).total_cmp(&change(b)))
            .unwrap_or("chosen");
        let largest_rise = FAMILIES
            .iter()
            .copied()
            .filter(|f| *f != "except_argmax")
            .max_by(|a, b| change(a).total_cmp(&change(b)))
            .unwrap_or("chosen");
        let others: Vec<&str> = sequence_families()
            .filter(|f| !["chosen", "rejected"].contains(f))
            .collect();
        let falling = others.iter().filter(|f| change(f) < 0.0).count();
        let (end_sft, end_dpo) = (
            self.end_log_probs(&self.sft_model),
            self.end_log_probs(&self.dpo_model),
        );
        vec![
            Claim {
                holds: cpeak - c0 > 0.01 && cpeak - cend > 0.01,
                text: format!(
                    "DPO: chosen rises then falls ({c0:.2} → peak {cpeak:.2} → {cend:.2})"
                ),
            },
            Claim {
                holds: steepest_fall == "rejected",
                text: format!(
                    "DPO: rejected falls fastest ({:+.2}; steepest fall: {steepest_fall})",
                    change("rejected")
                ),
            },
            Claim {
                holds: largest_rise == "argmax" && change("argmax") > 0.0,
                text: format!(
                    "DPO: the greedy argmax rises most ({:+.2}; chosen {:+.2}; largest rise: {largest_rise})",
                    change("argmax"),
                    change("chosen")
                ),
            },
            Claim {
                holds: falling * 4 >= others.len() * 3,
                text: format!(
                    "DPO: squeezing, {falling}/{} other families fall",
                    others.len()
                ),
            },
            Claim {
                holds: end_dpo.1 < end_sft.1 - 5.0 && end_dpo.0 < end_sft.0,
                text: format!(
                    "DPO: the rejected answer's END, a peak in its own context (log π {:.2}), is pushed to {:.2}, and the chosen answer's END follows ({:.2} → {:.2}) through the shared eNTK",
                    end_sft.1, end_dpo.1, end_sft.0, end_dpo.0
                ),
            },
        ]
    }

    /// Fig. 9's claims: peakiness during SFT, argmax vs except_argmax in SFT and DPO.
    pub fn peakiness_claims(&self) -> Vec<Claim> {
        let a = |points: &[FamilyPoint], f: &str, last: bool| {
            let c: Vec<&FamilyPoint> = points.iter().filter(|p| p.family == f).collect();
            if last {
                c[c.len() - 1].a_fro_sq
            } else {
                c[0].a_fro_sq
            }
        };
        let rising = sequence_families()
            .filter(|f| a(&self.sft, f, true) > a(&self.sft, f, false))
            .count();
        let change = |points: &[FamilyPoint], f| shape(points, f).2 - shape(points, f).0;
        vec![
            Claim {
                holds: rising == sequence_families().count(),
                text: format!(
                    "SFT: ‖A‖²_F grows for {rising}/{} families (the model gets peakier)",
                    sequence_families().count()
                ),
            },
            Claim {
                holds: change(&self.sft, "except_argmax") < 0.0
                    && change(&self.dpo, "except_argmax") < 0.0,
                text: format!(
                    "except_argmax falls in SFT ({:+.2}) and in DPO ({:+.2}) while argmax changes by {:+.2} and {:+.2}",
                    change(&self.sft, "except_argmax"),
                    change(&self.dpo, "except_argmax"),
                    change(&self.sft, "argmax"),
                    change(&self.dpo, "argmax")
                ),
            },
        ]
    }
}

/// The training signals of the influence heatmap, in column order.
pub const SIGNALS: [&str; 5] = [
    "sft_chosen",
    "sft_rejected",
    "sft_chosen_rephrase",
    "sft_shuffled_chosen",
    "dpo",
];

/// Accumulates, per family, the mean over probes of the predicted and actual change of
/// `log π(y | χ)` at every step.
struct InfluenceRecorder<'a> {
    probes: &'a [Probe],
    predicted: Vec<f64>,
    actual: Vec<f64>,
}

impl Observer<TinyLm> for InfluenceRecorder<'_> {
    fn step(&mut self, e: &StepEvent<'_, TinyLm>) -> Result<()> {
        let n = self.probes.len() as f64;
        for probe in self.probes {
            let seqs: Vec<Sequence> = probe.responses.iter().map(|r| r.1.clone()).collect();
            for (k, (obs, seq)) in observe(e.before, e.after, &seqs)?
                .iter()
                .zip(&seqs)
                .enumerate()
            {
                let pick = |m: &DMatrix<f64>| {
                    seq.response()
                        .iter()
                        .enumerate()
                        .map(|(l, &t)| m[(t, l)])
                        .sum::<f64>()
                };
                self.predicted[k] += pick(&obs.predicted) / n;
                self.actual[k] += pick(&obs.actual) / n;
            }
        }
        Ok(())
    }
}

/// The accumulated-influence table: for each signal, the accumulated predicted and
/// actual mean `Δ log π` of every sequence family.
#[derive(Clone, Debug)]
pub struct Influence {
    /// `(signal, family, predicted, actual)`.
    pub cells: Vec<(&'static str, &'static str, f64, f64)>,
}

/// Runs each signal of [`SIGNALS`] for `epochs` passes (SFT signals from the base
/// model, DPO from the SFT checkpoint) with the configured learning rates times
/// [`INFLUENCE_ETA_SCALE`], and accumulates the per-step influence. The small steps keep
/// every step in the first-order regime, so the accumulated `−ηAKG` can be compared
/// with the accumulated actual change.
pub fn influence(config: &LmConfig, seed: u64, epochs: usize) -> Result<Influence> {
    let mut world = pretrain(config, seed)?;
    let entities = world.language.train.clone();
    let sft_model = train(
        world.base.clone(),
        config.sft_eta,
        config.sft_epochs,
        &entities,
        &mut world.rng,
        &sft_update(&world.language, Language::chosen),
        &mut [],
    )?;
    let rephrase = |l: &Language, j: usize| {
        vec![
            crate::language::entity(j),
            crate::language::SEEMS,
            crate::language::value(l.facts[j], true),
            crate::language::END,
        ]
    };
    let shuffled = |l: &Language, j: usize| {
        let c = l.chosen(j);
        vec![c[2], c[0], c[3], c[1]]
    };
    let mut cells = Vec::new();
    for signal in SIGNALS {
        let mut recorder = InfluenceRecorder {
            probes: &world.probes,
            predicted: vec![0.0; FAMILIES.len()],
            actual: vec![0.0; FAMILIES.len()],
        };
        let lang = &world.language;
        let (start, eta, update): (&TinyLm, f64, Box<Update<'_>>) = match signal {
            "sft_chosen" => (
                &world.base,
                config.sft_eta,
                Box::new(sft_update(lang, Language::chosen)),
            ),
            "sft_rejected" => (
                &world.base,
                config.sft_eta,
                Box::new(sft_update(lang, Language::rejected)),
            ),
            "sft_chosen_rephrase" => (
                &world.base,
                config.sft_eta,
                Box::new(sft_update(lang, rephrase)),
            ),
            "sft_shuffled_chosen" => (
                &world.base,
                config.sft_eta,
                Box::new(sft_update(lang, shuffled)),
            ),
            _ => (
                &sft_model,
                config.dpo_eta,
                Box::new(dpo_update(lang, &sft_model, config.beta)),
            ),
        };
        let mut rng = Rng64::seed_from_u64(seed ^ 0x5EED);
        train(
            start.clone(),
            eta * INFLUENCE_ETA_SCALE,
            epochs,
            &entities,
            &mut rng,
            update.as_ref(),
            &mut [&mut recorder],
        )?;
        for (k, family) in FAMILIES
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.contains("argmax"))
        {
            cells.push((signal, *family, recorder.predicted[k], recorder.actual[k]));
        }
    }
    Ok(Influence { cells })
}

impl Influence {
    /// Predicted values normalised per signal by the largest magnitude in that column.
    pub fn normalised(&self) -> Vec<(&'static str, &'static str, f64)> {
        self.cells
            .iter()
            .map(|&(signal, family, p, _)| {
                let max = self
                    .cells
                    .iter()
                    .filter(|c| c.0 == signal)
                    .map(|c| c.2.abs())
                    .fold(1e-300, f64::max);
                (signal, family, p / max)
            })
            .collect()
    }

    /// The value of one cell (predicted, not normalised).
    pub fn get(&self, signal: &str, family: &str) -> f64 {
        self.cells
            .iter()
            .find(|c| c.0 == signal && c.1 == family)
            .map_or(0.0, |c| c.2)
    }

    /// The claims of the influence heatmap.
    pub fn claims(&self) -> Vec<Claim> {
        let predicted: Vec<f64> = self.cells.iter().map(|c| c.2).collect();
        let actual: Vec<f64> = self.cells.iter().map(|c| c.3).collect();
        let r = pearson(&predicted, &actual);
        let column_max = |signal: &str| {
            self.cells
                .iter()
                .filter(|c| c.0 == signal)
                .max_by(|a, b| a.2.total_cmp(&b.2))
                .map_or("", |c| c.1)
        };
        let dpo_min = self
            .cells
            .iter()
            .filter(|c| c.0 == "dpo")
            .min_by(|a, b| a.2.total_cmp(&b.2))
            .map_or("", |c| c.1);
        let dpo_falling = self
            .cells
            .iter()
            .filter(|c| c.0 == "dpo" && c.2 < 0.0)
            .count();
        vec![
            Claim {
                holds: r > 0.9,
                text: format!(
                    "accumulated −ηAKG vs actual Δlog π over all cells: correlation {r:.4}"
                ),
            },
            Claim {
                holds: column_max("sft_chosen") == "chosen"
                    && column_max("sft_rejected") == "rejected",
                text: format!(
                    "SFT on a response raises that response most (chosen: {}, rejected: {})",
                    column_max("sft_chosen"),
                    column_max("sft_rejected")
                ),
            },
            Claim {
                holds: self.get("sft_chosen", "shuffled_chosen") < 0.0
                    && self.get("sft_chosen", "random_tokens") < 0.0,
                text: format!(
                    "SFT on chosen pushes non-language down: shuffled {:+.2}, random tokens {:+.2} (SFT on the rephrase moves chosen by {:+.2})",
                    self.get("sft_chosen", "shuffled_chosen"),
                    self.get("sft_chosen", "random_tokens"),
                    self.get("sft_chosen_rephrase", "chosen")
                ),
            },
            Claim {
                holds: dpo_min == "rejected"
                    && dpo_falling * 2 > self.cells.iter().filter(|c| c.0 == "dpo").count(),
                text: format!(
                    "DPO pushes rejected down most ({dpo_min}) and lowers {dpo_falling} of the families"
                ),
            },
        ]
    }
}

/// Writes one curve table (`step,family,mean_log_prob`).
fn write_curves(path: &std::path::Path, points: &[FamilyPoint]) -> Result<()> {
    let rows = points
        .iter()
        .map(|p| format!("{},{},{}", p.step, p.family, p.log_prob));
    crate::io::write_csv(path, "step,family,mean_log_prob", rows)
}

/// Runs the gallery configuration with `seed`, writes `NAME.csv` and `NAME.png` to `out`
/// with `write`, and reports `claims` with their robustness over seeds.
fn write_lm_run(
    seed: u64,
    out: &std::path::Path,
    name: &str,
    write: impl Fn(&LmRun, &std::path::Path, &std::path::Path) -> Result<()>,
    claims: fn(&LmRun) -> Vec<Claim>,
) -> Result<Report> {
    let config = LmConfig::full();
    let result = run(&config, seed)?;
    let (csv, png) = (
        out.join(format!("{name}.csv")),
        out.join(format!("{name}.png")),
    );
    write(&result, &csv, &png)?;
    let claims = with_robustness(claims(&result), ROBUSTNESS_SEEDS, |s| {
        Ok(claims(&run(&config, s)?))
    })?;
    Ok(Report {
        files: vec![csv, png],
        claims,
    })
}

/// Writes the curves of one phase (`step,family,mean_log_prob` and the three panels).
fn write_phase(
    seed: u64,
    out: &std::path::Path,
    name: &str,
    heading: &str,
    phase: fn(&LmRun) -> &[FamilyPoint],
    claims: fn(&LmRun) -> Vec<Claim>,
) -> Result<Report> {
    let write = |r: &LmRun, csv: &std::path::Path, png: &std::path::Path| {
        write_curves(csv, phase(r))?;
        crate::plot::lm::curves(png, heading, phase(r))
    };
    write_lm_run(seed, out, name, write, claims)
}

/// `ldyn run lm_sft`.
pub fn write_sft(seed: u64, out: &std::path::Path) -> Result<Report> {
    let heading = "SFT: mean log π(y | χ) of each probe family on the training prompts";
    write_phase(seed, out, "lm_sft", heading, |r| &r.sft, LmRun::sft_claims)
}

/// `ldyn run lm_dpo`.
pub fn write_dpo(seed: u64, out: &std::path::Path) -> Result<Report> {
    let heading = "Off-policy DPO from the SFT model: mean log π(y | χ) of each probe family";
    write_phase(seed, out, "lm_dpo", heading, |r| &r.dpo, LmRun::dpo_claims)
}

/// `ldyn run lm_peakiness`.
pub fn write_peakiness(seed: u64, out: &std::path::Path) -> Result<Report> {
    let write = |r: &LmRun, csv: &std::path::Path, png: &std::path::Path| {
        let rows = [("sft", &r.sft), ("dpo", &r.dpo)]
            .into_iter()
            .flat_map(|(phase, points)| {
                points.iter().map(move |p| {
                    format!(
                        "{phase},{},{},{},{}",
                        p.step, p.family, p.a_fro_sq, p.log_prob
                    )
                })
            });
        crate::io::write_csv(csv, "phase,step,family,mean_a_fro_sq,mean_log_prob", rows)?;
        crate::plot::lm::peakiness(png, r)
    };
    write_lm_run(seed, out, "lm_peakiness", write, LmRun::peakiness_claims)
}

/// Passes over the training prompts that each influence signal trains for.
pub const INFLUENCE_EPOCHS: usize = 20;
/// Learning rates of the influence runs, relative to the configured ones.
pub const INFLUENCE_ETA_SCALE: f64 = 0.2;

/// `ldyn run lm_influence`.
pub fn write_influence(seed: u64, out: &std::path::Path) -> Result<Report> {
    let config = LmConfig::full();
    let result = influence(&config, seed, INFLUENCE_EPOCHS)?;
    let (csv, png) = (out.join("lm_influence.csv"), out.join("lm_influence.png"));
    let rows = result
        .normalised()
        .into_iter()
        .map(|(s, f, v)| format!("{s},{f},{v}"));
    crate::io::write_csv(&csv, "signal,family,value", rows)?;
    crate::plot::lm::influence(&png, &result)?;
    let claims = with_robustness(result.claims(), ROBUSTNESS_SEEDS, |s| {
        Ok(influence(&config, s, INFLUENCE_EPOCHS)?.claims())
    })?;
    Ok(Report {
        files: vec![csv, png],
        claims,
    })
}
