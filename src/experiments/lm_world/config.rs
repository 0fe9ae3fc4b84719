//! The configuration of the language-model world: the model's sizes, pre-training, SFT
//! and DPO schedules, the answer style, and the seeds; with the documented keys every LM
//! experiment embeds.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::experiments::settings::Variants;
use crate::experiments::{Key, Range};
use crate::language::{Sizes, Style};
use crate::lm::LmSpec;

/// The gallery's seed (the authors' code uses 1024).
pub const DEFAULT_SEED: u64 = 1024;

/// How many seeds an experiment that compares runs covers by default: `seed, seed + 1, …`
/// (its `seeds` key, [`seeds_key`]).
pub const SEEDS: u64 = 5;

/// The `seeds` key of the experiments that compare runs over several seeds. A sweep sets
/// it to 1 and pools the seeds itself, so that no seed is counted twice.
pub fn seeds_key() -> Key {
    Key::new(
        "seeds",
        "seeds one run covers, seed, seed + 1, …; its claims count them",
        Range::Int(1, 100),
    )
}

/// The `count` seeds from `first`.
pub fn seeds(first: u64, count: u64) -> impl Iterator<Item = u64> {
    (0..count).map(move |k| first.wrapping_add(k))
}

/// `run` of every seed of [`seeds`]`(first, count)`, concatenated in seed order, computed
/// on as many threads as the machine has cores (at most one per seed). The result does
/// not depend on the threads: each seed's runs are computed from that seed alone.
///
/// # Errors
/// The first seed's error, in seed order.
pub fn per_seed<T: Send>(
    (first, count): (u64, u64),
    run: impl Fn(u64) -> Result<Vec<T>> + Sync,
) -> Result<Vec<T>> {
    let all: Vec<u64> = seeds(first, count).collect();
    if all.is_empty() {
        return Ok(Vec::new());
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores.clamp(1, all.len());
    let mut results: Vec<(usize, Result<Vec<T>>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (all, run) = (&all, &run);
                scope.spawn(move || {
                    (t..all.len())
                        .step_by(threads)
                        .map(|k| (k, run(all[k])))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    results.sort_by_key(|r| r.0);
    let mut runs = Vec::new();
    for (_, result) in results {
        runs.extend(result?);
    }
    Ok(runs)
}

/// The network's sizes (the vocabulary is the language's, [`Sizes::vocab`]).
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

/// SGD for a number of passes over the training prompts (SFT).
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
    /// How the instruction data words its answers (see [`crate::language`]).
    pub world: Style,
    /// Sizes of the language: entities, values, held-out entities.
    pub language: Sizes,
    /// Sizes of the model.
    pub model: ModelSize,
    /// Pre-training on the corpus.
    pub pretrain: Steps,
    /// SFT on the instruction data.
    pub sft: Epochs,
    /// DPO updates from the SFT model, one preference pair each.
    pub dpo_updates: usize,
    /// DPO's learning rate.
    pub dpo_eta: f64,
    /// DPO's β (the authors use 0.1).
    pub beta: f64,
}

impl Default for LmConfig {
    /// The human world of every LM figure. SFT sees 8 fresh samples of each prompt's
    /// answer distribution; DPO runs at the authors' β = 0.1 with lr 0.1, where log π
    /// moves by nats per hundred updates.
    fn default() -> Self {
        LmConfig {
            world: Style::Human,
            language: Sizes::default(),
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
                epochs: 8,
                eta: 0.05,
            },
            dpo_updates: 320,
            dpo_eta: 0.1,
            beta: 0.1,
        }
    }
}

/// The smallest rise or fall of a curve that a claim counts: 0.2 nats, a change of the
/// probability by a fifth. (The audit of the first DPO figure counted rises of 0.01 nats.)
pub const RISE_MARGIN: f64 = 0.2;

/// The keys [`LmConfig::memory_bytes`] depends on, as an error names them.
pub const WORLD_MEMORY_KEYS: &str =
    "language.entities, language.values, model.window, model.embed and model.hidden";

impl Variants for Style {
    const ALL: &'static [Style] = &[Style::Canonical, Style::Human];
}

/// The upper ends of the keys whose cost grows with their value, derived from the time
/// they imply. Each, with the other keys at their defaults, keeps the longest experiment
/// within a few minutes on a laptop's two cores (measured at the default sizes: a
/// pre-training step 0.035 ms, an SFT epoch with its tracking 6 ms, a DPO update with its
/// per-term attribution 0.6 ms; `lm_policy` trains 25 DPO runs, and at 2 000 updates
/// took 35 s). The model's sizes are bounded by the memory estimate
/// ([`LmConfig::memory_bytes`]).
pub const MAX_PRETRAIN_STEPS: i64 = 100_000;
/// See [`MAX_PRETRAIN_STEPS`].
pub const MAX_SFT_EPOCHS: i64 = 256;
/// See [`MAX_PRETRAIN_STEPS`]; pre-training and every epoch grow with the entities, and
/// the cost grows faster than their number (the vocabulary grows with them): at 48
/// entities the longest run, `lm_policy`, took 30 s (`lm_losses` 22 s, `lm_influence` 21 s,
/// `lm_sft_length` 13 s); at 96 several took 2 to over 5 minutes.
pub const MAX_ENTITIES: i64 = 48;
/// See [`MAX_PRETRAIN_STEPS`]; tracking intervals are bounded by it too.
pub const MAX_DPO_UPDATES: i64 = 2_000;

/// The keys of [`LmConfig`], for configurations that embed it.
pub fn world_keys() -> Vec<Key> {
    world_keys_with((
        "SFT passes over the training prompts",
        Range::Int(0, MAX_SFT_EPOCHS),
    ))
}

/// The keys of [`LmConfig`], with the documentation and range of `sft.epochs` given (an
/// experiment that reads it differently says how).
pub fn world_keys_with((sft_epochs, sft_range): (&'static str, Range)) -> Vec<Key> {
    vec![
        Key::new(
            "world",
            "how the instruction data words its answers: canonical (y⁺ always IS v, SFT on y⁺) or human (synonyms at 0.5, SFT on fresh samples)",
            Range::choice::<Style>(),
        ),
        Key::new(
            "language.entities",
            "entities, each with one fact (pre-training scales with them: see pretrain.steps)",
            Range::Int(3, MAX_ENTITIES),
        ),
        Key::new(
            "language.values",
            "values an entity's fact can take, each with a synonym",
            Range::Int(2, 64),
        ),
        Key::new(
            "language.test_entities",
            "entities held out of instruction tuning (the test_prompt probes); at least 2 must remain",
            Range::Int(1, MAX_ENTITIES - 2),
        ),
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
            "pre-training SGD steps, one corpus sentence each, for 12 entities: a world of E entities takes E/12 times as many (rounded up), so that each fact is seen as often",
            Range::Int(0, MAX_PRETRAIN_STEPS),
        ),
        Key::new(
            "pretrain.eta",
            "pre-training learning rate",
            Range::positive(10.0),
        ),
        Key::new("sft.epochs", sft_epochs, sft_range),
        Key::new("sft.eta", "SFT learning rate", Range::positive(10.0)),
        Key::new(
            "dpo_updates",
            "DPO updates, one preference pair each",
            Range::Int(0, MAX_DPO_UPDATES),
        ),
        Key::new("dpo_eta", "DPO learning rate", Range::positive(10.0)),
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
        self.spec().params()?.checked_mul(512)
    }

    /// The pre-training steps of this world: `pretrain.steps` for 12 entities, scaled
    /// by `language.entities / 12` and rounded up, so that each fact is seen as often.
    pub fn pretrain_steps(&self) -> usize {
        (self.pretrain.steps * self.language.entities).div_ceil(12)
    }

    /// The model's sizes, with the language's vocabulary.
    pub fn spec(&self) -> LmSpec {
        LmSpec {
            vocab: self.language.vocab(),
            window: self.model.window,
            embed: self.model.embed,
            hidden: self.model.hidden,
        }
    }
}
