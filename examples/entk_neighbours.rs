//! The eNTK as a similarity: `cargo run --release --example entk_neighbours`.
//!
//! Trains an MLP for one epoch on the UCI digits, then ranks the test images by
//! `‖K(x, x_u)‖_F`, the size of the eNTK between each of them and one "4". The top of the
//! list is what a step on that 4 would move most.

use learning_dynamics::Rng64;
use learning_dynamics::digits::{CLASSES, Digits};
use learning_dynamics::mlp::kernel::entk_layerwise;
use learning_dynamics::mlp::{Activation, Mlp};
use learning_dynamics::objective::{CrossEntropy, Objective};
use learning_dynamics::trainer::Trainer;
use rand::SeedableRng;

fn main() -> learning_dynamics::Result<()> {
    let digits = Digits::embedded()?;
    let mut rng = Rng64::seed_from_u64(1);
    let (train, test) = digits.stratified_split(0.2, &mut rng);
    let model = Mlp::random(&[64, 32, 10], Activation::Tanh, true, &mut rng)?;
    let mut trainer = Trainer::new(model, 0.05)?;
    // An untrained network's kernel mostly measures pixel overlap; after an epoch it also
    // reflects what the network has learned.
    trainer.epochs(
        1,
        &train,
        &mut rng,
        |&i| {
            let objective: Box<dyn Objective> = Box::new(CrossEntropy::positive(digits.labels[i]));
            (vec![digits.images[i].clone()], objective)
        },
        &mut [],
    )?;
    let model = trainer.model;
    let x_u = test
        .iter()
        .copied()
        .find(|&i| digits.labels[i] == 4)
        .expect("a 4");
    let mut ranked: Vec<(f64, usize)> = test
        .iter()
        .filter(|&&i| i != x_u)
        .map(|&i| {
            let k = entk_layerwise(&model, &digits.images[i], &digits.images[x_u]);
            (k.norm(), i)
        })
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    let labels =
        |rows: &[(f64, usize)]| rows.iter().map(|r| digits.labels[r.1]).collect::<Vec<_>>();
    println!(
        "the 20 test images nearest a 4 are:   {:?}",
        labels(&ranked[..20])
    );
    println!(
        "the 20 farthest are:                  {:?}",
        labels(&ranked[ranked.len() - 20..])
    );
    let fours = labels(&ranked[..20]).iter().filter(|&&l| l == 4).count();
    println!("{fours}/20 of the nearest are 4s, against about 1 in {CLASSES} of the test set");
    Ok(())
}
