//! Multi-layer perceptron classifiers, including the linear softmax model, with
//! analytic backprop, forward-mode Jacobian-vector products and the layer-wise
//! backprop factors that the structured eNTK is built from.
//!
//! Layer `l` computes `h_l = W_l a_{l−1} + b_l` with `a_0 = x`; the activation is
//! applied after every layer but the last, `a_l = σ(h_l)`, and the last `h` is the
//! logit vector `z`. A linear softmax classifier `z = W x + b` is one layer.
//!
//! Parameters are flattened layer by layer: `W_l` in column-major order (entry
//! `(i, j)` at offset `i + j·out`), then `b_l` if the layer has a bias.
//!
//! Every pass works on a batch: the inputs are the columns of a matrix, so a batch
//! costs a few matrix products per layer; one input is a batch of one.

use nalgebra::{DMatrix, DVector};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

pub mod kernel;
mod model;

use crate::error::{Error, Result, check_len};
use crate::model::Model;

/// The element-wise nonlinearity between layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `σ(h) = h` (a stack of identity layers is still a linear model).
    Identity,
    /// `σ(h) = tanh h`, `σ'(h) = 1 − tanh² h` ([`crate::vecmath::tanh`], within 2 ulp of
    /// libm).
    Tanh,
    /// `σ(h) = max(h, 0)`, `σ'(h) = 1[h > 0]` (the subgradient 0 is used at `h = 0`).
    Relu,
}

impl Activation {
    /// The name used in JSON exports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
        }
    }

    /// Returns `(σ(h), σ'(h))`.
    pub fn eval(self, h: f64) -> (f64, f64) {
        match self {
            Activation::Identity => (h, 1.0),
            Activation::Tanh => {
                let t = crate::vecmath::tanh1(h);
                (t, 1.0 - t * t)
            }
            Activation::Relu if h > 0.0 => (h, 1.0),
            Activation::Relu => (0.0, 0.0),
        }
    }
}

/// One affine layer `h = W a + b` (`W` is `out × in`).
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    /// `W`, `out × in`.
    pub weight: DMatrix<f64>,
    /// `b`, length `out`, if the layer has one.
    pub bias: Option<DVector<f64>>,
}

impl Layer {
    fn num_params(&self) -> usize {
        self.weight.len() + self.bias.as_ref().map_or(0, DVector::len)
    }
}

/// A fully connected network; see the module docs for the exact layer equations.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    layers: Vec<Layer>,
    activation: Activation,
}

/// What a forward pass leaves behind for the backward pass: the input `a_{l−1}` of
/// every layer and the derivative `σ'(h_l)` of every hidden layer.
/// The forward pass of a batch (one column per input): each layer's input, the
/// activation's derivative at each hidden layer, and the logits. The backward pass
/// ([`Mlp::backward_into`]) reads it, so a gradient costs one forward pass.
pub struct Trace {
    inputs: Vec<DMatrix<f64>>,
    derivs: Vec<DMatrix<f64>>,
    /// The logits, one column per input.
    pub logits: DMatrix<f64>,
}

impl Trace {
    /// The activations the output layer reads (the last hidden layer; the inputs for a
    /// linear model), one column per input.
    pub fn last_hidden(&self) -> &DMatrix<f64> {
        &self.inputs[self.inputs.len() - 1]
    }
}

/// One vector as a one-column matrix.
/// Inputs as the columns of one matrix.
fn stack(xs: &[DVector<f64>]) -> DMatrix<f64> {
    let dim = xs.first().map_or(0, |x| x.len());
    DMatrix::from_fn(dim, xs.len(), |i, j| xs[j][i])
}

fn column(x: &DVector<f64>) -> DMatrix<f64> {
    DMatrix::from_column_slice(x.len(), 1, x.as_slice())
}

/// Adds `b` to every column of `h`.
fn add_bias(h: &mut DMatrix<f64>, b: &[f64]) {
    for mut col in h.column_iter_mut() {
        col.iter_mut().zip(b).for_each(|(h, b)| *h += b);
    }
}

