//! The residual schematic (the paper's Fig. 2): one step from one peaky distribution
//! under the residual `G` of each objective, so the pushes and what they do to the
//! whole distribution can be compared side by side.
//!
//! The observed distribution is `π(· | χ⁻)`, the next-token distribution of the rejected
//! answer's prefix, where theory puts squeezing. A pairwise loss reads two inputs, `χ⁺`
//! and `χ⁻`, both with this distribution; their residuals come from
//! [`crate::objective`] (`G⁺ = s⁺(π − e_{y⁺})`, `G⁻ = −s⁻(π − e_{y⁻})`). The chosen term
//! reaches `χ⁻` through the eNTK, at the relative similarity
//! `ρ = K(χ⁻, χ⁺) / K(χ⁻, χ⁻)` (a key; `K` is a multiple of the identity, as for a
//! linear softmax), so the logits move by
//!
//! `Δz = −c (ρ G⁺ + G⁻) / max_i |ρ G⁺ + G⁻|_i`,
//!
//! every objective's largest logit move being `c`. At `ρ = 1` (one shared context) the `π`
//! terms of DPO's two residuals cancel and nothing squeezes: squeezing needs `y⁻`'s
//! context to differ from `y⁺`'s, as it does past the first differing token of two
//! answers. SFT reads `χ⁺` alone, observed at its own context.
//!
//! Classes by role: `y*` is the argmax (never pushed); `y⁺` the class at rank `V/4`; the
//! off-policy `y⁻` the least likely class (a valley); the on-policy `y⁻` the argmax's
//! nearest rival; SPIN's `y⁻` a seeded sample of `π` among the classes that are neither
//! `y*` nor `y⁺`.
//!
//! This module builds the panels; `claims` checks the figure's claims on them.

use nalgebra::{DMatrix, DVector};
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

mod claims;

use super::toys::{peaky_weights, ranked};
use super::{Claim, Experiment, Key, Range, Settings, Table, Valid};
use crate::Rng64;
use crate::error::Result;
use crate::mlp::normal;
use crate::numerics::log_softmax;
use crate::objective::{CrossEntropy, Objective, PairLoss, Pairwise};
use crate::squeezing::{Role, Squeeze};

/// The seed the gallery uses.
pub const DEFAULT_SEED: u64 = 2;

/// The toy's sizes, the similarity of the two contexts, and the step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Number of classes `V`.
    pub vocab: usize,
    /// Input dimension of the linear model that draws the peaky logits.
    pub inputs: usize,
    /// The drawn logits are multiplied by it, to make the distribution peaky.
    pub logit_scale: f64,
    /// `ρ = K(χ⁻, χ⁺) / K(χ⁻, χ⁻)`: how similar the chosen context is to the rejected one.
    pub similarity: f64,
    /// The largest logit move `c` of every step.
    pub step: f64,
    /// The pairwise losses' β (the authors use 0.1).
    pub beta: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            vocab: 20,
            inputs: 4,
            logit_scale: 3.0,
            similarity: 0.5,
            step: 2.0,
            beta: 0.1,
        }
    }
}

impl Settings for Config {
    const MEMORY_KEYS: &'static str = "vocab and inputs";

    /// About 16 kB per class (the figure's bars and the tables' rows) and 16 bytes per
    /// weight of the `d × V` model: twice the peak measured (`/usr/bin/time -v`, 194 MB at
    /// `V = 10,000`, `d = 1,000`; 142 MB at `d = 100`).
    fn memory_bytes(&self) -> Option<u128> {
        let (vocab, inputs) = (self.vocab as u128, self.inputs as u128);
        let weights = vocab.checked_mul(inputs)?.checked_mul(16)?;
        vocab.checked_mul(16_000)?.checked_add(weights)
    }

    fn keys() -> Vec<Key> {
        vec![
            Key::new("vocab", "number of classes V", Range::Int(8, 10_000)),
            Key::new(
                "inputs",
                "input dimension of the linear model that draws the peaky logits",
                Range::Int(1, 1000),
            ),
            Key::new(
                "logit_scale",
                "the drawn logits are multiplied by it, to make the distribution peaky",
                Range::positive(100.0),
            ),
            Key::new(
                "similarity",
                "ρ = K(χ⁻, χ⁺) / K(χ⁻, χ⁻): 1 is one shared context, where DPO's π terms cancel",
                Range::Real {
                    min: 0.0,
                    open_min: false,
                    max: 1.0,
                },
            ),
            Key::new(
                "step",
                "the largest logit move c of every step",
                Range::positive(100.0),
            ),
            Key::new(
                "beta",
                "the pairwise losses' β, IPO's τ (from 1e-6, so that IPO's 1/(2τ) stays a number)",
                Range::Real {
                    min: 1e-6,
                    open_min: false,
                    max: 1000.0,
                },
            ),
        ]
    }
}

