//! The world every language-model experiment runs in: the configuration of the tiny LM
//! and its schedules, the seeded synthetic language ([`crate::language`]), the
//! pre-trained base model, the SFT and DPO updates, and the per-family statistics that
//! observers record.
//!
//! One seed fixes everything, in this order of draws from one generator: the language,
//! its probes, the model's initialisation, the pre-training corpus, then the order of
//! every SFT epoch and DPO pass. Pre-training and SFT are trained once per world and seed
//! in a process ([`checkpoint`]) and shared by every experiment that starts there.
//!
//! For the on/off-policy comparison it also holds the pieces every regime shares: where
//! a DPO pair comes from ([`Regime`], [`draw_pair`]) and the update rule that gives every
//! regime exactly the same number of updates ([`train_dpo`]). What the experiments
//! measure in this world is in [`super::lm_measures`].

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::lm_measures::{DpoCounts, DpoRun, SftPhase, SnapshotTracker, Tracker};
use super::settings::Variants;
use super::{Key, Range};
use crate::Rng64;
use crate::error::Result;
use crate::language::{ANSWER_LEN, END, Language, Probe, Style, VOCAB};
use crate::lm::{LmSpec, Sequence, TinyLm};
use crate::model::Model;
use crate::numerics::sequence_log_prob;
use crate::objective::{CrossEntropy, Objective, PairLoss, Pairwise};
use crate::trainer::{Observer, Trainer, Update};

/// The gallery's seed (the authors' code uses 1024).
pub const DEFAULT_SEED: u64 = 1024;

/// How many seeds an experiment that compares runs covers: `seed, seed + 1, …`.
pub const SEEDS: u64 = 5;

/// The [`SEEDS`] seeds from `first`.
pub fn seeds(first: u64) -> impl Iterator<Item = u64> {
    (0..SEEDS).map(move |k| first.wrapping_add(k))
}

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
pub const WORLD_MEMORY_KEYS: &str = "model.window, model.embed and model.hidden";

impl Variants for Style {
    const ALL: &'static [Style] = &[Style::Canonical, Style::Human];
}

