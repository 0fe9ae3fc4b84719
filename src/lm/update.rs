//! The two kinds of update the tiny LM is trained with, as inputs and objective for
//! [`crate::trainer::Trainer::step`] and [`crate::decomposition::one_step`]: SFT on one
//! response, and a pairwise preference on a chosen and a rejected response with a frozen
//! reference model. Every experiment, benchmark and export builds its updates here.

use super::{Sequence, TinyLm};
use crate::model::Model;
use crate::numerics::sequence_log_prob;
use crate::objective::{CrossEntropy, PairLoss, Pairwise};

/// SFT on `χ = [prompt; y]`: cross-entropy on every response token.
pub fn sft(prompt: &[usize], y: &[usize]) -> (Vec<Sequence>, CrossEntropy) {
    (vec![Sequence::new(prompt, y)], CrossEntropy::sequence(y))
}

/// A pairwise preference update on `χ⁺ = [prompt; chosen]` and `χ⁻ = [prompt; rejected]`,
/// whose reference log-probabilities `(ref⁺, ref⁻)` are `reference`'s sequence
/// log-probabilities of the two responses, computed once here (the reference is frozen).
pub fn pair(
    reference: &TinyLm,
    prompt: &[usize],
    (chosen, rejected): (Vec<usize>, Vec<usize>),
    loss: PairLoss,
    beta: f64,
) -> (Vec<Sequence>, Pairwise) {
    let chi_plus = Sequence::new(prompt, &chosen);
    let chi_minus = Sequence::new(prompt, &rejected);
    let reference = (
        sequence_log_prob(&reference.logits(&chi_plus), &chosen),
        sequence_log_prob(&reference.logits(&chi_minus), &rejected),
    );
    let objective = Pairwise {
        loss,
        beta,
        chosen,
        rejected,
        reference,
    };
    (vec![chi_plus, chi_minus], objective)
}
