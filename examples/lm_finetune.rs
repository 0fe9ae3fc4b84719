//! SFT then off-policy DPO on a tiny language model, through the library:
//! `cargo run --release --example lm_finetune`.
//!
//! Prints how each probe family moved in each phase. A larger β (a stronger pull to the
//! reference) is one field away; `ldyn run lm_dpo --set beta=0.5` draws the figures.

use std::error::Error;

use learning_dynamics::experiments::Experiment;
use learning_dynamics::experiments::lm_finetune::{Config, LmFinetune};
use learning_dynamics::experiments::lm_measures::curve;
use learning_dynamics::experiments::lm_world::DEFAULT_SEED;
use learning_dynamics::language::Family;

fn main() -> Result<(), Box<dyn Error>> {
    let mut config = Config::default();
    config.world.beta = 0.5;
    let run = LmFinetune::run(&config, DEFAULT_SEED)?;
    println!("{:<18} {:>12} {:>12}", "family", "SFT change", "DPO change");
    for family in Family::ALL {
        let change = |points| {
            let c = curve(points, family);
            c[c.len() - 1].1 - c[0].1
        };
        println!(
            "{:<18} {:>+12.3} {:>+12.3}",
            family.id(),
            change(&run.sft),
            change(&run.dpo)
        );
    }
    Ok(())
}