impl Mlp {
    /// Builds a network from explicit layers, checking that consecutive shapes chain
    /// and that there are at least 2 output classes.
    pub fn from_layers(layers: Vec<Layer>, activation: Activation) -> Result<Self> {
        let last = layers
            .last()
            .ok_or_else(|| Error::InvalidArgument("a network needs at least one layer".into()))?;
        if last.weight.nrows() < 2 {
            return Err(Error::TooFewClasses(last.weight.nrows()));
        }
        for pair in layers.windows(2) {
            check_len(
                "layer input size",
                pair[0].weight.nrows(),
                pair[1].weight.ncols(),
            )?;
        }
        for layer in &layers {
            if let Some(b) = &layer.bias {
                check_len("bias length", layer.weight.nrows(), b.len())?;
            }
            let finite = layer.weight.iter().chain(layer.bias.iter().flatten());
            if !finite.into_iter().all(|w| w.is_finite()) {
                return Err(Error::NonFinite("weights"));
            }
        }
        Ok(Mlp { layers, activation })
    }

    /// A randomly initialised network with layer widths `sizes = [d, h_1, ..., V]`.
    ///
    /// Weights are drawn `N(0, 1/fan_in)` and biases `N(0, 0.1²)`, all from `rng`, so the
    /// same seeded generator gives the same network on every platform.
    pub fn random(
        sizes: &[usize],
        activation: Activation,
        bias: bool,
        rng: &mut impl Rng,
    ) -> Result<Self> {
        if sizes.len() < 2 || sizes.contains(&0) {
            return Err(Error::InvalidArgument(format!(
                "layer sizes must be at least [inputs, classes], all > 0, got {sizes:?}"
            )));
        }
        let layers = sizes
            .windows(2)
            .map(|w| {
                let scale = (w[0] as f64).powf(-0.5);
                let weight = DMatrix::from_fn(w[1], w[0], |_, _| scale * normal(rng));
                let bias = bias.then(|| DVector::from_fn(w[1], |_, _| 0.1 * normal(rng)));
                Layer { weight, bias }
            })
            .collect();
        Mlp::from_layers(layers, activation)
    }

    /// A linear softmax classifier `z = W x (+ b)` with `W` of shape `V × d`.
    pub fn linear(weight: DMatrix<f64>, bias: Option<DVector<f64>>) -> Result<Self> {
        Mlp::from_layers(vec![Layer { weight, bias }], Activation::Identity)
    }

    /// The layers, first to last.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// The activation used between layers (irrelevant for a single-layer model).
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// Input dimension `d`.
    pub fn inputs(&self) -> usize {
        self.layers[0].weight.ncols()
    }

    /// The forward pass of a batch whose inputs are the columns of `x`.
    pub fn forward(&self, x: &DMatrix<f64>) -> Trace {
        assert_eq!(
            x.nrows(),
            self.inputs(),
            "input size does not match the model"
        );
        let mut inputs = Vec::with_capacity(self.layers.len());
        let mut derivs = Vec::with_capacity(self.layers.len() - 1);
        let mut a = x.clone();
        let last = self.layers.len() - 1;
        for (l, layer) in self.layers.iter().enumerate() {
            let mut h = &layer.weight * &a;
            if let Some(b) = &layer.bias {
                add_bias(&mut h, b.as_slice());
            }
            inputs.push(a);
            if l == last {
                return Trace {
                    inputs,
                    derivs,
                    logits: h,
                };
            }
            let mut der = h.clone();
            if self.activation == Activation::Tanh {
                // The same values as `eval`, the tanh pass vectorised.
                crate::vecmath::tanh(h.as_mut_slice());
                der.zip_apply(&h, |d, t| *d = 1.0 - t * t);
            } else {
                for (hi, di) in h.iter_mut().zip(der.iter_mut()) {
                    (*hi, *di) = self.activation.eval(*hi);
                }
            }
            a = h;
            derivs.push(der);
        }
        unreachable!("a network has at least one layer")
    }

