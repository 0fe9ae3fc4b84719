//! The registry: every experiment with its name, aliases, default seed and the figures
//! drawn from its data, behind one type-erased [`Runner`].

use std::path::Path;

use toml::Value;

use super::plan::{Plan, ROBUSTNESS, Runner, SEED};
use crate::error::{Error, Result};
use crate::experiments::digits::{self, DigitsExperiment};
use crate::experiments::lm_ches::LmChes;
use crate::experiments::lm_extend::LmExtend;
use crate::experiments::lm_finetune::LmFinetune;
use crate::experiments::lm_influence::LmInfluence;
use crate::experiments::lm_lens::LmLens;
use crate::experiments::lm_losses::LmLosses;
use crate::experiments::lm_policy::LmPolicy;
use crate::experiments::lm_remedies::LmRemedies;
use crate::experiments::lm_sft_length::LmSftLength;
use crate::experiments::residuals::{self, ResidualSchematic};
use crate::experiments::squeezing::{self, Squeezing};
use crate::experiments::{Experiment, Key, Range, lm_world};
use crate::plot;

/// Draws one figure of an experiment's data to a path the gallery chooses.
pub type Draw<D> = fn(&D, &Path) -> Result<()>;

/// A registered experiment: a name, its defaults, and the figures drawn from its data.
pub struct Entry {
    /// The name used by `ldyn run` and in `NAME.config.toml`.
    pub name: &'static str,
    /// Other names that run this experiment (the figures it draws, where they differ).
    pub aliases: &'static [&'static str],
    /// One line on what it shows.
    pub about: &'static str,
    /// The seed `ldyn gallery` uses.
    pub default_seed: u64,
    /// How many seeds the claims are rerun on by default.
    pub robustness_seeds: u64,
    /// The most reruns a run may ask for: a run and its reruns stay within a few minutes
    /// on two cores (each rerun is a whole run of the experiment).
    pub max_robustness_seeds: i64,
    pub(super) runner: &'static (dyn Runner + Sync),
}

/// An experiment with the figures drawn from its data, as `(file name, draw)`: PNG
/// figures, and GIF animations.
pub(super) struct Figures<E: Experiment>(pub(super) &'static [(&'static str, Draw<E::Data>)]);

/// The most reruns of the experiments whose run takes seconds (`digits` and the LM
/// ones): the slowest default runs take about 6 s on two cores (`digits` 5.5 s,
/// `lm_policy` 5.9 s, `lm_lens` 5.7 s), so a run and 20 reruns stay near two minutes. The
/// toys' runs take milliseconds, and keep 10,000 (`squeezing` with 1,000 reruns: 2.7 s).
const MAX_SLOW_RERUNS: i64 = 20;

