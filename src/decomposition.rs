//! The one-step decomposition (the paper's Proposition 1 and Eq. 5), checked
//! against the step it predicts.
//!
//! One SGD step on an updating example `x_u` with objective `L` moves the parameters
//! by `Δθ = −η ∇_θ L = −η Σ_s J(x_{u,s})ᵀ G_s`. To first order the log-probabilities on
//! an observed input `x_o` then change by
//!
//! `Δ log π(x_o) = −η A(x_o) K(x_o, x_u) G(x_u) + O(η²)`,
//!
//! with `A = I − 1πᵀ` (per position), `K = J(x_o) J(x_u)ᵀ` the eNTK and `G = ∂L/∂z(x_u)`.
//! [`one_step`] computes the prediction without forming `K`: `K G = J(x_o) (J(x_u)ᵀ G)`
//! is one backward pass (`J(x_u)ᵀ G`, the gradient) followed by one forward-mode pass
//! (`J(x_o) Δθ`). It then really takes the step on a copy of the model and reports the
//! actual change next to the prediction.

use nalgebra::{DMatrix, DVector};

use crate::error::{Error, Result, check_len, check_step};
use crate::model::Model;
use crate::numerics::{
    adaptation_apply_columns, all_finite, log_softmax_and_adapt_columns, log_softmax_columns,
};
use crate::objective::Objective;
use crate::objective::PARALLEL_ENTRIES;

/// What one step did to one observed input. All matrices are `V × M` (`M` observed positions).
#[derive(Clone, Debug)]
pub struct Observation {
    /// `log π(x_o)` before the step.
    pub log_pi: DMatrix<f64>,
    /// First-order logit change `−η K(x_o, x_u) G = J(x_o) Δθ`.
    pub predicted_logits: DMatrix<f64>,
    /// Actual logit change `z_{t+1}(x_o) − z_t(x_o)`.
    pub actual_logits: DMatrix<f64>,
    /// First-order log-probability change `−η A K G`.
    pub predicted: DMatrix<f64>,
    /// Actual log-probability change `log π_{t+1}(x_o) − log π_t(x_o)`.
    pub actual: DMatrix<f64>,
}

impl Observation {
    /// `π(x_o)` before the step.
    pub fn pi(&self) -> DMatrix<f64> {
        self.log_pi.map(f64::exp)
    }

    /// `actual − predicted`, the `O(η²)` remainder of the decomposition.
    pub fn residual(&self) -> DMatrix<f64> {
        &self.actual - &self.predicted
    }
}

/// The decomposition of one SGD step, for every observed input.
#[derive(Clone, Debug)]
pub struct OneStep {
    /// The learning rate `η`.
    pub eta: f64,
    /// `L` before the step.
    pub loss: f64,
    /// `G_s = ∂L/∂z(x_{u,s})`, one `V × L` matrix per updating input.
    pub residuals: Vec<DMatrix<f64>>,
    /// The anchor's part of `G` ([`Objective::anchor`]), where the objective has one.
    pub anchor: Option<Vec<DMatrix<f64>>>,
    /// `∇_θ L = Σ_s J(x_{u,s})ᵀ G_s`.
    pub grad: DVector<f64>,
    /// One entry per observed input, in order.
    pub observed: Vec<Observation>,
}

/// The loss, residuals and parameter gradient of an objective on its update inputs.
#[derive(Clone, Debug)]
pub struct Gradient {
    /// `L` before the step.
    pub loss: f64,
    /// `G_s = ∂L/∂z(x_{u,s})`, one `V × L` matrix per updating input.
    pub residuals: Vec<DMatrix<f64>>,
    /// `∇_θ L = Σ_s J(x_{u,s})ᵀ G_s`.
    pub grad: DVector<f64>,
    /// The anchor's part of `G` ([`Objective::anchor`]), where the objective has one.
    pub anchor: Option<Vec<DMatrix<f64>>>,
}

/// The loss, residuals `G` and gradient `∇_θ L` of `objective` on the updating inputs.
///
/// # Errors
/// If the inputs do not fit the model or the objective, or a logit is not finite.
pub fn gradient<M: Model>(
    model: &M,
    update: &[M::Input],
    objective: &dyn Objective,
) -> Result<Gradient> {
    check_len("number of updating inputs", objective.arity(), update.len())?;
    update.iter().try_for_each(|x| model.check_input(x))?;
    let mut loss = 0.0;
    let mut anchor = None;
    let (_, residuals, grad) = model.gradient_batch(update, &mut |logits| {
        if !logits.iter().all(|z| all_finite(z.as_slice())) {
            return Err(Error::NonFinite("logits"));
        }
        let shapes: Vec<_> = logits.iter().map(DMatrix::shape).collect();
        objective.check(&shapes)?;
        let (l, g) = objective.loss_and_residuals(logits);
        loss = l;
        anchor = objective.anchor(logits);
        Ok(g)
    })?;
    Ok(Gradient {
        loss,
        residuals,
        grad,
        anchor,
    })
}