    /// The logits of a batch: column `i` holds `z(x_i)` for the input in column `i` of `x`.
    pub fn logits_batch(&self, x: &DMatrix<f64>) -> DMatrix<f64> {
        self.forward(x).logits
    }

    /// The backprop factors of every layer: `(B_l, a_{l−1})` with `B_l = ∂z/∂h_l` (`V × n_l`).
    ///
    /// `B_last = I` and `B_l = (B_{l+1} W_{l+1}) diag(σ'(h_l))`. The Jacobian of the logits
    /// with respect to `W_l` is `∂z_v/∂W_l[i, j] = B_l[v, i] a_{l−1}[j]`, which gives the
    /// structured eNTK of [`kernel::entk_layerwise`].
    pub fn layer_factors(&self, x: &DVector<f64>) -> Vec<(DMatrix<f64>, DVector<f64>)> {
        let trace = self.forward(&column(x));
        let v = self.classes();
        let last = self.layers.len() - 1;
        let mut b = DMatrix::identity(v, v);
        let mut factors = Vec::with_capacity(self.layers.len());
        for l in (0..self.layers.len()).rev() {
            let next = (l > 0).then(|| {
                // `B_last W_last = W_last`: no `V × V` product with the identity.
                let mut nb = if l == last {
                    self.layers[l].weight.clone()
                } else {
                    &b * &self.layers[l].weight
                };
                for (mut col, d) in nb.column_iter_mut().zip(trace.derivs[l - 1].iter()) {
                    col *= *d;
                }
                nb
            });
            let current = std::mem::replace(&mut b, next.unwrap_or_else(|| DMatrix::zeros(0, 0)));
            factors.push((current, trace.inputs[l].column(0).into_owned()));
        }
        factors.reverse();
        factors
    }

    /// Reverse mode for a batch: adds `Σ_i J_θ(x_i)ᵀ g_i` to `grad` (length `P`) for the
    /// inputs `x_i` and residuals `g_i` in the columns of `x` and `g`, and returns the
    /// input gradients `J_x(x_i)ᵀ g_i = W_1ᵀ δ_1` as the columns of a matrix.
    pub fn backprop_batch_into(
        &self,
        x: &DMatrix<f64>,
        g: &DMatrix<f64>,
        grad: &mut [f64],
    ) -> DMatrix<f64> {
        self.backward_into(&self.forward(x), g, grad)
    }

    /// The backward pass of a batch from its forward [`Trace`]: `δ_last = G`,
    /// `∇W_l += δ_l a_{l−1}ᵀ`, `∇b_l += δ_l 1`, `δ_{l−1} = σ'(h_{l−1}) ⊙ (W_lᵀ δ_l)`.
    /// Adds the parameter gradient to `grad` and returns the input gradients.
    pub fn backward_into(&self, trace: &Trace, g: &DMatrix<f64>, grad: &mut [f64]) -> DMatrix<f64> {
        assert_eq!(
            grad.len(),
            self.num_params(),
            "gradient buffer length does not match"
        );
        let mut end = grad.len();
        let mut delta = g.clone();
        for l in (0..self.layers.len()).rev() {
            let layer = &self.layers[l];
            let (out, inp) = layer.weight.shape();
            let start = end - layer.num_params();
            let (w_grad, b_grad) = grad[start..end].split_at_mut(layer.weight.len());
            nalgebra::DMatrixViewMut::from_slice(w_grad, out, inp).gemm(
                1.0,
                &delta,
                &trace.inputs[l].transpose(),
                1.0,
            );
            for col in delta.column_iter() {
                b_grad
                    .iter_mut()
                    .zip(col.iter())
                    .for_each(|(gb, d)| *gb += d);
            }
            delta = layer.weight.transpose() * &delta;
            if l > 0 {
                delta.component_mul_assign(&trace.derivs[l - 1]);
            }
            end = start;
        }
        delta
    }

