//! The paper's Figure 1 (b–d) and Figure 7 on the UCI handwritten digits:
//! `cargo run --release --example digits`.
//!
//! Writes `plots/digits_*.png` and the heatmap and eNTK CSV files, then prints each
//! claim with the number that supports or refutes it.

use std::error::Error;
use std::path::Path;

use learning_dynamics::experiments::find;

fn main() -> Result<(), Box<dyn Error>> {
    let report = find("digits")?.run(None, Path::new("plots"))?;
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
