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

use std::path::{Path, PathBuf};

use toml::Value;

use crate::error::{Error, Result, quote};
use crate::experiments::digits::{self, DigitsExperiment};
use crate::experiments::lm_ches::LmChes;
use crate::experiments::lm_extend::LmExtend;
use crate::experiments::lm_finetune::LmFinetune;
use crate::experiments::lm_influence::LmInfluence;
use crate::experiments::lm_losses::LmLosses;
use crate::experiments::lm_policy::LmPolicy;
use crate::experiments::lm_sft_length::LmSftLength;
use crate::experiments::residuals::{self, ResidualSchematic};
use crate::experiments::settings::{flatten, key_named};
use crate::experiments::squeezing::{self, Squeezing};
use crate::experiments::{Claim, Experiment, Key, Range, Settings, Valid, lm_world};
use crate::io::{DirLock, check_outputs, write_atomic, write_csv};
use crate::plot;

/// Draws one figure of an experiment's data to a path the gallery chooses.
pub type Draw<D> = fn(&D, &Path) -> Result<()>;

/// A registered experiment: a name, its defaults, and the figures drawn from its data.
pub struct Entry {
    /// The name used by `ldyn run` and in `NAME.config.toml`.
    pub name: &'static str,
    /// Other names that run this experiment (the figures it draws, where they differ).
    pub aliases: &'static [&'static str],
    /// One line on what it shows.
    pub about: &'static str,
    /// The seed `ldyn gallery` uses.
    pub default_seed: u64,
    /// How many seeds the claims are rerun on by default.
    pub robustness_seeds: u64,
    runner: &'static (dyn Runner + Sync),
}

/// What the gallery needs of an experiment, with its types erased.
trait Runner {
    fn keys(&self) -> Vec<Key>;
    fn defaults(&self) -> Result<Vec<(String, Value)>>;
    fn execute(&self, plan: &Plan, out: &Path, progress: &mut dyn FnMut(&str)) -> Result<Report>;
}

/// An experiment with the figures drawn from its data, as `(file name, draw)`: PNG
/// figures, and GIF animations.
struct Figures<E: Experiment>(&'static [(&'static str, Draw<E::Data>)]);

