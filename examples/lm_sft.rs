//! `cargo run --release --example lm_sft`: the `lm_sft` figure of the gallery (see
//! `ldyn list`), written to `plots/` with its CSV, and its claims with the numbers measured.

use std::error::Error;
use std::path::Path;

use learning_dynamics::experiments::find;

fn main() -> Result<(), Box<dyn Error>> {
    let report = find("lm_sft")?.run(None, Path::new("plots"))?;
    print!("{}", report.render("lm_sft"));
    Ok(())
}
