//! The tiny LM's gradient on a batch, the hot path of every LM experiment
//! ([`Model::gradient_batch`](crate::model::Model::gradient_batch)): one forward pass,
//! the residuals, one backward pass, with faer's GEMM for every product.
//!
//! With `N` scored positions, `t_{p,s}` the token in slot `s` of position `p`'s context,
//! `W_1 = [W_{1,0} … W_{1,W−1}]` split by slot (each `h × d`) and `E` the `V × d` token
//! embeddings, the first layer is
//!
//! `h_p = b_1 + Σ_s W_{1,s} (E[t_{p,s}] + P_s)`.
//!
//! When the batch has more positions than the vocabulary has tokens (`N > V`), the
//! embedding is folded into the layer: the tables `T_s = W_{1,s} Eᵀ` (`h × V`) cost
//! `2hdVW` multiply-adds instead of the `2hdWN` of `W_1 U`, and `h_p` is a sum of `W`
//! table columns. The backward pass folds the same way: with
//! `M_s = Σ_p δ_p e_{t_{p,s}}ᵀ` (`h × V`, the first layer's residuals `δ` scattered by
//! token) and `δ̄ = Σ_p δ_p`,
//!
//! `∇W_{1,s} = M_s E + δ̄ P_sᵀ`,  `∇E = Σ_s M_sᵀ W_{1,s}`,  `∇P_s = W_{1,s}ᵀ δ̄`.
//!
//! Both forms are the same sums in another order; a test holds the gradient against the
//! unfolded reverse mode ([`Mlp::backward_into`](crate::mlp::Mlp::backward_into)).
//!
//! The forward mode (`logits_and_tangents`, the JVPs of the decomposition) shares one
//! forward pass among its directions and folds the same way: along `dθ`, the first
//! layer's tangent is gathered from `dT_s = W_{1,s} dEᵀ + dW_{1,s} Eᵀ`, or unfolded
//! `dh = db_1 + dW_1 U + W_1 dU`, and `dz = db_2 + W_2 (σ' ⊙ dh) + dW_2 a`.
//!
//! Batches of at least [`PARALLEL_POSITIONS`] positions run as two halves, each on its
//! own thread with single-threaded products, and the folded slots as two groups; the
//! split depends only on the batch, so the bytes do not depend on the machine. The large
//! temporaries (tables, activations, logits, scatters) come from a small pool of reused
//! buffers with stale contents that every user overwrites, so a step neither zeroes nor
//! faults in fresh memory.

//!
//! This module holds the network's view and its forward pass; `buffers` the products
//! and the buffer pool, `folded` the folded tables, `tangent` the forward mode and
//! `backward` the gradient.

mod backward;
mod buffers;
mod folded;
mod tangent;

use std::ops::Range;

use faer::MatRef;
use nalgebra::DMatrix;

use super::{LmSpec, PARALLEL_POSITIONS, Sequence, TinyLm, chunks};
use buffers::{affine, in_parallel, recycle, take, view};
use folded::Folded;

pub(in crate::lm) use backward::gradient_batch;
pub use tangent::distinct_positions;
pub(in crate::lm) use tangent::logits_and_tangents;

/// The sizes and weights the step reads.
struct Net<'a> {
    v: usize,
    w: usize,
    d: usize,
    h: usize,
    lm: &'a TinyLm,
    w1: &'a [f64],
    b1: &'a [f64],
    w2: &'a [f64],
    b2: &'a [f64],
}

/// One half's forward pass: its context vectors (unfolded only), hidden activations
/// `a = tanh(h)` (`h × n`) and logits (`V × n`).
struct Forward {
    u: Vec<f64>,
    a: Vec<f64>,
    z: Vec<f64>,
}

impl Forward {
    /// Its buffers, back to the pool.
    fn recycle(self) {
        recycle([self.u, self.a, self.z]);
    }
}

impl<'a> Net<'a> {
    fn new(lm: &'a TinyLm) -> Self {
        let spec = lm.spec();
        let layers = lm.mlp().layers();
        let bias = |l: usize| {
            layers[l]
                .bias
                .as_ref()
                .expect("a TinyLm has biases")
                .as_slice()
        };
        Net {
            v: spec.vocab,
            w: spec.window,
            d: spec.embed,
            h: spec.hidden,
            lm,
            w1: layers[0].weight.as_slice(),
            b1: bias(0),
            w2: layers[1].weight.as_slice(),
            b2: bias(1),
        }
    }

    /// `W_{1,s}`, `h × d`.
    fn w1_slot(&self, s: usize) -> MatRef<'_, f64> {
        let size = self.h * self.d;
        view(&self.w1[s * size..(s + 1) * size], self.h, self.d)
    }

    /// The context vectors (`W·d × n`) of the positions `ctx` from token embeddings `e`
    /// (`V × d`) and slot embeddings `p` (`W × d`), both column-major: slot `s` of a
    /// column holds `e[t_s] + p_s`.
    fn context_vectors(&self, ctx: &[usize], e: &[f64], p: &[f64]) -> Vec<f64> {
        let (v, w, d) = (self.v, self.w, self.d);
        let mut u = take(w * d * (ctx.len() / w));
        for (col, context) in u.chunks_exact_mut(w * d).zip(ctx.chunks_exact(w)) {
            for (s, &token) in context.iter().enumerate() {
                for k in 0..d {
                    col[s * d + k] = e[token + k * v] + p[s + k * w];
                }
            }
        }
        u
    }

    /// The forward pass of the positions whose contexts are `ctx` (`W` tokens each),
    /// through the folded tables if given.
    fn forward(&self, ctx: &[usize], tables: Option<&Folded>) -> Forward {
        let (v, w, d, h) = (self.v, self.w, self.d, self.h);
        let n = ctx.len() / w;
        let mut u = Vec::new();
        let mut a = if let Some(folded) = tables {
            self.gather(ctx, folded)
        } else {
            let (embed, slots) = self.lm.embeddings();
            u = self.context_vectors(ctx, embed.as_slice(), slots.as_slice());
            affine(self.b1, view(self.w1, h, w * d), view(&u, w * d, n))
        };
        crate::vecmath::tanh(&mut a);
        let z = affine(self.b2, view(self.w2, v, h), view(&a, h, n));
        Forward { u, a, z }
    }
}

