//! Objectives and the one-step decomposition: `SFT`, the pairwise losses (the crate's
//! [`PairLoss`], TRL's names as aliases), `Custom` (a Python callable, checked against
//! finite differences of its own loss before any step), `one_step` (A, K, G, log π,
//! predicted and actual Δ log π, and for pairwise losses the change by term and the
//! squeezing record of `y⁻`'s positions) and `squeeze` (App. E's one-column step).

use std::sync::Mutex;

use learning_dynamics::decomposition::{self, OneStep, predict};
use learning_dynamics::experiments::lm_measures::{
    PositionRecord, Source, measure_update, term_directions,
};
use learning_dynamics::experiments::lm_world::LmConfig;
use learning_dynamics::lm::kernel::KernelFactors;
use learning_dynamics::lm::{Sequence, TinyLm, update};
use learning_dynamics::mlp::Mlp;
use learning_dynamics::mlp::kernel::entk_layerwise;
use learning_dynamics::model::Model;
use learning_dynamics::numerics::adaptation_matrix;
use learning_dynamics::objective::{
    CrossEntropy, DpopForm, Objective as CrateObjective, PairLoss, RpoWeighting, check_residuals,
};
use learning_dynamics::squeezing::{Direction, Squeeze};
use nalgebra::{DMatrix, DVector};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::arrays::{read_matrix, read_tokens, read_vector, transposed, vector};
use crate::models::{Net, read_sequence};
use crate::{guard, to_py};

