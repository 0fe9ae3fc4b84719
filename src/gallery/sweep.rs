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

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use super::plan::Plan;
use super::records::{CLAIMS, ERROR, Outcome, read_outcome};
use crate::error::{Error, Result, check_memory, quote};
use crate::io::{
    DirLock, check_outputs, csv_field, read_input, remove_if_present, write_atomic, write_csv,
};

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

/// What `DIR/sweep.toml` records: enough to refuse a merge of different sweeps. Read
/// back, it is checked as the command line is ([`Record::read`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    experiment: String,
    seeds: Seeds,
    grid: Vec<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shard: Option<Vec<u64>>,
    settings: String,
}

/// A record's seeds: `"A..B"` as `--seeds` takes them, or `[A, B]`, as the records written
/// before 2026-12-07 hold them (merge still reads those, as the same range).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum Seeds {
    Written(String),
    Pair(Vec<u64>),
}

impl Record {
    /// The record in `dir/sweep.toml`, its seeds a range `A..B` and its shard `I/N` as
    /// the command line takes them.
    ///
    /// # Errors
    /// If the file cannot be read, is not a record, or holds a range or shard the sweep
    /// command would refuse; naming the file and the line.
    fn read(dir: &Path) -> Result<Record> {
        let path = dir.join("sweep.toml");
        let text = read_input(&path, "a sweep's record")?;
        let record: Record = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map_or(1, |s| text[..s.start].lines().count().max(1));
            Error::Parse {
                path: path.clone(),
                line,
                message: e.message().to_string(),
            }
        })?;
        let bad = |message: String| Error::Parse {
            path: path.clone(),
            line: 1,
            message,
        };
        let (a, b) = parse_range(&record.range()).map_err(|e| bad(e.to_string()))?;
        let mut record = record;
        record.seeds = Seeds::Written(format!("{a}..{b}"));
        match record.shard.as_deref() {
            None => {}
            Some([i, n]) => {
                parse_shard(&format!("{i}/{n}")).map_err(|e| bad(e.to_string()))?;
            }
            Some(_) => return Err(bad("shard must be [I, N]".into())),
        }
        Ok(record)
    }

    /// The seeds as `--seeds` takes them.
    fn range(&self) -> String {
        match &self.seeds {
            Seeds::Written(range) => range.clone(),
            Seeds::Pair(pair) => {
                let ends: Vec<String> = pair.iter().map(u64::to_string).collect();
                ends.join("..")
            }
        }
    }

    /// `(I, N)` of a shard's record.
    fn shard(&self) -> Option<(u64, u64)> {
        self.shard.as_deref().map(|s| (s[0], s[1]))
    }
}

/// Every claim counted per cell over the seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct Pooled {
    /// The cells' names, in order.
    pub cells: Vec<String>,
    /// The claims' ids, in the order the experiment states them.
    pub claims: Vec<String>,
    /// `holds[cell][claim]`: on how many seeds the claim holds.
    pub holds: Vec<Vec<usize>>,
    /// Per cell, the seeds whose run succeeded.
    pub seeds: Vec<usize>,
    /// Per cell, the runs that failed, and the first one's message.
    pub failed: Vec<(usize, Option<String>)>,
    /// Every successful run's summary rows: `(cell, seed, metric, value)`.
    pub summary: Vec<(usize, u64, String, String)>,
}

impl Pooled {
    /// `Ok` if no pooled run failed; otherwise [`Error::RunsFailed`] with the count of the
    /// `total` runs, so that a scheduler sees the failure in the exit status.
    fn failures(&self, total: usize) -> Result<()> {
        let failed: usize = self.failed.iter().map(|f| f.0).sum();
        match failed {
            0 => Ok(()),
            failed => Err(Error::RunsFailed { failed, total }),
        }
    }
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

