//! The softmax family and the adaptation matrix `A`, stable at the extremes.
//!
//! Every function here works in the log domain first: `log_softmax` subtracts the
//! maximum of *each column* before exponentiating, so logits of ±1e3 and
//! probabilities down to 1e-300 (or far below, as log-probabilities) are exact to
//! rounding. Matrices of logits are `V × L`: one column per scored position
//! (`L = 1` for a classifier). Their `exp` is [`crate::vecmath`]'s (within 1 ulp of libm,
//! and vectorised).

use nalgebra::{DMatrix, DVector, DVectorView};

use crate::vecmath::exp1;

/// The block of [`all_finite`]: a check stops at the first block with a non-finite
/// value, not at the value, so that within a block it runs in vector lanes.
pub const FINITE_BLOCK: usize = 256;

/// Whether every value is finite (neither infinite nor NaN), block by block
/// ([`FINITE_BLOCK`]): the check of every logit and gradient of a training step.
pub fn all_finite(values: &[f64]) -> bool {
    (values.chunks(FINITE_BLOCK)).all(|block| block.iter().fold(true, |ok, v| ok & v.is_finite()))
}

/// `log Σ_i exp(z_i)`, computed as `m + log Σ_i exp(z_i − m)` with `m = max_i z_i`.
///
/// Returns `m` itself when `m` is infinite (all mass on an infinite logit) and
/// `-∞` for an empty slice.
pub fn log_sum_exp(z: &[f64]) -> f64 {
    let (m, log_s) = shifted_lse(z);
    m + log_s
}

/// `max_i z_i` ignoring NaN (`−∞` for an empty slice or NaNs only), in eight lanes
/// instead of one chain: a maximum is exact, so any order gives a serial `f64::max`
/// fold's value, up to the sign of a tie between `+0` and `−0`, which no `z − m`,
/// `exp` or `log s` below can see (with two maxima `s ≥ 2`).
fn max_of(z: &[f64]) -> f64 {
    const LANES: usize = 8;
    let mut lanes = [f64::NEG_INFINITY; LANES];
    let mut blocks = z.chunks_exact(LANES);
    for block in blocks.by_ref() {
        lanes
            .iter_mut()
            .zip(block)
            .for_each(|(m, &x)| *m = m.max(x));
    }
    let rest = blocks.remainder().iter().copied();
    lanes
        .into_iter()
        .chain(rest)
        .fold(f64::NEG_INFINITY, f64::max)
}

/// `(m, log Σ_i exp(z_i − m))` with `m = max_i z_i` (`log_s = 0` when `m` is not finite).
fn shifted_lse(z: &[f64]) -> (f64, f64) {
    let m = max_of(z);
    if !m.is_finite() {
        return (m, 0.0);
    }
    // `exp` in chunks, so that it runs in vector lanes; summed in order as before.
    let mut shifted = [0.0; 64];
    let mut sum = 0.0;
    for chunk in z.chunks(shifted.len()) {
        let part = &mut shifted[..chunk.len()];
        part.iter_mut().zip(chunk).for_each(|(e, &zi)| *e = zi - m);
        crate::vecmath::exp(part);
        sum = part.iter().fold(sum, |acc, &e| acc + e);
    }
    (m, sum.ln())
}

/// Log-softmax in place: `log π_i = (z_i − m) − log Σ_j exp(z_j − m)`.
///
/// Subtracting `m` before `log Σ` is added back keeps the result exact to rounding of
/// `z_i − m`, even for logits of ±1e3 where `LSE(z)` itself has an ulp of 1e-13.
fn log_softmax_in_place(z: &mut [f64]) {
    let (m, log_s) = shifted_lse(z);
    z.iter_mut().for_each(|zi| *zi = (*zi - m) - log_s);
}

/// Log-softmax of one logit vector, `log π = z − LSE(z)`.
pub fn log_softmax(z: DVectorView<'_, f64>) -> DVector<f64> {
    let mut out = z.into_owned();
    log_softmax_in_place(out.as_mut_slice());
    out
}

/// Column-wise log-softmax of a `V × L` logit matrix (max subtracted per column).
pub fn log_softmax_columns(z: &DMatrix<f64>) -> DMatrix<f64> {
    let mut out = z.clone();
    for mut col in out.column_iter_mut() {
        log_softmax_in_place(col.as_mut_slice());
    }
    out
}

