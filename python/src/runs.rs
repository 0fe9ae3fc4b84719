//! Experiments from Python: `experiments`, `config`, `run` (claims with their counts,
//! tables as typed columns, and with `out` exactly the files `ldyn run` writes), `sweep`
//! (pooled claims and summary, with a progress hook) and `akg` (the record `ldyn akg`
//! writes, as a dict). Settings pass through the CLI's own parser (`--set key=value`), so
//! a bad key or value gets the CLI's message.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use learning_dynamics::error::DEFAULT_MAX_MEMORY;
use learning_dynamics::experiments::{Claim as CrateClaim, Table, Tally, Values};
use learning_dynamics::export::{LmFlags, ModelKind, Reference, SizeFlags};
use learning_dynamics::gallery::{Plan, REGISTRY, Sweep};
use learning_dynamics::objective::LmObjective;
use numpy::PyArray1;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyRange};

use crate::{guard, long, to_py};

/// A claim an experiment's figure makes, checked on the run's numbers.
#[pyclass(module = "learning_dynamics", frozen, get_all)]
pub(crate) struct Claim {
    /// Its stable name within the experiment.
    id: &'static str,
    /// The statement with the numbers measured (as `ldyn run` prints it).
    text: String,
    /// Whether the numbers support it.
    holds: bool,
    /// (k, n): on how many of the run's own seeds it holds, where its verdict is that count; else None.
    seeds: Option<(usize, usize)>,
    /// (k, n): on how many robustness reruns it holds; None when not rerun.
    reruns: Option<(usize, usize)>,
}

#[pymethods]
impl Claim {
    fn __repr__(&self) -> String {
        let verdict = if self.holds { "holds" } else { "FAILS" };
        format!("Claim({}: {verdict})", self.id)
    }
}

fn tally(t: Option<Tally>) -> Option<(usize, usize)> {
    t.map(|t| (t.k, t.n))
}

fn claim(c: CrateClaim) -> Claim {
    Claim {
        id: c.id,
        text: c.text,
        holds: c.holds,
        seeds: tally(c.seeds),
        reruns: tally(c.reruns),
    }
}

/// What `run` returns.
#[pyclass(module = "learning_dynamics", frozen, get_all)]
pub(crate) struct Run {
    /// The experiment's name.
    name: String,
    /// The seeds its verdicts read ("seed 2025", "seeds 1024–1028").
    seeds: String,
    /// The claims, in the experiment's order.
    claims: Vec<Py<Claim>>,
    /// Every table (the CSV files' contents): {table name: {column: values}}, reals as float64 arrays (NaN where a row has none), integers as int64 arrays (float64 with NaN if a row has none), text as lists of str. pandas.DataFrame(run.tables[name]) reads one.
    tables: Py<PyDict>,
    /// The files written (with out=DIR), the configuration last; else empty.
    files: Vec<String>,
    /// What `ldyn run` prints.
    report: String,
}

#[pymethods]
impl Run {
    fn __repr__(&self) -> String {
        self.report.lines().next().unwrap_or_default().to_string()
    }
}

/// A table's columns as a dict of numpy arrays (or lists of str).
fn table_dict<'py>(py: Python<'py>, table: &Table) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for column in &table.columns {
        let values: Bound<'py, PyAny> = match &column.values {
            Values::Real(v) => {
                PyArray1::from_iter(py, v.iter().map(|x| x.unwrap_or(f64::NAN))).into_any()
            }
            Values::Int(v) if v.iter().all(Option::is_some) => {
                PyArray1::from_iter(py, v.iter().map(|x| x.unwrap_or_default())).into_any()
            }
            Values::Int(v) => {
                PyArray1::from_iter(py, v.iter().map(|x| x.map_or(f64::NAN, |i| i as f64)))
                    .into_any()
            }
            Values::Text(v) => PyList::new(py, v)?.into_any(),
        };
        d.set_item(&column.name, values)?;
    }
    Ok(d)
}

