//! Preference training in the world, the pieces every regime shares: where a pair comes
//! from ([`Regime`], [`draw_pair`]) and the update rule that gives every regime exactly
//! the same number of updates ([`train_dpo`], and [`tracked_dpo`] with snapshots).

use super::config::LmConfig;
use super::world::{Checkpoint, pair_on};
use crate::Rng64;
use crate::error::Result;
use crate::experiments::lm_measures::{DpoCounts, DpoRun, SftPhase, SnapshotTracker};
use crate::language::{ANSWER_LEN, END, Language};
use crate::lm::TinyLm;
use crate::objective::PairLoss;
use crate::trainer::{Observer, Trainer};

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
                    pair_on(language, j, (plus, minus), reference, (loss, beta));
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
/// and a [`Snapshot`](crate::experiments::lm_measures::Snapshot) is taken every `every` updates and
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
