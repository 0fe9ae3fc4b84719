//! The models: `Linear` and `MLP` (the crate's [`Mlp`]) and `TinyLM` ([`TinyLm`]), built
//! from a seed exactly as the crate builds them (so `MLP([4, 8, 5], seed=3)` is the model
//! `ldyn akg --model mlp --seed 3` decomposes), from the user's weights, or, for the LM,
//! from a world's checkpoints.

use learning_dynamics::Rng64;
use learning_dynamics::experiments::lm_world::{LmConfig, Stage, pretrained, world_model};
use learning_dynamics::lm::{LmSpec, Sequence, TinyLm};
use learning_dynamics::mlp::{Activation, Layer, Mlp};
use learning_dynamics::model::Model;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rand::SeedableRng;

use crate::arrays::{matrix, read_matrix, read_tokens, read_vector, transposed, vector};
use crate::{guard, long, to_py};

/// The model an API call reads, whichever class holds it.
pub(crate) enum Net {
    Classifier(Mlp),
    Lm(TinyLm),
}

impl Net {
    /// The crate model inside a `Linear`, `MLP` or `TinyLM`.
    pub(crate) fn of(model: &Bound<'_, PyAny>) -> PyResult<Net> {
        if let Ok(m) = model.extract::<PyRef<'_, Linear>>() {
            return Ok(Net::Classifier(m.0.clone()));
        }
        if let Ok(m) = model.extract::<PyRef<'_, PyMlp>>() {
            return Ok(Net::Classifier(m.0.clone()));
        }
        if let Ok(m) = model.extract::<PyRef<'_, TinyLM>>() {
            return Ok(Net::Lm(m.model.clone()));
        }
        Err(PyValueError::new_err(
            "model must be a learning_dynamics Linear, MLP or TinyLM",
        ))
    }
}

/// A sequence `χ = [prompt; response]` of the user's: a pair of token lists.
pub(crate) fn read_sequence(x: &Bound<'_, PyAny>, what: &str) -> PyResult<Sequence> {
    let (prompt, response): (Bound<'_, PyAny>, Bound<'_, PyAny>) = x.extract().map_err(|_| {
        PyValueError::new_err(format!(
            "{what} must be a pair (prompt, response) of token lists"
        ))
    })?;
    let prompt = read_tokens(&prompt, &format!("{what}'s prompt"))?;
    let response = read_tokens(&response, &format!("{what}'s response"))?;
    if response.is_empty() {
        return Err(PyValueError::new_err(format!(
            "{what}'s response is empty: nothing is scored"
        )));
    }
    Ok(Sequence::new(&prompt, &response))
}

fn activation(name: &str) -> PyResult<Activation> {
    match name {
        "tanh" => Ok(Activation::Tanh),
        "relu" => Ok(Activation::Relu),
        _ => Err(PyValueError::new_err(format!(
            "unknown activation '{name}' (expected one of: tanh, relu)"
        ))),
    }
}

/// The layers `[(weight (out, in), bias (out,) or None), …]` of the user's.
fn read_layers(layers: &Bound<'_, PyAny>) -> PyResult<Vec<Layer>> {
    let pairs: Vec<(Bound<'_, PyAny>, Option<Bound<'_, PyAny>>)> =
        layers.extract().map_err(|_| {
            PyValueError::new_err("layers must be a list of (weight, bias) pairs; bias may be None")
        })?;
    pairs
        .iter()
        .enumerate()
        .map(|(i, (w, b))| {
            Ok(Layer {
                weight: read_matrix(w, &format!("layers[{i}]'s weight"))?,
                bias: b
                    .as_ref()
                    .map(|b| read_vector(b, &format!("layers[{i}]'s bias")))
                    .transpose()?,
            })
        })
        .collect()
}

/// The weights of an MLP as `layers.K.weight` (out, in) and `layers.K.bias` (out,).
fn layer_weights<'py>(
    py: Python<'py>,
    mlp: &Mlp,
    dict: &Bound<'py, PyDict>,
    prefix: &str,
) -> PyResult<()> {
    for (k, layer) in mlp.layers().iter().enumerate() {
        dict.set_item(format!("{prefix}{k}.weight"), matrix(py, &layer.weight)?)?;
        if let Some(b) = &layer.bias {
            dict.set_item(format!("{prefix}{k}.bias"), vector(py, b.as_slice()))?;
        }
    }
    Ok(())
}

/// Logits of a classifier for `x` of shape `(d,)` → `(V,)`, or `(n, d)` → `(n, V)`.
fn classifier_logits<'py>(
    py: Python<'py>,
    mlp: &Mlp,
    x: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    if let Ok(v) = read_vector(x, "x") {
        mlp.check_input(&v).map_err(to_py)?;
        return Ok(vector(py, mlp.logits(&v).as_slice()));
    }
    let xs = read_matrix(x, "x")
        .map_err(|_| PyValueError::new_err("x must be an array of shape (d,) or (n, d)"))?;
    let xs = xs.transpose();
    if xs.nrows() != mlp.inputs() {
        return Err(to_py(learning_dynamics::Error::ShapeMismatch {
            what: "input vector",
            expected: mlp.inputs(),
            got: xs.nrows(),
        }));
    }
    transposed(py, &mlp.logits_batch(&xs))
}

