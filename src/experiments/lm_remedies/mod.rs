//! Which fix? Every named remedy for the falling chosen response, trained from each
//! seed's SFT checkpoint on off-policy DPO's pairs in the same order for the same number
//! of updates, with the dashboard a TRL user watches.
//!
//! The arms ([`Remedy`]):
//!
//! * **dpo**: plain off-policy DPO, the baseline;
//! * **rpo**, **rpo_small**: RPO v3 (TRL's `rpo_alpha`), `L_DPO + α·NLL(y⁺)` with the
//!   NLL the token mean of `y⁺`'s cross-entropy, at `α = rpo_alpha` (1, TRL's
//!   `sigmoid+sft`) and `rpo_alpha_small` (0.2);
//! * **dpop**, **dpop_small**: DPOP as the paper's Eq. 3 writes it (inside the sigmoid),
//!   `−log σ(β (r⁺ − r⁻ − λ max(0, ref⁺ − lp⁺)))`, at `λ = dpop_lambda` (50, Smaug's)
//!   and `dpop_lambda_small` (5);
//! * **ipo**, **slic**: the bounded losses of `lm_losses`, at the learning rates that give
//!   them DPO's first step ([`matched_eta`]);
//! * **extend**: the paper's own fix (§4.3): SFT on `(x, y⁻)` too, for the same token
//!   budget ([`extended`]), then plain DPO from that model, its own reference.
//!
//! The remedies with an anchor (RPO's NLL, DPOP's penalty, SLiC's λ term) train at DPO's
//! learning rate, as a TRL user adds `rpo_alpha` to a run. Every arm is measured as
//! `lm_policy`'s regimes are: the families, squeezing at `y⁻`'s own positions, the
//! attribution of every family's change to DPO's chosen term, its rejected term and the
//! anchor, and the dashboard (`rewards/*` at DPO's β for every arm, so one axis reads
//! them all). What each arm ends at, per seed, is `lm_remedies_end.csv`.

mod claims;
mod tables;

pub use tables::End;

use serde::{Deserialize, Serialize};

use super::comparison::{Comparison, Contender, Label, Layout, Metric, Training};
use super::lm_measures::{DpoRun, SqueezingRows, squeezing_rows_key};
use super::lm_world::{
    Bounded, Dpo, LmConfig, MAX_DPO_UPDATES, SEEDS, check_eta, extended, matched_eta, seeds_key,
};
use super::{Claim, Experiment, Key, Range, Table, Valid};
use crate::error::Result;
use crate::objective::{DpopForm, PairLoss, RpoWeighting};

/// The world, each remedy's parameter, and how often the measures are tracked.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// The language-model world (DPO's β is its `beta`).
    #[serde(flatten)]
    pub world: LmConfig,
    /// The `rpo` arm's α: RPO v3's weight of the NLL on `y⁺`.
    pub rpo_alpha: f64,
    /// The `rpo_small` arm's α.
    pub rpo_alpha_small: f64,
    /// The `dpop` arm's λ: the weight of DPOP's penalty inside the sigmoid.
    pub dpop_lambda: f64,
    /// The `dpop_small` arm's λ.
    pub dpop_lambda_small: f64,
    /// IPO's and SLiC's hyperparameters (as `lm_losses`).
    #[serde(flatten)]
    pub bounded: Bounded,
    /// Updates between two tracking points, in DPO and in the extend arm's SFT.
    pub track_every: usize,
    /// How many seeds one run covers: `seed, seed + 1, …` ([`seeds_key`]).
    pub seeds: u64,
    /// Whether every squeezing record is written, or only the aggregates.
    pub squeezing_rows: SqueezingRows,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            world: LmConfig::default(),
            // TRL's `loss_type=["sigmoid","sft"]` is α = 1; the RPO paper's runs use 1 too.
            rpo_alpha: 1.0,
            rpo_alpha_small: 0.2,
            // Smaug's λ = 50; a tenth of it for the small arm.
            dpop_lambda: 50.0,
            dpop_lambda_small: 5.0,
            bounded: Bounded::default(),
            track_every: 16,
            seeds: SEEDS,
            squeezing_rows: SqueezingRows::Aggregates,
        }
    }
}

