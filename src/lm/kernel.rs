//! The structured eNTK of the tiny LM ([`TinyLm`]): the MLP's layer-wise kernel on the
//! context vectors plus the terms of the shared token and slot embeddings. Tested equal
//! to [`crate::entk::entk_explicit`].

use nalgebra::{DMatrix, DVector};

use super::{Sequence, TinyLm};
use crate::mlp::kernel::add_layerwise;

/// One response position's context tokens, MLP layer factors and slot Jacobian `C`.
type PositionFactors = (Vec<usize>, Vec<(DMatrix<f64>, DVector<f64>)>, DMatrix<f64>);

/// The eNTK of a [`TinyLm`] between every response position `m` of `x_o` and `l` of
/// `x_u`, `(V·M) × (V·L)`, from its structure rather than its Jacobian:
///
/// `K_{m,l} = K_MLP(u_m, u'_l) + Σ_{s,s'} (1[t_{m,s} = t'_{l,s'}] + 1[s = s']) C_{m,s} C'_{l,s'}ᵀ`,
///
/// where `K_MLP` is [`entk_layerwise`](crate::mlp::kernel::entk_layerwise)'s formula on the context vectors and
/// `C_{m,s} = ∂z_m/∂u_{m,s} = (B_1 W_1)[:, slot s]` is the Jacobian with respect to the
/// input slot `s`: a token embedding is shared by every slot holding that token, and a
/// slot embedding by every position. The embedding terms are one product per position
/// pair, `C_m Y_lᵀ` with `Y_{l,s} = Σ_{s'} n(s, s') C'_{l,s'}` and `n` the count of shared
/// parameters: `2V·W·d·V` multiply-adds and `W²` column sums, not `W²` products.
pub fn entk_lm_structured(lm: &TinyLm, x_o: &Sequence, x_u: &Sequence) -> DMatrix<f64> {
    let spec = lm.spec();
    let (v, d) = (spec.vocab, spec.embed);
    let parts = |x: &Sequence| -> Vec<PositionFactors> {
        (x.prompt_len..x.tokens.len())
            .map(|l| {
                let context = lm.context(&x.tokens, l);
                let factors = lm.mlp().layer_factors(&lm.context_vector(&context));
                let c = &factors[0].0 * &lm.mlp().layers()[0].weight;
                (context, factors, c)
            })
            .collect()
    };
    let (po, pu) = (parts(x_o), parts(x_u));
    let mut k = DMatrix::zeros(v * po.len(), v * pu.len());
    let mut shared_cu = DMatrix::zeros(v, lm.spec().window * d);
    for (m, (ctx_o, fo, co)) in po.iter().enumerate() {
        for (l, (ctx_u, fu, cu)) in pu.iter().enumerate() {
            let mut block = k.view_mut((m * v, l * v), (v, v));
            add_layerwise(&mut block, lm.mlp(), fo, fu);
            // The embedding terms as one product: C · Y'ᵀ with Y'_s = Σ_{s'} n(s, s') C'_{s'}.
            shared_cu.fill(0.0);
            for (s, &to) in ctx_o.iter().enumerate() {
                for (s2, &tu) in ctx_u.iter().enumerate() {
                    let shared = f64::from(u8::from(to == tu)) + f64::from(u8::from(s == s2));
                    if shared > 0.0 {
                        // Slot columns are contiguous: `V·d` values from `s·d·V`.
                        let y = &mut shared_cu.as_mut_slice()[s * d * v..(s + 1) * d * v];
                        let c = &cu.as_slice()[s2 * d * v..(s2 + 1) * d * v];
                        y.iter_mut().zip(c).for_each(|(y, c)| *y += shared * c);
                    }
                }
            }
            block.gemm(1.0, co, &shared_cu.transpose(), 1.0);
        }
    }
    k
}

/// The last-layer (feature) kernel of a [`TinyLm`] between every response position `m` of
/// `x_o` and `l` of `x_u`: the output layer's share of the eNTK alone,
/// `K_{m,l} = (h_m · h'_l + 1) I_V`, with `h` the hidden features at the position (the
/// output layer's input; the `1` is its bias). It is what one computes when the full
/// eNTK is out of reach: features frozen, only the read-out's Jacobian.
pub fn entk_lm_last_layer(lm: &TinyLm, x_o: &Sequence, x_u: &Sequence) -> DMatrix<f64> {
    let v = lm.spec().vocab;
    let features = |x: &Sequence| -> Vec<DVector<f64>> {
        (x.prompt_len..x.tokens.len())
            .map(|l| {
                let context = lm.context_vector(&lm.context(&x.tokens, l));
                let factors = lm.mlp().layer_factors(&context);
                factors.last().expect("an MLP has a layer").1.clone()
            })
            .collect()
    };
    let bias = lm.mlp().layers().last().is_some_and(|l| l.bias.is_some());
    let (ho, hu) = (features(x_o), features(x_u));
    let mut k = DMatrix::zeros(v * ho.len(), v * hu.len());
    for (m, a) in ho.iter().enumerate() {
        for (l, b) in hu.iter().enumerate() {
            let scale = a.dot(b) + f64::from(u8::from(bias));
            for i in 0..v {
                k[(m * v + i, l * v + i)] = scale;
            }
        }
    }
    k
}
