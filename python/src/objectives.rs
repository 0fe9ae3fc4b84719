//! Objectives: `SFT`, the pairwise losses (the crate's [`PairLoss`], TRL's names as
//! aliases) and `Custom`, a Python callable `fn(logits) -> (loss, G)` that the crate calls
//! as one of its own objectives ([`PyObjective`]) after checking its `G` against finite
//! differences of its loss ([`with_objective`]).

use std::sync::Mutex;

use learning_dynamics::experiments::lm_world::LmConfig;
use learning_dynamics::objective::{
    CrossEntropy, DpopForm, Objective as CrateObjective, PairLoss, RpoWeighting, check_residuals,
};
use nalgebra::DMatrix;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::arrays::{read_matrix, read_vector, transposed, vector};
use crate::to_py;

/// What an `Objective` is: SFT (cross-entropy on a label or a response) or a pairwise loss.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Sft {
        label: Option<usize>,
        negative: bool,
    },
    Pair {
        loss: PairLoss,
        beta: f64,
    },
}

/// A loss whose residual G = ∂L/∂z the decomposition reads. Build one with SFT, DPO, IPO, SLiC, SPPOHard, RPO, DPOP or objective(name).
#[pyclass(module = "learning_dynamics", frozen)]
#[derive(Clone)]
pub(crate) struct Objective(pub(crate) Kind);

#[pymethods]
impl Objective {
    /// The loss's name: "sft" or the crate's name of the pairwise loss.
    #[getter]
    fn name(&self) -> &'static str {
        match self.0 {
            Kind::Sft { .. } => "sft",
            Kind::Pair { loss, .. } => loss.id(),
        }
    }

    fn __repr__(&self) -> String {
        match self.0 {
            Kind::Sft { label, negative } => format!("SFT(label={label:?}, negative={negative})"),
            Kind::Pair { loss, beta } => format!("{loss:?}(beta={beta})")
                .replace(" {", "(")
                .replace('}', ")"),
        }
    }
}

/// β > 0 and finite, or the world's default.
fn beta(beta: Option<f64>) -> PyResult<f64> {
    let beta = beta.unwrap_or(LmConfig::default().beta);
    learning_dynamics::error::check_step("beta", beta).map_err(to_py)
}

fn at_least_zero(name: &str, v: f64) -> PyResult<f64> {
    match v.is_finite() && v >= 0.0 {
        true => Ok(v),
        false => Err(PyValueError::new_err(format!(
            "{name} must be a finite number ≥ 0, got {v}"
        ))),
    }
}

fn pair(loss: PairLoss, b: Option<f64>) -> PyResult<Objective> {
    Ok(Objective(Kind::Pair {
        loss,
        beta: beta(b)?,
    }))
}

/// SFT(label=None, negative=False): cross-entropy, G = π − e_y (a positive gradient) or −(π − e_y) (negative=True). A classifier needs the label; a TinyLM's update is (prompt, response) and every response token is a label.
#[pyfunction]
#[pyo3(name = "SFT", signature = (label = None, negative = false))]
fn sft(label: Option<usize>, negative: bool) -> Objective {
    Objective(Kind::Sft { label, negative })
}

/// DPO(beta=0.1) (TRL: "sigmoid"): L = −log σ(β m), m = (lp⁺ − lp⁻) − (ref⁺ − ref⁻).
#[pyfunction]
#[pyo3(name = "DPO", signature = (beta = None))]
fn dpo(beta: Option<f64>) -> PyResult<Objective> {
    pair(PairLoss::Dpo, beta)
}

/// IPO(beta=0.1) (TRL: "ipo"): L = (m − 1/(2τ))², τ = beta.
#[pyfunction]
#[pyo3(name = "IPO", signature = (beta = None))]
fn ipo(beta: Option<f64>) -> PyResult<Objective> {
    pair(PairLoss::Ipo, beta)
}

/// SLiC(beta=0.1, delta=1.0, lambda_=0.1): L = max(0, δ − (lp⁺ − lp⁻)) − λ lp⁺ (no reference).
#[pyfunction]
#[pyo3(name = "SLiC", signature = (beta = None, delta = 1.0, lambda_ = 0.1))]
fn slic(beta: Option<f64>, delta: f64, lambda_: f64) -> PyResult<Objective> {
    if !delta.is_finite() {
        return Err(PyValueError::new_err(format!(
            "delta must be finite, got {delta}"
        )));
    }
    let lambda = at_least_zero("lambda_", lambda_)?;
    pair(PairLoss::Slic { delta, lambda }, beta)
}

