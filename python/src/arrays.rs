//! Matrices across the boundary. Every array the package returns is `float64` in C
//! (row-major) order, whatever order the crate's column-major matrices hold, and the
//! package's shapes put positions first and classes last: the crate's `V × L` logits are
//! `(L, V)` in Python, as PyTorch and JAX hold them. Arrays given by the user may have
//! any memory order; they are copied.

use nalgebra::{DMatrix, DVector};
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// `values` as a 1-D array.
pub(crate) fn vector<'py>(py: Python<'py>, values: &[f64]) -> Bound<'py, PyAny> {
    PyArray1::from_slice(py, values).into_any()
}

/// `values` (C order) as an array of `shape`.
pub(crate) fn shaped<'py>(
    py: Python<'py>,
    values: &[f64],
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    Ok(PyArray1::from_slice(py, values).reshape(shape)?.into_any())
}

/// The transpose of `m` in C order: a crate matrix `V × L` becomes the `(L, V)` array
/// whose row `l` is column `l` (one copy, since column-major data read row by row is
/// the transpose).
pub(crate) fn transposed<'py>(py: Python<'py>, m: &DMatrix<f64>) -> PyResult<Bound<'py, PyAny>> {
    shaped(py, m.as_slice(), &[m.ncols(), m.nrows()])
}

/// `m` as it is (`rows × columns`), in C order.
pub(crate) fn matrix<'py>(py: Python<'py>, m: &DMatrix<f64>) -> PyResult<Bound<'py, PyAny>> {
    shaped(py, m.transpose().as_slice(), &[m.nrows(), m.ncols()])
}

/// A 1-D float array of the user's, checked finite.
pub(crate) fn read_vector(x: &Bound<'_, PyAny>, what: &str) -> PyResult<DVector<f64>> {
    let array: PyReadonlyArray1<f64> = x
        .extract()
        .map_err(|_| PyValueError::new_err(format!("{what} must be a 1-D array of floats")))?;
    let v = DVector::from_iterator(array.len(), array.as_array().iter().copied());
    finite(v.as_slice(), what)?;
    Ok(v)
}

/// A 2-D float array of the user's (any memory order), checked finite.
pub(crate) fn read_matrix(x: &Bound<'_, PyAny>, what: &str) -> PyResult<DMatrix<f64>> {
    let array: PyReadonlyArray2<f64> = x
        .extract()
        .map_err(|_| PyValueError::new_err(format!("{what} must be a 2-D array of floats")))?;
    let view = array.as_array();
    let (r, c) = (view.nrows(), view.ncols());
    let m = DMatrix::from_fn(r, c, |i, j| view[[i, j]]);
    finite(m.as_slice(), what)?;
    Ok(m)
}

/// Refuses NaN and infinity, naming `what`.
fn finite(values: &[f64], what: &str) -> PyResult<()> {
    match values.iter().all(|v| v.is_finite()) {
        true => Ok(()),
        false => Err(PyValueError::new_err(format!(
            "{what} must be finite (no NaN or infinity)"
        ))),
    }
}

/// A list of token ids of the user's.
pub(crate) fn read_tokens(x: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<usize>> {
    x.extract::<Vec<usize>>().map_err(|_| {
        PyValueError::new_err(format!("{what} must be a list of token ids (integers ≥ 0)"))
    })
}
