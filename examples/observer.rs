//! Training with an observer that records a probe: `cargo run --release --example observer`.
//!
//! An MLP learns the UCI digits. An observer watches one held-out 9 that the model never
//! trains on and records, after every step, its probability of being a 9 and of being a 4:
//! the accumulated effect of a thousand one-step influences, among them every step on a 4
//! that looks like this 9.

use learning_dynamics::Rng64;
use learning_dynamics::digits::Digits;
use learning_dynamics::mlp::{Activation, Mlp};
use learning_dynamics::model::Model;
use learning_dynamics::numerics::log_softmax;
use learning_dynamics::objective::{CrossEntropy, Objective};
use learning_dynamics::trainer::{Observer, StepEvent, Trainer};
use nalgebra::DVector;
use rand::SeedableRng;

/// Records `π(x)` after every step. Observers see the model before and after each step,
/// so the training loop never needs to know what is measured.
struct Probe {
    x: DVector<f64>,
    trace: Vec<DVector<f64>>,
}

impl Observer<Mlp> for Probe {
    fn step(&mut self, e: &StepEvent<'_, Mlp>) -> learning_dynamics::Result<()> {
        let pi = log_softmax(e.after.logits(&self.x).column(0)).map(f64::exp);
        self.trace.push(pi);
        Ok(())
    }
}

fn main() -> learning_dynamics::Result<()> {
    let digits = Digits::embedded()?;
    let mut rng = Rng64::seed_from_u64(0);
    let (train, test) = digits.stratified_split(0.2, &mut rng);
    let model = Mlp::random(&[64, 32, 10], Activation::Tanh, true, &mut rng)?;
    let held_out = test
        .iter()
        .copied()
        .find(|&i| digits.labels[i] == 9)
        .expect("a 9");
    let mut probe = Probe {
        x: digits.images[held_out].clone(),
        trace: Vec::new(),
    };
    let mut trainer = Trainer::new(model, 0.05)?;
    // One epoch: each step learns one training image with cross-entropy.
    trainer.epochs(
        1,
        &train,
        &mut rng,
        |&i| {
            let objective: Box<dyn Objective> = Box::new(CrossEntropy::positive(digits.labels[i]));
            (vec![digits.images[i].clone()], objective)
        },
        &mut [&mut probe],
    )?;
    println!("a held-out 9, never trained on: π every 200 steps");
    println!(" step   π(9)   π(4)");
    for (step, pi) in probe.trace.iter().enumerate().step_by(200) {
        println!("{step:5}  {:.3}  {:.3}", pi[9], pi[4]);
    }
    Ok(())
}
