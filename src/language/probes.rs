//! The probe-response families of the paper's Table 1: for every training prompt, one
//! response of each family ([`Probe`]), built from the world's facts.

use rand::seq::SliceRandom;
use rand::{Rng, RngExt};

use super::{END, I, IS, LIKE, Language, entity};
use crate::lm::Sequence;

/// A probe-response family (the paper's Table 1): what is observed during finetuning.
/// Every probe prompt has one response of each family. The four argmax families are
/// statistics of the model's own greedy choice at each position of the chosen or the
/// rejected answer (teacher-forced on that prefix), not sequences.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// `y⁺`, the trained answer.
    Chosen,
    /// `y⁻`, the answer DPO pushes down.
    Rejected,
    /// The chosen fact in the other synonyms.
    ChosenRephrase,
    /// The right format with another entity and a random value.
    ChosenFormat,
    /// The rejected fact in the other synonyms.
    RejectedRephrase,
    /// The chosen answer of another training prompt.
    OtherPrompt,
    /// The chosen answer of a held-out prompt.
    TestPrompt,
    /// A filler sentence `I LIKE e END`.
    RandomSentence,
    /// The chosen tokens in a shuffled order.
    ShuffledChosen,
    /// Four uniformly random tokens.
    RandomTokens,
    /// `Σ_m log max π_m` on the chosen prefixes: the greedy `y*`.
    Argmax,
    /// `Σ_m log(1 − max π_m)` on the chosen prefixes: everything but the greedy `y*`.
    ExceptArgmax,
    /// `Σ_m log max π_m` on the rejected prefixes, where `y⁻`'s valley is.
    ArgmaxRejectedPrefix,
    /// `Σ_m log(1 − max π_m)` on the rejected prefixes.
    ExceptArgmaxRejectedPrefix,
}

impl Family {
    /// Every family, in plotting order (the order of [`Probe::responses`]).
    pub const ALL: [Family; 14] = [
        Family::Chosen,
        Family::Rejected,
        Family::ChosenRephrase,
        Family::ChosenFormat,
        Family::RejectedRephrase,
        Family::OtherPrompt,
        Family::TestPrompt,
        Family::RandomSentence,
        Family::ShuffledChosen,
        Family::RandomTokens,
        Family::Argmax,
        Family::ExceptArgmax,
        Family::ArgmaxRejectedPrefix,
        Family::ExceptArgmaxRejectedPrefix,
    ];

    /// The family's id in CSV files and figures (the CSV contract).
    pub fn id(self) -> &'static str {
        match self {
            Family::Chosen => "chosen",
            Family::Rejected => "rejected",
            Family::ChosenRephrase => "chosen_rephrase",
            Family::ChosenFormat => "chosen_format",
            Family::RejectedRephrase => "rejected_rephrase",
            Family::OtherPrompt => "other_prompt",
            Family::TestPrompt => "test_prompt",
            Family::RandomSentence => "random_sentence",
            Family::ShuffledChosen => "shuffled_chosen",
            Family::RandomTokens => "random_tokens",
            Family::Argmax => "argmax",
            Family::ExceptArgmax => "except_argmax",
            Family::ArgmaxRejectedPrefix => "argmax_rejected_prefix",
            Family::ExceptArgmaxRejectedPrefix => "except_argmax_rejected_prefix",
        }
    }

    /// The statistic an argmax family takes at each position, `None` for a sequence.
    pub fn greedy(self) -> Option<Greedy> {
        match self {
            Family::Argmax | Family::ArgmaxRejectedPrefix => Some(Greedy::Argmax),
            Family::ExceptArgmax | Family::ExceptArgmaxRejectedPrefix => Some(Greedy::ExceptArgmax),
            _ => None,
        }
    }

    /// Whether the family is a response sequence (everything but the argmax statistics).
    pub fn is_sequence(self) -> bool {
        self.greedy().is_none()
    }

    /// The sequence families, in plotting order.
    pub fn sequences() -> impl Iterator<Item = Family> {
        Family::ALL.into_iter().filter(|f| f.is_sequence())
    }

    /// The families that are neither chosen, rejected nor an argmax statistic: the
    /// "others" whose fall measures squeezing.
    pub fn others() -> impl Iterator<Item = Family> {
        Family::sequences().filter(|f| ![Family::Chosen, Family::Rejected].contains(f))
    }

    /// The others without `rejected_rephrase`, which carries `y⁻`'s wrong value and so
    /// falls by the direct push on `y⁻`: the seven families whose fall measures mass
    /// moved elsewhere.
    pub fn like_for_like_others() -> impl Iterator<Item = Family> {
        Family::others().filter(|&f| f != Family::RejectedRephrase)
    }
}