/// What an `Objective` is: SFT (cross-entropy on a label or a response) or a pairwise loss.
#[derive(Clone, Copy)]
enum Kind {
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
pub(crate) struct Objective(Kind);

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

/// Everything `one_step` returns, as the crate computed it (the Rust benchmark's result).
pub(crate) struct Computed {
    step: OneStep,
    loss: f64,
    /// Per observed input, `A_m` for every position.
    a: Vec<Vec<DMatrix<f64>>>,
    /// Per observed input and update input, `K(x_o, x_u)` as `(V·M) × (V·L)`.
    k: Option<Vec<Vec<DMatrix<f64>>>>,
    /// For a pairwise loss: its terms' changes and the squeezing at `y⁻`'s positions.
    pairwise: Option<Terms>,
    classifier: bool,
}

/// What a pairwise step adds: the first-order change of every observed input caused by
/// each term of `G` (chosen, rejected, anchor), and the squeezing records of `y⁻`'s own
/// positions.
struct Terms {
    by_term: [Vec<DMatrix<f64>>; 3],
    positions: Vec<PositionRecord>,
}

/// `A_m` of every column of `log π`.
fn adaptations(log_pi: &DMatrix<f64>) -> Vec<DMatrix<f64>> {
    let pi = log_pi.map(f64::exp);
    pi.column_iter()
        .map(|c| adaptation_matrix(c.clone_owned().as_view()))
        .collect()
}

/// The decomposition of a classifier's step on `x_u` (the objective's one input).
fn classifier_step(
    mlp: &Mlp,
    x_u: DVector<f64>,
    objective: &dyn CrateObjective,
    observed: &[DVector<f64>],
    eta: f64,
    kernel: bool,
) -> learning_dynamics::Result<Computed> {
    let update = std::slice::from_ref(&x_u);
    let loss = decomposition::gradient(mlp, update, objective)?.loss;
    let step = decomposition::one_step(mlp, update, objective, observed, eta)?;
    let a = step
        .observed
        .iter()
        .map(|o| adaptations(&o.log_pi))
        .collect();
    let k = kernel.then(|| {
        observed
            .iter()
            .map(|x| vec![entk_layerwise(mlp, x, &x_u)])
            .collect()
    });
    Ok(Computed {
        step,
        loss,
        a,
        k,
        pairwise: None,
        classifier: true,
    })
}

/// The decomposition of a TinyLM's step on `update`; `pairwise` marks a preference loss,
/// whose terms and squeezing are measured too.
fn lm_step(
    lm: &TinyLm,
    update: &[Sequence],
    objective: &dyn CrateObjective,
    observed: &[Sequence],
    eta: f64,
    (kernel, pairwise): (bool, bool),
) -> learning_dynamics::Result<Computed> {
    let gradient = decomposition::gradient(lm, update, objective)?;
    let step = decomposition::one_step(lm, update, objective, observed, eta)?;
    let a = step
        .observed
        .iter()
        .map(|o| adaptations(&o.log_pi))
        .collect();
    let k = kernel.then(|| {
        let factors_u: Vec<KernelFactors> = update
            .iter()
            .map(|x| KernelFactors::of(lm, std::slice::from_ref(x)))
            .collect();
        observed
            .iter()
            .map(|x| {
                let fo = KernelFactors::of(lm, std::slice::from_ref(x));
                factors_u.iter().map(|fu| fo.structured(fu)).collect()
            })
            .collect()
    });
    let pairwise = match pairwise {
        false => None,
        true => {
            let mut after = lm.clone();
            after.sgd_step(&step.grad, eta)?;
            let (_, directions) = term_directions(
                (lm, &after),
                update,
                (&step.residuals, gradient.anchor.as_deref()),
                eta,
            );
            let (_, mut changes) = predict(lm, observed, &directions);
            let zeros = || {
                step.observed
                    .iter()
                    .map(|o| DMatrix::zeros(o.log_pi.nrows(), o.log_pi.ncols()))
                    .collect()
            };
            let anchor = if changes.len() > 3 {
                changes.pop().expect("an anchor")
            } else {
                zeros()
            };
            changes.truncate(2);
            let rejected = changes.pop().expect("the rejected term");
            let chosen = changes.pop().expect("the chosen term");
            let records = measure_update(1, (lm, &after), update, &step.residuals, eta)?;
            Some(Terms {
                by_term: [chosen, rejected, anchor],
                positions: records,
            })
        }
    };
    Ok(Computed {
        step,
        loss: gradient.loss,
        a,
        k,
        pairwise,
        classifier: false,
    })
}

/// The crate's objective for a built-in `Objective` on a classifier.
fn classifier_objective(kind: Kind) -> PyResult<CrossEntropy> {
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

/// The observed inputs of a classifier: `(n, d)` or a list of `(d,)`.
fn read_observed_vectors(observe: &Bound<'_, PyAny>) -> PyResult<Vec<DVector<f64>>> {
    if let Ok(m) = read_matrix(observe, "observe") {
        return Ok(m.row_iter().map(|r| r.transpose()).collect());
    }
    let list: Vec<Bound<'_, PyAny>> = observe.extract().map_err(|_| {
        PyValueError::new_err("observe must be an (n, d) array or a list of (d,) arrays")
    })?;
    list.iter()
        .enumerate()
        .map(|(i, x)| read_vector(x, &format!("observe[{i}]")))
        .collect()
}

