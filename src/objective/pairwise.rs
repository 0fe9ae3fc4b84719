//! The pairwise preference losses on a chosen and a rejected sequence, each as residuals
//! `G⁺ = s⁺(π⁺ − e_{y⁺})` and `G⁻ = −s⁻(π⁻ − e_{y⁻})` with its own coefficients, and the
//! objective of one language-model step (SFT or a pairwise loss) as the CLI names it.

use nalgebra::DMatrix;

#[cfg(doc)]
use super::CrossEntropy;
use super::Objective;
use crate::error::{Error, Result, check_class};
use crate::numerics::{log_prob, softmax_columns_shifted};

/// A preference loss on a chosen and a rejected sequence. Its names are this crate's;
/// [`PairLoss::TRL_ALIASES`] lists the names of TRL's `DPOTrainer` (`loss_type`) that
/// denote the same formula.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PairLoss {
    /// `dpo` (TRL: `sigmoid`): `L = −log σ(β m)`, `m = (lp⁺ − lp⁻) − (ref⁺ − ref⁻)`.
    Dpo,
    /// `ipo` (TRL: `ipo`): `L = (m − 1/(2τ))²`, with τ the loss's strength parameter
    /// (`ipo_tau` in `lm_losses`; the paper's Eq. 16 writes it β).
    Ipo,
    /// `slic` (SLiC-HF; no TRL name): `L = max(0, δ − (lp⁺ − lp⁻)) − λ lp⁺` (no reference;
    /// the regulariser is SFT on the chosen sequence). TRL's `hinge`,
    /// `max(0, 1 − β m)`, is another formula: it reads the reference and has no SFT term.
    Slic {
        /// The margin `δ` past which the push-apart stops.
        delta: f64,
        /// The weight `λ` of the SFT regulariser.
        lambda: f64,
    },
    /// `sppo_hard` (TRL: `sppo_hard`): `L = (r⁺ − η_s/2)² + (r⁻ + η_s/2)²`,
    /// `r± = lp± − ref±`, with `η_s = 1/β` as in TRL.
    SppoHard,
}

impl PairLoss {
    /// Every loss, SLiC with its defaults (δ = 1, λ = 0.1), in the order of its names.
    pub const ALL: [PairLoss; 4] = [
        PairLoss::Dpo,
        PairLoss::Ipo,
        PairLoss::Slic {
            delta: 1.0,
            lambda: 0.1,
        },
        PairLoss::SppoHard,
    ];

    /// TRL's `loss_type` names whose formula is one of these losses, as `(TRL, ours)`.
    /// Only names with the same formula are aliases.
    pub const TRL_ALIASES: [(&'static str, &'static str); 1] = [("sigmoid", "dpo")];

    /// The loss's name (the CSV contract, and what [`str::parse`] reads).
    pub fn id(self) -> &'static str {
        match self {
            PairLoss::Dpo => "dpo",
            PairLoss::Ipo => "ipo",
            PairLoss::Slic { .. } => "slic",
            PairLoss::SppoHard => "sppo_hard",
        }
    }

    /// `(L, s⁺, s⁻)` of this loss with inverse temperature `beta`, from the policy's
    /// sequence log-probabilities `(lp⁺, lp⁻)` and the reference's `(ref⁺, ref⁻)` (see
    /// [`Pairwise`]).
    pub fn strengths(
        self,
        beta: f64,
        (lp_chosen, lp_rejected): (f64, f64),
        reference: (f64, f64),
    ) -> (f64, f64, f64) {
        let (r_plus, r_minus) = (lp_chosen - reference.0, lp_rejected - reference.1);
        let margin = r_plus - r_minus;
        match self {
            PairLoss::Dpo => {
                let s = beta * crate::numerics::sigmoid(-beta * margin);
                (-crate::numerics::log_sigmoid(beta * margin), s, s)
            }
            PairLoss::Ipo => {
                let target = 1.0 / (2.0 * beta);
                (
                    (margin - target).powi(2),
                    2.0 * (target - margin),
                    2.0 * (target - margin),
                )
            }
            PairLoss::Slic { delta, lambda } => {
                let hinge = delta - (lp_chosen - lp_rejected);
                let active = f64::from(u8::from(hinge > 0.0));
                (hinge.max(0.0) - lambda * lp_chosen, active + lambda, active)
            }
            PairLoss::SppoHard => {
                let half = 0.5 / beta;
                (
                    (r_plus - half).powi(2) + (r_minus + half).powi(2),
                    2.0 * (half - r_plus),
                    2.0 * (r_minus + half),
                )
            }
        }
    }

    /// Every name [`str::parse`] reads, comma-separated.
    pub fn names() -> String {
        let names: Vec<&str> = PairLoss::ALL.iter().map(|l| l.id()).collect();
        names.join(", ")
    }
}

impl std::str::FromStr for PairLoss {
    type Err = Error;

    /// Parses a loss's [`id`](PairLoss::id) (SLiC with its defaults) or a TRL alias.
    fn from_str(name: &str) -> Result<Self> {
        let id = PairLoss::TRL_ALIASES
            .iter()
            .find(|(trl, _)| *trl == name)
            .map_or(name, |(_, ours)| ours);
        PairLoss::ALL
            .into_iter()
            .find(|l| l.id() == id)
            .ok_or_else(|| Error::Unknown {
                kind: "pairwise loss",
                name: name.into(),
                expected: PairLoss::names(),
            })
    }
}

impl std::fmt::Display for PairLoss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

/// The objective of one language-model step: SFT on the chosen answer, or a pairwise
/// preference loss on the chosen and the rejected answers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LmObjective {
    /// Cross-entropy on `y⁺` ([`CrossEntropy::sequence`]).
    Sft,
    /// A preference loss on `(y⁺, y⁻)` ([`Pairwise`]).
    Pair(PairLoss),
}

impl std::str::FromStr for LmObjective {
    type Err = Error;

    /// Parses `sft` or any name [`PairLoss`] parses.
    fn from_str(name: &str) -> Result<Self> {
        match name {
            "sft" => Ok(LmObjective::Sft),
            _ => name
                .parse()
                .map(LmObjective::Pair)
                .map_err(|_| Error::Unknown {
                    kind: "objective",
                    name: name.into(),
                    expected: format!("sft, {}", PairLoss::names()),
                }),
        }
    }
}

impl std::fmt::Display for LmObjective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LmObjective::Sft => f.write_str("sft"),
            LmObjective::Pair(loss) => loss.fmt(f),
        }
    }
}

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
        self.loss
            .strengths(self.beta, (lp_chosen, lp_rejected), self.reference)
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
