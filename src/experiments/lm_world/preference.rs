//! Preference training in the world, the pieces every regime shares: where a pair comes
//! from ([`Regime`], [`draw_pair`]) and the update rule that gives every regime exactly
//! the same number of updates ([`train_dpo`], and [`tracked_dpo`] with snapshots).

use serde::{Deserialize, Serialize};

use super::config::LmConfig;
use super::world::Checkpoint;
use crate::Rng64;
use crate::error::Result;
use crate::experiments::lm_measures::{
    AttributionTracker, DpoCounts, DpoRun, SftPhase, SnapshotTracker, SqueezingTracker,
    UpdateRecord, fixed_argmax,
};
use crate::experiments::{Key, Range};
use crate::language::{ANSWER_LEN, END, Language};
use crate::lm::{Sequence, TinyLm, update};
use crate::objective::{Objective, OneTerm, PairLoss, Pairwise, Term};
use crate::trainer::{Observer, Trainer, Update};

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
    /// The ablation of off-policy DPO's rejected term: the same pairs, order and number
    /// of updates, with only the chosen term in the gradient ([`OneTerm`]).
    OffPolicyChosenOnly,
    /// The ablation of its chosen term: only the rejected term in the gradient.
    OffPolicyRejectedOnly,
}

impl Regime {
    /// Every regime, in figure order.
    pub const ALL: [Regime; 5] = [
        Regime::OffPolicy,
        Regime::Spin,
        Regime::Online,
        Regime::OffPolicyChosenOnly,
        Regime::OffPolicyRejectedOnly,
    ];

