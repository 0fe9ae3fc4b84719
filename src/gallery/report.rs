//! What running an experiment produced: its files, and its claims with the seeds each
//! verdict and count reads.

use std::path::PathBuf;

use crate::experiments::{Claim, Table};

/// What running an experiment produced.
#[derive(Clone, Debug)]
pub struct Report {
    /// The name it ran under.
    pub name: String,
    /// The seeds its verdicts read (`seed 2025`, `seeds 1024–1028`).
    pub seeds: String,
    /// The files written: CSV tables, figures, then the configuration.
    pub files: Vec<PathBuf>,
    /// The figures' claims with the measured numbers and their robustness.
    pub claims: Vec<Claim>,
    /// Every number the figures draw, one table per CSV file (`NAME.csv`).
    pub tables: Vec<Table>,
}

impl std::fmt::Display for Report {
    /// One line for the experiment (how many claims hold, the files), then one per claim:
    /// its verdict on the run's own seeds, the claim, and its count on the robustness reruns.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let held = self.claims.iter().filter(|c| c.holds).count();
        let files: Vec<String> = self.files.iter().map(|p| p.display().to_string()).collect();
        writeln!(
            f,
            "{}: {held}/{} claims hold -> {}",
            self.name,
            self.claims.len(),
            files.join(", ")
        )?;
        for claim in &self.claims {
            let verdict = if claim.holds { "holds" } else { "FAILS" };
            writeln!(f, "  [{verdict} at {}] {}", self.seeds, claim.text)?;
        }
        Ok(())
    }
}
