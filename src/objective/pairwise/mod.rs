//! The pairwise preference losses on a chosen and a rejected sequence, each as residuals
//! `G⁺ = s⁺(π⁺ − e_{y⁺})` and `G⁻ = −s⁻(π⁻ − e_{y⁻})` with its own coefficients, and the
//! objective of one language-model step (SFT or a pairwise loss) as the CLI names it.
//!
//! `losses` holds the losses and their coefficients ([`PairLoss`], [`Coefficients`]),
//! `terms` a pair's residuals split by term ([`split_terms`], [`OneTerm`]); this module
//! the objective ([`Pairwise`]).

mod losses;
mod terms;

pub use losses::{Coefficients, DpopForm, LmObjective, PairLoss, RpoWeighting};
pub use terms::{OneTerm, Term, shared_positions, split_terms, without_anchor};

use nalgebra::DMatrix;

use super::Objective;
use crate::error::{Error, Result, check_class};
use crate::numerics::{log_prob, softmax_columns_shifted};

/// A pairwise preference objective on `[χ⁺, χ⁻]` (chosen, rejected), with sequence
/// log-probabilities `lp± = Σ_l log π_l(y±_l)` and frozen reference values `ref±`.
///
/// Every such loss has the same template (the paper's §3.2 and App. B):
///
/// `G⁺ = s⁺ (π⁺ − e_{y⁺})`   and   `G⁻ = −s⁻ (π⁻ − e_{y⁻})`,
///
/// per position, so `s⁺ > 0` pulls `y⁺` up and `s⁻ > 0` pushes `y⁻` down (a negative
/// gradient). [`Pairwise::strengths`] gives `(L, s⁺, s⁻)`:
///
/// | loss | s⁺ | s⁻ |
/// |---|---|---|
/// | DPO | `β(1 − σ(βm))` | `β(1 − σ(βm))` |
/// | IPO | `2(1/(2τ) − m)` | `2(1/(2τ) − m)` |
/// | SLiC | `1[δ − gap > 0] + λ` | `1[δ − gap > 0]` |
/// | SPPO (hard) | `2(η_s/2 − r⁺)` | `2(r⁻ + η_s/2)` |
/// | RPO v3 | `β(1 − σ(βm)) + α/|y⁺|` | `β(1 − σ(βm))` |
/// | RPO v1 | `αβ(1 − σ(βm)) + 1/|y⁺|` | `αβ(1 − σ(βm))` |
/// | DPOP inside | `β(1 − σ(βu))(1 + λ·1[lp⁺ < ref⁺])`, `u = m − λp` | `β(1 − σ(βu))` |
/// | DPOP outside | `β(1 − σ(βm)) + λ·1[lp⁺ < ref⁺]` | `β(1 − σ(βm))` |
///
/// with `p = max(0, ref⁺ − lp⁺)`. The **anchor** is the part of `s⁺` that is not DPO's
/// pull: RPO's `α/|y⁺|` (v1: `1/|y⁺|`), DPOP's `λ`-term, SLiC's `λ`
/// ([`Coefficients::anchor`], [`Pairwise::terms`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Pairwise {
    /// Which loss.
    pub loss: PairLoss,
    /// The inverse temperature `β` (> 0); for IPO, its `τ`.
    pub beta: f64,
    /// Response tokens of the chosen sequence `y⁺`.
    pub chosen: Vec<usize>,
    /// Response tokens of the rejected sequence `y⁻`.
    pub rejected: Vec<usize>,
    /// `(ref⁺, ref⁻)`: the reference model's sequence log-probabilities.
    pub reference: (f64, f64),
}

impl Pairwise {
    /// A pair of classes of one distribution, scored on the same logits: `y⁺ = chosen`,
    /// `y⁻ = rejected`, with the reference's log-probabilities read from `reference_log_pi`
    /// (one value per class). The single-token preference of the toy panels.
    pub fn classes(
        loss: PairLoss,
        beta: f64,
        (chosen, rejected): (usize, usize),
        reference_log_pi: &[f64],
    ) -> Self {
        Pairwise {
            loss,
            beta,
            chosen: vec![chosen],
            rejected: vec![rejected],
            reference: (reference_log_pi[chosen], reference_log_pi[rejected]),
        }
    }

    /// The residual on one shared logit vector `z` of a [`Pairwise::classes`] pair,
    /// `similarity · G⁺ + G⁻`: `y⁺`'s sequence is another input whose eNTK with `z`'s is
    /// `similarity` times its own, so its pull reaches `z` scaled by it.
    pub fn shared_residual(&self, z: &DMatrix<f64>, similarity: f64) -> Vec<f64> {
        let g = self.residuals(&[z.clone(), z.clone()]);
        g[0].iter()
            .zip(g[1].iter())
            .map(|(plus, minus)| similarity * plus + minus)
            .collect()
    }

    /// `(L, s⁺, s⁻)` from the sequence log-probabilities `lp⁺, lp⁻` (see the type docs).
    pub fn strengths(&self, lp_chosen: f64, lp_rejected: f64) -> (f64, f64, f64) {
        let lps = (lp_chosen, lp_rejected);
        (self.loss).strengths(self.beta, lps, self.reference, self.chosen.len())
    }

    /// The loss and its [`Coefficients`] from `lp⁺, lp⁻`, with the anchor's part of `s⁺`.
    pub fn coefficients(&self, lp_chosen: f64, lp_rejected: f64) -> Coefficients {
        let lps = (lp_chosen, lp_rejected);
        (self.loss).coefficients(self.beta, lps, self.reference, self.chosen.len())
    }