/// Where an objective's `y⁻` comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Negative {
    /// No `y⁻` (SFT).
    None,
    /// The least likely class: off-policy.
    Valley,
    /// The model's mode, its most likely sample: on-policy.
    Mode,
    /// A seeded sample of the model (SPIN).
    Sample,
}

/// The panels of the figure, one objective each; each [`id`](Case::id) is the CSV
/// contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    /// SFT on `y⁺`.
    Sft,
    /// DPO with `y⁻` in a valley.
    OffPolicyDpo,
    /// DPO with `y⁻` the mode.
    OnPolicyDpo,
    /// IPO with `y⁻` the mode.
    OnPolicyIpo,
    /// DPO with `y⁻` the model's own sample.
    Spin,
    /// SPPO (hard) with `y⁻` in a valley.
    SppoHard,
    /// SLiC with `y⁻` in a valley.
    Slic,
}

impl Case {
    /// Every panel, in figure order (the order of [`Residuals::panels`]).
    pub const ALL: [Case; 7] = [
        Case::Sft,
        Case::OffPolicyDpo,
        Case::OnPolicyDpo,
        Case::OnPolicyIpo,
        Case::Spin,
        Case::SppoHard,
        Case::Slic,
    ];

    /// The on-policy panels.
    pub const ON_POLICY: [Case; 3] = [Case::OnPolicyDpo, Case::OnPolicyIpo, Case::Spin];

    /// The panel's id in CSV files.
    pub fn id(self) -> &'static str {
        match self {
            Case::Sft => "sft",
            Case::OffPolicyDpo => "off_policy_dpo",
            Case::OnPolicyDpo => "on_policy_dpo",
            Case::OnPolicyIpo => "on_policy_ipo",
            Case::Spin => "spin",
            Case::SppoHard => "sppo_hard",
            Case::Slic => "slic",
        }
    }

    /// The panel's label, its loss (`None` for SFT), and where its `y⁻` comes from.
    fn spec(self) -> (&'static str, Option<PairLoss>, Negative) {
        let slic = PairLoss::Slic {
            delta: 1.0,
            lambda: 0.1,
        };
        match self {
            Case::Sft => ("SFT", None, Negative::None),
            Case::OffPolicyDpo => (
                "off-policy DPO (y⁻ in a valley)",
                Some(PairLoss::Dpo),
                Negative::Valley,
            ),
            Case::OnPolicyDpo => (
                "on-policy DPO (y⁻ the mode)",
                Some(PairLoss::Dpo),
                Negative::Mode,
            ),
            Case::OnPolicyIpo => (
                "on-policy IPO (y⁻ the mode)",
                Some(PairLoss::Ipo),
                Negative::Mode,
            ),
            Case::Spin => (
                "SPIN (y⁻ the model's own sample)",
                Some(PairLoss::Dpo),
                Negative::Sample,
            ),
            Case::SppoHard => (
                "SPPO, hard (y⁻ in a valley)",
                Some(PairLoss::SppoHard),
                Negative::Valley,
            ),
            Case::Slic => (
                "SLiC, δ = 1, λ = 0.1 (y⁻ in a valley)",
                Some(slic),
                Negative::Valley,
            ),
        }
    }
}

/// One objective's step.
#[derive(Clone, Debug)]
pub struct Panel {
    /// Which objective.
    pub id: Case,
    /// The panel title, with the pushes.
    pub title: String,
    /// `y⁺`.
    pub chosen: usize,
    /// `y⁻`, if the objective has one.
    pub rejected: Option<usize>,
    /// The residual at the observed context, `ρ G⁺ + G⁻` (SFT: `G⁺`).
    pub g: Vec<f64>,
    /// The distribution before and after.
    pub squeeze: Squeeze,
}

impl Panel {
    /// The change of `π` of `class`.
    pub fn delta_p(&self, class: usize) -> f64 {
        self.squeeze.log_p_after[class].exp() - self.squeeze.log_p_before[class].exp()
    }

    /// The entropy before and after, in nats.
    pub fn entropy(&self) -> (f64, f64) {
        self.squeeze.summary().entropy
    }
}

/// Every panel of one run.
#[derive(Clone, Debug)]
pub struct Residuals {
    /// The argmax of the distribution before any step.
    pub argmax: usize,
    /// The panels, in figure order.
    pub panels: Vec<Panel>,
}

/// The residual schematic.
pub struct ResidualSchematic;

impl Experiment for ResidualSchematic {
    type Config = Config;
    type Data = Residuals;