/// The keys of [`LmConfig`], for configurations that embed it.
pub fn world_keys() -> Vec<Key> {
    world_keys_with((
        "SFT passes over the training prompts",
        Range::Int(0, 10_000),
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
        Key::new("sft.epochs", sft_epochs, sft_range),
        Key::new("sft.eta", "SFT learning rate", Range::positive(10.0)),
        Key::new(
            "dpo_updates",
            "DPO updates, one preference pair each",
            Range::Int(0, 1_000_000),
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
    let language = Language::random(config.world, &mut rng);
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

/// The SFT checkpoint of one world and seed: where every DPO run starts.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// The world, its generator advanced past SFT (DPO draws its orders from it).
    pub world: World,
    /// The model after SFT: DPO's start and frozen reference.
    pub sft_model: TinyLm,
    /// The families tracked at every SFT step (and before the first), and the budget.
    pub sft: SftPhase,
}

/// What fixes a pre-trained world: the answer style, the model, pre-training, the seed.
type WorldKey = (Style, ModelSize, Steps, u64);
/// What fixes a checkpoint: the world's key and SFT.
type CheckpointKey = (WorldKey, Epochs);

/// A process-wide memo of values that are expensive and deterministic in their key,
/// newest last, keeping at most `KEPT` of them.
struct Memo<K, V>(std::sync::Mutex<Vec<(K, V)>>);

/// How many pre-trained worlds and checkpoints are kept: a gallery needs about 11
/// seeds, and `lm_sft_length` five SFT lengths of five of them.
const KEPT: usize = 48;

impl<K: PartialEq, V: Clone> Memo<K, V> {
    const fn new() -> Self {
        Memo(std::sync::Mutex::new(Vec::new()))
    }

    /// The value of `key`, computed by `compute` unless it is kept. The lock is not held
    /// while computing, so two threads may compute the same value; both get it.
    fn get(&self, key: K, compute: impl FnOnce() -> Result<V>) -> Result<V> {
        let lock = || self.0.lock().unwrap_or_else(|e| e.into_inner());
        let find = |kept: &Vec<(K, V)>| kept.iter().find(|(k, _)| *k == key).map(|e| e.1.clone());
        if let Some(found) = find(&lock()) {
            return Ok(found);
        }
        let value = compute()?;
        let mut kept = lock();
        if find(&kept).is_none() {
            if kept.len() == KEPT {
                kept.remove(0);
            }
            kept.push((key, value.clone()));
        }
        Ok(value)
    }
}

/// Pre-trained worlds of this process.
static WORLDS: Memo<WorldKey, World> = Memo::new();
/// SFT checkpoints of this process.
static CHECKPOINTS: Memo<CheckpointKey, Checkpoint> = Memo::new();

/// The pre-trained world of `seed` ([`pretrain`]), shared in the process as
/// [`checkpoint`]s are.
///
/// # Errors
/// If a step fails.
pub fn pretrained(config: &LmConfig, seed: u64) -> Result<World> {
    let key = (config.world, config.model, config.pretrain, seed);
    WORLDS.get(key, || pretrain(config, seed))
}

/// Pre-training then SFT for `seed`, tracked at every SFT step. Every LM experiment starts
/// here. A pre-trained world, and a checkpoint, trained once in a process is shared (the
/// same world and seed; and the same SFT): the result is the same as training it again,
/// bit for bit.
///
/// # Errors
/// If a step fails.
pub fn checkpoint(config: &LmConfig, seed: u64) -> Result<Checkpoint> {
    let world_key = (config.world, config.model, config.pretrain, seed);
    CHECKPOINTS.get((world_key, config.sft), || {
        let mut world = pretrained(config, seed)?;
        let probes = world.probes.clone();
        let mut track = Tracker::new(&probes, 1);
        let sft_model = world.sft(config, &mut [&mut track])?;
        let token_updates = config.sft.epochs * world.language.train.len() * ANSWER_LEN;
        Ok(Checkpoint {
            world,
            sft_model,
            sft: SftPhase {
                points: track.points,
                token_updates,
            },
        })
    })
}

/// SFT on `(ASK e, response(e))` for the training entity `j`.
pub fn sft_update(
    language: &Language,
    response: fn(&Language, usize) -> Vec<usize>,
    j: usize,
) -> Update<TinyLm> {
    sft_on(language, j, response(language, j))
}

/// SFT on `(ASK e, y)` for the training entity `j`.
fn sft_on(language: &Language, j: usize, y: Vec<usize>) -> Update<TinyLm> {
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
    /// SFT of the base model on the instruction data ([`Language::sft_answer`]), with
    /// `observers`. The epoch orders come from the world's generator; the human answers
    /// of [`Style::Human`] from a generator seeded by it.
    pub fn sft(
        &mut self,
        config: &LmConfig,
        observers: &mut [&mut dyn Observer<TinyLm>],
    ) -> Result<TinyLm> {
        let mut trainer = Trainer::new(self.base.clone(), config.sft.eta)?;
        let language = &self.language;
        // Canonical SFT trains on y⁺ and draws nothing, so its runs keep their bytes.
        let mut answers = Rng64::seed_from_u64(match language.style {
            Style::Canonical => 0,
            Style::Human => self.rng.next_u64(),
        });
        trainer.epochs(
            config.sft.epochs,
            &language.train,
            &mut self.rng,
            |&j| sft_on(language, j, language.sft_answer(j, &mut answers)),
            observers,
        )?;
        Ok(trainer.model)
    }

    /// The extend method's SFT (the paper's §4.3): the instruction data of
    /// [`World::sft`] plus `(x, y⁻)` for every training prompt, for the same number of
    /// updates, so the same token budget (every answer has [`ANSWER_LEN`] tokens). The
    /// doubled data is visited in shuffled passes, the last one cut short.
    ///
    /// # Errors
    /// If a step fails.
    pub fn sft_extended(
        &mut self,
        config: &LmConfig,
        observers: &mut [&mut dyn Observer<TinyLm>],
    ) -> Result<TinyLm> {
        use rand::seq::SliceRandom;
        let mut trainer = Trainer::new(self.base.clone(), config.sft.eta)?;
        let language = &self.language;
        let mut answers = Rng64::seed_from_u64(self.rng.next_u64());
        let items: Vec<(usize, bool)> = language
            .train
            .iter()
            .flat_map(|&j| [(j, false), (j, true)])
            .collect();
        let updates = config.sft.epochs * language.train.len();
        trainer.start(observers)?;
        while trainer.steps() < updates {
            let mut order = items.clone();
            order.shuffle(&mut self.rng);
            for &(j, rejected) in order.iter().take(updates - trainer.steps()) {
                let y = if rejected {
                    language.rejected(j)
                } else {
                    language.sft_answer(j, &mut answers)
                };
                let (inputs, objective) = sft_on(language, j, y);
                trainer.step(&inputs, objective.as_ref(), observers)?;
            }
        }
        Ok(trainer.model)
    }
}

/// Where the pairs of a DPO run come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Regime {
    /// `(y⁺, y⁻)` from the fixed dataset.
    OffPolicy,
    /// `y⁺` from the data, `y⁻` sampled from the current model (SPIN); usable when
    /// `y⁻ ≠ y⁺`.
    Spin,
    /// Two samples of the current model ranked by [`Answer::reward`](crate::language::Answer::reward); usable when the
    /// rewards differ, the higher one becoming `y⁺`.
    Online,
}

impl Regime {
    /// Every regime, in figure order.
    pub const ALL: [Regime; 3] = [Regime::OffPolicy, Regime::Spin, Regime::Online];

    /// The regime's id in CSV files and figures.
    pub fn id(self) -> &'static str {
        match self {
            Regime::OffPolicy => "off_policy",
            Regime::Spin => "spin",
            Regime::Online => "online",
        }
    }
}

/// One sample of `model`'s answer to the prompt of entity `j`, at temperature 1, to
/// `END` or twice the answer length.
fn sample_answer(
    model: &TinyLm,
    language: &Language,
    j: usize,
    rng: &mut Rng64,
) -> Result<Vec<usize>> {
    model.complete(
        &language.prompt(j),
        Some(END),
        2 * ANSWER_LEN,
        Some(1.0),
        rng,
    )
}

/// A preference pair of responses, `(y⁺, y⁻)`.
pub type Pair = (Vec<usize>, Vec<usize>);

/// A usable `(y⁺, y⁻)` for the prompt of entity `j` under `regime`, drawn with `rng` from
/// `model`, after at most `max_redraws` redraws of unusable draws; `None` if the prompt
/// is passed over. The second value counts the redraws made.
///
/// # Errors
/// Never for a model of the language's vocabulary.
pub fn draw_pair(
    regime: Regime,
    language: &Language,
    model: &TinyLm,
    j: usize,
    max_redraws: usize,
    rng: &mut Rng64,
) -> Result<(Option<Pair>, usize)> {
    for redraws in 0..=max_redraws {
        let pair = match regime {
            Regime::OffPolicy => Some((language.chosen(j), language.rejected(j))),
            Regime::Spin => {
                let (plus, minus) = (language.chosen(j), sample_answer(model, language, j, rng)?);
                (minus != plus).then_some((plus, minus))
            }
            Regime::Online => {
                let a = sample_answer(model, language, j, rng)?;
                let b = sample_answer(model, language, j, rng)?;
                let (ra, rb) = (
                    language.judge(j, &a).reward(),
                    language.judge(j, &b).reward(),
                );
                let ranked = if ra > rb { (a, b) } else { (b, a) };
                (ra != rb).then_some(ranked)
            }
        };
        if pair.is_some() {
            return Ok((pair, redraws));
        }
    }
    Ok((None, max_redraws))
}

/// How a preference-training run goes: where its pairs come from, its loss and
/// schedule, and how often an unusable on-policy draw is redrawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dpo {
    /// Where the pairs come from.
    pub regime: Regime,
    /// The pairwise loss.
    pub loss: PairLoss,
    /// The learning rate.
    pub eta: f64,
    /// The loss's β.
    pub beta: f64,
    /// Updates taken, one usable pair each.
    pub updates: usize,
    /// Unusable draws redrawn per prompt before it is passed over.
    pub max_redraws: usize,
}