/// Column-wise softmax of a `V × L` logit matrix with one `exp` per entry, and each
/// column's shift `(m, log s)`: with `m` the column's maximum, `e = exp(z − m)` and
/// `s = Σ e`, `π = e · (1/s)`, and `log π = (z − m) − log s` exactly as
/// [`log_softmax_columns`] computes it ([`log_prob`]). A column whose maximum is not
/// finite falls back to `π = exp(log π)`.
pub fn softmax_columns_shifted(z: &DMatrix<f64>) -> (DMatrix<f64>, Vec<(f64, f64)>) {
    let mut pi = z.clone();
    let v = z.nrows().max(1);
    let shifts = (pi.as_mut_slice().chunks_exact_mut(v))
        .map(softmax_in_place_shifted)
        .collect();
    (pi, shifts)
}

/// One column of [`softmax_columns_shifted`]: the logits `p` become `π`; returns the
/// shift `(m, log s)`.
fn softmax_in_place_shifted(p: &mut [f64]) -> (f64, f64) {
    let m = max_of(p);
    if !m.is_finite() {
        log_softmax_in_place(p);
        p.iter_mut().for_each(|x| *x = exp1(*x));
        return (m, 0.0);
    }
    p.iter_mut().for_each(|x| *x -= m);
    crate::vecmath::exp(p);
    let sum: f64 = p.iter().sum();
    let inverse = 1.0 / sum;
    p.iter_mut().for_each(|x| *x *= inverse);
    (m, sum.ln())
}

/// In place, column by column: the logits `z` (`V × L`) become `log π`
/// ([`log_softmax_columns`]'s, bit for bit) and each of `changes` (`V × L`, a change of
/// the logits) becomes `A_l v_l` ([`adaptation_apply_columns`]'s, bit for bit), with one
/// `exp` per entry of `z` and no matrix allocated.
///
/// # Panics
/// If a matrix of `changes` is not the shape of `z`.
pub fn log_softmax_and_adapt_columns(z: &mut DMatrix<f64>, changes: &mut [DMatrix<f64>]) {
    let v = z.nrows();
    for change in changes.iter() {
        assert_eq!(
            change.shape(),
            z.shape(),
            "a change is not the logits' shape"
        );
    }
    let mut pi = vec![0.0; v];
    for (l, column) in z.as_mut_slice().chunks_exact_mut(v.max(1)).enumerate() {
        pi.copy_from_slice(column);
        let shift = softmax_in_place_shifted(&mut pi);
        column.iter_mut().for_each(|x| *x = log_prob(*x, shift));
        for change in changes.iter_mut() {
            let mut col = change.column_mut(l);
            let dot = DVectorView::from_slice(&pi, v).dot(&col);
            col.add_scalar_mut(-dot);
        }
    }
}

/// `log π` of logit `z` in a column of shift `(m, log s)` ([`softmax_columns_shifted`]).
pub fn log_prob(z: f64, (m, log_s): (f64, f64)) -> f64 {
    (z - m) - log_s
}

/// Column-wise softmax `π = exp(log_softmax(z))` of a `V × L` logit matrix.
pub fn softmax_columns(z: &DMatrix<f64>) -> DMatrix<f64> {
    log_softmax_columns(z).map(f64::exp)
}

/// Stable `log σ(x) = −log(1 + e^{−x})`: `x − log(1 + e^x)` for negative `x`.
pub fn log_sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        -(-x).exp().ln_1p()
    } else {
        x - x.exp().ln_1p()
    }
}

/// Logistic function `σ(x) = 1 / (1 + e^{−x})`, without overflow for large `|x|`.
pub fn sigmoid(x: f64) -> f64 {
    log_sigmoid(x).exp()
}

/// The adaptation operator applied to a vector: `A v = (I − 1 πᵀ) v = v − 1 (π · v)`.
///
/// `A = ∇_z log π` is the Jacobian of log-softmax. It never needs to be formed:
/// this costs `O(V)` instead of `O(V²)`.
pub fn adaptation_apply(pi: DVectorView<'_, f64>, v: DVectorView<'_, f64>) -> DVector<f64> {
    let shift = pi.dot(&v);
    v.map(|vi| vi - shift)
}

/// Column-wise `A_l v_l` for `V × L` matrices of probabilities and vectors.
pub fn adaptation_apply_columns(pi: &DMatrix<f64>, v: &DMatrix<f64>) -> DMatrix<f64> {
    let mut out = v.clone();
    for (l, mut col) in out.column_iter_mut().enumerate() {
        let shift = pi.column(l).dot(&v.column(l));
        col.add_scalar_mut(-shift);
    }
    out
}