/// A weight of a remedy's anchor: 0 to 1000.
fn weight(path: &'static str, doc: &'static str) -> Key {
    Key::new(
        path,
        doc,
        Range::Real {
            min: 0.0,
            open_min: false,
            max: 1000.0,
        },
    )
}

world_settings!(
    Config,
    [
        weight(
            "rpo_alpha",
            "the rpo arm's α: RPO v3's weight of the NLL on y⁺ (TRL's rpo_alpha; sigmoid+sft is 1)"
        ),
        weight("rpo_alpha_small", "the rpo_small arm's α"),
        weight(
            "dpop_lambda",
            "the dpop arm's λ: DPOP's penalty weight inside the sigmoid (Smaug: 50)"
        ),
        weight("dpop_lambda_small", "the dpop_small arm's λ"),
        Bounded::keys(),
        Key::new(
            "track_every",
            "updates between two tracking points, in DPO and the extend arm's SFT",
            Range::Int(1, MAX_DPO_UPDATES),
        ),
        seeds_key(),
        squeezing_rows_key(),
    ]
);

/// An arm of `lm_remedies`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Remedy {
    /// Plain off-policy DPO.
    Dpo,
    /// RPO v3 at `rpo_alpha`.
    Rpo,
    /// RPO v3 at `rpo_alpha_small`.
    RpoSmall,
    /// DPOP (inside) at `dpop_lambda`.
    Dpop,
    /// DPOP (inside) at `dpop_lambda_small`.
    DpopSmall,
    /// IPO at `ipo_tau` ([`Bounded`]).
    Ipo,
    /// SLiC at `slic_delta`, `slic_lambda` ([`Bounded`]).
    Slic,
    /// The extend method's SFT, then plain DPO.
    Extend,
}

impl Remedy {
    /// Every arm, in table and figure order.
    pub const ALL: [Remedy; 8] = [
        Remedy::Dpo,
        Remedy::Rpo,
        Remedy::RpoSmall,
        Remedy::Dpop,
        Remedy::DpopSmall,
        Remedy::Ipo,
        Remedy::Slic,
        Remedy::Extend,
    ];

    /// The arm's id in CSV files and figures.
    pub fn id(self) -> &'static str {
        match self {
            Remedy::Dpo => "dpo",
            Remedy::Rpo => "rpo",
            Remedy::RpoSmall => "rpo_small",
            Remedy::Dpop => "dpop",
            Remedy::DpopSmall => "dpop_small",
            Remedy::Ipo => "ipo",
            Remedy::Slic => "slic",
            Remedy::Extend => "extend",
        }
    }

    /// Whether the arm's loss has an anchor on `y⁺` (RPO's NLL, DPOP's penalty, SLiC's
    /// λ term).
    pub fn anchored(self) -> bool {
        matches!(
            self,
            Remedy::Rpo | Remedy::RpoSmall | Remedy::Dpop | Remedy::DpopSmall | Remedy::Slic
        )
    }
}

impl Remedy {
    /// The arm as a key names it, with its parameter under `config` (`rpo α=1`).
    pub fn name(self, config: &Config) -> String {
        let (loss, beta, _) = config.loss(self);
        let value = crate::error::number;
        match (self, loss) {
            (Remedy::Rpo | Remedy::RpoSmall, PairLoss::Rpo { alpha, .. }) => {
                format!("rpo α={}", value(alpha))
            }
            (Remedy::Dpop | Remedy::DpopSmall, PairLoss::Dpop { lambda, .. }) => {
                format!("dpop λ={}", value(lambda))
            }
            (Remedy::Ipo, _) => format!("ipo τ={}", value(beta)),
            (Remedy::Slic, PairLoss::Slic { delta, lambda }) => {
                format!("slic δ={} λ={}", value(delta), value(lambda))
            }
            _ => self.id().to_string(),
        }
    }
}

