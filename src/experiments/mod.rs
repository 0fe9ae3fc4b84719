//! The experiments: one module per paper figure (or group of figures that share one
//! computation), each a pure function from a configuration and a seed to data.
//!
//! An experiment implements [`Experiment`]: a typed [`Settings`] configuration with
//! documented defaults and validated ranges, `run(&Valid<Config>, seed) -> Data`, the figure's
//! qualitative [`Claim`]s checked on that data (each with its count over seeds, where
//! its verdict is one, as a [`Tally`]: never parsed from its text), and the [`Table`]s
//! that hold every number
//! its figures draw. It writes no files and draws nothing: naming, CSV writing, plots,
//! robustness reruns and reports belong to the gallery layer ([`crate::gallery`]) above.
//!
//! The language-model experiments share one world ([`lm_world`]): the synthetic
//! language, pre-training, the SFT and DPO updates, and the update rule of every DPO
//! regime; and one set of measures ([`lm_measures`]). Pre-trained models and SFT
//! checkpoints are trained once per seed in a process and shared. The experiments that
//! compare DPO runs hold them in one [`comparison::Comparison`], which owns their tables.
//!
//! The sideways rule: an experiment imports only the layer's shared modules
//! ([`settings`], [`toys`], [`lm_world`], [`lm_measures`], [`comparison`]), never another
//! experiment (`tests/layers.rs` checks it).

/// Implements [`Settings`] for a language-model experiment's configuration: its
/// flattened `world: LmConfig` (whose keys and memory estimate it takes) and the
/// experiment's own `keys`, each a [`Key`] or the keys of a flattened part
/// ([`settings::Keys`]).
macro_rules! world_settings {
    ($config:ty, [$($key:expr),* $(,)?]) => {
        impl $crate::experiments::Settings for $config {
            const MEMORY_KEYS: &'static str = $crate::experiments::lm_world::WORLD_MEMORY_KEYS;

            fn memory_bytes(&self) -> Option<u128> {
                self.world.memory_bytes()
            }

            fn check_together(&self) -> $crate::error::Result<()> {
                self.world.language.check()
            }

            fn keys() -> Vec<$crate::experiments::Key> {
                let mut keys = $crate::experiments::lm_world::world_keys();
                $(keys.extend($crate::experiments::settings::Keys::keys($key));)*
                keys
            }
        }
    };
}

pub mod comparison;
pub mod digits;
pub mod lm_ches;
pub mod lm_extend;
pub mod lm_finetune;
pub mod lm_influence;
pub mod lm_lens;
pub mod lm_losses;
pub mod lm_measures;
pub mod lm_policy;
pub mod lm_remedies;
pub mod lm_sft_length;
pub mod lm_world;
pub mod residuals;
pub mod settings;
pub mod squeezing;
mod table;
pub mod toys;

pub use settings::{Key, Range, Settings, Valid};
pub use table::{Cell, Column, Table, Values, csv_text};

use crate::error::{Error, Result};

/// A statement a figure makes, checked on the numbers of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Claim {
    /// Its stable name within the experiment (`valley`), by which tests select it.
    pub id: &'static str,
    /// The statement, with the numbers measured.
    pub text: String,
    /// Whether the numbers support it.
    pub holds: bool,
    /// On how many of the run's own seeds it holds, where its verdict is that count
    /// ([`count`]'s rule); `None` where the verdict is not one count over seeds (one seed, a
    /// median, several counts together).
    pub seeds: Option<Tally>,
    /// On how many robustness reruns it holds (set by the gallery when it reruns them).
    pub reruns: Option<Tally>,
}

impl Claim {
    /// The claim `id`, which holds iff `holds`, stated as `text`.
    pub fn new(id: &'static str, holds: bool, text: String) -> Self {
        Claim {
            id,
            text,
            holds,
            seeds: None,
            reruns: None,
        }
    }

    /// The claim `id` decided per seed: it holds as `seeds` does.
    pub fn counted(id: &'static str, seeds: Tally, text: String) -> Self {
        Claim {
            seeds: Some(seeds),
            ..Claim::new(id, seeds.holds, text)
        }
    }
}

/// How many of `items` satisfy `test`, and whether that is all of them but at most one
/// (and at least one): the rule by which a per-seed claim holds.
pub fn count<T>(items: &[T], test: impl Fn(&T) -> bool) -> Tally {
    Tally::of(items.iter().filter(|p| test(p)).count(), items.len())
}

/// The outcome of [`count`]: it holds on `k` of `n` seeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tally {
    /// Seeds on which the test held.
    pub k: usize,
    /// Seeds counted.
    pub n: usize,
    /// Whether the claim holds: on all but at most one seed, and on one at least.
    pub holds: bool,
}

impl Tally {
    /// `k` of `n`, with [`count`]'s rule.
    pub fn of(k: usize, n: usize) -> Self {
        Tally {
            k,
            n,
            holds: k + 1 >= n && k > 0,
        }
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

/// Every claim of a sweep counted per cell over the seeds: what `ldyn sweep` pools, its
/// figure draws and its merge rebuilds.
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
    pub fn failures(&self, total: usize) -> Result<()> {
        let failed: usize = self.failed.iter().map(|f| f.0).sum();
        match failed {
            0 => Ok(()),
            failed => Err(Error::RunsFailed { failed, total }),
        }
    }
}

/// The claim called `id` among `claims`.
///
/// # Panics
/// If there is none: a test asked for a claim the experiment does not make.
pub fn claim<'a>(claims: &'a [Claim], id: &str) -> &'a Claim {
    claims
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no claim '{id}'"))
}

/// A reproducible computation behind one or more figures.
pub trait Experiment {
    /// The configuration, with documented defaults and valid ranges.
    type Config: Settings;
    /// Everything one run measured.
    type Data: 'static;

    /// Runs the experiment with `seed`, on a configuration already checked
    /// ([`Valid::new`]).
    ///
    /// # Errors
    /// If a step fails.
    fn run(config: &Valid<Self::Config>, seed: u64) -> Result<Self::Data>;

    /// The run of a robustness rerun on `seed`, whose claims alone are read: [`run`] by
    /// default; an experiment whose figures draw more than its claims read may skip it.
    ///
    /// # Errors
    /// As [`run`].
    ///
    /// [`run`]: Experiment::run
    fn rerun(config: &Valid<Self::Config>, seed: u64) -> Result<Self::Data> {
        Self::run(config, seed)
    }

    /// The figures' qualitative claims, each checked on `data`.
    fn claims(data: &Self::Data) -> Vec<Claim>;

    /// Every number the figures draw, as CSV tables.
    fn tables(data: &Self::Data) -> Vec<Table>;
}
