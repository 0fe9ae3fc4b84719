//! `ldyn akg`: a seeded model, an update example and a few observed inputs, with
//! every term of the decomposition written as JSON, so the numbers can be re-derived
//! with any autodiff framework.
//!
//! This module reads the flags and holds the JSON helpers; [`classifier`] writes the
//! record of a linear or MLP classifier's cross-entropy step, [`lm`] the record of a tiny
//! LM's SFT or preference step (with its reference, hyperparameters, loss, coefficients
//! and `π`).
//!
//! Layer `l` computes `z_l = W_l a_{l−1} + b_l`; the activation follows every layer but
//! the last; a linear model is one layer with activation `identity`. Weights are
//! written as rows (`out × in`).

pub mod classifier;
pub mod lm;

use nalgebra::DMatrix;
use serde_json::{Value, json};

pub use classifier::{ClassifierSpec, akg_json};
pub use lm::{LmFlags, Reference, lm_akg_json, lm_model_json};

use crate::error::{Error, Result};
use crate::mlp::Mlp;
use crate::objective::LmObjective;

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
        let models = [
            ("linear", ModelKind::Linear),
            ("mlp", ModelKind::Mlp),
            ("lm", ModelKind::Lm),
        ];
        crate::error::pick("model", name, &models)
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
/// cross-entropy (the objective must be `sft`, and no LM flag applies) and are shaped by
/// `sizes`; the language model is the default LM world's and takes no size flags.
///
/// # Errors
/// A pairwise objective or an LM flag for a classifier, a size flag that does not apply,
/// or as [`akg_json`] and [`lm_akg_json`].
pub fn akg(
    kind: ModelKind,
    step: LmFlags,
    sizes: SizeFlags,
    seed: u64,
    eta: f64,
    budget: u64,
) -> Result<Value> {
    let shape = sizes.shape(kind)?;
    if kind == ModelKind::Lm {
        return lm_akg_json(&step, seed, eta);
    }
    shape.check(budget)?;
    let lm_only = |flag: &str| {
        Err(Error::InvalidArgument(format!(
            "{flag} applies to --model lm only (classifiers use cross-entropy)"
        )))
    };
    match step {
        LmFlags { objective, .. } if objective != LmObjective::Sft => lm_only("--objective"),
        LmFlags {
            reference: Some(_), ..
        } => lm_only("--reference"),
        _ => match step.loss_flag() {
            Some(flag) => lm_only(flag),
            None => akg_json(&shape, seed, eta),
        },
    }
}

pub(crate) fn layers_json(mlp: &Mlp) -> Vec<Value> {
    mlp.layers()
        .iter()
        .map(|l| json!({"weight": matrix_rows(&l.weight), "bias": l.bias.as_ref().map(|b| vector(b.iter().copied()))}))
        .collect()
}

pub(crate) fn matrix_rows(m: &DMatrix<f64>) -> Value {
    m.row_iter()
        .map(|r| r.iter().copied().collect::<Vec<_>>())
        .collect()
}

pub(crate) fn vector(v: impl IntoIterator<Item = f64>) -> Value {
    v.into_iter().collect()
}

/// Columns of a `V × L` matrix as a list of `L` lists of `V` values.
pub(crate) fn columns(m: &DMatrix<f64>) -> Value {
    m.column_iter()
        .map(|c| c.iter().copied().collect::<Vec<_>>())
        .collect()
}