/// A linear softmax classifier `z = W x + b`, `W` of shape `(V, d)`.
#[pyclass(module = "learning_dynamics", frozen)]
pub(crate) struct Linear(pub(crate) Mlp);

#[pymethods]
impl Linear {
    /// Linear(inputs, classes, seed=0): W ~ N(0, 1/d), b ~ N(0, 0.1²), drawn as `ldyn akg --model linear` draws them.
    #[new]
    #[pyo3(signature = (inputs, classes, seed = 0))]
    fn new(inputs: usize, classes: usize, seed: u64) -> PyResult<Self> {
        guard(|| {
            let mut rng = Rng64::seed_from_u64(seed);
            Mlp::random(&[inputs, classes], Activation::Identity, true, &mut rng)
                .map(Linear)
                .map_err(to_py)
        })
    }

    /// Linear.from_weights(weight (V, d), bias (V,) or None).
    #[staticmethod]
    #[pyo3(signature = (weight, bias = None))]
    fn from_weights(weight: &Bound<'_, PyAny>, bias: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        guard(|| {
            let weight = read_matrix(weight, "weight")?;
            let bias = bias.map(|b| read_vector(b, "bias")).transpose()?;
            Mlp::linear(weight, bias).map(Linear).map_err(to_py)
        })
    }

    /// {"weight": (V, d), "bias": (V,)}, copies in C order.
    #[getter]
    fn weights<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        let layer = &self.0.layers()[0];
        dict.set_item("weight", matrix(py, &layer.weight)?)?;
        if let Some(b) = &layer.bias {
            dict.set_item("bias", vector(py, b.as_slice()))?;
        }
        Ok(dict)
    }

    /// logits(x): (d,) → (V,), or (n, d) → (n, V).
    fn logits<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        guard(|| classifier_logits(py, &self.0, x))
    }

    fn __repr__(&self) -> String {
        let w = &self.0.layers()[0].weight;
        format!("Linear(inputs={}, classes={})", w.ncols(), w.nrows())
    }
}

/// A multilayer perceptron classifier, `z_k = W_k a_{k−1} + b_k`, the activation after every layer but the last.
#[pyclass(name = "MLP", module = "learning_dynamics", frozen)]
pub(crate) struct PyMlp(pub(crate) Mlp);

#[pymethods]
impl PyMlp {
    /// MLP(sizes=[d, h, …, V], seed=0, activation="tanh"): W ~ N(0, 1/fan_in), b ~ N(0, 0.1²), as `ldyn akg --model mlp` draws them.
    #[new]
    #[pyo3(signature = (sizes, seed = 0, activation = "tanh"))]
    fn new(sizes: Vec<usize>, seed: u64, activation: &str) -> PyResult<Self> {
        guard(|| {
            let activation = self::activation(activation)?;
            if sizes.len() < 3 {
                return Err(PyValueError::new_err(
                    "sizes must list the input, at least one hidden layer and the classes: [d, h, …, V]",
                ));
            }
            let mut rng = Rng64::seed_from_u64(seed);
            Mlp::random(&sizes, activation, true, &mut rng)
                .map(PyMlp)
                .map_err(to_py)
        })
    }

    /// MLP.from_weights([(W_1, b_1), …], activation="tanh"), each W (out, in), b (out,) or None.
    #[staticmethod]
    #[pyo3(signature = (layers, activation = "tanh"))]
    fn from_weights(layers: &Bound<'_, PyAny>, activation: &str) -> PyResult<Self> {
        guard(|| {
            let activation = self::activation(activation)?;
            Mlp::from_layers(read_layers(layers)?, activation)
                .map(PyMlp)
                .map_err(to_py)
        })
    }

    /// {"layers.K.weight": (out, in), "layers.K.bias": (out,)}, copies in C order.
    #[getter]
    fn weights<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        layer_weights(py, &self.0, &dict, "layers.")?;
        Ok(dict)
    }

    /// The activation's name: "tanh" or "relu".
    #[getter]
    fn activation(&self) -> &'static str {
        self.0.activation().name()
    }

    /// logits(x): (d,) → (V,), or (n, d) → (n, V).
    fn logits<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        guard(|| classifier_logits(py, &self.0, x))
    }

    fn __repr__(&self) -> String {
        let mut sizes = vec![self.0.inputs()];
        sizes.extend(self.0.layers().iter().map(|l| l.weight.nrows()));
        format!(
            "MLP(sizes={sizes:?}, activation='{}')",
            self.0.activation().name()
        )
    }
}

