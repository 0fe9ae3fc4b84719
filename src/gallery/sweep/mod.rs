//! Sweeps: one experiment over a grid of settings and a range of seeds, run in parallel,
//! each run into a folder of its own, with every claim counted per cell over the seeds.
//!
//! The runs are the cells of the grid (the Cartesian product of the `--grid` keys, the
//! first key slowest) times the seeds `A..B`, numbered in that order; `--shard I/N` takes
//! the runs whose number is `I` mod `N`. Each run is a [`Plan`] of its own: the base
//! configuration, the cell's values, its seed, no robustness reruns, and `seeds = 1` for
//! the experiments that cover several seeds per run, so that each seed is counted once.
//! A run writes to `DIR/CELL/seed-S/` what `ldyn run` writes, and then its record:
//! `claims.csv` (the experiment, each claim's id, whether it holds, its text), or `error.txt` if it
//! failed. The pooled files are built from the records alone, so a sweep and the merge of
//! its shards give the same bytes: `sweep_claims.csv`, `sweep_summary.csv`, `sweep.png`,
//! and `sweep.toml`, which records what was swept and lets a merge refuse shards of
//! different sweeps.

//!
//! This module is the sweep's plan (its grid, cells, seeds, shard and runs); [`run`] runs
//! it and pools the records, [`merge`](mod@merge) pools the shards of one sweep.

mod merge;
mod run;

use std::path::{Path, PathBuf};

use super::plan::Plan;
use crate::error::{Error, Result, quote};

pub use merge::merge;

/// The most runs one sweep may hold.
pub const MAX_RUNS: u64 = 100_000;

/// The keys a sweep sets itself, which a grid may not vary nor `--set` set.
const OWN_KEYS: [&str; 3] = ["seed", "robustness_seeds", "seeds"];

/// The longest cell name, a folder name of every run in the cell (the usual file-system
/// limit, in bytes).
const MAX_CELL_NAME: usize = 255;

/// Refuses a `--set KEY=VALUE` of a sweep that sets a key the sweep sets itself.
///
/// # Errors
/// Naming the key and what sets it.
pub fn check_set(assignment: &str) -> Result<()> {
    let key = assignment
        .split_once('=')
        .map_or(assignment, |(k, _)| k)
        .trim();
    match OWN_KEYS.contains(&key) {
        true => Err(Error::InvalidArgument(format!(
            "--set cannot set {key} in a sweep: the sweep sets it (use --seeds)"
        ))),
        false => Ok(()),
    }
}

/// One experiment over a grid of settings and a range of seeds.
#[derive(Clone, Debug)]
pub struct Sweep {
    base: Plan,
    grid: Vec<(String, Vec<String>)>,
    cells: Vec<String>,
    seeds: (u64, u64),
    shard: Option<(u64, u64)>,
}

/// One run of a sweep: its number in the sweep, its cell and its seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunId {
    /// Its place in the sweep's order (cells, then seeds).
    pub index: u64,
    /// The cell's place in [`Sweep::cells`].
    pub cell: usize,
    /// The seed.
    pub seed: u64,
}