    fn log_probs(&self, logits: &[DMatrix<f64>]) -> (f64, f64) {
        use crate::numerics::sequence_log_prob;
        (
            sequence_log_prob(&logits[0], &self.chosen),
            sequence_log_prob(&logits[1], &self.rejected),
        )
    }
}

impl Objective for Pairwise {
    fn arity(&self) -> usize {
        2
    }

    fn check(&self, shapes: &[(usize, usize)]) -> Result<()> {
        let &[(v, l_plus), (v2, l_minus)] = shapes else {
            return Err(Error::ShapeMismatch {
                what: "number of inputs for a pairwise loss",
                expected: 2,
                got: shapes.len(),
            });
        };
        crate::error::check_len("vocabulary of the rejected sequence", v, v2)?;
        crate::error::check_len("chosen response length", l_plus, self.chosen.len())?;
        crate::error::check_len("rejected response length", l_minus, self.rejected.len())?;
        for &t in self.chosen.iter().chain(&self.rejected) {
            check_class(t, v)?;
        }
        crate::error::check_step("beta", self.beta)?;
        if !(self.reference.0.is_finite() && self.reference.1.is_finite()) {
            return Err(Error::NonFinite("reference log-probabilities"));
        }
        Ok(())
    }

    fn loss(&self, logits: &[DMatrix<f64>]) -> f64 {
        let (lp_plus, lp_minus) = self.log_probs(logits);
        self.strengths(lp_plus, lp_minus).0
    }

    fn residuals(&self, logits: &[DMatrix<f64>]) -> Vec<DMatrix<f64>> {
        self.loss_and_residuals(logits).1
    }

    /// The anchor's residuals for a loss that has one (SLiC, RPO, DPOP); `None` for DPO,
    /// IPO and SPPO, whose whole pull is their chosen term.
    fn anchor(&self, logits: &[DMatrix<f64>]) -> Option<Vec<DMatrix<f64>>> {
        let anchored = matches!(
            self.loss,
            PairLoss::Slic { .. } | PairLoss::Rpo { .. } | PairLoss::Dpop { .. }
        );
        anchored.then(|| self.anchor_residuals(logits))
    }

    /// One softmax per sequence ([`softmax_columns_shifted`]) gives its log-probability,
    /// hence `(L, s⁺, s⁻)`, and its `π` for `G = s (π − e_y)`.
    fn loss_and_residuals(&self, logits: &[DMatrix<f64>]) -> (f64, Vec<DMatrix<f64>>) {
        let [(pi_plus, shift_plus), (pi_minus, shift_minus)] =
            [&logits[0], &logits[1]].map(softmax_columns_shifted);
        let log_prob_of = |z: &DMatrix<f64>, shifts: &[(f64, f64)], y: &[usize]| -> f64 {
            (y.iter().enumerate())
                .map(|(l, &t)| log_prob(z[(t, l)], shifts[l]))
                .sum()
        };
        let (lp_plus, lp_minus) = (
            log_prob_of(&logits[0], &shift_plus, &self.chosen),
            log_prob_of(&logits[1], &shift_minus, &self.rejected),
        );
        let (loss, s_plus, s_minus) = self.strengths(lp_plus, lp_minus);
        let push = |mut g: DMatrix<f64>, targets: &[usize], s: f64| {
            for (l, &t) in targets.iter().enumerate() {
                g[(t, l)] -= 1.0;
            }
            g *= s;
            g
        };
        (
            loss,
            vec![
                push(pi_plus, &self.chosen, s_plus),
                push(pi_minus, &self.rejected, -s_minus),
            ],
        )
    }
}

impl Pairwise {
    /// The pair's residuals split into its three terms, each as residuals of both inputs:
    /// DPO's chosen term `(s⁺ − a)(π⁺ − e_{y⁺})` (`[·, 0]`), its rejected term `G⁻`
    /// (`[0, ·]`), and the anchor `a(π⁺ − e_{y⁺})` (`[·, 0]`), `a` the anchor's part of
    /// `s⁺` ([`Coefficients::anchor`]). At the positions `y⁺` and `y⁻` share, the chosen
    /// and the rejected terms are split as [`split_terms`] splits them (for the DPO
    /// family they cancel exactly); the anchor's residual stays with the anchor. The three
    /// terms' gradients sum to the step's.
    pub fn terms(&self, logits: &[DMatrix<f64>]) -> [Vec<DMatrix<f64>>; 3] {
        let g = self.residuals(logits);
        let anchor = self.anchor_residuals(logits);
        let [chosen, rejected] = self.dpo_terms(&g, &anchor);
        [chosen, rejected, anchor]
    }

    /// The anchor's residuals `[a(π⁺ − e_{y⁺}), 0]` (see [`Pairwise::terms`]).
    pub fn anchor_residuals(&self, logits: &[DMatrix<f64>]) -> Vec<DMatrix<f64>> {
        let (lp_plus, lp_minus) = self.log_probs(logits);
        let strength = self.coefficients(lp_plus, lp_minus).anchor;
        let mut anchor = softmax_columns_shifted(&logits[0]).0;
        for (l, &t) in self.chosen.iter().enumerate() {
            anchor[(t, l)] -= 1.0;
        }
        anchor *= strength;
        let (v, l) = logits[1].shape();
        vec![anchor, DMatrix::zeros(v, l)]
    }

    /// DPO's chosen and rejected terms of the residuals `g` without the `anchor`'s
    /// ([`Pairwise::terms`]).
    pub fn dpo_terms(&self, g: &[DMatrix<f64>], anchor: &[DMatrix<f64>]) -> [Vec<DMatrix<f64>>; 2] {
        let shared = shared_positions(&self.chosen, &self.rejected);
        without_anchor(g, anchor, &shared, &self.chosen)
    }
}
