//! The authors' squeezing toy (the paper's App. E figure), run through the
//! crate's linear model and one-step decomposition.
//!
//! A linear softmax model `z = W x` (no bias, by default `V = 50`, `d = 4`) takes one SGD step with
//! `η = 1` on a weighted cross-entropy: weight `−lr` on a class that gets a negative
//! gradient and `+lr` on one that gets a positive gradient. Then
//! `Δz = −K G = ‖x‖² [lr₋ (π − e₋) − lr₊ (π − e₊)]`, exactly the notebook's update
//! `W ← W + lr₋ x (π − e₋)ᵀ − lr₊ x (π − e₊)ᵀ`.
//!
//! Draws, in order, from one seeded generator: `x ~ N(0, I₄)`; `W_uniform ~ N(0, 1)`;
//! `W_flat = 1 + 0.05 N(0, 1)`; `W_peaky`: a fresh `N(0, 1)` matrix after one CE step
//! (lr 1) toward the multi-hot target on classes `V/10 .. 13V/50` (5–12 for `V = 50`);
//! then, for the large vocabulary, `x ~ N(0, I₅₀)` and `W = 0.5 N(0, 1)` with `V = 1000`.
//!
//! The notebook's fixed class ids (21 and 42 of 50, scaled to `V`) are kept where their
//! role does not depend on the draw. Where it does, the class is chosen by its role: the side bump is the
//! second most likely class of the peaky distribution, the valley its least likely
//! class, the positive partner its median class, and the large-vocabulary target the
//! least likely of the 1000 classes.
//!
//! This module builds the cases; `claims` checks the figure's claims on them and
//! `tables` writes them as CSV.

use nalgebra::{DMatrix, DVector};
use rand::SeedableRng;

use serde::{Deserialize, Serialize};

mod claims;
mod tables;

pub use tables::CSV_HEADER;

use super::toys::{gaussian, peaky_weights, ranked};
use super::{Claim, Experiment, Key, Range, Settings, Table, Valid};
use crate::Rng64;
use crate::decomposition::one_step;
use crate::error::Result;
use crate::mlp::{Mlp, normal};
use crate::objective::CrossEntropy;
use crate::squeezing::{Direction, Role, Squeeze};

/// The seed the gallery uses (the notebook's `np.random.seed(10086)`).
pub const DEFAULT_SEED: u64 = 10086;

/// The step `c = lr·‖x‖²` of the positive case: the paper's case A (the notebook's
/// `plus_lr = 0.5` on its draw of `x`, whose `‖x‖²` is about 10.4), where only the target
/// rises and the entropy falls from 2.45 to 0.36 nats. A step of 2.81 on our draw spread
/// the argmax's mass over 48 of 50 classes instead.
pub const POSITIVE_STEP: f64 = 5.2;

/// The sizes of the toy (the notebook's by default).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Number of classes `V` of the main cases.
    pub vocab: usize,
    /// Input dimension `d` of the main cases.
    pub inputs: usize,
    /// Number of classes of the large-vocabulary case.
    pub large_vocab: usize,
    /// Input dimension of the large-vocabulary case.
    pub large_inputs: usize,
    /// Repeated steps in the animation (`squeezing.gif`).
    pub frames: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            vocab: 50,
            inputs: 4,
            large_vocab: 1000,
            large_inputs: 50,
            frames: 30,
        }
    }
}

impl Settings for Config {
    const MEMORY_KEYS: &'static str = "vocab, inputs, large_vocab and large_inputs";

    /// The weight matrices of both vocabularies and their copies in a step (64 bytes
    /// per weight).
    fn memory_bytes(&self) -> Option<u128> {
        let main = (self.vocab as u128).checked_mul(self.inputs as u128)?;
        let large = (self.large_vocab as u128).checked_mul(self.large_inputs as u128)?;
        main.checked_add(large)?.checked_mul(64)
    }

    fn keys() -> Vec<Key> {
        vec![
            Key::new(
                "vocab",
                "number of classes V of the main cases (at most 10000: a run and its 100 robustness seeds stay within a minute)",
                Range::Int(10, 10_000),
            ),
            Key::new(
                "inputs",
                "input dimension d of the main cases",
                Range::Int(1, 1000),
            ),
            Key::new(
                "large_vocab",
                "number of classes of the large-vocabulary case",
                Range::Int(2, 100_000),
            ),
            Key::new(
                "large_inputs",
                "input dimension of the large-vocabulary case",
                Range::Int(1, 1000),
            ),
            Key::new(
                "frames",
                "repeated negative steps in the animation, on the valley and on the current argmax (at most 120: encoding takes about 60 ms a frame)",
                Range::Int(1, 120),
            ),
        ]
    }
}