/// What the step from `before` to `after` did to each observed input: the first-order
/// prediction `J(x_o) Δθ` (with `Δθ = θ_after − θ_before`, which is `−η ∇_θ L` for an
/// SGD step) passed through `A`, next to the actual change. Costs one forward-mode pass
/// on `before` and one forward pass on `after` per input.
///
/// # Errors
/// If an input does not fit the models or a logit is not finite.
pub fn observe<M: Model>(before: &M, after: &M, observed: &[M::Input]) -> Result<Vec<Observation>> {
    let dtheta = after.params() - before.params();
    observed.iter().try_for_each(|x| before.check_input(x))?;
    before
        .logits_and_jvp_batch(observed, &dtheta)
        .into_iter()
        .zip(after.logits_batch(observed))
        .map(|((z0, predicted_logits), z1)| {
            if !z0.iter().chain(z1.iter()).all(|v| v.is_finite()) {
                return Err(Error::NonFinite("logits"));
            }
            let log_pi = log_softmax_columns(&z0);
            let predicted = adaptation_apply_columns(&log_pi.map(f64::exp), &predicted_logits);
            let actual = log_softmax_columns(&z1) - &log_pi;
            Ok(Observation {
                log_pi,
                predicted_logits,
                actual_logits: z1 - z0,
                predicted,
                actual,
            })
        })
        .collect()
}

/// The first-order change `A J(x_o) dθ` of `log π` on every observed input when the
/// parameters move by each of `dthetas`, from one forward pass: for
/// `dθ = −η J_uᵀ G_term`, the share of a step that one term of its residual causes (the
/// decomposition is linear in `G`). Returns `log π` of every observed input and, per
/// direction, the change of every input.
pub fn predict<M: Model>(
    model: &M,
    observed: &[M::Input],
    dthetas: &[DVector<f64>],
) -> (Vec<DMatrix<f64>>, Vec<Vec<DMatrix<f64>>>) {
    use rayon::prelude::*;
    let (logits, jvps) = model.logits_and_jvps_batch(observed, dthetas);
    // Input by input (each its logits and its changes along every direction), in place,
    // on rayon's pool when the batch is large enough to pay for it.
    let entries: usize = logits.iter().map(DMatrix::len).sum();
    let mut per_input: Vec<(DMatrix<f64>, Vec<DMatrix<f64>>)> = (logits.into_iter())
        .map(|z| (z, Vec::with_capacity(dthetas.len())))
        .collect();
    for direction in jvps {
        (per_input.iter_mut())
            .zip(direction)
            .for_each(|((_, changes), change)| changes.push(change));
    }
    let each = |(z, changes): &mut (DMatrix<f64>, Vec<DMatrix<f64>>)| {
        log_softmax_and_adapt_columns(z, changes);
    };
    if entries >= PARALLEL_ENTRIES {
        per_input.par_iter_mut().for_each(each);
    } else {
        per_input.iter_mut().for_each(each);
    }
    let mut changes: Vec<Vec<DMatrix<f64>>> =
        vec![Vec::with_capacity(per_input.len()); dthetas.len()];
    let mut log_pi = Vec::with_capacity(per_input.len());
    for (lp, change) in per_input {
        log_pi.push(lp);
        for (k, c) in change.into_iter().enumerate() {
            changes[k].push(c);
        }
    }
    (log_pi, changes)
}

/// Decomposes one SGD step of `model` on `(update, objective)` with learning rate `eta`,
/// observed on every input of `observed`. See the module docs for the formulas.
///
/// # Errors
/// If `eta` is not finite and positive, an input does not fit the model, the objective
/// does not fit the logits, or any logit is not finite.
pub fn one_step<M: Model>(
    model: &M,
    update: &[M::Input],
    objective: &dyn Objective,
    observed: &[M::Input],
    eta: f64,
) -> Result<OneStep> {
    check_step("learning rate eta", eta)?;
    let Gradient {
        loss,
        residuals,
        grad,
        anchor,
    } = gradient(model, update, objective)?;
    let mut stepped = model.clone();
    stepped.sgd_step(&grad, eta)?;
    let too_large = || {
        Error::InvalidArgument(format!(
            "the step η·‖g‖ = {eta:e} × {:e} is too large: the logits after it overflow",
            grad.norm()
        ))
    };
    let observed = observe(model, &stepped, observed).map_err(|e| match e {
        Error::NonFinite(_) => too_large(),
        e => e,
    })?;
    let finite = |m: &DMatrix<f64>| m.iter().all(|v| v.is_finite());
    if !observed
        .iter()
        .all(|o| finite(&o.predicted) && finite(&o.actual) && finite(&o.log_pi))
    {
        return Err(too_large());
    }
    Ok(OneStep {
        eta,
        loss,
        residuals,
        anchor,
        grad,
        observed,
    })
}
