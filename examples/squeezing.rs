//! The paper's App. E squeezing figure: `cargo run --release --example squeezing`.
//!
//! Writes `plots/squeezing.csv` and `plots/squeezing.png`, then prints for every case
//! how many classes rose, what happened to the pushed class and to y*, and the entropy.

use std::error::Error;
use std::path::Path;

use learning_dynamics::experiments::{find, squeezing};

fn main() -> Result<(), Box<dyn Error>> {
    let out = Path::new("plots");
    let report = find("squeezing")?.run(None, out)?;
    let result = squeezing::run(squeezing::DEFAULT_SEED)?;
    for case in &result.cases {
        println!("{:<30} {}", case.id, case.squeeze.summary());
    }
    for claim in &report.claims {
        println!(
            "[{}] {}",
            if claim.holds { "holds" } else { "FAILS" },
            claim.text
        );
    }
    for file in &report.files {
        println!("wrote {}", file.display());
    }
    Ok(())
}
