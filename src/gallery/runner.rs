//! Running a plan: validate the configuration and its memory estimate, take the output
//! directory's lock, run, check every output path before the first write, write the
//! tables, figures and configuration, rerun the claims on the robustness seeds, and
//! report.

use std::path::{Path, PathBuf};

use toml::Value;

use super::plan::{Plan, Runner};
use super::registry::Figures;
use super::report::Report;
use crate::error::{Error, Result};
use crate::experiments::{Claim, Experiment, Key, Settings, Table, Tally, Valid};
use crate::io::{DirLock, check_outputs, remove_if_present, write_atomic, write_csv};

impl<E: Experiment> Runner for Figures<E> {
    fn keys(&self) -> Vec<Key> {
        E::Config::keys()
    }

    fn defaults(&self) -> Result<Vec<(String, Value)>> {
        E::Config::default().flat()
    }

    fn memory(&self, plan: &Plan) -> Result<(&'static str, Option<u128>)> {
        Ok((
            E::Config::MEMORY_KEYS,
            configured::<E>(plan)?.memory_bytes(),
        ))
    }

    fn execute(
        &self,
        plan: &Plan,
        out: Option<&Path>,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Report> {
        let config = configured::<E>(plan)?;
        crate::error::check_memory(E::Config::MEMORY_KEYS, config.memory_bytes(), plan.budget)?;
        let _lock = match out {
            Some(out) if !plan.locked_by_caller => Some(DirLock::acquire(out)?),
            _ => None,
        };
        progress(&format!("{}: seed {}", plan.name, plan.seed));
        let data = E::run(&config, plan.seed)?;
        let tables = E::tables(&data);
        let files = match out {
            Some(out) => self.write(plan, &data, &tables, out)?,
            None => Vec::new(),
        };
        let claims = E::claims(&data);
        let mut counts = vec![0usize; claims.len()];
        let started = std::time::Instant::now();
        for seed in 0..plan.robustness_seeds {
            // After the first rerun, an estimate of the time left (on a terminal only).
            let left = match seed {
                0 => String::new(),
                done => {
                    let each = started.elapsed().as_secs_f64() / done as f64;
                    let rest = (plan.robustness_seeds - done) as f64 * each;
                    format!(" (about {rest:.0} s left)")
                }
            };
            progress(&format!(
                "{}: robustness seed {}/{}{left}",
                plan.name,
                seed + 1,
                plan.robustness_seeds
            ));
            for (count, claim) in counts.iter_mut().zip(E::claims(&E::rerun(&config, seed)?)) {
                *count += usize::from(claim.holds);
            }
        }
        let claims = claims
            .into_iter()
            .zip(counts)
            .map(|(c, n)| Claim {
                reruns: (plan.robustness_seeds > 0)
                    .then(|| Tally::of(n, plan.robustness_seeds as usize)),
                text: match plan.robustness_seeds {
                    0 => format!("{} [not rerun on other seeds]", c.text),
                    1 => format!("{} [rerun on seed 0: holds on {n}/1]", c.text),
                    seeds => format!(
                        "{} [rerun on seeds 0–{}: holds on {n}/{seeds}]",
                        c.text,
                        seeds - 1
                    ),
                },
                ..c
            })
            .collect();
        if let Some(config_path) = files.last() {
            write_atomic(config_path, plan.to_toml().as_bytes())?;
        }
        Ok(Report {
            name: plan.name.clone(),
            seeds: run_seeds(plan),
            files,
            claims,
            tables,
        })
    }
}

impl<E: Experiment> Figures<E> {
    /// Writes the tables and figures of a run to `out` after checking every path, and
    /// returns the run's files with its configuration last (written after the reruns).
    /// The configuration describes the whole set: the old one goes before the first file
    /// is replaced, the new one comes last. A directory without one holds an incomplete
    /// set (a run that failed or was killed midway).
    fn write(
        &self,
        plan: &Plan,
        data: &E::Data,
        tables: &[Table],
        out: &Path,
    ) -> Result<Vec<PathBuf>> {
        let config_path = out.join(format!("{}.config.toml", plan.name));
        let csv_paths: Vec<PathBuf> = tables
            .iter()
            .map(|t| out.join(format!("{}.csv", t.name)))
            .collect();
        let figure_paths: Vec<PathBuf> = self.0.iter().map(|(file, _)| out.join(file)).collect();
        let mut files: Vec<PathBuf> = csv_paths.iter().chain(&figure_paths).cloned().collect();
        files.push(config_path.clone());
        let outputs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
        let inputs: Vec<&Path> = plan.sources.iter().map(PathBuf::as_path).collect();
        check_outputs(&outputs, &inputs)?;
        remove_if_present(&config_path)?;
        for (table, path) in tables.iter().zip(&csv_paths) {
            write_csv(path, &table.header(), table.rows())?;
        }
        for ((_, draw), path) in self.0.iter().zip(&figure_paths) {
            draw(data, path)?;
        }
        Ok(files)
    }
}

/// The plan's configuration of `E`, checked.
fn configured<E: Experiment>(plan: &Plan) -> Result<Valid<E::Config>> {
    let config: E::Config = plan
        .table()
        .try_into()
        .map_err(|e| Error::InvalidArgument(format!("configuration: {e}")))?;
    Valid::new(config)
}

/// The seeds a run's verdicts read: `seed S`, or `seeds S–T` for an experiment that trains
/// `seeds` seeds in one run (its claims count them in their text).
fn run_seeds(plan: &Plan) -> String {
    let covered = plan
        .table()
        .get("seeds")
        .and_then(Value::as_integer)
        .unwrap_or(1);
    match covered {
        1 => format!("seed {}", plan.seed),
        n => format!(
            "seeds {}–{}",
            plan.seed,
            plan.seed.saturating_add(n as u64 - 1)
        ),
    }
}
