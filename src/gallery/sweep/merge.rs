//! A sweep's record, `sweep.toml` (what was swept, read back as strictly as the command
//! line), and the merge of a sharded sweep's directories into its pooled files.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{RunId, Sweep, parse_range, parse_shard};
use crate::error::{Error, Result, quote};
use crate::experiments::Pooled;
use crate::gallery::plan::Plan;
use crate::io::{DirLock, read_input};

/// What `DIR/sweep.toml` records: enough to refuse a merge of different sweeps. Read
/// back, it is checked as the command line is ([`Record::read`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Record {
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

impl Sweep {
    /// What `sweep.toml` records of this sweep.
    pub(super) fn record(&self) -> Record {
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