/// A Python setting as the text `--set key=TEXT` takes.
fn setting_text(value: &Bound<'_, PyAny>, key: &str) -> PyResult<String> {
    if let Ok(b) = value.extract::<bool>() {
        return Ok(b.to_string());
    }
    if let Ok(i) = value.extract::<i64>() {
        return Ok(i.to_string());
    }
    if let Ok(x) = value.extract::<f64>() {
        return Ok(format!("{x:?}"));
    }
    if let Ok(s) = value.extract::<String>() {
        return Ok(s);
    }
    Err(PyValueError::new_err(format!(
        "the value of {key} must be a bool, an int, a float or a str"
    )))
}

/// The `key=value` assignments of `set`, as `--set` takes them.
fn assignments(set: Option<&Bound<'_, PyDict>>) -> PyResult<Vec<String>> {
    (set.into_iter().flat_map(|d| d.iter()))
        .map(|(key, value)| {
            let key: String = key
                .extract()
                .map_err(|_| PyValueError::new_err("the keys of set must be str"))?;
            Ok(format!("{key}={}", setting_text(&value, &key)?))
        })
        .collect()
}

/// The plan of `name` with the `assignments` applied, then the seed and the memory budget
/// (GiB).
fn plan(
    name: &str,
    seed: Option<u64>,
    assignments: &[String],
    max_memory: Option<f64>,
) -> PyResult<Plan> {
    let mut plan: Plan = name.parse().map_err(to_py)?;
    for assignment in assignments {
        plan.set(assignment).map_err(to_py)?;
    }
    if let Some(seed) = seed {
        plan.set_seed(seed).map_err(to_py)?;
    }
    plan.set_memory_budget(budget(max_memory)?);
    Ok(plan)
}

/// The memory budget in bytes from GiB, as `ldyn --max-memory` reads it (default 4).
fn budget(gib: Option<f64>) -> PyResult<u64> {
    match gib {
        None => Ok(DEFAULT_MAX_MEMORY),
        Some(g) if g.is_finite() && g > 0.0 && g <= 1e9 => Ok((g * (1u64 << 30) as f64) as u64),
        Some(g) => Err(PyValueError::new_err(format!(
            "max_memory must be a number of GiB in (0, 1e9], got {g}"
        ))),
    }
}

/// Runs the experiment `name` (as `ldyn run NAME`) with its default configuration, the
/// keys of `set` ({key: value}, as `--set key=value`; `config(name)` lists them) and
/// `seed`, including the claims' robustness reruns (set robustness_seeds=0 to skip
/// them). With out=DIR it writes exactly the files `ldyn run NAME --out DIR` writes,
/// byte for byte; without, it writes nothing. The GIL is released; Ctrl-C
/// (KeyboardInterrupt) stops the run at its next training step, as a killed `ldyn run`
/// leaves its directory (the configuration file, written last, is missing).
///
/// Errors: ValueError for an unknown experiment or key, or a value out of its range
/// (the CLI's message); OSError for a directory that cannot be written.
#[pyfunction]
#[pyo3(signature = (name, seed = None, set = None, out = None, max_memory = None))]
fn run(
    py: Python<'_>,
    name: &str,
    seed: Option<u64>,
    set: Option<&Bound<'_, PyDict>>,
    out: Option<PathBuf>,
    max_memory: Option<f64>,
) -> PyResult<Run> {
    guard(|| {
        let plan = plan(name, seed, &assignments(set)?, max_memory)?;
        let report = long(
            py,
            || match &out {
                Some(out) => plan.execute(out, &mut |_| {}),
                None => plan.compute(&mut |_| {}),
            },
            &mut |_| Ok(()),
        )?;
        let tables = PyDict::new(py);
        for table in &report.tables {
            tables.set_item(&table.name, table_dict(py, table)?)?;
        }
        let text = report.to_string();
        Ok(Run {
            name: report.name,
            seeds: report.seeds,
            claims: report
                .claims
                .into_iter()
                .map(|c| Py::new(py, claim(c)))
                .collect::<PyResult<_>>()?,
            tables: tables.unbind(),
            files: report
                .files
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            report: text,
        })
    })
}

/// What `sweep` returns: every claim counted per cell over the seeds.
#[pyclass(module = "learning_dynamics", frozen, get_all)]
pub(crate) struct Pooled {
    /// The cells' names ("default" without a grid).
    cells: Vec<String>,
    /// The claims' ids.
    claims: Vec<String>,
    /// holds[cell][claim]: on how many seeds the claim holds.
    holds: Vec<Vec<usize>>,
    /// Per cell, the seeds whose run succeeded.
    seeds: Vec<usize>,
    /// Per cell, how many runs failed.
    failed: Vec<usize>,
    /// Every successful run's summary rows: (cell, seed, metric, value).
    summary: Vec<(String, u64, String, String)>,
    /// The directory holding sweep_claims.csv, sweep_summary.csv and sweep.png.
    out: String,
}

