//! The one trait every model implements, so the decomposition, objectives and
//! trainer never need to know which network they talk to.
//!
//! A model maps an input to a `V × L` matrix of logits `z`, one column per scored
//! position (`L = 1` for classifiers, the response length for a language model).
//! Everything the theory needs is a linear map around the current parameters `θ`:
//!
//! * the Jacobian `J(x) = ∂ vec(z(x)) / ∂θ`, a `(V·L) × P` matrix whose row `l·V + v`
//!   is the gradient of logit `v` at position `l`;
//! * its transpose applied to a residual, `Jᵀ vec(G)` ([`Model::backprop`]), which is
//!   the parameter gradient of any loss with logit gradient `G = ∂L/∂z`;
//! * the Jacobian applied to a parameter direction, `J dθ` ([`Model::jvp`]).
//!
//! Shape mismatches between a model and an input are programmer errors: methods
//! panic with a message, and callers that take user data validate it first with
//! [`Model::check_input`].

use nalgebra::{DMatrix, DVector};

use crate::error::Result;

/// Computes the residuals `G` of a batch from its logits (an objective, checked).
pub type Residuals<'a> = dyn FnMut(&[DMatrix<f64>]) -> Result<Vec<DMatrix<f64>>> + 'a;

/// What [`Model::gradient_batch`] returns: the logits, the residuals and the gradient.
pub type Gradients = (Vec<DMatrix<f64>>, Vec<DMatrix<f64>>, DVector<f64>);

/// A differentiable model with hand-written (analytic) first derivatives.
pub trait Model: Clone {
    /// What one example looks like to the model (a feature vector, a token sequence...).
    type Input;

    /// Number of classes `V` (the vocabulary size for a language model).
    fn classes(&self) -> usize;

    /// Number of trainable parameters `P`.
    fn num_params(&self) -> usize;

    /// Returns an error if `x` cannot be fed to this model (wrong size, token out of range).
    fn check_input(&self, x: &Self::Input) -> Result<()>;

    /// The logits `z(x)`, a `V × L` matrix.
    fn logits(&self, x: &Self::Input) -> DMatrix<f64>;

    /// `∇_θ L = J(x)ᵀ vec(G)` for a logit residual `G = ∂L/∂z(x)` of shape `V × L`
    /// (reverse mode, one backward pass).
    fn backprop(&self, x: &Self::Input, g: &DMatrix<f64>) -> DVector<f64>;

    /// The logits `z(x)` and `J(x) dθ` (reshaped to `V × L`) from one forward-mode pass.
    /// To first order `J dθ` is the change of the logits when the parameters move by `dθ`.
    fn logits_and_jvp(
        &self,
        x: &Self::Input,
        dtheta: &DVector<f64>,
    ) -> (DMatrix<f64>, DMatrix<f64>);

    /// The logits of several inputs, [`Model::logits`] of each. A model that can share
    /// one pass across inputs (as matrix products) overrides it.
    fn logits_batch(&self, xs: &[Self::Input]) -> Vec<DMatrix<f64>> {
        xs.iter().map(|x| self.logits(x)).collect()
    }

    /// `Σ_i J(x_i)ᵀ vec(G_i)`: [`Model::backprop`] summed over several inputs.
    fn backprop_batch(&self, xs: &[Self::Input], gs: &[DMatrix<f64>]) -> DVector<f64> {
        let mut grad = DVector::zeros(self.num_params());
        for (x, g) in xs.iter().zip(gs) {
            grad += self.backprop(x, g);
        }
        grad
    }

    /// One gradient evaluation: the logits of `xs`, their residuals
    /// `G = residuals(logits)`, and `Σ_i J(x_i)ᵀ vec(G_i)`. The default runs the forward
    /// pass twice (once here, once in [`Model::backprop_batch`]); a model that can keep
    /// its forward pass for the backward one overrides it.
    ///
    /// # Errors
    /// What `residuals` returns.
    fn gradient_batch(
        &self,
        xs: &[Self::Input],
        residuals: &mut Residuals<'_>,
    ) -> Result<Gradients> {
        let logits = self.logits_batch(xs);
        let gs = residuals(&logits)?;
        let grad = self.backprop_batch(xs, &gs);
        Ok((logits, gs, grad))
    }

    /// [`Model::logits_and_jvp`] of several inputs along one direction.
    fn logits_and_jvp_batch(
        &self,
        xs: &[Self::Input],
        dtheta: &DVector<f64>,
    ) -> Vec<(DMatrix<f64>, DMatrix<f64>)> {
        xs.iter().map(|x| self.logits_and_jvp(x, dtheta)).collect()
    }