/// Every experiment, in gallery order.
pub static REGISTRY: &[Entry] = &[
    Entry {
        name: "squeezing",
        aliases: &[],
        about: "App. E: one positive/negative gradient step on a softmax, squeezing into the argmax",
        default_seed: squeezing::DEFAULT_SEED,
        robustness_seeds: 100,
        runner: &Figures::<Squeezing>(&[
            ("squeezing.png", plot::squeezing::draw),
            ("squeezing.gif", plot::squeezing::animation),
        ]),
    },
    Entry {
        name: "residuals",
        aliases: &[],
        about: "Fig. 2: one step from one peaky distribution under the residual of SFT, off- and on-policy DPO, IPO, SPIN, SPPO and SLiC",
        default_seed: residuals::DEFAULT_SEED,
        robustness_seeds: 100,
        runner: &Figures::<ResidualSchematic>(&[("residuals.png", plot::squeezing::residuals)]),
    },
    Entry {
        name: "digits",
        aliases: &[],
        about: "Fig. 1 and Fig. 7 on UCI handwritten digits: one-step and accumulated influence, eNTK stability",
        default_seed: digits::DEFAULT_SEED,
        robustness_seeds: 5,
        runner: &Figures::<DigitsExperiment>(&[
            ("digits_one_step.png", plot::digits::one_step),
            ("digits_accumulated.png", plot::digits::accumulated),
            ("digits_heatmap.png", plot::digits::mean_pi),
            ("digits_entk.png", plot::digits::entk),
        ]),
    },
    Entry {
        name: "lm_finetune",
        aliases: &["lm_sft", "lm_dpo", "lm_peakiness"],
        about: "Figs. 3, 4 and 9: SFT then off-policy DPO on a tiny LM, every probe family tracked",
        default_seed: lm_world::DEFAULT_SEED,
        robustness_seeds: 5,
        runner: &Figures::<LmFinetune>(&[
            ("lm_sft.png", plot::lm::sft),
            ("lm_dpo.png", plot::lm::dpo),
            ("lm_peakiness.png", plot::lm::peakiness),
        ]),
    },
    Entry {
        name: "lm_influence",
        aliases: &[],
        about: "App. C heatmap: accumulated −ηAKG per observed family and training signal",
        default_seed: lm_world::DEFAULT_SEED,
        robustness_seeds: 5,
        runner: &Figures::<LmInfluence>(&[("lm_influence.png", plot::lm::influence)]),
    },
    Entry {
        name: "lm_policy",
        aliases: &[],
        about: "§4 and App. E: off-policy, SPIN and online DPO from one SFT checkpoint, squeezing and the repeater",
        default_seed: lm_world::DEFAULT_SEED,
        // Every run already covers seeds S..S+4, and its claims count them.
        robustness_seeds: 0,
        runner: &Figures::<LmPolicy>(&[
            ("lm_policy.png", plot::policy::comparison),
            ("lm_policy.gif", plot::policy::policy_animation),
        ]),
    },
    Entry {
        name: "lm_losses",
        aliases: &[],
        about: "§3.3 in training: DPO, IPO, SLiC and SPPO off-policy from one SFT checkpoint on the same pairs, their squeezing compared",
        default_seed: lm_world::DEFAULT_SEED,
        // Every run already covers seeds S..S+4, and its claims count them.
        robustness_seeds: 0,
        runner: &Figures::<LmLosses>(&[("lm_losses.png", plot::policy::comparison)]),
    },
    Entry {
        name: "lm_sft_length",
        aliases: &[],
        about: "App. D: SFT for 1 to 16 epochs, then the same off-policy DPO: does longer SFT squeeze more?",
        default_seed: lm_world::DEFAULT_SEED,
        // Every run already covers seeds S..S+4, and its claims count them.
        robustness_seeds: 0,
        runner: &Figures::<LmSftLength>(&[("lm_sft_length.png", plot::policy::sft_length)]),
    },
    Entry {
        name: "lm_extend",
        aliases: &[],
        about: "Fig. 5 and §4.3: the extend method, SFT on (x, y⁻) too at the same token budget, then the same off-policy DPO",
        default_seed: lm_world::DEFAULT_SEED,
        // Every run already covers seeds S..S+4, and its claims count them.
        robustness_seeds: 0,
        runner: &Figures::<LmExtend>(&[("lm_extend.png", plot::policy::comparison)]),
    },
    Entry {
        name: "lm_ches",
        aliases: &[],
        about: "Razin et al. (2024): likelihood displacement of y⁺ in off-policy DPO against the pairs' CHES",
        default_seed: lm_world::DEFAULT_SEED,
        // Every run already covers seeds S..S+4, and its claims count them.
        robustness_seeds: 0,
        runner: &Figures::<LmChes>(&[("lm_ches.png", plot::lm::ches)]),
    },
];

/// Looks an experiment up by name or alias.
pub fn find(name: &str) -> Result<&'static Entry> {
    REGISTRY
        .iter()
        .find(|e| e.name == name || e.aliases.contains(&name))
        .ok_or_else(|| Error::Unknown {
            kind: "experiment",
            name: name.into(),
            expected: names().join(", "),
        })
}

impl std::str::FromStr for Plan {
    type Err = Error;

    /// The default plan of the experiment called `name` (or of which `name` is an alias).
    fn from_str(name: &str) -> Result<Self> {
        find(name)?.plan(name)
    }
}

/// Every name `ldyn run` accepts, aliases included.
pub fn names() -> Vec<&'static str> {
    REGISTRY
        .iter()
        .flat_map(|e| std::iter::once(e.name).chain(e.aliases.iter().copied()))
        .collect()
}

/// The plan's own keys, before the experiment's.
const SEED: Key = Key::new("seed", "random seed of the run", Range::Int(0, i64::MAX));
const ROBUSTNESS: Key = Key::new(
    "robustness_seeds",
    "the claims are rerun on seeds 0..robustness_seeds (0: not rerun)",
    Range::Int(0, 10_000),
);

impl Entry {
    /// A plan with the defaults, run under `name` (the experiment's name or an alias).
    ///
    /// # Errors
    /// If `name` is neither.
    pub fn plan(&'static self, name: &str) -> Result<Plan> {
        if name != self.name && !self.aliases.contains(&name) {
            return Err(Error::InvalidArgument(format!(
                "'{name}' does not name the experiment {}",
                self.name
            )));
        }
        Ok(Plan {
            entry: self,
            name: name.to_string(),
            seed: self.default_seed,
            robustness_seeds: self.robustness_seeds,
            values: self.defaults()?,
            sources: Vec::new(),
            budget: crate::error::DEFAULT_MAX_MEMORY,
        })
    }

