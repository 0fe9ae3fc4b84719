//! The world every language-model experiment runs in: the configuration of the tiny LM
//! and its schedules, the seeded synthetic language ([`crate::language`]), the
//! pre-trained base model, the SFT and DPO updates, and the per-family statistics that
//! observers record.
//!
//! One seed fixes everything, in this order of draws from one generator: the language,
//! its probes, the model's initialisation, the pre-training corpus, then (in the
//! experiments) the order of every epoch.

use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::{Key, Range, Settings};
use crate::Rng64;
use crate::error::Result;
use crate::language::{Family, Language, Probe, VOCAB};
use crate::lm::{LmSpec, Sequence, TinyLm};
use crate::model::Model;
use crate::numerics::{adaptation_fro_sq, log_softmax_columns, log_sum_exp, sequence_log_prob};
use crate::objective::{CrossEntropy, Objective, PairLoss, Pairwise};
use crate::trainer::{Observer, StepEvent, Trainer, Update};

/// The gallery's seed (the authors' code uses 1024).
pub const DEFAULT_SEED: u64 = 1024;

/// The network's sizes (the vocabulary is the language's, [`VOCAB`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSize {
    /// Context window: how many previous tokens predict the next.
    pub window: usize,
    /// Embedding width of tokens and slots.
    pub embed: usize,
    /// Width of the hidden tanh layer.
    pub hidden: usize,
}

/// Plain SGD for a number of steps (pre-training on corpus sentences).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Steps {
    /// SGD steps, one sentence each.
    pub steps: usize,
    /// Learning rate.
    pub eta: f64,
}

/// SGD for a number of passes over the training prompts (SFT, DPO).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Epochs {
    /// Passes over the training prompts, each in a shuffled order.
    pub epochs: usize,
    /// Learning rate.
    pub eta: f64,
}

/// Sizes and schedules of the language-model world. The LM experiments embed it
/// (flattened) in their own configurations, so its keys are theirs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LmConfig {
    /// Sizes of the model.
    pub model: ModelSize,
    /// Pre-training on the corpus.
    pub pretrain: Steps,
    /// SFT on the chosen answers.
    pub sft: Epochs,
    /// Off-policy DPO from the SFT model.
    pub dpo: Epochs,
    /// DPO's β (the authors use 0.1).
    pub beta: f64,
}

impl Default for LmConfig {
    fn default() -> Self {
        LmConfig {
            model: ModelSize {
                window: 4,
                embed: 8,
                hidden: 64,
            },
            pretrain: Steps {
                steps: 6000,
                eta: 0.05,
            },
            sft: Epochs {
                epochs: 4,
                eta: 0.05,
            },
            dpo: Epochs {
                epochs: 60,
                eta: 0.5,
            },
            beta: 0.1,
        }
    }
}

impl Settings for LmConfig {
    fn keys() -> Vec<Key> {
        world_keys()
    }
}

/// The keys of [`LmConfig`], for configurations that embed it.
pub fn world_keys() -> Vec<Key> {
    vec![
        Key::new(
            "model.window",
            "context window: previous tokens that predict the next",
            Range::Int(1, 64),
        ),
        Key::new(
            "model.embed",
            "embedding width of tokens and slots",
            Range::Int(1, 1024),
        ),
        Key::new(
            "model.hidden",
            "width of the hidden tanh layer",
            Range::Int(1, 4096),
        ),
        Key::new(
            "pretrain.steps",
            "pre-training SGD steps, one corpus sentence each",
            Range::Int(0, 1_000_000),
        ),
        Key::new(
            "pretrain.eta",
            "pre-training learning rate",
            Range::positive(10.0),
        ),
        Key::new(
            "sft.epochs",
            "SFT passes over the training prompts",
            Range::Int(0, 10_000),
        ),
        Key::new("sft.eta", "SFT learning rate", Range::positive(10.0)),
        Key::new(
            "dpo.epochs",
            "DPO passes over the training prompts",
            Range::Int(0, 10_000),
        ),
        Key::new("dpo.eta", "DPO learning rate", Range::positive(10.0)),
        Key::new(
            "beta",
            "DPO's β: the strength of the implicit KL penalty",
            Range::positive(1000.0),
        ),
    ]
}

