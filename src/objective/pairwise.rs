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
    /// `rpo` (TRL: `rpo_alpha` with `sigmoid`; `sigmoid+sft` for
    /// `loss_type=["sigmoid","sft"]`, which is α = 1): DPO plus an NLL term on `y⁺`, the
    /// token mean of its cross-entropy, `NLL = −lp⁺ / |y⁺|`, while DPO's term reads the
    /// summed `lp±`. [`RpoWeighting::V3`] (TRL's): `L = L_DPO + α·NLL`;
    /// [`RpoWeighting::V1`] (the RPO paper's first version): `L = α·L_DPO + NLL`.
    Rpo {
        /// The weight `α`.
        alpha: f64,
        /// Which term `α` weighs.
        weighting: RpoWeighting,
    },
    /// `dpop` (DPO-Positive, Smaug; no TRL name): DPO with a penalty
    /// `p = max(0, ref⁺ − lp⁺)` once `y⁺` falls below the reference. [`DpopForm::Inside`]
    /// (the paper's Eq. 3): `L = −log σ(β (r⁺ − r⁻ − λ p))`; [`DpopForm::Outside`] (the
    /// code posted for it): `L = −log σ(β (r⁺ − r⁻)) + λ p`, the penalty unscaled by β.
    /// At the kink `lp⁺ = ref⁺`, where every update from the reference starts, the
    /// subgradient 0 is taken: the penalty acts only once `y⁺` is strictly below.
    Dpop {
        /// The weight `λ` of the penalty.
        lambda: f64,
        /// Where the penalty sits.
        form: DpopForm,
    },
}

/// Which term RPO's `α` weighs (see [`PairLoss::Rpo`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RpoWeighting {
    /// `v1`: `α·L_DPO + NLL` (the RPO paper's first version).
    V1,
    /// `v3`: `L_DPO + α·NLL` (the paper's later versions, and TRL's `rpo_alpha`).
    V3,
}

impl std::str::FromStr for RpoWeighting {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        crate::error::pick(
            "RPO weighting",
            name,
            &[("v1", RpoWeighting::V1), ("v3", RpoWeighting::V3)],
        )
    }
}

impl RpoWeighting {
    /// `v1` or `v3`.
    pub fn id(self) -> &'static str {
        match self {
            RpoWeighting::V1 => "v1",
            RpoWeighting::V3 => "v3",
        }
    }
}

/// Where DPOP's penalty sits (see [`PairLoss::Dpop`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DpopForm {
    /// `inside` the sigmoid, scaled by β: the paper's Eq. 3.
    Inside,
    /// `outside` the sigmoid, added to DPO's loss unscaled: the community code's form.
    Outside,
}

impl std::str::FromStr for DpopForm {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        crate::error::pick(
            "DPOP form",
            name,
            &[("inside", DpopForm::Inside), ("outside", DpopForm::Outside)],
        )
    }
}

impl DpopForm {
    /// `inside` or `outside`.
    pub fn id(self) -> &'static str {
        match self {
            DpopForm::Inside => "inside",
            DpopForm::Outside => "outside",
        }
    }
}

/// A pairwise loss's value and coefficients at one pair: `s⁺` (which includes the
/// anchor's part), `s⁻`, and the anchor's part of `s⁺`, the pull on `y⁺` that is not
/// DPO's (RPO's NLL, DPOP's penalty, SLiC's λ term; 0 for the others).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Coefficients {
    /// The loss `L`.
    pub loss: f64,
    /// `s⁺`, with the anchor's part.
    pub chosen: f64,
    /// `s⁻`.
    pub rejected: f64,
    /// The anchor's part of `s⁺`.
    pub anchor: f64,
}

impl PairLoss {
    /// Every loss with its defaults (SLiC δ = 1, λ = 0.1; RPO v3 with α = 1, TRL's
    /// `sigmoid+sft`; DPOP inside with λ = 50, Smaug's), in the order of its names.
    pub const ALL: [PairLoss; 6] = [
        PairLoss::Dpo,
        PairLoss::Ipo,
        PairLoss::Slic {
            delta: 1.0,
            lambda: 0.1,
        },
        PairLoss::SppoHard,
        PairLoss::Rpo {
            alpha: 1.0,
            weighting: RpoWeighting::V3,
        },
        PairLoss::Dpop {
            lambda: 50.0,
            form: DpopForm::Inside,
        },
    ];