/// Runs `f` on the objective the user gave: a built-in one (`built`) or a `Custom`,
/// checked against finite differences at `logits` (the update's) first.
fn with_objective<T>(
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

/// The crate's computation of `one_step` for a classifier or an LM.
fn compute(
    model: &Bound<'_, PyAny>,
    update: &Bound<'_, PyAny>,
    objective: &Bound<'_, PyAny>,
    observe: &Bound<'_, PyAny>,
    eta: f64,
    reference: Option<&Bound<'_, PyAny>>,
    kernel: bool,
) -> PyResult<Computed> {
    match Net::of(model)? {
        Net::Classifier(mlp) => {
            if reference.is_some() {
                return Err(PyValueError::new_err(
                    "reference applies to a TinyLM's pairwise losses only",
                ));
            }
            let x_u = read_vector(update, "update (x_u)")?;
            mlp.check_input(&x_u).map_err(to_py)?;
            let observed = read_observed_vectors(observe)?;
            let logits = vec![mlp.logits(&x_u)];
            let built = |kind| Ok(Box::new(classifier_objective(kind)?) as Box<dyn CrateObjective>);
            with_objective(objective, built, (1, true, logits), |o| {
                classifier_step(&mlp, x_u.clone(), o, &observed, eta, kernel)
            })
        }
        Net::Lm(lm) => {
            let observed: Vec<Sequence> = observe
                .extract::<Vec<Bound<'_, PyAny>>>()
                .map_err(|_| {
                    PyValueError::new_err("observe must be a list of (prompt, response) pairs")
                })?
                .iter()
                .enumerate()
                .map(|(i, x)| read_sequence(x, &format!("observe[{i}]")))
                .collect::<PyResult<_>>()?;
            observed
                .iter()
                .try_for_each(|x| lm.check_input(x))
                .map_err(to_py)?;
            let reference = match reference {
                Some(r) => match Net::of(r)? {
                    Net::Lm(r) if r.spec() == lm.spec() => Some(r),
                    _ => {
                        return Err(PyValueError::new_err(
                            "reference must be a TinyLM of the model's sizes",
                        ));
                    }
                },
                None => None,
            };
            let kind = objective
                .extract::<PyRef<'_, Objective>>()
                .ok()
                .map(|o| o.0);
            let inputs: Vec<Sequence> = match kind {
                Some(Kind::Pair { .. }) => {
                    let (prompt, chosen, rejected): (Bound<'_, PyAny>, Bound<'_, PyAny>, Bound<'_, PyAny>) =
                        update.extract().map_err(|_| {
                            PyValueError::new_err("a pairwise loss's update is (prompt, chosen, rejected), three token lists")
                        })?;
                    let prompt = read_tokens(&prompt, "prompt")?;
                    let chosen = read_tokens(&chosen, "chosen")?;
                    let rejected = read_tokens(&rejected, "rejected")?;
                    if chosen.is_empty() || rejected.is_empty() {
                        return Err(PyValueError::new_err(
                            "chosen and rejected must be non-empty responses",
                        ));
                    }
                    let (chosen, rejected) = (
                        Sequence::new(&prompt, &chosen),
                        Sequence::new(&prompt, &rejected),
                    );
                    vec![chosen, rejected]
                }
                Some(Kind::Sft { .. }) => vec![read_sequence(update, "update")?],
                None => match read_sequence(update, "update") {
                    Ok(x) => vec![x],
                    Err(_) => update
                        .extract::<Vec<Bound<'_, PyAny>>>()
                        .map_err(|_| {
                            PyValueError::new_err(
                                "update must be (prompt, response) or a list of them",
                            )
                        })?
                        .iter()
                        .enumerate()
                        .map(|(i, x)| read_sequence(x, &format!("update[{i}]")))
                        .collect::<PyResult<_>>()?,
                },
            };
            inputs
                .iter()
                .try_for_each(|x| lm.check_input(x))
                .map_err(to_py)?;
            let logits: Vec<DMatrix<f64>> = inputs.iter().map(|x| lm.logits(x)).collect();
            let built = |kind: Kind| -> PyResult<Box<dyn CrateObjective>> {
                match kind {
                    Kind::Sft { negative: true, .. } => Err(PyValueError::new_err(
                        "a TinyLM's SFT is a positive gradient on every response token (negative=True is for classifiers)",
                    )),
                    Kind::Sft { .. } => Ok(Box::new(CrossEntropy::sequence(inputs[0].response()))),
                    Kind::Pair { loss, beta } => {
                        let reference = reference.as_ref().unwrap_or(&lm);
                        let pair = (inputs[0].response().to_vec(), inputs[1].response().to_vec());
                        let (_, objective) =
                            update::pair(reference, inputs[0].prompt(), pair, loss, beta);
                        Ok(Box::new(objective))
                    }
                }
            };
            let pairwise = matches!(kind, Some(Kind::Pair { .. }));
            let arity = inputs.len();
            with_objective(objective, built, (arity, false, logits), |o| {
                lm_step(&lm, &inputs, o, &observed, eta, (kernel, pairwise))
            })
        }
    }
}

/// The result of `one_step`. Shapes: n observed inputs, V classes; an LM's observed
/// sequence i has M_i response positions and update sequence s has L_s.
#[pyclass(module = "learning_dynamics", frozen, get_all)]
pub(crate) struct Step {
    /// The learning rate η.
    eta: f64,
    /// The loss before the step.
    loss: f64,
    /// G = ∂L/∂z at the update: classifier (V,); LM a list of (L_s, V).
    #[pyo3(name = "G")]
    g: Py<PyAny>,
    /// log π of every observed input before the step: classifier (n, V); LM a list of (M_i, V).
    log_pi: Py<PyAny>,
    /// A = I − 1πᵀ: classifier (n, V, V); LM a list of (M_i, V, V), one per position.
    #[pyo3(name = "A")]
    a: Py<PyAny>,
    /// The eNTK K(x_o, x_u) = J(x_o) J(x_u)ᵀ: classifier (n, V, V); LM a list (per observed) of lists (per update sequence) of (M_i, L_s, V, V); None with kernel=False.
    #[pyo3(name = "K")]
    k: Py<PyAny>,
    /// The first-order change −η A K G of log π: shaped as log_pi.
    predicted: Py<PyAny>,
    /// The actual change log π_after − log π_before: shaped as log_pi.
    actual: Py<PyAny>,
    /// Pairwise losses: {"chosen", "rejected", "anchor"} → each term's first-order change, shaped as log_pi (they sum to predicted); else None.
    by_term: Py<PyAny>,
    /// Pairwise losses: one dict per position of y⁻ not shared with y⁺ (position, class "peak"/"chosen"/"third", rejected_log_prob, and per source the change of the argmax, runner-up, y⁻'s and y⁺'s tokens, the rest, the entropy, and how many tokens rise); else None.
    positions: Py<PyAny>,
}

#[pymethods]
impl Step {
    fn __repr__(&self) -> String {
        format!("Step(eta={}, loss={})", self.eta, self.loss)
    }
}

/// An array in the package's layout (C order, positions first), owned by Rust until it
/// is handed to numpy without a copy ([`Dense::into_py`]).
struct Dense {
    shape: Vec<usize>,
    values: Vec<f64>,
}

impl Dense {
    /// A 1-D array.
    fn vector(values: &[f64]) -> Self {
        Dense {
            shape: vec![values.len()],
            values: values.to_vec(),
        }
    }

    /// A crate matrix `V × L` as `(L, V)` (column-major data read row by row).
    fn transposed(m: &DMatrix<f64>) -> Self {
        Dense {
            shape: vec![m.ncols(), m.nrows()],
            values: m.as_slice().to_vec(),
        }
    }

    /// Equal-shaped matrices (`rows × cols` each) stacked into `(n, rows, cols)`.
    fn stack(ms: &[DMatrix<f64>]) -> Self {
        let (r, c) = ms.first().map_or((0, 0), |m| m.shape());
        let mut values = vec![0.0; ms.len() * r * c];
        for (m, block) in ms.iter().zip(values.chunks_exact_mut((r * c).max(1))) {
            for (j, column) in m.column_iter().enumerate() {
                for (i, v) in column.iter().enumerate() {
                    block[i * c + j] = *v;
                }
            }
        }
        Dense {
            shape: vec![ms.len(), r, c],
            values,
        }
    }

    /// The single columns of `V × 1` matrices stacked into `(n, V)`.
    fn columns(ms: &[&DMatrix<f64>]) -> Self {
        let v = ms.first().map_or(0, |m| m.nrows());
        let values = ms
            .iter()
            .flat_map(|m| m.as_slice().iter().copied())
            .collect();
        Dense {
            shape: vec![ms.len(), v],
            values,
        }
    }

    /// An LM kernel `(V·M) × (V·L)` as `(M, L, V, V)`: `[m, l, a, b] = K[m·V + a, l·V + b]`,
    /// read column by column (contiguous in the crate's column-major storage).
    fn kernel_blocks(k: &DMatrix<f64>, v: usize) -> Self {
        let (m, l) = (k.nrows() / v, k.ncols() / v);
        let mut values = vec![0.0; k.len()];
        for li in 0..l {
            for b in 0..v {
                let column = k.column(li * v + b);
                for mi in 0..m {
                    let base = (mi * l + li) * v * v + b;
                    for (a, value) in column.rows(mi * v, v).iter().enumerate() {
                        values[base + a * v] = *value;
                    }
                }
            }
        }
        Dense {
            shape: vec![m, l, v, v],
            values,
        }
    }

    /// The array as numpy's, without a copy: numpy keeps Rust's buffer.
    fn into_py(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let array =
            numpy::ndarray::Array::from_shape_vec(numpy::ndarray::IxDyn(&self.shape), self.values)
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(numpy::PyArray::from_owned_array(py, array)
            .into_any()
            .unbind())
    }
}

/// One field of a step: an array, a list of arrays or a list of lists of them.
enum Field {
    One(Dense),
    List(Vec<Dense>),
    Nested(Vec<Vec<Dense>>),
    Absent,
}

impl Field {
    fn list(ms: impl IntoIterator<Item = Dense>) -> Self {
        Field::List(ms.into_iter().collect())
    }

    fn into_py(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let list = |items: Vec<Dense>| -> PyResult<Bound<'_, PyList>> {
            PyList::new(
                py,
                items
                    .into_iter()
                    .map(|d| d.into_py(py))
                    .collect::<PyResult<Vec<_>>>()?,
            )
        };
        Ok(match self {
            Field::One(d) => d.into_py(py)?,
            Field::List(items) => list(items)?.into_any().unbind(),
            Field::Nested(rows) => {
                let rows = rows.into_iter().map(list).collect::<PyResult<Vec<_>>>()?;
                PyList::new(py, rows)?.into_any().unbind()
            }
            Field::Absent => py.None(),
        })
    }
}

/// A step's arrays in the package's layout, computed in Rust: what `one_step` hands to
/// numpy (without copying), and what the Rust side of `_time_one_step` produces.
struct Arrays {
    eta: f64,
    loss: f64,
    g: Field,
    log_pi: Field,
    a: Field,
    k: Field,
    predicted: Field,
    actual: Field,
    by_term: Option<[Field; 3]>,
    positions: Option<Vec<PositionRecord>>,
}

/// Lays a computed step out in the package's shapes (see [`Step`]).
fn layout(c: Computed) -> Arrays {
    let o = &c.step.observed;
    let per_observed =
        |f: fn(&learning_dynamics::decomposition::Observation) -> &DMatrix<f64>| match c.classifier
        {
            true => Field::One(Dense::columns(&o.iter().map(f).collect::<Vec<_>>())),
            false => Field::list(o.iter().map(|x| Dense::transposed(f(x)))),
        };
    let (log_pi, predicted, actual) = (
        per_observed(|x| &x.log_pi),
        per_observed(|x| &x.predicted),
        per_observed(|x| &x.actual),
    );
    let v = c.step.residuals[0].nrows();
    let (g, a, k) = match c.classifier {
        true => (
            Field::One(Dense::vector(c.step.residuals[0].as_slice())),
            Field::One(Dense::stack(
                &c.a.iter().map(|a| a[0].clone()).collect::<Vec<_>>(),
            )),
            c.k.map_or(Field::Absent, |k| {
                Field::One(Dense::stack(
                    &k.into_iter().map(|mut k| k.remove(0)).collect::<Vec<_>>(),
                ))
            }),
        ),
        false => (
            Field::list(c.step.residuals.iter().map(Dense::transposed)),
            Field::list(c.a.iter().map(|a| Dense::stack(a))),
            c.k.map_or(Field::Absent, |k| {
                Field::Nested(
                    k.iter()
                        .map(|per_u| per_u.iter().map(|k| Dense::kernel_blocks(k, v)).collect())
                        .collect(),
                )
            }),
        ),
    };
    let (by_term, positions) = match c.pairwise {
        None => (None, None),
        Some(Terms { by_term, positions }) => (
            Some(by_term.map(|term| Field::list(term.iter().map(Dense::transposed)))),
            Some(positions),
        ),
    };
    Arrays {
        eta: c.step.eta,
        loss: c.loss,
        g,
        log_pi,
        a,
        k,
        predicted,
        actual,
        by_term,
        positions,
    }
}

/// One record of `y⁻`'s squeezing as a dict.
fn position_dict<'py>(py: Python<'py>, r: &PositionRecord) -> PyResult<Bound<'py, PyAny>> {
    let d = PyDict::new(py);
    d.set_item("position", r.position)?;
    d.set_item("class", r.class.id())?;
    d.set_item("rejected_log_prob", r.rejected_log_prob)?;
    for source in Source::ALL {
        let c = r.change(source);
        let change = PyDict::new(py);
        change.set_item("argmax", c.argmax)?;
        change.set_item("runner_up", c.runner_up)?;
        change.set_item("rejected", c.rejected)?;
        change.set_item("chosen", c.chosen)?;
        change.set_item("rest", c.rest)?;
        change.set_item("entropy", c.entropy)?;
        change.set_item("rising", c.rising)?;
        d.set_item(source.id(), change)?;
    }
    Ok(d.into_any())
}