impl LmConfig {
    /// About how many bytes a run needs: 64 copies of the parameters (the models,
    /// their gradients and steps, the probes' forward-mode passes) of 8 bytes each.
    pub fn memory_bytes(&self) -> Option<u128> {
        let (v, w, d, h) = (
            VOCAB as u128,
            self.model.window as u128,
            self.model.embed as u128,
            self.model.hidden as u128,
        );
        let params = (v + w)
            .checked_mul(d)?
            .checked_add((w.checked_mul(d)? + 1).checked_mul(h)?)?
            .checked_add((h + 1).checked_mul(v)?)?;
        params.checked_mul(512)
    }

    /// The model's sizes, with the language's vocabulary.
    pub fn spec(&self) -> LmSpec {
        LmSpec {
            vocab: VOCAB,
            window: self.model.window,
            embed: self.model.embed,
            hidden: self.model.hidden,
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
    /// The generator after pre-training: the experiments draw their epoch orders from it.
    pub rng: Rng64,
}

/// Draws the language and pre-trains the base model on its corpus.
pub fn pretrain(config: &LmConfig, seed: u64) -> Result<World> {
    let mut rng = Rng64::seed_from_u64(seed);
    let language = Language::random(&mut rng);
    let probes = language.probes(&mut rng);
    let mut trainer = Trainer::new(
        TinyLm::random(config.spec(), &mut rng)?,
        config.pretrain.eta,
    )?;
    for _ in 0..config.pretrain.steps {
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

/// SFT on `(ASK e, response(e))` for the training entity `j`.
pub fn sft_update(
    language: &Language,
    response: fn(&Language, usize) -> Vec<usize>,
    j: usize,
) -> Update<TinyLm> {
    let y = response(language, j);
    (
        vec![Sequence::new(&language.prompt(j), &y)],
        Box::new(CrossEntropy::sequence(&y)) as Box<dyn Objective>,
    )
}

/// Off-policy DPO on `(y⁺, y⁻)` of the training entity `j`, with `reference` frozen.
pub fn dpo_update(language: &Language, reference: &TinyLm, beta: f64, j: usize) -> Update<TinyLm> {
    let (plus, minus) = (language.chosen(j), language.rejected(j));
    pair_update(
        &language.prompt(j),
        plus,
        minus,
        reference,
        PairLoss::Dpo,
        beta,
    )
}

/// A pairwise preference update on `(prompt, chosen, rejected)`, with `reference` frozen.
pub fn pair_update(
    prompt: &[usize],
    chosen: Vec<usize>,
    rejected: Vec<usize>,
    reference: &TinyLm,
    loss: PairLoss,
    beta: f64,
) -> Update<TinyLm> {
    let chi_plus = Sequence::new(prompt, &chosen);
    let chi_minus = Sequence::new(prompt, &rejected);
    let reference = (
        sequence_log_prob(&reference.logits(&chi_plus), &chosen),
        sequence_log_prob(&reference.logits(&chi_minus), &rejected),
    );
    let objective = Pairwise {
        loss,
        beta,
        chosen,
        rejected,
        reference,
    };
    (
        vec![chi_plus, chi_minus],
        Box::new(objective) as Box<dyn Objective>,
    )
}

impl World {
    /// SFT of the base model on the chosen answers, with `observers`; the epoch orders
    /// come from the world's generator.
    pub fn sft(
        &mut self,
        config: &LmConfig,
        observers: &mut [&mut dyn Observer<TinyLm>],
    ) -> Result<TinyLm> {
        let mut trainer = Trainer::new(self.base.clone(), config.sft.eta)?;
        let language = &self.language;
        trainer.epochs(
            config.sft.epochs,
            &language.train,
            &mut self.rng,
            |&j| sft_update(language, Language::chosen, j),
            observers,
        )?;
        Ok(trainer.model)
    }

    /// Off-policy DPO from `start` with `reference` frozen, with `observers`.
    pub fn dpo(
        &mut self,
        config: &LmConfig,
        start: &TinyLm,
        reference: &TinyLm,
        observers: &mut [&mut dyn Observer<TinyLm>],
    ) -> Result<TinyLm> {
        let mut trainer = Trainer::new(start.clone(), config.dpo.eta)?;
        let language = &self.language;
        trainer.epochs(
            config.dpo.epochs,
            &language.train,
            &mut self.rng,
            |&j| dpo_update(language, reference, config.beta, j),
            observers,
        )?;
        Ok(trainer.model)
    }
}

/// Mean statistics of one family at one tracking point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FamilyPoint {
    /// Training step (0 = before the first step).
    pub step: usize,
    /// The family.
    pub family: Family,
    /// Mean over probes of `log π(y | χ)` (for `argmax`: `Σ_m log max π_m`; for
    /// `except_argmax`: `Σ_m log(1 − max π_m)`, both on the chosen prefixes).
    pub log_prob: f64,
    /// Mean over probes and positions of `‖A_m‖²_F = V − 2 + V‖π_m‖²`.
    pub a_fro_sq: f64,
}

/// The family's statistic from one column of log-probabilities at response position `l`.
fn position_log_prob(family: Family, log_pi: &[f64], token: usize) -> f64 {
    match family {
        Family::Argmax => log_pi.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Family::ExceptArgmax => {
            let best = log_pi
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |b| b.0);
            let rest: Vec<f64> = log_pi
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != best)
                .map(|(_, v)| *v)
                .collect();
            log_sum_exp(&rest)
        }
        _ => log_pi[token],
    }
}

/// The statistics of every family for `model`, at `step`.
pub fn family_points(model: &TinyLm, probes: &[Probe], step: usize) -> Vec<FamilyPoint> {
    let n = probes.len() as f64;
    let mut points: Vec<FamilyPoint> = Family::ALL
        .iter()
        .map(|&family| FamilyPoint {
            step,
            family,
            log_prob: 0.0,
            a_fro_sq: 0.0,
        })
        .collect();
    for probe in probes {
        let seqs: Vec<Sequence> = probe.responses.iter().map(|r| r.1.clone()).collect();
        let logits = model.logits_batch(&seqs);
        for ((point, (family, seq)), z) in points.iter_mut().zip(&probe.responses).zip(&logits) {
            let log_pi = log_softmax_columns(z);
            let lp: f64 = log_pi
                .column_iter()
                .zip(seq.response())
                .map(|(c, &t)| position_log_prob(*family, c.as_slice(), t))
                .sum();
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
pub struct Tracker<'a> {
    probes: &'a [Probe],
    every: usize,
    /// The points recorded so far.
    pub points: Vec<FamilyPoint>,
}

impl<'a> Tracker<'a> {
    /// A tracker of `probes` every `every` steps.
    pub fn new(probes: &'a [Probe], every: usize) -> Self {
        Tracker {
            probes,
            every,
            points: Vec::new(),
        }
    }
}

impl Observer<TinyLm> for Tracker<'_> {
    fn start(&mut self, model: &TinyLm) -> Result<()> {
        self.points.extend(family_points(model, self.probes, 0));
        Ok(())
    }

    fn step(&mut self, e: &StepEvent<'_, TinyLm>) -> Result<()> {
        if (e.step + 1).is_multiple_of(self.every) {
            self.points
                .extend(family_points(e.after, self.probes, e.step + 1));
        }
        Ok(())
    }
}

/// The curve of one family: `(step, mean log π)`.
pub fn curve(points: &[FamilyPoint], family: Family) -> Vec<(f64, f64)> {
    points
        .iter()
        .filter(|p| p.family == family)
        .map(|p| (p.step as f64, p.log_prob))
        .collect()
}
