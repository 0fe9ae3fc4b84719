//! An objective's residual checked against its own loss, before it is trusted: `G` must
//! be `∂L/∂z` with its sign, which central finite differences of `L` measure. The crate's
//! objectives pass it in their tests; an objective from outside (the tutorial's, a
//! binding's) is checked with [`check_residuals`] before any step.

use nalgebra::DMatrix;

use super::Objective;
use crate::error::{Error, Result};

/// The relative step of the central differences: `h = STEP · max(1, |z|)`.
const STEP: f64 = 1e-5;

/// The largest disagreement accepted, relative to `1 + |G|` at the entry.
const TOLERANCE: f64 = 1e-5;

/// How far one entry's residual is from its finite difference: `(excess, (input, class,
/// position), analytic, numeric)`.
type Disagreement = (f64, (usize, usize, usize), f64, f64);

/// Checks `objective`'s residuals at `logits` against central finite differences of its
/// loss, entry by entry: `G[s](v, m)` against `(L(z + h e) − L(z − h e)) / 2h`.
///
/// # Errors
/// If the objective does not fit the logits, if a loss or residual is not finite, or
/// naming the worst entry (input, class, position, both values) if one disagrees by more
/// than `1e-5 · (1 + |G|)`: a wrong sign, a missing factor, or a residual of another loss.
pub fn check_residuals(objective: &dyn Objective, logits: &[DMatrix<f64>]) -> Result<()> {
    let shapes: Vec<(usize, usize)> = logits.iter().map(|z| z.shape()).collect();
    objective.check(&shapes)?;
    let residuals = objective.residuals(logits);
    if residuals.len() != logits.len()
        || (residuals.iter().zip(&shapes)).any(|(g, &shape)| g.shape() != shape)
    {
        return Err(Error::InvalidArgument(format!(
            "the objective gave {} residuals for {} inputs, or shapes other than the logits' {shapes:?}",
            residuals.len(),
            logits.len()
        )));
    }
    let mut worst: Option<Disagreement> = None;
    for (s, g) in residuals.iter().enumerate() {
        for (m, v) in (0..g.ncols()).flat_map(|m| (0..g.nrows()).map(move |v| (m, v))) {
            let analytic = g[(v, m)];
            let h = STEP * logits[s][(v, m)].abs().max(1.0);
            let at = |shift: f64| {
                let mut z = logits.to_vec();
                z[s][(v, m)] += shift;
                objective.loss(&z)
            };
            let numeric = (at(h) - at(-h)) / (2.0 * h);
            if !(numeric.is_finite() && analytic.is_finite()) {
                return Err(Error::NonFinite("the objective's loss or residual"));
            }
            let excess = (numeric - analytic).abs() / (1.0 + analytic.abs());
            if worst.is_none_or(|w| excess > w.0) {
                worst = Some((excess, (s, v, m), analytic, numeric));
            }
        }
    }
    match worst {
        Some((excess, (s, v, m), analytic, numeric)) if excess > TOLERANCE => {
            Err(Error::InvalidArgument(format!(
                "the objective's residual is not the gradient of its loss: at input {s}, class {v}, position {m} it gives G = {} where central finite differences give {} (a wrong sign, a missing factor, or another loss's residual?)",
                crate::error::number(analytic),
                crate::error::number(numeric)
            )))
        }
        _ => Ok(()),
    }
}