impl Label for Remedy {
    fn id(self) -> &'static str {
        Remedy::id(self)
    }
}

impl Config {
    /// The arm's loss, the β its [`Pairwise`](crate::objective::Pairwise) takes, and its
    /// learning rate.
    pub fn loss(&self, remedy: Remedy) -> (PairLoss, f64, f64) {
        let world = &self.world;
        let rpo = |alpha| PairLoss::Rpo {
            alpha,
            weighting: RpoWeighting::V3,
        };
        let dpop = |lambda| PairLoss::Dpop {
            lambda,
            form: DpopForm::Inside,
        };
        let (loss, beta) = match remedy {
            Remedy::Dpo | Remedy::Extend => (PairLoss::Dpo, world.beta),
            Remedy::Rpo => (rpo(self.rpo_alpha), world.beta),
            Remedy::RpoSmall => (rpo(self.rpo_alpha_small), world.beta),
            Remedy::Dpop => (dpop(self.dpop_lambda), world.beta),
            Remedy::DpopSmall => (dpop(self.dpop_lambda_small), world.beta),
            Remedy::Ipo => self.bounded.ipo(),
            Remedy::Slic => self.bounded.slic(world),
        };
        let eta = match remedy {
            Remedy::Ipo | Remedy::Slic => matched_eta(world, loss, beta),
            _ => world.dpo_eta,
        };
        (loss, beta, eta)
    }

    /// The arm's preference training: off-policy, its loss at its rate.
    fn dpo(&self, remedy: Remedy) -> Dpo {
        let (loss, beta, eta) = self.loss(remedy);
        Dpo {
            loss,
            beta,
            eta,
            ..Dpo::off_policy(&self.world)
        }
    }
}

/// One arm's run on one seed.
pub type RemedyRun = DpoRun<Remedy>;

/// Every arm on every seed of a run, seed by seed, arms in [`Remedy::ALL`] order, and
/// the configuration that set their parameters.
#[derive(Clone, Debug)]
pub struct Remedies {
    /// The runs.
    pub comparison: Comparison<Remedy>,
    /// Each arm's parameters.
    pub config: Config,
}

/// `lm_remedies`' tables and figure.
pub static LAYOUT: Layout = Layout {
    name: "lm_remedies",
    column: "arm",
    summary: Metric::DPO,
    sft_phase: false,
    mechanism: true,
    heading: "Which fix? Every remedy for the falling y⁺ on off-policy DPO's pairs, {updates} updates each",
};

/// Every remedy against plain DPO, from one SFT checkpoint per seed.
pub struct LmRemedies;

impl Experiment for LmRemedies {
    type Config = Config;
    type Data = Remedies;

    fn run(config: &Valid<Config>, seed: u64) -> Result<Remedies> {
        let world = &config.world;
        for remedy in [Remedy::Ipo, Remedy::Slic] {
            let (loss, _, eta) = config.loss(remedy);
            check_eta(world, (loss, eta), &config.bounded.rate_keys(loss))?;
        }
        let training = Training {
            world,
            seeds: config.seeds,
            track_every: config.track_every,
            squeezing_rows: config.squeezing_rows,
        };
        // Every arm sees the same pairs in the same order; extend from its own SFT.
        let comparison = Comparison::train(&LAYOUT, training, seed, |_, seed| {
            (Remedy::ALL.into_iter())
                .map(|remedy| {
                    let dpo = config.dpo(remedy);
                    Ok(match remedy {
                        Remedy::Extend => Contender {
                            label: remedy,
                            dpo,
                            start: Some(extended(world, seed, config.track_every)?),
                        },
                        _ => Contender::from_checkpoint(remedy, dpo),
                    })
                })
                .collect()
        })?;
        Ok(Remedies {
            comparison,
            config: **config,
        })
    }

    fn claims(data: &Remedies) -> Vec<Claim> {
        claims::all(data)
    }

    fn tables(data: &Remedies) -> Vec<Table> {
        let mut tables = data.comparison.tables();
        tables.push(tables::end(data));
        tables
    }
}
