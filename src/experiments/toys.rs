//! The linear softmax toys that `squeezing` and `residuals` draw their distributions
//! from: Gaussian weights, the notebook's peaky weights, and classes ranked by their
//! logits.

use nalgebra::{DMatrix, DVector};

use crate::Rng64;
use crate::mlp::normal;

/// A `rows × cols` matrix of `shift + scale·N(0, 1)` draws, row by row.
pub fn gaussian(rows: usize, cols: usize, scale: f64, shift: f64, rng: &mut Rng64) -> DMatrix<f64> {
    DMatrix::from_fn(rows, cols, |_, _| shift + scale * normal(rng))
}

/// The notebook's `get_W_K`: a random `W` after one CE step (lr 1) toward a multi-hot
/// target on `targets`, which makes `π` peak on one of them.
pub fn peaky_weights(
    x: &DVector<f64>,
    v: usize,
    targets: std::ops::Range<usize>,
    rng: &mut Rng64,
) -> DMatrix<f64> {
    let w = gaussian(v, x.len(), 1.0, 0.0, rng);
    let z = &w * x;
    let pi = crate::numerics::log_softmax(z.as_view()).map(f64::exp);
    let g = DVector::from_fn(v, |i, _| pi[i] - f64::from(u8::from(targets.contains(&i))));
    w - g * x.transpose()
}

/// Classes sorted from most to least likely under `W x`.
pub fn ranked(w: &DMatrix<f64>, x: &DVector<f64>) -> Vec<usize> {
    let z = w * x;
    let mut order: Vec<usize> = (0..z.len()).collect();
    order.sort_by(|&a, &b| z[b].total_cmp(&z[a]));
    order
}