/// Runs `name` on every seed of `seeds` (a range, or "A..B"; default the experiment's
/// seed and the four after it) in every cell of `grid` ({key: [values]}), on `jobs`
/// threads (default: every core), as `ldyn sweep`; the runs and the pooled files go to
/// `out` (default sweeps/NAME). `progress(done, total)` is called from this thread as
/// runs end, so a notebook can drive tqdm. Ctrl-C stops the sweep at the runs' next
/// training step; the pooled files are then not written.
#[pyfunction]
#[pyo3(signature = (name, seeds = None, grid = None, set = None, jobs = None, out = None, progress = None, max_memory = None))]
#[allow(clippy::too_many_arguments, reason = "the Python signature")]
fn sweep(
    py: Python<'_>,
    name: &str,
    seeds: Option<&Bound<'_, PyAny>>,
    grid: Option<&Bound<'_, PyDict>>,
    set: Option<&Bound<'_, PyDict>>,
    jobs: Option<usize>,
    out: Option<PathBuf>,
    progress: Option<Py<PyAny>>,
    max_memory: Option<f64>,
) -> PyResult<Pooled> {
    guard(|| {
        let sets = assignments(set)?;
        sets.iter()
            .try_for_each(|a| learning_dynamics::gallery::check_set(a))
            .map_err(to_py)?;
        let base = plan(name, None, &sets, max_memory)?;
        let seeds = match seeds {
            None => None,
            Some(s) => match s.cast::<PyRange>() {
                Ok(r) => {
                    let (start, stop, step): (u64, u64, i64) = (
                        r.getattr("start")?.extract()?,
                        r.getattr("stop")?.extract()?,
                        r.getattr("step")?.extract()?,
                    );
                    if step != 1 {
                        return Err(PyValueError::new_err("seeds must be a range with step 1"));
                    }
                    Some(format!("{start}..{stop}"))
                }
                Err(_) => Some(
                    s.extract::<String>()
                        .map_err(|_| PyValueError::new_err("seeds must be a range or \"A..B\""))?,
                ),
            },
        };
        let mut grids = Vec::new();
        for (key, values) in grid.into_iter().flat_map(|d| d.iter()) {
            let key: String = key.extract()?;
            let values: Vec<Bound<'_, PyAny>> = values.extract().map_err(|_| {
                PyValueError::new_err(format!("grid[{key}] must be a list of values"))
            })?;
            let texts: Vec<String> = values
                .iter()
                .map(|v| setting_text(v, &key))
                .collect::<PyResult<_>>()?;
            grids.push(format!("{key}={}", texts.join(",")));
        }
        let sweep = Sweep::new(base, &grids, seeds.as_deref(), None).map_err(to_py)?;
        let out = out.unwrap_or_else(|| PathBuf::from("sweeps").join(sweep.name()));
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let total = sweep.runs().len();
        let done = AtomicUsize::new(0);
        let mut told = usize::MAX;
        let mut tick = |py: Python<'_>| -> PyResult<()> {
            let now = done.load(Ordering::Relaxed);
            if let Some(callback) = &progress
                && now != told
            {
                told = now;
                callback.call1(py, (now, total))?;
            }
            Ok(())
        };
        let pooled = long(
            py,
            || {
                sweep.execute(&out, jobs.unwrap_or(cores), &|n, _| {
                    done.store(n, Ordering::Relaxed)
                })
            },
            &mut tick,
        )?;
        Ok(Pooled {
            summary: pooled
                .summary
                .iter()
                .map(|(c, seed, metric, value)| {
                    (
                        pooled.cells[*c].clone(),
                        *seed,
                        metric.clone(),
                        value.clone(),
                    )
                })
                .collect(),
            failed: pooled.failed.iter().map(|f| f.0).collect(),
            cells: pooled.cells,
            claims: pooled.claims,
            holds: pooled.holds,
            seeds: pooled.seeds,
            out: out.display().to_string(),
        })
    })
}