    /// TRL's `loss_type` names whose formula is one of these losses, as `(TRL, ours)`.
    /// Only names with the same formula are aliases: `sigmoid+sft` is TRL's
    /// `loss_type=["sigmoid","sft"]` at unit weights, RPO v3 at α = 1.
    pub const TRL_ALIASES: [(&'static str, &'static str); 2] =
        [("sigmoid", "dpo"), ("sigmoid+sft", "rpo")];

    /// The loss's name (the CSV contract, and what [`str::parse`] reads).
    pub fn id(self) -> &'static str {
        match self {
            PairLoss::Dpo => "dpo",
            PairLoss::Ipo => "ipo",
            PairLoss::Slic { .. } => "slic",
            PairLoss::SppoHard => "sppo_hard",
            PairLoss::Rpo { .. } => "rpo",
            PairLoss::Dpop { .. } => "dpop",
        }
    }

    /// `(L, s⁺, s⁻)` of this loss with inverse temperature `beta`, from the policy's
    /// sequence log-probabilities `(lp⁺, lp⁻)`, the reference's `(ref⁺, ref⁻)` and the
    /// length `|y⁺|` of the chosen response (RPO's NLL is a token mean); see [`Pairwise`].
    pub fn strengths(
        self,
        beta: f64,
        lps: (f64, f64),
        reference: (f64, f64),
        chosen_len: usize,
    ) -> (f64, f64, f64) {
        let c = self.coefficients(beta, lps, reference, chosen_len);
        (c.loss, c.chosen, c.rejected)
    }

    /// The loss and its [`Coefficients`], with the anchor's part of `s⁺` (see
    /// [`PairLoss::strengths`] for the arguments).
    pub fn coefficients(
        self,
        beta: f64,
        (lp_chosen, lp_rejected): (f64, f64),
        reference: (f64, f64),
        chosen_len: usize,
    ) -> Coefficients {
        let (r_plus, r_minus) = (lp_chosen - reference.0, lp_rejected - reference.1);
        let margin = r_plus - r_minus;
        let of = |loss, chosen, rejected| Coefficients {
            loss,
            chosen,
            rejected,
            anchor: 0.0,
        };
        // DPO at a margin: its loss and its coefficient β σ(−β m).
        let dpo = |m: f64| {
            (
                -crate::numerics::log_sigmoid(beta * m),
                beta * crate::numerics::sigmoid(-beta * m),
            )
        };
        match self {
            PairLoss::Dpo => {
                let (loss, s) = dpo(margin);
                of(loss, s, s)
            }
            PairLoss::Ipo => {
                let target = 1.0 / (2.0 * beta);
                let s = 2.0 * (target - margin);
                of((margin - target).powi(2), s, s)
            }
            PairLoss::Slic { delta, lambda } => {
                let hinge = delta - (lp_chosen - lp_rejected);
                let active = f64::from(u8::from(hinge > 0.0));
                Coefficients {
                    anchor: lambda,
                    ..of(hinge.max(0.0) - lambda * lp_chosen, active + lambda, active)
                }
            }
            PairLoss::SppoHard => {
                let half = 0.5 / beta;
                of(
                    (r_plus - half).powi(2) + (r_minus + half).powi(2),
                    2.0 * (half - r_plus),
                    2.0 * (r_minus + half),
                )
            }
            PairLoss::Rpo { alpha, weighting } => {
                let (loss, s) = dpo(margin);
                let (nll, per_token) = (-lp_chosen / chosen_len as f64, 1.0 / chosen_len as f64);
                let (dpo_weight, nll_weight) = match weighting {
                    RpoWeighting::V3 => (1.0, alpha),
                    RpoWeighting::V1 => (alpha, 1.0),
                };
                let anchor = nll_weight * per_token;
                Coefficients {
                    loss: dpo_weight * loss + nll_weight * nll,
                    chosen: dpo_weight * s + anchor,
                    rejected: dpo_weight * s,
                    anchor,
                }
            }
            PairLoss::Dpop { lambda, form } => {
                // The subgradient 0 at the kink: active only strictly below the reference.
                let below = reference.0 - lp_chosen;
                let (penalty, active) = (below.max(0.0), f64::from(u8::from(below > 0.0)));
                match form {
                    DpopForm::Inside => {
                        let (loss, s) = dpo(margin - lambda * penalty);
                        let anchor = s * lambda * active;
                        Coefficients {
                            loss,
                            chosen: s + anchor,
                            rejected: s,
                            anchor,
                        }
                    }
                    DpopForm::Outside => {
                        let (loss, s) = dpo(margin);
                        let anchor = lambda * active;
                        Coefficients {
                            loss: loss + lambda * penalty,
                            chosen: s + anchor,
                            rejected: s,
                            anchor,
                        }
                    }
                }
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
