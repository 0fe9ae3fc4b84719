//! `ldyn akg`: a seeded model, an update example and a few observed inputs, with
//! every term of the decomposition written as JSON, so the numbers can be re-derived
//! with any autodiff framework.
//!
//! Layer `l` computes `z_l = W_l a_{l−1} + b_l`; the activation follows every layer but
//! the last; a linear model is one layer with activation `identity`. Weights are
//! written as rows (`out × in`).

use nalgebra::{DMatrix, DVector};
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

use crate::Rng64;
use crate::decomposition::one_step;
use crate::entk::entk_layerwise;
use crate::error::{Error, Result};
use crate::experiments::lm_world::{LmConfig, pair_update, pretrain, sft_update};
use crate::language::Language;
use crate::lm::{Sequence, TinyLm};
use crate::mlp::{Activation, Mlp, normal};
use crate::numerics::adaptation_matrix;
use crate::objective::CrossEntropy;
use crate::objective::LmObjective;
use crate::trainer::Update;

/// The model `ldyn akg` decomposes a step of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// A linear softmax classifier.
    Linear,
    /// A tanh MLP classifier.
    Mlp,
    /// The tiny language model of the default LM world.
    Lm,
}

impl std::str::FromStr for ModelKind {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        match name {
            "linear" => Ok(ModelKind::Linear),
            "mlp" => Ok(ModelKind::Mlp),
            "lm" => Ok(ModelKind::Lm),
            _ => Err(Error::Unknown {
                kind: "model",
                name: name.into(),
                expected: "linear, mlp, lm".into(),
            }),
        }
    }
}

/// The sizes given to `ldyn akg`, each `None` when not given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SizeFlags {
    /// `--inputs`: input dimension `d` (classifiers; default 4).
    pub inputs: Option<usize>,
    /// `--hidden`: hidden width (MLP; default 8).
    pub hidden: Option<usize>,
    /// `--layers`: hidden layers (MLP; default 1).
    pub layers: Option<usize>,
    /// `--classes`: number of classes `V` (classifiers; default 5).
    pub classes: Option<usize>,
}

impl SizeFlags {
    /// The classifier shape these flags ask for; a flag that does not apply to `kind` is
    /// an error that says so.
    ///
    /// # Errors
    /// A flag given for a model it does not apply to.
    pub fn shape(&self, kind: ModelKind) -> Result<ClassifierSpec> {
        let not_for = |flag: &str, model: &str| {
            Err(Error::InvalidArgument(format!(
                "{flag} does not apply to --model {model}"
            )))
        };
        let given = [
            ("--inputs", self.inputs),
            ("--hidden", self.hidden),
            ("--layers", self.layers),
            ("--classes", self.classes),
        ];
        for (flag, value) in given {
            let applies = match kind {
                ModelKind::Lm => false,
                ModelKind::Linear => !matches!(flag, "--hidden" | "--layers"),
                ModelKind::Mlp => true,
            };
            if value.is_some() && !applies {
                let model = match kind {
                    ModelKind::Lm => "lm (its sizes are the default LM world's)",
                    _ => "linear",
                };
                return not_for(flag, model);
            }
        }
        Ok(ClassifierSpec {
            linear: kind == ModelKind::Linear,
            inputs: self.inputs.unwrap_or(4),
            hidden: self.hidden.unwrap_or(8),
            layers: self.layers.unwrap_or(1),
            classes: self.classes.unwrap_or(5),
        })
    }
}

/// `ldyn akg`: the JSON document of one step of `kind`. Classifiers train with
/// cross-entropy (`objective` must be `sft`) and are shaped by `sizes`; the language
/// model is the default LM world's and takes no size flags.
///
/// # Errors
/// A pairwise objective for a classifier, a size flag that does not apply, or as
/// [`akg_json`] and [`lm_akg_json`].
pub fn akg(
    kind: ModelKind,
    objective: LmObjective,
    sizes: SizeFlags,
    seed: u64,
    eta: f64,
    budget: u64,
) -> Result<Value> {
    let shape = sizes.shape(kind)?;
    if kind != ModelKind::Lm {
        shape.check(budget)?;
    }
    match kind {
        ModelKind::Lm => lm_akg_json(objective, seed, eta),
        _ if objective != LmObjective::Sft => Err(Error::InvalidArgument(
            "--objective applies to --model lm only (classifiers use cross-entropy)".into(),
        )),
        _ => akg_json(&shape, seed, eta),
    }
}

/// The shape of the seeded classifier that `ldyn akg` builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClassifierSpec {
    /// `true`: a linear softmax model (one layer); `false`: a tanh MLP.
    pub linear: bool,
    /// Input dimension `d`.
    pub inputs: usize,
    /// Width of each hidden layer (MLP only).
    pub hidden: usize,
    /// Number of hidden layers of the MLP (ignored for the linear model).
    pub layers: usize,
    /// Number of classes `V`.
    pub classes: usize,
}

