//! The structured eNTK of the tiny LM ([`TinyLm`]): the MLP's layer-wise kernel on the
//! context vectors plus the terms of the shared token and slot embeddings, and its
//! last-layer share. Tested equal to [`crate::entk::entk_explicit`]. Both come from
//! [`KernelFactors`], computed once for a set of positions (one or several sequences) and
//! shared by every kernel those positions enter, as the lens does for an update's
//! sequences against each of its probes.

use nalgebra::{DMatrix, DVector};

use super::{LmSpec, Sequence, TinyLm};

/// What the kernels below need of a list of response positions (those of one or more
/// sequences, in order), computed once and reused for every kernel the positions take
/// part in: per position its context tokens, MLP input `u` and hidden features `a`, and,
/// stacked position by position, the hidden layer's backprop factor `B`
/// ([`Mlp::layer_factors`](crate::mlp::Mlp::layer_factors); `(V·P) × h`) and the slot
/// Jacobian `C = B W_1` (`(V·P) × W·d`); and the model's sizes and bias counts (1 where
/// a layer has a bias).
#[derive(Clone, Debug)]
pub struct KernelFactors {
    spec: LmSpec,
    biases: [f64; 2],
    contexts: Vec<Vec<usize>>,
    inputs: Vec<DVector<f64>>,
    features: Vec<DVector<f64>>,
    b: DMatrix<f64>,
    c: DMatrix<f64>,
}

impl KernelFactors {
    /// The factors of every response position of `xs` under `lm`, sequence after
    /// sequence.
    pub fn of(lm: &TinyLm, xs: &[Sequence]) -> Self {
        let v = lm.spec().vocab;
        let layers = lm.mlp().layers();
        let w1 = &layers[0].weight;
        let (contexts, u) = lm.positions(xs);
        let n = contexts.len();
        let mut b = DMatrix::zeros(v * n, w1.nrows());
        let mut c = DMatrix::zeros(v * n, w1.ncols());
        let (mut inputs, mut features) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for (p, u) in u.column_iter().enumerate() {
            let factors = lm.mlp().layer_factors(&u.into_owned());
            let [(bp, u), (_, a)]: [(DMatrix<f64>, DVector<f64>); 2] = factors
                .try_into()
                .expect("a TinyLm's MLP has one hidden layer");
            c.rows_mut(p * v, v).copy_from(&(&bp * w1));
            b.rows_mut(p * v, v).copy_from(&bp);
            inputs.push(u);
            features.push(a);
        }
        KernelFactors {
            spec: lm.spec(),
            biases: [0, 1].map(|l| f64::from(u8::from(layers[l].bias.is_some()))),
            contexts,
            inputs,
            features,
            b,
            c,
        }
    }

    /// The structured eNTK between these positions (rows) and `other`'s (columns),
    /// `(V·M) × (V·L)`; see [`entk_lm_structured`]. The hidden layer's term is one product
    /// `B B'ᵀ` scaled block by block, and the embedding terms one product per row block.
    ///
    /// # Panics
    /// If the two come from models of different sizes.
    pub fn structured(&self, other: &KernelFactors) -> DMatrix<f64> {
        assert_eq!(self.spec, other.spec, "kernel factors of different models");
        let (v, w, d) = (self.spec.vocab, self.spec.window, self.spec.embed);
        let [hidden_bias, output_bias] = self.biases;
        let mut k = &self.b * other.b.transpose();
        for (m, (uo, ao)) in self.inputs.iter().zip(&self.features).enumerate() {
            for (l, (uu, au)) in other.inputs.iter().zip(&other.features).enumerate() {
                let mut block = k.view_mut((m * v, l * v), (v, v));
                block.scale_mut(uo.dot(uu) + hidden_bias);
                // The output layer's `B = I`: its term is on the diagonal.
                let scale = ao.dot(au) + output_bias;
                (0..v).for_each(|i| block[(i, i)] += scale);
            }
        }
        // The embedding terms as one product per row block: `C_m Yᵀ`, with `Y`'s block
        // `l` the slots `Y_{l,s} = Σ_{s'} n(s, s') C'_{l,s'}` (columns `s·d..(s+1)·d`).
        let rows = other.b.nrows();
        let mut y = DMatrix::zeros(rows, w * d);
        for (m, ctx_o) in self.contexts.iter().enumerate() {
            for (l, ctx_u) in other.contexts.iter().enumerate() {
                // Column `j` of `Y` or `C'` holds position `l` in rows `l·V..(l+1)·V`.
                let at = |j: usize| j * rows + l * v..j * rows + (l + 1) * v;
                for (s, &to) in ctx_o.iter().enumerate() {
                    // Every slot shares itself (`s' = s`), so the first term found
                    // overwrites the block (as `0 + term`, the sum's first step).
                    let mut first = true;
                    for (s2, &tu) in ctx_u.iter().enumerate() {
                        let shared = f64::from(u8::from(to == tu)) + f64::from(u8::from(s == s2));
                        if shared == 0.0 {
                            continue;
                        }
                        for k in 0..d {
                            let cs = &other.c.as_slice()[at(s2 * d + k)];
                            let ys = &mut y.as_mut_slice()[at(s * d + k)];
                            if first {
                                ys.iter_mut()
                                    .zip(cs)
                                    .for_each(|(y, c)| *y = 0.0 + shared * c);
                            } else {
                                ys.iter_mut().zip(cs).for_each(|(y, c)| *y += shared * c);
                            }
                        }
                        first = false;
                    }
                }
            }
            k.rows_mut(m * v, v)
                .gemm(1.0, &self.c.rows(m * v, v), &y.transpose(), 1.0);
        }
        k
    }