/// Every experiment, in gallery order.
pub static REGISTRY: &[Entry] = &[
    Entry {
        name: "squeezing",
        aliases: &[],
        about: "App. E: one positive/negative gradient step on a softmax, squeezing into the argmax",
        default_seed: squeezing::DEFAULT_SEED,
        robustness_seeds: 100,
        max_robustness_seeds: 10_000,
        runner: &Figures::<Squeezing>(&[
            ("squeezing.png", plot::squeezing::draw),
            ("squeezing.gif", plot::squeezing::animation),
        ]),
    },
    Entry {
        name: "residuals",
        aliases: &[],
        about: "Fig. 2: one step from one peaky distribution under the residual of SFT, off- and on-policy DPO, IPO, SPIN, SPPO and SLiC",
        default_seed: residuals::DEFAULT_SEED,
        robustness_seeds: 100,
        max_robustness_seeds: 10_000,
        runner: &Figures::<ResidualSchematic>(&[("residuals.png", plot::squeezing::residuals)]),
    },
    Entry {
        name: "digits",
        aliases: &[],
        about: "Fig. 1 and Fig. 7 on UCI handwritten digits: one-step and accumulated influence, eNTK stability",
        default_seed: digits::DEFAULT_SEED,
        robustness_seeds: 5,
        max_robustness_seeds: MAX_SLOW_RERUNS,
        runner: &Figures::<DigitsExperiment>(&[
            ("digits_one_step.png", plot::digits::one_step),
            ("digits_accumulated.png", plot::digits::accumulated),
            ("digits_heatmap.png", plot::digits::mean_pi),
            ("digits_entk.png", plot::digits::entk),
        ]),
    },
    Entry {
        name: "lm_finetune",
        aliases: &["lm_sft", "lm_dpo", "lm_peakiness"],
        about: "Figs. 3, 4 and 9: SFT then off-policy DPO on a tiny LM, every probe family tracked",
        default_seed: lm_world::DEFAULT_SEED,
        robustness_seeds: 5,
        max_robustness_seeds: MAX_SLOW_RERUNS,
        runner: &Figures::<LmFinetune>(&[
            ("lm_sft.png", plot::lm::sft),
            ("lm_dpo.png", plot::lm::dpo),
            ("lm_peakiness.png", plot::lm::peakiness),
        ]),
    },
    Entry {
        name: "lm_influence",
        aliases: &[],
        about: "App. C heatmap: accumulated −ηAKG per observed family and training signal",
        default_seed: lm_world::DEFAULT_SEED,
        robustness_seeds: 5,
        max_robustness_seeds: MAX_SLOW_RERUNS,
        runner: &Figures::<LmInfluence>(&[("lm_influence.png", plot::lm::influence)]),
    },
    Entry {
        name: "lm_lens",
        aliases: &[],
        about: "App. C.2 and Fig. 8: the LBK proxy, SignDelta, the last-layer and the frozen eNTK against the exact kernel",
        default_seed: lm_world::DEFAULT_SEED,
        // Every run already covers seeds S..S+4, and its claims count them.
        robustness_seeds: 0,
        max_robustness_seeds: MAX_SLOW_RERUNS,
        runner: &Figures::<LmLens>(&[("lm_lens.png", plot::lens::draw)]),
    },
    Entry {
        name: "lm_policy",
        aliases: &[],
        about: "§4 and App. E: off-policy, SPIN and online DPO from one SFT checkpoint, squeezing and the repeater",
        default_seed: lm_world::DEFAULT_SEED,
        // Every run already covers seeds S..S+4, and its claims count them.
        robustness_seeds: 0,
        max_robustness_seeds: MAX_SLOW_RERUNS,
        runner: &Figures::<LmPolicy>(&[
            ("lm_policy.png", plot::policy::policy),
            ("lm_policy.gif", plot::policy::policy_animation),
        ]),
    },
    Entry {
        name: "lm_losses",
        aliases: &[],
        about: "§3.3 in training: DPO, IPO, SLiC and SPPO off-policy from one SFT checkpoint on the same pairs, their squeezing compared",
        default_seed: lm_world::DEFAULT_SEED,
        // Every run already covers seeds S..S+4, and its claims count them.
        robustness_seeds: 0,
        max_robustness_seeds: MAX_SLOW_RERUNS,
        runner: &Figures::<LmLosses>(&[("lm_losses.png", plot::policy::losses)]),
    },
    Entry {
        name: "lm_remedies",
        aliases: &[],
        about: "Which fix? RPO, DPOP, IPO, SLiC and extend against off-policy DPO on the same pairs, with TRL's dashboard",
        default_seed: lm_world::DEFAULT_SEED,
        // Every run already covers seeds S..S+4, and its claims count them.
        robustness_seeds: 0,
        max_robustness_seeds: MAX_SLOW_RERUNS,
        runner: &Figures::<LmRemedies>(&[("lm_remedies.png", plot::remedies::draw)]),
    },
    Entry {
        name: "lm_sft_length",
        aliases: &[],
        about: "App. D: SFT for 1 to 16 epochs, then the same off-policy DPO: does longer SFT squeeze more?",
        default_seed: lm_world::DEFAULT_SEED,
        // Every run already covers seeds S..S+4, and its claims count them.
        robustness_seeds: 0,
        max_robustness_seeds: MAX_SLOW_RERUNS,
        runner: &Figures::<LmSftLength>(&[("lm_sft_length.png", plot::policy::sft_length)]),
    },
    Entry {
        name: "lm_extend",
        aliases: &[],
        about: "Fig. 5 and §4.3: the extend method, SFT on (x, y⁻) too at the same token budget, then the same off-policy DPO",
        default_seed: lm_world::DEFAULT_SEED,
        // Every run already covers seeds S..S+4, and its claims count them.
        robustness_seeds: 0,
        max_robustness_seeds: MAX_SLOW_RERUNS,
        runner: &Figures::<LmExtend>(&[("lm_extend.png", plot::policy::extend)]),
    },
    Entry {
        name: "lm_ches",
        aliases: &[],
        about: "Razin et al. (2024): likelihood displacement of y⁺ in off-policy DPO against the pairs' CHES",
        default_seed: lm_world::DEFAULT_SEED,
        // Every run already covers seeds S..S+4, and its claims count them.
        robustness_seeds: 0,
        max_robustness_seeds: MAX_SLOW_RERUNS,
        runner: &Figures::<LmChes>(&[("lm_ches.png", plot::lm::ches)]),
    },
];