/// The step's arrays handed to Python (numpy keeps Rust's buffers).
fn convert(py: Python<'_>, arrays: Arrays) -> PyResult<Step> {
    let by_term = match arrays.by_term {
        None => py.None(),
        Some(terms) => {
            let d = PyDict::new(py);
            for (name, term) in ["chosen", "rejected", "anchor"].into_iter().zip(terms) {
                d.set_item(name, term.into_py(py)?)?;
            }
            d.into_any().unbind()
        }
    };
    let positions = match arrays.positions {
        None => py.None(),
        Some(records) => {
            let dicts = records
                .iter()
                .map(|r| position_dict(py, r))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, dicts)?.into_any().unbind()
        }
    };
    Ok(Step {
        eta: arrays.eta,
        loss: arrays.loss,
        g: arrays.g.into_py(py)?,
        log_pi: arrays.log_pi.into_py(py)?,
        a: arrays.a.into_py(py)?,
        k: arrays.k.into_py(py)?,
        predicted: arrays.predicted.into_py(py)?,
        actual: arrays.actual.into_py(py)?,
        by_term,
        positions,
    })
}

/// One SGD step on `update`, decomposed on every observed input (the paper's Prop. 1
/// and Eq. 5):
///
///     Δ log π(x_o) = −η · A(x_o) · K(x_o, x_u) · G(x_u) + O(η²)
///
/// A = I − 1πᵀ (the Jacobian of log-softmax at x_o, per position), K = J(x_o) J(x_u)ᵀ
/// (the empirical NTK of the logits), G = ∂L/∂z(x_u) (the residual, with its sign).
/// Every term is exact (analytic gradients); the step is really taken and the actual
/// change returned beside the prediction.
///
/// Classifier (Linear, MLP): update x_u (d,); objective SFT(label=k) or Custom; observe
/// (n, d) or a list of (d,). Returns G (V,), log_pi/predicted/actual (n, V),
/// A and K (n, V, V).
///
/// TinyLM: update (prompt, response) for SFT, (prompt, chosen, rejected) for a pairwise
/// loss (reference: the frozen reference model, default the model itself), or a list of
/// (prompt, response) for Custom; observe a list of (prompt, response). Returns G a list
/// of (L_s, V); log_pi/predicted/actual lists of (M_i, V); A a list of (M_i, V, V);
/// K a list of lists of (M_i, L_s, V, V); and for pairwise losses by_term and positions.
///
/// Arrays are float64, C order, positions first and classes last; log-probabilities in
/// nats. Errors: ValueError with the reason (a shape, a token out of range, η not
/// finite and > 0, a Custom G that disagrees with its loss).
#[pyfunction]
#[pyo3(signature = (model, update, objective, observe, eta, reference = None, kernel = true))]
#[allow(clippy::too_many_arguments, reason = "the Python signature")]
fn one_step(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    update: &Bound<'_, PyAny>,
    objective: &Bound<'_, PyAny>,
    observe: &Bound<'_, PyAny>,
    eta: f64,
    reference: Option<&Bound<'_, PyAny>>,
    kernel: bool,
) -> PyResult<Step> {
    guard(|| {
        let computed = compute(model, update, objective, observe, eta, reference, kernel)?;
        convert(py, layout(computed))
    })
}

