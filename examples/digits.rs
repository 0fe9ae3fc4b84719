//! The paper's Figure 1 on the UCI handwritten digits, through the library:
//! `cargo run --release --example digits`.
//!
//! Runs one epoch instead of the gallery's four (the configuration is a plain struct),
//! then prints the one-step observations of Figure 1(b) and the claims.

use std::error::Error;

use learning_dynamics::experiments::Experiment;
use learning_dynamics::experiments::digits::{Config, DEFAULT_SEED, DigitsExperiment};

fn main() -> Result<(), Box<dyn Error>> {
    let config = Config {
        epochs: 1,
        ..Config::default()
    };
    let result = DigitsExperiment::run(&config, DEFAULT_SEED)?;
    for seen in &result.one_step.observed {
        // The decomposition's prediction next to the real change, on the update's class.
        let (predicted, actual) = (seen.observation.predicted[4], seen.observation.actual[4]);
        println!(
            "{:<10} a {} with ‖K‖_F {:6.2}: Δlog π(4) predicted {predicted:+.4}, actual {actual:+.4}",
            seen.kind, seen.label, seen.k_fro
        );
    }
    for claim in DigitsExperiment::claims(&result) {
        let verdict = if claim.holds { "holds" } else { "FAILS" };
        println!("[{verdict}] {}", claim.text);
    }
    Ok(())
}
