//! Objectives: a loss on a model's logits and its residual `G = ∂L/∂z`, with the sign
//! that makes a gradient-descent step `Δθ = −η Jᵀ G` do what the loss says.
//!
//! An objective reads the logits of one or more inputs (one for cross-entropy and SFT,
//! two for the pairwise losses, chosen and rejected) and returns one `V × L` residual
//! per input, one column per scored position. Residuals are true logit gradients, so a
//! *negative gradient* on a label appears with its minus sign inside `G`: nothing
//! downstream needs to know which loss produced it.
//!
//! This module holds the trait, cross-entropy (SFT, positive and negative gradients) and
//! batches of objectives; [`pairwise`] the preference losses (DPO, IPO, SLiC, SPPO, RPO,
//! DPOP); `check` the test of any objective's residual against its loss
//! ([`check_residuals`]).

mod check;
pub mod pairwise;

use nalgebra::DMatrix;

pub use check::check_residuals;
pub use pairwise::{
    Coefficients, DpopForm, LmObjective, OneTerm, PairLoss, Pairwise, RpoWeighting, Term,
    shared_positions, split_terms, without_anchor,
};

use crate::error::{Error, Result, check_class};
use crate::numerics::{log_prob, softmax_columns_shifted};

/// A loss over the logits of `arity()` inputs, each `V × L`. Objectives are plain data,
/// shared by the threads that compute a batch's parts.
pub trait Objective: Send + Sync {
    /// How many inputs (sequences) the loss reads.
    fn arity(&self) -> usize;

    /// Checks that the objective fits logits of these shapes (classes in range...).
    fn check(&self, shapes: &[(usize, usize)]) -> Result<()>;

    /// The loss value `L`.
    fn loss(&self, logits: &[DMatrix<f64>]) -> f64;

    /// The residuals `G_s = ∂L/∂z_s`, one `V × L` matrix per input `s`.
    fn residuals(&self, logits: &[DMatrix<f64>]) -> Vec<DMatrix<f64>>;

    /// The part of the residuals that anchors `y⁺` beyond DPO's pull (RPO's NLL, DPOP's
    /// penalty, SLiC's λ term: [`Pairwise::terms`]), one matrix per input, or `None` for
    /// an objective without one.
    fn anchor(&self, _logits: &[DMatrix<f64>]) -> Option<Vec<DMatrix<f64>>> {
        None
    }

    /// The loss and the residuals together, as [`Objective::loss`] and
    /// [`Objective::residuals`] give them. Objectives whose two share a log-softmax
    /// override it to compute that once (a training step needs both).
    fn loss_and_residuals(&self, logits: &[DMatrix<f64>]) -> (f64, Vec<DMatrix<f64>>) {
        (self.loss(logits), self.residuals(logits))
    }
}

/// Batches with at least this many logits compute their parts' residuals on rayon's
/// pool ([`Batch`]); smaller ones, as every update of the gallery's experiments, on the
/// calling thread.
pub const PARALLEL_ENTRIES: usize = 1 << 15;

/// A minibatch: the sum of several objectives, each reading its own inputs in turn
/// (`L = Σ_k L_k`, so each input's residual is its own objective's).
pub struct Batch(pub Vec<Box<dyn Objective>>);

impl Batch {
    /// The parts with the inputs (shapes or logits) each one reads.
    fn parts<'a, T>(
        &'a self,
        items: &'a [T],
    ) -> impl Iterator<Item = (&'a dyn Objective, &'a [T])> {
        let mut start = 0;
        self.0.iter().map(move |o| {
            start += o.arity();
            (o.as_ref(), &items[start - o.arity()..start])
        })
    }
}

impl Objective for Batch {
    fn arity(&self) -> usize {
        self.0.iter().map(|o| o.arity()).sum()
    }

    fn check(&self, shapes: &[(usize, usize)]) -> Result<()> {
        crate::error::check_len("inputs of the batch", self.arity(), shapes.len())?;
        self.parts(shapes).try_for_each(|(o, s)| o.check(s))
    }

    fn loss(&self, logits: &[DMatrix<f64>]) -> f64 {
        self.parts(logits).map(|(o, z)| o.loss(z)).sum()
    }

    fn residuals(&self, logits: &[DMatrix<f64>]) -> Vec<DMatrix<f64>> {
        self.parts(logits)
            .flat_map(|(o, z)| o.residuals(z))
            .collect()
    }

