//! The one-step decomposition from Python: `one_step` (A, K, G, log π, predicted and
//! actual Δ log π, and for pairwise losses the change by term and the squeezing record of
//! `y⁻`'s positions), `_time_one_step` (its conversion's cost) and `squeeze` (App. E's
//! one-column step). [`compute`] reads the user's inputs and runs the crate; [`layout`]
//! and [`convert`] hand the result over.

use learning_dynamics::decomposition::{self, OneStep, predict};
use learning_dynamics::experiments::lm_measures::{
    PositionRecord, measure_update, term_directions,
};
use learning_dynamics::lm::kernel::KernelFactors;
use learning_dynamics::lm::{Sequence, TinyLm, update};
use learning_dynamics::mlp::Mlp;
use learning_dynamics::mlp::kernel::entk_layerwise;
use learning_dynamics::model::Model;
use learning_dynamics::numerics::adaptation_matrix;
use learning_dynamics::objective::{CrossEntropy, Objective as CrateObjective};
use learning_dynamics::squeezing::{Direction, Squeeze};
use nalgebra::{DMatrix, DVector};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrays::{read_matrix, read_tokens, read_vector, vector};
use crate::layout::{Step, convert, layout};
use crate::models::{Net, read_sequence};
use crate::objectives::{Kind, Objective, classifier_objective, with_objective};
use crate::{guard, to_py};

/// Everything `one_step` returns, as the crate computed it (the Rust benchmark's result).
pub(crate) struct Computed {
    pub(crate) step: OneStep,
    /// Per observed input, `A_m` for every position.
    pub(crate) a: Vec<Vec<DMatrix<f64>>>,
    /// Per observed input and update input, `K(x_o, x_u)` as `(V·M) × (V·L)`.
    pub(crate) k: Option<Vec<Vec<DMatrix<f64>>>>,
    /// For a pairwise loss: its terms' changes and the squeezing at `y⁻`'s positions.
    pub(crate) pairwise: Option<Terms>,
    pub(crate) classifier: bool,
}

/// What a pairwise step adds: the first-order change of every observed input caused by
/// each term of `G` (chosen, rejected, anchor), and the squeezing records of `y⁻`'s own
/// positions.
pub(crate) struct Terms {
    pub(crate) by_term: [Vec<DMatrix<f64>>; 3],
    pub(crate) positions: Vec<PositionRecord>,
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
                (&step.residuals, step.anchor.as_deref()),
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
        a,
        k,
        pairwise,
        classifier: false,
    })
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
    m.add_class::<Step>()?;
    for f in [
        wrap_pyfunction!(one_step, m)?,
        wrap_pyfunction!(_time_one_step, m)?,
        wrap_pyfunction!(squeeze, m)?,
    ] {
        m.add_function(f)?;
    }
    Ok(())
}
