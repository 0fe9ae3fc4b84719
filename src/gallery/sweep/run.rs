//! Running a sweep: its runs on threads (each within its share of the memory budget,
//! into a folder of its own, leaving its record), then the pooled files built from the
//! records alone.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{RunId, Sweep};
use crate::error::{Error, Result, check_memory, quote};
use crate::experiments::Pooled;
use crate::gallery::records::{CLAIMS, ERROR, Outcome, read_outcome};
use crate::io::{
    DirLock, check_outputs, csv_field, read_input, remove_if_present, write_atomic, write_csv,
};

impl Sweep {
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
    pub(super) fn check_pooled_outputs(&self, out: &Path) -> Result<()> {
        let paths = Self::pooled_paths(out);
        let outputs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
        let inputs: Vec<&Path> = self.base.sources.iter().map(PathBuf::as_path).collect();
        check_outputs(&outputs, &inputs)
    }

    /// Removes the pooled files of an earlier sweep in `out`, `sweep.toml` first.
    pub(super) fn remove_pooled(&self, out: &Path) -> Result<()> {
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
            // A stop the caller asked for ends the sweep; it is not the run's failure.
            Err(Error::Interrupted) => Err(Error::Interrupted),
            Err(e) => write_atomic(&error_path, format!("{e}\n").as_bytes()),
        }
    }

    /// Reads every run's record from `folder(run)` and counts the claims per cell.
    ///
    /// # Errors
    /// If a run left no record (it never ran, or was killed), or a record is malformed.
    pub(super) fn pool(
        &self,
        runs: &[RunId],
        folder: &dyn Fn(&RunId) -> PathBuf,
    ) -> Result<Pooled> {
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

    /// Writes the pooled files into `out`: `sweep_claims.csv`, `sweep_summary.csv` (if
    /// the experiment has a summary), `sweep.png` and, last, `sweep.toml`.
    pub(super) fn write(&self, out: &Path, pooled: &Pooled) -> Result<()> {
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
