//! The squeezing toy (the paper's App. E) through the library, without writing files:
//! `cargo run --release --example squeezing`.
//!
//! An experiment is a pure function `run(&Config, seed) -> Data`; its claims are read
//! from that data. Here the vocabulary is twice the notebook's, to see that the squeezing
//! does not depend on `V = 50` (`ldyn run squeezing --set vocab=100` draws it).

use std::error::Error;

use learning_dynamics::experiments::Experiment;
use learning_dynamics::experiments::squeezing::{Config, DEFAULT_SEED, Squeezing};

fn main() -> Result<(), Box<dyn Error>> {
    let config = Config {
        vocab: 100,
        ..Config::default()
    };
    let result = Squeezing::run(&config, DEFAULT_SEED)?;
    for case in &result.cases {
        println!("{:<30} {}", case.id, case.squeeze.summary());
    }
    for claim in Squeezing::claims(&result) {
        let verdict = if claim.holds { "holds" } else { "FAILS" };
        println!("[{verdict}] {}", claim.text);
    }
    Ok(())
}
