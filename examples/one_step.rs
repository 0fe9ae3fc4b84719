//! One SGD step, decomposed: `cargo run --release --example one_step`.
//!
//! Put your own numbers in `W`, `X_U`, `X_O` and `LABEL`: the example prints, class by
//! class, the first-order prediction `−η A K G` of how learning `(x_u, LABEL)` changes
//! `log π(x_o)`, the actual change of one real step, and what the prediction missed.

use learning_dynamics::decomposition::one_step;
use learning_dynamics::mlp::Mlp;
use learning_dynamics::objective::CrossEntropy;
use nalgebra::{DMatrix, DVector};

/// A linear softmax `z = W x`: 4 classes, 3 inputs (one row per class).
const W: [[f64; 3]; 4] = [
    [1.0, 0.0, 0.5],
    [-0.5, 1.0, 0.0],
    [0.0, -1.0, 1.0],
    [0.3, 0.3, -0.2],
];
/// The example learned, and its label.
const X_U: [f64; 3] = [1.0, 2.0, -1.0];
const LABEL: usize = 2;
/// The example observed: similar to `X_U` (a positive dot product), so its class 2 rises.
const X_O: [f64; 3] = [0.5, 1.0, 0.0];

fn main() -> learning_dynamics::Result<()> {
    let w = DMatrix::from_fn(4, 3, |i, j| W[i][j]);
    let model = Mlp::linear(w, None)?;
    let (x_u, x_o) = (
        [DVector::from_row_slice(&X_U)],
        [DVector::from_row_slice(&X_O)],
    );
    // For z = W x the eNTK is (x_o · x_u) I: this number scales every prediction.
    println!("K(x_o, x_u) = {:.2} · I", x_o[0].dot(&x_u[0]));
    let learn = CrossEntropy::positive(LABEL);
    for eta in [0.1, 0.01] {
        let step = one_step(&model, &x_u, &learn, &x_o, eta)?;
        let seen = &step.observed[0];
        println!("\nη = {eta}: class, π before, predicted Δlog π, actual, missed");
        for class in 0..4 {
            println!(
                "  {class}  {:.3}  {:+.5}  {:+.5}  {:+.1e}",
                seen.pi()[class],
                seen.predicted[class],
                seen.actual[class],
                seen.residual()[class]
            );
        }
    }
    // The misses shrink about a hundredfold when η shrinks tenfold: the decomposition is
    // exact to first order, and the rest is O(η²).
    Ok(())
}