/// The conversion's cost, measured in one process: the median time of the Rust side alone
/// (the crate's computation and the arrays laid out in the package's shapes: what a Rust
/// benchmark producing the same arrays runs) and of the whole call with its handover to
/// numpy and Python objects, each over `reps` calls, interleaved.
#[pyfunction]
#[pyo3(signature = (model, update, objective, observe, eta, reps, reference = None, kernel = true))]
#[allow(clippy::too_many_arguments, reason = "the Python signature")]
fn _time_one_step(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    update: &Bound<'_, PyAny>,
    objective: &Bound<'_, PyAny>,
    observe: &Bound<'_, PyAny>,
    eta: f64,
    reps: usize,
    reference: Option<&Bound<'_, PyAny>>,
    kernel: bool,
) -> PyResult<(f64, f64)> {
    guard(|| {
        let (mut rust, mut whole) = (Vec::new(), Vec::new());
        for _ in 0..reps.max(1) {
            let t = std::time::Instant::now();
            let arrays = layout(compute(
                model, update, objective, observe, eta, reference, kernel,
            )?);
            rust.push(t.elapsed().as_secs_f64());
            drop(arrays);
            let t = std::time::Instant::now();
            let arrays = layout(compute(
                model, update, objective, observe, eta, reference, kernel,
            )?);
            let _step = convert(py, arrays)?;
            whole.push(t.elapsed().as_secs_f64());
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        Ok((median(&mut rust), median(&mut whole)))
    })
}

/// App. E's one-column step: Δz = ±c (π − e_k) on logits z (V,), c = step; "negative"
/// is a negative gradient on class k (π_k falls), "positive" a positive one. Returns
/// {"before": π (V,), "after": π (V,), "log_before": log π (V,), "log_after": log π (V,),
/// "rose": the classes whose probability rose, "summary": the line `ldyn squeeze`
/// prints}. log π is computed in the log domain (probabilities down to 1e-300 and
/// logits of ±1e3 are exact).
#[pyfunction]
#[pyo3(signature = (logits, cls, direction = "negative", step = 1.0))]
fn squeeze<'py>(
    py: Python<'py>,
    logits: &Bound<'py, PyAny>,
    cls: usize,
    direction: &str,
    step: f64,
) -> PyResult<Bound<'py, PyDict>> {
    guard(|| {
        let z = read_vector(logits, "logits")?;
        let direction: Direction = direction.parse().map_err(to_py)?;
        let s = Squeeze::from_logit_step(z.as_slice(), cls, direction, step).map_err(to_py)?;
        let d = PyDict::new(py);
        let exp = |v: &[f64]| v.iter().map(|x| x.exp()).collect::<Vec<_>>();
        d.set_item("before", vector(py, &exp(&s.log_p_before)))?;
        d.set_item("after", vector(py, &exp(&s.log_p_after)))?;
        d.set_item("log_before", vector(py, &s.log_p_before))?;
        d.set_item("log_after", vector(py, &s.log_p_after))?;
        d.set_item("rose", s.risen())?;
        d.set_item("summary", s.summary().to_string())?;
        Ok(d)
    })
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Objective>()?;
    m.add_class::<Custom>()?;
    m.add_class::<Step>()?;
    for f in [
        wrap_pyfunction!(sft, m)?,
        wrap_pyfunction!(dpo, m)?,
        wrap_pyfunction!(ipo, m)?,
        wrap_pyfunction!(slic, m)?,
        wrap_pyfunction!(sppo_hard, m)?,
        wrap_pyfunction!(rpo, m)?,
        wrap_pyfunction!(dpop, m)?,
        wrap_pyfunction!(objective, m)?,
        wrap_pyfunction!(one_step, m)?,
        wrap_pyfunction!(_time_one_step, m)?,
        wrap_pyfunction!(squeeze, m)?,
    ] {
        m.add_function(f)?;
    }
    Ok(())
}
