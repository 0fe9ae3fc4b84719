//! Greedy answers to the prompts and the repeater measures of a set of answers.

use rand::SeedableRng;

use crate::Rng64;
use crate::error::Result;
use crate::language::{ANSWER_LEN, Answer, END, Language};
use crate::lm::TinyLm;

/// Greedy answers to the prompts of `entities`: generated to `END` or to twice the
/// answer length, whichever comes first.
///
/// # Errors
/// Never for a model of the language's vocabulary.
pub fn greedy_answers(
    model: &TinyLm,
    language: &Language,
    entities: &[usize],
) -> Result<Vec<Vec<usize>>> {
    let mut unused = Rng64::seed_from_u64(0);
    entities
        .iter()
        .map(|&j| {
            model.complete(
                &language.prompt(j),
                Some(END),
                2 * ANSWER_LEN,
                None,
                &mut unused,
            )
        })
        .collect()
}

/// The repeater measures of a set of answers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Repeater {
    /// The share of answers that are not sentences of the answer grammar.
    pub malformed_rate: f64,
    /// Distinct tokens over all tokens, across the answers.
    pub distinct_token_share: f64,
}

/// The repeater measures of `answers`, the answers to the prompts of `entities`.
pub fn repeater(language: &Language, entities: &[usize], answers: &[Vec<usize>]) -> Repeater {
    let malformed = entities
        .iter()
        .zip(answers)
        .filter(|(j, a)| language.judge(**j, a) == Answer::Malformed)
        .count();
    let tokens: Vec<usize> = answers.iter().flatten().copied().collect();
    let mut distinct = tokens.clone();
    distinct.sort_unstable();
    distinct.dedup();
    Repeater {
        malformed_rate: malformed as f64 / answers.len().max(1) as f64,
        distinct_token_share: distinct.len() as f64 / tokens.len().max(1) as f64,
    }
}
