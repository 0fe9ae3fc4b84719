//! A new objective, checked: `cargo run --release --example custom_objective`.
//!
//! The focal loss `L = −(1 − π_y)^γ log π_y` down-weights examples the model already gets
//! right. An [`Objective`] only says its loss and its residual `G = ∂L/∂z`; the model
//! turns `G` into `Jᵀ G` by backprop, checked here against finite differences of the loss.

use learning_dynamics::Rng64;
use learning_dynamics::error::Result;
use learning_dynamics::mlp::{Activation, Mlp};
use learning_dynamics::model::Model;
use learning_dynamics::numerics::log_softmax_columns;
use learning_dynamics::objective::Objective;
use nalgebra::{DMatrix, DVector};
use rand::SeedableRng;

struct Focal {
    label: usize,
    gamma: f64,
}

impl Objective for Focal {
    fn arity(&self) -> usize {
        1
    }

    fn check(&self, _shapes: &[(usize, usize)]) -> Result<()> {
        Ok(())
    }

    fn loss(&self, z: &[DMatrix<f64>]) -> f64 {
        let log_p = log_softmax_columns(&z[0])[(self.label, 0)];
        -(1.0 - log_p.exp()).powf(self.gamma) * log_p
    }

    /// With `p = π_y`: `∂L/∂z = w (π − e_y)`, `w = (1 − p)^γ − γ p (1 − p)^(γ−1) log p`.
    /// The sign is cross-entropy's: `y` is pulled up, less when `p` is already large.
    fn residuals(&self, z: &[DMatrix<f64>]) -> Vec<DMatrix<f64>> {
        let pi = log_softmax_columns(&z[0]).map(f64::exp);
        let p = pi[(self.label, 0)];
        let (g, q) = (self.gamma, 1.0 - p);
        let weight = q.powf(g) - g * p * q.powf(g - 1.0) * p.ln();
        let mut residual = pi;
        residual[(self.label, 0)] -= 1.0;
        vec![residual * weight]
    }
}

fn main() -> Result<()> {
    let mut rng = Rng64::seed_from_u64(2);
    let model = Mlp::random(&[5, 8, 4], Activation::Tanh, true, &mut rng)?;
    let x = DVector::from_vec(vec![0.3, -1.2, 0.8, 0.1, 0.5]);
    let focal = Focal {
        label: 1,
        gamma: 2.0,
    };
    let analytic = model.backprop(&x, &focal.residuals(&[model.logits(&x)])[0]);
    // Numeric: central differences of the loss, one parameter at a time.
    let theta = model.params();
    let h = 1e-6;
    let mut worst: f64 = 0.0;
    for k in 0..theta.len() {
        let loss_at = |delta: f64| {
            let (mut moved, mut t) = (model.clone(), theta.clone());
            t[k] += delta;
            moved.set_params(&t);
            focal.loss(&[moved.logits(&x)])
        };
        let numeric = (loss_at(h) - loss_at(-h)) / (2.0 * h);
        worst = worst.max((numeric - analytic[k]).abs());
    }
    println!(
        "{} parameters; largest |analytic − numeric| = {worst:.1e} (‖∇L‖ = {:.3})",
        theta.len(),
        analytic.norm()
    );
    assert!(worst < 1e-7, "the residual or its sign is wrong");
    Ok(())
}