    fn run(config: &Valid<Config>, seed: u64) -> Result<Residuals> {
        let (v, d) = (config.vocab, config.inputs);
        let mut rng = Rng64::seed_from_u64(seed);
        let x = DVector::from_fn(d, |_, _| normal(&mut rng));
        let w = peaky_weights(&x, v, v / 10..13 * v / 50, &mut rng);
        let z: Vec<f64> = (&w * &x).iter().map(|v| v * config.logit_scale).collect();
        let order = ranked(&w, &x);
        let chosen = order[v / 4];
        let log_pi = log_softmax(DVector::from_column_slice(&z).as_view());
        let sample = spin_sample(&log_pi, &[chosen], &mut rng);
        let panels = Case::ALL
            .into_iter()
            .map(|id| {
                let negative = id.spec().2;
                let rejected = match negative {
                    Negative::None => None,
                    Negative::Valley => Some(order[v - 1]),
                    Negative::Mode => Some(order[0]),
                    Negative::Sample => Some(sample),
                };
                panel(config, &z, id, chosen, rejected)
            })
            .collect::<Result<_>>()?;
        Ok(Residuals {
            argmax: order[0],
            panels,
        })
    }

    fn claims(data: &Residuals) -> Vec<Claim> {
        data.claims()
    }

    fn tables(data: &Residuals) -> Vec<Table> {
        let rows = data
            .panels
            .iter()
            .flat_map(|p| {
                (0..p.g.len()).map(move |class| {
                    let role = if class == p.chosen {
                        "chosen"
                    } else if Some(class) == p.rejected {
                        "rejected"
                    } else {
                        "other"
                    };
                    crate::cells![
                        p.id.id(),
                        class,
                        role,
                        p.g[class],
                        p.squeeze.log_p_before[class].exp(),
                        p.squeeze.log_p_after[class].exp()
                    ]
                })
            })
            .collect();
        vec![Table::new(
            "residuals",
            "objective,class,role,g,p_before,p_after",
            rows,
        )]
    }
}

/// A sample of `π` among the classes not in `excluded`.
fn spin_sample(log_pi: &DVector<f64>, excluded: &[usize], rng: &mut Rng64) -> usize {
    let allowed: Vec<usize> = (0..log_pi.len())
        .filter(|c| !excluded.contains(c))
        .collect();
    let total: f64 = allowed.iter().map(|&c| log_pi[c].exp()).sum();
    let mut u = rng.random::<f64>() * total;
    for &c in &allowed {
        u -= log_pi[c].exp();
        if u < 0.0 {
            return c;
        }
    }
    allowed[allowed.len() - 1]
}

/// One objective's step from the logits `z`.
fn panel(
    config: &Config,
    z: &[f64],
    id: Case,
    chosen: usize,
    rejected: Option<usize>,
) -> Result<Panel> {
    let (label, loss, _) = id.spec();
    let logits = DMatrix::from_column_slice(z.len(), 1, z);
    let g: Vec<f64> = match (loss, rejected) {
        (Some(loss), Some(minus)) => {
            // The reference is the model before the step.
            let lp: Vec<f64> = log_softmax(logits.column(0)).iter().copied().collect();
            let pair = Pairwise::classes(loss, config.beta, (chosen, minus), &lp);
            pair.shared_residual(&logits, config.similarity)
        }
        _ => CrossEntropy::positive(chosen).residuals(&[logits])[0]
            .iter()
            .copied()
            .collect(),
    };
    // A residual of zeros (an inactive hinge with no chosen term reaching χ⁻) moves
    // nothing: the step is zero rather than 0/0.
    let scale = g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let dz: Vec<f64> = (g.iter())
        .map(|gi| {
            if scale > 0.0 {
                -config.step * gi / scale
            } else {
                0.0
            }
        })
        .collect();
    let mut roles = vec![Role::Other; z.len()];
    roles[chosen] = Role::Positive;
    let mut pushes = format!("g(y⁺ = {chosen}) = {:+.3}", g[chosen]);
    if let Some(minus) = rejected {
        roles[minus] = Role::Negative;
        pushes.push_str(&format!(", g(y⁻ = {minus}) = {:+.3}", g[minus]));
    }
    Ok(Panel {
        id,
        title: format!("{label}: {pushes}"),
        chosen,
        rejected,
        g,
        squeeze: Squeeze::from_logit_change(z, &dz, roles)?,
    })
}

impl Residuals {
    /// The panel of `objective`.
    pub fn panel(&self, objective: Case) -> &Panel {
        // The panels are built in `Case::ALL` order, one each.
        &self.panels[objective as usize]
    }
}