/// Looks an experiment up by name or alias.
pub fn find(name: &str) -> Result<&'static Entry> {
    REGISTRY
        .iter()
        .find(|e| e.name == name || e.aliases.contains(&name))
        .ok_or_else(|| Error::Unknown {
            kind: "experiment",
            name: name.into(),
            expected: names().join(", "),
        })
}

/// Every name `ldyn run` accepts, aliases included.
pub fn names() -> Vec<&'static str> {
    REGISTRY
        .iter()
        .flat_map(|e| std::iter::once(e.name).chain(e.aliases.iter().copied()))
        .collect()
}

impl std::str::FromStr for Plan {
    type Err = Error;

    /// The default plan of the experiment called `name` (or of which `name` is an alias).
    fn from_str(name: &str) -> Result<Self> {
        find(name)?.plan(name)
    }
}

impl Entry {
    /// A plan with the defaults for `name` (the experiment's name or an alias); it runs, and
    /// writes its configuration, under the experiment's name.
    ///
    /// # Errors
    /// If `name` is neither.
    pub fn plan(&'static self, name: &str) -> Result<Plan> {
        if name != self.name && !self.aliases.contains(&name) {
            return Err(Error::InvalidArgument(format!(
                "'{name}' does not name the experiment {}",
                self.name
            )));
        }
        // An alias runs the experiment under its own name, so the configuration beside
        // the files is the experiment's and regenerates all of them.
        Ok(Plan {
            keys: self.keys(),
            runner: self.runner,
            name: self.name.to_string(),
            seed: self.default_seed,
            robustness_seeds: self.robustness_seeds,
            values: self.defaults()?,
            sources: Vec::new(),
            budget: crate::error::DEFAULT_MAX_MEMORY,
            locked_by_caller: false,
        })
    }

    /// The experiment's default configuration as `(dotted key, value)` pairs, in the
    /// order of its serialized fields.
    ///
    /// # Errors
    /// If the configuration cannot be serialized.
    pub fn defaults(&self) -> Result<Vec<(String, Value)>> {
        self.runner.defaults()
    }

    /// Every key of the experiment's configuration, the plan's own first.
    pub fn keys(&self) -> Vec<Key> {
        let robustness = Key::new(
            ROBUSTNESS.path,
            ROBUSTNESS.doc,
            Range::Int(0, self.max_robustness_seeds),
        );
        let mut keys = vec![SEED, robustness];
        keys.extend(self.runner.keys());
        keys
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry").field("name", &self.name).finish()
    }
}