/// The panels of the figure, in order; each [`id`](Case::id) is the CSV contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    /// A positive gradient on a likely class that is not the argmax (random π).
    Positive,
    /// A negative gradient on flat π.
    NegativeFlat,
    /// A negative gradient on a side bump of a peaky π.
    NegativePeakSide,
    /// A negative gradient on the valley of a peaky π.
    NegativeValley,
    /// The same, with a positive gradient on the median class.
    NegativeValleyWithPositive,
    /// A negative gradient on the least likely class of a large vocabulary.
    NegativeLargeVocab,
    /// A negative gradient on the argmax (on-policy).
    NegativeOnArgmax,
}

impl Case {
    /// Every case, in panel order (the order of [`SqueezingResult::cases`]).
    pub const ALL: [Case; 7] = [
        Case::Positive,
        Case::NegativeFlat,
        Case::NegativePeakSide,
        Case::NegativeValley,
        Case::NegativeValleyWithPositive,
        Case::NegativeLargeVocab,
        Case::NegativeOnArgmax,
    ];

    /// The case's id in CSV files.
    pub fn id(self) -> &'static str {
        match self {
            Case::Positive => "positive",
            Case::NegativeFlat => "negative_flat",
            Case::NegativePeakSide => "negative_peak_side",
            Case::NegativeValley => "negative_valley",
            Case::NegativeValleyWithPositive => "negative_valley_with_positive",
            Case::NegativeLargeVocab => "negative_large_vocab",
            Case::NegativeOnArgmax => "negative_on_argmax",
        }
    }
}

/// One case of the toy: a fixed id (the CSV contract), a title, and the step it took.
#[derive(Clone, Debug)]
pub struct SqueezeCase {
    /// Which case.
    pub id: Case,
    /// The panel title.
    pub title: String,
    /// The distribution before and after.
    pub squeeze: Squeeze,
}

/// A step repeated: every frame's distribution against the first.
#[derive(Clone, Debug)]
pub struct AnimatedCase {
    /// Which case's step is repeated.
    pub id: Case,
    /// The row title.
    pub title: String,
    /// Frame `k`: the first distribution, the one after `k` steps, and the class the
    /// next step pushes (see `repeated`).
    pub frames: Vec<Squeeze>,
}

/// All cases of one run.
#[derive(Clone, Debug)]
pub struct SqueezingResult {
    /// The seed of the draws.
    pub seed: u64,
    /// The cases, in figure order.
    pub cases: Vec<SqueezeCase>,
    /// The animation: repeated negative steps on the valley and on the argmax.
    pub animation: Vec<AnimatedCase>,
}

/// `frames` negative steps of size `c` in a row from the logits `z`, each on the class
/// `target` picks from the current log-probabilities. Frame `k` holds the first
/// distribution (`log_p_before`), the one after `k` steps (`log_p_after`, the one drawn)
/// and, as its negative role, the class that `target` picks from the drawn one: the
/// class the next step pushes.
fn repeated(
    z: &[f64],
    target: impl Fn(&[f64]) -> usize,
    c: f64,
    frames: usize,
) -> Result<Vec<Squeeze>> {
    let first = Squeeze::from_logit_step(z, target(z), Direction::Negative, c)?.log_p_before;
    let mut current = first.clone();
    let mut out = Vec::with_capacity(frames + 1);
    for k in 0..=frames {
        if k > 0 {
            current = Squeeze::from_logit_step(&current, target(&current), Direction::Negative, c)?
                .log_p_after;
        }
        let mut roles = vec![Role::Other; current.len()];
        roles[target(&current)] = Role::Negative;
        out.push(Squeeze {
            log_p_before: first.clone(),
            log_p_after: current.clone(),
            roles,
        });
    }
    Ok(out)
}

/// The most likely class of `z`.
fn top(z: &[f64]) -> usize {
    (0..z.len())
        .max_by(|&a, &b| z[a].total_cmp(&z[b]))
        .unwrap_or(0)
}

/// One step of `z = W x` with `η = 1` on `terms = [(class, weight)]` (negative weight =
/// negative gradient), through [`one_step`].
fn linear_step(w: &DMatrix<f64>, x: &DVector<f64>, terms: &[(usize, f64)]) -> Result<Squeeze> {
    let model = Mlp::linear(w.clone(), None)?;
    let objective = terms
        .iter()
        .map(|&(class, weight)| CrossEntropy::weighted(class, weight))
        .reduce(CrossEntropy::and)
        .expect("at least one pushed class");
    let step = one_step(
        &model,
        std::slice::from_ref(x),
        &objective,
        std::slice::from_ref(x),
        1.0,
    )?;
    let obs = &step.observed[0];
    let mut roles = vec![Role::Other; w.nrows()];
    for &(class, weight) in terms {
        roles[class] = if weight < 0.0 {
            Role::Negative
        } else {
            Role::Positive
        };
    }
    Ok(Squeeze {
        log_p_before: obs.log_pi.as_slice().to_vec(),
        log_p_after: (&obs.log_pi + &obs.actual).as_slice().to_vec(),
        roles,
    })
}

