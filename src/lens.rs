//! The paper's lens on the kernel where it cannot compute one (App. C.2, Eq. 23), in a form
//! that can be held against the exact `K`: the LBK proxy and SignDelta of one update `u` on
//! one observed sequence `o`.
//!
//! With `o`'s `M` response positions, `π` its predictions (`V × M`), `Δ` the change of
//! `log π` on them (`V × M`), and `G` the update's stacked residuals (`V × N`, with their
//! coefficients), the first-order change is `Δ₁ = −η A K G`, where
//! `A = diag(A_1, …, A_M)` with `A_m = I − 1 π_mᵀ` ([`adaptation_matrix`](crate::numerics::adaptation_matrix))
//! and `K` is the `(V·M) × (V·N)` eNTK between the two sequences' positions. Then
//!
//! * `‖A‖² = Σ_m ‖A_m‖²_F` ([`adaptation_sq`]);
//! * `LBK = ‖Δ‖²_F / (‖A‖² ‖G‖²_F)` ([`lbk`]). Since `‖A K G‖ ≤ ‖A‖_F ‖K‖_F ‖G‖_F`,
//!   the LBK of the first-order change is at most `η² ‖K‖²_F`: a lower bound of the
//!   kernel's size, as the paper uses it. The LBK of the actual change carries the
//!   `O(η²)` rest as well, and may exceed it;
//! * `SignDelta = mean_{v,m} Δ_{v,m}` ([`sign_delta`]): whether the update lowered `o`'s
//!   log-probabilities on the whole.

use nalgebra::DMatrix;

use crate::numerics::{adaptation_apply_columns, adaptation_fro_sq};

/// `‖A‖² = Σ_m ‖A_m‖²_F` of the predictions `pi` (`V × M`, one column per position).
pub fn adaptation_sq(pi: &DMatrix<f64>) -> f64 {
    pi.column_iter().map(adaptation_fro_sq).sum()
}

/// `‖Δ‖²_F / (‖A‖² ‖G‖²_F)`, from a change `delta` and the two squared norms.
pub fn lbk(delta: &DMatrix<f64>, adaptation_sq: f64, residual_sq: f64) -> f64 {
    delta.norm_squared() / (adaptation_sq * residual_sq)
}

/// The mean over tokens and positions of a change of `log π`.
pub fn sign_delta(delta: &DMatrix<f64>) -> f64 {
    delta.mean()
}

/// The first-order change `−η A K G` on `o`'s positions (`V × M`), from its predictions
/// `pi` (`V × M`), the kernel (`(V·M) × (V·N)`, position blocks in order) and the
/// update's residuals (`V × N`).
///
/// # Panics
/// If the shapes do not agree.
pub fn first_order_change(
    pi: &DMatrix<f64>,
    kernel: &DMatrix<f64>,
    residual: &DMatrix<f64>,
    eta: f64,
) -> DMatrix<f64> {
    let (v, m) = pi.shape();
    let g = DMatrix::from_column_slice(residual.len(), 1, residual.as_slice());
    let kg = kernel * g;
    let kg = DMatrix::from_column_slice(v, m, kg.as_slice());
    adaptation_apply_columns(pi, &kg) * -eta
}
