//! The record of one cross-entropy step of a seeded linear or MLP classifier: the
//! weights, `x_u` and its label, `G`, and per observed input `π`, `A`, `K` (layer-wise)
//! and the predicted and actual `Δ log π`.

use nalgebra::DVector;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

use super::{layers_json, matrix_rows, vector};
use crate::Rng64;
use crate::decomposition::one_step;
use crate::error::{Error, Result};
use crate::mlp::kernel::entk_layerwise;
use crate::mlp::{Activation, Mlp, normal};
use crate::numerics::adaptation_matrix;
use crate::objective::CrossEntropy;

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
