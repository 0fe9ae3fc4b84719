//! A synthetic language with meaning and format, so that the paper's probe-response
//! families exist for a tiny model.
//!
//! Every entity has one true value (a fact). A sentence states it in a fixed format,
//! `e IS v END`, and both the copula and the value have a synonym (`SEEMS`, `v'`),
//! used interchangeably — with [`SYNONYM_RATE`] — in the pre-training corpus, which
//! also holds questions with their answers (`ASK e e IS v END`, for every entity) and
//! filler sentences (`I LIKE e END`, `e NEAR e' END`). Instruction data asks `ASK e`
//! and answers with the canonical words:
//!
//! * chosen `y⁺`: the fact, `[e, COPULA, v, END]`;
//! * rejected `y⁻`: grammatical, plausible and wrong, `[e, COPULA, v_wrong, END]`.
//!
//! How the answers are worded is the world's [`Style`]:
//!
//! * [`Style::Canonical`]: `y⁺ = [e, IS, v, END]` always, `y⁻ = [e, SEEMS, v'_wrong, END]`
//!   in the rarer synonyms, and SFT trains on `y⁺` itself. After SFT, `y⁺` is the model's
//!   greedy answer at every position.
//! * [`Style::Human`]: the instruction data comes from a "human" answer distribution
//!   that uses the synonyms more often than pre-training ([`HUMAN_SYNONYM_RATE`] vs
//!   [`SYNONYM_RATE`]). SFT trains on fresh samples of it, and `y⁺` and `y⁻` are fixed
//!   samples of its wordings, drawn independently. So `y⁺` is one of several likely
//!   answers, not the model's mode, and only `y⁻`'s wrong value is a valley.
//!
//! Token 0 is the padding token [`crate::lm::PAD`].

mod probes;

pub use probes::{Family, Greedy, Probe};

use rand::seq::SliceRandom;
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

use crate::lm::Sequence;

/// Marks an instruction prompt: `ASK e`.
pub const ASK: usize = 1;
/// The copula of a fact.
pub const IS: usize = 2;
/// The copula's synonym.
pub const SEEMS: usize = 3;
/// Ends a sentence.
pub const END: usize = 4;
/// Filler sentences: `I LIKE e END`.
pub const I: usize = 5;
/// Filler sentences: `I LIKE e END`.
pub const LIKE: usize = 6;
/// Filler sentences: `e NEAR e' END`.
pub const NEAR: usize = 7;
/// The length of an answer `e COPULA VALUE END`.
pub const ANSWER_LEN: usize = 4;
/// How often the pre-training corpus uses `SEEMS` and the value synonyms.
pub const SYNONYM_RATE: f64 = 0.3;
/// One pre-training document in `QA_EVERY` is a question with its answer.
pub const QA_EVERY: usize = 10;
/// How often the "human" answers of [`Style::Human`] use `SEEMS` and the value synonyms.
pub const HUMAN_SYNONYM_RATE: f64 = 0.5;

/// The sizes of a world's language. The vocabulary follows from them: 8 function
/// tokens, the entities, the values and their synonyms ([`Sizes::vocab`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sizes {
    /// Number of entities, each with one fact.
    pub entities: usize,
    /// Number of values (each with a synonym).
    pub values: usize,
    /// Entities held out of instruction tuning (the `test_prompt` family).
    pub test_entities: usize,
}

impl Default for Sizes {
    /// The gallery's world: 12 entities, 8 values, 4 entities held out.
    fn default() -> Self {
        Sizes {
            entities: 12,
            values: 8,
            test_entities: 4,
        }
    }
}

impl Sizes {
    /// The vocabulary size: 8 function tokens, the entities, the values and their
    /// synonyms.
    pub fn vocab(self) -> usize {
        8 + self.entities + 2 * self.values
    }

    /// The entities instruction tuning uses: all but the held-out ones.
    pub fn train_entities(self) -> usize {
        self.entities.saturating_sub(self.test_entities)
    }

    /// Refuses sizes that leave no world: a probe's `other_prompt` needs two training
    /// entities and its `test_prompt` one held out; a wrong answer needs two values.
    ///
    /// # Errors
    /// Naming the keys and what is missing.
    pub fn check(self) -> crate::error::Result<()> {
        let problem = if self.train_entities() < 2 {
            Some(format!(
                "language.entities = {} with language.test_entities = {} leaves {} entities for instruction tuning; the probes need at least 2",
                self.entities,
                self.test_entities,
                self.train_entities()
            ))
        } else if self.test_entities < 1 {
            Some("language.test_entities must be at least 1: the test_prompt probes ask a held-out entity".into())
        } else if self.values < 2 {
            Some("language.values must be at least 2: a rejected answer needs a wrong value".into())
        } else {
            None
        };
        problem.map_or(Ok(()), |p| Err(crate::error::Error::InvalidArgument(p)))
    }