/// The tiny autoregressive language model: position m of χ = [x; y] reads the W tokens before it.
#[pyclass(module = "learning_dynamics", frozen)]
pub(crate) struct TinyLM {
    pub(crate) model: TinyLm,
    vocabulary: Option<Vec<String>>,
}

#[pymethods]
impl TinyLM {
    /// TinyLM(vocab, window, embed, hidden, seed=0): embeddings N(0, 1), the MLP as MLP draws it.
    #[new]
    #[pyo3(signature = (vocab, window, embed, hidden, seed = 0))]
    fn new(vocab: usize, window: usize, embed: usize, hidden: usize, seed: u64) -> PyResult<Self> {
        guard(|| {
            let spec = LmSpec {
                vocab,
                window,
                embed,
                hidden,
            };
            // 8 bytes a parameter, for the model and the copies a step makes (its
            // gradient, the stepped model, a forward-mode direction): 32 bytes each.
            learning_dynamics::error::check_memory(
                "vocab, window, embed and hidden",
                spec.params().and_then(|p| p.checked_mul(32)),
                learning_dynamics::error::DEFAULT_MAX_MEMORY,
            )
            .map_err(to_py)?;
            let mut rng = Rng64::seed_from_u64(seed);
            let model = TinyLm::random(spec, &mut rng).map_err(to_py)?;
            Ok(TinyLM {
                model,
                vocabulary: None,
            })
        })
    }

    /// TinyLM.from_weights(embed (V, d), slots (W, d), [(W_1 (h, W·d), b_1), (W_2 (V, h), b_2)]).
    #[staticmethod]
    fn from_weights(
        embed: &Bound<'_, PyAny>,
        slots: &Bound<'_, PyAny>,
        layers: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        guard(|| {
            let mlp = Mlp::from_layers(read_layers(layers)?, Activation::Tanh).map_err(to_py)?;
            let model = TinyLm::from_weights(
                read_matrix(embed, "embed")?,
                read_matrix(slots, "slots")?,
                mlp,
            )
            .map_err(to_py)?;
            Ok(TinyLM {
                model,
                vocabulary: None,
            })
        })
    }

    /// TinyLM.from_world(seed, stage="base"|"sft"): the default LM world's pre-trained model or its SFT checkpoint.
    #[staticmethod]
    #[pyo3(signature = (seed, stage = "base"))]
    fn from_world(py: Python<'_>, seed: u64, stage: &str) -> PyResult<Self> {
        guard(|| {
            let stage = match stage {
                "base" => Stage::Base,
                "sft" => Stage::Sft,
                _ => {
                    return Err(PyValueError::new_err(format!(
                        "unknown stage '{stage}' (expected one of: base, sft)"
                    )));
                }
            };
            let config = LmConfig::default();
            let (model, vocabulary) = long(
                py,
                || {
                    let model = world_model(&config, seed, stage)?;
                    let sizes = pretrained(&config, seed)?.language.sizes;
                    let names = (0..model.spec().vocab)
                        .map(|t| sizes.token_name(t))
                        .collect();
                    Ok((model, names))
                },
                &mut |_| Ok(()),
            )?;
            Ok(TinyLM {
                model,
                vocabulary: Some(vocabulary),
            })
        })
    }

    /// Every token's name, in token order (a world's model), or None.
    #[getter]
    fn vocabulary(&self) -> Option<Vec<String>> {
        self.vocabulary.clone()
    }

    /// {"embed": (V, d), "slots": (W, d), "layers.0.weight": (h, W·d), "layers.0.bias", "layers.1.weight": (V, h), "layers.1.bias"}.
    #[getter]
    fn weights<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        let (embed, slots) = self.model.embeddings();
        dict.set_item("embed", matrix(py, embed)?)?;
        dict.set_item("slots", matrix(py, slots)?)?;
        layer_weights(py, self.model.mlp(), &dict, "layers.")?;
        Ok(dict)
    }

    /// logits(prompt, response): (L, V), one row per response position, L = len(response).
    fn logits<'py>(
        &self,
        py: Python<'py>,
        prompt: &Bound<'py, PyAny>,
        response: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        guard(|| {
            let x = Sequence::new(
                &read_tokens(prompt, "prompt")?,
                &read_tokens(response, "response")?,
            );
            self.model.check_input(&x).map_err(to_py)?;
            transposed(py, &self.model.logits(&x))
        })
    }

    fn __repr__(&self) -> String {
        let s = self.model.spec();
        format!(
            "TinyLM(vocab={}, window={}, embed={}, hidden={})",
            s.vocab, s.window, s.embed, s.hidden
        )
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Linear>()?;
    m.add_class::<PyMlp>()?;
    m.add_class::<TinyLM>()?;
    Ok(())
}
