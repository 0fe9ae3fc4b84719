//! A pair's residuals split by term: DPO's chosen and rejected terms (cancelling at the
//! positions `y⁺` and `y⁻` share), without the anchor's part, and the one-term
//! objective of `lm_policy`'s ablations.

use nalgebra::DMatrix;

use super::Pairwise;
use crate::error::Result;
use crate::objective::Objective;

/// One of a pairwise loss's two terms: the gradient through `y⁺`'s positions (`G⁺`) or
/// through `y⁻`'s (`G⁻`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Term {
    /// `G⁺ = s⁺(π⁺ − e_{y⁺})`: the pull on the chosen answer.
    Chosen,
    /// `G⁻ = −s⁻(π⁻ − e_{y⁻})`: the push on the rejected answer (a negative gradient).
    Rejected,
}

/// The response positions at which `y⁺` and `y⁻` (after the same prompt) share both
/// the context and the token: every position up to and including the first one where
/// they agree, `y⁺_{≤l} = y⁻_{≤l}`. There the two terms act on the same logits with
/// opposite signs and cancel up to `(s⁺ − s⁻)(π − e_y)`: exactly for DPO and IPO.
pub fn shared_positions(chosen: &[usize], rejected: &[usize]) -> Vec<bool> {
    let mut same = true;
    (0..chosen.len())
        .map(|l| {
            same = same && rejected.get(l) == Some(&chosen[l]);
            same
        })
        .collect()
}

/// Splits a pair's residuals `[G⁺, G⁻]` into its two terms, each as residuals of both
/// inputs (`[G⁺ᵗᵉʳᵐ, 0]` and `[0, G⁻ᵗᵉʳᵐ]`), with `shared` the positions of
/// [`shared_positions`]. At a shared position the two terms cancel but for the
/// remainder `G⁺_l + G⁻_l = (s⁺ − s⁻)(π − e_y)`, which is zero for DPO and IPO: it is
/// left out of both terms and the remainder goes to the term with the larger
/// coefficient (the chosen one when the remainder pulls `y` up). So the two terms always
/// sum to the step's gradient.
pub fn split_terms(g: &[DMatrix<f64>], shared: &[bool], token: &[usize]) -> [Vec<DMatrix<f64>>; 2] {
    let (mut plus, mut minus) = (g[0].clone(), g[1].clone());
    for l in (0..shared.len()).filter(|&l| shared[l]) {
        let net = g[0].column(l) + g[1].column(l);
        let (keep, drop) = if net[token[l]] < 0.0 {
            (&mut plus, &mut minus)
        } else {
            (&mut minus, &mut plus)
        };
        keep.column_mut(l).copy_from(&net);
        drop.column_mut(l).fill(0.0);
    }
    let zeros = |m: &DMatrix<f64>| DMatrix::zeros(m.nrows(), m.ncols());
    [vec![plus, zeros(&g[1])], vec![zeros(&g[0]), minus]]
}

/// DPO's chosen and rejected terms of residuals `g` less the anchor's `anchor`, split at
/// the `shared` positions as [`split_terms`] splits them; the anchor's residual stays out
/// of both.
pub fn without_anchor(
    g: &[DMatrix<f64>],
    anchor: &[DMatrix<f64>],
    shared: &[bool],
    token: &[usize],
) -> [Vec<DMatrix<f64>>; 2] {
    let dpo: Vec<DMatrix<f64>> = g.iter().zip(anchor).map(|(g, a)| g - a).collect();
    split_terms(&dpo, shared, token)
}

/// A pairwise loss with only one of its terms in the gradient (the ablation of
/// `lm_policy`): the residuals of [`split_terms`]' `term`, each with the coefficient the
/// full loss has at these logits (`s±` read from both sequences' log-probabilities), and
/// the shared positions left out, so that it never applies a push the full loss cancels.
/// Its loss value is the full loss's.
#[derive(Clone, Debug, PartialEq)]
pub struct OneTerm {
    /// The full loss.
    pub pair: Pairwise,
    /// The term kept.
    pub term: Term,
}

impl Objective for OneTerm {
    fn arity(&self) -> usize {
        2
    }

    fn check(&self, shapes: &[(usize, usize)]) -> Result<()> {
        self.pair.check(shapes)
    }

    fn loss(&self, logits: &[DMatrix<f64>]) -> f64 {
        self.pair.loss(logits)
    }

    fn residuals(&self, logits: &[DMatrix<f64>]) -> Vec<DMatrix<f64>> {
        let pair = &self.pair;
        let shared = shared_positions(&pair.chosen, &pair.rejected);
        let [chosen, rejected] = split_terms(&pair.residuals(logits), &shared, &pair.chosen);
        match self.term {
            Term::Chosen => chosen,
            Term::Rejected => rejected,
        }
    }
}
