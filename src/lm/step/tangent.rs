//! The forward mode: the logits and their tangents `J dθ` along many directions, one
//! forward pass per distinct context shared by every direction.

use nalgebra::{DMatrix, DVector};

use super::buffers::{affine, in_parallel, product, recycle, tanh_derivative, view};
use super::folded::Folded;
use super::{Forward, Net, Offsets, chunks, contexts, folds, per_sequence, slot_groups};
use crate::lm::{Sequence, TinyLm};

impl Net<'_> {
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
/// forward mode runs on ([`tangent_flops`](super::tangent_flops) counts its products on them).
pub fn distinct_positions(lm: &TinyLm, xs: &[Sequence]) -> usize {
    distinct_contexts(lm, xs).0.len() / lm.spec().window
}

/// Up to this many positions, [`distinct_contexts`] searches instead of hashing.
const LINEAR_SEARCH_POSITIONS: usize = 32;

/// The logits of every sequence of `xs` (`V × |y|` each) and their tangents `J dθ` along
/// each of `dthetas`, through the folded first layer when that is cheaper ([`folds`]),
/// halves on two threads. The forward pass runs once per distinct context
/// ([`distinct_contexts`]).
pub(in crate::lm) fn logits_and_tangents(
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
