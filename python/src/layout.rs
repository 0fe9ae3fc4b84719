//! A step's arrays in the package's layout: computed in Rust in their final shapes
//! (C order, positions first, classes last: [`layout`]), then handed to numpy without a
//! copy ([`convert`]), so the boundary costs Python objects, not memory traffic.

use learning_dynamics::experiments::lm_measures::{PositionRecord, Source};
use nalgebra::DMatrix;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::step::{Computed, Terms};

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
pub(crate) struct Arrays {
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
pub(crate) fn layout(c: Computed) -> Arrays {
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
        loss: c.step.loss,
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
pub(crate) fn convert(py: Python<'_>, arrays: Arrays) -> PyResult<Step> {
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
