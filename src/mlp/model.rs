//! The MLP as a [`Model`]: logits, the gradient of a batch under its residuals, the
//! forward-mode tangents and the flat parameter vector, each through the passes of
//! [`Mlp`].

use nalgebra::{DMatrix, DVector};

use super::{Layer, Mlp, column, stack};
use crate::error::{Error, Result, check_len};
use crate::model::Model;

impl Model for Mlp {
    type Input = DVector<f64>;

    fn classes(&self) -> usize {
        self.layers[self.layers.len() - 1].weight.nrows()
    }

    fn num_params(&self) -> usize {
        self.layers.iter().map(Layer::num_params).sum()
    }

    fn check_input(&self, x: &DVector<f64>) -> Result<()> {
        check_len("input vector", self.inputs(), x.len())?;
        if x.iter().all(|xi| xi.is_finite()) {
            Ok(())
        } else {
            Err(Error::NonFinite("input"))
        }
    }

    fn logits(&self, x: &DVector<f64>) -> DMatrix<f64> {
        self.forward(&column(x)).logits
    }

    /// Reverse mode: `δ_last = G`, `∇W_l = δ_l a_{l−1}ᵀ`, `∇b_l = δ_l`,
    /// `δ_{l−1} = σ'(h_{l−1}) ⊙ (W_lᵀ δ_l)`.
    fn backprop(&self, x: &DVector<f64>, g: &DMatrix<f64>) -> DVector<f64> {
        assert_eq!(
            g.shape(),
            (self.classes(), 1),
            "residual shape does not match the model"
        );
        let mut grad = DVector::zeros(self.num_params());
        self.backprop_into(x, &g.column(0).into_owned(), grad.as_mut_slice());
        grad
    }

    fn logits_and_jvp(
        &self,
        x: &DVector<f64>,
        dtheta: &DVector<f64>,
    ) -> (DMatrix<f64>, DMatrix<f64>) {
        assert_eq!(
            dtheta.len(),
            self.num_params(),
            "direction length does not match the model"
        );
        self.forward_tangent_batch(&column(x), dtheta.as_slice(), None)
    }

    /// All inputs as the columns of one matrix: one forward pass of a few products.
    fn logits_batch(&self, xs: &[DVector<f64>]) -> Vec<DMatrix<f64>> {
        let z = self.logits_batch(&stack(xs));
        (0..xs.len())
            .map(|i| z.columns(i, 1).into_owned())
            .collect()
    }

    /// All inputs as the columns of one matrix: one forward-mode pass of a few products.
    fn logits_and_jvp_batch(
        &self,
        xs: &[DVector<f64>],
        dtheta: &DVector<f64>,
    ) -> Vec<(DMatrix<f64>, DMatrix<f64>)> {
        assert_eq!(
            dtheta.len(),
            self.num_params(),
            "direction length does not match the model"
        );
        let (z, dz) = self.forward_tangent_batch(&stack(xs), dtheta.as_slice(), None);
        let column = |m: &DMatrix<f64>, i: usize| m.columns(i, 1).into_owned();
        (0..xs.len())
            .map(|i| (column(&z, i), column(&dz, i)))
            .collect()
    }

    fn params(&self) -> DVector<f64> {
        let mut theta = Vec::with_capacity(self.num_params());
        for layer in &self.layers {
            theta.extend_from_slice(layer.weight.as_slice());
            if let Some(b) = &layer.bias {
                theta.extend_from_slice(b.as_slice());
            }
        }
        DVector::from_vec(theta)
    }

    /// In place, layer by layer ([`sgd_in_place`](crate::model::sgd_in_place)).
    fn sgd_step(&mut self, grad: &DVector<f64>, eta: f64) -> Result<()> {
        assert_eq!(
            grad.len(),
            self.num_params(),
            "gradient length does not match"
        );
        crate::model::sgd_in_place(self.param_blocks(), grad.as_slice(), eta)
    }

    fn set_params(&mut self, theta: &DVector<f64>) {
        assert_eq!(
            theta.len(),
            self.num_params(),
            "parameter vector length does not match"
        );
        let parts = self.split(theta.as_slice());
        let parts: Vec<(Vec<f64>, Vec<f64>)> = parts
            .into_iter()
            .map(|(w, b)| (w.to_vec(), b.to_vec()))
            .collect();
        for (layer, (w, b)) in self.layers.iter_mut().zip(parts) {
            layer.weight.as_mut_slice().copy_from_slice(&w);
            if let Some(bias) = &mut layer.bias {
                bias.as_mut_slice().copy_from_slice(&b);
            }
        }
    }
}