    /// The last-layer kernel between these positions (rows) and `other`'s (columns); see
    /// [`entk_lm_last_layer`].
    ///
    /// # Panics
    /// If the two come from models of different sizes.
    pub fn last_layer(&self, other: &KernelFactors) -> DMatrix<f64> {
        assert_eq!(self.spec, other.spec, "kernel factors of different models");
        let v = self.spec.vocab;
        let [_, output_bias] = self.biases;
        let (ho, hu) = (&self.features, &other.features);
        let mut k = DMatrix::zeros(v * ho.len(), v * hu.len());
        for (m, a) in ho.iter().enumerate() {
            for (l, b) in hu.iter().enumerate() {
                let scale = a.dot(b) + output_bias;
                for i in 0..v {
                    k[(m * v + i, l * v + i)] = scale;
                }
            }
        }
        k
    }
}

/// The eNTK of a [`TinyLm`] between every response position `m` of `x_o` and `l` of
/// `x_u`, `(V·M) × (V·L)`, from its structure rather than its Jacobian:
///
/// `K_{m,l} = K_MLP(u_m, u'_l) + Σ_{s,s'} (1[t_{m,s} = t'_{l,s'}] + 1[s = s']) C_{m,s} C'_{l,s'}ᵀ`,
///
/// where `K_MLP` is [`entk_layerwise`](crate::mlp::kernel::entk_layerwise)'s formula on the context vectors and
/// `C_{m,s} = ∂z_m/∂u_{m,s} = (B_1 W_1)[:, slot s]` is the Jacobian with respect to the
/// input slot `s`: a token embedding is shared by every slot holding that token, and a
/// slot embedding by every position. The embedding terms of a position pair are one
/// product `C_m Y_lᵀ` with `Y_{l,s} = Σ_{s'} n(s, s') C'_{l,s'}` and `n` the count of
/// shared parameters: `2V·W·d·V` multiply-adds and `W²` column sums, not `W²` products
/// ([`KernelFactors::structured`] stacks the `Y_l` of a row block into one product).
pub fn entk_lm_structured(lm: &TinyLm, x_o: &Sequence, x_u: &Sequence) -> DMatrix<f64> {
    let factors = |x: &Sequence| KernelFactors::of(lm, std::slice::from_ref(x));
    factors(x_o).structured(&factors(x_u))
}

/// The last-layer (feature) kernel of a [`TinyLm`] between every response position `m` of
/// `x_o` and `l` of `x_u`: the output layer's share of the eNTK alone,
/// `K_{m,l} = (h_m · h'_l + 1) I_V`, with `h` the hidden features at the position (the
/// output layer's input; the `1` is its bias). It is what one computes when the full
/// eNTK is out of reach: features frozen, only the read-out's Jacobian.
pub fn entk_lm_last_layer(lm: &TinyLm, x_o: &Sequence, x_u: &Sequence) -> DMatrix<f64> {
    let factors = |x: &Sequence| KernelFactors::of(lm, std::slice::from_ref(x));
    factors(x_o).last_layer(&factors(x_u))
}
