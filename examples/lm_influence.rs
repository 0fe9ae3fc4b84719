//! Which training signal moves which response of a tiny language model, through the
//! library: `cargo run --release --example lm_influence`.
//!
//! Each cell is the accumulated first-order prediction −ηAKG next to the actual change.

use std::error::Error;

use learning_dynamics::experiments::Experiment;
use learning_dynamics::experiments::lm_influence::{Config, LmInfluence};
use learning_dynamics::experiments::lm_world::DEFAULT_SEED;

fn main() -> Result<(), Box<dyn Error>> {
    let config = Config {
        epochs: 5,
        ..Config::default()
    };
    let influence = LmInfluence::run(&config, DEFAULT_SEED)?;
    for cell in &influence.cells {
        println!(
            "{:<20} {:<18} predicted {:+8.3}  actual {:+8.3}",
            cell.signal.id(),
            cell.family.id(),
            cell.predicted,
            cell.actual
        );
    }
    Ok(())
}