    /// The canonical token of value `k`, or its synonym.
    pub fn value(self, k: usize, synonym: bool) -> usize {
        8 + self.entities + k + if synonym { self.values } else { 0 }
    }

    /// The value a token names, whichever synonym it is (`None` for any other token).
    pub fn value_of(self, token: usize) -> Option<usize> {
        let first = self.value(0, false);
        (first..first + 2 * self.values)
            .contains(&token)
            .then(|| (token - first) % self.values)
    }

    /// A token's name for figures: `ASK`, `IS`, `SEEMS`, `END`, `I`, `LIKE`, `NEAR`, the
    /// entities `e0`…, the values `v0`… and their synonyms `v0'`…, and `·` for the padding.
    pub fn token_name(self, token: usize) -> String {
        const WORDS: [&str; 8] = ["·", "ASK", "IS", "SEEMS", "END", "I", "LIKE", "NEAR"];
        match token {
            t if t < WORDS.len() => WORDS[t].to_string(),
            t if t < entity(self.entities) => format!("e{}", t - entity(0)),
            t if t < self.value(0, true) => format!("v{}", t - self.value(0, false)),
            t if t < self.vocab() => format!("v{}'", t - self.value(0, true)),
            t => format!("#{t}"),
        }
    }
}

/// How the instruction data words its answers (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Style {
    /// `y⁺` in the canonical words, `y⁻` in the synonyms; SFT on `y⁺`.
    Canonical,
    /// Answers drawn from a human distribution with synonyms at [`HUMAN_SYNONYM_RATE`];
    /// SFT on fresh samples of it.
    Human,
}

/// Which synonyms an answer `[e, COPULA, VALUE, END]` uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wording {
    /// `SEEMS` rather than `IS`.
    pub seems: bool,
    /// The value's synonym `v'` rather than `v`.
    pub synonym: bool,
}

impl Wording {
    /// `IS` and the canonical value.
    pub const CANONICAL: Wording = Wording {
        seems: false,
        synonym: false,
    };

    /// A draw of the human answer distribution.
    pub fn human(rng: &mut impl Rng) -> Self {
        Wording {
            seems: rng.random_bool(HUMAN_SYNONYM_RATE),
            synonym: rng.random_bool(HUMAN_SYNONYM_RATE),
        }
    }

    /// The other synonym of both words.
    pub fn flipped(self) -> Self {
        Wording {
            seems: !self.seems,
            synonym: !self.synonym,
        }
    }

    /// `[e, COPULA, VALUE, END]` for entity `j` and value `k`.
    fn answer(self, sizes: Sizes, j: usize, k: usize) -> Vec<usize> {
        let copula = if self.seems { SEEMS } else { IS };
        vec![entity(j), copula, sizes.value(k, self.synonym), END]
    }
}

/// The token of entity `j`.
pub fn entity(j: usize) -> usize {
    8 + j
}

/// How an answer to `ASK e` reads against the answer grammar `e COPULA VALUE END` (the
/// prompt's entity, either copula, a value token in either synonym, then `END`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Not a sentence of the grammar (the repeater's answers, e.g. `IS IS v IS`).
    Malformed,
    /// A well-formed sentence stating a wrong value.
    Wrong,
    /// A well-formed sentence stating the entity's true value.
    Correct,
}

impl Answer {
    /// The reward of online DPO: the correctness of the fact, `Correct` 1 > `Wrong` 0 >
    /// `Malformed` −1. Two answers with equal rewards make no preference pair.
    pub fn reward(self) -> f64 {
        match self {
            Answer::Malformed => -1.0,
            Answer::Wrong => 0.0,
            Answer::Correct => 1.0,
        }
    }
}

/// The facts of one seeded world.
#[derive(Clone, Debug, PartialEq)]
pub struct Language {
    /// `facts[j]`: the true value of entity `j`.
    pub facts: Vec<usize>,
    /// `wrong[j]`: the wrong value the rejected answer gives for entity `j`.
    pub wrong: Vec<usize>,
    /// How the instruction data words its answers.
    pub style: Style,
    /// `chosen_words[j]`: the wording of entity `j`'s chosen answer.
    pub chosen_words: Vec<Wording>,
    /// `rejected_words[j]`: the wording of entity `j`'s rejected answer.
    pub rejected_words: Vec<Wording>,
    /// Entities used for instruction tuning (and as probes), in a random order.
    pub train: Vec<usize>,
    /// Entities never used for instruction tuning.
    pub test: Vec<usize>,
    /// The sizes it was drawn with.
    pub sizes: Sizes,
}

