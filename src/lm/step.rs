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

use faer::linalg::matmul::matmul;
use std::ops::Range;

use faer::{Accum, MatMut, MatRef, Par};
use nalgebra::{DMatrix, DVector};

use super::{LmSpec, PARALLEL_POSITIONS, Sequence, TinyLm, chunks};
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
    crate::vecmath::clear_upper();
}

/// `bias` added to every column of `a b` (`a.nrows() × b.ncols()`), in a pooled buffer:
/// the bias first, then the product accumulated onto it.
fn affine(bias: &[f64], a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Vec<f64> {
    let mut out = take(a.nrows() * b.ncols());
    for col in out.chunks_exact_mut(a.nrows()) {
        col.copy_from_slice(bias);
    }
    product(&mut out, true, a, b);
    out
}

/// `d ← σ'(h) ⊙ d` with `σ' = 1 − a²` read off the activations `a = tanh h`.
fn tanh_derivative(d: &mut [f64], a: &[f64]) {
    d.iter_mut().zip(a).for_each(|(x, a)| *x *= 1.0 - a * a);
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

/// The large buffers that steps have finished with, for the next step ([`take`]).
static POOL: std::sync::Mutex<Vec<Vec<f64>>> = std::sync::Mutex::new(Vec::new());

/// The most buffers [`POOL`] keeps: about three steps' worth, whatever the threads.
const POOL_BUFFERS: usize = 32;

/// A buffer of `len` values from the pool (the smallest that holds `len`, else a fresh
/// one), **with stale contents**: its users overwrite every entry before they read one.
/// A step takes its tables, activations and logits from here and [`recycle`]s them, so
/// that it neither zeroes nor faults in fresh memory.
fn take(len: usize) -> Vec<f64> {
    let reused = {
        let mut pool = POOL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let fits = (0..pool.len())
            .filter(|&i| pool[i].capacity() >= len)
            .min_by_key(|&i| pool[i].capacity());
        fits.map(|i| pool.swap_remove(i))
    };
    match reused {
        Some(mut buffer) => {
            // Growing within the capacity writes the new tail once; shrinking writes nothing.
            buffer.resize(len, 0.0);
            buffer
        }
        None => vec![0.0; len],
    }
}

/// Gives `buffers` back to the pool ([`take`]), up to [`POOL_BUFFERS`] (empty ones are
/// dropped: they would only take a place).
fn recycle(buffers: impl IntoIterator<Item = Vec<f64>>) {
    let mut pool = POOL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for buffer in buffers {
        if pool.len() < POOL_BUFFERS && buffer.capacity() > 0 {
            pool.push(buffer);
        }
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

    /// The folded first layer of the model's weights: `T_s = W_{1,s} Eᵀ` and
    /// `c = b_1 + Σ_s W_{1,s} P_s`.
    fn tables(&self, groups: &[Range<usize>]) -> Folded {
        let (embed, slots) = self.lm.embeddings();
        let mut folded = Folded::new(self, self.b1);
        self.fold_into(
            &mut folded,
            (self.w1, false),
            embed.as_slice(),
            slots.as_slice(),
            groups,
        );
        folded
    }

    /// The folded first layer's tangent along `dθ = (dE, dP, dW_1, db_1, …)`:
    /// `dT_s = W_{1,s} dEᵀ + dW_{1,s} Eᵀ` and
    /// `dc = db_1 + Σ_s (W_{1,s} dP_s + dW_{1,s} P_s)`.
    fn tangent_tables(&self, at: &Offsets, dtheta: &[f64], groups: &[Range<usize>]) -> Folded {
        let (embed, slots) = self.lm.embeddings();
        let mut folded = Folded::new(self, &dtheta[at.b1..at.w2]);
        let (de, dp, dw1) = (&dtheta[..at.p], &dtheta[at.p..at.w1], &dtheta[at.w1..at.b1]);
        self.fold_into(&mut folded, (self.w1, false), de, dp, groups);
        self.fold_into(
            &mut folded,
            (dw1, true),
            embed.as_slice(),
            slots.as_slice(),
            groups,
        );
        folded
    }

    /// Folds the first layer `w1` (`h × W·d`) with the token embeddings `e` (`V × d`) and
    /// slot embeddings `p` (`W × d`), both column-major, into `out`: `T_s = w1_s eᵀ` (or
    /// `+=` with `add`: without it the tables' old contents are never read) and
    /// `c += Σ_s w1_s p_s`, the slots of each group on one thread.
    fn fold_into(
        &self,
        out: &mut Folded,
        (w1, add): (&[f64], bool),
        e: &[f64],
        p: &[f64],
        groups: &[Range<usize>],
    ) {
        let (v, w, d, h) = (self.v, self.w, self.d, self.h);
        let slot = |s: usize| view(&w1[s * h * d..(s + 1) * h * d], h, d);
        let e = view(e, v, d);
        let fill = |slots: Range<usize>, out: &mut [f64]| {
            for (s, t) in slots.zip(out.chunks_exact_mut(h * v)) {
                product(t, add, slot(s), e.transpose());
            }
        };
        match groups {
            [first, second] => {
                let (a, b) = out.tables.split_at_mut(first.len() * h * v);
                rayon::join(|| fill(first.clone(), a), || fill(second.clone(), b));
            }
            _ => fill(0..w, &mut out.tables),
        }
        for s in 0..w {
            let p_s: Vec<f64> = (0..d).map(|k| p[s + k * w]).collect();
            product(&mut out.c, true, slot(s), view(&p_s, d, 1));
        }
    }

    /// The first layer's pre-activations of the positions `ctx` from folded tables: each
    /// column `c + Σ_s T_s[:, t_s]` (`h × n`).
    fn gather(&self, ctx: &[usize], folded: &Folded) -> Vec<f64> {
        let (v, w, h) = (self.v, self.w, self.h);
        let mut out = take(h * (ctx.len() / w));
        let mut columns: Vec<&[f64]> = Vec::with_capacity(w);
        for (col, context) in out.chunks_exact_mut(h).zip(ctx.chunks_exact(w)) {
            columns.clear();
            columns.extend(
                context.iter().enumerate().map(|(s, &token)| {
                    &folded.tables[(s * v + token) * h..(s * v + token + 1) * h]
                }),
            );
            // Entry by entry `c + T_0 + T_1 + …` in slot order, a block of lanes at a time.
            const LANES: usize = 16;
            for (start, block) in (0..h).step_by(LANES).zip(col.chunks_mut(LANES)) {
                let lanes = block.len();
                let mut acc = [0.0; LANES];
                acc[..lanes].copy_from_slice(&folded.c[start..start + lanes]);
                for table in &columns {
                    let table = &table[start..start + lanes];
                    acc[..lanes]
                        .iter_mut()
                        .zip(table)
                        .for_each(|(x, y)| *x += y);
                }
                block.copy_from_slice(&acc[..lanes]);
            }
        }
        out
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

    /// The first layer's tangent `dh` (`h × n`) of the positions `ctx` along `dθ`:
    /// gathered from the direction's folded tables `dfold` if given, else unfolded,
    /// `dh = db_1 + dW_1 u + W_1 du` with `du` the direction's context vectors
    /// (`dE[t_s] + dP_s`, slot by slot).
    fn first_tangent(
        &self,
        (at, dtheta): (&Offsets, &[f64]),
        ctx: &[usize],
        fwd: &Forward,
        dfold: Option<&Folded>,
    ) -> Vec<f64> {
        if let Some(dfold) = dfold {
            return self.gather(ctx, dfold);
        }
        let (w, d, h) = (self.w, self.d, self.h);
        let n = ctx.len() / w;
        let du = self.context_vectors(ctx, &dtheta[..at.p], &dtheta[at.p..at.w1]);
        let dw1 = view(&dtheta[at.w1..at.b1], h, w * d);
        let mut dh = affine(&dtheta[at.b1..at.w2], dw1, view(&fwd.u, w * d, n));
        product(&mut dh, true, view(self.w1, h, w * d), view(&du, w * d, n));
        recycle([du]);
        dh
    }

    /// The logits' tangent (`V × n`) of positions with activations `fwd.a`, from the
    /// first layer's tangent `dh` ([`Net::first_tangent`]) along a direction whose
    /// output layer is `(dW_2, db_2)`: `dz = dW_2 a + db_2 + W_2 (σ' ⊙ dh)`.
    fn tangent(&self, fwd: &Forward, mut dh: Vec<f64>, dw2: &[f64], db2: &[f64]) -> Vec<f64> {
        let (v, h) = (self.v, self.h);
        let n = fwd.a.len() / h;
        tanh_derivative(&mut dh, &fwd.a);
        let mut dz = affine(db2, view(self.w2, v, h), view(&dh, h, n));
        product(&mut dz, true, view(dw2, v, h), view(&fwd.a, h, n));
        recycle([dh]);
        dz
    }
}

/// A first layer folded into the embeddings: the tables `T_s` (`h × V` each, slot after
/// slot) and the constant column `c` (`h`).
struct Folded {
    tables: Vec<f64>,
    c: Vec<f64>,
}

impl Folded {
    /// Its tables, back to the pool.
    fn recycle(self) {
        recycle([self.tables]);
    }

    /// Tables with stale contents (the first fold replaces them) and the constant `c`.
    fn new(net: &Net<'_>, c: &[f64]) -> Self {
        Folded {
            tables: take(net.h * net.v * net.w),
            c: c.to_vec(),
        }
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

/// One half's backward pass: its share of the gradient ([`Share`]).
fn backward(
    net: &Net<'_>,
    at: &Offsets,
    ctx: &[usize],
    fwd: &Forward,
    g: &[f64],
    folded: bool,
) -> Share {
    let (v, w, d, h) = (net.v, net.w, net.d, net.h);
    let n = ctx.len() / w;
    // Folded, this half adds to `b_1`, `W_2` and `b_2` only: its share starts at `b_1`.
    let from = if folded { at.b1 } else { 0 };
    let mut grad = vec![0.0; at.b2 + v - from];
    let (gm, am) = (view(g, v, n), view(&fwd.a, h, n));
    product(
        &mut grad[at.w2 - from..at.b2 - from],
        false,
        gm,
        am.transpose(),
    );
    for col in g.chunks_exact(v) {
        grad[at.b2 - from..]
            .iter_mut()
            .zip(col)
            .for_each(|(x, y)| *x += y);
    }
    let mut delta = take(h * n);
    product(&mut delta, false, view(net.w2, v, h).transpose(), gm);
    tanh_derivative(&mut delta, &fwd.a);
    for col in delta.chunks_exact(h) {
        grad[at.b1 - from..at.w2 - from]
            .iter_mut()
            .zip(col)
            .for_each(|(x, y)| *x += y);
    }
    if folded {
        return Share { from, grad, delta };
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
    Share {
        from,
        grad,
        delta: Vec::new(),
    }
}

/// One half's share of the gradient: `grad` holds `θ[from..]`'s entries.
struct Share {
    from: usize,
    grad: Vec<f64>,
    /// The first layer's residuals `δ` (`h × n`), when the embedding is folded.
    delta: Vec<f64>,
}

/// The folded first layer's gradient for one slot.
struct SlotGradient {
    slot: usize,
    /// `∇W_{1,s}`, `h × d`.
    w1: Vec<f64>,
    /// `∇P_s`, length `d`.
    p: Vec<f64>,
}

/// The folded first layer's gradient for a group of slots, from the first layer's
/// residuals `δ` (the halves' parts, in order) and their sum `δ̄` (which is `∇b_1`): per
/// slot, and this group's share of `∇E` (`V × d`).
fn folded_slots(
    net: &Net<'_>,
    ctx: &[usize],
    (delta, delta_sum): (&[&[f64]], &[f64]),
    slots: std::ops::Range<usize>,
) -> (Vec<SlotGradient>, Vec<f64>) {
    let (v, w, d, h) = (net.v, net.w, net.d, net.h);
    let (embed, p) = net.lm.embeddings();
    let e = view(embed.as_slice(), v, d);
    let mut grad_e = vec![0.0; v * d];
    let mut m = take(h * v);
    let mut seen = vec![false; v];
    let per_slot = slots
        .map(|s| {
            // Each token's column is its first residual, plus the others; a token that
            // no position holds in slot `s` gets a zero column.
            seen.fill(false);
            let columns = delta.iter().flat_map(|part| part.chunks_exact(h));
            for (col, context) in columns.zip(ctx.chunks_exact(w)) {
                let t = context[s];
                let column = &mut m[t * h..(t + 1) * h];
                if std::mem::replace(&mut seen[t], true) {
                    column.iter_mut().zip(col).for_each(|(x, y)| *x += y);
                } else {
                    column.copy_from_slice(col);
                }
            }
            for t in (0..v).filter(|&t| !seen[t]) {
                m[t * h..(t + 1) * h].fill(0.0);
            }
            let mm = view(&m, h, v);
            let mut grad_w1 = vec![0.0; h * d];
            product(&mut grad_w1, false, mm, e);
            for k in 0..d {
                let pk = p[(s, k)];
                grad_w1[k * h..(k + 1) * h]
                    .iter_mut()
                    .zip(delta_sum)
                    .for_each(|(x, y)| *x += y * pk);
            }
            product(&mut grad_e, true, mm.transpose(), net.w1_slot(s));
            let mut grad_p = vec![0.0; d];
            product(
                &mut grad_p,
                false,
                net.w1_slot(s).transpose(),
                view(delta_sum, h, 1),
            );
            SlotGradient {
                slot: s,
                w1: grad_w1,
                p: grad_p,
            }
        })
        .collect();
    recycle([m]);
    (per_slot, grad_e)
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

/// The distinct contexts of `xs`'s scored positions, flat (`W` tokens each, in order of
/// first use), and for every position the index of its context among them. Many
/// positions of a batch share their context (every response's first position after one
/// prompt does).
fn distinct_contexts(lm: &TinyLm, xs: &[Sequence]) -> (Vec<usize>, Vec<usize>) {
    let all = contexts(lm, xs);
    let w = lm.spec().window;
    let mut flat: Vec<usize> = Vec::with_capacity(all.len());
    let column_of = if all.len() / w.max(1) <= LINEAR_SEARCH_POSITIONS {
        // Few positions: a search through the distinct ones so far costs less than hashing.
        (all.chunks_exact(w))
            .map(|c| {
                let found = flat.chunks_exact(w).position(|d| d == c);
                found.unwrap_or_else(|| {
                    flat.extend_from_slice(c);
                    flat.len() / w - 1
                })
            })
            .collect()
    } else {
        let mut index = std::collections::HashMap::new();
        (all.chunks_exact(w))
            .map(|c| {
                let next = index.len();
                *index.entry(c).or_insert_with(|| {
                    flat.extend_from_slice(c);
                    next
                })
            })
            .collect()
    };
    (flat, column_of)
}

/// How many distinct contexts the scored positions of `xs` have: the positions the
/// forward mode runs on ([`tangent_flops`] counts its products on them).
pub fn distinct_positions(lm: &TinyLm, xs: &[Sequence]) -> usize {
    distinct_contexts(lm, xs).0.len() / lm.spec().window
}

/// Up to this many positions, [`distinct_contexts`] searches instead of hashing.
const LINEAR_SEARCH_POSITIONS: usize = 32;

/// The logits of every sequence of `xs` (`V × |y|` each) and their tangents `J dθ` along
/// each of `dthetas`, through the folded first layer when that is cheaper ([`folds`]),
/// halves on two threads. The forward pass runs once per distinct context
/// ([`distinct_contexts`]).
pub(super) fn logits_and_tangents(
    lm: &TinyLm,
    xs: &[Sequence],
    dthetas: &[DVector<f64>],
) -> (Vec<DMatrix<f64>>, Vec<Vec<DMatrix<f64>>>) {
    let (ctx, column_of) = distinct_contexts(lm, xs);
    let ctx = ctx.as_slice();
    let net = Net::new(lm);
    let at = Offsets::of(&net);
    let n = ctx.len() / net.w;
    let groups = slot_groups(net.w, n);
    let folded = folds(lm.spec(), n);
    let tables = folded.then(|| net.tables(&groups));
    let directions: Vec<Option<Folded>> = (dthetas.iter())
        .map(|d| folded.then(|| net.tangent_tables(&at, d.as_slice(), &groups)))
        .collect();
    let halves = chunks(n);
    let parts = in_parallel(&halves, |r| {
        let ctx = &ctx[r.start * net.w..r.end * net.w];
        let fwd = net.forward(ctx, tables.as_ref());
        let tangents: Vec<Vec<f64>> = (dthetas.iter().zip(&directions))
            .map(|(d, dfold)| {
                let d = d.as_slice();
                let dh = net.first_tangent((&at, d), ctx, &fwd, dfold.as_ref());
                net.tangent(&fwd, dh, &d[at.w2..at.b2], &d[at.b2..])
            })
            .collect();
        recycle([fwd.u, fwd.a]);
        (fwd.z, tangents)
    });
    tables.into_iter().for_each(Folded::recycle);
    directions.into_iter().flatten().for_each(Folded::recycle);
    // The logits (`None`) or the tangent along direction `k`, per sequence.
    let gather = |k: Option<usize>| {
        let distinct: Vec<&[f64]> = (parts.iter())
            .flat_map(|(z, t)| k.map_or(z.as_slice(), |k| &t[k]).chunks_exact(net.v))
            .collect();
        per_sequence(column_of.iter().map(|&c| distinct[c]), net.v, xs)
    };
    let logits = gather(None);
    let tangents = (0..dthetas.len()).map(|k| gather(Some(k))).collect();
    recycle(
        parts
            .into_iter()
            .flat_map(|(z, t)| std::iter::once(z).chain(t)),
    );
    (logits, tangents)
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
    let ctx = contexts(lm, xs);
    let n = ctx.len() / w;
    let folded = folds(lm.spec(), n);
    let groups = slot_groups(w, n);
    let tables = folded.then(|| net.tables(&groups));
    let halves = chunks(n);
    let forwards = in_parallel(&halves, |r| {
        net.forward(&ctx[r.start * w..r.end * w], tables.as_ref())
    });
    let logits = per_sequence(forwards.iter().flat_map(|f| f.z.chunks_exact(v)), v, xs);
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
    for share in &backs {
        (grad[share.from..].iter_mut())
            .zip(&share.grad)
            .for_each(|(x, y)| *x += y);
    }
    forwards.into_iter().for_each(Forward::recycle);
    tables.into_iter().for_each(Folded::recycle);
    if folded {
        let delta: Vec<&[f64]> = backs.iter().map(|b| b.delta.as_slice()).collect();
        let delta_sum = &grad[at.b1..at.w2];
        let results = in_parallel(&groups, |slots| {
            folded_slots(&net, &ctx, (&delta, delta_sum), slots.clone())
        });
        recycle(backs.into_iter().map(|b| b.delta));
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