    /// Runs the shard's runs on `jobs` threads into `out`, then writes the pooled files;
    /// `progress(done, total)` hears of every run that ends.
    ///
    /// # Errors
    /// If `jobs` runs would not fit the memory budget, `out` is locked or cannot be
    /// written, or (after the pooled files are written) if any run failed
    /// ([`Error::RunsFailed`]).
    pub fn execute(
        &self,
        out: &Path,
        jobs: usize,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<Pooled> {
        let runs = self.runs();
        let jobs = jobs.clamp(1, runs.len().max(1));
        let budget = self.budget_per_run(jobs)?;
        self.check_pooled_outputs(out)?;
        let _lock = DirLock::acquire(out)?;
        // The record of what was swept goes before the first run record is replaced, so
        // that a sweep that stops midway cannot be merged under the old settings.
        self.remove_pooled(out)?;
        let next = AtomicUsize::new(0);
        let done = AtomicUsize::new(0);
        let work = || -> Result<()> {
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(run) = runs.get(k) else {
                    return Ok(());
                };
                self.run_one(out, run, budget)?;
                progress(done.fetch_add(1, Ordering::Relaxed) + 1, runs.len());
            }
        };
        let results: Vec<Result<()>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..jobs).map(|_| scope.spawn(work)).collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        results.into_iter().collect::<Result<()>>()?;
        let pooled = self.pool(&runs, &|run| self.folder(out, run))?;
        self.write(out, &pooled)?;
        pooled.failures(runs.len())?;
        Ok(pooled)
    }

    /// The pooled files of `out`, `sweep.toml` first.
    fn pooled_paths(out: &Path) -> [PathBuf; 4] {
        [
            "sweep.toml",
            "sweep_claims.csv",
            "sweep_summary.csv",
            "sweep.png",
        ]
        .map(|f| out.join(f))
    }

    /// Checks the pooled files' paths before the first run, as every command checks its
    /// outputs before the first write.
    fn check_pooled_outputs(&self, out: &Path) -> Result<()> {
        let paths = Self::pooled_paths(out);
        let outputs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
        let inputs: Vec<&Path> = self.base.sources.iter().map(PathBuf::as_path).collect();
        check_outputs(&outputs, &inputs)
    }

    /// Removes the pooled files of an earlier sweep in `out`, `sweep.toml` first.
    fn remove_pooled(&self, out: &Path) -> Result<()> {
        Self::pooled_paths(out)
            .iter()
            .try_for_each(|p| remove_if_present(p))
    }

    /// Refuses `jobs` runs at once whose memory estimate, the largest of any cell's,
    /// would not fit the budget; returns the budget of one run.
    fn budget_per_run(&self, jobs: usize) -> Result<u64> {
        let mut largest: (&str, Option<u128>) = ("", Some(0));
        for cell in 0..self.cells.len() {
            let (keys, bytes) = self
                .plan(&RunId {
                    index: 0,
                    cell,
                    seed: self.seeds.0,
                })?
                .memory()?;
            largest = match (largest.1, bytes) {
                (Some(a), Some(b)) if a >= b => largest,
                _ => (keys, bytes),
            };
        }
        let total = largest.1.and_then(|b| b.checked_mul(jobs as u128));
        let flags = format!("--jobs {jobs} runs at once, by {},", largest.0);
        check_memory(&flags, total, self.base.budget())?;
        Ok(self.base.budget() / jobs as u64)
    }

    /// Runs one run into its folder and records its claims, or its error, holding the
    /// folder's lock from before the old record goes: a folder another process holds is
    /// not touched (the sweep stops there, naming it).
    fn run_one(&self, out: &Path, run: &RunId, budget: u64) -> Result<()> {
        let folder = self.folder(out, run);
        let _lock = DirLock::acquire(&folder)?;
        let (claims_path, error_path) = (folder.join(CLAIMS), folder.join(ERROR));
        for stale in [&claims_path, &error_path] {
            remove_if_present(stale)?;
        }
        let report = self.plan(run).and_then(|mut plan| {
            plan.set_memory_budget(budget);
            plan.locked_by_caller = true;
            plan.execute(&folder, &mut |_| {})
        });
        match report {
            Ok(report) => write_csv(
                &claims_path,
                "experiment,claim_id,holds,text",
                report.claims.iter().map(|c| {
                    let text = csv_field(&c.text);
                    format!("{},{},{},{text}", self.name(), c.id, c.holds)
                }),
            ),
            Err(e) => write_atomic(&error_path, format!("{e}\n").as_bytes()),
        }
    }

    /// Reads every run's record from `folder(run)` and counts the claims per cell.
    ///
    /// # Errors
    /// If a run left no record (it never ran, or was killed), or a record is malformed.
    fn pool(&self, runs: &[RunId], folder: &dyn Fn(&RunId) -> PathBuf) -> Result<Pooled> {
        let cells = self.cells.clone();
        let outcomes: Vec<Outcome> = runs
            .iter()
            .map(|run| self.read_checked(run, &folder(run)))
            .collect::<Result<_>>()?;
        // Every successful run states the same claims, in the same order.
        let mut claims: Vec<String> = Vec::new();
        for (run, outcome) in runs.iter().zip(&outcomes) {
            let ids: Vec<String> = outcome.claims.iter().map(|c| c.0.clone()).collect();
            if outcome.error.is_some() {
                continue;
            }
            if claims.is_empty() {
                claims = ids;
            } else if ids != claims {
                return Err(Error::InvalidArgument(format!(
                    "{} states other claims than the sweep's other runs (another experiment's, or a damaged record)",
                    quote(&folder(run).join(CLAIMS).display().to_string())
                )));
            }
        }
        let mut pooled = Pooled {
            holds: vec![vec![0; claims.len()]; cells.len()],
            seeds: vec![0; cells.len()],
            failed: vec![(0, None); cells.len()],
            summary: Vec::new(),
            cells,
            claims,
        };
        for (run, outcome) in runs.iter().zip(&outcomes) {
            let c = run.cell;
            if let Some(error) = &outcome.error {
                pooled.failed[c].0 += 1;
                pooled.failed[c].1.get_or_insert_with(|| error.clone());
                continue;
            }
            pooled.seeds[c] += 1;
            for (metric, value) in &outcome.summary {
                pooled
                    .summary
                    .push((c, run.seed, metric.clone(), value.clone()));
            }
            for (id, holds) in &outcome.claims {
                let k = pooled
                    .claims
                    .iter()
                    .position(|x| x == id)
                    .expect("collected");
                pooled.holds[c][k] += usize::from(*holds);
            }
        }
        Ok(pooled)
    }

    /// The record of `run` in `folder` ([`read_outcome`]); a successful run's
    /// configuration must be the one this sweep gives it, so that a merge never pools runs
    /// of other settings under this sweep's.
    fn read_checked(&self, run: &RunId, folder: &Path) -> Result<Outcome> {
        let outcome = read_outcome(folder, self.name())?;
        if outcome.error.is_none() {
            let path = folder.join(format!("{}.config.toml", self.name()));
            let written = read_input(&path, "a run's configuration")?;
            if written != self.plan(run)?.to_toml() {
                return Err(Error::InvalidArgument(format!(
                    "{} is not the configuration this sweep gives its run (its sweep.toml was edited, or the run is another sweep's)",
                    quote(&path.display().to_string())
                )));
            }
        }
        Ok(outcome)
    }

    /// What `sweep.toml` records of this sweep.
    fn record(&self) -> Record {
        Record {
            experiment: self.name().to_string(),
            seeds: Seeds::Written(format!("{}..{}", self.seeds.0, self.seeds.1)),
            grid: self
                .grid
                .iter()
                .map(|(k, v)| {
                    std::iter::once(k.clone())
                        .chain(v.iter().cloned())
                        .collect()
                })
                .collect(),
            shard: self.shard.map(|(i, n)| vec![i, n]),
            settings: self.base.to_toml(),
        }
    }

    /// Writes the pooled files into `out`: `sweep_claims.csv`, `sweep_summary.csv` (if
    /// the experiment has a summary), `sweep.png` and, last, `sweep.toml`.
    fn write(&self, out: &Path, pooled: &Pooled) -> Result<()> {
        let toml_path = out.join("sweep.toml");
        remove_if_present(&toml_path)?;
        let mut rows = Vec::new();
        for (c, cell) in pooled.cells.iter().enumerate() {
            let (failed, error) = &pooled.failed[c];
            let error = csv_field(error.as_deref().unwrap_or(""));
            let claims: Vec<(&str, usize)> = if pooled.claims.is_empty() {
                vec![("", 0)]
            } else {
                pooled
                    .claims
                    .iter()
                    .map(String::as_str)
                    .zip(pooled.holds[c].iter().copied())
                    .collect()
            };
            for (id, holds) in claims {
                rows.push(format!(
                    "{},{id},{holds},{},{failed},{error}",
                    csv_field(cell),
                    pooled.seeds[c]
                ));
            }
        }
        write_csv(
            &out.join("sweep_claims.csv"),
            "cell,claim_id,holds,seeds,failed,error",
            rows,
        )?;
        let summary_path = out.join("sweep_summary.csv");
        if pooled.summary.is_empty() {
            // No run had a summary: an old sweep's file would not describe this one.
            remove_if_present(&summary_path)?;
        } else {
            let rows = pooled.summary.iter().map(|(c, seed, metric, value)| {
                format!(
                    "{},{seed},{},{}",
                    csv_field(&pooled.cells[*c]),
                    csv_field(metric),
                    csv_field(value)
                )
            });
            write_csv(&summary_path, "cell,seed,metric,value", rows)?;
        }
        let keys: Vec<&str> = self.grid.iter().map(|(k, _)| k.as_str()).collect();
        let title = format!(
            "{}: on how many seeds each claim holds, per cell (seeds {} to {})",
            self.name(),
            self.seeds.0,
            self.seeds.1 - 1
        );
        crate::plot::sweep::draw(pooled, (&keys, &title), &out.join("sweep.png"))?;
        let text = toml::to_string(&self.record())
            .map_err(|e| Error::InvalidArgument(format!("sweep.toml: {e}")))?;
        write_atomic(
            &toml_path,
            format!("# ldyn sweep: what the runs below this directory swept\n{text}").as_bytes(),
        )
    }
}

