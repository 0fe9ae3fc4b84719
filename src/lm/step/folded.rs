//! The first layer folded into the embeddings (when a batch has more positions than the
//! vocabulary has tokens): the tables `T_s = W_{1,s} Eᵀ` and constant `c`, their tangent
//! along a direction, and the gather of a position's pre-activation from them.

use std::ops::Range;

use super::Net;
use super::Offsets;
use super::buffers::{product, recycle, take, view};

/// A first layer folded into the embeddings: the tables `T_s` (`h × V` each, slot after
/// slot) and the constant column `c` (`h`).
pub(super) struct Folded {
    tables: Vec<f64>,
    c: Vec<f64>,
}

impl Folded {
    /// Its tables, back to the pool.
    pub(super) fn recycle(self) {
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

impl Net<'_> {
    /// The folded first layer of the model's weights: `T_s = W_{1,s} Eᵀ` and
    /// `c = b_1 + Σ_s W_{1,s} P_s`.
    pub(super) fn tables(&self, groups: &[Range<usize>]) -> Folded {
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
    pub(super) fn tangent_tables(
        &self,
        at: &Offsets,
        dtheta: &[f64],
        groups: &[Range<usize>],
    ) -> Folded {
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
    pub(super) fn gather(&self, ctx: &[usize], folded: &Folded) -> Vec<f64> {
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
}
