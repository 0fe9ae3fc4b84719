//! The pairwise losses by name (this crate's, and TRL's where the formula is the same),
//! each with its value and coefficients `(L, s⁺, s⁻)` at a pair, the anchor's part of
//! `s⁺`, and the objective of one language-model step as the CLI names it.

#[cfg(doc)]
use super::super::CrossEntropy;
#[cfg(doc)]
use super::Pairwise;
use crate::error::{Error, Result};

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
