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
//! Batches of at least [`PARALLEL_POSITIONS`] positions run as two halves, each on its
//! own thread with single-threaded products, and the folded slots as two groups; the
//! split depends only on the batch, so the bytes do not depend on the machine.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use nalgebra::{DMatrix, DVector};

use super::{LmSpec, PARALLEL_POSITIONS, Sequence, TinyLm, chunks, split_columns};
use crate::error::Result;
use crate::model::{Gradients, Residuals};

/// `data` as a column-major `rows × cols` matrix.
fn view(data: &[f64], rows: usize, cols: usize) -> MatRef<'_, f64> {
    MatRef::from_column_major_slice(data, rows, cols)
}

/// `dst (+)= a b`, single-threaded: `dst` is column-major `a.nrows() × b.ncols()`.
fn product(dst: &mut [f64], add: bool, a: MatRef<'_, f64>, b: MatRef<'_, f64>) {
    let dst = MatMut::from_column_major_slice_mut(dst, a.nrows(), b.ncols());
    let accum = if add { Accum::Add } else { Accum::Replace };
    matmul(dst, accum, a, b, 1.0, Par::Seq);
}

/// Runs `f` on every item, on rayon's pool when there are several, in order.
fn in_parallel<I: Sync, T: Send>(items: &[I], f: impl Fn(&I) -> T + Sync + Send) -> Vec<T> {
    use rayon::prelude::*;
    if items.len() > 1 {
        items.par_iter().map(f).collect()
    } else {
        items.iter().map(f).collect()
    }
}

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

    /// The folded first layer: `T_s = W_{1,s} Eᵀ` for every slot (`h × V` each, side by
    /// side), and `c = b_1 + Σ_s W_{1,s} P_s`.
    fn tables(&self, groups: &[std::ops::Range<usize>]) -> (Vec<f64>, Vec<f64>) {
        let (v, h) = (self.v, self.h);
        let (embed, slots) = self.lm.embeddings();
        let e = view(embed.as_slice(), v, self.d);
        let mut tables = vec![0.0; h * v * self.w];
        let fill = |slots: std::ops::Range<usize>, out: &mut [f64]| {
            for (s, t) in slots.zip(out.chunks_exact_mut(h * v)) {
                product(t, false, self.w1_slot(s), e.transpose());
            }
        };
        match groups {
            [first, second] => {
                let (a, b) = tables.split_at_mut(first.len() * h * v);
                rayon::join(|| fill(first.clone(), a), || fill(second.clone(), b));
            }
            _ => fill(0..self.w, &mut tables),
        }
        let mut c = self.b1.to_vec();
        for s in 0..self.w {
            let p: Vec<f64> = slots.row(s).iter().copied().collect();
            product(&mut c, true, self.w1_slot(s), view(&p, self.d, 1));
        }
        (tables, c)
    }

    /// The forward pass of the positions whose contexts are `ctx` (`W` tokens each).
    fn forward(&self, ctx: &[usize], tables: Option<&(Vec<f64>, Vec<f64>)>) -> Forward {
        let (v, w, d, h) = (self.v, self.w, self.d, self.h);
        let n = ctx.len() / w;
        let mut a = vec![0.0; h * n];
        let mut u = Vec::new();
        if let Some((t, c)) = tables {
            for (col, context) in a.chunks_exact_mut(h).zip(ctx.chunks_exact(w)) {
                col.copy_from_slice(c);
                for (s, &token) in context.iter().enumerate() {
                    let table = &t[(s * v + token) * h..(s * v + token + 1) * h];
                    col.iter_mut().zip(table).for_each(|(x, y)| *x += y);
                }
            }
        } else {
            let (embed, slots) = self.lm.embeddings();
            u = vec![0.0; w * d * n];
            for (col, context) in u.chunks_exact_mut(w * d).zip(ctx.chunks_exact(w)) {
                for (s, &token) in context.iter().enumerate() {
                    for k in 0..d {
                        col[s * d + k] = embed[(token, k)] + slots[(s, k)];
                    }
                }
            }
            for col in a.chunks_exact_mut(h) {
                col.copy_from_slice(self.b1);
            }
            product(&mut a, true, view(self.w1, h, w * d), view(&u, w * d, n));
        }
        crate::vecmath::tanh(&mut a);
        let mut z = vec![0.0; v * n];
        for col in z.chunks_exact_mut(v) {
            col.copy_from_slice(self.b2);
        }
        product(&mut z, true, view(self.w2, v, h), view(&a, h, n));
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

/// One half's backward pass: its share of the gradient, and the first layer's residuals
/// `δ` (`h × n`) when the embedding is folded.
fn backward(
    net: &Net<'_>,
    at: &Offsets,
    ctx: &[usize],
    fwd: &Forward,
    g: &[f64],
    folded: bool,
) -> (Vec<f64>, Vec<f64>) {
    let (v, w, d, h) = (net.v, net.w, net.d, net.h);
    let n = ctx.len() / w;
    let mut grad = vec![0.0; at.b2 + v];
    let (gm, am) = (view(g, v, n), view(&fwd.a, h, n));
    product(&mut grad[at.w2..at.b2], false, gm, am.transpose());
    for col in g.chunks_exact(v) {
        grad[at.b2..].iter_mut().zip(col).for_each(|(x, y)| *x += y);
    }
    let mut delta = vec![0.0; h * n];
    product(&mut delta, false, view(net.w2, v, h).transpose(), gm);
    delta
        .iter_mut()
        .zip(&fwd.a)
        .for_each(|(x, a)| *x *= 1.0 - a * a);
    for col in delta.chunks_exact(h) {
        grad[at.b1..at.w2]
            .iter_mut()
            .zip(col)
            .for_each(|(x, y)| *x += y);
    }
    if folded {
        return (grad, delta);
    }
    let dm = view(&delta, h, n);
    let um = view(&fwd.u, w * d, n);
    product(&mut grad[at.w1..at.b1], false, dm, um.transpose());
    let mut du = vec![0.0; w * d * n];
    product(&mut du, false, view(net.w1, h, w * d).transpose(), dm);
    for (col, context) in du.chunks_exact(w * d).zip(ctx.chunks_exact(w)) {
        for (s, &token) in context.iter().enumerate() {
            for k in 0..d {
                grad[token + k * v] += col[s * d + k];
                grad[at.p + s + k * w] += col[s * d + k];
            }
        }
    }
    (grad, Vec::new())
}

/// The folded first layer's gradient for one slot.
struct SlotGradient {
    slot: usize,
    /// `∇W_{1,s}`, `h × d`.
    w1: Vec<f64>,
    /// `∇P_s`, length `d`.
    p: Vec<f64>,
}

/// The folded first layer's gradient for a group of slots: per slot, and this group's
/// share of `∇E` (`V × d`).
fn folded_slots(
    net: &Net<'_>,
    ctx: &[usize],
    delta: &[f64],
    slots: std::ops::Range<usize>,
) -> (Vec<SlotGradient>, Vec<f64>) {
    let (v, w, d, h) = (net.v, net.w, net.d, net.h);
    let (embed, p) = net.lm.embeddings();
    let e = view(embed.as_slice(), v, d);
    let mut delta_sum = vec![0.0; h];
    for col in delta.chunks_exact(h) {
        delta_sum.iter_mut().zip(col).for_each(|(x, y)| *x += y);
    }
    let mut grad_e = vec![0.0; v * d];
    let mut m = vec![0.0; h * v];
    let per_slot = slots
        .map(|s| {
            m.iter_mut().for_each(|x| *x = 0.0);
            for (col, context) in delta.chunks_exact(h).zip(ctx.chunks_exact(w)) {
                let t = context[s];
                m[t * h..(t + 1) * h]
                    .iter_mut()
                    .zip(col)
                    .for_each(|(x, y)| *x += y);
            }
            let mm = view(&m, h, v);
            let mut grad_w1 = vec![0.0; h * d];
            product(&mut grad_w1, false, mm, e);
            for k in 0..d {
                let pk = p[(s, k)];
                grad_w1[k * h..(k + 1) * h]
                    .iter_mut()
                    .zip(&delta_sum)
                    .for_each(|(x, y)| *x += y * pk);
            }
            product(&mut grad_e, true, mm.transpose(), net.w1_slot(s));
            let mut grad_p = vec![0.0; d];
            product(
                &mut grad_p,
                false,
                net.w1_slot(s).transpose(),
                view(&delta_sum, h, 1),
            );
            SlotGradient {
                slot: s,
                w1: grad_w1,
                p: grad_p,
            }
        })
        .collect();
    (per_slot, grad_e)
}

/// Whether a batch of `positions` scored positions folds the embedding into the first
/// layer: when it has more positions than the vocabulary has tokens.
fn folds(spec: LmSpec, positions: usize) -> bool {
    spec.vocab < positions
}

/// The floating-point operations the products of one gradient evaluation on `positions`
/// scored positions execute (two per multiply-add; the element-wise work is not
/// counted): the output layer's three products `2·V·h·N` each, and the first layer's,
/// folded (`T_s`, `M_s E` and `M_sᵀ W_{1,s}`: `3 · 2·h·d·V·W`) or not (`W_1 U`, `δ Uᵀ`
/// and `W_1ᵀ δ`: `3 · 2·h·W·d·N`).
pub fn gradient_flops(spec: LmSpec, positions: usize) -> f64 {
    let (v, w, d, h, n) = (
        spec.vocab as f64,
        spec.window as f64,
        spec.embed as f64,
        spec.hidden as f64,
        positions as f64,
    );
    let first = if folds(spec, positions) {
        3.0 * 2.0 * h * d * v * w
    } else {
        3.0 * 2.0 * h * w * d * n
    };
    3.0 * 2.0 * v * h * n + first
}

/// The gradient of `xs` under `residuals`; see the module docs.
pub(super) fn gradient_batch(
    lm: &TinyLm,
    xs: &[Sequence],
    residuals: &mut Residuals<'_>,
) -> Result<Gradients> {
    let net = Net::new(lm);
    let at = Offsets::of(&net);
    let (v, w, d) = (net.v, net.w, net.d);
    let ctx: Vec<usize> = xs
        .iter()
        .flat_map(|x| (x.prompt_len..x.tokens.len()).flat_map(|l| lm.context(&x.tokens, l)))
        .collect();
    let n = ctx.len() / w;
    let folded = folds(lm.spec(), n);
    let groups: Vec<std::ops::Range<usize>> = if n >= PARALLEL_POSITIONS {
        vec![0..w / 2, w / 2..w]
    } else {
        std::iter::once(0..w).collect()
    };
    let tables = folded.then(|| net.tables(&groups));
    let halves = chunks(n);
    let forwards = in_parallel(&halves, |r| {
        net.forward(&ctx[r.start * w..r.end * w], tables.as_ref())
    });
    let mut z = Vec::with_capacity(v * n);
    forwards.iter().for_each(|f| z.extend_from_slice(&f.z));
    let logits = split_columns(&DMatrix::from_vec(v, n, z), xs);
    let gs = residuals(&logits)?;
    for (x, g) in xs.iter().zip(&gs) {
        assert_eq!(
            g.shape(),
            (v, x.tokens.len() - x.prompt_len),
            "residual shape does not match the sequence"
        );
    }
    let mut g = Vec::with_capacity(v * n);
    gs.iter().for_each(|m| g.extend_from_slice(m.as_slice()));
    let parts: Vec<(usize, &Forward)> = halves.iter().map(|r| r.start).zip(&forwards).collect();
    let backs = in_parallel(&parts, |&(start, fwd)| {
        let len = fwd.a.len() / net.h;
        let ctx = &ctx[start * w..(start + len) * w];
        backward(
            &net,
            &at,
            ctx,
            fwd,
            &g[start * v..(start + len) * v],
            folded,
        )
    });
    let mut grad = vec![0.0; at.b2 + v];
    for (part, _) in &backs {
        grad.iter_mut().zip(part).for_each(|(x, y)| *x += y);
    }
    if folded {
        let mut delta = Vec::with_capacity(net.h * n);
        backs.iter().for_each(|(_, dl)| delta.extend_from_slice(dl));
        let results = in_parallel(&groups, |slots| {
            folded_slots(&net, &ctx, &delta, slots.clone())
        });
        let size = net.h * d;
        for (per_slot, grad_e) in results {
            grad[..at.p]
                .iter_mut()
                .zip(&grad_e)
                .for_each(|(x, y)| *x += y);
            for SlotGradient { slot: s, w1, p } in per_slot {
                grad[at.w1 + s * size..at.w1 + (s + 1) * size].copy_from_slice(&w1);
                for (k, gp) in p.into_iter().enumerate() {
                    grad[at.p + s + k * w] = gp;
                }
            }
        }
    }
    Ok((logits, gs, DVector::from_vec(grad)))
}
