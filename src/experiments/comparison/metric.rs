//! The typed summary metrics of one DPO run (the CSV contract of `NAME_summary.csv`), and
//! the attributed change of the other families they read.

use crate::experiments::lm_measures::{DpoRun, FamilyPoint, Snapshot, Split, UpdateRecord};
use crate::language::{ANSWER_LEN, Family};

/// A summary number of one DPO run; its [`id`](Metric::id) is the CSV contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Updates taken.
    Updates,
    /// Unusable on-policy draws redrawn.
    Redraws,
    /// SFT token updates before DPO.
    SftTokenUpdates,
    /// The share of facts the base model answers greedily, before SFT.
    BaseFactAccuracy,
    /// Mean `‖A_m‖²_F` over the sequence families at the start of DPO.
    PeakinessAtDpoStart,
    /// Mean `log π(y⁻)` at the start of DPO.
    RejectedAtDpoStart,
    /// Change of mean `log π(y⁺)` over DPO, in nats.
    ChosenChange,
    /// Change of mean `log π(y⁻)` over DPO.
    RejectedChange,
    /// Change of the mean of the eight other families ([`Snapshot::others`]), all
    /// positions, over DPO.
    OthersChange,
    /// Change of the mean of the seven like-for-like others
    /// ([`Family::like_for_like_others`]) at the three content positions (entity, copula,
    /// value), over DPO.
    OthersChangeContent,
    /// The same at the `END` position.
    OthersChangeEnd,
    /// Change of `log π` of `rejected_rephrase` (`y⁻`'s wrong value in other words).
    RejectedRephraseChange,
    /// Change of `Σ_m log max π_m` on the rejected prefixes over DPO.
    ArgmaxRejectedPrefixChange,
    /// Change of `Σ_m log(1 − max π_m)` on the rejected prefixes over DPO.
    ExceptArgmaxRejectedPrefixChange,
    /// Share of greedy answers to training prompts that are not well-formed, at the
    /// start of DPO.
    DegenerateRateBefore,
    /// The same after DPO.
    DegenerateRateAfter,
    /// Share of greedy answers to training prompts that repeat a token or miss `END`,
    /// after DPO.
    RepetitionRateAfter,
    /// Share of greedy answers to training prompts about another entity, after DPO.
    WrongEntityRateAfter,
    /// Share of greedy answers to held-out prompts about another entity, at the start.
    HallucinationRateBefore,
    /// The same after DPO.
    HallucinationRateAfter,
    /// Mean next-token entropy on both prefixes at the start of DPO, in nats.
    EntropyBefore,
    /// The same after DPO.
    EntropyAfter,
    /// `Σ s⁺` over the updates: how hard the chosen term pulled in total.
    ChosenCoefficientSum,
    /// `Σ s⁻` over the updates: how hard the rejected term pushed in total.
    RejectedCoefficientSum,
    /// The accumulated first-order prediction's error-to-signal ratio at the end: the
    /// rms of `actual − predicted` over the family cells over the spread of the actual
    /// changes ([`FirstOrderError`](crate::experiments::lm_measures::FirstOrderError); 0
    /// without the mechanism).
    FirstOrderErrorRatio,
}