impl Language {
    /// Draws the facts, the wrong values, the train/test split and (for
    /// [`Style::Human`]) the wordings of the chosen and rejected answers, in that order.
    ///
    /// # Panics
    /// If `sizes` do not pass [`Sizes::check`].
    pub fn random(style: Style, sizes: Sizes, rng: &mut impl Rng) -> Self {
        assert!(sizes.check().is_ok(), "checked sizes");
        let (n, values) = (sizes.entities, sizes.values);
        let facts: Vec<usize> = (0..n).map(|_| rng.random_range(0..values)).collect();
        let wrong = facts
            .iter()
            .map(|&f| (f + rng.random_range(1..values)) % values)
            .collect();
        let mut entities: Vec<usize> = (0..n).collect();
        entities.shuffle(rng);
        let test = entities.split_off(sizes.train_entities());
        let (chosen_words, rejected_words) = match style {
            Style::Canonical => (
                vec![Wording::CANONICAL; n],
                vec![Wording::CANONICAL.flipped(); n],
            ),
            Style::Human => (
                (0..n).map(|_| Wording::human(rng)).collect(),
                (0..n).map(|_| Wording::human(rng)).collect(),
            ),
        };
        Language {
            facts,
            wrong,
            style,
            chosen_words,
            rejected_words,
            train: entities,
            test,
            sizes,
        }
    }

    /// The instruction prompt `[ASK, e]`.
    pub fn prompt(&self, j: usize) -> Vec<usize> {
        vec![ASK, entity(j)]
    }

    /// The chosen answer `[e, COPULA, v, END]` (canonical: `[e, IS, v, END]`).
    pub fn chosen(&self, j: usize) -> Vec<usize> {
        self.chosen_words[j].answer(self.sizes, j, self.facts[j])
    }

    /// The rejected answer `[e, COPULA, v_wrong, END]` (canonical: `[e, SEEMS, v'_wrong, END]`).
    pub fn rejected(&self, j: usize) -> Vec<usize> {
        self.rejected_words[j].answer(self.sizes, j, self.wrong[j])
    }

    /// An SFT target for entity `j`: the chosen answer ([`Style::Canonical`]) or a fresh
    /// sample of the human answer distribution ([`Style::Human`]).
    pub fn sft_answer(&self, j: usize, rng: &mut impl Rng) -> Vec<usize> {
        match self.style {
            Style::Canonical => self.chosen(j),
            Style::Human => Wording::human(rng).answer(self.sizes, j, self.facts[j]),
        }
    }

    /// Reads `answer` to the prompt of entity `j` against the answer grammar.
    pub fn judge(&self, j: usize, answer: &[usize]) -> Answer {
        match answer {
            &[e, copula, v, end]
                if e == entity(j) && (copula == IS || copula == SEEMS) && end == END =>
            {
                match self.sizes.value_of(v) {
                    Some(k) if k == self.facts[j] => Answer::Correct,
                    Some(_) => Answer::Wrong,
                    None => Answer::Malformed,
                }
            }
            _ => Answer::Malformed,
        }
    }

    /// The entity a well-formed answer is about: `[any entity, IS or SEEMS, any value in
    /// either synonym, END]`, whatever the prompt (`None` if the answer is not a sentence
    /// of that grammar).
    pub fn well_formed(&self, answer: &[usize]) -> Option<usize> {
        match *answer {
            [e, copula, v, end]
                if (copula == IS || copula == SEEMS)
                    && end == END
                    && self.sizes.value_of(v).is_some() =>
            {
                (entity(0)..entity(self.sizes.entities))
                    .contains(&e)
                    .then(|| e - entity(0))
            }
            _ => None,
        }
    }

    /// One pre-training document, as a sequence with an empty prompt: a fact about any
    /// entity with random synonyms, sometimes as a question and its answer
    /// (`ASK e e IS v END`), or a filler sentence.
    pub fn corpus_sentence(&self, rng: &mut impl Rng) -> Sequence {
        let j = rng.random_range(0..self.sizes.entities);
        let copula = if rng.random_bool(SYNONYM_RATE) {
            SEEMS
        } else {
            IS
        };
        let fact = [
            entity(j),
            copula,
            self.sizes
                .value(self.facts[j], rng.random_bool(SYNONYM_RATE)),
            END,
        ];
        let tokens = match rng.random_range(0..QA_EVERY) {
            0 => [&[ASK, entity(j)][..], &fact].concat(),
            1 | 2 => vec![I, LIKE, entity(j), END],
            3 | 4 => vec![
                entity(j),
                NEAR,
                entity(rng.random_range(0..self.sizes.entities)),
                END,
            ],
            _ => fact.to_vec(),
        };
        Sequence::new(&[], &tokens)
    }
}
