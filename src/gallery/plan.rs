//! A plan: one experiment's configuration, from its documented defaults through a
//! `--config` file and `--set` assignments (every key range-checked), with the seed, the
//! robustness reruns and the memory budget; written back as a documented TOML file.

use std::path::{Path, PathBuf};

use toml::Value;

use super::report::Report;
use crate::error::{Error, Result, quote};
use crate::experiments::settings::{flatten, key_named};
use crate::experiments::{Key, Range};

/// The plan's own keys, before the experiment's.
pub(super) const SEED: Key = Key::new("seed", "random seed of the run", Range::Int(0, i64::MAX));
/// Its range is each experiment's ([`Entry::max_robustness_seeds`](super::Entry)).
pub(super) const ROBUSTNESS: Key = Key::new(
    "robustness_seeds",
    "the claims are rerun on seeds 0..robustness_seeds (0: not rerun)",
    Range::Int(0, 10_000),
);

/// What a plan needs of its experiment, with the experiment's types erased (the registry
/// implements it for every experiment, the runner runs through it).
pub(super) trait Runner {
    fn keys(&self) -> Vec<Key>;
    fn defaults(&self) -> Result<Vec<(String, Value)>>;
    /// The keys the memory estimate depends on, and the estimate in bytes.
    fn memory(&self, plan: &Plan) -> Result<(&'static str, Option<u128>)>;
    /// Runs the plan; with `out`, writes its files there.
    fn execute(
        &self,
        plan: &Plan,
        out: Option<&Path>,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Report>;
}

/// A configured run of one experiment.
#[derive(Clone)]
pub struct Plan {
    /// Every key of the experiment's configuration, the plan's own first.
    pub(super) keys: Vec<Key>,
    pub(super) runner: &'static (dyn Runner + Sync),
    pub(super) name: String,
    pub(super) seed: u64,
    pub(super) robustness_seeds: u64,
    pub(super) values: Vec<(String, Value)>,
    /// The configuration files read, which no output may overwrite.
    pub(super) sources: Vec<PathBuf>,
    /// The memory budget in bytes.
    pub(super) budget: u64,
    /// Whether the caller holds the output directory's lock already (a sweep's run).
    pub(super) locked_by_caller: bool,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("name", &self.name)
            .field("seed", &self.seed)
            .field("robustness_seeds", &self.robustness_seeds)
            .field("values", &self.values)
            .finish_non_exhaustive()
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
        let keys = &self.keys;
        key_named(keys, key)?.check(&value)?;
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
        // A newline would end the TOML value early and silently drop the rest.
        if assignment.chars().any(char::is_control) {
            return Err(Error::InvalidArgument(format!(
                "--set takes one line without control characters, got '{}'",
                quote(assignment)
            )));
        }
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
        let text = crate::io::read_input(path, "the configuration")?;
        self.apply_toml(&text, path)?;
        self.sources.push(path.to_path_buf());
        Ok(())
    }

    /// Applies every key of the TOML configuration `text`, read from `origin` (which
    /// errors name).
    ///
    /// # Errors
    /// If the text cannot be parsed, or as [`Plan::set_value`].
    pub fn apply_toml(&mut self, text: &str, origin: &Path) -> Result<()> {
        let table: toml::Table = toml::from_str(text).map_err(|e| Error::Parse {
            path: origin.to_path_buf(),
            line: e
                .span()
                .map_or(0, |s| text[..s.start].matches('\n').count() + 1),
            message: e.message().to_string(),
        })?;
        let mut values = Vec::new();
        flatten("", &Value::Table(table), &mut values);
        values.into_iter().try_for_each(|(k, v)| {
            self.set_value(&k, v)
                .map_err(|e| Error::InvalidArgument(format!("{}: {e}", origin.display())))
        })
    }

    /// The configuration as a TOML document, one documented key a line (the plan's own
    /// keys first, then the experiment's).
    pub fn to_toml(&self) -> String {
        let keys = &self.keys;
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
            let key = key_named(keys, path).expect("every value has a key");
            text.push_str(&format!("{path} = {value}  # {}; {}\n", key.doc, key.range));
        }
        text
    }

    /// The experiment's values, nested into a TOML table for deserialising.
    pub(super) fn table(&self) -> Value {
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

    /// The keys one run's memory estimate depends on, and the estimate in bytes (`None`
    /// on overflow).
    ///
    /// # Errors
    /// If the configuration is invalid.
    pub fn memory(&self) -> Result<(&'static str, Option<u128>)> {
        self.runner.memory(self)
    }

    /// The memory budget in bytes.
    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// Whether the experiment has a key called `key`.
    pub fn has_key(&self, key: &str) -> bool {
        self.keys.iter().any(|k| k.path == key)
    }

    /// Runs the plan and writes its files to `out`, holding the directory's lock
    /// ([`DirLock`](crate::io::DirLock)) from after the configuration and its memory estimate are checked
    /// (a refused run touches nothing); `progress` hears of every run.
    ///
    /// # Errors
    /// If the configuration is invalid, another run holds the directory, a run fails,
    /// or a file cannot be written.
    pub fn execute(&self, out: &Path, progress: &mut dyn FnMut(&str)) -> Result<Report> {
        self.runner.execute(self, Some(out), progress)
    }

    /// Runs the plan as [`Plan::execute`] does, claims and robustness reruns included,
    /// but writes no file: the report's tables hold everything the CSV files would.
    ///
    /// # Errors
    /// If the configuration is invalid or a run fails.
    pub fn compute(&self, progress: &mut dyn FnMut(&str)) -> Result<Report> {
        self.runner.execute(self, None, progress)
    }
}
