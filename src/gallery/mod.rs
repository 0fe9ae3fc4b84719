//! The gallery: the registry of experiments, their configurations as TOML, file naming,
//! CSV writing, figures, robustness reruns and the report.
//!
//! Every run goes the same way, whatever the experiment:
//!
//! 1. a [`Plan`] starts from the experiment's documented defaults, then applies a
//!    `--config` file and each `--set key=value` in order (each key checked against its
//!    range), then `--seed`;
//! 2. the experiment runs once with the plan's seed; its tables are written as
//!    `DIR/{table}.csv` and its figures drawn as `DIR/{figure}.png` (animations as
//!    `.gif`) from that one run;
//! 3. its claims are rerun on seeds `0..robustness_seeds` with the same configuration, and
//!    each claim reports on how many of them it holds;
//! 4. the full configuration, seed included, is written as `DIR/{name}.config.toml`, so
//!    `ldyn run NAME --config DIR/NAME.config.toml` regenerates every file beside it.
//!
//! Besides the experiment's keys, a plan has two of its own: `seed` and
//! `robustness_seeds`.
//!
//! | module | owns |
//! |---|---|
//! | `registry` | every experiment, its names and figures ([`REGISTRY`], [`Entry`]) |
//! | `plan` | a configured run ([`Plan`]): defaults, `--config`, `--set`, TOML; the type-erased `Runner` it runs through |
//! | `runner` | running a plan: writing its files, rerunning its claims |
//! | `report` | what a run produced ([`Report`]): its files and claims |
//! | `sweep` | one experiment over a grid and a seed range, pooled per cell ([`Sweep`], [`merge`]) |
//! | `records` | a sweep run's record (`claims.csv` or `error.txt`) and its strict reading |

mod plan;
mod records;
mod registry;
mod report;
mod runner;
mod sweep;

pub use plan::Plan;
pub use registry::{Draw, Entry, REGISTRY, find, names};
pub use report::Report;
pub use sweep::{MAX_RUNS, RunId, Sweep, check_set, merge};