    /// The parts in parallel when the batch has at least [`PARALLEL_ENTRIES`] logits;
    /// their losses are summed in order either way.
    fn loss_and_residuals(&self, logits: &[DMatrix<f64>]) -> (f64, Vec<DMatrix<f64>>) {
        use rayon::prelude::*;
        let parts: Vec<_> = self.parts(logits).collect();
        let each = |&(o, z): &(&dyn Objective, &[DMatrix<f64>])| o.loss_and_residuals(z);
        let entries: usize = logits.iter().map(DMatrix::len).sum();
        let results: Vec<_> = if entries >= PARALLEL_ENTRIES {
            parts.par_iter().map(each).collect()
        } else {
            parts.iter().map(each).collect()
        };
        let mut residuals = Vec::with_capacity(logits.len());
        let mut loss = 0.0;
        for (l, g) in results {
            loss += l;
            residuals.extend(g);
        }
        (loss, residuals)
    }
}

/// One signed label term of a [`CrossEntropy`]: weight `w` on class `class` at
/// position `position`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Label {
    /// Index of the scored position (column of the logits).
    pub position: usize,
    /// The label.
    pub class: usize,
    /// Signed weight: positive pulls the label up, negative pushes it down.
    pub weight: f64,
}

/// Weighted cross-entropy on one input:
///
/// `L = Σ_k w_k · (−log π_{l_k}(y_k))`,   so   `G_l = Σ_{k: l_k = l} w_k (π_l − e_{y_k})`.
///
/// A positive weight is the usual *positive gradient* (descent pulls `π(y)` up); a
/// negative weight is a *negative gradient* (ascent on `−log π(y)`, pushing `π(y)` down).
/// Classification cross-entropy is one term with `w = 1`; SFT on a response is one
/// term per position.
#[derive(Clone, Debug, PartialEq)]
pub struct CrossEntropy {
    labels: Vec<Label>,
}

impl CrossEntropy {
    /// Standard cross-entropy toward `class` (weight `+1`, position 0): `G = π − e_y`.
    pub fn positive(class: usize) -> Self {
        Self::weighted(class, 1.0)
    }

    /// A negative gradient on `class` (weight `−1`, position 0): `G = −(π − e_y)`.
    pub fn negative(class: usize) -> Self {
        Self::weighted(class, -1.0)
    }

    /// One term with weight `weight` on `class` at position 0.
    pub fn weighted(class: usize, weight: f64) -> Self {
        CrossEntropy {
            labels: vec![Label {
                position: 0,
                class,
                weight,
            }],
        }
    }

    /// Teacher-forced SFT on a response: weight 1 on `targets[l]` at every position `l`.
    pub fn sequence(targets: &[usize]) -> Self {
        let labels = targets
            .iter()
            .enumerate()
            .map(|(position, &class)| Label {
                position,
                class,
                weight: 1.0,
            })
            .collect();
        CrossEntropy { labels }
    }

    /// Adds the terms of `other` (for example a positive and a negative gradient at once).
    pub fn and(mut self, other: CrossEntropy) -> Self {
        self.labels.extend(other.labels);
        self
    }

    /// The label terms.
    pub fn labels(&self) -> &[Label] {
        &self.labels
    }
}

impl Objective for CrossEntropy {
    fn arity(&self) -> usize {
        1
    }

    fn check(&self, shapes: &[(usize, usize)]) -> Result<()> {
        let &[(v, l)] = shapes else {
            return Err(Error::ShapeMismatch {
                what: "number of inputs for cross-entropy",
                expected: 1,
                got: shapes.len(),
            });
        };
        for label in &self.labels {
            check_class(label.class, v)?;
            if label.position >= l {
                return Err(Error::InvalidArgument(format!(
                    "label position {} is out of range for {l} positions",
                    label.position
                )));
            }
            if !label.weight.is_finite() {
                return Err(Error::NonFinite("label weight"));
            }
        }
        Ok(())
    }

    fn loss(&self, logits: &[DMatrix<f64>]) -> f64 {
        self.loss_and_residuals(logits).0
    }

    fn residuals(&self, logits: &[DMatrix<f64>]) -> Vec<DMatrix<f64>> {
        self.loss_and_residuals(logits).1
    }

    /// One softmax for both ([`softmax_columns_shifted`]): `L = −Σ_k w_k log π_{l_k}(y_k)`
    /// and `G_l = Σ_k w_k (π_l − e_{y_k})`, formed in place as `(Σ_{k: l_k = l} w_k) π_l`
    /// less the labels (zero at unlabelled positions).
    fn loss_and_residuals(&self, logits: &[DMatrix<f64>]) -> (f64, Vec<DMatrix<f64>>) {
        let z = &logits[0];
        let (mut g, shifts) = softmax_columns_shifted(z);
        let mut weights = vec![0.0; z.ncols()];
        self.labels
            .iter()
            .for_each(|t| weights[t.position] += t.weight);
        for (mut col, w) in g.column_iter_mut().zip(weights) {
            col *= w;
        }
        for t in &self.labels {
            g[(t.class, t.position)] -= t.weight;
        }
        let loss = (self.labels.iter())
            .map(|t| -t.weight * log_prob(z[(t.class, t.position)], shifts[t.position]))
            .sum();
        (loss, vec![g])
    }
}