impl Dpo {
    /// Off-policy DPO with the world's `dpo_eta`, `beta` and `dpo_updates`.
    pub fn off_policy(config: &LmConfig) -> Self {
        Dpo {
            regime: Regime::OffPolicy,
            loss: PairLoss::Dpo,
            eta: config.dpo_eta,
            beta: config.beta,
            updates: config.dpo_updates,
            max_redraws: 0,
        }
    }
}

/// Preference training as `dpo` says from `start` with `reference` frozen, under the
/// update rule shared by every regime: exactly `dpo.updates` updates of one usable pair
/// each; prompts visited in an order shuffled by `rng` at every pass; an unusable draw
/// redrawn up to `dpo.max_redraws` times, after which the prompt is passed over.
///
/// # Errors
/// If a whole pass over the prompts yields no usable pair (with the counts), or a step
/// fails.
pub fn train_dpo(
    dpo: &Dpo,
    language: &Language,
    (start, reference): (&TinyLm, &TinyLm),
    rng: &mut Rng64,
    observers: &mut [&mut dyn Observer<TinyLm>],
) -> Result<(TinyLm, DpoCounts)> {
    let &Dpo {
        regime,
        loss,
        eta,
        beta,
        updates,
        max_redraws,
    } = dpo;
    use rand::seq::SliceRandom;
    let mut trainer = Trainer::new(start.clone(), eta)?;
    trainer.start(observers)?;
    let mut counts = DpoCounts {
        updates: 0,
        redraws: 0,
    };
    while counts.updates < updates {
        let mut order = language.train.clone();
        order.shuffle(rng);
        let before = counts.updates;
        for &j in &order {
            if counts.updates == updates {
                break;
            }
            let (pair, redraws) = draw_pair(regime, language, &trainer.model, j, max_redraws, rng)?;
            counts.redraws += redraws;
            if let Some((plus, minus)) = pair {
                let (inputs, objective) =
                    pair_update(&language.prompt(j), plus, minus, reference, loss, beta);
                trainer.step(&inputs, objective.as_ref(), observers)?;
                counts.updates += 1;
            }
        }
        if counts.updates == before {
            return Err(crate::error::Error::InvalidArgument(format!(
                "{} DPO: a whole pass over the {} prompts gave no usable pair ({} of {} updates taken, {} redraws)",
                regime.id(),
                order.len(),
                counts.updates,
                updates,
                counts.redraws
            )));
        }
    }
    Ok((trainer.model, counts))
}

/// A run of `dpo` from `model` (also its frozen reference), which `sft` led to, in the
/// world of `start`, the seed's checkpoint: the prompts are visited from the
/// checkpoint's generator state, so runs from one checkpoint see the same first order,
/// and a [`Snapshot`](super::lm_measures::Snapshot) is taken every `every` updates and
/// after the last.
///
/// # Errors
/// As [`train_dpo`].
pub fn tracked_dpo<L>(
    (label, seed): (L, u64),
    start: &Checkpoint,
    (model, sft): (&TinyLm, SftPhase),
    dpo: &Dpo,
    every: usize,
) -> Result<(TinyLm, DpoRun<L>)> {
    let language = &start.world.language;
    let mut rng = start.world.rng.clone();
    let mut tracker = SnapshotTracker::new(language, &start.world.probes, every, dpo.updates);
    let (end, counts) = train_dpo(dpo, language, (model, model), &mut rng, &mut [&mut tracker])?;
    Ok((
        end,
        DpoRun {
            label,
            seed,
            counts,
            sft,
            points: tracker.points,
        },
    ))
}
