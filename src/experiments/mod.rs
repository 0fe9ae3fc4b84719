//! The registry of experiments: one per paper figure, each run by name with a seed.
//!
//! An experiment module computes its results as plain data (`run(seed)`), states the
//! figure's qualitative claims and checks them on that data (`claims()`), and writes its
//! CSV and PNG files (`write(seed, out)`). The CLI's `ldyn run NAME` and `ldyn gallery`
//! and the examples all go through [`Experiment::run`].

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub mod digits;
pub mod lm;
pub mod squeezing;

/// A statement a figure makes, checked on the numbers of one run.
#[derive(Clone, Debug)]
pub struct Claim {
    /// The statement, with the numbers measured.
    pub text: String,
    /// Whether the numbers support it.
    pub holds: bool,
}

/// Reruns an experiment's claims on seeds `0..seeds` and appends to each claim of
/// `claims` how many of those seeds it holds for: a claim that holds for one seed only
/// is a finding to report, not a result.
pub fn with_robustness(
    claims: Vec<Claim>,
    seeds: u64,
    claims_for: impl Fn(u64) -> Result<Vec<Claim>>,
) -> Result<Vec<Claim>> {
    let mut counts = vec![0usize; claims.len()];
    for seed in 0..seeds {
        for (count, claim) in counts.iter_mut().zip(claims_for(seed)?) {
            *count += usize::from(claim.holds);
        }
    }
    Ok(claims
        .into_iter()
        .zip(counts)
        .map(|(c, n)| Claim {
            text: format!("{} [holds for {n}/{seeds} seeds]", c.text),
            holds: c.holds,
        })
        .collect())
}

/// What running an experiment produced.
#[derive(Clone, Debug)]
pub struct Report {
    /// The files written, CSV first.
    pub files: Vec<PathBuf>,
    /// The figure's claims with the measured numbers.
    pub claims: Vec<Claim>,
}

impl Report {
    /// The gallery's text: one line for the figure (how many claims hold, the files),
    /// then one line per claim.
    pub fn render(&self, name: &str) -> String {
        let held = self.claims.iter().filter(|c| c.holds).count();
        let files: Vec<String> = self.files.iter().map(|f| f.display().to_string()).collect();
        let mut text = format!(
            "{name}: {held}/{} claims hold -> {}\n",
            self.claims.len(),
            files.join(", ")
        );
        for claim in &self.claims {
            text.push_str(&format!(
                "  [{}] {}\n",
                if claim.holds { "holds" } else { "FAILS" },
                claim.text
            ));
        }
        text
    }
}

/// A named experiment with its default seed.
pub struct Experiment {
    /// The name used by `ldyn run`.
    pub name: &'static str,
    /// The seed `ldyn gallery` uses.
    pub default_seed: u64,
    /// One line on what the figure shows.
    pub about: &'static str,
    write: fn(u64, &Path) -> Result<Report>,
}

/// Every experiment, in gallery order.
pub const EXPERIMENTS: &[Experiment] = &[
    Experiment {
        name: "squeezing",
        default_seed: squeezing::DEFAULT_SEED,
        about: "App. E: one positive/negative gradient step on a softmax, squeezing into the argmax",
        write: squeezing::write,
    },
    Experiment {
        name: "digits",
        default_seed: digits::DEFAULT_SEED,
        about: "Fig. 1 and Fig. 7 on UCI handwritten digits: one-step and accumulated influence, eNTK stability",
        write: digits::write,
    },
    Experiment {
        name: "lm_sft",
        default_seed: lm::DEFAULT_SEED,
        about: "Fig. 3: SFT on a tiny LM, mean log π of each probe family",
        write: lm::write_sft,
    },
    Experiment {
        name: "lm_dpo",
        default_seed: lm::DEFAULT_SEED,
        about: "Fig. 4: off-policy DPO from the SFT model, squeezing into the argmax",
        write: lm::write_dpo,
    },
    Experiment {
        name: "lm_peakiness",
        default_seed: lm::DEFAULT_SEED,
        about: "Fig. 9: ‖A‖²_F per family in SFT; argmax vs except_argmax in SFT and DPO",
        write: lm::write_peakiness,
    },
    Experiment {
        name: "lm_influence",
        default_seed: lm::DEFAULT_SEED,
        about: "App. C heatmap: accumulated −ηAKG per observed family and training signal",
        write: lm::write_influence,
    },
];

/// Looks an experiment up by name.
pub fn find(name: &str) -> Result<&'static Experiment> {
    EXPERIMENTS
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| Error::Unknown {
            kind: "experiment",
            name: name.into(),
            expected: EXPERIMENTS
                .iter()
                .map(|e| e.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

impl Experiment {
    /// Runs the experiment with `seed` (or its default) and writes its files to `out`.
    pub fn run(&self, seed: Option<u64>, out: &Path) -> Result<Report> {
        crate::io::ensure_dir(out)?;
        (self.write)(seed.unwrap_or(self.default_seed), out)
    }
}