    /// The experiment's default configuration as `(dotted key, value)` pairs, in the
    /// order of its serialized fields.
    ///
    /// # Errors
    /// If the configuration cannot be serialized.
    pub fn defaults(&self) -> Result<Vec<(String, Value)>> {
        self.runner.defaults()
    }

    /// Every key of the experiment's configuration, the plan's own first.
    pub fn keys(&self) -> Vec<Key> {
        let mut keys = vec![SEED, ROBUSTNESS];
        keys.extend(self.runner.keys());
        keys
    }
}

/// A configured run of one experiment.
#[derive(Clone, Debug)]
pub struct Plan {
    entry: &'static Entry,
    name: String,
    seed: u64,
    robustness_seeds: u64,
    values: Vec<(String, Value)>,
    /// The configuration files read, which no output may overwrite.
    sources: Vec<PathBuf>,
    /// The memory budget in bytes.
    budget: u64,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry").field("name", &self.name).finish()
    }
}

impl Plan {
    /// The name the run is written under (`NAME.config.toml`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The seed of the run.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Sets the memory budget in bytes that the configuration's estimate must fit.
    pub fn set_memory_budget(&mut self, bytes: u64) {
        self.budget = bytes;
    }

    /// Sets the run's seed.
    ///
    /// # Errors
    /// A seed above `i64::MAX`, which a TOML configuration could not hold.
    pub fn set_seed(&mut self, seed: u64) -> Result<()> {
        let value = i64::try_from(seed).map_or(Value::Float(seed as f64), Value::Integer);
        self.set_value("seed", value)
    }

    /// Sets one key to a value, after checking the key exists and the value is in its range.
    ///
    /// # Errors
    /// An unknown key (the error lists the known ones) or a value out of range (the error
    /// names the key and its range).
    pub fn set_value(&mut self, key: &str, value: Value) -> Result<()> {
        let keys = self.entry.keys();
        key_named(&keys, key)?.check(&value)?;
        let as_u64 = |v: &Value| v.as_integer().map_or(0, |i| i as u64);
        match key {
            "seed" => self.seed = as_u64(&value),
            "robustness_seeds" => self.robustness_seeds = as_u64(&value),
            _ => {
                let slot = self.values.iter_mut().find(|(k, _)| k == key);
                if let Some((_, v)) = slot {
                    *v = value;
                }
            }
        }
        Ok(())
    }

    /// Applies one `key=value` assignment; the value is read as TOML (`0.5`, `128`).
    ///
    /// # Errors
    /// As [`Plan::set_value`], or if the assignment has no `=` or its value is not TOML.
    pub fn set(&mut self, assignment: &str) -> Result<()> {
        let (key, value) = assignment.split_once('=').ok_or_else(|| {
            Error::InvalidArgument(format!(
                "--set expects key=value, got '{}'",
                quote(assignment)
            ))
        })?;
        let (key, value) = (key.trim(), value.trim());
        let is_name = !value.is_empty()
            && value
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit());
        let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .map(|t| t["v"].clone());
        let value = match parsed {
            Some(v) => v,
            // A bare name, as `--set world=human`.
            None if is_name => Value::String(value.to_string()),
            None => {
                return Err(Error::InvalidArgument(format!(
                    "the value of {}, '{}', is neither a number nor a name",
                    quote(key),
                    quote(value)
                )));
            }
        };
        self.set_value(key, value)
    }

    /// Applies every key of a TOML configuration file (as written by a run).
    ///
    /// # Errors
    /// If the file cannot be read or parsed, or as [`Plan::set_value`].
    pub fn load(&mut self, path: &Path) -> Result<()> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            line: e
                .span()
                .map_or(0, |s| text[..s.start].matches('\n').count() + 1),
            message: e.message().to_string(),
        })?;
        self.sources.push(path.to_path_buf());
        let mut values = Vec::new();
        flatten("", &Value::Table(table), &mut values);
        values.into_iter().try_for_each(|(k, v)| {
            self.set_value(&k, v)
                .map_err(|e| Error::InvalidArgument(format!("{}: {e}", path.display())))
        })
    }

    /// The configuration as a TOML document, one documented key a line (the plan's own
    /// keys first, then the experiment's).
    pub fn to_toml(&self) -> String {
        let keys = self.entry.keys();
        let mut text = format!(
            "# ldyn run {}: `ldyn run {} --config THIS_FILE` repeats this run\n",
            self.name, self.name
        );
        let own = [
            ("seed".to_string(), Value::Integer(self.seed as i64)),
            (
                "robustness_seeds".to_string(),
                Value::Integer(self.robustness_seeds as i64),
            ),
        ];
        for (path, value) in own.iter().chain(&self.values) {
            let key = key_named(&keys, path).expect("every value has a key");
            text.push_str(&format!("{path} = {value}  # {}; {}\n", key.doc, key.range));
        }
        text
    }

    /// The experiment's values, nested into a TOML table for deserialising.
    fn table(&self) -> Value {
        let mut root = toml::Table::new();
        for (path, value) in &self.values {
            let mut parts: Vec<&str> = path.split('.').collect();
            let leaf = parts.pop().expect("a non-empty key");
            let mut table = &mut root;
            for part in parts {
                table = table
                    .entry(part)
                    .or_insert_with(|| Value::Table(toml::Table::new()))
                    .as_table_mut()
                    .expect("keys nest consistently");
            }
            table.insert(leaf.to_string(), value.clone());
        }
        Value::Table(root)
    }

    /// Runs the plan and writes its files to `out`, holding the directory's lock
    /// ([`DirLock`]) from after the configuration and its memory estimate are checked
    /// (a refused run touches nothing); `progress` hears of every run.
    ///
    /// # Errors
    /// If the configuration is invalid, another run holds the directory, a run fails,
    /// or a file cannot be written.
    pub fn execute(&self, out: &Path, progress: &mut dyn FnMut(&str)) -> Result<Report> {
        self.entry.runner.execute(self, out, progress)
    }
}