    /// The regime's id in CSV files and figures.
    pub fn id(self) -> &'static str {
        match self {
            Regime::OffPolicy => "off_policy",
            Regime::Spin => "spin",
            Regime::Online => "online",
            Regime::OffPolicyChosenOnly => "off_policy_chosen_only",
            Regime::OffPolicyRejectedOnly => "off_policy_rejected_only",
        }
    }

    /// The one term an ablation keeps (`None`: both, the full loss).
    pub fn only(self) -> Option<Term> {
        match self {
            Regime::OffPolicyChosenOnly => Some(Term::Chosen),
            Regime::OffPolicyRejectedOnly => Some(Term::Rejected),
            _ => None,
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

/// A pairwise update on `(y⁺, y⁻)` for the prompt of entity `j`, with `reference` frozen
/// ([`update::pair`]).
pub fn pair_on(
    language: &Language,
    j: usize,
    pair: Pair,
    reference: &TinyLm,
    (loss, beta): (PairLoss, f64),
) -> (Vec<Sequence>, Pairwise) {
    update::pair(reference, &language.prompt(j), pair, loss, beta)
}

/// Off-policy DPO on `(y⁺, y⁻)` of the training entity `j`, with `reference` frozen.
pub fn dpo_update(language: &Language, reference: &TinyLm, beta: f64, j: usize) -> Update<TinyLm> {
    let pair = (language.chosen(j), language.rejected(j));
    let (inputs, objective) = pair_on(language, j, pair, reference, (PairLoss::Dpo, beta));
    (inputs, Box::new(objective))
}

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
            Regime::OffPolicy | Regime::OffPolicyChosenOnly | Regime::OffPolicyRejectedOnly => {
                Some((language.chosen(j), language.rejected(j)))
            }
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

/// The hyperparameters of the two bounded losses, IPO and SLiC, in every experiment that
/// trains them (`lm_losses`, `lm_remedies`), with their documented keys ([`Bounded::keys`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bounded {
    /// IPO's τ: its target margin is `1/(2τ)`.
    pub ipo_tau: f64,
    /// SLiC's margin δ, in nats of `log π(y⁺) − log π(y⁻)`.
    pub slic_delta: f64,
    /// SLiC's weight λ of the SFT term on `y⁺`.
    pub slic_lambda: f64,
}

impl Default for Bounded {
    fn default() -> Self {
        Bounded {
            // The paper's Eq. 16 writes IPO's τ as β; the authors use β = 0.1.
            ipo_tau: 0.1,
            // The paper's Eq. 18 gives no value for δ; one nat between the two answers.
            slic_delta: 1.0,
            // The paper's Eq. 18 weighs the SFT term by β; the authors use β = 0.1.
            slic_lambda: 0.1,
        }
    }
}

impl Bounded {
    /// The documented keys of the three fields, in order.
    pub fn keys() -> [Key; 3] {
        [
            Key::new(
                "ipo_tau",
                "IPO's τ: its target margin is 1/(2τ) (the authors' β = 0.1)",
                Range::positive(1000.0),
            ),
            Key::new(
                "slic_delta",
                "SLiC's margin δ in nats (the paper gives no value)",
                Range::positive(1000.0),
            ),
            Key::new(
                "slic_lambda",
                "SLiC's weight of the SFT term on y⁺ (the paper's β, 0.1)",
                Range::Real {
                    min: 0.0,
                    open_min: false,
                    max: 1000.0,
                },
            ),
        ]
    }

    /// IPO with the β its [`Pairwise`] takes (τ).
    pub fn ipo(&self) -> (PairLoss, f64) {
        (PairLoss::Ipo, self.ipo_tau)
    }

    /// SLiC with the world's β (which it does not read).
    pub fn slic(&self, world: &LmConfig) -> (PairLoss, f64) {
        let slic = PairLoss::Slic {
            delta: self.slic_delta,
            lambda: self.slic_lambda,
        };
        (slic, world.beta)
    }

    /// The keys that set `loss`'s matched learning rate ([`matched_eta`]), as
    /// [`check_eta`] names them (empty for a loss that is not bounded).
    pub fn rate_keys(&self, loss: PairLoss) -> String {
        match loss {
            PairLoss::Ipo => format!(", ipo_tau = {:e}", self.ipo_tau),
            PairLoss::Slic { .. } => format!(", slic_lambda = {:e}", self.slic_lambda),
            _ => String::new(),
        }
    }
}

/// The largest learning rate a loss may be given. DPO's default is 0.1; a rate 100 times
/// larger overflows the tiny LM within a few updates.
pub const MAX_ETA: f64 = 10.0;

/// The learning rate that gives `loss` at `beta` DPO's first step: the world's
/// `dpo_eta` times DPO's first-step coefficient over `loss`'s (the larger of `s⁺`, `s⁻`
/// with the model at its reference).
///
/// The losses' coefficients differ by orders of magnitude at the first step (`s = β/2 =
/// 0.05` for DPO, `1/τ = 10` for IPO, `1 + λ` for SLiC, `η_s = 10` for SPPO), so one
/// learning rate would compare step sizes, not losses.
pub fn matched_eta(world: &LmConfig, loss: PairLoss, beta: f64) -> f64 {
    let first_step = |loss: PairLoss, beta: f64| {
        let (_, s_plus, s_minus) = loss.strengths(beta, (0.0, 0.0), (0.0, 0.0), ANSWER_LEN);
        s_plus.max(s_minus)
    };
    // The ratio first, so that DPO's own rate is exactly `dpo_eta`.
    world.dpo_eta * (first_step(PairLoss::Dpo, world.beta) / first_step(loss, beta))
}

/// Refuses a learning rate `eta` of `loss` that is not a number or too large to train
/// with, naming the configuration's `keys` that set it (`", ipo_tau = 0.1"`), after
/// `beta` and `dpo_eta`.
///
/// # Errors
/// Naming the loss, its rate and the keys; also when `beta` makes DPO's first-step
/// coefficient, by which [`matched_eta`] scales, round to 0.
pub fn check_eta(world: &LmConfig, (loss, eta): (PairLoss, f64), keys: &str) -> Result<()> {
    let (_, s_plus, _) = PairLoss::Dpo.strengths(world.beta, (0.0, 0.0), (0.0, 0.0), ANSWER_LEN);
    if s_plus <= 0.0 {
        return Err(crate::error::Error::InvalidArgument(format!(
            "beta = {} makes DPO's first-step coefficient β/2 round to 0, and every loss's learning rate is scaled by it; give beta at least 1e-300",
            crate::error::number(world.beta)
        )));
    }
    if !(eta.is_finite() && eta > 0.0 && eta <= MAX_ETA) {
        let rate = crate::error::number(eta);
        return Err(crate::error::Error::InvalidArgument(format!(
            "beta = {:e}, dpo_eta = {:e}{keys} give {loss} a learning rate of {rate} (DPO's rate times DPO's first-step coefficient over {loss}'s), outside (0, {MAX_ETA}]; change one of them",
            world.beta, world.dpo_eta
        )));
    }
    Ok(())
}

/// Preference training as `dpo` says from `start` with `reference` frozen, under the
/// update rule shared by every regime: prompts visited in an order shuffled by `rng` at
/// every pass; an unusable draw redrawn up to `dpo.max_redraws` times, after which the
/// prompt is passed over; `dpo.updates` updates of one usable pair each, unless a whole
/// pass over the prompts yields no usable pair: then the run ends there, with fewer
/// updates, which its [`DpoCounts`] record (at a larger β an on-policy model can become
/// so sure that its two samples never differ; `max_redraws` is the key to raise). Every
/// update is recorded ([`UpdateRecord`]): where `y⁻` sits under the model at that moment,
/// and the loss's two coefficients.
///
/// # Errors
/// If a step fails.
pub fn train_dpo(
    dpo: &Dpo,
    language: &Language,
    (start, reference): (&TinyLm, &TinyLm),
    rng: &mut Rng64,
    observers: &mut [&mut dyn Observer<TinyLm>],
) -> Result<(TinyLm, DpoCounts)> {
    use rand::seq::SliceRandom;
    let mut trainer = Trainer::new(start.clone(), dpo.eta)?;
    trainer.start(observers)?;
    let mut counts = DpoCounts::default();
    while counts.updates < dpo.updates {
        let mut order = language.train.clone();
        order.shuffle(rng);
        let before = counts.updates;
        for &j in &order {
            if counts.updates == dpo.updates {
                break;
            }
            let (pair, redraws) = draw_pair(
                dpo.regime,
                language,
                &trainer.model,
                j,
                dpo.max_redraws,
                rng,
            )?;
            counts.redraws += redraws;
            if let Some(pair) = pair {
                let (inputs, objective) =
                    pair_on(language, j, pair, reference, (dpo.loss, dpo.beta));
                counts
                    .records
                    .push(UpdateRecord::of(&trainer.model, &inputs, &objective));
                let objective: Box<dyn Objective> = match dpo.regime.only() {
                    Some(term) => Box::new(OneTerm {
                        pair: objective,
                        term,
                    }),
                    None => Box::new(objective),
                };
                trainer.step(&inputs, objective.as_ref(), observers)?;
                counts.updates += 1;
                crate::progress::stage(1, || format!("update {}/{}", counts.updates, dpo.updates));
            }
        }
        if counts.updates == before {
            break;
        }
    }
    Ok((trainer.model, counts))
}

/// What a tracked run records: a [`Snapshot`](crate::experiments::lm_measures::Snapshot)
/// every `every` updates, and with `attribute` the per-term attribution of every update
/// ([`AttributionTracker`]: one forward-mode pass over every probe per update, the
/// costly part).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tracking {
    /// Updates between two snapshots.
    pub every: usize,
    /// Whether every update is attributed to DPO's two terms.
    pub attribute: bool,
    /// The `β` of the dashboard's rewards: DPO's (the world's), whatever the loss's own.
    pub reward_beta: f64,
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
    Tracking {
        every,
        attribute,
        reward_beta,
    }: Tracking,
) -> Result<(TinyLm, DpoRun<L>)> {
    let language = &start.world.language;
    let probes = &start.world.probes;
    let mut rng = start.world.rng.clone();
    // The SFT model's argmax, fixed for both trackers before the first update.
    let fixed = fixed_argmax(model, probes);
    let observed = (probes.as_slice(), fixed.clone());
    let mut tracker = SnapshotTracker::new(language, observed, (every, dpo.updates), reward_beta);
    let mut attribution = AttributionTracker::new(probes, fixed, every);
    let mut squeezing = SqueezingTracker::default();
    let mut observers: Vec<&mut dyn Observer<TinyLm>> = vec![&mut tracker, &mut squeezing];
    if attribute {
        observers.push(&mut attribution);
    }
    let (end, counts) = train_dpo(dpo, language, (model, model), &mut rng, &mut observers)?;
    tracker.finish(&end, counts.updates)?;
    if attribute {
        attribution.finish(&end, counts.updates)?;
    }
    Ok((
        end,
        DpoRun {
            label,
            seed,
            counts,
            sft,
            points: tracker.points,
            attribution: attribution.attribution,
            squeezing: squeezing.records,
        },
    ))
}
