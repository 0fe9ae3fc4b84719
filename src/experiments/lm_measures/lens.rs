//! The paper's lens ([`crate::lens`]) on one update of the tiny LM, next to the exact
//! kernel: for one observed sequence, the LBK of the actual and of the first-order change,
//! SignDelta (the vocabulary's, as the paper's equation writes it, and the response's, as
//! the authors' code measures it) and `‖K‖²_F`.
//!
//! `G` stacks the update's residuals position by position, with their coefficients: one
//! sequence for SFT; for a pair, `y⁺`'s and `y⁻`'s positions, where at the positions the
//! two share ([`shared_positions`]) the two terms cancel and only their remainder is kept,
//! on one side ([`split_terms`], as the attribution does). `K` is the eNTK between the
//! observed sequence's positions and all of the update's, from the structured kernel.
//!
//! Beside the full kernel's first-order change it computes the changes two cheaper
//! kernels predict: the last-layer kernel ([`KernelFactors::last_layer`]) and the frozen kernel,
//! the full kernel of the model the training started from (Fig. 7's premise that `K` is
//! "relatively stable"). The frozen kernel is recomputed from the saved start model for
//! each pair, never stored. The update's kernel factors ([`KernelFactors`]) are computed
//! once per model and shared by every observed sequence.

use nalgebra::DMatrix;

use crate::lens::{Gap, adaptation_sq, first_order_change, lbk, response_delta, sign_delta};
use crate::lm::kernel::KernelFactors;
use crate::lm::{Sequence, TinyLm};
use crate::model::Model;
use crate::numerics::log_softmax_columns;
use crate::objective::pairwise::{shared_positions, split_terms};

/// The lens on one update and one observed sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct LensPoint {
    /// `‖Δ‖² / (‖A‖²‖G‖²)` of the actual change, as the paper computes it.
    pub lbk: f64,
    /// The same ratio of the first-order change `−ηAKG`: at most `η²‖K‖²_F`.
    pub lbk_first_order: f64,
    /// SignDelta over the vocabulary: the mean actual change of `log π` over tokens and
    /// positions ([`sign_delta`]).
    pub sign_delta_vocabulary: f64,
    /// SignDelta on the response: the actual `Δ log π(y | χ)`, summed over the observed
    /// response's tokens ([`response_delta`]).
    pub sign_delta_response: f64,
    /// The bound's gap `log10(η²‖K‖²_F / LBK₁)` in its three factors (`None` where a
    /// norm is 0).
    pub gap: Option<Gap>,
    /// The exact eNTK `K` between the observed positions and the update's.
    pub kernel: DMatrix<f64>,
    /// The last-layer kernel in its place ([`KernelFactors::last_layer`]).
    pub last_layer_kernel: DMatrix<f64>,
    /// The first-order change `−ηAKG` (`V × M`).
    pub first_order: DMatrix<f64>,
    /// `−ηA K_last G` with the last-layer kernel.
    pub last_layer: DMatrix<f64>,
    /// `−ηA K_0 G` with the start model's kernel.
    pub frozen: DMatrix<f64>,
    /// The actual change of `log π` (`V × M`).
    pub actual: DMatrix<f64>,
}

/// The update's residuals, stacked as `V × (Σ positions)`: see the module docs.
pub fn stacked_residuals(update: &[Sequence], residuals: &[DMatrix<f64>]) -> DMatrix<f64> {
    let parts: Vec<DMatrix<f64>> = match (update, residuals) {
        ([chosen, rejected], [_, _]) => {
            let (yp, ym) = (chosen.response(), rejected.response());
            let [plus, minus] = split_terms(residuals, &shared_positions(yp, ym), yp);
            vec![plus[0].clone(), minus[1].clone()]
        }
        _ => residuals.to_vec(),
    };
    let columns: Vec<_> = parts.iter().flat_map(|g| g.column_iter()).collect();
    DMatrix::from_columns(&columns)
}

/// The lens on each of `observed` of the step from `before` to `after` on `update`, whose
/// residuals before the step are `g` ([`stacked_residuals`], not zero) and learning rate
/// `eta`; `start` is the model the training started from, whose kernel is the frozen one.
/// Each kernel is between an observed sequence's positions and all of the update's, in
/// order.
pub fn lens_points(
    (start, before, after): (&TinyLm, &TinyLm, &TinyLm),
    update: &[Sequence],
    g: &DMatrix<f64>,
    eta: f64,
    observed: &[Sequence],
) -> Vec<LensPoint> {
    let (update_now, update_start) = (
        KernelFactors::of(before, update),
        KernelFactors::of(start, update),
    );
    (observed.iter())
        .map(|o| {
            let now = KernelFactors::of(before, std::slice::from_ref(o));
            let frozen =
                KernelFactors::of(start, std::slice::from_ref(o)).structured(&update_start);
            let k = now.structured(&update_now);
            let log_pi = log_softmax_columns(&before.logits(o));
            let pi = log_pi.map(f64::exp);
            let actual = log_softmax_columns(&after.logits(o)) - &log_pi;
            // `−ηAKG` from `AKG`, bit for bit what `first_order_change` at `eta` gives.
            let akg = first_order_change(&pi, &k, g, -1.0);
            let first_order = &akg * -eta;
            let predict = |kernel: &DMatrix<f64>| first_order_change(&pi, kernel, g, eta);
            let (a_sq, g_sq) = (adaptation_sq(&pi), g.norm_squared());
            let last_layer_kernel = now.last_layer(&update_now);
            LensPoint {
                lbk: lbk(&actual, a_sq, g_sq),
                lbk_first_order: lbk(&first_order, a_sq, g_sq),
                sign_delta_vocabulary: sign_delta(&actual),
                sign_delta_response: response_delta(&actual, o.response()),
                gap: Gap::of(&pi, &k, (g, &akg)),
                last_layer: predict(&last_layer_kernel),
                frozen: predict(&frozen),
                kernel: k,
                last_layer_kernel,
                first_order,
                actual,
            }
        })
        .collect()
}
