//! The training signals whose influence `lm_influence` and `lm_lens` measure: SFT on one
//! response of every training prompt, from the base model, or off-policy DPO from the SFT
//! checkpoint.

use super::config::LmConfig;
use super::preference::dpo_update;
use super::world::sft_on;
use crate::error::{Error, Result};
use crate::language::Language;
use crate::lm::TinyLm;
use crate::trainer::Update;

/// A training signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SFT on `y⁺` (the paper's `y_u⁺`).
    SftChosen,
    /// SFT on `y⁻` (`y_u⁻`).
    SftRejected,
    /// SFT on the chosen fact in synonyms (`y_gpts⁺`).
    SftChosenRephrase,
    /// SFT on the rejected fact in synonyms (`y_gpts⁻`).
    SftRejectedRephrase,
    /// SFT on the chosen tokens in a fixed non-sentence order (`y_urnd⁺`).
    SftShuffledChosen,
    /// Off-policy DPO from the SFT model.
    Dpo,
}

impl Signal {
    /// Every signal.
    pub const ALL: [Signal; 6] = [
        Signal::SftChosen,
        Signal::SftRejected,
        Signal::SftChosenRephrase,
        Signal::SftRejectedRephrase,
        Signal::SftShuffledChosen,
        Signal::Dpo,
    ];

    /// The columns of `lm_influence`'s heatmap.
    pub const HEATMAP: [Signal; 5] = [
        Signal::SftChosen,
        Signal::SftRejected,
        Signal::SftChosenRephrase,
        Signal::SftShuffledChosen,
        Signal::Dpo,
    ];

    /// The signal's id in CSV files and figures.
    pub fn id(self) -> &'static str {
        match self {
            Signal::SftChosen => "sft_chosen",
            Signal::SftRejected => "sft_rejected",
            Signal::SftChosenRephrase => "sft_chosen_rephrase",
            Signal::SftRejectedRephrase => "sft_rejected_rephrase",
            Signal::SftShuffledChosen => "sft_shuffled_chosen",
            Signal::Dpo => "dpo",
        }
    }

    /// The model a signal starts from (`(base, sft)`: SFT signals from the base model,
    /// DPO from the SFT model) and the world's learning rate for it.
    pub fn start<'a>(
        self,
        (base, sft): (&'a TinyLm, &'a TinyLm),
        world: &LmConfig,
    ) -> (&'a TinyLm, f64) {
        match self {
            Signal::Dpo => (sft, world.dpo_eta),
            _ => (base, world.sft.eta),
        }
    }

    /// The update of training prompt `j`: SFT on the signal's response, or DPO with the
    /// SFT model as the reference.
    pub fn update(self, language: &Language, sft: &TinyLm, beta: f64, j: usize) -> Update<TinyLm> {
        let response = match self {
            Signal::SftChosen => language.chosen(j),
            Signal::SftRejected => language.rejected(j),
            Signal::SftChosenRephrase => language.chosen_rephrase(j),
            Signal::SftRejectedRephrase => language.rejected_rephrase(j),
            Signal::SftShuffledChosen => language.chosen_permuted(j),
            Signal::Dpo => return dpo_update(language, sft, beta, j),
        };
        sft_on(language, j, &response)
    }
}

/// Refuses a scale of the world's learning rates (`eta_scale`) that makes the SFT or the
/// DPO signal's rate 0 (below the smallest double), naming the keys.
///
/// # Errors
/// Naming the key and the scale.
pub fn check_scaled_rates(world: &LmConfig, eta_scale: f64) -> Result<()> {
    for (key, eta) in [("sft.eta", world.sft.eta), ("dpo_eta", world.dpo_eta)] {
        if eta * eta_scale == 0.0 {
            return Err(Error::InvalidArgument(format!(
                "{key} = {eta:e} times eta_scale = {eta_scale:e} is a learning rate of 0 (below the smallest double); raise one of them"
            )));
        }
    }
    Ok(())
}