impl ClassifierSpec {
    /// The bytes `ldyn akg` needs for this classifier, about: the parameters `P` and
    /// their copies (`128·P`), every observed input's `A` and `K` and their JSON
    /// (`512·V²`), and the backprop factors (`64·V·Σ n_l`). `None` on overflow.
    pub fn memory_bytes(&self) -> Option<u128> {
        let (d, h, v) = (
            self.inputs as u128,
            self.hidden as u128,
            self.classes as u128,
        );
        let (params, widths) = if self.linear {
            ((d + 1).checked_mul(v)?, v)
        } else {
            let first = (d + 1).checked_mul(h)?;
            let middle = (h + 1)
                .checked_mul(h)?
                .checked_mul(self.layers as u128 - 1)?;
            let last = (h + 1).checked_mul(v)?;
            let widths = h.checked_mul(self.layers as u128)?.checked_add(v)?;
            (first.checked_add(middle)?.checked_add(last)?, widths)
        };
        128u128
            .checked_mul(params)?
            .checked_add(512u128.checked_mul(v.checked_mul(v)?)?)?
            .checked_add(64u128.checked_mul(v)?.checked_mul(widths)?)
    }

    /// Checks the sizes (every one at least 1, at least 2 classes) and the memory
    /// estimate against `budget` bytes.
    ///
    /// # Errors
    /// Naming the flag that is out of range, or the estimate and the limit.
    pub fn check(&self, budget: u64) -> Result<()> {
        if self.classes < 2 {
            return Err(Error::TooFewClasses(self.classes));
        }
        for (flag, value) in [
            ("--inputs", self.inputs),
            ("--hidden", self.hidden),
            ("--layers", self.layers),
        ] {
            if value == 0 {
                return Err(Error::InvalidArgument(format!("{flag} must be at least 1")));
            }
        }
        crate::error::check_memory(
            "--inputs, --hidden, --layers and --classes",
            self.memory_bytes(),
            budget,
        )
    }

    /// Builds the seeded model: weights `N(0, 1/fan_in)`, biases `N(0, 0.1²)`.
    pub fn build(&self, rng: &mut Rng64) -> Result<Mlp> {
        if self.classes < 2 {
            return Err(Error::TooFewClasses(self.classes));
        }
        let mut sizes = vec![self.inputs];
        if !self.linear {
            if self.layers == 0 {
                return Err(Error::InvalidArgument(
                    "an MLP needs at least 1 hidden layer (--layers)".into(),
                ));
            }
            sizes.extend(std::iter::repeat_n(self.hidden, self.layers));
        }
        sizes.push(self.classes);
        let activation = if self.linear {
            Activation::Identity
        } else {
            Activation::Tanh
        };
        Mlp::random(&sizes, activation, true, rng)
    }
}

/// A [`TinyLm`]'s architecture and every weight, so another framework can rebuild it:
/// `embed` (`V × d`, row `t` embeds token `t`), `slots` (`W × d`), and the MLP's layers
/// (`weight` as rows, `out × in`; `bias`), with `PAD = 0` filling slots before the start.
/// The flat parameter order of the crate's gradients is `embed` column-major, `slots`
/// column-major, then per layer `weight` column-major and `bias`.
pub fn lm_model_json(model: &TinyLm) -> Value {
    let spec = model.spec();
    let (embed, slots) = model.embeddings();
    json!({
        "kind": "tiny_lm",
        "vocab": spec.vocab,
        "window": spec.window,
        "embed_dim": spec.embed,
        "hidden": spec.hidden,
        "activation": model.mlp().activation().name(),
        "pad": crate::lm::PAD,
        "embed": matrix_rows(embed),
        "slots": matrix_rows(slots),
        "layers": layers_json(model.mlp()),
    })
}

fn layers_json(mlp: &Mlp) -> Vec<Value> {
    mlp.layers()
        .iter()
        .map(|l| json!({"weight": matrix_rows(&l.weight), "bias": l.bias.as_ref().map(|b| vector(b.iter().copied()))}))
        .collect()
}

fn matrix_rows(m: &DMatrix<f64>) -> Value {
    m.row_iter()
        .map(|r| r.iter().copied().collect::<Vec<_>>())
        .collect()
}

fn vector(v: impl IntoIterator<Item = f64>) -> Value {
    v.into_iter().collect()
}

