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
//! * `SignDelta = mean_{v,m} Δ_{v,m}` ([`sign_delta`]), as the paper's equation writes it:
//!   the mean over the whole vocabulary, so it says whether the update lowered `o`'s
//!   log-probabilities on the whole, not whether `o`'s response rose;
//! * the response's change `Δ log π(y | χ) = Σ_m Δ_{y_m, m}` ([`response_delta`]), summed
//!   over its tokens, as the authors' code measures SignDelta: its sign says whether the
//!   probed response rose;
//! * the bound's gap `log10(η²‖K‖²_F / LBK₁)` of the first-order change, split into three
//!   factors that sum to it ([`Gap`]): `K`'s Frobenius-to-operator ratio, `A`'s, and the
//!   misalignment of the residual with the kernel, `log10(‖A‖²_op ‖K‖²_op ‖G‖² / ‖AKG‖²)`
//!   (at least 0, since `‖AKG‖ ≤ ‖A‖_op ‖K‖_op ‖G‖`). `‖A_m‖²_op = V ‖π_m‖²`
//!   ([`adaptation_op_sq`]) and `‖K‖²_op` by power iteration ([`operator_norm_sq`]).

use nalgebra::DMatrix;

use nalgebra::DVector;

use crate::numerics::{adaptation_apply_columns, adaptation_fro_sq};

/// `‖A‖² = Σ_m ‖A_m‖²_F` of the predictions `pi` (`V × M`, one column per position).
pub fn adaptation_sq(pi: &DMatrix<f64>) -> f64 {
    pi.column_iter().map(adaptation_fro_sq).sum()
}

/// `‖Δ‖²_F / (‖A‖² ‖G‖²_F)`, from a change `delta` and the two squared norms.
pub fn lbk(delta: &DMatrix<f64>, adaptation_sq: f64, residual_sq: f64) -> f64 {
    delta.norm_squared() / (adaptation_sq * residual_sq)
}

/// The mean over tokens and positions of a change of `log π`: SignDelta as the paper's
/// equation writes it.
pub fn sign_delta(delta: &DMatrix<f64>) -> f64 {
    delta.mean()
}

/// `Δ log π(y | χ) = Σ_m Δ_{y_m, m}`: the change of the response `y`'s log-probability,
/// summed over its tokens, from a change `delta` of `log π` on its positions (`V × M`,
/// column `m` the distribution at `y_m`): SignDelta as the authors' code measures it.
///
/// # Panics
/// If `y` has more tokens than `delta` has columns, or a token outside `delta`'s rows.
pub fn response_delta(delta: &DMatrix<f64>, y: &[usize]) -> f64 {
    y.iter().enumerate().map(|(m, &t)| delta[(t, m)]).sum()
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

/// `‖A‖²_op = max_m ‖A_m‖²_op` of the block-diagonal `A` of the predictions `pi` (`V × M`):
/// `A_m A_mᵀ = I − 1π_mᵀ − π_m1ᵀ + ‖π_m‖² 11ᵀ` is the identity off `span{1, π_m}` and, on it,
/// has the eigenvalues `V ‖π_m‖²` (≥ 1) and 0 (`A_mᵀ π_m = 0`), so `‖A_m‖²_op = V ‖π_m‖²`.
pub fn adaptation_op_sq(pi: &DMatrix<f64>) -> f64 {
    let v = pi.nrows() as f64;
    (pi.column_iter())
        .map(|p| v * p.norm_squared())
        .fold(0.0, f64::max)
}

/// The largest squared singular value of `m`, `‖m‖²_op`, by power iteration on `mᵀm`
/// (as `mᵀ(m x)`, never forming it) from the all-ones vector, until the Rayleigh
/// quotient changes by less than `1e-12` of itself (at most 10,000 iterations; 0 for a
/// zero matrix). On the tiny LM's kernels it stops after 7 to 30 iterations.
pub fn operator_norm_sq(m: &DMatrix<f64>) -> f64 {
    let mut x = DVector::from_element(m.ncols(), 1.0 / (m.ncols().max(1) as f64).sqrt());
    let mut sigma_sq = 0.0;
    for _ in 0..10_000 {
        let y = m.tr_mul(&(m * &x));
        let next = x.dot(&y);
        let norm = y.norm();
        if norm == 0.0 {
            return 0.0;
        }
        x = y / norm;
        if (next - sigma_sq).abs() <= 1e-12 * next {
            return next;
        }
        sigma_sq = next;
    }
    sigma_sq
}

/// The bound's gap `log10(η²‖K‖²_F / LBK₁)` of one update's first-order change on one
/// observed sequence, as three factors that sum to it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Gap {
    /// `log10(‖K‖²_F / ‖K‖²_op)`: how far `K`'s energy spreads past its top direction.
    pub kernel: f64,
    /// `log10(‖A‖²_F / ‖A‖²_op)`, with `‖A‖²_F = Σ_m ‖A_m‖²_F`.
    pub adaptation: f64,
    /// `log10(‖A‖²_op ‖K‖²_op ‖G‖² / ‖AKG‖²)`: how far `G` is from the kernel's and
    /// `A`'s top directions.
    pub misalignment: f64,
}

impl Gap {
    /// The factors of the first-order change `−ηAKG` with predictions `pi`, kernel
    /// `kernel`, stacked residuals `residual`, and `akg = AKG` (the gap does not depend on
    /// `η`); `None` where a norm is 0 and a factor has no value.
    pub fn of(
        pi: &DMatrix<f64>,
        kernel: &DMatrix<f64>,
        (residual, akg): (&DMatrix<f64>, &DMatrix<f64>),
    ) -> Option<Self> {
        let (k_fro, k_op) = (kernel.norm_squared(), operator_norm_sq(kernel));
        let (a_fro, a_op) = (adaptation_sq(pi), adaptation_op_sq(pi));
        let gap = Gap {
            kernel: (k_fro / k_op).log10(),
            adaptation: (a_fro / a_op).log10(),
            misalignment: (a_op * k_op * residual.norm_squared() / akg.norm_squared()).log10(),
        };
        [gap.kernel, gap.adaptation, gap.misalignment]
            .iter()
            .all(|f| f.is_finite())
            .then_some(gap)
    }

    /// The gap itself, the sum of the three factors.
    pub fn total(&self) -> f64 {
        self.kernel + self.adaptation + self.misalignment
    }
}