/// The adaptation matrix `A = I − 1 πᵀ` (`A_ii = 1 − π_i`, `A_ij = −π_j`), formed explicitly.
pub fn adaptation_matrix(pi: DVectorView<'_, f64>) -> DMatrix<f64> {
    let v = pi.len();
    DMatrix::from_fn(v, v, |i, j| f64::from(u8::from(i == j)) - pi[j])
}

/// Closed form of the squared Frobenius norm `‖A‖²_F = V − 2 + V ‖π‖²₂`.
///
/// It is `V − 1` for a uniform `π` and `2V − 2` for a one-hot `π`: `‖A‖_F` grows as
/// predictions get peakier (the paper's App. C.2, Eqs. 27–31).
pub fn adaptation_fro_sq(pi: DVectorView<'_, f64>) -> f64 {
    let v = pi.len() as f64;
    v - 2.0 + v * pi.norm_squared()
}

/// Shannon entropy `H = −Σ_i π_i log π_i` (nats) from log-probabilities; `0 · log 0 = 0`.
pub fn entropy_from_log(log_pi: &[f64]) -> f64 {
    -log_pi
        .iter()
        .filter(|lp| lp.is_finite())
        .map(|&lp| lp.exp() * lp)
        .sum::<f64>()
}

/// Teacher-forced log-probability of a response, `log π(y | χ) = Σ_l log π_l(y_l)`,
/// from a sequence model's logits (`V × |y|`, one column per response position).
pub fn sequence_log_prob(logits: &DMatrix<f64>, response: &[usize]) -> f64 {
    let log_pi = log_softmax_columns(logits);
    response
        .iter()
        .enumerate()
        .map(|(l, &t)| log_pi[(t, l)])
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    #[test]
    fn log_softmax_handles_logits_of_plus_minus_1e3() {
        let z = DVector::from_vec(vec![1000.0, -1000.0, 999.0]);
        let lp = log_softmax(z.as_view());
        // log π_0 = −log(1 + e^{−1}) and log π_2 = −1 − log(1 + e^{−1}), exactly.
        assert_relative_eq!(lp[0], -(-1f64).exp().ln_1p(), epsilon = 1e-15);
        assert_relative_eq!(lp[2], -1.0 - (-1f64).exp().ln_1p(), epsilon = 1e-15);
        assert_relative_eq!(lp[1], -2000.0 + lp[0], epsilon = 1e-12);
        assert!(lp.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn probabilities_down_to_1e_minus_300_survive() {
        // z_1 − z_0 = ln(1e-300) gives π_1 = 1e-300 / (1 + 1e-300) = 1e-300 to rounding.
        let z = DVector::from_vec(vec![0.0, (1e-300f64).ln()]);
        let pi = softmax_columns(&DMatrix::from_column_slice(2, 1, z.as_slice()));
        assert_relative_eq!(pi[1], 1e-300, max_relative = 1e-12);
        assert_relative_eq!(pi[0], 1.0);
    }

    /// Logits at the extremes: ±1e3, a probability of 1e-300, an infinite logit.
    fn extreme_logits() -> DMatrix<f64> {
        let tiny = (1e-300f64).ln();
        DMatrix::from_column_slice(
            3,
            3,
            &[
                1000.0,
                -1000.0,
                999.0,
                0.0,
                tiny,
                0.5,
                f64::INFINITY,
                0.0,
                1.0,
            ],
        )
    }

    /// The one-`exp` softmax agrees with `log_softmax_columns` bit for bit on `log π`
    /// (through [`log_prob`]) and with `exp(log π)` to a few ulp on `π`, at the extremes,
    /// and falls back for an infinite logit.
    #[test]
    fn softmax_shifted_agrees_with_log_softmax_at_the_extremes() {
        let z = extreme_logits();
        let (pi, shifts) = softmax_columns_shifted(&z);
        let reference = log_softmax_columns(&z);
        for c in 0..3 {
            for r in 0..3 {
                let (lp, want) = (log_prob(z[(r, c)], shifts[c]), reference[(r, c)]);
                assert!(
                    lp == want || (lp.is_nan() && want.is_nan()),
                    "{lp} vs {want}"
                );
            }
        }
        for c in 0..2 {
            for r in 0..3 {
                assert_relative_eq!(pi[(r, c)], reference[(r, c)].exp(), max_relative = 1e-15);
            }
        }
        assert_relative_eq!(
            pi[(1, 1)],
            1e-300 / (1.0 + 1e-300 + 0.5f64.exp()),
            max_relative = 1e-13
        );
        assert_eq!(pi[(1, 0)], 0.0);
    }

    /// The fused, in-place form gives `log_softmax_columns`' `log π` and
    /// `adaptation_apply_columns`' `A v` bit for bit, for every change, at the extremes.
    #[test]
    fn fused_log_softmax_and_adaptation_agree_bit_for_bit() {
        let z = extreme_logits();
        // Two changes of mixed signs and sizes; any values serve, the claim is equality.
        let changes: Vec<DMatrix<f64>> = (0..2)
            .map(|k| DMatrix::from_fn(3, 3, |r, c| (r as f64 - 1.3 * c as f64) * (k as f64 + 0.7)))
            .collect();
        let (mut log_pi, mut adapted) = (z.clone(), changes.clone());
        log_softmax_and_adapt_columns(&mut log_pi, &mut adapted);
        let same = |a: f64, b: f64| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
        let reference = log_softmax_columns(&z);
        assert!(
            log_pi
                .iter()
                .zip(reference.iter())
                .all(|(&a, &b)| same(a, b))
        );
        let pi = softmax_columns_shifted(&z).0;
        for (change, got) in changes.iter().zip(&adapted) {
            let want = adaptation_apply_columns(&pi, change);
            assert!(got.iter().zip(want.iter()).all(|(&a, &b)| same(a, b)));
        }
    }

    /// A non-finite value anywhere (first, past a block boundary, last) is found.
    #[test]
    fn all_finite_finds_a_non_finite_value_in_any_block() {
        assert!(all_finite(&[]));
        let values = vec![f64::MAX; 600];
        assert!(all_finite(&values));
        for at in [0, FINITE_BLOCK - 1, FINITE_BLOCK, 599] {
            for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                let mut v = values.clone();
                v[at] = bad;
                assert!(!all_finite(&v), "{bad} at {at}");
            }
        }
    }

    /// The eight-lane maximum is the serial fold's, for every length from 0 to 19 and
    /// values among NaN, ±∞, ±0 and ordinary numbers, wherever they sit.
    #[test]
    fn lane_maximum_equals_the_serial_fold() {
        let pool = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            1.5,
            -2.0,
            1e300,
        ];
        for len in 0..20 {
            for start in 0..pool.len() {
                // A stride of 3, coprime to the pool's 8, puts every value in every place.
                let z: Vec<f64> = (0..len)
                    .map(|i| pool[(start + i * 3) % pool.len()])
                    .collect();
                let serial = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let lanes = max_of(&z);
                assert!(
                    lanes == serial || (lanes.is_nan() && serial.is_nan()),
                    "{z:?}"
                );
            }
        }
    }

    #[test]
    fn log_sigmoid_is_stable_in_both_tails() {
        assert_relative_eq!(log_sigmoid(0.0), -(2f64).ln());
        assert_relative_eq!(log_sigmoid(-800.0), -800.0);
        assert_relative_eq!(log_sigmoid(800.0), 0.0);
        assert_relative_eq!(log_sigmoid(40.0), -(-40f64).exp(), max_relative = 1e-12);
        assert_relative_eq!(sigmoid(2.0), 1.0 / (1.0 + (-2f64).exp()), epsilon = 1e-15);
    }

    #[test]
    fn adaptation_operator_matches_matrix_and_closed_form_norm() {
        let pi = DVector::from_vec(vec![0.5, 0.3, 0.2]);
        let v = DVector::from_vec(vec![1.0, -2.0, 0.5]);
        let a = adaptation_matrix(pi.as_view());
        assert_relative_eq!(a * &v, adaptation_apply(pi.as_view(), v.as_view()));
        // ‖A‖²_F by summing squares: rows (0.5,-0.3,-0.2), (-0.5,0.7,-0.2), (-0.5,-0.3,0.8) = 2.14.
        assert_relative_eq!(adaptation_fro_sq(pi.as_view()), 2.14, epsilon = 1e-12);
        let uniform = DVector::from_element(4, 0.25);
        assert_relative_eq!(adaptation_fro_sq(uniform.as_view()), 3.0, epsilon = 1e-12);
    }

    #[test]
    fn entropy_of_uniform_is_log_v() {
        let lp = vec![-(4f64).ln(); 4];
        assert_relative_eq!(entropy_from_log(&lp), (4f64).ln(), epsilon = 1e-15);
        assert_eq!(entropy_from_log(&[0.0, f64::NEG_INFINITY]), 0.0);
    }
}