    /// Reverse mode for one logit residual `g` (length `V`): adds `J_θ(x)ᵀ g` to `grad`
    /// (length `P`) and returns the input gradient `J_x(x)ᵀ g = W_1ᵀ δ_1`.
    pub fn backprop_into(
        &self,
        x: &DVector<f64>,
        g: &DVector<f64>,
        grad: &mut [f64],
    ) -> DVector<f64> {
        self.backprop_batch_into(&column(x), &column(g), grad)
            .column(0)
            .into_owned()
    }

    /// Forward mode for a batch: the logits and their tangents
    /// `J_θ(x_i) dθ + J_x(x_i) dx_i`, from `dh_l = W_l da_{l−1} + dW_l a_{l−1} + db_l`,
    /// `da_l = σ'(h_l) ⊙ dh_l`, `da_0 = dx` (inputs and input tangents are columns).
    pub fn forward_tangent_batch(
        &self,
        x: &DMatrix<f64>,
        dtheta: &[f64],
        dx: Option<&DMatrix<f64>>,
    ) -> (DMatrix<f64>, DMatrix<f64>) {
        let trace = self.forward(x);
        let dz = self.tangent(&trace, dtheta, dx);
        (trace.logits, dz)
    }

    /// The tangent of the logits along `(dθ, dx)` from a forward pass's trace.
    fn tangent(&self, trace: &Trace, dtheta: &[f64], dx: Option<&DMatrix<f64>>) -> DMatrix<f64> {
        let mut da = dx.cloned();
        let mut dh = DMatrix::zeros(0, 0);
        for (l, (layer, (dw, db))) in self.layers.iter().zip(self.split(dtheta)).enumerate() {
            let (out, inp) = layer.weight.shape();
            dh = nalgebra::DMatrixView::from_slice(dw, out, inp) * &trace.inputs[l];
            if let Some(da) = &da {
                dh += &layer.weight * da;
            }
            add_bias(&mut dh, db);
            if l + 1 < self.layers.len() {
                da = Some(dh.component_mul(&trace.derivs[l]));
            }
        }
        dh
    }

    /// Forward mode for one input: the logits and their tangent `J_θ(x) dθ + J_x(x) dx`.
    pub fn forward_tangent(
        &self,
        x: &DVector<f64>,
        dtheta: &[f64],
        dx: Option<&DVector<f64>>,
    ) -> (DVector<f64>, DVector<f64>) {
        let dx = dx.map(column);
        let (z, dz) = self.forward_tangent_batch(&column(x), dtheta, dx.as_ref());
        (z.column(0).into_owned(), dz.column(0).into_owned())
    }

    /// The parameters as mutable blocks in `θ`'s order: each layer's `W_l`, then `b_l`.
    pub(crate) fn param_blocks(&mut self) -> Vec<&mut [f64]> {
        let mut blocks = Vec::with_capacity(2 * self.layers.len());
        for layer in &mut self.layers {
            blocks.push(layer.weight.as_mut_slice());
            if let Some(b) = &mut layer.bias {
                blocks.push(b.as_mut_slice());
            }
        }
        blocks
    }

    /// Splits a flat parameter vector into per-layer `(W_l, b_l)` slices.
    fn split<'a>(&self, theta: &'a [f64]) -> Vec<(&'a [f64], &'a [f64])> {
        let mut rest = theta;
        self.layers
            .iter()
            .map(|layer| {
                let (w, tail) = rest.split_at(layer.weight.len());
                let (b, tail) = tail.split_at(layer.num_params() - layer.weight.len());
                rest = tail;
                (w, b)
            })
            .collect()
    }
}

/// One standard-normal draw.
pub(crate) fn normal(rng: &mut impl Rng) -> f64 {
    StandardNormal.sample(rng)
}