/// What an argmax family measures at one position of a prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Greedy {
    /// `log max π_m`: the greedy token.
    Argmax,
    /// `log(1 − max π_m)`: everything but the greedy token.
    ExceptArgmax,
}

/// One probe prompt and a response of every family (the argmax families are statistics
/// of the chosen or the rejected prefixes, so their response is that answer).
#[derive(Clone, Debug)]
pub struct Probe {
    /// The prompt's entity.
    pub entity: usize,
    /// `(family, χ = [ASK e; y])`, in [`Family::ALL`] order.
    pub responses: Vec<(Family, Sequence)>,
}

impl Language {
    /// The chosen fact in the other synonyms (canonical: `[e, SEEMS, v', END]`).
    pub fn chosen_rephrase(&self, j: usize) -> Vec<usize> {
        self.chosen_words[j]
            .flipped()
            .answer(self.sizes, j, self.facts[j])
    }

    /// The rejected fact in the other synonyms (canonical: `[e, IS, v_wrong, END]`).
    pub fn rejected_rephrase(&self, j: usize) -> Vec<usize> {
        self.rejected_words[j]
            .flipped()
            .answer(self.sizes, j, self.wrong[j])
    }

    /// The chosen tokens in the fixed order `[v, e, END, IS]`: the same words, no sentence.
    pub fn chosen_permuted(&self, j: usize) -> Vec<usize> {
        let c = self.chosen(j);
        vec![c[2], c[0], c[3], c[1]]
    }

    /// The probe families for every training entity (fixed by `rng`).
    pub fn probes(&self, rng: &mut impl Rng) -> Vec<Probe> {
        self.train
            .iter()
            .map(|&j| {
                let other = *self.train.iter().filter(|&&k| k != j).collect::<Vec<_>>()
                    [rng.random_range(0..self.train.len() - 1)];
                let test = self.test[rng.random_range(0..self.test.len())];
                let mut shuffled = self.chosen(j);
                while shuffled == self.chosen(j) {
                    shuffled.shuffle(rng);
                }
                let n = self.sizes.entities;
                let format_entity = rng.random_range(0..n);
                let random_sentence = vec![I, LIKE, entity(rng.random_range(0..n)), END];
                let random_tokens: Vec<usize> = (0..4)
                    .map(|_| rng.random_range(1..self.sizes.vocab()))
                    .collect();
                let responses = [
                    (Family::Chosen, self.chosen(j)),
                    (Family::Rejected, self.rejected(j)),
                    (Family::ChosenRephrase, self.chosen_rephrase(j)),
                    (
                        Family::ChosenFormat,
                        vec![
                            entity(format_entity),
                            IS,
                            self.sizes
                                .value(rng.random_range(0..self.sizes.values), false),
                            END,
                        ],
                    ),
                    (Family::RejectedRephrase, self.rejected_rephrase(j)),
                    (Family::OtherPrompt, self.chosen(other)),
                    (Family::TestPrompt, self.chosen(test)),
                    (Family::RandomSentence, random_sentence),
                    (Family::ShuffledChosen, shuffled),
                    (Family::RandomTokens, random_tokens),
                    (Family::Argmax, self.chosen(j)),
                    (Family::ExceptArgmax, self.chosen(j)),
                    (Family::ArgmaxRejectedPrefix, self.rejected(j)),
                    (Family::ExceptArgmaxRejectedPrefix, self.rejected(j)),
                ];
                let prompt = self.prompt(j);
                Probe {
                    entity: j,
                    responses: responses
                        .into_iter()
                        .map(|(f, y)| (f, Sequence::new(&prompt, &y)))
                        .collect(),
                }
            })
            .collect()
    }
}