impl Metric {
    /// The metrics every DPO-run summary holds (`lm_policy`, `lm_losses`), in CSV order.
    pub const DPO: &'static [Metric] = &[
        Metric::Updates,
        Metric::Redraws,
        Metric::BaseFactAccuracy,
        Metric::ChosenChange,
        Metric::RejectedChange,
        Metric::OthersChange,
        Metric::OthersChangeContent,
        Metric::OthersChangeEnd,
        Metric::RejectedRephraseChange,
        Metric::ArgmaxRejectedPrefixChange,
        Metric::DegenerateRateBefore,
        Metric::DegenerateRateAfter,
        Metric::RepetitionRateAfter,
        Metric::WrongEntityRateAfter,
        Metric::HallucinationRateBefore,
        Metric::HallucinationRateAfter,
        Metric::EntropyBefore,
        Metric::EntropyAfter,
        Metric::ChosenCoefficientSum,
        Metric::RejectedCoefficientSum,
        Metric::FirstOrderErrorRatio,
    ];

    /// The metric's id in CSV files.
    pub fn id(self) -> &'static str {
        match self {
            Metric::Updates => "updates",
            Metric::Redraws => "redraws",
            Metric::SftTokenUpdates => "sft_token_updates",
            Metric::BaseFactAccuracy => "base_fact_accuracy",
            Metric::PeakinessAtDpoStart => "peakiness_at_dpo_start",
            Metric::RejectedAtDpoStart => "rejected_at_dpo_start",
            Metric::ChosenChange => "chosen_change",
            Metric::RejectedChange => "rejected_change",
            Metric::OthersChange => "others_change",
            Metric::OthersChangeContent => "others_change_content",
            Metric::OthersChangeEnd => "others_change_end",
            Metric::RejectedRephraseChange => "rejected_rephrase_change",
            Metric::ArgmaxRejectedPrefixChange => "argmax_rejected_prefix_change",
            Metric::ExceptArgmaxRejectedPrefixChange => "except_argmax_rejected_prefix_change",
            Metric::DegenerateRateBefore => "degenerate_rate_before",
            Metric::DegenerateRateAfter => "degenerate_rate_after",
            Metric::RepetitionRateAfter => "repetition_rate_after",
            Metric::WrongEntityRateAfter => "wrong_entity_rate_after",
            Metric::HallucinationRateBefore => "hallucination_rate_before",
            Metric::HallucinationRateAfter => "hallucination_rate_after",
            Metric::EntropyBefore => "entropy_before",
            Metric::EntropyAfter => "entropy_after",
            Metric::ChosenCoefficientSum => "chosen_coefficient_sum",
            Metric::RejectedCoefficientSum => "rejected_coefficient_sum",
            Metric::FirstOrderErrorRatio => "first_order_error_ratio",
        }
    }

    /// The metric's value for `run`.
    pub fn of<L>(self, run: &DpoRun<L>) -> f64 {
        let family = |f| move |p: &Snapshot| p.family(f);
        let coefficients = |s: fn(&UpdateRecord) -> f64| run.counts.records.iter().map(s).sum();
        match self {
            Metric::Updates => run.counts.updates as f64,
            Metric::Redraws => run.counts.redraws as f64,
            Metric::SftTokenUpdates => run.sft.token_updates as f64,
            Metric::BaseFactAccuracy => run.sft.base_fact_accuracy,
            Metric::PeakinessAtDpoStart => peakiness(&run.first().families),
            Metric::RejectedAtDpoStart => run.first().family(Family::Rejected),
            Metric::ChosenChange => run.change(family(Family::Chosen)),
            Metric::RejectedChange => run.change(family(Family::Rejected)),
            Metric::OthersChange => run.change(Snapshot::others),
            Metric::OthersChangeContent => others_actual(run, |m| m != END_POSITION),
            Metric::OthersChangeEnd => others_actual(run, |m| m == END_POSITION),
            Metric::RejectedRephraseChange => run.change(family(Family::RejectedRephrase)),
            Metric::ArgmaxRejectedPrefixChange => run.change(family(Family::ArgmaxRejectedPrefix)),
            Metric::ExceptArgmaxRejectedPrefixChange => {
                run.change(family(Family::ExceptArgmaxRejectedPrefix))
            }
            Metric::DegenerateRateBefore => run.first().repeater.degenerate_rate,
            Metric::DegenerateRateAfter => run.last().repeater.degenerate_rate,
            Metric::RepetitionRateAfter => run.last().repeater.repetition_rate,
            Metric::WrongEntityRateAfter => run.last().repeater.wrong_entity_rate,
            Metric::HallucinationRateBefore => run.first().repeater.hallucination_rate,
            Metric::HallucinationRateAfter => run.last().repeater.hallucination_rate,
            Metric::EntropyBefore => run.first().entropy,
            Metric::EntropyAfter => run.last().entropy,
            Metric::ChosenCoefficientSum => coefficients(|r| r.chosen_coefficient),
            Metric::RejectedCoefficientSum => coefficients(|r| r.rejected_coefficient),
            Metric::FirstOrderErrorRatio => {
                (run.attribution.errors.last()).map_or(0.0, |e| e.ratio())
            }
        }
    }
}

/// The response position of `END` in an answer `[e, COPULA, VALUE, END]`.
pub const END_POSITION: usize = ANSWER_LEN - 1;

/// The mean over the like-for-like others of the attributed split of their change at
/// the `positions` kept.
pub fn others_split<L>(run: &DpoRun<L>, positions: impl Fn(usize) -> bool + Copy) -> Split {
    let families: Vec<Family> = Family::like_for_like_others().collect();
    let splits: Vec<Split> = (families.iter())
        .map(|&f| run.attribution.family(f, positions))
        .collect();
    Split::mean(&splits)
}

/// The actual change of the like-for-like others at the `positions` kept.
fn others_actual<L>(run: &DpoRun<L>, positions: impl Fn(usize) -> bool + Copy) -> f64 {
    others_split(run, positions).actual
}

/// The mean `‖A_m‖²_F` of the sequence families among `families`.
fn peakiness(families: &[FamilyPoint]) -> f64 {
    let sequences: Vec<f64> = families
        .iter()
        .filter(|f| f.family.is_sequence())
        .map(|f| f.a_fro_sq)
        .collect();
    sequences.iter().sum::<f64>() / sequences.len() as f64
}
