//! The training loop, shared by every experiment: plain SGD, one update example per
//! step, with observers that record whatever an experiment needs.
//!
//! Each step computes `G` and `∇_θ L` for the update example, applies
//! `θ ← θ − η ∇_θ L`, and then hands every observer a [`StepEvent`] holding the model
//! *before* and *after* the step. An observer can therefore measure the actual change
//! on its probes and the decomposition's prediction (via
//! [`crate::decomposition::observe`]) without the trainer knowing what it records.
//! Plotting never happens here: observers only collect numbers.

use nalgebra::DMatrix;
use rand::Rng;
use rand::seq::SliceRandom;

use crate::decomposition::gradient;
use crate::error::{Result, check_step};
use crate::model::Model;
use crate::objective::Objective;

/// What one step did, as seen by observers.
pub struct StepEvent<'a, M: Model> {
    /// The step's index, from 0.
    pub step: usize,
    /// The model before the step.
    pub before: &'a M,
    /// The model after the step.
    pub after: &'a M,
    /// The update example's inputs.
    pub update: &'a [M::Input],
    /// The learning rate.
    pub eta: f64,
    /// The loss on the update example before the step.
    pub loss: f64,
    /// The residuals `G` of the update inputs before the step.
    pub residuals: &'a [DMatrix<f64>],
    /// The anchor's part of `G` (RPO's NLL, DPOP's penalty, SLiC's λ term), where the
    /// objective has one ([`Objective::anchor`]).
    pub anchor: Option<&'a [DMatrix<f64>]>,
}

/// Records something about training. Both hooks default to doing nothing.
pub trait Observer<M: Model> {
    /// Called once before the first step with the initial model.
    fn start(&mut self, _model: &M) -> Result<()> {
        Ok(())
    }

    /// Called after every step.
    fn step(&mut self, _event: &StepEvent<'_, M>) -> Result<()> {
        Ok(())
    }
}

/// A model trained by SGD with a fixed learning rate.
pub struct Trainer<M: Model> {
    /// The model being trained.
    pub model: M,
    eta: f64,
    steps: usize,
}

impl<M: Model> Trainer<M> {
    /// # Errors
    /// If `eta` is not finite and positive.
    pub fn new(model: M, eta: f64) -> Result<Self> {
        check_step("learning rate eta", eta)?;
        Ok(Trainer {
            model,
            eta,
            steps: 0,
        })
    }

    /// Steps taken so far.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Calls every observer's `start` hook with the current model.
    pub fn start(&mut self, observers: &mut [&mut dyn Observer<M>]) -> Result<()> {
        observers.iter_mut().try_for_each(|o| o.start(&self.model))
    }

    /// One SGD step on `(update, objective)`, then every observer's `step` hook.
    /// Returns the loss before the step.
    pub fn step(
        &mut self,
        update: &[M::Input],
        objective: &dyn Objective,
        observers: &mut [&mut dyn Observer<M>],
    ) -> Result<f64> {
        crate::progress::checkpoint()?;
        let g = gradient(&self.model, update, objective)?;
        // The model before the step is kept only for observers to compare with.
        let before = (!observers.is_empty()).then(|| self.model.clone());
        self.model.sgd_step(&g.grad, self.eta).map_err(|e| {
            crate::error::Error::InvalidArgument(format!(
                "training diverged at step {}: {e} (lower the learning rate)",
                self.steps
            ))
        })?;
        let Some(before) = before else {
            self.steps += 1;
            return Ok(g.loss);
        };
        let event = StepEvent {
            step: self.steps,
            before: &before,
            after: &self.model,
            update,
            eta: self.eta,
            loss: g.loss,
            residuals: &g.residuals,
            anchor: g.anchor.as_deref(),
        };
        observers.iter_mut().try_for_each(|o| o.step(&event))?;
        self.steps += 1;
        Ok(g.loss)
    }

    /// `epochs` passes over `items`, each in an order shuffled by `rng`, with one step
    /// per item on the update that `update` builds for it (its inputs and objective).
    /// Calls the observers' `start` hook first.
    pub fn epochs<T: Clone>(
        &mut self,
        epochs: usize,
        items: &[T],
        rng: &mut impl Rng,
        mut update: impl FnMut(&T) -> Update<M>,
        observers: &mut [&mut dyn Observer<M>],
    ) -> Result<()> {
        self.start(observers)?;
        for epoch in 0..epochs {
            crate::progress::stage(1, || format!("epoch {}/{epochs}", epoch + 1));
            let mut order = items.to_vec();
            order.shuffle(rng);
            for item in &order {
                let (inputs, objective) = update(item);
                self.step(&inputs, objective.as_ref(), observers)?;
            }
        }
        Ok(())
    }
}

/// The update of one step: the inputs it trains on and the objective.
pub type Update<M> = (Vec<<M as Model>::Input>, Box<dyn Objective>);