/// SPPOHard(beta=0.1) (TRL: "sppo_hard"): L = (r⁺ − 1/(2β))² + (r⁻ + 1/(2β))², r± = lp± − ref±.
#[pyfunction]
#[pyo3(name = "SPPOHard", signature = (beta = None))]
fn sppo_hard(beta: Option<f64>) -> PyResult<Objective> {
    pair(PairLoss::SppoHard, beta)
}

/// RPO(beta=0.1, alpha=1.0, weighting="v3") (TRL: rpo_alpha with "sigmoid"): v3 L = L_DPO + α·NLL, v1 L = α·L_DPO + NLL, NLL = −lp⁺/|y⁺|.
#[pyfunction]
#[pyo3(name = "RPO", signature = (beta = None, alpha = 1.0, weighting = "v3"))]
fn rpo(beta: Option<f64>, alpha: f64, weighting: &str) -> PyResult<Objective> {
    let alpha = at_least_zero("alpha", alpha)?;
    let weighting: RpoWeighting = weighting.parse().map_err(to_py)?;
    pair(PairLoss::Rpo { alpha, weighting }, beta)
}

/// DPOP(beta=0.1, lambda_=50.0, form="inside") (Smaug's DPO-Positive): inside L = −log σ(β(r⁺ − r⁻ − λp)), outside L = −log σ(β(r⁺ − r⁻)) + λp, p = max(0, ref⁺ − lp⁺).
#[pyfunction]
#[pyo3(name = "DPOP", signature = (beta = None, lambda_ = 50.0, form = "inside"))]
fn dpop(beta: Option<f64>, lambda_: f64, form: &str) -> PyResult<Objective> {
    let lambda = at_least_zero("lambda_", lambda_)?;
    let form: DpopForm = form.parse().map_err(to_py)?;
    pair(PairLoss::Dpop { lambda, form }, beta)
}

/// objective(name, beta=0.1): an objective by name, "sft" or a pairwise loss by the crate's name or TRL's loss_type ("sigmoid", "sigmoid+sft"), with its default hyperparameters.
#[pyfunction]
#[pyo3(signature = (name, beta = None))]
fn objective(name: &str, beta: Option<f64>) -> PyResult<Objective> {
    match name.parse().map_err(to_py)? {
        learning_dynamics::objective::LmObjective::Sft => Ok(sft(None, false)),
        learning_dynamics::objective::LmObjective::Pair(loss) => pair(loss, beta),
    }
}

/// Custom(fn): your own loss. fn(logits) returns (loss, G) with G = ∂loss/∂logits in the logits' shapes; it is checked against central finite differences of loss before any step, and refused naming the worst entry if it disagrees.
#[pyclass(module = "learning_dynamics", frozen)]
pub(crate) struct Custom {
    function: Py<PyAny>,
}

#[pymethods]
impl Custom {
    #[new]
    fn new(function: Bound<'_, PyAny>) -> PyResult<Self> {
        if !function.is_callable() {
            return Err(PyValueError::new_err(
                "Custom needs a callable fn(logits) -> (loss, G)",
            ));
        }
        Ok(Custom {
            function: function.unbind(),
        })
    }
}

/// A `Custom` as the crate's objective: every call re-attaches to Python, converts the
/// logits (a classifier's `(V,)`, an LM's list of `(L, V)`) and reads `(loss, G)` back.
/// A failure (the callable raises, or returns another shape) is kept and the value is
/// NaN, which the crate refuses; the kept error is what Python sees.
struct PyObjective<'a> {
    function: &'a Py<PyAny>,
    arity: usize,
    classifier: bool,
    error: Mutex<Option<PyErr>>,
}

