//! Greedy answers to the prompts and the repeater measures of a set of answers.

use rand::SeedableRng;

use crate::Rng64;
use crate::error::Result;
use crate::language::{ANSWER_LEN, END, IS, Language, entity};
use crate::lm::{Sequence, TinyLm};
use crate::model::Model;

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

/// The repeater measures of the greedy answers, with hallucination kept apart: a
/// greedy answer is *well-formed* when it is a sentence of the answer grammar about
/// any entity ([`Language::well_formed`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Repeater {
    /// The share of answers to training prompts that are not well-formed.
    pub degenerate_rate: f64,
    /// The share of answers to training prompts that repeat a token back to back, or do
    /// not reach `END` within the limit.
    pub repetition_rate: f64,
    /// The share of answers to training prompts that are well-formed but about another
    /// entity.
    pub wrong_entity_rate: f64,
    /// The share of answers to held-out prompts that are well-formed but about another
    /// entity: hallucination, not a repeater.
    pub hallucination_rate: f64,
    /// Distinct tokens over all tokens, across every answer.
    pub distinct_token_share: f64,
}

/// Whether `answer` repeats a token back to back or never reaches `END`.
pub fn repeats(answer: &[usize]) -> bool {
    answer.windows(2).any(|w| w[0] == w[1]) || !answer.contains(&END)
}

/// The repeater measures of `train` and `held_out`, each `(entities, answers)`: the
/// greedy answers to the prompts of those entities.
pub fn repeater(
    language: &Language,
    train: (&[usize], &[Vec<usize>]),
    held_out: (&[usize], &[Vec<usize>]),
) -> Repeater {
    let share = |(entities, answers): (&[usize], &[Vec<usize>]),
                 test: &dyn Fn(usize, &[usize]) -> bool| {
        let k = entities
            .iter()
            .zip(answers)
            .filter(|(j, a)| test(**j, a))
            .count();
        k as f64 / answers.len().max(1) as f64
    };
    let other_entity = |j: usize, a: &[usize]| language.well_formed(a).is_some_and(|e| e != j);
    let tokens: Vec<usize> = train
        .1
        .iter()
        .chain(held_out.1)
        .flatten()
        .copied()
        .collect();
    let mut distinct = tokens.clone();
    distinct.sort_unstable();
    distinct.dedup();
    Repeater {
        degenerate_rate: share(train, &|_, a| language.well_formed(a).is_none()),
        repetition_rate: share(train, &|_, a| repeats(a)),
        wrong_entity_rate: share(train, &other_entity),
        hallucination_rate: share(held_out, &other_entity),
        distinct_token_share: distinct.len() as f64 / tokens.len().max(1) as f64,
    }
}

/// The share of all entities `j` whose fact `model` answers greedily: after `[ASK e_j]`
/// and `[e_j IS]`, its most likely next token is `j`'s true value (either synonym). A
/// base model that does not know its world's facts says nothing about finetuning.
pub fn fact_accuracy(model: &TinyLm, language: &Language) -> f64 {
    let sizes = language.sizes;
    let known = (0..sizes.entities)
        .filter(|&j| {
            let answer = [entity(j), IS, sizes.value(language.facts[j], false), END];
            let logits = model.logits(&Sequence::new(&language.prompt(j), &answer));
            let column = logits.column(2);
            let greedy = (0..column.len())
                .fold(0, |best, t| if column[t] > column[best] { t } else { best });
            sizes.value_of(greedy) == Some(language.facts[j])
        })
        .count();
    known as f64 / sizes.entities as f64
}