/// The toy: every case with the given seed.
pub struct Squeezing;

impl Experiment for Squeezing {
    type Config = Config;
    type Data = SqueezingResult;

    fn run(config: &Valid<Config>, seed: u64) -> Result<SqueezingResult> {
        run_cases(config, seed)
    }

    fn claims(data: &SqueezingResult) -> Vec<Claim> {
        data.claims()
    }

    fn tables(data: &SqueezingResult) -> Vec<Table> {
        data.tables()
    }
}

fn run_cases(config: &Config, seed: u64) -> Result<SqueezingResult> {
    let (v, d) = (config.vocab, config.inputs);
    let mut rng = Rng64::seed_from_u64(seed);
    let x = DVector::from_fn(d, |_, _| normal(&mut rng));
    let w_uniform = gaussian(v, d, 1.0, 0.0, &mut rng);
    let w_flat = gaussian(v, d, 0.05, 1.0, &mut rng);
    let w_peaky = peaky_weights(&x, v, v / 10..13 * v / 50, &mut rng);
    let x_large = DVector::from_fn(config.large_inputs, |_, _| normal(&mut rng));
    let w_large = gaussian(config.large_vocab, config.large_inputs, 0.5, 0.0, &mut rng);

    let order = ranked(&w_peaky, &x);
    let (argmax, side, median, valley) = (order[0], order[1], order[v / 2], order[v - 1]);
    let unlikely = *ranked(&w_large, &x_large)
        .last()
        .expect("at least 2 classes");
    let pushed_down = 42 * v / 50;
    // Case A pushes a likely class that is not the argmax (the notebook's class 21 was one
    // on its own draw, not on ours) with the notebook's step, c = lr·‖x‖² ≈ 5.2.
    let pushed_up = ranked(&w_uniform, &x)[v / 10];
    let positive_lr = POSITIVE_STEP / x.norm_squared();
    let cases = [
        (
            Case::Positive,
            format!(
                "Positive gradient on class {pushed_up}, the {}th most likely (random π)",
                v / 10 + 1
            ),
            &w_uniform,
            &x,
            vec![(pushed_up, positive_lr)],
        ),
        (
            Case::NegativeFlat,
            format!("Negative gradient on class {pushed_down} (flat π)"),
            &w_flat,
            &x,
            vec![(pushed_down, -0.3)],
        ),
        (
            Case::NegativePeakSide,
            format!("Negative gradient on a side bump, class {side} (peaky π)"),
            &w_peaky,
            &x,
            vec![(side, -0.5)],
        ),
        (
            Case::NegativeValley,
            format!("Negative gradient on the valley class {valley} (peaky π)"),
            &w_peaky,
            &x,
            vec![(valley, -0.5)],
        ),
        (
            Case::NegativeValleyWithPositive,
            format!("Negative on valley {valley} + positive on class {median}: squeezing cancels"),
            &w_peaky,
            &x,
            vec![(valley, -0.5), (median, 0.5)],
        ),
        (
            Case::NegativeLargeVocab,
            format!(
                "V = {}: negative gradient on the least likely class {unlikely}",
                config.large_vocab
            ),
            &w_large,
            &x_large,
            vec![(unlikely, -1.0)],
        ),
        (
            Case::NegativeOnArgmax,
            format!("Negative gradient on the argmax, class {argmax} (on-policy)"),
            &w_peaky,
            &x,
            vec![(argmax, -0.5)],
        ),
    ];
    let cases = cases
        .into_iter()
        .map(|(id, title, w, x, terms)| {
            let c = terms
                .iter()
                .map(|t: &(usize, f64)| t.1.abs())
                .fold(0.0, f64::max)
                * x.norm_squared();
            let title = format!("{title}, c = lr·‖x‖² = {c:.2}");
            Ok(SqueezeCase {
                id,
                title,
                squeeze: linear_step(w, x, &terms)?,
            })
        })
        .collect::<Result<_>>()?;
    let z: Vec<f64> = (&w_peaky * &x).iter().copied().collect();
    let c = 0.5 * x.norm_squared();
    let animation = vec![
        AnimatedCase {
            id: Case::NegativeValley,
            title: format!("Negative on the valley {valley}, c = {c:.2}"),
            frames: repeated(&z, |_| valley, c, config.frames)?,
        },
        AnimatedCase {
            id: Case::NegativeOnArgmax,
            title: format!("Negative on the current argmax, c = {c:.2}"),
            frames: repeated(&z, top, c, config.frames)?,
        },
    ];
    Ok(SqueezingResult {
        seed,
        cases,
        animation,
    })
}

impl SqueezingResult {
    /// The distribution before and after the step of `case`.
    pub fn case(&self, case: Case) -> &Squeeze {
        // The cases are built in `Case::ALL` order, one each.
        &self.cases[case as usize].squeeze
    }
}