/// Where each block of the flat gradient starts: `E`, `P`, `W_1`, `b_1`, `W_2`, `b_2`.
struct Offsets {
    p: usize,
    w1: usize,
    b1: usize,
    w2: usize,
    b2: usize,
}

impl Offsets {
    fn of(net: &Net<'_>) -> Self {
        let p = net.v * net.d;
        let w1 = p + net.w * net.d;
        let b1 = w1 + net.h * net.w * net.d;
        let w2 = b1 + net.h;
        Offsets {
            p,
            w1,
            b1,
            w2,
            b2: w2 + net.v * net.h,
        }
    }
}

/// Whether a batch of `positions` scored positions folds the embedding into the first
/// layer: when it has more positions than the vocabulary has tokens.
fn folds(spec: LmSpec, positions: usize) -> bool {
    spec.vocab < positions
}

/// The floating-point operations the products of one forward pass on `positions` scored
/// positions execute (two per multiply-add; the element-wise work is not counted): the
/// output layer's `2·V·h·N`, and the first layer's, folded (`T_s`: `2·h·d·V·W`) or not
/// (`W_1 U`: `2·h·W·d·N`).
pub fn forward_flops(spec: LmSpec, positions: usize) -> f64 {
    let (v, w, d, h, n) = (
        spec.vocab as f64,
        spec.window as f64,
        spec.embed as f64,
        spec.hidden as f64,
        positions as f64,
    );
    let first = if folds(spec, positions) {
        2.0 * h * d * v * w
    } else {
        2.0 * h * w * d * n
    };
    2.0 * v * h * n + first
}

/// The floating-point operations the products of one gradient evaluation execute: three
/// times a forward pass's ([`forward_flops`]), since each layer's forward product has
/// two backward products of its size (folded: `T_s`, `M_s E` and `M_sᵀ W_{1,s}`).
pub fn gradient_flops(spec: LmSpec, positions: usize) -> f64 {
    3.0 * forward_flops(spec, positions)
}

/// The floating-point operations the products of each direction of the forward mode
/// (`logits_and_tangents`) execute beyond the shared forward pass: twice a forward
/// pass's ([`forward_flops`]), since each layer's tangent has two products of the
/// forward product's size (`W_{1,s} dEᵀ` and `dW_{1,s} Eᵀ` folded, or `dW_1 U` and
/// `W_1 dU`; `W_2 (σ' ⊙ dh)` and `dW_2 a`). `positions` counts distinct contexts, as
/// the forward mode runs once per distinct context.
pub fn tangent_flops(spec: LmSpec, positions: usize) -> f64 {
    2.0 * forward_flops(spec, positions)
}

/// The slot groups of a batch of `n` positions: the window's two halves, each on its
/// own thread, from [`PARALLEL_POSITIONS`] on; the whole window otherwise.
fn slot_groups(w: usize, n: usize) -> Vec<Range<usize>> {
    if n >= PARALLEL_POSITIONS {
        vec![0..w / 2, w / 2..w]
    } else {
        std::iter::once(0..w).collect()
    }
}

/// The contexts of every response position of `xs`, in order, flat (`W` tokens each).
fn contexts(lm: &TinyLm, xs: &[Sequence]) -> Vec<usize> {
    let positions: usize = xs.iter().map(|x| x.tokens.len() - x.prompt_len).sum();
    let mut ctx = Vec::with_capacity(positions * lm.spec().window);
    for x in xs {
        (x.prompt_len..x.tokens.len()).for_each(|l| lm.context_into(&x.tokens, l, &mut ctx));
    }
    ctx
}

/// The logits of every sequence of `xs` (`V × |y|` each), through the folded first layer
/// when that is cheaper, halves on two threads.
pub(super) fn logits(lm: &TinyLm, xs: &[Sequence]) -> Vec<DMatrix<f64>> {
    let net = Net::new(lm);
    let ctx = contexts(lm, xs);
    let n = ctx.len() / net.w;
    let tables = folds(lm.spec(), n).then(|| net.tables(&slot_groups(net.w, n)));
    let halves = chunks(n);
    let forwards = in_parallel(&halves, |r| {
        net.forward(&ctx[r.start * net.w..r.end * net.w], tables.as_ref())
    });
    let columns = forwards.iter().flat_map(|f| f.z.chunks_exact(net.v));
    let logits = per_sequence(columns, net.v, xs);
    forwards.into_iter().for_each(Forward::recycle);
    tables.into_iter().for_each(Folded::recycle);
    logits
}

/// `columns` (`V` entries each, one per scored position of `xs`, in order) as one
/// matrix per sequence of `xs`: each column is copied once.
fn per_sequence<'a>(
    mut columns: impl Iterator<Item = &'a [f64]>,
    v: usize,
    xs: &[Sequence],
) -> Vec<DMatrix<f64>> {
    (xs.iter())
        .map(|x| {
            let len = x.tokens.len() - x.prompt_len;
            let mut m = Vec::with_capacity(v * len);
            columns
                .by_ref()
                .take(len)
                .for_each(|c| m.extend_from_slice(c));
            DMatrix::from_vec(v, len, m)
        })
        .collect()
}
