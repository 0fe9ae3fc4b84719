//! The empirical neural tangent kernel of the logits,
//! `K(x_o, x_u) = J(x_o) J(x_u)ᵀ` with `J = ∂ vec(z)/∂θ`, for any [`Model`].
//!
//! [`entk_explicit`] forms both Jacobians (one backward pass per logit) and multiplies
//! them. It needs nothing but the [`Model`] trait, so it is the reference that every
//! structured kernel is tested against. The structured kernels use a network's layers
//! and never form a Jacobian; they live beside their models:
//! [`crate::mlp::kernel`] (layer-wise, and the batched full kernel of many inputs) and
//! [`crate::lm::kernel`] (the tiny LM's, with its shared embeddings).

use nalgebra::DMatrix;

use crate::model::Model;

/// `K(x_o, x_u) = J(x_o) J(x_u)ᵀ` from explicit Jacobians: `(V·M) × (V·L)` for `M`
/// observed and `L` updating positions, block `(m, l)` being `K_{m,l}`.
pub fn entk_explicit<M: Model>(model: &M, x_o: &M::Input, x_u: &M::Input) -> DMatrix<f64> {
    model.jacobian(x_o) * model.jacobian(x_u).transpose()
}