/// Builds the model of `spec` from `seed`, draws `x_u ~ N(0, I)` with a uniform random
/// label and three more observed inputs, takes one step with learning rate `eta`, and
/// returns the JSON document described in the module docs.
pub fn akg_json(spec: &ClassifierSpec, seed: u64, eta: f64) -> Result<Value> {
    let mut rng = Rng64::seed_from_u64(seed);
    let model = spec.build(&mut rng)?;
    let draw = |rng: &mut Rng64| DVector::from_fn(spec.inputs, |_, _| normal(rng));
    let x_u = draw(&mut rng);
    let label = rng.random_range(0..spec.classes);
    let observed = vec![x_u.clone(), draw(&mut rng), draw(&mut rng), draw(&mut rng)];
    let step = one_step(
        &model,
        std::slice::from_ref(&x_u),
        &CrossEntropy::positive(label),
        &observed,
        eta,
    )?;
    let layers = layers_json(&model);
    let observations: Vec<Value> = observed
        .iter()
        .zip(&step.observed)
        .map(|(x, o)| {
            let pi = o.pi().column(0).into_owned();
            json!({
                "x": vector(x.iter().copied()),
                "pi": vector(pi.iter().copied()),
                "A": matrix_rows(&adaptation_matrix(pi.as_view())),
                "K": matrix_rows(&entk_layerwise(&model, x, &x_u)),
                "predicted_delta_log_pi": vector(o.predicted.iter().copied()),
                "actual_delta_log_pi": vector(o.actual.iter().copied()),
            })
        })
        .collect();
    Ok(json!({
        "model": {
            "kind": if spec.linear { "linear" } else { "mlp" },
            "activation": model.activation().name(),
            "layers": layers,
        },
        "eta": eta,
        "update": {
            "x": vector(x_u.iter().copied()),
            "label": label,
            "G": vector(step.residuals[0].iter().copied()),
        },
        "observed": observations,
    }))
}

/// Columns of a `V × L` matrix as a list of `L` lists of `V` values.
fn columns(m: &DMatrix<f64>) -> Value {
    m.column_iter()
        .map(|c| c.iter().copied().collect::<Vec<_>>())
        .collect()
}

/// `ldyn akg --model lm`: the base model of the seeded synthetic language (pre-trained
/// with the default world, [`LmConfig::default`]), one step of `objective` (the reference
/// of the pairwise losses is the model itself) on the first training prompt, observed on
/// that prompt's probe families. `update` holds the prompt and the update sequences with
/// their residuals `G` (`chosen`, and `rejected` for the pairwise losses); per response
/// position `m` of every observed sequence the document gives the predicted
/// `−η A_m Σ_l K_{m,l} G_l` and the actual change.
pub fn lm_akg_json(objective: LmObjective, seed: u64, eta: f64) -> Result<Value> {
    crate::error::check_step("learning rate eta", eta)?;
    let config = LmConfig::default();
    let world = pretrain(&config, seed)?;
    let (lang, model) = (&world.language, &world.base);
    let j = lang.train[0];
    let (plus, minus) = (lang.chosen(j), lang.rejected(j));
    let (update, objective_box): Update<TinyLm> = match objective {
        LmObjective::Sft => sft_update(lang, Language::chosen, j),
        LmObjective::Pair(loss) => {
            pair_update(&lang.prompt(j), plus, minus, model, loss, config.beta)
        }
    };
    let probe = &world.probes[0];
    let observed: Vec<(&str, &Sequence)> = probe
        .responses
        .iter()
        .filter(|(f, _)| f.is_sequence())
        .map(|(f, s)| (f.id(), s))
        .collect();
    let inputs: Vec<Sequence> = observed.iter().map(|(_, s)| (*s).clone()).collect();
    let step = one_step(model, &update, objective_box.as_ref(), &inputs, eta)?;
    let spec = model.spec();
    let observations: Vec<Value> = observed
        .iter()
        .zip(&step.observed)
        .map(|((family, seq), o)| {
            json!({
                "family": family,
                "tokens": seq.tokens,
                "prompt_len": seq.prompt_len,
                "predicted_delta_log_pi": columns(&o.predicted),
                "actual_delta_log_pi": columns(&o.actual),
            })
        })
        .collect();
    // One entry per update sequence: χ⁺ (and χ⁻ for the pairwise losses), each with its
    // residual G, one column of V values per response position.
    let sequences: Vec<Value> = update
        .iter()
        .zip(&step.residuals)
        .zip(["chosen", "rejected"])
        .map(|((seq, g), role)| json!({"role": role, "tokens": seq.tokens, "prompt_len": seq.prompt_len, "G": columns(g)}))
        .collect();
    let update_json = json!({"prompt": lang.prompt(j), "sequences": sequences});
    Ok(json!({
        "model": {"kind": "lm", "vocab": spec.vocab, "window": spec.window, "embed": spec.embed, "hidden": spec.hidden, "seed": seed},
        "weights": lm_model_json(model),
        "objective": objective.to_string(),
        "eta": eta,
        "update": update_json,
        "observed": observations,
    }))
}