/// Builds the pooled files of a sharded sweep into `out` from the shards' directories
/// `dirs`, each written by `ldyn sweep … --shard I/N`, after checking that they are
/// shards of one sweep (the same experiment, seeds, grid and settings) and that together
/// they hold every run.
///
/// # Errors
/// Shards of different sweeps, a run no shard holds, a damaged record, `out` among
/// `dirs`, or a file that cannot be read or written; and, after the pooled files are
/// written, if any pooled run failed ([`Error::RunsFailed`], as the sweep itself).
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<Pooled> {
    let records: Vec<Record> = dirs
        .iter()
        .map(|d| Record::read(d))
        .collect::<Result<_>>()?;
    let first = records
        .first()
        .ok_or_else(|| Error::InvalidArgument("sweep merge needs at least one directory".into()))?;
    for (dir, record) in dirs.iter().zip(&records).skip(1) {
        let same = |r: &Record| Record {
            shard: None,
            ..r.clone()
        };
        if same(record) != same(first) {
            return Err(Error::InvalidArgument(format!(
                "{} holds another sweep than {} (experiment, seeds, grid or settings differ)",
                quote(&dir.join("sweep.toml").display().to_string()),
                quote(&dirs[0].join("sweep.toml").display().to_string())
            )));
        }
    }
    if dirs.iter().any(|d| crate::io::same_file(d, out)) {
        return Err(Error::InvalidArgument(format!(
            "the merged sweep's --out {} is one of the shards' directories",
            quote(&out.display().to_string())
        )));
    }
    let mut base: Plan = first.experiment.parse()?;
    base.apply_toml(&first.settings, &dirs[0].join("sweep.toml"))?;
    let grid: Vec<String> = first
        .grid
        .iter()
        .map(|g| format!("{}={}", g[0], g[1..].join(",")))
        .collect();
    let sweep = Sweep::new(base, &grid, Some(&first.range()), None)?;
    let runs = sweep.all_runs();
    let holder = |run: &RunId| -> Result<PathBuf> {
        dirs.iter()
            .zip(&records)
            .find(|(_, r)| r.shard().is_none_or(|(i, n)| run.index % n == i))
            .map(|(d, _)| sweep.folder(d, run))
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "no shard holds run {} (cell {}, seed {}): merge every shard of the sweep",
                    run.index,
                    quote(&sweep.cells()[run.cell]),
                    run.seed
                ))
            })
    };
    let folders: Vec<PathBuf> = runs.iter().map(holder).collect::<Result<_>>()?;
    sweep.check_pooled_outputs(out)?;
    let _lock = DirLock::acquire(out)?;
    sweep.remove_pooled(out)?;
    let pooled = sweep.pool(&runs, &|run| folders[run.index as usize].clone())?;
    sweep.write(out, &pooled)?;
    pooled.failures(runs.len())?;
    Ok(pooled)
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