impl Sweep {
    /// A sweep of `base` (its `--config` and `--set` applied) over `grids`
    /// (`KEY=V1,V2,…`, each value checked as `--set` checks it), `seeds` (`A..B`, default
    /// the plan's seed and the four after it) and `shard` (`I/N`).
    ///
    /// # Errors
    /// A malformed grid, seed range or shard; a key the sweep sets itself, given twice,
    /// or a value out of its key's range; more than [`MAX_RUNS`] runs.
    pub fn new(
        base: Plan,
        grids: &[String],
        seeds: Option<&str>,
        shard: Option<&str>,
    ) -> Result<Self> {
        let mut grid: Vec<(String, Vec<String>)> = Vec::new();
        for assignment in grids {
            if assignment.contains(char::is_control) {
                return Err(Error::InvalidArgument(format!(
                    "--grid '{}' holds a control character (a tab, carriage return or newline); give its values as --set takes them",
                    quote(assignment)
                )));
            }
            let (key, values) = assignment.split_once('=').ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "--grid expects KEY=V1,V2,…, got '{}'",
                    quote(assignment)
                ))
            })?;
            let key = key.trim().to_string();
            if OWN_KEYS.contains(&key.as_str()) {
                return Err(Error::InvalidArgument(format!(
                    "--grid cannot vary {key}: the sweep sets it (use --seeds)"
                )));
            }
            if grid.iter().any(|(k, _)| *k == key) {
                return Err(Error::InvalidArgument(format!(
                    "--grid names {} twice",
                    quote(&key)
                )));
            }
            let values: Vec<String> = values.split(',').map(|v| v.trim().to_string()).collect();
            // Each value as the plan holds it: one value spelled two ways is one cell.
            let mut parsed: Vec<String> = Vec::new();
            for (i, value) in values.iter().enumerate() {
                if value.contains(['/', ';', '\\']) || value.starts_with('.') {
                    return Err(Error::InvalidArgument(format!(
                        "--grid value '{}' of {} cannot name a folder",
                        quote(value),
                        quote(&key)
                    )));
                }
                if values[..i].contains(value) {
                    return Err(Error::InvalidArgument(format!(
                        "--grid lists {}={} twice",
                        quote(&key),
                        quote(value)
                    )));
                }
                let mut plan = base.clone();
                plan.set(&format!("{key}={value}"))?;
                let toml = plan.to_toml();
                if let Some(j) = parsed.iter().position(|p| *p == toml) {
                    return Err(Error::InvalidArgument(format!(
                        "--grid lists {}={} and {}={}, which are the same value",
                        quote(&key),
                        quote(&values[j]),
                        quote(&key),
                        quote(value)
                    )));
                }
                parsed.push(toml);
            }
            grid.push((key, values));
        }
        let seeds = match seeds {
            Some(text) => parse_range(text)?,
            None => (base.seed(), base.seed().saturating_add(5)),
        };
        let shard = shard.map(parse_shard).transpose()?;
        let cells = grid
            .iter()
            .try_fold(1u64, |n, (_, v)| n.checked_mul(v.len() as u64));
        let runs = cells.and_then(|c| c.checked_mul(seeds.1 - seeds.0));
        if runs.is_none_or(|r| r > MAX_RUNS) {
            return Err(Error::InvalidArgument(format!(
                "the sweep would hold more than {MAX_RUNS} runs (cells times seeds)"
            )));
        }
        let cells = cell_names(&grid);
        if let Some(long) = cells.iter().find(|c| c.len() > MAX_CELL_NAME) {
            return Err(Error::InvalidArgument(format!(
                "the grid's cell '{}' would be a folder name of {} bytes, more than the {MAX_CELL_NAME} a file system allows; shorten the --grid values",
                quote(long),
                long.len()
            )));
        }
        let mut sweep = Sweep {
            base,
            cells,
            grid,
            seeds,
            shard,
        };
        sweep.base.set_seed(seeds.0)?;
        sweep.base.set("robustness_seeds=0")?;
        if sweep.base.has_key("seeds") {
            sweep.base.set("seeds=1")?;
        }
        Ok(sweep)
    }

    /// The experiment's name.
    pub fn name(&self) -> &str {
        self.base.name()
    }

    /// The cells' names, in order: `key=value` for each grid key, joined by `;`, or
    /// `default` without a grid.
    pub fn cells(&self) -> &[String] {
        &self.cells
    }

    /// Every run of the sweep, in order (all shards).
    pub fn all_runs(&self) -> Vec<RunId> {
        let seeds = self.seeds.1 - self.seeds.0;
        (0..self.cells.len())
            .flat_map(|cell| {
                (0..seeds).map(move |k| RunId {
                    index: cell as u64 * seeds + k,
                    cell,
                    seed: self.seeds.0 + k,
                })
            })
            .collect()
    }

    /// The runs of this sweep's shard (all of them without `--shard`).
    pub fn runs(&self) -> Vec<RunId> {
        let mut runs = self.all_runs();
        if let Some((i, n)) = self.shard {
            runs.retain(|r| r.index % n == i);
        }
        runs
    }

    /// The plan of one run.
    ///
    /// # Errors
    /// As [`Plan::set`] (the grid's values were checked when the sweep was made).
    pub fn plan(&self, run: &RunId) -> Result<Plan> {
        let mut plan = self.base.clone();
        for assignment in self.cells[run.cell].split(';').filter(|a| a.contains('=')) {
            plan.set(assignment)?;
        }
        plan.set_seed(run.seed)?;
        Ok(plan)
    }

    /// The folder of one run under `out`: `CELL/seed-S`.
    pub fn folder(&self, out: &Path, run: &RunId) -> PathBuf {
        out.join(&self.cells[run.cell])
            .join(format!("seed-{}", run.seed))
    }
}

/// The names of the grid's cells (see [`Sweep::cells`]).
fn cell_names(grid: &[(String, Vec<String>)]) -> Vec<String> {
    let mut cells = vec![Vec::new()];
    for (key, values) in grid {
        cells = cells
            .into_iter()
            .flat_map(|cell: Vec<String>| {
                values.iter().map(move |v| {
                    let mut next = cell.clone();
                    next.push(format!("{key}={v}"));
                    next
                })
            })
            .collect();
    }
    cells
        .into_iter()
        .map(|c| {
            if c.is_empty() {
                "default".into()
            } else {
                c.join(";")
            }
        })
        .collect()
}

/// `A..B` with `A < B ≤ i64::MAX`, as in Rust: the seeds `A, A + 1, …, B − 1`.
fn parse_range(text: &str) -> Result<(u64, u64)> {
    let expects = format!(
        "--seeds expects A..B with whole numbers A < B ≤ {} (A included, B not)",
        i64::MAX
    );
    parse_ordered_pair(text, "..", &expects, i64::MAX as u64)
}

/// `I/N` with `I < N`.
fn parse_shard(text: &str) -> Result<(u64, u64)> {
    let expects = "--shard expects I/N with whole numbers 0 ≤ I < N";
    parse_ordered_pair(text, "/", expects, u64::MAX)
}

/// Two whole numbers `a < b ≤ max` joined by `separator`; the error says what `expects`.
fn parse_ordered_pair(text: &str, separator: &str, expects: &str, max: u64) -> Result<(u64, u64)> {
    let bad = || Error::InvalidArgument(format!("{expects}, got '{}'", quote(text)));
    let (a, b) = text.split_once(separator).ok_or_else(bad)?;
    let number = |x: &str| x.trim().parse::<u64>().map_err(|_| bad());
    let (a, b) = (number(a)?, number(b)?);
    if a < b && b <= max {
        Ok((a, b))
    } else {
        Err(bad())
    }
}
