//! What the digits run records while it trains: the accumulated predicted and actual
//! changes on the probes by update class (Figure 1c), the class-pair eNTK norms at
//! checkpoints (Figure 7), and a copy of the model at the early step (Figure 1b, d).

use nalgebra::{DMatrix, DVector};

use crate::decomposition::observe;
use crate::digits::CLASSES;
use crate::error::Result;
use crate::mlp::Mlp;
use crate::mlp::kernel::entk_full;
use crate::trainer::{Observer, StepEvent};

/// Accumulates per-step predicted and actual changes on the probes by update class.
pub(super) struct InfluenceObserver<'a> {
    pub(super) probes: &'a [DVector<f64>],
    pub(super) probe_labels: &'a [usize],
    pub(super) update_labels: &'a [usize],
    pub(super) predicted: Vec<f64>,
    pub(super) actual: Vec<f64>,
}

impl Observer<Mlp> for InfluenceObserver<'_> {
    fn step(&mut self, e: &StepEvent<'_, Mlp>) -> Result<()> {
        let u = self.update_labels[e.step];
        let per_class = self.probes.len() as f64 / CLASSES as f64;
        for (o, obs) in self
            .probe_labels
            .iter()
            .zip(observe(e.before, e.after, self.probes)?)
        {
            let base = (u * CLASSES + o) * CLASSES;
            for k in 0..CLASSES {
                self.predicted[base + k] += obs.predicted[k] / per_class;
                self.actual[base + k] += obs.actual[k] / per_class;
            }
        }
        Ok(())
    }
}

/// Class-pair means of `‖K‖_F` over distinct probe images, every `every` steps.
pub(super) struct EntkObserver<'a> {
    pub(super) probes: &'a [DVector<f64>],
    pub(super) probe_labels: &'a [usize],
    pub(super) every: usize,
    pub(super) track: Vec<(usize, DMatrix<f64>)>,
}

impl EntkObserver<'_> {
    pub(super) fn record(&mut self, step: usize, model: &Mlp) -> Result<()> {
        let kernel = entk_full(model, self.probes, 2)?;
        let mut sum = DMatrix::zeros(CLASSES, CLASSES);
        let mut count = DMatrix::<f64>::zeros(CLASSES, CLASSES);
        for (i, &ci) in self.probe_labels.iter().enumerate() {
            for (j, &cj) in self
                .probe_labels
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
            {
                sum[(ci, cj)] += kernel.block(i, j).norm();
                count[(ci, cj)] += 1.0;
            }
        }
        self.track.push((step, sum.component_div(&count)));
        Ok(())
    }
}

impl Observer<Mlp> for EntkObserver<'_> {
    fn start(&mut self, model: &Mlp) -> Result<()> {
        self.record(0, model)
    }

    fn step(&mut self, e: &StepEvent<'_, Mlp>) -> Result<()> {
        if (e.step + 1).is_multiple_of(self.every) {
            self.record(e.step + 1, e.after)?;
        }
        Ok(())
    }
}

/// Keeps a copy of the model after step `at`.
pub(super) struct Checkpoint {
    pub(super) at: usize,
    pub(super) model: Option<Mlp>,
}

impl Observer<Mlp> for Checkpoint {
    fn step(&mut self, e: &StepEvent<'_, Mlp>) -> Result<()> {
        if e.step + 1 == self.at {
            self.model = Some(e.after.clone());
        }
        Ok(())
    }
}