impl<E: Experiment> Runner for Figures<E> {
    fn keys(&self) -> Vec<Key> {
        E::Config::keys()
    }

    fn defaults(&self) -> Result<Vec<(String, Value)>> {
        E::Config::default().flat()
    }

    fn execute(&self, plan: &Plan, out: &Path, progress: &mut dyn FnMut(&str)) -> Result<Report> {
        let config: E::Config = plan
            .table()
            .try_into()
            .map_err(|e| Error::InvalidArgument(format!("configuration: {e}")))?;
        let config = Valid::new(config)?;
        crate::error::check_memory(E::Config::MEMORY_KEYS, config.memory_bytes(), plan.budget)?;
        let _lock = DirLock::acquire(out)?;
        progress(&format!("{}: seed {}", plan.name, plan.seed));
        let data = E::run(&config, plan.seed)?;
        let tables = E::tables(&data);
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
        for (table, path) in tables.into_iter().zip(&csv_paths) {
            write_csv(path, &table.header, table.rows)?;
        }
        for ((_, draw), path) in self.0.iter().zip(&figure_paths) {
            draw(&data, path)?;
        }
        let claims = E::claims(&data);
        let mut counts = vec![0usize; claims.len()];
        for seed in 0..plan.robustness_seeds {
            progress(&format!(
                "{}: robustness seed {}/{}",
                plan.name,
                seed + 1,
                plan.robustness_seeds
            ));
            for (count, claim) in counts.iter_mut().zip(E::claims(&E::run(&config, seed)?)) {
                *count += usize::from(claim.holds);
            }
        }
        let claims = claims
            .into_iter()
            .zip(counts)
            .map(|(c, n)| Claim {
                id: c.id,
                text: match plan.robustness_seeds {
                    0 => format!("{} [not rerun on other seeds]", c.text),
                    seeds => format!("{} [holds for {n}/{seeds} seeds]", c.text),
                },
                holds: c.holds,
            })
            .collect();
        write_atomic(&config_path, plan.to_toml().as_bytes())?;
        Ok(Report {
            name: plan.name.clone(),
            files,
            claims,
        })
    }
}

/// What running an experiment produced.
#[derive(Clone, Debug)]
pub struct Report {
    /// The name it ran under.
    pub name: String,
    /// The files written: CSV tables, figures, then the configuration.
    pub files: Vec<PathBuf>,
    /// The figures' claims with the measured numbers and their robustness.
    pub claims: Vec<Claim>,
}

impl std::fmt::Display for Report {
    /// One line for the experiment (how many claims hold, the files), then one per claim.
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
            writeln!(f, "  [{verdict}] {}", claim.text)?;
        }
        Ok(())
    }
}