/// A TOML value of a configuration as a Python value.
fn toml_value<'py>(py: Python<'py>, v: &toml::Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        toml::Value::Boolean(b) => b.into_pyobject(py)?.to_owned().into_any(),
        toml::Value::Integer(i) => i.into_pyobject(py)?.into_any(),
        toml::Value::Float(x) => x.into_pyobject(py)?.into_any(),
        other => other
            .as_str()
            .map_or_else(|| other.to_string(), str::to_string)
            .into_pyobject(py)?
            .into_any(),
    })
}

/// The documented keys of experiment `name`: {key: {"default": value, "doc": str,
/// "range": str}}, the run's own keys (seed, robustness_seeds) first, as
/// `ldyn config NAME` writes them.
#[pyfunction]
fn config<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyDict>> {
    guard(|| {
        let entry = learning_dynamics::gallery::find(name).map_err(to_py)?;
        let plan: Plan = name.parse().map_err(to_py)?;
        let mut defaults = entry.defaults().map_err(to_py)?;
        defaults.insert(0, ("seed".into(), toml::Value::Integer(plan.seed() as i64)));
        defaults.insert(
            1,
            (
                "robustness_seeds".into(),
                toml::Value::Integer(entry.robustness_seeds as i64),
            ),
        );
        let d = PyDict::new(py);
        for key in entry.keys() {
            let default = defaults.iter().find(|(k, _)| k == key.path).map(|(_, v)| v);
            let item = PyDict::new(py);
            item.set_item("default", default.map(|v| toml_value(py, v)).transpose()?)?;
            item.set_item("doc", key.doc)?;
            item.set_item("range", key.range.to_string())?;
            d.set_item(key.path, item)?;
        }
        Ok(d)
    })
}

/// experiments() -> list[tuple[str, int, str]]: every experiment as (name, default seed, what it shows), in gallery order (`ldyn list`).
#[pyfunction]
fn experiments() -> Vec<(&'static str, u64, &'static str)> {
    REGISTRY
        .iter()
        .map(|e| (e.name, e.default_seed, e.about))
        .collect()
}

/// The record `ldyn akg` writes (its JSON as a dict): a seeded model, one step and every
/// term of its decomposition (weights, x_u, G, and per observed input π, A, K, the
/// predicted and the actual Δ log π). model is "linear", "mlp" or "lm"; objective and
/// reference apply to "lm".
#[pyfunction]
#[pyo3(signature = (model = "linear", seed = 0, eta = 1e-3, objective = "sft", reference = None, inputs = None, hidden = None, layers = None, classes = None))]
#[allow(clippy::too_many_arguments, reason = "the Python signature")]
fn akg<'py>(
    py: Python<'py>,
    model: &str,
    seed: u64,
    eta: f64,
    objective: &str,
    reference: Option<&str>,
    inputs: Option<usize>,
    hidden: Option<usize>,
    layers: Option<usize>,
    classes: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    guard(|| {
        let kind: ModelKind = model.parse().map_err(to_py)?;
        let objective: LmObjective = objective.parse().map_err(to_py)?;
        let reference: Option<Reference> = reference.map(str::parse).transpose().map_err(to_py)?;
        let flags = LmFlags {
            objective,
            reference,
            slic_delta: None,
            rpo_alpha: None,
            rpo_weighting: None,
            dpop_lambda: None,
            dpop_form: None,
        };
        let sizes = SizeFlags {
            inputs,
            hidden,
            layers,
            classes,
        };
        let doc = long(
            py,
            || learning_dynamics::export::akg(kind, flags, sizes, seed, eta, DEFAULT_MAX_MEMORY),
            &mut |_| Ok(()),
        )?;
        py.import("json")?.call_method1("loads", (doc.to_string(),))
    })
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Claim>()?;
    m.add_class::<Run>()?;
    m.add_class::<Pooled>()?;
    for f in [
        wrap_pyfunction!(run, m)?,
        wrap_pyfunction!(sweep, m)?,
        wrap_pyfunction!(config, m)?,
        wrap_pyfunction!(experiments, m)?,
        wrap_pyfunction!(akg, m)?,
    ] {
        m.add_function(f)?;
    }
    Ok(())
}
