//! The reverse mode: the gradient of a batch under its residuals, each half's backward
//! pass on its own thread, then (folded) the first layer's gradient slot group by slot
//! group from the scattered residuals `M_s`.

use nalgebra::DVector;

use super::buffers::{in_parallel, product, recycle, take, tanh_derivative, view};
use super::folded::Folded;
use super::{Forward, Net, Offsets, chunks, contexts, folds, per_sequence, slot_groups};
use crate::error::Result;
use crate::lm::{Sequence, TinyLm};
use crate::model::{Gradients, Residuals};

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

/// The gradient of `xs` under `residuals`; see the module docs.
pub(in crate::lm) fn gradient_batch(
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