impl PyObjective<'_> {
    fn call(&self, logits: &[DMatrix<f64>]) -> Option<(f64, Vec<DMatrix<f64>>)> {
        let result = Python::attach(|py| -> PyResult<(f64, Vec<DMatrix<f64>>)> {
            let args: Bound<'_, PyAny> = match self.classifier {
                true => vector(py, logits[0].as_slice()),
                false => PyList::new(
                    py,
                    logits
                        .iter()
                        .map(|z| transposed(py, z))
                        .collect::<PyResult<Vec<_>>>()?,
                )?
                .into_any(),
            };
            let out = self.function.bind(py).call1((args,))?;
            let (loss, g): (f64, Bound<'_, PyAny>) = out.extract().map_err(|_| {
                PyValueError::new_err("a Custom objective's function must return (loss, G)")
            })?;
            let residuals = match self.classifier {
                true => vec![DMatrix::from_column_slice(
                    logits[0].nrows(),
                    1,
                    read_vector(&g, "G")?.as_slice(),
                )],
                false => {
                    let gs: Vec<Bound<'_, PyAny>> = g.extract().map_err(|_| {
                        PyValueError::new_err(
                            "G must be a list with one (L, V) array per update sequence",
                        )
                    })?;
                    gs.iter()
                        .map(|g| read_matrix(g, "G").map(|m| m.transpose()))
                        .collect::<PyResult<_>>()?
                }
            };
            let fits = residuals.len() == logits.len()
                && residuals
                    .iter()
                    .zip(logits)
                    .all(|(g, z)| g.shape() == z.shape());
            if !fits {
                return Err(PyValueError::new_err(format!(
                    "G must have the logits' shapes: {} arrays of {:?}",
                    logits.len(),
                    logits
                        .iter()
                        .map(|z| (z.ncols(), z.nrows()))
                        .collect::<Vec<_>>()
                )));
            }
            Ok((loss, residuals))
        });
        match result {
            Ok(r) => Some(r),
            Err(e) => {
                self.error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert(e);
                None
            }
        }
    }

    /// The callable's own exception, if it raised, else the crate's error.
    fn explain(&self, e: learning_dynamics::Error) -> PyErr {
        self.error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_else(|| to_py(e))
    }
}

impl CrateObjective for PyObjective<'_> {
    fn arity(&self) -> usize {
        self.arity
    }

    fn check(&self, _shapes: &[(usize, usize)]) -> learning_dynamics::Result<()> {
        Ok(())
    }

    fn loss(&self, logits: &[DMatrix<f64>]) -> f64 {
        self.call(logits).map_or(f64::NAN, |r| r.0)
    }

    fn residuals(&self, logits: &[DMatrix<f64>]) -> Vec<DMatrix<f64>> {
        self.loss_and_residuals(logits).1
    }

    fn loss_and_residuals(&self, logits: &[DMatrix<f64>]) -> (f64, Vec<DMatrix<f64>>) {
        self.call(logits).unwrap_or_else(|| {
            (
                f64::NAN,
                logits
                    .iter()
                    .map(|z| DMatrix::from_element(z.nrows(), z.ncols(), f64::NAN))
                    .collect(),
            )
        })
    }
}

/// The crate's objective for a built-in `Objective` on a classifier.
pub(crate) fn classifier_objective(kind: Kind) -> PyResult<CrossEntropy> {
    match kind {
        Kind::Sft {
            label: Some(label),
            negative: false,
        } => Ok(CrossEntropy::positive(label)),
        Kind::Sft {
            label: Some(label),
            negative: true,
        } => Ok(CrossEntropy::negative(label)),
        Kind::Sft { label: None, .. } => Err(PyValueError::new_err(
            "a classifier's SFT needs the label: SFT(label=k)",
        )),
        Kind::Pair { .. } => Err(PyValueError::new_err(
            "pairwise losses compare a chosen and a rejected sequence: use a TinyLM (classifiers take SFT or Custom)",
        )),
    }
}

/// Runs `f` on the objective the user gave: a built-in one (`built`) or a `Custom`,
/// checked against finite differences at `logits` (the update's) first.
pub(crate) fn with_objective<T>(
    objective: &Bound<'_, PyAny>,
    built: impl FnOnce(Kind) -> PyResult<Box<dyn CrateObjective>>,
    (arity, classifier, logits): (usize, bool, Vec<DMatrix<f64>>),
    f: impl FnOnce(&dyn CrateObjective) -> learning_dynamics::Result<T>,
) -> PyResult<T> {
    if let Ok(o) = objective.extract::<PyRef<'_, Objective>>() {
        let crate_objective = built(o.0)?;
        return f(crate_objective.as_ref()).map_err(to_py);
    }
    let custom = objective.extract::<PyRef<'_, Custom>>().map_err(|_| {
        PyValueError::new_err("objective must be an Objective (SFT, DPO, …) or a Custom")
    })?;
    let py_objective = PyObjective {
        function: &custom.function,
        arity,
        classifier,
        error: Mutex::new(None),
    };
    check_residuals(&py_objective, &logits).map_err(|e| py_objective.explain(e))?;
    f(&py_objective).map_err(|e| py_objective.explain(e))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Objective>()?;
    m.add_class::<Custom>()?;
    for f in [
        wrap_pyfunction!(sft, m)?,
        wrap_pyfunction!(dpo, m)?,
        wrap_pyfunction!(ipo, m)?,
        wrap_pyfunction!(slic, m)?,
        wrap_pyfunction!(sppo_hard, m)?,
        wrap_pyfunction!(rpo, m)?,
        wrap_pyfunction!(dpop, m)?,
        wrap_pyfunction!(objective, m)?,
    ] {
        m.add_function(f)?;
    }
    Ok(())
}
