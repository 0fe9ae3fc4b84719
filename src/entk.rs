//! The empirical neural tangent kernel of the logits,
//! `K(x_o, x_u) = J(x_o) J(x_u)ᵀ` with `J = ∂ vec(z)/∂θ`, computed two independent ways.
//!
//! * [`entk_explicit`] forms both Jacobians (one backward pass per logit) and multiplies
//!   them. It works for any [`Model`] and is the reference.
//! * [`entk_layerwise`] uses the structure of an MLP: with backprop factors
//!   `B_l = ∂z/∂h_l` and layer inputs `a_{l−1}`,
//!
//!   `K(x_o, x_u) = Σ_l (a_{l−1}(x_o) · a_{l−1}(x_u) + β_l) B_l(x_o) B_l(x_u)ᵀ`,
//!
//!   where `β_l = 1` if layer `l` has a bias and 0 otherwise. It never forms a Jacobian.
//!
//! For a linear model without hidden layers `B = I`, so `K = (x_o · x_u + 1) I_V`
//! (or `(x_o · x_u) I_V` without a bias).

use nalgebra::DMatrix;

use crate::mlp::Mlp;
use crate::model::Model;

/// `K(x_o, x_u) = J(x_o) J(x_u)ᵀ` from explicit Jacobians: `(V·M) × (V·L)` for `M`
/// observed and `L` updating positions, block `(m, l)` being `K_{m,l}`.
pub fn entk_explicit<M: Model>(model: &M, x_o: &M::Input, x_u: &M::Input) -> DMatrix<f64> {
    model.jacobian(x_o) * model.jacobian(x_u).transpose()
}

/// `K(x_o, x_u)` of an MLP from its layer-wise backprop factors (see the module docs).
pub fn entk_layerwise(
    mlp: &Mlp,
    x_o: &nalgebra::DVector<f64>,
    x_u: &nalgebra::DVector<f64>,
) -> DMatrix<f64> {
    let v = mlp.classes();
    let mut k = DMatrix::zeros(v, v);
    let fo = mlp.layer_factors(x_o);
    let fu = mlp.layer_factors(x_u);
    for (layer, ((bo, ao), (bu, au))) in mlp.layers().iter().zip(fo.iter().zip(&fu)) {
        let scale = ao.dot(au) + f64::from(u8::from(layer.bias.is_some()));
        k.gemm(scale, bo, &bu.transpose(), 1.0);
    }
    k
}