    /// The logits of `xs` and `J(x) dθ` along each of several directions:
    /// `(logits[i], jvps[k][i])` for input `i` and direction `k`. A model that can share
    /// one forward pass across the directions overrides it.
    fn logits_and_jvps_batch(
        &self,
        xs: &[Self::Input],
        dthetas: &[DVector<f64>],
    ) -> (Vec<DMatrix<f64>>, Vec<Vec<DMatrix<f64>>>) {
        let jvps = (dthetas.iter())
            .map(|d| {
                self.logits_and_jvp_batch(xs, d)
                    .into_iter()
                    .map(|p| p.1)
                    .collect()
            })
            .collect();
        (self.logits_batch(xs), jvps)
    }

    /// `J(x) dθ` alone (see [`Model::logits_and_jvp`]).
    fn jvp(&self, x: &Self::Input, dtheta: &DVector<f64>) -> DMatrix<f64> {
        self.logits_and_jvp(x, dtheta).1
    }

    /// All parameters, flattened into one vector of length `P`.
    fn params(&self) -> DVector<f64>;

    /// Replaces all parameters from a flattened vector (the inverse of [`Model::params`]).
    ///
    /// # Panics
    /// If `theta.len() != self.num_params()`.
    fn set_params(&mut self, theta: &DVector<f64>);

    /// The explicit Jacobian `J(x)`, `(V·L) × P`, built row by row from [`Model::backprop`]
    /// with one-hot residuals. It is the reference that faster kernels are tested against.
    fn jacobian(&self, x: &Self::Input) -> DMatrix<f64> {
        let z = self.logits(x);
        let (v, l) = z.shape();
        let mut jac = DMatrix::zeros(v * l, self.num_params());
        let mut e = DMatrix::zeros(v, l);
        for pos in 0..l {
            for class in 0..v {
                e[(class, pos)] = 1.0;
                jac.set_row(pos * v + class, &self.backprop(x, &e).transpose());
                e[(class, pos)] = 0.0;
            }
        }
        jac
    }

    /// One gradient-descent step `θ ← θ − η ∇_θ L`.
    ///
    /// # Errors
    /// If the new parameters would not be finite (the step overflows them); the model is
    /// then left as it was.
    fn sgd_step(&mut self, grad: &DVector<f64>, eta: f64) -> Result<()> {
        let mut theta = self.params();
        sgd_in_place(vec![theta.as_mut_slice()], grad.as_slice(), eta)?;
        self.set_params(&theta);
        Ok(())
    }
}

/// Whether every `θ_i − η g_i` is finite, block by block as
/// [`all_finite`](crate::numerics::all_finite) checks.
fn finite_after(theta: &[f64], g: &[f64], eta: f64) -> bool {
    use crate::numerics::FINITE_BLOCK;
    let mut blocks = theta.chunks(FINITE_BLOCK).zip(g.chunks(FINITE_BLOCK));
    blocks.all(|(t, g)| {
        t.iter()
            .zip(g)
            .fold(true, |ok, (t, g)| ok & (t - g * eta).is_finite())
    })
}

/// `θ ← θ − η g` on the parameter blocks `blocks`, which hold `θ` in order, in place.
/// The model's `sgd_step` in a few passes and no allocation.
///
/// # Errors
/// If `g` is not finite, or the new parameters would not be (the step overflows them);
/// the blocks are then left as they were.
pub fn sgd_in_place(mut blocks: Vec<&mut [f64]>, grad: &[f64], eta: f64) -> Result<()> {
    if !crate::numerics::all_finite(grad) {
        return Err(crate::error::Error::InvalidArgument(
            "the gradient is not finite: the loss or its residual overflowed at these parameters (a smaller β or learning rate keeps it finite)".into(),
        ));
    }
    // Each block beside its part of the gradient.
    let mut rest = grad;
    let pairs: Vec<(&mut [f64], &[f64])> = (blocks.iter_mut())
        .map(|b| {
            let (g, tail) = rest.split_at(b.len());
            rest = tail;
            (&mut **b, g)
        })
        .collect();
    let finite = (pairs.iter()).all(|(b, g)| finite_after(b, g, eta));
    if !finite {
        let norm = grad.iter().map(|g| g * g).sum::<f64>().sqrt();
        return Err(crate::error::Error::InvalidArgument(format!(
            "the step η·‖g‖ = {eta:e} × {norm:e} is too large: the parameters after it overflow"
        )));
    }
    for (b, g) in pairs {
        b.iter_mut().zip(g).for_each(|(t, g)| *t -= g * eta);
    }
    Ok(())
}
