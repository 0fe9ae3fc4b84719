//! The world itself: one seed draws the language ([`crate::language`]) and its probes,
//! initialises the model and pre-trains it ([`pretrain`]); SFT on the instruction data
//! then gives the [`Checkpoint`] every DPO run starts from. Both are trained once per
//! configuration and seed in a process and shared (a small memo), bit for bit what
//! training them again would give. The updates of this world (SFT on an answer, a
//! preference pair) are the model's own ([`crate::lm::update`]), on the prompt of an
//! entity.

use rand::{Rng, SeedableRng};

use super::config::{Epochs, LmConfig, ModelSize, Steps};
use crate::Rng64;
use crate::error::Result;
use crate::experiments::lm_measures::{SftPhase, Tracker, fact_accuracy};
use crate::language::{Language, Probe, Sizes, Style};
use crate::lm::{TinyLm, update};
use crate::objective::CrossEntropy;
use crate::trainer::{Observer, Trainer, Update};

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
    let language = Language::random(config.world, config.language, &mut rng);
    let probes = language.probes(&mut rng);
    let mut trainer = Trainer::new(
        TinyLm::random(config.spec(), &mut rng)?,
        config.pretrain.eta,
    )?;
    let steps = config.pretrain_steps();
    crate::progress::stage(0, || format!("seed {seed}: pre-training"));
    for step in 0..steps {
        if step % (steps / 100).max(1) == 0 {
            crate::progress::stage(1, || format!("step {step}/{steps}"));
        }
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
type WorldKey = (Style, Sizes, ModelSize, Steps, u64);
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
    let key = (
        config.world,
        config.language,
        config.model,
        config.pretrain,
        seed,
    );
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
    let world_key = (
        config.world,
        config.language,
        config.model,
        config.pretrain,
        seed,
    );
    CHECKPOINTS.get((world_key, config.sft), || {
        let mut world = pretrained(config, seed)?;
        let probes = world.probes.clone();
        let mut track = Tracker::new(&probes, 1);
        crate::progress::stage(0, || format!("seed {seed}: SFT"));
        let sft_model = world.sft(config, &mut [&mut track])?;
        let base_fact_accuracy = fact_accuracy(&world.base, &world.language);
        Ok(Checkpoint {
            world,
            sft_model,
            sft: SftPhase {
                points: track.points,
                token_updates: track.token_updates,
                base_fact_accuracy,
            },
        })
    })
}

/// Which of a world's trained models.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The pre-trained base model (what `ldyn akg --reference self` starts from).
    Base,
    /// The SFT checkpoint, where every DPO run starts.
    Sft,
}

/// The model of `seed`'s world at `stage`, trained once in a process and shared
/// ([`pretrained`], [`checkpoint`]).
///
/// # Errors
/// If a step fails.
pub fn world_model(config: &LmConfig, seed: u64, stage: Stage) -> Result<TinyLm> {
    Ok(match stage {
        Stage::Base => pretrained(config, seed)?.base,
        Stage::Sft => checkpoint(config, seed)?.sft_model,
    })
}

/// The extend method's start for `seed` (the paper's §4.3): the pre-trained world's
/// [`World::sft_extended`], with the families tracked every `every` SFT steps and after
/// the last.
///
/// # Errors
/// If a step fails.
pub fn extended(config: &LmConfig, seed: u64, every: usize) -> Result<(TinyLm, SftPhase)> {
    let mut world = pretrained(config, seed)?;
    let probes = world.probes.clone();
    let mut track = Tracker::new(&probes, every);
    crate::progress::stage(0, || format!("seed {seed}: extended SFT"));
    let model = world.sft_extended(config, &mut [&mut track])?;
    track.finish(&model, config.sft.epochs * world.language.train.len());
    let sft = SftPhase {
        points: track.points,
        token_updates: track.token_updates,
        base_fact_accuracy: fact_accuracy(&world.base, &world.language),
    };
    Ok((model, sft))
}

/// SFT on `(ASK e, y)` for the training entity `j` ([`update::sft`]).
pub fn sft_on(language: &Language, j: usize, y: &[usize]) -> Update<TinyLm> {
    let (inputs, objective) = update::sft(&language.prompt(j), y);
    (inputs, Box::new(objective))
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
            |&j| sft_on(language, j, &language.sft_answer(j, &mut answers)),
            observers,
        )?;
        Ok(trainer.model)
    }

    /// The extend method's SFT (the paper's §4.3): the instruction data of
    /// [`World::sft`] plus `(x, y⁻)` for every training prompt, for the same number of
    /// updates, so the same token budget (every answer has [`ANSWER_LEN`](crate::language::ANSWER_LEN) tokens; the trackers count them). The
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
                let (inputs, objective) = sft_on(language, j, &y);
                trainer.step(&inputs, objective.as_ref(), observers)?;
            }
        }
        Ok(trainer.model)
    }
}
